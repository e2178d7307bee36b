//! The operator's commands that work on the database directly: `keys create|list|revoke`,
//! `audit verify`, `deliveries list|retry`. Each opens the store (migrating it), acts as the
//! actor `cli` in the audit log, and closes it.

use std::sync::Arc;

use anyhow::{Context, bail};
use riskhook_core::audit::ChainVerifier;
use riskhook_store::{DeliveryFilter, DeliveryStatus, Role, Store};

use super::{AuditCommand, DatabaseArgs, DeliveriesCommand, KeysCommand, now};
use crate::config::DatabaseUrl;

/// The audit log's actor for everything done from this command line.
const ACTOR: &str = "cli";

async fn open(db: &DatabaseArgs) -> anyhow::Result<Arc<dyn Store>> {
    crate::store::open(&DatabaseUrl::new(db.database_url.clone())).await
}

fn when(seconds: i64) -> String {
    u64::try_from(seconds).map_or_else(
        |_| seconds.to_string(),
        |s| {
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(s),
            )
            .to_string()
        },
    )
}

pub(super) async fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Generate { .. } => Ok(()),
        KeysCommand::Create {
            db,
            name,
            principal,
            role,
        } => {
            let role = Role::parse(&role).context("role must be read, review or admin")?;
            if name.trim().is_empty() {
                bail!("--name must not be empty");
            }
            let principal = principal.unwrap_or_else(|| name.clone());
            if principal.trim().is_empty() {
                bail!("--principal must not be empty");
            }
            let store = open(&db).await?;
            let key = crate::keys::generate(&name, principal.trim(), role);
            let record = store.create_key(key.record, ACTOR, now()).await;
            store.close().await;
            let record = record?;
            println!(
                "created key {} ({}, principal {}, role {})",
                record.id,
                record.name,
                record.principal,
                record.role.as_str()
            );
            println!("API key (shown once, store it now): {}", key.secret);
            Ok(())
        }
        KeysCommand::List { db } => {
            let store = open(&db).await?;
            let keys = store.keys().await;
            store.close().await;
            let keys = keys?;
            if keys.is_empty() {
                println!("no keys in the database");
            }
            for k in keys {
                let state = k
                    .revoked_at
                    .map_or_else(|| "active".to_owned(), |t| format!("revoked {}", when(t)));
                println!(
                    "{}\t{}\t{}\t{}\tcreated {} by {}\t{state}",
                    k.id,
                    k.role.as_str(),
                    k.principal,
                    k.name,
                    when(k.created_at),
                    k.created_by
                );
            }
            Ok(())
        }
        KeysCommand::Revoke { db, id } => {
            let store = open(&db).await?;
            let revoked = store.revoke_key(&id, ACTOR, now()).await;
            store.close().await;
            let record = revoked?;
            println!("revoked key {} ({})", record.id, record.name);
            Ok(())
        }
    }
}

pub(super) async fn audit(command: AuditCommand) -> anyhow::Result<()> {
    let AuditCommand::Verify { db } = command;
    let store = open(&db).await?;
    let result = verify_chain(store.as_ref()).await;
    store.close().await;
    let (checked, head) = result?;
    match head {
        Some(head) => {
            let entries = if checked == 1 { "entry" } else { "entries" };
            println!("audit chain intact: {checked} {entries}, head {head}");
        }
        None => println!("audit log is empty"),
    }
    Ok(())
}

/// Walks the chain a page at a time; an error names the first broken link.
async fn verify_chain(store: &dyn Store) -> anyhow::Result<(i64, Option<String>)> {
    const PAGE: u32 = 1000;
    let mut verifier = ChainVerifier::new();
    let mut head = None;
    loop {
        let page = store.audit(verifier.checked(), PAGE).await?;
        for entry in &page {
            verifier.check(&entry.fields(), &entry.hash)?;
            head = Some(entry.hash.clone());
        }
        if page.len() < PAGE as usize {
            return Ok((verifier.checked(), head));
        }
    }
}

pub(super) async fn deliveries(command: DeliveriesCommand) -> anyhow::Result<()> {
    match command {
        DeliveriesCommand::List { db, status, limit } => {
            let store = open(&db).await?;
            let filter = DeliveryFilter {
                status: status.as_deref().and_then(DeliveryStatus::parse),
                limit,
                ..DeliveryFilter::default()
            };
            let list = store.deliveries(&filter).await;
            store.close().await;
            for d in list? {
                println!(
                    "{}\t{}\t{}\t{}\tuser {}\tattempts {}\t{}",
                    d.id,
                    d.status.as_str(),
                    d.endpoint_id,
                    d.message_id,
                    d.user_id,
                    d.attempts,
                    d.last_error.unwrap_or_default()
                );
            }
            Ok(())
        }
        DeliveriesCommand::Retry {
            db,
            ids,
            all_failed,
        } => {
            if ids.is_empty() && !all_failed {
                bail!("name the deliveries to retry, or pass --all-failed");
            }
            let store = open(&db).await?;
            let result = retry(store.as_ref(), ids, all_failed).await;
            store.close().await;
            println!("{} deliveries queued again", result?);
            Ok(())
        }
    }
}

async fn retry(store: &dyn Store, mut ids: Vec<String>, all_failed: bool) -> anyhow::Result<usize> {
    if all_failed {
        let filter = DeliveryFilter {
            status: Some(DeliveryStatus::Failed),
            limit: u32::MAX,
            ..DeliveryFilter::default()
        };
        ids = store
            .deliveries(&filter)
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect();
    }
    for id in &ids {
        store.retry_delivery(id, ACTOR, now() * 1000).await?;
    }
    Ok(ids.len())
}

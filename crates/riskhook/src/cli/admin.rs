//! The operator's commands that work on the database directly: `keys create|list|revoke`,
//! `audit verify`, `deliveries list|retry`, `reconcile`. Each opens the store (migrating it), acts as the
//! actor `cli` in the audit log, and closes it.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use riskhook_core::audit::{ChainVerifier, Checkpoint};
use riskhook_store::{DeliveryFilter, DeliveryStatus, Role, Store};

use super::{AuditCommand, DatabaseArgs, DeliveriesCommand, KeysCommand, ReconcileArgs, now};
use crate::config::AuditConfig;

/// The audit log's actor for everything done from this command line.
const ACTOR: &str = "cli";

/// Opens the store to write to it: with the audit key, if configured, as `serve` does (and
/// refused as `serve` would be, e.g. without the key on a keyed chain).
async fn open(db: &DatabaseArgs) -> anyhow::Result<Arc<dyn Store>> {
    let audit = AuditConfig::load(db.config.as_deref())?;
    let store = open_to_read(db).await?;
    if let Err(e) = crate::audit::start(store.as_ref(), &audit, now()).await {
        store.close().await;
        return Err(e);
    }
    Ok(store)
}

/// Opens the store without giving it the audit key: for reading. The database must exist.
async fn open_to_read(db: &DatabaseArgs) -> anyhow::Result<Arc<dyn Store>> {
    crate::store::open(&db.existing()?).await
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
            let store = open_to_read(&db).await?;
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
    match command {
        AuditCommand::Verify {
            db,
            anchor,
            anchors,
            without_key,
        } => verify(&db, &anchor, &anchors, without_key).await,
        AuditCommand::StartKeying {
            db,
            anchor,
            anchors,
        } => start_keying(&db, &anchor, &anchors).await,
    }
}

/// The anchors given as `--anchor SEQ:HASH` and in `--anchors FILE`s.
fn read_anchors(typed: &[String], files: &[PathBuf]) -> anyhow::Result<Vec<Checkpoint>> {
    let mut given = Vec::new();
    for text in typed {
        given.push(Checkpoint::parse(text).context("--anchor")?);
    }
    for path in files {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the anchors file {}", path.display()))?;
        let read = Checkpoint::parse_lines(&text)
            .with_context(|| format!("in the anchors file {}", path.display()))?;
        if read.is_empty() {
            bail!("no anchors in {}", path.display());
        }
        given.extend(read);
    }
    Ok(given)
}

async fn verify(
    db: &DatabaseArgs,
    typed: &[String],
    files: &[PathBuf],
    without_key: bool,
) -> anyhow::Result<()> {
    let key = AuditConfig::load(db.config.as_deref())?.key;
    let keyed = key.is_some();
    let mut verifier = ChainVerifier::with_key(key);
    for anchor in read_anchors(typed, files)? {
        verifier.anchor(&anchor)?;
    }
    let store = open_to_read(db).await?;
    let result = crate::audit::verify_chain(store.as_ref(), verifier).await;
    store.close().await;
    let report = result?;
    if report.unchecked > 0 && !without_key {
        bail!(
            "{} keyed entries cannot be checked without the audit key: set RISKHOOK_AUDIT__KEY or audit.key_file (--config), or pass --without-key to check only their links and the anchors",
            report.unchecked
        );
    }
    println!("{}", crate::audit::describe(&report, keyed));
    Ok(())
}

async fn start_keying(
    db: &DatabaseArgs,
    typed: &[String],
    files: &[PathBuf],
) -> anyhow::Result<()> {
    let Some(key) = AuditConfig::load(db.config.as_deref())?.key else {
        bail!("no audit key configured: set RISKHOOK_AUDIT__KEY or audit.key_file (--config)");
    };
    // Checked as it is, without the key: it must not hold keyed entries yet.
    let mut verifier = ChainVerifier::new();
    for anchor in read_anchors(typed, files)? {
        verifier.anchor(&anchor)?;
    }
    let store = open_to_read(db).await?;
    let result = async {
        let report = crate::audit::verify_chain(store.as_ref(), verifier).await?;
        if report.keyed > 0 {
            bail!("the audit chain is keyed already");
        }
        store.set_audit_key(key).await?;
        crate::audit::begin_keyed(store.as_ref(), report.entries + 1, now()).await
    }
    .await;
    store.close().await;
    let entry = result?;
    println!(
        "audit chain keyed from entry {}; entries before it stay unkeyed. Keep this anchor: --anchor {}:{}",
        entry.seq, entry.seq, entry.hash
    );
    Ok(())
}

pub(super) async fn deliveries(command: DeliveriesCommand) -> anyhow::Result<()> {
    match command {
        DeliveriesCommand::List { db, status, limit } => {
            let store = open_to_read(&db).await?;
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

pub(super) async fn reconcile(args: ReconcileArgs) -> anyhow::Result<()> {
    use crate::config::{Check, ReconcileConfig};
    use crate::reconcile::{self, DiditApi, Options};

    let config = ReconcileConfig::load(args.db.config.as_deref())?;
    let api = DiditApi::new(&config)?;
    let until = args.until.unwrap_or_else(now);
    let window = i64::try_from(config.window.as_secs()).unwrap_or(i64::MAX);
    let since = args.since.unwrap_or_else(|| until.saturating_sub(window));
    if since >= until {
        bail!("--since must be before --until");
    }
    let options = Options {
        since,
        until,
        check: if args.all { Check::All } else { config.check },
        dry_run: args.dry_run,
    };
    let store = open(&args.db).await?;
    let result = reconcile::run(
        store.as_ref(),
        &api,
        &config,
        options,
        ACTOR,
        &mut std::collections::HashSet::new(),
    )
    .await;
    store.close().await;
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    if report.resend_failures() > 0 {
        bail!(
            "{} of {} resends failed; the next run tries again",
            report.resend_failures(),
            report.missing.len()
        );
    }
    Ok(())
}

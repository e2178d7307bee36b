//! The policy in force: loaded at start, swapped atomically on reload (SIGHUP or
//! `POST /v1/policy/reload`). A policy that fails to load is refused and the old one stays.
//! Every change of the policy in force is recorded in the audit log ([`record_in_force`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use anyhow::Context;
use riskhook_core::policy::{DEFAULT_POLICY, Policy};
use riskhook_store::{NewAuditEntry, Store, StoreError};
use serde::Serialize;

/// Holds the current policy and where it came from.
#[derive(Debug)]
pub struct PolicyHandle {
    path: Option<PathBuf>,
    current: RwLock<Arc<Policy>>,
}

impl PolicyHandle {
    /// Loads the policy at `path`, or the built-in default.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let policy = read(path)?;
        Ok(Self {
            path: path.map(Path::to_path_buf),
            current: RwLock::new(Arc::new(policy)),
        })
    }

    /// The policy in force. Cheap: an `Arc` clone, so an evaluation in progress keeps the
    /// policy it started with even if a reload happens meanwhile.
    pub fn current(&self) -> Arc<Policy> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Where the policy comes from, for display.
    pub fn source_name(&self) -> String {
        self.path.as_ref().map_or_else(
            || "built-in default".to_owned(),
            |p| p.display().to_string(),
        )
    }

    /// Re-reads the policy file; on success the new policy replaces the old one atomically and
    /// `(old hash, new)` is returned. On failure nothing changes.
    pub fn reload(&self) -> anyhow::Result<(String, Arc<Policy>)> {
        let policy = Arc::new(read(self.path.as_deref())?);
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let old = current.hash().to_owned();
        crate::metrics::policy_in_force(
            Some((current.name(), current.hash())),
            policy.name(),
            policy.hash(),
        );
        *current = policy.clone();
        Ok((old, policy))
    }
}

/// Records `policy` in the audit log as the policy in force, unless it already is: at start
/// (so a file changed while riskhook was stopped is recorded too) and after every reload.
pub async fn record_in_force(
    store: &dyn Store,
    policy: &Policy,
    source: &str,
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    #[derive(Serialize)]
    struct InForce<'a> {
        name: &'a str,
        hash: &'a str,
        source: &'a str,
    }
    let last = store.last_audit(POLICY_ACTIVATED).await?;
    let last_hash = last
        .as_ref()
        .and_then(|e| e.after.as_deref())
        .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
        .and_then(|v| v.get("hash").and_then(|h| h.as_str()).map(str::to_owned));
    if last_hash.as_deref() == Some(policy.hash()) {
        return Ok(());
    }
    let after = InForce {
        name: policy.name(),
        hash: policy.hash(),
        source,
    };
    store
        .append_audit(NewAuditEntry {
            at: now,
            actor: actor.to_owned(),
            action: POLICY_ACTIVATED.to_owned(),
            subject: format!("policy:{}", policy.name()),
            reason: None,
            before: last.and_then(|e| e.after),
            after: serde_json::to_string(&after).ok(),
        })
        .await?;
    Ok(())
}

/// The audit action of a policy coming into force.
pub const POLICY_ACTIVATED: &str = "policy.activated";

fn read(path: Option<&Path>) -> anyhow::Result<Policy> {
    let (source, origin) = match path {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the policy file {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (DEFAULT_POLICY.to_owned(), "the built-in policy".to_owned()),
    };
    Policy::load(&source).with_context(|| format!("{origin} does not load"))
}

//! The policy in force and the shadow policies evaluated beside it: loaded at start, swapped
//! atomically on reload (SIGHUP or `POST /v1/policy/reload`). A policy or shadow that fails to
//! load is refused with every problem, and the old ones stay. A shadow can be promoted to the
//! policy in force. Every change of the policy in force is recorded in the audit log
//! ([`record_in_force`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use anyhow::Context;
use riskhook_core::policy::{DEFAULT_POLICY, Policy};
use riskhook_store::{NewAuditEntry, Store, StoreError};
use serde::Serialize;

/// Holds the current policy, where it came from, and the shadow policies.
#[derive(Debug)]
pub struct PolicyHandle {
    path: RwLock<Option<PathBuf>>,
    current: RwLock<Arc<Policy>>,
    shadows: RwLock<Arc<[Shadow]>>,
}

/// A shadow policy as configured (`[[policy.shadow]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowSpec {
    /// Its id: in metrics, reports and stored shadow assessments.
    pub id: String,
    /// Its file.
    pub path: PathBuf,
}

/// A loaded shadow policy: evaluated on every new session event next to the policy in force,
/// stored, and used for nothing but comparison.
#[derive(Debug, Clone)]
pub struct Shadow {
    /// Its id.
    pub id: String,
    /// Its file.
    pub path: PathBuf,
    /// The policy.
    pub policy: Arc<Policy>,
}

/// Loads every shadow, or fails naming every one that does not load and why.
fn load_shadows(specs: &[ShadowSpec]) -> anyhow::Result<Arc<[Shadow]>> {
    let mut shadows = Vec::with_capacity(specs.len());
    let mut problems = Vec::new();
    for spec in specs {
        match read(Some(&spec.path)) {
            Ok(policy) => shadows.push(Shadow {
                id: spec.id.clone(),
                path: spec.path.clone(),
                policy: Arc::new(policy),
            }),
            Err(e) => problems.push(format!("shadow policy `{}`: {e:#}", spec.id)),
        }
    }
    if problems.is_empty() {
        Ok(shadows.into())
    } else {
        anyhow::bail!("{}", problems.join("\n"))
    }
}

impl PolicyHandle {
    /// Loads the policy at `path`, or the built-in default.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let policy = read(path)?;
        Ok(Self {
            path: RwLock::new(path.map(Path::to_path_buf)),
            current: RwLock::new(Arc::new(policy)),
            shadows: RwLock::new(Arc::from(Vec::new())),
        })
    }

    /// The same handle with these shadow policies, each loaded now: refused, naming every
    /// shadow that does not load and why, if any does not.
    pub fn with_shadows(self, specs: &[ShadowSpec]) -> anyhow::Result<Self> {
        *self.shadows.write().unwrap_or_else(PoisonError::into_inner) = load_shadows(specs)?;
        Ok(self)
    }

    /// The shadow policies in force.
    pub fn shadows(&self) -> Arc<[Shadow]> {
        self.shadows
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Makes shadow `id` the policy in force, read again from its file now (so what is
    /// promoted is what loads today). `None` for an unknown shadow; an error, with every
    /// problem, when its file no longer loads. Returns the previous policy's hash and the new
    /// policy. Later reloads read the shadow's file; the configuration's `policy.path` is not
    /// rewritten, so a restart goes back to it unless the operator changes it.
    pub fn promote(&self, id: &str) -> Option<anyhow::Result<(String, Arc<Policy>)>> {
        let shadow = self.shadows().iter().find(|s| s.id == id)?.clone();
        Some(read(Some(&shadow.path)).map(|policy| {
            let policy = Arc::new(policy);
            let old = self.install(policy.clone());
            *self.path.write().unwrap_or_else(PoisonError::into_inner) = Some(shadow.path);
            (old, policy)
        }))
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
        self.path
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or_else(
                || "built-in default".to_owned(),
                |p| p.display().to_string(),
            )
    }

    /// Re-reads the policy file; on success the new policy replaces the old one atomically and
    /// `(old hash, new)` is returned. On failure nothing changes.
    pub fn reload(&self) -> anyhow::Result<(String, Arc<Policy>)> {
        let path = self
            .path
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let loaded = read(path.as_deref());
        let specs: Vec<ShadowSpec> = self
            .shadows()
            .iter()
            .map(|s| ShadowSpec {
                id: s.id.clone(),
                path: s.path.clone(),
            })
            .collect();
        // All or nothing: the policy and every shadow load, or nothing changes.
        let shadows = load_shadows(&specs);
        let (policy, shadows) = match (loaded, shadows) {
            (Ok(policy), Ok(shadows)) => (Arc::new(policy), shadows),
            (Err(e), Ok(_)) | (Ok(_), Err(e)) => return Err(e),
            (Err(a), Err(b)) => anyhow::bail!("{a:#}\n{b:#}"),
        };
        *self.shadows.write().unwrap_or_else(PoisonError::into_inner) = shadows;
        let old = self.install(policy.clone());
        Ok((old, policy))
    }

    /// Puts `policy` in force; returns the hash of the one it replaces.
    fn install(&self, policy: Arc<Policy>) -> String {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let old = current.hash().to_owned();
        crate::metrics::policy_in_force(
            Some((current.name(), current.hash())),
            policy.name(),
            policy.hash(),
        );
        *current = policy;
        old
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

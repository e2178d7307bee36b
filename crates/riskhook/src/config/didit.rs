//! `[didit]` and `[[didit.keys]]`: the intake route, its limits and the signing keys, validated
//! into a [`DiditConfig`] whose keyring is ready to verify. `[didit.reconcile]` is
//! [`super::reconcile`]'s; secrets never show in `Debug`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use riskhook_didit::signature::{Key, Keyring, Secret};
use riskhook_didit::webhook::Verifier;
use serde::Deserialize;

use super::reconcile::RawReconcile;
use super::{ReconcileConfig, duration, read_secret_file};

/// The Didit intake settings.
#[derive(Debug, Clone)]
pub struct DiditConfig {
    /// The route Didit posts to.
    pub path: String,
    /// Freshness window.
    pub tolerance: Duration,
    /// Body size limit.
    pub max_body_bytes: usize,
    /// Whether `X-Signature-Simple` is accepted.
    pub allow_simple_signature: bool,
    /// The keys (secrets redacted in `Debug`).
    pub keyring: Keyring,
    /// Reconciliation with Didit's API, run by `serve` every `interval`: `None` unless
    /// `didit.reconcile.enabled`.
    pub reconcile: Option<ReconcileConfig>,
}

impl DiditConfig {
    /// The verifier these settings describe.
    pub fn verifier(&self) -> Verifier {
        Verifier::new(self.keyring.clone())
            .with_tolerance(self.tolerance)
            .allow_simple(self.allow_simple_signature)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDidit {
    path: String,
    #[serde(deserialize_with = "duration")]
    tolerance: Duration,
    max_body_bytes: usize,
    allow_simple_signature: bool,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    #[serde(default)]
    keys: Vec<RawKey>,
    reconcile: RawReconcile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    id: String,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    secret_env: Option<String>,
    not_after: Option<String>,
}

impl RawDidit {
    pub(super) fn validate(
        self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<DiditConfig> {
        if !self.path.starts_with('/') {
            bail!(
                "invalid configuration: didit.path: `{}` must start with /",
                self.path
            );
        }
        if self.tolerance.is_zero() {
            bail!("invalid configuration: didit.tolerance must be greater than zero");
        }
        if self.max_body_bytes == 0 {
            bail!("invalid configuration: didit.max_body_bytes must be greater than zero");
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut keys = Vec::new();
        match (&self.secret, &self.secret_file) {
            (Some(_), Some(_)) => bail!(
                "invalid configuration: didit.secret and didit.secret_file are both set; keep one"
            ),
            (Some(secret), None) => keys.push(
                Key::new("default", &Secret::new(secret.clone()))
                    .context("invalid configuration: didit.secret")?,
            ),
            (None, Some(path)) => keys.push(
                Key::new("default", &read_secret_file(path, "didit.secret_file")?)
                    .context("invalid configuration: didit.secret_file")?,
            ),
            (None, None) => {}
        }
        for (i, raw) in self.keys.into_iter().enumerate() {
            let at = format!("didit.keys[{i}]");
            let secret = match (raw.secret, raw.secret_file, raw.secret_env) {
                (Some(s), None, None) => Secret::new(s),
                (None, Some(path), None) => read_secret_file(&path, &format!("{at}.secret_file"))?,
                (None, None, Some(var)) => Secret::new(env(&var).with_context(|| {
                    format!("invalid configuration: {at}.secret_env: environment variable {var} is not set")
                })?),
                _ => bail!(
                    "invalid configuration: {at}: give exactly one of secret, secret_file or secret_env"
                ),
            };
            let mut key = Key::new(raw.id.clone(), &secret)
                .with_context(|| format!("invalid configuration: {at}"))?;
            if let Some(not_after) = raw.not_after {
                let t = humantime::parse_rfc3339_weak(not_after.trim()).with_context(|| {
                    format!("invalid configuration: {at}.not_after: `{not_after}` is not an RFC 3339 time such as 2026-12-01T00:00:00Z")
                })?;
                let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
                if secs < now {
                    tracing::warn!(
                        key = raw.id,
                        "didit key is past its not_after and will verify nothing"
                    );
                }
                key = key.with_not_after(i64::try_from(secs).unwrap_or(i64::MAX));
            }
            keys.push(key);
        }
        if keys.is_empty() {
            bail!(
                "invalid configuration: didit: no signing secret; set RISKHOOK_DIDIT_SECRET (the secret of your Didit webhook destination), didit.secret_file, or [[didit.keys]]"
            );
        }
        let keyring = Keyring::new(keys).context("invalid configuration: didit.keys")?;
        let reconcile = self.reconcile.for_serve(env)?;
        Ok(DiditConfig {
            path: self.path,
            tolerance: self.tolerance,
            max_body_bytes: self.max_body_bytes,
            allow_simple_signature: self.allow_simple_signature,
            keyring,
            reconcile,
        })
    }
}

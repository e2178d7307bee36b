//! `[audit]`: the audit chain's key and its checkpoints, validated into an [`AuditConfig`]. The
//! section also loads on its own, for `riskhook audit verify`; the key never shows in `Debug`
//! or in an error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use riskhook_core::audit::AuditKey;
use serde::Deserialize;

use super::{duration, read_secret_file, section};

/// The audit chain's key and its checkpoints (anchors) outside the database.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Keys every new entry (HMAC-SHA256) when set (redacted in `Debug`).
    pub key: Option<AuditKey>,
    /// How often the head of the chain is published as a checkpoint (when it moved).
    pub checkpoint_interval: Duration,
    /// Checkpoints are also appended to this file, one JSON line each.
    pub anchor_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    key: Option<String>,
    key_file: Option<PathBuf>,
    #[serde(deserialize_with = "duration")]
    checkpoint_interval: Duration,
    anchor_file: Option<PathBuf>,
}

impl RawAudit {
    pub(super) fn validate(self) -> anyhow::Result<AuditConfig> {
        let key = match (self.key, self.key_file) {
            (Some(_), Some(_)) => {
                bail!("invalid configuration: audit.key and audit.key_file are both set; keep one")
            }
            // The error names the rule, never the key.
            (Some(key), None) => {
                Some(AuditKey::new(key.as_bytes()).context("invalid configuration: audit.key")?)
            }
            (None, Some(path)) => Some(
                AuditKey::new(read_secret_file(&path, "audit.key_file")?.expose())
                    .context("invalid configuration: audit.key_file")?,
            ),
            (None, None) => None,
        };
        if self.checkpoint_interval.is_zero() {
            bail!("invalid configuration: audit.checkpoint_interval must be greater than zero");
        }
        Ok(AuditConfig {
            key,
            checkpoint_interval: self.checkpoint_interval,
            anchor_file: self.anchor_file,
        })
    }
}

impl AuditConfig {
    /// Only the `[audit]` section, from the same layers as [`super::Config::load`]: for
    /// `riskhook audit verify`, which needs the key but not the rest (a Didit secret, say).
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::load_with_env(file, std::env::vars())
    }

    /// [`AuditConfig::load`] with an explicit environment.
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        section::<RawAudit>(file, &env, "audit")?.validate()
    }
}

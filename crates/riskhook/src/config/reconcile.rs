//! `[didit.reconcile]`: where Didit's Management API is, the key to it, which webhook
//! destination to reconcile, and how often `serve` does it. Validated into a
//! [`ReconcileConfig`]; the API key never shows in `Debug`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use super::{duration, parse_webhook_url, section};

/// A Didit Management API key (`x-api-key`): redacted in `Debug`.
#[derive(Clone)]
pub struct DiditApiKey(String);

impl DiditApiKey {
    /// The key, for the one header that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DiditApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DiditApiKey(***)")
    }
}

/// Whether a run looks at the failed attempts only or at every delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Check {
    /// Attempts our endpoint did not answer with 2xx: the deliveries that can be missing
    /// (riskhook answers 2xx only after the event is committed).
    Failed,
    /// Every attempt, 2xx ones included: after restoring the database from a backup, when
    /// acknowledged events can be missing too. One API call per delivery.
    All,
}

/// The validated `[didit.reconcile]` section.
#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    /// Didit's API, e.g. `https://verification.didit.me`.
    pub base_url: reqwest::Url,
    /// The API key.
    pub api_key: DiditApiKey,
    /// The webhook destination whose deliveries are reconciled (its uuid).
    pub destination: String,
    /// How often `serve` runs it, when `enabled`.
    pub interval: Duration,
    /// How far back a run looks.
    pub window: Duration,
    /// A session whose status has not moved for this long, and is not final, is reported.
    pub stale_after: Duration,
    /// Which attempts a run checks against the database.
    pub check: Check,
    /// At most this many resends per run (a flood of them is a sign to look first).
    pub max_resends: u32,
    /// Per API request.
    pub timeout: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReconcile {
    enabled: bool,
    base_url: String,
    destination: String,
    api_key: Option<String>,
    api_key_file: Option<PathBuf>,
    api_key_env: Option<String>,
    #[serde(deserialize_with = "duration")]
    interval: Duration,
    #[serde(deserialize_with = "duration")]
    window: Duration,
    #[serde(deserialize_with = "duration")]
    stale_after: Duration,
    check: Check,
    max_resends: u32,
    #[serde(deserialize_with = "duration")]
    timeout: Duration,
}

impl RawReconcile {
    /// What `serve` runs: `None` unless `enabled`.
    pub(super) fn for_serve(
        self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Option<ReconcileConfig>> {
        if !self.enabled {
            return Ok(None);
        }
        self.validate(env).map(Some)
    }

    fn validate(self, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<ReconcileConfig> {
        const AT: &str = "invalid configuration: didit.reconcile";
        let destination = self.destination.trim().to_owned();
        if destination.is_empty() {
            bail!(
                "{AT}.destination is not set: give the uuid of your Didit webhook destination (GET /v3/webhook/destinations/ lists them)"
            );
        }
        if !destination
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            bail!("{AT}.destination: `{destination}` is not a destination uuid");
        }
        let api_key = match (self.api_key, self.api_key_file, self.api_key_env) {
            (Some(key), None, None) => key,
            (None, Some(path), None) => std::fs::read_to_string(&path)
                .with_context(|| format!("{AT}.api_key_file: cannot read {}", path.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
            (None, None, Some(var)) => env(&var).with_context(|| {
                format!("{AT}.api_key_env: environment variable {var} is not set")
            })?,
            (None, None, None) => bail!(
                "{AT}: no API key; set api_key_env (the name of a variable holding your Didit API key), api_key_file, or RISKHOOK_DIDIT__RECONCILE__API_KEY"
            ),
            _ => bail!("{AT}: give exactly one of api_key, api_key_file or api_key_env"),
        };
        if api_key.trim().is_empty() || api_key.chars().any(char::is_control) {
            bail!("{AT}: the API key is empty or holds control characters");
        }
        let base_url =
            parse_webhook_url(&self.base_url).map_err(|e| anyhow::anyhow!("{AT}.base_url: {e}"))?;
        for (name, value) in [
            ("interval", self.interval),
            ("window", self.window),
            ("stale_after", self.stale_after),
            ("timeout", self.timeout),
        ] {
            if value.is_zero() {
                bail!("{AT}.{name} must be greater than zero");
            }
        }
        if self.max_resends == 0 {
            bail!("{AT}.max_resends must be at least 1");
        }
        Ok(ReconcileConfig {
            base_url,
            api_key: DiditApiKey(api_key),
            destination,
            interval: self.interval,
            window: self.window,
            stale_after: self.stale_after,
            check: self.check,
            max_resends: self.max_resends,
            timeout: self.timeout,
        })
    }
}

impl ReconcileConfig {
    /// Only `[didit.reconcile]`, from the same layers as [`super::Config::load`], whether or
    /// not `enabled` (that switch is `serve`'s periodic job): for `riskhook reconcile`, which
    /// needs neither the webhook secret nor a listener.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::load_with_env(file, std::env::vars())
    }

    /// [`ReconcileConfig::load`] with an explicit environment.
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let raw: RawReconcile = section(file, &env, "didit.reconcile")?;
        raw.validate(&|name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str, env: &[(&str, &str)]) -> anyhow::Result<ReconcileConfig> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("riskhook.toml");
        std::fs::write(&path, toml).expect("write");
        ReconcileConfig::load_with_env(
            Some(&path),
            env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    fn error(result: anyhow::Result<ReconcileConfig>) -> String {
        format!("{:#}", result.expect_err("refused"))
    }

    #[test]
    fn defaults_need_a_destination_and_a_key() {
        let message = error(load("", &[]));
        assert!(message.contains("didit.reconcile.destination"), "{message}");
        let message = error(load("[didit.reconcile]\ndestination = \"d-1\"\n", &[]));
        assert!(message.contains("no API key"), "{message}");
        let config = load(
            "[didit.reconcile]\ndestination = \"d-1\"\napi_key_env = \"DIDIT_API_KEY\"\nbase_url = \"http://127.0.0.1:9\"\n",
            &[("DIDIT_API_KEY", "k-123")],
        )
        .expect("loads");
        assert_eq!(config.api_key.expose(), "k-123");
        assert_eq!(config.window, Duration::from_secs(48 * 3600));
        assert_eq!(config.check, Check::Failed);
        assert!(!format!("{config:?}").contains("k-123"));
    }

    #[test]
    fn the_key_comes_from_the_environment_layer_too() {
        let config = load(
            "[didit.reconcile]\ndestination = \"d-1\"\nbase_url = \"http://127.0.0.1:9\"\n",
            &[("RISKHOOK_DIDIT__RECONCILE__API_KEY", "k-env")],
        )
        .expect("loads");
        assert_eq!(config.api_key.expose(), "k-env");
    }

    #[test]
    fn bad_values_name_their_key() {
        let base = "[didit.reconcile]\ndestination = \"d-1\"\napi_key = \"k\"\nbase_url = \"http://127.0.0.1:9\"\n";
        for (extra, expected) in [
            ("window = \"0s\"\n", "didit.reconcile.window"),
            ("check = \"some\"\n", "didit.reconcile.check"),
            ("max_resends = 0\n", "didit.reconcile.max_resends"),
            ("colour = \"blue\"\n", "colour"),
        ] {
            let message = error(load(&format!("{base}{extra}"), &[]));
            assert!(message.contains(expected), "{extra}: {message}");
        }
        let message = error(load(
            "[didit.reconcile]\ndestination = \"../../x\"\napi_key = \"k\"\n",
            &[],
        ));
        assert!(message.contains("not a destination uuid"), "{message}");
        let message = error(load(
            "[didit.reconcile]\ndestination = \"d\"\napi_key = \"k\"\nbase_url = \"ftp://x\"\n",
            &[],
        ));
        assert!(message.contains("didit.reconcile.base_url"), "{message}");
    }
}

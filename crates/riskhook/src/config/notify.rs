//! `[notify]` and `[[notify.webhooks]]`: how patiently notifications are retried and the HTTP
//! endpoints they go to, validated into a [`NotifyConfig`]. A URL's credentials and a secret
//! never show in `Debug`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use super::{duration, parse_webhook_url, read_secret_file, redacted_url};
use crate::standard_webhooks::Signer;

/// Outbound notification settings: where `user.updated` notifications go and how patiently.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// Attempts before a delivery is `failed` (then only a manual retry sends it).
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles with every further failure.
    pub backoff_initial: Duration,
    /// The longest wait between attempts, also the cap on a receiver's `Retry-After`.
    pub backoff_max: Duration,
    /// How long a claimed delivery stays with this process: longer than `timeout`, so that
    /// an attempt in progress is never taken over and sent twice.
    pub lease: Duration,
    /// How often due deliveries are looked for.
    pub poll_interval: Duration,
    /// Per-attempt deadline (connect, send, response headers).
    pub timeout: Duration,
    /// Attempts in flight at once, across endpoints and users.
    pub concurrency: usize,
    /// The endpoints (URLs and secrets redacted in `Debug`).
    pub webhooks: Vec<Endpoint>,
}

/// One configured receiver of notifications: a `[[notify.webhooks]]` entry, parsed.
///
/// The dispatcher's HTTP sink sends with it as it is: id, URL and signer are all a POST needs,
/// so a second, runtime copy of this type would only copy fields. The secrets are held parsed
/// (a [`Signer`], from [`crate::standard_webhooks`], which sits below both this module and the
/// dispatcher) so that a malformed one stops the start rather than every attempt.
#[derive(Clone)]
pub struct Endpoint {
    /// Its id in the configuration: stored with each delivery and used as a metric label.
    pub id: String,
    /// Where notifications are POSTed.
    pub url: reqwest::Url,
    /// Its signing secrets.
    pub signer: Signer,
}

impl fmt::Debug for Endpoint {
    // A URL may carry credentials or a token in its user info or query: show only where it
    // points.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.id)
            .field("url", &redacted_url(&self.url))
            .field("signer", &self.signer)
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    max_attempts: u32,
    #[serde(deserialize_with = "duration")]
    backoff_initial: Duration,
    #[serde(deserialize_with = "duration")]
    backoff_max: Duration,
    #[serde(deserialize_with = "duration")]
    lease: Duration,
    #[serde(deserialize_with = "duration")]
    poll_interval: Duration,
    #[serde(deserialize_with = "duration")]
    timeout: Duration,
    concurrency: usize,
    #[serde(default)]
    webhooks: Vec<RawWebhook>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    id: String,
    url: String,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    secret_env: Option<String>,
}

impl RawNotify {
    pub(super) fn validate(
        self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<NotifyConfig> {
        if self.max_attempts == 0 {
            bail!("invalid configuration: notify.max_attempts must be at least 1");
        }
        for (key, value) in [
            ("backoff_initial", self.backoff_initial),
            ("poll_interval", self.poll_interval),
            ("timeout", self.timeout),
        ] {
            if value.is_zero() {
                bail!("invalid configuration: notify.{key} must be greater than zero");
            }
        }
        if self.backoff_max < self.backoff_initial {
            bail!(
                "invalid configuration: notify.backoff_max must not be shorter than notify.backoff_initial"
            );
        }
        if self.lease <= self.timeout {
            bail!(
                "invalid configuration: notify.lease must be longer than notify.timeout, or an attempt still in progress could be taken over and sent twice"
            );
        }
        if !(1..=1024).contains(&self.concurrency) {
            bail!("invalid configuration: notify.concurrency must be between 1 and 1024");
        }
        let mut webhooks: Vec<Endpoint> = Vec::new();
        for (i, raw) in self.webhooks.into_iter().enumerate() {
            let at = format!("notify.webhooks[{i}]");
            check_endpoint_id(&raw.id)
                .map_err(|why| anyhow::anyhow!("invalid configuration: {at}.id: {why}"))?;
            if webhooks.iter().any(|w| w.id == raw.id) {
                bail!("invalid configuration: {at}.id: `{}` is used twice", raw.id);
            }
            let url = parse_webhook_url(&raw.url)
                .map_err(|why| anyhow::anyhow!("invalid configuration: {at}.url: {why}"))?;
            let (key, text) = match (raw.secret, raw.secret_file, raw.secret_env) {
                (Some(s), None, None) => ("secret", s),
                (None, Some(path), None) => {
                    let key = format!("{at}.secret_file");
                    let secret = read_secret_file(&path, &key)?;
                    let text = String::from_utf8(secret.expose().to_vec())
                        .map_err(|_| anyhow::anyhow!("invalid configuration: {key}: not UTF-8"))?;
                    ("secret_file", text)
                }
                (None, None, Some(var)) => ("secret_env", env(&var).with_context(|| {
                    format!("invalid configuration: {at}.secret_env: environment variable {var} is not set")
                })?),
                _ => bail!(
                    "invalid configuration: {at}: give exactly one of secret, secret_file or secret_env"
                ),
            };
            let signer = Signer::parse(&text)
                .map_err(|e| anyhow::anyhow!("invalid configuration: {at}.{key}: {e}"))?;
            webhooks.push(Endpoint {
                id: raw.id,
                url,
                signer,
            });
        }
        Ok(NotifyConfig {
            max_attempts: self.max_attempts,
            backoff_initial: self.backoff_initial,
            backoff_max: self.backoff_max,
            lease: self.lease,
            poll_interval: self.poll_interval,
            timeout: self.timeout,
            concurrency: self.concurrency,
            webhooks,
        })
    }
}

/// An endpoint id (a webhook's, or the NATS sink's: one namespace) is a metric label and a
/// database key: keep it short and plain.
pub(super) fn check_endpoint_id(id: &str) -> Result<(), String> {
    let plain = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if id.is_empty() || id.len() > 64 || !plain {
        return Err(format!(
            "`{id}` must be 1 to 64 letters, digits, `-`, `_` or `.`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_debug_hides_url_credentials_and_the_secret() {
        let endpoint = Endpoint {
            id: "crm".to_owned(),
            url: reqwest::Url::parse("https://bob:pa55@hooks.example:8443/in?token=t0k3n#x")
                .expect("url"),
            signer: Signer::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret"),
        };
        let text = format!("{endpoint:?}");
        assert!(text.contains("https://hooks.example:8443/in"), "{text}");
        for hidden in ["pa55", "bob", "t0k3n", "MfKQ9r8G"] {
            assert!(!text.contains(hidden), "{hidden} in {text}");
        }
    }
}

//! `[nats]`: the NATS JetStream sink's servers, subjects, stream and credentials, validated into
//! a [`NatsConfig`] (or `None` when `nats.url` is unset). User info in the URL becomes
//! credentials here, so no server address holds a password; credentials never show in `Debug`.
//!
//! The subject-prefix and stream-name rules live here, not with the sink, because they are
//! what makes a `[nats]` section valid: the sink only ever sees values that passed them.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use super::notify::check_endpoint_id;
use super::{NotifyConfig, duration, redacted_url};

/// The NATS JetStream sink: one more notification endpoint, whose deliveries are published to
/// a stream instead of POSTed.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// The servers to connect to (user info redacted in `Debug`).
    pub servers: NatsServers,
    /// Subjects are `<subject_prefix>.<encoded user id>`.
    pub subject_prefix: String,
    /// The stream, created when missing with subjects `<subject_prefix>.>`.
    pub stream: String,
    /// The duplicate window of a stream riskhook creates: a re-publish of the same message
    /// within it is stored once.
    pub duplicate_window: Duration,
    /// How to authenticate.
    pub auth: NatsAuth,
    /// The endpoint id of the sink (endpoints table, metrics, `/v1/deliveries`).
    pub endpoint_id: String,
}

/// NATS server URLs. User info given in `nats.url` is moved to [`NatsAuth::UserPassword`] at
/// validation, so these never hold a password (the client logs them at debug level).
#[derive(Clone)]
pub struct NatsServers(Vec<async_nats::ServerAddr>);

impl NatsServers {
    /// The addresses, for connecting.
    pub fn addrs(&self) -> &[async_nats::ServerAddr] {
        &self.0
    }
}

impl fmt::Debug for NatsServers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self
            .0
            .iter()
            .map(|a| {
                let url = a.clone().into_inner();
                redacted_url(&url)
            })
            .collect();
        f.debug_tuple("NatsServers").field(&shown).finish()
    }
}

/// How riskhook authenticates to NATS. The token and the credentials never appear in `Debug`.
#[derive(Clone)]
pub enum NatsAuth {
    /// No credentials.
    None,
    /// User and password, taken out of `nats.url` (`nats://user:password@host`).
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// A token, read from the environment variable named by `nats.token_env`.
    Token(String),
    /// A `.creds` file (JWT and NKey seed), read when connecting.
    CredentialsFile(PathBuf),
}

impl fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NatsAuth::None => f.write_str("None"),
            NatsAuth::UserPassword { .. } => f.write_str("UserPassword(***)"),
            NatsAuth::Token(_) => f.write_str("Token(***)"),
            NatsAuth::CredentialsFile(path) => {
                f.debug_tuple("CredentialsFile").field(path).finish()
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNats {
    url: Option<String>,
    subject_prefix: String,
    stream: String,
    #[serde(deserialize_with = "duration")]
    duplicate_window: Duration,
    token_env: Option<String>,
    credentials_file: Option<PathBuf>,
    endpoint_id: String,
}

impl RawNats {
    pub(super) fn validate(
        self,
        env: &dyn Fn(&str) -> Option<String>,
        notify: &NotifyConfig,
    ) -> anyhow::Result<Option<NatsConfig>> {
        let Some(url) = self.url.filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let mut servers = Vec::new();
        let mut user_password: Option<(String, String)> = None;
        for one in url.split(',').map(str::trim) {
            let parsed = reqwest::Url::parse(one)
                .ok()
                .filter(|u| matches!(u.scheme(), "nats" | "tls") && u.host_str().is_some());
            let Some(mut parsed) = parsed else {
                // Not the text itself: it may hold a password.
                bail!(
                    "invalid configuration: nats.url: expected nats://HOST:PORT or tls://HOST:PORT, comma-separated for a cluster"
                );
            };
            if !parsed.username().is_empty() || parsed.password().is_some() {
                // The client ignores user info in a URL (and logs URLs at debug level): pass
                // it as credentials instead, and keep it out of the address.
                let pair = percent_decode(parsed.username())
                    .zip(percent_decode(parsed.password().unwrap_or_default()))
                    .context(
                        "invalid configuration: nats.url: the user or password is not UTF-8",
                    )?;
                if user_password.as_ref().is_some_and(|known| *known != pair) {
                    bail!(
                        "invalid configuration: nats.url: every server must have the same user and password"
                    );
                }
                user_password = Some(pair);
                let _ = parsed.set_username("");
                let _ = parsed.set_password(None);
            }
            let addr = async_nats::ServerAddr::from_url(parsed).map_err(|_| {
                anyhow::anyhow!("invalid configuration: nats.url: not a NATS server URL")
            })?;
            servers.push(addr);
        }
        check_subject_prefix(&self.subject_prefix)
            .map_err(|why| anyhow::anyhow!("invalid configuration: nats.subject_prefix: {why}"))?;
        check_stream_name(&self.stream)
            .map_err(|why| anyhow::anyhow!("invalid configuration: nats.stream: {why}"))?;
        if self.duplicate_window <= notify.lease {
            bail!(
                "invalid configuration: nats.duplicate_window must be longer than notify.lease, or a message re-published after a lease ended could be stored twice"
            );
        }
        check_endpoint_id(&self.endpoint_id)
            .map_err(|why| anyhow::anyhow!("invalid configuration: nats.endpoint_id: {why}"))?;
        if notify.webhooks.iter().any(|w| w.id == self.endpoint_id) {
            bail!(
                "invalid configuration: nats.endpoint_id: `{}` is also the id of a notify.webhooks endpoint",
                self.endpoint_id
            );
        }
        let auth = match (self.token_env, self.credentials_file, user_password) {
            (None, None, None) => NatsAuth::None,
            (None, None, Some((user, password))) => NatsAuth::UserPassword { user, password },
            (Some(var), None, None) => NatsAuth::Token(env(&var).with_context(|| {
                format!(
                    "invalid configuration: nats.token_env: environment variable {var} is not set"
                )
            })?),
            (None, Some(path), None) => {
                if !path.is_file() {
                    bail!(
                        "invalid configuration: nats.credentials_file: {} is not a file",
                        path.display()
                    );
                }
                NatsAuth::CredentialsFile(path)
            }
            _ => bail!(
                "invalid configuration: nats: give at most one of a user and password in nats.url, nats.token_env or nats.credentials_file"
            ),
        };
        Ok(Some(NatsConfig {
            servers: NatsServers(servers),
            subject_prefix: self.subject_prefix,
            stream: self.stream,
            duplicate_window: self.duplicate_window,
            auth,
            endpoint_id: self.endpoint_id,
        }))
    }
}

/// `%XX` escapes decoded (as in a URL's user info); `None` when the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.bytes();
    while let Some(byte) = rest.next() {
        if byte == b'%' {
            let mut hex = rest.clone();
            let decoded = hex
                .next()
                .zip(hex.next())
                .and_then(|(h, l)| u8::from_str_radix(std::str::from_utf8(&[h, l]).ok()?, 16).ok());
            if let Some(decoded) = decoded {
                bytes.push(decoded);
                rest = hex;
                continue;
            }
        }
        bytes.push(byte);
    }
    String::from_utf8(bytes).ok()
}

/// A subject prefix is one or more `.`-separated tokens of visible ASCII, without the
/// wildcards `*` and `>`.
fn check_subject_prefix(prefix: &str) -> Result<(), String> {
    let plain_token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'*' && b != b'>' && b != b'.')
    };
    if prefix.len() > 128 || !prefix.split('.').all(plain_token) {
        return Err(format!(
            "`{prefix}` must be 1 to 128 characters of `.`-separated tokens of visible ASCII, without `*`, `>` or empty tokens"
        ));
    }
    Ok(())
}

/// A stream name riskhook accepts: 1 to 64 ASCII letters, digits, `_` or `-`.
fn check_stream_name(name: &str) -> Result<(), String> {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    if name.is_empty() || name.len() > 64 || !name.bytes().all(plain) {
        return Err(format!(
            "`{name}` must be 1 to 64 letters, digits, `_` or `-`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_stream_names_are_checked() {
        for ok in ["riskhook.decisions", "a", "tenant-1.risk_hook"] {
            assert!(check_subject_prefix(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".a", "a.", "a..b", "a.*", "a.>", "a b", "ä"] {
            assert!(check_subject_prefix(bad).is_err(), "{bad:?}");
        }
        assert!(check_stream_name("RISKHOOK_DECISIONS").is_ok());
        for bad in ["", "A.B", "A B", "A*", "A>", "A/B"] {
            assert!(check_stream_name(bad).is_err(), "{bad:?}");
        }
    }
}

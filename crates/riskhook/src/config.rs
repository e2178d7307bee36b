//! Configuration: layered (compiled-in defaults, `--config` file, `RISKHOOK_*` environment),
//! then validated once at start into a [`Config`] whose every value is already parsed.
//!
//! Secrets come from the environment or a file, never from a flag, and no type here prints one in
//! its `Debug`.
//!
//! This file owns what concerns the whole configuration: the layers, the top-level keys and
//! their validation, `show`, and the helpers every section shares (durations, webhook URLs,
//! secret files, redaction). Each larger section is a submodule with its raw (as written) and
//! validated types: `didit`, `reconcile` (`[didit.reconcile]`), `notify`, `nats`, `audit`, `ui`.
//! API keys are parsed here but are [`crate::auth`]'s type.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Format, Toml};
use riskhook_didit::signature::Secret;
use riskhook_store::Role;
use serde::{Deserialize, Deserializer};

use crate::auth::{ApiKey, ApiKeyHash, ApiKeys};

mod audit;
mod didit;
mod nats;
mod notify;
mod reconcile;
mod ui;

pub use audit::AuditConfig;
pub use didit::DiditConfig;
pub use nats::{NatsAuth, NatsConfig, NatsServers};
pub use notify::{Endpoint, NotifyConfig};
pub use reconcile::{Check, DiditApiKey, ReconcileConfig};
pub use ui::{SecureCookie, UiConfig};

/// The compiled-in defaults, which double as the configuration reference.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Top-level keys: the environment may only set these (and their children), so unrelated
/// `RISKHOOK_*` variables of a test harness are not mistaken for typos.
const TOP_LEVEL_KEYS: &[&str] = &[
    "listen",
    "database_url",
    "database_max_connections",
    "log_format",
    "log_filter",
    "request_timeout",
    "shutdown_timeout",
    "header_read_timeout",
    "idle_timeout",
    "max_connections",
    "didit",
    "policy",
    "api_keys",
    "review",
    "notify",
    "nats",
    "audit",
    "ui",
];

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP server listens.
    pub listen: SocketAddr,
    /// The database URL (may hold a password: redacted in `Debug`).
    pub database_url: DatabaseUrl,
    /// The PostgreSQL connection pool's size (SQLite has one writer and a fixed read pool).
    pub database_max_connections: u32,
    /// Log output format.
    pub log_format: LogFormat,
    /// Default tracing filter.
    pub log_filter: String,
    /// Per-request deadline.
    pub request_timeout: Duration,
    /// Grace period for in-flight requests on shutdown.
    pub shutdown_timeout: Duration,
    /// Connection timeouts and limit: see [`crate::server`].
    pub http: crate::server::Limits,
    /// Didit intake.
    pub didit: DiditConfig,
    /// The policy file, or `None` for the built-in default policy.
    pub policy_path: Option<PathBuf>,
    /// Shadow policies, evaluated beside the policy in force and stored for comparison.
    pub policy_shadows: Vec<crate::policy::ShadowSpec>,
    /// API keys for `/v1` (hashes only).
    pub api_keys: ApiKeys,
    /// Manual review.
    pub review: ReviewConfig,
    /// Outbound notifications (Standard Webhooks).
    pub notify: NotifyConfig,
    /// Notifications published to NATS JetStream, or `None` when `nats.url` is unset.
    pub nats: Option<NatsConfig>,
    /// The audit chain's key and checkpoints.
    pub audit: AuditConfig,
    /// The review workbench (`/ui`).
    pub ui: UiConfig,
}

/// Manual review settings.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewConfig {
    /// Lifting a freeze (a manual unfreeze, or a case resolved to approve or unfreeze a frozen
    /// user) needs a second key's approval.
    pub four_eyes: bool,
}

/// A database URL whose password never reaches a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL itself, for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // scheme://user:password@host → scheme://user:***@host
        let redacted = match (self.0.find("://"), self.0.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let userinfo = &self.0[scheme + 3..at];
                match userinfo.find(':') {
                    Some(colon) => format!(
                        "{}{}:***{}",
                        &self.0[..scheme + 3],
                        &userinfo[..colon],
                        &self.0[at..]
                    ),
                    None => self.0.clone(),
                }
            }
            _ => self.0.clone(),
        };
        f.debug_tuple("DatabaseUrl").field(&redacted).finish()
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The configuration as written: every layer merged, nothing validated yet.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: String,
    database_url: String,
    database_max_connections: u32,
    log_format: LogFormat,
    log_filter: String,
    #[serde(deserialize_with = "duration")]
    request_timeout: Duration,
    #[serde(deserialize_with = "duration")]
    shutdown_timeout: Duration,
    #[serde(deserialize_with = "duration")]
    header_read_timeout: Duration,
    #[serde(deserialize_with = "duration")]
    idle_timeout: Duration,
    max_connections: usize,
    didit: didit::RawDidit,
    #[serde(default)]
    policy: RawPolicy,
    #[serde(default)]
    api_keys: Vec<RawApiKey>,
    #[serde(default)]
    review: ReviewConfig,
    notify: notify::RawNotify,
    nats: nats::RawNats,
    audit: audit::RawAudit,
    ui: UiConfig,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    path: Option<PathBuf>,
    #[serde(default)]
    shadow: Vec<RawShadow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShadow {
    id: String,
    path: PathBuf,
}

impl RawPolicy {
    fn shadows(&self) -> anyhow::Result<Vec<crate::policy::ShadowSpec>> {
        let mut specs: Vec<crate::policy::ShadowSpec> = Vec::new();
        for (i, raw) in self.shadow.iter().enumerate() {
            let at = format!("policy.shadow[{i}]");
            let id = raw.id.trim();
            if id.is_empty()
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                bail!(
                    "invalid configuration: {at}.id: `{id}` must be letters, digits, `-`, `_` or `.`"
                );
            }
            if specs.iter().any(|s| s.id == id) {
                bail!("invalid configuration: {at}.id: `{id}` is used twice");
            }
            specs.push(crate::policy::ShadowSpec {
                id: id.to_owned(),
                path: raw.path.clone(),
            });
        }
        Ok(specs)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApiKey {
    id: String,
    /// The person behind the key; the id stands for them when absent.
    principal: Option<String>,
    role: Role,
    hash: String,
}

/// Accepts `"300s"`, `"5m"`, `"1h 30m"` or a plain number of seconds.
fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Text(String),
    }
    match Raw::deserialize(deserializer)? {
        Raw::Seconds(s) => Ok(Duration::from_secs(s)),
        Raw::Text(t) => humantime::parse_duration(t.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{t}` is not a duration ({e}); write e.g. \"300s\" or \"5m\""
            ))
        }),
    }
}

impl Config {
    /// Loads the layers (defaults, `file`, the process environment) and validates the result.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::load_with_env(file, std::env::vars())
    }

    /// [`Config::load`] with an explicit environment, so tests need not touch the process's.
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let raw: RawConfig = layers(file, &env)?
            .extract()
            .map_err(|e| anyhow::anyhow!(describe_figment_error(&e)))?;
        raw.validate(&|name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()))
    }
}

/// The effective configuration, every layer merged, as TOML with every secret masked: what
/// `serve` would run with (it is validated first, so an invalid configuration is refused here
/// with the same message as at start).
pub fn show(file: Option<&Path>) -> anyhow::Result<String> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    Config::load_with_env(file, env.clone())?;
    let mut value: toml::Table = layers(file, &env)?
        .extract()
        .map_err(|e| anyhow::anyhow!(describe_figment_error(&e)))?;
    mask_table(&mut value);
    Ok(toml::to_string_pretty(&value)?)
}

/// Keys whose values are secrets: replaced by `***`. (`*_file` and `*_env` name where a secret
/// is, not the secret, and stay; API key hashes are not secrets.)
const SECRET_KEYS: &[&str] = &["secret", "key", "password", "token", "api_key"];

fn mask_table(table: &mut toml::Table) {
    for (name, value) in table.iter_mut() {
        if SECRET_KEYS.contains(&name.as_str()) {
            *value = toml::Value::String("***".to_owned());
            continue;
        }
        mask_value(value);
    }
}

fn mask_value(value: &mut toml::Value) {
    match value {
        toml::Value::Table(t) => mask_table(t),
        toml::Value::Array(items) => items.iter_mut().for_each(mask_value),
        // A URL's password (`scheme://user:password@host`).
        toml::Value::String(s) => *s = mask_url_password(s),
        _ => {}
    }
}

fn mask_url_password(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => rest.to_owned(),
        },
        None => rest.to_owned(),
    };
    // A password can ride in the query too (`?password=…`, libpq's `sslpassword=…`).
    let query = query.map(|query| {
        query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _))
                    if ["password", "secret", "token", "key"]
                        .iter()
                        .any(|s| name.to_ascii_lowercase().contains(s)) =>
                {
                    format!("{name}=***")
                }
                _ => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    match query {
        Some(query) => format!("{scheme}://{rest}?{query}"),
        None => format!("{scheme}://{rest}"),
    }
}

/// `scheme://host[:port]/path`: the URL without user info, query or fragment. What the `Debug`
/// of a configured URL shows (a webhook endpoint's, a NATS server's): they may carry
/// credentials or a token.
fn redacted_url(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{}://{host}:{port}{}", url.scheme(), url.path()),
        None => format!("{}://{host}{}", url.scheme(), url.path()),
    }
}

/// Where a command that reads the service's data finds it: the database URL and the policy in
/// force, from the same layers as [`Config::load`] (for `riskhook policy backtest`, which needs
/// neither a Didit secret nor a listener).
#[derive(Debug, Clone)]
pub struct DataSources {
    /// The database URL.
    pub database_url: DatabaseUrl,
    /// The policy file, or `None` for the built-in default.
    pub policy_path: Option<PathBuf>,
}

impl DataSources {
    /// Reads `database_url` and `policy.path` from the layers.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let database_url: String = section(file, &env, "database_url")?;
        let policy: RawPolicy = section(file, &env, "policy")?;
        Ok(Self {
            database_url: DatabaseUrl::new(database_url.trim()),
            policy_path: policy.path,
        })
    }
}

/// One key or section of the merged layers (`audit`, `didit.reconcile`): what a command needs
/// without the rest of the configuration being complete (a Didit secret, say).
fn section<T: serde::de::DeserializeOwned>(
    file: Option<&Path>,
    env: &[(String, String)],
    key: &str,
) -> anyhow::Result<T> {
    layers(file, env)?
        .extract_inner(key)
        .map_err(|e| anyhow::anyhow!(describe_figment_error_in(&e, key)))
}

/// Every layer merged: defaults, `file`, then the `RISKHOOK_*` variables of `env`.
fn layers(file: Option<&Path>, env: &[(String, String)]) -> anyhow::Result<Figment> {
    let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
    if let Some(file) = file {
        if !file.is_file() {
            bail!("configuration file {} does not exist", file.display());
        }
        figment = figment.merge(Toml::file(file));
    }
    let overrides: Vec<(String, String)> = env
        .iter()
        .filter_map(|(name, value)| Some((env_key(name)?, value.clone())))
        .collect();
    for (key, value) in &overrides {
        // Values are TOML-ish like figment's Env provider: numbers and booleans typed,
        // everything else a string. A secret stays a string whatever it looks like.
        let value = if key == "audit.key" {
            figment::value::Value::from(value.clone())
        } else {
            env_value(value)
        };
        figment = figment.merge((key.as_str(), value));
    }
    Ok(figment)
}

/// `RISKHOOK_DIDIT__TOLERANCE` → `didit.tolerance`; the two documented shortcuts for the secret.
fn env_key(name: &str) -> Option<String> {
    let rest = name.strip_prefix("RISKHOOK_")?.to_ascii_lowercase();
    let key = match rest.as_str() {
        "didit_secret" => "didit.secret".to_owned(),
        "didit_secret_file" => "didit.secret_file".to_owned(),
        other => other.replace("__", "."),
    };
    let top = key.split('.').next().unwrap_or_default();
    TOP_LEVEL_KEYS.contains(&top).then_some(key)
}

fn env_value(value: &str) -> figment::value::Value {
    use figment::value::Value;
    if let Ok(n) = value.parse::<u64>() {
        return Value::from(n);
    }
    match value {
        "true" => Value::from(true),
        "false" => Value::from(false),
        other => Value::from(other.to_owned()),
    }
}

fn describe_figment_error(error: &figment::Error) -> String {
    describe_figment_error_in(error, "")
}

/// [`describe_figment_error`] for an error of `extract_inner(outer)`, whose paths figment gives
/// as the path inside `outer` followed by `outer`'s segments: they are put back in the order the
/// file spells them (`didit.reconcile.check`).
fn describe_figment_error_in(error: &figment::Error, outer: &str) -> String {
    let outer: Vec<String> = outer
        .split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let mut out = String::from("invalid configuration");
    for mut e in error.clone() {
        if !outer.is_empty() && e.path.len() > outer.len() && e.path.ends_with(&outer) {
            let inner = e.path.len() - outer.len();
            e.path.rotate_left(inner);
        }
        let key = if e.path.is_empty() {
            "(top level)".to_owned()
        } else {
            e.path.join(".")
        };
        out.push_str(&format!("\n  - {key}: {}", e.kind));
    }
    out
}

impl RawConfig {
    fn validate(self, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Config> {
        let listen: SocketAddr = self.listen.parse().with_context(|| {
            format!(
                "invalid configuration: listen: `{}` is not an address and port such as 127.0.0.1:8080",
                self.listen
            )
        })?;
        let database_url = self.database_url.trim().to_owned();
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| database_url.starts_with(scheme))
        {
            bail!(
                "invalid configuration: database_url: unsupported scheme in `{}`; use sqlite://FILE, sqlite::memory: or postgres://USER@HOST:PORT/DATABASE",
                scheme_of(&database_url)
            );
        }
        if self.database_max_connections == 0 {
            bail!("invalid configuration: database_max_connections must be at least 1");
        }
        for (key, value) in [
            ("request_timeout", self.request_timeout),
            ("header_read_timeout", self.header_read_timeout),
            ("idle_timeout", self.idle_timeout),
        ] {
            if value.is_zero() {
                bail!("invalid configuration: {key} must be greater than zero");
            }
        }
        // Each connection is a file descriptor; the cap keeps the semaphore's u32 arithmetic
        // and the process's descriptor table in sight.
        if !(1..=65_536).contains(&self.max_connections) {
            bail!("invalid configuration: max_connections must be between 1 and 65536");
        }
        let didit = self.didit.validate(env)?;
        let notify = self.notify.validate(env)?;
        let nats = self.nats.validate(env, &notify)?;
        let mut api_keys = Vec::new();
        for (i, raw) in self.api_keys.into_iter().enumerate() {
            let at = format!("api_keys[{i}]");
            if raw.id.trim().is_empty() {
                bail!("invalid configuration: {at}.id must not be empty");
            }
            // Key ids and principals are recorded as the actor of every command, logged and
            // compared for four eyes; PostgreSQL cannot even store U+0000.
            let controls = |text: &str| text.chars().any(char::is_control);
            if controls(&raw.id) || raw.principal.as_deref().is_some_and(controls) {
                bail!(
                    "invalid configuration: {at}: the id and the principal must not contain control characters"
                );
            }
            if api_keys.iter().any(|k: &ApiKey| k.id == raw.id) {
                bail!("invalid configuration: {at}.id: `{}` is used twice", raw.id);
            }
            let hash = ApiKeyHash::parse(&raw.hash).with_context(|| {
                format!("invalid configuration: {at}.hash: expected sha256:<64 hex characters> (see `riskhook keys generate`)")
            })?;
            let principal = match raw.principal {
                Some(p) if p.trim().is_empty() => {
                    bail!("invalid configuration: {at}.principal must not be empty")
                }
                Some(p) => p.trim().to_owned(),
                None => raw.id.clone(),
            };
            api_keys.push(ApiKey::new(raw.id, principal, raw.role, hash));
        }
        Ok(Config {
            listen,
            database_url: DatabaseUrl::new(database_url),
            database_max_connections: self.database_max_connections,
            log_format: self.log_format,
            log_filter: self.log_filter,
            request_timeout: self.request_timeout,
            shutdown_timeout: self.shutdown_timeout,
            http: crate::server::Limits {
                header_read_timeout: self.header_read_timeout,
                idle_timeout: self.idle_timeout,
                max_connections: self.max_connections,
            },
            didit,
            policy_shadows: self.policy.shadows()?,
            policy_path: self.policy.path,
            api_keys: ApiKeys::new(api_keys),
            review: self.review,
            notify,
            nats,
            audit: self.audit.validate()?,
            ui: ui::validate_ui(self.ui)?,
        })
    }
}

fn scheme_of(url: &str) -> &str {
    url.split(':').next().unwrap_or(url)
}

/// An absolute `http` or `https` URL with a host. HTTPS needs the `tls` cargo feature: without
/// it the client cannot speak TLS, and saying so at start beats failing every attempt.
fn parse_webhook_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text.trim()).map_err(|e| format!("not an absolute URL ({e})"))?;
    match url.scheme() {
        "http" => {}
        "https" if cfg!(feature = "tls") => {}
        "https" => {
            return Err(
                "https needs a build with the `tls` feature (cargo build --features tls)"
                    .to_owned(),
            );
        }
        other => return Err(format!("scheme `{other}` is not http or https")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".to_owned());
    }
    Ok(url)
}

/// Reads a secret file, dropping the trailing newline editors and `echo` add: the secret itself
/// never ends in whitespace (Didit's are URL-safe tokens).
pub fn secret_from_file(path: &Path) -> anyhow::Result<Secret> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the secret file {}", path.display()))?;
    Ok(Secret::new(text.trim_end_matches(['\n', '\r']).to_owned()))
}

fn read_secret_file(path: &Path, key: &str) -> anyhow::Result<Secret> {
    secret_from_file(path).with_context(|| format!("invalid configuration: {key}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::api_key_hash;

    fn load(env: &[(&str, &str)]) -> anyhow::Result<Config> {
        Config::load_with_env(
            None,
            env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    fn load_file(toml: &str, env: &[(&str, &str)]) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("riskhook.toml");
        std::fs::write(&path, toml).expect("write");
        Config::load_with_env(
            Some(&path),
            env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    fn error(result: anyhow::Result<Config>) -> String {
        format!("{:#}", result.expect_err("must fail"))
    }

    #[test]
    fn defaults_need_only_a_secret() {
        let config = load(&[("RISKHOOK_DIDIT_SECRET", "s3cret")]).expect("loads");
        assert_eq!(config.listen, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(config.database_url.expose(), "sqlite://riskhook.db");
        assert_eq!(config.didit.tolerance, Duration::from_secs(300));
        assert_eq!(config.didit.keyring.keys()[0].id(), "default");
        assert!(!config.didit.allow_simple_signature);
        assert_eq!(
            config.http,
            crate::server::Limits {
                header_read_timeout: Duration::from_secs(10),
                idle_timeout: Duration::from_secs(30),
                max_connections: 256,
            }
        );
    }

    #[test]
    fn connection_limits_come_from_the_environment() {
        let config = load(&[
            ("RISKHOOK_DIDIT_SECRET", "s"),
            ("RISKHOOK_HEADER_READ_TIMEOUT", "500ms"),
            ("RISKHOOK_IDLE_TIMEOUT", "2s"),
            ("RISKHOOK_MAX_CONNECTIONS", "3"),
        ])
        .expect("loads");
        assert_eq!(config.http.header_read_timeout, Duration::from_millis(500));
        assert_eq!(config.http.idle_timeout, Duration::from_secs(2));
        assert_eq!(config.http.max_connections, 3);
    }

    #[test]
    fn no_secret_is_refused_with_a_hint() {
        assert!(error(load(&[])).contains("RISKHOOK_DIDIT_SECRET"));
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        let config = load_file(
            "listen = \"0.0.0.0:9000\"\n[didit]\ntolerance = \"10m\"\nsecret = \"from-file\"\n",
            &[
                ("RISKHOOK_LISTEN", "127.0.0.1:0"),
                ("RISKHOOK_DIDIT__MAX_BODY_BYTES", "2048"),
                ("RISKHOOK_TEST_SOMETHING_ELSE", "ignored"),
            ],
        )
        .expect("loads");
        assert_eq!(config.listen.port(), 0);
        assert_eq!(config.didit.tolerance, Duration::from_secs(600));
        assert_eq!(config.didit.max_body_bytes, 2048);
    }

    #[test]
    fn invalid_values_name_their_key() {
        let secret = ("RISKHOOK_DIDIT_SECRET", "s");
        let cases: [(&[(&str, &str)], &str); 12] = [
            (&[secret, ("RISKHOOK_LISTEN", "nowhere")], "listen"),
            (
                &[secret, ("RISKHOOK_DIDIT__TOLERANCE", "soon")],
                "didit.tolerance",
            ),
            (
                &[secret, ("RISKHOOK_DIDIT__PATH", "webhooks")],
                "didit.path",
            ),
            (
                &[secret, ("RISKHOOK_DATABASE_URL", "mysql://x")],
                "database_url",
            ),
            (
                &[secret, ("RISKHOOK_DATABASE_MAX_CONNECTIONS", "0")],
                "database_max_connections",
            ),
            (&[secret, ("RISKHOOK_LOG_FORMAT", "xml")], "log_format"),
            (
                &[secret, ("RISKHOOK_HEADER_READ_TIMEOUT", "0s")],
                "header_read_timeout",
            ),
            (&[secret, ("RISKHOOK_IDLE_TIMEOUT", "0")], "idle_timeout"),
            (
                &[secret, ("RISKHOOK_MAX_CONNECTIONS", "0")],
                "max_connections",
            ),
            (
                &[secret, ("RISKHOOK_UI__SESSION_IDLE", "5s")],
                "ui.session_idle",
            ),
            (
                &[secret, ("RISKHOOK_UI__SESSION_IDLE", "30days")],
                "ui.session_idle",
            ),
            (
                &[secret, ("RISKHOOK_UI__SECURE_COOKIE", "sometimes")],
                "secure_cookie",
            ),
        ];
        for (env, key) in cases {
            let message = error(load(env));
            assert!(message.contains(key), "{key}: {message}");
        }
        let typo = error(load_file("[didit]\ntolerence = \"1m\"\n", &[secret]));
        assert!(typo.contains("tolerence"), "{typo}");
    }

    #[test]
    fn a_keyring_comes_from_secret_env_and_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("old");
        std::fs::write(&file, "old-secret\n").expect("write");
        let toml = format!(
            "[[didit.keys]]\nid = \"new\"\nsecret_env = \"NEW_SECRET\"\n\n[[didit.keys]]\nid = \"old\"\nsecret_file = \"{}\"\nnot_after = \"2030-01-01T00:00:00Z\"\n",
            file.display()
        );
        let config = load_file(&toml, &[("NEW_SECRET", "new-secret")]).expect("loads");
        let keys = config.didit.keyring.keys();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1].not_after(), Some(1_893_456_000));
        let missing = error(load_file(&toml, &[]));
        assert!(missing.contains("didit.keys[0].secret_env"), "{missing}");
        let both = error(load_file(
            "[[didit.keys]]\nid = \"a\"\nsecret = \"x\"\nsecret_env = \"Y\"\n",
            &[],
        ));
        assert!(both.contains("didit.keys[0]"), "{both}");
    }

    #[test]
    fn api_keys_are_configured_by_hash_and_authenticate_in_constant_time() {
        let hash = api_key_hash("rk_secret");
        let config = load_file(
            &format!("[[api_keys]]\nid = \"ops\"\nrole = \"admin\"\nhash = \"{hash}\"\n"),
            &[("RISKHOOK_DIDIT_SECRET", "s")],
        )
        .expect("loads");
        let key = config.api_keys.authenticate("rk_secret").expect("matches");
        assert_eq!((key.id.as_str(), key.role), ("ops", Role::Admin));
        assert!(config.api_keys.authenticate("rk_other").is_none());
        assert!(!format!("{config:?}").contains(&hash[7..]));
        let bad = error(load_file(
            "[[api_keys]]\nid = \"ops\"\nrole = \"read\"\nhash = \"plain\"\n",
            &[("RISKHOOK_DIDIT_SECRET", "s")],
        ));
        assert!(bad.contains("api_keys[0].hash"), "{bad}");
        let role = error(load_file(
            "[[api_keys]]\nid = \"ops\"\nrole = \"root\"\nhash = \"plain\"\n",
            &[("RISKHOOK_DIDIT_SECRET", "s")],
        ));
        assert!(role.contains("role"), "{role}");
        for (id, principal) in [("ops\\u0000", "alice"), ("ops", "alice\\nINFO forged")] {
            let bad = error(load_file(
                &format!(
                    "[[api_keys]]\nid = \"{id}\"\nprincipal = \"{principal}\"\nrole = \"admin\"\nhash = \"{hash}\"\n"
                ),
                &[("RISKHOOK_DIDIT_SECRET", "s")],
            ));
            assert!(
                bad.contains(
                    "api_keys[0]: the id and the principal must not contain control characters"
                ),
                "{bad}"
            );
        }
    }

    const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn notify_has_defaults_and_takes_webhooks_from_each_secret_source() {
        let secret = ("RISKHOOK_DIDIT_SECRET", "s");
        let config = load(&[secret]).expect("loads");
        let notify = &config.notify;
        assert_eq!(notify.max_attempts, 16);
        assert_eq!(notify.backoff_initial, Duration::from_secs(5));
        assert_eq!(notify.backoff_max, Duration::from_secs(6 * 3600));
        assert_eq!(notify.lease, Duration::from_secs(60));
        assert_eq!(notify.poll_interval, Duration::from_secs(1));
        assert_eq!(notify.timeout, Duration::from_secs(15));
        assert_eq!(notify.concurrency, 16);
        assert!(notify.webhooks.is_empty());

        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("whsec");
        std::fs::write(&file, format!("{WHSEC}\n")).expect("write");
        let toml = format!(
            "[notify]\nmax_attempts = 3\n\n[[notify.webhooks]]\nid = \"crm\"\nurl = \"http://crm.internal:8080/in?token=t0k3n\"\nsecret = \"{WHSEC}\"\n\n[[notify.webhooks]]\nid = \"ops.v2\"\nurl = \"http://ops\"\nsecret_file = \"{}\"\n\n[[notify.webhooks]]\nid = \"bi_2\"\nurl = \"http://bi\"\nsecret_env = \"BI_SECRET\"\n",
            file.display()
        );
        let rotation = format!("{WHSEC} whsec_dGVzdC1zZWNyZXQtZm9yLXJpc2tob29rLW5vdGlmeQ==");
        let config = load_file(
            &toml,
            &[
                secret,
                ("BI_SECRET", &rotation),
                ("RISKHOOK_NOTIFY__POLL_INTERVAL", "250ms"),
            ],
        )
        .expect("loads");
        let notify = &config.notify;
        assert_eq!(notify.max_attempts, 3);
        assert_eq!(notify.poll_interval, Duration::from_millis(250));
        let ids: Vec<&str> = notify.webhooks.iter().map(|w| w.id.as_str()).collect();
        assert_eq!(ids, ["crm", "ops.v2", "bi_2"]);
        assert_eq!(notify.webhooks[2].signer.len(), 2);
        let text = format!("{config:?}");
        for hidden in ["MfKQ9r8G", "t0k3n", "dGVzdC1z"] {
            assert!(!text.contains(hidden), "{hidden} in {text}");
        }
        assert!(text.contains("http://crm.internal:8080/in"), "{text}");
    }

    #[test]
    fn invalid_notify_settings_name_their_key() {
        let secret = ("RISKHOOK_DIDIT_SECRET", "s");
        let hook = |body: &str| format!("[[notify.webhooks]]\n{body}\n");
        let ok_url = "url = \"http://x/in\"";
        let ok_secret = format!("secret = \"{WHSEC}\"");
        let cases: Vec<(String, &str)> = vec![
            (
                "[notify]\nmax_attempts = 0\n".to_owned(),
                "notify.max_attempts",
            ),
            ("[notify]\ntimeout = \"0s\"\n".to_owned(), "notify.timeout"),
            (
                "[notify]\npoll_interval = \"never\"\n".to_owned(),
                "notify.poll_interval",
            ),
            (
                "[notify]\nbackoff_max = \"1s\"\n".to_owned(),
                "notify.backoff_max",
            ),
            ("[notify]\nlease = \"10s\"\n".to_owned(), "notify.lease"),
            (
                "[notify]\nconcurrency = 0\n".to_owned(),
                "notify.concurrency",
            ),
            ("[notify]\nretries = 3\n".to_owned(), "retries"),
            (
                hook(&format!("id = \"a b\"\n{ok_url}\n{ok_secret}")),
                "notify.webhooks[0].id",
            ),
            (
                format!(
                    "{}{}",
                    hook(&format!("id = \"a\"\n{ok_url}\n{ok_secret}")),
                    hook(&format!("id = \"a\"\n{ok_url}\n{ok_secret}"))
                ),
                "notify.webhooks[1].id",
            ),
            (
                hook(&format!("id = \"a\"\nurl = \"ftp://x\"\n{ok_secret}")),
                "notify.webhooks[0].url",
            ),
            (
                hook(&format!("id = \"a\"\nurl = \"/relative\"\n{ok_secret}")),
                "notify.webhooks[0].url",
            ),
            (
                hook(&format!("id = \"a\"\n{ok_url}\nsecret = \"plain-secret\"")),
                "notify.webhooks[0].secret",
            ),
            (
                hook(&format!(
                    "id = \"a\"\n{ok_url}\nsecret = \"whsec_c2hvcnQ=\""
                )),
                "notify.webhooks[0].secret",
            ),
            (
                hook(&format!("id = \"a\"\n{ok_url}\nsecret_env = \"UNSET_VAR\"")),
                "notify.webhooks[0].secret_env",
            ),
            (
                hook(&format!(
                    "id = \"a\"\n{ok_url}\nsecret_file = \"/nonexistent/whsec\""
                )),
                "notify.webhooks[0].secret_file",
            ),
            (
                hook(&format!(
                    "id = \"a\"\n{ok_url}\n{ok_secret}\nsecret_env = \"X\""
                )),
                "notify.webhooks[0]",
            ),
            (hook(&format!("id = \"a\"\n{ok_url}")), "notify.webhooks[0]"),
            (
                hook(&format!("id = \"a\"\n{ok_url}\n{ok_secret}\nheaders = 1")),
                "headers",
            ),
        ];
        for (toml, key) in cases {
            let message = error(load_file(&toml, &[secret]));
            assert!(message.contains(key), "{key}: {message}");
            assert!(!message.contains("plain-secret"), "{message}");
        }
        #[cfg(not(feature = "tls"))]
        {
            let https = hook(&format!("id = \"a\"\nurl = \"https://x/in\"\n{ok_secret}"));
            let message = error(load_file(&https, &[secret]));
            assert!(
                message.contains("notify.webhooks[0].url") && message.contains("tls"),
                "{message}"
            );
        }
    }

    #[test]
    fn nats_is_off_by_default_and_has_documented_defaults() {
        let secret = ("RISKHOOK_DIDIT_SECRET", "s");
        assert!(load(&[secret]).expect("loads").nats.is_none());
        let config = load(&[
            secret,
            (
                "RISKHOOK_NATS__URL",
                "nats://bob:hunter2%21@127.0.0.1:4222, tls://bob:hunter2%21@nats.internal:4443",
            ),
        ])
        .expect("loads");
        let nats = config.nats.as_ref().expect("configured");
        assert_eq!(nats.servers.addrs().len(), 2);
        assert_eq!(nats.subject_prefix, "riskhook.decisions");
        assert_eq!(nats.stream, "RISKHOOK_DECISIONS");
        assert_eq!(nats.duplicate_window, Duration::from_secs(120));
        assert_eq!(nats.endpoint_id, "nats");
        // The client ignores (and logs) user info in a URL: it becomes credentials.
        assert!(matches!(
            &nats.auth,
            NatsAuth::UserPassword { user, password } if user == "bob" && password == "hunter2!"
        ));
        for addr in nats.servers.addrs() {
            assert!(addr.username().is_none() && addr.password().is_none());
        }
        let text = format!("{config:?}");
        for hidden in ["hunter2", "bob"] {
            assert!(!text.contains(hidden), "{hidden} in {text}");
        }
        assert!(text.contains("nats://127.0.0.1:4222"), "{text}");

        let token = [
            secret,
            ("RISKHOOK_NATS__URL", "nats://127.0.0.1:4222"),
            ("RISKHOOK_NATS__TOKEN_ENV", "NATS_TOKEN"),
            ("NATS_TOKEN", "s3cr3t-t0k3n"),
        ];
        let config = load(&token).expect("loads");
        let nats = config.nats.as_ref().expect("configured");
        assert!(matches!(&nats.auth, NatsAuth::Token(t) if t == "s3cr3t-t0k3n"));
        assert!(!format!("{config:?}").contains("s3cr3t-t0k3n"));
        // One kind of credentials at a time.
        let mut both = token.to_vec();
        both[1] = ("RISKHOOK_NATS__URL", "nats://bob:pw@127.0.0.1:4222");
        assert!(error(load(&both)).contains("at most one"));
    }

    #[test]
    fn invalid_nats_settings_name_their_key() {
        let secret = ("RISKHOOK_DIDIT_SECRET", "s");
        let url = "[nats]\nurl = \"nats://127.0.0.1:4222\"\n";
        let cases: Vec<(String, &str)> = vec![
            (
                "[nats]\nurl = \"http://user:pw-in-url@x\"\n".to_owned(),
                "nats.url",
            ),
            (
                format!("{url}subject_prefix = \"a.*\"\n"),
                "nats.subject_prefix",
            ),
            (
                format!("{url}subject_prefix = \"a..b\"\n"),
                "nats.subject_prefix",
            ),
            (format!("{url}stream = \"A.B\"\n"), "nats.stream"),
            (
                format!("{url}duplicate_window = \"30s\"\n"),
                "nats.duplicate_window",
            ),
            (format!("{url}endpoint_id = \"a b\"\n"), "nats.endpoint_id"),
            (
                format!("{url}token_env = \"UNSET_VAR\"\n"),
                "nats.token_env",
            ),
            (
                format!("{url}credentials_file = \"/nonexistent/x.creds\"\n"),
                "nats.credentials_file",
            ),
            (format!("{url}subjects = \"x\"\n"), "subjects"),
            (
                "[nats]\nurl = \"nats://a:pw-in-url@x, nats://b:pw-in-url@y\"\n".to_owned(),
                "nats.url",
            ),
            (
                format!(
                    "{url}endpoint_id = \"crm\"\n\n[[notify.webhooks]]\nid = \"crm\"\nurl = \"http://x/in\"\nsecret = \"{WHSEC}\"\n"
                ),
                "nats.endpoint_id",
            ),
        ];
        for (toml, key) in cases {
            let message = error(load_file(&toml, &[secret]));
            assert!(message.contains(key), "{key}: {message}");
            assert!(!message.contains("pw-in-url"), "{message}");
        }
    }

    #[test]
    fn the_audit_key_comes_from_the_environment_or_a_file_and_errors_never_show_it() {
        let secret = ("RISKHOOK_DIDIT_SECRET", "s");
        let config = load(&[secret]).expect("loads");
        assert!(config.audit.key.is_none());
        assert_eq!(config.audit.checkpoint_interval, Duration::from_secs(60));
        // A key that looks like a number stays the text it is.
        let digits = "12345678901234567";
        let from_env = load(&[secret, ("RISKHOOK_AUDIT__KEY", digits)]).expect("loads");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("audit.key");
        std::fs::write(&file, format!("{digits}\n")).expect("write");
        let file = file.display().to_string();
        let from_file = load(&[secret, ("RISKHOOK_AUDIT__KEY_FILE", &file)]).expect("loads");
        let fields = riskhook_core::audit::AuditFields {
            seq: 1,
            id: "aud_1",
            at: 1,
            actor: "system",
            action: "a",
            subject: "s",
            reason: None,
            before: None,
            after: None,
            prev_hash: riskhook_core::audit::GENESIS,
        };
        let hash = |c: &Config| fields.keyed_hash(c.audit.key.as_ref().expect("a key"));
        assert_eq!(hash(&from_env), hash(&from_file));
        let short = error(load(&[secret, ("RISKHOOK_AUDIT__KEY", "tiny-key-x")]));
        assert!(
            short.contains("audit.key") && short.contains("16 bytes"),
            "{short}"
        );
        assert!(!short.contains("tiny-key-x"), "{short}");
        let both = error(load(&[
            secret,
            ("RISKHOOK_AUDIT__KEY", digits),
            ("RISKHOOK_AUDIT__KEY_FILE", &file),
        ]));
        assert!(both.contains("both set"), "{both}");
        let zero = error(load(&[
            secret,
            ("RISKHOOK_AUDIT__CHECKPOINT_INTERVAL", "0s"),
        ]));
        assert!(zero.contains("audit.checkpoint_interval"), "{zero}");
        let only_audit = AuditConfig::load_with_env(
            None,
            [("RISKHOOK_AUDIT__KEY".to_owned(), digits.to_owned())],
        )
        .expect("no Didit secret needed");
        assert!(only_audit.key.is_some());
    }

    #[test]
    fn debug_output_hides_secrets_and_passwords() {
        let config = load(&[
            ("RISKHOOK_DIDIT_SECRET", "very-secret-value"),
            ("RISKHOOK_AUDIT__KEY", "the-very-secret-audit-key"),
        ])
        .expect("loads");
        assert!(config.audit.key.is_some());
        let text = format!("{config:?}");
        assert!(!text.contains("very-secret-value"), "{text}");
        assert!(!text.contains("the-very-secret-audit-key"), "{text}");
        let url = DatabaseUrl::new("postgres://app:hunter2@db:5432/riskhook");
        assert_eq!(
            format!("{url:?}"),
            "DatabaseUrl(\"postgres://app:***@db:5432/riskhook\")"
        );
    }

    #[test]
    fn shown_urls_hide_passwords_in_the_userinfo_and_the_query() {
        assert_eq!(
            mask_url_password("postgres://bob:hunter2@db:5432/riskhook?sslmode=require"),
            "postgres://bob:***@db:5432/riskhook?sslmode=require"
        );
        assert_eq!(
            mask_url_password(
                "postgres://bob@db/riskhook?password=hunter2&sslpassword=x&application_name=rh"
            ),
            "postgres://bob@db/riskhook?password=***&sslpassword=***&application_name=rh"
        );
        assert_eq!(
            mask_url_password("sqlite://riskhook.db"),
            "sqlite://riskhook.db"
        );
        assert_eq!(mask_url_password("not a url"), "not a url");
    }
}

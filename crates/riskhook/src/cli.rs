//! The `riskhook` command line. Each subcommand parses its arguments here and calls into the
//! library; `main` only dispatches.
//!
//! Secrets are never accepted as flag values (they would show in `ps` and shell history): they
//! come from `RISKHOOK_DIDIT_SECRET` or a file.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use riskhook_didit::signature::{Key, Secret, SignedHeaders};

use crate::app::{App, shutdown_signal};
use crate::config::{Config, DatabaseUrl};
use crate::delivery;
use crate::telemetry;

/// Turns Didit identity-verification webhooks into durable, explainable risk decisions.
#[derive(Debug, Parser)]
#[command(name = "riskhook", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: receive Didit webhooks and store every event exactly once.
    Serve(ServeArgs),
    /// Create the database if needed and apply pending migrations, then exit.
    Migrate(MigrateArgs),
    /// Print the headers Didit would send with a body file.
    Sign(SignArgs),
    /// POST a body file to a URL, signed exactly as Didit signs it.
    Send(SendArgs),
}

/// `riskhook serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML configuration file (see config/default.toml for every key).
    #[arg(long, short, env = "RISKHOOK_CONFIG")]
    pub config: Option<PathBuf>,
    /// Override `listen` (address:port).
    #[arg(long)]
    pub listen: Option<String>,
}

/// `riskhook migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The database URL (default: the configuration's `database_url`).
    #[arg(
        long,
        env = "RISKHOOK_DATABASE_URL",
        default_value = "sqlite://riskhook.db"
    )]
    pub database_url: String,
}

/// Where the signing secret comes from.
#[derive(Debug, Args)]
pub struct SecretArgs {
    /// Read the secret from this file (a trailing newline is ignored). Without it, the secret is
    /// read from the RISKHOOK_DIDIT_SECRET environment variable.
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
}

impl SecretArgs {
    fn key(&self) -> anyhow::Result<Key> {
        let secret = match &self.secret_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the secret file {}", path.display()))?;
                Secret::new(text.trim_end_matches(['\n', '\r']).to_owned())
            }
            None => Secret::new(std::env::var("RISKHOOK_DIDIT_SECRET").map_err(|_| {
                anyhow::anyhow!("no secret: set RISKHOOK_DIDIT_SECRET or pass --secret-file")
            })?),
        };
        Key::new("cli", &secret).context("invalid secret")
    }
}

/// `riskhook sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The JSON body file, signed byte for byte as it is.
    pub body: PathBuf,
    #[command(flatten)]
    pub secret: SecretArgs,
    /// X-Timestamp to sign with (default: the body's `timestamp`, or now).
    #[arg(long)]
    pub timestamp: Option<i64>,
    /// Print a JSON object instead of header lines.
    #[arg(long)]
    pub json: bool,
}

/// `riskhook send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Where to POST, e.g. http://127.0.0.1:8080/webhooks/didit.
    pub url: String,
    /// The JSON body file.
    pub body: PathBuf,
    #[command(flatten)]
    pub secret: SecretArgs,
    /// Stamp the delivery with this Unix time instead of now (to try the freshness window).
    #[arg(long)]
    pub timestamp: Option<i64>,
    /// Send the file byte for byte: do not set its `timestamp` field to the delivery's time.
    #[arg(long)]
    pub keep_body: bool,
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(args) => migrate(args).await,
        Command::Sign(args) => sign(&args),
        Command::Send(args) => send(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.listen = listen
            .parse()
            .with_context(|| format!("--listen: `{listen}` is not an address and port"))?;
    }
    telemetry::init(config.log_format, &config.log_filter);
    let app = App::build(config).await?;
    tracing::info!(address = %app.local_addr()?, "riskhook listening");
    app.run(shutdown_signal()).await
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let url = DatabaseUrl::new(args.database_url);
    let store = riskhook_store_sqlite::SqliteStore::connect(url.expose())
        .await
        .context("cannot open the database")?;
    let applied = store.migrate().await.context("migration failed")?;
    if applied.is_empty() {
        println!("database is up to date");
    } else {
        println!("applied migrations: {applied:?}");
    }
    store.close().await;
    Ok(())
}

fn read_body(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn sign(args: &SignArgs) -> anyhow::Result<()> {
    let key = args.secret.key()?;
    let body = read_body(&args.body)?;
    let timestamp = args
        .timestamp
        .or_else(|| delivery::body_timestamp(&body))
        .unwrap_or_else(now);
    let headers = SignedHeaders::sign(&key, &body, timestamp);
    if args.json {
        let map: serde_json::Map<String, serde_json::Value> = headers
            .pairs()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.into()))
            .collect();
        println!("{}", serde_json::to_string_pretty(&map)?);
    } else {
        for (name, value) in headers.pairs() {
            println!("{name}: {value}");
        }
    }
    Ok(())
}

async fn send(args: SendArgs) -> anyhow::Result<()> {
    let key = args.secret.key()?;
    let file = read_body(&args.body)?;
    let timestamp = args.timestamp.unwrap_or_else(now);
    let body = if args.keep_body {
        file
    } else {
        delivery::restamp(&file, timestamp)
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let outcome = delivery::send(&client, &args.url, &key, body, timestamp).await?;
    println!("HTTP {}", outcome.status);
    println!("{}", outcome.body);
    if !(200..300).contains(&outcome.status) {
        bail!(
            "the endpoint refused the delivery (HTTP {})",
            outcome.status
        );
    }
    Ok(())
}

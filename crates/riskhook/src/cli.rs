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

use riskhook_core::assessment::Assessment;
use riskhook_core::cases::{Case, CaseError};
use riskhook_core::policy::{DEFAULT_POLICY, Policy};
use riskhook_core::signals::SCHEMA;
use riskhook_didit::payload::DiditEvent;
use riskhook_didit_signals as didit;

use crate::app::{App, shutdown_signal};
use crate::auth::api_key_hash;
use crate::config::{Config, DatabaseUrl};
use crate::delivery;
use crate::policy::PolicyHandle;
use crate::telemetry;

mod admin;

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
    /// Assess a Didit payload offline: payload + policy → assessment.
    Score(ScoreArgs),
    /// Check, test and inspect policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Check the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Inspect and retry outbound notification deliveries.
    #[command(subcommand)]
    Deliveries(DeliveriesCommand),
    /// Show the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Find the deliveries Didit made that riskhook never stored and ask Didit to resend them;
    /// report sessions stuck in a non-final status.
    ///
    /// Reads `[didit.reconcile]` (destination, API key) and the database from the same
    /// configuration as `serve`. Resent events arrive signed, through the service's normal
    /// intake, so the service must be running. Each run is recorded in the audit log. Exit
    /// status 1 when the run fails or a resend does.
    Reconcile(ReconcileArgs),
}

/// `riskhook reconcile`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Attempts made at or after this time: RFC 3339 or Unix seconds (default: now minus
    /// `didit.reconcile.window`).
    #[arg(long, value_parser = crate::time::parse)]
    pub since: Option<i64>,
    /// Attempts made before this time (default: now).
    #[arg(long, value_parser = crate::time::parse)]
    pub until: Option<i64>,
    /// Check every attempt, acknowledged ones too (after restoring the database from a
    /// backup), instead of `didit.reconcile.check`.
    #[arg(long)]
    pub all: bool,
    /// Report what is missing; ask for no resend.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `riskhook config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults, then `--config`, then RISKHOOK_* variables)
    /// as TOML, validated as `serve` validates it, with every secret shown as `***`.
    Show {
        /// The configuration file `serve` uses.
        #[arg(long, short, env = "RISKHOOK_CONFIG")]
        config: Option<PathBuf>,
    },
}

/// The database a command works on: the one `serve` uses with the same configuration.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// The database URL. Default: `database_url` of the configuration (`--config`,
    /// RISKHOOK_* variables), as `serve` reads it: `sqlite://riskhook.db` unless set.
    #[arg(long, env = "RISKHOOK_DATABASE_URL")]
    pub database_url: Option<String>,
    /// The configuration file `serve` uses: its `database_url`, and the audit key that commands
    /// appending to the audit log need once the chain is keyed (or RISKHOOK_AUDIT__KEY /
    /// RISKHOOK_AUDIT__KEY_FILE).
    #[arg(long, short, env = "RISKHOOK_CONFIG")]
    pub config: Option<PathBuf>,
}

impl DatabaseArgs {
    /// The database URL: given, or the configuration's.
    pub fn url(&self) -> anyhow::Result<DatabaseUrl> {
        match &self.database_url {
            Some(url) => Ok(DatabaseUrl::new(url.trim())),
            None => Ok(crate::config::DataSources::load(self.config.as_deref())?.database_url),
        }
    }

    /// The database URL of a database that must exist already: only `serve` and `migrate`
    /// create one, so a command run in the wrong directory or with the wrong configuration
    /// says so instead of making an empty database there.
    pub fn existing(&self) -> anyhow::Result<DatabaseUrl> {
        let url = self.url()?;
        if let Some(path) = sqlite_file(url.expose())
            && !Path::new(path).is_file()
        {
            bail!(
                "no database at {path}: give the service's configuration (--config or RISKHOOK_CONFIG) or its database (--database-url or RISKHOOK_DATABASE_URL); `riskhook migrate` or `riskhook serve` creates a new one"
            );
        }
        Ok(url)
    }
}

/// The file of a `sqlite://FILE[?options]` URL (not `sqlite::memory:`).
fn sqlite_file(url: &str) -> Option<&str> {
    let path = url.strip_prefix("sqlite://")?;
    Some(path.split('?').next().unwrap_or(path))
}

/// `riskhook audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the whole hash chain and report the first broken link (exit status 1), if any.
    ///
    /// The audit key comes from the same configuration as `serve`: RISKHOOK_AUDIT__KEY, or
    /// `audit.key` / `audit.key_file` in the `--config` file. Anchors (checkpoints the service
    /// published) are checked too: the chain must reach each one's entry with the same hash.
    Verify {
        #[command(flatten)]
        db: DatabaseArgs,
        /// An anchor: entry SEQ must exist and have HASH (repeatable).
        #[arg(long = "anchor", value_name = "SEQ:HASH")]
        anchor: Vec<String>,
        /// A file of anchors: the anchor file, or `audit checkpoint` lines of the log
        /// (repeatable).
        #[arg(long = "anchors", value_name = "FILE")]
        anchors: Vec<PathBuf>,
        /// Without the audit key, accept keyed entries whose content cannot be checked (their
        /// links and the anchors still are). Without this, they make the check fail.
        #[arg(long)]
        without_key: bool,
    },
    /// Key an existing chain written without a key, from its next entry on: checks it (as
    /// `verify` does, against the anchors given), then appends the `audit.keyed` entry under
    /// the configured key. Run once when a key is first configured for a database that already
    /// has entries; `serve` refuses to start until then.
    StartKeying {
        #[command(flatten)]
        db: DatabaseArgs,
        /// An anchor: entry SEQ must exist and have HASH (repeatable).
        #[arg(long = "anchor", value_name = "SEQ:HASH")]
        anchor: Vec<String>,
        /// A file of anchors, as for `verify` (repeatable).
        #[arg(long = "anchors", value_name = "FILE")]
        anchors: Vec<PathBuf>,
    },
}

/// `riskhook deliveries …`.
#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// List deliveries, newest first.
    List {
        #[command(flatten)]
        db: DatabaseArgs,
        /// Only pending, delivered or failed ones.
        #[arg(long, value_parser = ["pending", "delivered", "failed"])]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Put failed deliveries back in the queue (a running `serve` sends them).
    Retry {
        #[command(flatten)]
        db: DatabaseArgs,
        /// The deliveries to retry.
        ids: Vec<String>,
        /// Retry every failed delivery.
        #[arg(long, conflicts_with = "ids")]
        all_failed: bool,
    },
}

/// `riskhook score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// The policy file (default: the built-in policy).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// A Didit webhook body (JSON).
    pub payload: PathBuf,
    /// Evaluate at this Unix time (default: the payload's own timestamp).
    #[arg(long)]
    pub now: Option<i64>,
    /// Print the whole assessment as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `riskhook policy …`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file and report every problem with its rule and line.
    Check {
        /// The policy file.
        file: PathBuf,
    },
    /// Run a directory of test cases (*.toml) against a policy.
    Test {
        /// The policy file.
        file: PathBuf,
        /// The directory of cases.
        cases: PathBuf,
    },
    /// List every signal a policy can read, with its type and meaning.
    Signals,
    /// Print the built-in default policy.
    Show,
    /// Replay every stored session event through a candidate policy, next to the policy in
    /// force, and report what would change: decisions, user statuses, the review queue, each
    /// rule's firings, and agreement with the people who resolved cases. Read-only.
    ///
    /// The database and the policy in force are the configuration's, as for `serve`
    /// (`--config`, RISKHOOK_DATABASE_URL, RISKHOOK_POLICY__PATH). A candidate that does not load
    /// is refused with every problem, and exit status 2.
    Backtest {
        /// The candidate policy file.
        candidate: PathBuf,
        #[command(flatten)]
        db: DatabaseArgs,
        /// Only events received at or after this time: RFC 3339 or Unix seconds.
        #[arg(long, value_parser = crate::time::parse)]
        since: Option<i64>,
        /// Only events received before this time: RFC 3339 or Unix seconds.
        #[arg(long, value_parser = crate::time::parse)]
        until: Option<i64>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// An error and its causes on one line, `a: b: c`, leaving out a cause whose text the one
/// before it already says (database drivers often repeat their inner error in their own).
pub fn report(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if parts
            .last()
            .is_some_and(|previous| previous.contains(&text))
        {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

/// Input the command refuses (a candidate policy that does not load): exit status 2, so a
/// script can tell it from a failure to run.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// `riskhook keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new API key: prints the key (once) and the `[[api_keys]]` entry to configure.
    Generate {
        /// An id for the key (shown in logs instead of the key).
        #[arg(long)]
        id: String,
        /// read, review or admin.
        #[arg(long, value_parser = ["read", "review", "admin"])]
        role: String,
    },
    /// Make a new API key stored (hashed) in the database: prints the key once.
    Create {
        #[command(flatten)]
        db: DatabaseArgs,
        /// A label for people, e.g. who holds the key.
        #[arg(long)]
        name: String,
        /// The person (or service) the key belongs to; four eyes needs two different ones.
        /// Defaults to the name.
        #[arg(long)]
        principal: Option<String>,
        /// read, review or admin.
        #[arg(long, value_parser = ["read", "review", "admin"])]
        role: String,
    },
    /// List the keys stored in the database (never their secrets).
    List {
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Revoke a key stored in the database: it stops working at once.
    Revoke {
        #[command(flatten)]
        db: DatabaseArgs,
        /// The key's id (`key_…`).
        id: String,
    },
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
    #[command(flatten)]
    db: DatabaseArgs,
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
        Key::new("cli", &self.secret()?).context("invalid secret")
    }

    fn secret(&self) -> anyhow::Result<Secret> {
        Ok(match &self.secret_file {
            Some(path) => crate::config::secret_from_file(path)?,
            None => Secret::new(std::env::var("RISKHOOK_DIDIT_SECRET").map_err(|_| {
                anyhow::anyhow!("no secret: set RISKHOOK_DIDIT_SECRET or pass --secret-file")
            })?),
        })
    }
}

/// `riskhook sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The JSON body file.
    pub body: PathBuf,
    #[command(flatten)]
    pub secret: SecretArgs,
    /// The delivery's time (default: now). The body's `timestamp` field is set to it, as
    /// Didit's body carries the time X-Timestamp says (see --keep-body).
    #[arg(long)]
    pub timestamp: Option<i64>,
    /// Sign the file byte for byte, as it is: X-Timestamp is --timestamp, else the body's own
    /// `timestamp`, else now. For replaying a captured delivery unchanged.
    #[arg(long)]
    pub keep_body: bool,
    /// Write the body that was signed (restamped unless --keep-body) to this file. Without it,
    /// a restamped body is printed after the headers and a blank line.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print a JSON object (`headers`, and `body` when it was restamped and not written to
    /// --out) instead of header lines.
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
        Command::Score(args) => score(&args),
        Command::Policy(command) => policy(command).await,
        Command::Keys(KeysCommand::Generate { id, role }) => {
            generate_key(&id, &role);
            Ok(())
        }
        Command::Keys(command) => admin::keys(command).await,
        Command::Audit(command) => admin::audit(command).await,
        Command::Deliveries(command) => admin::deliveries(command).await,
        Command::Config(ConfigCommand::Show { config }) => {
            print!("{}", crate::config::show(config.as_deref())?);
            Ok(())
        }
        Command::Reconcile(args) => admin::reconcile(args).await,
    }
}

fn load_policy(path: Option<&Path>) -> anyhow::Result<Policy> {
    Ok(PolicyHandle::load(path)?.current().as_ref().clone())
}

fn score(args: &ScoreArgs) -> anyhow::Result<()> {
    let policy = load_policy(args.policy.as_deref())?;
    let body = read_body(&args.payload)?;
    let event = DiditEvent::from_slice(&body)
        .with_context(|| format!("{} is not a Didit event", args.payload.display()))?;
    let signals = didit::extract(&event, "offline", true);
    let now = args.now.or(event.timestamp).unwrap_or_else(now);
    let assessment = policy.assess(&signals, now);
    if args.json {
        println!("{}", assessment.to_json());
    } else {
        print!("{}", explain(&assessment));
    }
    Ok(())
}

/// The assessment for a person to read.
pub fn explain(a: &Assessment) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "decision: {}   score: {}/100",
        a.decision.as_str(),
        a.score
    );
    let _ = writeln!(out, "policy:   {} ({})", a.policy.name, &a.policy.hash);
    if a.fired.is_empty() {
        let _ = writeln!(out, "no rule fired");
    }
    for f in &a.fired {
        let decision = f
            .decision
            .map_or(String::new(), |d| format!(", at least {}", d.as_str()));
        let _ = writeln!(out, "  + {:>3}  {}{decision}", f.points, f.rule_id);
        let _ = writeln!(out, "         {}", f.reason);
        for (name, value) in &f.reads {
            let value = value.as_ref().map_or("not checked".to_owned(), |v| {
                serde_json::to_string(v).unwrap_or_default()
            });
            let _ = writeln!(out, "         {name} = {value}");
        }
    }
    if !a.not_evaluated.is_empty() {
        let _ = writeln!(out, "not evaluated (a signal they read was not checked):");
        for n in &a.not_evaluated {
            let _ = writeln!(out, "  - {}", n.rule_id);
        }
    }
    let _ = writeln!(out, "signals checked: {}", a.signals.len());
    out
}

async fn policy(command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Check { file } => {
            let policy = load_policy(Some(&file))?;
            let (review, freeze) = policy.thresholds();
            println!(
                "{}: ok — policy `{}`, {} rules, review at {review}, freeze at {freeze}, hash {}",
                file.display(),
                policy.name(),
                policy.rule_count(),
                policy.hash()
            );
            Ok(())
        }
        PolicyCommand::Test { file, cases } => policy_test(&file, &cases),
        PolicyCommand::Signals => {
            for def in SCHEMA {
                println!("{:<34} {:<13} {}", def.name, def.kind.cel_name(), def.doc);
            }
            Ok(())
        }
        PolicyCommand::Show => {
            print!("{DEFAULT_POLICY}");
            Ok(())
        }
        PolicyCommand::Backtest {
            candidate,
            db,
            since,
            until,
            json,
        } => backtest(&candidate, &db, since, until, json).await,
    }
}

async fn backtest(
    candidate: &Path,
    db: &DatabaseArgs,
    since: Option<i64>,
    until: Option<i64>,
    json: bool,
) -> anyhow::Result<()> {
    let candidate = PolicyHandle::load(Some(candidate))
        .map_err(|e| Refused(format!("{e:#}")))?
        .current();
    let sources = crate::config::DataSources::load(db.config.as_deref())?;
    let current = PolicyHandle::load(sources.policy_path.as_deref())
        .context("the policy in force (policy.path) does not load")?
        .current();
    let store = crate::store::open(&db.existing()?).await?;
    let result = crate::backtest::run(
        store.clone(),
        current,
        candidate,
        crate::backtest::Window { since, until },
    )
    .await;
    store.close().await;
    let outcome = result?;
    if json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        print!("{}", crate::backtest::describe(&outcome));
    }
    Ok(())
}

fn policy_test(file: &Path, dir: &Path) -> anyhow::Result<()> {
    let policy = load_policy(Some(file))?;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the cases directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    entries.sort();
    if entries.is_empty() {
        bail!("no *.toml cases in {}", dir.display());
    }
    let mut failed = 0usize;
    for path in &entries {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let result = std::fs::read_to_string(path)
            .map_err(|e| CaseError::Invalid(e.to_string()))
            .and_then(|text| Case::parse(&text))
            .and_then(|case| {
                let payload = match &case.payload {
                    Some(rel) => {
                        let at = path.parent().unwrap_or(Path::new(".")).join(rel);
                        Some(std::fs::read(&at).map_err(|e| {
                            CaseError::Invalid(format!("payload {}: {e}", at.display()))
                        })?)
                    }
                    None => None,
                };
                case.check(&policy, payload.as_deref(), didit::case_payload)
                    .map(|a| (case, a))
            });
        match result {
            Ok((case, a)) => println!(
                "ok    {name}: {} ({} {})",
                case.description,
                a.decision.as_str(),
                a.score
            ),
            Err(e) => {
                failed += 1;
                println!("FAIL  {name}: {e}");
            }
        }
    }
    println!("{} passed, {failed} failed", entries.len() - failed);
    if failed > 0 {
        bail!("{failed} case(s) failed");
    }
    Ok(())
}

fn generate_key(id: &str, role: &str) {
    // Two v4 UUIDs: 244 bits from the OS's CSPRNG, enough that the hash needs no salt.
    let key = format!(
        "rk_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    println!("API key (shown once, store it now): {key}");
    println!();
    println!("[[api_keys]]");
    println!("id = {id:?}");
    println!("role = {role:?}");
    println!("hash = {:?}", api_key_hash(&key));
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.listen = listen
            .parse()
            .with_context(|| format!("--listen: `{listen}` is not an address and port"))?;
    }
    telemetry::init(config.log_format, &config.log_filter);
    let shutdown = shutdown_signal();
    let app = App::build(config).await?;
    app.run(shutdown).await
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let applied = crate::store::migrate(&args.db.url()?).await?;
    if applied.is_empty() {
        println!("database is up to date");
    } else {
        println!("applied migrations: {applied:?}");
    }
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
    let file = read_body(&args.body)?;
    let (body, timestamp) = if args.keep_body {
        let timestamp = args
            .timestamp
            .or_else(|| delivery::body_timestamp(&file))
            .unwrap_or_else(now);
        (file, timestamp)
    } else {
        let timestamp = args.timestamp.unwrap_or_else(now);
        (delivery::restamp(&file, timestamp), timestamp)
    };
    let headers = SignedHeaders::sign(&key, &body, timestamp);
    if let Some(out) = &args.out {
        std::fs::write(out, &body).with_context(|| format!("cannot write {}", out.display()))?;
    }
    // The signed body must travel with the headers: printed unless it is the file as it was,
    // or it was written to --out.
    let print_body = !args.keep_body && args.out.is_none();
    if args.json {
        let map: serde_json::Map<String, serde_json::Value> = headers
            .pairs()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.into()))
            .collect();
        let mut out = serde_json::json!({ "headers": map });
        if print_body {
            out["body"] = String::from_utf8_lossy(&body).into_owned().into();
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for (name, value) in headers.pairs() {
            println!("{name}: {value}");
        }
        if print_body {
            println!();
            println!("{}", String::from_utf8_lossy(&body));
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

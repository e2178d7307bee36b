//! `riskhook-loadgen URL`: the load generator's command line (see the library's docs).

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Parser;
use riskhook_didit::signature::Secret;
use riskhook_loadgen::{Limit, Mode, Plan};

/// Sends unique, correctly signed, realistic Didit deliveries to a riskhook service and reports
/// throughput, latency percentiles and counts by outcome.
#[derive(Debug, Parser)]
#[command(name = "riskhook-loadgen", version)]
struct Args {
    /// Where to POST, e.g. http://127.0.0.1:8080/webhooks/didit.
    url: String,
    /// Read the signing secret from this file (a trailing newline is ignored). Without it, the
    /// secret is read from the RISKHOOK_DIDIT_SECRET environment variable.
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// Closed loop: this many connections, each sending when its last answer arrived.
    #[arg(long, conflicts_with = "rate")]
    concurrency: Option<usize>,
    /// Open loop: this many deliveries per second, whatever the latency.
    #[arg(long)]
    rate: Option<f64>,
    /// Stop after this long (e.g. 30s, 2m).
    #[arg(long, conflicts_with = "count", value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many deliveries.
    #[arg(long)]
    count: Option<u64>,
    /// Share of deliveries that replay an earlier one (0-1).
    #[arg(long, default_value_t = 0.0)]
    duplicates: f64,
    /// Share of deliveries with a forged signature (0-1).
    #[arg(long, default_value_t = 0.0)]
    invalid: f64,
    /// Seed of the body generator, for repeatable runs (default: from the clock, so that runs
    /// against the same database do not replay each other's deliveries).
    #[arg(long)]
    seed: Option<u64>,
    /// Per-request timeout.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
    /// Append the stored id of every acknowledged delivery to this file (for durability checks).
    #[arg(long)]
    acks: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let secret = match &args.secret_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the secret file {}", path.display()))?;
            Secret::new(text.trim_end_matches(['\n', '\r']).to_owned())
        }
        None => Secret::new(std::env::var("RISKHOOK_DIDIT_SECRET").map_err(|_| {
            anyhow::anyhow!("no secret: set RISKHOOK_DIDIT_SECRET or pass --secret-file")
        })?),
    };
    let mode = match (args.rate, args.concurrency) {
        (Some(rate), _) => Mode::Rate(rate),
        (None, n) => Mode::Concurrency(n.unwrap_or(64)),
    };
    let limit = match (args.count, args.duration) {
        (Some(n), _) => Limit::Count(n),
        (None, d) => Limit::Duration(d.unwrap_or(Duration::from_secs(10))),
    };
    let plan = Plan {
        url: args.url,
        mode,
        limit,
        duplicates: args.duplicates,
        invalid: args.invalid,
        seed: args.seed.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        }),
        timeout: args.timeout,
        progress: !args.quiet,
        acks: args.acks,
    };
    let report = riskhook_loadgen::run(plan, &secret).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

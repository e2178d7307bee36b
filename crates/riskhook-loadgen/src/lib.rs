//! riskhook-loadgen: sends unique, correctly signed, realistic Didit deliveries to a URL at a
//! fixed rate or a fixed concurrency, and reports throughput, latency percentiles (HDR
//! histogram) and counts by outcome. The `riskhook-loadgen` binary is its command line; the
//! service's durability test drives [`run`] directly.
//!
//! It is development tooling, not part of the service: it depends on the protocol crate
//! (`riskhook-didit`) for signing and on nothing of the service, so the service library carries
//! no load generator and the generator builds without the service.
//!
//! Bodies are built from the fixtures of every event type, made unique (new `event_id`,
//! `session_id`, `vendor_data`) and sized between 1 KB and 30 KB like real Didit payloads. On
//! request a share of deliveries are exact replays of earlier ones (expected: `duplicate`) or
//! carry a forged signature (expected: 401).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use riskhook_didit::signature::{Key, Secret, SignedHeaders};
use serde::Serialize;
use serde_json::Value;

/// The fixtures, compiled in so the binary can generate load anywhere.
const TEMPLATES: &[&str] = &[
    include_str!("../../../fixtures/didit/status-updated-not-started.json"),
    include_str!("../../../fixtures/didit/status-updated-in-progress.json"),
    include_str!("../../../fixtures/didit/status-updated-in-review.json"),
    include_str!("../../../fixtures/didit/status-updated-approved.json"),
    include_str!("../../../fixtures/didit/status-updated-approved-full.json"),
    include_str!("../../../fixtures/didit/status-updated-declined-sanctions.json"),
    include_str!("../../../fixtures/didit/status-updated-in-review-risky.json"),
    include_str!("../../../fixtures/didit/status-updated-resubmitted.json"),
    include_str!("../../../fixtures/didit/status-updated-kyb.json"),
    include_str!("../../../fixtures/didit/data-updated.json"),
    include_str!("../../../fixtures/didit/user-status-updated.json"),
    include_str!("../../../fixtures/didit/user-data-updated.json"),
    include_str!("../../../fixtures/didit/business-status-updated.json"),
    include_str!("../../../fixtures/didit/business-data-updated.json"),
    include_str!("../../../fixtures/didit/activity-created.json"),
    include_str!("../../../fixtures/didit/transaction-created.json"),
    include_str!("../../../fixtures/didit/transaction-status-updated.json"),
    include_str!("../../../fixtures/didit/travel-rule-status-updated.json"),
];

/// How load is offered.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Open loop: this many deliveries per second, whatever the latency (in-flight capped).
    Rate(f64),
    /// Closed loop: this many connections, each sending as soon as its last answer came.
    Concurrency(usize),
}

/// When to stop.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// After this long.
    Duration(Duration),
    /// After this many deliveries.
    Count(u64),
}

/// A load run's settings.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Where to POST.
    pub url: String,
    /// How.
    pub mode: Mode,
    /// Until when.
    pub limit: Limit,
    /// Share of deliveries that replay an earlier one, 0..=1.
    pub duplicates: f64,
    /// Share of deliveries with a forged signature, 0..=1.
    pub invalid: f64,
    /// Seed for the generator, for repeatable runs.
    pub seed: u64,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Print a progress line every second on stderr.
    pub progress: bool,
    /// Append the id the server stored each acknowledged (2xx) delivery under to this file,
    /// one per line: what a durability check compares with the database.
    pub acks: Option<std::path::PathBuf>,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Deliveries sent (answered or failed).
    pub sent: u64,
    /// Wall time of the run, seconds.
    pub seconds: f64,
    /// `sent / seconds`.
    pub throughput_per_second: f64,
    /// Latency percentiles, milliseconds.
    pub latency_ms: Percentiles,
    /// Counts by outcome: `accepted`, `duplicate`, `rejected:<code>`, `http:<status>`,
    /// `error:<kind>`.
    pub outcomes: BTreeMap<String, u64>,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th.
    pub p90: f64,
    /// 99th.
    pub p99: f64,
    /// 99.9th.
    pub p99_9: f64,
    /// Largest seen.
    pub max: f64,
}

/// A tiny xorshift64* generator: load generation needs speed and repeatability, not
/// cryptographic quality.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let v = (self.next_u64() >> 11) as f64;
        v / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % (n.max(1) as u64)).unwrap_or(0)
    }
}

/// One delivery ready to send.
#[derive(Debug, Clone)]
struct Delivery {
    body: Arc<Vec<u8>>,
    headers: Arc<Vec<(&'static str, String)>>,
}

/// Builds deliveries: unique, signed, 1-30 KB.
struct Generator {
    templates: Vec<Value>,
    key: Key,
    forger: Key,
    rng: Rng,
    counter: u64,
    recent: VecDeque<Delivery>,
    duplicates: f64,
    invalid: f64,
}

impl Generator {
    fn new(key: Key, plan: &Plan) -> anyhow::Result<Self> {
        let templates = TEMPLATES
            .iter()
            .map(|t| serde_json::from_str::<Value>(t))
            .collect::<Result<Vec<_>, _>>()
            .context("a compiled-in fixture is not JSON")?;
        Ok(Self {
            templates,
            key,
            forger: Key::new("forger", &Secret::new("not-the-secret"))?,
            rng: Rng::new(plan.seed),
            counter: 0,
            recent: VecDeque::with_capacity(1024),
            duplicates: plan.duplicates,
            invalid: plan.invalid,
        })
    }

    fn next(&mut self, now: i64) -> Delivery {
        if !self.recent.is_empty() && self.rng.unit() < self.duplicates {
            let i = self.rng.below(self.recent.len());
            if let Some(d) = self.recent.get(i) {
                return d.clone();
            }
        }
        self.counter += 1;
        let n = self.counter;
        let mut value = self.templates[self.rng.below(self.templates.len())].clone();
        let target = 1024 + self.rng.below(29 * 1024);
        let seed = self.rng.next_u64();
        personalise(&mut value, n, seed, now);
        let mut body = serde_json::to_vec(&value).unwrap_or_default();
        if body.len() < target {
            // Pad inside `metadata`, which every session event may carry and nothing scores.
            let pad = target - body.len();
            if let Some(obj) = value.as_object_mut() {
                let metadata = obj
                    .entry("metadata")
                    .or_insert_with(|| Value::Object(serde_json::Map::new()));
                if !metadata.is_object() {
                    *metadata = Value::Object(serde_json::Map::new());
                }
                if let Some(m) = metadata.as_object_mut() {
                    m.insert("loadgen_padding".to_owned(), Value::from("x".repeat(pad)));
                }
                body = serde_json::to_vec(&value).unwrap_or_default();
            }
        }
        let forged = self.rng.unit() < self.invalid;
        let signer = if forged { &self.forger } else { &self.key };
        let headers: Vec<(&'static str, String)> = SignedHeaders::sign(signer, &body, now)
            .pairs()
            .into_iter()
            .map(|(name, value)| (name, value.to_owned()))
            .collect();
        let delivery = Delivery {
            body: Arc::new(body),
            headers: Arc::new(headers),
        };
        if !forged {
            if self.recent.len() == 1024 {
                self.recent.pop_front();
            }
            self.recent.push_back(delivery.clone());
        }
        delivery
    }
}

/// Makes a template unique: ids, the user, the time.
fn personalise(value: &mut Value, n: u64, seed: u64, now: i64) {
    let Some(obj) = value.as_object_mut() else {
        return;
    };
    let uuid = |salt: u64| {
        let x = seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (x >> 32) as u32,
            (x >> 16) as u16,
            x & 0xfff,
            (n >> 4) & 0xfff,
            n & 0xffff_ffff_ffff
        )
    };
    obj.insert("event_id".to_owned(), Value::from(uuid(1)));
    stamp(obj, now);
    let target = match obj.get_mut("data").and_then(Value::as_object_mut) {
        Some(data) => data,
        None => obj,
    };
    let user = format!("lg-user-{}", n / 3);
    for (field, fresh) in [
        ("session_id", uuid(2)),
        ("transaction_id", uuid(3)),
        ("vendor_data", user),
    ] {
        if target.contains_key(field) {
            target.insert(field.to_owned(), Value::from(fresh));
        }
    }
    // The decision repeats the template's session id; intake keys on the top-level one, so
    // it is left as is.
}

/// Sets an envelope's `timestamp` in the form it already uses, as Didit stamps a delivery when it
/// sends it: Unix seconds (flat envelope) or an RFC 3339 string (nested envelope). The same
/// rule as the service's `riskhook::delivery::restamp`, kept here so that the generator does not
/// depend on the service.
fn stamp(envelope: &mut serde_json::Map<String, Value>, timestamp: i64) {
    let iso = envelope.get("timestamp").is_some_and(Value::is_string);
    let value = if iso {
        let t = UNIX_EPOCH + Duration::from_secs(u64::try_from(timestamp).unwrap_or(0));
        Value::from(humantime::format_rfc3339_seconds(t).to_string())
    } else {
        Value::from(timestamp)
    };
    envelope.insert("timestamp".to_owned(), value);
}

struct Shared {
    acks: Option<Mutex<std::io::BufWriter<std::fs::File>>>,
    histogram: Mutex<Histogram<u64>>,
    outcomes: Mutex<BTreeMap<String, u64>>,
    sent: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    fn acknowledge(&self, answer: &Answer) {
        use std::io::Write as _;
        if let (Some(acks), Some(id)) = (&self.acks, &answer.stored_as) {
            let mut w = acks.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = writeln!(w, "{id}");
            // Flushed at once: the point of the file is to survive whatever happens next.
            let _ = w.flush();
        }
    }

    fn record(&self, micros: u64, outcome: String) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .histogram
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(micros.max(1));
        *self
            .outcomes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(outcome)
            .or_default() += 1;
    }
}

/// What the server said about one delivery.
struct Answer {
    outcome: String,
    /// The id the server says the event is stored under, for a 2xx answer.
    stored_as: Option<String>,
}

async fn send_one(client: &reqwest::Client, url: &str, d: &Delivery) -> Answer {
    let headers = d
        .headers
        .iter()
        .map(|(name, value)| (*name, value.as_str()));
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", "DiditWebhook/2.0 +https://didit.me");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    match request.body(d.body.as_ref().clone()).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            let stored_as = (200..300)
                .contains(&status)
                .then(|| serde_json::from_str::<Value>(&text).ok())
                .flatten()
                .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned));
            Answer {
                outcome: classify(status, &text),
                stored_as,
            }
        }
        Err(e) => Answer {
            outcome: if e.is_timeout() {
                "error:timeout"
            } else if e.is_connect() {
                "error:connect"
            } else {
                "error:transport"
            }
            .to_owned(),
            stored_as: None,
        },
    }
}

fn classify(status: u16, body: &str) -> String {
    let json: Value = serde_json::from_str(body).unwrap_or_default();
    match (status, json.get("status").and_then(Value::as_str)) {
        (200, Some(s @ ("accepted" | "duplicate"))) => s.to_owned(),
        _ => match json.get("code").and_then(Value::as_str) {
            Some(code) => format!("rejected:{code}"),
            None => format!("http:{status}"),
        },
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Runs the load and returns what it measured.
pub async fn run(plan: Plan, secret: &Secret) -> anyhow::Result<Report> {
    if !(0.0..=1.0).contains(&plan.duplicates) || !(0.0..=1.0).contains(&plan.invalid) {
        bail!("--duplicates and --invalid are shares between 0 and 1");
    }
    let key = Key::new("loadgen", secret).context("invalid secret")?;
    let generator = Arc::new(Mutex::new(Generator::new(key, &plan)?));
    let connections = match plan.mode {
        Mode::Concurrency(n) => n.max(1),
        Mode::Rate(_) => 512,
    };
    let client = reqwest::Client::builder()
        .timeout(plan.timeout)
        .pool_max_idle_per_host(connections)
        .build()?;
    let acks = match &plan.acks {
        Some(path) => Some(Mutex::new(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))?,
        ))),
        None => None,
    };
    let shared = Arc::new(Shared {
        acks,
        histogram: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
        outcomes: Mutex::new(BTreeMap::new()),
        sent: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let limit = plan.limit;
    let may_issue = {
        let issued = issued.clone();
        let shared = shared.clone();
        move || -> bool {
            if shared.stop.load(Ordering::Relaxed) {
                return false;
            }
            match limit {
                Limit::Count(n) => issued.fetch_add(1, Ordering::Relaxed) < n,
                Limit::Duration(d) => started.elapsed() < d,
            }
        }
    };
    let progress = plan.progress.then(|| {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut last = 0;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let sent = shared.sent.load(Ordering::Relaxed);
                let p99 = shared
                    .histogram
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .value_at_quantile(0.99);
                eprintln!(
                    "{:>5.0}s  sent {sent:>8}  {:>7}/s  p99 {:>7.2} ms",
                    started.elapsed().as_secs_f64(),
                    sent - last,
                    micros_to_ms(p99)
                );
                last = sent;
            }
        })
    });
    let mut tasks = tokio::task::JoinSet::new();
    match plan.mode {
        Mode::Concurrency(n) => {
            for _ in 0..n.max(1) {
                let (client, url, generator, shared, may_issue) = (
                    client.clone(),
                    plan.url.clone(),
                    generator.clone(),
                    shared.clone(),
                    may_issue.clone(),
                );
                tasks.spawn(async move {
                    while may_issue() {
                        let d = generator
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .next(unix_now());
                        let t = Instant::now();
                        let answer = send_one(&client, &url, &d).await;
                        shared.acknowledge(&answer);
                        shared.record(elapsed_micros(t), answer.outcome);
                    }
                });
            }
        }
        Mode::Rate(rate) => {
            if !(rate > 0.0 && rate.is_finite()) {
                bail!("--rate must be a positive number of deliveries per second");
            }
            let interval = Duration::from_secs_f64(1.0 / rate);
            let in_flight = Arc::new(tokio::sync::Semaphore::new(connections));
            let mut next = tokio::time::Instant::now();
            while may_issue() {
                tokio::time::sleep_until(next).await;
                next += interval;
                let Ok(permit) = in_flight.clone().acquire_owned().await else {
                    break;
                };
                let d = generator
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .next(unix_now());
                let (client, url, shared) = (client.clone(), plan.url.clone(), shared.clone());
                // Latency counts from the scheduled send time, so a stalled server shows up
                // in the percentiles instead of slowing the offered load (coordinated
                // omission).
                let scheduled = Instant::now();
                tasks.spawn(async move {
                    let answer = send_one(&client, &url, &d).await;
                    shared.acknowledge(&answer);
                    shared.record(elapsed_micros(scheduled), answer.outcome);
                    drop(permit);
                });
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    if let Some(p) = progress {
        p.abort();
    }
    let seconds = started.elapsed().as_secs_f64();
    let histogram = shared
        .histogram
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let sent = shared.sent.load(Ordering::Relaxed);
    #[allow(clippy::cast_precision_loss)]
    let throughput = sent as f64 / seconds.max(1e-9);
    let outcomes = shared
        .outcomes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Ok(Report {
        sent,
        seconds,
        throughput_per_second: throughput,
        latency_ms: Percentiles {
            p50: micros_to_ms(histogram.value_at_quantile(0.50)),
            p90: micros_to_ms(histogram.value_at_quantile(0.90)),
            p99: micros_to_ms(histogram.value_at_quantile(0.99)),
            p99_9: micros_to_ms(histogram.value_at_quantile(0.999)),
            max: micros_to_ms(histogram.max()),
        },
        outcomes,
    })
}

fn elapsed_micros(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX)
}

#[allow(clippy::cast_precision_loss)]
fn micros_to_ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

impl Report {
    /// The report for a person.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "sent {} in {:.1} s: {:.0} deliveries/s",
            self.sent, self.seconds, self.throughput_per_second
        );
        let l = &self.latency_ms;
        let _ = writeln!(
            out,
            "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            l.p50, l.p90, l.p99, l.p99_9, l.max
        );
        for (outcome, count) in &self.outcomes {
            let _ = writeln!(out, "  {outcome:<28} {count}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            url: String::new(),
            mode: Mode::Concurrency(1),
            limit: Limit::Count(1),
            duplicates: 0.0,
            invalid: 0.0,
            seed: 7,
            timeout: Duration::from_secs(1),
            progress: false,
            acks: None,
        }
    }

    #[test]
    fn generated_deliveries_are_unique_signed_parseable_and_1_to_30_kb() {
        let key = Key::new("k", &Secret::new("s")).expect("key");
        let mut g = Generator::new(key.clone(), &plan()).expect("generator");
        let mut ids = std::collections::BTreeSet::new();
        for _ in 0..500 {
            let d = g.next(1_780_045_046);
            assert!(
                (1024..=31 * 1024).contains(&d.body.len()),
                "{}",
                d.body.len()
            );
            let event = riskhook_didit::payload::DiditEvent::from_slice(&d.body).expect("parses");
            assert_eq!(event.timestamp, Some(1_780_045_046));
            assert!(ids.insert(event.delivery_key().expect("event_id").to_owned()));
            let expected = SignedHeaders::sign(&key, &d.body, 1_780_045_046);
            assert!(
                d.headers
                    .iter()
                    .any(|(n, v)| *n == "X-Signature" && *v == expected.signature)
            );
        }
    }

    #[test]
    fn duplicates_replay_earlier_bytes_and_invalid_ones_are_forged() {
        let key = Key::new("k", &Secret::new("s")).expect("key");
        let mut p = plan();
        p.duplicates = 0.5;
        p.invalid = 0.2;
        let mut g = Generator::new(key.clone(), &p).expect("generator");
        let mut bodies = std::collections::BTreeSet::new();
        let (mut repeats, mut forged) = (0, 0);
        for _ in 0..400 {
            let d = g.next(1);
            if !bodies.insert(d.body.as_ref().clone()) {
                repeats += 1;
            }
            let good = SignedHeaders::sign(&key, &d.body, 1).signature;
            if !d
                .headers
                .iter()
                .any(|(n, v)| *n == "X-Signature" && *v == good)
            {
                forged += 1;
            }
        }
        assert!((120..=280).contains(&repeats), "{repeats}");
        assert!((20..=120).contains(&forged), "{forged}");
    }

    #[test]
    fn outcomes_are_classified_from_the_answer() {
        assert_eq!(classify(200, r#"{"status":"accepted"}"#), "accepted");
        assert_eq!(classify(200, r#"{"status":"duplicate"}"#), "duplicate");
        assert_eq!(
            classify(401, r#"{"code":"bad-signature"}"#),
            "rejected:bad-signature"
        );
        assert_eq!(classify(502, "oops"), "http:502");
    }
}

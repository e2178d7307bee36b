//! Backtests over the stored history, for `riskhook policy backtest` and
//! `POST /v1/policy/backtest`: stored session events are read a page at a time (each page a
//! short read, nothing written) and replayed through the policy in force and a candidate by
//! [`riskhook_core::backtest`], from their signal snapshots where they were assessed, else from
//! their raw bodies.
//!
//! The replay runs on a blocking thread: a long backtest never holds an async worker, so the
//! intake keeps its threads (it still shares the CPU).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use riskhook_core::assessment::Decision;
use riskhook_core::backtest::{Backtest, Comparison, Decided, PolicyId, Replay, Report, Verdict};
use riskhook_core::policy::Policy;
use riskhook_core::signals::Signals;
use riskhook_didit::payload::DiditEvent;
use riskhook_didit_signals as didit;
use riskhook_store::{ReplayFilter, ReplayRecord, Store, StoreError};
use serde::{Deserialize, Serialize};

/// Events read per page.
const PAGE: u32 = 2_000;

/// Which events to replay, by the time they were received (Unix seconds, `until` exclusive).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Window {
    /// From this time on.
    pub since: Option<i64>,
    /// Before this time.
    pub until: Option<i64>,
}

/// A backtest's report and how it was made.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Outcome {
    /// What the candidate would change.
    #[serde(flatten)]
    pub report: Report,
    /// Events replayed from their stored signal snapshot.
    pub from_snapshots: u64,
    /// Events replayed from their raw body (stored without an assessment).
    pub from_bodies: u64,
    /// Events that could not be replayed (an unreadable snapshot or body), skipped.
    pub skipped: u64,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// One stored event as the engine replays it, and whether from its snapshot, or `None` when
/// it cannot be read.
fn replay_of(record: ReplayRecord) -> Option<(Replay, bool)> {
    let (signals, snapshot) = match (record.signals, record.unassessed) {
        (Some(values), _) => (Signals::from_values_json(&values).ok()?, true),
        (None, Some(body)) => {
            let event = DiditEvent::from_slice(&body.raw).ok()?;
            (
                didit::extract(&event, &body.event_id, body.body_trusted),
                false,
            )
        }
        (None, None) => return None,
    };
    Some((
        Replay {
            user_id: record.user_id,
            at: record.at,
            signals: Arc::new(signals),
        },
        snapshot,
    ))
}

/// Each user's latest verdict.
async fn verdicts(store: &dyn Store) -> Result<HashMap<String, Verdict>, StoreError> {
    let mut latest = HashMap::new();
    // Oldest first: a later verdict replaces an earlier one.
    for v in store.verdicts().await? {
        latest.insert(
            v.user_id,
            Verdict {
                at: v.resolved_at,
                outcome: v.outcome,
            },
        );
    }
    Ok(latest)
}

/// Set when the caller stops waiting (a request answered 503 by its deadline, a client that
/// went away): the replay stops at its next page instead of reading the rest for nobody.
#[derive(Debug, Default)]
struct Cancel(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    fn token(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.0.clone()
    }
}

impl Drop for Cancel {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn cancelled() -> StoreError {
    StoreError::Other("the backtest was cancelled: nobody is waiting for it".into())
}

/// What a replay on its blocking thread reads pages through.
struct Pages {
    runtime: tokio::runtime::Handle,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Pages {
    /// Reads the next page, unless the caller has stopped waiting.
    fn next<T>(
        &self,
        read: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        if self.stop.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(cancelled());
        }
        self.runtime.block_on(read)
    }
}

/// Runs a replay on a blocking thread (it is CPU-bound: off the async workers), stopped at its
/// next page when this future is dropped.
async fn off_the_runtime<T: Send + 'static>(
    replay: impl FnOnce(&Pages) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let cancel = Cancel::default();
    let pages = Pages {
        runtime: tokio::runtime::Handle::current(),
        stop: cancel.token(),
    };
    let result = tokio::task::spawn_blocking(move || replay(&pages))
        .await
        .map_err(|e| StoreError::Other(Box::new(e)))?;
    drop(cancel);
    result
}

/// Replays every stored session event in `window` through `current` and `candidate`.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    current: Arc<Policy>,
    candidate: Arc<Policy>,
    window: Window,
) -> Result<Outcome, StoreError> {
    let started = Instant::now();
    let labels = verdicts(store.as_ref()).await?;
    let replayed = off_the_runtime(move |pages| {
        let mut backtest = Backtest::new(&current, &candidate, labels);
        let (mut from_snapshots, mut from_bodies, mut skipped) = (0, 0, 0);
        let mut filter = ReplayFilter {
            after_seq: 0,
            received_since: window.since,
            received_until: window.until,
            limit: PAGE,
        };
        loop {
            let page = pages.next(store.replay_events(&filter))?;
            let full = page.len() == PAGE as usize;
            for record in page {
                filter.after_seq = record.seq;
                match replay_of(record) {
                    Some((replay, snapshot)) => {
                        backtest.replay(&replay);
                        if snapshot {
                            from_snapshots += 1;
                        } else {
                            from_bodies += 1;
                        }
                    }
                    None => skipped += 1,
                }
            }
            if !full {
                break;
            }
        }
        Ok((backtest.finish(), from_snapshots, from_bodies, skipped))
    })
    .await?;
    let (report, from_snapshots, from_bodies, skipped) = replayed;
    Ok(Outcome {
        report,
        from_snapshots,
        from_bodies,
        skipped,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// A shadow policy's live report: what it decided at intake, against what the policy in force
/// then decided, over every stored shadow assessment.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ShadowOutcome {
    /// The shadow's id.
    pub shadow: String,
    /// The comparison, the policy in force as `current` and the shadow as `candidate`.
    #[serde(flatten)]
    pub report: Report,
    /// Stored assessments whose real assessment could not be read, skipped.
    pub skipped: u64,
}

/// The parts of a stored real assessment a shadow report needs.
#[derive(Deserialize)]
struct StoredDecision {
    decision: Decision,
    fired: Vec<FiredId>,
}

#[derive(Deserialize)]
struct FiredId {
    rule_id: String,
}

/// Compares shadow `id` (now `shadow`) with the policy in force over its stored assessments.
pub(crate) async fn shadow_report(
    store: Arc<dyn Store>,
    id: String,
    current: Arc<Policy>,
    shadow: Arc<Policy>,
) -> Result<ShadowOutcome, StoreError> {
    let labels = verdicts(store.as_ref()).await?;
    off_the_runtime(move |pages| {
        let rules = current
            .rules()
            .into_iter()
            .chain(shadow.rules())
            .map(|r| r.id);
        let mut comparison =
            Comparison::new(PolicyId::of(&current), PolicyId::of(&shadow), rules, labels);
        let (mut after, mut skipped) = (None::<String>, 0);
        loop {
            let page = pages.next(store.shadow_assessments(&id, after.as_deref(), PAGE))?;
            let full = page.len() == PAGE as usize;
            for record in &page {
                let Ok(real) = serde_json::from_str::<StoredDecision>(&record.assessment) else {
                    skipped += 1;
                    continue;
                };
                let real_fired: Vec<&str> = real.fired.iter().map(|f| f.rule_id.as_str()).collect();
                let shadow_fired: Vec<&str> = record.fired.iter().map(String::as_str).collect();
                comparison.record(Decided {
                    user_id: record.user_id.as_deref(),
                    at: record.evaluated_at,
                    decisions: [real.decision, record.decision],
                    fired: [&real_fired, &shadow_fired],
                });
            }
            after = page.last().map(|r| r.assessment_id.clone());
            if !full {
                break;
            }
        }
        Ok(ShadowOutcome {
            shadow: id,
            report: comparison.finish(),
            skipped,
        })
    })
    .await
}

/// The report for people: what changes, then the detail.
pub(crate) fn describe(outcome: &Outcome) -> String {
    use std::fmt::Write as _;
    let r = &outcome.report;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "backtest: candidate `{}` ({}) against `{}` ({}) in force",
        r.candidate.name,
        short(&r.candidate.hash),
        r.current.name,
        short(&r.current.hash)
    );
    let _ = writeln!(
        out,
        "{} events replayed ({} from snapshots, {} from bodies, {} skipped) in {:.2} s; {} users",
        r.events,
        outcome.from_snapshots,
        outcome.from_bodies,
        outcome.skipped,
        outcome.seconds,
        r.users_total
    );
    let _ = writeln!(
        out,
        "\ndecisions (rows: in force, columns: candidate), {} change:",
        r.decisions_changed
    );
    write_matrix(&mut out, &r.decisions);
    let _ = writeln!(out, "\nuser statuses, {} change:", r.users_changed);
    write_matrix(&mut out, &r.users);
    let _ = writeln!(
        out,
        "\nreview queue (users with evidence waiting): {} in force, {} with the candidate ({:+})",
        r.queue.current, r.queue.candidate, r.queue.change
    );
    let _ = writeln!(out, "\nrules (firings in force → with the candidate):");
    for (id, fires) in &r.rules {
        let mark = if fires.current == fires.candidate {
            " "
        } else {
            "*"
        };
        let _ = writeln!(
            out,
            " {mark} {id:<36} {:>8} → {}",
            fires.current, fires.candidate
        );
    }
    let l = &r.labels;
    let _ = writeln!(
        out,
        "\nagreement with people: {} users with a verdict, {} of them declined or frozen",
        l.labelled_users, l.risky
    );
    for (name, a) in [("in force", &l.current), ("candidate", &l.candidate)] {
        let _ = writeln!(
            out,
            "  {name:<9} precision {} recall {} (TP {}, FP {}, FN {}, TN {})",
            ratio(a.precision),
            ratio(a.recall),
            a.true_positives,
            a.false_positives,
            a.false_negatives,
            a.true_negatives
        );
    }
    out
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.3}"))
}

fn write_matrix(
    out: &mut String,
    matrix: &std::collections::BTreeMap<
        &'static str,
        std::collections::BTreeMap<&'static str, riskhook_core::backtest::Cell>,
    >,
) {
    use std::fmt::Write as _;
    for (from, row) in matrix {
        for (to, cell) in row {
            if cell.count == 0 {
                continue;
            }
            let arrow = if from == to { "  " } else { "→ " };
            let _ = writeln!(
                out,
                "  {from:>9} {arrow}{to:<9} {:>8}  e.g. {}",
                cell.count,
                cell.examples.join(", ")
            );
        }
    }
}

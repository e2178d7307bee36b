//! Criterion benchmarks of a policy backtest, per stored session event: the replay through the
//! policy in force and a candidate (both decided, the comparison recorded), and the whole
//! per-event path the service runs on a stored row: the compact snapshot (`signal_snapshots`,
//! `Signals::values_json`) read back into signals, then the replay. For comparison, the read of
//! the full assessment JSON backtests parsed before that table. Inputs are the signals of the
//! Didit session-event fixtures (`fixtures/didit/status-updated-*.json`, `data-updated.json`),
//! extracted as at intake, spread over 10,000 users.
//!
//! `cargo bench -p riskhook-didit-signals --bench backtest`

#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use riskhook_core::backtest::{Backtest, Replay};
use riskhook_core::policy::{DEFAULT_POLICY, Policy};
use riskhook_core::signals::Signals;
use riskhook_didit::payload::DiditEvent;
use riskhook_didit_signals as didit;
use serde::Deserialize;

/// Users the events are spread over (the report's memory grows with users).
const USERS: usize = 10_000;

/// The default policy with the sanctions rule lowered to a review and the freeze line at 80.
fn candidate() -> Policy {
    let text = DEFAULT_POLICY
        .replacen(
            "points = 100\ndecision = \"freeze\"\nreason = \"A sanctions",
            "points = 40\ndecision = \"review\"\nreason = \"A sanctions",
            1,
        )
        .replacen("freeze = 70\n", "freeze = 80\n", 1);
    assert_ne!(text, DEFAULT_POLICY);
    Policy::load(&text).unwrap()
}

/// What backtests read from a stored assessment before `signal_snapshots`.
#[derive(Deserialize)]
struct Snapshot {
    evaluated_at: i64,
    signals: Signals,
}

/// Each session-event fixture: its signals as extracted at intake, and the assessment's JSON
/// and the compact snapshot as stored.
fn fixtures(policy: &Policy) -> Vec<(String, Arc<Signals>, i64, String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/didit");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| {
            (n.starts_with("status-updated") || n == "data-updated.json") && n.ends_with(".json")
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let body = std::fs::read(format!("{dir}/{name}")).unwrap();
            let event = DiditEvent::from_slice(&body).unwrap();
            let signals = Arc::new(didit::extract(&event, "evt_bench", true));
            let at = event.timestamp.unwrap_or(1_764_000_000);
            let stored = policy.assess(signals.clone(), at).to_json();
            let compact = signals.values_json();
            (name, signals, at, stored, compact)
        })
        .collect()
}

fn backtest(c: &mut Criterion) {
    let current = Policy::load(DEFAULT_POLICY).unwrap();
    let candidate = candidate();
    let fixtures = fixtures(&current);
    for (what, sizes) in [
        (
            "assessment JSON",
            fixtures.iter().map(|f| f.3.len()).collect::<Vec<_>>(),
        ),
        (
            "compact snapshot",
            fixtures.iter().map(|f| f.4.len()).collect(),
        ),
    ] {
        eprintln!(
            "{} session fixtures, stored {what} {}..{} bytes (mean {})",
            fixtures.len(),
            sizes.iter().min().unwrap(),
            sizes.iter().max().unwrap(),
            sizes.iter().sum::<usize>() / sizes.len()
        );
    }
    let users: Vec<String> = (0..USERS).map(|i| format!("bench-user-{i:05}")).collect();
    // The mix: every fixture in turn, each event for the next user.
    let events: Vec<Replay> = (0..USERS)
        .map(|i| {
            let (_, signals, at, _, _) = &fixtures[i % fixtures.len()];
            Replay {
                user_id: Some(users[i].clone()),
                at: *at,
                signals: signals.clone(),
            }
        })
        .collect();

    let mut group = c.benchmark_group("backtest");
    group.throughput(Throughput::Elements(1));

    // (a) One event replayed under both policies, from signals already in memory.
    group.bench_function("replay/mix", |b| {
        let mut backtest = Backtest::new(&current, &candidate, HashMap::new());
        let mut i = 0;
        b.iter(|| {
            backtest.replay(black_box(&events[i % events.len()]));
            i += 1;
        });
        black_box(backtest.finish());
    });

    // (b) What the service does per stored row: read the compact snapshot back, replay.
    group.bench_function("snapshot+replay/mix", |b| {
        let mut backtest = Backtest::new(&current, &candidate, HashMap::new());
        let mut i = 0;
        b.iter(|| {
            let (_, _, at, _, compact) = &fixtures[i % fixtures.len()];
            let signals = Signals::from_values_json(black_box(compact)).unwrap();
            backtest.replay(&Replay {
                user_id: Some(users[i % USERS].clone()),
                at: *at,
                signals: Arc::new(signals),
            });
            i += 1;
        });
        black_box(backtest.finish());
    });

    // The reads alone, for the split: the compact snapshot, and the full assessment JSON
    // backtests parsed before.
    group.bench_function("snapshot-read/mix", |b| {
        let mut i = 0;
        b.iter(|| {
            let (_, _, _, _, compact) = &fixtures[i % fixtures.len()];
            i += 1;
            Signals::from_values_json(black_box(compact)).unwrap()
        });
    });
    group.bench_function("assessment-json-parse+validate/mix", |b| {
        let mut i = 0;
        b.iter(|| {
            let (_, _, _, stored, _) = &fixtures[i % fixtures.len()];
            let snapshot: Snapshot = serde_json::from_str(black_box(stored)).unwrap();
            i += 1;
            (snapshot.evaluated_at, snapshot.signals.validate().unwrap())
        });
    });

    // The largest snapshot alone (the full-feature approval).
    let (_, signals, at, _, compact) = fixtures
        .iter()
        .find(|f| f.0 == "status-updated-approved-full.json")
        .unwrap();
    group.bench_function("replay/status-updated-approved-full", |b| {
        let mut backtest = Backtest::new(&current, &candidate, HashMap::new());
        let mut i = 0;
        b.iter(|| {
            backtest.replay(black_box(&Replay {
                user_id: Some(users[i % USERS].clone()),
                at: *at,
                signals: signals.clone(),
            }));
            i += 1;
        });
        black_box(backtest.finish());
    });
    group.bench_function("snapshot+replay/status-updated-approved-full", |b| {
        let mut backtest = Backtest::new(&current, &candidate, HashMap::new());
        let mut i = 0;
        b.iter(|| {
            let signals = Signals::from_values_json(black_box(compact)).unwrap();
            backtest.replay(&Replay {
                user_id: Some(users[i % USERS].clone()),
                at: *at,
                signals: Arc::new(signals),
            });
            i += 1;
        });
        black_box(backtest.finish());
    });
    group.finish();
}

criterion_group!(benches, backtest);
criterion_main!(benches);

//! Criterion benchmarks of a policy backtest, per stored session event: the replay through the
//! policy in force and a candidate (both evaluated, the comparison recorded), and the whole
//! per-event path the service runs on a stored row: the assessment's JSON parsed into its
//! `evaluated_at` and signals, the signals validated, then the replay. Inputs are the signals
//! of the Didit session-event fixtures (`fixtures/didit/status-updated-*.json`,
//! `data-updated.json`), extracted as at intake, spread over 10,000 users.
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

/// What the service reads from a stored assessment (`riskhook::backtest::Snapshot`).
#[derive(Deserialize)]
struct Snapshot {
    evaluated_at: i64,
    signals: Signals,
}

/// Each session-event fixture: its signals as extracted at intake, and the assessment's JSON
/// as stored.
fn fixtures(policy: &Policy) -> Vec<(String, Arc<Signals>, i64, String)> {
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
            (name, signals, at, stored)
        })
        .collect()
}

fn backtest(c: &mut Criterion) {
    let current = Policy::load(DEFAULT_POLICY).unwrap();
    let candidate = candidate();
    let fixtures = fixtures(&current);
    let sizes: Vec<usize> = fixtures.iter().map(|f| f.3.len()).collect();
    eprintln!(
        "{} session fixtures, stored assessment JSON {}..{} bytes (mean {})",
        fixtures.len(),
        sizes.iter().min().unwrap(),
        sizes.iter().max().unwrap(),
        sizes.iter().sum::<usize>() / sizes.len()
    );
    let users: Vec<String> = (0..USERS).map(|i| format!("bench-user-{i:05}")).collect();
    // The mix: every fixture in turn, each event for the next user.
    let events: Vec<Replay> = (0..USERS)
        .map(|i| {
            let (_, signals, at, _) = &fixtures[i % fixtures.len()];
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

    // (b) What the service does per stored row: parse the stored assessment's JSON, validate
    // the signals, replay.
    group.bench_function("stored-json+replay/mix", |b| {
        let mut backtest = Backtest::new(&current, &candidate, HashMap::new());
        let mut i = 0;
        b.iter(|| {
            let (_, _, _, stored) = &fixtures[i % fixtures.len()];
            let snapshot: Snapshot = serde_json::from_str(black_box(stored)).unwrap();
            let signals = snapshot.signals.validate().unwrap();
            backtest.replay(&Replay {
                user_id: Some(users[i % USERS].clone()),
                at: snapshot.evaluated_at,
                signals: Arc::new(signals),
            });
            i += 1;
        });
        black_box(backtest.finish());
    });

    // The parse alone, for the split.
    group.bench_function("stored-json-parse+validate/mix", |b| {
        let mut i = 0;
        b.iter(|| {
            let (_, _, _, stored) = &fixtures[i % fixtures.len()];
            let snapshot: Snapshot = serde_json::from_str(black_box(stored)).unwrap();
            i += 1;
            snapshot.signals.validate().unwrap()
        });
    });

    // The largest snapshot alone (the full-feature approval), both ways.
    let (_, signals, at, stored) = fixtures
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
    group.bench_function("stored-json+replay/status-updated-approved-full", |b| {
        let mut backtest = Backtest::new(&current, &candidate, HashMap::new());
        let mut i = 0;
        b.iter(|| {
            let snapshot: Snapshot = serde_json::from_str(black_box(stored)).unwrap();
            let signals = snapshot.signals.validate().unwrap();
            backtest.replay(&Replay {
                user_id: Some(users[i % USERS].clone()),
                at: snapshot.evaluated_at,
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

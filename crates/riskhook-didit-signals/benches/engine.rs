//! Criterion benchmarks of the engine on a full-feature Didit payload with the default policy:
//! parsing, signal extraction, policy evaluation (fast path and interpreter-only, side by side),
//! and extraction plus evaluation as the service runs them. They live beside the Didit mapping,
//! whose output is the engine's input.
//!
//! `cargo bench -p riskhook-didit-signals --bench engine`

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use riskhook_core::policy::{DEFAULT_POLICY, Policy};
use riskhook_didit::payload::DiditEvent;
use riskhook_didit_signals as didit;

fn payload(name: &str) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/didit/").to_owned() + name;
    std::fs::read(path).unwrap()
}

fn engine(c: &mut Criterion) {
    let policy = Policy::load(DEFAULT_POLICY).unwrap();
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));
    for name in [
        "status-updated-approved-full.json",
        "status-updated-in-review-risky.json",
    ] {
        let body = payload(name);
        let event = DiditEvent::from_slice(&body).unwrap();
        let signals = didit::extract(&event, "evt_bench", true);
        let now = event.timestamp.unwrap_or(0);
        let label = name.trim_end_matches(".json");
        group.bench_function(format!("parse/{label}"), |b| {
            b.iter(|| DiditEvent::from_slice(black_box(&body)).unwrap());
        });
        group.bench_function(format!("extract/{label}"), |b| {
            b.iter(|| didit::extract(black_box(&event), "evt_bench", true));
        });
        let shared = std::sync::Arc::new(signals.clone());
        group.bench_function(format!("evaluate/{label}"), |b| {
            b.iter(|| policy.assess(black_box(shared.clone()), now));
        });
        // The same evaluation with every rule through the CEL interpreter, for the ratio.
        group.bench_function(format!("evaluate-interpreted/{label}"), |b| {
            b.iter(|| policy.assess_interpreted(black_box(shared.clone()), now));
        });
        group.bench_function(format!("extract+evaluate/{label}"), |b| {
            b.iter(|| {
                let signals = didit::extract(black_box(&event), "evt_bench", true);
                policy.assess(&signals, now)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);

//! Criterion benchmarks of `Store::ingest` into a SQLite file database (WAL,
//! `synchronous = FULL`): a new event with its assessment, as the pipeline stores it, one at a
//! time and many in flight at once, and the same delivery again, which must come back as a
//! duplicate.
//!
//! Every commit waits for an fsync of the WAL, so these figures are bounded by the disk under
//! the temporary directory (`TMPDIR`), not by the CPU.
//!
//! `cargo bench -p riskhook-store-sqlite --bench insert`

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use riskhook_core::assessment::Decision;
use riskhook_core::policy::{DEFAULT_POLICY, Policy};
use riskhook_didit::payload::{DiditEvent, SessionStatus};
use riskhook_didit_signals as didit;
use riskhook_store::{
    AssessmentId, EventId, EventRecord, IngestOutcome, NewAssessment, Stage, Store,
};
use riskhook_store_sqlite::SqliteStore;

/// A ≈10 KB session event with document, liveness and AML results and a risky decision.
const FIXTURE: &str = "status-updated-in-review-risky.json";

/// Deliveries in flight at once in `ingest/new-concurrent-*`.
const CONCURRENT: usize = 16;

/// When the benchmark pretends to receive every event, Unix seconds.
const RECEIVED_AT: i64 = 1_780_053_400;

/// The event and assessment the pipeline would store for the fixture, with the ids and keys
/// that make it unique (event id, delivery key, session, user) derived from `n`.
#[derive(Clone)]
struct Template {
    event: EventRecord,
    assessment: NewAssessment,
    session_id: String,
}

impl Template {
    fn load() -> Self {
        let path =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/didit/").to_owned() + FIXTURE;
        let raw = std::fs::read(path).unwrap();
        let parsed = DiditEvent::from_slice(&raw).unwrap();
        // The same mapping as the service's pipeline (`new_event` and `ingest`).
        let event = EventRecord {
            id: EventId::parse("evt_template").unwrap(),
            received_at: RECEIVED_AT,
            webhook_type: parsed.kind.as_str().to_owned(),
            delivery_key: parsed.delivery_key().map(str::to_owned),
            content_key: parsed.content_key(),
            subject_id: parsed.subject_id().map(str::to_owned),
            session_id: parsed.session_id().map(str::to_owned),
            status: parsed.status().map(str::to_owned),
            session_status: parsed.status().map(|text| {
                let status = SessionStatus::parse(text);
                let stage = Stage::new(riskhook_didit::session::stage(&status));
                riskhook_store::SessionStatus::new(status.as_str(), stage)
            }),
            event_timestamp: parsed.timestamp,
            vendor_data: parsed.vendor_data().map(str::to_owned),
            key_id: "default".to_owned(),
            scheme: "raw".to_owned(),
            body_trusted: true,
            raw,
        };
        let policy = Policy::load(DEFAULT_POLICY).unwrap();
        let signals = didit::extract(&parsed, &event.id, true);
        let assessed = policy.assess(signals, parsed.timestamp.unwrap());
        let assessment = NewAssessment {
            id: AssessmentId::parse("asm_template").unwrap(),
            score: assessed.score,
            decision: assessed.decision,
            policy_hash: assessed.policy.hash.clone(),
            evaluated_at: assessed.evaluated_at,
            json: assessed.to_json(),
            signals: assessed.signals.values_json(),
            shadows: Vec::new(),
        };
        let session_id = event.session_id.clone().unwrap();
        Self {
            event,
            assessment,
            session_id,
        }
    }

    /// A new event: a new session of a new user, with its own delivery and content keys, so
    /// every ingest is a real insert of an event, an assessment, a session and a user.
    fn nth(&self, n: u64) -> (EventRecord, NewAssessment) {
        let session_id = format!("{n:08x}-6b05-4c88-8cd1-78b62c06e11e");
        let mut event = self.event.clone();
        event.id = EventId::parse(format!("evt_{n:032x}")).unwrap();
        event.delivery_key = Some(format!("{n:08x}-5de7-4581-ae08-4922646aae16"));
        event.content_key = event.content_key.replace(&self.session_id, &session_id);
        event.subject_id = Some(session_id.clone());
        event.session_id = Some(session_id);
        event.vendor_data = Some(format!("user-{n}"));
        let mut assessment = self.assessment.clone();
        assessment.id = AssessmentId::parse(format!("asm_{n:032x}")).unwrap();
        (event, assessment)
    }
}

fn ingest(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = rt.block_on(SqliteStore::open(&url)).unwrap();
    let template = Template::load();
    assert_ne!(template.assessment.decision, Decision::Approve);
    eprintln!(
        "ingest: {} B raw body, {} B assessment JSON, database in {}",
        template.event.raw.len(),
        template.assessment.json.len(),
        dir.path().display()
    );

    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(1));

    let mut n = 0_u64;
    let mut next = || {
        n += 1;
        template.nth(n)
    };
    // Outside the timed loop: the first one really is accepted and moves a new session.
    let (event, assessment) = next();
    let first = rt.block_on(store.ingest(event.clone(), Some(assessment.clone())));
    assert_eq!(
        first.unwrap(),
        IngestOutcome::Accepted {
            id: event.id.to_string(),
            session_advanced: true,
        }
    );
    group.bench_function("new", |b| {
        b.iter_batched(
            &mut next,
            |(event, assessment)| {
                let outcome = rt
                    .block_on(store.ingest(black_box(event), Some(assessment)))
                    .unwrap();
                assert!(matches!(outcome, IngestOutcome::Accepted { .. }));
            },
            BatchSize::SmallInput,
        );
    });

    // Many deliveries in flight at once, as under load: the writer commits whatever is waiting
    // in one transaction, so the fsync is shared. Timed per delivery.
    group.throughput(Throughput::Elements(CONCURRENT as u64));
    group.bench_function(format!("new-concurrent-{CONCURRENT}"), |b| {
        b.iter_batched(
            || (0..CONCURRENT).map(|_| next()).collect::<Vec<_>>(),
            |batch| {
                rt.block_on(async {
                    let mut tasks = tokio::task::JoinSet::new();
                    for (event, assessment) in batch {
                        let store = store.clone();
                        tasks.spawn(async move { store.ingest(event, Some(assessment)).await });
                    }
                    while let Some(outcome) = tasks.join_next().await {
                        let outcome = outcome.unwrap().unwrap();
                        assert!(matches!(outcome, IngestOutcome::Accepted { .. }));
                    }
                });
            },
            BatchSize::SmallInput,
        );
    });
    group.throughput(Throughput::Elements(1));

    // The first event again: found by its delivery key, nothing inserted.
    let duplicate = rt.block_on(store.ingest(event.clone(), Some(assessment.clone())));
    assert_eq!(
        duplicate.unwrap(),
        IngestOutcome::Duplicate {
            id: event.id.to_string()
        }
    );
    group.bench_function("duplicate", |b| {
        b.iter_batched(
            || (event.clone(), assessment.clone()),
            |(event, assessment)| {
                let outcome = rt
                    .block_on(store.ingest(black_box(event), Some(assessment)))
                    .unwrap();
                assert!(matches!(outcome, IngestOutcome::Duplicate { .. }));
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();

    let stored = rt.block_on(store.count_events()).unwrap();
    eprintln!("ingest: {stored} events stored");
    drop(store);
    drop(dir);
}

criterion_group!(benches, ingest);
criterion_main!(benches);

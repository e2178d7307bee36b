//! Session and user state are independent of arrival order: every permutation of one session's
//! events ends in the same session state, user status, score and decision, through the real
//! pipeline (signals, default policy) and the real SQLite store.

use std::collections::BTreeSet;

use riskhook::pipeline;
use riskhook_core::policy::{DEFAULT_POLICY, Policy};
use riskhook_didit::axum::VerifiedDiditEvent;
use riskhook_didit::payload::{DiditEvent, SessionStatus};
use riskhook_didit::signature::Scheme;
use riskhook_didit::webhook::Verification;
use riskhook_store::{IngestOutcome, SessionRecord, Store, UserRecord};
use riskhook_store_sqlite::SqliteStore;

use crate::helpers::{fixture, now, spawn_app};

/// Not Started, In Progress, In Review, Approved, then a data.updated: one session's life.
const SEQUENCE: [&str; 5] = [
    "status-updated-not-started.json",
    "status-updated-in-progress.json",
    "status-updated-in-review.json",
    "status-updated-approved.json",
    "data-updated.json",
];

fn verified(name: &str) -> VerifiedDiditEvent {
    let raw = fixture(name);
    let event = DiditEvent::from_slice(&raw).unwrap();
    let timestamp = event.timestamp.unwrap();
    VerifiedDiditEvent {
        event,
        verification: Verification {
            key_id: "test".to_owned(),
            scheme: Scheme::Raw,
            timestamp,
        },
        raw: raw.into(),
        received_at: timestamp,
    }
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for rest in permutations(n - 1) {
        for i in 0..=rest.len() {
            let mut p = rest.clone();
            p.insert(i, n - 1);
            out.push(p);
        }
    }
    out
}

/// The parts of a user's state that must not depend on order.
fn settled_user(user: &UserRecord) -> (&'static str, u8, &'static str, bool, Vec<String>) {
    (
        user.status.as_str(),
        user.score,
        user.decision.as_str(),
        user.ever_frozen,
        user.sessions.clone(),
    )
}

/// The parts of a session's state that must not depend on order.
fn settled(
    record: &SessionRecord,
    store_ids: &[(String, String)],
) -> (String, i64, String, Option<String>, i64) {
    let fixture_of_event = store_ids
        .iter()
        .find(|(id, _)| *id == record.status_event_id)
        .map(|(_, name)| name.clone())
        .unwrap();
    (
        record.status.as_str().to_owned(),
        record.status_timestamp,
        fixture_of_event,
        record.vendor_data.clone(),
        record.event_count,
    )
}

#[tokio::test]
async fn every_arrival_order_of_a_session_ends_in_the_same_state() {
    let events: Vec<VerifiedDiditEvent> = SEQUENCE.iter().map(|n| verified(n)).collect();
    let session_id = events[0].event.session_id().unwrap().to_owned();
    assert!(
        events
            .iter()
            .all(|e| e.event.session_id() == Some(session_id.as_str())),
        "the fixtures must describe one session"
    );
    let orders = permutations(SEQUENCE.len());
    assert_eq!(orders.len(), 120);
    let policy = Policy::load(DEFAULT_POLICY).unwrap();
    let mut outcomes = BTreeSet::new();
    let mut users = BTreeSet::new();
    for order in orders {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        let mut ids = Vec::new();
        for &i in &order {
            let (outcome, _) = pipeline::ingest(&store, &policy, &[], &events[i])
                .await
                .unwrap();
            let IngestOutcome::Accepted { id, .. } = outcome else {
                panic!("{order:?}: not accepted");
            };
            ids.push((id, SEQUENCE[i].to_owned()));
        }
        let record = store.session(&session_id).await.unwrap().unwrap();
        outcomes.insert(settled(&record, &ids));
        let user = store.user("user-42").await.unwrap().unwrap();
        users.insert(settled_user(&user));
        store.close().await;
    }
    assert_eq!(
        outcomes.len(),
        1,
        "order changed the session's end state: {outcomes:#?}"
    );
    assert_eq!(
        users.len(),
        1,
        "order changed the user's end state: {users:#?}"
    );
    let (status, _, decided_by, vendor_data, count) = outcomes.into_iter().next().unwrap();
    assert_eq!(status, SessionStatus::Approved.as_str());
    assert_eq!(count, 5);
    assert_eq!(vendor_data.as_deref(), Some("user-42"));
    // data.updated carries the session's current status and is the newest event.
    assert!(
        decided_by == "status-updated-approved.json" || decided_by == "data-updated.json",
        "{decided_by}"
    );
}

#[tokio::test]
async fn a_late_older_event_is_stored_but_does_not_move_the_session_back() {
    let app = spawn_app().await;
    let t = now();
    let approved = riskhook::delivery::restamp(&fixture("status-updated-approved.json"), t);
    let in_progress =
        riskhook::delivery::restamp(&fixture("status-updated-in-progress.json"), t - 60);
    assert_eq!(
        app.post_signed(&approved, t).await.json["status"],
        "accepted"
    );
    let late = app.post_signed(&in_progress, t - 60).await;
    assert_eq!(late.json["status"], "accepted", "{late:?}");
    let session_id = DiditEvent::from_slice(&approved)
        .unwrap()
        .session_id()
        .unwrap()
        .to_owned();
    let record = app.store.session(&session_id).await.unwrap().unwrap();
    assert_eq!(record.status.as_str(), SessionStatus::Approved.as_str());
    assert_eq!(record.status_timestamp, t);
    assert_eq!(record.event_count, 2);
    app.stop().await;
}

//! The conformance suite every [`Store`] backend must pass (feature `conformance`): each
//! function sets up its own data through the trait, runs one use case and checks the result
//! against the contract, panicking with a message on any difference. A backend's tests call
//! each one with a fresh, migrated store (see `riskhook-store-sqlite/tests/conformance.rs`).
//!
//! The events are minimal hand-made records: the suite tests storage, not Didit parsing.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use riskhook_core::assessment::{Decision, UserStatus};
use riskhook_core::audit::ChainVerifier;
use riskhook_core::review::{ActionKind, ActionStatus, CaseStatus, Outcome};

use crate::{
    Attempt, CaseFilter, Claim, CommandError, DecideAction, DeliveryFilter, DeliveryStatus,
    EventRecord, IngestOutcome, NewApiKey, NewAssessment, ResolveCase, Role, Store, UserAction,
};

/// A session event for `user`, with its own delivery and content keys.
pub fn event(n: u32, user: &str, session: &str, status: &str, timestamp: i64) -> EventRecord {
    EventRecord {
        id: format!("evt_{n:08}"),
        received_at: 1_780_000_000 + i64::from(n),
        webhook_type: "status.updated".to_owned(),
        delivery_key: Some(format!("delivery-{n}")),
        content_key: format!("status.updated|{session}|{status}|{timestamp}"),
        subject_id: Some(session.to_owned()),
        session_id: Some(session.to_owned()),
        status: Some(status.to_owned()),
        event_timestamp: Some(timestamp),
        vendor_data: Some(user.to_owned()),
        key_id: "default".to_owned(),
        scheme: "raw".to_owned(),
        body_trusted: true,
        raw: format!("{{\"n\":{n}}}").into_bytes(),
    }
}

/// An assessment of event `n` deciding `decision`.
pub fn assessment(n: u32, decision: Decision, score: u8) -> NewAssessment {
    NewAssessment {
        id: format!("asm_{n:08}"),
        score,
        decision,
        policy_hash: "test-policy".to_owned(),
        evaluated_at: 1_780_000_000 + i64::from(n),
        json: format!("{{\"n\":{n},\"decision\":\"{}\"}}", decision.as_str()),
    }
}

async fn ingest(store: &dyn Store, n: u32, user: &str, decision: Decision) -> IngestOutcome {
    let session = format!("sess-{user}-{n}");
    store
        .ingest(
            event(n, user, &session, "Approved", 1_780_000_000 + i64::from(n)),
            Some(assessment(n, decision, 50)),
        )
        .await
        .unwrap()
}

async fn status(store: &dyn Store, user: &str) -> UserStatus {
    store.user(user).await.unwrap().unwrap().status
}

async fn open_case(store: &dyn Store, user: &str) -> Option<crate::CaseRecord> {
    let filter = CaseFilter {
        user_id: Some(user.to_owned()),
        limit: 10,
        ..CaseFilter::default()
    };
    store
        .cases(&filter)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.status != CaseStatus::Resolved)
}

/// A delivery is stored once, by either key; a duplicate changes nothing.
pub async fn ingest_is_exactly_once(store: &dyn Store) {
    let first = ingest(store, 1, "u-1", Decision::Approve).await;
    assert!(matches!(first, IngestOutcome::Accepted { .. }), "{first:?}");
    let mut again = event(2, "u-1", "sess-u-1-1", "Approved", 1_780_000_001);
    again.delivery_key = Some("delivery-1".to_owned());
    let dup = store.ingest(again, None).await.unwrap();
    assert_eq!(
        dup,
        IngestOutcome::Duplicate {
            id: "evt_00000001".to_owned()
        }
    );
    let same_content = event(3, "u-1", "sess-u-1-1", "Approved", 1_780_000_001);
    let dup = store.ingest(same_content, None).await.unwrap();
    assert_eq!(
        dup,
        IngestOutcome::Duplicate {
            id: "evt_00000001".to_owned()
        }
    );
    assert_eq!(store.count_events().await.unwrap(), 1);
}

/// Review and freeze evidence gathers into one open case per user, which decides the status.
pub async fn evidence_gathers_into_one_case(store: &dyn Store) {
    ingest(store, 1, "u-2", Decision::Approve).await;
    assert_eq!(status(store, "u-2").await, UserStatus::Active);
    assert!(
        open_case(store, "u-2").await.is_none(),
        "approve opens no case"
    );
    ingest(store, 2, "u-2", Decision::Review).await;
    ingest(store, 3, "u-2", Decision::Review).await;
    let case = open_case(store, "u-2").await.expect("a case");
    assert_eq!(case.assessment_ids, ["asm_00000002", "asm_00000003"]);
    assert_eq!(case.decision, Decision::Review);
    assert_eq!(status(store, "u-2").await, UserStatus::InReview);
    ingest(store, 4, "u-2", Decision::Freeze).await;
    let case2 = open_case(store, "u-2").await.expect("a case");
    assert_eq!(case2.id, case.id, "at most one open case per user");
    assert_eq!(case2.decision, Decision::Freeze);
    assert_eq!(status(store, "u-2").await, UserStatus::Frozen);
}

/// Claiming and resolving: the assignee rule, the verdict, and new evidence after it.
pub async fn resolving_a_case_sets_the_verdict(store: &dyn Store) {
    ingest(store, 1, "u-3", Decision::Review).await;
    let case = open_case(store, "u-3").await.unwrap();
    let claimed = store.claim_case(&case.id, "alice", 10).await.unwrap();
    assert_eq!(
        (claimed.status, claimed.assignee.as_deref()),
        (CaseStatus::Claimed, Some("alice"))
    );
    store
        .claim_case(&case.id, "alice", 11)
        .await
        .expect("claiming again is a no-op");
    let taken = store.claim_case(&case.id, "bob", 11).await;
    assert!(matches!(taken, Err(CommandError::Conflict(_))), "{taken:?}");
    let resolve = |actor: &str, reason: &str| ResolveCase {
        case_id: case.id.clone(),
        actor: actor.to_owned(),
        outcome: Outcome::Approve,
        reason: reason.to_owned(),
        now: 20,
        four_eyes: false,
    };
    let by_bob = store.resolve_case(resolve("bob", "looks fine")).await;
    assert!(
        matches!(by_bob, Err(CommandError::Conflict(_))),
        "{by_bob:?}"
    );
    let no_reason = store.resolve_case(resolve("alice", "  ")).await;
    assert!(no_reason.is_err(), "a reason is required");
    let done = store
        .resolve_case(resolve("alice", "documents match"))
        .await
        .unwrap();
    assert_eq!(done.user.status, UserStatus::Active);
    assert_eq!(done.user.verdict, Some(UserStatus::Active));
    let case = done.case.unwrap();
    assert_eq!(
        (case.status, case.outcome),
        (CaseStatus::Resolved, Some(Outcome::Approve))
    );
    let again = store.resolve_case(resolve("alice", "again")).await;
    assert!(matches!(again, Err(CommandError::Conflict(_))), "{again:?}");
    // New evidence after the verdict opens a new case.
    ingest(store, 2, "u-3", Decision::Review).await;
    let reopened = open_case(store, "u-3").await.unwrap();
    assert_ne!(reopened.id, case.id);
    assert_eq!(status(store, "u-3").await, UserStatus::InReview);
    // Approvals do not relax a person's decline.
    let declined = store
        .resolve_case(ResolveCase {
            case_id: reopened.id.clone(),
            outcome: Outcome::Decline,
            ..resolve("bob", "forged document")
        })
        .await
        .unwrap();
    assert_eq!(declined.user.status, UserStatus::Declined);
    ingest(store, 3, "u-3", Decision::Approve).await;
    assert_eq!(status(store, "u-3").await, UserStatus::Declined);
}

/// Four eyes: lifting a freeze waits for a different key.
pub async fn four_eyes_needs_a_second_key(store: &dyn Store) {
    ingest(store, 1, "u-4", Decision::Freeze).await;
    let case = open_case(store, "u-4").await.unwrap();
    let pending = store
        .resolve_case(ResolveCase {
            case_id: case.id.clone(),
            actor: "alice".to_owned(),
            outcome: Outcome::Unfreeze,
            reason: "false positive".to_owned(),
            now: 30,
            four_eyes: true,
        })
        .await
        .unwrap();
    assert_eq!(pending.user.status, UserStatus::Frozen);
    assert_eq!(
        pending.case.as_ref().unwrap().status,
        CaseStatus::PendingApproval
    );
    let action = pending.action.unwrap();
    assert_eq!(
        (action.kind, action.status),
        (ActionKind::ResolveCase, ActionStatus::Pending)
    );
    let decide = |actor: &str| DecideAction {
        action_id: action.id.clone(),
        actor: actor.to_owned(),
        approve: true,
        reason: Some("agreed".to_owned()),
        now: 31,
    };
    let same = store.decide_action(decide("alice")).await;
    assert!(matches!(same, Err(CommandError::SamePerson(_))), "{same:?}");
    let applied = store.decide_action(decide("bob")).await.unwrap();
    assert_eq!(applied.user.status, UserStatus::Active);
    assert_eq!(applied.case.unwrap().status, CaseStatus::Resolved);
    assert_eq!(applied.action.unwrap().status, ActionStatus::Applied);
    // A manual freeze, then an unfreeze that waits, then a rejection.
    let freeze = |kind| UserAction {
        user_id: "u-4".to_owned(),
        kind,
        actor: "alice".to_owned(),
        reason: "chargeback".to_owned(),
        now: 40,
        four_eyes: true,
    };
    let frozen = store.act_on_user(freeze(ActionKind::Freeze)).await.unwrap();
    assert_eq!(frozen.user.status, UserStatus::Frozen);
    let waiting = store
        .act_on_user(freeze(ActionKind::Unfreeze))
        .await
        .unwrap();
    assert_eq!(waiting.user.status, UserStatus::Frozen);
    let action = waiting.action.unwrap();
    assert_eq!(action.status, ActionStatus::Pending);
    let rejected = store
        .decide_action(DecideAction {
            approve: false,
            ..decide("bob")
        })
        .await;
    // `decide` names the earlier action; this one is decided through its own id.
    assert!(
        matches!(rejected, Err(CommandError::Conflict(_))),
        "{rejected:?}"
    );
    let rejected = store
        .decide_action(DecideAction {
            action_id: action.id.clone(),
            approve: false,
            ..decide("bob")
        })
        .await
        .unwrap();
    assert_eq!(rejected.user.status, UserStatus::Frozen);
    assert_eq!(rejected.action.unwrap().status, ActionStatus::Rejected);
    let missing = store
        .act_on_user(UserAction {
            user_id: "nobody".to_owned(),
            ..freeze(ActionKind::Freeze)
        })
        .await;
    assert!(
        matches!(missing, Err(CommandError::NotFound { .. })),
        "{missing:?}"
    );
}

/// Every change above is in one intact chain, and the chain cannot be edited in place.
pub async fn audit_chain_is_intact(store: &dyn Store) {
    resolving_a_case_sets_the_verdict(store).await;
    let entries = store.audit(0, 10_000).await.unwrap();
    assert!(entries.len() >= 8, "{} entries", entries.len());
    let mut verifier = ChainVerifier::new();
    for e in &entries {
        verifier.check(&e.fields(), &e.hash).unwrap();
    }
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    for needed in [
        "assessment.recorded",
        "case.opened",
        "case.claimed",
        "case.resolved",
        "user.updated",
    ] {
        assert!(actions.contains(&needed), "no {needed} in {actions:?}");
    }
    let resolved = entries
        .iter()
        .find(|e| e.action == "case.resolved")
        .unwrap();
    assert_eq!(
        (resolved.actor.as_str(), resolved.reason.as_deref()),
        ("alice", Some("documents match"))
    );
    assert!(resolved.before.is_some() && resolved.after.is_some());
}

/// Stored keys are found by hash until revoked; creation and revocation are audited.
pub async fn keys_are_stored_hashed_and_revocable(store: &dyn Store) {
    let key = NewApiKey {
        id: "key_1".to_owned(),
        name: "alice".to_owned(),
        role: Role::Review,
        hash: "ab".repeat(32),
    };
    let created = store.create_key(key.clone(), "cli", 1).await.unwrap();
    assert_eq!((created.role, created.revoked_at), (Role::Review, None));
    let dup = store.create_key(key, "cli", 2).await;
    assert!(matches!(dup, Err(CommandError::Conflict(_))), "{dup:?}");
    assert_eq!(
        store
            .key_by_hash(&"ab".repeat(32))
            .await
            .unwrap()
            .unwrap()
            .id,
        "key_1"
    );
    let revoked = store.revoke_key("key_1", "cli", 3).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(3));
    assert!(store.key_by_hash(&"ab".repeat(32)).await.unwrap().is_none());
    assert_eq!(store.keys().await.unwrap().len(), 1);
    let actions: Vec<String> = store
        .audit(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["key.created", "key.revoked"]);
}

/// The outbox: a delivery per endpoint per change, claimed in order per user, leased,
/// retried, exhausted, retried by hand, and held while an endpoint is gone.
pub async fn outbox_claims_in_order_with_leases(store: &dyn Store) {
    store.sync_endpoints(&["app".to_owned()], 0).await.unwrap();
    ingest(store, 1, "u-5", Decision::Review).await; // new user: in_review
    ingest(store, 2, "u-5", Decision::Freeze).await; // frozen
    ingest(store, 3, "u-6", Decision::Approve).await; // new user: active
    let all = store
        .deliveries(&DeliveryFilter {
            limit: 100,
            ..DeliveryFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(
        all.iter()
            .all(|d| d.status == DeliveryStatus::Pending && d.endpoint_id == "app")
    );
    let now = 1_780_000_100_000;
    let claim = |owner: &str, now: i64| Claim {
        owner: owner.to_owned(),
        now,
        lease: 30_000,
        limit: 10,
    };
    let first = store.claim_deliveries(&claim("a", now)).await.unwrap();
    let users: Vec<&str> = first.iter().map(|d| d.user_id.as_str()).collect();
    assert_eq!(
        users,
        ["u-5", "u-6"],
        "only the oldest pending delivery of each user"
    );
    assert!(
        store
            .claim_deliveries(&claim("b", now))
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    let u5 = &first[0];
    assert!(
        u5.payload.contains("\"status\":\"in_review\""),
        "{}",
        u5.payload
    );
    // A stale owner's report is ignored after another takes the lease over.
    let later = now + 31_000;
    let taken = store.claim_deliveries(&claim("b", later)).await.unwrap();
    assert_eq!(taken.len(), 2, "leases expired");
    assert!(
        !store
            .record_attempt(&u5.id, "a", Attempt::Delivered { status: 200 }, later)
            .await
            .unwrap()
    );
    assert!(
        store
            .record_attempt(&u5.id, "b", Attempt::Delivered { status: 200 }, later)
            .await
            .unwrap()
    );
    // The user's next change is now first in line; fail it until exhausted.
    let next = store.claim_deliveries(&claim("b", later)).await.unwrap();
    assert_eq!(next.len(), 1);
    assert!(next[0].payload.contains("\"status\":\"frozen\""));
    let retry = Attempt::Retry {
        next_attempt_at: later + 1_000,
        status: Some(503),
        error: "503".to_owned(),
    };
    assert!(
        store
            .record_attempt(&next[0].id, "b", retry, later)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_deliveries(&claim("b", later + 500))
            .await
            .unwrap()
            .iter()
            .all(|d| d.user_id != "u-5"),
        "backing off"
    );
    let again = store
        .claim_deliveries(&claim("b", later + 1_000))
        .await
        .unwrap();
    let mine = again.iter().find(|d| d.user_id == "u-5").unwrap();
    assert_eq!(mine.attempts, 1);
    let exhausted = Attempt::Exhausted {
        status: Some(500),
        error: "500".to_owned(),
    };
    store
        .record_attempt(&mine.id, "b", exhausted, later + 1_000)
        .await
        .unwrap();
    assert_eq!(
        store.delivery(&mine.id).await.unwrap().unwrap().status,
        DeliveryStatus::Failed
    );
    let retried = store
        .retry_delivery(&mine.id, "cli", later + 2_000)
        .await
        .unwrap();
    assert_eq!(
        (retried.status, retried.attempts),
        (DeliveryStatus::Pending, 0)
    );
    let conflict = store.retry_delivery(&mine.id, "cli", later + 2_000).await;
    assert!(
        matches!(conflict, Err(CommandError::Conflict(_))),
        "{conflict:?}"
    );
    // 410 Gone disables the endpoint: nothing is handed out until it is enabled again.
    let gone = store
        .claim_deliveries(&claim("b", later + 2_000))
        .await
        .unwrap();
    let gone = gone.iter().find(|d| d.user_id == "u-5").unwrap();
    store
        .record_attempt(&gone.id, "b", Attempt::Gone, later + 2_000)
        .await
        .unwrap();
    assert!(store.endpoints().await.unwrap()[0].disabled_at.is_some());
    assert!(
        store
            .claim_deliveries(&claim("b", later + 3_000))
            .await
            .unwrap()
            .is_empty()
    );
    store
        .enable_endpoint("app", "cli", later + 4_000)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_deliveries(&claim("b", later + 4_000))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store.outbox_backlog().await.unwrap() >= 1);
}

//! The conformance suite every [`Store`] backend must pass (feature `conformance`): each
//! function sets up its own data through the trait, runs one use case and checks the result
//! against the contract, panicking with a message on any difference. A backend's tests call
//! each one with a fresh, migrated store (see `riskhook-store-sqlite/tests/conformance.rs`).
//!
//! The events are minimal hand-made records: the suite tests storage, not Didit parsing. Their
//! session statuses carry stage 0 unless a case is about stages: the store orders by the stage
//! it is given, whatever the provider numbers it.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use riskhook_core::assessment::{Decision, UserStatus};
use riskhook_core::audit::{AuditKey, BrokenLink, ChainReport, ChainVerifier};
use riskhook_core::review::{ActionKind, ActionStatus, CaseStatus, Outcome, Person};

use crate::{
    AssessmentId, Attempt, CaseFilter, Claim, CommandError, DecideAction, DeliveryFilter,
    DeliveryStatus, EventId, EventRecord, IngestOutcome, NewApiKey, NewAssessment, NewAuditEntry,
    ResolveCase, Role, SessionStatus, Stage, Store, UiSessionRecord, UserAction,
};

/// A session event for `user`, with its own delivery and content keys.
pub fn event(n: u32, user: &str, session: &str, status: &str, timestamp: i64) -> EventRecord {
    EventRecord {
        id: EventId::parse(format!("evt_{n:08}")).unwrap(),
        received_at: 1_780_000_000 + i64::from(n),
        webhook_type: "status.updated".to_owned(),
        delivery_key: Some(format!("delivery-{n}")),
        content_key: format!("status.updated|{session}|{status}|{timestamp}"),
        subject_id: Some(session.to_owned()),
        session_id: Some(session.to_owned()),
        status: Some(status.to_owned()),
        session_status: Some(SessionStatus::new(status, Stage::default())),
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
        id: AssessmentId::parse(format!("asm_{n:08}")).unwrap(),
        score,
        decision,
        policy_hash: "test-policy".to_owned(),
        evaluated_at: 1_780_000_000 + i64::from(n),
        json: format!("{{\"n\":{n},\"decision\":\"{}\"}}", decision.as_str()),
        signals: format!("{{\"aml.total_hits\":{n}}}"),
        shadows: Vec::new(),
    }
}

/// Stores three session events assessed by the default policy, on signals of every kind (a
/// float without a fraction, a string that needs escaping, lists, none at all), and one
/// without an assessment. Returns each one's compact snapshot, canonical (`None` for the
/// unassessed one), in arrival order: what [`replayed_snapshots`] must read back, whether
/// intake wrote the snapshots or a migration's backfill derived them from the assessments.
pub async fn store_assessed_session_events(store: &dyn Store) -> Vec<Option<String>> {
    use riskhook_core::policy::{DEFAULT_POLICY, Policy};
    use riskhook_core::signals::{SignalValue, Signals};

    let policy = Policy::load(DEFAULT_POLICY).unwrap();
    let mut every_kind = Signals::new();
    let values = [
        ("session.status", SignalValue::String("Approved".into())),
        ("session.body_trusted", SignalValue::Bool(true)),
        (
            "document.nationality",
            SignalValue::String("E\"S\\P\u{e9}\n".into()),
        ),
        ("document.age", SignalValue::Int(17)),
        ("face.match_score", SignalValue::Float(98.0)),
        ("liveness.score", SignalValue::Float(61.25)),
        ("aml.sanctions_hits", SignalValue::Int(1)),
        (
            "risk.codes",
            SignalValue::StringList(vec!["A".into(), "B".into()]),
        ),
        ("risk.decline_codes", SignalValue::StringList(Vec::new())),
    ];
    for (name, value) in values {
        every_kind.set(name, value, "evt_x", "decision.somewhere[0]");
    }
    let mut few = Signals::new();
    few.set("email.breached", SignalValue::Bool(false), "evt_y", "p");
    let mut expected = Vec::new();
    for (n, signals) in [(31, every_kind), (32, few), (33, Signals::new())] {
        let user = format!("u-snap-{n}");
        let assessed = policy.assess(&signals, 1_780_000_500 + i64::from(n));
        let record = NewAssessment {
            id: AssessmentId::parse(format!("asm_{n:08}")).unwrap(),
            score: assessed.score,
            decision: assessed.decision,
            policy_hash: assessed.policy.hash.clone(),
            evaluated_at: assessed.evaluated_at,
            json: assessed.to_json(),
            signals: signals.values_json(),
            shadows: Vec::new(),
        };
        let e = event(n, &user, &format!("sess-{user}"), "Approved", 1_780_000_000);
        store.ingest(e, Some(record)).await.unwrap();
        expected.push(Some(signals.values_json()));
    }
    let e = event(34, "u-snap-34", "sess-u-snap-34", "Approved", 1_780_000_000);
    store.ingest(e, None).await.unwrap();
    expected.push(None);
    expected
}

/// Every stored session event's compact snapshot as a backtest reads it, canonical.
pub async fn replayed_snapshots(store: &dyn Store) -> Vec<Option<String>> {
    let filter = crate::ReplayFilter {
        limit: 1_000,
        ..crate::ReplayFilter::default()
    };
    store
        .replay_events(&filter)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            r.signals.map(|json| {
                riskhook_core::signals::Signals::from_values_json(&json)
                    .unwrap_or_else(|e| panic!("{json}: {e}"))
                    .values_json()
            })
        })
        .collect()
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

/// A session is at its greatest observation, in either arrival order: a later body timestamp
/// wins whatever the stages, at one timestamp the later stage wins, at one stage the greater
/// text; the stage is stored with the status.
pub async fn a_session_is_at_its_greatest_observation(store: &dyn Store) {
    // (session, first (status, stage, timestamp), second, the status it ends at)
    let cases = [
        (
            "sess-o1",
            ("In Review", 4, 100),
            ("Approved", 6, 100),
            "Approved",
        ),
        (
            "sess-o2",
            ("Approved", 6, 100),
            ("In Review", 4, 100),
            "Approved",
        ),
        (
            "sess-o3",
            ("Declined", 6, 100),
            ("Approved", 6, 100),
            "Declined",
        ),
        (
            "sess-o4",
            ("Approved", 6, 100),
            ("Declined", 6, 100),
            "Declined",
        ),
        (
            "sess-o5",
            ("Approved", 6, 100),
            ("In Progress", 2, 99),
            "Approved",
        ),
        (
            "sess-o6",
            ("Approved", 6, 100),
            ("In Progress", 2, 101),
            "In Progress",
        ),
    ];
    let mut n = 900;
    for (session, first, second, expected) in cases {
        for (status, stage, timestamp) in [first, second] {
            n += 1;
            let mut observed = event(n, "", session, status, 1_780_000_000 + timestamp);
            observed.vendor_data = None;
            observed.session_status = Some(SessionStatus::new(status, Stage::new(stage)));
            let outcome = store.ingest(observed, None).await.unwrap();
            assert!(
                matches!(outcome, IngestOutcome::Accepted { .. }),
                "{outcome:?}"
            );
        }
        let record = store.session(session).await.unwrap().unwrap();
        assert_eq!(record.status.as_str(), expected, "{session}");
        let stage = [first, second]
            .into_iter()
            .find(|(status, ..)| *status == expected)
            .map(|(_, stage, _)| Stage::new(stage));
        assert_eq!(Some(record.status.stage()), stage, "{session}");
        assert_eq!(record.event_count, 2, "{session}");
    }
}

/// Reconciliation's questions: an event is found by its delivery key or its content key (as
/// `ingest` deduplicates), and only sessions stuck in a non-terminal status before the cut-off
/// are unfinished, oldest first.
pub async fn reconciliation_finds_events_and_unfinished_sessions(store: &dyn Store) {
    let stored = event(1, "u-1", "sess-a", "In Progress", 1_780_000_100);
    let content_key = stored.content_key.clone();
    store.ingest(stored, None).await.unwrap();
    let by_delivery = store
        .find_event(Some("delivery-1"), "no such content")
        .await;
    assert_eq!(by_delivery.unwrap().as_deref(), Some("evt_00000001"));
    let by_content = store
        .find_event(Some("another delivery"), &content_key)
        .await;
    assert_eq!(by_content.unwrap().as_deref(), Some("evt_00000001"));
    let without_key = store.find_event(None, &content_key).await;
    assert_eq!(without_key.unwrap().as_deref(), Some("evt_00000001"));
    assert_eq!(store.find_event(None, "nothing").await.unwrap(), None);
    assert_eq!(
        store
            .find_event(Some("delivery-2"), "nothing")
            .await
            .unwrap(),
        None
    );

    store
        .ingest(
            event(2, "u-2", "sess-b", "Not Started", 1_780_000_050),
            None,
        )
        .await
        .unwrap();
    store
        .ingest(event(3, "u-3", "sess-c", "Approved", 1_780_000_010), None)
        .await
        .unwrap();
    store
        .ingest(
            event(4, "u-4", "sess-d", "In Progress", 1_780_000_500),
            None,
        )
        .await
        .unwrap();
    store
        .ingest(
            event(5, "u-5", "sess-e", "Kyc Expired", 1_780_000_020),
            None,
        )
        .await
        .unwrap();
    store
        .ingest(
            event(6, "u-6", "sess-f", "Some New Status", 1_780_000_030),
            None,
        )
        .await
        .unwrap();
    let stuck = store.unfinished_sessions(1_780_000_200, 10).await.unwrap();
    let ids: Vec<&str> = stuck.iter().map(|s| s.session_id.as_str()).collect();
    assert_eq!(ids, ["sess-f", "sess-b", "sess-a"]);
    assert_eq!(stuck[2].status.as_str(), "In Progress");
    assert_eq!(stuck[2].event_count, 1);
    let first = store.unfinished_sessions(1_780_000_200, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].session_id, "sess-f");
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

/// The queue's filters and count: unresolved cases only, by decision and assignee, counted
/// without the page's limit.
pub async fn the_queue_counts_and_filters_unresolved_cases(store: &dyn Store) {
    ingest(store, 1, "u-q1", Decision::Review).await;
    ingest(store, 2, "u-q2", Decision::Freeze).await;
    ingest(store, 3, "u-q3", Decision::Review).await;
    ingest(store, 4, "u-q4", Decision::Approve).await;
    let q3 = open_case(store, "u-q3").await.unwrap();
    store.claim_case(&q3.id, "alice", 20).await.unwrap();
    let q1 = open_case(store, "u-q1").await.unwrap();
    store.claim_case(&q1.id, "bob", 21).await.unwrap();
    store
        .resolve_case(ResolveCase {
            case_id: q1.id.clone(),
            actor: "bob".to_owned(),
            person: Person::on_their_own("bob".to_owned()),
            outcome: Outcome::Approve,
            reason: "fine".to_owned(),
            now: 22,
            four_eyes: false,
        })
        .await
        .unwrap();

    let queue = CaseFilter {
        unresolved: true,
        limit: 1,
        ..CaseFilter::default()
    };
    let page = store.cases(&queue).await.unwrap();
    assert_eq!(page.len(), 1, "the limit pages");
    assert_eq!(page[0].user_id, "u-q2", "oldest unresolved first: {page:?}");
    assert_eq!(store.count_cases(&queue).await.unwrap(), 2, "q2 and q3");
    let all = CaseFilter {
        limit: 1,
        ..CaseFilter::default()
    };
    assert_eq!(
        store.count_cases(&all).await.unwrap(),
        3,
        "with the resolved one"
    );
    let mine = CaseFilter {
        unresolved: true,
        assignee: Some("alice".to_owned()),
        limit: 10,
        ..CaseFilter::default()
    };
    assert_eq!(store.count_cases(&mine).await.unwrap(), 1);
    assert_eq!(store.cases(&mine).await.unwrap()[0].user_id, "u-q3");
    let frozen = CaseFilter {
        unresolved: true,
        decision: Some(Decision::Freeze),
        limit: 10,
        ..CaseFilter::default()
    };
    assert_eq!(store.count_cases(&frozen).await.unwrap(), 1);
    let after = CaseFilter {
        after: Some(page[0].id.clone()),
        ..queue.clone()
    };
    assert_eq!(
        store.count_cases(&after).await.unwrap(),
        2,
        "a count ignores the cursor"
    );
}

/// Workbench sessions: stored by token hash, updated, ended, and swept once idle.
pub async fn workbench_sessions_live_until_ended_or_idle(store: &dyn Store) {
    let session = |hash: &str, at: i64| UiSessionRecord {
        token_hash: hash.to_owned(),
        key_id: "reviewer".to_owned(),
        csrf_token: format!("csrf-{hash}"),
        created_at: at,
        last_seen_at: at,
        flash: None,
    };
    store
        .create_ui_session(session("old", 100), 0)
        .await
        .unwrap();
    store
        .create_ui_session(session("new", 1_000), 0)
        .await
        .unwrap();
    assert_eq!(
        store.ui_session("new").await.unwrap(),
        Some(session("new", 1_000))
    );
    assert_eq!(store.ui_session("missing").await.unwrap(), None);

    store
        .update_ui_session("new", 1_100, Some("Case claimed."))
        .await
        .unwrap();
    let seen = store.ui_session("new").await.unwrap().unwrap();
    assert_eq!(
        (seen.last_seen_at, seen.flash.as_deref()),
        (1_100, Some("Case claimed."))
    );
    store.update_ui_session("new", 1_200, None).await.unwrap();
    assert_eq!(store.ui_session("new").await.unwrap().unwrap().flash, None);
    store.update_ui_session("missing", 1, None).await.unwrap();

    // A new sign-in sweeps sessions idle since before the cut-off, and only those.
    store
        .create_ui_session(session("third", 2_000), 500)
        .await
        .unwrap();
    assert_eq!(store.ui_session("old").await.unwrap(), None, "swept");
    assert!(store.ui_session("new").await.unwrap().is_some());

    store.delete_ui_session("new").await.unwrap();
    assert_eq!(store.ui_session("new").await.unwrap(), None);
    store.delete_ui_session("new").await.unwrap();
    assert!(store.ui_session("third").await.unwrap().is_some());
}

/// A backtest's reads: session events in arrival order, a page at a time, with their
/// assessment (or, unassessed, their body), within a window; and people's verdicts.
pub async fn backtests_read_session_events_in_arrival_order(store: &dyn Store) {
    ingest(store, 1, "u-b1", Decision::Review).await;
    ingest(store, 2, "u-b2", Decision::Approve).await;
    // Stored without an assessment: replayed from its body.
    store
        .ingest(event(3, "u-b3", "sess-b3", "Approved", 1_780_000_100), None)
        .await
        .unwrap();
    // Not a session event: never replayed.
    let mut other = event(4, "u-b4", "sess-b4", "Approved", 1_780_000_004);
    other.session_id = None;
    other.webhook_type = "user.data.updated".to_owned();
    store.ingest(other, None).await.unwrap();
    ingest(store, 5, "u-b5", Decision::Freeze).await;

    let mut filter = crate::ReplayFilter {
        limit: 2,
        ..crate::ReplayFilter::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = store.replay_events(&filter).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        filter.after_seq = last.seq;
        seen.extend(page);
    }
    let users: Vec<&str> = seen.iter().filter_map(|r| r.user_id.as_deref()).collect();
    assert_eq!(users, ["u-b1", "u-b2", "u-b3", "u-b5"]);
    assert!(
        seen.windows(2).all(|w| w[0].seq < w[1].seq),
        "arrival order"
    );
    assert_eq!(seen[0].signals.as_deref(), Some(r#"{"aml.total_hits":1}"#));
    assert_eq!(seen[0].at, 1_780_000_001, "the assessment's now");
    assert_eq!(
        seen[0].unassessed, None,
        "no body when the snapshot is there"
    );
    assert_eq!(seen[2].signals, None);
    assert_eq!(
        seen[2].unassessed,
        Some(crate::ReplayBody {
            event_id: "evt_00000003".to_owned(),
            body_trusted: true,
            raw: br#"{"n":3}"#.to_vec(),
        })
    );
    assert_eq!(seen[2].at, 1_780_000_100, "the body's own timestamp");
    assert_eq!(seen[3].signals.as_deref(), Some(r#"{"aml.total_hits":5}"#));

    let window = crate::ReplayFilter {
        received_since: Some(1_780_000_002),
        received_until: Some(1_780_000_005),
        limit: 10,
        ..crate::ReplayFilter::default()
    };
    let users: Vec<Option<String>> = store
        .replay_events(&window)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.user_id)
        .collect();
    assert_eq!(
        users,
        [Some("u-b2".to_owned()), Some("u-b3".to_owned())],
        "since inclusive, until exclusive"
    );

    assert!(store.verdicts().await.unwrap().is_empty());
    let case = open_case(store, "u-b1").await.unwrap();
    store
        .resolve_case(ResolveCase {
            case_id: case.id,
            actor: "alice".to_owned(),
            person: Person::on_their_own("alice".to_owned()),
            outcome: Outcome::Decline,
            reason: "no".to_owned(),
            now: 50,
            four_eyes: false,
        })
        .await
        .unwrap();
    let verdicts = store.verdicts().await.unwrap();
    assert_eq!(verdicts.len(), 1);
    assert_eq!(
        (
            verdicts[0].user_id.as_str(),
            verdicts[0].resolved_at,
            verdicts[0].outcome
        ),
        ("u-b1", 50, Outcome::Decline)
    );
}

/// Shadow assessments are stored with the real one, in its transaction, change nothing about
/// the user, and are read back with it in order.
pub async fn shadow_assessments_are_stored_and_change_nothing(store: &dyn Store) {
    let shadow = |decision: Decision| crate::NewShadowAssessment {
        shadow_id: "strict".to_owned(),
        policy_hash: "strict-hash".to_owned(),
        score: 90,
        decision,
        fired: vec!["rule.a".to_owned(), "rule.b".to_owned()],
    };
    for n in 1..=3 {
        let mut a = assessment(n, Decision::Approve, 5);
        a.shadows = vec![shadow(Decision::Freeze)];
        store
            .ingest(
                event(
                    n,
                    "u-sh",
                    &format!("sess-sh-{n}"),
                    "Approved",
                    1_780_000_000 + i64::from(n),
                ),
                Some(a),
            )
            .await
            .unwrap();
    }
    // A duplicate delivery stores nothing, its shadow neither.
    let mut again = assessment(9, Decision::Approve, 5);
    again.shadows = vec![shadow(Decision::Freeze)];
    let duplicate = store
        .ingest(
            event(1, "u-sh", "sess-sh-1", "Approved", 1_780_000_001),
            Some(again),
        )
        .await
        .unwrap();
    assert!(
        matches!(duplicate, IngestOutcome::Duplicate { .. }),
        "{duplicate:?}"
    );

    assert_eq!(
        status(store, "u-sh").await,
        UserStatus::Active,
        "the shadow froze nobody"
    );
    assert!(open_case(store, "u-sh").await.is_none());
    let first = store.shadow_assessments("strict", None, 2).await.unwrap();
    let ids: Vec<&str> = first.iter().map(|r| r.assessment_id.as_str()).collect();
    assert_eq!(ids, ["asm_00000001", "asm_00000002"]);
    let rest = store
        .shadow_assessments("strict", Some("asm_00000002"), 2)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    let r = &rest[0];
    assert_eq!(
        (
            r.user_id.as_deref(),
            r.decision,
            r.score,
            r.policy_hash.as_str()
        ),
        (Some("u-sh"), Decision::Freeze, 90, "strict-hash")
    );
    assert_eq!(r.fired, ["rule.a", "rule.b"]);
    assert_eq!(r.assessment, r#"{"n":3,"decision":"approve"}"#);
    assert!(
        store
            .shadow_assessments("other", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
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
        person: Person::on_their_own(actor),
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

/// Four eyes: lifting a freeze waits for a second person, whose key the requester did not make
/// and which existed before the request.
pub async fn four_eyes_needs_a_second_key(store: &dyn Store) {
    ingest(store, 1, "u-4", Decision::Freeze).await;
    let case = open_case(store, "u-4").await.unwrap();
    let alice = Person {
        principal: "alice".to_owned(),
        made_by: vec!["ops".to_owned()],
        key_created_at: Some(5),
    };
    let pending = store
        .resolve_case(ResolveCase {
            case_id: case.id.clone(),
            actor: "alice".to_owned(),
            person: alice.clone(),
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
        person: Person::on_their_own(actor),
        approve: true,
        reason: Some("agreed".to_owned()),
        now: 31,
    };
    let bob_made_by = |made_by: &str, at: i64| Person {
        principal: "bob".to_owned(),
        made_by: vec![made_by.to_owned()],
        key_created_at: Some(at),
    };
    let refusals = [
        ("the same key", decide("alice")),
        (
            "another key of the same person",
            DecideAction {
                person: alice.clone(),
                ..decide("alice-phone")
            },
        ),
        (
            "a key the requester made",
            DecideAction {
                person: bob_made_by("alice", 20),
                ..decide("bob-by-alice")
            },
        ),
        (
            "a key made after the request",
            DecideAction {
                person: bob_made_by("ops", 30),
                ..decide("bob-late")
            },
        ),
    ];
    for (what, attempt) in refusals {
        let same = store.decide_action(attempt).await;
        assert!(
            matches!(same, Err(CommandError::SamePerson(_))),
            "{what}: {same:?}"
        );
    }
    let applied = store.decide_action(decide("bob")).await.unwrap();
    assert_eq!(applied.user.status, UserStatus::Active);
    assert_eq!(applied.case.unwrap().status, CaseStatus::Resolved);
    assert_eq!(applied.action.unwrap().status, ActionStatus::Applied);
    // A manual freeze, then an unfreeze that waits, then a rejection.
    let freeze = |kind| UserAction {
        user_id: "u-4".to_owned(),
        kind,
        actor: "alice".to_owned(),
        person: alice.clone(),
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
        verifier.check(&e.fields(), &e.hash, e.keyed).unwrap();
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

/// With an audit key set (issue 11, finding 4), every entry appended after it is keyed —
/// through ingest, a command and a plain append alike — and those before it are not; the
/// chain verifies under the key, cannot be checked without it, and fails under another key.
/// The head is the newest entry, and the key cannot be changed once set.
pub async fn keyed_appends_verify_only_with_their_key(store: &dyn Store) {
    let key = AuditKey::new(b"the conformance suite's audit key").unwrap();
    let other = AuditKey::new(b"another key, not the store's one!").unwrap();
    assert!(store.audit_head().await.unwrap().is_none());
    store
        .append_audit(NewAuditEntry::system(
            1,
            "test.before_key",
            "test".to_owned(),
            "{}".to_owned(),
        ))
        .await
        .unwrap();
    store.set_audit_key(key.clone()).await.unwrap();
    assert!(store.set_audit_key(other.clone()).await.is_err());
    ingest(store, 1, "u-keyed", Decision::Review).await;
    let key_record = NewApiKey {
        id: "key_k".to_owned(),
        name: "keyed".to_owned(),
        principal: "keyed".to_owned(),
        role: Role::Review,
        hash: "cd".repeat(32),
    };
    store.create_key(key_record, "cli", 2).await.unwrap();
    store
        .append_audit(NewAuditEntry::system(
            3,
            "test.after_key",
            "test".to_owned(),
            "{}".to_owned(),
        ))
        .await
        .unwrap();

    let entries = store.audit(0, 10_000).await.unwrap();
    let marks: Vec<(&str, bool)> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.keyed))
        .collect();
    assert_eq!(marks[0], ("test.before_key", false), "{marks:?}");
    assert!(marks[1..].iter().all(|(_, keyed)| *keyed), "{marks:?}");
    assert!(marks.len() >= 5, "{marks:?}");
    assert_eq!(store.audit_head().await.unwrap().as_ref(), entries.last());

    let verify = |key: Option<AuditKey>| -> Result<ChainReport, BrokenLink> {
        let mut verifier = ChainVerifier::with_key(key);
        for e in &entries {
            verifier.check(&e.fields(), &e.hash, e.keyed)?;
        }
        verifier.finish()
    };
    let keyed = i64::try_from(entries.len()).unwrap() - 1;
    let report = verify(Some(key)).unwrap();
    assert_eq!((report.keyed, report.unchecked), (keyed, 0));
    let report = verify(None).unwrap();
    assert_eq!(
        report.unchecked, keyed,
        "without the key nothing keyed is checked"
    );
    assert_eq!(verify(Some(other)).unwrap_err().seq, 2);
}

/// Stored keys are found by hash until revoked; creation and revocation are audited.
pub async fn keys_are_stored_hashed_and_revocable(store: &dyn Store) {
    let key = NewApiKey {
        id: "key_1".to_owned(),
        name: "alice".to_owned(),
        principal: "alice".to_owned(),
        role: Role::Review,
        hash: "ab".repeat(32),
    };
    let created = store.create_key(key.clone(), "cli", 1).await.unwrap();
    assert_eq!(
        (created.role, created.principal.as_str(), created.revoked_at),
        (Role::Review, "alice", None)
    );
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
    assert_eq!(
        store.key("key_1").await.unwrap().unwrap().revoked_at,
        Some(3),
        "found by id, revoked or not"
    );
    assert!(store.key("key_2").await.unwrap().is_none());
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

// --- Concurrent writers ----------------------------------------------------------------------
//
// A backend shared by several instances meets the same requests at the same moment. These cases
// put many store calls in flight at once and check that the outcome is the one a single writer
// would give.

// `join_all` drives every future at once, on this task, and returns their outputs in order.
// Every store call is in flight together with the others — which is what a database sees of
// concurrent requests — without the store having to be `'static` for `tokio::spawn`.
use futures_util::future::join_all;

fn verify_chain(entries: &[crate::AuditRecord]) {
    let mut verifier = ChainVerifier::new();
    for e in entries {
        verifier.check(&e.fields(), &e.hash, e.keyed).unwrap();
    }
}

/// Sixteen copies of one delivery arriving at once (with a user, and without one) store one
/// event: exactly one is accepted, every other is a duplicate naming it.
pub async fn concurrent_identical_deliveries_are_stored_once(store: &dyn Store) {
    const COPIES: u32 = 16;
    for (first, user, session) in [(100, Some("u-c1"), "sess-c1"), (200, None, "sess-c2")] {
        let copies = (first..first + COPIES).map(|n| {
            // Each request gets its own event and assessment ids, as the service assigns
            // them before the insert; the delivery and content keys are the same.
            let mut copy = event(n, "", session, "Approved", 1_780_000_500);
            copy.delivery_key = Some(format!("delivery-{session}"));
            copy.vendor_data = user.map(str::to_owned);
            store.ingest(copy, Some(assessment(n, Decision::Review, 60)))
        });
        let outcomes: Vec<IngestOutcome> = join_all(copies)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let accepted: Vec<&String> = outcomes
            .iter()
            .filter_map(|o| match o {
                IngestOutcome::Accepted { id, .. } => Some(id),
                IngestOutcome::Duplicate { .. } => None,
            })
            .collect();
        assert_eq!(accepted.len(), 1, "exactly one accepted: {outcomes:?}");
        let id = accepted[0].clone();
        for outcome in &outcomes {
            if let IngestOutcome::Duplicate { id: original } = outcome {
                assert_eq!(original, &id, "{outcomes:?}");
            }
        }
    }
    assert_eq!(store.count_events().await.unwrap(), 2);
    assert_eq!(store.user_assessments("u-c1", 100).await.unwrap().len(), 1);
    let case = open_case(store, "u-c1").await.expect("a case");
    assert_eq!(case.assessment_ids.len(), 1);
    let entries = store.audit(0, 10_000).await.unwrap();
    verify_chain(&entries);
    let recorded = entries
        .iter()
        .filter(|e| e.action == "assessment.recorded")
        .count();
    assert_eq!(recorded, 2, "one assessment.recorded per stored event");
}

/// Many events of one user (six sessions, four events each, deciding approve, review or
/// freeze) arriving at once end in the state feeding them one by one gives, computed here
/// from the set: each session at its greatest observation, the user's decision and score
/// those of the strictest current assessment, one open case holding every review and freeze
/// assessment, frozen since one decided freeze; and an intact audit chain with one
/// `assessment.recorded` per event and one notification per change of the user.
pub async fn concurrent_events_of_one_user_end_as_one_by_one(store: &dyn Store) {
    const USER: &str = "u-many";
    const STATUSES: [&str; 4] = ["In Progress", "In Review", "Approved", "Declined"];
    store.sync_endpoints(&["app".to_owned()], 0).await.unwrap();
    let decide = |n: u32| match n % 7 {
        0 => Decision::Freeze,
        1..=3 => Decision::Review,
        _ => Decision::Approve,
    };
    let score = |n: u32| u8::try_from(n * 37 % 101).unwrap();
    // (n, session, timestamp): within a session, later j has the later timestamp.
    let events: Vec<(u32, String, i64)> = (0..6u32)
        .flat_map(|k| {
            (0..4u32).map(move |j| {
                let n = 300 + k * 4 + j;
                let timestamp = 1_780_001_000 + i64::from(j * 10 + k);
                (n, format!("sess-many-{k}"), timestamp)
            })
        })
        .collect();
    let ingests = events.iter().map(|(n, session, timestamp)| {
        let status = STATUSES[(*n % 4) as usize];
        store.ingest(
            event(*n, USER, session, status, *timestamp),
            Some(assessment(*n, decide(*n), score(*n))),
        )
    });
    for outcome in join_all(ingests).await {
        assert!(
            matches!(outcome, Ok(IngestOutcome::Accepted { .. })),
            "{outcome:?}"
        );
    }

    // Each session's current event is its last (j = 3).
    let current: Vec<u32> = (0..6u32).map(|k| 300 + k * 4 + 3).collect();
    for (k, n) in current.iter().enumerate() {
        let session = store
            .session(&format!("sess-many-{k}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(session.status_event_id, format!("evt_{n:08}"));
        assert_eq!(
            session.current_assessment_id,
            Some(format!("asm_{n:08}")),
            "session {k}"
        );
        assert_eq!(session.event_count, 4);
    }
    // The strictest current assessment: decision, then score, then the latest evaluated.
    let strictest = current
        .iter()
        .copied()
        .max_by_key(|n| (decide(*n), score(*n), *n))
        .unwrap();
    let evidence: Vec<String> = events
        .iter()
        .filter(|(n, ..)| decide(*n) >= Decision::Review)
        .map(|(n, ..)| format!("asm_{n:08}"))
        .collect();
    let any_freeze = events.iter().any(|(n, ..)| decide(*n) == Decision::Freeze);
    assert!(any_freeze, "the test needs freeze evidence");

    let user = store.user(USER).await.unwrap().unwrap();
    assert_eq!(user.status, UserStatus::Frozen);
    assert_eq!(user.verdict, None);
    assert_eq!(user.decision, decide(strictest));
    assert_eq!(user.score, score(strictest));
    assert_eq!(
        user.current_assessment_id,
        Some(format!("asm_{strictest:08}"))
    );
    assert!(user.ever_frozen);
    let mut sessions = user.sessions.clone();
    sessions.sort();
    let expected: Vec<String> = (0..6).map(|k| format!("sess-many-{k}")).collect();
    assert_eq!(sessions, expected);

    let cases = store
        .cases(&CaseFilter {
            user_id: Some(USER.to_owned()),
            limit: 100,
            ..CaseFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(cases.len(), 1, "one case: {cases:?}");
    assert_eq!(cases[0].status, CaseStatus::Open);
    assert_eq!(cases[0].decision, Decision::Freeze);
    assert_eq!(cases[0].assessment_ids, evidence, "every review and freeze");

    let entries = store.audit(0, 10_000).await.unwrap();
    verify_chain(&entries);
    let count = |action: &str| entries.iter().filter(|e| e.action == action).count();
    assert_eq!(count("assessment.recorded"), events.len());
    assert_eq!(count("case.opened"), 1);
    // The number of changes depends on arrival order; each one is audited and notified once.
    let version = usize::try_from(user.version).unwrap();
    assert!(version >= 1);
    assert_eq!(count("user.updated"), version);
    let notified = store
        .deliveries(&DeliveryFilter {
            user_id: Some(USER.to_owned()),
            limit: 1_000,
            ..DeliveryFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(notified.len(), version);
    let last = notified.first().unwrap();
    assert!(
        last.payload.contains(&format!("\"version\":{version}")),
        "{}",
        last.payload
    );
}

/// Several dispatchers claiming at once never get the same delivery, and still deliver each
/// user's notifications to each endpoint in order.
pub async fn concurrent_dispatchers_never_share_a_delivery(store: &dyn Store) {
    store
        .sync_endpoints(&["app".to_owned(), "crm".to_owned()], 0)
        .await
        .unwrap();
    // Twelve users at once (so the audit chain and the outbox have concurrent writers too),
    // two changes each in order (in review, then frozen), to two endpoints.
    let users = (0..12u32).map(|u| async move {
        let user = format!("u-d{u}");
        ingest(store, 500 + u * 2, &user, Decision::Review).await;
        ingest(store, 501 + u * 2, &user, Decision::Freeze).await;
    });
    join_all(users).await;
    verify_chain(&store.audit(0, 10_000).await.unwrap());
    let all = store
        .deliveries(&DeliveryFilter {
            limit: 1_000,
            ..DeliveryFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 48);
    // One clock for every dispatcher, so `delivered_at` orders the attempts.
    let clock = std::sync::atomic::AtomicI64::new(1_790_000_000_000);
    let tick = || clock.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dispatch = |owner: String| async move {
        let mut claimed = Vec::new();
        loop {
            let claim = Claim {
                owner: owner.clone(),
                now: tick(),
                lease: 600_000,
                limit: 3,
            };
            let batch = store.claim_deliveries(&claim).await.unwrap();
            if batch.is_empty() {
                return claimed;
            }
            for d in batch {
                let ok = store
                    .record_attempt(&d.id, &owner, Attempt::Delivered { status: 200 }, tick())
                    .await
                    .unwrap();
                assert!(ok, "{owner} holds the claim on {}", d.id);
                claimed.push(d.id);
            }
        }
    };
    let claimed: Vec<String> = join_all((0..4).map(|i| dispatch(format!("d{i}"))))
        .await
        .into_iter()
        .flatten()
        .collect();
    let mut unique = claimed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), claimed.len(), "a delivery was claimed twice");
    assert_eq!(claimed.len(), all.len(), "every delivery was claimed");
    assert_eq!(store.outbox_backlog().await.unwrap(), 0);
    for u in 0..12u32 {
        for endpoint in ["app", "crm"] {
            let mut mine = store
                .deliveries(&DeliveryFilter {
                    user_id: Some(format!("u-d{u}")),
                    endpoint_id: Some(endpoint.to_owned()),
                    limit: 100,
                    ..DeliveryFilter::default()
                })
                .await
                .unwrap();
            mine.reverse(); // oldest first
            assert_eq!(mine.len(), 2);
            assert!(mine.iter().all(|d| d.status == DeliveryStatus::Delivered));
            assert!(
                mine[0].delivered_at < mine[1].delivered_at,
                "order per user and endpoint: {mine:?}"
            );
        }
    }
}

//! The review rules as tables: each row a situation, the command, and what the plan does (its
//! writes, audit actions and recomputation, spelled short) or the refusal people read.

use riskhook_core::assessment::{Decision, UserStatus};
use riskhook_core::review::{ActionKind, CaseStatus, Outcome, Person};

use super::*;

const NOW: i64 = 1_000;

/// A plan, short: one word per write, the audit actions by name, the recomputation last.
fn spell(plan: &Plan) -> Vec<String> {
    let mut out: Vec<String> = plan
        .writes
        .iter()
        .map(|w| match w {
            Write::ClaimCase { case_id, assignee } => format!("claim {case_id} by {assignee}"),
            Write::AwaitApproval {
                case_id,
                requested_by,
            } => format!("await {case_id} by {requested_by}"),
            Write::ReturnCase { case_id } => format!("return {case_id}"),
            Write::ResolveCase {
                case_id,
                outcome,
                resolved_by,
                ..
            } => format!("resolve {case_id} {} by {resolved_by}", outcome.as_str()),
            Write::InsertAction(a) => format!(
                "action {} {} {} by {}",
                a.id,
                a.kind.as_str(),
                a.status.as_str(),
                a.requested_by
            ),
            Write::DecideAction {
                action_id,
                status,
                decided_by,
                ..
            } => format!("decide {action_id} {} by {decided_by}", status.as_str()),
            Write::SetVerdict {
                user_id,
                verdict,
                by,
            } => format!("verdict {user_id} {} by {by}", verdict.as_str()),
            Write::Audit(entry) => format!("audit {} {}", entry.action, entry.subject),
        })
        .collect();
    if let Some(r) = &plan.refresh {
        out.push(format!(
            "refresh {} for {} by {}",
            r.user_id, r.what, r.actor
        ));
    }
    out
}

/// A plan spelled short, or the refusal's message.
type Spelled = Result<Vec<String>, String>;

fn outcome(result: Result<Plan, CommandError>) -> Spelled {
    result.map(|plan| spell(&plan)).map_err(|e| e.to_string())
}

fn case(status: CaseStatus, assignee: Option<&str>) -> CaseFacts {
    CaseFacts {
        id: "case_1".to_owned(),
        user_id: "u-1".to_owned(),
        status,
        assignee: assignee.map(str::to_owned),
        evidence: 2,
    }
}

fn lines(spelled: &[&str]) -> Spelled {
    Ok(spelled.iter().map(|s| (*s).to_owned()).collect())
}

fn refused(message: &str) -> Spelled {
    Err(message.to_owned())
}

#[test]
fn claiming() {
    use CaseStatus::*;
    let cases: [(CaseStatus, Option<&str>, Spelled); 5] = [
        (
            Open,
            None,
            lines(&["claim case_1 by k1", "audit case.claimed case:case_1"]),
        ),
        (Claimed, Some("k1"), lines(&[])),
        (Claimed, Some("k2"), refused("case case_1 is claimed by k2")),
        (
            Resolved,
            Some("k1"),
            refused("case case_1 is already resolved"),
        ),
        (
            PendingApproval,
            Some("k1"),
            refused("case case_1 awaits a second person's approval of its resolution"),
        ),
    ];
    for (status, assignee, expected) in cases {
        let got = outcome(plan_claim(&case(status, assignee), "k1", NOW));
        assert_eq!(got, expected, "{status:?} claimed by {assignee:?}");
    }
}

fn resolve_command(outcome: Outcome, four_eyes: bool, reason: &str) -> ResolveCase {
    ResolveCase {
        case_id: "case_1".to_owned(),
        actor: "k1".to_owned(),
        person: Person::on_their_own("ann"),
        outcome,
        reason: reason.to_owned(),
        now: NOW,
        four_eyes,
    }
}

#[test]
fn resolving() {
    use CaseStatus::*;
    use Outcome::*;
    use UserStatus::{Active, Frozen, InReview};
    let resolved = |outcome: &str, verdict: &str| {
        lines(&[
            &format!("resolve case_1 {outcome} by k1"),
            "audit case.resolved case:case_1",
            &format!("verdict u-1 {verdict} by k1"),
            "refresh u-1 for case.resolved by k1",
        ])
    };
    let awaiting = lines(&[
        "action act_1 resolve_case pending by k1",
        "await case_1 by k1",
        "audit action.requested action:act_1",
    ]);
    #[allow(clippy::type_complexity)]
    let cases: Vec<(CaseFacts, Option<UserStatus>, Outcome, bool, &str, Spelled)> = vec![
        (
            case(Open, None),
            Some(InReview),
            Approve,
            false,
            "ok",
            resolved("approve", "active"),
        ),
        (
            case(Claimed, Some("k1")),
            Some(InReview),
            Decline,
            false,
            "ok",
            resolved("decline", "declined"),
        ),
        (
            case(Claimed, None),
            Some(InReview),
            Freeze,
            true,
            "ok",
            resolved("freeze", "frozen"),
        ),
        // Four eyes gates only lifting a freeze.
        (
            case(Open, None),
            Some(Frozen),
            Approve,
            true,
            "ok",
            awaiting,
        ),
        (
            case(Open, None),
            Some(Frozen),
            Approve,
            false,
            "ok",
            resolved("approve", "active"),
        ),
        (
            case(Open, None),
            Some(Frozen),
            Freeze,
            true,
            "ok",
            resolved("freeze", "frozen"),
        ),
        (
            case(Open, None),
            Some(Active),
            Approve,
            true,
            "ok",
            resolved("approve", "active"),
        ),
        // Refusals, the reason first of all.
        (
            case(Resolved, None),
            Some(Active),
            Approve,
            false,
            " ",
            refused("a reason is required"),
        ),
        (
            case(Resolved, None),
            Some(Active),
            Approve,
            false,
            "ok",
            refused("case case_1 is already resolved"),
        ),
        (
            case(PendingApproval, Some("k1")),
            Some(Frozen),
            Approve,
            true,
            "ok",
            refused("case case_1 awaits a second person's approval of its resolution"),
        ),
        (
            case(Claimed, Some("k2")),
            Some(InReview),
            Approve,
            false,
            "ok",
            refused("case case_1 is claimed by k2; only its assignee can resolve it"),
        ),
        (
            case(Open, None),
            None,
            Approve,
            false,
            "ok",
            refused("user u-1 not found"),
        ),
    ];
    for (facts, status, outcome_, four_eyes, reason, expected) in cases {
        let command = resolve_command(outcome_, four_eyes, reason);
        let got = outcome(plan_resolution(Some(&facts), status, &command, "act_1"));
        assert_eq!(
            got, expected,
            "{:?} {status:?} {outcome_:?} four eyes {four_eyes}",
            facts.status
        );
    }
    let missing = plan_resolution(None, None, &resolve_command(Approve, false, "ok"), "act_1");
    assert_eq!(outcome(missing), refused("case case_1 not found"));
    let no_reason = plan_resolution(None, None, &resolve_command(Approve, false, ""), "act_1");
    assert_eq!(outcome(no_reason), refused("a reason is required"));
}

#[test]
fn a_pending_resolution_records_what_the_second_person_will_check() {
    let facts = case(CaseStatus::Claimed, None);
    let command = resolve_command(Outcome::Approve, true, "cleared");
    let plan = plan_resolution(Some(&facts), Some(UserStatus::Frozen), &command, "act_1")
        .expect("a resolution for a second person");
    let Write::InsertAction(action) = &plan.writes[0] else {
        panic!("{plan:?}")
    };
    assert_eq!(action.case_evidence, Some(2));
    assert_eq!(action.outcome, Some(Outcome::Approve));
    assert_eq!(
        action.requester,
        requester_json(&Person::on_their_own("ann"))
    );
    assert_eq!(
        plan.touched,
        Touched {
            user_id: "u-1".to_owned(),
            case_id: Some("case_1".to_owned()),
            action_id: Some("act_1".to_owned()),
        }
    );
}

fn user_command(kind: ActionKind, four_eyes: bool) -> UserAction {
    UserAction {
        user_id: "u-1".to_owned(),
        kind,
        actor: "k1".to_owned(),
        person: Person::on_their_own("ann"),
        reason: "seen".to_owned(),
        now: NOW,
        four_eyes,
    }
}

#[test]
fn freezing_and_unfreezing() {
    use ActionKind::*;
    use UserStatus::{Active, Frozen, InReview};
    let applied = |kind: &str, what: &str, verdict: &str| {
        lines(&[
            &format!("action act_1 {kind} applied by k1"),
            &format!("audit {what} user:u-1"),
            &format!("verdict u-1 {verdict} by k1"),
            &format!("refresh u-1 for {what} by k1"),
        ])
    };
    #[allow(clippy::type_complexity)]
    let cases: Vec<(
        ActionKind,
        Option<UserStatus>,
        Option<Decision>,
        bool,
        Spelled,
    )> = vec![
        (
            Freeze,
            Some(Active),
            None,
            true,
            applied("freeze", "user.frozen", "frozen"),
        ),
        (
            Freeze,
            Some(Frozen),
            None,
            true,
            applied("freeze", "user.frozen", "frozen"),
        ),
        (
            Unfreeze,
            Some(Frozen),
            None,
            false,
            applied("unfreeze", "user.unfrozen", "active"),
        ),
        (
            Unfreeze,
            Some(Frozen),
            Some(Decision::Review),
            false,
            applied("unfreeze", "user.unfrozen", "active"),
        ),
        (
            Unfreeze,
            Some(Frozen),
            None,
            true,
            lines(&[
                "action act_1 unfreeze pending by k1",
                "audit action.requested action:act_1",
            ]),
        ),
        (
            Unfreeze,
            Some(InReview),
            None,
            false,
            refused("user u-1 is in_review, not frozen"),
        ),
        (
            Unfreeze,
            Some(Frozen),
            Some(Decision::Freeze),
            false,
            refused(
                "user u-1 is frozen by the evidence of open case case_9; resolve that case instead",
            ),
        ),
        (
            ResolveCase,
            Some(Active),
            None,
            false,
            refused("a case is resolved through its case, not as a user action"),
        ),
        (Freeze, None, None, false, refused("user u-1 not found")),
    ];
    for (kind, status, open, four_eyes, expected) in cases {
        let open_case = open.map(|decision| ("case_9", decision));
        let got = outcome(plan_user_action(
            status,
            open_case,
            &user_command(kind, four_eyes),
            "act_1",
        ));
        assert_eq!(
            got, expected,
            "{kind:?} {status:?} open {open:?} four eyes {four_eyes}"
        );
    }
    let mut no_reason = user_command(Freeze, false);
    no_reason.reason = "\n".to_owned();
    assert_eq!(
        outcome(plan_user_action(None, None, &no_reason, "act_1")),
        refused("a reason is required")
    );
}

fn pending(kind: ActionKind) -> ActionFacts {
    ActionFacts {
        id: "act_1".to_owned(),
        kind: kind.as_str().to_owned(),
        user_id: "u-1".to_owned(),
        case_id: (kind == ActionKind::ResolveCase).then(|| "case_1".to_owned()),
        outcome: (kind == ActionKind::ResolveCase).then(|| "approve".to_owned()),
        case_evidence: (kind == ActionKind::ResolveCase).then_some(2),
        reason: "cleared".to_owned(),
        requested_by: "k1".to_owned(),
        requested_at: 500,
        requester: Some(requester_json(&Person::on_their_own("ann"))),
        status: "pending".to_owned(),
    }
}

fn decide(approve: bool, person: Person) -> DecideAction {
    DecideAction {
        action_id: "act_1".to_owned(),
        actor: "k2".to_owned(),
        person,
        approve,
        reason: None,
        now: NOW,
    }
}

#[test]
fn second_persons_decisions() {
    use ActionKind::*;
    let bob = || Person::on_their_own("bob");
    let waiting = case(CaseStatus::PendingApproval, Some("k1"));
    let mut grown = waiting.clone();
    grown.evidence = 3;
    let approved = |then: &[&str]| {
        let mut all = vec![
            "decide act_1 applied by k2",
            "audit action.approved action:act_1",
        ];
        all.extend_from_slice(then);
        lines(&all)
    };
    #[allow(clippy::type_complexity)]
    let cases: Vec<(
        ActionFacts,
        Option<CaseFacts>,
        Option<UserStatus>,
        DecideAction,
        Spelled,
    )> = vec![
        // The resolution is the requester's; the approver is on the action.
        (
            pending(ResolveCase),
            Some(waiting.clone()),
            Some(UserStatus::Frozen),
            decide(true, bob()),
            approved(&[
                "resolve case_1 approve by k1",
                "audit case.resolved case:case_1",
                "verdict u-1 active by k1",
                "refresh u-1 for case.resolved by k1",
            ]),
        ),
        (
            pending(ResolveCase),
            Some(waiting),
            Some(UserStatus::Frozen),
            decide(false, bob()),
            lines(&[
                "decide act_1 rejected by k2",
                "audit action.rejected action:act_1",
                "return case_1",
            ]),
        ),
        (
            pending(ResolveCase),
            Some(grown),
            Some(UserStatus::Frozen),
            decide(true, bob()),
            refused(
                "case case_1 has changed since the resolution was requested (new evidence); resolve it again",
            ),
        ),
        (
            pending(ResolveCase),
            None,
            Some(UserStatus::Frozen),
            decide(true, bob()),
            refused("case case_1 not found"),
        ),
        (
            pending(Unfreeze),
            None,
            Some(UserStatus::Frozen),
            decide(true, bob()),
            approved(&[
                "audit user.unfrozen user:u-1",
                "verdict u-1 active by k1",
                "refresh u-1 for user.unfrozen by k1",
            ]),
        ),
        (
            pending(Unfreeze),
            None,
            Some(UserStatus::Active),
            decide(true, bob()),
            refused("user u-1 is no longer frozen"),
        ),
        (
            pending(Unfreeze),
            None,
            Some(UserStatus::Active),
            decide(false, bob()),
            lines(&[
                "decide act_1 rejected by k2",
                "audit action.rejected action:act_1",
            ]),
        ),
        // Four eyes: another person, whose key the requester did not make, older than the ask.
        (
            pending(Unfreeze),
            None,
            Some(UserStatus::Frozen),
            decide(true, Person::on_their_own("ann")),
            refused(
                "action act_1: ann requested this action; a different person must approve or reject it",
            ),
        ),
        (
            pending(Unfreeze),
            None,
            Some(UserStatus::Frozen),
            decide(
                true,
                Person {
                    principal: "bob".to_owned(),
                    made_by: vec!["ann".to_owned()],
                    key_created_at: Some(100),
                },
            ),
            refused(
                "action act_1: this key was made by ann, who requested the action; a key of someone else must decide it",
            ),
        ),
        (
            pending(Unfreeze),
            None,
            Some(UserStatus::Frozen),
            decide(
                false,
                Person {
                    principal: "bob".to_owned(),
                    made_by: Vec::new(),
                    key_created_at: Some(500),
                },
            ),
            refused(
                "action act_1: this key was made after the action was requested; only a key older than the request can decide it",
            ),
        ),
        (
            ActionFacts {
                status: "applied".to_owned(),
                ..pending(Freeze)
            },
            None,
            Some(UserStatus::Frozen),
            decide(true, bob()),
            refused("action act_1 is already applied"),
        ),
        (
            ActionFacts {
                kind: "delete_everything".to_owned(),
                ..pending(Freeze)
            },
            None,
            Some(UserStatus::Active),
            decide(true, bob()),
            refused("stored data is invalid: unknown action kind `delete_everything`"),
        ),
    ];
    for (action, case, status, command, expected) in cases {
        let got = outcome(plan_decision(&action, case.as_ref(), status, &command));
        assert_eq!(
            got, expected,
            "{} {} approve {} by {}",
            action.kind, action.status, command.approve, command.person.principal
        );
    }
}

fn state(status: UserStatus, decision: Decision, score: u8) -> UserState {
    UserState {
        status,
        decision,
        score,
        assessment_id: Some("asm_1".to_owned()),
    }
}

#[test]
fn recomputing_a_user() {
    use Decision::{Approve, Freeze, Review};
    use UserStatus::{Active, Frozen, InReview};
    let cause = Cause {
        what: "assessment",
        actor: "system",
        now: NOW,
    };
    let row = |status, decision, verdict, version| UserRow {
        state: state(status, decision, 40),
        verdict,
        version,
    };
    // (row before, open case, current assessment) -> (status, decision, version, moved)
    #[allow(clippy::type_complexity)]
    let cases: Vec<(
        Option<UserRow>,
        Option<Decision>,
        Option<Decision>,
        (UserStatus, Decision, i64, bool),
    )> = vec![
        (None, None, Some(Approve), (Active, Approve, 1, true)),
        (
            None,
            Some(Review),
            Some(Review),
            (InReview, Review, 1, true),
        ),
        (None, Some(Freeze), Some(Freeze), (Frozen, Freeze, 1, true)),
        (
            Some(row(Active, Approve, None, 3)),
            None,
            Some(Approve),
            (Active, Approve, 3, false),
        ),
        // A person's verdict holds until new evidence; automation only tightens it.
        (
            Some(row(Frozen, Review, Some(Frozen), 4)),
            None,
            Some(Review),
            (Frozen, Review, 4, false),
        ),
        (
            Some(row(Active, Approve, Some(Active), 4)),
            Some(Review),
            Some(Review),
            (InReview, Review, 5, true),
        ),
        (
            Some(row(InReview, Review, Some(InReview), 2)),
            Some(Freeze),
            Some(Freeze),
            (Frozen, Freeze, 3, true),
        ),
        // No current assessment: approve, score 0.
        (
            Some(row(Active, Review, None, 1)),
            None,
            None,
            (Active, Approve, 2, true),
        ),
    ];
    for (row, open_case, current, (status, decision, version, moved)) in cases {
        let facts = UserFacts {
            row: row.clone(),
            ever_frozen: false,
            open_case,
            current: current.map(|d| ("asm_2".to_owned(), 70, d)),
        };
        let plan = plan_refresh("u-1", &facts, cause);
        let what = format!("{row:?} open {open_case:?} current {current:?}");
        assert_eq!(plan.after.status, status, "{what}");
        assert_eq!(plan.after.decision, decision, "{what}");
        assert_eq!(plan.version, version, "{what}");
        assert_eq!(plan.moved.is_some(), moved, "{what}");
        if let Some((payload, audit)) = &plan.moved {
            assert_eq!(audit.action, "user.updated");
            assert_eq!(audit.reason.as_deref(), Some("caused by assessment"));
            assert!(
                payload.contains(&format!("\"version\":{version}")),
                "{payload}"
            );
        }
    }
}

#[test]
fn evidence_opens_one_case_and_tightens_it() {
    let opened = plan_evidence("u-1", None, Decision::Review, "case_new".to_owned(), NOW);
    assert_eq!(opened.case_id(), "case_new");
    let Evidence::Open {
        decision, audit, ..
    } = &opened
    else {
        panic!("{opened:?}")
    };
    assert_eq!(*decision, Decision::Review);
    assert_eq!(
        (audit.action.as_str(), audit.subject.as_str()),
        ("case.opened", "case:case_new")
    );
    for (open, new, tightened) in [
        (Decision::Review, Decision::Freeze, Decision::Freeze),
        (Decision::Freeze, Decision::Review, Decision::Freeze),
        (Decision::Review, Decision::Review, Decision::Review),
    ] {
        let joined = plan_evidence(
            "u-1",
            Some(("case_old".to_owned(), open)),
            new,
            "case_new".to_owned(),
            NOW,
        );
        assert_eq!(
            joined,
            Evidence::Join {
                case_id: "case_old".to_owned(),
                decision: tightened,
            }
        );
    }
}

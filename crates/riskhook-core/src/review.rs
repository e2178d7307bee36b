//! Manual review, as rules: case states and outcomes, account actions, which status a user is
//! in given people's verdicts and the evidence waiting for them, and when a second person must
//! approve (four eyes). Pure: the store applies these inside its transactions.
//!
//! The model, in one paragraph: every assessment of a user that decides `review` or `freeze`
//! is evidence a person must see. It opens the user's case, or joins the one already open (at
//! most one open case per user). While a case is open the user is at least `in_review`
//! (`frozen` if any of its evidence decided freeze). A person's verdict (a case resolution or
//! a manual freeze or unfreeze) sets the user's baseline status and covers the evidence seen so
//! far; only new evidence can move the user again, and automation never relaxes a status a
//! person set. Because the evidence is a set (not a sequence), the status that results from a
//! given set of events is the same whatever order they arrived in.

use serde::{Deserialize, Serialize};

use crate::assessment::{Decision, UserStatus};

/// Where a review case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Waiting for an analyst.
    Open,
    /// An analyst has taken it.
    Claimed,
    /// Resolved by one person with an outcome that needs a second person's approval.
    PendingApproval,
    /// Done: the outcome is applied.
    Resolved,
}

impl CaseStatus {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::Claimed => "claimed",
            CaseStatus::PendingApproval => "pending_approval",
            CaseStatus::Resolved => "resolved",
        }
    }

    /// The inverse of [`CaseStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(CaseStatus::Open),
            "claimed" => Some(CaseStatus::Claimed),
            "pending_approval" => Some(CaseStatus::PendingApproval),
            "resolved" => Some(CaseStatus::Resolved),
            _ => None,
        }
    }
}

/// How an analyst resolves a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing against the user: active.
    Approve,
    /// Refuse the user: declined.
    Decline,
    /// Confirm or impose a freeze.
    Freeze,
    /// Lift a freeze: active.
    Unfreeze,
}

impl Outcome {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Approve => "approve",
            Outcome::Decline => "decline",
            Outcome::Freeze => "freeze",
            Outcome::Unfreeze => "unfreeze",
        }
    }

    /// The inverse of [`Outcome::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "approve" => Some(Outcome::Approve),
            "decline" => Some(Outcome::Decline),
            "freeze" => Some(Outcome::Freeze),
            "unfreeze" => Some(Outcome::Unfreeze),
            _ => None,
        }
    }

    /// The status the user is given.
    pub fn status(self) -> UserStatus {
        match self {
            Outcome::Approve | Outcome::Unfreeze => UserStatus::Active,
            Outcome::Decline => UserStatus::Declined,
            Outcome::Freeze => UserStatus::Frozen,
        }
    }
}

/// A manual account action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Stop the account.
    Freeze,
    /// Lift a freeze.
    Unfreeze,
    /// Apply a case resolution that needed a second person.
    ResolveCase,
}

impl ActionKind {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Freeze => "freeze",
            ActionKind::Unfreeze => "unfreeze",
            ActionKind::ResolveCase => "resolve_case",
        }
    }

    /// The inverse of [`ActionKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "freeze" => Some(ActionKind::Freeze),
            "unfreeze" => Some(ActionKind::Unfreeze),
            "resolve_case" => Some(ActionKind::ResolveCase),
            _ => None,
        }
    }
}

/// Where an account action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    /// Waiting for a second person.
    Pending,
    /// Applied.
    Applied,
    /// Refused by the second person.
    Rejected,
}

impl ActionStatus {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Pending => "pending",
            ActionStatus::Applied => "applied",
            ActionStatus::Rejected => "rejected",
        }
    }

    /// The inverse of [`ActionStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(ActionStatus::Pending),
            "applied" => Some(ActionStatus::Applied),
            "rejected" => Some(ActionStatus::Rejected),
            _ => None,
        }
    }
}

/// Whether an assessment is evidence for a review case.
pub fn needs_review(decision: Decision) -> bool {
    decision >= Decision::Review
}

/// The user's status. `verdict`: the status the last person to act set (none yet: active).
/// `open_case`: the strictest decision among the evidence of the user's open case, if one is
/// open. Automation only ever tightens a person's verdict.
pub fn account_status(verdict: Option<UserStatus>, open_case: Option<Decision>) -> UserStatus {
    let baseline = verdict.unwrap_or(UserStatus::Active);
    let waiting = match open_case {
        None | Some(Decision::Approve) => UserStatus::Active,
        Some(Decision::Review) => UserStatus::InReview,
        Some(Decision::Freeze) => UserStatus::Frozen,
    };
    baseline.max(waiting)
}

/// Whether moving a user from `current` to `target` needs a second person: with four eyes on,
/// lifting a freeze does.
pub fn needs_second_person(four_eyes: bool, current: UserStatus, target: UserStatus) -> bool {
    four_eyes && current == UserStatus::Frozen && target < UserStatus::Frozen
}

/// Who acts through an API key, as four eyes sees it: the person, and everyone who could hold
/// a copy of the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// The person (or service) the key belongs to.
    pub principal: String,
    /// The people who made this key, directly or through keys they made: each of them saw
    /// its secret, so each could act with it.
    #[serde(default)]
    pub made_by: Vec<String>,
    /// When the key was made, Unix seconds. `None` for keys in the configuration, which the
    /// operator set up before the service started.
    #[serde(default)]
    pub key_created_at: Option<i64>,
}

impl Person {
    /// A person whose key nobody else made: configuration keys, and the requesters of actions
    /// recorded before keys had principals (their key id stands for the person).
    pub fn on_their_own(principal: impl Into<String>) -> Self {
        Person {
            principal: principal.into(),
            made_by: Vec::new(),
            key_created_at: None,
        }
    }

    fn could_act_as(&self, principal: &str) -> bool {
        self.principal == principal || self.made_by.iter().any(|p| p == principal)
    }
}

/// Why `approver` may not decide an action `requester` asked for at `requested_at`, if so.
///
/// Four eyes means two people. The approver must be another person, and neither may have made
/// the other's key (whoever makes a key sees its secret). The approver's key must also predate
/// the request: a key made afterwards, by anyone, was made for this approval.
pub fn second_person_refusal(
    requester: &Person,
    requested_at: i64,
    approver: &Person,
) -> Option<String> {
    if approver.principal == requester.principal {
        return Some(format!(
            "{} requested this action; a different person must approve or reject it",
            requester.principal
        ));
    }
    if approver.could_act_as(&requester.principal) {
        return Some(format!(
            "this key was made by {}, who requested the action; a key of someone else must decide it",
            requester.principal
        ));
    }
    if requester.could_act_as(&approver.principal) {
        return Some(format!(
            "the requester's key was made by {}; a person who made it cannot be the second person",
            approver.principal
        ));
    }
    if approver.key_created_at.is_some_and(|at| at >= requested_at) {
        return Some(
            "this key was made after the action was requested; only a key older than the request can decide it"
                .to_owned(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_person_is_another_person_whose_key_neither_made() {
        let person = |principal: &str, made_by: &[&str], at: Option<i64>| Person {
            principal: principal.to_owned(),
            made_by: made_by.iter().map(|p| (*p).to_owned()).collect(),
            key_created_at: at,
        };
        let alice = person("alice", &[], None);
        let requested_at = 1_000;
        let cases = [
            (
                "another person's configured key",
                person("bob", &[], None),
                true,
            ),
            (
                "a key of bob made before",
                person("bob", &["ops"], Some(999)),
                true,
            ),
            (
                "the same person's other key",
                person("alice", &[], Some(10)),
                false,
            ),
            (
                "a key alice made for bob",
                person("bob", &["alice"], Some(10)),
                false,
            ),
            (
                "made through a key alice made",
                person("bob", &["carol", "alice"], Some(10)),
                false,
            ),
            (
                "made at the request",
                person("bob", &["ops"], Some(1_000)),
                false,
            ),
            (
                "made after the request",
                person("bob", &["ops"], Some(1_001)),
                false,
            ),
        ];
        for (what, approver, allowed) in cases {
            assert_eq!(
                second_person_refusal(&alice, requested_at, &approver).is_none(),
                allowed,
                "{what}"
            );
        }
        // The other way round: bob made the requester's key, so bob is no second person.
        let made_by_bob = person("carol", &["bob"], Some(10));
        let bob = person("bob", &[], None);
        assert!(second_person_refusal(&made_by_bob, requested_at, &bob).is_some());
    }

    #[test]
    fn status_is_the_verdict_tightened_by_waiting_evidence() {
        use Decision as D;
        use UserStatus as S;
        let cases = [
            (None, None, S::Active),
            (None, Some(D::Review), S::InReview),
            (None, Some(D::Freeze), S::Frozen),
            (Some(S::Active), None, S::Active),
            (Some(S::Active), Some(D::Review), S::InReview),
            (Some(S::Frozen), Some(D::Review), S::Frozen),
            (Some(S::Declined), Some(D::Freeze), S::Declined),
            (Some(S::Frozen), None, S::Frozen),
        ];
        for (verdict, open, expected) in cases {
            assert_eq!(
                account_status(verdict, open),
                expected,
                "{verdict:?} {open:?}"
            );
        }
    }

    #[test]
    fn only_lifting_a_freeze_needs_a_second_person() {
        use UserStatus as S;
        assert!(needs_second_person(true, S::Frozen, S::Active));
        assert!(!needs_second_person(false, S::Frozen, S::Active));
        assert!(!needs_second_person(true, S::InReview, S::Active));
        assert!(!needs_second_person(true, S::Frozen, S::Declined));
        assert!(!needs_second_person(true, S::Frozen, S::Frozen));
    }

    #[test]
    fn names_round_trip() {
        for s in [
            CaseStatus::Open,
            CaseStatus::Claimed,
            CaseStatus::PendingApproval,
            CaseStatus::Resolved,
        ] {
            assert_eq!(CaseStatus::parse(s.as_str()), Some(s));
        }
        for o in [
            Outcome::Approve,
            Outcome::Decline,
            Outcome::Freeze,
            Outcome::Unfreeze,
        ] {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        for k in [
            ActionKind::Freeze,
            ActionKind::Unfreeze,
            ActionKind::ResolveCase,
        ] {
            assert_eq!(ActionKind::parse(k.as_str()), Some(k));
        }
        for s in [
            ActionStatus::Pending,
            ActionStatus::Applied,
            ActionStatus::Rejected,
        ] {
            assert_eq!(ActionStatus::parse(s.as_str()), Some(s));
        }
    }
}

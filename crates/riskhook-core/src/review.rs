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

#[cfg(test)]
mod tests {
    use super::*;

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

//! What the engine produces: an [`Assessment`] (score, decision, every rule that fired with the
//! values it read, the policy's hash and the signal snapshot), and the account statuses.
//!
//! An assessment serialises deterministically (ordered maps, no clock, no randomness), so
//! re-running a stored snapshot under the same policy reproduces it byte for byte.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::policy::Reads;
use crate::signals::Signals;

/// What to do about a person, least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Nothing against them.
    Approve,
    /// A person should look.
    Review,
    /// Stop the account until a person has looked.
    Freeze,
}

impl Decision {
    /// `approve`, `review` or `freeze`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Review => "review",
            Decision::Freeze => "freeze",
        }
    }

    /// The inverse of [`Decision::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "approve" => Some(Decision::Approve),
            "review" => Some(Decision::Review),
            "freeze" => Some(Decision::Freeze),
            _ => None,
        }
    }
}

/// The policy an assessment was made under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRef {
    /// Its name.
    pub name: String,
    /// SHA-256 of its file.
    pub hash: String,
}

/// A rule that fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Firing {
    /// The rule's stable id: the reason code.
    pub rule_id: String,
    /// Its contribution to the score.
    pub points: i32,
    /// The least decision it imposes.
    pub decision: Option<Decision>,
    /// Why, in words.
    pub reason: String,
    /// Every signal the rule reads, with its value (null: not checked).
    pub reads: Reads,
}

/// A rule that could not be evaluated on this input, and therefore did not fire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotEvaluated {
    /// The rule.
    pub rule_id: String,
    /// Why: usually a signal that was not checked.
    pub error: String,
}

/// The engine's verdict on one set of signals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// 0-100: the fired rules' points, summed and clamped.
    pub score: u8,
    /// The stricter of the score's threshold decision and every fired rule's decision.
    pub decision: Decision,
    /// The policy in force.
    pub policy: PolicyRef,
    /// The `now` the policy was evaluated at (Unix seconds).
    pub evaluated_at: i64,
    /// Rules that fired, in policy order.
    pub fired: Vec<Firing>,
    /// Rules that could not be evaluated.
    pub not_evaluated: Vec<NotEvaluated>,
    /// The input, exactly (shared, not copied: the caller usually keeps it too).
    pub signals: Arc<Signals>,
}

impl Assessment {
    /// The canonical serialisation stored and compared for reproducibility.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A person's account status, least to most restrictive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// No objection.
    Active,
    /// Waiting for a person's review.
    InReview,
    /// Stopped until a person lifts it.
    Frozen,
    /// Refused by a person: the account should be closed.
    Declined,
}

impl UserStatus {
    /// `active`, `in_review`, `frozen` or `declined`.
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::InReview => "in_review",
            UserStatus::Frozen => "frozen",
            UserStatus::Declined => "declined",
        }
    }

    /// The inverse of [`UserStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(UserStatus::Active),
            "in_review" => Some(UserStatus::InReview),
            "frozen" => Some(UserStatus::Frozen),
            "declined" => Some(UserStatus::Declined),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_order_by_severity_and_round_trip() {
        assert!(Decision::Approve < Decision::Review && Decision::Review < Decision::Freeze);
        for d in [Decision::Approve, Decision::Review, Decision::Freeze] {
            assert_eq!(Decision::parse(d.as_str()), Some(d));
        }
        for s in [
            UserStatus::Active,
            UserStatus::InReview,
            UserStatus::Frozen,
            UserStatus::Declined,
        ] {
            assert_eq!(UserStatus::parse(s.as_str()), Some(s));
        }
    }
}

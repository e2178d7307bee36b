//! Which event decides a session's current status, whatever order the events arrive in.
//!
//! Didit documents no ordering guarantee and retries late, so a stale `In Progress` can land
//! after `Approved`. Status alone cannot order events (the lifecycle has cycles: `In Review →
//! Resubmitted → In Review`), so each event's status is an [`Observation`] ordered first by the
//! MAC-covered body `timestamp`, then by how far along Didit's documented lifecycle the status is,
//! then by name. That order is total, so "the greatest observation seen" is the same for every
//! arrival order: the store keeps the greatest and never moves back.

use crate::payload::SessionStatus;

/// What one event says about its session's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The event's body `timestamp`, Unix seconds.
    pub timestamp: i64,
    /// The status the event reports.
    pub status: SessionStatus,
}

impl Observation {
    /// A new observation.
    pub fn new(timestamp: i64, status: SessionStatus) -> Self {
        Self { timestamp, status }
    }

    /// Whether this observation replaces `current` as the session's state.
    pub fn supersedes(&self, current: &Observation) -> bool {
        self.order_key() > current.order_key()
    }

    fn order_key(&self) -> (i64, u8, &str) {
        (self.timestamp, stage(&self.status), self.status.as_str())
    }
}

/// How far along Didit's documented lifecycle a status is: used only to order two events with
/// the same timestamp, where the later stage must be the later event.
pub fn stage(status: &SessionStatus) -> u8 {
    match status {
        SessionStatus::Other(_) => 0,
        SessionStatus::NotStarted => 1,
        SessionStatus::InProgress => 2,
        SessionStatus::AwaitingUser => 3,
        SessionStatus::InReview => 4,
        SessionStatus::Resubmitted => 5,
        SessionStatus::Approved
        | SessionStatus::Declined
        | SessionStatus::Abandoned
        | SessionStatus::Expired => 6,
        SessionStatus::KycExpired => 7,
    }
}

/// Whether Didit documents `from → to` (didit-webhooks.md §4.2), plus the exits from
/// `Awaiting User` and `Resubmitted` that a resumed session must take. Staying in a status is
/// allowed (`data.updated` repeats the current one). An undocumented transition is still applied when
/// the timestamps say so — Didit is the source of truth — but callers log it.
pub fn is_documented_transition(from: &SessionStatus, to: &SessionStatus) -> bool {
    use SessionStatus as S;
    if from == to {
        return true;
    }
    matches!(
        (from, to),
        (S::NotStarted, S::InProgress | S::Expired)
            | (
                S::InProgress,
                S::Approved | S::Declined | S::InReview | S::AwaitingUser | S::Abandoned
            )
            | (
                S::AwaitingUser,
                S::InProgress | S::Approved | S::Declined | S::InReview
            )
            | (S::InReview, S::Approved | S::Declined | S::Resubmitted)
            | (S::Declined, S::Resubmitted)
            | (S::Approved, S::KycExpired)
            | (
                S::Resubmitted,
                S::Approved | S::Declined | S::InReview | S::InProgress
            )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(t: i64, s: &str) -> Observation {
        Observation::new(t, SessionStatus::parse(s))
    }

    /// Folds observations the way the store does: keep the greatest.
    fn fold(events: &[Observation]) -> Option<&Observation> {
        events.iter().fold(None, |current, next| match current {
            Some(c) if !next.supersedes(c) => Some(c),
            _ => Some(next),
        })
    }

    fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
        if items.len() <= 1 {
            return vec![items.to_vec()];
        }
        let mut out = Vec::new();
        for i in 0..items.len() {
            let mut rest = items.to_vec();
            let head = rest.remove(i);
            for mut tail in permutations(&rest) {
                tail.insert(0, head.clone());
                out.push(tail);
            }
        }
        out
    }

    #[test]
    fn every_arrival_order_ends_in_the_same_state() {
        let events = [
            obs(100, "Not Started"),
            obs(110, "In Progress"),
            obs(120, "In Review"),
            obs(130, "Approved"),
            obs(130, "In Review"),
            obs(125, "Resubmitted"),
        ];
        let all = permutations(&events);
        assert_eq!(all.len(), 720);
        for order in all {
            assert_eq!(fold(&order), Some(&obs(130, "Approved")), "{order:?}");
        }
    }

    #[test]
    fn a_late_older_event_never_moves_the_state_back() {
        let approved = obs(200, "Approved");
        assert!(!obs(150, "In Progress").supersedes(&approved));
        assert!(!obs(200, "In Progress").supersedes(&approved));
        assert!(!approved.supersedes(&approved));
        assert!(obs(201, "Kyc Expired").supersedes(&approved));
    }

    #[test]
    fn documented_transitions_follow_the_spec() {
        use SessionStatus as S;
        assert!(is_documented_transition(&S::NotStarted, &S::InProgress));
        assert!(is_documented_transition(&S::InReview, &S::Resubmitted));
        assert!(is_documented_transition(&S::Approved, &S::KycExpired));
        assert!(is_documented_transition(&S::Approved, &S::Approved));
        assert!(!is_documented_transition(&S::Approved, &S::InProgress));
        assert!(!is_documented_transition(&S::Declined, &S::Approved));
    }
}

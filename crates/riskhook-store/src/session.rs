//! A session's status as the store keeps it, provider-neutral: the status text and its
//! lifecycle [`Stage`], both handed in by the pipeline, which knows the provider. The store
//! orders status observations by (body timestamp, stage, text) without knowing what a stage
//! means; which statuses exist and how far along each is belongs to the provider's protocol
//! crate (Didit's: `riskhook_didit::session::stage`).

use std::fmt;

/// The stored spelling of every terminal session status: what
/// [`Store::unfinished_sessions`](crate::Store::unfinished_sessions) leaves out. Unknown
/// statuses are not terminal, so a status Didit adds later shows up as unfinished rather than
/// silently finished.
pub const TERMINAL_STATUSES: [&str; 6] = [
    "Approved",
    "Declined",
    "In Review",
    "Expired",
    "Kyc Expired",
    "Abandoned",
];

/// How far along its provider's lifecycle a status is: orders two observations of one session
/// that carry the same timestamp (the later stage is the later event). Stored as the
/// `status_stage` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Stage(u8);

impl Stage {
    /// The stage numbered `n` by the provider's lifecycle.
    pub const fn new(n: u8) -> Self {
        Self(n)
    }

    /// Its number.
    pub const fn get(self) -> u8 {
        self.0
    }
}

/// A session status: its text in the provider's canonical spelling (what is stored and
/// compared, e.g. `In Review`) and its lifecycle [`Stage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStatus {
    text: String,
    stage: Stage,
}

impl SessionStatus {
    /// A status with its stage.
    pub fn new(text: impl Into<String>, stage: Stage) -> Self {
        Self {
            text: text.into(),
            stage,
        }
    }

    /// The status text, as stored.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// How far along the lifecycle it is.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// Whether the provider has finished with the session: one of [`TERMINAL_STATUSES`].
    pub fn is_terminal(&self) -> bool {
        TERMINAL_STATUSES.contains(&self.as_str())
    }
}

impl fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_terminal_exactly_when_its_text_is_a_terminal_status() {
        for text in TERMINAL_STATUSES {
            assert!(
                SessionStatus::new(text, Stage::new(6)).is_terminal(),
                "{text}"
            );
        }
        for text in ["In Progress", "APPROVED", "approved", "Paused", ""] {
            assert!(
                !SessionStatus::new(text, Stage::new(6)).is_terminal(),
                "{text}"
            );
        }
    }

    #[test]
    fn stages_order_by_their_number() {
        assert!(Stage::new(2) > Stage::new(1));
        assert_eq!(Stage::default(), Stage::new(0));
        assert_eq!(Stage::new(7).get(), 7);
    }
}

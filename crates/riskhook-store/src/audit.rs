//! Records of the audit log. The chain itself (hashing and checking) is
//! [`riskhook_core::audit`]; a backend appends with [`NewAuditEntry::link`].

use riskhook_core::audit::{AuditFields, AuditKey};

use crate::{EventRecord, NewAssessment, UserState};

/// What a staged entry's seal is hashed after, in place of a previous entry's hash.
const STAGED: &str = "staged";

/// One entry of the append-only, hash-chained audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// Our id (`aud_…`).
    pub id: String,
    /// When, Unix seconds.
    pub at: i64,
    /// An API key id, `system` or `cli`.
    pub actor: String,
    /// What happened, e.g. `case.resolved`.
    pub action: String,
    /// What it happened to, e.g. `user:u-1`.
    pub subject: String,
    /// Why, in the actor's words.
    pub reason: Option<String>,
    /// The state before, JSON.
    pub before: Option<String>,
    /// The state after, JSON.
    pub after: Option<String>,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash: SHA-256, or HMAC-SHA256 under the audit key when `keyed`.
    pub hash: String,
    /// Whether `hash` is keyed (written by a store holding the audit key).
    pub keyed: bool,
}

impl AuditRecord {
    /// The hashed fields, for [`riskhook_core::audit::ChainVerifier`].
    pub fn fields(&self) -> AuditFields<'_> {
        AuditFields {
            seq: self.seq,
            id: &self.id,
            at: self.at,
            actor: &self.actor,
            action: &self.action,
            subject: &self.subject,
            reason: self.reason.as_deref(),
            before: self.before.as_deref(),
            after: self.after.as_deref(),
            prev_hash: &self.prev_hash,
        }
    }
}

/// An entry to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// When, Unix seconds.
    pub at: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// About what.
    pub subject: String,
    /// Why.
    pub reason: Option<String>,
    /// Before, JSON.
    pub before: Option<String>,
    /// After, JSON.
    pub after: Option<String>,
}

impl NewAuditEntry {
    /// An entry by `system` with no reason and no before.
    pub fn system(at: i64, action: &str, subject: String, after: String) -> Self {
        NewAuditEntry {
            at,
            actor: "system".to_owned(),
            action: action.to_owned(),
            subject,
            reason: None,
            before: None,
            after: Some(after),
        }
    }

    /// An entry by `actor` (a key id, `cli` or `system`), with JSON before and after.
    pub fn by(
        at: i64,
        actor: &str,
        action: &str,
        subject: String,
        reason: Option<&str>,
        before: Option<&serde_json::Value>,
        after: &serde_json::Value,
    ) -> Self {
        NewAuditEntry {
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject,
            reason: reason.map(str::to_owned),
            before: before.map(serde_json::Value::to_string),
            after: Some(after.to_string()),
        }
    }

    /// `assessment.recorded`: every automatic decision, with what it rests on, about the user
    /// (or, without one, the session or the event).
    pub fn assessment_recorded(event: &EventRecord, assessment: &NewAssessment) -> Self {
        let subject = match (&event.vendor_data, &event.session_id) {
            (Some(user), _) => format!("user:{user}"),
            (None, Some(session)) => format!("session:{session}"),
            (None, None) => format!("event:{}", event.id),
        };
        let after = serde_json::json!({
            "assessment_id": assessment.id,
            "event_id": event.id,
            "decision": assessment.decision.as_str(),
            "score": assessment.score,
            "policy_hash": assessment.policy_hash,
        });
        Self::system(
            event.received_at,
            "assessment.recorded",
            subject,
            after.to_string(),
        )
    }

    /// `case.opened`: evidence opened a review case about `user_id`.
    pub fn case_opened(at: i64, case_id: &str, user_id: &str) -> Self {
        let after = serde_json::json!({ "user_id": user_id, "status": "open" });
        Self::system(
            at,
            "case.opened",
            format!("case:{case_id}"),
            after.to_string(),
        )
    }

    /// `user.updated`: a user's status or decision moved, because of `cause` (`assessment`,
    /// `case.resolved`, ...).
    pub fn user_updated(
        at: i64,
        actor: &str,
        user_id: &str,
        cause: &str,
        before: Option<&UserState>,
        after: &UserState,
    ) -> Self {
        NewAuditEntry {
            at,
            actor: actor.to_owned(),
            action: "user.updated".to_owned(),
            subject: format!("user:{user_id}"),
            reason: Some(format!("caused by {cause}")),
            before: before.map(UserState::to_json),
            after: Some(after.to_json()),
        }
    }

    /// The seal of an entry staged before it is linked (PostgreSQL stages entries and links
    /// them in batches): its hash at position 0, after the text `staged`, keyed under `key` when
    /// there is one. The linker recomputes it, so an entry changed or written outside
    /// riskhook while staged is not linked into the chain as if riskhook had written it.
    /// Position 0 is never a chain position, so a seal is never a link's hash.
    pub fn seal(&self, id: &str, key: Option<&AuditKey>) -> String {
        AuditFields {
            seq: 0,
            id,
            at: self.at,
            actor: &self.actor,
            action: &self.action,
            subject: &self.subject,
            reason: self.reason.as_deref(),
            before: self.before.as_deref(),
            after: self.after.as_deref(),
            prev_hash: STAGED,
        }
        .hash_with(key)
    }

    /// The record this entry becomes at position `seq` after an entry hashed `prev_hash`:
    /// keyed under `key` when there is one. Every backend appends through here, so they all
    /// hash the same way.
    pub fn link(
        self,
        seq: i64,
        id: String,
        prev_hash: String,
        key: Option<&AuditKey>,
    ) -> AuditRecord {
        let mut record = AuditRecord {
            seq,
            id,
            at: self.at,
            actor: self.actor,
            action: self.action,
            subject: self.subject,
            reason: self.reason,
            before: self.before,
            after: self.after,
            prev_hash,
            hash: String::new(),
            keyed: key.is_some(),
        };
        record.hash = record.fields().hash_with(key);
        record
    }
}

//! Records of the audit log. The chain itself (hashing and checking) is
//! [`riskhook_core::audit`]; a backend appends with [`NewAuditEntry::link`].

use riskhook_core::audit::AuditFields;

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
    /// This entry's hash.
    pub hash: String,
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

    /// The record this entry becomes at position `seq` after an entry hashed `prev_hash`.
    pub fn link(self, seq: i64, id: String, prev_hash: String) -> AuditRecord {
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
        };
        record.hash = record.fields().hash();
        record
    }
}

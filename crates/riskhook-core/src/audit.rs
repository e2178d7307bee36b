//! The audit log's hash chain: how an entry is hashed and how a chain is checked. Pure; the
//! store appends entries and `riskhook audit verify` walks them through [`ChainVerifier`].
//!
//! Each entry's hash is SHA-256 over a JSON array of its fields in a fixed order, ending with
//! the previous entry's hash (the first entry links to [`GENESIS`]). `before` and `after` are
//! hashed as the exact text stored, so no re-serialisation can change a hash. Changing,
//! removing, reordering or inserting any entry breaks the link of that entry or the next one.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The previous hash of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What is hashed of an entry: everything but its own hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditFields<'a> {
    /// Position in the chain: 1, 2, 3… without gaps.
    pub seq: i64,
    /// The entry's id (`aud_…`).
    pub id: &'a str,
    /// When, Unix seconds.
    pub at: i64,
    /// Who: an API key id, `system`, or `cli`.
    pub actor: &'a str,
    /// What, e.g. `case.resolved`.
    pub action: &'a str,
    /// About what, e.g. `user:u-1` or `case:case_…`.
    pub subject: &'a str,
    /// Why, in the actor's words.
    pub reason: Option<&'a str>,
    /// The state before, as stored JSON text.
    pub before: Option<&'a str>,
    /// The state after, as stored JSON text.
    pub after: Option<&'a str>,
    /// The previous entry's hash.
    pub prev_hash: &'a str,
}

impl AuditFields<'_> {
    /// The entry's hash, lowercase hex.
    pub fn hash(&self) -> String {
        let array = (
            self.seq,
            self.id,
            self.at,
            self.actor,
            self.action,
            self.subject,
            self.reason,
            self.before,
            self.after,
            self.prev_hash,
        );
        // A tuple of integers, strings and options always serialises.
        let text = serde_json::to_vec(&array).unwrap_or_default();
        hex::encode(Sha256::digest(&text))
    }
}

/// The first link that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at entry {seq}: {why}")]
pub struct BrokenLink {
    /// The entry where the chain breaks.
    pub seq: i64,
    /// What is wrong there.
    pub why: String,
}

/// Checks a chain entry by entry, in `seq` order, so a long log is verified page by page.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    next_seq: i64,
    prev_hash: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// A verifier expecting entry 1.
    pub fn new() -> Self {
        ChainVerifier {
            next_seq: 1,
            prev_hash: GENESIS.to_owned(),
        }
    }

    /// How many entries have been checked.
    pub fn checked(&self) -> i64 {
        self.next_seq - 1
    }

    /// Checks the next entry: its position, its link to the previous one, its own hash.
    pub fn check(&mut self, entry: &AuditFields<'_>, stored_hash: &str) -> Result<(), BrokenLink> {
        let broken = |why: String| BrokenLink {
            seq: entry.seq,
            why,
        };
        if entry.seq != self.next_seq {
            return Err(BrokenLink {
                seq: self.next_seq,
                why: format!(
                    "expected entry {} next, found entry {}",
                    self.next_seq, entry.seq
                ),
            });
        }
        if entry.prev_hash != self.prev_hash {
            return Err(broken(
                "its previous hash does not match the hash of the entry before it".to_owned(),
            ));
        }
        let computed = entry.hash();
        if computed != stored_hash {
            return Err(broken(
                "its content does not match its hash (the entry was changed)".to_owned(),
            ));
        }
        self.next_seq += 1;
        self.prev_hash = computed;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64, prev: &str, reason: &'static str) -> (AuditFields<'static>, String) {
        let prev: &'static str = Box::leak(prev.to_owned().into_boxed_str());
        let fields = AuditFields {
            seq,
            id: "aud_1",
            at: 1_700_000_000 + seq,
            actor: "system",
            action: "case.opened",
            subject: "user:u-1",
            reason: Some(reason),
            before: None,
            after: Some("{\"status\":\"open\"}"),
            prev_hash: prev,
        };
        let hash = fields.hash();
        (fields, hash)
    }

    fn chain(n: i64) -> Vec<(AuditFields<'static>, String)> {
        let mut out = Vec::new();
        let mut prev = GENESIS.to_owned();
        for seq in 1..=n {
            let (fields, hash) = entry(seq, &prev, "why");
            prev.clone_from(&hash);
            out.push((fields, hash));
        }
        out
    }

    #[test]
    fn an_intact_chain_verifies() {
        let mut verifier = ChainVerifier::new();
        for (fields, hash) in chain(5) {
            verifier.check(&fields, &hash).expect("intact");
        }
        assert_eq!(verifier.checked(), 5);
    }

    #[test]
    fn a_changed_field_a_gap_and_a_relinked_entry_are_each_found() {
        // A changed reason: the entry's hash no longer matches.
        let mut entries = chain(4);
        entries[2].0.reason = Some("another reason");
        let mut verifier = ChainVerifier::new();
        let err = entries
            .iter()
            .try_for_each(|(f, h)| verifier.check(f, h))
            .expect_err("tampered");
        assert_eq!(err.seq, 3);

        // A removed entry: the sequence has a gap.
        let mut entries = chain(4);
        entries.remove(1);
        let mut verifier = ChainVerifier::new();
        let err = entries
            .iter()
            .try_for_each(|(f, h)| verifier.check(f, h))
            .expect_err("gap");
        assert_eq!(err.seq, 2);

        // A rewritten entry with a freshly computed hash: the next link breaks.
        let mut entries = chain(4);
        entries[1].0.reason = Some("rewritten");
        entries[1].1 = entries[1].0.hash();
        let mut verifier = ChainVerifier::new();
        let err = entries
            .iter()
            .try_for_each(|(f, h)| verifier.check(f, h))
            .expect_err("relinked");
        assert_eq!(err.seq, 3);
    }
}

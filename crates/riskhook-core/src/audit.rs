//! The audit log's hash chain: how an entry is hashed, how a chain is checked, and the
//! checkpoints of its head that are kept outside the database. Pure; the store appends
//! entries, the service publishes [`Checkpoint`]s, and `riskhook audit verify` walks the chain
//! through [`ChainVerifier`].
//!
//! Each entry's hash covers a JSON array of its fields in a fixed order, ending with the
//! previous entry's hash (the first entry links to [`GENESIS`]): SHA-256 of that text for an
//! unkeyed entry, HMAC-SHA256 of the same text under the [`AuditKey`] for a keyed one. `before`
//! and `after` are hashed as the exact text stored, so no re-serialisation can change a hash.
//!
//! What each layer catches:
//! - The chain alone: a changed entry whose hash was left as it was, a removed, reordered or
//!   inserted entry in the middle. Anyone with write access can still rewrite the chain and
//!   recompute every SHA-256, or remove its last entries.
//! - The key (kept outside the database): a keyed entry cannot be forged, changed or relinked
//!   without it. A chain is an unkeyed prefix (written before a key was configured) and then a
//!   keyed suffix: an unkeyed entry after a keyed one is a break, and with a key given a chain
//!   with no keyed entry at all is refused (it was written, or rewritten, without the key).
//!   The keyed suffix also pins the prefix: the first keyed entry's MAC covers the hash of the
//!   last unkeyed one.
//! - [`Checkpoint`]s (anchors): the chain must reach each anchor's entry and have its hash
//!   there, so a removed tail (up to the newest anchor) and a rewritten chain (up to any
//!   anchor) are caught even without the key.

use std::collections::BTreeMap;
use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The previous hash of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a checkpoint's MAC text starts with. An entry's hashed text is a JSON array (it starts
/// with `[`), so a checkpoint MAC can never be passed off as an entry's, or the reverse.
const CHECKPOINT_DOMAIN: &str = "riskhook-audit-checkpoint";

/// The secret that keys the chain: held outside the database (environment or file), so that
/// write access to the database is not enough to forge or rewrite keyed entries.
/// Its `Debug` never shows it.
#[derive(Clone)]
pub struct AuditKey {
    /// Pre-keyed: each use clones it instead of re-deriving the key blocks.
    mac: HmacSha256,
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

/// A key that cannot key the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditKeyError {
    /// Shorter than [`AuditKey::MIN_BYTES`].
    #[error("the audit key must be at least {min} bytes long (e.g. `openssl rand -hex 32`)")]
    TooShort {
        /// The minimum length.
        min: usize,
    },
}

impl AuditKey {
    /// The shortest key accepted: a guessable key would key nothing.
    pub const MIN_BYTES: usize = 16;

    /// A key from its secret bytes.
    pub fn new(secret: &[u8]) -> Result<Self, AuditKeyError> {
        let too_short = AuditKeyError::TooShort {
            min: Self::MIN_BYTES,
        };
        if secret.len() < Self::MIN_BYTES {
            return Err(too_short);
        }
        let mac = HmacSha256::new_from_slice(secret).map_err(|_| too_short)?;
        Ok(Self { mac })
    }

    /// HMAC-SHA256 of `text`, lowercase hex.
    fn tag(&self, text: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(text);
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `tag_hex` is the MAC of `text`, compared in constant time.
    fn verifies(&self, text: &[u8], tag_hex: &str) -> bool {
        let Ok(tag) = hex::decode(tag_hex) else {
            return false;
        };
        let mut mac = self.mac.clone();
        mac.update(text);
        mac.verify_slice(&tag).is_ok()
    }
}

/// What is hashed of an entry: everything but its own hash (and whether it is keyed, which
/// decides how it is hashed: flipping it makes the stored hash wrong either way).
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
    /// The text both kinds of hash cover.
    fn text(&self) -> Vec<u8> {
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
        serde_json::to_vec(&array).unwrap_or_default()
    }

    /// The hash of an unkeyed entry: SHA-256, lowercase hex.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.text()))
    }

    /// The hash of a keyed entry: HMAC-SHA256 under `key`, lowercase hex.
    pub fn keyed_hash(&self, key: &AuditKey) -> String {
        key.tag(&self.text())
    }

    /// [`Self::keyed_hash`] with a key, [`Self::hash`] without.
    pub fn hash_with(&self, key: Option<&AuditKey>) -> String {
        match key {
            Some(key) => self.keyed_hash(key),
            None => self.hash(),
        }
    }
}

/// The head of the chain at a moment, published outside the database (the log, an anchor
/// file) so that the chain can later be checked against it: an anchor.
///
/// `at` and `mac` are absent in an anchor typed by hand (`SEQ:HASH`); `mac` is present when
/// the service that published it had the audit key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The head's position.
    pub seq: i64,
    /// The head's hash.
    pub hash: String,
    /// When the checkpoint was taken, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
    /// HMAC-SHA256 under the audit key of `riskhook-audit-checkpoint:{seq}:{hash}:{at}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// An anchor that cannot be read or cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AnchorError(String);

impl Checkpoint {
    /// The checkpoint of the head `(seq, hash)` at `at`, with a MAC when there is a key.
    pub fn of_head(seq: i64, hash: String, at: i64, key: Option<&AuditKey>) -> Self {
        let mac = key.map(|key| key.tag(Self::mac_text(seq, &hash, at).as_bytes()));
        Checkpoint {
            seq,
            hash,
            at: Some(at),
            mac,
        }
    }

    fn mac_text(seq: i64, hash: &str, at: i64) -> String {
        format!("{CHECKPOINT_DOMAIN}:{seq}:{hash}:{at}")
    }

    /// Reads `SEQ:HASH`, e.g. `1024:9f86d08…`.
    pub fn parse(text: &str) -> Result<Self, AnchorError> {
        let invalid = || {
            AnchorError(format!(
                "anchor `{text}` is not SEQ:HASH (an entry number from 1 and a 64-character hex hash)"
            ))
        };
        let (seq, hash) = text.trim().split_once(':').ok_or_else(invalid)?;
        let seq: i64 = seq.parse().map_err(|_| invalid())?;
        let anchor = Checkpoint {
            seq,
            hash: hash.to_ascii_lowercase(),
            at: None,
            mac: None,
        };
        anchor.well_formed().map_err(|_| invalid())?;
        Ok(anchor)
    }

    /// Reads the anchors in a text: JSON lines as the anchor file holds them, and `audit
    /// checkpoint` lines copied from riskhook's log, JSON or text format. Other lines (the
    /// rest of a log) are skipped; a checkpoint line that cannot be read is an error.
    pub fn parse_lines(text: &str) -> Result<Vec<Self>, AnchorError> {
        let mut anchors = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            let at_line = |e: AnchorError| AnchorError(format!("line {}: {}", n + 1, e.0));
            let anchor = if line.starts_with('{') {
                Self::from_json(line).map_err(at_line)?
            } else if line.contains("audit checkpoint") {
                Some(Self::from_text_log(line).map_err(at_line)?)
            } else {
                None
            };
            if let Some(anchor) = anchor {
                anchor.well_formed().map_err(at_line)?;
                anchors.push(anchor);
            }
        }
        Ok(anchors)
    }

    /// An anchor file line, or a JSON log line of a checkpoint: riskhook's (`message` and the
    /// fields at the top level) or tracing's default (under `fields`). Other log lines: `None`.
    fn from_json(line: &str) -> Result<Option<Self>, AnchorError> {
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| AnchorError(format!("not a JSON object: {e}")))?;
        let fields = value.get("fields").unwrap_or(&value);
        let object = match fields.get("message").map(|m| m.as_str()) {
            None => &value,
            Some(Some("audit checkpoint")) => fields,
            Some(_) => return Ok(None),
        };
        serde_json::from_value(object.clone())
            .map(Some)
            .map_err(|e| AnchorError(format!("not a checkpoint: {e}")))
    }

    /// A text-format log line: `… audit checkpoint seq=12 hash=… at=… mac=…`.
    fn from_text_log(line: &str) -> Result<Self, AnchorError> {
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|token| token.strip_prefix(name)?.strip_prefix('='))
                .map(|v| v.trim_matches('"').to_owned())
        };
        let missing = |name: &str| AnchorError(format!("the checkpoint has no {name}"));
        let number = |name: &str| -> Result<Option<i64>, AnchorError> {
            field(name)
                .map(|v| {
                    v.parse()
                        .map_err(|_| AnchorError(format!("{name} is not a number")))
                })
                .transpose()
        };
        Ok(Checkpoint {
            seq: number("seq")?.ok_or_else(|| missing("seq"))?,
            hash: field("hash").ok_or_else(|| missing("hash"))?,
            at: number("at")?,
            mac: field("mac"),
        })
    }

    fn well_formed(&self) -> Result<(), AnchorError> {
        if self.seq < 1 {
            return Err(AnchorError(format!(
                "anchor entry {} is not a chain position (they start at 1)",
                self.seq
            )));
        }
        if self.hash.len() != 64 || !self.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AnchorError(format!(
                "the hash of the anchor at entry {} is not 64 hex characters",
                self.seq
            )));
        }
        Ok(())
    }

    /// Whether the MAC holds under `key`: `None` when the anchor has none.
    pub fn mac_holds(&self, key: &AuditKey) -> Option<bool> {
        let mac = self.mac.as_deref()?;
        Some(match self.at {
            Some(at) => key.verifies(Self::mac_text(self.seq, &self.hash, at).as_bytes(), mac),
            None => false,
        })
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

/// What a verified chain is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Entries checked (the whole chain).
    pub entries: i64,
    /// How many of them are keyed.
    pub keyed: i64,
    /// Keyed entries whose hash could not be checked because no key was given: their links
    /// hold, their content is unproven.
    pub unchecked: i64,
    /// The last entry's hash.
    pub head: Option<String>,
    /// How many anchors the chain was checked against.
    pub anchors: usize,
    /// The newest anchor's entry.
    pub newest_anchor: Option<i64>,
}

/// Checks a chain entry by entry, in `seq` order, so a long log is verified page by page:
/// [`ChainVerifier::check`] each entry, then [`ChainVerifier::finish`].
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    next_seq: i64,
    prev_hash: String,
    key: Option<AuditKey>,
    keyed: i64,
    unchecked: i64,
    /// Entry → hash it must have.
    anchors: BTreeMap<i64, String>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// A verifier expecting entry 1, without a key or anchors.
    pub fn new() -> Self {
        Self::with_key(None)
    }

    /// A verifier checking keyed entries under `key` (or, without one, counting them as
    /// unchecked).
    pub fn with_key(key: Option<AuditKey>) -> Self {
        ChainVerifier {
            next_seq: 1,
            prev_hash: GENESIS.to_owned(),
            key,
            keyed: 0,
            unchecked: 0,
            anchors: BTreeMap::new(),
        }
    }

    /// Adds an anchor the chain must reach and match. With a key, an anchor carrying a MAC
    /// must verify under it: one that does not was not published by a holder of the key.
    /// (An anchor without a MAC, typed by hand or published without a key, is taken as given.)
    pub fn anchor(&mut self, anchor: &Checkpoint) -> Result<(), AnchorError> {
        anchor.well_formed()?;
        if let Some(key) = &self.key
            && anchor.mac_holds(key) == Some(false)
        {
            return Err(AnchorError(format!(
                "the anchor at entry {} is forged: its mac does not verify under the audit key",
                anchor.seq
            )));
        }
        let hash = anchor.hash.to_ascii_lowercase();
        match self.anchors.get(&anchor.seq) {
            Some(known) if *known != hash => Err(AnchorError(format!(
                "two anchors disagree about the hash of entry {}",
                anchor.seq
            ))),
            _ => {
                self.anchors.insert(anchor.seq, hash);
                Ok(())
            }
        }
    }

    /// How many entries have been checked.
    pub fn checked(&self) -> i64 {
        self.next_seq - 1
    }

    /// Checks the next entry: its position, its link to the previous one, its own hash (keyed
    /// or not, as it is marked), that it is not unkeyed after a keyed one, and any anchor at it.
    pub fn check(
        &mut self,
        entry: &AuditFields<'_>,
        stored_hash: &str,
        keyed: bool,
    ) -> Result<(), BrokenLink> {
        let broken = |why: &str| BrokenLink {
            seq: entry.seq,
            why: why.to_owned(),
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
                "its previous hash does not match the hash of the entry before it",
            ));
        }
        if keyed {
            self.keyed += 1;
            match &self.key {
                Some(key) if entry.keyed_hash(key) != stored_hash => {
                    return Err(broken(
                        "its content does not match its keyed hash (the entry was changed, or written with another key)",
                    ));
                }
                Some(_) => {}
                None => self.unchecked += 1,
            }
        } else {
            if self.keyed > 0 {
                return Err(broken(
                    "it is not keyed but follows a keyed entry (it was written without the key)",
                ));
            }
            if entry.hash() != stored_hash {
                return Err(broken(
                    "its content does not match its hash (the entry was changed)",
                ));
            }
        }
        if let Some(anchored) = self.anchors.get(&entry.seq)
            && anchored != stored_hash
        {
            return Err(broken(
                "its hash differs from the anchor's for this entry (the chain was rewritten up to here)",
            ));
        }
        self.next_seq += 1;
        stored_hash.clone_into(&mut self.prev_hash);
        Ok(())
    }

    /// Ends the walk: the chain must reach every anchor, and with a key hold at least one keyed
    /// entry.
    pub fn finish(self) -> Result<ChainReport, BrokenLink> {
        let entries = self.checked();
        if let Some((&beyond, _)) = self.anchors.last_key_value()
            && beyond > entries
        {
            return Err(BrokenLink {
                seq: entries + 1,
                why: format!(
                    "the chain ends at entry {entries} but an anchor says entry {beyond} exists (its last entries were removed)"
                ),
            });
        }
        if self.key.is_some() && self.keyed == 0 {
            return Err(BrokenLink {
                seq: 1,
                why: format!(
                    "an audit key was given but none of the {entries} entries is keyed (the chain was written, or rewritten, without the key)"
                ),
            });
        }
        Ok(ChainReport {
            entries,
            keyed: self.keyed,
            unchecked: self.unchecked,
            head: (entries > 0).then_some(self.prev_hash),
            anchors: self.anchors.len(),
            newest_anchor: self.anchors.last_key_value().map(|(&seq, _)| seq),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AuditKey {
        AuditKey::new(b"a key of thirty-two bytes, or so").expect("key")
    }

    fn other_key() -> AuditKey {
        AuditKey::new(b"another key of thirty-two bytes!").expect("key")
    }

    /// An owned entry: its fields, stored hash and keyed mark.
    #[derive(Clone)]
    struct Entry {
        seq: i64,
        reason: String,
        prev: String,
        hash: String,
        keyed: bool,
    }

    impl Entry {
        fn fields(&self) -> AuditFields<'_> {
            AuditFields {
                seq: self.seq,
                id: "aud_1",
                at: 1_700_000_000 + self.seq,
                actor: "system",
                action: "case.opened",
                subject: "user:u-1",
                reason: Some(&self.reason),
                before: None,
                after: Some("{\"status\":\"open\"}"),
                prev_hash: &self.prev,
            }
        }

        /// Recomputes the hash as a writer with `key` (or without one) would.
        fn rehash(&mut self, key: Option<&AuditKey>) {
            self.keyed = key.is_some();
            self.hash = self.fields().hash_with(key);
        }
    }

    /// A chain written as `shape` says: `u` an unkeyed entry, `k` one keyed under [`key`].
    fn chain(shape: &str) -> Vec<Entry> {
        let key = key();
        let mut out: Vec<Entry> = Vec::new();
        for (i, c) in shape.chars().enumerate() {
            let mut e = Entry {
                seq: i as i64 + 1,
                reason: "why".to_owned(),
                prev: out.last().map_or(GENESIS.to_owned(), |p| p.hash.clone()),
                hash: String::new(),
                keyed: false,
            };
            e.rehash((c == 'k').then_some(&key));
            out.push(e);
        }
        out
    }

    /// Relinks every entry from `from` (1-based) on, as an attacker recomputing hashes would.
    fn relink(entries: &mut [Entry], from: usize, key: Option<&AuditKey>) {
        for i in from - 1..entries.len() {
            if i > 0 {
                entries[i].prev = entries[i - 1].hash.clone();
            }
            entries[i].rehash(key);
        }
    }

    /// Verifies `entries` with `key` and `anchors`, as a one-line outcome.
    fn verify(entries: &[Entry], key: Option<AuditKey>, anchors: &[Checkpoint]) -> String {
        let mut verifier = ChainVerifier::with_key(key);
        for anchor in anchors {
            if let Err(e) = verifier.anchor(anchor) {
                return format!("bad anchor: {e}");
            }
        }
        for e in entries {
            if let Err(broken) = verifier.check(&e.fields(), &e.hash, e.keyed) {
                return format!("broken at {}: {}", broken.seq, broken.why);
            }
        }
        match verifier.finish() {
            Ok(r) => format!(
                "intact: {} entries, {} keyed, {} unchecked, {} anchors",
                r.entries, r.keyed, r.unchecked, r.anchors
            ),
            Err(broken) => format!("broken at {}: {}", broken.seq, broken.why),
        }
    }

    #[track_caller]
    #[allow(clippy::needless_pass_by_value)] // Reads best as `expect(verify(..), "…")`.
    fn expect(outcome: String, starts: &str) {
        assert!(
            outcome.starts_with(starts),
            "expected `{starts}…`, got `{outcome}`"
        );
    }

    fn anchor_at(entries: &[Entry], seq: i64, key: Option<&AuditKey>) -> Checkpoint {
        let e = &entries[usize::try_from(seq - 1).expect("seq")];
        Checkpoint::of_head(seq, e.hash.clone(), 1_800_000_000, key)
    }

    #[test]
    fn an_intact_chain_verifies() {
        expect(
            verify(&chain("uuuuu"), None, &[]),
            "intact: 5 entries, 0 keyed",
        );
    }

    #[test]
    fn a_changed_field_a_gap_and_a_relinked_entry_are_each_found() {
        // A changed reason: the entry's hash no longer matches.
        let mut entries = chain("uuuu");
        entries[2].reason = "another reason".to_owned();
        expect(verify(&entries, None, &[]), "broken at 3: its content");

        // A removed entry: the sequence has a gap.
        let mut entries = chain("uuuu");
        entries.remove(1);
        expect(verify(&entries, None, &[]), "broken at 2: expected entry 2");

        // A rewritten entry with a freshly computed hash: the next link breaks.
        let mut entries = chain("uuuu");
        entries[1].reason = "rewritten".to_owned();
        entries[1].rehash(None);
        expect(
            verify(&entries, None, &[]),
            "broken at 3: its previous hash",
        );
    }

    #[test]
    fn a_keyed_hash_is_an_hmac_under_the_key_and_the_key_is_never_shown() {
        let e = &chain("u")[0];
        let (plain, keyed, other) = (
            e.fields().hash(),
            e.fields().keyed_hash(&key()),
            e.fields().keyed_hash(&other_key()),
        );
        assert_eq!(keyed.len(), 64);
        assert_ne!(plain, keyed);
        assert_ne!(keyed, other);
        assert_eq!(e.fields().hash_with(Some(&key())), keyed);
        assert_eq!(format!("{:?}", key()), "AuditKey(<redacted>)");
        assert!(AuditKey::new(b"short").is_err());
    }

    #[test]
    fn an_unkeyed_prefix_then_a_keyed_suffix_verifies_with_the_key_only() {
        let entries = chain("uuukkk");
        expect(
            verify(&entries, Some(key()), &[]),
            "intact: 6 entries, 3 keyed, 0 unchecked",
        );
        // Without the key the links are checked, the keyed entries' content is not.
        expect(
            verify(&entries, None, &[]),
            "intact: 6 entries, 3 keyed, 3 unchecked",
        );
        expect(
            verify(&entries, Some(other_key()), &[]),
            "broken at 4: its content does not match its keyed hash",
        );
        // A fully keyed chain (a database keyed from the start).
        expect(
            verify(&chain("kkk"), Some(key()), &[]),
            "intact: 3 entries, 3 keyed",
        );
    }

    #[test]
    fn an_unkeyed_entry_after_a_keyed_one_is_a_break_even_with_a_correct_hash() {
        let entries = chain("uukuk");
        expect(
            verify(&entries, Some(key()), &[]),
            "broken at 4: it is not keyed but follows a keyed entry",
        );
        expect(
            verify(&entries, None, &[]),
            "broken at 4: it is not keyed but follows a keyed entry",
        );
    }

    #[test]
    fn with_a_key_a_chain_without_keyed_entries_is_refused() {
        expect(
            verify(&chain("uuu"), Some(key()), &[]),
            "broken at 1: an audit key was given but none of the 3 entries is keyed",
        );
        expect(
            verify(&[], Some(key()), &[]),
            "broken at 1: an audit key was given but none of the 0 entries",
        );
    }

    #[test]
    fn a_keyed_chain_edited_and_rehashed_without_the_key_is_found_with_it() {
        // The attacker edits entry 4 and recomputes every hash from there with SHA-256,
        // marking the entries unkeyed: the prefix/suffix rule catches it.
        let mut entries = chain("uukkkk");
        entries[3].reason = "edited".to_owned();
        relink(&mut entries, 4, None);
        expect(
            verify(&entries, Some(key()), &[]),
            "broken at 4: it is not keyed but follows a keyed entry",
        );
        // Rewriting the whole chain unkeyed leaves no keyed entry.
        let mut entries = chain("uukkkk");
        entries[3].reason = "edited".to_owned();
        relink(&mut entries, 1, None);
        expect(
            verify(&entries, Some(key()), &[]),
            "broken at 1: an audit key was given but none",
        );
        // Keeping the keyed mark with a SHA-256 (or a guessed key's) hash fails the MAC.
        let mut entries = chain("uukkkk");
        entries[3].reason = "edited".to_owned();
        relink(&mut entries, 4, Some(&other_key()));
        expect(
            verify(&entries, Some(key()), &[]),
            "broken at 4: its content does not match its keyed hash",
        );
        // Editing the unkeyed prefix and relinking it breaks the first keyed entry's MAC,
        // which covers the prefix's last hash.
        let mut entries = chain("uukkkk");
        entries[0].reason = "edited".to_owned();
        relink(&mut entries[..2], 1, None);
        expect(
            verify(&entries, Some(key()), &[]),
            "broken at 3: its previous hash does not match",
        );
        entries[2].prev = entries[1].hash.clone();
        expect(
            verify(&entries, Some(key()), &[]),
            "broken at 3: its content does not match its keyed hash",
        );
    }

    #[test]
    fn anchors_catch_a_removed_tail_and_a_rewritten_chain_without_the_key() {
        let entries = chain("uuuuuu");
        let anchors = [anchor_at(&entries, 2, None), anchor_at(&entries, 5, None)];
        expect(
            verify(&entries, None, &anchors),
            "intact: 6 entries, 0 keyed, 0 unchecked, 2 anchors",
        );
        // The last two entries removed: the chain no longer reaches the anchor at 5.
        expect(
            verify(&entries[..4], None, &anchors),
            "broken at 5: the chain ends at entry 4 but an anchor says entry 5 exists",
        );
        // Only the entry after the newest anchor removed: not detectable.
        expect(verify(&entries[..5], None, &anchors), "intact: 5 entries");
        // Entry 3 edited and every hash recomputed (SHA-256): the anchor at 5 disagrees.
        let mut rewritten = entries.clone();
        rewritten[2].reason = "edited".to_owned();
        relink(&mut rewritten, 3, None);
        expect(
            verify(&rewritten, None, &anchors),
            "broken at 5: its hash differs from the anchor's",
        );
        // A hand-typed anchor reads the same.
        let typed = Checkpoint::parse(&format!("5:{}", entries[4].hash)).expect("parses");
        expect(
            verify(&rewritten, None, &[typed]),
            "broken at 5: its hash differs",
        );
    }

    #[test]
    fn with_a_key_a_forged_anchor_is_reported() {
        let entries = chain("kkkk");
        let signed = anchor_at(&entries, 3, Some(&key()));
        expect(
            verify(&entries, Some(key()), std::slice::from_ref(&signed)),
            "intact: 4 entries, 4 keyed, 0 unchecked, 1 anchors",
        );
        let by_another = anchor_at(&entries, 3, Some(&other_key()));
        expect(
            verify(&entries, Some(key()), &[by_another]),
            "bad anchor: the anchor at entry 3 is forged",
        );
        let mut moved = signed.clone();
        moved.seq = 2;
        moved.hash.clone_from(&entries[1].hash);
        expect(
            verify(&entries, Some(key()), &[moved]),
            "bad anchor: the anchor at entry 2 is forged",
        );
        // Without the key the MAC cannot be checked; the anchor still binds the chain.
        let mut rewritten = entries.clone();
        rewritten[1].reason = "edited".to_owned();
        relink(&mut rewritten, 2, None);
        for e in &mut rewritten[1..] {
            e.keyed = true;
        }
        expect(
            verify(&rewritten, None, &[signed]),
            "broken at 3: its hash differs from the anchor's",
        );
    }

    #[test]
    fn anchors_are_read_from_typed_pairs_anchor_files_and_log_lines() {
        let hash = "ab".repeat(32);
        assert_eq!(
            Checkpoint::parse(&format!("12:{hash}")).expect("pair"),
            Checkpoint {
                seq: 12,
                hash: hash.clone(),
                at: None,
                mac: None
            }
        );
        for bad in ["12", "x:ab", "0:abab", &format!("0:{hash}"), "12:zz"] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad}");
        }
        let written = Checkpoint::of_head(7, hash.clone(), 1_800_000_000, Some(&key()));
        let file_line = serde_json::to_string(&written).expect("json");
        let json_log = format!(
            r#"{{"timestamp":"2027-01-15T08:00:00Z","level":"INFO","fields":{{"message":"audit checkpoint","seq":7,"hash":"{hash}","at":1800000000,"mac":"{}"}},"target":"riskhook::audit"}}"#,
            written.mac.as_deref().expect("mac")
        );
        let text_log = format!(
            "2027-01-15T08:00:00Z  INFO riskhook::audit: audit checkpoint seq=7 hash={hash} at=1800000000 mac={}",
            written.mac.as_deref().expect("mac")
        );
        let flat_log = format!(
            r#"{{"timestamp":"2027-01-15T08:00:00Z","level":"INFO","message":"audit checkpoint","seq":7,"hash":"{hash}","at":1800000000,"mac":"{}","target":"riskhook::audit"}}"#,
            written.mac.as_deref().expect("mac")
        );
        let other_log = r#"{"level":"INFO","fields":{"message":"riskhook listening"}}"#;
        let other_flat = r#"{"level":"INFO","message":"riskhook listening","address":"x"}"#;
        let text = format!(
            "{file_line}\n\n{json_log}\n{other_log}\n{other_flat}\nnot a checkpoint\n{text_log}\n{flat_log}\n"
        );
        let read = Checkpoint::parse_lines(&text).expect("reads");
        assert_eq!(read, vec![written; 4]);
        assert_eq!(read[0].mac_holds(&key()), Some(true));
        assert_eq!(read[0].mac_holds(&other_key()), Some(false));
        let broken = Checkpoint::parse_lines("{\"seq\":7}\n").expect_err("no hash");
        assert!(broken.to_string().starts_with("line 1:"), "{broken}");
    }
}

//! Mutated signed deliveries and the oracle that judges what the verifier made of them, shared by
//! `riskhook-didit/tests/mutation.rs` (through `Verifier::verify`) and the service's
//! `tests/it/mutation.rs` (through HTTP and the database).
//!
//! An original is a fixture stamped with a timestamp and signed as Didit signs (`X-Timestamp`,
//! `X-Signature`, `X-Signature-V2`, `X-Signature-Simple`). A mutant changes its body (bit flips,
//! byte insertions and deletions, field edits that keep the JSON valid, fields that try to
//! override signed ones, re-encodings of the same JSON), its headers, or both. The oracle: a
//! mutant may be accepted only if the scheme that verified it covers it unchanged (the same
//! bytes for `X-Signature`, the same canonical form for `X-Signature-V2`, the same four fields
//! for `X-Signature-Simple`), and only with the identifiers the service keys on unchanged.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};
use riskhook_didit::canonical::canonicalize;
use riskhook_didit::payload::DiditEvent;
use riskhook_didit::signature::{
    Key, Keyring, Scheme, SignatureHeaders, SignedHeaders, simple_message,
};
use riskhook_didit::webhook::{Delivery, Verification, Verifier};

/// A deterministic generator: the same seed gives the same mutants on every machine.
pub(crate) fn rng(seed: u64) -> TestRng {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..].copy_from_slice(&(!seed).to_le_bytes());
    TestRng::from_seed(RngAlgorithm::XorShift, &bytes)
}

/// How many mutants to make: the environment variable `var` when set, else `default`.
pub(crate) fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// A JSON tree that keeps number tokens, key order and duplicate keys as written, so that a
// mutant differs from its original exactly where it was mutated.

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// Parses JSON the test controls (fixtures); panics on anything else.
    pub(crate) fn parse(text: &[u8]) -> Json {
        let text = std::str::from_utf8(text).expect("fixtures are UTF-8");
        let value: serde_json::Value = serde_json::from_str(text).expect("fixtures are JSON");
        let mut tokens = NumberTokens::of(text);
        let json = Self::from_value(&value, &mut tokens);
        assert!(tokens.next().is_none(), "number tokens left over");
        json
    }

    /// Walks `value` (whose objects are key-sorted, like the fixtures) taking number tokens in
    /// document order.
    fn from_value(value: &serde_json::Value, tokens: &mut NumberTokens<'_>) -> Json {
        match value {
            serde_json::Value::Null => Json::Null,
            serde_json::Value::Bool(b) => Json::Bool(*b),
            serde_json::Value::Number(_) => Json::Num(tokens.next().expect("a token").to_owned()),
            serde_json::Value::String(s) => Json::Str(s.clone()),
            serde_json::Value::Array(items) => {
                Json::Arr(items.iter().map(|v| Self::from_value(v, tokens)).collect())
            }
            serde_json::Value::Object(map) => Json::Obj(
                map.iter()
                    .map(|(k, v)| (k.clone(), Self::from_value(v, tokens)))
                    .collect(),
            ),
        }
    }

    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Json> {
        match self {
            Json::Obj(entries) => entries
                .iter_mut()
                .rev()
                .find(|(k, _)| k == key)
                .map(|e| &mut e.1),
            _ => None,
        }
    }

    /// Sets `key` (the last occurrence, or a new entry at the end).
    pub(crate) fn set(&mut self, key: &str, value: Json) {
        if let Some(slot) = self.get_mut(key) {
            *slot = value;
        } else if let Json::Obj(entries) = self {
            entries.push((key.to_owned(), value));
        }
    }

    /// Compact, in the tree's own order: what the original is sent as.
    pub(crate) fn compact(&self) -> Vec<u8> {
        let mut out = String::new();
        self.write(&mut Style::plain(), &mut out);
        out.into_bytes()
    }

    fn write(&self, style: &mut Style<'_>, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Num(token) => out.push_str(&style.number(token)),
            Json::Str(s) => style.string(s, out),
            Json::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    style.space(out);
                    item.write(style, out);
                    style.space(out);
                }
                out.push(']');
            }
            Json::Obj(entries) => {
                let mut order: Vec<usize> = (0..entries.len()).collect();
                style.shuffle(&mut order);
                out.push('{');
                let mut first = true;
                for i in order {
                    let (key, value) = &entries[i];
                    if let Some(shadow) = style.shadow(value) {
                        // The same key earlier with another value: every parser we use keeps
                        // the last, so this is the same document.
                        Self::entry(key, &shadow, &mut first, style, out);
                    }
                    Self::entry(key, value, &mut first, style, out);
                }
                out.push('}');
            }
        }
    }

    fn entry(key: &str, value: &Json, first: &mut bool, style: &mut Style<'_>, out: &mut String) {
        if !*first {
            out.push(',');
        }
        *first = false;
        style.space(out);
        style.string(key, out);
        style.space(out);
        out.push(':');
        style.space(out);
        value.write(style, out);
        style.space(out);
    }

    /// Paths to every leaf and every object member, for picking what to edit.
    fn paths(&self, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        match self {
            Json::Arr(items) => {
                for (i, item) in items.iter().enumerate() {
                    prefix.push(Step::Index(i));
                    out.push(prefix.clone());
                    item.paths(prefix, out);
                    prefix.pop();
                }
            }
            Json::Obj(entries) => {
                for (i, (_, value)) in entries.iter().enumerate() {
                    prefix.push(Step::Index(i));
                    out.push(prefix.clone());
                    value.paths(prefix, out);
                    prefix.pop();
                }
            }
            Json::Null | Json::Bool(_) | Json::Num(_) | Json::Str(_) => {}
        }
    }

    fn at_mut(&mut self, path: &[Step]) -> &mut Json {
        let Some((Step::Index(i), rest)) = path.split_first() else {
            return self;
        };
        match self {
            Json::Arr(items) => items[*i].at_mut(rest),
            Json::Obj(entries) => entries[*i].1.at_mut(rest),
            _ => self,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Index(usize),
}

/// Number tokens of a JSON text in document order (strings skipped).
struct NumberTokens<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> NumberTokens<'a> {
    fn of(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }
}

impl<'a> Iterator for NumberTokens<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        while self.pos < bytes.len() {
            match bytes[self.pos] {
                b'"' => {
                    self.pos += 1;
                    while bytes[self.pos] != b'"' {
                        self.pos += if bytes[self.pos] == b'\\' { 2 } else { 1 };
                    }
                    self.pos += 1;
                }
                b'-' | b'0'..=b'9' => {
                    let start = self.pos;
                    while self.pos < bytes.len()
                        && matches!(
                            bytes[self.pos],
                            b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                        )
                    {
                        self.pos += 1;
                    }
                    return Some(&self.text[start..self.pos]);
                }
                _ => self.pos += 1,
            }
        }
        None
    }
}

/// How a tree is written: plainly (the original), or re-encoded at random without changing the
/// document (whitespace, key order, escapes, number spellings, shadowed duplicate keys).
struct Style<'r> {
    rng: Option<&'r mut TestRng>,
    whitespace: bool,
    shuffle: bool,
    escapes: bool,
    numbers: bool,
    shadows: bool,
}

impl<'r> Style<'r> {
    fn plain() -> Self {
        Self {
            rng: None,
            whitespace: false,
            shuffle: false,
            escapes: false,
            numbers: false,
            shadows: false,
        }
    }

    fn chance(&mut self, on: bool, percent: u32) -> bool {
        on && self
            .rng
            .as_mut()
            .is_some_and(|r| r.random_range(0..100) < percent)
    }

    fn space(&mut self, out: &mut String) {
        if self.chance(self.whitespace, 20) {
            let spaces = [" ", "\n", "\t", "\r\n", "  "];
            let i = self
                .rng
                .as_mut()
                .map_or(0, |r| r.random_range(0..spaces.len()));
            out.push_str(spaces[i]);
        }
    }

    fn shuffle(&mut self, order: &mut [usize]) {
        if self.chance(self.shuffle, 50)
            && let Some(rng) = self.rng.as_mut()
        {
            for i in (1..order.len()).rev() {
                order.swap(i, rng.random_range(0..=i));
            }
        }
    }

    fn shadow(&mut self, value: &Json) -> Option<Json> {
        if !self.chance(self.shadows, 5) {
            return None;
        }
        Some(match value {
            Json::Str(_) => Json::Str("shadowed".to_owned()),
            Json::Num(_) => Json::Num("424242".to_owned()),
            _ => Json::Null,
        })
    }

    fn string(&mut self, s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            let escape_anyway = self.chance(self.escapes, 10);
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '/' if escape_anyway => out.push_str("\\/"),
                c if (c as u32) < 0x20 || escape_anyway => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        if self.chance(true, 50) {
                            let _ = write!(out, "\\u{unit:04X}");
                        } else {
                            let _ = write!(out, "\\u{unit:04x}");
                        }
                    }
                }
                // Fixtures are ASCII-escaped, as Didit sends them; written plainly, non-ASCII
                // is escaped again, and a re-encoding may send it as raw UTF-8.
                c if !c.is_ascii() && !self.escapes => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        let _ = write!(out, "\\u{unit:04x}");
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    /// Another spelling of the same number: `1` → `1.0`, `1e0`, `10E-1`…; `2.5` → `2.50`,
    /// `0.25e1`… Integer respellings are only exact below 2^53, which every id and timestamp
    /// in the fixtures is.
    fn number(&mut self, token: &str) -> String {
        if !self.chance(self.numbers, 40) {
            return token.to_owned();
        }
        let pick = self.rng.as_mut().map_or(0, |r| r.random_range(0..4));
        let (mantissa, exponent) = token.split_at(token.find(['e', 'E']).unwrap_or(token.len()));
        if exponent.is_empty() && !mantissa.contains('.') {
            let zero = mantissa.trim_start_matches('-') == "0";
            return match pick {
                0 => format!("{token}.0"),
                1 => format!("{token}e0"),
                2 if !zero => format!("{token}0E-1"),
                _ => format!("{token}.000E+0"),
            };
        }
        let point = if mantissa.contains('.') { "" } else { "." };
        match pick {
            0 | 1 => format!("{mantissa}{point}0{exponent}"),
            2 if exponent.is_empty() => format!("{token}e0"),
            3 if exponent.is_empty() => format!("{token}E+0"),
            _ => format!("{mantissa}{point}00{exponent}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Originals and mutants

/// `X-Timestamp`, `X-Signature`, `X-Signature-V2`, `X-Signature-Simple`; `None` is absent.
pub(crate) type Headers = [Option<String>; 4];

/// The header names, in [`Headers`] order.
pub(crate) const HEADER_NAMES: [&str; 4] = [
    "X-Timestamp",
    "X-Signature",
    "X-Signature-V2",
    "X-Signature-Simple",
];

/// A signed delivery as Didit sends it.
#[derive(Debug, Clone)]
pub(crate) struct Original {
    pub(crate) name: String,
    pub(crate) json: Json,
    pub(crate) body: Vec<u8>,
    pub(crate) headers: Headers,
    pub(crate) timestamp: i64,
    /// What the service keys the original on.
    pub(crate) identity: Identity,
    /// What it keys the original on when only `X-Signature-Simple` verifies it: the four signed
    /// fields alone (`None` when Simple cannot verify it, e.g. a nested envelope).
    pub(crate) simple_identity: Option<Identity>,
}

impl Original {
    /// `fixture` with its `timestamp` set to `timestamp`, signed with `key`.
    pub(crate) fn new(name: &str, fixture: &[u8], key: &Key, timestamp: i64) -> Self {
        let mut json = Json::parse(fixture);
        json.set("timestamp", Json::Num(timestamp.to_string()));
        Self::signed(name, json, key, timestamp)
    }

    /// The same session event with `session_id` and `vendor_data` (and the decision's copies)
    /// as JSON numbers, which the lenient models accept; `n` makes them unique.
    pub(crate) fn with_numeric_ids(&self, n: usize, key: &Key) -> Self {
        let mut json = self.json.clone();
        let session = format!("{}", 777_001 + 10 * n);
        let user = format!("{}", 880_001 + 10 * n);
        json.set("session_id", Json::Num(session.clone()));
        json.set("vendor_data", Json::Num(user.clone()));
        if let Some(decision @ Json::Obj(_)) = json.get_mut("decision") {
            decision.set("session_id", Json::Num(session));
            decision.set("vendor_data", Json::Num(user));
        }
        Self::signed(
            &format!("{} (numeric ids)", self.name),
            json,
            key,
            self.timestamp,
        )
    }

    /// Whether it is a session event (`status.updated`, `data.updated`) in the flat envelope.
    pub(crate) fn is_flat_session_event(&self) -> bool {
        self.name.starts_with("status-updated") || self.name.starts_with("data-updated")
    }

    pub(crate) fn signed(name: &str, json: Json, key: &Key, timestamp: i64) -> Self {
        let body = json.compact();
        let signed = SignedHeaders::sign(key, &body, timestamp);
        let identity = Identity::of(&DiditEvent::from_slice(&body).expect("originals parse"));
        let simple_only = Delivery {
            timestamp: Some(&signed.timestamp),
            signatures: SignatureHeaders {
                raw: None,
                v2: None,
                simple: Some(&signed.signature_simple),
            },
            body: &body,
        };
        let simple_identity = Keyring::new(vec![key.clone()])
            .ok()
            .and_then(|ring| {
                Verifier::new(ring)
                    .allow_simple(true)
                    .verify(&simple_only, timestamp)
                    .ok()
            })
            .map(|(event, _)| Identity::of(&event));
        Self {
            name: name.to_owned(),
            json,
            body,
            headers: [
                Some(signed.timestamp),
                Some(signed.signature),
                signed.signature_v2,
                Some(signed.signature_simple),
            ],
            timestamp,
            identity,
            simple_identity,
        }
    }
}

/// What a mutation did to the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum BodyEdit {
    Unchanged,
    BitFlips,
    Insertion,
    Deletion,
    /// A field's value changed, added or removed; the JSON stays valid.
    FieldEdit,
    /// Fields that try to override signed ones: a `data` object, the decision's copies, a later
    /// duplicate key.
    Override,
    /// The same document written differently.
    Reencoding,
}

/// What a mutation did to the headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum HeaderEdit {
    Unchanged,
    Timestamp,
    SignatureCase,
    SignatureWhitespace,
    SignatureTruncated,
    SignatureAltered,
    SignatureRemoved,
    SignaturesSwapped,
    /// Another original's signature.
    SignatureBorrowed,
}

/// Which body mutations a run makes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mix {
    /// Every kind.
    All,
    /// Every kind except edits of the identifier sources no Simple signature covers
    /// ([`UNSIGNED`]).
    AllButUnsignedFields,
    /// Only edits of those.
    UnsignedFieldsOnly,
    /// Only re-encodings (with number respellings on), header edits aside.
    ReencodingsOnly,
}

/// One mutated delivery.
#[derive(Debug, Clone)]
pub(crate) struct Mutant {
    pub(crate) body_edit: BodyEdit,
    pub(crate) header_edit: HeaderEdit,
    pub(crate) body: Vec<u8>,
    pub(crate) headers: Headers,
    /// What was done, for the failure report.
    pub(crate) what: String,
}

impl Mutant {
    pub(crate) fn class(&self) -> (BodyEdit, HeaderEdit) {
        (self.body_edit, self.header_edit)
    }
}

/// The identifiers the service keys on, as it derives them from a verified delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) kind: String,
    pub(crate) delivery_key: Option<String>,
    pub(crate) content_key: String,
    pub(crate) session_id: Option<String>,
    pub(crate) subject_id: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) vendor_data: Option<String>,
    pub(crate) timestamp: Option<i64>,
}

impl Identity {
    pub(crate) fn of(event: &DiditEvent) -> Self {
        Self {
            kind: event.kind.as_str().to_owned(),
            delivery_key: event.delivery_key().map(str::to_owned),
            content_key: event.content_key(),
            session_id: event.session_id().map(str::to_owned),
            subject_id: event.subject_id().map(str::to_owned),
            status: event.status().map(str::to_owned),
            vendor_data: event.vendor_data().map(str::to_owned),
            timestamp: event.timestamp,
        }
    }
}

/// Makes one mutant of `original`; `others` lend their signatures.
pub(crate) fn mutate(
    rng: &mut TestRng,
    mix: Mix,
    original: &Original,
    others: &[Original],
) -> Mutant {
    let mut what = String::new();
    let (body_edit, header_edit) = loop {
        let body_edit = match mix {
            Mix::All | Mix::AllButUnsignedFields => match rng.random_range(0..10) {
                0..=1 => BodyEdit::Unchanged,
                2 => BodyEdit::BitFlips,
                3 => BodyEdit::Insertion,
                4 => BodyEdit::Deletion,
                5..=6 => BodyEdit::FieldEdit,
                7 => BodyEdit::Override,
                _ => BodyEdit::Reencoding,
            },
            Mix::UnsignedFieldsOnly => BodyEdit::FieldEdit,
            Mix::ReencodingsOnly => BodyEdit::Reencoding,
        };
        let header_edit = match rng.random_range(0..16) {
            0..=7 => HeaderEdit::Unchanged,
            8 => HeaderEdit::Timestamp,
            9 => HeaderEdit::SignatureCase,
            10 => HeaderEdit::SignatureWhitespace,
            11 => HeaderEdit::SignatureTruncated,
            12 => HeaderEdit::SignatureAltered,
            13 => HeaderEdit::SignatureRemoved,
            14 => HeaderEdit::SignaturesSwapped,
            _ => HeaderEdit::SignatureBorrowed,
        };
        if (body_edit, header_edit) != (BodyEdit::Unchanged, HeaderEdit::Unchanged) {
            break (body_edit, header_edit);
        }
    };
    let body = loop {
        let body = mutate_body(rng, mix, body_edit, original, &mut what);
        // Byte-level edits can land in any field: leave those of the unsigned identifiers to
        // the run that is about them.
        if matches!(mix, Mix::AllButUnsignedFields)
            && let Ok(event) = DiditEvent::from_slice(&body)
            && (event.delivery_key() != original.identity.delivery_key.as_deref()
                || event.vendor_data() != original.identity.vendor_data.as_deref())
        {
            what.clear();
            continue;
        }
        break body;
    };
    let headers = mutate_headers(rng, header_edit, original, others, &mut what);
    Mutant {
        body_edit,
        header_edit,
        body,
        headers,
        what,
    }
}

fn mutate_body(
    rng: &mut TestRng,
    mix: Mix,
    edit: BodyEdit,
    original: &Original,
    what: &mut String,
) -> Vec<u8> {
    let mut body = original.body.clone();
    match edit {
        BodyEdit::Unchanged => {}
        BodyEdit::BitFlips => {
            for _ in 0..rng.random_range(1..=3) {
                let i = rng.random_range(0..body.len());
                let bit = 1u8 << rng.random_range(0..8);
                body[i] ^= bit;
                let _ = write!(what, "flip bit {bit:#04x} at {i}; ");
            }
        }
        BodyEdit::Insertion => {
            const JSONISH: &[u8] = b" \t\n{}[]\",:0123456789.eE-+abnrtfu\\";
            for _ in 0..rng.random_range(1..=4) {
                let i = rng.random_range(0..=body.len());
                let byte = if rng.random_bool(0.5) {
                    JSONISH[rng.random_range(0..JSONISH.len())]
                } else {
                    rng.random::<u8>()
                };
                body.insert(i, byte);
                let _ = write!(what, "insert {byte:#04x} at {i}; ");
            }
        }
        BodyEdit::Deletion => {
            let len = rng.random_range(1..=8).min(body.len());
            let i = rng.random_range(0..=body.len() - len);
            body.drain(i..i + len);
            let _ = write!(what, "delete {len} bytes at {i}; ");
        }
        BodyEdit::FieldEdit => {
            let mut json = original.json.clone();
            edit_field(rng, mix, &mut json, what);
            body = json.compact();
        }
        BodyEdit::Override => {
            let mut json = original.json.clone();
            override_field(rng, &mut json, what);
            body = json.compact();
        }
        BodyEdit::Reencoding => {
            let numbers = matches!(mix, Mix::ReencodingsOnly) || rng.random_bool(0.5);
            let mut style = Style {
                whitespace: rng.random_bool(0.5),
                shuffle: rng.random_bool(0.5),
                escapes: rng.random_bool(0.5),
                numbers,
                shadows: rng.random_bool(0.3),
                rng: Some(rng),
            };
            let _ = write!(
                what,
                "re-encode (whitespace {}, key order {}, escapes {}, numbers {}, shadows {}); ",
                style.whitespace, style.shuffle, style.escapes, style.numbers, style.shadows
            );
            let mut out = String::new();
            original.json.write(&mut style, &mut out);
            body = out.into_bytes();
        }
    }
    body
}

/// The fields the service keys on: edited more often than others.
const KEYED: [&str; 6] = [
    "event_id",
    "session_id",
    "vendor_data",
    "status",
    "webhook_type",
    "timestamp",
];
/// Identifier sources `X-Signature-Simple` does not cover (it covers the top-level
/// `timestamp`, `session_id`, `status` and `webhook_type` only).
const UNSIGNED: [&str; 9] = [
    "event_id",
    "vendor_data",
    "applicant_vendor_data",
    "transaction_id",
    "uuid",
    "txn_id",
    "didit_internal_id",
    "business_session_id",
    "travel_rule_status",
];

fn edit_field(rng: &mut TestRng, mix: Mix, json: &mut Json, what: &mut String) {
    let keyed = match mix {
        Mix::UnsignedFieldsOnly => true,
        Mix::All | Mix::AllButUnsignedFields | Mix::ReencodingsOnly => rng.random_bool(0.5),
    };
    let target: &mut Json = if keyed {
        let mut names: Vec<&str> = match mix {
            Mix::UnsignedFieldsOnly => UNSIGNED.to_vec(),
            Mix::AllButUnsignedFields => KEYED
                .iter()
                .copied()
                .filter(|n| !UNSIGNED.contains(n))
                .collect(),
            Mix::All | Mix::ReencodingsOnly => KEYED.to_vec(),
        };
        // Prefer a field the event has: adding one the kind does not read changes nothing.
        let present: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| json.get_mut(n).is_some())
            .collect();
        if !present.is_empty() && rng.random_bool(0.9) {
            names = present;
        }
        let name = names[rng.random_range(0..names.len())];
        if json.get_mut(name).is_none() {
            json.set(name, Json::Str(format!("new-{name}")));
            let _ = write!(what, "add {name}; ");
            return;
        }
        let _ = write!(what, "edit {name}: ");
        json.get_mut(name).expect("present")
    } else {
        let mut paths = Vec::new();
        json.paths(&mut Vec::new(), &mut paths);
        paths.retain(|path| {
            // Never the unsigned fields when they are excluded, at any depth: a top-level
            // `vendor_data` is also what the decision's copy falls back to.
            !matches!(mix, Mix::AllButUnsignedFields) || !path_names_unsigned(json, path)
        });
        let path = &paths[rng.random_range(0..paths.len())];
        let _ = write!(what, "edit path {path:?}: ");
        json.at_mut(path)
    };
    let replacement = match target.clone() {
        Json::Str(s) => match rng.random_range(0..5) {
            0 => Json::Str(format!("{s}x")),
            1 => Json::Str(s.to_uppercase()),
            2 => Json::Str(String::new()),
            3 => Json::Num("777001".to_owned()),
            _ => Json::Null,
        },
        Json::Num(n) => match rng.random_range(0..4) {
            0 => Json::Num(format!("{}", n.parse::<f64>().unwrap_or(0.0) + 1.0)),
            1 => Json::Str(n),
            2 if !n.contains(['.', 'e', 'E']) => Json::Num(format!("{n}.5")),
            2 => Json::Num("0.5".to_owned()),
            _ => Json::Null,
        },
        Json::Bool(b) => Json::Bool(!b),
        Json::Null => Json::Str("now-set".to_owned()),
        Json::Arr(mut items) => {
            if items.pop().is_none() {
                items.push(Json::Null);
            }
            Json::Arr(items)
        }
        Json::Obj(mut entries) => {
            entries.push(("added".to_owned(), Json::Bool(true)));
            Json::Obj(entries)
        }
    };
    let _ = write!(what, "{replacement:?}; ");
    *target = replacement;
}

fn path_names_unsigned(json: &Json, path: &[Step]) -> bool {
    let mut node = json;
    for Step::Index(i) in path {
        node = match node {
            Json::Obj(entries) => {
                if UNSIGNED.contains(&entries[*i].0.as_str()) {
                    return true;
                }
                &entries[*i].1
            }
            Json::Arr(items) => &items[*i],
            _ => return false,
        };
    }
    false
}

fn override_field(rng: &mut TestRng, json: &mut Json, what: &mut String) {
    let fields = [
        ("session_id", Json::Str("other-session".to_owned())),
        ("status", Json::Str("Declined".to_owned())),
        ("timestamp", Json::Num("1780000000".to_owned())),
        ("webhook_type", Json::Str("data.updated".to_owned())),
        ("event", Json::Str("user.status.updated".to_owned())),
    ];
    let chosen: Vec<(String, Json)> = fields
        .iter()
        .filter(|_| rng.random_bool(0.5))
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let chosen = if chosen.is_empty() {
        vec![(fields[0].0.to_owned(), fields[0].1.clone())]
    } else {
        chosen
    };
    match rng.random_range(0..3) {
        0 => {
            let _ = write!(what, "add data object {chosen:?}; ");
            json.set("data", Json::Obj(chosen));
        }
        1 => {
            let _ = write!(what, "add decision fields {chosen:?}; ");
            match json.get_mut("decision") {
                Some(Json::Obj(entries)) => entries.extend(chosen),
                _ => json.set("decision", Json::Obj(chosen)),
            }
        }
        _ => {
            let _ = write!(what, "append later duplicate keys {chosen:?}; ");
            if let Json::Obj(entries) = json {
                entries.extend(chosen);
            }
        }
    }
}

fn mutate_headers(
    rng: &mut TestRng,
    edit: HeaderEdit,
    original: &Original,
    others: &[Original],
    what: &mut String,
) -> Headers {
    let mut headers = original.headers.clone();
    // A signature header that is present (X-Signature always is).
    let mut present: Vec<usize> = (1..4).filter(|&i| headers[i].is_some()).collect();
    if present.is_empty() {
        present.push(1);
    }
    let slot = present[rng.random_range(0..present.len())];
    let name = HEADER_NAMES[slot];
    let sig = headers[slot].clone().unwrap_or_default();
    match edit {
        HeaderEdit::Unchanged => {}
        HeaderEdit::Timestamp => {
            let t = original.timestamp;
            let value = match rng.random_range(0..9) {
                0 => Some((t + rng.random_range(1..=400)).to_string()),
                1 => Some((t - rng.random_range(1..=400)).to_string()),
                2 => Some(format!(" {t}\t")),
                3 => Some(format!("0{t}")),
                4 => Some(format!("+{t}")),
                5 => Some(format!("{t}.0")),
                6 => Some(String::new()),
                7 => Some("yesterday".to_owned()),
                _ => None,
            };
            let _ = write!(what, "X-Timestamp {value:?}; ");
            headers[0] = value;
        }
        HeaderEdit::SignatureCase => {
            let value = if rng.random_bool(0.5) {
                sig.to_uppercase()
            } else {
                sig.chars()
                    .map(|c| {
                        if rng.random_bool(0.5) {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        }
                    })
                    .collect()
            };
            let _ = write!(what, "{name} case {value}; ");
            headers[slot] = Some(value);
        }
        HeaderEdit::SignatureWhitespace => {
            let value = match rng.random_range(0..4) {
                0 => format!(" {sig}"),
                1 => format!("{sig}\t"),
                2 => format!("{} {}", &sig[..32], &sig[32..]),
                _ => format!("sha256={sig}"),
            };
            let _ = write!(what, "{name} {value:?}; ");
            headers[slot] = Some(value);
        }
        HeaderEdit::SignatureTruncated => {
            let keep = rng.random_range(0..sig.len().max(1));
            let value = sig.get(..keep).unwrap_or_default().to_owned();
            let _ = write!(what, "{name} truncated to {keep}; ");
            headers[slot] = Some(value);
        }
        HeaderEdit::SignatureAltered => {
            let mut chars: Vec<char> = sig.chars().collect();
            let value = if chars.is_empty() || rng.random_bool(0.2) {
                format!("{sig}0")
            } else {
                let i = rng.random_range(0..chars.len());
                let digits: Vec<char> = "0123456789abcdef"
                    .chars()
                    .filter(|&c| c != chars[i])
                    .collect();
                chars[i] = digits[rng.random_range(0..digits.len())];
                chars.into_iter().collect()
            };
            let _ = write!(what, "{name} altered {value}; ");
            headers[slot] = Some(value);
        }
        HeaderEdit::SignatureRemoved => {
            let _ = write!(what, "{name} removed; ");
            headers[slot] = None;
        }
        HeaderEdit::SignaturesSwapped => {
            let (a, b) = match rng.random_range(0..3) {
                0 => (1, 2),
                1 => (1, 3),
                _ => (2, 3),
            };
            let _ = write!(what, "swap {} and {}; ", HEADER_NAMES[a], HEADER_NAMES[b]);
            headers.swap(a, b);
        }
        HeaderEdit::SignatureBorrowed => {
            let other = &others[rng.random_range(0..others.len())];
            let from = rng.random_range(1..4);
            let _ = write!(what, "{name} := {}'s {}; ", other.name, HEADER_NAMES[from]);
            headers[slot] = other.headers[from].clone();
        }
    }
    headers
}

// ---------------------------------------------------------------------------------------------
// The oracle

/// What the verifier made of one mutant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Rejected,
    /// Accepted, and the oracle agrees.
    Legitimate,
}

/// Verifies `mutant` and judges the result against `original`; `Err` explains a delivery that
/// was accepted but should not have been.
pub(crate) fn judge(
    verifier: &Verifier,
    now: i64,
    original: &Original,
    mutant: &Mutant,
) -> Result<Verdict, String> {
    let h = &mutant.headers;
    let delivery = Delivery {
        timestamp: h[0].as_deref(),
        signatures: SignatureHeaders {
            raw: h[1].as_deref(),
            v2: h[2].as_deref(),
            simple: h[3].as_deref(),
        },
        body: &mutant.body,
    };
    let Ok((event, verification)) = verifier.verify(&delivery, now) else {
        return Ok(Verdict::Rejected);
    };
    accepted_legitimately(original, mutant, &event, &verification).map(|()| Verdict::Legitimate)
}

/// The oracle for an accepted mutant (also used on what the service stored).
pub(crate) fn accepted_legitimately(
    original: &Original,
    mutant: &Mutant,
    event: &DiditEvent,
    verification: &Verification,
) -> Result<(), String> {
    // Simple authenticates four fields only, so the service reads those alone: the original
    // itself, verified that way, is what a Simple-verified mutant must match.
    let expected = match verification.scheme {
        Scheme::Simple => original.simple_identity.as_ref(),
        Scheme::Raw | Scheme::V2(_) => Some(&original.identity),
    };
    let covered = match verification.scheme {
        Scheme::Raw => mutant.body == original.body,
        Scheme::V2(form) => {
            canonicalize(&mutant.body, form).ok() == canonicalize(&original.body, form).ok()
        }
        Scheme::Simple => simple_message(&mutant.body) == simple_message(&original.body),
    };
    let identity = Identity::of(event);
    let mut problems = Vec::new();
    if !covered {
        problems.push(format!("{} does not cover this body", verification.scheme));
    }
    if expected != Some(&identity) {
        problems.push(format!(
            "identity {identity:?} differs from the original's {expected:?}"
        ));
    }
    if verification.timestamp != original.timestamp {
        problems.push(format!("verified at timestamp {}", verification.timestamp));
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} {:?} via {}: {}\n    mutation: {}\n    headers: {:?}\n    body: {}",
        original.name,
        mutant.class(),
        verification.scheme,
        problems.join("; "),
        mutant.what,
        mutant.headers,
        String::from_utf8_lossy(&mutant.body[..mutant.body.len().min(400)]),
    ))
}

/// Counts per mutation class, printed at the end of a run.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    classes: BTreeMap<(BodyEdit, HeaderEdit), [usize; 3]>,
    pub(crate) failures: Vec<String>,
}

impl Tally {
    pub(crate) fn add(&mut self, class: (BodyEdit, HeaderEdit), result: Result<Verdict, String>) {
        let counts = self.classes.entry(class).or_default();
        match result {
            Ok(Verdict::Rejected) => counts[0] += 1,
            Ok(Verdict::Legitimate) => counts[1] += 1,
            Err(failure) => {
                counts[2] += 1;
                if self.failures.len() < 1000 {
                    self.failures.push(failure);
                }
            }
        }
    }

    /// Totals by body edit and by header edit: (made, rejected, accepted legitimately, failed).
    pub(crate) fn report(&self) -> String {
        let mut by_body: BTreeMap<BodyEdit, [usize; 3]> = BTreeMap::new();
        let mut by_header: BTreeMap<HeaderEdit, [usize; 3]> = BTreeMap::new();
        for ((body, header), counts) in &self.classes {
            for (total, n) in by_body.entry(*body).or_default().iter_mut().zip(counts) {
                *total += n;
            }
            for (total, n) in by_header.entry(*header).or_default().iter_mut().zip(counts) {
                *total += n;
            }
        }
        let mut out =
            String::from("class: made / rejected / accepted legitimately / accepted wrongly\n");
        let mut line = |name: String, c: &[usize; 3]| {
            let _ = writeln!(
                out,
                "  {name:<28} {:>7} {:>7} {:>7} {:>7}",
                c.iter().sum::<usize>(),
                c[0],
                c[1],
                c[2]
            );
        };
        for (edit, counts) in &by_body {
            line(format!("body {edit:?}"), counts);
        }
        for (edit, counts) in &by_header {
            line(format!("headers {edit:?}"), counts);
        }
        let mut all = [0usize; 3];
        for counts in self.classes.values() {
            for (total, n) in all.iter_mut().zip(counts) {
                *total += n;
            }
        }
        line("all".to_owned(), &all);
        out
    }

    /// Fails with the report and the first failures, if there are any.
    #[track_caller]
    pub(crate) fn assert_no_failures(&self) {
        let report = self.report();
        println!("{report}");
        assert!(
            self.failures.is_empty(),
            "{} mutated deliveries were accepted that their signature does not cover \
             or that changed an identifier:\n{report}\nfirst ones:\n{}",
            self.classes.values().map(|c| c[2]).sum::<usize>(),
            self.failures
                .iter()
                .take(15)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    pub(crate) fn legitimate(&self) -> usize {
        self.classes.values().map(|c| c[1]).sum()
    }

    pub(crate) fn total(&self) -> usize {
        self.classes.values().map(|c| c.iter().sum::<usize>()).sum()
    }
}

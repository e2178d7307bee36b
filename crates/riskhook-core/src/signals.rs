//! Signals: typed, provider-neutral facts about one verification, each with its provenance.
//!
//! [`SCHEMA`] is the one list of every signal a policy may read: its name (`group.field`, which
//! is how CEL sees it), its type and what it means. A signal that is absent from [`Signals`] was
//! not checked — which is different from checked and passed: in a policy it reads as `null`.
//! Provider mappings fill a [`Signals`] from a payload; they live beside their provider's
//! protocol, not here (Didit's is the `riskhook-didit-signals` crate), so the engine knows no
//! provider.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The type of a signal's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `bool` in CEL.
    Bool,
    /// `int` in CEL.
    Int,
    /// `double` in CEL.
    Float,
    /// `string` in CEL.
    String,
    /// `list(string)` in CEL.
    StringList,
}

impl Kind {
    /// The CEL type name, for error messages and docs.
    pub fn cel_name(self) -> &'static str {
        match self {
            Kind::Bool => "bool",
            Kind::Int => "int",
            Kind::Float => "double",
            Kind::String => "string",
            Kind::StringList => "list(string)",
        }
    }
}

/// One entry of the signal schema.
#[derive(Debug, Clone, Copy)]
pub struct SignalDef {
    /// `group.field`.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// What it means, for the policy reference.
    pub doc: &'static str,
}

macro_rules! schema {
    ($($name:literal : $kind:ident => $doc:literal,)*) => {
        /// Every signal a policy may read.
        pub const SCHEMA: &[SignalDef] = &[
            $(SignalDef { name: $name, kind: Kind::$kind, doc: $doc },)*
        ];

        /// Looks a signal up in [`SCHEMA`].
        pub fn definition(name: &str) -> Option<&'static SignalDef> {
            // A `match` on the names, not a search of the list: reading a snapshot back looks up
            // every signal in it, a million times over in a backtest, and a search's string
            // comparisons were 40% of that read.
            match name {
                $($name => Some(&SignalDef { name: $name, kind: Kind::$kind, doc: $doc }),)*
                _ => None,
            }
        }
    };
}

schema! {
    "session.status": String => "Didit's session status: Not Started, In Progress, In Review, Approved, Declined, Resubmitted, Expired, Kyc Expired, Abandoned, Awaiting User.",
    "session.kind": String => "`user` (KYC) or `business` (KYB).",
    "session.body_trusted": Bool => "False when only X-Signature-Simple verified the event: the decision data is not authenticated.",

    "document.status": String => "Feature status of the ID document check (the worst across workflow nodes).",
    "document.verified": Bool => "Every ID document check was Approved.",
    "document.expired": Bool => "The document had expired at the time of the event (DOCUMENT_EXPIRED, or its expiration date before the event).",
    "document.tampered": Bool => "Signs of manipulation: PORTRAIT_MANIPULATION_DETECTED or a similar document-tampering warning.",
    "document.screen_capture": Bool => "SCREEN_CAPTURE_DETECTED: the document was photographed off a screen.",
    "document.printed_copy": Bool => "PRINTED_COPY_DETECTED: the document is a printed copy.",
    "document.age": Int => "The holder's age in years, as read from the document.",
    "document.nationality": String => "The holder's nationality as written on the document (usually ISO 3166 alpha-3).",
    "document.issuing_state": String => "The issuing country (ISO 3166 alpha-3).",
    "document.type": String => "The document type, e.g. Passport, Identity Card, Driving License.",

    "liveness.status": String => "Feature status of the liveness check (the worst across nodes).",
    "liveness.passed": Bool => "Every liveness check was Approved.",
    "liveness.method": String => "ACTIVE_3D, FLASHING or PASSIVE (upper-cased).",
    "liveness.score": Float => "Liveness score 0-100 (the lowest across nodes).",
    "liveness.face_attack": Bool => "LIVENESS_FACE_ATTACK: a presentation attack (mask, screen, deepfake) was detected.",
    "liveness.duplicate_face": Bool => "DUPLICATED_FACE or POSSIBLE_DUPLICATED_FACE: the face was seen in another session.",

    "face.status": String => "Feature status of the face match (the worst across nodes).",
    "face.passed": Bool => "Every face match was Approved.",
    "face.match_score": Float => "Similarity 0-100 between the selfie and the document portrait (the lowest across nodes).",

    "aml.status": String => "Feature status of the AML screening (the worst across nodes).",
    "aml.screening_failed": Bool => "COULD_NOT_PERFORM_AML_SCREENING: the screening did not run.",
    "aml.total_hits": Int => "Hits that are matches and not reviewed as False Positive.",
    "aml.sanctions_hits": Int => "Of those, hits on a sanctions list.",
    "aml.pep_hits": Int => "Of those, politically exposed person hits.",
    "aml.pep_level": Int => "The highest PEP level among them, 1 (most exposed) to 4; 0 when none. A PEP hit without a level counts as 1.",
    "aml.adverse_media_hits": Int => "Of those, adverse-media hits.",
    "aml.enforcement_hits": Int => "Of those, 'Warnings and Regulatory Enforcement' hits.",
    "aml.max_match_score": Float => "The highest identity match score 0-100 among them; 0 when none.",
    "aml.max_risk_score": Float => "The highest entity risk score 0-100 among them; 0 when none.",

    "phone.status": String => "Feature status of the phone verification.",
    "phone.verified": Bool => "Every phone verification was Approved.",
    "phone.disposable": Bool => "The number is disposable (is_disposable or DISPOSABLE_NUMBER_DETECTED).",
    "phone.voip": Bool => "The number is virtual/VoIP (is_virtual or VOIP_NUMBER_DETECTED).",
    "phone.high_risk": Bool => "HIGH_RISK_PHONE_NUMBER.",
    "phone.country": String => "The number's country (ISO 3166 alpha-2).",

    "email.status": String => "Feature status of the email verification.",
    "email.verified": Bool => "Every email verification was Approved.",
    "email.disposable": Bool => "A disposable address (is_disposable or DISPOSABLE_EMAIL_DETECTED).",
    "email.breached": Bool => "The address appears in known breaches (is_breached or BREACHED_EMAIL_DETECTED).",
    "email.breach_count": Int => "How many known breaches include the address.",
    "email.undeliverable": Bool => "The address cannot receive mail (is_undeliverable or UNDELIVERABLE_EMAIL_DETECTED).",

    "ip.status": String => "Feature status of the IP analysis.",
    "ip.vpn_or_tor": Bool => "The IP is a VPN, proxy or Tor exit (is_vpn_or_tor or PRIVATE_NETWORK_DETECTED).",
    "ip.data_center": Bool => "The IP belongs to a data centre.",
    "ip.country": String => "The IP's country (ISO 3166 alpha-2).",
    "ip.country_mismatch": Bool => "COUNTRY_FROM_DOCUMENT_DOES_NOT_MATCH_COUNTRY_FROM_IP.",
    "ip.distance_from_document_km": Float => "Distance between the IP location and the document's address, in km (the largest across nodes).",

    "poa.status": String => "Feature status of the proof of address.",
    "poa.verified": Bool => "Every proof of address was Approved.",
    "poa.name_mismatch": Bool => "The name on the proof of address does not match (NAME_MISMATCH_*).",
    "poa.address_mismatch": Bool => "The address does not match the expected one (ADDRESS_MISMATCH_WITH_PROVIDED, POA_COUNTRY_MISMATCH_WITH_PROVIDED).",
    "poa.manipulated": Bool => "The document looks manipulated (SUSPECTED_DOCUMENT_MANIPULATION, DOCUMENT_METADATA_MISMATCH, or metadata is_tampered).",
    "poa.expired": Bool => "POA_DOCUMENT_EXPIRED (or the older EXPIRED_DOCUMENT).",

    "duplicates.count": Int => "How many other sessions share this person's document, face, phone, email, IP or device (distinct session ids across every matches[] list).",
    "duplicates.blocklisted": Bool => "Any match is on a blocklist, or a *_IN_BLOCKLIST warning was raised.",

    "risk.codes": StringList => "Every warning risk code Didit raised, sorted, without repeats (an open set: new codes appear).",
    "risk.decline_codes": StringList => "The codes raised with log_type error: Didit's own reasons to decline.",
    "risk.review_codes": StringList => "The codes raised with log_type warning: Didit's own reasons to review.",
}

/// The groups (`aml`, `document`, ...): the top-level names a policy can use.
pub fn groups() -> Vec<&'static str> {
    let mut groups: Vec<&'static str> = SCHEMA
        .iter()
        .filter_map(|d| d.name.split_once('.').map(|(g, _)| g))
        .collect();
    groups.dedup();
    groups
}

/// A signal's value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SignalValue {
    /// `bool`.
    Bool(bool),
    /// `int`.
    Int(i64),
    /// `double`.
    Float(f64),
    /// `string`.
    String(String),
    /// `list(string)`.
    StringList(Vec<String>),
}

/// Read as `#[serde(untagged)]` would read it (a bool, then an `i64`, then a number, a string,
/// a list of strings), by a visitor: the untagged derive buffers every value first, which was
/// most of the cost of reading a stored snapshot back for a backtest.
impl<'de> Deserialize<'de> for SignalValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SignalValue;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a signal value: a bool, a number, a string or a list of strings")
            }

            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<SignalValue, E> {
                Ok(SignalValue::Bool(v))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<SignalValue, E> {
                Ok(SignalValue::Int(v))
            }

            #[allow(clippy::cast_precision_loss)]
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<SignalValue, E> {
                // Past i64, the untagged derive fell through to the float variant.
                Ok(i64::try_from(v).map_or(SignalValue::Float(v as f64), SignalValue::Int))
            }

            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<SignalValue, E> {
                Ok(SignalValue::Float(v))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SignalValue, E> {
                Ok(SignalValue::String(v.to_owned()))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<SignalValue, E> {
                Ok(SignalValue::String(v))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<SignalValue, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                Ok(SignalValue::StringList(items))
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

impl SignalValue {
    /// The value's kind.
    pub fn kind(&self) -> Kind {
        match self {
            SignalValue::Bool(_) => Kind::Bool,
            SignalValue::Int(_) => Kind::Int,
            SignalValue::Float(_) => Kind::Float,
            SignalValue::String(_) => Kind::String,
            SignalValue::StringList(_) => Kind::StringList,
        }
    }

    /// Reads an `Int` signal stored as a float (`98.0` in JSON) or the other way round as its
    /// schema kind, so a snapshot read back from JSON has the kinds it was written with.
    fn coerce(self, kind: Kind) -> Option<Self> {
        match (self, kind) {
            // JSON cannot hold NaN or infinities: a snapshot holding one could not be read back,
            // so such a value is treated as not checked.
            (SignalValue::Float(f), _) if !f.is_finite() => None,
            (v, k) if v.kind() == k => Some(v),
            (SignalValue::Int(i), Kind::Float) => Some(SignalValue::Float(i as f64)),
            (SignalValue::Float(f), Kind::Int) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                Some(SignalValue::Int(f as i64))
            }
            (SignalValue::StringList(l), Kind::StringList) => Some(SignalValue::StringList(l)),
            _ => None,
        }
    }
}

/// Where a signal came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Our id of the event (`evt_…`).
    pub event_id: String,
    /// The JSON path inside the event, e.g. `decision.face_matches[0].score`.
    pub path: String,
}

/// A signal's value and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// The value.
    pub value: SignalValue,
    /// Its provenance.
    pub source: Source,
}

/// The signals of one verification. Absent means not checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Signals {
    values: BTreeMap<String, Signal>,
}

impl From<&Signals> for std::sync::Arc<Signals> {
    fn from(signals: &Signals) -> Self {
        std::sync::Arc::new(signals.clone())
    }
}

/// A snapshot that does not fit the schema.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    /// Not a JSON object of signal names to values (the message says where).
    #[error("not a snapshot of signal values: {0}")]
    Malformed(String),
    /// A name the schema does not know.
    #[error("unknown signal `{0}`")]
    Unknown(String),
    /// A value of the wrong type.
    #[error("signal `{name}` should be {expected}")]
    WrongType {
        /// The signal.
        name: String,
        /// Its schema type.
        expected: &'static str,
    },
}

impl Signals {
    /// No signals: nothing checked.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a signal. Names outside the schema and values of the wrong kind are ignored
    /// (and caught by the mapping's tests), so a mapping bug cannot make the engine fail.
    pub fn set(&mut self, name: &str, value: SignalValue, event_id: &str, path: impl Into<String>) {
        let Some(def) = definition(name) else {
            debug_assert!(false, "unknown signal {name}");
            return;
        };
        if matches!(value, SignalValue::Float(f) if !f.is_finite()) {
            return;
        }
        let Some(value) = value.coerce(def.kind) else {
            debug_assert!(false, "signal {name} set with the wrong kind");
            return;
        };
        self.values.insert(
            def.name.to_owned(),
            Signal {
                value,
                source: Source {
                    event_id: event_id.to_owned(),
                    path: path.into(),
                },
            },
        );
    }

    /// A signal, if it was checked.
    pub fn get(&self, name: &str) -> Option<&Signal> {
        self.values.get(name)
    }

    /// Every checked signal, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Signal)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many signals were checked.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether nothing was checked.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The values alone, as one JSON object of signal name to value (`{"aml.total_hits":0,…}`,
    /// names in order): the compact snapshot a backtest replays. A fifth of the full snapshot's
    /// size, since the provenance stays in the stored assessment's explanation.
    pub fn values_json(&self) -> String {
        struct Values<'a>(&'a BTreeMap<String, Signal>);

        impl Serialize for Values<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_map(self.0.iter().map(|(name, s)| (name, &s.value)))
            }
        }

        // A map of strings to plain values always serialises; NaN and infinities are never
        // stored (`set` drops them).
        serde_json::to_string(&Values(&self.values)).unwrap_or_else(|_| "{}".to_owned())
    }

    /// Reads [`Signals::values_json`] back, checked against the schema as
    /// [`Signals::validate`] checks a full snapshot (a name it does not know, a value of the
    /// wrong type, anything but an object of names to values is an error). The signals read
    /// have no provenance: what a replay needs, not an explanation.
    pub fn from_values_json(json: &str) -> Result<Self, SnapshotError> {
        use serde::de::{DeserializeSeed, Error as _, MapAccess, Visitor};

        /// A signal's name, looked up in the schema without copying it.
        struct Name;

        impl<'de> DeserializeSeed<'de> for Name {
            type Value = &'static SignalDef;

            fn deserialize<D: serde::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Self::Value, D::Error> {
                d.deserialize_str(self)
            }
        }

        impl Visitor<'_> for Name {
            type Value = &'static SignalDef;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a signal name")
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Self::Value, E> {
                definition(name).ok_or_else(|| E::custom(format!("unknown signal `{name}`")))
            }
        }

        struct Values;

        impl<'de> Visitor<'de> for Values {
            type Value = BTreeMap<String, Signal>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of signal names to values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                // Collected, then built into the map at once: the names usually come in order
                // (as `values_json` writes them), which the build only checks, where inserting
                // one by one compares each name with several others.
                let mut values = Vec::with_capacity(SCHEMA.len());
                while let Some(def) = map.next_key_seed(Name)? {
                    let value = map
                        .next_value::<SignalValue>()?
                        .coerce(def.kind)
                        .ok_or_else(|| {
                            A::Error::custom(format!(
                                "signal `{}` should be {}",
                                def.name,
                                def.kind.cel_name()
                            ))
                        })?;
                    let signal = Signal {
                        value,
                        source: Source {
                            event_id: String::new(),
                            path: String::new(),
                        },
                    };
                    values.push((def.name.to_owned(), signal));
                }
                // A name given twice keeps its last value, as inserting one by one would.
                Ok(values.into_iter().collect())
            }
        }

        let mut reader = serde_json::Deserializer::from_str(json);
        let values = serde::Deserializer::deserialize_map(&mut reader, Values)
            .and_then(|values| reader.end().map(|()| values))
            .map_err(|e| SnapshotError::Malformed(e.to_string()))?;
        Ok(Self { values })
    }

    /// Checks a snapshot read back from storage against the schema, fixing number kinds that
    /// JSON cannot distinguish.
    pub fn validate(self) -> Result<Self, SnapshotError> {
        let mut out = BTreeMap::new();
        for (name, signal) in self.values {
            let def = definition(&name).ok_or_else(|| SnapshotError::Unknown(name.clone()))?;
            let value = signal
                .value
                .coerce(def.kind)
                .ok_or_else(|| SnapshotError::WrongType {
                    name: name.clone(),
                    expected: def.kind.cel_name(),
                })?;
            out.insert(
                name,
                Signal {
                    value,
                    source: signal.source,
                },
            );
        }
        Ok(Self { values: out })
    }
}

#[cfg(test)]
mod tests {
    /// The reader the derive used to be, to hold the hand-written one to it.
    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(untagged)]
    enum Untagged {
        Bool(bool),
        Int(i64),
        Float(f64),
        String(String),
        StringList(Vec<String>),
    }

    #[test]
    fn signal_values_read_as_the_untagged_derive_read_them() {
        for json in [
            "true",
            "false",
            "0",
            "-7",
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551615",
            "1.5",
            "-0.0",
            "1e300",
            "\"Approved\"",
            "\"\"",
            "\"a\\u00e9\"",
            "[]",
            "[\"A\",\"B\"]",
            "null",
            "{}",
            "[1]",
            "[\"A\",2]",
        ] {
            let ours = serde_json::from_str::<SignalValue>(json).ok();
            let derived = serde_json::from_str::<Untagged>(json)
                .ok()
                .map(|v| match v {
                    Untagged::Bool(b) => SignalValue::Bool(b),
                    Untagged::Int(i) => SignalValue::Int(i),
                    Untagged::Float(f) => SignalValue::Float(f),
                    Untagged::String(s) => SignalValue::String(s),
                    Untagged::StringList(l) => SignalValue::StringList(l),
                });
            assert_eq!(ours, derived, "{json}");
        }
    }

    use super::*;

    #[test]
    fn schema_names_are_unique_grouped_and_documented() {
        let mut seen = std::collections::BTreeSet::new();
        for def in SCHEMA {
            assert!(seen.insert(def.name), "duplicate {}", def.name);
            let (group, field) = def.name.split_once('.').expect("group.field");
            assert!(!group.is_empty() && !field.is_empty() && !field.contains('.'));
            assert!(!def.doc.is_empty());
        }
        assert!(groups().contains(&"aml"));
    }

    #[test]
    fn a_snapshot_round_trips_through_json_with_its_kinds() {
        let mut s = Signals::new();
        s.set(
            "face.match_score",
            SignalValue::Float(98.0),
            "evt_1",
            "decision.face_matches[0].score",
        );
        s.set(
            "aml.sanctions_hits",
            SignalValue::Int(2),
            "evt_1",
            "decision.aml_screenings[0].hits",
        );
        s.set(
            "risk.codes",
            SignalValue::StringList(vec!["A".into()]),
            "evt_1",
            "decision",
        );
        let json = serde_json::to_string(&s).expect("serialises");
        let back: Signals = serde_json::from_str(&json).expect("parses");
        assert_eq!(back.validate().expect("valid"), s);
    }

    #[test]
    fn compact_snapshots_round_trip_with_their_kinds_and_without_provenance() {
        let mut s = Signals::new();
        s.set("face.match_score", SignalValue::Float(98.0), "evt_1", "p");
        s.set("liveness.score", SignalValue::Float(87.25), "evt_1", "p");
        s.set("aml.sanctions_hits", SignalValue::Int(2), "evt_1", "p");
        s.set("document.verified", SignalValue::Bool(false), "evt_1", "p");
        s.set(
            "session.status",
            SignalValue::String("In \"Review\"\u{e9}".into()),
            "e",
            "p",
        );
        s.set(
            "risk.codes",
            SignalValue::StringList(vec!["A".into(), "B".into()]),
            "evt_1",
            "decision",
        );
        let json = s.values_json();
        assert!(json.starts_with(r#"{"aml.sanctions_hits":2,"document.verified":false,"#));
        let back = Signals::from_values_json(&json).expect("reads back");
        assert_eq!(back.len(), s.len());
        for (name, signal) in s.iter() {
            let read = back.get(name).expect(name);
            assert_eq!(read.value, signal.value, "{name}");
            assert_eq!(read.source.event_id, "");
        }
        assert_eq!(back.values_json(), json);
        // PostgreSQL's jsonb gives the same object back with spaces and its own key order.
        let spaced =
            r#"{"risk.codes": ["A", "B"], "face.match_score": 98, "aml.sanctions_hits": 2.0}"#;
        let back = Signals::from_values_json(spaced).expect("reads back");
        assert_eq!(
            back.get("face.match_score").map(|s| &s.value),
            Some(&SignalValue::Float(98.0))
        );
        assert_eq!(
            back.get("aml.sanctions_hits").map(|s| &s.value),
            Some(&SignalValue::Int(2))
        );
        assert_eq!(Signals::from_values_json("{}"), Ok(Signals::new()));
        // A name given twice: its last value, as serde_json reads a map.
        let twice = Signals::from_values_json(
            r#"{"aml.total_hits":1,"aml.pep_hits":0,"aml.total_hits":2}"#,
        )
        .expect("reads");
        assert_eq!(twice.len(), 2);
        assert_eq!(
            twice.get("aml.total_hits").map(|s| &s.value),
            Some(&SignalValue::Int(2))
        );
    }

    #[test]
    fn compact_snapshots_that_do_not_fit_the_schema_are_refused_with_the_reason() {
        for (json, says) in [
            (r#"{"aml.nope":1}"#, "unknown signal `aml.nope`"),
            (
                r#"{"aml.total_hits":"many"}"#,
                "signal `aml.total_hits` should be int",
            ),
            (
                r#"{"aml.total_hits":1.5}"#,
                "signal `aml.total_hits` should be int",
            ),
            (r#"{"risk.codes":[1]}"#, "invalid type"),
            (r#"{"aml.total_hits":null}"#, "invalid type"),
            ("[]", "an object of signal names to values"),
            ("null", "an object of signal names to values"),
            (r#"{"aml.total_hits":1} x"#, "trailing characters"),
            (r#"{"aml.total_hits":1"#, "EOF"),
            ("", "EOF"),
        ] {
            match Signals::from_values_json(json) {
                Err(SnapshotError::Malformed(message)) => {
                    assert!(message.contains(says), "{json}: {message}");
                }
                other => panic!("{json}: {other:?}"),
            }
        }
    }

    #[test]
    fn every_schema_name_is_found_and_no_other() {
        for def in SCHEMA {
            assert_eq!(definition(def.name).map(|d| d.name), Some(def.name));
        }
        for name in [
            "",
            "aml",
            "aml.",
            "zzz.zzz",
            "aml.total_hit",
            "aml.total_hitss",
        ] {
            assert!(definition(name).is_none(), "{name}");
        }
    }

    #[test]
    fn snapshots_outside_the_schema_are_refused() {
        let unknown: Signals = serde_json::from_str(
            r#"{"aml.nope":{"value":1,"source":{"event_id":"e","path":"p"}}}"#,
        )
        .expect("parses");
        assert!(matches!(unknown.validate(), Err(SnapshotError::Unknown(_))));
        let wrong: Signals = serde_json::from_str(
            r#"{"aml.total_hits":{"value":"many","source":{"event_id":"e","path":"p"}}}"#,
        )
        .expect("parses");
        assert!(matches!(
            wrong.validate(),
            Err(SnapshotError::WrongType { .. })
        ));
    }
}

//! Typed, lenient models of every Didit webhook payload, and the one entry point that reads
//! them: [`DiditEvent::from_slice`].
//!
//! This module owns the envelope (both the flat `webhook_type` shape and the nested
//! `event` + `data` shape), the mapping from event type to body type, and the accessors the
//! pipeline keys on. It does not verify signatures (that happens on the raw bytes before any
//! parsing) and it does not decide anything.
//!
//! Leniency is the rule throughout: every field is optional, a field of an unexpected JSON type
//! reads as absent, unknown fields are kept in `extra` maps, and unknown enum values are kept
//! in `Other` variants. Only bodies that are not JSON ([`PayloadError::NotJson`]) or not a
//! Didit event at all ([`PayloadError::NotAnEvent`]) are rejected.
//!
//! Layout: `session` (session events and statuses), `decision` (the v3 decision object),
//! `features` and `aml` (its feature items), `entity` (user, business, transaction and Travel
//! Rule events), `lenient` (the conversion rules and the macros that apply them to every
//! field) and `time` (RFC 3339 parsing).

#[cfg(test)]
mod agreement;
mod aml;
mod decision;
mod entity;
mod features;
mod lenient;
mod session;
mod time;

use serde_json::{Map, Value};

pub use aml::{AmlDataset, AmlHit, AmlReviewStatus, AmlScreening};
pub use decision::{Decision, FeatureStatus, LegacyDecision, LogType, Match, Review, Warning};
pub use entity::{EntityEvent, EntityStatus, TransactionEvent, TransactionStatus, TravelRuleEvent};
pub use features::{
    Breach, Carrier, CertificateSummary, DatabaseValidation, DocumentAiDocument, DocumentAiItem,
    DocumentVerification, EmailVerification, FaceMatch, IdVerification, ImageQuality, IpAnalysis,
    KeyPeopleCheck, LivenessCheck, NfcAuthenticity, NfcVerification, PhoneVerification,
    PoaDocumentMetadata, PoaVerification, QuestionnaireResponse, RegistryCheck, UboKycSummary,
};
pub use session::{ResubmitInfo, SessionEvent, SessionStatus};
pub use time::days_from_civil;

pub use lenient::Id;
use lenient::{Lenient, open_enum};

/// One Didit webhook delivery, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct DiditEvent {
    /// The event type (`webhook_type`, or `event` in the nested shape).
    pub kind: EventKind,
    /// Didit's idempotency key. Absent on console test deliveries.
    pub event_id: Option<String>,
    /// Epoch seconds. Flat envelopes carry an integer; nested envelopes an ISO-8601 string,
    /// converted here.
    pub timestamp: Option<i64>,
    /// Epoch seconds of the event's creation (flat envelopes).
    pub created_at: Option<i64>,
    /// The Didit application that sent it.
    pub application_id: Option<String>,
    /// `live` or `sandbox`.
    pub environment: Option<String>,
    /// Which envelope shape the event arrived in.
    pub shape: EnvelopeShape,
    /// The resource fields, typed by event kind.
    pub body: EventBody,
}

/// The two envelope shapes Didit's documentation shows (§5.4 of the notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnvelopeShape {
    /// `{"webhook_type", "event_id", "timestamp": <int>, ...resource fields}`: what real
    /// deliveries use.
    Flat,
    /// `{"event", "event_id", "timestamp": "<ISO-8601>", "data": {...}}`: shown on Didit's
    /// entity, KYB and transaction pages.
    Nested,
}

open_enum! {
    /// Didit's webhook event types: the exact strings of its `WebhookEvent` enum.
    pub enum EventKind {
        /// A KYC or KYB session changed status (including the initial `Not Started`).
        StatusUpdated => "status.updated",
        /// Session data was edited without a status change.
        DataUpdated => "data.updated",
        /// A User entity changed status.
        UserStatusUpdated => "user.status.updated",
        /// A User entity's data changed.
        UserDataUpdated => "user.data.updated",
        /// A Business entity changed status.
        BusinessStatusUpdated => "business.status.updated",
        /// A Business entity's data changed.
        BusinessDataUpdated => "business.data.updated",
        /// A timeline activity was recorded (reserved by Didit; may never be sent).
        ActivityCreated => "activity.created",
        /// A monitored transaction was created and its rules ran.
        TransactionCreated => "transaction.created",
        /// A monitored transaction changed status.
        TransactionStatusUpdated => "transaction.status.updated",
        /// A Travel Rule exchange changed status.
        TravelRuleStatusUpdated => "travel_rule.status.updated",
    }
}

/// The resource fields of an event, typed by its kind.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one event per request; only the session body, several times larger, is boxed"
)]
pub enum EventBody {
    /// `status.updated`, `data.updated`.
    Session(Box<SessionEvent>),
    /// `user.status.updated`, `user.data.updated`.
    User(EntityEvent),
    /// `business.status.updated`, `business.data.updated`.
    Business(EntityEvent),
    /// `transaction.created`, `transaction.status.updated`.
    Transaction(TransactionEvent),
    /// `travel_rule.status.updated`.
    TravelRule(TravelRuleEvent),
    /// `activity.created` and unknown types: the resource fields kept as-is.
    Other(Map<String, Value>),
}

/// The longest identifier (event type, `event_id`, subject, `session_id`, status,
/// `vendor_data`) an event may carry, in bytes of UTF-8: Didit's are UUIDs and short words, and
/// an integrator's `vendor_data` a user id or an e-mail address (at most 254). Three of them,
/// escaped (which may double them), make the content key, which PostgreSQL indexes, and a
/// B-tree entry there is at most 2,704 bytes.
pub const MAX_ID_BYTES: usize = 256;

/// Why a body could not be read as a Didit event.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The body is not JSON at all (invalid UTF-8, syntax error, too deep). → HTTP 400
    #[error("body is not valid JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// JSON, but not a Didit event (not an object, no webhook_type/event, wrong type of a
    /// required field). → HTTP 422
    #[error("not a Didit event: {0}")]
    NotAnEvent(String),
}

impl PayloadError {
    /// Whether the body failed to parse as JSON (as opposed to being the wrong JSON).
    pub fn is_syntax(&self) -> bool {
        matches!(self, Self::NotJson(_))
    }
}

// Envelope keys: lifted out of the resource fields when they have a usable type.
const EVENT_ID: &str = "event_id";
const TIMESTAMP: &str = "timestamp";
const CREATED_AT: &str = "created_at";
const APPLICATION_ID: &str = "application_id";
const ENVIRONMENT: &str = "environment";
const WEBHOOK_TYPE: &str = "webhook_type";
const EVENT: &str = "event";
const DATA: &str = "data";

impl DiditEvent {
    /// Parses a delivery body. Never panics; fails only when the body is not JSON or not a
    /// Didit event (see [`PayloadError`]).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, PayloadError> {
        let value: Value = serde_json::from_slice(bytes).map_err(PayloadError::NotJson)?;
        Self::from_value(value)
    }

    /// Reads an already-parsed JSON value as a Didit event.
    ///
    /// Envelope fields are taken from the top level only when they have a usable type;
    /// otherwise they stay among the resource fields (in `extra`), so nothing is dropped.
    /// Resource fields come from the `data` object when there is one (merged over any other
    /// top-level fields, `data` winning), else from the top level. `webhook_type` and `event`
    /// are envelope keys whenever they are strings, even the one that lost to the other.
    pub fn from_value(value: Value) -> Result<Self, PayloadError> {
        let mut top = match value {
            Value::Object(top) => top,
            other => {
                return Err(PayloadError::NotAnEvent(format!(
                    "the top level is {}, not an object",
                    json_type(&other)
                )));
            }
        };
        let (name, shape) = event_name(&top)?;
        for key in [WEBHOOK_TYPE, EVENT] {
            if top.get(key).is_some_and(Value::is_string) {
                top.remove(key);
            }
        }
        let event_id = take(&mut top, EVENT_ID, string);
        let application_id = take(&mut top, APPLICATION_ID, string);
        let environment = take(&mut top, ENVIRONMENT, string);
        let timestamp = take(&mut top, TIMESTAMP, epoch_seconds);
        let created_at = take(&mut top, CREATED_AT, epoch_seconds);
        let resource = match top.remove(DATA) {
            Some(Value::Object(data)) => {
                top.extend(data);
                top
            }
            Some(other) => {
                top.insert(DATA.to_owned(), other);
                top
            }
            None => top,
        };

        let kind = EventKind::parse(&name);
        let body = match kind {
            EventKind::StatusUpdated | EventKind::DataUpdated => {
                EventBody::Session(Box::new(typed(resource)))
            }
            EventKind::UserStatusUpdated | EventKind::UserDataUpdated => {
                EventBody::User(typed(resource))
            }
            EventKind::BusinessStatusUpdated | EventKind::BusinessDataUpdated => {
                EventBody::Business(typed(resource))
            }
            EventKind::TransactionCreated | EventKind::TransactionStatusUpdated => {
                EventBody::Transaction(typed(resource))
            }
            EventKind::TravelRuleStatusUpdated => EventBody::TravelRule(typed(resource)),
            EventKind::ActivityCreated | EventKind::Other(_) => EventBody::Other(resource),
        };
        let event = Self {
            kind,
            event_id,
            timestamp,
            created_at,
            application_id,
            environment,
            shape,
            body,
        };
        event.check_identifiers()?;
        Ok(event)
    }

    /// Refuses an event whose identifying text holds a control character (U+0000-U+001F,
    /// U+007F-U+009F) or is longer than [`MAX_ID_BYTES`]. These texts are keys: stored, indexed,
    /// compared, logged and shown to analysts, and no Didit id or status, nor an integrator's
    /// `vendor_data`, has a reason to hold a control character or run to pages. PostgreSQL
    /// cannot store U+0000 in text at all, nor index an entry over 2,704 bytes, so such a
    /// delivery would fail there on every retry while SQLite took it; refused here, it is the
    /// same 422 everywhere and Didit stops retrying. The value is not echoed: it is the
    /// sender's text.
    fn check_identifiers(&self) -> Result<(), PayloadError> {
        let keys = [
            ("the event type", Some(self.kind.as_str())),
            ("`event_id`", self.event_id.as_deref()),
            ("the subject id", self.subject_id()),
            ("`session_id`", self.session_id()),
            ("the status", self.status()),
            ("`vendor_data`", self.vendor_data()),
        ];
        for (name, text) in keys {
            let Some(text) = text else { continue };
            if let Some(c) = text.chars().find(|c| c.is_control()) {
                return Err(PayloadError::NotAnEvent(format!(
                    "{name} contains the control character U+{:04X}; identifiers must not",
                    u32::from(c)
                )));
            }
            if text.len() > MAX_ID_BYTES {
                return Err(PayloadError::NotAnEvent(format!(
                    "{name} is {} bytes long; identifiers are at most {MAX_ID_BYTES}",
                    text.len()
                )));
            }
        }
        Ok(())
    }

    /// What the event is about, as one identifier:
    ///
    /// - session events: `session_id` (else the decision's, else `business_session_id`);
    /// - user and business events: `vendor_data`, the key Didit's entity API uses and the one
    ///   that joins an entity to its sessions; else Didit's `uuid` / `didit_internal_id`,
    ///   because `vendor_data` may be null for entities created without one;
    /// - transaction and Travel Rule events: `transaction_id` (Didit's UUID), else `uuid`,
    ///   else the integrator's `txn_id`;
    /// - `activity.created`: the entity's `vendor_data`, else `session_id`, `transaction_id`,
    ///   `uuid`;
    /// - unknown types: the first string among `session_id`, `transaction_id`,
    ///   `vendor_data`, `uuid`, `id`.
    pub fn subject_id(&self) -> Option<&str> {
        match &self.body {
            EventBody::Session(session) => session
                .session_id
                .as_deref()
                .or_else(|| session.decision.as_ref()?.session_id.as_deref())
                .or(session.business_session_id.as_deref()),
            EventBody::User(entity) | EventBody::Business(entity) => entity
                .vendor_data
                .as_deref()
                .or(entity.uuid.as_deref())
                .or(entity.didit_internal_id.as_deref()),
            EventBody::Transaction(txn) => txn
                .transaction_id
                .as_deref()
                .or(txn.uuid.as_deref())
                .or(txn.txn_id.as_deref()),
            EventBody::TravelRule(transfer) => transfer
                .transaction_id
                .as_deref()
                .or(transfer.uuid.as_deref())
                .or(transfer.txn_id.as_deref()),
            EventBody::Other(fields) => {
                let keys: &[&str] = if self.kind == EventKind::ActivityCreated {
                    &["vendor_data", "session_id", "transaction_id", "uuid"]
                } else {
                    &["session_id", "transaction_id", "vendor_data", "uuid", "id"]
                };
                keys.iter().find_map(|key| str_field(fields, key))
            }
        }
    }

    /// The session the event concerns: session events, and unknown events that carry a
    /// `session_id`.
    pub fn session_id(&self) -> Option<&str> {
        match &self.body {
            EventBody::Session(session) => session
                .session_id
                .as_deref()
                .or_else(|| session.decision.as_ref()?.session_id.as_deref()),
            EventBody::Other(fields) => str_field(fields, "session_id"),
            EventBody::User(_)
            | EventBody::Business(_)
            | EventBody::Transaction(_)
            | EventBody::TravelRule(_) => None,
        }
    }

    /// The status string carried by the event: the session status (canonical Title Case),
    /// the entity status, the transaction status, or the Travel Rule exchange status.
    pub fn status(&self) -> Option<&str> {
        match &self.body {
            EventBody::Session(session) => session
                .status
                .as_ref()
                .or_else(|| session.decision.as_ref()?.status.as_ref())
                .map(SessionStatus::as_str),
            EventBody::User(entity) | EventBody::Business(entity) => {
                entity.status.as_ref().map(EntityStatus::as_str)
            }
            EventBody::Transaction(txn) => txn.status.as_ref().map(TransactionStatus::as_str),
            EventBody::TravelRule(transfer) => transfer
                .travel_rule_status
                .as_deref()
                .or_else(|| transfer.status.as_ref().map(TransactionStatus::as_str)),
            EventBody::Other(fields) => str_field(fields, "status"),
        }
    }

    /// The integrator's identifier for the user or business: the session's `vendor_data`
    /// (else the decision's), the entity's `vendor_data`, or a transaction's
    /// `applicant_vendor_data` (else a plain `vendor_data`).
    pub fn vendor_data(&self) -> Option<&str> {
        match &self.body {
            EventBody::Session(session) => session
                .vendor_data
                .as_deref()
                .or_else(|| session.decision.as_ref()?.vendor_data.as_deref()),
            EventBody::User(entity) | EventBody::Business(entity) => entity.vendor_data.as_deref(),
            EventBody::Transaction(txn) => txn
                .applicant_vendor_data
                .as_deref()
                .or_else(|| str_field(&txn.extra, "vendor_data")),
            EventBody::TravelRule(transfer) => transfer
                .applicant_vendor_data
                .as_deref()
                .or_else(|| str_field(&transfer.extra, "vendor_data")),
            EventBody::Other(fields) => str_field(fields, "vendor_data"),
        }
    }

    /// The session body, for session events.
    pub fn session(&self) -> Option<&SessionEvent> {
        match &self.body {
            EventBody::Session(session) => Some(session),
            EventBody::User(_)
            | EventBody::Business(_)
            | EventBody::Transaction(_)
            | EventBody::TravelRule(_)
            | EventBody::Other(_) => None,
        }
    }

    /// The decision, for session events that carry one.
    pub fn decision(&self) -> Option<&Decision> {
        self.session()?.decision.as_ref()
    }

    /// Whether this looks like a delivery from the console's "Try Webhook" button: the
    /// session metadata says `test_webhook: true`, or there is no `event_id` and the
    /// `vendor_data` is Didit's fixed test value. The `X-Didit-Test-Webhook` header is the
    /// stronger signal when the caller has it.
    pub fn is_console_test(&self) -> bool {
        let flagged = self
            .session()
            .and_then(|s| s.metadata.as_ref()?.get("test_webhook")?.as_bool())
            .unwrap_or(false);
        flagged || (self.event_id.is_none() && self.vendor_data() == Some(CONSOLE_VENDOR_DATA))
    }
}

/// The `vendor_data` Didit puts in console test deliveries.
const CONSOLE_VENDOR_DATA: &str = "test-vendor-data-123";

/// The event type name and the shape it implies. `webhook_type` wins over `event`; a `null`
/// one counts as absent, any other non-string is structural nonsense.
fn event_name(top: &Map<String, Value>) -> Result<(String, EnvelopeShape), PayloadError> {
    for (key, shape) in [
        (WEBHOOK_TYPE, EnvelopeShape::Flat),
        (EVENT, EnvelopeShape::Nested),
    ] {
        match top.get(key) {
            Some(Value::String(name)) => return Ok((name.clone(), shape)),
            None | Some(Value::Null) => {}
            Some(other) => {
                return Err(PayloadError::NotAnEvent(format!(
                    "`{key}` is {}, not a string",
                    json_type(other)
                )));
            }
        }
    }
    Err(PayloadError::NotAnEvent(
        "neither `webhook_type` nor `event` is present".to_owned(),
    ))
}

/// Removes `key` from `map` and converts it, but only if the conversion succeeds: a value of
/// the wrong type stays where it was, to be kept among the resource's unknown fields.
fn take<T>(
    map: &mut Map<String, Value>,
    key: &str,
    convert: impl Fn(&Value) -> Option<T>,
) -> Option<T> {
    let converted = convert(map.get(key)?)?;
    map.remove(key);
    Some(converted)
}

/// Epoch seconds from an integer (or integral float, or numeric string) or an RFC 3339 string.
fn epoch_seconds(value: &Value) -> Option<i64> {
    match value {
        Value::Number(_) => i64::from_json(value.clone()),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .ok()
            .or_else(|| time::parse_rfc3339(s)),
        _ => None,
    }
}

fn string(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

fn typed<T: lenient::FromMap>(resource: Map<String, Value>) -> T {
    T::from_map(resource)
}

fn str_field<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key)?.as_str()
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

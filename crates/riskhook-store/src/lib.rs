//! The storage contract of riskhook: one [`Store`] trait shaped by use cases, the records it
//! takes and returns, and [`StoreError`].
//!
//! This crate knows no SQL and no database driver: each backend (`riskhook-store-sqlite`, later
//! PostgreSQL) implements [`Store`] in its own crate, and the service picks one from the database
//! URL. Every method is one transaction, so a method that returns `Ok` has committed.

use std::fmt;

use async_trait::async_trait;
use riskhook_core::assessment::{Decision, UserStatus};
use riskhook_didit::payload::SessionStatus;

/// A Didit delivery that passed verification: what [`Store::ingest`] stores and what the read
/// methods return.
#[derive(Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// Our id for the event (`evt_…`), assigned before the insert so a duplicate costs nothing.
    pub id: String,
    /// When riskhook received it, Unix seconds.
    pub received_at: i64,
    /// Didit's `webhook_type` (or nested `event`), e.g. `status.updated`.
    pub webhook_type: String,
    /// Didit's `event_id`: the delivery key. Unique when present.
    pub delivery_key: Option<String>,
    /// `type|subject|status|timestamp`: the content key. Always unique.
    pub content_key: String,
    /// The session, user, business or transaction the event is about.
    pub subject_id: Option<String>,
    /// The session id, for session events.
    pub session_id: Option<String>,
    /// The status the event reports.
    pub status: Option<String>,
    /// The body's `timestamp`, Unix seconds.
    pub event_timestamp: Option<i64>,
    /// Didit's `vendor_data`: the customer's own user id.
    pub vendor_data: Option<String>,
    /// The keyring entry that verified the delivery.
    pub key_id: String,
    /// The signature scheme that verified it (`raw`, `v2`, `v2-ascii`, `v2-js`, `simple`).
    pub scheme: String,
    /// False when only `X-Signature-Simple` verified it: the decision data is not authenticated.
    pub body_trusted: bool,
    /// The body exactly as received.
    pub raw: Vec<u8>,
}

impl fmt::Debug for EventRecord {
    // The raw body holds personal data (names, documents): never dump it into a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventRecord")
            .field("id", &self.id)
            .field("webhook_type", &self.webhook_type)
            .field("delivery_key", &self.delivery_key)
            .field("content_key", &self.content_key)
            .field("key_id", &self.key_id)
            .field("scheme", &self.scheme)
            .field("raw_bytes", &self.raw.len())
            .finish_non_exhaustive()
    }
}

/// What [`Store::ingest`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Stored for the first time, and its effects applied.
    Accepted {
        /// The new event's id.
        id: String,
        /// Whether the event moved its session's state.
        session_advanced: bool,
    },
    /// Already stored under the same delivery key or content key: nothing changed.
    Duplicate {
        /// The id of the event stored first.
        id: String,
    },
}

/// A session's current state: the greatest status observation seen
/// ([`riskhook_didit::session::Observation`]), whatever order events arrived in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Didit's session id.
    pub session_id: String,
    /// The current status.
    pub status: SessionStatus,
    /// The body timestamp of the event that set it.
    pub status_timestamp: i64,
    /// The event that set it.
    pub status_event_id: String,
    /// `vendor_data`, from the first event that carried it.
    pub vendor_data: Option<String>,
    /// How many distinct events this session has (counted, not kept, so it cannot drift).
    pub event_count: i64,
    /// The assessment of the event that set the current status.
    pub current_assessment_id: Option<String>,
}

/// An assessment to record with its event, in the same transaction.
#[derive(Debug, Clone)]
pub struct NewAssessment {
    /// Our id (`asm_…`).
    pub id: String,
    /// The score.
    pub score: u8,
    /// The decision.
    pub decision: Decision,
    /// The policy's content hash.
    pub policy_hash: String,
    /// The `now` it was evaluated at.
    pub evaluated_at: i64,
    /// The whole assessment as canonical JSON (explanation and signal snapshot).
    pub json: String,
}

/// A stored assessment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssessmentRecord {
    /// Our id.
    pub id: String,
    /// The event it assessed.
    pub event_id: String,
    /// The session, when the event had one.
    pub session_id: Option<String>,
    /// The user (`vendor_data`), when the event had one.
    pub user_id: Option<String>,
    /// The policy's content hash.
    pub policy_hash: String,
    /// The score.
    pub score: u8,
    /// The decision.
    pub decision: Decision,
    /// The `now` it was evaluated at.
    pub evaluated_at: i64,
    /// When it was recorded.
    pub created_at: i64,
    /// The whole assessment, canonical JSON, byte for byte as computed.
    pub json: String,
}

/// A person's risk profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Didit's `vendor_data`: the customer's own user id.
    pub user_id: String,
    /// Account status.
    pub status: UserStatus,
    /// The highest score among the current assessments of the user's sessions.
    pub score: u8,
    /// The strictest decision among them.
    pub decision: Decision,
    /// The assessment that explains the current score and decision.
    pub current_assessment_id: Option<String>,
    /// Whether any assessment ever decided freeze (a freeze outlives later approvals).
    pub ever_frozen: bool,
    /// The user's sessions, oldest first.
    pub sessions: Vec<String>,
    /// When riskhook first saw the user.
    pub first_seen_at: i64,
    /// When the profile last changed.
    pub updated_at: i64,
}

/// A storage failure. No driver type escapes a backend: each maps its errors here.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is busy: worth retrying later (HTTP 503).
    #[error("database unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database holds something this version cannot read.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// Anything else the database reported.
    #[error("database error")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The use cases riskhook needs from a database. Each method is one transaction.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// Stores a verified event exactly once and applies its effects in the same transaction:
    /// records its assessment, advances its session, recomputes its user. A duplicate by
    /// delivery key or content key changes nothing.
    async fn ingest(
        &self,
        event: EventRecord,
        assessment: Option<NewAssessment>,
    ) -> Result<IngestOutcome, StoreError>;

    /// One event by our id.
    async fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError>;

    /// Events in arrival order, after `after_id` (exclusive) when given.
    async fn events(
        &self,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError>;

    /// How many events are stored.
    async fn count_events(&self) -> Result<u64, StoreError>;

    /// A session's current state.
    async fn session(&self, session_id: &str) -> Result<Option<SessionRecord>, StoreError>;

    /// A user's profile.
    async fn user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError>;

    /// A user's assessments, newest first (by evaluation time), at most `limit`.
    async fn user_assessments(
        &self,
        user_id: &str,
        limit: u32,
    ) -> Result<Vec<AssessmentRecord>, StoreError>;

    /// One assessment by id.
    async fn assessment(&self, id: &str) -> Result<Option<AssessmentRecord>, StoreError>;

    /// Whether the database answers: the readiness check.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Finishes pending work and releases connections: called once, at shutdown.
    async fn close(&self) {}
}

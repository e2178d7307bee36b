//! The storage contract of riskhook: one [`Store`] trait shaped by use cases, the records it
//! takes and returns, and [`StoreError`].
//!
//! This crate knows no SQL and no database driver: each backend (`riskhook-store-sqlite`,
//! `riskhook-store-postgres`) implements [`Store`] in its own crate, and the service picks one
//! from the database URL. Every method is one transaction, so a method that returns `Ok` has
//! committed. It knows no provider either: the pipeline hands it typed, provider-neutral values
//! (a session's [`SessionStatus`] with its lifecycle [`Stage`], [`EventId`] and
//! [`AssessmentId`]), so neither it nor the backends read Didit's protocol.

mod audit;
#[cfg(feature = "conformance")]
pub mod conformance;
mod ids;
mod keys;
mod outbox;
mod review;
pub mod rulebook;
mod session;
mod workbench;

use std::fmt;

use async_trait::async_trait;
use riskhook_core::assessment::{Decision, UserStatus};
use riskhook_core::audit::AuditKey;
pub use riskhook_core::review::Person;
use riskhook_core::review::{ActionKind, ActionStatus, Outcome};

pub use audit::{AuditRecord, NewAuditEntry};
pub use ids::{AssessmentId, EventId, IdError};
pub use keys::{ApiKeyRecord, NewApiKey, Role};
pub use outbox::{
    Attempt, AttemptUpdate, Claim, DeliveryFilter, DeliveryRecord, DeliveryStatus, EndpointRecord,
    UserState, user_updated,
};
pub use review::{
    ActionRecord, CaseFile, CaseFilter, CaseRecord, CommandError, ReplayBody, ReplayFilter,
    ReplayRecord, ReviewOutcome, VerdictRecord, case_file, requester_json, requester_person,
};
pub use session::{SessionStatus, Stage, TERMINAL_STATUSES};
pub use workbench::UiSessionRecord;

/// Applies a backend's pending migrations (`pending`: their versions, in order) by awaiting
/// `apply`, said in the log before and after with the time it took: on a large database a
/// migration that fills a table from the stored rows takes minutes (`signal_snapshots`: ~90 s
/// per million events), and `serve` runs them before it listens. `clock` times it (passed in:
/// this crate reads no clock). Returns `pending`.
pub async fn apply_migrations(
    pending: Vec<i64>,
    clock: impl Fn() -> std::time::Instant,
    apply: impl std::future::Future<Output = Result<(), StoreError>>,
) -> Result<Vec<i64>, StoreError> {
    if !pending.is_empty() {
        tracing::info!(versions = ?pending, "applying database migrations: on a large database this can take minutes");
    }
    let started = clock();
    apply.await?;
    if !pending.is_empty() {
        tracing::info!(
            versions = ?pending,
            seconds = clock().duration_since(started).as_secs_f64(),
            "database migrations applied"
        );
    }
    Ok(pending)
}

/// A Didit delivery that passed verification: what [`Store::ingest`] stores and what the read
/// methods return.
#[derive(Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// Our id for the event, assigned before the insert so a duplicate costs nothing.
    pub id: EventId,
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
    /// The status the event reports, as sent.
    pub status: Option<String>,
    /// The same status as the session keeps it (canonical text and lifecycle stage), given by
    /// the pipeline for a session event: with `session_id` and `event_timestamp`, the
    /// observation [`Store::ingest`] may move the session to. Not kept with the event (the
    /// session row keeps it), so the read methods return `None`.
    pub session_status: Option<SessionStatus>,
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

impl EventRecord {
    /// The `now` a replay of this event uses, stored with its signal snapshot: its
    /// assessment's, or for an event stored without one, what intake would assess it at (its
    /// own timestamp, else when it was received).
    pub fn replay_at(&self, assessment: Option<&NewAssessment>) -> i64 {
        assessment.map_or(self.event_timestamp.unwrap_or(self.received_at), |a| {
            a.evaluated_at
        })
    }
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

/// A session's current state: the greatest status observation seen (by body timestamp, then
/// [`Stage`], then status text), whatever order events arrived in.
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
    /// Our id.
    pub id: AssessmentId,
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
    /// The signal values alone, compact JSON (`Signals::values_json`): what a backtest
    /// replays, stored in `signal_snapshots` beside the event.
    pub signals: String,
    /// What each shadow policy decided on the same signals: stored with it, in the same
    /// transaction, and used for nothing but comparison.
    pub shadows: Vec<NewShadowAssessment>,
}

/// A shadow policy's assessment of an event, stored next to the real one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewShadowAssessment {
    /// The shadow's id (`[[policy.shadow]] id`).
    pub shadow_id: String,
    /// The shadow policy's content hash.
    pub policy_hash: String,
    /// Its score.
    pub score: u8,
    /// Its decision.
    pub decision: Decision,
    /// The ids of the rules it fired, in policy order.
    pub fired: Vec<String>,
}

/// A stored shadow assessment with the real assessment it shadows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowRecord {
    /// The real assessment's id: the cursor of the next page.
    pub assessment_id: String,
    /// The user.
    pub user_id: Option<String>,
    /// When it was evaluated (Unix seconds).
    pub evaluated_at: i64,
    /// The real assessment, canonical JSON: its decision and fired rules.
    pub assessment: String,
    /// The shadow's decision.
    pub decision: Decision,
    /// The shadow's score.
    pub score: u8,
    /// The shadow policy's hash.
    pub policy_hash: String,
    /// The rules the shadow fired.
    pub fired: Vec<String>,
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
    /// Account status: the verdict of the last person to act, tightened by the evidence of
    /// an open case ([`riskhook_core::review::account_status`]).
    pub status: UserStatus,
    /// The status the last person to act set, if anyone has.
    pub verdict: Option<UserStatus>,
    /// How many notified changes the user has had (the `version` of `user.updated`).
    pub version: i64,
    /// The highest score among the current assessments of the user's sessions.
    pub score: u8,
    /// The strictest decision among them.
    pub decision: Decision,
    /// The assessment that explains the current score and decision.
    pub current_assessment_id: Option<String>,
    /// Whether any assessment ever decided freeze.
    pub ever_frozen: bool,
    /// The user's sessions, oldest first by their earliest event's timestamp (not arrival).
    pub sessions: Vec<String>,
    /// When riskhook first saw the user.
    pub first_seen_at: i64,
    /// When the profile last changed.
    pub updated_at: i64,
}

/// Resolve a case: [`Store::resolve_case`].
#[derive(Debug, Clone)]
pub struct ResolveCase {
    /// The case.
    pub case_id: String,
    /// The key resolving it.
    pub actor: String,
    /// The person behind that key: recorded with a request for a second person.
    pub person: Person,
    /// The outcome.
    pub outcome: Outcome,
    /// Why (required, not empty).
    pub reason: String,
    /// Now, Unix seconds.
    pub now: i64,
    /// Whether lifting a freeze needs a second person.
    pub four_eyes: bool,
}

/// Freeze or unfreeze a user by hand: [`Store::act_on_user`].
#[derive(Debug, Clone)]
pub struct UserAction {
    /// The user.
    pub user_id: String,
    /// [`ActionKind::Freeze`] or [`ActionKind::Unfreeze`].
    pub kind: ActionKind,
    /// The key asking.
    pub actor: String,
    /// The person behind that key: recorded with a request for a second person.
    pub person: Person,
    /// Why (required, not empty).
    pub reason: String,
    /// Now, Unix seconds.
    pub now: i64,
    /// Whether lifting a freeze needs a second person.
    pub four_eyes: bool,
}

/// A second person's decision on a pending action: [`Store::decide_action`].
#[derive(Debug, Clone)]
pub struct DecideAction {
    /// The action.
    pub action_id: String,
    /// The key deciding.
    pub actor: String,
    /// The person behind that key: another person than the requester, independent of them
    /// ([`riskhook_core::review::second_person_refusal`]).
    pub person: Person,
    /// Approve (apply it) or reject.
    pub approve: bool,
    /// Why.
    pub reason: Option<String>,
    /// Now, Unix seconds.
    pub now: i64,
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
    /// records its assessment, advances its session (to `session_status`, if that is the
    /// greatest observation), recomputes its user. A duplicate by delivery key or content key
    /// changes nothing.
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

    /// The id of the stored event with this delivery key or this content key: the same match
    /// [`Store::ingest`] deduplicates on, so "found" means a delivery of that event would be a
    /// duplicate. Reconciliation asks it of the deliveries Didit reports as failed.
    async fn find_event(
        &self,
        delivery_key: Option<&str>,
        content_key: &str,
    ) -> Result<Option<String>, StoreError>;

    /// Sessions whose current status is not terminal ([`SessionStatus::is_terminal`]) and was
    /// set by an event timestamped before `before`: the ones stuck, oldest first, at most
    /// `limit`.
    async fn unfinished_sessions(
        &self,
        before: i64,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, StoreError>;

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

    /// A user's events, oldest first by body timestamp, at most `limit`: their timeline.
    async fn user_events(&self, user_id: &str, limit: u32) -> Result<Vec<EventRecord>, StoreError>;

    /// Stored session events for a backtest, in arrival order: read-only, a page at a time,
    /// each page its own short read (so a long backtest holds no transaction open).
    async fn replay_events(&self, filter: &ReplayFilter) -> Result<Vec<ReplayRecord>, StoreError>;

    /// A shadow policy's stored assessments with the real ones, in evaluation order, after the
    /// real assessment `after` (exclusive) when given.
    async fn shadow_assessments(
        &self,
        shadow_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ShadowRecord>, StoreError>;

    /// Every resolved case's outcome, oldest first: people's verdicts, a backtest's labels.
    async fn verdicts(&self) -> Result<Vec<VerdictRecord>, StoreError>;

    // --- Review -------------------------------------------------------------------------

    /// Cases matching `filter`, oldest first.
    async fn cases(&self, filter: &CaseFilter) -> Result<Vec<CaseRecord>, StoreError>;

    /// How many cases match `filter` (its `after` and `limit` aside).
    async fn count_cases(&self, filter: &CaseFilter) -> Result<u64, StoreError>;

    /// One case.
    async fn case(&self, id: &str) -> Result<Option<CaseRecord>, StoreError>;

    /// `actor` takes an open case (claiming one's own claimed case again is a no-op).
    async fn claim_case(&self, id: &str, actor: &str, now: i64)
    -> Result<CaseRecord, CommandError>;

    /// Resolves a case and applies its outcome to the user, or, when the outcome lifts a
    /// freeze and `four_eyes` is on, records it as a pending action for a second person.
    async fn resolve_case(&self, command: ResolveCase) -> Result<ReviewOutcome, CommandError>;

    /// Freezes or unfreezes a user by hand (an unfreeze waits for a second person when
    /// `four_eyes` is on).
    async fn act_on_user(&self, command: UserAction) -> Result<ReviewOutcome, CommandError>;

    /// A second person approves or rejects a pending action.
    async fn decide_action(&self, command: DecideAction) -> Result<ReviewOutcome, CommandError>;

    /// Actions, newest first, optionally only those in one state.
    async fn actions(
        &self,
        status: Option<ActionStatus>,
        limit: u32,
    ) -> Result<Vec<ActionRecord>, StoreError>;

    /// One action.
    async fn action(&self, id: &str) -> Result<Option<ActionRecord>, StoreError>;

    // --- Audit --------------------------------------------------------------------------

    /// Audit entries after position `after` (0: from the start), in chain order.
    async fn audit(&self, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError>;

    /// Appends an entry to the chain.
    async fn append_audit(&self, entry: NewAuditEntry) -> Result<AuditRecord, StoreError>;

    /// The newest entry with this action, if any.
    async fn last_audit(&self, action: &str) -> Result<Option<AuditRecord>, StoreError>;

    /// The head of the chain (its newest entry), if any: what a checkpoint publishes.
    async fn audit_head(&self) -> Result<Option<AuditRecord>, StoreError>;

    /// Keys every entry appended from now on under `key` (HMAC-SHA256 instead of SHA-256).
    /// Set once, right after opening, before anything is written; a second call is refused.
    async fn set_audit_key(&self, key: AuditKey) -> Result<(), StoreError>;

    /// Links audit entries that committed transactions staged into the chain, unless another
    /// instance is doing so now; returns how many it linked. A backend that links at commit
    /// (SQLite: one writer) has nothing to do. Reads of the chain link first on their own;
    /// this keeps the chain current for readers outside riskhook and bounds the staged backlog.
    async fn settle_audit(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    // --- API keys -----------------------------------------------------------------------

    /// Stores a new key (audited).
    async fn create_key(
        &self,
        key: NewApiKey,
        actor: &str,
        now: i64,
    ) -> Result<ApiKeyRecord, CommandError>;

    /// Every stored key, revoked ones included, oldest first.
    async fn keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError>;

    /// Revokes a key (audited); revoking a revoked key is a no-op.
    async fn revoke_key(
        &self,
        id: &str,
        actor: &str,
        now: i64,
    ) -> Result<ApiKeyRecord, CommandError>;

    /// One stored key by id, revoked or not.
    async fn key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError>;

    /// The unrevoked key whose secret hashes (SHA-256, hex) to `hash`.
    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKeyRecord>, StoreError>;

    // --- Workbench sessions -------------------------------------------------------------

    /// Stores a new workbench session, and forgets every session last seen before
    /// `expired_before` (sessions end by idling out; this keeps the table small).
    async fn create_ui_session(
        &self,
        session: UiSessionRecord,
        expired_before: i64,
    ) -> Result<(), StoreError>;

    /// The session whose token hashes to `token_hash`, expired or not (the caller decides).
    async fn ui_session(&self, token_hash: &str) -> Result<Option<UiSessionRecord>, StoreError>;

    /// Records that the session was seen at `last_seen_at` and sets its message for the next
    /// page (`None` clears it). No-op for an unknown session.
    async fn update_ui_session(
        &self,
        token_hash: &str,
        last_seen_at: i64,
        flash: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Ends a session (signing out); no-op for an unknown session.
    async fn delete_ui_session(&self, token_hash: &str) -> Result<(), StoreError>;

    // --- Outbox -------------------------------------------------------------------------

    /// Records which endpoints the configuration has: only those get new deliveries and are
    /// dispatched to.
    async fn sync_endpoints(&self, ids: &[String], now_ms: i64) -> Result<(), StoreError>;

    /// Every endpoint ever configured.
    async fn endpoints(&self) -> Result<Vec<EndpointRecord>, StoreError>;

    /// Enables an endpoint again after `410 Gone` (audited).
    async fn enable_endpoint(
        &self,
        id: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<EndpointRecord, CommandError>;

    /// Claims due deliveries for one attempt each: pending, due, not leased, to an enabled
    /// endpoint, and the oldest pending one of their user for that endpoint (order per user).
    async fn claim_deliveries(&self, claim: &Claim) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// Records an attempt's result. `false` when `owner` no longer holds the claim (its lease
    /// ended and another dispatcher took it over): the result is then ignored.
    async fn record_attempt(
        &self,
        id: &str,
        owner: &str,
        attempt: Attempt,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Deliveries matching `filter`, newest first.
    async fn deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// One delivery.
    async fn delivery(&self, id: &str) -> Result<Option<DeliveryRecord>, StoreError>;

    /// Puts a failed delivery back in the queue, due now, with its attempts reset (audited).
    async fn retry_delivery(
        &self,
        id: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<DeliveryRecord, CommandError>;

    /// How many deliveries are pending.
    async fn outbox_backlog(&self) -> Result<u64, StoreError>;

    /// Whether the database answers: the readiness check.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Finishes pending work and releases connections: called once, at shutdown.
    async fn close(&self) {}
}

//! The transactional outbox: the notification a user change produces (written in the same
//! transaction as the change), its deliveries to each endpoint, and what a dispatcher reports
//! back after an attempt.
//!
//! Times here are Unix **milliseconds**: retries back off in fractions of a second.

use riskhook_core::assessment::{Decision, UserStatus};
use serde::Serialize;

/// What a delivery is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its (next) attempt.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed: waits for a person to retry it.
    Failed,
}

impl DeliveryStatus {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// The inverse of [`DeliveryStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// One notification to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// Our id (`dlv_…`).
    pub id: String,
    /// The notification (`msg_…`): the Standard Webhooks `webhook-id`, the same for every
    /// endpoint and every attempt.
    pub message_id: String,
    /// The configured endpoint.
    pub endpoint_id: String,
    /// The user it is about: deliveries of one user reach an endpoint in order.
    pub user_id: String,
    /// The notification type, e.g. `user.updated`.
    pub event_type: String,
    /// The JSON body sent.
    pub payload: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made since it was created or last retried by hand.
    pub attempts: u32,
    /// When the next attempt is due (ms).
    pub next_attempt_at: i64,
    /// The HTTP status of the last attempt, if it got one.
    pub last_status: Option<u16>,
    /// What went wrong on the last attempt.
    pub last_error: Option<String>,
    /// When the notification was created (ms).
    pub created_at: i64,
    /// When it was delivered (ms).
    pub delivered_at: Option<i64>,
}

/// Which deliveries to list, newest first; `before` is the last id seen.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Only in this state.
    pub status: Option<DeliveryStatus>,
    /// Only to this endpoint.
    pub endpoint_id: Option<String>,
    /// Only about this user.
    pub user_id: Option<String>,
    /// Deliveries older than this id.
    pub before: Option<String>,
    /// At most this many.
    pub limit: u32,
}

/// A dispatcher's request for due deliveries.
#[derive(Debug, Clone)]
pub struct Claim {
    /// Who claims (an instance id): only it may report the outcome while the lease holds.
    pub owner: String,
    /// Now (ms).
    pub now: i64,
    /// How long the claim holds (ms). A dispatcher that dies mid-attempt loses its claims
    /// when their leases end, and another (or the next start) takes them over.
    pub lease: i64,
    /// At most this many.
    pub limit: u32,
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// 2xx.
    Delivered {
        /// The status received.
        status: u16,
    },
    /// Failed; try again at `next_attempt_at` (ms).
    Retry {
        /// When.
        next_attempt_at: i64,
        /// The status received, if any.
        status: Option<u16>,
        /// What went wrong.
        error: String,
    },
    /// Failed for the last time: the delivery becomes `failed`.
    Exhausted {
        /// The status received, if any.
        status: Option<u16>,
        /// What went wrong.
        error: String,
    },
    /// `410 Gone`: the endpoint is disabled; its deliveries wait until it is enabled again.
    Gone,
}

/// The columns an attempt sets on its delivery, the same in every backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptUpdate<'a> {
    /// `delivered`, `pending` or `failed`.
    pub status: &'static str,
    /// When to try next (ms), if that moves.
    pub next_attempt_at: Option<i64>,
    /// The HTTP status received, if any.
    pub last_status: Option<u16>,
    /// What went wrong, if anything.
    pub last_error: Option<&'a str>,
    /// When it was delivered (ms), if it was.
    pub delivered_at: Option<i64>,
}

impl Attempt {
    /// What this attempt, made at `now_ms`, sets on its delivery.
    pub fn update(&self, now_ms: i64) -> AttemptUpdate<'_> {
        let (status, next_attempt_at, last_status, last_error, delivered_at) = match self {
            Attempt::Delivered { status } => ("delivered", None, Some(*status), None, Some(now_ms)),
            Attempt::Retry {
                next_attempt_at,
                status,
                error,
            } => (
                "pending",
                Some(*next_attempt_at),
                *status,
                Some(error.as_str()),
                None,
            ),
            Attempt::Exhausted { status, error } => {
                ("failed", None, *status, Some(error.as_str()), None)
            }
            Attempt::Gone => (
                "pending",
                Some(now_ms),
                Some(410),
                Some("410 Gone: the endpoint is disabled until enabled again"),
                None,
            ),
        };
        AttemptUpdate {
            status,
            next_attempt_at,
            last_status,
            last_error,
            delivered_at,
        }
    }
}

/// A configured endpoint's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRecord {
    /// Its id in the configuration.
    pub id: String,
    /// Whether the current configuration still has it.
    pub configured: bool,
    /// When it was disabled (ms), after answering `410 Gone` or by hand.
    pub disabled_at: Option<i64>,
    /// Why.
    pub disabled_reason: Option<String>,
}

/// The part of a user a notification and an audit entry show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserState {
    /// Account status.
    pub status: UserStatus,
    /// The strictest current decision.
    pub decision: Decision,
    /// Its score.
    pub score: u8,
    /// The assessment that explains it.
    pub assessment_id: Option<String>,
}

impl UserState {
    /// As JSON, for an audit entry's `before` or `after`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Whether a notification is due: the status or the decision moved.
    pub fn differs_from(&self, before: Option<&UserState>) -> bool {
        before.is_none_or(|b| b.status != self.status || b.decision != self.decision)
    }
}

/// The body of a `user.updated` notification, in the Standard Webhooks shape (`type`,
/// `timestamp`, `data`). `version` counts the user's notified changes, so a receiver can
/// discard a notification older than one it already has.
pub fn user_updated(
    user_id: &str,
    before: Option<&UserState>,
    after: &UserState,
    cause: &str,
    version: i64,
    at_seconds: i64,
) -> String {
    #[derive(Serialize)]
    struct Data<'a> {
        user_id: &'a str,
        status: UserStatus,
        previous_status: Option<UserStatus>,
        decision: Decision,
        previous_decision: Option<Decision>,
        score: u8,
        assessment_id: Option<&'a str>,
        cause: &'a str,
        version: i64,
    }
    #[derive(Serialize)]
    struct Message<'a> {
        r#type: &'static str,
        timestamp: String,
        data: Data<'a>,
    }
    let timestamp = u64::try_from(at_seconds)
        .map(|s| {
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(s),
            )
            .to_string()
        })
        .unwrap_or_default();
    let message = Message {
        r#type: "user.updated",
        timestamp,
        data: Data {
            user_id,
            status: after.status,
            previous_status: before.map(|b| b.status),
            decision: after.decision,
            previous_decision: before.map(|b| b.decision),
            score: after.score,
            assessment_id: after.assessment_id.as_deref(),
            cause,
            version,
        },
    };
    serde_json::to_string(&message).unwrap_or_default()
}

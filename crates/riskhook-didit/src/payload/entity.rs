//! Non-session events: User and Business entity changes, Transaction Monitoring transactions
//! and Travel Rule transfers. Didit documents these payloads only by example (and two pages
//! disagree on the envelope), so the typed fields are the ones the examples show.

use serde_json::Value;

use super::lenient::{Id, lenient_struct, open_enum};

lenient_struct! {
    /// The resource fields of a `user.*` or `business.*` event. For `*.data.updated`, Didit
    /// sends the full updated entity; its profile fields stay in `extra`.
    pub struct EntityEvent {
        /// The integrator's identifier for the entity. Didit's entity API is keyed by it
        /// (`/v3/users/{vendor_data}/`), and it joins the entity to its sessions.
        pub vendor_data: Option<Id>,
        /// Didit's UUID for the entity, as the entity webhooks name it.
        pub uuid: Option<Id>,
        /// Didit's UUID for the entity, as the entity API responses name it.
        pub didit_internal_id: Option<Id>,
        /// Status after the change.
        pub status: Option<EntityStatus>,
        /// Status before the change (`*.status.updated`).
        pub previous_status: Option<EntityStatus>,
        /// Why: `manual`, `api`, `session_declined`, `blocklist_match`, `transaction_rule`,
        /// `ongoing_monitoring`.
        pub reason: Option<String>,
        /// Who: `system` or an analyst's email.
        pub actor: Option<String>,
        /// Which fields changed (`*.data.updated`).
        pub changed_fields: Option<Vec<String>>,
        /// Integrator metadata on the entity.
        pub metadata: Option<Value>,
    }
}

open_enum! {
    /// Lifecycle status of a User or Business entity. The webhooks use uppercase; the entity
    /// API also shows Title Case, accepted as an alias.
    pub enum EntityStatus {
        /// Normal.
        Active => "ACTIVE" | "Active",
        /// Under suspicion: new sessions go to review.
        Flagged => "FLAGGED" | "Flagged",
        /// Blocked: new sessions and transactions are declined.
        Blocked => "BLOCKED" | "Blocked",
    }
}

lenient_struct! {
    /// The resource fields of a `transaction.created` or `transaction.status.updated` event.
    pub struct TransactionEvent {
        /// Didit's transaction UUID.
        pub transaction_id: Option<Id>,
        /// Didit's transaction UUID under the name the transactions API uses.
        pub uuid: Option<Id>,
        /// The integrator's transaction id (idempotency key on submission).
        pub txn_id: Option<Id>,
        /// Status after the change.
        pub status: Option<TransactionStatus>,
        /// Status before the change (`transaction.status.updated`).
        pub previous_status: Option<TransactionStatus>,
        /// Rule score, 0-100 and beyond.
        pub score: Option<f64>,
        /// Severity label of the score.
        pub severity: Option<String>,
        /// Decimal amount as text (`"500.00"`), kept as text to keep its exact digits.
        pub amount: Option<String>,
        /// ISO 4217 currency (or crypto asset code).
        pub currency: Option<String>,
        /// Amount converted to the application's default currency.
        pub amount_in_default_currency: Option<String>,
        /// The application's default currency.
        pub default_currency_code: Option<String>,
        /// `INBOUND` or `OUTBOUND`.
        pub direction: Option<String>,
        /// `vendor_data` of the user or business that initiated it.
        pub applicant_vendor_data: Option<Id>,
        /// `vendor_data` of the counterparty, when it is a known entity.
        pub counterparty_vendor_data: Option<String>,
        /// Rules that fired.
        pub rules_matched_count: Option<i64>,
        /// Machine-readable reason for the verdict, e.g. `WALLET_HIGH_RISK`.
        pub decision_reason_code: Option<String>,
        /// What the end user must do when the status is `AWAITING_USER`.
        pub action_required: Option<Value>,
        /// Why the status changed: `rule_async_completed`, `analyst_approved`, ...
        pub reason: Option<String>,
        /// Who changed it.
        pub actor: Option<String>,
        /// ISO-8601 time of the status change.
        pub changed_at: Option<String>,
    }
}

open_enum! {
    /// Status of a monitored transaction.
    pub enum TransactionStatus {
        /// No rule blocked it.
        Approved => "APPROVED",
        /// Waiting for an analyst.
        InReview => "IN_REVIEW",
        /// Blocked.
        Declined => "DECLINED",
        /// The end user must act (step-up verification, wallet ownership).
        AwaitingUser => "AWAITING_USER",
    }
}

lenient_struct! {
    /// The resource fields of a `travel_rule.status.updated` event.
    pub struct TravelRuleEvent {
        /// Didit's UUID of the transaction carrying the transfer.
        pub transaction_id: Option<Id>,
        /// Same, under the transactions API's name.
        pub uuid: Option<Id>,
        /// The integrator's transaction id.
        pub txn_id: Option<Id>,
        /// Exchange status, e.g. `AWAITING_COUNTERPARTY`, `COMPLETED`, `FINISHED`
        /// (thirteen values, only partly documented, so left as text).
        pub travel_rule_status: Option<String>,
        /// Exchange status before the change.
        pub previous_travel_rule_status: Option<String>,
        /// Messaging rail: `INTERNAL`, `TRP`, `GTR`, `TRUST`, `VERIFYVASP`, `SYGNA`, `EMAIL`.
        pub rail: Option<String>,
        /// `INBOUND` or `OUTBOUND`.
        pub direction: Option<String>,
        /// Status of the transaction itself.
        pub status: Option<TransactionStatus>,
        /// `vendor_data` of the user or business that initiated it.
        pub applicant_vendor_data: Option<Id>,
    }
}

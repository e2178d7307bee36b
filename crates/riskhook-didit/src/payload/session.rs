//! Session events (`status.updated`, `data.updated`): the resource fields of a KYC or KYB
//! session delivery and the session status enum.

use serde_json::{Map, Value};

use super::decision::Decision;
use super::lenient::{Id, lenient_struct, open_enum};

lenient_struct! {
    /// The resource fields of a `status.updated` or `data.updated` delivery.
    pub struct SessionEvent {
        /// Didit's session UUID.
        pub session_id: Option<Id>,
        /// Session status after the change.
        pub status: Option<SessionStatus>,
        /// Workflow the session runs.
        pub workflow_id: Option<String>,
        /// Version of that workflow.
        pub workflow_version: Option<i64>,
        /// The integrator's identifier for the user, as set on the session.
        pub vendor_data: Option<Id>,
        /// Integrator metadata set on the session.
        pub metadata: Option<Value>,
        /// `user` (KYC) or `business` (KYB).
        pub session_kind: Option<String>,
        /// KYB: the business session id.
        pub business_session_id: Option<Id>,
        /// KYB: the integrator's identifier for the business.
        pub vendor_business_id: Option<String>,
        /// Present for Approved, Declined, In Review and (partially) Abandoned.
        pub decision: Option<Decision>,
        /// Present instead of `decision` when the status is Resubmitted.
        pub resubmit_info: Option<ResubmitInfo>,
    }
}

lenient_struct! {
    /// What the user has to redo after a reviewer asked for a resubmission.
    pub struct ResubmitInfo {
        /// Workflow nodes to redo.
        pub nodes_to_resubmit: Option<Vec<String>>,
        /// Why, by node id.
        pub reasons: Option<Map<String, Value>>,
    }
}

open_enum! {
    /// Status of a KYC or KYB session. Didit's values are case-sensitive Title Case with
    /// spaces; the uppercase forms appear only in Didit's KYB documentation and are accepted
    /// as aliases (`as_str` always gives the Title Case form).
    pub enum SessionStatus {
        /// Created; the initial webhook carries this.
        NotStarted => "Not Started" | "NOT_STARTED",
        /// The user is going through the flow.
        InProgress => "In Progress" | "IN_PROGRESS",
        /// KYB: waiting for child sessions or parties.
        AwaitingUser => "Awaiting User" | "AWAITING_USER",
        /// Waiting for a human reviewer.
        InReview => "In Review" | "IN_REVIEW",
        /// Verified.
        Approved => "Approved" | "APPROVED",
        /// Rejected.
        Declined => "Declined" | "DECLINED",
        /// Sent back to the user to redo some steps.
        Resubmitted => "Resubmitted" | "RESUB_REQUESTED" | "RESUBMITTED",
        /// The session link expired before completion.
        Expired => "Expired" | "EXPIRED",
        /// A previously approved verification expired (one capital K on the wire).
        KycExpired => "Kyc Expired" | "KYC_EXPIRED" | "KYC Expired",
        /// The user left.
        Abandoned => "Abandoned" | "ABANDONED",
    }
}

impl SessionStatus {
    /// Whether Didit's workflow has finished with the session. `In Review` counts as terminal
    /// (a human decides next); unknown statuses do not.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Approved
                | Self::Declined
                | Self::InReview
                | Self::Expired
                | Self::KycExpired
                | Self::Abandoned
        )
    }
}

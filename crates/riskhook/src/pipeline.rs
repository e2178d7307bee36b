//! The ingest pipeline after verification: derive signals, evaluate the policy and every
//! shadow policy (pure, outside the transaction), then store the event, its assessment with
//! the shadows' assessments, the session's and the user's new state in one transaction. The one
//! place that sequences what happens to an event, and where Didit's event becomes the store's
//! provider-neutral values: ids as [`EventId`]/[`AssessmentId`], the session status with its
//! lifecycle [`Stage`].

use riskhook_core::assessment::Assessment;
use riskhook_core::policy::Policy;
use riskhook_didit::axum::VerifiedDiditEvent;
use riskhook_didit::payload::EventBody;
use riskhook_didit_signals as didit;
use riskhook_store::{
    AssessmentId, EventId, EventRecord, IngestOutcome, NewAssessment, NewShadowAssessment,
    SessionStatus, Stage, Store, StoreError,
};

use crate::policy::Shadow;

/// The record to store for a verified delivery, under our new id `id`.
pub fn new_event(verified: &VerifiedDiditEvent, id: EventId) -> EventRecord {
    let VerifiedDiditEvent {
        event,
        verification,
        raw,
        received_at,
    } = verified;
    EventRecord {
        id,
        received_at: *received_at,
        webhook_type: event.kind.as_str().to_owned(),
        delivery_key: event.delivery_key().map(str::to_owned),
        content_key: event.content_key(),
        subject_id: event.subject_id().map(str::to_owned),
        session_id: event.session_id().map(str::to_owned),
        status: event.status().map(str::to_owned),
        session_status: event.status().map(session_status),
        event_timestamp: event.timestamp,
        vendor_data: event.vendor_data().map(str::to_owned),
        key_id: verification.key_id.clone(),
        scheme: verification.scheme.as_str().to_owned(),
        body_trusted: verification.trusts_body(),
        raw: raw.to_vec(),
    }
}

/// A status as the store keeps a session's: Didit's canonical spelling (`NOT_STARTED` is
/// `Not Started`) and how far along Didit's lifecycle it is (`riskhook_didit::session::stage`),
/// which orders two events of one session with the same timestamp.
pub fn session_status(status: &str) -> SessionStatus {
    let status = riskhook_didit::payload::SessionStatus::parse(status);
    let stage = Stage::new(riskhook_didit::session::stage(&status));
    SessionStatus::new(status.as_str(), stage)
}

/// A new event id: `evt_` and a UUIDv7, so ids sort by creation time.
pub fn new_event_id() -> EventId {
    EventId::from_uuid(uuid::Uuid::now_v7())
}

/// A new assessment id: `asm_` and a UUIDv7.
pub fn new_assessment_id() -> AssessmentId {
    AssessmentId::from_uuid(uuid::Uuid::now_v7())
}

/// Assesses a session event; other event types (entity, transaction) carry no verification
/// results to score.
///
/// The policy sees the event's own MAC-covered timestamp as `now`, not the wall clock: an
/// event means the same thing whenever it arrives, which keeps decisions reproducible and
/// independent of arrival order.
pub fn assess(
    verified: &VerifiedDiditEvent,
    event_id: &str,
    policy: &Policy,
) -> Option<Assessment> {
    let event = &verified.event;
    if !matches!(event.body, EventBody::Session(_)) {
        return None;
    }
    let signals = didit::extract(event, event_id, verified.verification.trusts_body());
    let now = event.timestamp.unwrap_or(verified.received_at);
    Some(policy.assess(&signals, now))
}

/// What each shadow policy decides on the signals `assessment` was made on. Shadows only
/// observe: nothing they decide reaches a user, a case or a notification.
pub fn shadow_assessments(assessment: &Assessment, shadows: &[Shadow]) -> Vec<NewShadowAssessment> {
    shadows
        .iter()
        .map(|shadow| {
            let a = shadow
                .policy
                .assess(assessment.signals.clone(), assessment.evaluated_at);
            NewShadowAssessment {
                shadow_id: shadow.id.clone(),
                policy_hash: a.policy.hash,
                score: a.score,
                decision: a.decision,
                fired: a.fired.into_iter().map(|f| f.rule_id).collect(),
            }
        })
        .collect()
}

/// Stores a verified delivery and applies its effects, in one transaction. Returns the outcome
/// and the assessment made (also when the event turned out to be a duplicate, in which case
/// it was not stored).
pub async fn ingest(
    store: &dyn Store,
    policy: &Policy,
    shadows: &[Shadow],
    verified: &VerifiedDiditEvent,
) -> Result<(IngestOutcome, Option<Assessment>), StoreError> {
    let id = new_event_id();
    let assessment = assess(verified, &id, policy);
    let record = assessment.as_ref().map(|a| NewAssessment {
        id: new_assessment_id(),
        score: a.score,
        decision: a.decision,
        policy_hash: a.policy.hash.clone(),
        evaluated_at: a.evaluated_at,
        json: a.to_json(),
        signals: a.signals.values_json(),
        shadows: shadow_assessments(a, shadows),
    });
    let disagreements: Vec<(String, &'static str, &'static str)> = record
        .iter()
        .flat_map(|r| {
            r.shadows
                .iter()
                .filter(|s| s.decision != r.decision)
                .map(|s| {
                    (
                        s.shadow_id.clone(),
                        r.decision.as_str(),
                        s.decision.as_str(),
                    )
                })
        })
        .collect();
    let outcome = store.ingest(new_event(verified, id), record).await?;
    if matches!(outcome, IngestOutcome::Accepted { .. }) {
        for (shadow, from, to) in disagreements {
            crate::metrics::shadow_disagreement(shadow, from, to);
        }
    }
    Ok((outcome, assessment))
}

#[cfg(test)]
mod tests {
    use riskhook_didit::payload::SessionStatus as DiditStatus;
    use riskhook_store::TERMINAL_STATUSES;

    use super::*;

    #[test]
    fn terminal_statuses_are_the_stored_spelling_of_didits_terminal_ones() {
        for text in TERMINAL_STATUSES {
            let status = DiditStatus::parse(text);
            assert!(status.is_terminal(), "{text}");
            assert_eq!(status.as_str(), text);
        }
        for text in [
            "Not Started",
            "In Progress",
            "Awaiting User",
            "Resubmitted",
            "Paused",
        ] {
            assert!(!DiditStatus::parse(text).is_terminal(), "{text}");
        }
    }

    #[test]
    fn a_session_status_is_didits_spelling_with_its_stage_and_terminality() {
        for text in [
            "NOT_STARTED",
            "In Progress",
            "IN_REVIEW",
            "Approved",
            "KYC Expired",
            "Paused",
        ] {
            let didit = DiditStatus::parse(text);
            let status = session_status(text);
            assert_eq!(status.as_str(), didit.as_str(), "{text}");
            assert_eq!(
                status.stage().get(),
                riskhook_didit::session::stage(&didit),
                "{text}"
            );
            assert_eq!(status.is_terminal(), didit.is_terminal(), "{text}");
        }
    }
}

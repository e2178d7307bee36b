//! The ingest pipeline after verification: derive signals, evaluate the policy and every
//! shadow policy (pure, outside the transaction), then store the event, its assessment with
//! the shadows' assessments, the session's and the user's new state in one transaction. The one
//! place that sequences what happens to an event.

use riskhook_core::assessment::Assessment;
use riskhook_core::policy::Policy;
use riskhook_core::signals::didit;
use riskhook_didit::axum::VerifiedDiditEvent;
use riskhook_didit::payload::EventBody;
use riskhook_store::{
    EventRecord, IngestOutcome, NewAssessment, NewShadowAssessment, Store, StoreError,
};

use crate::policy::Shadow;

/// The record to store for a verified delivery, under our new id `id`.
pub fn new_event(verified: &VerifiedDiditEvent, id: String) -> EventRecord {
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
        event_timestamp: event.timestamp,
        vendor_data: event.vendor_data().map(str::to_owned),
        key_id: verification.key_id.clone(),
        scheme: verification.scheme.as_str().to_owned(),
        body_trusted: verification.trusts_body(),
        raw: raw.to_vec(),
    }
}

/// A new event id: `evt_` and a UUIDv7, so ids sort by creation time.
pub fn new_event_id() -> String {
    format!("evt_{}", uuid::Uuid::now_v7().simple())
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
        id: format!("asm_{}", uuid::Uuid::now_v7().simple()),
        score: a.score,
        decision: a.decision,
        policy_hash: a.policy.hash.clone(),
        evaluated_at: a.evaluated_at,
        json: a.to_json(),
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

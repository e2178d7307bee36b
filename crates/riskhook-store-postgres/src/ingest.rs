//! Ingest: one delivery's writes — the exactly-once insert of the event, its assessment, the
//! session's advance, the evidence in its user's case and the user's recomputation — in two
//! calls inside its batch's transaction ([`crate::intake`]; migration 8): `riskhook_ingest`
//! writes the event and returns the facts the rulebook needs; the rulebook decides here;
//! `riskhook_settle` writes what it decided and stages the audit entries.
//!
//! Several instances may receive the same delivery at once (Didit retries, a load balancer):
//! the insert's `ON CONFLICT DO NOTHING` on the two unique keys makes the second wait for the
//! first to commit and then insert nothing, so exactly one of them is `Accepted`.

use riskhook_core::audit::AuditKey;
use riskhook_core::review::needs_review;
use riskhook_store::rulebook::{self, Cause, Evidence};
use riskhook_store::{EventRecord, IngestOutcome, NewAssessment, NewAuditEntry, StoreError};
use sqlx::{PgConnection, Row};

use crate::audit::Staged;
use crate::effects::{self, bind_user, decision_rank, new_id};
use crate::{PROVIDER, map_err};

/// Stores `event` exactly once and applies its effects, in the caller's transaction (see
/// [`crate::intake`], which commits). A duplicate changes nothing.
pub(crate) async fn apply(
    conn: &mut PgConnection,
    audit_key: Option<&AuditKey>,
    event: &EventRecord,
    assessment: Option<&NewAssessment>,
) -> Result<IngestOutcome, StoreError> {
    let shadows = assessment.map_or(&[][..], |a| a.shadows.as_slice());
    let status = event
        .session_status
        .as_ref()
        .map(|s| (s.as_str(), i32::from(s.stage().get())));
    let row = sqlx::query(
        "SELECT * FROM riskhook_ingest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                                       $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24,
                                       $25, $26, $27, $28, $29, $30, $31)",
    )
    .bind(event.id.as_str())
    .bind(PROVIDER)
    .bind(event.received_at)
    .bind(&event.webhook_type)
    .bind(event.delivery_key.as_deref())
    .bind(&event.content_key)
    .bind(event.subject_id.as_deref())
    .bind(event.session_id.as_deref())
    .bind(event.status.as_deref())
    .bind(event.event_timestamp)
    .bind(event.vendor_data.as_deref())
    .bind(&event.key_id)
    .bind(&event.scheme)
    .bind(event.body_trusted)
    .bind(&event.raw)
    .bind(event.replay_at(assessment))
    .bind(assessment.map(|a| a.signals.as_str()))
    .bind(status.map(|(text, _)| text))
    .bind(status.map(|(_, stage)| stage))
    .bind(assessment.map(|a| a.id.as_str()))
    .bind(assessment.map(|a| a.policy_hash.as_str()))
    .bind(assessment.map(|a| i32::from(a.score)))
    .bind(assessment.map(|a| a.decision.as_str()))
    .bind(assessment.map(|a| decision_rank(a.decision)))
    .bind(assessment.map(|a| a.evaluated_at))
    .bind(assessment.map(|a| a.json.as_str()))
    .bind(
        shadows
            .iter()
            .map(|s| s.shadow_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        shadows
            .iter()
            .map(|s| s.policy_hash.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        shadows
            .iter()
            .map(|s| i32::from(s.score))
            .collect::<Vec<_>>(),
    )
    .bind(
        shadows
            .iter()
            .map(|s| s.decision.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        shadows
            .iter()
            .map(|s| serde_json::to_string(&s.fired).unwrap_or_default())
            .collect::<Vec<_>>(),
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(map_err)?;
    if !row.try_get::<bool, _>("stored").map_err(map_err)? {
        let id: Option<String> = row.try_get("duplicate_of").map_err(map_err)?;
        // Events are never deleted, so the conflicting row is there.
        let id = id
            .ok_or_else(|| StoreError::Corrupt("a duplicate event's original is missing".into()))?;
        return Ok(IngestOutcome::Duplicate { id });
    }
    let session_advanced: bool = row.try_get("session_advanced").map_err(map_err)?;

    // Every automatic decision is audited, with what it rests on.
    let mut audit: Vec<NewAuditEntry> = assessment
        .map(|a| NewAuditEntry::assessment_recorded(event, a))
        .into_iter()
        .collect();
    let mut evidence = None;
    let mut plan = None;
    if let Some(user_id) = &event.vendor_data {
        let (mut facts, open_case) = effects::user_facts(&row)?;
        if let Some(a) = assessment.filter(|a| needs_review(a.decision)) {
            let planned = rulebook::plan_evidence(
                user_id,
                open_case,
                a.decision,
                new_id("case"),
                event.received_at,
            );
            // The facts were read before the evidence is written: the case's decision is the
            // one it is about to have.
            facts.open_case = Some(planned.decision());
            evidence = Some(planned);
        }
        let cause = Cause {
            what: "assessment",
            actor: "system",
            now: event.received_at,
        };
        plan = Some(rulebook::plan_refresh(user_id, &facts, cause));
    }
    if let Some(Evidence::Open { audit: opened, .. }) = &evidence {
        audit.push(opened.clone());
    }
    if let Some((_, moved)) = plan.as_ref().and_then(|p| p.moved.as_ref()) {
        audit.push(moved.clone());
    }
    let staged = Staged::new(audit, audit_key);
    let user = event.vendor_data.as_deref().zip(plan.as_ref());
    let settle = bind_user(
        sqlx::query(
            "SELECT riskhook_settle($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                                    $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)",
        ),
        event.received_at,
        user,
    )
    .bind(evidence.as_ref().map(Evidence::case_id))
    .bind(
        evidence
            .as_ref()
            .map(|e| matches!(e, Evidence::Open { .. })),
    )
    .bind(evidence.as_ref().map(|e| e.decision().as_str()))
    .bind(evidence.as_ref().map(|e| decision_rank(e.decision())))
    .bind(assessment.map(|a| a.id.as_str()));
    effects::store_user(conn, staged.bind(settle)).await?;
    Ok(IngestOutcome::Accepted {
        id: event.id.to_string(),
        session_advanced,
    })
}

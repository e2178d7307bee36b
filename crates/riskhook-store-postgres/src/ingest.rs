//! Ingest: one delivery in one transaction — the exactly-once insert of the event, its
//! assessment, the session's advance, the evidence in its user's case and the user's
//! recomputation.
//!
//! Several instances may receive the same delivery at once (Didit retries, a load balancer):
//! the insert's `ON CONFLICT DO NOTHING` on the two unique keys makes the second wait for the
//! first to commit and then insert nothing, so exactly one of them is `Accepted`.

use riskhook_core::review::needs_review;
use riskhook_store::{EventRecord, IngestOutcome, NewAssessment, NewAuditEntry, StoreError};
use sqlx::PgConnection;

use crate::effects::{self, Tx, decision_rank};
use crate::{PROVIDER, map_err};

/// Stores `event` exactly once and applies its effects, then commits (or, for a duplicate,
/// rolls back: nothing changed).
pub(crate) async fn ingest(
    mut tx: Tx,
    event: &EventRecord,
    assessment: Option<&NewAssessment>,
) -> Result<IngestOutcome, StoreError> {
    match apply(&mut tx, event, assessment).await {
        Ok(duplicate @ IngestOutcome::Duplicate { .. }) => {
            tx.rollback().await?;
            Ok(duplicate)
        }
        result => tx.finish(result).await,
    }
}

async fn apply(
    tx: &mut Tx,
    event: &EventRecord,
    assessment: Option<&NewAssessment>,
) -> Result<IngestOutcome, StoreError> {
    // The user first: everything below reads or writes them (lock order: see `effects`).
    if let Some(user_id) = &event.vendor_data {
        tx.lock_user(user_id).await?;
    }
    if !insert_event(tx.conn(), event, assessment).await? {
        let id = existing_event(tx.conn(), event).await?;
        return Ok(IngestOutcome::Duplicate { id });
    }
    if let Some(assessment) = assessment {
        record_assessment(tx, event, assessment).await?;
    }
    let session_advanced =
        advance_session(tx.conn(), event, assessment.map(|a| a.id.as_str())).await?;
    if let Some(user_id) = &event.vendor_data {
        if let Some(a) = assessment.filter(|a| needs_review(a.decision)) {
            effects::gather_evidence(tx, user_id, &a.id, a.decision, event.received_at).await?;
        }
        let cause = riskhook_store::rulebook::Cause {
            what: "assessment",
            actor: "system",
            now: event.received_at,
        };
        effects::refresh_user(tx, user_id, cause).await?;
    }
    Ok(IngestOutcome::Accepted {
        id: event.id.to_string(),
        session_advanced,
    })
}

/// Inserts the event unless one with its delivery key or content key exists (committed, or
/// being committed: the insert then waits for that transaction). Returns whether it did.
async fn insert_event(
    conn: &mut PgConnection,
    event: &EventRecord,
    assessment: Option<&NewAssessment>,
) -> Result<bool, StoreError> {
    // A session event's signal values for backtests go in with it, in the same statement: no
    // round trip of their own.
    let inserted: Option<i64> = sqlx::query_scalar(
        "WITH stored AS (
             INSERT INTO events (id, provider, received_at, webhook_type, delivery_key, content_key,
                                 subject_id, session_id, status, event_timestamp, vendor_data,
                                 key_id, scheme, body_trusted, raw)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
             ON CONFLICT DO NOTHING
             RETURNING seq
         ), snapshot AS (
             INSERT INTO signal_snapshots (event_seq, received_at, at, user_id, signals)
             SELECT seq, $3, $16, $11, $17 FROM stored WHERE $8::text IS NOT NULL
         )
         SELECT seq FROM stored",
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
    .fetch_optional(conn)
    .await
    .map_err(map_err)?;
    Ok(inserted.is_some())
}

/// The id of the event stored first with the same delivery key or content key. A new
/// statement, so at READ COMMITTED it sees the row the insert conflicted with.
async fn existing_event(
    conn: &mut PgConnection,
    event: &EventRecord,
) -> Result<String, StoreError> {
    let id: Option<String> = sqlx::query_scalar(
        "SELECT id FROM events
         WHERE provider = $1 AND (delivery_key = $2 OR content_key = $3)
         ORDER BY seq LIMIT 1",
    )
    .bind(PROVIDER)
    .bind(event.delivery_key.as_deref())
    .bind(&event.content_key)
    .fetch_optional(conn)
    .await
    .map_err(map_err)?;
    // Events are never deleted, so the conflicting row is there.
    id.ok_or_else(|| StoreError::Corrupt("a duplicate event's original is missing".into()))
}

async fn record_assessment(
    tx: &mut Tx,
    event: &EventRecord,
    assessment: &NewAssessment,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO assessments (id, event_id, session_id, user_id, policy_hash, score, decision,
                                  decision_rank, evaluated_at, created_at, assessment)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(assessment.id.as_str())
    .bind(event.id.as_str())
    .bind(event.session_id.as_deref())
    .bind(event.vendor_data.as_deref())
    .bind(&assessment.policy_hash)
    .bind(i32::from(assessment.score))
    .bind(assessment.decision.as_str())
    .bind(decision_rank(assessment.decision))
    .bind(assessment.evaluated_at)
    .bind(event.received_at)
    .bind(&assessment.json)
    .execute(tx.conn())
    .await
    .map_err(map_err)?;
    for shadow in &assessment.shadows {
        sqlx::query(
            "INSERT INTO shadow_assessments (shadow_id, assessment_id, policy_hash, score,
                                             decision, fired)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&shadow.shadow_id)
        .bind(assessment.id.as_str())
        .bind(&shadow.policy_hash)
        .bind(i32::from(shadow.score))
        .bind(shadow.decision.as_str())
        .bind(serde_json::to_string(&shadow.fired).unwrap_or_default())
        .execute(tx.conn())
        .await
        .map_err(map_err)?;
    }
    // Every automatic decision is audited, with what it rests on.
    tx.audit(NewAuditEntry::assessment_recorded(event, assessment));
    Ok(())
}

/// Moves the session to the event's status if the event's observation is the greatest seen
/// (body timestamp, then lifecycle stage, then the status text in byte order, as the pipeline
/// handed them in `session_status` — compared here as one row value, in one statement). Concurrent
/// events of one session are safe without any lock of ours: the UPSERT locks the row, and
/// compares against its latest committed version.
async fn advance_session(
    conn: &mut PgConnection,
    event: &EventRecord,
    assessment_id: Option<&str>,
) -> Result<bool, StoreError> {
    let (Some(session_id), Some(status), Some(timestamp)) = (
        &event.session_id,
        &event.session_status,
        event.event_timestamp,
    ) else {
        return Ok(false);
    };
    let stage = i32::from(status.stage().get());
    let current_event: String = sqlx::query_scalar(
        "INSERT INTO sessions AS s (session_id, status, status_timestamp, status_stage,
                                    status_event_id, vendor_data, first_seen_at, updated_at,
                                    current_assessment_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)
         ON CONFLICT (session_id) DO UPDATE SET
            status = CASE WHEN (EXCLUDED.status_timestamp, EXCLUDED.status_stage, EXCLUDED.status)
                               > (s.status_timestamp, s.status_stage, s.status)
                          THEN EXCLUDED.status ELSE s.status END,
            status_event_id = CASE WHEN (EXCLUDED.status_timestamp, EXCLUDED.status_stage,
                                         EXCLUDED.status)
                                        > (s.status_timestamp, s.status_stage, s.status)
                                   THEN EXCLUDED.status_event_id ELSE s.status_event_id END,
            current_assessment_id = CASE WHEN (EXCLUDED.status_timestamp, EXCLUDED.status_stage,
                                               EXCLUDED.status)
                                              > (s.status_timestamp, s.status_stage, s.status)
                                         THEN EXCLUDED.current_assessment_id
                                         ELSE s.current_assessment_id END,
            status_stage = CASE WHEN (EXCLUDED.status_timestamp, EXCLUDED.status_stage,
                                      EXCLUDED.status)
                                     > (s.status_timestamp, s.status_stage, s.status)
                                THEN EXCLUDED.status_stage ELSE s.status_stage END,
            status_timestamp = GREATEST(s.status_timestamp, EXCLUDED.status_timestamp),
            vendor_data = COALESCE(s.vendor_data, EXCLUDED.vendor_data),
            updated_at = EXCLUDED.updated_at
         RETURNING status_event_id",
    )
    .bind(session_id)
    .bind(status.as_str())
    .bind(timestamp)
    .bind(stage)
    .bind(event.id.as_str())
    .bind(event.vendor_data.as_deref())
    .bind(event.received_at)
    .bind(assessment_id)
    .fetch_one(conn)
    .await
    .map_err(map_err)?;
    Ok(current_event == event.id.as_str())
}

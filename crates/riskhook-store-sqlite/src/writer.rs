//! The write path: one thread owning one SQLite connection, committing deliveries in batches
//! (group commit).
//!
//! The thread takes every delivery waiting (up to [`MAX_BATCH`]), applies them in one
//! `BEGIN IMMEDIATE` transaction, commits once — one fsync of the WAL for the whole batch,
//! `synchronous = FULL` — and only then answers each. The connection is a plain synchronous
//! `rusqlite` one owned by this thread, so a delivery's five statements run back to back
//! instead of each being a round trip to a driver thread (sqlx's SQLite connections work that
//! way; they remain the read path). If one delivery fails inside a batch, the batch is rolled
//! back and replayed one transaction per delivery, so only the failing one is refused.

use std::path::{Path, PathBuf};
use std::time::Instant;

use riskhook_core::assessment::{Decision, UserStatus};
use riskhook_didit::payload::SessionStatus;
use riskhook_store::{EventRecord, IngestOutcome, NewAssessment, StoreError};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use crate::PROVIDER;

/// How many deliveries one commit carries at most.
pub(crate) const MAX_BATCH: usize = 256;

/// A delivery waiting for the writer.
pub(crate) struct WriteJob {
    pub(crate) event: EventRecord,
    pub(crate) assessment: Option<NewAssessment>,
    pub(crate) reply: oneshot::Sender<Result<IngestOutcome, StoreError>>,
}

impl std::fmt::Debug for WriteJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteJob")
            .field("event", &self.event)
            .finish_non_exhaustive()
    }
}

/// Opens the writer's connection and starts its thread. The channel is bounded: when the disk
/// cannot keep up, requests wait for room (and time out as 503) instead of piling up in memory.
pub(crate) fn spawn(path: &Path) -> Result<mpsc::Sender<WriteJob>, StoreError> {
    let connection = open(path)?;
    let (jobs, queue) = mpsc::channel(4 * MAX_BATCH);
    std::thread::Builder::new()
        .name("riskhook-sqlite-writer".to_owned())
        .spawn(move || run(connection, queue))
        .map_err(|e| StoreError::Other(Box::new(e)))?;
    Ok(jobs)
}

fn open(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open(PathBuf::from(path)).map_err(map_err)?;
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;",
        )
        .map_err(map_err)?;
    connection.set_prepared_statement_cache_capacity(32);
    Ok(connection)
}

/// The thread's loop: ends when every sender (every clone of the store) is gone.
fn run(mut connection: Connection, mut queue: mpsc::Receiver<WriteJob>) {
    let mut batch: Vec<WriteJob> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let outcomes = commit_batch(&mut connection, &batch);
        #[allow(clippy::cast_precision_loss)]
        metrics::histogram!("riskhook_commit_batch_size").record(batch.len() as f64);
        metrics::histogram!("riskhook_commit_seconds").record(started.elapsed().as_secs_f64());
        match outcomes {
            Ok(outcomes) => {
                for (job, outcome) in batch.drain(..).zip(outcomes) {
                    let _ = job.reply.send(outcome);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batch = batch.len(), "commit failed; the batch is answered with errors");
                let reason = e.to_string();
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(unavailable(&reason)));
                }
            }
        }
    }
}

type Outcomes = Vec<Result<IngestOutcome, StoreError>>;

fn commit_batch(connection: &mut Connection, batch: &[WriteJob]) -> Result<Outcomes, StoreError> {
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(map_err)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        match apply(&tx, &job.event, job.assessment.as_ref()) {
            Ok(outcome) => outcomes.push(Ok(outcome)),
            Err(e) => {
                tracing::warn!(error = %e, "a delivery failed inside a batch; replaying the batch one by one");
                drop(tx); // rolls back
                return commit_one_by_one(connection, batch);
            }
        }
    }
    tx.commit().map_err(map_err)?;
    Ok(outcomes)
}

fn commit_one_by_one(
    connection: &mut Connection,
    batch: &[WriteJob],
) -> Result<Outcomes, StoreError> {
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_err)?;
        match apply(&tx, &job.event, job.assessment.as_ref()) {
            Ok(outcome) => {
                tx.commit().map_err(map_err)?;
                outcomes.push(Ok(outcome));
            }
            Err(e) => outcomes.push(Err(e)), // dropping `tx` rolls it back
        }
    }
    Ok(outcomes)
}

/// One delivery's effects inside the batch's transaction.
fn apply(
    conn: &Connection,
    event: &EventRecord,
    assessment: Option<&NewAssessment>,
) -> Result<IngestOutcome, StoreError> {
    // `WHERE NOT EXISTS` rather than relying on the conflict alone: a conflicting
    // AUTOINCREMENT insert still bumps `sqlite_sequence`, which would make every duplicate
    // write (and fsync) the database for nothing. The unique indexes stay the guarantee.
    let inserted = conn
        .prepare_cached(
            "INSERT INTO events (id, provider, received_at, webhook_type, delivery_key, content_key,
                                 subject_id, session_id, status, event_timestamp, vendor_data,
                                 key_id, scheme, body_trusted, raw)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15
             WHERE NOT EXISTS (SELECT 1 FROM events
                               WHERE provider = ?2 AND (delivery_key = ?5 OR content_key = ?6))
             ON CONFLICT DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                event.id,
                PROVIDER,
                event.received_at,
                event.webhook_type,
                event.delivery_key,
                event.content_key,
                event.subject_id,
                event.session_id,
                event.status,
                event.event_timestamp,
                event.vendor_data,
                event.key_id,
                event.scheme,
                event.body_trusted,
                event.raw,
            ])
        })
        .map_err(map_err)?;
    if inserted == 0 {
        let existing: String = conn
            .prepare_cached(
                "SELECT id FROM events
                 WHERE provider = ?1 AND (delivery_key = ?2 OR content_key = ?3)
                 ORDER BY seq LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![PROVIDER, event.delivery_key, event.content_key],
                    |r| r.get(0),
                )
            })
            .map_err(map_err)?;
        return Ok(IngestOutcome::Duplicate { id: existing });
    }
    if let Some(assessment) = assessment {
        record_assessment(conn, event, assessment)?;
    }
    let session_advanced = advance_session(conn, event, assessment.map(|a| a.id.as_str()))?;
    if let Some(user_id) = &event.vendor_data {
        recompute_user(conn, user_id, event.received_at)?;
    }
    Ok(IngestOutcome::Accepted {
        id: event.id.clone(),
        session_advanced,
    })
}

fn record_assessment(
    conn: &Connection,
    event: &EventRecord,
    assessment: &NewAssessment,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO assessments (id, event_id, session_id, user_id, policy_hash, score, decision,
                                  decision_rank, evaluated_at, created_at, assessment)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )
    .and_then(|mut s| {
        s.execute(params![
            assessment.id,
            event.id,
            event.session_id,
            event.vendor_data,
            assessment.policy_hash,
            assessment.score,
            assessment.decision.as_str(),
            decision_rank(assessment.decision),
            assessment.evaluated_at,
            event.received_at,
            assessment.json,
        ])
    })
    .map_err(map_err)?;
    Ok(())
}

pub(crate) fn decision_rank(decision: Decision) -> i64 {
    match decision {
        Decision::Approve => 0,
        Decision::Review => 1,
        Decision::Freeze => 2,
    }
}

/// Moves the session to the event's status if the event's observation is the greatest seen
/// (`riskhook_didit::session::Observation`: body timestamp, then lifecycle stage, then the
/// status text — compared here as one SQLite row value, in one statement).
fn advance_session(
    conn: &Connection,
    event: &EventRecord,
    assessment_id: Option<&str>,
) -> Result<bool, StoreError> {
    let (Some(session_id), Some(status), Some(timestamp)) =
        (&event.session_id, &event.status, event.event_timestamp)
    else {
        return Ok(false);
    };
    // The canonical spelling, so the stored text and the stage agree with `Observation`.
    let status = SessionStatus::parse(status);
    let stage = i64::from(riskhook_didit::session::stage(&status));
    let current_event: String = conn
        .prepare_cached(
            "INSERT INTO sessions (session_id, status, status_timestamp, status_stage,
                                   status_event_id, vendor_data, first_seen_at, updated_at,
                                   current_assessment_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)
             ON CONFLICT (session_id) DO UPDATE SET
                status = CASE WHEN (?3, ?4, ?2) > (status_timestamp, status_stage, status)
                              THEN ?2 ELSE status END,
                status_event_id = CASE WHEN (?3, ?4, ?2) > (status_timestamp, status_stage, status)
                                       THEN ?5 ELSE status_event_id END,
                current_assessment_id = CASE WHEN (?3, ?4, ?2) > (status_timestamp, status_stage, status)
                                             THEN ?8 ELSE current_assessment_id END,
                status_stage = CASE WHEN (?3, ?4, ?2) > (status_timestamp, status_stage, status)
                                    THEN ?4 ELSE status_stage END,
                status_timestamp = CASE WHEN (?3, ?4, ?2) > (status_timestamp, status_stage, status)
                                        THEN ?3 ELSE status_timestamp END,
                vendor_data = COALESCE(vendor_data, ?6),
                updated_at = ?7
             RETURNING status_event_id",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    session_id,
                    status.as_str(),
                    timestamp,
                    stage,
                    event.id,
                    event.vendor_data,
                    event.received_at,
                    assessment_id,
                ],
                |r| r.get(0),
            )
        })
        .map_err(map_err)?;
    Ok(current_event == event.id)
}

/// Recomputes a user from facts that do not depend on arrival order: the current assessments
/// of their sessions (each the assessment of the session's greatest observation) and whether
/// any of their assessments ever decided freeze.
fn recompute_user(conn: &Connection, user_id: &str, now: i64) -> Result<(), StoreError> {
    let (ever_frozen, current): (bool, Option<(String, i64, String)>) = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM assessments WHERE user_id = ?1 AND decision = 'freeze'),
                    current.id, current.score, current.decision
             FROM (SELECT 1) AS one
             LEFT JOIN (SELECT a.id, a.score, a.decision
                        FROM sessions s JOIN assessments a ON a.id = s.current_assessment_id
                        WHERE s.vendor_data = ?1
                        ORDER BY a.decision_rank DESC, a.score DESC, a.evaluated_at DESC,
                                 s.session_id
                        LIMIT 1) AS current ON 1",
        )
        .and_then(|mut s| {
            s.query_row(params![user_id], |r| {
                let id: Option<String> = r.get(1)?;
                let current = match id {
                    Some(id) => Some((id, r.get(2)?, r.get(3)?)),
                    None => None,
                };
                Ok((r.get(0)?, current))
            })
        })
        .optional()
        .map_err(map_err)?
        .unwrap_or((false, None));
    let (assessment_id, score, decision) = match current {
        Some((id, score, decision)) => (Some(id), score, crate::parse_decision(&decision)?),
        None => (None, 0, Decision::Approve),
    };
    let status = UserStatus::derive(ever_frozen, decision);
    conn.prepare_cached(
        "INSERT INTO users (user_id, status, score, decision, current_assessment_id, ever_frozen,
                            first_seen_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
         ON CONFLICT (user_id) DO UPDATE SET
            status = excluded.status, score = excluded.score, decision = excluded.decision,
            current_assessment_id = excluded.current_assessment_id,
            ever_frozen = excluded.ever_frozen, updated_at = excluded.updated_at",
    )
    .and_then(|mut s| {
        s.execute(params![
            user_id,
            status.as_str(),
            score,
            decision.as_str(),
            assessment_id,
            ever_frozen,
            now,
        ])
    })
    .map_err(map_err)?;
    Ok(())
}

pub(crate) fn unavailable(reason: &str) -> StoreError {
    StoreError::Unavailable(Box::new(std::io::Error::other(reason.to_owned())))
}

/// What a retry may fix is `Unavailable`: busy, locked, out of memory or disk, I/O.
fn map_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(
            C::DatabaseBusy
            | C::DatabaseLocked
            | C::OutOfMemory
            | C::ReadOnly
            | C::SystemIoFailure
            | C::DiskFull
            | C::CannotOpen,
        ) => StoreError::Unavailable(Box::new(e)),
        _ => StoreError::Other(Box::new(e)),
    }
}

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

use riskhook_core::assessment::Decision;
use riskhook_core::review::needs_review;
use riskhook_store::{EventRecord, IngestOutcome, NewAssessment, NewAuditEntry, StoreError};
use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use crate::checkpointer::{Limits, Wal};
use crate::packed::{self, Packed};
use crate::{PROVIDER, effects};

/// How many deliveries one commit carries at most.
pub(crate) const MAX_BATCH: usize = 256;

/// Work for the writer thread.
// Deliveries are the hot path: kept inline rather than boxed, as they were before commands.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Job {
    /// A delivery: batched with others into one commit.
    Ingest(WriteJob),
    /// Anything else (a person's command, a dispatcher's claim): run alone in its own
    /// transaction, which the closure opens and commits itself.
    Command(Box<dyn FnOnce(&mut Connection) + Send>),
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Ingest(job) => job.fmt(f),
            Job::Command(_) => f.write_str("Command"),
        }
    }
}

/// A delivery waiting for the writer.
pub(crate) struct WriteJob {
    /// With its `raw` emptied: the body travels packed, in `raw` beside it.
    event: EventRecord,
    /// With its `json` emptied: the JSON travels packed, beside it.
    assessment: Option<(NewAssessment, Packed)>,
    raw: Packed,
    reply: oneshot::Sender<Result<IngestOutcome, StoreError>>,
}

impl WriteJob {
    /// The job for a delivery, its two large values packed here, on the caller's thread,
    /// not the writer's.
    pub(crate) fn new(
        mut event: EventRecord,
        assessment: Option<NewAssessment>,
        reply: oneshot::Sender<Result<IngestOutcome, StoreError>>,
    ) -> Self {
        let raw = packed::pack(&std::mem::take(&mut event.raw));
        let assessment = assessment.map(|mut a| {
            let json = packed::pack(std::mem::take(&mut a.json).as_bytes());
            (a, json)
        });
        Self {
            event,
            assessment,
            raw,
            reply,
        }
    }
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
pub(crate) fn spawn(path: &Path) -> Result<mpsc::Sender<Job>, StoreError> {
    let connection = open(path)?;
    let (jobs, queue) = mpsc::channel(4 * MAX_BATCH);
    let wal = Wal::start(&connection, path, Limits::default())?;
    std::thread::Builder::new()
        .name("riskhook-writer".to_owned())
        .spawn(move || run(connection, &wal, queue))
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
             PRAGMA busy_timeout = 5000;
             PRAGMA cache_size = -8192;",
        )
        .map_err(map_err)?;
    connection.set_prepared_statement_cache_capacity(32);
    Ok(connection)
}

/// The thread's loop: ends when every sender (every clone of the store) is gone.
fn run(mut connection: Connection, wal: &Wal, mut queue: mpsc::Receiver<Job>) {
    let mut batch: Vec<WriteJob> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        let mut command = None;
        match first {
            Job::Ingest(job) => batch.push(job),
            Job::Command(run) => command = Some(run),
        }
        while command.is_none() && batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(Job::Ingest(job)) => batch.push(job),
                Ok(Job::Command(run)) => command = Some(run),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit_and_answer(&mut connection, &mut batch);
            wal.after_commit();
        }
        // After the deliveries that were queued before it, so its view includes them.
        if let Some(run) = command {
            run(&mut connection);
            wal.after_commit();
        }
    }
}

fn commit_and_answer(connection: &mut Connection, batch: &mut Vec<WriteJob>) {
    let started = Instant::now();
    let outcomes = commit_batch(connection, batch);
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
            // With its cause: "database unavailable" alone would hide e.g. a full disk from
            // the log line here and from every request's own.
            let reason = match std::error::Error::source(&e) {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            };
            tracing::error!(error = %reason, batch = batch.len(), "commit failed; the batch is answered with errors");
            for job in batch.drain(..) {
                let _ = job.reply.send(Err(unavailable(&reason)));
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
        match apply(&tx, job) {
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
        match apply(&tx, job) {
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
fn apply(conn: &Connection, job: &WriteJob) -> Result<IngestOutcome, StoreError> {
    let event = &job.event;
    let assessment = job.assessment.as_ref().map(|(a, _)| a);
    // `WHERE NOT EXISTS` rather than relying on the conflict alone: a conflicting
    // AUTOINCREMENT insert still bumps `sqlite_sequence`, which would make every duplicate
    // write (and fsync) the database for nothing. The unique indexes stay the guarantee.
    let inserted = conn
        .prepare_cached(
            "INSERT INTO events (id, provider, received_at, webhook_type, delivery_key, content_key,
                                 subject_id, session_id, status, event_timestamp, vendor_data,
                                 key_id, scheme, body_trusted, raw, raw_encoding)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16
             WHERE NOT EXISTS (SELECT 1 FROM events
                               WHERE provider = ?2 AND (delivery_key = ?5 OR content_key = ?6))
             ON CONFLICT DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                event.id.as_str(),
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
                job.raw.bytes,
                job.raw.encoding,
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
    if event.session_id.is_some() {
        record_snapshot(conn, conn.last_insert_rowid(), event, assessment)?;
    }
    if let Some((assessment, json)) = &job.assessment {
        record_assessment(conn, event, assessment, json)?;
    }
    let session_advanced = advance_session(conn, event, assessment.map(|a| a.id.as_str()))?;
    if let Some(user_id) = &event.vendor_data {
        if let Some(a) = assessment.filter(|a| needs_review(a.decision)) {
            effects::gather_evidence(conn, user_id, &a.id, a.decision, event.received_at)?;
        }
        let cause = riskhook_store::rulebook::Cause {
            what: "assessment",
            actor: "system",
            now: event.received_at,
        };
        effects::refresh_user(conn, user_id, cause)?;
    }
    Ok(IngestOutcome::Accepted {
        id: event.id.to_string(),
        session_advanced,
    })
}

/// The session event at `seq`'s signal values, for backtests: the assessment's, or none (its
/// body is replayed instead), at the `now` it was or would be assessed at.
fn record_snapshot(
    conn: &Connection,
    seq: i64,
    event: &EventRecord,
    assessment: Option<&NewAssessment>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO signal_snapshots (event_seq, received_at, at, user_id, signals)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            seq,
            event.received_at,
            event.replay_at(assessment),
            event.vendor_data,
            assessment.map(|a| a.signals.as_str()),
        ])
    })
    .map_err(map_err)?;
    Ok(())
}

fn record_assessment(
    conn: &Connection,
    event: &EventRecord,
    assessment: &NewAssessment,
    json: &Packed,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO assessments (id, event_id, session_id, user_id, policy_hash, score, decision,
                                  decision_rank, evaluated_at, created_at, assessment,
                                  assessment_encoding)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )
    .and_then(|mut s| {
        s.execute(params![
            assessment.id.as_str(),
            event.id.as_str(),
            event.session_id,
            event.vendor_data,
            assessment.policy_hash,
            assessment.score,
            assessment.decision.as_str(),
            decision_rank(assessment.decision),
            assessment.evaluated_at,
            event.received_at,
            packed_value(json),
            json.encoding,
        ])
    })
    .map_err(map_err)?;
    for shadow in &assessment.shadows {
        conn.prepare_cached(
            "INSERT INTO shadow_assessments (shadow_id, assessment_id, policy_hash, score,
                                             decision, fired)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .and_then(|mut s| {
            s.execute(params![
                shadow.shadow_id,
                assessment.id.as_str(),
                shadow.policy_hash,
                shadow.score,
                shadow.decision.as_str(),
                serde_json::to_string(&shadow.fired).unwrap_or_default(),
            ])
        })
        .map_err(map_err)?;
    }
    // Every automatic decision is audited, with what it rests on.
    effects::append_audit(conn, NewAuditEntry::assessment_recorded(event, assessment))?;
    Ok(())
}

/// An assessment's packed JSON as SQLite stores it: text when plain (it was packed from a
/// `String`), as the column always held; a blob when compressed.
fn packed_value(value: &Packed) -> rusqlite::types::ToSqlOutput<'_> {
    if value.encoding == packed::PLAIN {
        rusqlite::types::ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Text(&value.bytes))
    } else {
        rusqlite::types::ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Blob(&value.bytes))
    }
}

pub(crate) fn decision_rank(decision: Decision) -> i64 {
    match decision {
        Decision::Approve => 0,
        Decision::Review => 1,
        Decision::Freeze => 2,
    }
}

/// Moves the session to the event's status if the event's observation is the greatest seen
/// (body timestamp, then lifecycle stage, then the status text, as the pipeline handed them in
/// `session_status` — compared here as one SQLite row value, in one statement).
fn advance_session(
    conn: &Connection,
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
    let stage = i64::from(status.stage().get());
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
                    event.id.as_str(),
                    event.vendor_data,
                    event.received_at,
                    assessment_id,
                ],
                |r| r.get(0),
            )
        })
        .map_err(map_err)?;
    Ok(current_event == event.id.as_str())
}

pub(crate) fn unavailable(reason: &str) -> StoreError {
    StoreError::Unavailable(Box::new(std::io::Error::other(reason.to_owned())))
}

/// What a retry may fix is `Unavailable`: busy, locked, out of memory or disk, I/O.
pub(crate) fn map_err(e: rusqlite::Error) -> StoreError {
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

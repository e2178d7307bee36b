//! The embedded SQLite backend of [`riskhook_store::Store`]: the default, needing no set-up.
//!
//! Durability: WAL journal with `synchronous = FULL`, so a transaction is on disk (WAL fsynced)
//! before `COMMIT` returns, and therefore before riskhook answers 2xx. Writes go through a pool
//! of one connection, because SQLite has one writer at a time anyway and a single writer never
//! meets `SQLITE_BUSY` on lock upgrade; reads use their own pool and never wait for writers
//! (WAL readers see the last commit).
//!
//! This crate owns the SQL and the migrations (`migrations/`, embedded into the binary and
//! applied on [`SqliteStore::open`]).

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use riskhook_core::assessment::{Decision, UserStatus};
use riskhook_didit::payload::SessionStatus;
use riskhook_store::{
    AssessmentRecord, EventRecord, IngestOutcome, NewAssessment, SessionRecord, Store, StoreError,
    UserRecord,
};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqlStr, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

/// Every event row is stored under this provider name; the unique keys are per provider.
const PROVIDER: &str = "didit";

/// `SELECT <every event column> FROM events <condition>`, built at compile time so the query
/// stays a `&'static str`.
macro_rules! select_events {
    ($condition:literal) => {
        concat!(
            "SELECT id, received_at, webhook_type, delivery_key, content_key, subject_id, ",
            "session_id, status, event_timestamp, vendor_data, key_id, scheme, body_trusted, raw ",
            "FROM events ",
            $condition
        )
    };
}

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// One connection: all writes are serialised here.
    writer: SqlitePool,
    /// Several read-only connections (the writer itself for an in-memory database, which
    /// exists only inside its one connection).
    reader: SqlitePool,
    /// The background checkpointer's connection (none for an in-memory database).
    checkpointer: Option<SqlitePool>,
    /// Deliveries waiting for the writer task, which commits them in batches.
    jobs: mpsc::Sender<WriteJob>,
}

impl std::fmt::Debug for WriteJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteJob")
            .field("event", &self.event)
            .finish_non_exhaustive()
    }
}

/// The migrations, embedded so the binary needs no files beside it.
fn migrator() -> Migrator {
    let migration = |version, description, sql| {
        Migration::new(
            version,
            Cow::Borrowed(description),
            MigrationType::Simple,
            SqlStr::from_static(sql),
            false,
        )
    };
    Migrator::with_migrations(vec![
        migration(
            1,
            "events and sessions",
            include_str!("../migrations/0001_events_and_sessions.sql"),
        ),
        migration(
            2,
            "assessments and users",
            include_str!("../migrations/0002_assessments_and_users.sql"),
        ),
        migration(
            3,
            "session stage",
            include_str!("../migrations/0003_session_stage.sql"),
        ),
    ])
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path`, `sqlite:path` or
    /// `sqlite::memory:`) and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens without migrating: for `riskhook migrate` to report what it does.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(other)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .map_err(map_err)?;
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options.clone().read_only(true))
                .await
                .map_err(map_err)?
        };
        let checkpointer = if in_memory {
            None
        } else {
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await
                .map_err(map_err)?;
            tokio::spawn(checkpoint_loop(pool.clone()));
            Some(pool)
        };
        // Bounded: when the disk cannot keep up, requests wait here (and time out as 503)
        // instead of piling up in memory.
        let (jobs, queue) = mpsc::channel(4 * MAX_BATCH);
        // The writer gets a thread and a runtime of its own: on the shared runtime it would
        // wait behind request tasks busy verifying and parsing bodies, and every statement of
        // a batch would pay that wait.
        let pool = writer.clone();
        std::thread::Builder::new()
            .name("riskhook-sqlite-writer".to_owned())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(writer_loop(pool, queue)),
                    Err(e) => tracing::error!(error = %e, "cannot start the database writer"),
                }
            })
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        Ok(Self {
            writer,
            reader,
            checkpointer,
            jobs,
        })
    }

    /// Applies every pending migration. Returns the versions applied now.
    pub async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        let migrator = migrator();
        let before: Vec<i64> = self.applied_versions().await.unwrap_or_default();
        migrator
            .run(&self.writer)
            .await
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        Ok(migrator
            .iter()
            .map(|m| m.version)
            .filter(|v| !before.contains(v))
            .collect())
    }

    async fn applied_versions(&self) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(&self.writer)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| r.try_get::<i64, _>(0).map_err(map_err))
            .collect()
    }

    /// Closes both pools, waiting for connections to be returned: a clean shutdown.
    pub async fn close(&self) {
        if let Some(checkpointer) = &self.checkpointer {
            // Fold the WAL into the database, so the next start has nothing to replay.
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(checkpointer)
                .await
            {
                tracing::warn!(error = %e, "final WAL checkpoint failed");
            }
            checkpointer.close().await;
        }
        self.reader.close().await;
        self.writer.close().await;
    }
}

#[async_trait]
impl Store for SqliteStore {
    #[tracing::instrument(skip_all, fields(event_id = %event.id, webhook_type = %event.webhook_type))]
    async fn ingest(
        &self,
        event: EventRecord,
        assessment: Option<NewAssessment>,
    ) -> Result<IngestOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(WriteJob {
                event,
                assessment,
                reply,
            })
            .await
            .map_err(|_| unavailable("the database writer has stopped"))?;
        answer
            .await
            .map_err(|_| unavailable("the database writer has stopped"))?
    }

    async fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        sqlx::query(select_events!("WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)?
            .map(|row| stored_event(&row))
            .transpose()
    }

    async fn events(
        &self,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError> {
        sqlx::query(select_events!(
            "WHERE seq > COALESCE((SELECT seq FROM events WHERE id = ?), 0) ORDER BY seq LIMIT ?"
        ))
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?
        .iter()
        .map(stored_event)
        .collect()
    }

    async fn count_events(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&self.reader)
            .await
            .map_err(map_err)?;
        u64::try_from(count).map_err(|_| StoreError::Corrupt("negative event count".into()))
    }

    async fn session(&self, session_id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT s.session_id, s.status, s.status_timestamp, s.status_event_id, s.vendor_data,
                    (SELECT COUNT(*) FROM events e WHERE e.session_id = s.session_id),
                    s.current_assessment_id
             FROM sessions s WHERE s.session_id = ?",
        )
        .bind(session_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(SessionRecord {
            session_id: row.try_get(0).map_err(map_err)?,
            status: SessionStatus::parse(row.try_get::<&str, _>(1).map_err(map_err)?),
            status_timestamp: row.try_get(2).map_err(map_err)?,
            status_event_id: row.try_get(3).map_err(map_err)?,
            vendor_data: row.try_get(4).map_err(map_err)?,
            event_count: row.try_get(5).map_err(map_err)?,
            current_assessment_id: row.try_get(6).map_err(map_err)?,
        }))
    }

    async fn user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT user_id, status, score, decision, current_assessment_id, ever_frozen,
                    first_seen_at, updated_at
             FROM users WHERE user_id = ?",
        )
        .bind(user_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let sessions: Vec<String> = sqlx::query_scalar(
            "SELECT session_id FROM sessions WHERE vendor_data = ? ORDER BY first_seen_at, session_id",
        )
        .bind(user_id)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        let status: &str = row.try_get(1).map_err(map_err)?;
        Ok(Some(UserRecord {
            user_id: row.try_get(0).map_err(map_err)?,
            status: UserStatus::parse(status)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown user status `{status}`")))?,
            score: row.try_get(2).map_err(map_err)?,
            decision: parse_decision(row.try_get::<&str, _>(3).map_err(map_err)?)?,
            current_assessment_id: row.try_get(4).map_err(map_err)?,
            ever_frozen: row.try_get(5).map_err(map_err)?,
            sessions,
            first_seen_at: row.try_get(6).map_err(map_err)?,
            updated_at: row.try_get(7).map_err(map_err)?,
        }))
    }

    async fn user_assessments(
        &self,
        user_id: &str,
        limit: u32,
    ) -> Result<Vec<AssessmentRecord>, StoreError> {
        sqlx::query(
            "SELECT * FROM assessments WHERE user_id = ?
             ORDER BY evaluated_at DESC, id DESC LIMIT ?",
        )
        .bind(user_id)
        .bind(limit)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?
        .iter()
        .map(assessment_record)
        .collect()
    }

    async fn assessment(&self, id: &str) -> Result<Option<AssessmentRecord>, StoreError> {
        sqlx::query("SELECT * FROM assessments WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)?
            .map(|row| assessment_record(&row))
            .transpose()
    }

    async fn close(&self) {
        SqliteStore::close(self).await;
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

/// One delivery's effects inside the batch's transaction.
async fn apply(
    conn: &mut SqliteConnection,
    event: &EventRecord,
    assessment: Option<&NewAssessment>,
) -> Result<IngestOutcome, StoreError> {
    // `WHERE NOT EXISTS` rather than relying on the conflict alone: a conflicting
    // AUTOINCREMENT insert still bumps `sqlite_sequence`, which would make every duplicate
    // write (and fsync) the database for nothing. The unique indexes stay the guarantee.
    let inserted = sqlx::query(
        "INSERT INTO events (id, provider, received_at, webhook_type, delivery_key, content_key,
                             subject_id, session_id, status, event_timestamp, vendor_data,
                             key_id, scheme, body_trusted, raw)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15
         WHERE NOT EXISTS (SELECT 1 FROM events
                           WHERE provider = ?2 AND (delivery_key = ?5 OR content_key = ?6))
         ON CONFLICT DO NOTHING",
    )
    .bind(&event.id)
    .bind(PROVIDER)
    .bind(event.received_at)
    .bind(&event.webhook_type)
    .bind(&event.delivery_key)
    .bind(&event.content_key)
    .bind(&event.subject_id)
    .bind(&event.session_id)
    .bind(&event.status)
    .bind(event.event_timestamp)
    .bind(&event.vendor_data)
    .bind(&event.key_id)
    .bind(&event.scheme)
    .bind(event.body_trusted)
    .bind(&event.raw)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?
    .rows_affected();

    if inserted == 0 {
        let existing: String = sqlx::query_scalar(
            "SELECT id FROM events
             WHERE provider = ?1 AND (delivery_key = ?2 OR content_key = ?3)
             ORDER BY seq LIMIT 1",
        )
        .bind(PROVIDER)
        .bind(&event.delivery_key)
        .bind(&event.content_key)
        .fetch_one(&mut *conn)
        .await
        .map_err(map_err)?;
        return Ok(IngestOutcome::Duplicate { id: existing });
    }

    if let Some(assessment) = assessment {
        record_assessment(conn, event, assessment).await?;
    }
    let session_advanced = advance_session(conn, event, assessment.map(|a| a.id.as_str())).await?;
    if let Some(user_id) = &event.vendor_data {
        recompute_user(conn, user_id, event.received_at).await?;
    }
    Ok(IngestOutcome::Accepted {
        id: event.id.clone(),
        session_advanced,
    })
}

/// A delivery waiting for the writer.
struct WriteJob {
    event: EventRecord,
    assessment: Option<NewAssessment>,
    reply: oneshot::Sender<Result<IngestOutcome, StoreError>>,
}

/// How many deliveries one commit carries at most.
const MAX_BATCH: usize = 256;

/// The single writer: takes every delivery waiting, applies them in one transaction, commits
/// once (one fsync for the batch), then answers each. A delivery is
/// answered only after the commit that holds it; if the commit fails, every delivery of the
/// batch gets an error (503 upstream) and Didit retries them.
async fn writer_loop(pool: SqlitePool, mut jobs: mpsc::Receiver<WriteJob>) {
    let mut batch: Vec<WriteJob> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = jobs.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let outcomes = commit_batch(&pool, &batch).await;
        #[allow(clippy::cast_precision_loss)]
        {
            metrics::histogram!("riskhook_commit_batch_size").record(batch.len() as f64);
        }
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

async fn commit_batch(
    pool: &SqlitePool,
    batch: &[WriteJob],
) -> Result<Vec<Result<IngestOutcome, StoreError>>, StoreError> {
    // The fast way: the whole batch in one transaction. A failing delivery is rare (the
    // database itself failing is the usual cause, and then every delivery fails anyway), so
    // rather than a savepoint per delivery — two more statements each — a failure rolls the
    // batch back and it is replayed one transaction per delivery, so that only the failing
    // one is refused.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        match apply(&mut tx, &job.event, job.assessment.as_ref()).await {
            Ok(outcome) => outcomes.push(Ok(outcome)),
            Err(e) => {
                tracing::warn!(error = %e, "a delivery failed inside a batch; replaying the batch one by one");
                tx.rollback().await.map_err(map_err)?;
                return commit_one_by_one(pool, batch).await;
            }
        }
    }
    tx.commit().await.map_err(map_err)?;
    Ok(outcomes)
}

async fn commit_one_by_one(
    pool: &SqlitePool,
    batch: &[WriteJob],
) -> Result<Vec<Result<IngestOutcome, StoreError>>, StoreError> {
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        match apply(&mut tx, &job.event, job.assessment.as_ref()).await {
            Ok(outcome) => {
                tx.commit().await.map_err(map_err)?;
                outcomes.push(Ok(outcome));
            }
            Err(e) => {
                tx.rollback().await.map_err(map_err)?;
                outcomes.push(Err(e));
            }
        }
    }
    Ok(outcomes)
}

/// Checkpoints the WAL into the database in the background, PASSIVE so the writer never waits
/// for it. SQLite's own automatic checkpoint (every 1000 pages) still runs inside commits, on
/// the writer's time; keeping the WAL short from here leaves it less to copy. (Turning the
/// automatic one off was measured: the WAL then grows under sustained load and p99 and memory
/// get far worse.) Ends when the store is closed.
async fn checkpoint_loop(pool: SqlitePool) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        let started = std::time::Instant::now();
        match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            Ok(_) => {
                metrics::histogram!("riskhook_checkpoint_seconds")
                    .record(started.elapsed().as_secs_f64());
            }
            Err(e) if pool.is_closed() => {
                let _ = e;
                return;
            }
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; will retry"),
        }
    }
}

fn unavailable(reason: &str) -> StoreError {
    StoreError::Unavailable(Box::new(std::io::Error::other(reason.to_owned())))
}

async fn record_assessment(
    conn: &mut SqliteConnection,
    event: &EventRecord,
    assessment: &NewAssessment,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO assessments (id, event_id, session_id, user_id, policy_hash, score, decision,
                                  decision_rank, evaluated_at, created_at, assessment)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&assessment.id)
    .bind(&event.id)
    .bind(&event.session_id)
    .bind(&event.vendor_data)
    .bind(&assessment.policy_hash)
    .bind(assessment.score)
    .bind(assessment.decision.as_str())
    .bind(decision_rank(assessment.decision))
    .bind(assessment.evaluated_at)
    .bind(event.received_at)
    .bind(&assessment.json)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

fn decision_rank(decision: Decision) -> i64 {
    match decision {
        Decision::Approve => 0,
        Decision::Review => 1,
        Decision::Freeze => 2,
    }
}

/// Recomputes a user from facts that do not depend on arrival order: the current assessments
/// of their sessions (each the assessment of the session's greatest observation) and whether
/// any of their assessments ever decided freeze.
async fn recompute_user(
    conn: &mut SqliteConnection,
    user_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    // One statement for both facts: every statement is a round trip to SQLite's thread.
    let row = sqlx::query(
        "SELECT EXISTS (SELECT 1 FROM assessments WHERE user_id = ?1 AND decision = 'freeze'),
                current.id, current.score, current.decision
         FROM (SELECT 1) AS one
         LEFT JOIN (SELECT a.id, a.score, a.decision
                    FROM sessions s JOIN assessments a ON a.id = s.current_assessment_id
                    WHERE s.vendor_data = ?1
                    ORDER BY a.decision_rank DESC, a.score DESC, a.evaluated_at DESC, s.session_id
                    LIMIT 1) AS current ON 1",
    )
    .bind(user_id)
    .fetch_one(&mut *conn)
    .await
    .map_err(map_err)?;
    let ever_frozen: bool = row.try_get(0).map_err(map_err)?;
    let (assessment_id, score, decision) =
        match row.try_get::<Option<String>, _>(1).map_err(map_err)? {
            Some(id) => (
                Some(id),
                row.try_get::<i64, _>(2).map_err(map_err)?,
                parse_decision(row.try_get::<&str, _>(3).map_err(map_err)?)?,
            ),
            None => (None, 0, Decision::Approve),
        };
    let status = UserStatus::derive(ever_frozen, decision);
    sqlx::query(
        "INSERT INTO users (user_id, status, score, decision, current_assessment_id, ever_frozen,
                            first_seen_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
         ON CONFLICT (user_id) DO UPDATE SET
            status = excluded.status, score = excluded.score, decision = excluded.decision,
            current_assessment_id = excluded.current_assessment_id,
            ever_frozen = excluded.ever_frozen, updated_at = excluded.updated_at",
    )
    .bind(user_id)
    .bind(status.as_str())
    .bind(score)
    .bind(decision.as_str())
    .bind(assessment_id)
    .bind(ever_frozen)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

fn parse_decision(s: &str) -> Result<Decision, StoreError> {
    Decision::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown decision `{s}`")))
}

fn assessment_record(row: &SqliteRow) -> Result<AssessmentRecord, StoreError> {
    Ok(AssessmentRecord {
        id: row.try_get("id").map_err(map_err)?,
        event_id: row.try_get("event_id").map_err(map_err)?,
        session_id: row.try_get("session_id").map_err(map_err)?,
        user_id: row.try_get("user_id").map_err(map_err)?,
        policy_hash: row.try_get("policy_hash").map_err(map_err)?,
        score: row.try_get("score").map_err(map_err)?,
        decision: parse_decision(row.try_get::<&str, _>("decision").map_err(map_err)?)?,
        evaluated_at: row.try_get("evaluated_at").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
        json: row.try_get("assessment").map_err(map_err)?,
    })
}

/// Moves the session to the event's status if the event's observation is the greatest seen
/// (`riskhook_didit::session::Observation`: body timestamp, then lifecycle stage, then the
/// status text — compared here as one SQLite row value, in one statement).
async fn advance_session(
    conn: &mut SqliteConnection,
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
    let current_event: String = sqlx::query_scalar(
        "INSERT INTO sessions (session_id, status, status_timestamp, status_stage, status_event_id,
                               vendor_data, first_seen_at, updated_at, current_assessment_id)
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
    .bind(session_id)
    .bind(status.as_str())
    .bind(timestamp)
    .bind(stage)
    .bind(&event.id)
    .bind(&event.vendor_data)
    .bind(event.received_at)
    .bind(assessment_id)
    .fetch_one(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(current_event == event.id)
}

fn stored_event(row: &SqliteRow) -> Result<EventRecord, StoreError> {
    Ok(EventRecord {
        id: row.try_get("id").map_err(map_err)?,
        received_at: row.try_get("received_at").map_err(map_err)?,
        webhook_type: row.try_get("webhook_type").map_err(map_err)?,
        delivery_key: row.try_get("delivery_key").map_err(map_err)?,
        content_key: row.try_get("content_key").map_err(map_err)?,
        subject_id: row.try_get("subject_id").map_err(map_err)?,
        session_id: row.try_get("session_id").map_err(map_err)?,
        status: row.try_get("status").map_err(map_err)?,
        event_timestamp: row.try_get("event_timestamp").map_err(map_err)?,
        vendor_data: row.try_get("vendor_data").map_err(map_err)?,
        key_id: row.try_get("key_id").map_err(map_err)?,
        scheme: row.try_get("scheme").map_err(map_err)?,
        body_trusted: row.try_get("body_trusted").map_err(map_err)?,
        raw: row.try_get("raw").map_err(map_err)?,
    })
}

fn other(e: sqlx::Error) -> StoreError {
    StoreError::Other(Box::new(e))
}

/// Translates driver errors at the boundary: what a retry may fix is `Unavailable`.
fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Box::new(e)),
        sqlx::Error::Database(db) => {
            // SQLITE_BUSY(5), LOCKED(6), NOMEM(7), READONLY(8), IOERR(10), FULL(13), CANTOPEN(14),
            // with their extended codes in the high bits.
            let primary = db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .map(|c| c & 0xff);
            if matches!(primary, Some(5 | 6 | 7 | 8 | 10 | 13 | 14)) {
                StoreError::Unavailable(Box::new(e))
            } else {
                StoreError::Other(Box::new(e))
            }
        }
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::TypeNotFound { .. } => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Other(Box::new(e)),
    }
}

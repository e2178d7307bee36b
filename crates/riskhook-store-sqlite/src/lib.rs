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
use riskhook_didit::session::Observation;
use riskhook_store::{
    AssessmentRecord, EventRecord, IngestOutcome, NewAssessment, SessionRecord, Store, StoreError,
    UserRecord,
};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqlStr};

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
                .connect_with(options.read_only(true))
                .await
                .map_err(map_err)?
        };
        Ok(Self { writer, reader })
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
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        let inserted = sqlx::query(
            "INSERT INTO events (id, provider, received_at, webhook_type, delivery_key, content_key,
                                 subject_id, session_id, status, event_timestamp, vendor_data,
                                 key_id, scheme, body_trusted, raw)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
        .execute(&mut *tx)
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
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
            tx.rollback().await.map_err(map_err)?;
            return Ok(IngestOutcome::Duplicate { id: existing });
        }

        if let Some(assessment) = &assessment {
            record_assessment(&mut tx, &event, assessment).await?;
        }
        let session_advanced =
            advance_session(&mut tx, &event, assessment.as_ref().map(|a| a.id.as_str())).await?;
        if let Some(user_id) = &event.vendor_data {
            recompute_user(&mut tx, user_id, event.received_at).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(IngestOutcome::Accepted {
            id: event.id,
            session_advanced,
        })
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

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

async fn record_assessment(
    tx: &mut Tx,
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
    .execute(&mut **tx)
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
async fn recompute_user(tx: &mut Tx, user_id: &str, now: i64) -> Result<(), StoreError> {
    let current = sqlx::query(
        "SELECT a.id, a.score, a.decision
         FROM sessions s JOIN assessments a ON a.id = s.current_assessment_id
         WHERE s.vendor_data = ?
         ORDER BY a.decision_rank DESC, a.score DESC, a.evaluated_at DESC, s.session_id
         LIMIT 1",
    )
    .bind(user_id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(map_err)?;
    let ever_frozen: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM assessments WHERE user_id = ? AND decision = 'freeze')",
    )
    .bind(user_id)
    .fetch_one(&mut **tx)
    .await
    .map_err(map_err)?;
    let (assessment_id, score, decision) = match current {
        Some(row) => (
            Some(row.try_get::<String, _>(0).map_err(map_err)?),
            row.try_get::<i64, _>(1).map_err(map_err)?,
            parse_decision(row.try_get::<&str, _>(2).map_err(map_err)?)?,
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
    .execute(&mut **tx)
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

/// Moves the session to the event's status if the event's observation is the greatest seen.
async fn advance_session(
    tx: &mut Tx,
    event: &EventRecord,
    assessment_id: Option<&str>,
) -> Result<bool, StoreError> {
    let (Some(session_id), Some(status), Some(timestamp)) =
        (&event.session_id, &event.status, event.event_timestamp)
    else {
        return Ok(false);
    };
    let observed = Observation::new(timestamp, SessionStatus::parse(status));
    let current = sqlx::query("SELECT status, status_timestamp FROM sessions WHERE session_id = ?")
        .bind(session_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_err)?;
    match current {
        None => {
            sqlx::query(
                "INSERT INTO sessions (session_id, status, status_timestamp, status_event_id,
                                       vendor_data, first_seen_at, updated_at,
                                       current_assessment_id)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(session_id)
            .bind(status)
            .bind(timestamp)
            .bind(&event.id)
            .bind(&event.vendor_data)
            .bind(event.received_at)
            .bind(event.received_at)
            .bind(assessment_id)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
            Ok(true)
        }
        Some(row) => {
            let current = Observation::new(
                row.try_get(1).map_err(map_err)?,
                SessionStatus::parse(row.try_get::<&str, _>(0).map_err(map_err)?),
            );
            let advanced = observed.supersedes(&current);
            if advanced
                && !riskhook_didit::session::is_documented_transition(
                    &current.status,
                    &observed.status,
                )
            {
                tracing::warn!(
                    session_id,
                    from = current.status.as_str(),
                    to = observed.status.as_str(),
                    "undocumented session transition applied: the event is newer"
                );
            }
            sqlx::query(
                "UPDATE sessions SET
                    status = CASE WHEN ?2 THEN ?3 ELSE status END,
                    status_timestamp = CASE WHEN ?2 THEN ?4 ELSE status_timestamp END,
                    status_event_id = CASE WHEN ?2 THEN ?5 ELSE status_event_id END,
                    current_assessment_id = CASE WHEN ?2 THEN ?8 ELSE current_assessment_id END,
                    vendor_data = COALESCE(vendor_data, ?6),
                    updated_at = ?7
                 WHERE session_id = ?1",
            )
            .bind(session_id)
            .bind(advanced)
            .bind(status)
            .bind(timestamp)
            .bind(&event.id)
            .bind(&event.vendor_data)
            .bind(event.received_at)
            .bind(assessment_id)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
            Ok(advanced)
        }
    }
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

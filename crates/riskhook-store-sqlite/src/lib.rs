//! The embedded SQLite backend of [`riskhook_store::Store`]: the default, needing no set-up.
//!
//! Durability: WAL journal with `synchronous = FULL`, so a transaction is on disk (WAL fsynced)
//! before `COMMIT` returns, and therefore before riskhook answers 2xx. Every write goes through
//! one writer thread (`writer`) that commits deliveries in batches (group commit); SQLite has
//! one writer at a time anyway, and a single writer never meets `SQLITE_BUSY` on lock upgrade.
//! Reads use their own pool of sqlx connections and never wait for the writer (WAL readers see
//! the last commit). Checkpoints run on a thread of their own (`checkpointer`), in small
//! passes while the writer goes on committing, with the WAL's length capped; `close` folds
//! what is left, so the next start has nothing to replay.
//!
//! This crate owns the SQL and the migrations (`migrations/`, embedded into the binary and
//! applied on [`SqliteStore::open`]).

mod bulk;
mod checkpointer;
mod commands;
mod effects;
mod packed;
mod reads;
mod writer;

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use riskhook_core::assessment::{Decision, UserStatus};
use riskhook_core::audit::AuditKey;
use riskhook_core::review::ActionStatus;
use riskhook_store::rulebook::Touched;
use riskhook_store::{
    ActionRecord, ApiKeyRecord, AssessmentRecord, Attempt, AuditRecord, CaseFilter, CaseRecord,
    Claim, CommandError, DecideAction, DeliveryFilter, DeliveryRecord, EndpointRecord, EventId,
    EventRecord, IngestOutcome, NewApiKey, NewAssessment, NewAuditEntry, ReplayFilter,
    ReplayRecord, ResolveCase, ReviewOutcome, SessionRecord, SessionStatus, ShadowRecord, Stage,
    Store, StoreError, UiSessionRecord, UserAction, UserRecord, VerdictRecord,
};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqlStr};
use tokio::sync::{mpsc, oneshot};
use writer::WriteJob;

/// Every event row is stored under this provider name; the unique keys are per provider.
pub(crate) const PROVIDER: &str = "didit";

/// `SELECT <every event column> FROM events <condition>`, built at compile time so the query
/// stays a `&'static str`.
macro_rules! select_events {
    ($condition:literal) => {
        concat!(
            "SELECT id, received_at, webhook_type, delivery_key, content_key, subject_id, ",
            "session_id, status, event_timestamp, vendor_data, key_id, scheme, body_trusted, raw, ",
            "raw_encoding ",
            "FROM events ",
            $condition
        )
    };
}

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// One sqlx connection for migrations, the readiness check and the final checkpoint:
    /// never for deliveries, which only the writer thread writes.
    admin: SqlitePool,
    /// Several read-only connections.
    reader: SqlitePool,
    /// The backtests' own read-only connection (`bulk`).
    bulk: Arc<bulk::BulkReader>,
    /// Deliveries waiting for the writer thread, which commits them in batches.
    jobs: mpsc::Sender<writer::Job>,
    /// For `sqlite::memory:`: the private temporary file standing in for it, deleted when the
    /// last clone of the store is dropped.
    _temporary: Option<Arc<TemporaryDatabase>>,
}

/// The file behind `sqlite::memory:`. `TempPath` removes the database file alone; SQLite leaves
/// its `-wal` and `-shm` beside it when a connection outlives a clean close, so those go too.
#[derive(Debug)]
struct TemporaryDatabase(tempfile::TempPath);

impl Drop for TemporaryDatabase {
    fn drop(&mut self) {
        for suffix in ["-wal", "-shm"] {
            let mut name = self.0.as_os_str().to_owned();
            name.push(suffix);
            // Absent when SQLite removed them itself; nothing else to do either way.
            let _ = std::fs::remove_file(name);
        }
    }
}

/// Every migration, in order.
fn migrations() -> Vec<Migration> {
    let migration = |version, description, sql| {
        Migration::new(
            version,
            Cow::Borrowed(description),
            MigrationType::Simple,
            SqlStr::from_static(sql),
            false,
        )
    };
    vec![
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
        migration(
            4,
            "review, audit, keys and outbox",
            include_str!("../migrations/0004_review_audit_outbox.sql"),
        ),
        migration(
            5,
            "fewer index writes",
            include_str!("../migrations/0005_fewer_index_writes.sql"),
        ),
        migration(
            6,
            "key principals",
            include_str!("../migrations/0006_key_principals.sql"),
        ),
        migration(
            7,
            "keyed audit chain, appends only at the head",
            include_str!("../migrations/0007_audit_keyed_and_head_only.sql"),
        ),
        migration(
            8,
            "workbench sessions",
            include_str!("../migrations/0008_workbench_sessions.sql"),
        ),
        migration(
            9,
            "shadow assessments",
            include_str!("../migrations/0009_shadow_assessments.sql"),
        ),
        migration(
            10,
            "signal snapshots",
            include_str!("../migrations/0010_signal_snapshots.sql"),
        ),
        migration(
            11,
            "packed bodies and assessments",
            include_str!("../migrations/0011_packed_values.sql"),
        ),
    ]
}

fn migrator() -> Migrator {
    Migrator::with_migrations(migrations())
}

/// Makes the database file readable by its owner only before SQLite opens it: it holds KYC
/// data. SQLite gives the `-wal` and `-shm` files it creates the database file's mode, so
/// creating the database `0600` covers all three; files left with wider modes (by versions
/// before this one, or by hand) are narrowed to `0600`.
fn private_files(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        // A missing directory or another problem: let SQLite report it in its own words.
        Err(_) => return Ok(()),
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = std::path::Path::new(&name);
        let Ok(meta) = std::fs::metadata(file) else {
            continue;
        };
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
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
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        // The writer thread owns a connection of its own, and an in-memory database lives
        // inside a single connection; so `sqlite::memory:` becomes a private temporary file,
        // deleted with the store: nothing survives a restart, as that URL promises.
        let (options, temporary) = if in_memory {
            let path = tempfile::Builder::new()
                .prefix("riskhook-memory-")
                .suffix(".db")
                .tempfile()
                .map_err(|e| StoreError::Unavailable(Box::new(e)))?
                .into_temp_path();
            (
                SqliteConnectOptions::new().filename(&path),
                Some(Arc::new(TemporaryDatabase(path))),
            )
        } else {
            (SqliteConnectOptions::from_str(url).map_err(other)?, None)
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        if temporary.is_none() {
            private_files(options.get_filename()).map_err(|e| StoreError::Other(Box::new(e)))?;
        }
        let admin = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .map_err(map_err)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone().read_only(true))
            .await
            .map_err(map_err)?;
        let jobs = writer::spawn(options.get_filename())?;
        Ok(Self {
            admin,
            reader,
            bulk: bulk::BulkReader::new(options.get_filename().to_path_buf()),
            jobs,
            _temporary: temporary,
        })
    }

    /// Applies every pending migration. Returns the versions applied now.
    pub async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        let migrator = migrator();
        let before: Vec<i64> = self.applied_versions().await.unwrap_or_default();
        let pending = migrator
            .iter()
            .map(|m| m.version)
            .filter(|v| !before.contains(v))
            .collect();
        riskhook_store::apply_migrations(pending, std::time::Instant::now, async {
            migrator
                .run(&self.admin)
                .await
                .map_err(|e| StoreError::Other(Box::new(e)))
        })
        .await
    }

    async fn applied_versions(&self) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(&self.admin)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| r.try_get::<i64, _>(0).map_err(map_err))
            .collect()
    }

    /// Runs `f` on the writer thread in a transaction of its own: committed when it returns
    /// `Ok`, rolled back otherwise.
    async fn command<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, CommandError> + Send + 'static,
    ) -> Result<T, CommandError> {
        let (reply, answer) = oneshot::channel();
        let job = writer::Job::Command(Box::new(move |connection: &mut rusqlite::Connection| {
            let result = (|| {
                let tx = connection
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(|e| CommandError::Store(writer::map_err(e)))?;
                let out = f(&tx)?;
                tx.commit()
                    .map_err(|e| CommandError::Store(writer::map_err(e)))?;
                Ok(out)
            })();
            let _ = reply.send(result);
        }));
        self.jobs
            .send(job)
            .await
            .map_err(|_| writer::unavailable("the database writer has stopped"))?;
        answer
            .await
            .map_err(|_| writer::unavailable("the database writer has stopped"))?
    }

    /// Reads back what a review command touched.
    async fn review_outcome(
        &self,
        Touched {
            user_id,
            case_id,
            action_id,
        }: Touched,
    ) -> Result<ReviewOutcome, CommandError> {
        let user = self
            .user(&user_id)
            .await?
            .ok_or_else(|| CommandError::not_found("user", &user_id))?;
        let case = match case_id {
            Some(id) => reads::case(&self.reader, &id).await?,
            None => None,
        };
        let action = match action_id {
            Some(id) => reads::action(&self.reader, &id).await?,
            None => None,
        };
        Ok(ReviewOutcome { user, case, action })
    }

    /// Closes both pools, waiting for connections to be returned: a clean shutdown.
    pub async fn close(&self) {
        // Fold the WAL into the database, so the next start has nothing to replay. A pass of
        // the checkpointer thread may hold the checkpoint lock (SQLite then answers "busy" at
        // once, without waiting): retry for a while.
        for attempt in 1..=50 {
            match sqlx::query_scalar::<_, i64>("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&self.admin)
                .await
            {
                Ok(0) => break,
                Ok(_) if attempt < 50 => tokio::time::sleep(Duration::from_millis(20)).await,
                Ok(_) => tracing::warn!("final WAL checkpoint: the database stayed busy"),
                Err(e) => {
                    tracing::warn!(error = %e, "final WAL checkpoint failed");
                    break;
                }
            }
        }
        self.reader.close().await;
        self.admin.close().await;
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
            .send(writer::Job::Ingest(WriteJob::new(event, assessment, reply)))
            .await
            .map_err(|_| writer::unavailable("the database writer has stopped"))?;
        answer
            .await
            .map_err(|_| writer::unavailable("the database writer has stopped"))?
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

    async fn find_event(
        &self,
        delivery_key: Option<&str>,
        content_key: &str,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT id FROM events
             WHERE provider = ?1 AND (delivery_key = ?2 OR content_key = ?3)
             LIMIT 1",
        )
        .bind(PROVIDER)
        .bind(delivery_key)
        .bind(content_key)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)
    }

    async fn unfinished_sessions(
        &self,
        before: i64,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let [a, b, c, d, e, f] = riskhook_store::TERMINAL_STATUSES;
        let rows = sqlx::query(
            "SELECT s.session_id, s.status, s.status_timestamp, s.status_event_id, s.vendor_data,
                    (SELECT COUNT(*) FROM events e WHERE e.session_id = s.session_id),
                    s.current_assessment_id, s.status_stage
             FROM sessions s
             WHERE s.status NOT IN (?1, ?2, ?3, ?4, ?5, ?6) AND s.status_timestamp < ?7
             ORDER BY s.status_timestamp, s.session_id
             LIMIT ?8",
        )
        .bind(a)
        .bind(b)
        .bind(c)
        .bind(d)
        .bind(e)
        .bind(f)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter().map(session_record).collect()
    }

    async fn session(&self, session_id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT s.session_id, s.status, s.status_timestamp, s.status_event_id, s.vendor_data,
                    (SELECT COUNT(*) FROM events e WHERE e.session_id = s.session_id),
                    s.current_assessment_id, s.status_stage
             FROM sessions s WHERE s.session_id = ?",
        )
        .bind(session_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        row.as_ref().map(session_record).transpose()
    }

    async fn user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT user_id, status, score, decision, current_assessment_id, ever_frozen,
                    first_seen_at, updated_at, verdict, version
             FROM users WHERE user_id = ?",
        )
        .bind(user_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let sessions: Vec<String> = sqlx::query_scalar(
            // Ordered by the session's earliest event time, a fact of the set of its events,
            // so the list is the same whatever order the events arrived in.
            "SELECT s.session_id FROM sessions s WHERE s.vendor_data = ?
             ORDER BY (SELECT MIN(e.event_timestamp) FROM events e WHERE e.session_id = s.session_id),
                      s.session_id",
        )
        .bind(user_id)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        let verdict: Option<&str> = row.try_get(8).map_err(map_err)?;
        Ok(Some(UserRecord {
            user_id: row.try_get(0).map_err(map_err)?,
            status: parse_status(row.try_get(1).map_err(map_err)?)?,
            score: row.try_get(2).map_err(map_err)?,
            decision: parse_decision(row.try_get::<&str, _>(3).map_err(map_err)?)?,
            current_assessment_id: row.try_get(4).map_err(map_err)?,
            ever_frozen: row.try_get(5).map_err(map_err)?,
            verdict: verdict.map(parse_status).transpose()?,
            version: row.try_get(9).map_err(map_err)?,
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

    async fn user_events(&self, user_id: &str, limit: u32) -> Result<Vec<EventRecord>, StoreError> {
        sqlx::query(select_events!(
            "WHERE vendor_data = ? ORDER BY event_timestamp, seq LIMIT ?"
        ))
        .bind(user_id)
        .bind(limit)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?
        .iter()
        .map(stored_event)
        .collect()
    }

    async fn cases(&self, filter: &CaseFilter) -> Result<Vec<CaseRecord>, StoreError> {
        reads::cases(&self.reader, filter).await
    }

    async fn count_cases(&self, filter: &CaseFilter) -> Result<u64, StoreError> {
        reads::count_cases(&self.reader, filter).await
    }

    async fn replay_events(&self, filter: &ReplayFilter) -> Result<Vec<ReplayRecord>, StoreError> {
        bulk::replay_events(&self.bulk, filter).await
    }

    async fn verdicts(&self) -> Result<Vec<VerdictRecord>, StoreError> {
        reads::verdicts(&self.reader).await
    }

    async fn shadow_assessments(
        &self,
        shadow_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ShadowRecord>, StoreError> {
        reads::shadow_assessments(&self.reader, shadow_id, after, limit).await
    }

    async fn case(&self, id: &str) -> Result<Option<CaseRecord>, StoreError> {
        reads::case(&self.reader, id).await
    }

    async fn claim_case(
        &self,
        id: &str,
        actor: &str,
        now: i64,
    ) -> Result<CaseRecord, CommandError> {
        let (case_id, actor_owned) = (id.to_owned(), actor.to_owned());
        self.command(move |c| commands::claim_case(c, &case_id, &actor_owned, now))
            .await?;
        reads::case(&self.reader, id)
            .await?
            .ok_or_else(|| CommandError::not_found("case", id))
    }

    async fn resolve_case(&self, command: ResolveCase) -> Result<ReviewOutcome, CommandError> {
        let touched = self
            .command(move |c| commands::resolve_case(c, &command))
            .await?;
        self.review_outcome(touched).await
    }

    async fn act_on_user(&self, command: UserAction) -> Result<ReviewOutcome, CommandError> {
        let touched = self
            .command(move |c| commands::act_on_user(c, &command))
            .await?;
        self.review_outcome(touched).await
    }

    async fn decide_action(&self, command: DecideAction) -> Result<ReviewOutcome, CommandError> {
        let touched = self
            .command(move |c| commands::decide_action(c, &command))
            .await?;
        self.review_outcome(touched).await
    }

    async fn actions(
        &self,
        status: Option<ActionStatus>,
        limit: u32,
    ) -> Result<Vec<ActionRecord>, StoreError> {
        reads::actions(&self.reader, status, limit).await
    }

    async fn action(&self, id: &str) -> Result<Option<ActionRecord>, StoreError> {
        reads::action(&self.reader, id).await
    }

    async fn audit(&self, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        reads::audit(&self.reader, after, limit).await
    }

    async fn append_audit(&self, entry: NewAuditEntry) -> Result<AuditRecord, StoreError> {
        self.command(move |c| Ok(effects::append_audit(c, entry)?))
            .await
            .map_err(into_store_error)
    }

    async fn last_audit(&self, action: &str) -> Result<Option<AuditRecord>, StoreError> {
        reads::last_audit(&self.reader, action).await
    }

    async fn audit_head(&self) -> Result<Option<AuditRecord>, StoreError> {
        reads::audit_head(&self.reader).await
    }

    async fn set_audit_key(&self, key: AuditKey) -> Result<(), StoreError> {
        // On the writer thread, which does every append: the jobs queued before this one are
        // appended unkeyed, every one after it keyed.
        let (reply, answer) = oneshot::channel();
        let job = writer::Job::Command(Box::new(move |_: &mut rusqlite::Connection| {
            let _ = reply.send(effects::set_audit_key(key));
        }));
        self.jobs
            .send(job)
            .await
            .map_err(|_| writer::unavailable("the database writer has stopped"))?;
        answer
            .await
            .map_err(|_| writer::unavailable("the database writer has stopped"))?
    }

    async fn create_key(
        &self,
        key: NewApiKey,
        actor: &str,
        now: i64,
    ) -> Result<ApiKeyRecord, CommandError> {
        let id = key.id.clone();
        let actor = actor.to_owned();
        self.command(move |c| commands::create_key(c, &key, &actor, now))
            .await?;
        reads::key(&self.reader, &id)
            .await?
            .ok_or_else(|| CommandError::not_found("key", &id))
    }

    async fn keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        reads::keys(&self.reader).await
    }

    async fn revoke_key(
        &self,
        id: &str,
        actor: &str,
        now: i64,
    ) -> Result<ApiKeyRecord, CommandError> {
        let (key_id, actor) = (id.to_owned(), actor.to_owned());
        self.command(move |c| commands::revoke_key(c, &key_id, &actor, now))
            .await?;
        reads::key(&self.reader, id)
            .await?
            .ok_or_else(|| CommandError::not_found("key", id))
    }

    async fn key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        reads::key(&self.reader, id).await
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        reads::key_by_hash(&self.reader, hash).await
    }

    async fn create_ui_session(
        &self,
        session: UiSessionRecord,
        expired_before: i64,
    ) -> Result<(), StoreError> {
        self.command(move |c| commands::create_ui_session(c, &session, expired_before))
            .await
            .map_err(into_store_error)
    }

    async fn ui_session(&self, token_hash: &str) -> Result<Option<UiSessionRecord>, StoreError> {
        reads::ui_session(&self.reader, token_hash).await
    }

    async fn update_ui_session(
        &self,
        token_hash: &str,
        last_seen_at: i64,
        flash: Option<&str>,
    ) -> Result<(), StoreError> {
        let (token_hash, flash) = (token_hash.to_owned(), flash.map(str::to_owned));
        self.command(move |c| {
            commands::update_ui_session(c, &token_hash, last_seen_at, flash.as_deref())
        })
        .await
        .map_err(into_store_error)
    }

    async fn delete_ui_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let token_hash = token_hash.to_owned();
        self.command(move |c| commands::delete_ui_session(c, &token_hash))
            .await
            .map_err(into_store_error)
    }

    async fn sync_endpoints(&self, ids: &[String], now_ms: i64) -> Result<(), StoreError> {
        let ids = ids.to_vec();
        self.command(move |c| commands::sync_endpoints(c, &ids, now_ms))
            .await
            .map_err(into_store_error)
    }

    async fn endpoints(&self) -> Result<Vec<EndpointRecord>, StoreError> {
        reads::endpoints(&self.reader).await
    }

    async fn enable_endpoint(
        &self,
        id: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<EndpointRecord, CommandError> {
        let (endpoint, actor) = (id.to_owned(), actor.to_owned());
        self.command(move |c| commands::enable_endpoint(c, &endpoint, &actor, now_ms))
            .await?;
        reads::endpoint(&self.reader, id)
            .await?
            .ok_or_else(|| CommandError::not_found("endpoint", id))
    }

    async fn claim_deliveries(&self, claim: &Claim) -> Result<Vec<DeliveryRecord>, StoreError> {
        let claim = claim.clone();
        let ids = self
            .command(move |c| {
                commands::claim_deliveries(c, &claim.owner, claim.now, claim.lease, claim.limit)
            })
            .await
            .map_err(into_store_error)?;
        reads::deliveries_by_id(&self.reader, &ids).await
    }

    async fn record_attempt(
        &self,
        id: &str,
        owner: &str,
        attempt: Attempt,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let (id, owner) = (id.to_owned(), owner.to_owned());
        self.command(move |c| commands::record_attempt(c, &id, &owner, &attempt, now_ms))
            .await
            .map_err(into_store_error)
    }

    async fn deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<DeliveryRecord>, StoreError> {
        reads::deliveries(&self.reader, filter).await
    }

    async fn delivery(&self, id: &str) -> Result<Option<DeliveryRecord>, StoreError> {
        reads::delivery(&self.reader, id).await
    }

    async fn retry_delivery(
        &self,
        id: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<DeliveryRecord, CommandError> {
        let (delivery, actor) = (id.to_owned(), actor.to_owned());
        self.command(move |c| commands::retry_delivery(c, &delivery, &actor, now_ms))
            .await?;
        reads::delivery(&self.reader, id)
            .await?
            .ok_or_else(|| CommandError::not_found("delivery", id))
    }

    async fn outbox_backlog(&self) -> Result<u64, StoreError> {
        reads::outbox_backlog(&self.reader).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // Ready means able to take deliveries: the writer thread must be alive too.
        if self.jobs.is_closed() {
            return Err(writer::unavailable("the database writer has stopped"));
        }
        sqlx::query("SELECT 1")
            .execute(&self.admin)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

/// A command that can only fail in the database reports a [`StoreError`].
fn into_store_error(e: CommandError) -> StoreError {
    match e {
        CommandError::Store(e) => e,
        other => StoreError::Other(other.to_string().into()),
    }
}

pub(crate) fn parse_status(s: &str) -> Result<UserStatus, StoreError> {
    UserStatus::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown user status `{s}`")))
}

pub(crate) fn parse_decision(s: &str) -> Result<Decision, StoreError> {
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
        json: assessment_json(row)?,
    })
}

/// `assessments.assessment` as it was made: text when stored plain, else unpacked.
pub(crate) fn assessment_json(row: &SqliteRow) -> Result<String, StoreError> {
    let encoding: i64 = row.try_get("assessment_encoding").map_err(map_err)?;
    if encoding == packed::PLAIN {
        return row.try_get("assessment").map_err(map_err);
    }
    let stored: Vec<u8> = row.try_get("assessment").map_err(map_err)?;
    packed::unpack_text(stored, encoding, "assessments.assessment")
}

fn stored_event(row: &SqliteRow) -> Result<EventRecord, StoreError> {
    Ok(EventRecord {
        id: EventId::parse(row.try_get::<String, _>("id").map_err(map_err)?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        received_at: row.try_get("received_at").map_err(map_err)?,
        webhook_type: row.try_get("webhook_type").map_err(map_err)?,
        delivery_key: row.try_get("delivery_key").map_err(map_err)?,
        content_key: row.try_get("content_key").map_err(map_err)?,
        subject_id: row.try_get("subject_id").map_err(map_err)?,
        session_id: row.try_get("session_id").map_err(map_err)?,
        status: row.try_get("status").map_err(map_err)?,
        // Kept by the session, not the event: see `EventRecord::session_status`.
        session_status: None,
        event_timestamp: row.try_get("event_timestamp").map_err(map_err)?,
        vendor_data: row.try_get("vendor_data").map_err(map_err)?,
        key_id: row.try_get("key_id").map_err(map_err)?,
        scheme: row.try_get("scheme").map_err(map_err)?,
        body_trusted: row.try_get("body_trusted").map_err(map_err)?,
        raw: packed::unpack(
            row.try_get("raw").map_err(map_err)?,
            row.try_get("raw_encoding").map_err(map_err)?,
            "events.raw",
        )?,
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

/// A stored `status_stage`.
fn stage(n: i64) -> Result<Stage, StoreError> {
    u8::try_from(n)
        .map(Stage::new)
        .map_err(|_| StoreError::Corrupt(format!("session stage {n} out of range")))
}

/// A `sessions` row selected as by [`Store::session`], columns in that order.
fn session_record(row: &sqlx::sqlite::SqliteRow) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        session_id: row.try_get(0).map_err(map_err)?,
        status: SessionStatus::new(
            row.try_get::<String, _>(1).map_err(map_err)?,
            stage(row.try_get(7).map_err(map_err)?)?,
        ),
        status_timestamp: row.try_get(2).map_err(map_err)?,
        status_event_id: row.try_get(3).map_err(map_err)?,
        vendor_data: row.try_get(4).map_err(map_err)?,
        event_count: row.try_get(5).map_err(map_err)?,
        current_assessment_id: row.try_get(6).map_err(map_err)?,
    })
}

#[cfg(test)]
mod tests {
    use riskhook_store::NewAuditEntry;
    use rusqlite::types::Value;

    use super::*;

    fn rows(conn: &rusqlite::Connection, sql: &str) -> Vec<Vec<Value>> {
        let mut statement = conn.prepare(sql).expect("prepare");
        let width = statement.column_count();
        statement
            .query_map([], |r| (0..width).map(|i| r.get::<_, Value>(i)).collect())
            .and_then(Iterator::collect)
            .expect("query")
    }

    /// Bodies and assessments are written packed (migration 11) and every read gives back the
    /// bytes made: an event, an assessment, a shadow's view of it, a backtest's unassessed body.
    #[tokio::test]
    async fn bodies_and_assessments_are_stored_packed_and_read_back_as_made() {
        use riskhook_store::conformance::{assessment, event};
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("packed.db").display());
        let store = SqliteStore::open(&url).await.expect("open");
        let body = include_bytes!("../../../fixtures/didit/status-updated-approved-full.json");
        let mut assessed = event(1, "u-p1", "sess-p1", "Approved", 1_780_000_001);
        assessed.raw = body.to_vec();
        let mut made = assessment(1, Decision::Review, 40);
        made.json = serde_json::json!({
            "decision": "review",
            "not_evaluated": (0..30)
                .map(|i| serde_json::json!({"rule_id": format!("rule.{i}"), "error": "reads unchecked signals: x"}))
                .collect::<Vec<_>>(),
        })
        .to_string();
        made.shadows = vec![riskhook_store::NewShadowAssessment {
            shadow_id: "next".to_owned(),
            policy_hash: "p2".to_owned(),
            score: 10,
            decision: Decision::Approve,
            fired: vec![],
        }];
        let json = made.json.clone();
        store.ingest(assessed, Some(made)).await.expect("ingest");
        let mut unassessed = event(2, "u-p2", "sess-p2", "Approved", 1_780_000_002);
        unassessed.raw = body.to_vec();
        store.ingest(unassessed, None).await.expect("ingest");

        let conn = rusqlite::Connection::open(dir.path().join("packed.db")).expect("open");
        for (sql, made) in [
            ("SELECT raw_encoding, length(raw) FROM events", body.len()),
            (
                "SELECT assessment_encoding, length(assessment) FROM assessments",
                json.len(),
            ),
        ] {
            for row in rows(&conn, sql) {
                assert_eq!(row[0], Value::Integer(packed::LZ4), "{sql}");
                let Value::Integer(stored) = row[1] else {
                    panic!("{row:?}")
                };
                assert!(
                    stored * 4 < i64::try_from(made).expect("len") * 3,
                    "{sql}: {stored} of {made}"
                );
            }
        }

        for id in ["evt_00000001", "evt_00000002"] {
            let read = store.event(id).await.expect("read").expect("stored");
            assert_eq!(read.raw, body, "{id}");
        }
        let read = store.assessment("asm_00000001").await.expect("read");
        assert_eq!(read.expect("stored").json, json);
        let shadows = store
            .shadow_assessments("next", None, 10)
            .await
            .expect("read");
        assert_eq!(shadows.len(), 1);
        assert_eq!(shadows[0].assessment, json);
        let replayed = store
            .replay_events(&riskhook_store::ReplayFilter {
                limit: 10,
                ..riskhook_store::ReplayFilter::default()
            })
            .await
            .expect("replay");
        let bodies: Vec<_> = replayed
            .iter()
            .filter_map(|r| r.unassessed.as_ref())
            .collect();
        assert_eq!(bodies.len(), 1);
        assert_eq!(bodies[0].raw, body);
    }

    /// Migration 10's backfill derives from each stored assessment the compact snapshot intake
    /// writes now, and leaves an unassessed event to its body.
    #[tokio::test]
    async fn migration_10_backfills_the_snapshots_intake_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("snap.db").display());
        let store = SqliteStore::open(&url).await.expect("open");
        let expected = riskhook_store::conformance::store_assessed_session_events(&store).await;
        assert_eq!(
            riskhook_store::conformance::replayed_snapshots(&store).await,
            expected
        );
        let sql = include_str!("../migrations/0010_signal_snapshots.sql");
        let backfill = &sql[sql.find("-- The events stored before").expect("backfill")..];
        let conn = rusqlite::Connection::open(dir.path().join("snap.db")).expect("open");
        conn.execute("DELETE FROM signal_snapshots", [])
            .expect("delete");
        // The rows migration 10 found were stored before migration 11 packed assessments.
        let stored: Vec<(String, Vec<u8>, i64)> = conn
            .prepare("SELECT id, CAST(assessment AS BLOB), assessment_encoding FROM assessments")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .and_then(Iterator::collect)
            })
            .expect("assessments");
        for (id, json, encoding) in stored {
            let json = crate::packed::unpack_text(json, encoding, "a").expect("unpack");
            conn.execute(
                "UPDATE assessments SET assessment = ?2, assessment_encoding = 0 WHERE id = ?1",
                rusqlite::params![id, json],
            )
            .expect("plain");
        }
        conn.execute_batch(backfill).expect("backfill");
        assert_eq!(
            riskhook_store::conformance::replayed_snapshots(&store).await,
            expected
        );
    }

    /// Migration 5 rebuilds the audit log: an existing chain must come out byte for byte the
    /// same, and still append-only.
    #[tokio::test]
    async fn migration_5_keeps_the_audit_chain_and_its_guards() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v4.db");
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("pool");
        let upto_4 = migrations()
            .into_iter()
            .filter(|m| m.version <= 4)
            .collect();
        Migrator::with_migrations(upto_4)
            .run(&pool)
            .await
            .expect("migrate to 4");

        let conn = rusqlite::Connection::open(&path).expect("open");
        // Appended as version 4 did (no `keyed` column yet).
        let mut prev = riskhook_core::audit::GENESIS.to_owned();
        for i in 0..3 {
            let entry = NewAuditEntry::system(
                1_700_000_000 + i,
                "test.entry",
                format!("user:u{i}"),
                "{}".to_owned(),
            );
            let r = entry.link(i + 1, format!("aud_{i}"), prev, None);
            conn.execute(
                "INSERT INTO audit_log VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                rusqlite::params![
                    r.seq,
                    r.id,
                    r.at,
                    r.actor,
                    r.action,
                    r.subject,
                    r.reason,
                    r.before,
                    r.after,
                    r.prev_hash,
                    r.hash
                ],
            )
            .expect("append");
            prev = r.hash;
        }
        const CHAIN: &str = "SELECT seq, id, at, actor, action, subject, reason, before, after,
                                    prev_hash, hash FROM audit_log ORDER BY seq";
        let before = rows(&conn, CHAIN);
        assert_eq!(before.len(), 3);

        // Every later migration too (7 adds `keyed`, 0 for these entries).
        migrator().run(&pool).await.expect("migrate to 5 and on");

        assert_eq!(rows(&conn, CHAIN), before);
        assert_eq!(
            rows(&conn, "SELECT keyed FROM audit_log"),
            vec![vec![Value::Integer(0)]; 3]
        );
        let indexes = rows(
            &conn,
            "SELECT name FROM sqlite_schema WHERE type = 'index'
                                  AND tbl_name IN ('audit_log', 'assessments') ORDER BY name",
        );
        let names: Vec<_> = indexes.into_iter().flatten().collect();
        assert!(
            !names.contains(&Value::Text("assessments_session".into())),
            "{names:?}"
        );
        assert!(
            names.contains(&Value::Text("audit_log_action".into())),
            "{names:?}"
        );
        let unique_columns = rows(
            &conn,
            "SELECT ii.name FROM pragma_index_list('audit_log') il
                                         JOIN pragma_index_info(il.name) ii WHERE il.\"unique\"",
        );
        assert_eq!(unique_columns, vec![vec![Value::Text("id".into())]]);
        for edit in ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"] {
            let e = conn.execute(edit, []).expect_err(edit);
            assert!(e.to_string().contains("append-only"), "{edit}: {e}");
        }
        // And the chain goes on from where it was.
        let next = effects::append_audit(
            &conn,
            NewAuditEntry::system(
                1_700_000_009,
                "test.entry",
                "user:u9".to_owned(),
                "{}".to_owned(),
            ),
        )
        .expect("append");
        assert_eq!(next.seq, 4);
        assert_eq!(Value::Text(next.prev_hash), before[2][10]);
    }
    /// Issue 11, finding 4 (c): an entry inserted anywhere but at the head is refused by the
    /// database; one inserted at the head without the key (its hash a plain SHA-256) is found
    /// by `audit verify` with the key.
    #[tokio::test]
    async fn a_forged_insert_is_refused_unless_it_extends_the_head_and_then_the_key_finds_it() {
        use riskhook_core::audit::{ChainVerifier, GENESIS};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("riskhook.db");
        let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
            .await
            .expect("open");
        let key = AuditKey::new(b"the SQLite test's audit key, 32 b").expect("key");
        store.set_audit_key(key.clone()).await.expect("set the key");
        for i in 1..=3 {
            store
                .append_audit(NewAuditEntry::system(
                    i,
                    "test.entry",
                    format!("test:{i}"),
                    "{}".to_owned(),
                ))
                .await
                .expect("append");
        }
        let chain = store.audit(0, 10).await.expect("audit");
        let head = store.audit_head().await.expect("head").expect("a head");
        assert!(chain.iter().all(|e| e.keyed));
        let forged =
            |seq: i64, prev: &str| {
                NewAuditEntry::system(9, "case.resolved", "user:u-1".to_owned(), "{}".to_owned())
                    .link(seq, format!("aud_forged_{seq}"), prev.to_owned(), None)
            };
        // A plain INSERT, as someone with the database file would do it.
        let conn = rusqlite::Connection::open(&path).expect("open");
        let insert = |r: &AuditRecord| {
            conn.execute(
                "INSERT INTO audit_log (seq, id, at, actor, action, subject, reason, before,
                                        after, prev_hash, hash, keyed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                rusqlite::params![
                    r.seq,
                    r.id,
                    r.at,
                    r.actor,
                    r.action,
                    r.subject,
                    r.reason,
                    r.before,
                    r.after,
                    r.prev_hash,
                    r.hash,
                    r.keyed
                ],
            )
        };
        for (seq, prev) in [
            (2, chain[0].hash.as_str()), // in the middle
            (5, head.hash.as_str()),     // past the head
            (4, chain[1].hash.as_str()), // at the head's place, linked elsewhere
            (1, GENESIS),                // a second chain
        ] {
            let message = insert(&forged(seq, prev)).expect_err("refused").to_string();
            assert!(message.contains("extend the head"), "{seq}: {message}");
        }
        insert(&forged(4, &head.hash)).expect("an insert at the head is the database's to accept");
        let entries = store.audit(0, 10).await.expect("audit");
        let mut verifier = ChainVerifier::with_key(Some(key));
        let broken = entries
            .iter()
            .try_for_each(|e| verifier.check(&e.fields(), &e.hash, e.keyed))
            .expect_err("found with the key");
        assert_eq!(broken.seq, 4, "{broken}");
        store.close().await;
    }

    /// Issue 11, finding 6: the database and its WAL and shared-memory files hold KYC data and
    /// are created readable by their owner only, whatever the umask; wider ones are narrowed.
    #[tokio::test]
    async fn the_database_files_are_private_to_their_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let mode = |name: &str| {
            std::fs::metadata(dir.path().join(name))
                .map(|m| m.permissions().mode() & 0o777)
                .ok()
        };
        let path = dir.path().join("riskhook.db");
        let url = format!("sqlite://{}", path.display());
        let store = SqliteStore::open(&url).await.expect("open");
        // Migrations have written through the WAL, so all three files exist now.
        for name in ["riskhook.db", "riskhook.db-wal", "riskhook.db-shm"] {
            assert_eq!(mode(name), Some(0o600), "{name}");
        }
        store.close().await;

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let store = SqliteStore::open(&url).await.expect("reopen");
        for name in ["riskhook.db", "riskhook.db-wal", "riskhook.db-shm"] {
            assert_eq!(mode(name), Some(0o600), "{name} after reopening");
        }
        store.close().await;
    }
    /// `sqlite::memory:` leaves nothing behind: not the file standing in for it, nor the WAL
    /// and shared-memory files SQLite keeps beside it.
    #[tokio::test]
    async fn an_in_memory_store_leaves_no_files_behind() {
        let store = SqliteStore::open("sqlite::memory:").await.expect("open");
        let path = store
            ._temporary
            .as_ref()
            .expect("a temporary file")
            .0
            .to_path_buf();
        let sibling = |suffix: &str| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            std::path::PathBuf::from(name)
        };
        assert!(path.exists() && sibling("-wal").exists() && sibling("-shm").exists());
        drop(store);
        for file in [path.clone(), sibling("-wal"), sibling("-shm")] {
            assert!(!file.exists(), "{} is left behind", file.display());
        }
    }
}

//! The PostgreSQL backend of [`riskhook_store::Store`]: for several riskhook instances sharing
//! one database.
//!
//! It behaves as `riskhook-store-sqlite` does (the same conformance suite passes on both); what
//! differs is how it stays correct with many writers at once. Every trait method is one
//! transaction at READ COMMITTED, and:
//!
//! - **Exactly once**: an event is inserted with `ON CONFLICT DO NOTHING` on its two unique
//!   keys; a concurrent identical delivery waits for the first to commit and then finds it.
//! - **One user at a time**: a transaction that touches a user takes a transaction-level
//!   advisory lock on that user first (`effects::Tx::lock_user`), so evidence gathering and
//!   the user's recomputation see every committed assessment of theirs, and the user's outbox
//!   rows are numbered in commit order.
//! - **One audit chain, no global lock**: a transaction stages its audit entries, committed
//!   with its effects (`effects::Tx::commit`); one linker at a time links committed entries
//!   into the chain in batches, and every read of the chain links first (`audit`). No lock
//!   is held by every writing transaction of every instance.
//! - **Claims**: `FOR UPDATE SKIP LOCKED` hands each due delivery to one dispatcher.
//!
//! Times are stored exactly as in SQLite: Unix seconds, milliseconds for the outbox. This crate
//! owns the SQL and the migration (`migrations/`, embedded and applied by
//! [`PostgresStore::open`]).

mod audit;
mod commands;
mod effects;
mod ingest;
mod intake;
mod reads;
#[cfg(feature = "test-support")]
pub mod test_support;
mod workbench;

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use riskhook_core::assessment::{Decision, UserStatus};
use riskhook_core::audit::AuditKey;
use riskhook_core::review::ActionStatus;
use riskhook_store::rulebook::Touched;
use riskhook_store::{
    ActionRecord, ApiKeyRecord, AssessmentRecord, Attempt, AuditRecord, CaseFilter, CaseRecord,
    Claim, CommandError, DecideAction, DeliveryFilter, DeliveryRecord, EndpointRecord, EventRecord,
    IngestOutcome, NewApiKey, NewAssessment, NewAuditEntry, ReplayFilter, ReplayRecord,
    ResolveCase, ReviewOutcome, SessionRecord, ShadowRecord, Store, StoreError, UiSessionRecord,
    UserAction, UserRecord, VerdictRecord,
};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, Postgres, SqlStr};

use effects::Tx;
use intake::Intake;

/// Every event row is stored under this provider name; the unique keys are per provider.
pub(crate) const PROVIDER: &str = "didit";

/// The PostgreSQL store: a pool of connections, each trait method one transaction on one of
/// them. Cloning shares the pool.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// The audit key, once [`Store::set_audit_key`] sets it; shared by every clone.
    audit_key: Arc<OnceLock<AuditKey>>,
    /// Deliveries go through here, to be committed in batches.
    intake: Intake,
}

impl fmt::Debug for PostgresStore {
    // Written by hand: the connect options inside the pool hold the database password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("connections", &self.pool.size())
            .field("idle", &self.pool.num_idle())
            .field("closed", &self.pool.is_closed())
            .finish_non_exhaustive()
    }
}

/// How long a request waits for a connection, a refused one retried meanwhile: when the
/// server is down, a request is refused (503) within this, before the request timeout and
/// before Didit gives up on the delivery (5 s), and `/readyz` answers in time to say it is the
/// database. Under load it also bounds the wait for a free connection of the pool.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// A pooled connection idle this long is pinged before it is used again.
const RETEST_AFTER_IDLE: Duration = Duration::from_secs(1);

/// How long [`PostgresStore::connect`] waits for the server at start.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

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
        migration(1, "schema", include_str!("../migrations/0001_schema.sql")),
        migration(
            2,
            "key principals",
            include_str!("../migrations/0002_key_principals.sql"),
        ),
        migration(
            3,
            "keyed audit chain, appends only at the head",
            include_str!("../migrations/0003_audit_keyed_and_head_only.sql"),
        ),
        migration(
            4,
            "workbench sessions",
            include_str!("../migrations/0004_workbench_sessions.sql"),
        ),
        migration(
            5,
            "shadow assessments",
            include_str!("../migrations/0005_shadow_assessments.sql"),
        ),
        migration(
            6,
            "audit entries staged, linked in batches",
            include_str!("../migrations/0006_audit_staging.sql"),
        ),
        migration(
            7,
            "signal snapshots",
            include_str!("../migrations/0007_signal_snapshots.sql"),
        ),
        migration(
            8,
            "ingest in two calls",
            include_str!("../migrations/0008_ingest_in_two_calls.sql"),
        ),
        migration(
            9,
            "fewer index writes",
            include_str!("../migrations/0009_fewer_index_writes.sql"),
        ),
        migration(
            10,
            "lz4 for large values",
            include_str!("../migrations/0010_lz4_for_large_values.sql"),
        ),
        migration(
            11,
            "user facts by index",
            include_str!("../migrations/0011_user_facts_by_index.sql"),
        ),
        migration(
            12,
            "no foreign keys on the intake path",
            include_str!("../migrations/0012_no_foreign_keys_on_intake.sql"),
        ),
    ])
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`)
    /// with a pool of at most `max_connections`, and applies pending migrations.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let store = Self::connect(url, max_connections).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without migrating: for `riskhook migrate` to report what it does. Fails with
    /// [`StoreError::Unavailable`] at once when the connection is refused (nothing listens at
    /// that address), and when the server cannot be reached within [`STARTUP_TIMEOUT`]
    /// otherwise (a server still starting is waited for, so instances may start just before
    /// their database does).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        // The URL's own text never goes into the error: it may hold the password.
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError::Other("invalid PostgreSQL URL".into()))?
            .application_name("riskhook");
        // A server that refuses the connection outright is not starting up: nothing listens
        // there. Say so at once, naming where, instead of retrying until the deadline.
        if let Err(sqlx::Error::Io(io)) = options.connect().await
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return Err(StoreError::Unavailable(
                format!(
                    "connection refused at {}:{}: is PostgreSQL running and listening there?",
                    options.get_host(),
                    options.get_port()
                )
                .into(),
            ));
        }
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // sqlx pings every connection as it goes back to the pool, and closes it if that
            // fails. Pinging it again as it is taken out, sqlx's default, was one more round
            // trip per delivery (a sixth); only a connection that has waited in the pool since
            // is tested again (a server restarted meanwhile, an idle timeout on the way).
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= RETEST_AFTER_IDLE {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(options);
        // sqlx retries a refused connection for one acquire timeout, which is shorter than
        // the wait allowed at start: try again until the start-up deadline.
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            match pool.acquire().await {
                Ok(_first) => {
                    let audit_key = Arc::default();
                    let intake = Intake::start(&pool, &audit_key);
                    return Ok(Self {
                        pool,
                        audit_key,
                        intake,
                    });
                }
                Err(sqlx::Error::PoolTimedOut) if Instant::now() < deadline => {}
                Err(e) => return Err(map_err(e)),
            }
        }
    }

    /// Creates the database `url` names when the server says it does not exist (SQLSTATE
    /// 3D000), connected to the server's `postgres` database with the same credentials. Returns
    /// the name of the database created, if one was. For `riskhook migrate`.
    pub async fn create_database_if_missing(url: &str) -> Result<Option<String>, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError::Other("invalid PostgreSQL URL".into()))?
            .application_name("riskhook");
        match options.connect().await {
            Ok(conn) => {
                let _ = conn.close().await;
                Ok(None)
            }
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("3D000") => {
                let name = options.get_database().unwrap_or("postgres").to_owned();
                let mut admin = options
                    .clone()
                    .database("postgres")
                    .connect()
                    .await
                    .map_err(map_err)?;
                let quoted = format!("\"{}\"", name.replace('"', "\"\""));
                let created = sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
                    .execute(&mut admin)
                    .await;
                let _ = admin.close().await;
                match created {
                    Ok(_) => Ok(Some(name)),
                    // Another instance created it meanwhile.
                    Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P04") => {
                        Ok(None)
                    }
                    Err(e) => Err(map_err(e)),
                }
            }
            // Anything else (refused, unreachable, bad credentials): `connect` reports it.
            Err(_) => Ok(None),
        }
    }

    /// Applies every pending migration. Returns the versions applied now.
    ///
    /// Several instances may start at once: sqlx's PostgreSQL migrator holds a session-level
    /// `pg_advisory_lock` (keyed by the database name) from before it creates its
    /// `_sqlx_migrations` table until after the last migration (sqlx-core 0.9
    /// `Migrator::run_direct` → sqlx-postgres 0.9 `Migrate::lock`), so one applies them and the
    /// others wait, then find nothing to do. It does not unlock when a migration fails, so it
    /// runs on a connection of its own that is closed afterwards (closing ends the session and
    /// its locks) rather than one the pool would hand out again. Our own advisory lock around
    /// it makes the "applied now" answer exact when instances race.
    pub async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        let options = self.pool.connect_options();
        let mut conn = options.connect().await.map_err(map_err)?;
        let result = migrate_on(&mut conn).await;
        if let Err(e) = conn.close().await {
            tracing::debug!(error = %e, "closing the migration connection failed");
        }
        result
    }

    /// Closes the pool, waiting for connections to be returned: a clean shutdown.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A connection for reads, tested first as sqlx would by default: reads are not on the
    /// delivery path, and a connection the server ended since its last use (see `connect`) is
    /// then replaced instead of failing the read. Writes test theirs with BEGIN ([`Tx::begin`]).
    async fn conn(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        effects::on_a_live_connection(&self.pool, || async {
            let mut conn = self.pool.acquire().await?;
            if let Err(e) = conn.ping().await {
                conn.close_on_drop();
                return Err(e);
            }
            Ok(conn)
        })
        .await
    }

    async fn begin(&self) -> Result<Tx, StoreError> {
        Tx::begin(&self.pool, &self.audit_key).await
    }

    /// Links every committed staged audit entry, waiting for a linker at work: before a read
    /// of the chain, so it sees every entry committed before it.
    async fn link_audit(&self) -> Result<u64, StoreError> {
        audit::link(&self.pool, self.audit_key.get(), audit::Wait::Yes).await
    }
}

async fn migrate_on(conn: &mut PgConnection) -> Result<Vec<i64>, StoreError> {
    effects::session_lock(conn, effects::MIGRATE_LOCK).await?;
    let before = applied_versions(conn).await?;
    let migrator = migrator();
    let pending = migrator
        .iter()
        .map(|m| m.version)
        .filter(|v| !before.contains(v))
        .collect();
    riskhook_store::apply_migrations(pending, std::time::Instant::now, async {
        migrator
            .run(&mut *conn)
            .await
            .map_err(|e| StoreError::Other(Box::new(e)))
    })
    .await
}

async fn applied_versions(conn: &mut PgConnection) -> Result<Vec<i64>, StoreError> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await
        .map_err(map_err)?;
    if !exists {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)
}

#[async_trait]
impl Store for PostgresStore {
    #[tracing::instrument(skip_all, fields(event_id = %event.id, webhook_type = %event.webhook_type))]
    async fn ingest(
        &self,
        event: EventRecord,
        assessment: Option<NewAssessment>,
    ) -> Result<IngestOutcome, StoreError> {
        self.intake.ingest(event, assessment).await
    }

    async fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        reads::event(&mut *self.conn().await?, id).await
    }

    async fn events(
        &self,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError> {
        reads::events(&mut *self.conn().await?, after_id, limit).await
    }

    async fn count_events(&self) -> Result<u64, StoreError> {
        reads::count(&mut *self.conn().await?, "SELECT COUNT(*) FROM events").await
    }

    async fn find_event(
        &self,
        delivery_key: Option<&str>,
        content_key: &str,
    ) -> Result<Option<String>, StoreError> {
        reads::find_event(&mut *self.conn().await?, delivery_key, content_key).await
    }

    async fn unfinished_sessions(
        &self,
        before: i64,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        reads::unfinished_sessions(&mut *self.conn().await?, before, limit).await
    }

    async fn session(&self, session_id: &str) -> Result<Option<SessionRecord>, StoreError> {
        reads::session(&mut *self.conn().await?, session_id).await
    }

    async fn user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
        reads::user(&mut *self.conn().await?, user_id).await
    }

    async fn user_assessments(
        &self,
        user_id: &str,
        limit: u32,
    ) -> Result<Vec<AssessmentRecord>, StoreError> {
        reads::user_assessments(&mut *self.conn().await?, user_id, limit).await
    }

    async fn assessment(&self, id: &str) -> Result<Option<AssessmentRecord>, StoreError> {
        reads::assessment(&mut *self.conn().await?, id).await
    }

    async fn user_events(&self, user_id: &str, limit: u32) -> Result<Vec<EventRecord>, StoreError> {
        reads::user_events(&mut *self.conn().await?, user_id, limit).await
    }

    async fn cases(&self, filter: &CaseFilter) -> Result<Vec<CaseRecord>, StoreError> {
        reads::cases(&mut *self.conn().await?, filter).await
    }

    async fn count_cases(&self, filter: &CaseFilter) -> Result<u64, StoreError> {
        reads::count_cases(&mut *self.conn().await?, filter).await
    }

    async fn replay_events(&self, filter: &ReplayFilter) -> Result<Vec<ReplayRecord>, StoreError> {
        reads::replay_events(&mut *self.conn().await?, filter).await
    }

    async fn verdicts(&self) -> Result<Vec<VerdictRecord>, StoreError> {
        reads::verdicts(&mut *self.conn().await?).await
    }

    async fn shadow_assessments(
        &self,
        shadow_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ShadowRecord>, StoreError> {
        reads::shadow_assessments(&mut *self.conn().await?, shadow_id, after, limit).await
    }

    async fn case(&self, id: &str) -> Result<Option<CaseRecord>, StoreError> {
        reads::case(&mut *self.conn().await?, id).await
    }

    async fn claim_case(
        &self,
        id: &str,
        actor: &str,
        now: i64,
    ) -> Result<CaseRecord, CommandError> {
        let mut tx = self.begin().await?;
        let result = async {
            commands::claim_case(&mut tx, id, actor, now).await?;
            reads::case(tx.conn(), id)
                .await?
                .ok_or_else(|| CommandError::not_found("case", id))
        }
        .await;
        tx.finish(result).await
    }

    async fn resolve_case(&self, command: ResolveCase) -> Result<ReviewOutcome, CommandError> {
        let mut tx = self.begin().await?;
        let result = async {
            let touched = commands::resolve_case(&mut tx, &command).await?;
            review_outcome(&mut tx, touched).await
        }
        .await;
        tx.finish(result).await
    }

    async fn act_on_user(&self, command: UserAction) -> Result<ReviewOutcome, CommandError> {
        let mut tx = self.begin().await?;
        let result = async {
            let touched = commands::act_on_user(&mut tx, &command).await?;
            review_outcome(&mut tx, touched).await
        }
        .await;
        tx.finish(result).await
    }

    async fn decide_action(&self, command: DecideAction) -> Result<ReviewOutcome, CommandError> {
        let mut tx = self.begin().await?;
        let result = async {
            let touched = commands::decide_action(&mut tx, &command).await?;
            review_outcome(&mut tx, touched).await
        }
        .await;
        tx.finish(result).await
    }

    async fn actions(
        &self,
        status: Option<ActionStatus>,
        limit: u32,
    ) -> Result<Vec<ActionRecord>, StoreError> {
        reads::actions(&mut *self.conn().await?, status, limit).await
    }

    async fn action(&self, id: &str) -> Result<Option<ActionRecord>, StoreError> {
        reads::action(&mut *self.conn().await?, id).await
    }

    async fn audit(&self, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        self.link_audit().await?;
        reads::audit(&mut *self.conn().await?, after, limit).await
    }

    async fn append_audit(&self, entry: NewAuditEntry) -> Result<AuditRecord, StoreError> {
        let mut tx = self.begin().await?;
        tx.audit(entry);
        let id = tx.commit().await?.pop();
        self.link_audit().await?;
        match id {
            Some(id) => reads::audit_entry(&mut *self.conn().await?, &id).await?,
            None => None,
        }
        .ok_or_else(|| StoreError::Other("the audit entry was not linked into the chain".into()))
    }

    async fn last_audit(&self, action: &str) -> Result<Option<AuditRecord>, StoreError> {
        self.link_audit().await?;
        reads::last_audit(&mut *self.conn().await?, action).await
    }

    async fn audit_head(&self) -> Result<Option<AuditRecord>, StoreError> {
        self.link_audit().await?;
        reads::audit_head(&mut *self.conn().await?).await
    }

    async fn settle_audit(&self) -> Result<u64, StoreError> {
        audit::link(&self.pool, self.audit_key.get(), audit::Wait::No).await
    }

    async fn set_audit_key(&self, key: AuditKey) -> Result<(), StoreError> {
        self.audit_key
            .set(key)
            .map_err(|_| StoreError::Other("the audit key is already set".into()))
    }

    async fn create_key(
        &self,
        key: NewApiKey,
        actor: &str,
        now: i64,
    ) -> Result<ApiKeyRecord, CommandError> {
        let mut tx = self.begin().await?;
        let result = async {
            commands::create_key(&mut tx, &key, actor, now).await?;
            reads::key(tx.conn(), &key.id)
                .await?
                .ok_or_else(|| CommandError::not_found("key", &key.id))
        }
        .await;
        tx.finish(result).await
    }

    async fn keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        reads::keys(&mut *self.conn().await?).await
    }

    async fn revoke_key(
        &self,
        id: &str,
        actor: &str,
        now: i64,
    ) -> Result<ApiKeyRecord, CommandError> {
        let mut tx = self.begin().await?;
        let result = async {
            commands::revoke_key(&mut tx, id, actor, now).await?;
            reads::key(tx.conn(), id)
                .await?
                .ok_or_else(|| CommandError::not_found("key", id))
        }
        .await;
        tx.finish(result).await
    }

    async fn key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        reads::key(&mut *self.conn().await?, id).await
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        reads::key_by_hash(&mut *self.conn().await?, hash).await
    }

    async fn create_ui_session(
        &self,
        session: UiSessionRecord,
        expired_before: i64,
    ) -> Result<(), StoreError> {
        workbench::create(&mut *self.conn().await?, &session, expired_before).await
    }

    async fn ui_session(&self, token_hash: &str) -> Result<Option<UiSessionRecord>, StoreError> {
        workbench::get(&mut *self.conn().await?, token_hash).await
    }

    async fn update_ui_session(
        &self,
        token_hash: &str,
        last_seen_at: i64,
        flash: Option<&str>,
    ) -> Result<(), StoreError> {
        workbench::update(&mut *self.conn().await?, token_hash, last_seen_at, flash).await
    }

    async fn delete_ui_session(&self, token_hash: &str) -> Result<(), StoreError> {
        workbench::delete(&mut *self.conn().await?, token_hash).await
    }

    async fn sync_endpoints(&self, ids: &[String], now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let result = commands::sync_endpoints(&mut tx, ids, now_ms).await;
        tx.finish(result).await
    }

    async fn endpoints(&self) -> Result<Vec<EndpointRecord>, StoreError> {
        reads::endpoints(&mut *self.conn().await?).await
    }

    async fn enable_endpoint(
        &self,
        id: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<EndpointRecord, CommandError> {
        let mut tx = self.begin().await?;
        let result = async {
            commands::enable_endpoint(&mut tx, id, actor, now_ms).await?;
            reads::endpoint(tx.conn(), id)
                .await?
                .ok_or_else(|| CommandError::not_found("endpoint", id))
        }
        .await;
        tx.finish(result).await
    }

    async fn claim_deliveries(&self, claim: &Claim) -> Result<Vec<DeliveryRecord>, StoreError> {
        // One statement, so one transaction of its own.
        commands::claim_deliveries(&mut *self.conn().await?, claim).await
    }

    async fn record_attempt(
        &self,
        id: &str,
        owner: &str,
        attempt: Attempt,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let result = commands::record_attempt(&mut tx, id, owner, &attempt, now_ms).await;
        tx.finish(result).await
    }

    async fn deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<DeliveryRecord>, StoreError> {
        reads::deliveries(&mut *self.conn().await?, filter).await
    }

    async fn delivery(&self, id: &str) -> Result<Option<DeliveryRecord>, StoreError> {
        reads::delivery(&mut *self.conn().await?, id).await
    }

    async fn retry_delivery(
        &self,
        id: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<DeliveryRecord, CommandError> {
        let mut tx = self.begin().await?;
        let result = async {
            commands::retry_delivery(&mut tx, id, actor, now_ms).await?;
            reads::delivery(tx.conn(), id)
                .await?
                .ok_or_else(|| CommandError::not_found("delivery", id))
        }
        .await;
        tx.finish(result).await
    }

    async fn outbox_backlog(&self) -> Result<u64, StoreError> {
        reads::count(
            &mut *self.conn().await?,
            "SELECT COUNT(*) FROM deliveries WHERE status = 'pending'",
        )
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn close(&self) {
        PostgresStore::close(self).await;
    }
}

/// Reads back what a review command touched, inside its transaction: the answer is the state
/// the command left, not a later one.
async fn review_outcome(
    tx: &mut Tx,
    Touched {
        user_id,
        case_id,
        action_id,
    }: Touched,
) -> Result<ReviewOutcome, CommandError> {
    let user = reads::user(tx.conn(), &user_id)
        .await?
        .ok_or_else(|| CommandError::not_found("user", &user_id))?;
    let case = match case_id {
        Some(id) => reads::case(tx.conn(), &id).await?,
        None => None,
    };
    let action = match action_id {
        Some(id) => reads::action(tx.conn(), &id).await?,
        None => None,
    };
    Ok(ReviewOutcome { user, case, action })
}

pub(crate) fn parse_status(s: &str) -> Result<UserStatus, StoreError> {
    UserStatus::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown user status `{s}`")))
}

pub(crate) fn parse_decision(s: &str) -> Result<Decision, StoreError> {
    Decision::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown decision `{s}`")))
}

/// A score as stored (`INTEGER`, 0-100 by a CHECK) back to its type.
pub(crate) fn score(value: i32) -> Result<u8, StoreError> {
    u8::try_from(value).map_err(|_| StoreError::Corrupt(format!("score {value} out of range")))
}

/// Translates driver errors at the boundary: what a retry may fix is `Unavailable`.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => StoreError::Unavailable(Box::new(e)),
        sqlx::Error::Database(db) if db.code().as_deref().is_some_and(retryable) => {
            StoreError::Unavailable(Box::new(e))
        }
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. } => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Other(Box::new(e)),
    }
}

/// SQLSTATEs a later attempt may not meet: connection exceptions (class 08), serialization
/// failure and deadlock (40001, 40P01), insufficient resources (class 53, e.g. too many
/// connections), a lock or statement timeout (55P03, 57014), the server shutting down or
/// starting (57P01-57P03), and a standby that cannot write yet after a failover (25006).
fn retryable(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "40001" | "40P01" | "55P03" | "57014" | "57P01" | "57P02" | "57P03" | "25006"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_codes_are_unavailable_and_others_are_not() {
        for code in ["08006", "40001", "40P01", "53300", "57P01", "25006"] {
            assert!(retryable(code), "{code}");
        }
        for code in ["23505", "23514", "42P01", "P0001"] {
            assert!(!retryable(code), "{code}");
        }
    }
}

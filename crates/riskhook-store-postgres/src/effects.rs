//! The transaction every write runs in ([`Tx`]) with its locks, and the effects shared by
//! ingest and by people's commands inside it: appending to the audit chain, recomputing a
//! user's profile and status, and writing the outbox when that changes (the SQL of the last
//! two is server-side, migration 8, so ingest runs it in the same call as its other writes).
//!
//! Lock order, the same in every transaction, so no two can wait for each other in a cycle:
//! first users' advisory locks (one user's for a command; a batch of deliveries takes its
//! users' in the order of their ids, [`crate::intake`]), then row locks. Audit
//! entries are staged at commit ([`Tx::commit`]), which takes no lock another transaction
//! waits for; the audit lock is the linker's alone ([`crate::audit`]), which takes no other.

use riskhook_core::assessment::{Decision, UserStatus};
use std::sync::{Arc, OnceLock};

use riskhook_core::audit::AuditKey;
use riskhook_store::rulebook::{self, Cause, UserFacts, UserPlan, UserRow};
use riskhook_store::{NewAuditEntry, StoreError, UserState};
use sqlx::postgres::{PgPool, PgRow};
use sqlx::{PgConnection, Postgres, Row, Transaction};

use crate::audit::PgQuery;
use crate::{map_err, parse_decision, parse_status, score};

/// The first key of riskhook's two-key advisory locks (`"risk"`). PostgreSQL keeps two-key
/// locks apart from one-key (`bigint`) locks, so these can never collide with a user's lock,
/// which is a 64-bit hash.
pub(crate) const LOCK_SPACE: i32 = 0x7269_736b;
/// Held by the audit chain's linker ([`crate::audit::link`]): one at a time.
pub(crate) const AUDIT_LOCK: i32 = 1;
/// Serialises `sync_endpoints` (it rewrites every endpoint row).
pub(crate) const ENDPOINTS_LOCK: i32 = 2;
/// Held (as a session lock) around migrating, so its report of what it applied is exact.
pub(crate) const MIGRATE_LOCK: i32 = 3;

/// A new time-ordered id with a prefix, e.g. `case_0193…`.
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// Takes a session-level advisory lock, released when the connection closes.
pub(crate) async fn session_lock(conn: &mut PgConnection, key: i32) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_lock($1, $2)")
        .bind(LOCK_SPACE)
        .bind(key)
        .execute(conn)
        .await
        .map_err(map_err)?;
    Ok(())
}

/// One write transaction, with the audit entries it will append when it commits.
/// Dropped without [`Tx::commit`], it rolls back.
#[derive(Debug)]
pub(crate) struct Tx {
    tx: Transaction<'static, Postgres>,
    audit: Vec<NewAuditEntry>,
    /// The store's audit key, if set: the entries are keyed under it.
    audit_key: Arc<OnceLock<AuditKey>>,
}

impl Tx {
    pub(crate) async fn begin(
        pool: &PgPool,
        audit_key: &Arc<OnceLock<AuditKey>>,
    ) -> Result<Self, StoreError> {
        // BEGIN is the connection's test: it fails before anything was done.
        let tx = on_a_live_connection(pool, || pool.begin()).await?;
        Ok(Self {
            tx,
            audit: Vec::new(),
            audit_key: audit_key.clone(),
        })
    }

    /// The transaction's connection, for statements.
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Waits until no other transaction is working on this user, and keeps them out until
    /// this one ends. Taken before reading anything of the user, so what this transaction
    /// reads of them is everything committed. A hash collision between two users only makes
    /// them wait for each other.
    pub(crate) async fn lock_user(&mut self, user_id: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('user:' || $1, 0))")
            .bind(user_id)
            .execute(&mut *self.tx)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    /// Takes one of riskhook's fixed transaction-level advisory locks.
    pub(crate) async fn lock(&mut self, key: i32) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(LOCK_SPACE)
            .bind(key)
            .execute(&mut *self.tx)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    /// Queues an entry for the audit chain: appended, in queue order, when the transaction
    /// commits.
    pub(crate) fn audit(&mut self, entry: NewAuditEntry) {
        self.audit.push(entry);
    }

    /// Stages the queued audit entries ([`crate::audit::stage`]) and commits: they are
    /// linked into the chain by the next linker, and seen by every read of the chain from now.
    /// Returns their ids.
    pub(crate) async fn commit(mut self) -> Result<Vec<String>, StoreError> {
        let entries = std::mem::take(&mut self.audit);
        let ids = crate::audit::stage(&mut self.tx, entries, self.audit_key.get()).await?;
        self.tx.commit().await.map_err(map_err)?;
        Ok(ids)
    }

    /// Ends the transaction without changing anything.
    pub(crate) async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await.map_err(map_err)
    }

    /// Commits when `result` is `Ok`, and rolls back now when it is an error.
    ///
    /// Every way out of a transaction goes through here or [`Tx::commit`]: a `Tx` merely
    /// dropped has its rollback queued until the connection is next used (sqlx does it in a
    /// task when the connection goes back to the pool), and until then its locks — the user's
    /// lock, rows taken `FOR UPDATE` — would keep other transactions waiting, or hide rows
    /// from a claim's `SKIP LOCKED`.
    pub(crate) async fn finish<T, E: From<StoreError>>(self, result: Result<T, E>) -> Result<T, E> {
        match result {
            Ok(value) => {
                self.commit().await?;
                Ok(value)
            }
            Err(e) => {
                if let Err(rollback) = self.rollback().await {
                    tracing::debug!(error = %rollback, "rollback after a refused command failed");
                }
                Err(e)
            }
        }
    }
}

/// Runs `attempt`, which takes a connection from `pool` and tests it by its first round trip,
/// again while it fails because that connection was gone. The pool does not test a connection
/// it hands out unless it sat idle (see `PostgresStore::connect`), so one the server ended
/// since its last use (a restart, an administrator, an idle timeout) is found here; sqlx drops
/// it, and another is taken: at most once per pooled connection, then once more with a new one.
pub(crate) async fn on_a_live_connection<T, F>(
    pool: &PgPool,
    mut attempt: impl FnMut() -> F,
) -> Result<T, StoreError>
where
    F: Future<Output = Result<T, sqlx::Error>>,
{
    let mut spare = pool.options().get_max_connections();
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) if spare > 0 && connection_lost(&e) => spare -= 1,
            Err(e) => return Err(map_err(e)),
        }
    }
}

/// Whether `e` says the connection itself is gone (the server ended it, or the socket broke),
/// rather than that the server is down or refused the statement.
pub(crate) fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) => true,
        // admin_shutdown, crash_shutdown: said to a live session as the server ends it
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("57P01" | "57P02")),
        _ => false,
    }
}

pub(crate) fn decision_rank(decision: Decision) -> i32 {
    match decision {
        Decision::Approve => 0,
        Decision::Review => 1,
        Decision::Freeze => 2,
    }
}

/// A user's facts as `riskhook_user_facts` (migration 8) returns them, also as the tail of
/// `riskhook_ingest`'s row: the facts their recomputation follows from, and their unresolved
/// case (its id and decision), if any.
pub(crate) fn user_facts(
    row: &PgRow,
) -> Result<(UserFacts, Option<(String, Decision)>), StoreError> {
    let get_decision = |column: &str| -> Result<Option<Decision>, StoreError> {
        let text: Option<&str> = row.try_get(column).map_err(map_err)?;
        text.map(parse_decision).transpose()
    };
    let found: Option<bool> = row.try_get("user_found").map_err(map_err)?;
    let user = if found == Some(true) {
        let verdict: Option<&str> = row.try_get("user_verdict").map_err(map_err)?;
        Some(UserRow {
            state: UserState {
                status: parse_status(row.try_get("user_status").map_err(map_err)?)?,
                decision: get_decision("user_decision")?
                    .ok_or_else(|| StoreError::Corrupt("a user without a decision".into()))?,
                score: score(row.try_get("user_score").map_err(map_err)?)?,
                assessment_id: row.try_get("user_assessment").map_err(map_err)?,
            },
            verdict: verdict.map(parse_status).transpose()?,
            version: row.try_get("user_version").map_err(map_err)?,
        })
    } else {
        None
    };
    let open_case_id: Option<String> = row.try_get("open_case_id").map_err(map_err)?;
    let open_case = match (open_case_id, get_decision("open_case_decision")?) {
        (Some(id), Some(decision)) => Some((id, decision)),
        _ => None,
    };
    let current_id: Option<String> = row.try_get("current_id").map_err(map_err)?;
    let current = match (current_id, get_decision("current_decision")?) {
        (Some(id), Some(decision)) => Some((
            id,
            score(row.try_get("current_score").map_err(map_err)?)?,
            decision,
        )),
        _ => None,
    };
    let facts = UserFacts {
        row: user,
        ever_frozen: row
            .try_get::<Option<bool>, _>("user_ever_frozen")
            .map_err(map_err)?
            .unwrap_or(false),
        open_case: open_case.as_ref().map(|(_, decision)| *decision),
        current,
    };
    Ok((facts, open_case))
}

/// Binds the first eleven arguments of `riskhook_store_user` and of `riskhook_settle` (the
/// same in both, migration 8): the user's recomputed row, and the notification when it moved.
/// Without a user, all NULL.
pub(crate) fn bind_user<'q>(
    query: PgQuery<'q>,
    now: i64,
    user: Option<(&'q str, &'q UserPlan)>,
) -> PgQuery<'q> {
    let plan = user.map(|(_, plan)| plan);
    let moved = plan.and_then(|plan| plan.moved.as_ref());
    query
        .bind(user.map(|(id, _)| id))
        .bind(now)
        .bind(now.saturating_mul(1000))
        .bind(plan.map(|p| p.after.status.as_str()))
        .bind(plan.map(|p| i32::from(p.after.score)))
        .bind(plan.map(|p| p.after.decision.as_str()))
        .bind(plan.and_then(|p| p.after.assessment_id.as_deref()))
        .bind(plan.map(|p| p.ever_frozen))
        .bind(plan.map(|p| p.version))
        .bind(moved.map(|_| new_id("msg")))
        .bind(moved.map(|(payload, _)| payload.as_str()))
}

/// Runs a call of `riskhook_store_user` or `riskhook_settle`, which answer whether they queued
/// a notification, and counts it.
pub(crate) async fn store_user(
    conn: &mut PgConnection,
    call: PgQuery<'_>,
) -> Result<(), StoreError> {
    let queued: bool = call
        .fetch_one(conn)
        .await
        .and_then(|row| row.try_get(0))
        .map_err(map_err)?;
    if queued {
        metrics::counter!("riskhook_notifications_queued_total").increment(1);
    }
    Ok(())
}

/// Recomputes a user ([`rulebook::plan_refresh`]) from facts that do not depend on arrival
/// order (the current assessments of their sessions, whether any assessment decided freeze,
/// their unresolved case) and from the verdict of the last person to act. When the status or
/// the decision moves, the outbox gets a `user.updated` notification for every configured
/// endpoint and the audit log an entry, in this same transaction. The caller holds the user's
/// lock, so every committed assessment of the user is seen and no other transaction moves
/// them meanwhile. (Ingest does the same in its two calls: [`crate::ingest`].)
pub(crate) async fn refresh_user(
    tx: &mut Tx,
    user_id: &str,
    cause: Cause<'_>,
) -> Result<UserState, StoreError> {
    let row = sqlx::query("SELECT * FROM riskhook_user_facts($1)")
        .bind(user_id)
        .fetch_one(tx.conn())
        .await
        .map_err(map_err)?;
    let (facts, _) = user_facts(&row)?;
    let mut plan = rulebook::plan_refresh(user_id, &facts, cause);
    let store = bind_user(
        sqlx::query("SELECT riskhook_store_user($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"),
        cause.now,
        Some((user_id, &plan)),
    );
    store_user(tx.conn(), store).await?;
    if let Some((_, audit)) = plan.moved.take() {
        tx.audit(audit);
    }
    Ok(plan.after)
}

/// Sets the verdict of a person on a user.
pub(crate) async fn set_verdict(
    conn: &mut PgConnection,
    user_id: &str,
    verdict: UserStatus,
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE users SET verdict = $2, verdict_at = $3, verdict_by = $4 WHERE user_id = $1",
    )
    .bind(user_id)
    .bind(verdict.as_str())
    .bind(now)
    .bind(actor)
    .execute(conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

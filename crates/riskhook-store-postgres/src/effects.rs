//! The transaction every write runs in ([`Tx`]) with its locks, and the effects shared by
//! ingest and by people's commands inside it: appending to the audit chain, gathering evidence
//! into review cases, recomputing a user's profile and status, and writing the outbox when
//! that changes.
//!
//! Lock order, the same in every transaction, so no two can wait for each other in a cycle:
//! first the user's advisory lock (at most one user per transaction), then row locks. Audit
//! entries are staged at commit ([`Tx::commit`]), which takes no lock another transaction
//! waits for; the audit lock is the linker's alone ([`crate::audit`]), which takes no other.

use riskhook_core::assessment::{Decision, UserStatus};
use std::sync::{Arc, OnceLock};

use riskhook_core::audit::AuditKey;
use riskhook_store::rulebook::{self, Cause, Evidence, UserFacts, UserRow};
use riskhook_store::{NewAuditEntry, StoreError, UserState};
use sqlx::postgres::PgPool;
use sqlx::{PgConnection, Postgres, Row, Transaction};

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
        Ok(Self {
            tx: pool.begin().await.map_err(map_err)?,
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

pub(crate) fn decision_rank(decision: Decision) -> i32 {
    match decision {
        Decision::Approve => 0,
        Decision::Review => 1,
        Decision::Freeze => 2,
    }
}

/// Adds an assessment to its user's unresolved case, opening one if there is none
/// ([`rulebook::plan_evidence`]). Returns the case id. The caller holds the user's lock.
pub(crate) async fn gather_evidence(
    tx: &mut Tx,
    user_id: &str,
    assessment_id: &str,
    decision: Decision,
    now: i64,
) -> Result<String, StoreError> {
    let open = crate::commands::open_case(tx.conn(), user_id).await?;
    let evidence = rulebook::plan_evidence(user_id, open, decision, new_id("case"), now);
    let query = match &evidence {
        Evidence::Open {
            case_id, decision, ..
        } => sqlx::query(
            "INSERT INTO cases (id, user_id, status, decision, decision_rank, opened_at,
                                updated_at)
             VALUES ($1, $2, 'open', $3, $4, $5, $5)",
        )
        .bind(case_id)
        .bind(user_id)
        .bind(decision.as_str())
        .bind(decision_rank(*decision))
        .bind(now),
        Evidence::Join { case_id, decision } => sqlx::query(
            "UPDATE cases SET decision = $2, decision_rank = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(case_id)
        .bind(decision.as_str())
        .bind(decision_rank(*decision))
        .bind(now),
    };
    query.execute(tx.conn()).await.map_err(map_err)?;
    sqlx::query("UPDATE assessments SET case_id = $1 WHERE id = $2")
        .bind(evidence.case_id())
        .bind(assessment_id)
        .execute(tx.conn())
        .await
        .map_err(map_err)?;
    let case_id = evidence.case_id().to_owned();
    if let Evidence::Open { audit, .. } = evidence {
        tx.audit(audit);
    }
    Ok(case_id)
}

/// Recomputes a user ([`rulebook::plan_refresh`]) from facts that do not depend on arrival
/// order (the current assessments of their sessions, whether any assessment decided freeze,
/// their unresolved case) and from the verdict of the last person to act. When the status or
/// the decision moves, the outbox gets a `user.updated` notification for every configured
/// endpoint and the audit log an entry, in this same transaction. The caller holds the user's
/// lock, so every committed assessment of the user is seen and no other transaction moves
/// them meanwhile.
pub(crate) async fn refresh_user(
    tx: &mut Tx,
    user_id: &str,
    cause: Cause<'_>,
) -> Result<UserState, StoreError> {
    let conn = tx.conn();
    let row = sqlx::query(
        "SELECT status, decision, score, current_assessment_id, verdict, version
         FROM users WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_err)?;
    let found = sqlx::query(
        "SELECT EXISTS (SELECT 1 FROM assessments WHERE user_id = $1 AND decision = 'freeze'),
                (SELECT decision FROM cases WHERE user_id = $1 AND status <> 'resolved'),
                cur.id, cur.score, cur.decision
         FROM (SELECT 1) AS one
         LEFT JOIN (SELECT a.id, a.score, a.decision
                    FROM sessions s JOIN assessments a ON a.id = s.current_assessment_id
                    WHERE s.vendor_data = $1
                    ORDER BY a.decision_rank DESC, a.score DESC, a.evaluated_at DESC,
                             s.session_id
                    LIMIT 1) AS cur ON TRUE",
    )
    .bind(user_id)
    .fetch_one(&mut *conn)
    .await
    .map_err(map_err)?;
    let open_case: Option<&str> = found.try_get(1).map_err(map_err)?;
    let current: Option<String> = found.try_get(2).map_err(map_err)?;
    let facts = UserFacts {
        row: match &row {
            Some(row) => {
                let verdict: Option<&str> = row.try_get("verdict").map_err(map_err)?;
                Some(UserRow {
                    state: UserState {
                        status: parse_status(row.try_get("status").map_err(map_err)?)?,
                        decision: parse_decision(row.try_get("decision").map_err(map_err)?)?,
                        score: score(row.try_get("score").map_err(map_err)?)?,
                        assessment_id: row.try_get("current_assessment_id").map_err(map_err)?,
                    },
                    verdict: verdict.map(parse_status).transpose()?,
                    version: row.try_get("version").map_err(map_err)?,
                })
            }
            None => None,
        },
        ever_frozen: found.try_get(0).map_err(map_err)?,
        open_case: open_case.map(parse_decision).transpose()?,
        current: match current {
            Some(id) => Some((
                id,
                score(found.try_get(3).map_err(map_err)?)?,
                parse_decision(found.try_get(4).map_err(map_err)?)?,
            )),
            None => None,
        },
    };
    let plan = rulebook::plan_refresh(user_id, &facts, cause);
    sqlx::query(
        "INSERT INTO users (user_id, status, score, decision, current_assessment_id, ever_frozen,
                            version, first_seen_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
         ON CONFLICT (user_id) DO UPDATE SET
            status = EXCLUDED.status, score = EXCLUDED.score, decision = EXCLUDED.decision,
            current_assessment_id = EXCLUDED.current_assessment_id,
            ever_frozen = EXCLUDED.ever_frozen, version = EXCLUDED.version,
            updated_at = EXCLUDED.updated_at",
    )
    .bind(user_id)
    .bind(plan.after.status.as_str())
    .bind(i32::from(plan.after.score))
    .bind(plan.after.decision.as_str())
    .bind(plan.after.assessment_id.as_deref())
    .bind(plan.ever_frozen)
    .bind(plan.version)
    .bind(cause.now)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    if let Some((payload, audit)) = plan.moved {
        notify(conn, user_id, &payload, cause.now).await?;
        tx.audit(audit);
    }
    Ok(plan.after)
}

/// Writes a `user.updated` notification and one pending delivery per configured endpoint
/// (disabled ones included: their deliveries wait until the endpoint is enabled again).
async fn notify(
    conn: &mut PgConnection,
    user_id: &str,
    payload: &str,
    now: i64,
) -> Result<(), StoreError> {
    // Nobody to tell: a message without deliveries would only be written and never read.
    // (Endpoints configured later get notifications from then on, not a backlog.)
    let anyone: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM endpoints WHERE configured)")
            .fetch_one(&mut *conn)
            .await
            .map_err(map_err)?;
    if !anyone {
        return Ok(());
    }
    let message_id = new_id("msg");
    let now_ms = now.saturating_mul(1000);
    // Both rows in one statement: the outbox row, then its deliveries. The delivery ids are
    // 24 random hex digits, as SQLite's `hex(randomblob(12))`.
    sqlx::query(
        "WITH message AS (
            INSERT INTO outbox (id, user_id, event_type, payload, created_at)
            VALUES ($1, $2, 'user.updated', $3, $4) RETURNING seq
         )
         INSERT INTO deliveries (id, message_seq, endpoint_id, user_id, status,
                                 next_attempt_at, created_at)
         SELECT 'dlv_' || left(replace(gen_random_uuid()::text, '-', ''), 24), message.seq,
                e.id, $2, 'pending', $4, $4
         FROM message, endpoints e WHERE e.configured
         ORDER BY e.id",
    )
    .bind(&message_id)
    .bind(user_id)
    .bind(payload)
    .bind(now_ms)
    .execute(conn)
    .await
    .map_err(map_err)?;
    metrics::counter!("riskhook_notifications_queued_total").increment(1);
    Ok(())
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

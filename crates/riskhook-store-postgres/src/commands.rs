//! People's commands and the dispatcher's bookkeeping, each in a transaction of its own:
//! review (claim, resolve, freeze, unfreeze, four eyes), API keys, endpoints and deliveries.
//! A review command loads its facts here, lets [`riskhook_store::rulebook`] decide, and
//! applies the plan ([`apply`]); the rules themselves are not written here.
//!
//! What makes the check and the change one step when several instances run: a review command
//! takes its user's lock before reading the case, action or user it acts on (every writer of
//! those holds the same lock); the other commands lock the one row they check
//! (`SELECT … FOR UPDATE`) or check it in the `UPDATE` itself.

use riskhook_core::assessment::{Decision, UserStatus};
use riskhook_core::review::{ActionStatus, CaseStatus};
use riskhook_store::rulebook::{self, ActionFacts, CaseFacts, Cause, Plan, Touched, Write};
use riskhook_store::{
    Attempt, AttemptUpdate, Claim, CommandError, DecideAction, DeliveryRecord, NewApiKey,
    NewAuditEntry, ResolveCase, StoreError, UserAction,
};
use serde_json::json;
use sqlx::{PgConnection, Row};

use crate::effects::{ENDPOINTS_LOCK, Tx, new_id, refresh_user, set_verdict};
use crate::{map_err, parse_decision, parse_status, reads};

fn db(e: sqlx::Error) -> CommandError {
    CommandError::Store(map_err(e))
}

// The JSON values are built at each call site only to be written here.
#[allow(clippy::too_many_arguments, clippy::needless_pass_by_value)]
fn audit(
    tx: &mut Tx,
    now: i64,
    actor: &str,
    action: &str,
    subject: String,
    reason: Option<&str>,
    before: Option<serde_json::Value>,
    after: serde_json::Value,
) {
    tx.audit(NewAuditEntry::by(
        now,
        actor,
        action,
        subject,
        reason,
        before.as_ref(),
        &after,
    ));
}

/// Takes the lock of the user a case is about (a case never changes user), then loads it.
async fn lock_and_load_case(tx: &mut Tx, id: &str) -> Result<Option<CaseFacts>, CommandError> {
    let user_id: Option<String> = sqlx::query_scalar("SELECT user_id FROM cases WHERE id = $1")
        .bind(id)
        .fetch_optional(tx.conn())
        .await
        .map_err(db)?;
    let Some(user_id) = user_id else {
        return Ok(None);
    };
    tx.lock_user(&user_id).await?;
    load_case(tx.conn(), id).await
}

async fn load_case(conn: &mut PgConnection, id: &str) -> Result<Option<CaseFacts>, CommandError> {
    let Some(row) = sqlx::query(
        "SELECT user_id, status, assignee,
                (SELECT COUNT(*) FROM assessments WHERE case_id = cases.id)
         FROM cases WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
    .map_err(db)?
    else {
        return Ok(None);
    };
    let status: String = row.try_get(1).map_err(db)?;
    Ok(Some(CaseFacts {
        id: id.to_owned(),
        user_id: row.try_get(0).map_err(db)?,
        status: CaseStatus::parse(&status)
            .ok_or_else(|| CommandError::corrupt("case status", &status))?,
        assignee: row.try_get(2).map_err(db)?,
        evidence: row.try_get(3).map_err(db)?,
    }))
}

async fn user_status(
    conn: &mut PgConnection,
    user_id: &str,
) -> Result<Option<UserStatus>, CommandError> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM users WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(conn)
        .await
        .map_err(db)?;
    Ok(status.as_deref().map(parse_status).transpose()?)
}

/// The user's unresolved case: its id and strictest decision. The caller holds the user's
/// lock.
pub(crate) async fn open_case(
    conn: &mut PgConnection,
    user_id: &str,
) -> Result<Option<(String, Decision)>, StoreError> {
    let open =
        sqlx::query("SELECT id, decision FROM cases WHERE user_id = $1 AND status <> 'resolved'")
            .bind(user_id)
            .fetch_optional(conn)
            .await
            .map_err(map_err)?;
    open.map(|row| {
        let id: String = row.try_get(0).map_err(map_err)?;
        Ok((id, parse_decision(row.try_get(1).map_err(map_err)?)?))
    })
    .transpose()
}

async fn load_action(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<ActionFacts>, CommandError> {
    let Some(row) = sqlx::query(
        "SELECT kind, user_id, case_id, outcome, case_evidence, reason, requested_by,
                requested_at, requester, status
         FROM actions WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
    .map_err(db)?
    else {
        return Ok(None);
    };
    Ok(Some(ActionFacts {
        id: id.to_owned(),
        kind: row.try_get("kind").map_err(db)?,
        user_id: row.try_get("user_id").map_err(db)?,
        case_id: row.try_get("case_id").map_err(db)?,
        outcome: row.try_get("outcome").map_err(db)?,
        case_evidence: row.try_get("case_evidence").map_err(db)?,
        reason: row.try_get("reason").map_err(db)?,
        requested_by: row.try_get("requested_by").map_err(db)?,
        requested_at: row.try_get("requested_at").map_err(db)?,
        requester: row.try_get("requester").map_err(db)?,
        status: row.try_get("status").map_err(db)?,
    }))
}

/// Applies a plan of [`rulebook`] in order, then recomputes the user it names. The caller
/// holds the user's lock.
async fn apply(tx: &mut Tx, plan: Plan) -> Result<Touched, CommandError> {
    let now = plan.now;
    for write in plan.writes {
        let query = match write {
            Write::ClaimCase { case_id, assignee } => sqlx::query(
                "UPDATE cases SET status = 'claimed', assignee = $2, updated_at = $3 WHERE id = $1",
            )
            .bind(case_id)
            .bind(assignee)
            .bind(now),
            Write::AwaitApproval {
                case_id,
                requested_by,
            } => sqlx::query(
                "UPDATE cases SET status = 'pending_approval', assignee = COALESCE(assignee, $2),
                                  updated_at = $3
                 WHERE id = $1",
            )
            .bind(case_id)
            .bind(requested_by)
            .bind(now),
            Write::ReturnCase { case_id } => {
                sqlx::query("UPDATE cases SET status = 'claimed', updated_at = $2 WHERE id = $1")
                    .bind(case_id)
                    .bind(now)
            }
            Write::ResolveCase {
                case_id,
                outcome,
                reason,
                resolved_by,
            } => sqlx::query(
                "UPDATE cases SET status = 'resolved', outcome = $2, reason = $3, resolved_at = $4,
                                  resolved_by = $5, assignee = COALESCE(assignee, $5),
                                  updated_at = $4
                 WHERE id = $1",
            )
            .bind(case_id)
            .bind(outcome.as_str())
            .bind(reason)
            .bind(now)
            .bind(resolved_by),
            Write::InsertAction(a) => {
                let decided = a.status == ActionStatus::Applied;
                sqlx::query(
                    "INSERT INTO actions (id, kind, user_id, case_id, outcome, case_evidence,
                                          reason, requested_by, requested_at, status,
                                          decided_by, decided_at, requester)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(a.id)
                .bind(a.kind.as_str())
                .bind(a.user_id)
                .bind(a.case_id)
                .bind(a.outcome.map(|o| o.as_str()))
                .bind(a.case_evidence)
                .bind(a.reason)
                .bind(a.requested_by.clone())
                .bind(now)
                .bind(a.status.as_str())
                .bind(decided.then_some(a.requested_by))
                .bind(decided.then_some(now))
                .bind(a.requester)
            }
            Write::DecideAction {
                action_id,
                status,
                decided_by,
                reason,
            } => sqlx::query(
                "UPDATE actions SET status = $2, decided_by = $3, decided_at = $4,
                                    decision_reason = $5
                 WHERE id = $1",
            )
            .bind(action_id)
            .bind(status.as_str())
            .bind(decided_by)
            .bind(now)
            .bind(reason),
            Write::SetVerdict {
                user_id,
                verdict,
                by,
            } => {
                set_verdict(tx.conn(), &user_id, verdict, &by, now).await?;
                continue;
            }
            Write::Audit(entry) => {
                tx.audit(entry);
                continue;
            }
        };
        query.execute(tx.conn()).await.map_err(db)?;
    }
    if let Some(refresh) = plan.refresh {
        let cause = Cause {
            what: refresh.what,
            actor: &refresh.actor,
            now,
        };
        refresh_user(tx, &refresh.user_id, cause).await?;
    }
    Ok(plan.touched)
}

pub(crate) async fn claim_case(
    tx: &mut Tx,
    id: &str,
    actor: &str,
    now: i64,
) -> Result<(), CommandError> {
    let case = lock_and_load_case(tx, id)
        .await?
        .ok_or_else(|| CommandError::not_found("case", id))?;
    apply(tx, rulebook::plan_claim(&case, actor, now)?).await?;
    Ok(())
}

pub(crate) async fn resolve_case(tx: &mut Tx, c: &ResolveCase) -> Result<Touched, CommandError> {
    let case = lock_and_load_case(tx, &c.case_id).await?;
    let status = match &case {
        Some(case) => user_status(tx.conn(), &case.user_id).await?,
        None => None,
    };
    let plan = rulebook::plan_resolution(case.as_ref(), status, c, &new_id("act"))?;
    apply(tx, plan).await
}

pub(crate) async fn act_on_user(tx: &mut Tx, c: &UserAction) -> Result<Touched, CommandError> {
    tx.lock_user(&c.user_id).await?;
    let status = user_status(tx.conn(), &c.user_id).await?;
    let open = open_case(tx.conn(), &c.user_id).await?;
    let open = open.as_ref().map(|(id, decision)| (id.as_str(), *decision));
    let plan = rulebook::plan_user_action(status, open, c, &new_id("act"))?;
    apply(tx, plan).await
}

pub(crate) async fn decide_action(tx: &mut Tx, c: &DecideAction) -> Result<Touched, CommandError> {
    // An action never changes user: lock them, then read the action as it stands.
    let user_id: Option<String> = sqlx::query_scalar("SELECT user_id FROM actions WHERE id = $1")
        .bind(&c.action_id)
        .fetch_optional(tx.conn())
        .await
        .map_err(db)?;
    let user_id = user_id.ok_or_else(|| CommandError::not_found("action", &c.action_id))?;
    tx.lock_user(&user_id).await?;
    let action = load_action(tx.conn(), &c.action_id)
        .await?
        .ok_or_else(|| CommandError::not_found("action", &c.action_id))?;
    let case = match &action.case_id {
        Some(case_id) => load_case(tx.conn(), case_id).await?,
        None => None,
    };
    let status = user_status(tx.conn(), &action.user_id).await?;
    let plan = rulebook::plan_decision(&action, case.as_ref(), status, c)?;
    apply(tx, plan).await
}

pub(crate) async fn create_key(
    tx: &mut Tx,
    key: &NewApiKey,
    actor: &str,
    now: i64,
) -> Result<(), CommandError> {
    let inserted = sqlx::query(
        "INSERT INTO api_keys (id, name, principal, role, hash, created_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(&key.id)
    .bind(&key.name)
    .bind(&key.principal)
    .bind(key.role.as_str())
    .bind(&key.hash)
    .bind(now)
    .bind(actor)
    .execute(tx.conn())
    .await
    .map_err(db)?
    .rows_affected();
    if inserted == 0 {
        return Err(CommandError::Conflict(format!(
            "a key with id {} or the same secret exists",
            key.id
        )));
    }
    audit(
        tx,
        now,
        actor,
        "key.created",
        format!("key:{}", key.id),
        None,
        None,
        json!({ "id": key.id, "name": key.name, "role": key.role.as_str() }),
    );
    Ok(())
}

pub(crate) async fn revoke_key(
    tx: &mut Tx,
    id: &str,
    actor: &str,
    now: i64,
) -> Result<(), CommandError> {
    // Locked, so two revocations at once audit one change.
    let revoked: Option<Option<i64>> =
        sqlx::query_scalar("SELECT revoked_at FROM api_keys WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(tx.conn())
            .await
            .map_err(db)?;
    match revoked {
        None => Err(CommandError::not_found("key", id)),
        Some(Some(_)) => Ok(()),
        Some(None) => {
            sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(tx.conn())
                .await
                .map_err(db)?;
            audit(
                tx,
                now,
                actor,
                "key.revoked",
                format!("key:{id}"),
                None,
                Some(json!({ "revoked": false })),
                json!({ "revoked": true }),
            );
            Ok(())
        }
    }
}

pub(crate) async fn sync_endpoints(
    tx: &mut Tx,
    ids: &[String],
    now_ms: i64,
) -> Result<(), StoreError> {
    // Instances starting together each rewrite every row: one at a time.
    tx.lock(ENDPOINTS_LOCK).await?;
    sqlx::query("UPDATE endpoints SET configured = FALSE WHERE configured")
        .execute(tx.conn())
        .await
        .map_err(map_err)?;
    sqlx::query(
        "INSERT INTO endpoints (id, configured, updated_at)
         SELECT id, TRUE, $2 FROM UNNEST($1::text[]) AS configured (id)
         ON CONFLICT (id) DO UPDATE SET configured = TRUE, updated_at = EXCLUDED.updated_at",
    )
    .bind(ids)
    .bind(now_ms)
    .execute(tx.conn())
    .await
    .map_err(map_err)?;
    Ok(())
}

pub(crate) async fn enable_endpoint(
    tx: &mut Tx,
    id: &str,
    actor: &str,
    now_ms: i64,
) -> Result<(), CommandError> {
    let disabled: Option<Option<i64>> =
        sqlx::query_scalar("SELECT disabled_at FROM endpoints WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(tx.conn())
            .await
            .map_err(db)?;
    match disabled {
        None => Err(CommandError::not_found("endpoint", id)),
        Some(None) => Ok(()),
        Some(Some(_)) => {
            sqlx::query(
                "UPDATE endpoints SET disabled_at = NULL, disabled_reason = NULL, updated_at = $2
                 WHERE id = $1",
            )
            .bind(id)
            .bind(now_ms)
            .execute(tx.conn())
            .await
            .map_err(db)?;
            audit(
                tx,
                now_ms / 1000,
                actor,
                "endpoint.enabled",
                format!("endpoint:{id}"),
                None,
                Some(json!({ "enabled": false })),
                json!({ "enabled": true }),
            );
            Ok(())
        }
    }
}

/// Leases due deliveries and returns them in order, in one statement.
///
/// The rules are SQLite's: pending, due, lease free or expired, to a configured and enabled
/// endpoint, and no earlier pending delivery of the same user for that endpoint. Across
/// dispatchers, `FOR UPDATE SKIP LOCKED` passes over rows another claim is leasing right now
/// instead of waiting for it, and a row whose lease another claim committed after this
/// statement began is re-checked on its new version (its lease now holds) and left out: no
/// delivery is handed to two dispatchers. A skipped row still counts as an earlier pending
/// delivery of its user, so order per user holds too.
pub(crate) async fn claim_deliveries(
    conn: &mut PgConnection,
    claim: &Claim,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let rows = sqlx::query(
        "WITH due AS (
            SELECT d.seq FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
            WHERE d.status = 'pending' AND e.configured AND e.disabled_at IS NULL
              AND d.next_attempt_at <= $2
              AND (d.lease_until IS NULL OR d.lease_until <= $2)
              AND NOT EXISTS (SELECT 1 FROM deliveries p
                              WHERE p.status = 'pending' AND p.endpoint_id = d.endpoint_id
                                AND p.user_id = d.user_id AND p.seq < d.seq)
            ORDER BY d.seq LIMIT $4
            FOR UPDATE OF d SKIP LOCKED
         )
         UPDATE deliveries d SET lease_owner = $1, lease_until = $2 + $3
         FROM due, outbox o
         WHERE d.seq = due.seq AND o.seq = d.message_seq
         RETURNING d.*, o.id AS message_id, o.event_type, o.payload",
    )
    .bind(&claim.owner)
    .bind(claim.now)
    .bind(claim.lease)
    .bind(i64::from(claim.limit))
    .fetch_all(conn)
    .await
    .map_err(map_err)?;
    let mut claimed = rows
        .iter()
        .map(|row| {
            Ok((
                row.try_get::<i64, _>("seq").map_err(map_err)?,
                reads::delivery_record(row)?,
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    claimed.sort_by_key(|(seq, _)| *seq);
    Ok(claimed.into_iter().map(|(_, d)| d).collect())
}

pub(crate) async fn record_attempt(
    tx: &mut Tx,
    id: &str,
    owner: &str,
    attempt: &Attempt,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let AttemptUpdate {
        status,
        next_attempt_at: next,
        last_status,
        last_error: error,
        delivered_at,
    } = attempt.update(now_ms);
    // Checked in the update itself: only the lease's owner, only while pending.
    let endpoint: Option<String> = sqlx::query_scalar(
        "UPDATE deliveries SET status = $3, attempts = attempts + 1,
                next_attempt_at = COALESCE($4, next_attempt_at), last_status = $5,
                last_error = $6, delivered_at = $7, lease_owner = NULL, lease_until = NULL
         WHERE id = $1 AND lease_owner = $2 AND status = 'pending'
         RETURNING endpoint_id",
    )
    .bind(id)
    .bind(owner)
    .bind(status)
    .bind(next)
    .bind(last_status.map(i32::from))
    .bind(error)
    .bind(delivered_at)
    .fetch_optional(tx.conn())
    .await
    .map_err(map_err)?;
    let Some(endpoint) = endpoint else {
        return Ok(false);
    };
    if *attempt == Attempt::Gone {
        let disabled = sqlx::query(
            "UPDATE endpoints SET disabled_at = $2, disabled_reason = 'answered 410 Gone',
                                  updated_at = $2
             WHERE id = $1 AND disabled_at IS NULL",
        )
        .bind(&endpoint)
        .bind(now_ms)
        .execute(tx.conn())
        .await
        .map_err(map_err)?
        .rows_affected();
        if disabled > 0 {
            audit(
                tx,
                now_ms / 1000,
                "system",
                "endpoint.disabled",
                format!("endpoint:{endpoint}"),
                Some("the endpoint answered 410 Gone"),
                Some(json!({ "enabled": true })),
                json!({ "enabled": false }),
            );
        }
    }
    Ok(true)
}

pub(crate) async fn retry_delivery(
    tx: &mut Tx,
    id: &str,
    actor: &str,
    now_ms: i64,
) -> Result<(), CommandError> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM deliveries WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(tx.conn())
            .await
            .map_err(db)?;
    match status.as_deref() {
        None => Err(CommandError::not_found("delivery", id)),
        Some("failed") => {
            sqlx::query(
                "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $2,
                                       lease_owner = NULL, lease_until = NULL
                 WHERE id = $1",
            )
            .bind(id)
            .bind(now_ms)
            .execute(tx.conn())
            .await
            .map_err(db)?;
            audit(
                tx,
                now_ms / 1000,
                actor,
                "delivery.retried",
                format!("delivery:{id}"),
                None,
                Some(json!({ "status": "failed" })),
                json!({ "status": "pending" }),
            );
            Ok(())
        }
        Some(other) => Err(CommandError::Conflict(format!(
            "delivery {id} is {other}; only a failed delivery can be retried"
        ))),
    }
}

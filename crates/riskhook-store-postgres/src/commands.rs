//! People's commands and the dispatcher's bookkeeping, each in a transaction of its own:
//! review (claim, resolve, freeze, unfreeze, four eyes), API keys, endpoints and deliveries.
//! Each checks the state it acts on inside the transaction, applies the change with its
//! effects ([`crate::effects`]) and audits it, or changes nothing.
//!
//! What makes the check and the change one step when several instances run: a review command
//! takes its user's lock before reading the case, action or user it acts on (every writer of
//! those holds the same lock); the other commands lock the one row they check
//! (`SELECT … FOR UPDATE`) or check it in the `UPDATE` itself.

use riskhook_core::assessment::UserStatus;
use riskhook_core::review::{
    ActionKind, ActionStatus, CaseStatus, Outcome, account_status, needs_second_person,
    second_person_refusal,
};
use riskhook_store::{
    Attempt, AttemptUpdate, Claim, CommandError, DecideAction, DeliveryRecord, NewApiKey,
    NewAuditEntry, ResolveCase, StoreError, UserAction, requester_json, requester_person,
};
use serde_json::json;
use sqlx::{PgConnection, Row};

use crate::effects::{Cause, ENDPOINTS_LOCK, Tx, new_id, refresh_user, set_verdict};
use crate::{map_err, parse_decision, reads};

/// What a review command touched: the user, and the case and action when there are.
pub(crate) type Touched = (String, Option<String>, Option<String>);

fn db(e: sqlx::Error) -> CommandError {
    CommandError::Store(map_err(e))
}

fn corrupt(what: &str, value: &str) -> CommandError {
    CommandError::Store(StoreError::Corrupt(format!("unknown {what} `{value}`")))
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

struct Case {
    user_id: String,
    status: CaseStatus,
    assignee: Option<String>,
    evidence: i64,
}

/// Takes the lock of the user a case is about (a case never changes user), then loads it.
async fn lock_and_load_case(tx: &mut Tx, id: &str) -> Result<Case, CommandError> {
    let user_id: Option<String> = sqlx::query_scalar("SELECT user_id FROM cases WHERE id = $1")
        .bind(id)
        .fetch_optional(tx.conn())
        .await
        .map_err(db)?;
    let user_id = user_id.ok_or_else(|| CommandError::not_found("case", id))?;
    tx.lock_user(&user_id).await?;
    load_case(tx.conn(), id).await
}

async fn load_case(conn: &mut PgConnection, id: &str) -> Result<Case, CommandError> {
    let row = sqlx::query(
        "SELECT user_id, status, assignee,
                (SELECT COUNT(*) FROM assessments WHERE case_id = cases.id)
         FROM cases WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
    .map_err(db)?
    .ok_or_else(|| CommandError::not_found("case", id))?;
    let status: String = row.try_get(1).map_err(db)?;
    Ok(Case {
        user_id: row.try_get(0).map_err(db)?,
        status: CaseStatus::parse(&status).ok_or_else(|| corrupt("case status", &status))?,
        assignee: row.try_get(2).map_err(db)?,
        evidence: row.try_get(3).map_err(db)?,
    })
}

async fn user_status(conn: &mut PgConnection, user_id: &str) -> Result<UserStatus, CommandError> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM users WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(conn)
        .await
        .map_err(db)?;
    let status = status.ok_or_else(|| CommandError::not_found("user", user_id))?;
    UserStatus::parse(&status).ok_or_else(|| corrupt("user status", &status))
}

pub(crate) async fn claim_case(
    tx: &mut Tx,
    id: &str,
    actor: &str,
    now: i64,
) -> Result<(), CommandError> {
    let case = lock_and_load_case(tx, id).await?;
    match (case.status, case.assignee.as_deref()) {
        (CaseStatus::Resolved, _) => Err(CommandError::Conflict(format!(
            "case {id} is already resolved"
        ))),
        (CaseStatus::PendingApproval, _) => Err(CommandError::Conflict(format!(
            "case {id} awaits a second person's approval of its resolution"
        ))),
        (CaseStatus::Claimed, Some(assignee)) if assignee == actor => Ok(()),
        (CaseStatus::Claimed, assignee) => Err(CommandError::Conflict(format!(
            "case {id} is claimed by {}",
            assignee.unwrap_or("another key")
        ))),
        (CaseStatus::Open, _) => {
            sqlx::query(
                "UPDATE cases SET status = 'claimed', assignee = $2, updated_at = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(actor)
            .bind(now)
            .execute(tx.conn())
            .await
            .map_err(db)?;
            audit(
                tx,
                now,
                actor,
                "case.claimed",
                format!("case:{id}"),
                None,
                Some(json!({ "status": "open", "assignee": null })),
                json!({ "status": "claimed", "assignee": actor }),
            );
            Ok(())
        }
    }
}

fn require_reason(reason: &str) -> Result<(), CommandError> {
    if reason.trim().is_empty() {
        return Err(CommandError::Conflict("a reason is required".to_owned()));
    }
    Ok(())
}

pub(crate) async fn resolve_case(tx: &mut Tx, c: &ResolveCase) -> Result<Touched, CommandError> {
    require_reason(&c.reason)?;
    let case = lock_and_load_case(tx, &c.case_id).await?;
    match (case.status, case.assignee.as_deref()) {
        (CaseStatus::Resolved, _) => {
            return Err(CommandError::Conflict(format!(
                "case {} is already resolved",
                c.case_id
            )));
        }
        (CaseStatus::PendingApproval, _) => {
            return Err(CommandError::Conflict(format!(
                "case {} awaits a second person's approval of its resolution",
                c.case_id
            )));
        }
        (CaseStatus::Claimed, Some(assignee)) if assignee != c.actor => {
            return Err(CommandError::Conflict(format!(
                "case {} is claimed by {assignee}; only its assignee can resolve it",
                c.case_id
            )));
        }
        _ => {}
    }
    let current = user_status(tx.conn(), &case.user_id).await?;
    if needs_second_person(c.four_eyes, current, c.outcome.status()) {
        let action_id = new_id("act");
        sqlx::query(
            "INSERT INTO actions (id, kind, user_id, case_id, outcome, case_evidence, reason,
                                  requested_by, requested_at, status, requester)
             VALUES ($1, 'resolve_case', $2, $3, $4, $5, $6, $7, $8, 'pending', $9)",
        )
        .bind(&action_id)
        .bind(&case.user_id)
        .bind(&c.case_id)
        .bind(c.outcome.as_str())
        .bind(case.evidence)
        .bind(&c.reason)
        .bind(&c.actor)
        .bind(c.now)
        .bind(requester_json(&c.person))
        .execute(tx.conn())
        .await
        .map_err(db)?;
        sqlx::query(
            "UPDATE cases SET status = 'pending_approval', assignee = COALESCE(assignee, $2),
                              updated_at = $3
             WHERE id = $1",
        )
        .bind(&c.case_id)
        .bind(&c.actor)
        .bind(c.now)
        .execute(tx.conn())
        .await
        .map_err(db)?;
        audit(
            tx,
            c.now,
            &c.actor,
            "action.requested",
            format!("action:{action_id}"),
            Some(&c.reason),
            None,
            json!({ "kind": "resolve_case", "case_id": c.case_id, "outcome": c.outcome.as_str(),
                    "user_id": case.user_id, "status": "pending" }),
        );
        return Ok((case.user_id, Some(c.case_id.clone()), Some(action_id)));
    }
    apply_resolution(tx, &c.case_id, &case, c.outcome, &c.reason, &c.actor, c.now).await?;
    Ok((case.user_id, Some(c.case_id.clone()), None))
}

async fn apply_resolution(
    tx: &mut Tx,
    case_id: &str,
    case: &Case,
    outcome: Outcome,
    reason: &str,
    actor: &str,
    now: i64,
) -> Result<(), CommandError> {
    sqlx::query(
        "UPDATE cases SET status = 'resolved', outcome = $2, reason = $3, resolved_at = $4,
                          resolved_by = $5, assignee = COALESCE(assignee, $5), updated_at = $4
         WHERE id = $1",
    )
    .bind(case_id)
    .bind(outcome.as_str())
    .bind(reason)
    .bind(now)
    .bind(actor)
    .execute(tx.conn())
    .await
    .map_err(db)?;
    audit(
        tx,
        now,
        actor,
        "case.resolved",
        format!("case:{case_id}"),
        Some(reason),
        Some(json!({ "status": case.status.as_str() })),
        json!({ "status": "resolved", "outcome": outcome.as_str(), "user_id": case.user_id }),
    );
    set_verdict(tx.conn(), &case.user_id, outcome.status(), actor, now).await?;
    refresh_user(
        tx,
        &case.user_id,
        Cause {
            what: "case.resolved",
            actor,
            now,
        },
    )
    .await?;
    Ok(())
}

pub(crate) async fn act_on_user(tx: &mut Tx, c: &UserAction) -> Result<Touched, CommandError> {
    require_reason(&c.reason)?;
    tx.lock_user(&c.user_id).await?;
    let current = user_status(tx.conn(), &c.user_id).await?;
    let target = match c.kind {
        ActionKind::Freeze => UserStatus::Frozen,
        ActionKind::Unfreeze => UserStatus::Active,
        ActionKind::ResolveCase => {
            return Err(CommandError::Conflict(
                "a case is resolved through its case, not as a user action".to_owned(),
            ));
        }
    };
    if c.kind == ActionKind::Unfreeze {
        if current != UserStatus::Frozen {
            return Err(CommandError::Conflict(format!(
                "user {} is {}, not frozen",
                c.user_id,
                current.as_str()
            )));
        }
        let open = sqlx::query(
            "SELECT id, decision FROM cases WHERE user_id = $1 AND status <> 'resolved'",
        )
        .bind(&c.user_id)
        .fetch_optional(tx.conn())
        .await
        .map_err(db)?;
        if let Some(open) = open {
            let case_id: String = open.try_get(0).map_err(db)?;
            let decision = parse_decision(open.try_get(1).map_err(db)?)?;
            if account_status(Some(UserStatus::Active), Some(decision)) == UserStatus::Frozen {
                return Err(CommandError::Conflict(format!(
                    "user {} is frozen by the evidence of open case {case_id}; resolve that case instead",
                    c.user_id
                )));
            }
        }
    }
    let pending = needs_second_person(c.four_eyes, current, target);
    let action_id = new_id("act");
    sqlx::query(
        "INSERT INTO actions (id, kind, user_id, reason, requested_by, requested_at, status,
                              decided_by, decided_at, requester)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&action_id)
    .bind(c.kind.as_str())
    .bind(&c.user_id)
    .bind(&c.reason)
    .bind(&c.actor)
    .bind(c.now)
    .bind(if pending { "pending" } else { "applied" })
    .bind((!pending).then_some(c.actor.as_str()))
    .bind((!pending).then_some(c.now))
    .bind(requester_json(&c.person))
    .execute(tx.conn())
    .await
    .map_err(db)?;
    if pending {
        audit(
            tx,
            c.now,
            &c.actor,
            "action.requested",
            format!("action:{action_id}"),
            Some(&c.reason),
            None,
            json!({ "kind": c.kind.as_str(), "user_id": c.user_id, "status": "pending" }),
        );
    } else {
        apply_user_action(
            tx, &c.user_id, c.kind, target, current, &c.reason, &c.actor, c.now,
        )
        .await?;
    }
    Ok((c.user_id.clone(), None, Some(action_id)))
}

#[allow(clippy::too_many_arguments)]
async fn apply_user_action(
    tx: &mut Tx,
    user_id: &str,
    kind: ActionKind,
    target: UserStatus,
    current: UserStatus,
    reason: &str,
    actor: &str,
    now: i64,
) -> Result<(), CommandError> {
    let action = match kind {
        ActionKind::Freeze => "user.frozen",
        _ => "user.unfrozen",
    };
    audit(
        tx,
        now,
        actor,
        action,
        format!("user:{user_id}"),
        Some(reason),
        Some(json!({ "status": current.as_str() })),
        json!({ "verdict": target.as_str() }),
    );
    set_verdict(tx.conn(), user_id, target, actor, now).await?;
    refresh_user(
        tx,
        user_id,
        Cause {
            what: action,
            actor,
            now,
        },
    )
    .await?;
    Ok(())
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
    let row = sqlx::query(
        "SELECT kind, case_id, outcome, case_evidence, reason, requested_by, requested_at,
                requester, status
         FROM actions WHERE id = $1",
    )
    .bind(&c.action_id)
    .fetch_optional(tx.conn())
    .await
    .map_err(db)?
    .ok_or_else(|| CommandError::not_found("action", &c.action_id))?;
    let kind: String = row.try_get("kind").map_err(db)?;
    let case_id: Option<String> = row.try_get("case_id").map_err(db)?;
    let outcome: Option<String> = row.try_get("outcome").map_err(db)?;
    let evidence: Option<i64> = row.try_get("case_evidence").map_err(db)?;
    let reason: String = row.try_get("reason").map_err(db)?;
    let requested_by: String = row.try_get("requested_by").map_err(db)?;
    let requested_at: i64 = row.try_get("requested_at").map_err(db)?;
    let requester: Option<String> = row.try_get("requester").map_err(db)?;
    let status: String = row.try_get("status").map_err(db)?;
    let kind = ActionKind::parse(&kind).ok_or_else(|| corrupt("action kind", &kind))?;
    if ActionStatus::parse(&status) != Some(ActionStatus::Pending) {
        return Err(CommandError::Conflict(format!(
            "action {} is already {status}",
            c.action_id
        )));
    }
    let requester = requester_person(requester.as_deref(), &requested_by)?;
    if let Some(why) = second_person_refusal(&requester, requested_at, &c.person) {
        return Err(CommandError::SamePerson(format!(
            "action {}: {why}",
            c.action_id
        )));
    }
    sqlx::query(
        "UPDATE actions SET status = $2, decided_by = $3, decided_at = $4, decision_reason = $5
         WHERE id = $1",
    )
    .bind(&c.action_id)
    .bind(if c.approve { "applied" } else { "rejected" })
    .bind(&c.actor)
    .bind(c.now)
    .bind(c.reason.as_deref())
    .execute(tx.conn())
    .await
    .map_err(db)?;
    audit(
        tx,
        c.now,
        &c.actor,
        if c.approve {
            "action.approved"
        } else {
            "action.rejected"
        },
        format!("action:{}", c.action_id),
        c.reason.as_deref(),
        Some(json!({ "status": "pending", "requested_by": requested_by })),
        json!({ "status": if c.approve { "applied" } else { "rejected" } }),
    );
    match (kind, case_id) {
        (ActionKind::ResolveCase, Some(case_id)) => {
            let case = load_case(tx.conn(), &case_id).await?;
            if !c.approve {
                sqlx::query("UPDATE cases SET status = 'claimed', updated_at = $2 WHERE id = $1")
                    .bind(&case_id)
                    .bind(c.now)
                    .execute(tx.conn())
                    .await
                    .map_err(db)?;
                return Ok((user_id, Some(case_id), Some(c.action_id.clone())));
            }
            if case.status != CaseStatus::PendingApproval || Some(case.evidence) != evidence {
                return Err(CommandError::Conflict(format!(
                    "case {case_id} has changed since the resolution was requested (new evidence); resolve it again"
                )));
            }
            let outcome = outcome.as_deref().unwrap_or_default();
            let outcome = Outcome::parse(outcome).ok_or_else(|| corrupt("outcome", outcome))?;
            // The resolution is the requester's; the approver is recorded on the action.
            apply_resolution(tx, &case_id, &case, outcome, &reason, &requested_by, c.now).await?;
            Ok((user_id, Some(case_id), Some(c.action_id.clone())))
        }
        (ActionKind::Freeze | ActionKind::Unfreeze, _) if c.approve => {
            let current = user_status(tx.conn(), &user_id).await?;
            let target = if kind == ActionKind::Freeze {
                UserStatus::Frozen
            } else {
                UserStatus::Active
            };
            if kind == ActionKind::Unfreeze && current != UserStatus::Frozen {
                return Err(CommandError::Conflict(format!(
                    "user {user_id} is no longer frozen"
                )));
            }
            apply_user_action(
                tx,
                &user_id,
                kind,
                target,
                current,
                &reason,
                &requested_by,
                c.now,
            )
            .await?;
            Ok((user_id, None, Some(c.action_id.clone())))
        }
        _ => Ok((user_id, None, Some(c.action_id.clone()))),
    }
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

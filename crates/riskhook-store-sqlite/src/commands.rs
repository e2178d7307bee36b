//! People's commands and the dispatcher's bookkeeping, each run by the writer thread in a
//! transaction of its own: review (claim, resolve, freeze, unfreeze, four eyes), API keys,
//! endpoints and deliveries, or nothing when refused.
//!
//! A review command loads its facts here, lets [`riskhook_store::rulebook`] decide, and
//! applies the plan ([`apply`]); the rules themselves are not written here. They return what
//! they touched; the store reads the records back through its read pool after the commit.

use riskhook_core::assessment::{Decision, UserStatus};
use riskhook_core::review::{ActionStatus, CaseStatus};
use riskhook_store::rulebook::{self, ActionFacts, CaseFacts, Cause, Plan, Touched, Write};
use riskhook_store::{
    Attempt, AttemptUpdate, CommandError, DecideAction, NewApiKey, NewAuditEntry, ResolveCase,
    StoreError, UiSessionRecord, UserAction,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use crate::effects::{append_audit, new_id, refresh_user, set_verdict};
use crate::writer::map_err;

fn db(e: rusqlite::Error) -> CommandError {
    CommandError::Store(map_err(e))
}

// The JSON values are built at each call site only to be written here.
#[allow(clippy::too_many_arguments, clippy::needless_pass_by_value)]
fn audit(
    conn: &Connection,
    now: i64,
    actor: &str,
    action: &str,
    subject: String,
    reason: Option<&str>,
    before: Option<serde_json::Value>,
    after: serde_json::Value,
) -> Result<(), CommandError> {
    append_audit(
        conn,
        NewAuditEntry::by(now, actor, action, subject, reason, before.as_ref(), &after),
    )?;
    Ok(())
}

fn load_case(conn: &Connection, id: &str) -> Result<Option<CaseFacts>, CommandError> {
    let row: Option<(String, String, Option<String>, i64)> = conn
        .prepare_cached(
            "SELECT user_id, status, assignee,
                    (SELECT COUNT(*) FROM assessments WHERE case_id = cases.id)
             FROM cases WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.query_row(params![id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
        })
        .map_err(db)?;
    let Some((user_id, status, assignee, evidence)) = row else {
        return Ok(None);
    };
    Ok(Some(CaseFacts {
        id: id.to_owned(),
        user_id,
        status: CaseStatus::parse(&status)
            .ok_or_else(|| CommandError::corrupt("case status", &status))?,
        assignee,
        evidence,
    }))
}

fn user_status(conn: &Connection, user_id: &str) -> Result<Option<UserStatus>, CommandError> {
    let status: Option<String> = conn
        .prepare_cached("SELECT status FROM users WHERE user_id = ?1")
        .and_then(|mut s| s.query_row(params![user_id], |r| r.get(0)).optional())
        .map_err(db)?;
    Ok(status.as_deref().map(crate::parse_status).transpose()?)
}

/// The user's unresolved case: its id and strictest decision.
pub(crate) fn open_case(
    conn: &Connection,
    user_id: &str,
) -> Result<Option<(String, Decision)>, StoreError> {
    let open: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT id, decision FROM cases WHERE user_id = ?1 AND status <> 'resolved'",
        )
        .and_then(|mut s| {
            s.query_row(params![user_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(map_err)?;
    open.map(|(id, decision)| Ok((id, crate::parse_decision(&decision)?)))
        .transpose()
}

fn load_action(conn: &Connection, id: &str) -> Result<Option<ActionFacts>, CommandError> {
    conn.prepare_cached(
        "SELECT kind, user_id, case_id, outcome, case_evidence, reason, requested_by,
                requested_at, requester, status
         FROM actions WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.query_row(params![id], |r| {
            Ok(ActionFacts {
                id: id.to_owned(),
                kind: r.get(0)?,
                user_id: r.get(1)?,
                case_id: r.get(2)?,
                outcome: r.get(3)?,
                case_evidence: r.get(4)?,
                reason: r.get(5)?,
                requested_by: r.get(6)?,
                requested_at: r.get(7)?,
                requester: r.get(8)?,
                status: r.get(9)?,
            })
        })
        .optional()
    })
    .map_err(db)
}

/// Applies a plan of [`rulebook`] in order, then recomputes the user it names.
fn apply(conn: &Connection, plan: Plan) -> Result<Touched, CommandError> {
    let now = plan.now;
    for write in plan.writes {
        let changed = match write {
            Write::ClaimCase { case_id, assignee } => conn
                .prepare_cached(
                    "UPDATE cases SET status = 'claimed', assignee = ?2, updated_at = ?3
                     WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![case_id, assignee, now])),
            Write::AwaitApproval {
                case_id,
                requested_by,
            } => conn
                .prepare_cached(
                    "UPDATE cases SET status = 'pending_approval',
                                      assignee = COALESCE(assignee, ?2), updated_at = ?3
                     WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![case_id, requested_by, now])),
            Write::ReturnCase { case_id } => conn
                .prepare_cached(
                    "UPDATE cases SET status = 'claimed', updated_at = ?2 WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![case_id, now])),
            Write::ResolveCase {
                case_id,
                outcome,
                reason,
                resolved_by,
            } => conn
                .prepare_cached(
                    "UPDATE cases SET status = 'resolved', outcome = ?2, reason = ?3,
                                      resolved_at = ?4, resolved_by = ?5,
                                      assignee = COALESCE(assignee, ?5), updated_at = ?4
                     WHERE id = ?1",
                )
                .and_then(|mut s| {
                    s.execute(params![case_id, outcome.as_str(), reason, now, resolved_by])
                }),
            Write::InsertAction(a) => {
                let decided = a.status == ActionStatus::Applied;
                conn.prepare_cached(
                    "INSERT INTO actions (id, kind, user_id, case_id, outcome, case_evidence,
                                          reason, requested_by, requested_at, status,
                                          decided_by, decided_at, requester)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        a.id,
                        a.kind.as_str(),
                        a.user_id,
                        a.case_id,
                        a.outcome.map(|o| o.as_str()),
                        a.case_evidence,
                        a.reason,
                        a.requested_by,
                        now,
                        a.status.as_str(),
                        decided.then_some(&a.requested_by),
                        decided.then_some(now),
                        a.requester,
                    ])
                })
            }
            Write::DecideAction {
                action_id,
                status,
                decided_by,
                reason,
            } => conn
                .prepare_cached(
                    "UPDATE actions SET status = ?2, decided_by = ?3, decided_at = ?4,
                                        decision_reason = ?5
                     WHERE id = ?1",
                )
                .and_then(|mut s| {
                    s.execute(params![action_id, status.as_str(), decided_by, now, reason])
                }),
            Write::SetVerdict {
                user_id,
                verdict,
                by,
            } => {
                set_verdict(conn, &user_id, verdict, &by, now)?;
                continue;
            }
            Write::Audit(entry) => {
                append_audit(conn, entry)?;
                continue;
            }
        };
        changed.map_err(db)?;
    }
    if let Some(refresh) = plan.refresh {
        let cause = Cause {
            what: refresh.what,
            actor: &refresh.actor,
            now,
        };
        refresh_user(conn, &refresh.user_id, cause)?;
    }
    Ok(plan.touched)
}

pub(crate) fn claim_case(
    conn: &Connection,
    id: &str,
    actor: &str,
    now: i64,
) -> Result<(), CommandError> {
    let case = load_case(conn, id)?.ok_or_else(|| CommandError::not_found("case", id))?;
    apply(conn, rulebook::plan_claim(&case, actor, now)?)?;
    Ok(())
}

pub(crate) fn resolve_case(conn: &Connection, c: &ResolveCase) -> Result<Touched, CommandError> {
    let case = load_case(conn, &c.case_id)?;
    let status = match &case {
        Some(case) => user_status(conn, &case.user_id)?,
        None => None,
    };
    let plan = rulebook::plan_resolution(case.as_ref(), status, c, &new_id("act"))?;
    apply(conn, plan)
}

pub(crate) fn act_on_user(conn: &Connection, c: &UserAction) -> Result<Touched, CommandError> {
    let status = user_status(conn, &c.user_id)?;
    let open = open_case(conn, &c.user_id)?;
    let open = open.as_ref().map(|(id, decision)| (id.as_str(), *decision));
    let plan = rulebook::plan_user_action(status, open, c, &new_id("act"))?;
    apply(conn, plan)
}

pub(crate) fn decide_action(conn: &Connection, c: &DecideAction) -> Result<Touched, CommandError> {
    let action = load_action(conn, &c.action_id)?
        .ok_or_else(|| CommandError::not_found("action", &c.action_id))?;
    let case = match &action.case_id {
        Some(case_id) => load_case(conn, case_id)?,
        None => None,
    };
    let status = user_status(conn, &action.user_id)?;
    let plan = rulebook::plan_decision(&action, case.as_ref(), status, c)?;
    apply(conn, plan)
}

pub(crate) fn create_key(
    conn: &Connection,
    key: &NewApiKey,
    actor: &str,
    now: i64,
) -> Result<(), CommandError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO api_keys (id, name, principal, role, hash, created_at, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                key.id,
                key.name,
                key.principal,
                key.role.as_str(),
                key.hash,
                now,
                actor
            ])
        })
        .map_err(db)?;
    if inserted == 0 {
        return Err(CommandError::Conflict(format!(
            "a key with id {} or the same secret exists",
            key.id
        )));
    }
    audit(
        conn,
        now,
        actor,
        "key.created",
        format!("key:{}", key.id),
        None,
        None,
        json!({ "id": key.id, "name": key.name, "role": key.role.as_str() }),
    )
}

pub(crate) fn revoke_key(
    conn: &Connection,
    id: &str,
    actor: &str,
    now: i64,
) -> Result<(), CommandError> {
    let revoked: Option<Option<i64>> = conn
        .prepare_cached("SELECT revoked_at FROM api_keys WHERE id = ?1")
        .and_then(|mut s| s.query_row(params![id], |r| r.get(0)).optional())
        .map_err(db)?;
    match revoked {
        None => Err(CommandError::not_found("key", id)),
        Some(Some(_)) => Ok(()),
        Some(None) => {
            conn.prepare_cached("UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![id, now]))
                .map_err(db)?;
            audit(
                conn,
                now,
                actor,
                "key.revoked",
                format!("key:{id}"),
                None,
                Some(json!({ "revoked": false })),
                json!({ "revoked": true }),
            )
        }
    }
}

pub(crate) fn sync_endpoints(
    conn: &Connection,
    ids: &[String],
    now_ms: i64,
) -> Result<(), CommandError> {
    conn.execute("UPDATE endpoints SET configured = 0", [])
        .map_err(db)?;
    for id in ids {
        conn.prepare_cached(
            "INSERT INTO endpoints (id, configured, updated_at) VALUES (?1, 1, ?2)
             ON CONFLICT (id) DO UPDATE SET configured = 1, updated_at = excluded.updated_at",
        )
        .and_then(|mut s| s.execute(params![id, now_ms]))
        .map_err(db)?;
    }
    Ok(())
}

pub(crate) fn enable_endpoint(
    conn: &Connection,
    id: &str,
    actor: &str,
    now_ms: i64,
) -> Result<(), CommandError> {
    let disabled: Option<Option<i64>> = conn
        .prepare_cached("SELECT disabled_at FROM endpoints WHERE id = ?1")
        .and_then(|mut s| s.query_row(params![id], |r| r.get(0)).optional())
        .map_err(db)?;
    match disabled {
        None => Err(CommandError::not_found("endpoint", id)),
        Some(None) => Ok(()),
        Some(Some(_)) => {
            conn.prepare_cached(
                "UPDATE endpoints SET disabled_at = NULL, disabled_reason = NULL, updated_at = ?2
                 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![id, now_ms]))
            .map_err(db)?;
            audit(
                conn,
                now_ms / 1000,
                actor,
                "endpoint.enabled",
                format!("endpoint:{id}"),
                None,
                Some(json!({ "enabled": false })),
                json!({ "enabled": true }),
            )
        }
    }
}

/// Leases due deliveries; returns their ids in order.
pub(crate) fn claim_deliveries(
    conn: &Connection,
    owner: &str,
    now_ms: i64,
    lease_ms: i64,
    limit: u32,
) -> Result<Vec<String>, CommandError> {
    conn.prepare_cached(
        "UPDATE deliveries SET lease_owner = ?1, lease_until = ?2 + ?3
         WHERE seq IN (
            SELECT d.seq FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
            WHERE d.status = 'pending' AND e.configured = 1 AND e.disabled_at IS NULL
              AND d.next_attempt_at <= ?2
              AND (d.lease_until IS NULL OR d.lease_until <= ?2)
              AND NOT EXISTS (SELECT 1 FROM deliveries p
                              WHERE p.status = 'pending' AND p.endpoint_id = d.endpoint_id
                                AND p.user_id = d.user_id AND p.seq < d.seq)
            ORDER BY d.seq LIMIT ?4)
         RETURNING id, seq",
    )
    .and_then(|mut s| {
        let mut rows: Vec<(String, i64)> = s
            .query_map(params![owner, now_ms, lease_ms, limit], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        rows.sort_by_key(|(_, seq)| *seq);
        Ok(rows.into_iter().map(|(id, _)| id).collect())
    })
    .map_err(db)
}

pub(crate) fn record_attempt(
    conn: &Connection,
    id: &str,
    owner: &str,
    attempt: &Attempt,
    now_ms: i64,
) -> Result<bool, CommandError> {
    let AttemptUpdate {
        status,
        next_attempt_at: next,
        last_status,
        last_error: error,
        delivered_at,
    } = attempt.update(now_ms);
    let endpoint: Option<String> = conn
        .prepare_cached(
            "UPDATE deliveries SET status = ?3, attempts = attempts + 1,
                    next_attempt_at = COALESCE(?4, next_attempt_at), last_status = ?5,
                    last_error = ?6, delivered_at = ?7, lease_owner = NULL, lease_until = NULL
             WHERE id = ?1 AND lease_owner = ?2 AND status = 'pending'
             RETURNING endpoint_id",
        )
        .and_then(|mut s| {
            s.query_row(
                params![id, owner, status, next, last_status, error, delivered_at],
                |r| r.get(0),
            )
            .optional()
        })
        .map_err(db)?;
    let Some(endpoint) = endpoint else {
        return Ok(false);
    };
    if *attempt == Attempt::Gone {
        let disabled = conn
            .prepare_cached(
                "UPDATE endpoints SET disabled_at = ?2, disabled_reason = 'answered 410 Gone',
                                      updated_at = ?2
                 WHERE id = ?1 AND disabled_at IS NULL",
            )
            .and_then(|mut s| s.execute(params![endpoint, now_ms]))
            .map_err(db)?;
        if disabled > 0 {
            audit(
                conn,
                now_ms / 1000,
                "system",
                "endpoint.disabled",
                format!("endpoint:{endpoint}"),
                Some("the endpoint answered 410 Gone"),
                Some(json!({ "enabled": true })),
                json!({ "enabled": false }),
            )?;
        }
    }
    Ok(true)
}

pub(crate) fn retry_delivery(
    conn: &Connection,
    id: &str,
    actor: &str,
    now_ms: i64,
) -> Result<(), CommandError> {
    let status: Option<String> = conn
        .prepare_cached("SELECT status FROM deliveries WHERE id = ?1")
        .and_then(|mut s| s.query_row(params![id], |r| r.get(0)).optional())
        .map_err(db)?;
    match status.as_deref() {
        None => Err(CommandError::not_found("delivery", id)),
        Some("failed") => {
            conn.prepare_cached(
                "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?2,
                                       lease_owner = NULL, lease_until = NULL
                 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![id, now_ms]))
            .map_err(db)?;
            audit(
                conn,
                now_ms / 1000,
                actor,
                "delivery.retried",
                format!("delivery:{id}"),
                None,
                Some(json!({ "status": "failed" })),
                json!({ "status": "pending" }),
            )
        }
        Some(other) => Err(CommandError::Conflict(format!(
            "delivery {id} is {other}; only a failed delivery can be retried"
        ))),
    }
}

// --- Workbench sessions --------------------------------------------------------------------

pub(crate) fn create_ui_session(
    conn: &Connection,
    session: &UiSessionRecord,
    expired_before: i64,
) -> Result<(), CommandError> {
    conn.prepare_cached("DELETE FROM ui_sessions WHERE last_seen_at < ?1")
        .and_then(|mut s| s.execute(params![expired_before]))
        .map_err(db)?;
    conn.prepare_cached(
        "INSERT INTO ui_sessions (token_hash, key_id, csrf_token, created_at, last_seen_at, flash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            session.token_hash,
            session.key_id,
            session.csrf_token,
            session.created_at,
            session.last_seen_at,
            session.flash
        ])
    })
    .map_err(db)?;
    Ok(())
}

pub(crate) fn update_ui_session(
    conn: &Connection,
    token_hash: &str,
    last_seen_at: i64,
    flash: Option<&str>,
) -> Result<(), CommandError> {
    conn.prepare_cached(
        "UPDATE ui_sessions SET last_seen_at = ?2, flash = ?3 WHERE token_hash = ?1",
    )
    .and_then(|mut s| s.execute(params![token_hash, last_seen_at, flash]))
    .map_err(db)?;
    Ok(())
}

pub(crate) fn delete_ui_session(conn: &Connection, token_hash: &str) -> Result<(), CommandError> {
    conn.prepare_cached("DELETE FROM ui_sessions WHERE token_hash = ?1")
        .and_then(|mut s| s.execute(params![token_hash]))
        .map_err(db)?;
    Ok(())
}

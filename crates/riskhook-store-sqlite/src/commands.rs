//! People's commands and the dispatcher's bookkeeping, each run by the writer thread in a
//! transaction of its own: review (claim, resolve, freeze, unfreeze, four eyes), API keys,
//! endpoints and deliveries. Each checks the state it acts on inside the transaction, applies
//! the change with its effects ([`crate::effects`]) and audits it, or changes nothing.
//!
//! They return ids; the store reads the records back through its read pool after the commit.

use riskhook_core::assessment::UserStatus;
use riskhook_core::review::{
    ActionKind, ActionStatus, CaseStatus, Outcome, account_status, needs_second_person,
    second_person_refusal,
};
use riskhook_store::{
    Attempt, AttemptUpdate, CommandError, DecideAction, NewApiKey, NewAuditEntry, ResolveCase,
    StoreError, UiSessionRecord, UserAction, requester_json, requester_person,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use crate::effects::{Cause, append_audit, new_id, refresh_user, set_verdict};
use crate::writer::map_err;

/// What a review command touched: the user, and the case and action when there are.
pub(crate) type Touched = (String, Option<String>, Option<String>);

fn db(e: rusqlite::Error) -> CommandError {
    CommandError::Store(map_err(e))
}

fn corrupt(what: &str, value: &str) -> CommandError {
    CommandError::Store(StoreError::Corrupt(format!("unknown {what} `{value}`")))
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

struct Case {
    user_id: String,
    status: CaseStatus,
    assignee: Option<String>,
    evidence: i64,
}

fn load_case(conn: &Connection, id: &str) -> Result<Case, CommandError> {
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
    let (user_id, status, assignee, evidence) =
        row.ok_or_else(|| CommandError::not_found("case", id))?;
    Ok(Case {
        user_id,
        status: CaseStatus::parse(&status).ok_or_else(|| corrupt("case status", &status))?,
        assignee,
        evidence,
    })
}

fn user_status(conn: &Connection, user_id: &str) -> Result<UserStatus, CommandError> {
    let status: Option<String> = conn
        .prepare_cached("SELECT status FROM users WHERE user_id = ?1")
        .and_then(|mut s| s.query_row(params![user_id], |r| r.get(0)).optional())
        .map_err(db)?;
    let status = status.ok_or_else(|| CommandError::not_found("user", user_id))?;
    UserStatus::parse(&status).ok_or_else(|| corrupt("user status", &status))
}

pub(crate) fn claim_case(
    conn: &Connection,
    id: &str,
    actor: &str,
    now: i64,
) -> Result<(), CommandError> {
    let case = load_case(conn, id)?;
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
            conn.prepare_cached(
                "UPDATE cases SET status = 'claimed', assignee = ?2, updated_at = ?3 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![id, actor, now]))
            .map_err(db)?;
            audit(
                conn,
                now,
                actor,
                "case.claimed",
                format!("case:{id}"),
                None,
                Some(json!({ "status": "open", "assignee": null })),
                json!({ "status": "claimed", "assignee": actor }),
            )
        }
    }
}

fn require_reason(reason: &str) -> Result<(), CommandError> {
    if reason.trim().is_empty() {
        return Err(CommandError::Conflict("a reason is required".to_owned()));
    }
    Ok(())
}

pub(crate) fn resolve_case(conn: &Connection, c: &ResolveCase) -> Result<Touched, CommandError> {
    require_reason(&c.reason)?;
    let case = load_case(conn, &c.case_id)?;
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
    let current = user_status(conn, &case.user_id)?;
    if needs_second_person(c.four_eyes, current, c.outcome.status()) {
        let action_id = new_id("act");
        conn.prepare_cached(
            "INSERT INTO actions (id, kind, user_id, case_id, outcome, case_evidence, reason,
                                  requested_by, requested_at, status, requester)
             VALUES (?1, 'resolve_case', ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9)",
        )
        .and_then(|mut s| {
            s.execute(params![
                action_id,
                case.user_id,
                c.case_id,
                c.outcome.as_str(),
                case.evidence,
                c.reason,
                c.actor,
                c.now,
                requester_json(&c.person)
            ])
        })
        .map_err(db)?;
        conn.prepare_cached(
            "UPDATE cases SET status = 'pending_approval', assignee = COALESCE(assignee, ?2),
                              updated_at = ?3
             WHERE id = ?1",
        )
        .and_then(|mut s| s.execute(params![c.case_id, c.actor, c.now]))
        .map_err(db)?;
        audit(
            conn,
            c.now,
            &c.actor,
            "action.requested",
            format!("action:{action_id}"),
            Some(&c.reason),
            None,
            json!({ "kind": "resolve_case", "case_id": c.case_id, "outcome": c.outcome.as_str(),
                    "user_id": case.user_id, "status": "pending" }),
        )?;
        return Ok((case.user_id, Some(c.case_id.clone()), Some(action_id)));
    }
    apply_resolution(
        conn, &c.case_id, &case, c.outcome, &c.reason, &c.actor, c.now,
    )?;
    Ok((case.user_id, Some(c.case_id.clone()), None))
}

fn apply_resolution(
    conn: &Connection,
    case_id: &str,
    case: &Case,
    outcome: Outcome,
    reason: &str,
    actor: &str,
    now: i64,
) -> Result<(), CommandError> {
    conn.prepare_cached(
        "UPDATE cases SET status = 'resolved', outcome = ?2, reason = ?3, resolved_at = ?4,
                          resolved_by = ?5, assignee = COALESCE(assignee, ?5), updated_at = ?4
         WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![case_id, outcome.as_str(), reason, now, actor]))
    .map_err(db)?;
    audit(
        conn,
        now,
        actor,
        "case.resolved",
        format!("case:{case_id}"),
        Some(reason),
        Some(json!({ "status": case.status.as_str() })),
        json!({ "status": "resolved", "outcome": outcome.as_str(), "user_id": case.user_id }),
    )?;
    set_verdict(conn, &case.user_id, outcome.status(), actor, now)?;
    refresh_user(
        conn,
        &case.user_id,
        Cause {
            what: "case.resolved",
            actor,
            now,
        },
    )?;
    Ok(())
}

pub(crate) fn act_on_user(conn: &Connection, c: &UserAction) -> Result<Touched, CommandError> {
    require_reason(&c.reason)?;
    let current = user_status(conn, &c.user_id)?;
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
        let open: Option<(String, String)> = conn
            .prepare_cached(
                "SELECT id, decision FROM cases WHERE user_id = ?1 AND status <> 'resolved'",
            )
            .and_then(|mut s| {
                s.query_row(params![c.user_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(db)?;
        if let Some((case_id, decision)) = open {
            let decision = crate::parse_decision(&decision)?;
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
    conn.prepare_cached(
        "INSERT INTO actions (id, kind, user_id, reason, requested_by, requested_at, status,
                              decided_by, decided_at, requester)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut s| {
        s.execute(params![
            action_id,
            c.kind.as_str(),
            c.user_id,
            c.reason,
            c.actor,
            c.now,
            if pending { "pending" } else { "applied" },
            (!pending).then_some(&c.actor),
            (!pending).then_some(c.now),
            requester_json(&c.person),
        ])
    })
    .map_err(db)?;
    if pending {
        audit(
            conn,
            c.now,
            &c.actor,
            "action.requested",
            format!("action:{action_id}"),
            Some(&c.reason),
            None,
            json!({ "kind": c.kind.as_str(), "user_id": c.user_id, "status": "pending" }),
        )?;
    } else {
        apply_user_action(
            conn, &c.user_id, c.kind, target, current, &c.reason, &c.actor, c.now,
        )?;
    }
    Ok((c.user_id.clone(), None, Some(action_id)))
}

#[allow(clippy::too_many_arguments)]
fn apply_user_action(
    conn: &Connection,
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
        conn,
        now,
        actor,
        action,
        format!("user:{user_id}"),
        Some(reason),
        Some(json!({ "status": current.as_str() })),
        json!({ "verdict": target.as_str() }),
    )?;
    set_verdict(conn, user_id, target, actor, now)?;
    refresh_user(
        conn,
        user_id,
        Cause {
            what: action,
            actor,
            now,
        },
    )?;
    Ok(())
}

pub(crate) fn decide_action(conn: &Connection, c: &DecideAction) -> Result<Touched, CommandError> {
    type Row = (
        (String, String, Option<String>, Option<String>, Option<i64>),
        (String, String, i64, Option<String>, String),
    );
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT kind, user_id, case_id, outcome, case_evidence, reason, requested_by,
                    requested_at, requester, status
             FROM actions WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.query_row(params![c.action_id], |r| {
                Ok((
                    (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?),
                    (r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?),
                ))
            })
            .optional()
        })
        .map_err(db)?;
    let (
        (kind, user_id, case_id, outcome, evidence),
        (reason, requested_by, requested_at, requester, status),
    ) = row.ok_or_else(|| CommandError::not_found("action", &c.action_id))?;
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
    conn.prepare_cached(
        "UPDATE actions SET status = ?2, decided_by = ?3, decided_at = ?4, decision_reason = ?5
         WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            c.action_id,
            if c.approve { "applied" } else { "rejected" },
            c.actor,
            c.now,
            c.reason
        ])
    })
    .map_err(db)?;
    audit(
        conn,
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
    )?;
    match (kind, case_id) {
        (ActionKind::ResolveCase, Some(case_id)) => {
            let case = load_case(conn, &case_id)?;
            if !c.approve {
                conn.prepare_cached(
                    "UPDATE cases SET status = 'claimed', updated_at = ?2 WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![case_id, c.now]))
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
            apply_resolution(
                conn,
                &case_id,
                &case,
                outcome,
                &reason,
                &requested_by,
                c.now,
            )?;
            Ok((user_id, Some(case_id), Some(c.action_id.clone())))
        }
        (ActionKind::Freeze | ActionKind::Unfreeze, _) if c.approve => {
            let current = user_status(conn, &user_id)?;
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
                conn,
                &user_id,
                kind,
                target,
                current,
                &reason,
                &requested_by,
                c.now,
            )?;
            Ok((user_id, None, Some(c.action_id.clone())))
        }
        _ => Ok((user_id, None, Some(c.action_id.clone()))),
    }
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

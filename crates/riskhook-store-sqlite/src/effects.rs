//! The effects shared by ingest and by people's commands, inside the writer's transaction:
//! appending to the audit chain, gathering evidence into review cases, recomputing a user's
//! profile and status, and writing the outbox when that changes. The rules of the last two
//! are [`riskhook_store::rulebook`]'s; this module loads their facts and writes their plans.

use std::cell::RefCell;

use riskhook_core::assessment::{Decision, UserStatus};
use riskhook_core::audit::{AuditKey, GENESIS};
use riskhook_store::rulebook::{self, Cause, Evidence, UserFacts, UserRow};
use riskhook_store::{AuditRecord, NewAuditEntry, StoreError, UserState};
use rusqlite::{Connection, OptionalExtension, params};

use crate::writer::{decision_rank, map_err};

thread_local! {
    /// The audit key of the writer thread, set once by [`set_audit_key`] (run on that thread
    /// as a command). Every append happens on the writer thread — deliveries and commands
    /// alike — so the key lives with the thread instead of being passed through every
    /// command and effect. Any other thread (a test's own connection) appends unkeyed.
    static AUDIT_KEY: RefCell<Option<AuditKey>> = const { RefCell::new(None) };
}

/// Keys the entries this thread appends from now on. Refused when a key is already set: the
/// key of a running store does not change.
pub(crate) fn set_audit_key(key: AuditKey) -> Result<(), StoreError> {
    AUDIT_KEY.with_borrow_mut(|slot| {
        if slot.is_some() {
            return Err(StoreError::Other("the audit key is already set".into()));
        }
        *slot = Some(key);
        Ok(())
    })
}

/// A new time-ordered id with a prefix, e.g. `case_0193…`.
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// Appends an entry to the hash chain, keyed when the thread has the audit key. The writer
/// thread is the only writer, so reading the head and appending after it inside one
/// transaction cannot fork the chain (and migration 7's trigger refuses any insert that does
/// not extend the head).
pub(crate) fn append_audit(
    conn: &Connection,
    entry: NewAuditEntry,
) -> Result<AuditRecord, StoreError> {
    let head: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(map_err)?;
    let (seq, prev) = head.unwrap_or((0, GENESIS.to_owned()));
    let record =
        AUDIT_KEY.with_borrow(|key| entry.link(seq + 1, new_id("aud"), prev, key.as_ref()));
    conn.prepare_cached(
        "INSERT INTO audit_log (seq, id, at, actor, action, subject, reason, before, after,
                                prev_hash, hash, keyed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )
    .and_then(|mut s| {
        s.execute(params![
            record.seq,
            record.id,
            record.at,
            record.actor,
            record.action,
            record.subject,
            record.reason,
            record.before,
            record.after,
            record.prev_hash,
            record.hash,
            record.keyed,
        ])
    })
    .map_err(map_err)?;
    Ok(record)
}

/// Adds an assessment to its user's unresolved case, opening one if there is none
/// ([`rulebook::plan_evidence`]). Returns the case id.
pub(crate) fn gather_evidence(
    conn: &Connection,
    user_id: &str,
    assessment_id: &str,
    decision: Decision,
    now: i64,
) -> Result<String, StoreError> {
    let open = crate::commands::open_case(conn, user_id)?;
    let evidence = rulebook::plan_evidence(user_id, open, decision, new_id("case"), now);
    let written = match &evidence {
        Evidence::Open {
            case_id, decision, ..
        } => conn
            .prepare_cached(
                "INSERT INTO cases (id, user_id, status, decision, decision_rank, opened_at,
                                    updated_at)
                 VALUES (?1, ?2, 'open', ?3, ?4, ?5, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    case_id,
                    user_id,
                    decision.as_str(),
                    decision_rank(*decision),
                    now
                ])
            }),
        Evidence::Join { case_id, decision } => conn
            .prepare_cached(
                "UPDATE cases SET decision = ?2, decision_rank = ?3, updated_at = ?4 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    case_id,
                    decision.as_str(),
                    decision_rank(*decision),
                    now
                ])
            }),
    };
    written.map_err(map_err)?;
    conn.prepare_cached("UPDATE assessments SET case_id = ?1 WHERE id = ?2")
        .and_then(|mut s| s.execute(params![evidence.case_id(), assessment_id]))
        .map_err(map_err)?;
    let case_id = evidence.case_id().to_owned();
    if let Evidence::Open { audit, .. } = evidence {
        append_audit(conn, audit)?;
    }
    Ok(case_id)
}

/// Recomputes a user ([`rulebook::plan_refresh`]) from facts that do not depend on arrival
/// order (the current assessments of their sessions, whether any assessment decided freeze,
/// their unresolved case) and from the verdict of the last person to act. When the status or
/// the decision moves, the outbox gets a `user.updated` notification for every configured
/// endpoint and the audit log an entry, in this same transaction. Returns the user after the
/// change.
pub(crate) fn refresh_user(
    conn: &Connection,
    user_id: &str,
    cause: Cause<'_>,
) -> Result<UserState, StoreError> {
    type Row = (String, String, u8, Option<String>, Option<String>, i64);
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT status, decision, score, current_assessment_id, verdict, version
             FROM users WHERE user_id = ?1",
        )
        .and_then(|mut s| {
            s.query_row(params![user_id], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .optional()
        })
        .map_err(map_err)?;
    let (ever_frozen, open_case, current): (bool, Option<String>, Option<(String, u8, String)>) =
        conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM assessments WHERE user_id = ?1 AND decision = 'freeze'),
                    (SELECT decision FROM cases WHERE user_id = ?1 AND status <> 'resolved'),
                    current.id, current.score, current.decision
             FROM (SELECT 1) AS one
             LEFT JOIN (SELECT a.id, a.score, a.decision
                        FROM sessions s JOIN assessments a ON a.id = s.current_assessment_id
                        WHERE s.vendor_data = ?1
                        ORDER BY a.decision_rank DESC, a.score DESC, a.evaluated_at DESC,
                                 s.session_id
                        LIMIT 1) AS current ON 1",
        )
        .and_then(|mut s| {
            s.query_row(params![user_id], |r| {
                let id: Option<String> = r.get(2)?;
                let current = match id {
                    Some(id) => Some((id, r.get(3)?, r.get(4)?)),
                    None => None,
                };
                Ok((r.get(0)?, r.get(1)?, current))
            })
        })
        .map_err(map_err)?;
    let facts = UserFacts {
        row: row
            .map(
                |(status, decision, score, assessment_id, verdict, version)| {
                    Ok::<_, StoreError>(UserRow {
                        state: UserState {
                            status: crate::parse_status(&status)?,
                            decision: crate::parse_decision(&decision)?,
                            score,
                            assessment_id,
                        },
                        verdict: verdict.as_deref().map(crate::parse_status).transpose()?,
                        version,
                    })
                },
            )
            .transpose()?,
        ever_frozen,
        open_case: open_case
            .as_deref()
            .map(crate::parse_decision)
            .transpose()?,
        current: current
            .map(|(id, score, decision)| {
                Ok::<_, StoreError>((id, score, crate::parse_decision(&decision)?))
            })
            .transpose()?,
    };
    let plan = rulebook::plan_refresh(user_id, &facts, cause);
    conn.prepare_cached(
        "INSERT INTO users (user_id, status, score, decision, current_assessment_id, ever_frozen,
                            version, first_seen_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
         ON CONFLICT (user_id) DO UPDATE SET
            status = excluded.status, score = excluded.score, decision = excluded.decision,
            current_assessment_id = excluded.current_assessment_id,
            ever_frozen = excluded.ever_frozen, version = excluded.version,
            updated_at = excluded.updated_at",
    )
    .and_then(|mut s| {
        s.execute(params![
            user_id,
            plan.after.status.as_str(),
            plan.after.score,
            plan.after.decision.as_str(),
            plan.after.assessment_id,
            plan.ever_frozen,
            plan.version,
            cause.now,
        ])
    })
    .map_err(map_err)?;
    if let Some((payload, audit)) = plan.moved {
        notify(conn, user_id, &payload, cause.now)?;
        append_audit(conn, audit)?;
    }
    Ok(plan.after)
}

/// Writes a `user.updated` notification and one pending delivery per configured endpoint
/// (disabled ones included: their deliveries wait until the endpoint is enabled again), when
/// any endpoint is configured.
fn notify(conn: &Connection, user_id: &str, payload: &str, now: i64) -> Result<(), StoreError> {
    // Nobody to tell: a message without deliveries would only be written and never read.
    // (Endpoints configured later get notifications from then on, not a backlog.)
    let anyone: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM endpoints WHERE configured = 1)")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(map_err)?;
    if !anyone {
        return Ok(());
    }
    let message_id = new_id("msg");
    let now_ms = now.saturating_mul(1000);
    let seq: i64 = conn
        .prepare_cached(
            "INSERT INTO outbox (id, user_id, event_type, payload, created_at)
             VALUES (?1, ?2, 'user.updated', ?3, ?4) RETURNING seq",
        )
        .and_then(|mut s| s.query_row(params![message_id, user_id, payload, now_ms], |r| r.get(0)))
        .map_err(map_err)?;
    conn.prepare_cached(
        "INSERT INTO deliveries (id, message_seq, endpoint_id, user_id, status, next_attempt_at,
                                 created_at)
         SELECT 'dlv_' || lower(hex(randomblob(12))), ?1, id, ?2, 'pending', ?3, ?3
         FROM endpoints WHERE configured = 1",
    )
    .and_then(|mut s| s.execute(params![seq, user_id, now_ms]))
    .map_err(map_err)?;
    metrics::counter!("riskhook_notifications_queued_total").increment(1);
    Ok(())
}

/// Sets the verdict of a person on a user.
pub(crate) fn set_verdict(
    conn: &Connection,
    user_id: &str,
    verdict: UserStatus,
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE users SET verdict = ?2, verdict_at = ?3, verdict_by = ?4 WHERE user_id = ?1",
    )
    .and_then(|mut s| s.execute(params![user_id, verdict.as_str(), now, actor]))
    .map_err(map_err)?;
    Ok(())
}

//! Reading review, audit, key and outbox records through the read pool (sqlx), and mapping
//! their rows. Filters are static SQL with `(? IS NULL OR …)` so every query stays a
//! `&'static str`.

use riskhook_core::review::{ActionKind, ActionStatus, CaseStatus, Outcome};
use riskhook_store::{
    ActionRecord, ApiKeyRecord, AuditRecord, CaseFilter, CaseRecord, DeliveryFilter,
    DeliveryRecord, DeliveryStatus, EndpointRecord, Role, ShadowRecord, StoreError,
    UiSessionRecord, VerdictRecord,
};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{Row, Sqlite};

use crate::{map_err, parse_decision};

fn get<'r, T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>>(
    row: &'r SqliteRow,
    column: &str,
) -> Result<T, StoreError> {
    row.try_get(column).map_err(map_err)
}

/// The row the query (with one `?`, bound to `key`) finds, mapped.
async fn one<T>(
    pool: &SqlitePool,
    sql: &'static str,
    key: &str,
    map: fn(&SqliteRow) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    sqlx::query(sql)
        .bind(key)
        .fetch_optional(pool)
        .await
        .map_err(map_err)?
        .map(|r| map(&r))
        .transpose()
}

fn parsed<T>(row: &SqliteRow, column: &str, parse: fn(&str) -> Option<T>) -> Result<T, StoreError> {
    let text: String = get(row, column)?;
    parse(&text).ok_or_else(|| StoreError::Corrupt(format!("unknown {column} `{text}`")))
}

fn parsed_opt<T>(
    row: &SqliteRow,
    column: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>, StoreError> {
    let text: Option<String> = get(row, column)?;
    text.map(|t| parse(&t).ok_or_else(|| StoreError::Corrupt(format!("unknown {column} `{t}`"))))
        .transpose()
}

/// `SELECT <case columns and its evidence ids> FROM cases c <condition>`, as a literal.
macro_rules! select_cases {
    ($condition:expr) => {
        concat!(
            "SELECT c.*, (SELECT group_concat(id, ' ') FROM (SELECT id FROM assessments ",
            "WHERE case_id = c.id ORDER BY evaluated_at, id)) AS evidence FROM cases c ",
            $condition
        )
    };
}

fn case_record(row: &SqliteRow) -> Result<CaseRecord, StoreError> {
    let evidence: Option<String> = get(row, "evidence")?;
    Ok(CaseRecord {
        id: get(row, "id")?,
        user_id: get(row, "user_id")?,
        status: parsed(row, "status", CaseStatus::parse)?,
        decision: parse_decision(&get::<String>(row, "decision")?)?,
        assignee: get(row, "assignee")?,
        opened_at: get(row, "opened_at")?,
        updated_at: get(row, "updated_at")?,
        resolved_at: get(row, "resolved_at")?,
        resolved_by: get(row, "resolved_by")?,
        outcome: parsed_opt(row, "outcome", Outcome::parse)?,
        reason: get(row, "reason")?,
        assessment_ids: evidence
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    })
}

/// The conditions of a [`CaseFilter`]: ?1 to ?6 and ?8 (?7 is the page size).
macro_rules! case_filter {
    () => {
        "WHERE (?1 IS NULL OR c.status = ?1) AND (?2 IS NULL OR c.assignee = ?2)
           AND (?3 IS NULL OR c.decision = ?3) AND (?4 IS NULL OR c.opened_at <= ?4)
           AND (?5 IS NULL OR c.user_id = ?5) AND (?6 IS NULL OR c.id > ?6)
           AND (?8 = 0 OR c.status <> 'resolved')"
    };
}

fn bind_case_filter<'q>(
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    f: &'q CaseFilter,
    after: Option<&'q str>,
    limit: u32,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    query
        .bind(f.status.map(CaseStatus::as_str))
        .bind(f.assignee.as_deref())
        .bind(f.decision.map(|d| d.as_str()))
        .bind(f.opened_before)
        .bind(f.user_id.as_deref())
        .bind(after)
        .bind(limit)
        .bind(f.unresolved)
}

pub(crate) async fn cases(
    pool: &SqlitePool,
    f: &CaseFilter,
) -> Result<Vec<CaseRecord>, StoreError> {
    let query = sqlx::query(select_cases!(concat!(
        case_filter!(),
        " ORDER BY c.id LIMIT ?7"
    )));
    bind_case_filter(query, f, f.after.as_deref(), f.limit)
        .fetch_all(pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(case_record)
        .collect()
}

pub(crate) async fn count_cases(pool: &SqlitePool, f: &CaseFilter) -> Result<u64, StoreError> {
    let query = sqlx::query(concat!(
        "SELECT COUNT(*) AS n FROM (SELECT 1 FROM cases c ",
        case_filter!(),
        " LIMIT ?7)"
    ));
    let row = bind_case_filter(query, f, None, u32::MAX)
        .fetch_one(pool)
        .await
        .map_err(map_err)?;
    let n: i64 = get(&row, "n")?;
    u64::try_from(n).map_err(|_| StoreError::Corrupt("negative count".into()))
}

pub(crate) async fn case(pool: &SqlitePool, id: &str) -> Result<Option<CaseRecord>, StoreError> {
    one(pool, select_cases!("WHERE c.id = ?"), id, case_record).await
}

fn action_record(row: &SqliteRow) -> Result<ActionRecord, StoreError> {
    Ok(ActionRecord {
        id: get(row, "id")?,
        kind: parsed(row, "kind", ActionKind::parse)?,
        user_id: get(row, "user_id")?,
        case_id: get(row, "case_id")?,
        outcome: parsed_opt(row, "outcome", Outcome::parse)?,
        reason: get(row, "reason")?,
        requested_by: get(row, "requested_by")?,
        requested_at: get(row, "requested_at")?,
        status: parsed(row, "status", ActionStatus::parse)?,
        decided_by: get(row, "decided_by")?,
        decided_at: get(row, "decided_at")?,
        decision_reason: get(row, "decision_reason")?,
    })
}

pub(crate) async fn actions(
    pool: &SqlitePool,
    status: Option<ActionStatus>,
    limit: u32,
) -> Result<Vec<ActionRecord>, StoreError> {
    sqlx::query("SELECT * FROM actions WHERE (?1 IS NULL OR status = ?1) ORDER BY id DESC LIMIT ?2")
        .bind(status.map(ActionStatus::as_str))
        .bind(limit)
        .fetch_all(pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(action_record)
        .collect()
}

pub(crate) async fn action(
    pool: &SqlitePool,
    id: &str,
) -> Result<Option<ActionRecord>, StoreError> {
    one(
        pool,
        "SELECT * FROM actions WHERE id = ?",
        id,
        action_record,
    )
    .await
}

fn audit_record(row: &SqliteRow) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        seq: get(row, "seq")?,
        id: get(row, "id")?,
        at: get(row, "at")?,
        actor: get(row, "actor")?,
        action: get(row, "action")?,
        subject: get(row, "subject")?,
        reason: get(row, "reason")?,
        before: get(row, "before")?,
        after: get(row, "after")?,
        prev_hash: get(row, "prev_hash")?,
        hash: get(row, "hash")?,
        keyed: get(row, "keyed")?,
    })
}

pub(crate) async fn audit(
    pool: &SqlitePool,
    after: i64,
    limit: u32,
) -> Result<Vec<AuditRecord>, StoreError> {
    sqlx::query("SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?")
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(audit_record)
        .collect()
}

pub(crate) async fn audit_head(pool: &SqlitePool) -> Result<Option<AuditRecord>, StoreError> {
    sqlx::query("SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(pool)
        .await
        .map_err(map_err)?
        .as_ref()
        .map(audit_record)
        .transpose()
}

pub(crate) async fn last_audit(
    pool: &SqlitePool,
    action: &str,
) -> Result<Option<AuditRecord>, StoreError> {
    one(
        pool,
        "SELECT * FROM audit_log WHERE action = ? ORDER BY seq DESC LIMIT 1",
        action,
        audit_record,
    )
    .await
}

fn key_record(row: &SqliteRow) -> Result<ApiKeyRecord, StoreError> {
    let id: String = get(row, "id")?;
    Ok(ApiKeyRecord {
        id: id.clone(),
        name: get(row, "name")?,
        // Keys made before principals existed each stand for a person of their own.
        principal: get::<Option<String>>(row, "principal")?.unwrap_or_else(|| id.clone()),
        role: parsed(row, "role", Role::parse)?,
        created_at: get(row, "created_at")?,
        created_by: get(row, "created_by")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

pub(crate) async fn keys(pool: &SqlitePool) -> Result<Vec<ApiKeyRecord>, StoreError> {
    sqlx::query("SELECT * FROM api_keys ORDER BY created_at, id")
        .fetch_all(pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(key_record)
        .collect()
}

pub(crate) async fn key(pool: &SqlitePool, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
    one(pool, "SELECT * FROM api_keys WHERE id = ?", id, key_record).await
}

pub(crate) async fn key_by_hash(
    pool: &SqlitePool,
    hash: &str,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    one(
        pool,
        "SELECT * FROM api_keys WHERE hash = ? AND revoked_at IS NULL",
        hash,
        key_record,
    )
    .await
}

fn endpoint_record(row: &SqliteRow) -> Result<EndpointRecord, StoreError> {
    Ok(EndpointRecord {
        id: get(row, "id")?,
        configured: get(row, "configured")?,
        disabled_at: get(row, "disabled_at")?,
        disabled_reason: get(row, "disabled_reason")?,
    })
}

pub(crate) async fn endpoints(pool: &SqlitePool) -> Result<Vec<EndpointRecord>, StoreError> {
    sqlx::query("SELECT * FROM endpoints ORDER BY id")
        .fetch_all(pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(endpoint_record)
        .collect()
}

pub(crate) async fn endpoint(
    pool: &SqlitePool,
    id: &str,
) -> Result<Option<EndpointRecord>, StoreError> {
    one(
        pool,
        "SELECT * FROM endpoints WHERE id = ?",
        id,
        endpoint_record,
    )
    .await
}

fn delivery_record(row: &SqliteRow) -> Result<DeliveryRecord, StoreError> {
    let attempts: i64 = get(row, "attempts")?;
    let last_status: Option<i64> = get(row, "last_status")?;
    Ok(DeliveryRecord {
        id: get(row, "id")?,
        message_id: get(row, "message_id")?,
        endpoint_id: get(row, "endpoint_id")?,
        user_id: get(row, "user_id")?,
        event_type: get(row, "event_type")?,
        payload: get(row, "payload")?,
        status: parsed(row, "status", DeliveryStatus::parse)?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_attempt_at: get(row, "next_attempt_at")?,
        last_status: last_status.and_then(|s| u16::try_from(s).ok()),
        last_error: get(row, "last_error")?,
        created_at: get(row, "created_at")?,
        delivered_at: get(row, "delivered_at")?,
    })
}

pub(crate) async fn deliveries(
    pool: &SqlitePool,
    f: &DeliveryFilter,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    sqlx::query(
        "SELECT d.*, o.id AS message_id, o.event_type, o.payload
         FROM deliveries d JOIN outbox o ON o.seq = d.message_seq
         WHERE (?1 IS NULL OR d.status = ?1) AND (?2 IS NULL OR d.endpoint_id = ?2)
           AND (?3 IS NULL OR d.user_id = ?3)
           AND (?4 IS NULL OR d.seq < (SELECT seq FROM deliveries WHERE id = ?4))
         ORDER BY d.seq DESC LIMIT ?5",
    )
    .bind(f.status.map(DeliveryStatus::as_str))
    .bind(f.endpoint_id.as_deref())
    .bind(f.user_id.as_deref())
    .bind(f.before.as_deref())
    .bind(f.limit)
    .fetch_all(pool)
    .await
    .map_err(map_err)?
    .iter()
    .map(delivery_record)
    .collect()
}

/// The deliveries named, in the order given: what a claim hands the dispatcher.
pub(crate) async fn deliveries_by_id(
    pool: &SqlitePool,
    ids: &[String],
) -> Result<Vec<DeliveryRecord>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = serde_json::to_string(ids).map_err(|e| StoreError::Other(Box::new(e)))?;
    sqlx::query(
        "SELECT d.*, o.id AS message_id, o.event_type, o.payload
         FROM deliveries d JOIN outbox o ON o.seq = d.message_seq
         WHERE d.id IN (SELECT value FROM json_each(?)) ORDER BY d.seq",
    )
    .bind(list)
    .fetch_all(pool)
    .await
    .map_err(map_err)?
    .iter()
    .map(delivery_record)
    .collect()
}

pub(crate) async fn delivery(
    pool: &SqlitePool,
    id: &str,
) -> Result<Option<DeliveryRecord>, StoreError> {
    Ok(deliveries_by_id(pool, &[id.to_owned()]).await?.pop())
}

pub(crate) async fn outbox_backlog(pool: &SqlitePool) -> Result<u64, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'pending'")
        .fetch_one(pool)
        .await
        .map_err(map_err)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

// --- Workbench sessions --------------------------------------------------------------------

fn ui_session_record(row: &SqliteRow) -> Result<UiSessionRecord, StoreError> {
    Ok(UiSessionRecord {
        token_hash: get(row, "token_hash")?,
        key_id: get(row, "key_id")?,
        csrf_token: get(row, "csrf_token")?,
        created_at: get(row, "created_at")?,
        last_seen_at: get(row, "last_seen_at")?,
        flash: get(row, "flash")?,
    })
}

pub(crate) async fn ui_session(
    pool: &SqlitePool,
    token_hash: &str,
) -> Result<Option<UiSessionRecord>, StoreError> {
    one(
        pool,
        "SELECT * FROM ui_sessions WHERE token_hash = ?",
        token_hash,
        ui_session_record,
    )
    .await
}

// --- Backtests ------------------------------------------------------------------------------

pub(crate) async fn verdicts(pool: &SqlitePool) -> Result<Vec<VerdictRecord>, StoreError> {
    sqlx::query(
        "SELECT user_id, resolved_at, outcome FROM cases
         WHERE status = 'resolved' AND resolved_at IS NOT NULL AND outcome IS NOT NULL
         ORDER BY resolved_at, id",
    )
    .fetch_all(pool)
    .await
    .map_err(map_err)?
    .iter()
    .map(|row| {
        Ok(VerdictRecord {
            user_id: get(row, "user_id")?,
            resolved_at: get(row, "resolved_at")?,
            outcome: parsed(row, "outcome", Outcome::parse)?,
        })
    })
    .collect()
}

pub(crate) async fn shadow_assessments(
    pool: &SqlitePool,
    shadow_id: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<ShadowRecord>, StoreError> {
    sqlx::query(
        "SELECT s.assessment_id, a.user_id, a.evaluated_at, a.assessment, a.assessment_encoding,
                s.decision, s.score, s.policy_hash, s.fired
         FROM shadow_assessments s JOIN assessments a ON a.id = s.assessment_id
         WHERE s.shadow_id = ?1 AND (?2 IS NULL OR s.assessment_id > ?2)
         ORDER BY s.assessment_id LIMIT ?3",
    )
    .bind(shadow_id)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(map_err)?
    .iter()
    .map(|row| {
        let fired: String = get(row, "fired")?;
        Ok(ShadowRecord {
            assessment_id: get(row, "assessment_id")?,
            user_id: get(row, "user_id")?,
            evaluated_at: get(row, "evaluated_at")?,
            assessment: crate::assessment_json(row)?,
            decision: parse_decision(&get::<String>(row, "decision")?)?,
            score: u8::try_from(get::<i64>(row, "score")?)
                .map_err(|_| StoreError::Corrupt("shadow score out of range".into()))?,
            policy_hash: get(row, "policy_hash")?,
            fired: serde_json::from_str(&fired)
                .map_err(|e| StoreError::Corrupt(format!("shadow fired rules: {e}")))?,
        })
    })
    .collect()
}

//! Reading every record, on any connection (a pooled one, or a command's transaction to read
//! back what it changed), and mapping rows. Filters are static SQL with
//! `($1::text IS NULL OR …)` so every query stays a `&'static str`.

use riskhook_core::review::{ActionKind, ActionStatus, CaseStatus, Outcome};
use riskhook_store::{
    ActionRecord, ApiKeyRecord, AssessmentRecord, AuditRecord, CaseFilter, CaseRecord,
    DeliveryFilter, DeliveryRecord, DeliveryStatus, EndpointRecord, EventId, EventRecord,
    ReplayBody, ReplayFilter, ReplayRecord, Role, SessionRecord, SessionStatus, ShadowRecord,
    Stage, StoreError, UserRecord, VerdictRecord,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, Row};

use crate::{map_err, parse_decision, parse_status, score};

fn get<'r, T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>>(
    row: &'r PgRow,
    column: &str,
) -> Result<T, StoreError> {
    row.try_get(column).map_err(map_err)
}

/// The row the query (with one parameter, bound to `key`) finds, mapped.
async fn one<T>(
    conn: &mut PgConnection,
    sql: &'static str,
    key: &str,
    map: fn(&PgRow) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    sqlx::query(sql)
        .bind(key)
        .fetch_optional(conn)
        .await
        .map_err(map_err)?
        .map(|r| map(&r))
        .transpose()
}

fn parsed<T>(row: &PgRow, column: &str, parse: fn(&str) -> Option<T>) -> Result<T, StoreError> {
    let text: String = get(row, column)?;
    parse(&text).ok_or_else(|| StoreError::Corrupt(format!("unknown {column} `{text}`")))
}

fn parsed_opt<T>(
    row: &PgRow,
    column: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>, StoreError> {
    let text: Option<String> = get(row, column)?;
    text.map(|t| parse(&t).ok_or_else(|| StoreError::Corrupt(format!("unknown {column} `{t}`"))))
        .transpose()
}

fn limit(limit: u32) -> i64 {
    i64::from(limit)
}

/// A `COUNT(*)` query's answer.
pub(crate) async fn count(conn: &mut PgConnection, sql: &'static str) -> Result<u64, StoreError> {
    let n: i64 = sqlx::query_scalar(sql)
        .fetch_one(conn)
        .await
        .map_err(map_err)?;
    u64::try_from(n).map_err(|_| StoreError::Corrupt("negative count".into()))
}

// --- Events, sessions, users, assessments --------------------------------------------------

/// `SELECT <every event column> FROM events <condition>`, built at compile time so the query
/// stays a `&'static str`.
macro_rules! select_events {
    ($condition:literal) => {
        concat!(
            "SELECT id, received_at, webhook_type, delivery_key, content_key, subject_id, ",
            "session_id, status, event_timestamp, vendor_data, key_id, scheme, body_trusted, raw ",
            "FROM events ",
            $condition
        )
    };
}

fn event_record(row: &PgRow) -> Result<EventRecord, StoreError> {
    Ok(EventRecord {
        id: EventId::parse(get::<String>(row, "id")?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        received_at: get(row, "received_at")?,
        webhook_type: get(row, "webhook_type")?,
        delivery_key: get(row, "delivery_key")?,
        content_key: get(row, "content_key")?,
        subject_id: get(row, "subject_id")?,
        session_id: get(row, "session_id")?,
        status: get(row, "status")?,
        // Kept by the session, not the event: see `EventRecord::session_status`.
        session_status: None,
        event_timestamp: get(row, "event_timestamp")?,
        vendor_data: get(row, "vendor_data")?,
        key_id: get(row, "key_id")?,
        scheme: get(row, "scheme")?,
        body_trusted: get(row, "body_trusted")?,
        raw: get(row, "raw")?,
    })
}

pub(crate) async fn event(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<EventRecord>, StoreError> {
    one(conn, select_events!("WHERE id = $1"), id, event_record).await
}

pub(crate) async fn events(
    conn: &mut PgConnection,
    after_id: Option<&str>,
    n: u32,
) -> Result<Vec<EventRecord>, StoreError> {
    sqlx::query(select_events!(
        "WHERE seq > COALESCE((SELECT seq FROM events WHERE id = $1::text), 0)
         ORDER BY seq LIMIT $2"
    ))
    .bind(after_id)
    .bind(limit(n))
    .fetch_all(conn)
    .await
    .map_err(map_err)?
    .iter()
    .map(event_record)
    .collect()
}

pub(crate) async fn user_events(
    conn: &mut PgConnection,
    user_id: &str,
    n: u32,
) -> Result<Vec<EventRecord>, StoreError> {
    sqlx::query(select_events!(
        "WHERE vendor_data = $1 ORDER BY event_timestamp, seq LIMIT $2"
    ))
    .bind(user_id)
    .bind(limit(n))
    .fetch_all(conn)
    .await
    .map_err(map_err)?
    .iter()
    .map(event_record)
    .collect()
}

pub(crate) async fn session(
    conn: &mut PgConnection,
    session_id: &str,
) -> Result<Option<SessionRecord>, StoreError> {
    let row = sqlx::query(
        "SELECT s.session_id, s.status, s.status_timestamp, s.status_event_id, s.vendor_data,
                (SELECT COUNT(*) FROM events e WHERE e.session_id = s.session_id) AS event_count,
                s.current_assessment_id, s.status_stage
         FROM sessions s WHERE s.session_id = $1",
    )
    .bind(session_id)
    .fetch_optional(conn)
    .await
    .map_err(map_err)?;
    row.as_ref().map(session_record).transpose()
}

/// A `sessions` row selected as by [`session`].
fn session_record(row: &PgRow) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        session_id: get(row, "session_id")?,
        status: SessionStatus::new(get::<String>(row, "status")?, {
            let n: i32 = get(row, "status_stage")?;
            u8::try_from(n)
                .map(Stage::new)
                .map_err(|_| StoreError::Corrupt(format!("session stage {n} out of range")))?
        }),
        status_timestamp: get(row, "status_timestamp")?,
        status_event_id: get(row, "status_event_id")?,
        vendor_data: get(row, "vendor_data")?,
        event_count: get(row, "event_count")?,
        current_assessment_id: get(row, "current_assessment_id")?,
    })
}

pub(crate) async fn find_event(
    conn: &mut PgConnection,
    delivery_key: Option<&str>,
    content_key: &str,
) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar(
        "SELECT id FROM events
         WHERE provider = $1 AND (delivery_key = $2 OR content_key = $3)
         LIMIT 1",
    )
    .bind(crate::PROVIDER)
    .bind(delivery_key)
    .bind(content_key)
    .fetch_optional(conn)
    .await
    .map_err(map_err)
}

pub(crate) async fn unfinished_sessions(
    conn: &mut PgConnection,
    before: i64,
    limit: u32,
) -> Result<Vec<SessionRecord>, StoreError> {
    sqlx::query(
        "SELECT s.session_id, s.status, s.status_timestamp, s.status_event_id, s.vendor_data,
                (SELECT COUNT(*) FROM events e WHERE e.session_id = s.session_id) AS event_count,
                s.current_assessment_id, s.status_stage
         FROM sessions s
         WHERE s.status <> ALL($1) AND s.status_timestamp < $2
         ORDER BY s.status_timestamp, s.session_id
         LIMIT $3",
    )
    .bind(&riskhook_store::TERMINAL_STATUSES[..])
    .bind(before)
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await
    .map_err(map_err)?
    .iter()
    .map(session_record)
    .collect()
}

pub(crate) async fn user(
    conn: &mut PgConnection,
    user_id: &str,
) -> Result<Option<UserRecord>, StoreError> {
    let row = sqlx::query(
        "SELECT user_id, status, score, decision, current_assessment_id, ever_frozen,
                first_seen_at, updated_at, verdict, version,
                ARRAY(SELECT session_id FROM sessions WHERE vendor_data = $1
                      ORDER BY (SELECT MIN(e.event_timestamp) FROM events e
                                WHERE e.session_id = sessions.session_id),
                               session_id) AS sessions
         FROM users WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(conn)
    .await
    .map_err(map_err)?;
    let Some(row) = row else { return Ok(None) };
    let verdict: Option<&str> = get(&row, "verdict")?;
    Ok(Some(UserRecord {
        user_id: get(&row, "user_id")?,
        status: parse_status(get(&row, "status")?)?,
        score: score(get(&row, "score")?)?,
        decision: parse_decision(get(&row, "decision")?)?,
        current_assessment_id: get(&row, "current_assessment_id")?,
        ever_frozen: get(&row, "ever_frozen")?,
        verdict: verdict.map(parse_status).transpose()?,
        version: get(&row, "version")?,
        sessions: get(&row, "sessions")?,
        first_seen_at: get(&row, "first_seen_at")?,
        updated_at: get(&row, "updated_at")?,
    }))
}

fn assessment_record(row: &PgRow) -> Result<AssessmentRecord, StoreError> {
    Ok(AssessmentRecord {
        id: get(row, "id")?,
        event_id: get(row, "event_id")?,
        session_id: get(row, "session_id")?,
        user_id: get(row, "user_id")?,
        policy_hash: get(row, "policy_hash")?,
        score: score(get(row, "score")?)?,
        decision: parse_decision(get(row, "decision")?)?,
        evaluated_at: get(row, "evaluated_at")?,
        created_at: get(row, "created_at")?,
        json: get(row, "assessment")?,
    })
}

pub(crate) async fn user_assessments(
    conn: &mut PgConnection,
    user_id: &str,
    n: u32,
) -> Result<Vec<AssessmentRecord>, StoreError> {
    sqlx::query(
        "SELECT * FROM assessments WHERE user_id = $1
         ORDER BY evaluated_at DESC, id DESC LIMIT $2",
    )
    .bind(user_id)
    .bind(limit(n))
    .fetch_all(conn)
    .await
    .map_err(map_err)?
    .iter()
    .map(assessment_record)
    .collect()
}

pub(crate) async fn assessment(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<AssessmentRecord>, StoreError> {
    one(
        conn,
        "SELECT * FROM assessments WHERE id = $1",
        id,
        assessment_record,
    )
    .await
}

// --- Review -------------------------------------------------------------------------------

/// `SELECT <case columns and its evidence ids> FROM cases c <condition>`, as a literal.
macro_rules! select_cases {
    ($condition:expr) => {
        concat!(
            "SELECT c.*, ARRAY(SELECT id FROM assessments WHERE case_id = c.id ",
            "ORDER BY evaluated_at, id) AS evidence FROM cases c ",
            $condition
        )
    };
}

fn case_record(row: &PgRow) -> Result<CaseRecord, StoreError> {
    Ok(CaseRecord {
        id: get(row, "id")?,
        user_id: get(row, "user_id")?,
        status: parsed(row, "status", CaseStatus::parse)?,
        decision: parse_decision(get(row, "decision")?)?,
        assignee: get(row, "assignee")?,
        opened_at: get(row, "opened_at")?,
        updated_at: get(row, "updated_at")?,
        resolved_at: get(row, "resolved_at")?,
        resolved_by: get(row, "resolved_by")?,
        outcome: parsed_opt(row, "outcome", Outcome::parse)?,
        reason: get(row, "reason")?,
        assessment_ids: get(row, "evidence")?,
    })
}

/// The conditions of a [`CaseFilter`]: $1 to $6 and $8 ($7 is the page size).
macro_rules! case_filter {
    () => {
        "WHERE ($1::text IS NULL OR c.status = $1) AND ($2::text IS NULL OR c.assignee = $2)
           AND ($3::text IS NULL OR c.decision = $3) AND ($4::bigint IS NULL OR c.opened_at <= $4)
           AND ($5::text IS NULL OR c.user_id = $5) AND ($6::text IS NULL OR c.id > $6)
           AND (NOT $8::boolean OR c.status <> 'resolved')"
    };
}

fn bind_case_filter<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    f: &'q CaseFilter,
    after: Option<&'q str>,
    page: i64,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(f.status.map(CaseStatus::as_str))
        .bind(f.assignee.as_deref())
        .bind(f.decision.map(|d| d.as_str()))
        .bind(f.opened_before)
        .bind(f.user_id.as_deref())
        .bind(after)
        .bind(page)
        .bind(f.unresolved)
}

pub(crate) async fn cases(
    conn: &mut PgConnection,
    f: &CaseFilter,
) -> Result<Vec<CaseRecord>, StoreError> {
    let query = sqlx::query(select_cases!(concat!(
        case_filter!(),
        " ORDER BY c.id LIMIT $7"
    )));
    bind_case_filter(query, f, f.after.as_deref(), limit(f.limit))
        .fetch_all(conn)
        .await
        .map_err(map_err)?
        .iter()
        .map(case_record)
        .collect()
}

pub(crate) async fn count_cases(
    conn: &mut PgConnection,
    f: &CaseFilter,
) -> Result<u64, StoreError> {
    let query = sqlx::query(concat!(
        "SELECT COUNT(*) AS n FROM (SELECT 1 FROM cases c ",
        case_filter!(),
        " LIMIT $7) AS matching"
    ));
    let row = bind_case_filter(query, f, None, i64::MAX)
        .fetch_one(conn)
        .await
        .map_err(map_err)?;
    let n: i64 = row.try_get("n").map_err(map_err)?;
    u64::try_from(n).map_err(|_| StoreError::Corrupt("negative count".into()))
}

pub(crate) async fn case(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<CaseRecord>, StoreError> {
    one(conn, select_cases!("WHERE c.id = $1"), id, case_record).await
}

fn action_record(row: &PgRow) -> Result<ActionRecord, StoreError> {
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
    conn: &mut PgConnection,
    status: Option<ActionStatus>,
    n: u32,
) -> Result<Vec<ActionRecord>, StoreError> {
    sqlx::query(
        "SELECT * FROM actions WHERE ($1::text IS NULL OR status = $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(status.map(ActionStatus::as_str))
    .bind(limit(n))
    .fetch_all(conn)
    .await
    .map_err(map_err)?
    .iter()
    .map(action_record)
    .collect()
}

pub(crate) async fn action(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<ActionRecord>, StoreError> {
    one(
        conn,
        "SELECT * FROM actions WHERE id = $1",
        id,
        action_record,
    )
    .await
}

// --- Audit and keys -----------------------------------------------------------------------

fn audit_record(row: &PgRow) -> Result<AuditRecord, StoreError> {
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
    conn: &mut PgConnection,
    after: i64,
    n: u32,
) -> Result<Vec<AuditRecord>, StoreError> {
    sqlx::query("SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2")
        .bind(after)
        .bind(limit(n))
        .fetch_all(conn)
        .await
        .map_err(map_err)?
        .iter()
        .map(audit_record)
        .collect()
}

pub(crate) async fn audit_head(conn: &mut PgConnection) -> Result<Option<AuditRecord>, StoreError> {
    sqlx::query("SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(conn)
        .await
        .map_err(map_err)?
        .as_ref()
        .map(audit_record)
        .transpose()
}

pub(crate) async fn audit_entry(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<AuditRecord>, StoreError> {
    one(
        conn,
        "SELECT * FROM audit_log WHERE id = $1",
        id,
        audit_record,
    )
    .await
}

pub(crate) async fn last_audit(
    conn: &mut PgConnection,
    action: &str,
) -> Result<Option<AuditRecord>, StoreError> {
    one(
        conn,
        "SELECT * FROM audit_log WHERE action = $1 ORDER BY seq DESC LIMIT 1",
        action,
        audit_record,
    )
    .await
}

fn key_record(row: &PgRow) -> Result<ApiKeyRecord, StoreError> {
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

pub(crate) async fn keys(conn: &mut PgConnection) -> Result<Vec<ApiKeyRecord>, StoreError> {
    sqlx::query("SELECT * FROM api_keys ORDER BY created_at, id")
        .fetch_all(conn)
        .await
        .map_err(map_err)?
        .iter()
        .map(key_record)
        .collect()
}

pub(crate) async fn key(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    one(conn, "SELECT * FROM api_keys WHERE id = $1", id, key_record).await
}

pub(crate) async fn key_by_hash(
    conn: &mut PgConnection,
    hash: &str,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    one(
        conn,
        "SELECT * FROM api_keys WHERE hash = $1 AND revoked_at IS NULL",
        hash,
        key_record,
    )
    .await
}

// --- Outbox -------------------------------------------------------------------------------

fn endpoint_record(row: &PgRow) -> Result<EndpointRecord, StoreError> {
    Ok(EndpointRecord {
        id: get(row, "id")?,
        configured: get(row, "configured")?,
        disabled_at: get(row, "disabled_at")?,
        disabled_reason: get(row, "disabled_reason")?,
    })
}

pub(crate) async fn endpoints(conn: &mut PgConnection) -> Result<Vec<EndpointRecord>, StoreError> {
    sqlx::query("SELECT * FROM endpoints ORDER BY id")
        .fetch_all(conn)
        .await
        .map_err(map_err)?
        .iter()
        .map(endpoint_record)
        .collect()
}

pub(crate) async fn endpoint(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<EndpointRecord>, StoreError> {
    one(
        conn,
        "SELECT * FROM endpoints WHERE id = $1",
        id,
        endpoint_record,
    )
    .await
}

/// A delivery row joined with its outbox message (`message_id`, `event_type`, `payload`).
pub(crate) fn delivery_record(row: &PgRow) -> Result<DeliveryRecord, StoreError> {
    let attempts: i32 = get(row, "attempts")?;
    let last_status: Option<i32> = get(row, "last_status")?;
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
    conn: &mut PgConnection,
    f: &DeliveryFilter,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    sqlx::query(
        "SELECT d.*, o.id AS message_id, o.event_type, o.payload
         FROM deliveries d JOIN outbox o ON o.seq = d.message_seq
         WHERE ($1::text IS NULL OR d.status = $1) AND ($2::text IS NULL OR d.endpoint_id = $2)
           AND ($3::text IS NULL OR d.user_id = $3)
           AND ($4::text IS NULL OR d.seq < (SELECT seq FROM deliveries WHERE id = $4))
         ORDER BY d.seq DESC LIMIT $5",
    )
    .bind(f.status.map(DeliveryStatus::as_str))
    .bind(f.endpoint_id.as_deref())
    .bind(f.user_id.as_deref())
    .bind(f.before.as_deref())
    .bind(limit(f.limit))
    .fetch_all(conn)
    .await
    .map_err(map_err)?
    .iter()
    .map(delivery_record)
    .collect()
}

pub(crate) async fn delivery(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<DeliveryRecord>, StoreError> {
    one(
        conn,
        "SELECT d.*, o.id AS message_id, o.event_type, o.payload
         FROM deliveries d JOIN outbox o ON o.seq = d.message_seq
         WHERE d.id = $1",
        id,
        delivery_record,
    )
    .await
}

// --- Backtests ------------------------------------------------------------------------------

pub(crate) async fn replay_events(
    conn: &mut PgConnection,
    f: &ReplayFilter,
) -> Result<Vec<ReplayRecord>, StoreError> {
    let mut records = sqlx::query(
        "SELECT event_seq, user_id, at, signals FROM signal_snapshots
         WHERE event_seq > $1
           AND ($2::bigint IS NULL OR received_at >= $2)
           AND ($3::bigint IS NULL OR received_at < $3)
         ORDER BY event_seq LIMIT $4",
    )
    .bind(f.after_seq)
    .bind(f.received_since)
    .bind(f.received_until)
    .bind(limit(f.limit))
    .fetch_all(&mut *conn)
    .await
    .map_err(map_err)?
    .iter()
    .map(|row| {
        Ok(ReplayRecord {
            seq: get(row, "event_seq")?,
            user_id: get(row, "user_id")?,
            at: get(row, "at")?,
            signals: get(row, "signals")?,
            unassessed: None,
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    // The few bodies in one query of their own, not a join that could read every event.
    let unassessed: Vec<i64> = records
        .iter()
        .filter(|r| r.signals.is_none())
        .map(|r| r.seq)
        .collect();
    if unassessed.is_empty() {
        return Ok(records);
    }
    let mut bodies: std::collections::HashMap<i64, ReplayBody> =
        sqlx::query("SELECT seq, id, body_trusted, raw FROM events WHERE seq = ANY($1)")
            .bind(&unassessed)
            .fetch_all(&mut *conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(|row| {
                Ok((
                    get(row, "seq")?,
                    ReplayBody {
                        event_id: get(row, "id")?,
                        body_trusted: get(row, "body_trusted")?,
                        raw: get(row, "raw")?,
                    },
                ))
            })
            .collect::<Result<_, StoreError>>()?;
    for record in &mut records {
        if record.signals.is_none() {
            record.unassessed = bodies.remove(&record.seq);
        }
    }
    Ok(records)
}

pub(crate) async fn verdicts(conn: &mut PgConnection) -> Result<Vec<VerdictRecord>, StoreError> {
    sqlx::query(
        "SELECT user_id, resolved_at, outcome FROM cases
         WHERE status = 'resolved' AND resolved_at IS NOT NULL AND outcome IS NOT NULL
         ORDER BY resolved_at, id",
    )
    .fetch_all(conn)
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
    conn: &mut PgConnection,
    shadow_id: &str,
    after: Option<&str>,
    page: u32,
) -> Result<Vec<ShadowRecord>, StoreError> {
    sqlx::query(
        "SELECT s.assessment_id, a.user_id, a.evaluated_at, a.assessment, s.decision, s.score,
                s.policy_hash, s.fired
         FROM shadow_assessments s JOIN assessments a ON a.id = s.assessment_id
         WHERE s.shadow_id = $1 AND ($2::text IS NULL OR s.assessment_id > $2)
         ORDER BY s.assessment_id LIMIT $3",
    )
    .bind(shadow_id)
    .bind(after)
    .bind(limit(page))
    .fetch_all(conn)
    .await
    .map_err(map_err)?
    .iter()
    .map(|row| {
        let fired: String = get(row, "fired")?;
        Ok(ShadowRecord {
            assessment_id: get(row, "assessment_id")?,
            user_id: get(row, "user_id")?,
            evaluated_at: get(row, "evaluated_at")?,
            assessment: get(row, "assessment")?,
            decision: parse_decision(&get::<String>(row, "decision")?)?,
            score: u8::try_from(i64::from(get::<i32>(row, "score")?))
                .map_err(|_| StoreError::Corrupt("shadow score out of range".into()))?,
            policy_hash: get(row, "policy_hash")?,
            fired: serde_json::from_str(&fired)
                .map_err(|e| StoreError::Corrupt(format!("shadow fired rules: {e}")))?,
        })
    })
    .collect()
}

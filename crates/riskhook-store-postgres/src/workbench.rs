//! Workbench sign-in sessions (`ui_sessions`): each call is one statement, its own
//! transaction, shared by every instance.

use riskhook_store::{StoreError, UiSessionRecord};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::map_err;

pub(crate) async fn create(
    conn: &mut PgConnection,
    session: &UiSessionRecord,
    expired_before: i64,
) -> Result<(), StoreError> {
    // One statement, so the clean-up and the insert commit together.
    sqlx::query(
        "WITH expired AS (DELETE FROM ui_sessions WHERE last_seen_at < $7)
         INSERT INTO ui_sessions (token_hash, key_id, csrf_token, created_at, last_seen_at, flash)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&session.token_hash)
    .bind(&session.key_id)
    .bind(&session.csrf_token)
    .bind(session.created_at)
    .bind(session.last_seen_at)
    .bind(session.flash.as_deref())
    .bind(expired_before)
    .execute(conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

pub(crate) async fn get(
    conn: &mut PgConnection,
    token_hash: &str,
) -> Result<Option<UiSessionRecord>, StoreError> {
    sqlx::query("SELECT * FROM ui_sessions WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(conn)
        .await
        .map_err(map_err)?
        .map(|row| record(&row))
        .transpose()
}

fn record(row: &PgRow) -> Result<UiSessionRecord, StoreError> {
    Ok(UiSessionRecord {
        token_hash: row.try_get("token_hash").map_err(map_err)?,
        key_id: row.try_get("key_id").map_err(map_err)?,
        csrf_token: row.try_get("csrf_token").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
        last_seen_at: row.try_get("last_seen_at").map_err(map_err)?,
        flash: row.try_get("flash").map_err(map_err)?,
    })
}

pub(crate) async fn update(
    conn: &mut PgConnection,
    token_hash: &str,
    last_seen_at: i64,
    flash: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE ui_sessions SET last_seen_at = $2, flash = $3 WHERE token_hash = $1")
        .bind(token_hash)
        .bind(last_seen_at)
        .bind(flash)
        .execute(conn)
        .await
        .map_err(map_err)?;
    Ok(())
}

pub(crate) async fn delete(conn: &mut PgConnection, token_hash: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM ui_sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(conn)
        .await
        .map_err(map_err)?;
    Ok(())
}

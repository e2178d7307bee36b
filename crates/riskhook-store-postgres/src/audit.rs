//! The audit chain on PostgreSQL: staged by the transaction that makes an entry, linked into
//! the chain in batches by one linker at a time (migration 6).
//!
//! Appending at the head needs the head, so appends are one at a time. When every writing
//! transaction appended its own entries, it held one global lock from reading the head to its
//! commit, and the commits of all instances queued behind each other (each waiting for its own
//! WAL flush, and with the database a few milliseconds away, for several round trips). Now a
//! transaction only inserts its entries into `audit_staged`, which takes no lock any other
//! transaction waits for; the entries commit, or roll back, with the effects they describe.
//! A linker takes the audit lock, moves every committed staged entry into `audit_log` in
//! staging order, each linked to the one before, and deletes them from staging, in one
//! transaction: a batch costs one lock, one head read and two statements however many
//! transactions staged it.
//!
//! What holds, as before: every committed effect's entry is in the chain (staged in the same
//! transaction, and no staged entry can leave except into the chain: the delete trigger); the
//! chain never forks (one linker at a time, and the head-only insert trigger); and the chain
//! is complete for every reader, since each read of it links first ([`link`] with
//! [`Wait::Yes`]). The order of the chain is the order of linking, which, across transactions,
//! is not quite the order of commits; an entry's `at` is its own.
//!
//! A staged entry carries a seal (its hash at position 0, keyed when its writer held the audit
//! key). The linker recomputes it and stops before an entry it does not match: an entry
//! changed or written outside riskhook while staged is reported, never laundered into the
//! keyed chain.

use riskhook_core::audit::{AuditKey, GENESIS};
use riskhook_store::{AuditRecord, NewAuditEntry, StoreError};
use sqlx::postgres::PgPool;
use sqlx::{PgConnection, Row};

use crate::effects::{AUDIT_LOCK, LOCK_SPACE, new_id};
use crate::map_err;

/// Entries linked per transaction of the linker: one batch's rows are read, inserted and
/// deleted in three statements.
const BATCH: i64 = 1_000;

/// Audit entries ready to stage, as the columns `riskhook_stage_audit` takes (migration 8):
/// each with a new id and its seal.
pub(crate) struct Staged {
    pub(crate) ids: Vec<String>,
    at: Vec<i64>,
    actor: Vec<String>,
    action: Vec<String>,
    subject: Vec<String>,
    reason: Vec<Option<String>>,
    before: Vec<Option<String>>,
    after: Vec<Option<String>>,
    keyed: bool,
    seals: Vec<String>,
}

impl Staged {
    pub(crate) fn new(entries: Vec<NewAuditEntry>, key: Option<&AuditKey>) -> Self {
        let ids: Vec<String> = entries.iter().map(|_| new_id("aud")).collect();
        let seals = entries
            .iter()
            .zip(&ids)
            .map(|(entry, id)| entry.seal(id, key))
            .collect();
        let mut staged = Self {
            ids,
            at: Vec::with_capacity(entries.len()),
            actor: Vec::with_capacity(entries.len()),
            action: Vec::with_capacity(entries.len()),
            subject: Vec::with_capacity(entries.len()),
            reason: Vec::with_capacity(entries.len()),
            before: Vec::with_capacity(entries.len()),
            after: Vec::with_capacity(entries.len()),
            keyed: key.is_some(),
            seals,
        };
        for entry in entries {
            staged.at.push(entry.at);
            staged.actor.push(entry.actor);
            staged.action.push(entry.action);
            staged.subject.push(entry.subject);
            staged.reason.push(entry.reason);
            staged.before.push(entry.before);
            staged.after.push(entry.after);
        }
        staged
    }

    /// Binds the ten arguments of `riskhook_stage_audit`, in its order, to `query`.
    pub(crate) fn bind<'q>(&'q self, query: PgQuery<'q>) -> PgQuery<'q> {
        query
            .bind(&self.ids)
            .bind(&self.at)
            .bind(&self.actor)
            .bind(&self.action)
            .bind(&self.subject)
            .bind(&self.reason)
            .bind(&self.before)
            .bind(&self.after)
            .bind(self.keyed)
            .bind(&self.seals)
    }
}

/// A statement with its arguments being bound.
pub(crate) type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Stages `entries`, in order, in the caller's transaction. Returns their ids.
pub(crate) async fn stage(
    conn: &mut PgConnection,
    entries: Vec<NewAuditEntry>,
    key: Option<&AuditKey>,
) -> Result<Vec<String>, StoreError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let staged = Staged::new(entries, key);
    staged
        .bind(sqlx::query(
            "SELECT riskhook_stage_audit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        ))
        .execute(conn)
        .await
        .map_err(map_err)?;
    Ok(staged.ids)
}

/// Whether [`link`] waits for a linker already at work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Wait, then link: a reader, which must see every entry committed before it.
    Yes,
    /// Leave it to the linker at work: the periodic linker.
    No,
}

/// Links every committed staged entry into the chain, in batches, and returns how many. With
/// `key`, only entries staged under that key are linked; without, only unkeyed ones (an
/// instance without the key stops, quietly, before a keyed entry and leaves it to one with
/// the key). An entry whose seal does not hold, or an unkeyed entry met by an instance with
/// the key, stops the chain before it with [`StoreError::Corrupt`]: what came before it is
/// linked.
pub(crate) async fn link(
    pool: &PgPool,
    key: Option<&AuditKey>,
    wait: Wait,
) -> Result<u64, StoreError> {
    let mut linked = 0;
    loop {
        let (n, more) = link_batch(pool, key, wait).await?;
        linked += n;
        if !more {
            break;
        }
    }
    if linked > 0 {
        metrics::counter!("riskhook_audit_linked_total").increment(linked);
    }
    Ok(linked)
}

/// One batch: returns how many entries it linked and whether a full batch was read (there may
/// be more).
async fn link_batch(
    pool: &PgPool,
    key: Option<&AuditKey>,
    wait: Wait,
) -> Result<(u64, bool), StoreError> {
    let mut tx = pool.begin().await.map_err(map_err)?;
    let locked: bool = match wait {
        Wait::Yes => {
            sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
                .bind(LOCK_SPACE)
                .bind(AUDIT_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            true
        }
        Wait::No => sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1, $2)")
            .bind(LOCK_SPACE)
            .bind(AUDIT_LOCK)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?,
    };
    if !locked {
        tx.rollback().await.map_err(map_err)?;
        return Ok((0, false));
    }
    // Under READ COMMITTED, this statement, begun after the lock was granted, sees every entry
    // the previous linker moved, and every staged entry committed by now.
    let rows = sqlx::query(
        "SELECT staged, id, at, actor, action, subject, reason, before, after, keyed, seal
         FROM audit_staged ORDER BY staged LIMIT $1",
    )
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    let full = rows.len() as i64 == BATCH;
    if rows.is_empty() {
        tx.rollback().await.map_err(map_err)?;
        return Ok((0, false));
    }
    let head = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
    let (mut seq, mut prev) = match head {
        Some(row) => (
            row.try_get::<i64, _>(0).map_err(map_err)?,
            row.try_get::<String, _>(1).map_err(map_err)?,
        ),
        None => (0, GENESIS.to_owned()),
    };
    let mut staged = Vec::with_capacity(rows.len());
    let mut records = Vec::with_capacity(rows.len());
    let mut stop = None;
    for row in &rows {
        let id: String = row.try_get("id").map_err(map_err)?;
        let keyed: bool = row.try_get("keyed").map_err(map_err)?;
        let seal: String = row.try_get("seal").map_err(map_err)?;
        let entry = NewAuditEntry {
            at: row.try_get("at").map_err(map_err)?,
            actor: row.try_get("actor").map_err(map_err)?,
            action: row.try_get("action").map_err(map_err)?,
            subject: row.try_get("subject").map_err(map_err)?,
            reason: row.try_get("reason").map_err(map_err)?,
            before: row.try_get("before").map_err(map_err)?,
            after: row.try_get("after").map_err(map_err)?,
        };
        match (keyed, key) {
            // Another instance's, with the key this one lacks: left for it.
            (true, None) => break,
            (false, Some(_)) => {
                stop = Some(format!(
                    "staged audit entry {id} was written without the audit key, and this \
                     instance has one: instances disagree about audit.key; the chain stops \
                     before it"
                ));
                break;
            }
            _ if entry.seal(&id, key) != seal => {
                stop = Some(format!(
                    "staged audit entry {id} does not match its seal: it was changed, or \
                     written outside riskhook, after its transaction committed; the chain \
                     stops before it"
                ));
                break;
            }
            _ => {}
        }
        seq += 1;
        let record = entry.link(seq, id, prev, key);
        prev = record.hash.clone();
        staged.push(row.try_get::<i64, _>("staged").map_err(map_err)?);
        records.push(record);
    }
    let linked = records.len() as u64;
    if !records.is_empty() {
        insert(&mut tx, &records).await?;
        sqlx::query("DELETE FROM audit_staged WHERE staged = ANY($1)")
            .bind(&staged)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
    }
    tx.commit().await.map_err(map_err)?;
    match stop {
        Some(why) => Err(StoreError::Corrupt(why)),
        None => Ok((linked, full && linked == rows.len() as u64)),
    }
}

/// Inserts linked records in one statement.
async fn insert(conn: &mut PgConnection, records: &[AuditRecord]) -> Result<(), StoreError> {
    let column = |f: fn(&AuditRecord) -> &str| records.iter().map(f).collect::<Vec<&str>>();
    let optional =
        |f: fn(&AuditRecord) -> Option<&str>| records.iter().map(f).collect::<Vec<Option<&str>>>();
    sqlx::query(
        "INSERT INTO audit_log (seq, id, at, actor, action, subject, reason, before, after,
                                prev_hash, hash, keyed)
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[],
                              $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                              $11::text[], $12::boolean[])
         -- In chain order: the insert trigger checks each row against the one before it.
         ORDER BY 1",
    )
    .bind(records.iter().map(|r| r.seq).collect::<Vec<i64>>())
    .bind(column(|r| &r.id))
    .bind(records.iter().map(|r| r.at).collect::<Vec<i64>>())
    .bind(column(|r| &r.actor))
    .bind(column(|r| &r.action))
    .bind(column(|r| &r.subject))
    .bind(optional(|r| r.reason.as_deref()))
    .bind(optional(|r| r.before.as_deref()))
    .bind(optional(|r| r.after.as_deref()))
    .bind(column(|r| &r.prev_hash))
    .bind(column(|r| &r.hash))
    .bind(records.iter().map(|r| r.keyed).collect::<Vec<bool>>())
    .execute(conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

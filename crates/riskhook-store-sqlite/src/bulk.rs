//! Bulk reads for backtests: a plain `rusqlite` read-only connection of their own, used on a
//! blocking thread a page at a time.
//!
//! A backtest reads every stored session event, a million of them or more. Through sqlx each
//! row is stepped on sqlx's worker thread and handed to the async side with its columns copied
//! into an owned row, then decoded again. Here a page is stepped and decoded where it is used,
//! on one thread, into the records the replay needs: a whole backtest ran 1.13x faster
//! (BENCHMARKS.md, "Policy backtest on 1,000,000 events"). The pages come from
//! `signal_snapshots`, read in key order, ~1 KB an event: no event row, body or assessment is
//! read but for an event stored without an assessment.
//!
//! The connection is the backtests' own, so a long replay holds none of the read pool's
//! connections, which answer API requests meanwhile. Each page is one statement: no read
//! snapshot is held between pages, so checkpoints are not held back either.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use riskhook_store::{ReplayBody, ReplayFilter, ReplayRecord, StoreError};
use rusqlite::{Connection, OpenFlags, params};

use crate::writer::map_err;

/// The backtests' read-only connection to the database at `path`, opened on first use.
#[derive(Debug)]
pub(crate) struct BulkReader {
    path: PathBuf,
    connection: Mutex<Option<Connection>>,
}

impl BulkReader {
    pub(crate) fn new(path: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            path,
            connection: Mutex::new(None),
        })
    }

    /// Runs `read` on the connection, on this (blocking) thread. Backtests running at the same
    /// time take turns, a page each.
    fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut slot = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let connection = match slot.take() {
            Some(open) => slot.insert(open),
            None => slot.insert(open(&self.path)?),
        };
        read(connection).map_err(map_err)
    }
}

fn open(path: &PathBuf) -> Result<Connection, StoreError> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(map_err)?;
    connection
        .busy_timeout(std::time::Duration::from_secs(5))
        .map_err(map_err)?;
    Ok(connection)
}

/// A page of stored session events in arrival order: `signal_snapshots` read in key order,
/// with the event's body only for the few stored without an assessment.
pub(crate) async fn replay_events(
    reader: &Arc<BulkReader>,
    filter: &ReplayFilter,
) -> Result<Vec<ReplayRecord>, StoreError> {
    let (reader, f) = (reader.clone(), filter.clone());
    tokio::task::spawn_blocking(move || {
        reader
            .with(|c| {
                // The bodies by a statement of their own, not a join: SQLite would seek each
                // event's row (a page of the large `events` table an event) before testing whether
                // the snapshot is there.
                let mut page = c.prepare_cached(
                    "SELECT event_seq, user_id, at, signals FROM signal_snapshots
                 WHERE event_seq > ?1
                   AND (?2 IS NULL OR received_at >= ?2) AND (?3 IS NULL OR received_at < ?3)
                 ORDER BY event_seq LIMIT ?4",
                )?;
                let records = page
                    .query_map(
                        params![f.after_seq, f.received_since, f.received_until, f.limit],
                        |r| {
                            Ok(ReplayRecord {
                                seq: r.get(0)?,
                                user_id: r.get(1)?,
                                at: r.get(2)?,
                                signals: r.get(3)?,
                                unassessed: None,
                            })
                        },
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let mut body = c.prepare_cached(
                    "SELECT id, body_trusted, raw, raw_encoding FROM events WHERE seq = ?1",
                )?;
                let mut stored: Vec<(usize, String, bool, Vec<u8>, i64)> = Vec::new();
                for (i, record) in records.iter().enumerate() {
                    if record.signals.is_none() {
                        stored.push(body.query_row([record.seq], |r| {
                            Ok((i, r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                        })?);
                    }
                }
                Ok((records, stored))
            })
            .and_then(|(mut records, stored)| {
                for (i, event_id, body_trusted, raw, encoding) in stored {
                    records[i].unassessed = Some(ReplayBody {
                        event_id,
                        body_trusted,
                        raw: crate::packed::unpack(raw, encoding, "events.raw")?,
                    });
                }
                Ok(records)
            })
    })
    .await
    .map_err(|e| StoreError::Other(Box::new(e)))?
}

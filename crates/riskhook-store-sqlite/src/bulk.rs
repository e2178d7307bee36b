//! Bulk reads for backtests: a plain `rusqlite` read-only connection of their own, used on a
//! blocking thread a page at a time.
//!
//! A backtest reads every stored session event, a million of them or more. Through sqlx each
//! row is stepped on sqlx's worker thread and handed to the async side with its columns copied
//! into an owned row, then decoded again. Here a page is stepped and decoded where it is used,
//! on one thread, into the records the replay needs: a whole backtest ran 1.13x faster
//! (BENCHMARKS.md, "Policy backtest on 1,000,000 events"); the read itself, two B-tree lookups
//! and a 3-4 KB row an event, is most of what is left of the store's share.
//!
//! The connection is the backtests' own, so a long replay holds none of the read pool's
//! connections, which answer API requests meanwhile. Each page is one statement: no read
//! snapshot is held between pages, so checkpoints are not held back either.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use riskhook_store::{ReplayFilter, ReplayRecord, StoreError};
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

/// A page of stored session events in arrival order, each with its assessment's JSON when it
/// was assessed, else its raw body.
pub(crate) async fn replay_events(
    reader: &Arc<BulkReader>,
    filter: &ReplayFilter,
) -> Result<Vec<ReplayRecord>, StoreError> {
    let (reader, f) = (reader.clone(), filter.clone());
    tokio::task::spawn_blocking(move || {
        reader.with(|c| {
            let mut page = c.prepare_cached(
                "SELECT e.seq, e.id, e.vendor_data, e.received_at, e.event_timestamp,
                        e.body_trusted, a.assessment, CASE WHEN a.id IS NULL THEN e.raw END
                 FROM events e LEFT JOIN assessments a ON a.event_id = e.id
                 WHERE e.seq > ?1 AND e.session_id IS NOT NULL
                   AND (?2 IS NULL OR e.received_at >= ?2) AND (?3 IS NULL OR e.received_at < ?3)
                 ORDER BY e.seq LIMIT ?4",
            )?;
            let rows = page.query_map(
                params![f.after_seq, f.received_since, f.received_until, f.limit],
                |r| {
                    Ok(ReplayRecord {
                        seq: r.get(0)?,
                        event_id: r.get(1)?,
                        user_id: r.get(2)?,
                        received_at: r.get(3)?,
                        event_timestamp: r.get(4)?,
                        body_trusted: r.get(5)?,
                        assessment: r.get(6)?,
                        raw: r.get(7)?,
                    })
                },
            )?;
            rows.collect()
        })
    })
    .await
    .map_err(|e| StoreError::Other(Box::new(e)))?
}

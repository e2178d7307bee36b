//! Checkpoints off the commit path: a thread of its own copies the WAL into the database while
//! the writer goes on committing.
//!
//! SQLite's automatic checkpoint runs inside the `COMMIT` that finds the WAL past 1000 pages,
//! on the writer thread: under load that was a third of the writer's time, and each one (copy
//! ~4 MB, fsync the database) stalled every request behind it — the whole latency tail. Here a
//! commit only notes the WAL's length ([`Wal::after_commit`]); every [`CHECKPOINT_FRAMES`] new
//! pages, a `PASSIVE` checkpoint is asked of the checkpointer thread, which copies pages while
//! new ones are appended. Small, frequent passes measured far better than SQLite's 4 MB ones:
//! each fsync of the database then has little to flush, so the writer's fsyncs of the WAL are
//! not queued behind it (BENCHMARKS.md).
//!
//! SQLite rewinds the WAL only when a write begins after every page was copied, which a busy
//! writer may never allow, and a longer WAL makes every page lookup slower. So its length is
//! capped: past [`WAL_CAP_FRAMES`] the writer stops and waits for a `FULL` checkpoint of what is
//! left, after which its next transaction rewinds the WAL. Under sustained overload that wait is
//! the backpressure; at ordinary load the passes keep up and the cap is not reached.
//!
//! Durability does not move: a commit is acknowledged once the WAL holding it is fsynced, and a
//! checkpoint (interrupted or not) never loses a committed page.

use std::cell::Cell;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

use riskhook_store::StoreError;
use rusqlite::Connection;

use crate::writer::map_err;

/// New WAL pages (about 1 MB at 4 KiB) after which a background pass is asked for.
pub(crate) const CHECKPOINT_FRAMES: i32 = 250;

/// WAL length (pages, about 40 MB) at which the writer waits for a full checkpoint.
pub(crate) const WAL_CAP_FRAMES: i32 = 10_000;

thread_local! {
    // The WAL's length after this thread's last commit, set by SQLite's WAL hook. The hook is
    // a plain `fn`, so it cannot capture; the writer connection stays on one thread.
    static WAL_FRAMES: Cell<i32> = const { Cell::new(0) };
}

fn record_frames(_: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.with(|f| f.set(frames));
    Ok(())
}

enum Request {
    /// Copy what can be copied, without waiting for anyone.
    Passive,
    /// Copy everything, waiting for readers, then say so.
    Full(SyncSender<()>),
}

/// When to checkpoint, in WAL pages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// New pages between two background passes.
    pub(crate) every: i32,
    /// The WAL length at which the writer waits.
    pub(crate) cap: i32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            every: CHECKPOINT_FRAMES,
            cap: WAL_CAP_FRAMES,
        }
    }
}

/// The writer's handle on the checkpointer thread; dropping it ends the thread. Lives on the
/// writer thread.
#[derive(Debug)]
pub(crate) struct Wal {
    requests: SyncSender<Request>,
    limits: Limits,
    /// The WAL's length when a pass was last asked for.
    asked_at: Cell<i32>,
}

impl Wal {
    /// Takes over checkpointing for `writer` and starts the checkpointer thread on a connection
    /// of its own to `path`. Every commit of `writer` must happen on the thread that then calls
    /// [`Wal::after_commit`].
    pub(crate) fn start(
        writer: &Connection,
        path: &Path,
        limits: Limits,
    ) -> Result<Self, StoreError> {
        // A WAL hook replaces SQLite's automatic checkpoint on this connection.
        writer.wal_hook(Some(record_frames));
        let connection = Connection::open(path).map_err(map_err)?;
        connection
            .execute_batch("PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
            .map_err(map_err)?;
        // One request waiting is enough: a pass copies everything committed before it starts.
        let (requests, queue) = sync_channel(1);
        std::thread::Builder::new()
            .name("riskhook-ckpt".to_owned())
            .spawn(move || run(&connection, &queue))
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        Ok(Self {
            requests,
            limits,
            asked_at: Cell::new(0),
        })
    }

    /// Called on the writer thread after each transaction, committed or not.
    pub(crate) fn after_commit(&self) {
        let frames = WAL_FRAMES.with(Cell::get);
        if frames < self.asked_at.get() {
            self.asked_at.set(0); // the WAL started over
        }
        if frames >= self.limits.cap {
            let started = Instant::now();
            let (done, finished) = sync_channel(1);
            if self.requests.send(Request::Full(done)).is_ok() {
                let _ = finished.recv();
            }
            metrics::histogram!("riskhook_wal_cap_wait_seconds")
                .record(started.elapsed().as_secs_f64());
            // Until the next commit reports the rewound length.
            WAL_FRAMES.with(|f| f.set(0));
            self.asked_at.set(0);
        } else if frames >= self.asked_at.get() + self.limits.every {
            self.asked_at.set(frames);
            // Full: a request is already waiting, and that pass will copy these pages too.
            let _ = self.requests.try_send(Request::Passive);
        }
    }
}

fn run(connection: &Connection, queue: &Receiver<Request>) {
    while let Ok(request) = queue.recv() {
        let (pragma, done) = match request {
            Request::Passive => ("PRAGMA wal_checkpoint(PASSIVE)", None),
            Request::Full(done) => ("PRAGMA wal_checkpoint(FULL)", Some(done)),
        };
        let started = Instant::now();
        // Columns: busy, pages in the WAL, pages of it copied so far.
        let result = connection.query_row(pragma, [], |row| row.get::<_, i64>(1));
        metrics::histogram!("riskhook_checkpoint_seconds").record(started.elapsed().as_secs_f64());
        match result {
            #[allow(clippy::cast_precision_loss)]
            Ok(pages) => metrics::gauge!("riskhook_wal_pages").set(pages.max(0) as f64),
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; the next one retries"),
        }
        if let Some(done) = done {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: u64 = 4096;

    fn writer(path: &Path) -> Connection {
        let conn = Connection::open(path).expect("open");
        conn.execute_batch(
            "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL);",
        )
        .expect("schema");
        conn
    }

    fn file_len(path: &Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    /// Commits `n` transactions of one ~3-page row each, as the writer thread would.
    fn commit_rows(conn: &mut Connection, wal: &Wal, n: usize) {
        for i in 0..n {
            let tx = conn.transaction().expect("begin");
            tx.execute(
                "INSERT INTO t (body) VALUES (?1)",
                [vec![u8::try_from(i % 251).expect("small"); 10_000]],
            )
            .expect("insert");
            tx.commit().expect("commit");
            wal.after_commit();
        }
    }

    #[test]
    fn the_wal_stays_under_its_cap_and_is_copied_into_the_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let mut conn = writer(&path);
        let limits = Limits { every: 8, cap: 40 };
        let wal = Wal::start(&conn, &path, limits).expect("start");

        commit_rows(&mut conn, &wal, 400); // ~1,200 pages: thirty times the cap

        // Without the cap, SQLite (its automatic checkpoint replaced) would let the WAL grow
        // to every page written; with it, the file never holds much more than the cap plus a
        // transaction, since each full checkpoint lets the next transaction rewind it.
        let wal_len = file_len(&dir.path().join("t.db-wal"));
        let bound = (u64::try_from(limits.cap).expect("positive") + 8) * (PAGE + 24) + 32;
        assert!(wal_len <= bound, "WAL of {wal_len} bytes, bound {bound}");
        // And the rows went into the database file itself, not only into the WAL.
        assert!(file_len(&path) >= 300 * 10_000, "{} bytes", file_len(&path));
        let rows: i64 = Connection::open(&path)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)))
            .expect("count");
        assert_eq!(rows, 400);
    }

    #[test]
    fn background_passes_copy_pages_while_the_writer_goes_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let mut conn = writer(&path);
        // A cap out of reach: only the background passes can copy anything.
        let wal = Wal::start(
            &conn,
            &path,
            Limits {
                every: 8,
                cap: i32::MAX,
            },
        )
        .expect("start");

        commit_rows(&mut conn, &wal, 100);
        drop(wal); // ends the thread once it has answered what was asked

        // The last pass was asked for at most `every` pages before the end; allow for it and
        // for a pass still running when the assertion reads the file.
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while file_len(&path) < 50 * 10_000 && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(file_len(&path) >= 50 * 10_000, "{} bytes", file_len(&path));
    }
}

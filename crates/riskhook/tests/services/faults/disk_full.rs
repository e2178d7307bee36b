//! A full disk under SQLite: the database lives on a small tmpfs, a filler file takes the rest
//! of it, and deliveries go on. Writes fail, and intake must answer 503 (never a 2xx that is
//! lost, never a 500); the database must stay sound (`PRAGMA integrity_check`, every
//! acknowledged event present, the audit chain intact); and once the filler is deleted,
//! intake must recover without a restart: the writer thread survives `SQLITE_FULL`.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use super::{
    Deliveries, Ledger, Load, PATIENCE, audit_verify, check_store, is_root, run, skip_or_fail,
    wait_for_counts,
};
use crate::helpers::Served;

/// A tmpfs of the given size mounted on a temporary directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl Tmpfs {
    /// `Err` says why it cannot be mounted here.
    fn mount(size: &str) -> Result<Self, String> {
        if !is_root() {
            return Err("not running as root (needed to mount a tmpfs)".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path()))?;
        Ok(Self { dir, mounted: true })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if self.mounted
            && run(Command::new("umount").arg(self.dir.path())).is_err()
            // Still busy (a failed test's server not yet reaped): detach it now, freed later.
            && let Err(e) = run(Command::new("umount").arg("-l").arg(self.dir.path()))
        {
            eprintln!("could not unmount {}: {e}", self.dir.path().display());
        }
    }
}

/// Writes a file until the filesystem is full; returns its size.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5a_u8; 64 * 1024];
    let mut written = 0;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    let _ = file.sync_all();
    written
}

pub(crate) async fn a_full_disk_answers_503_keeps_the_database_sound_and_intake_recovers_when_space_returns()
 {
    const TEST: &str = "faults::disk_full";
    let tmpfs = match Tmpfs::mount("8m") {
        Ok(tmpfs) => tmpfs,
        Err(why) => return skip_or_fail(TEST, &why),
    };
    let db_url = format!("sqlite://{}", tmpfs.path().join("full.db").display());
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("RISKHOOK_DATABASE_URL", db_url.as_str()),
        ("RISKHOOK_DIDIT__TOLERANCE", "1h"),
    ];
    let mut served = tokio::task::block_in_place(|| Served::start(dir.path(), &env));
    let base = format!("http://{}", served.address);
    let url = format!("{base}/webhooks/didit");
    let client = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let deliveries = Arc::new(Deliveries::new("full", 20));
    let ledger = Arc::new(Ledger::default());

    let load = Load::start(&url, 4, &deliveries, &ledger);
    wait_for_counts(&ledger, "acknowledged 50", |(_, acked, _, _)| acked >= 50).await;

    // The disk fills up under load.
    let filler = tmpfs.path().join("filler");
    let filled = tokio::task::block_in_place(|| fill(&filler));
    let before = ledger.counts();
    wait_for_counts(
        &ledger,
        "refused 20 with 503 on a full disk",
        |(_, _, unavailable, _)| unavailable >= before.2 + 20,
    )
    .await;
    let full = ledger.counts();
    // The refusals are the disk being full, seen by the writer thread at its commit.
    let refused = tokio::task::block_in_place(|| {
        served.wait_for("commit failed; the batch is answered with errors")
    });
    assert!(refused.contains("disk is full"), "{refused}");

    // Space returns: intake recovers, with the same process.
    std::fs::remove_file(&filler).unwrap();
    wait_for_counts(
        &ledger,
        "accepted 30 new once space returned",
        |(_, acked, _, _)| acked >= full.1 + 30,
    )
    .await;
    load.stop().await;
    ledger.settle(&client, &url).await;
    let (sent, acked, _, no_answer) = ledger.counts();
    assert_eq!(sent, acked, "every delivery ends acknowledged");
    assert_eq!(
        no_answer, 0,
        "the service answered every request while the disk was full"
    );

    served.signal("TERM");
    let exit = tokio::task::block_in_place(|| served.child.wait().unwrap());
    assert!(exit.success(), "{exit:?}");
    let path = tmpfs.path().join("full.db");
    let integrity: String = rusqlite::Connection::open(&path)
        .and_then(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(integrity, "ok");
    let store = riskhook_store_sqlite::SqliteStore::open(&db_url)
        .await
        .unwrap();
    let events = check_store(&store, &ledger).await;
    store.close().await;
    let verified = audit_verify(&db_url);
    eprintln!(
        "disk full: {} deliveries refused with 503 while {filled} bytes of filler held the \
         disk ({} acknowledged before it), all accepted on retry; {sent} deliveries, {events} \
         events; integrity ok; {}",
        full.2 - before.2,
        before.1,
        verified.trim()
    );
}

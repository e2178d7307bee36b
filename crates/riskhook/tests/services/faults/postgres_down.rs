//! PostgreSQL stopping under load: a private cluster (never the shared server on 5432, which
//! other tests use) is stopped while clients send deliveries and started again. While it is
//! down, intake answers 503 (never a 2xx that is then lost, never a 500, never silence) and
//! `/readyz` says not ready, naming the database; once it is back, readiness returns, the
//! refused deliveries are accepted on retry and new ones are accepted, without a restart.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use riskhook::config::DatabaseUrl;
use serde_json::Value;

use super::{
    Deliveries, Ledger, Load, PATIENCE, audit_verify, check_store, is_root, run, skip_or_fail,
    wait_for_counts,
};
use crate::helpers::Served;

/// A PostgreSQL cluster of this test's own, in a temporary directory, on a free port; stopped
/// (immediately) and removed when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    running: bool,
}

impl Cluster {
    /// `Err` says why it cannot be set up here (not root, no PostgreSQL binaries, …).
    fn create() -> Result<Self, String> {
        if !is_root() {
            return Err("not running as root (needed to run PostgreSQL as `postgres`)".into());
        }
        let root = Path::new("/usr/lib/postgresql");
        let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
            .map_err(|e| format!("no PostgreSQL binaries in {}: {e}", root.display()))?
            .filter_map(|e| Some(e.ok()?.path().join("bin")))
            .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
            .collect();
        versions.sort();
        let bin = versions
            .pop()
            .ok_or_else(|| format!("no initdb and pg_ctl under {}", root.display()))?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        run(Command::new("chown")
            .arg("postgres:postgres")
            .arg(dir.path()))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let mut cluster = Self {
            dir,
            bin,
            port,
            running: false,
        };
        run(cluster
            .as_postgres("initdb")
            .arg("-D")
            .arg(cluster.data())
            .args(["-U", "postgres", "-A", "trust", "--no-sync"]))?;
        cluster.start()?;
        Ok(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_postgres(&self, program: &str) -> Command {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(program))
            .current_dir(self.dir.path());
        command
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<String, String> {
        run(self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(args))
    }

    fn start(&mut self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log");
        self.pg_ctl(&["-w", "-l", log.to_str().unwrap(), "-o", &options, "start"])?;
        self.running = true;
        Ok(())
    }

    /// The ordinary operator's stop: sessions are ended, the server goes away.
    fn stop(&mut self) -> Result<(), String> {
        self.pg_ctl(&["-w", "-m", "fast", "stop"])?;
        self.running = false;
        Ok(())
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.running
            && let Err(e) = self.pg_ctl(&["-w", "-m", "immediate", "stop"])
        {
            eprintln!("could not stop the test's PostgreSQL cluster: {e}");
        }
    }
}

/// `/readyz`: its status and body.
async fn readyz(client: &reqwest::Client, base: &str) -> (u16, Value) {
    let response = client.get(format!("{base}/readyz")).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub(crate) async fn with_postgres_stopped_intake_answers_503_and_everything_resumes_when_it_returns()
 {
    const TEST: &str = "faults::postgres_down";
    let mut cluster = match Cluster::create() {
        Ok(cluster) => cluster,
        Err(why) => return skip_or_fail(TEST, &why),
    };
    let db_url = cluster.url();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("RISKHOOK_DATABASE_URL", db_url.as_str()),
        ("RISKHOOK_DATABASE_MAX_CONNECTIONS", "4"),
        ("RISKHOOK_DIDIT__TOLERANCE", "1h"),
    ];
    let mut served = tokio::task::block_in_place(|| Served::start(dir.path(), &env));
    let base = format!("http://{}", served.address);
    let url = format!("{base}/webhooks/didit");
    let client = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let (status, body) = readyz(&client, &base).await;
    assert_eq!(
        (status, &body["checks"]["database"]),
        (200, &Value::from("ok")),
        "{body}"
    );

    let deliveries = Arc::new(Deliveries::new("pgdown", 20));
    let ledger = Arc::new(Ledger::default());
    let load = Load::start(&url, 4, &deliveries, &ledger);
    wait_for_counts(&ledger, "acknowledged 30", |(_, acked, _, _)| acked >= 30).await;

    // The database goes away under load.
    tokio::task::block_in_place(|| cluster.stop()).unwrap();
    let stopped = Instant::now();
    wait_for_counts(&ledger, "refused 10 with 503", |(_, _, unavailable, _)| {
        unavailable >= 10
    })
    .await;
    let asked = Instant::now();
    let (status, body) = readyz(&client, &base).await;
    let readyz_took = asked.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable", "{body}");
    assert_eq!(body["checks"]["database"], "unavailable", "{body}");
    let (_, acked_down, unavailable, _) = ledger.counts();
    let down_for = stopped.elapsed();

    // It comes back: ready again, without restarting the service.
    tokio::task::block_in_place(|| cluster.start()).unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = readyz(&client, &base).await;
        if status == 200 {
            assert_eq!(body["checks"]["database"], "ok", "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never ready again: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered = ledger.counts().1;
    wait_for_counts(
        &ledger,
        "accepted 30 new after recovery",
        |(_, acked, _, _)| acked >= recovered + 30,
    )
    .await;
    load.stop().await;
    // What was refused with 503 is accepted when retried.
    ledger.settle(&client, &url).await;
    let (sent, acked, _, no_answer) = ledger.counts();
    assert_eq!(sent, acked, "every delivery ends acknowledged");
    assert_eq!(
        no_answer, 0,
        "the service answered every request while the database was down"
    );

    let store = riskhook::store::open_with(&DatabaseUrl::new(&db_url), 2)
        .await
        .unwrap();
    let events = check_store(store.as_ref(), &ledger).await;
    store.close().await;
    served.signal("TERM");
    let exit = tokio::task::block_in_place(|| served.child.wait().unwrap());
    assert!(exit.success(), "{exit:?}");
    let verified = audit_verify(&db_url);
    eprintln!(
        "postgres down: {unavailable} deliveries refused with 503 in {down_for:?} down \
         ({acked_down} acknowledged by then), all accepted on retry; /readyz answered 503 \
         in {readyz_took:?}; {sent} deliveries, \
         {events} events; {}",
        verified.trim()
    );
}

//! Throwaway databases for tests that need a real PostgreSQL server (feature `test-support`):
//! this crate's conformance tests, and the service's tests that run several instances on one
//! database.
//!
//! The server is named by `RISKHOOK_TEST_POSTGRES_URL` (default [`DEFAULT_URL`]). Each test gets
//! a database of its own, `riskhook_t_<random>`, dropped when its [`DatabaseGuard`] goes.
//!
//! When the server cannot be reached, the tests that need it are *ignored*, and say so in the
//! test runner's own summary (`test result: ok. 0 passed; 0 failed; 16 ignored`): their test
//! binaries have their own harness (`harness = false`, libtest-mimic) that asks
//! [`unavailable`] once, before running anything, and marks each such test ignored. Unless
//! `RISKHOOK_REQUIRE_SERVICES=1` (as in CI): then nothing is ignored and an absent server fails
//! the tests, since a missing service must not pass for a green run there.
//! [`fresh_database_or_skip`] keeps the same rule inside a test (for one run with
//! `--include-ignored`, or a server that goes away after the probe).

pub mod harness;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use riskhook_store::StoreError;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

use crate::map_err;

/// The variable naming the test server.
pub const URL_VAR: &str = "RISKHOOK_TEST_POSTGRES_URL";
/// The test server when [`URL_VAR`] is unset.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Set to `1` to make an unreachable service a test failure rather than a skip.
pub const REQUIRE_VAR: &str = "RISKHOOK_REQUIRE_SERVICES";
/// What to do about an absent service, the end of every reason for ignoring a test.
pub const ADVICE: &str = "start it, or set RISKHOOK_REQUIRE_SERVICES=1 to make this a failure";

/// How long to wait for the server before calling it unreachable (a firewalled host would
/// otherwise hang the test for the TCP timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether [`REQUIRE_VAR`] is `1`: an unreachable service must then fail the tests that need
/// it, not have them ignored or skipped.
pub fn required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1")
}

/// How long [`unavailable`] waits for the server: a refused connection answers at once, a
/// firewalled host would otherwise hold every test binary that asks for [`CONNECT_TIMEOUT`].
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the tests needing the test server ([`server_url`]) should be ignored in this run, or
/// `None` when they should run: the server accepted a connection, or [`required`] (then an
/// absent server must fail them, not hide them). One connection attempt with a short timeout,
/// made by a test harness before it runs anything; the text names the server (password
/// removed) and the error, and ends with [`ADVICE`].
pub fn unavailable() -> Option<String> {
    if required() {
        return None;
    }
    let url = server_url();
    let probe = async {
        let options = PgConnectOptions::from_str(&url).map_err(|e| e.to_string())?;
        match tokio::time::timeout(PROBE_TIMEOUT, options.connect()).await {
            Ok(Ok(conn)) => conn.close().await.map_err(|e| e.to_string()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
        }
    };
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|runtime| runtime.block_on(probe));
    outcome.err().map(|why| {
        format!(
            "PostgreSQL not reachable at {} ({why}); {ADVICE}",
            redact(&url)
        )
    })
}

/// The test server's URL: [`URL_VAR`], or [`DEFAULT_URL`].
pub fn server_url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// `url` without its password (in the user part or a `password=` parameter), for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{user}@{host}")
        }
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<&str> = query
                .split('&')
                .filter(|p| !p.to_ascii_lowercase().starts_with("password="))
                .collect();
            if query.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{}", query.join("&"))
            }
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// `url` naming database `name` instead, everything else (credentials, parameters) as given.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{scheme}://{authority}/{name}{query}")
}

/// Drops its database when dropped (or when [`DatabaseGuard::remove`] is awaited), closing
/// any connection still open to it (`DROP DATABASE … WITH (FORCE)`).
pub struct DatabaseGuard {
    admin: PgConnectOptions,
    name: String,
    removed: bool,
}

impl fmt::Debug for DatabaseGuard {
    // By hand: the connect options hold the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseGuard")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl DatabaseGuard {
    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database now but stays armed: whatever recreates it under the same name (a
    /// test of `riskhook migrate` creating a missing database) is dropped with the guard.
    pub async fn drop_now(&self) -> Result<(), StoreError> {
        drop_database(&self.admin, &self.name).await
    }

    /// Drops the database now, reporting failure.
    pub async fn remove(mut self) -> Result<(), StoreError> {
        self.removed = true;
        drop_database(&self.admin, &self.name).await
    }
}

impl Drop for DatabaseGuard {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        // `Drop` cannot await, and the test's runtime may be the current thread: drop the
        // database from a thread with a runtime of its own, and wait for it.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let outcome = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| StoreError::Other(Box::new(e)))?
                .block_on(drop_database(&admin, &name))
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!("could not drop test database {}", self.name),
        }
    }
}

async fn drop_database(admin: &PgConnectOptions, name: &str) -> Result<(), StoreError> {
    let mut conn = admin.connect().await.map_err(map_err)?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .map_err(map_err)?;
    conn.close().await.map_err(map_err)
}

/// Creates an empty database `riskhook_t_<random>` on the server `admin_url` names (connecting
/// to the database in that URL), and returns its URL (with the same credentials) and the
/// guard that drops it. [`StoreError::Unavailable`] when the server cannot be reached.
pub async fn fresh_database(admin_url: &str) -> Result<(String, DatabaseGuard), StoreError> {
    let admin = PgConnectOptions::from_str(admin_url)
        .map_err(|_| StoreError::Other("invalid PostgreSQL URL".into()))?
        .application_name("riskhook-tests");
    let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, admin.connect()).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return Err(StoreError::Unavailable(Box::new(e))),
        Err(elapsed) => return Err(StoreError::Unavailable(Box::new(elapsed))),
    };
    let name = format!("riskhook_t_{}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .map_err(|e| StoreError::Other(Box::new(e)))?;
    conn.close().await.map_err(map_err)?;
    let url = with_database(admin_url, &name);
    let guard = DatabaseGuard {
        admin,
        name,
        removed: false,
    };
    Ok((url, guard))
}

/// A fresh database on the test server ([`server_url`]), or `None` when the server cannot be
/// reached and [`REQUIRE_VAR`] is not `1`; the skip is reported on stderr. Use it first thing
/// in a test: `let Some((url, database)) = fresh_database_or_skip().await else { return };`
///
/// # Panics
///
/// When the server cannot be reached and [`REQUIRE_VAR`] is `1`, or when it is reached but the
/// database cannot be created: the test fails, saying why.
pub async fn fresh_database_or_skip() -> Option<(String, DatabaseGuard)> {
    let url = server_url();
    match fresh_database(&url).await {
        Ok(database) => Some(database),
        Err(StoreError::Unavailable(e)) => {
            if required() {
                panic!(
                    "PostgreSQL not reachable at {} ({e}), and {REQUIRE_VAR}=1 requires it",
                    redact(&url)
                );
            }
            eprintln!(
                "skipped: PostgreSQL not reachable at {} ({e}); set {REQUIRE_VAR}=1 to make this a failure",
                redact(&url)
            );
            None
        }
        Err(e) => panic!(
            "cannot create a test database on {}: {e} ({:?})",
            redact(&url),
            std::error::Error::source(&e)
        ),
    }
}

/// Every reference of the intake path that names no row, in the database at `url`, as
/// `table.column = value` (empty when every one resolves). Migration 12 dropped these foreign
/// keys; riskhook's functions still write each reference with the row it names, and the tests
/// that run instances concurrently, kill them and run the conformance suite check it here.
pub async fn dangling_references(url: &str) -> Result<Vec<String>, StoreError> {
    let mut conn = PgConnectOptions::from_str(url)
        .map_err(|_| StoreError::Other("invalid PostgreSQL URL".into()))?
        .application_name("riskhook-tests")
        .connect()
        .await
        .map_err(map_err)?;
    let dangling: Vec<String> = sqlx::query_scalar(
        "SELECT 'assessments.event_id = ' || a.event_id FROM assessments a
           WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = a.event_id)
         UNION ALL SELECT 'assessments.case_id = ' || a.case_id FROM assessments a
           WHERE a.case_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.id = a.case_id)
         UNION ALL SELECT 'shadow_assessments.assessment_id = ' || s.assessment_id
           FROM shadow_assessments s
           WHERE NOT EXISTS (SELECT 1 FROM assessments a WHERE a.id = s.assessment_id)
         UNION ALL SELECT 'signal_snapshots.event_seq = ' || s.event_seq FROM signal_snapshots s
           WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.seq = s.event_seq)
         UNION ALL SELECT 'sessions.status_event_id = ' || s.status_event_id FROM sessions s
           WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = s.status_event_id)
         UNION ALL SELECT 'sessions.current_assessment_id = ' || s.current_assessment_id
           FROM sessions s
           WHERE s.current_assessment_id IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM assessments a WHERE a.id = s.current_assessment_id)
         UNION ALL SELECT 'users.current_assessment_id = ' || u.current_assessment_id
           FROM users u
           WHERE u.current_assessment_id IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM assessments a WHERE a.id = u.current_assessment_id)",
    )
    .fetch_all(&mut conn)
    .await
    .map_err(map_err)?;
    conn.close().await.map_err(map_err)?;
    Ok(dangling)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_database() {
        let cases = [
            ("postgres://u:p@h:5432/test", "postgres://u:p@h:5432/new"),
            (
                "postgres://u@h/test?sslmode=disable",
                "postgres://u@h/new?sslmode=disable",
            ),
            ("postgres://h", "postgres://h/new"),
            (
                "postgres://h?sslmode=disable",
                "postgres://h/new?sslmode=disable",
            ),
            (
                "postgresql:///test?host=/run/pg",
                "postgresql:///new?host=/run/pg",
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(with_database(url, "new"), expected);
        }
    }

    #[test]
    fn redact_removes_every_password() {
        let cases = [
            (
                "postgres://alice:s3cret@db:5432/app",
                "postgres://alice@db:5432/app",
            ),
            (
                "postgres://alice@db/app?password=s3cret&sslmode=disable",
                "postgres://alice@db/app?sslmode=disable",
            ),
            ("postgres://db/app?password=s3cret", "postgres://db/app"),
            ("postgres://alice:s3cret@db", "postgres://alice@db"),
            (DEFAULT_URL, DEFAULT_URL),
        ];
        for (url, redacted) in cases {
            assert_eq!(redact(url), redacted);
        }
    }
}

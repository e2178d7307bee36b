//! The `riskhook` binary against PostgreSQL (the rest of its tests, which need nothing, are in
//! `it::cli`).

use crate::helpers::riskhook;

/// `riskhook migrate` on PostgreSQL creates a missing database, as `--help` promises, and a
/// server that refuses the connection is named at once, in one undoubled message (issue 16,
/// findings 2 and 3).
pub(crate) async fn migrate_creates_a_missing_postgres_database_and_names_a_refusing_server_at_once()
 {
    let Some((url, guard)) = riskhook_store_postgres::test_support::fresh_database_or_skip().await
    else {
        return;
    };
    guard.drop_now().await.unwrap();
    let run = |url: String| {
        tokio::task::spawn_blocking(move || {
            riskhook()
                .args(["migrate", "--database-url", &url])
                .output()
                .unwrap()
        })
    };
    let created = run(url.clone()).await.unwrap();
    let stderr = String::from_utf8_lossy(&created.stderr);
    assert!(created.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("created the database {}", guard.name())),
        "{stderr}"
    );
    assert_eq!(
        String::from_utf8_lossy(&created.stdout).trim(),
        "applied migrations: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]"
    );
    let again = run(url).await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        "database is up to date"
    );

    // Nothing listens on this port: refused, said at once (not after the start-up deadline).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    // Refused outright is said from the first attempt: a retried start would end in "pool timed
    // out" instead, so the message itself shows which path was taken.
    let refused = run(format!("postgres://postgres@127.0.0.1:{port}/test"))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains(&format!("connection refused at 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(!stderr.contains("timed out"), "{stderr}");
    // A role that does not exist: one message, not the driver's text twice.
    let unknown =
        run(riskhook_store_postgres::test_support::server_url()
            .replace("postgres@", "no_such_role_x@"))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(stderr.matches("does not exist").count(), 1, "{stderr}");
    guard.remove().await.unwrap();
}

//! What only the PostgreSQL backend has to get right: several instances opening (and
//! migrating) one database at once, the append-only audit log enforced by the database, errors
//! for an unreachable server, and never showing the password. Each test on a fresh database
//! (see `riskhook_store_postgres::test_support`).

use riskhook_core::assessment::Decision;
use riskhook_store::{IngestOutcome, Store, StoreError, conformance};
use riskhook_store_postgres::PostgresStore;
use riskhook_store_postgres::test_support::{fresh_database_or_skip, redact};
use sqlx::{Connection, PgConnection};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_opening_at_once_migrate_once_and_store_a_delivery_once() {
    let Some((url, database)) = fresh_database_or_skip().await else {
        return;
    };
    let open = || async {
        let store = PostgresStore::connect(&url, 4).await.expect("connect");
        let applied = store.migrate().await.expect("migrate");
        (store, applied)
    };
    let (a, b, c) = tokio::join!(open(), open(), open());
    let mut applied = vec![a.1, b.1, c.1];
    applied.sort();
    assert_eq!(
        applied,
        [vec![], vec![], vec![1, 2]],
        "one instance migrates"
    );
    let stores = [a.0, b.0, c.0];
    // The same delivery reaching each instance at once.
    // Each request has its own event and assessment ids; the delivery is the same.
    let deliver = |i: u32| {
        let mut event = conformance::event(i, "u-1", "sess-1", "Approved", 1_780_000_001);
        event.delivery_key = Some("delivery-1".to_owned());
        let assessment = conformance::assessment(i, Decision::Review, 70);
        stores[i as usize].ingest(event, Some(assessment))
    };
    let (x, y, z) = tokio::join!(deliver(0), deliver(1), deliver(2));
    let outcomes = [x.expect("ingest"), y.expect("ingest"), z.expect("ingest")];
    let accepted = outcomes
        .iter()
        .filter(|o| matches!(o, IngestOutcome::Accepted { .. }))
        .count();
    assert_eq!(accepted, 1, "{outcomes:?}");
    assert_eq!(stores[2].count_events().await.expect("count"), 1);
    for store in &stores {
        store.close().await;
    }
    database.remove().await.expect("drop the test database");
}

#[tokio::test]
async fn the_audit_log_refuses_updates_deletes_and_truncation() {
    let Some((url, database)) = fresh_database_or_skip().await else {
        return;
    };
    let store = PostgresStore::open(&url, 2).await.expect("open");
    store
        .append_audit(riskhook_store::NewAuditEntry::system(
            1,
            "test.entry",
            "test:1".to_owned(),
            "{}".to_owned(),
        ))
        .await
        .expect("append");
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    for statement in [
        "UPDATE audit_log SET actor = 'mallory'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let refused = sqlx::raw_sql(statement).execute(&mut conn).await;
        let message = refused.expect_err(statement).to_string();
        assert!(message.contains("append-only"), "{statement}: {message}");
    }
    assert_eq!(store.audit(0, 10).await.expect("audit").len(), 1);
    conn.close().await.expect("close");
    store.close().await;
    database.remove().await.expect("drop the test database");
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_and_the_error_hides_the_password() {
    // Port 1 on the loopback interface: nothing listens there.
    let url = "postgres://riskhook:s3cret-pw@127.0.0.1:1/riskhook";
    let error = PostgresStore::connect(url, 1)
        .await
        .expect_err("nothing listens on port 1");
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("s3cret-pw"), "{shown}");
    assert!(!redact(url).contains("s3cret-pw"));
}

#[tokio::test]
async fn debug_output_never_shows_the_password_and_a_closed_store_is_unavailable() {
    let Some((url, database)) = fresh_database_or_skip().await else {
        return;
    };
    // The test server trusts local connections, so a password in the URL is never asked for;
    // add one (when the URL has none) to see that it does not show.
    let url = match url.split_once("://") {
        Some((scheme, rest)) if redact(&url) == url && rest.contains('@') => {
            let (user, host) = rest.split_once('@').unwrap_or((rest, ""));
            format!("{scheme}://{user}:s3cret-pw@{host}")
        }
        _ => url,
    };
    let store = PostgresStore::open(&url, 2).await.expect("open");
    store.ping().await.expect("ping");
    let shown = format!("{store:?} {store:#?}");
    assert!(!shown.contains("s3cret-pw"), "{shown}");
    store.close().await;
    let closed = store.ping().await.expect_err("closed");
    assert!(matches!(closed, StoreError::Unavailable(_)), "{closed:?}");
    database.remove().await.expect("drop the test database");
}

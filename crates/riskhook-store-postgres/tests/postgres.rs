//! What only the PostgreSQL backend has to get right: several instances opening (and
//! migrating) one database at once, the append-only audit log enforced by the database, errors
//! for an unreachable server, and never showing the password. Each test on a fresh database
//! (see `riskhook_store_postgres::test_support`). Its own harness (`harness = false`,
//! `test_support::harness`): when the server cannot be reached the tests that need it are
//! *ignored*, in the summary; with `RISKHOOK_REQUIRE_SERVICES=1` they run and fail instead.

use std::process::ExitCode;

use riskhook_core::assessment::Decision;
use riskhook_core::audit::{AuditKey, ChainVerifier, GENESIS};
use riskhook_store::{AuditRecord, IngestOutcome, NewAuditEntry, Store, StoreError, conformance};
use riskhook_store_postgres::PostgresStore;
use riskhook_store_postgres::test_support::harness::{Runtime, Suite};
use riskhook_store_postgres::test_support::{fresh_database_or_skip, redact, unavailable};
use sqlx::{Connection, PgConnection};

fn main() -> ExitCode {
    let postgres = unavailable();
    let postgres = postgres.as_deref();
    let mut suite = Suite::new();
    suite
        .test(
            "three_instances_opening_at_once_migrate_once_and_store_a_delivery_once",
            Runtime::MultiThread(2),
            postgres,
            three_instances_opening_at_once_migrate_once_and_store_a_delivery_once,
        )
        .test(
            "the_audit_log_refuses_updates_deletes_and_truncation",
            Runtime::CurrentThread,
            postgres,
            the_audit_log_refuses_updates_deletes_and_truncation,
        )
        .test(
            "a_forged_insert_is_refused_unless_it_extends_the_head_and_then_the_key_finds_it",
            Runtime::CurrentThread,
            postgres,
            a_forged_insert_is_refused_unless_it_extends_the_head_and_then_the_key_finds_it,
        )
        // Needs no server: nothing listens where it connects.
        .test(
            "an_unreachable_server_is_unavailable_and_the_error_hides_the_password",
            Runtime::CurrentThread,
            None,
            an_unreachable_server_is_unavailable_and_the_error_hides_the_password,
        )
        .test(
            "debug_output_never_shows_the_password_and_a_closed_store_is_unavailable",
            Runtime::CurrentThread,
            postgres,
            debug_output_never_shows_the_password_and_a_closed_store_is_unavailable,
        );
    suite.run()
}

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
        [vec![], vec![], vec![1, 2, 3, 4, 5]],
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

/// A plain INSERT, as someone with write access to the database would do it.
async fn insert(conn: &mut PgConnection, r: &AuditRecord) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (seq, id, at, actor, action, subject, reason, before, after,
                                prev_hash, hash, keyed)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(r.seq)
    .bind(&r.id)
    .bind(r.at)
    .bind(&r.actor)
    .bind(&r.action)
    .bind(&r.subject)
    .bind(&r.reason)
    .bind(&r.before)
    .bind(&r.after)
    .bind(&r.prev_hash)
    .bind(&r.hash)
    .bind(r.keyed)
    .execute(conn)
    .await
    .map(drop)
}

/// Issue 11, finding 4 (c): an entry inserted anywhere but at the head is refused by the
/// database; one inserted at the head without the key (its hash a plain SHA-256) is found by
/// `audit verify` with the key.
async fn a_forged_insert_is_refused_unless_it_extends_the_head_and_then_the_key_finds_it() {
    let Some((url, database)) = fresh_database_or_skip().await else {
        return;
    };
    let store = PostgresStore::open(&url, 2).await.expect("open");
    let key = AuditKey::new(b"the PostgreSQL test's audit key").expect("key");
    store.set_audit_key(key.clone()).await.expect("set the key");
    for i in 1..=3 {
        store
            .append_audit(NewAuditEntry::system(
                i,
                "test.entry",
                format!("test:{i}"),
                "{}".to_owned(),
            ))
            .await
            .expect("append");
    }
    let chain = store.audit(0, 10).await.expect("audit");
    let head = store.audit_head().await.expect("head").expect("a head");
    let forged = |seq: i64, prev: &str| {
        NewAuditEntry::system(9, "case.resolved", "user:u-1".to_owned(), "{}".to_owned()).link(
            seq,
            format!("aud_forged_{seq}"),
            prev.to_owned(),
            None,
        )
    };
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    for (seq, prev) in [
        (2, chain[0].hash.as_str()), // in the middle
        (5, head.hash.as_str()),     // past the head
        (4, chain[1].hash.as_str()), // at the head's place, linked elsewhere
        (1, GENESIS),                // a second chain
    ] {
        let refused = insert(&mut conn, &forged(seq, prev)).await;
        let message = refused.expect_err("refused").to_string();
        assert!(message.contains("extend the head"), "{seq}: {message}");
    }
    insert(&mut conn, &forged(4, &head.hash))
        .await
        .expect("an insert at the head is the database's to accept");
    let entries = store.audit(0, 10).await.expect("audit");
    let mut verifier = ChainVerifier::with_key(Some(key));
    let broken = entries
        .iter()
        .try_for_each(|e| verifier.check(&e.fields(), &e.hash, e.keyed))
        .expect_err("found with the key");
    assert_eq!(broken.seq, 4, "{broken}");
    conn.close().await.expect("close");
    store.close().await;
    database.remove().await.expect("drop the test database");
}

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

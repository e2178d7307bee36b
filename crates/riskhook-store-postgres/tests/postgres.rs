//! What only the PostgreSQL backend has to get right: several instances opening (and
//! migrating) one database at once, the append-only audit log enforced by the database, errors
//! for an unreachable server, and never showing the password. Each test on a fresh database
//! (see `riskhook_store_postgres::test_support`). Its own harness (`harness = false`,
//! `test_support::harness`): when the server cannot be reached the tests that need it are
//! *ignored*, in the summary; with `RISKHOOK_REQUIRE_SERVICES=1` they run and fail instead.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::task::Poll;

use riskhook_core::assessment::Decision;
use riskhook_core::audit::{AuditKey, ChainVerifier, GENESIS};
use riskhook_store::{AuditRecord, IngestOutcome, NewAuditEntry, Store, StoreError, conformance};
use riskhook_store_postgres::PostgresStore;
use riskhook_store_postgres::test_support::harness::{Runtime, Suite};
use riskhook_store_postgres::test_support::{
    dangling_references, fresh_database_or_skip, redact, unavailable,
};
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
        .test(
            "migration_7_backfills_the_snapshots_intake_writes",
            Runtime::CurrentThread,
            postgres,
            migration_7_backfills_the_snapshots_intake_writes,
        )
        .test(
            "migration_9_drops_the_indexes_nothing_reads_and_keeps_the_rest",
            Runtime::CurrentThread,
            postgres,
            migration_9_drops_the_indexes_nothing_reads_and_keeps_the_rest,
        )
        .test(
            "migration_10_compresses_new_bodies_and_assessments_with_lz4",
            Runtime::CurrentThread,
            postgres,
            migration_10_compresses_new_bodies_and_assessments_with_lz4,
        )
        .test(
            "migration_11_finds_user_facts_without_scanning_assessments",
            Runtime::CurrentThread,
            postgres,
            migration_11_finds_user_facts_without_scanning_assessments,
        )
        .test(
            "migration_12_drops_the_intake_foreign_keys_and_a_dangling_reference_is_found",
            Runtime::MultiThread(2),
            postgres,
            migration_12_drops_the_intake_foreign_keys_and_a_dangling_reference_is_found,
        )
        .test(
            "staged_audit_entries_are_never_edited_and_leave_only_into_the_chain",
            Runtime::CurrentThread,
            postgres,
            staged_audit_entries_are_never_edited_and_leave_only_into_the_chain,
        )
        .test(
            "a_staged_entry_that_breaks_its_seal_stops_the_chain_before_it",
            Runtime::CurrentThread,
            postgres,
            a_staged_entry_that_breaks_its_seal_stops_the_chain_before_it,
        )
        .test(
            "three_instances_writing_at_once_make_one_intact_chain_of_every_entry",
            Runtime::MultiThread(2),
            postgres,
            three_instances_writing_at_once_make_one_intact_chain_of_every_entry,
        )
        .test(
            "deliveries_queued_together_commit_in_one_transaction_each_exactly_once",
            Runtime::MultiThread(2),
            postgres,
            deliveries_queued_together_commit_in_one_transaction_each_exactly_once,
        )
        .test(
            "a_delivery_refused_inside_a_batch_fails_alone_and_its_neighbours_are_stored",
            Runtime::MultiThread(2),
            postgres,
            a_delivery_refused_inside_a_batch_fails_alone_and_its_neighbours_are_stored,
        )
        .test(
            "connections_the_server_ended_are_replaced_before_a_delivery_uses_them",
            Runtime::MultiThread(2),
            postgres,
            connections_the_server_ended_are_replaced_before_a_delivery_uses_them,
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
        [vec![], vec![], vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]],
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

/// The pool hands out a connection without pinging it first unless it sat idle (one round trip
/// fewer per delivery). A connection the server ended meanwhile (a restart, an administrator,
/// an idle timeout) then fails at BEGIN, and another is taken: no delivery fails for it, and
/// none is stored twice.
async fn connections_the_server_ended_are_replaced_before_a_delivery_uses_them() {
    let Some((url, database)) = fresh_database_or_skip().await else {
        return;
    };
    let store = PostgresStore::open(&url, 4).await.expect("open");
    let user = |i: u32| format!("u-{i}");
    let session = |i: u32| format!("sess-{i}");
    let deliver = |i: u32| {
        let event = conformance::event(i, &user(i), &session(i), "Approved", 1_780_000_001);
        store.ingest(
            event,
            Some(conformance::assessment(i, Decision::Approve, 0)),
        )
    };
    // Four at once: the pool opens its four connections, each used a moment ago.
    let (a, b, c, d) = tokio::join!(deliver(0), deliver(1), deliver(2), deliver(3));
    for outcome in [a, b, c, d] {
        assert!(
            matches!(outcome, Ok(IngestOutcome::Accepted { .. })),
            "{outcome:?}"
        );
    }
    let mut admin = PgConnection::connect(&url).await.expect("connect");
    let ended = end_connections_of_riskhook(&mut admin).await;
    assert!(ended >= 1, "the store had no connection to end");
    // Right away: idle well under a second, so none is pinged before use.
    for i in 4..12 {
        let outcome = deliver(i).await;
        assert!(
            matches!(outcome, Ok(IngestOutcome::Accepted { .. })),
            "delivery {i} after {ended} connections were ended: {outcome:?}"
        );
    }
    // A read, too, takes another connection instead of failing.
    assert!(end_connections_of_riskhook(&mut admin).await >= 1);
    assert_eq!(store.count_events().await.expect("count"), 12);
    store.close().await;
    drop(admin);
    database.remove().await.expect("drop the test database");
}

/// Ends every connection the store has open to this test's database; returns how many.
async fn end_connections_of_riskhook(admin: &mut PgConnection) -> i64 {
    sqlx::query_scalar(
        // Chosen first, then ended: in one WHERE, PostgreSQL may call the function before
        // the other tests, on every other test's connections.
        "WITH store AS MATERIALIZED (
             SELECT pid FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = 'riskhook'
               AND pid <> pg_backend_pid()
         )
         SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM store",
    )
    .fetch_one(admin)
    .await
    .expect("end the store's connections")
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

/// Stages `entry` by hand, as someone with write access to the database would, sealed under
/// `key` (the forger's guess at it).
async fn stage_by_hand(
    conn: &mut PgConnection,
    id: &str,
    entry: &NewAuditEntry,
    keyed: bool,
    key: Option<&AuditKey>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_staged (id, at, actor, action, subject, reason, before, after, keyed,
                                   seal)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(id)
    .bind(entry.at)
    .bind(&entry.actor)
    .bind(&entry.action)
    .bind(&entry.subject)
    .bind(&entry.reason)
    .bind(&entry.before)
    .bind(&entry.after)
    .bind(keyed)
    .bind(entry.seal(id, key))
    .execute(conn)
    .await
    .map(drop)
}

fn entry(i: i64) -> NewAuditEntry {
    NewAuditEntry::system(i, "test.entry", format!("test:{i}"), "{}".to_owned())
}

/// Issue 14: audit entries wait in `audit_staged` between their transaction's commit and the
/// linker; there they cannot be edited or removed, except by the linker moving them into the
/// chain.
async fn staged_audit_entries_are_never_edited_and_leave_only_into_the_chain() {
    let Some((url, database)) = fresh_database_or_skip().await else {
        return;
    };
    let store = PostgresStore::open(&url, 2).await.expect("open");
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    stage_by_hand(&mut conn, "aud_by_hand", &entry(1), false, None)
        .await
        .expect("stage");
    for (statement, says) in [
        ("UPDATE audit_staged SET actor = 'mallory'", "append-only"),
        ("DELETE FROM audit_staged", "leaves only into the chain"),
        ("TRUNCATE audit_staged", "append-only"),
    ] {
        let refused = sqlx::raw_sql(statement).execute(&mut conn).await;
        let message = refused.expect_err(statement).to_string();
        assert!(message.contains(says), "{statement}: {message}");
    }
    // Sealed as riskhook seals (no key on either side): the linker takes it into the chain.
    assert_eq!(store.settle_audit().await.expect("settle"), 1);
    let chain = store.audit(0, 10).await.expect("audit");
    assert_eq!(chain.len(), 1);
    assert_eq!(chain[0].id, "aud_by_hand");
    let staged: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_staged")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(staged, 0, "linked entries leave staging");
    conn.close().await.expect("close");
    store.close().await;
    database.remove().await.expect("drop the test database");
}

/// Migration 7's backfill derives from each stored assessment the compact snapshot intake
/// writes now (through jsonb, which gives its own spacing and key order back), and leaves an
/// unassessed event to its body.
async fn migration_7_backfills_the_snapshots_intake_writes() {
    let Some((url, database)) = fresh_database_or_skip().await else {
        return;
    };
    let store = PostgresStore::open(&url, 2).await.expect("open");
    let expected = conformance::store_assessed_session_events(&store).await;
    assert_eq!(conformance::replayed_snapshots(&store).await, expected);
    let sql = include_str!("../migrations/0007_signal_snapshots.sql");
    let backfill = &sql[sql.find("-- The events stored before").expect("backfill")..];
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    sqlx::raw_sql("DELETE FROM signal_snapshots")
        .execute(&mut conn)
        .await
        .expect("delete");
    sqlx::raw_sql(backfill)
        .execute(&mut conn)
        .await
        .expect("backfill");
    assert_eq!(conformance::replayed_snapshots(&store).await, expected);
    conn.close().await.expect("close");
    store.close().await;
    database.remove().await.expect("drop the test database");
}

/// Issue 14: the two indexes no query reads are gone (each cost an index insert per delivery),
/// the ones reads rely on are there, and the chain still links and verifies without a unique
/// hash.
async fn migration_9_drops_the_indexes_nothing_reads_and_keeps_the_rest() {
    let Some((url, database)) = fresh_database_or_skip().await else {
        return;
    };
    let store = PostgresStore::open(&url, 2).await.expect("open");
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes
         WHERE tablename IN ('assessments', 'audit_log') ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .expect("indexes");
    assert_eq!(
        indexes,
        [
            "assessments_case",
            "assessments_event_id_key",
            "assessments_pkey",
            "assessments_user",
            "audit_log_action",
            "audit_log_id_key",
            "audit_log_pkey",
        ],
    );
    conformance::store_assessed_session_events(&store).await;
    let entries = store.audit(0, 1_000).await.expect("audit");
    assert!(entries.len() > 2, "{entries:?}");
    let mut verifier = ChainVerifier::new();
    entries
        .iter()
        .try_for_each(|e| verifier.check(&e.fields(), &e.hash, e.keyed))
        .expect("one intact chain");
    conn.close().await.expect("close");
    store.close().await;
    database.remove().await.expect("drop the test database");
}

/// Issue 14: a body and an assessment over the TOAST threshold are stored compressed with lz4
/// (this server has it, as Debian's PostgreSQL does) and read back byte for byte.
async fn migration_10_compresses_new_bodies_and_assessments_with_lz4() {
    let Some((url, database)) = fresh_database_or_skip().await else {
        return;
    };
    let store = PostgresStore::open(&url, 2).await.expect("open");
    let mut event = conformance::event(1, "u-1", "sess-1", "Approved", 1_780_000_001);
    let padding: String = (0..400).map(|i| format!("\"field-{i}\":{i},")).collect();
    event.raw = format!("{{{padding}\"webhook_type\":\"status.updated\"}}").into_bytes();
    let mut assessment = conformance::assessment(1, Decision::Review, 70);
    assessment.json = format!("{{{padding}\"decision\":\"review\"}}");
    assert!(event.raw.len() > 4_000 && assessment.json.len() > 4_000);
    let (raw, json) = (event.raw.clone(), assessment.json.clone());
    let id = event.id.to_string();
    store.ingest(event, Some(assessment)).await.expect("ingest");
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    let methods: (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT pg_column_compression(e.raw), pg_column_compression(a.assessment)
         FROM events e JOIN assessments a ON a.event_id = e.id WHERE e.id = $1",
    )
    .bind(&id)
    .fetch_one(&mut conn)
    .await
    .expect("compression");
    assert_eq!(methods, (Some("lz4".to_owned()), Some("lz4".to_owned())));
    assert_eq!(
        store.event(&id).await.expect("read").expect("stored").raw,
        raw
    );
    let stored: String =
        sqlx::query_scalar("SELECT assessment FROM assessments WHERE event_id = $1")
            .bind(&id)
            .fetch_one(&mut conn)
            .await
            .expect("assessment");
    assert_eq!(stored, json);
    conn.close().await.expect("close");
    store.close().await;
    database.remove().await.expect("drop the test database");
}

/// Issue 14: the plans `riskhook_user_facts` caches while the tables are small do not scan
/// `assessments` whole once it has grown (some connections' did, at every call, which was
/// PostgreSQL's "slow mode"). A few scans while the table is tiny are the planner's right
/// choice; after that, none.
async fn migration_11_finds_user_facts_without_scanning_assessments() {
    let Some((url, database)) = fresh_database_or_skip().await else {
        return;
    };
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    let mut scans = Vec::new();
    for phase in 0..2u32 {
        // One connection, so that one cached plan serves every call.
        let store = PostgresStore::open(&url, 1).await.expect("open");
        for n in phase * 200..(phase + 1) * 200 {
            let (user, session) = (format!("u-{n}"), format!("s-{n}"));
            let event = conformance::event(n, &user, &session, "Approved", 1_780_000_001);
            let assessment = conformance::assessment(n, Decision::Approve, 10);
            store.ingest(event, Some(assessment)).await.expect("ingest");
        }
        // A backend reports its statistics when it ends.
        store.close().await;
        scans.push(assessment_scans(&mut conn, (phase + 1) * 200).await);
    }
    let config: Option<Vec<String>> =
        sqlx::query_scalar("SELECT proconfig FROM pg_proc WHERE proname = 'riskhook_user_facts'")
            .fetch_one(&mut conn)
            .await
            .expect("proconfig");
    assert_eq!(config, Some(vec!["enable_seqscan=off".to_owned()]));
    assert_eq!(
        scans[1], scans[0],
        "sequential scans of a grown assessments table"
    );
    conn.close().await.expect("close");
    database.remove().await.expect("drop the test database");
}

/// Migration 12 drops exactly the foreign keys a delivery checked, and keeps those off the
/// intake path. Without them, `dangling_references` (which the conformance suite, the
/// multi-instance and the SIGKILL tests run) is what finds a reference naming no row: it finds
/// none after real deliveries, and finds each one planted.
async fn migration_12_drops_the_intake_foreign_keys_and_a_dangling_reference_is_found() {
    let Some((url, database)) = fresh_database_or_skip().await else {
        return;
    };
    let store = PostgresStore::open(&url, 2).await.expect("open");
    conformance::store_assessed_session_events(&store).await;
    conformance::evidence_gathers_into_one_case(&store).await;
    store.close().await;
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    let kept: Vec<String> = sqlx::query_scalar(
        "SELECT conrelid::regclass || '.' || conname FROM pg_constraint
         WHERE contype = 'f' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .expect("constraints");
    assert_eq!(
        kept,
        [
            "actions.actions_case_id_fkey",
            "deliveries.deliveries_endpoint_id_fkey",
            "deliveries.deliveries_message_seq_fkey",
        ]
    );
    assert_eq!(
        dangling_references(&url).await.expect("check"),
        Vec::<String>::new()
    );
    sqlx::raw_sql(
        "UPDATE users SET current_assessment_id = 'asm_gone'
         WHERE user_id = (SELECT min(user_id) FROM users);
         UPDATE assessments SET event_id = 'evt_gone'
         WHERE id = (SELECT min(id) FROM assessments);",
    )
    .execute(&mut conn)
    .await
    .expect("plant");
    let mut found = dangling_references(&url).await.expect("check");
    found.sort();
    assert_eq!(
        found,
        [
            "assessments.event_id = evt_gone",
            "users.current_assessment_id = asm_gone",
        ]
    );
    conn.close().await.expect("close");
    database.remove().await.expect("drop the test database");
}

/// Sequential scans of `assessments` so far, once the statistics count `inserted` rows.
async fn assessment_scans(conn: &mut PgConnection, inserted: u32) -> i64 {
    for _ in 0..100 {
        let (scans, rows): (i64, i64) = sqlx::query_as(
            "SELECT seq_scan, n_tup_ins FROM pg_stat_user_tables WHERE relname = 'assessments'",
        )
        .fetch_one(&mut *conn)
        .await
        .expect("statistics");
        if rows == i64::from(inserted) {
            return scans;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the statistics never counted {inserted} assessments");
}

/// Issue 14: an entry staged outside riskhook (or edited while staged) without the audit key
/// is not laundered into the keyed chain: the linker links what came before it and stops
/// there, with an error that says why, on every read of the chain.
async fn a_staged_entry_that_breaks_its_seal_stops_the_chain_before_it() {
    let Some((url, database)) = fresh_database_or_skip().await else {
        return;
    };
    let store = PostgresStore::open(&url, 2).await.expect("open");
    let key = AuditKey::new(b"the PostgreSQL test's audit key").expect("key");
    store.set_audit_key(key.clone()).await.expect("set the key");
    for i in 1..=2 {
        store.append_audit(entry(i)).await.expect("append");
    }
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    let wrong = AuditKey::new(b"the forger's guess at the key").expect("key");
    for (id, keyed, sealed_with, says) in [
        (
            "aud_forged_a",
            true,
            Some(&wrong),
            "does not match its seal",
        ),
        ("aud_forged_b", true, None, "does not match its seal"),
        ("aud_forged_c", false, None, "without the audit key"),
    ] {
        let mut forged = entry(9);
        forged.action = "case.resolved".to_owned();
        stage_by_hand(&mut conn, id, &forged, keyed, sealed_with)
            .await
            .expect("stage");
        // A real entry staged behind the forged one.
        let behind = store.append_audit(entry(10)).await;
        let message = match behind.expect_err("the chain stops") {
            StoreError::Corrupt(message) => message,
            other => panic!("{other:?}"),
        };
        assert!(message.contains(id) && message.contains(says), "{message}");
        match store.audit(0, 10).await {
            Err(StoreError::Corrupt(again)) => assert_eq!(again, message),
            other => panic!("every read stops at it: {other:?}"),
        }
        match store.settle_audit().await {
            Err(StoreError::Corrupt(again)) => assert_eq!(again, message),
            other => panic!("the periodic linker stops at it: {other:?}"),
        }
        // Only the two real entries before it are in the chain, intact.
        let chain: Vec<(String, String)> =
            sqlx::query_as("SELECT id, action FROM audit_log ORDER BY seq")
                .fetch_all(&mut conn)
                .await
                .expect("chain");
        assert_eq!(chain.len(), 2, "{chain:?}");
        assert!(chain.iter().all(|(_, action)| action == "test.entry"));
        // An operator's remedy, outside riskhook: the forged row removed with the triggers
        // off (the real entry behind it is then linked).
        sqlx::raw_sql("ALTER TABLE audit_staged DISABLE TRIGGER audit_staged_no_delete")
            .execute(&mut conn)
            .await
            .expect("triggers off");
        sqlx::query("DELETE FROM audit_staged WHERE id = $1")
            .bind(id)
            .execute(&mut conn)
            .await
            .expect("remove the forged row");
        sqlx::raw_sql("ALTER TABLE audit_staged ENABLE TRIGGER audit_staged_no_delete")
            .execute(&mut conn)
            .await
            .expect("triggers on");
        let entries = store.audit(0, 10).await.expect("audit");
        assert_eq!(entries.len(), 3);
        let mut verifier = ChainVerifier::with_key(Some(key.clone()));
        entries
            .iter()
            .try_for_each(|e| verifier.check(&e.fields(), &e.hash, e.keyed))
            .expect("intact");
        sqlx::raw_sql(
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_delete;
             DELETE FROM audit_log WHERE seq = 3;
             ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_delete;",
        )
        .execute(&mut conn)
        .await
        .expect("back to two entries for the next forgery");
    }
    conn.close().await.expect("close");
    store.close().await;
    database.remove().await.expect("drop the test database");
}

/// Issue 14: with no global lock, three instances ingesting at once (each ingest stages an
/// audit entry) still make one chain: every assessment's entry in it exactly once, in an
/// unbroken, keyed chain, and nothing left staged.
async fn three_instances_writing_at_once_make_one_intact_chain_of_every_entry() {
    let Some((url, database)) = fresh_database_or_skip().await else {
        return;
    };
    let key = AuditKey::new(b"the PostgreSQL test's audit key").expect("key");
    let open = || async {
        let store = PostgresStore::open(&url, 4).await.expect("open");
        store.set_audit_key(key.clone()).await.expect("set the key");
        store
    };
    let stores = [open().await, open().await, open().await];
    const EACH: u32 = 60;
    let write = |s: usize| {
        let store = &stores[s];
        async move {
            for i in 0..EACH {
                let n = s as u32 * EACH + i;
                let event = conformance::event(
                    n,
                    &format!("u-{n}"),
                    &format!("sess-{n}"),
                    "Approved",
                    1_780_000_000,
                );
                let assessment = conformance::assessment(n, Decision::Approve, 10);
                store.ingest(event, Some(assessment)).await.expect("ingest");
                if i % 20 == 0 {
                    // The periodic linker of each instance, at work beside the writers.
                    store.settle_audit().await.expect("settle");
                }
            }
        }
    };
    tokio::join!(write(0), write(1), write(2));
    let entries = stores[1].audit(0, 1_000).await.expect("audit");
    let total = 3 * EACH as usize;
    // Each ingest records its assessment and a new user: two entries.
    assert_eq!(entries.len(), 2 * total);
    let mut verifier = ChainVerifier::with_key(Some(key));
    entries
        .iter()
        .try_for_each(|e| verifier.check(&e.fields(), &e.hash, e.keyed))
        .expect("one intact chain");
    for action in ["assessment.recorded", "user.updated"] {
        let mut subjects: Vec<&str> = entries
            .iter()
            .filter(|e| e.action == action)
            .map(|e| e.subject.as_str())
            .collect();
        subjects.sort_unstable();
        subjects.dedup();
        assert_eq!(subjects.len(), total, "each user's {action} once");
    }
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    let staged: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_staged")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(staged, 0);
    conn.close().await.expect("close");
    for store in &stores {
        store.close().await;
    }
    database.remove().await.expect("drop the test database");
}

/// The user whose lock a test holds to keep the one intake worker busy, so that what is sent
/// meanwhile queues up and is taken as one batch.
const HELD_USER: &str = "u-held";

/// A store with one intake worker (a pool of two), and a connection holding `HELD_USER`'s lock,
/// with that user's first delivery (event 0) sent and waiting for the lock in the worker.
async fn one_worker_kept_busy(
    url: &str,
) -> (
    PostgresStore,
    PgConnection,
    tokio::task::JoinHandle<Result<IngestOutcome, StoreError>>,
) {
    let store = PostgresStore::open(url, 2).await.expect("open");
    let mut holder = PgConnection::connect(url).await.expect("connect");
    sqlx::query("SELECT pg_advisory_lock(hashtextextended('user:' || $1, 0))")
        .bind(HELD_USER)
        .execute(&mut holder)
        .await
        .expect("lock");
    let first = tokio::spawn({
        let store = store.clone();
        async move {
            let event = conformance::event(0, HELD_USER, "sess-held", "Approved", 1_780_000_000);
            store.ingest(event, None).await
        }
    });
    // Until the worker waits for the lock: from then on, deliveries queue behind it.
    for _ in 0..500 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks
             WHERE locktype = 'advisory' AND NOT granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(&mut holder)
        .await
        .expect("locks");
        if waiting > 0 {
            return (store, holder, first);
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the first delivery never waited for the held lock");
}

/// Sends each delivery into the queue, then lets the worker go on; returns their answers, in
/// the order given.
async fn send_while_busy(
    store: &PostgresStore,
    mut holder: PgConnection,
    deliveries: Vec<(
        riskhook_store::EventRecord,
        Option<riskhook_store::NewAssessment>,
    )>,
) -> Vec<Result<IngestOutcome, StoreError>> {
    type Answer<'a> = Pin<Box<dyn Future<Output = Result<IngestOutcome, StoreError>> + Send + 'a>>;
    let mut pending: Vec<Answer<'_>> = deliveries
        .into_iter()
        .map(|(event, assessment)| store.ingest(event, assessment))
        .collect();
    // One poll each puts each delivery in the queue (it has room for 16), in this order; none
    // can be answered while the worker waits for the held lock.
    std::future::poll_fn(|cx| {
        for answer in &mut pending {
            assert!(answer.as_mut().poll(cx).is_pending(), "answered too early");
        }
        Poll::Ready(())
    })
    .await;
    sqlx::query("SELECT pg_advisory_unlock_all()")
        .execute(&mut holder)
        .await
        .expect("unlock");
    holder.close().await.expect("close");
    let mut answers = Vec::new();
    for answer in pending {
        answers.push(answer.await);
    }
    answers
}

/// Committed transactions that wrote the events table's rows, by their creating transaction.
async fn event_transactions(url: &str) -> (i64, i64) {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    let counts = sqlx::query_as("SELECT count(*), count(DISTINCT xmin::text) FROM events")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    conn.close().await.expect("close");
    counts
}

/// Issue 14: deliveries waiting for the intake worker are committed together, in one
/// transaction; each is still stored exactly once (a delivery sent twice in one batch is a
/// duplicate of the first), one user's deliveries see each other in arrival order, every
/// reference resolves and the audit chain holds every entry.
async fn deliveries_queued_together_commit_in_one_transaction_each_exactly_once() {
    let Some((url, database)) = fresh_database_or_skip().await else {
        return;
    };
    let (store, holder, first) = one_worker_kept_busy(&url).await;
    let delivery = |n: u32, user: &str, decision| {
        let event = conformance::event(n, user, &format!("sess-{n}"), "Approved", 1_780_000_000);
        (event, Some(conformance::assessment(n, decision, 10)))
    };
    let mut deliveries: Vec<_> = (1..=10)
        .map(|n| delivery(n, &format!("u-{}", n % 4), Decision::Approve))
        .collect();
    // The same delivery again (a retry), and the held user's second: a freeze.
    deliveries.push(delivery(3, "u-3", Decision::Approve));
    deliveries.push(delivery(11, HELD_USER, Decision::Freeze));
    let answers = send_while_busy(&store, holder, deliveries).await;
    assert!(matches!(
        first.await.expect("task"),
        Ok(IngestOutcome::Accepted { .. })
    ));
    let mut accepted = 0;
    for (i, answer) in answers.iter().enumerate() {
        match (i, answer) {
            (10, Ok(IngestOutcome::Duplicate { id })) => assert_eq!(id, "evt_00000003"),
            (10, other) => panic!("the retry of evt_00000003: {other:?}"),
            (_, Ok(IngestOutcome::Accepted { .. })) => accepted += 1,
            (i, other) => panic!("delivery {i}: {other:?}"),
        }
    }
    assert_eq!(accepted, 11);
    // The first alone, then the twelve queued behind it in one transaction.
    assert_eq!(event_transactions(&url).await, (12, 2));
    let held = store
        .user(HELD_USER)
        .await
        .expect("user")
        .expect("held user");
    assert_eq!(held.decision, Decision::Freeze);
    assert_eq!(
        dangling_references(&url).await.expect("check"),
        Vec::<String>::new()
    );
    let entries = store.audit(0, 1_000).await.expect("audit");
    let mut verifier = ChainVerifier::with_key(None);
    entries
        .iter()
        .try_for_each(|e| verifier.check(&e.fields(), &e.hash, e.keyed))
        .expect("one intact chain");
    let recorded = entries
        .iter()
        .filter(|e| e.action == "assessment.recorded")
        .count();
    assert_eq!(recorded, 11, "each stored assessment recorded once");
    store.close().await;
    database.remove().await.expect("drop the test database");
}

/// Issue 14: when one delivery of a batch is refused by the database, the batch is rolled back
/// and run again one delivery per transaction: the refused one fails alone, every other is
/// stored once, and nothing of the refused one stays.
async fn a_delivery_refused_inside_a_batch_fails_alone_and_its_neighbours_are_stored() {
    let Some((url, database)) = fresh_database_or_skip().await else {
        return;
    };
    let (store, holder, first) = one_worker_kept_busy(&url).await;
    let mut admin = PgConnection::connect(&url).await.expect("connect");
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_evt_5() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.id = 'evt_00000005' THEN
                 RAISE EXCEPTION 'refused by the test' USING ERRCODE = 'check_violation';
             END IF;
             RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_evt_5 BEFORE INSERT ON events
             FOR EACH ROW EXECUTE FUNCTION refuse_evt_5();",
    )
    .execute(&mut admin)
    .await
    .expect("trigger");
    let deliveries = (1..=8)
        .map(|n| {
            let event =
                conformance::event(n, &format!("u-{n}"), &format!("sess-{n}"), "Approved", 1);
            (
                event,
                Some(conformance::assessment(n, Decision::Approve, 10)),
            )
        })
        .collect();
    let answers = send_while_busy(&store, holder, deliveries).await;
    assert!(matches!(
        first.await.expect("task"),
        Ok(IngestOutcome::Accepted { .. })
    ));
    for (i, answer) in answers.iter().enumerate() {
        if i == 4 {
            assert!(answer.is_err(), "the refused delivery: {answer:?}");
        } else {
            assert!(
                matches!(answer, Ok(IngestOutcome::Accepted { .. })),
                "delivery {}: {answer:?}",
                i + 1
            );
        }
    }
    let stored: Vec<String> = sqlx::query_scalar("SELECT id FROM events ORDER BY id")
        .fetch_all(&mut admin)
        .await
        .expect("events");
    let expected: Vec<String> = [0, 1, 2, 3, 4, 6, 7, 8]
        .iter()
        .map(|n| format!("evt_{n:08}"))
        .collect();
    assert_eq!(stored, expected);
    let leftovers: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM assessments WHERE event_id = 'evt_00000005')
              + (SELECT count(*) FROM users WHERE user_id = 'u-5')",
    )
    .fetch_one(&mut admin)
    .await
    .expect("count");
    assert_eq!(leftovers, 0);
    admin.close().await.expect("close");
    assert_eq!(
        dangling_references(&url).await.expect("check"),
        Vec::<String>::new()
    );
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

//! SIGKILLs of `riskhook serve` under load. Twenty, on SQLite and on PostgreSQL: each cycle
//! starts the binary on the same database, lets several clients send distinct deliveries (the
//! unacknowledged ones of earlier cycles first, as Didit retries) for a random 0-1 s, and kills
//! it, wherever it is: mid-commit, mid-retry, mid-notification. A last start settles every
//! retry; then the database must hold every acknowledged event once with all its effects, the
//! audit chain must be intact, and the customer must have received every notification.

use std::sync::Arc;
use std::time::Duration;

use riskhook::config::DatabaseUrl;

use super::{
    Deliveries, Lcg, Ledger, Load, Receiver, audit_verify, check_notifications, check_store,
};
use crate::helpers::Served;

const CYCLES: usize = 20;
const CLIENTS: usize = 6;

fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Served {
    tokio::task::block_in_place(|| Served::start(dir, env))
}

async fn twenty_sigkills_under_load(db_url: &str, label: &str, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    let config = receiver.config(dir.path());
    let env = [
        ("RISKHOOK_DATABASE_URL", db_url),
        ("RISKHOOK_CONFIG", config.to_str().unwrap()),
        ("RISKHOOK_DATABASE_MAX_CONNECTIONS", "8"),
        // Retries re-send the original signature; the whole run must stay inside the window.
        ("RISKHOOK_DIDIT__TOLERANCE", "1h"),
    ];
    let deliveries = Arc::new(Deliveries::new(label, 40));
    let ledger = Arc::new(Ledger::default());
    let mut rng = Lcg(seed);
    for _ in 0..CYCLES {
        let mut served = start(dir.path(), &env);
        let url = format!("http://{}/webhooks/didit", served.address);
        let load = Load::start(&url, CLIENTS, &deliveries, &ledger);
        tokio::time::sleep(Duration::from_millis(rng.below(1000))).await;
        served.signal("KILL");
        tokio::task::block_in_place(|| served.child.wait().unwrap());
        load.stop().await;
    }

    // One more start, not killed: every delivery left unacknowledged is sent again.
    let mut served = start(dir.path(), &env);
    let url = format!("http://{}/webhooks/didit", served.address);
    let client = reqwest::Client::new();
    ledger.settle(&client, &url).await;
    ledger.resend_acknowledged(&client, &url, 20).await;
    let (sent, acked, unavailable, no_answer) = ledger.counts();
    assert_eq!(sent, acked, "every delivery ends acknowledged");
    assert!(acked >= 100, "too few deliveries to mean anything: {acked}");

    let store = riskhook::store::open_with(&DatabaseUrl::new(db_url), 2)
        .await
        .unwrap();
    let events = check_store(store.as_ref(), &ledger).await;
    let (messages, received) = check_notifications(store.as_ref(), &receiver).await;
    served.signal("TERM");
    let exit = tokio::task::block_in_place(|| served.child.wait().unwrap());
    assert!(exit.success(), "{exit:?}");
    store.close().await;
    if db_url.starts_with("postgres") {
        assert_no_dangling_references(db_url).await;
    }
    let verified = audit_verify(db_url);
    eprintln!(
        "{label}: {CYCLES} SIGKILLs; {sent} deliveries ({no_answer} unanswered and {unavailable} \
         refused along the way, all stored once on retry), {events} events; {messages} \
         notifications, {received} receipts; {}",
        verified.trim()
    );
}

pub(crate) async fn every_acknowledged_event_survives_twenty_sigkills_under_load_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kill.db").display());
    twenty_sigkills_under_load(&url, "sqlite", 0x5e1f_c0de).await;
}

pub(crate) async fn every_acknowledged_event_survives_twenty_sigkills_under_load_on_postgres() {
    let Some((url, _database)) =
        riskhook_store_postgres::test_support::fresh_database_or_skip().await
    else {
        return;
    };
    twenty_sigkills_under_load(&url, "postgres", 0x9e5_c0de).await;
}

/// Three instances on one PostgreSQL database under load, one of them killed mid-load: the
/// deliveries it left unanswered are retried against the two others (as Didit retries to the
/// same URL, which a load balancer spreads), and in the end every acknowledged event is stored
/// exactly once with all its effects, every notification is received (the dead instance's
/// claimed ones after their lease), and the audit chain is intact.
pub(crate) async fn one_of_three_postgres_instances_killed_mid_load_loses_and_doubles_nothing() {
    let Some((db_url, _database)) =
        riskhook_store_postgres::test_support::fresh_database_or_skip().await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    let config = receiver.config(dir.path());
    let env = [
        ("RISKHOOK_DATABASE_URL", db_url.as_str()),
        ("RISKHOOK_CONFIG", config.to_str().unwrap()),
        ("RISKHOOK_DATABASE_MAX_CONNECTIONS", "4"),
        ("RISKHOOK_DIDIT__TOLERANCE", "1h"),
    ];
    // Started one after the other: the first migrates, the others find it done.
    let mut instances: Vec<Served> = (0..3).map(|_| start(dir.path(), &env)).collect();
    let urls: Vec<String> = instances
        .iter()
        .map(|s| format!("http://{}/webhooks/didit", s.address))
        .collect();
    let deliveries = Arc::new(Deliveries::new("three", 30));
    let ledger = Arc::new(Ledger::default());
    let mut loads: Vec<Load> = urls
        .iter()
        .map(|url| Load::start(url, 2, &deliveries, &ledger))
        .collect();
    let mut rng = Lcg(0x3_1457);
    tokio::time::sleep(Duration::from_millis(500 + rng.below(1000))).await;
    instances[1].signal("KILL");
    tokio::task::block_in_place(|| instances[1].child.wait().unwrap());
    // Its clients stop (nothing answers there any more); what it left unanswered waits in the
    // ledger and goes to the two others.
    loads.remove(1).stop().await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for load in loads {
        load.stop().await;
    }
    let client = reqwest::Client::new();
    ledger.settle(&client, &urls[0]).await;
    ledger.resend_acknowledged(&client, &urls[2], 20).await;
    let (sent, acked, unavailable, no_answer) = ledger.counts();
    assert_eq!(sent, acked, "every delivery ends acknowledged");
    assert!(acked >= 100, "too few deliveries to mean anything: {acked}");

    let store = riskhook::store::open_with(&DatabaseUrl::new(&db_url), 2)
        .await
        .unwrap();
    let events = check_store(store.as_ref(), &ledger).await;
    let (messages, received) = check_notifications(store.as_ref(), &receiver).await;
    for i in [0, 2] {
        instances[i].signal("TERM");
        let exit = tokio::task::block_in_place(|| instances[i].child.wait().unwrap());
        assert!(exit.success(), "{exit:?}");
    }
    store.close().await;
    assert_no_dangling_references(&db_url).await;
    let verified = audit_verify(&db_url);
    eprintln!(
        "postgres, three instances, one killed: {sent} deliveries ({no_answer} unanswered and \
         {unavailable} refused along the way, all stored once on retry), {events} events; \
         {messages} notifications, {received} receipts; {}",
        verified.trim()
    );
}

/// Every reference of the intake path names a row, also after crashes (PostgreSQL's migration
/// 12 dropped the foreign keys that checked it).
pub(crate) async fn assert_no_dangling_references(db_url: &str) {
    let dangling = riskhook_store_postgres::test_support::dangling_references(db_url)
        .await
        .expect("check references");
    assert!(dangling.is_empty(), "dangling references: {dangling:?}");
}

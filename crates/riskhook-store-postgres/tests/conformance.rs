//! The store conformance suite (`riskhook_store::conformance`) against PostgreSQL, each case on
//! a fresh database of its own on the test server (`RISKHOOK_TEST_POSTGRES_URL`, see
//! `riskhook_store_postgres::test_support`). Its own harness (`harness = false`,
//! `test_support::harness`): when the server cannot be reached every case is *ignored*, in the
//! summary; with `RISKHOOK_REQUIRE_SERVICES=1` they run and fail instead. After each case, every
//! reference of the intake path must name a row (`test_support::dangling_references`).

use std::process::ExitCode;

use riskhook_store::conformance;
use riskhook_store_postgres::PostgresStore;
use riskhook_store_postgres::test_support::harness::{Runtime, Suite};
use riskhook_store_postgres::test_support::{
    dangling_references, fresh_database_or_skip, unavailable,
};

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        /// Every case, each on a database of its own, ignored when `absent` says why.
        fn cases(suite: &mut Suite, absent: Option<&str>) {
            $(
                suite.test(stringify!($case), Runtime::MultiThread(2), absent, || async {
                    let Some((url, database)) = fresh_database_or_skip().await else { return };
                    let store = PostgresStore::open(&url, 8).await.expect("open");
                    conformance::$case(&store).await;
                    store.close().await;
                    // Migration 12 dropped the intake path's foreign keys: every reference the
                    // case wrote must still name a row.
                    assert_eq!(
                        dangling_references(&url).await.expect("check references"),
                        Vec::<String>::new()
                    );
                    database.remove().await.expect("drop the test database");
                });
            )*
        }
    };
}

conformance!(
    ingest_is_exactly_once,
    a_session_is_at_its_greatest_observation,
    reconciliation_finds_events_and_unfinished_sessions,
    evidence_gathers_into_one_case,
    the_queue_counts_and_filters_unresolved_cases,
    workbench_sessions_live_until_ended_or_idle,
    backtests_read_session_events_in_arrival_order,
    shadow_assessments_are_stored_and_change_nothing,
    resolving_a_case_sets_the_verdict,
    four_eyes_needs_a_second_key,
    audit_chain_is_intact,
    keyed_appends_verify_only_with_their_key,
    keys_are_stored_hashed_and_revocable,
    outbox_claims_in_order_with_leases,
    concurrent_identical_deliveries_are_stored_once,
    concurrent_events_of_one_user_end_as_one_by_one,
    concurrent_dispatchers_never_share_a_delivery,
);

fn main() -> ExitCode {
    let mut suite = Suite::new();
    cases(&mut suite, unavailable().as_deref());
    suite.run()
}

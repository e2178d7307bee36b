//! The store conformance suite (`riskhook_store::conformance`) against SQLite, each case on a
//! fresh temporary database.

use riskhook_store::conformance;
use riskhook_store_sqlite::SqliteStore;

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $case() {
            let dir = tempfile::tempdir().expect("temporary directory");
            let url = format!("sqlite://{}", dir.path().join("conformance.db").display());
            let store = SqliteStore::open(&url).await.expect("open");
            conformance::$case(&store).await;
            store.close().await;
        }
    )*};
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

//! Text PostgreSQL cannot store (U+0000) or that is no id (other control characters), sent
//! everywhere a delivery or a person can put it: the same 4xx as on SQLite, never the 503 that
//! made Didit retry a delivery that could never be stored.

use crate::helpers::{control_characters_are_refused_alike, keys_config_on, spawn_app_with_config};

pub(crate) async fn control_characters_get_the_same_4xx_on_postgres_as_on_sqlite() {
    let Some((url, _database)) =
        riskhook_store_postgres::test_support::fresh_database_or_skip().await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with_config(keys_config_on(dir.path(), &url, "")).await;
    control_characters_are_refused_alike(&app).await;
    app.stop().await;
}

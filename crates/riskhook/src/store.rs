//! Opening the storage backend that the database URL names.
//!
//! The choice lives here, in the service, because the backend crates depend on the trait crate
//! and not the other way round.

use std::sync::Arc;

use anyhow::{Context, bail};
use riskhook_store::Store;
use riskhook_store_sqlite::SqliteStore;

use crate::config::DatabaseUrl;

/// Opens the database and applies pending migrations.
pub async fn open(url: &DatabaseUrl) -> anyhow::Result<Arc<dyn Store>> {
    Ok(Arc::new(open_sqlite(url).await?))
}

/// Opens the SQLite database at `url`, migrating it.
pub async fn open_sqlite(url: &DatabaseUrl) -> anyhow::Result<SqliteStore> {
    let url = url.expose();
    if !url.starts_with("sqlite:") {
        bail!("unsupported database URL scheme (expected sqlite:)");
    }
    SqliteStore::open(url)
        .await
        .with_context(|| format!("cannot open the database {}", describe(url)))
}

/// The URL without credentials, for error messages.
fn describe(url: &str) -> String {
    format!("{:?}", DatabaseUrl::new(url))
        .trim_start_matches("DatabaseUrl(")
        .trim_end_matches(')')
        .to_owned()
}

//! Opening the storage backend that the database URL names: `sqlite:` (embedded, the default)
//! or `postgres://` / `postgresql://` (several instances on one database).
//!
//! The choice lives here, in the service, because the backend crates depend on the trait crate
//! and not the other way round.

use std::sync::Arc;

use anyhow::{Context, bail};
use riskhook_store::Store;
use riskhook_store_postgres::PostgresStore;
use riskhook_store_sqlite::SqliteStore;

use crate::config::DatabaseUrl;

/// The PostgreSQL pool size when the caller has no configuration (the CLI's one-off commands).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 4;

/// The backends this build knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite:`.
    Sqlite,
    /// `postgres://` or `postgresql://`.
    Postgres,
}

impl Backend {
    /// The backend `url` names.
    pub fn of(url: &DatabaseUrl) -> anyhow::Result<Self> {
        let url = url.expose();
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            bail!(
                "unsupported database URL {} (expected sqlite:… or postgres://…)",
                describe(url)
            )
        }
    }
}

/// Opens the database and applies pending migrations, with a small PostgreSQL pool.
pub async fn open(url: &DatabaseUrl) -> anyhow::Result<Arc<dyn Store>> {
    open_with(url, DEFAULT_MAX_CONNECTIONS).await
}

/// Opens the database and applies pending migrations; a PostgreSQL pool holds at most
/// `max_connections`.
pub async fn open_with(url: &DatabaseUrl, max_connections: u32) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match Backend::of(url)? {
        Backend::Sqlite => Arc::new(open_sqlite(url).await?),
        Backend::Postgres => Arc::new(
            PostgresStore::open(url.expose(), max_connections)
                .await
                .with_context(|| format!("cannot open the database {}", describe(url.expose())))?,
        ),
    };
    Ok(store)
}

/// Applies pending migrations without serving: `riskhook migrate`. Returns the versions
/// applied now.
pub async fn migrate(url: &DatabaseUrl) -> anyhow::Result<Vec<i64>> {
    let described = describe(url.expose());
    match Backend::of(url)? {
        Backend::Sqlite => {
            let store = SqliteStore::connect(url.expose())
                .await
                .with_context(|| format!("cannot open the database {described}"))?;
            let applied = store.migrate().await.context("migration failed");
            store.close().await;
            applied
        }
        Backend::Postgres => {
            if let Some(name) = PostgresStore::create_database_if_missing(url.expose())
                .await
                .with_context(|| format!("cannot create the database {described}"))?
            {
                eprintln!("created the database {name}");
            }
            let store = PostgresStore::connect(url.expose(), 1)
                .await
                .with_context(|| format!("cannot open the database {described}"))?;
            let applied = store.migrate().await.context("migration failed");
            store.close().await;
            applied
        }
    }
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
pub fn describe(url: &str) -> String {
    format!("{:?}", DatabaseUrl::new(url))
        .trim_start_matches("DatabaseUrl(")
        .trim_end_matches(')')
        .to_owned()
}

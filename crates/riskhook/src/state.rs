//! The state every handler can reach: cheap to clone, fields shared behind `Arc`s.

use std::sync::Arc;

use riskhook_didit::axum::Clock;
use riskhook_store::Store;

use crate::config::Config;
use crate::policy::PolicyHandle;

/// Shared application state.
#[derive(Clone)]
pub struct AppState {
    /// Where events are stored.
    pub store: Arc<dyn Store>,
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The risk policy in force.
    pub policy: Arc<PolicyHandle>,
    /// Unix seconds; injected so tests can pin time.
    pub clock: Clock,
    /// Wakes the notification dispatcher after a write ([`crate::notify::Dispatcher::waker`]).
    pub outbox: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

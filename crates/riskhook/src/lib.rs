//! riskhook: turns Didit identity-verification webhooks into durable, explainable risk decisions.
//!
//! This crate is the service and its CLI; the protocol lives in `riskhook-didit` and storage
//! behind `riskhook-store`. Layout:
//!
//! - [`config`]: layered configuration, validated at start.
//! - [`app`]: [`App::build`](app::App::build) binds the listener (port 0 allowed) and
//!   [`App::run`](app::App::run) serves until a shutdown future resolves.
//! - [`server`]: the HTTP/1 accept loop: connection limit, idle and header-read timeouts.
//! - [`routes`]: one module per feature, each owning its handlers and DTOs, merged in one place.
//! - `ui`: the review workbench, server-rendered pages under `/ui` (sessions, CSRF, templates).
//! - [`pipeline`]: what happens to a verified event: signals, assessment, one transaction.
//! - [`policy`]: the policy in force and its atomic reload.
//! - `audit`: the audit key at start, and checkpoints of the chain's head (anchors).
//! - `backtest`: replaying stored events through a candidate policy.
//! - [`auth`]: API keys and roles for `/v1`.
//! - [`keys`]: making API keys stored in the database.
//! - `metrics`: Prometheus metrics and `/metrics`.
//! - [`notify`]: outbound `user.updated` notifications, signed per Standard Webhooks.
//! - [`standard_webhooks`]: the `whsec_` secrets and the signature headers of that spec.
//! - [`error`]: [`ApiError`](error::ApiError), the one error type of the HTTP boundary.
//! - [`store`]: opening the backend named by the database URL.
//! - [`delivery`]: signing and sending deliveries as Didit does (CLI and tests).
//! - [`cli`]: the `riskhook` command line (`serve`, `migrate`, `sign`, `send`, `score`, `policy`,
//!   `keys`, `audit`, `deliveries`, `reconcile`, `config`).
//! - `time`: times as RFC 3339 beside Unix seconds in the API.
//! - `telemetry`: tracing set-up.

// Public: what the binary, the integration tests (`tests/it`, `tests/services`) and the
// documented types reach. The rest is this crate's own.
pub mod app;
mod audit;
pub mod auth;
mod backtest;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod error;
pub mod keys;
mod metrics;
pub mod notify;
pub mod pipeline;
pub mod policy;
pub mod reconcile;
pub mod routes;
pub mod server;
pub mod standard_webhooks;
pub mod state;
pub mod store;
mod telemetry;
mod text;
mod time;
mod ui;
mod words;

//! Whole-application tests: the real service on a port-0 listener with a fresh SQLite file
//! per test, driven over HTTP, plus the `riskhook` binary itself. Everything here needs only
//! the Rust toolchain; the tests needing PostgreSQL, NATS, root or a browser are in the
//! `services` binary (`tests/services`), which marks them ignored when those are absent.

#![allow(clippy::unwrap_used)]

mod backtest;
mod cli;
mod didit_sim;
mod helpers;
mod http_edge;
mod ingest;
mod lifecycle;
mod mutation;
mod notify;
mod openapi;
mod operator;
mod reconcile;
mod review_api;
mod review_story;
mod roles;
mod scoring;
mod sessions;
mod shadow;
mod workbench;

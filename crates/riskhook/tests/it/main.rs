//! Whole-application tests: the real service on a port-0 listener with a fresh SQLite file
//! per test, driven over HTTP, plus the `riskhook` binary itself.

#![allow(clippy::unwrap_used)]

mod backtest;
mod cli;
mod didit_sim;
mod faults;
mod helpers;
mod http_edge;
mod ingest;
mod instances;
mod lifecycle;
mod mutation;
mod nats;
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
mod workbench_browser;

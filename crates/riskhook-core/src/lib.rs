//! riskhook's risk engine: pure, with no I/O and no clock (time is an argument).
//!
//! - [`signals`]: the provider-neutral facts a policy reads and their schema. Provider mappings
//!   live beside their protocol (Didit's: the `riskhook-didit-signals` crate); this crate knows
//!   no provider.
//! - [`policy`]: loading a TOML policy of CEL rules (where every error surfaces, with its rule
//!   and line) and evaluating it, totally, into an [`Assessment`](assessment::Assessment).
//! - [`cases`]: policy test cases (payload or signals → expected decision and rules); a
//!   payload is turned into signals by the provider mapping the caller hands in.
//! - [`assessment`]: decisions, assessments and account statuses.
//! - [`review`]: review cases, account actions, and the status a user is in given people's
//!   verdicts and the evidence waiting for them.
//! - [`audit`]: the audit log's hash chain.

pub mod assessment;
pub mod audit;
pub mod backtest;
pub mod cases;
pub mod policy;
pub mod review;
pub mod signals;

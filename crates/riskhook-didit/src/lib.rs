//! Didit webhook protocol: everything needed to decide whether a delivery really came from Didit
//! and what it says, with no I/O.
//!
//! - [`canonical`]: the byte-exact canonical JSON that `X-Signature-V2` is computed over.
//! - [`signature`]: the three signature schemes and the [`Keyring`](signature::Keyring) whose
//!   every key is tried in constant time.
//! - [`payload`]: lenient, typed models of every Didit event type, unknown fields kept.
//! - [`session`]: the order-independent session state (which event decides a session's status).
//! - [`webhook`]: [`Verifier`](webhook::Verifier), the one entry point that checks freshness,
//!   signature and payload and says exactly why a delivery is refused.
//! - `axum` (feature): a tower layer and an extractor that hand a handler a verified event.

pub mod canonical;
pub mod payload;
pub mod session;
pub mod signature;
pub mod webhook;

#[cfg(feature = "axum")]
pub mod axum;

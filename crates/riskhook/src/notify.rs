//! Outbound notifications: telling the customer's systems, over signed HTTP or through NATS
//! JetStream, that a user's status or decision changed.
//!
//! The store writes each notification (and one delivery per configured endpoint) in the same
//! transaction as the change it reports: the transactional outbox. This module sends them:
//!
//! - [`crate::standard_webhooks`]: the `whsec_` secrets and the `webhook-id` /
//!   `webhook-timestamp` / `webhook-signature` headers of the Standard Webhooks spec.
//! - [`schedule`]: what an answer means (delivered, gone, retry when, exhausted): pure functions.
//! - [`nats`]: the NATS JetStream sink: one more endpoint, publishing instead of POSTing.
//! - [`dispatcher`]: the background task that claims due deliveries, hands each to its
//!   endpoint's [`Sink`] (several at once) and records each outcome.
//!
//! An HTTP endpoint is the configuration's [`Endpoint`] as it is (id, URL, parsed secrets);
//! the NATS sink is built from [`NatsConfig`](crate::config::NatsConfig).
//!
//! Guarantees: at least once (an attempt whose result was not recorded is sent again after
//! its lease), in order per user and endpoint (the store hands out only a user's oldest
//! pending delivery), the same `webhook-id` on every attempt so receivers can deduplicate.
//! A delivery that exhausts its attempts (`failed`) stops holding back the user's later ones;
//! if it is retried by hand it arrives after them, which the payload's `version` reveals.

pub mod dispatcher;
pub mod nats;
pub mod schedule;

pub use dispatcher::{Dispatcher, Jitter, MillisClock, random_jitter, system_millis};
pub use nats::{NatsProbe, NatsSink};
pub use schedule::RetryPolicy;

use crate::config::Endpoint;

/// Where one endpoint's deliveries go. Every endpoint id names exactly one sink; signing is
/// the HTTP sink's alone (JetStream authenticates the connection, not each message).
#[derive(Debug, Clone)]
pub enum Sink {
    /// POSTed over HTTP, signed per Standard Webhooks.
    Http(Endpoint),
    /// Published to a NATS JetStream stream.
    Nats(NatsSink),
}

impl Sink {
    /// The endpoint id its deliveries carry.
    pub fn id(&self) -> &str {
        match self {
            Sink::Http(endpoint) => &endpoint.id,
            Sink::Nats(nats) => nats.endpoint_id(),
        }
    }
}

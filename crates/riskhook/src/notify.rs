//! Outbound notifications: telling the customer's systems, over signed HTTP or through NATS
//! JetStream, that a user's status or decision changed.
//!
//! The store writes each notification (and one delivery per configured endpoint) in the same
//! transaction as the change it reports: the transactional outbox. This module sends them:
//!
//! - [`standard_webhooks`]: the `whsec_` secrets and the `webhook-id` / `webhook-timestamp` /
//!   `webhook-signature` headers of the Standard Webhooks spec.
//! - [`schedule`]: what an answer means (delivered, gone, retry when, exhausted): pure functions.
//! - [`nats`]: the NATS JetStream sink: one more endpoint, publishing instead of POSTing.
//! - [`dispatcher`]: the background task that claims due deliveries, hands each to its
//!   endpoint's [`Sink`] (several at once) and records each outcome.
//!
//! Guarantees: at least once (an attempt whose result was not recorded is sent again after
//! its lease), in order per user and endpoint (the store hands out only a user's oldest
//! pending delivery), the same `webhook-id` on every attempt so receivers can deduplicate.
//! A delivery that exhausts its attempts (`failed`) stops holding back the user's later ones;
//! if it is retried by hand it arrives after them, which the payload's `version` reveals.

pub mod dispatcher;
pub mod nats;
pub mod schedule;
pub mod standard_webhooks;

use std::fmt;

pub use dispatcher::{Dispatcher, Jitter, MillisClock, random_jitter, system_millis};
pub use nats::{NatsProbe, NatsSink};
pub use schedule::RetryPolicy;
pub use standard_webhooks::{SecretError, Signer};

/// One configured receiver of notifications.
#[derive(Clone)]
pub struct Endpoint {
    /// Its id in the configuration: stored with each delivery and used as a metric label.
    pub id: String,
    /// Where notifications are POSTed.
    pub url: reqwest::Url,
    /// Its signing secrets.
    pub signer: Signer,
}

impl fmt::Debug for Endpoint {
    // A URL may carry credentials or a token in its user info or query: show only where it
    // points.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.id)
            .field("url", &redacted_url(&self.url))
            .field("signer", &self.signer)
            .finish()
    }
}

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

/// `scheme://host[:port]/path`: the URL without user info, query or fragment.
pub fn redacted_url(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{}://{host}:{port}{}", url.scheme(), url.path()),
        None => format!("{}://{host}{}", url.scheme(), url.path()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_debug_hides_url_credentials_and_the_secret() {
        let endpoint = Endpoint {
            id: "crm".to_owned(),
            url: reqwest::Url::parse("https://bob:pa55@hooks.example:8443/in?token=t0k3n#x")
                .expect("url"),
            signer: Signer::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret"),
        };
        let text = format!("{endpoint:?}");
        assert!(text.contains("https://hooks.example:8443/in"), "{text}");
        for hidden in ["pa55", "bob", "t0k3n", "MfKQ9r8G"] {
            assert!(!text.contains(hidden), "{hidden} in {text}");
        }
    }
}

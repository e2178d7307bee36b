//! The dispatcher: one background task per process that claims due deliveries from the store,
//! sends each to its endpoint's [`Sink`] (several at once, up to `concurrency`), and records
//! what came of it.
//!
//! It owns the loop, the HTTP client, the routing of a delivery to its sink (HTTP, or NATS
//! JetStream for the NATS endpoint id) and the shutdown; the meaning of an answer is
//! [`schedule`]'s, the ordering and leasing are the store's. Every claim is
//! leased to this process's instance id: a result recorded after the lease ended (another
//! dispatcher took the delivery over) is ignored by the store, and a delivery whose attempt
//! was abandoned (crash, shutdown) is claimed again once its lease ends. Hence at least once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use riskhook_store::{Attempt, Claim, DeliveryRecord, Store, StoreError};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use super::Sink;
use super::nats::NatsSink;
use super::schedule::{self, Observed, RetryPolicy};
use crate::config::{Endpoint, NotifyConfig};

/// Now, in Unix milliseconds: injected so tests can pin time.
pub type MillisClock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// A random number in `[0, 1)` for the backoff jitter: injected so tests are deterministic.
pub type Jitter = Arc<dyn Fn() -> f64 + Send + Sync>;

/// The system clock in Unix milliseconds.
pub fn system_millis() -> MillisClock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    })
}

/// Uniform jitter from the operating system's random source (through UUID v4, already a
/// dependency: jitter needs no cryptographic quality, only independence between processes).
pub fn random_jitter() -> Jitter {
    Arc::new(|| {
        let bits = uuid::Uuid::new_v4().as_u128() >> 96;
        f64::from(u32::try_from(bits).unwrap_or(0)) / 4_294_967_296.0
    })
}

/// Longest error text recorded with a delivery.
const MAX_ERROR_CHARS: usize = 300;

/// The notification dispatcher, built from the configuration and started with
/// [`Dispatcher::run`].
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    /// Every configured endpoint by id: the webhooks and, when configured, NATS.
    endpoints: HashMap<String, Sink>,
    policy: RetryPolicy,
    lease: Duration,
    poll_interval: Duration,
    timeout: Duration,
    concurrency: usize,
    /// This process's claim owner: unique per start, so a restarted process does not mistake
    /// its predecessor's claims for its own.
    owner: String,
    client: reqwest::Client,
    clock: MillisClock,
    jitter: Jitter,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut endpoints: Vec<&Sink> = self.inner.endpoints.values().collect();
        endpoints.sort_by(|a, b| a.id().cmp(b.id()));
        f.debug_struct("Dispatcher")
            .field("owner", &self.inner.owner)
            .field("endpoints", &endpoints)
            .field("policy", &self.inner.policy)
            .field("concurrency", &self.inner.concurrency)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher for `config`'s webhooks and, when given, the NATS sink, reading time from
    /// `clock`.
    pub fn new(
        config: &NotifyConfig,
        nats: Option<NatsSink>,
        store: Arc<dyn Store>,
        clock: MillisClock,
        jitter: Jitter,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            // Standard Webhooks: a redirect is a failure; the operator should configure the
            // final URL instead of having every notification bounce.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("riskhook/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the notification HTTP client: {e}"))?;
        let mut endpoints: HashMap<String, Sink> = config
            .webhooks
            .iter()
            .map(|e| (e.id.clone(), Sink::Http(e.clone())))
            .collect();
        if let Some(nats) = nats {
            let id = nats.endpoint_id().to_owned();
            if endpoints.contains_key(&id) {
                anyhow::bail!("the NATS endpoint id `{id}` is also a webhook's id");
            }
            endpoints.insert(id, Sink::Nats(nats));
        }
        let owner = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                endpoints,
                policy: RetryPolicy {
                    max_attempts: config.max_attempts,
                    initial: config.backoff_initial,
                    max: config.backoff_max,
                },
                lease: config.lease,
                poll_interval: config.poll_interval,
                timeout: config.timeout,
                concurrency: config.concurrency.max(1),
                owner,
                client,
                clock,
                jitter,
                wake: Arc::new(Notify::new()),
            }),
        })
    }

    /// The id this process claims deliveries under.
    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    /// Tells the store which endpoints are configured: only those get deliveries. Called
    /// before the server accepts events, so no change is recorded against a stale list.
    pub async fn sync_endpoints(&self) -> Result<(), StoreError> {
        let mut ids: Vec<String> = self.inner.endpoints.keys().cloned().collect();
        ids.sort();
        self.inner
            .store
            .sync_endpoints(&ids, (self.inner.clock)())
            .await
    }

    /// What wakes this dispatcher: handed to the HTTP layer, which pokes it after writes so
    /// due deliveries are looked for at once instead of at the next poll. A wake with nothing
    /// due costs one query.
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.inner.wake)
    }

    /// Runs until `stop` turns true (or its sender is gone), then lets in-flight attempts
    /// finish for up to `grace`. Attempts still running after that are abandoned: their
    /// deliveries are sent again once their leases end.
    pub async fn run(self, mut stop: watch::Receiver<bool>, grace: Duration) {
        let inner = self.inner;
        if inner.endpoints.is_empty() {
            // Nothing can be due, but the backlog gauge should still say 0.
            inner.refresh_backlog().await;
            let _ = stop.wait_for(|stopping| *stopping).await;
            return;
        }
        tracing::info!(
            owner = %inner.owner,
            endpoints = inner.endpoints.len(),
            "notification dispatcher started"
        );
        let mut in_flight: JoinSet<()> = JoinSet::new();
        let mut backlog_refreshed: Option<tokio::time::Instant> = None;
        loop {
            if *stop.borrow_and_update() {
                break;
            }
            if backlog_refreshed.is_none_or(|t| t.elapsed() >= inner.poll_interval) {
                inner.refresh_backlog().await;
                backlog_refreshed = Some(tokio::time::Instant::now());
            }
            let free = inner.concurrency.saturating_sub(in_flight.len());
            if free > 0 {
                for delivery in inner.claim(free).await {
                    in_flight.spawn(Arc::clone(&inner).attempt(delivery));
                }
            }
            // Claim again when a slot frees (the user's next delivery may now be due), when
            // woken, or at the next poll.
            tokio::select! {
                changed = stop.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                    report_join(joined);
                }
                () = inner.wake.notified() => {}
                () = tokio::time::sleep(inner.poll_interval) => {}
            }
        }
        if !in_flight.is_empty() {
            tracing::info!(
                in_flight = in_flight.len(),
                "notification dispatcher stopping: finishing attempts in flight"
            );
            let drain = async {
                while let Some(joined) = in_flight.join_next().await {
                    report_join(joined);
                }
            };
            if tokio::time::timeout(grace, drain).await.is_err() {
                tracing::warn!(
                    abandoned = in_flight.len(),
                    "notification attempts abandoned at shutdown; they are sent again when their leases end"
                );
                in_flight.shutdown().await;
            }
        }
        tracing::info!("notification dispatcher stopped");
    }
}

fn report_join(joined: Result<(), tokio::task::JoinError>) {
    if let Err(e) = joined
        && e.is_panic()
    {
        // The delivery's lease ends and it is claimed again; nothing else to undo.
        tracing::error!("a notification attempt panicked");
    }
}

impl Inner {
    async fn claim(&self, limit: usize) -> Vec<DeliveryRecord> {
        let claim = Claim {
            owner: self.owner.clone(),
            now: (self.clock)(),
            lease: i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX),
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
        };
        match self.store.claim_deliveries(&claim).await {
            Ok(deliveries) => deliveries,
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "cannot claim notifications; trying again at the next poll"
                );
                Vec::new()
            }
        }
    }

    async fn refresh_backlog(&self) {
        match self.store.outbox_backlog().await {
            Ok(pending) => crate::metrics::outbox_backlog(pending),
            Err(e) => tracing::debug!(error = format!("{e:#}"), "cannot count the outbox backlog"),
        }
    }

    /// One attempt of one delivery, from signing to recording the outcome. Never fails: what
    /// goes wrong is logged, and the lease takes care of the rest.
    async fn attempt(self: Arc<Self>, delivery: DeliveryRecord) {
        let DeliveryRecord {
            id,
            message_id,
            endpoint_id,
            user_id,
            payload,
            attempts,
            ..
        } = delivery;
        let Some(sink) = self.endpoints.get(&endpoint_id) else {
            // The store only hands out deliveries to configured endpoints; leave it to its
            // lease rather than count an attempt that was never made.
            tracing::error!(delivery = %id, endpoint = %endpoint_id, "delivery for an endpoint that is not configured");
            return;
        };
        let started = tokio::time::Instant::now();
        let observed = match sink {
            Sink::Http(endpoint) => self.post(endpoint, &message_id, payload).await,
            Sink::Nats(nats) => publish(nats, &id, &user_id, &message_id, payload).await,
        };
        let elapsed = started.elapsed();
        let now_ms = (self.clock)();
        let outcome = schedule::decide(&self.policy, attempts, observed, now_ms, (self.jitter)());
        let attempt = attempts.saturating_add(1);
        let label = match &outcome {
            Attempt::Delivered { status } => {
                tracing::debug!(delivery = %id, endpoint = %endpoint_id, attempt, status, "notification delivered");
                "delivered"
            }
            Attempt::Retry {
                next_attempt_at,
                status,
                error,
            } => {
                tracing::info!(
                    delivery = %id,
                    endpoint = %endpoint_id,
                    attempt,
                    status,
                    error = %error,
                    retry_in_ms = next_attempt_at.saturating_sub(now_ms),
                    "notification attempt failed; will retry"
                );
                "retry"
            }
            Attempt::Exhausted { status, error } => {
                tracing::warn!(
                    delivery = %id,
                    endpoint = %endpoint_id,
                    attempt,
                    status,
                    error = %error,
                    "notification failed for the last time; it waits for a manual retry"
                );
                "exhausted"
            }
            Attempt::Gone => {
                tracing::warn!(
                    delivery = %id,
                    endpoint = %endpoint_id,
                    "endpoint answered 410 Gone: disabled until enabled again"
                );
                "gone"
            }
        };
        crate::metrics::notification_attempt(&endpoint_id, label, elapsed.as_secs_f64());
        match self
            .store
            .record_attempt(&id, &self.owner, outcome, now_ms)
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::info!(
                delivery = %id,
                "notification lease lost before its result was recorded; another attempt owns it"
            ),
            Err(e) => tracing::warn!(
                delivery = %id,
                error = format!("{e:#}"),
                "cannot record a notification attempt; it is sent again when its lease ends"
            ),
        }
    }

    /// One HTTP attempt: signs and POSTs the payload, and says what came back.
    async fn post(&self, endpoint: &Endpoint, message_id: &str, payload: String) -> Observed {
        let timestamp = (self.clock)().div_euclid(1000);
        let headers = endpoint
            .signer
            .headers(message_id, timestamp, payload.as_bytes());
        let mut request = self
            .client
            .post(endpoint.url.clone())
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (name, value) in headers.pairs() {
            request = request.header(name, value);
        }
        match request.body(payload).send().await {
            Ok(response) => Observed::Status {
                status: response.status().as_u16(),
                retry_after: response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| schedule::parse_retry_after(v, (self.clock)())),
            },
            Err(e) => Observed::Failed {
                error: describe_error(&e),
            },
        }
    }
}

/// One NATS attempt. JetStream's acknowledgement, a duplicate one included (an earlier
/// attempt was stored but its acknowledgement lost), is recorded as status 200 so the schedule
/// treats it as delivered; anything else is a failure retried on the same schedule as HTTP.
async fn publish(
    nats: &NatsSink,
    delivery: &str,
    user_id: &str,
    message_id: &str,
    payload: String,
) -> Observed {
    match nats.publish(user_id, message_id, payload).await {
        Ok(ack) => {
            tracing::debug!(
                delivery = %delivery,
                stream = %ack.stream,
                sequence = ack.sequence,
                duplicate = ack.duplicate,
                "notification stored by JetStream"
            );
            Observed::Status {
                status: 200,
                retry_after: None,
            }
        }
        Err(e) => Observed::Failed {
            error: truncate(e.to_string()),
        },
    }
}

/// A transport failure in words, without the URL (it may carry a token) and never longer than
/// [`MAX_ERROR_CHARS`].
fn describe_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    truncate(text)
}

/// `text`, cut to [`MAX_ERROR_CHARS`].
fn truncate(text: String) -> String {
    if text.chars().count() > MAX_ERROR_CHARS {
        text.chars().take(MAX_ERROR_CHARS).collect()
    } else {
        text
    }
}

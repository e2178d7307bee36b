//! The application as a value: [`App::build`] opens the database and binds the listener,
//! [`App::run`] serves until a shutdown future resolves, then lets in-flight requests finish.
//!
//! Binding before serving is what lets tests use port 0 and connect at once, with no sleep.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use riskhook_didit::axum::{Clock, system_clock};
use riskhook_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::audit::Checkpointer;
use crate::config::Config;
use crate::notify::{self, Dispatcher, NatsProbe, NatsSink};
use crate::policy::PolicyHandle;
use crate::routes;
use crate::state::AppState;

/// A built, not yet running, application.
#[derive(Debug)]
pub struct App {
    listener: TcpListener,
    state: AppState,
    /// Sends outbound notifications once [`App::run`] starts it.
    dispatcher: Dispatcher,
    /// The NATS connection's state for `/readyz`, when NATS is configured.
    nats: Option<NatsProbe>,
    /// Publishes checkpoints of the audit chain's head once [`App::run`] starts it.
    checkpointer: Checkpointer,
}

impl App {
    /// Binds the listener, then opens the store named by the configuration. In that order: a
    /// start that cannot listen (the port is taken) fails before it creates or touches a
    /// database.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = bind(&config).await?;
        let store =
            crate::store::open_with(&config.database_url, config.database_max_connections).await?;
        Self::assemble(config, listener, store, system_clock()).await
    }

    /// [`App::build`] with an already open store and a chosen clock.
    pub async fn build_with(
        config: Config,
        store: Arc<dyn Store>,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let listener = bind(&config).await?;
        Self::assemble(config, listener, store, clock).await
    }

    async fn assemble(
        config: Config,
        listener: TcpListener,
        store: Arc<dyn Store>,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        // First, before anything is appended: every entry from here on is keyed (or the start
        // is refused because it could not be).
        crate::audit::start(store.as_ref(), &config.audit, clock()).await?;
        let checkpointer = Checkpointer::new(store.clone(), &config.audit, clock.clone())?;
        let policy = PolicyHandle::load(config.policy_path.as_deref())?
            .with_shadows(&config.policy_shadows)?;
        // Connects in the background: a NATS server that is down (or comes up later) does not
        // stop the start; its deliveries wait in the outbox.
        let nats = match &config.nats {
            Some(nats) => Some(NatsSink::connect(nats, config.notify.timeout).await?),
            None => None,
        };
        let nats_probe = nats.as_ref().map(NatsSink::probe);
        let dispatcher = Dispatcher::new(
            &config.notify,
            nats,
            store.clone(),
            notify::system_millis(),
            notify::random_jitter(),
        )?;
        // Before the first event is accepted: deliveries are created for the endpoints the
        // store knows, so it must know the configured ones.
        dispatcher
            .sync_endpoints()
            .await
            .context("cannot record the configured notification endpoints")?;
        crate::metrics::handle();
        crate::metrics::policy_in_force(None, policy.current().name(), policy.current().hash());
        crate::policy::record_in_force(
            store.as_ref(),
            &policy.current(),
            &policy.source_name(),
            "system",
            clock(),
        )
        .await
        .context("cannot record the policy in force in the audit log")?;
        summarise(&config, &policy, store.as_ref()).await;
        Ok(Self {
            listener,
            state: AppState {
                store,
                config: Arc::new(config),
                policy: Arc::new(policy),
                clock,
                outbox: dispatcher.waker(),
            },
            dispatcher,
            nats: nats_probe,
            checkpointer,
        })
    }

    /// The address actually bound (the port is chosen by the OS when configured as 0).
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The store, for callers that need it after the app stops.
    pub fn store(&self) -> Arc<dyn Store> {
        self.state.store.clone()
    }

    /// Serves (see [`crate::server`]) until `shutdown` resolves, then stops accepting and waits
    /// up to the configured `shutdown_timeout` for in-flight requests.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let grace = self.state.config.shutdown_timeout;
        let policy = self.state.policy.clone();
        let store = self.state.store.clone();
        tracing::info!(
            policy = policy.current().name(),
            hash = policy.current().hash(),
            source = policy.source_name(),
            "policy in force"
        );
        // Listen for SIGHUP before announcing readiness: a SIGHUP with no handler yet would
        // terminate the process.
        let reloader = tokio::spawn(reload_on_sighup(
            policy,
            store.clone(),
            self.state.clock.clone(),
            hangups(),
        ));
        tracing::info!(address = %self.local_addr()?, "riskhook listening");
        let limits = self.state.config.http;
        let reconcile = self.state.config.didit.reconcile.clone();
        let clock = self.state.clock.clone();
        let mut router = routes::router(self.state);
        if let Some(probe) = self.nats {
            // For /readyz only; routes without NATS configured see no extension.
            router = router.layer(axum::Extension(probe));
        }
        let (stopping_tx, mut stopping_rx) = watch::channel(false);
        let mut dispatcher = tokio::spawn(self.dispatcher.run(stopping_rx.clone(), grace));
        let checkpointer = self.checkpointer.clone();
        let checkpoints = tokio::spawn(self.checkpointer.run(stopping_rx.clone()));
        let linker = tokio::spawn(crate::audit::link_every(
            store.clone(),
            crate::audit::LINK_EVERY,
            stopping_rx.clone(),
        ));
        let reconciler = reconcile.map(|config| {
            tokio::spawn(crate::reconcile::every(
                store.clone(),
                config,
                clock.clone(),
                stopping_rx.clone(),
            ))
        });
        let signal = tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = stopping_tx.send(true);
            // Held until the server is done, so receivers never see the channel close early.
            stopping_tx
        });
        let serve = crate::server::serve(self.listener, router, limits, stopping_rx.clone());
        let deadline = async move {
            let _ = stopping_rx.wait_for(|stopping| *stopping).await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            () = serve => {}
            () = deadline => tracing::warn!(?grace, "shutdown grace period over; dropping unfinished requests"),
        }
        signal.abort();
        reloader.abort();
        // A run in flight waits on Didit, which may take a while: it is cut short, and the
        // next start runs again.
        if let Some(reconciler) = reconciler {
            reconciler.abort();
            let _ = reconciler.await;
        }
        // The dispatcher saw the same signal and bounds its own drain by `grace`; stop it
        // before the store closes under it.
        if tokio::time::timeout(grace, &mut dispatcher).await.is_err() {
            dispatcher.abort();
        }
        // Nothing writes any more: the last checkpoint is of the final head (which links
        // what is staged).
        let _ = linker.await;
        let _ = checkpoints.await;
        if let Err(e) = checkpointer.publish().await {
            tracing::error!(error = format!("{e:#}"), "final audit checkpoint failed");
        }
        store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;

fn hangups() -> Hangups {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::hangup()).ok()
    }
    #[cfg(not(unix))]
    None
}

/// Reloads the policy on every SIGHUP, keeping the old one when the new one does not load.
async fn reload_on_sighup(
    policy: Arc<PolicyHandle>,
    store: Arc<dyn Store>,
    clock: Clock,
    hangups: Hangups,
) {
    #[cfg(unix)]
    {
        let Some(mut hangups) = hangups else {
            tracing::warn!("cannot listen for SIGHUP: policy reload only through the API");
            return;
        };
        while hangups.recv().await.is_some() {
            match policy.reload() {
                Ok((old, new)) => {
                    tracing::info!(
                        from = old,
                        to = new.hash(),
                        rules = new.rule_count(),
                        "policy reloaded (SIGHUP)"
                    );
                    let source = policy.source_name();
                    let recorded = crate::policy::record_in_force(
                        store.as_ref(),
                        &new,
                        &source,
                        "system",
                        clock(),
                    );
                    if let Err(e) = recorded.await {
                        tracing::error!(error = %e, "cannot record the reloaded policy in the audit log");
                    }
                }
                Err(e) => tracing::error!(
                    error = format!("{e:#}"),
                    "policy reload refused; the previous policy stays in force"
                ),
            }
        }
    }
    #[cfg(not(unix))]
    drop((policy, store, clock, hangups));
}

/// Resolves on Ctrl-C or SIGTERM. The SIGTERM handler is installed when this is called, not
/// when the future is first polled, so a SIGTERM right after start is not missed.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let terminate = async {
            match terminate {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => {},
            () = terminate => {},
        }
    }
}

async fn bind(config: &Config) -> anyhow::Result<TcpListener> {
    TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))
}

/// One line saying what this instance runs with, and a warning when nobody could use the API
/// or the workbench because no API key exists yet.
async fn summarise(config: &Config, policy: &PolicyHandle, store: &dyn Store) {
    let stored_keys = match store.keys().await {
        Ok(keys) => keys.iter().filter(|k| k.revoked_at.is_none()).count(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot count the API keys in the database");
            0
        }
    };
    let api_keys = config.api_keys.len() + stored_keys;
    let current = policy.current();
    tracing::info!(
        backend = %crate::store::describe(config.database_url.expose()).trim_matches('"'),
        policy = %current.name(),
        policy_hash = %current.hash(),
        policy_source = %policy.source_name(),
        shadows = policy.shadows().len(),
        four_eyes = config.review.four_eyes,
        api_keys,
        notification_endpoints = config.notify.webhooks.len(),
        nats = config.nats.is_some(),
        workbench = config.ui.enabled,
        reconcile_every = config.didit.reconcile.as_ref().map(|r| humantime::format_duration(r.interval).to_string()),
        "riskhook configuration"
    );
    if api_keys == 0 {
        tracing::warn!(
            "no API key exists: the /v1 API and the /ui workbench refuse everyone; make one with `riskhook keys create --principal NAME --role admin` (same --config), or configure [[api_keys]]"
        );
    }
}

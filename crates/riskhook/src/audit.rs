//! The service's side of the audit chain's protection (issue 11, finding 4): handing the audit
//! key to the store at start, and publishing checkpoints of the chain's head outside the
//! database. The chain itself is `riskhook_core::audit`; checking it is [`verify_chain`]
//! (`riskhook audit verify`, the workbench's audit page).
//!
//! Checkpoints go to the log (INFO, message `audit checkpoint`, fields `seq`, `hash`, `at` and,
//! with a key, `mac`) and, when configured, as one JSON line each to an append-only anchor file.
//! They are not sent through the outbox: its messages are `user.updated` notifications ordered
//! per user, each delivered to every endpoint, which a consumer acts on; a checkpoint is about
//! no user and would need a message type of its own on every endpoint. A log pipeline, or a
//! copy of the anchor file, is the place for them.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use riskhook_core::audit::{AuditKey, ChainReport, ChainVerifier, Checkpoint};
use riskhook_didit::axum::Clock;
use riskhook_store::{NewAuditEntry, Store};
use tokio::sync::watch;

use crate::config::AuditConfig;

/// The action of the entry that starts the keyed part of the chain.
pub(crate) const KEYED: &str = "audit.keyed";

/// Gives the store the audit key, if one is configured, before anything is written; refuses to
/// start when that would break the chain or hide a rewrite of it.
///
/// - No key: refused when the chain is keyed (the next entries would be unkeyed after keyed
///   ones, which `audit verify` reports as a break).
/// - A key and a keyed chain: refused unless the chain's newest entry verifies under the key
///   (another key, or a changed head).
/// - A key and an empty chain: the chain is keyed from its first entry, an [`KEYED`] entry.
/// - A key and a chain written without one: refused until `riskhook audit start-keying` has
///   been run once. Starting a keyed part by itself would also bless a chain an attacker had
///   rewritten without the key (all unkeyed, hashes recomputed) or cut back to its unkeyed
///   part; that step is the operator's, after `riskhook audit verify`.
pub(crate) async fn start(store: &dyn Store, config: &AuditConfig, now: i64) -> anyhow::Result<()> {
    let head = store
        .audit_head()
        .await
        .context("cannot read the head of the audit chain")?;
    let Some(key) = &config.key else {
        if let Some(head) = head.filter(|h| h.keyed) {
            bail!(
                "the audit chain is keyed (entry {} was written with the audit key) but no key is configured: set RISKHOOK_AUDIT__KEY or audit.key_file; unkeyed entries would break the chain",
                head.seq
            );
        }
        return Ok(());
    };
    match &head {
        None => {
            store
                .set_audit_key(key.clone())
                .await
                .context("cannot give the audit key to the store")?;
            begin_keyed(store, 1, now).await?;
        }
        Some(head) if !head.keyed => bail!(
            "the audit chain's {} entries were written without the audit key: check the chain with `riskhook audit verify`, then run `riskhook audit start-keying` once (with the key configured) to key it from then on",
            head.seq
        ),
        Some(head) => {
            if head.fields().keyed_hash(key) != head.hash {
                bail!(
                    "the configured audit key does not verify the chain's newest entry ({}): it is another key, or that entry was changed; run `riskhook audit verify` with the chain's key",
                    head.seq
                );
            }
            store
                .set_audit_key(key.clone())
                .await
                .context("cannot give the audit key to the store")?;
        }
    }
    Ok(())
}

/// Appends the [`KEYED`] entry to a store that has the audit key: the first keyed entry; those
/// before `from` are unkeyed. Returns it.
pub(crate) async fn begin_keyed(
    store: &dyn Store,
    from: i64,
    now: i64,
) -> anyhow::Result<riskhook_store::AuditRecord> {
    let entry = NewAuditEntry::system(
        now,
        KEYED,
        "audit".to_owned(),
        serde_json::json!({ "keyed_from": from }).to_string(),
    );
    let entry = store
        .append_audit(entry)
        .await
        .context("cannot append the audit.keyed entry")?;
    tracing::info!(
        seq = entry.seq,
        "audit chain keyed from this entry on (earlier entries stay unkeyed)"
    );
    Ok(entry)
}

/// How often [`link_every`] links staged audit entries.
pub(crate) const LINK_EVERY: Duration = Duration::from_millis(250);

/// Links staged audit entries into the chain every `period` until `stopping` turns true
/// ([`Store::settle_audit`]; PostgreSQL stages entries at commit, SQLite links them there
/// and has nothing to do). Reads of the chain link on their own: this keeps the chain current
/// for readers outside riskhook (a `psql` session, a backup) and the staged backlog short.
/// A failure (a staged entry that breaks its seal) is logged when it starts and when it
/// changes, not every period, and counted in `riskhook_audit_link_errors_total`.
pub(crate) async fn link_every(
    store: Arc<dyn Store>,
    period: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing: Option<String> = None;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            stopped = stopping.wait_for(|stopping| *stopping) => {
                drop(stopped);
                return;
            }
        }
        match store.settle_audit().await {
            Ok(_) => {
                if failing.take().is_some() {
                    tracing::info!("audit entries are linked into the chain again");
                }
            }
            Err(e) => {
                metrics::counter!("riskhook_audit_link_errors_total").increment(1);
                let message = e.to_string();
                if failing.as_deref() != Some(message.as_str()) {
                    tracing::error!(error = %message, "cannot link staged audit entries");
                    failing = Some(message);
                }
            }
        }
    }
}

/// Publishes checkpoints of the chain's head: [`Checkpointer::run`] every interval while the
/// service runs, [`Checkpointer::publish`] once more at a clean shutdown.
#[derive(Clone)]
pub(crate) struct Checkpointer {
    store: Arc<dyn Store>,
    key: Option<AuditKey>,
    interval: Duration,
    /// The anchor file, opened for appending at start (so a bad path stops the start).
    file: Option<Arc<Mutex<File>>>,
    clock: Clock,
    /// The last head published: an unchanged head is not published again.
    last: Arc<Mutex<Option<i64>>>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer")
            .field("keyed", &self.key.is_some())
            .field("interval", &self.interval)
            .field("anchor_file", &self.file.is_some())
            .finish_non_exhaustive()
    }
}

impl Checkpointer {
    /// Opens the anchor file, if any (created `0600`, appended to only).
    pub(crate) fn new(
        store: Arc<dyn Store>,
        config: &AuditConfig,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let file = config
            .anchor_file
            .as_deref()
            .map(open_anchor_file)
            .transpose()?
            .map(|f| Arc::new(Mutex::new(f)));
        Ok(Self {
            store,
            key: config.key.clone(),
            interval: config.checkpoint_interval,
            file,
            clock,
            last: Arc::default(),
        })
    }

    /// Publishes every interval until `stopping` turns true.
    pub(crate) async fn run(self, mut stopping: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stop = tokio::select! {
                _ = ticks.tick() => false,
                // The guard `wait_for` returns is not `Send`: dropped here, in the branch.
                stopped = stopping.wait_for(|stopping| *stopping) => {
                    drop(stopped);
                    true
                }
            };
            if stop {
                return;
            }
            if let Err(e) = self.publish().await {
                tracing::error!(error = format!("{e:#}"), "audit checkpoint failed");
            }
        }
    }

    /// Publishes the current head, unless it is the one published last (or the chain is
    /// empty). Returns the checkpoint published.
    pub(crate) async fn publish(&self) -> anyhow::Result<Option<Checkpoint>> {
        let Some(head) = self
            .store
            .audit_head()
            .await
            .context("cannot read the head of the audit chain")?
        else {
            return Ok(None);
        };
        if *lock(&self.last) == Some(head.seq) {
            return Ok(None);
        }
        let checkpoint =
            Checkpoint::of_head(head.seq, head.hash, (self.clock)(), self.key.as_ref());
        let at = checkpoint.at.unwrap_or_default();
        match &checkpoint.mac {
            Some(mac) => tracing::info!(
                seq = checkpoint.seq,
                hash = %checkpoint.hash,
                at,
                mac = %mac,
                "audit checkpoint"
            ),
            None => tracing::info!(
                seq = checkpoint.seq,
                hash = %checkpoint.hash,
                at,
                "audit checkpoint"
            ),
        }
        if let Some(file) = &self.file {
            let file = file.clone();
            let mut line = serde_json::to_string(&checkpoint).context("checkpoint as JSON")?;
            line.push('\n');
            // A line a minute at most, but the file may be on a slow or remote disk.
            tokio::task::spawn_blocking(move || {
                let mut file = lock(&file);
                file.write_all(line.as_bytes())?;
                file.sync_data()
            })
            .await
            .context("the anchor file writer stopped")?
            .context("cannot append to the anchor file")?;
        }
        *lock(&self.last) = Some(checkpoint.seq);
        Ok(Some(checkpoint))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding it left nothing half-done: a value or an appended line.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn open_anchor_file(path: &Path) -> anyhow::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot open audit.anchor_file {}", path.display()))
}

/// `audit chain intact: 12 entries (9 keyed, checked with the audit key), head 12:ab…; checked
/// against 2 anchors (newest at entry 11)`.
pub(crate) fn describe(report: &ChainReport, keyed: bool) -> String {
    let Some(head) = &report.head else {
        return "audit log is empty".to_owned();
    };
    let entries = if report.entries == 1 {
        "entry"
    } else {
        "entries"
    };
    let mut out = format!("audit chain intact: {} {entries}", report.entries);
    if report.keyed > 0 {
        let how = if keyed {
            "checked with the audit key"
        } else {
            "their content NOT checked: no audit key"
        };
        out.push_str(&format!(" ({} keyed, {how})", report.keyed));
    }
    out.push_str(&format!(", head {}:{head}", report.entries));
    match report.newest_anchor {
        Some(newest) => out.push_str(&format!(
            "; checked against {} {} (newest at entry {newest})",
            report.anchors,
            if report.anchors == 1 {
                "anchor"
            } else {
                "anchors"
            },
        )),
        None => out.push_str("; no anchor given: removed last entries would not show"),
    }
    out
}

/// Walks the chain a page at a time; an error names the first broken link.
pub(crate) async fn verify_chain(
    store: &dyn Store,
    mut verifier: ChainVerifier,
) -> anyhow::Result<ChainReport> {
    advance(store, &mut verifier).await?;
    Ok(verifier.finish()?)
}

/// Checks the entries after those `verifier` has checked, up to the head.
async fn advance(store: &dyn Store, verifier: &mut ChainVerifier) -> anyhow::Result<()> {
    const PAGE: u32 = 1000;
    loop {
        let page = store.audit(verifier.checked(), PAGE).await?;
        for entry in &page {
            verifier.check(&entry.fields(), &entry.hash, entry.keyed)?;
        }
        if page.len() < PAGE as usize {
            return Ok(());
        }
    }
}

/// The chain as the workbench's audit page checks it: the whole chain on the first look (and
/// whenever asked), then only the entries appended since, so a page stays fast on a chain of
/// millions. Anchors that appear in the anchor file later are checked against the entries they
/// name. What an incremental look cannot see, an edit to an entry already checked, the full
/// check (`full`, `riskhook audit verify`) and the audit key catch.
#[derive(Debug, Default)]
pub(crate) struct ChainWatch {
    /// The verifier after the last look, and how many anchors it has been given.
    checked: tokio::sync::Mutex<Option<(ChainVerifier, usize)>>,
}

/// What a look at the chain found.
#[derive(Debug, Clone)]
pub(crate) struct ChainLook {
    /// Whether the chain (and every anchor) holds.
    pub intact: bool,
    /// The verdict in words, as `riskhook audit verify` says it.
    pub verdict: String,
    /// How many entries this look checked (all of them for a full check).
    pub checked_now: i64,
}

impl ChainWatch {
    /// Looks at the chain: incrementally, or from the first entry when `full`.
    pub(crate) async fn look(
        &self,
        store: &dyn Store,
        config: &AuditConfig,
        full: bool,
    ) -> ChainLook {
        let broken = |why: String| ChainLook {
            intact: false,
            verdict: why,
            checked_now: 0,
        };
        let anchors = match &config.anchor_file {
            None => Vec::new(),
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => match Checkpoint::parse_lines(&text) {
                    Ok(anchors) => anchors,
                    Err(e) => return broken(format!("the anchor file is not usable: {e}")),
                },
                // Not written yet: the first checkpoint creates it.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return broken(format!("the anchor file cannot be read: {e}")),
            },
        };
        let mut cached = self.checked.lock().await;
        let (mut verifier, known) = match cached.take() {
            Some((verifier, known)) if !full && known <= anchors.len() => (verifier, known),
            _ => (ChainVerifier::with_key(config.key.clone()), 0),
        };
        let before = verifier.checked();
        for anchor in &anchors[known..] {
            // An anchor of an entry already checked: compare it with that entry directly.
            if anchor.seq <= verifier.checked() {
                match store.audit(anchor.seq - 1, 1).await {
                    Ok(entries)
                        if entries
                            .first()
                            .is_some_and(|e| e.hash == anchor.hash.to_ascii_lowercase()) => {}
                    Ok(_) => {
                        return broken(format!(
                            "audit chain broken at entry {}: it does not match the anchor published for it",
                            anchor.seq
                        ));
                    }
                    Err(e) => return broken(format!("the audit log could not be read: {e}")),
                }
            }
            if let Err(e) = verifier.anchor(anchor) {
                return broken(format!("audit chain BROKEN: {e}"));
            }
        }
        if let Err(e) = advance(store, &mut verifier).await {
            return broken(format!("audit chain BROKEN: {e:#}"));
        }
        let checked_now = verifier.checked() - before;
        match verifier.clone().finish() {
            Ok(report) => {
                // The entries checked before must still be there as they were: a chain cut
                // back (or swapped for another) below what was checked has no new entries to
                // walk, so compare the database's head with the one this look ends on.
                let (head_seq, head_hash) = match store.audit_head().await {
                    Ok(head) => head.map_or((0, None), |h| (h.seq, Some(h.hash))),
                    Err(e) => return broken(format!("the audit log could not be read: {e}")),
                };
                // (A head beyond the checked end is an entry appended meanwhile: the next
                // look checks it.)
                if head_seq < report.entries
                    || (head_seq == report.entries && head_hash != report.head)
                {
                    return broken(format!(
                        "audit chain BROKEN: it was checked up to entry {} but the database now ends at entry {head_seq}, not as checked: entries were removed or replaced",
                        report.entries
                    ));
                }
                *cached = Some((verifier, anchors.len()));
                ChainLook {
                    intact: true,
                    verdict: describe(&report, config.key.is_some()),
                    checked_now,
                }
            }
            Err(e) => broken(format!("audit chain BROKEN: {e}")),
        }
    }
}

//! Group commit on PostgreSQL: the deliveries waiting when a worker is free are ingested in one
//! transaction, on a connection the worker keeps while there is work.
//!
//! Each delivery alone cost a `BEGIN`, a `COMMIT` (a WAL flush) and, as its connection went
//! back to the pool, sqlx's ping: three of its five round trips, paid by riskhook, PostgreSQL and
//! the network alike (BENCHMARKS.md). Here a fixed set of workers share one queue; a worker takes
//! every delivery queued (up to [`MAX_BATCH`]), runs each through [`ingest::apply`] in one
//! transaction, commits once, and only then answers each: an acknowledged delivery is committed,
//! as before. Under no load a batch is one delivery, and the only cost is the hop to the worker.
//!
//! A batch takes its users' advisory locks in one order, the users' ids in byte order, and every
//! other writer takes at most one user's lock: two batches (of this instance or another) cannot
//! wait for each other in a cycle (two users whose lock keys collide could; PostgreSQL then
//! aborts one, which is retried as below). If anything in a batch fails while it runs (a
//! deadlock, a statement refused, the connection lost, the commit), the transaction is rolled
//! back and the batch is run again one delivery per transaction, so one delivery's error is its
//! own and not its neighbours'. Nothing is lost by the rollback: no delivery was answered yet,
//! and a delivery whose first attempt did commit (a commit whose answer was lost) is found again
//! by its unique keys and answered as a duplicate. When the database itself is unavailable (no
//! connection, `BEGIN` refused), every delivery of the batch is answered so at once: waiting for
//! it once per delivery would hold the last past the sender's timeout.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use riskhook_core::audit::AuditKey;
use riskhook_store::{EventRecord, IngestOutcome, NewAssessment, StoreError};
use sqlx::pool::PoolConnection;
use sqlx::{Acquire, PgPool, Postgres, Transaction};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::effects::connection_lost;
use crate::{ingest, map_err};

/// At most this many deliveries in one transaction: enough to amortise its fixed cost, few
/// enough that the locks it holds are not held long.
pub(crate) const MAX_BATCH: usize = 16;
/// At most this many workers per store.
const MAX_WORKERS: usize = 8;
/// A worker keeps its connection this long after its last batch, so that under load it is not
/// given back (and pinged) between batches.
const KEEP_IDLE: Duration = Duration::from_millis(50);

struct Job {
    event: EventRecord,
    assessment: Option<NewAssessment>,
    reply: oneshot::Sender<Result<IngestOutcome, StoreError>>,
}

type Queue = Arc<Mutex<mpsc::Receiver<Job>>>;

/// The queue to the intake workers. Cloning shares them; they stop when the last clone is gone.
#[derive(Clone)]
pub(crate) struct Intake {
    jobs: mpsc::Sender<Job>,
}

impl Intake {
    /// Starts the workers on the current Tokio runtime: half of `pool`'s connections, at most
    /// [`MAX_WORKERS`] (reads, people's commands and the audit linker keep connections of their
    /// own), each using one at a time.
    pub(crate) fn start(pool: &PgPool, audit_key: &Arc<OnceLock<AuditKey>>) -> Self {
        let connections = pool.options().get_max_connections() as usize;
        let workers = (connections / 2).clamp(1, MAX_WORKERS);
        let (jobs, queue) = mpsc::channel(workers * MAX_BATCH);
        let queue: Queue = Arc::new(Mutex::new(queue));
        // With no connection to spare, a worker gives its back after each batch.
        let keep = if connections > workers {
            KEEP_IDLE
        } else {
            Duration::ZERO
        };
        for _ in 0..workers {
            tokio::spawn(work(
                pool.clone(),
                Arc::clone(audit_key),
                queue.clone(),
                keep,
            ));
        }
        Self { jobs }
    }

    /// Stores `event` exactly once with its effects, and answers when that is committed.
    pub(crate) async fn ingest(
        &self,
        event: EventRecord,
        assessment: Option<NewAssessment>,
    ) -> Result<IngestOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            event,
            assessment,
            reply,
        };
        self.jobs.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the PostgreSQL intake workers have stopped".into())
}

/// One worker: takes what is queued, ingests it, answers; until the queue is closed.
async fn work(pool: PgPool, audit_key: Arc<OnceLock<AuditKey>>, queue: Queue, keep: Duration) {
    let mut held: Option<PoolConnection<Postgres>> = None;
    loop {
        let batch = if held.is_some() {
            match tokio::time::timeout(keep, next_batch(&queue)).await {
                Ok(batch) => batch,
                Err(_idle) => {
                    held = None;
                    continue;
                }
            }
        } else {
            next_batch(&queue).await
        };
        let Some(batch) = batch else { break };
        run(&pool, audit_key.get(), &mut held, batch).await;
    }
}

/// Every job queued now, at least one, at most [`MAX_BATCH`]; `None` once the queue is closed.
async fn next_batch(queue: &Queue) -> Option<Vec<Job>> {
    let mut queue = queue.lock().await;
    let first = queue.recv().await?;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    batch.push(first);
    while batch.len() < MAX_BATCH {
        match queue.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    Some(batch)
}

async fn run(
    pool: &PgPool,
    key: Option<&AuditKey>,
    held: &mut Option<PoolConnection<Postgres>>,
    mut batch: Vec<Job>,
) {
    let started = Instant::now();
    // The lock order (see the module's documentation). Stable: one user's deliveries keep
    // their arrival order.
    batch.sort_by(|a, b| a.event.vendor_data.cmp(&b.event.vendor_data));
    #[allow(clippy::cast_precision_loss)]
    metrics::histogram!("riskhook_commit_batch_size").record(batch.len() as f64);
    let outcomes = match in_one_transaction(pool, key, held, &batch).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(Failed::Ingesting(e)) if batch.len() > 1 => {
            tracing::warn!(error = %e, batch = batch.len(), "a batch of deliveries failed; running it again one by one");
            one_by_one(pool, key, held, &batch).await
        }
        // No connection, or it failed at BEGIN: the batch is not at fault, and one by one
        // would only wait for the database again and again.
        Err(Failed::Ingesting(e) | Failed::Beginning(e)) => {
            let why = cause_of(&e);
            let mut outcomes = vec![Err(e)];
            outcomes.resize_with(batch.len(), || Err(unavailable(&why)));
            outcomes
        }
    };
    metrics::histogram!("riskhook_commit_seconds").record(started.elapsed().as_secs_f64());
    for (job, outcome) in batch.into_iter().zip(outcomes) {
        // The request may have gone (the client hung up): what was stored stays stored.
        let _ = job.reply.send(outcome);
    }
}

/// A batch run again one delivery per transaction, so that an error is only its delivery's.
/// Once the database is unavailable, the rest are answered so at once rather than each waiting
/// for it in turn.
async fn one_by_one(
    pool: &PgPool,
    key: Option<&AuditKey>,
    held: &mut Option<PoolConnection<Postgres>>,
    batch: &[Job],
) -> Vec<Result<IngestOutcome, StoreError>> {
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut down: Option<String> = None;
    for job in batch {
        if let Some(why) = &down {
            outcomes.push(Err(unavailable(why)));
            continue;
        }
        let one = match in_one_transaction(pool, key, held, std::slice::from_ref(job)).await {
            Ok(mut one) => Ok(one.remove(0)),
            Err(Failed::Ingesting(e) | Failed::Beginning(e)) => Err(e),
        };
        if let Err(e @ StoreError::Unavailable(_)) = &one {
            down = Some(cause_of(e));
        }
        outcomes.push(one);
    }
    outcomes
}

/// The same unavailability, for each delivery of a batch (a `StoreError` is not `Clone`).
fn unavailable(why: &str) -> StoreError {
    StoreError::Unavailable(why.to_owned().into())
}

/// What [`unavailable`] copies: the cause (e.g. the pool's timeout), since an error's own text
/// names only its kind ("database unavailable").
fn cause_of(e: &StoreError) -> String {
    std::error::Error::source(e).map_or_else(|| e.to_string(), ToString::to_string)
}

/// Where a transaction of [`in_one_transaction`] failed.
enum Failed {
    /// Before any delivery ran: no connection, or `BEGIN` refused.
    Beginning(StoreError),
    /// While running the deliveries or committing them.
    Ingesting(StoreError),
}

/// Ingests `jobs` in one transaction on the held connection (taking one from the pool if
/// none is held, or if the held one turns out to be gone) and commits. On an error the
/// transaction is rolled back, and a connection whose state is in doubt is given up.
async fn in_one_transaction(
    pool: &PgPool,
    key: Option<&AuditKey>,
    held: &mut Option<PoolConnection<Postgres>>,
    jobs: &[Job],
) -> Result<Vec<IngestOutcome>, Failed> {
    let mut spare = pool.options().get_max_connections();
    loop {
        let mut conn = match held.take() {
            Some(conn) => conn,
            None => pool
                .acquire()
                .await
                .map_err(|e| Failed::Beginning(map_err(e)))?,
        };
        // BEGIN is the connection's test: it fails before anything was done.
        let ran = match conn.begin().await {
            Ok(tx) => Ok(apply_all(tx, key, jobs).await),
            Err(e) => Err(e),
        };
        let (result, reusable) = match ran {
            Ok(ran) => ran,
            Err(e) if spare > 0 && connection_lost(&e) => {
                spare -= 1;
                conn.close_on_drop();
                continue;
            }
            Err(e) => {
                conn.close_on_drop();
                return Err(Failed::Beginning(map_err(e)));
            }
        };
        if reusable {
            *held = Some(conn);
        } else {
            conn.close_on_drop();
        }
        return result.map_err(Failed::Ingesting);
    }
}

/// Runs `jobs` in `tx` and commits, or rolls back at the first error. Also says whether the
/// connection may be used again: not when the transaction's end failed, leaving its fate
/// unknown to the connection.
async fn apply_all(
    mut tx: Transaction<'_, Postgres>,
    key: Option<&AuditKey>,
    jobs: &[Job],
) -> (Result<Vec<IngestOutcome>, StoreError>, bool) {
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        match ingest::apply(&mut tx, key, &job.event, job.assessment.as_ref()).await {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => {
                let reusable = tx.rollback().await.is_ok();
                return (Err(e), reusable);
            }
        }
    }
    match tx.commit().await {
        Ok(()) => (Ok(outcomes), true),
        Err(e) => (Err(map_err(e)), false),
    }
}

//! [`Worker`]: consumes BullMQ queues and runs each job in this process's own
//! [`Pool`](crate::pool::Pool), so that a job that crashes, aborts or hangs fails
//! alone while the worker goes on.
//!
//! The worker process does no task work itself: its runtime fetches jobs, keeps
//! their locks renewed while the pool's children compute (so a CPU-bound job is
//! never taken for stalled), and moves each job to completed or failed with the
//! outcome. Stalled jobs of dead workers are moved back to wait by BullMQ's own
//! stalled check, which every worker runs.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bullmq::worker::CancellationToken;
use bullmq::{Job, JobProgress, Queue, QueueOptions, WorkerOptions};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::child::{JobContext, JobRunner, ProgressReport};
use super::failure::{FailureRecord, host_name};
use super::runtime::Runtime;
use super::task;
use super::{DistributedError, connection_options, default_redis_url};
use crate::codec;
use crate::pool::Pool;
use crate::sys::code::EntryPoint;
use crate::task::TaskError;

type Outcome = Pin<Box<dyn std::future::Future<Output = Result<Value, TaskError>> + Send>>;

/// Starts a registered function on a job's data in a pool: the job's outcome as
/// JSON, or why the data does not fit the function.
pub(crate) type Starter = Box<
    dyn Fn(&Pool, &Value, JobContext, Option<Duration>) -> Result<Outcome, String> + Send + Sync,
>;

pub(crate) fn starter<A, R>(f: fn(A) -> R) -> Starter
where
    A: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    Box::new(move |pool, data, ctx, default_timeout| {
        let (arg, encoding, timeout) = task::decode_job::<A>(data)?;
        let input = codec::encode(&(ctx, arg)).map_err(|e| e.to_string())?;
        let entry = EntryPoint::for_fn_with::<A, R, JobRunner>(f);
        let mut opts = pool.options();
        if let Some(t) = timeout.or(default_timeout) {
            opts = opts.timeout(t);
        }
        let fut = opts.submit_entry::<R>(entry, input);
        Ok(Box::pin(async move {
            let r = fut.await?;
            task::encode_value(&r, encoding).map_err(|e| {
                TaskError::failed(format!("cannot encode the job's result: {e}"), None)
            })
        }))
    })
}

/// What a worker did, returned when it stops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerReport {
    /// Jobs completed.
    pub completed: u64,
    /// Attempts that failed (a job retried twice counts up to three).
    pub failed: u64,
    /// Jobs handed back to the queue at shutdown, unfinished.
    pub handed_back: u64,
}

#[derive(Default)]
struct Counters {
    completed: AtomicU64,
    failed: AtomicU64,
    handed_back: AtomicU64,
}

struct Shared {
    pool: Pool,
    progress_socket: String,
    default_timeout: Option<Duration>,
    counters: Counters,
    /// Fired at the end of the shutdown grace: unfinished jobs go back to wait.
    hand_back: tokio::sync::watch::Receiver<bool>,
}

/// Stops a running [`Worker`] from another thread, like SIGTERM does.
#[derive(Clone, Debug)]
pub struct StopHandle {
    tx: Arc<tokio::sync::watch::Sender<bool>>,
}

impl StopHandle {
    /// Asks the worker to stop: it takes no new job, lets the running ones
    /// finish within its grace period and hands the rest back to the queue.
    pub fn stop(&self) {
        let _ = self.tx.send(true);
    }
}

/// Builds a [`Worker`].
#[derive(Clone, Debug)]
pub struct WorkerBuilder {
    redis: String,
    prefix: String,
    queues: Vec<String>,
    concurrency: usize,
    processes: Option<usize>,
    lock_duration: Duration,
    stalled_interval: Duration,
    max_stalled_count: u32,
    grace: Duration,
    default_timeout: Option<Duration>,
}

impl WorkerBuilder {
    /// The Redis URL (default: `MPROC_REDIS_URL`, else `redis://127.0.0.1:6379`).
    pub fn redis(mut self, url: impl Into<String>) -> Self {
        self.redis = url.into();
        self
    }

    /// The BullMQ key prefix (default `bull`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Also consumes `queue`.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queues.push(queue.into());
        self
    }

    /// How many jobs of each queue run at once (default: the number of CPUs).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// How many processes the pool has (default: the concurrency).
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = Some(n.max(1));
        self
    }

    /// How long a job's lock lasts without renewal (default 30 s; renewed every
    /// half of it). A worker that dies loses its jobs' locks after this long, and
    /// the stalled check of another worker hands them to a live one.
    pub fn lock_duration(mut self, d: Duration) -> Self {
        self.lock_duration = d;
        self
    }

    /// How often this worker looks for stalled jobs (default 30 s).
    pub fn stalled_interval(mut self, d: Duration) -> Self {
        self.stalled_interval = d;
        self
    }

    /// How many times a job may stall before it fails (default 1).
    pub fn max_stalled_count(mut self, n: u32) -> Self {
        self.max_stalled_count = n;
        self
    }

    /// How long a stopping worker lets running jobs finish before it hands them
    /// back to the queue (default 10 s).
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.grace = d;
        self
    }

    /// The timeout of jobs that carry none.
    pub fn default_timeout(mut self, d: Duration) -> Self {
        self.default_timeout = Some(d);
        self
    }

    /// Starts the pool and begins consuming the queues.
    ///
    /// # Errors
    ///
    /// [`DistributedError::Config`] without a queue, [`DistributedError::Pool`]
    /// when the pool cannot start, [`DistributedError::Redis`] when Redis cannot
    /// be reached.
    pub fn start(self) -> Result<Worker, DistributedError> {
        if self.queues.is_empty() {
            return Err(DistributedError::Config(
                "a worker needs at least one queue: WorkerBuilder::queue(name)".into(),
            ));
        }
        let pool = Pool::builder()
            .processes(self.processes.unwrap_or(self.concurrency))
            .handle_ctrl_c(false)
            .name("mproc-distributed")
            .build()
            .map_err(|e| DistributedError::Pool(e.to_string()))?;
        static SOCKETS: AtomicU64 = AtomicU64::new(0);
        let socket_name = format!(
            "mproc-progress-{}-{}",
            std::process::id(),
            SOCKETS.fetch_add(1, Ordering::Relaxed)
        );
        let addr = SocketAddr::from_abstract_name(socket_name.as_bytes())
            .map_err(|e| DistributedError::Io(e.to_string()))?;
        let listener = UnixDatagram::bind_addr(&addr)
            .map_err(|e| DistributedError::Io(format!("cannot bind the progress socket: {e}")))?;
        listener
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|e| DistributedError::Io(e.to_string()))?;

        let rt = Runtime::new("worker", 2)?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let (hand_tx, hand_rx) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            pool,
            progress_socket: socket_name,
            default_timeout: self.default_timeout,
            counters: Counters::default(),
            hand_back: hand_rx,
        });
        let conn = connection_options(&self.redis);
        let name = format!("mproc@{}:{}", host_name(), std::process::id());
        let mut workers = Vec::new();
        let mut queues = Vec::new();
        for q in &self.queues {
            let wopts = WorkerOptions::new()
                .connection(conn.clone())
                .prefix(self.prefix.clone())
                .name(name.clone())
                .concurrency(self.concurrency)
                .lock_duration(self.lock_duration)
                .stalled_interval(self.stalled_interval)
                .max_stalled_count(self.max_stalled_count)
                .drain_delay(Duration::from_secs(1));
            let qopts = QueueOptions::new()
                .connection(conn.clone())
                .prefix(self.prefix.clone());
            let (s, qname, redis) = (Arc::clone(&shared), q.clone(), self.redis.clone());
            let (w, queue) = rt
                .block(async move {
                    let qn = qname.clone();
                    let processor = move |job: Job, token: CancellationToken| {
                        process(Arc::clone(&s), qn.clone(), job, token)
                    };
                    let w = bullmq::Worker::with_options(&qname, processor, wopts).await?;
                    let queue = Queue::with_options(&qname, qopts).await?;
                    Ok::<_, bullmq::Error>((w, queue))
                })
                .map_err(|e| DistributedError::redis(&redis, e))?;
            workers.push(Arc::new(w));
            queues.push((q.clone(), Arc::new(queue)));
        }
        Ok(Worker {
            rt,
            workers,
            queues,
            shared,
            listener: Some(listener),
            stop_tx: Arc::new(stop_tx),
            stop_rx,
            hand_tx,
            grace: self.grace,
        })
    }
}

/// Runs one job: looks its task up, starts it in the pool, waits (the engine
/// renews the lock meanwhile), and says how it ended.
async fn process(
    shared: Arc<Shared>,
    queue: String,
    job: Job,
    _token: CancellationToken,
) -> Result<Value, bullmq::Error> {
    let attempt = job.attempts_made() + 1;
    let name = job.name().to_string();
    let fail_for_good = |job: &Job, message: String| {
        let rec = FailureRecord::failed(message, attempt);
        let line = rec.to_log_line();
        let reason = rec.reason();
        let job = job.clone();
        async move {
            let _ = job.log(&line).await;
            bullmq::Error::Unrecoverable(reason)
        }
    };
    let Some(entry) = task::lookup(&name) else {
        shared.counters.failed.fetch_add(1, Ordering::Relaxed);
        let known = task::names().join(", ");
        return Err(fail_for_good(
            &job,
            format!(
                "job {} has the task name {name:?}, which this worker does not know                  (it runs: {known}); register the function under that name in the                  worker's binary",
                job.id()
            ),
        )
        .await);
    };
    let ctx = JobContext {
        queue,
        job_id: job.id().to_string(),
        progress_socket: shared.progress_socket.clone(),
    };
    let outcome = match (entry.start)(&shared.pool, job.data(), ctx, shared.default_timeout) {
        Ok(o) => o,
        Err(why) => {
            shared.counters.failed.fetch_add(1, Ordering::Relaxed);
            return Err(fail_for_good(
                &job,
                format!(
                    "job {} for task {:?} has data that does not fit the task's argument                      type ({}): {why}",
                    job.id(),
                    entry.name,
                    entry.type_name
                ),
            )
            .await);
        }
    };
    let mut hand_back = shared.hand_back.clone();
    tokio::select! {
        r = outcome => match r {
            Ok(v) => {
                shared.counters.completed.fetch_add(1, Ordering::Relaxed);
                Ok(v)
            }
            Err(e) => {
                shared.counters.failed.fetch_add(1, Ordering::Relaxed);
                let rec = FailureRecord::from_task_error(&e, attempt);
                let _ = job.log(&rec.to_log_line()).await;
                Err(bullmq::Error::ProcessingError(rec.reason()))
            }
        },
        _ = handed_back(&mut hand_back) => {
            // Back to wait without using up an attempt (the engine's path for a
            // job that yields to a rate limit); its process is ended with the pool.
            shared.counters.handed_back.fetch_add(1, Ordering::Relaxed);
            Err(bullmq::Error::RateLimited { delay_ms: 0 })
        }
    }
}

async fn handed_back(rx: &mut tokio::sync::watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            // The worker is gone: nothing will ask for the job back.
            std::future::pending::<()>().await;
        }
    }
}

/// Forwards the pool children's progress reports to Redis.
fn forward_progress(
    listener: UnixDatagram,
    handle: tokio::runtime::Handle,
    queues: Vec<(String, Arc<Queue>)>,
    stop: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 256 * 1024];
    while !stop.load(Ordering::Relaxed) {
        let n = match listener.recv(&mut buf) {
            Ok(n) => n,
            Err(_) => continue,
        };
        let Ok(report) = serde_json::from_slice::<ProgressReport>(&buf[..n]) else {
            continue;
        };
        let Some((_, q)) = queues.iter().find(|(name, _)| *name == report.queue) else {
            continue;
        };
        let q = Arc::clone(q);
        // As given: `Number` would turn an integer into a float (50 -> 50.0).
        let progress = JobProgress::Object(report.progress);
        handle.spawn(async move {
            if let Err(e) = q.update_job_progress(&report.job_id, progress).await {
                log::debug!("mproc distributed: progress of job {}: {e}", report.job_id);
            }
        });
    }
}

/// Consumes BullMQ queues, running each job in a local process pool.
///
/// Start it from the binary that holds the task functions, after
/// [`register`](super::register)ing them; [`run`](Worker::run) returns after
/// SIGTERM, Ctrl-C or [`StopHandle::stop`], once running jobs have finished or
/// been handed back.
///
/// # Examples
///
/// ```no_run
/// use mproc::distributed::{register, Worker};
///
/// fn resize(px: u32) -> u32 { px / 2 }
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     register("resize", resize)?;
///     let report = Worker::builder()
///         .redis("redis://127.0.0.1:6379")
///         .queue("images")
///         .concurrency(4)
///         .start()?
///         .run()?;
///     eprintln!("{} jobs done", report.completed);
///     Ok(())
/// }
/// ```
pub struct Worker {
    rt: Runtime,
    workers: Vec<Arc<bullmq::Worker>>,
    queues: Vec<(String, Arc<Queue>)>,
    shared: Arc<Shared>,
    listener: Option<UnixDatagram>,
    stop_tx: Arc<tokio::sync::watch::Sender<bool>>,
    stop_rx: tokio::sync::watch::Receiver<bool>,
    hand_tx: tokio::sync::watch::Sender<bool>,
    grace: Duration,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.queues.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Worker").field("queues", &names).finish()
    }
}

impl Worker {
    /// A builder (one queue at least must be named).
    pub fn builder() -> WorkerBuilder {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        WorkerBuilder {
            redis: default_redis_url(),
            prefix: "bull".into(),
            queues: Vec::new(),
            concurrency: cpus,
            processes: None,
            lock_duration: Duration::from_secs(30),
            stalled_interval: Duration::from_secs(30),
            max_stalled_count: 1,
            grace: Duration::from_secs(10),
            default_timeout: None,
        }
    }

    /// A handle that stops this worker from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            tx: Arc::clone(&self.stop_tx),
        }
    }

    /// The pids of the pool's processes (they run the jobs).
    pub fn process_pids(&self) -> Vec<u32> {
        self.shared.pool.worker_pids()
    }

    /// Runs until SIGTERM, SIGINT (Ctrl-C) or [`StopHandle::stop`], then shuts
    /// down gracefully: no new job is taken, running jobs get the grace period to
    /// finish, the others go back to the queue (without using up an attempt) and
    /// their processes are ended.
    ///
    /// # Errors
    ///
    /// [`DistributedError::Io`] when the signal handlers cannot be installed.
    pub fn run(mut self) -> Result<WorkerReport, DistributedError> {
        let stop_forwarding = Arc::new(AtomicBool::new(false));
        let forwarder = self.listener.take().map(|l| {
            let (h, q, s) = (
                self.rt.handle().clone(),
                self.queues.clone(),
                Arc::clone(&stop_forwarding),
            );
            std::thread::Builder::new()
                .name("mproc-progress".into())
                .spawn(move || forward_progress(l, h, q, s))
        });
        let mut stop_rx = self.stop_rx.clone();
        let signals = self.rt.block(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate())?;
            let mut int = signal(SignalKind::interrupt())?;
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
                _ = stop_rx.wait_for(|s| *s) => {}
            }
            Ok::<(), std::io::Error>(())
        });
        let report = self.shutdown();
        stop_forwarding.store(true, Ordering::Relaxed);
        if let Some(Ok(t)) = forwarder {
            let _ = t.join();
        }
        signals.map_err(|e| DistributedError::Io(format!("cannot watch for signals: {e}")))?;
        Ok(report)
    }

    fn shutdown(&self) -> WorkerReport {
        let grace = self.grace;
        let workers = self.workers.clone();
        let hand_tx = self.hand_tx.clone();
        self.rt.block(async move {
            // Whatever still runs when the grace is over goes back to the queue.
            let timer = tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                let _ = hand_tx.send(true);
            });
            let budget = (grace + Duration::from_secs(10)).as_millis() as u64;
            // `close` stops fetching at once and returns when no job is active.
            let closes: Vec<_> = workers
                .iter()
                .map(|w| {
                    let w = Arc::clone(w);
                    tokio::spawn(async move { w.close(budget).await })
                })
                .collect();
            for c in closes {
                let _ = c.await;
            }
            timer.abort();
        });
        self.shared.pool.terminate();
        let c = &self.shared.counters;
        WorkerReport {
            completed: c.completed.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            handed_back: c.handed_back.load(Ordering::Relaxed),
        }
    }
}

//! [`BullExecutor`]: the [`Executor`] whose tasks are BullMQ jobs, and its
//! per-job [`JobOptions`].
//!
//! Results come back through the queue's event stream (`completed`, `failed`,
//! `active`, `progress`); a sweep that reads the jobs' states catches whatever the
//! stream could not deliver (a listener that fell behind a trimmed stream, a
//! Redis restart, a job de-duplicated onto one that had already finished).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bullmq::types::RemoveOnFinish;
use bullmq::{BulkJob, JobState, Queue, QueueEvent, QueueEvents, QueueEventsOptions, QueueOptions};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::failure::{FailureRecord, LOG_PREFIX};
use super::runtime::Runtime;
use super::task::{self, Encoding, Task};
use super::{DistributedError, connection_options, default_redis_url};
use crate::futures::{Executor, MapInner, MapIter, SubmitError};
use crate::task::slot::Slot;
use crate::task::{Future, TaskError};

/// How a failed job is retried (BullMQ's `backoff`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backoff {
    /// The same delay before every retry.
    Fixed(Duration),
    /// `delay * 2^(attempt - 1)` before each retry.
    Exponential(Duration),
}

/// Options of one job (BullMQ's job options, plus the mproc timeout and encoding).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mproc::distributed::{Backoff, JobOptions};
///
/// let opts = JobOptions::new()
///     .attempts(3)
///     .backoff(Backoff::Exponential(Duration::from_millis(100)))
///     .timeout(Duration::from_secs(60))
///     .priority(1)
///     .remove_on_complete(true);
/// assert_eq!(opts.get_attempts(), Some(3));
/// ```
#[derive(Clone, Debug, Default)]
pub struct JobOptions {
    attempts: Option<u32>,
    backoff: Option<Backoff>,
    delay: Option<Duration>,
    priority: Option<u32>,
    timeout: Option<Duration>,
    remove_on_complete: Option<bool>,
    remove_on_fail: Option<bool>,
    job_id: Option<String>,
    encoding: Encoding,
}

impl JobOptions {
    /// No options: one attempt, no delay, no priority, no timeout, JSON.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many times the job is started before it fails for good (default 1).
    pub fn attempts(mut self, n: u32) -> Self {
        self.attempts = Some(n.max(1));
        self
    }

    /// The attempts set, if any.
    pub fn get_attempts(&self) -> Option<u32> {
        self.attempts
    }

    /// The delay before each retry.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Holds the job back this long before a worker may take it.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// BullMQ priority: 1 is the highest; jobs without one come first.
    pub fn priority(mut self, priority: u32) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Kills the job's process on the worker after this long; the attempt fails
    /// with [`TaskError::is_timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Removes the job from Redis when it completes (its result still reaches
    /// this executor through the `completed` event).
    pub fn remove_on_complete(mut self, yes: bool) -> Self {
        self.remove_on_complete = Some(yes);
        self
    }

    /// Removes the job from Redis when it fails for good.
    pub fn remove_on_fail(mut self, yes: bool) -> Self {
        self.remove_on_fail = Some(yes);
        self
    }

    /// The job's id: a second job with an id that exists is not added, and its
    /// future resolves with the existing job's outcome (de-duplication). Must not
    /// be a plain integer (BullMQ reserves those).
    pub fn job_id(mut self, id: impl Into<String>) -> Self {
        self.job_id = Some(id.into());
        self
    }

    /// How the argument and result are laid out in Redis (default JSON).
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    fn to_bullmq(&self, id: String) -> bullmq::JobOptions {
        let mut o = bullmq::JobOptions::new().job_id(id);
        if let Some(a) = self.attempts {
            o = o.attempts(a);
        }
        if let Some(b) = self.backoff {
            o = o.backoff(match b {
                Backoff::Fixed(d) => bullmq::types::BackoffStrategy::Fixed(d.as_millis() as u64),
                Backoff::Exponential(d) => {
                    bullmq::types::BackoffStrategy::Exponential(d.as_millis() as u64)
                }
            });
        }
        if let Some(d) = self.delay {
            o = o.delay(d);
        }
        if let Some(p) = self.priority {
            o = o.priority(p);
        }
        if let Some(r) = self.remove_on_complete {
            o = o.remove_on_complete(RemoveOnFinish::Bool(r));
        }
        if let Some(r) = self.remove_on_fail {
            o = o.remove_on_fail(RemoveOnFinish::Bool(r));
        }
        o
    }
}

/// How a pending job ended, as read from Redis.
enum Resolution {
    Completed(Value),
    Failed(FailureRecord),
    Gone(String),
}

/// The producer side of one submitted job.
trait Pending: Send + Sync {
    fn running(&self);
    fn resolve(&self, how: &Resolution);
    fn cancelled(&self) -> bool;
    /// Nobody holds the future any more.
    fn abandoned(&self) -> bool;
    fn set_progress(&self, v: Value);
    /// Cancels the future if its job has not started.
    fn cancel_if_waiting(&self);
}

struct Slotted<R> {
    slot: Arc<Slot<R>>,
    index: usize,
    progress: Arc<Mutex<Option<Value>>>,
}

impl<R: DeserializeOwned + Send + 'static> Pending for Slotted<R> {
    fn running(&self) {
        self.slot.set_running();
    }
    fn resolve(&self, how: &Resolution) {
        let out = match how {
            Resolution::Completed(v) => task::decode_value::<R>(v).map(|(r, _)| r).map_err(|e| {
                TaskError::failed(
                    format!("cannot decode the job's result: {e}"),
                    Some(self.index),
                )
            }),
            Resolution::Failed(rec) => Err(rec.to_task_error(Some(self.index))),
            Resolution::Gone(why) => Err(TaskError::failed(why.clone(), Some(self.index))),
        };
        self.slot.complete(out);
    }
    fn cancelled(&self) -> bool {
        self.slot.is_cancelled()
    }
    fn abandoned(&self) -> bool {
        Arc::strong_count(&self.slot) == 1
    }
    fn set_progress(&self, v: Value) {
        *self.progress.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
    }
    fn cancel_if_waiting(&self) {
        self.slot.cancel();
    }
}

struct Waiting {
    pending: Arc<dyn Pending>,
    /// Whether the job is known to be in Redis (the sweep leaves the others).
    added: bool,
}

type ProgressCallback = Box<dyn Fn(&str, &str) + Send + Sync>;

/// State shared with the event and sweep tasks.
struct Shared {
    queue: Arc<Queue>,
    jobs: Mutex<HashMap<String, Vec<Waiting>>>,
    changed: Condvar,
    /// Bumped by every event that concerns one of our jobs.
    activity: AtomicU64,
    /// The event stream reported an error (a reconnect): sweep soon.
    stream_trouble: AtomicBool,
    on_progress: Mutex<Vec<ProgressCallback>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<Waiting>>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self, id: &str) -> Option<Vec<Waiting>> {
        let mut jobs = self.lock();
        let w = jobs.remove(id);
        if jobs.is_empty() {
            self.changed.notify_all();
        }
        w
    }

    fn resolve(&self, id: &str, how: Resolution) {
        if let Some(ws) = self.take(id) {
            for w in ws {
                w.pending.resolve(&how);
            }
        }
        self.changed.notify_all();
    }

    fn each(&self, id: &str, f: impl Fn(&dyn Pending)) -> bool {
        let jobs = self.lock();
        match jobs.get(id) {
            Some(ws) => {
                for w in ws {
                    f(&*w.pending);
                }
                true
            }
            None => false,
        }
    }
}

/// The last failure record in a job's log, if an mproc worker wrote one.
async fn failure_record(queue: &Queue, id: &str) -> Option<FailureRecord> {
    let (lines, _) = queue.get_job_logs(id, 0, -1, true).await.ok()?;
    lines
        .iter()
        .rev()
        .filter(|l| l.starts_with(LOG_PREFIX))
        .find_map(|l| FailureRecord::from_log_line(l))
}

async fn failed_resolution(queue: &Queue, id: &str, reason: String) -> Resolution {
    Resolution::Failed(match failure_record(queue, id).await {
        Some(r) => r,
        None => FailureRecord::failed(reason, 0),
    })
}

async fn events_loop(shared: Arc<Shared>, events: QueueEvents) {
    while let Some(entry) = events.next_event().await {
        match entry.event {
            QueueEvent::Active { job_id, .. } if shared.each(&job_id, |p| p.running()) => {
                shared.activity.fetch_add(1, Ordering::Relaxed);
            }
            QueueEvent::Completed {
                job_id,
                return_value,
                ..
            } if shared.lock().contains_key(&job_id) => {
                let v = serde_json::from_str(&return_value).unwrap_or(Value::String(return_value));
                shared.resolve(&job_id, Resolution::Completed(v));
                shared.activity.fetch_add(1, Ordering::Relaxed);
            }
            QueueEvent::Failed {
                job_id,
                failed_reason,
                ..
            } if shared.lock().contains_key(&job_id) => {
                let how = failed_resolution(&shared.queue, &job_id, failed_reason).await;
                shared.resolve(&job_id, how);
                shared.activity.fetch_add(1, Ordering::Relaxed);
            }
            QueueEvent::Progress { job_id, data } => {
                let text = data.to_string();
                shared.each(&job_id, |p| p.set_progress(data.clone()));
                for cb in shared
                    .on_progress
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                {
                    cb(&job_id, &text);
                }
            }
            QueueEvent::Error { message } => {
                log::debug!("mproc distributed: event stream error: {message}");
                shared.stream_trouble.store(true, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// Reads the state of jobs the events did not settle: after a quiet spell (with a
/// back-off up to 30 s while nothing moves) or a stream error. Also drops the jobs
/// whose futures were cancelled (removing them from Redis while they wait) or
/// dropped.
async fn sweep_loop(shared: Arc<Shared>) {
    let mut seen = shared.activity.load(Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    let mut wait = Duration::from_secs(1);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let cancelled: Vec<String> = {
            let mut jobs = shared.lock();
            let mut gone = Vec::new();
            jobs.retain(|id, ws| {
                ws.retain(|w| !(w.pending.cancelled() || w.pending.abandoned()));
                if ws.is_empty() {
                    gone.push(id.clone());
                }
                !ws.is_empty()
            });
            if jobs.is_empty() {
                shared.changed.notify_all();
            }
            gone
        };
        for id in cancelled {
            // Only a job that is not running can be removed; a running one finishes.
            let _ = shared.queue.remove(&id).await;
        }
        let now_seen = shared.activity.load(Ordering::Relaxed);
        if now_seen != seen {
            seen = now_seen;
            quiet_since = Instant::now();
            wait = Duration::from_secs(1);
            continue;
        }
        let trouble = shared.stream_trouble.swap(false, Ordering::Relaxed);
        if !trouble && quiet_since.elapsed() < wait {
            continue;
        }
        let ids: Vec<String> = shared
            .lock()
            .iter()
            .filter(|(_, ws)| ws.iter().any(|w| w.added))
            .map(|(id, _)| id.clone())
            .collect();
        for chunk in ids.chunks(256) {
            let mut set = tokio::task::JoinSet::new();
            for id in chunk {
                let (q, id) = (Arc::clone(&shared.queue), id.clone());
                set.spawn(async move {
                    let state = q.get_job_state(&id).await;
                    (id, state)
                });
            }
            while let Some(Ok((id, state))) = set.join_next().await {
                let how = match state {
                    Ok(JobState::Completed) => match shared.queue.get_job(&id).await {
                        Ok(Some(job)) => {
                            let raw = job.returnvalue();
                            Resolution::Completed(
                                serde_json::from_str(raw).unwrap_or(Value::String(raw.into())),
                            )
                        }
                        _ => continue,
                    },
                    Ok(JobState::Failed) => {
                        let reason = match shared.queue.get_job(&id).await {
                            Ok(Some(job)) => job.failed_reason().to_string(),
                            _ => String::new(),
                        };
                        failed_resolution(&shared.queue, &id, reason).await
                    }
                    Ok(JobState::Unknown) => Resolution::Gone(format!(
                        "job {id} no longer exists in Redis (removed before its result was \
                         read, or Redis lost its data)"
                    )),
                    _ => continue,
                };
                shared.resolve(&id, how);
                shared.activity.fetch_add(1, Ordering::Relaxed);
            }
        }
        quiet_since = Instant::now();
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}

/// A handle to one submitted job: its id, its latest progress, its [`Future`].
pub struct JobHandle<R> {
    id: String,
    future: Future<R>,
    progress: Arc<Mutex<Option<Value>>>,
}

impl<R> std::fmt::Debug for JobHandle<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHandle").field("id", &self.id).finish()
    }
}

impl<R> JobHandle<R> {
    /// The BullMQ job id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The latest progress the task reported (see [`progress`](super::progress)),
    /// decoded as `P`; `None` before the first report or when it is not a `P`.
    pub fn progress<P: DeserializeOwned>(&self) -> Option<P> {
        let v = self
            .progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        serde_json::from_value(v).ok()
    }

    /// The job's future.
    pub fn future(&self) -> &Future<R> {
        &self.future
    }

    /// The job's future, by value.
    pub fn into_future(self) -> Future<R> {
        self.future
    }

    /// Waits for the job's result.
    ///
    /// # Errors
    ///
    /// The job's [`TaskError`], as a local pool would report it.
    pub fn result(self) -> Result<R, TaskError> {
        self.future.result()
    }
}

/// Builds a [`BullExecutor`].
#[derive(Clone, Debug)]
pub struct BullExecutorBuilder {
    redis: String,
    queue: String,
    prefix: String,
    defaults: JobOptions,
}

impl BullExecutorBuilder {
    /// The Redis URL (default: `MPROC_REDIS_URL`, else `redis://127.0.0.1:6379`).
    pub fn redis(mut self, url: impl Into<String>) -> Self {
        self.redis = url.into();
        self
    }

    /// The BullMQ key prefix (default `bull`, as in every BullMQ client).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The options of every job submitted without its own.
    pub fn defaults(mut self, opts: JobOptions) -> Self {
        self.defaults = opts;
        self
    }

    /// Connects and starts listening to the queue's events.
    ///
    /// # Errors
    ///
    /// [`DistributedError::Redis`] when Redis cannot be reached or the queue name
    /// is invalid.
    pub fn build(self) -> Result<BullExecutor, DistributedError> {
        let rt = Runtime::new("executor", 2)?;
        let conn = connection_options(&self.redis);
        let qopts = QueueOptions::new()
            .connection(conn.clone())
            .prefix(self.prefix.clone());
        let name = self.queue.clone();
        let eopts = QueueEventsOptions {
            connection: conn,
            prefix: self.prefix.clone(),
            blocking_timeout: 2000,
            last_event_id: None,
            autorun: true,
        };
        let redis = self.redis.clone();
        let (queue, events) = rt
            .block(async move {
                let q = Queue::with_options(&name, qopts).await?;
                // Listen before anything is submitted, so no event of ours is missed.
                let e = QueueEvents::with_options(&name, eopts).await?;
                Ok::<_, bullmq::Error>((q, e))
            })
            .map_err(|e| DistributedError::redis(&redis, e))?;
        let shared = Arc::new(Shared {
            queue: Arc::new(queue),
            jobs: Mutex::new(HashMap::new()),
            changed: Condvar::new(),
            activity: AtomicU64::new(0),
            stream_trouble: AtomicBool::new(false),
            on_progress: Mutex::new(Vec::new()),
        });
        rt.spawn(events_loop(Arc::clone(&shared), events));
        rt.spawn(sweep_loop(Arc::clone(&shared)));
        static UID: AtomicU64 = AtomicU64::new(0);
        Ok(BullExecutor {
            uid: format!(
                "m{:x}{:x}{:x}",
                std::process::id(),
                UID.fetch_add(1, Ordering::Relaxed),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64 & 0xff_ffff)
                    .unwrap_or(0)
            ),
            rt,
            shared,
            queue: self.queue,
            defaults: self.defaults,
            seq: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        })
    }
}

/// An [`Executor`] whose tasks run as BullMQ jobs on [`Worker`](super::Worker)s on
/// any number of machines, through one Redis.
///
/// `submit`, `map`, [`as_completed`](crate::futures::as_completed) and
/// [`wait`](crate::futures::wait) work as with the local executors; a task is
/// a function [`register`](super::register)ed under a name (the job's name).
/// Failures come back as the same [`TaskError`] a local pool gives (a panic with
/// its message and location, a lost worker with its signal, a timeout).
///
/// # Caveats
///
/// - **Drop** shuts down waiting for the jobs whose futures are still held.
/// - `cancel` removes a job that is still waiting in Redis; a running job
///   finishes (its result is then ignored).
/// - With [`JobOptions::remove_on_complete`], the result reaches this executor
///   only through the `completed` event; if this executor was disconnected at
///   that moment, the future fails saying the job is gone.
pub struct BullExecutor {
    // Declared first: dropped (and its tasks stopped) before the rest.
    rt: Runtime,
    shared: Arc<Shared>,
    queue: String,
    defaults: JobOptions,
    uid: String,
    seq: AtomicU64,
    closed: AtomicBool,
}

impl std::fmt::Debug for BullExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BullExecutor")
            .field("queue", &self.queue)
            .field("pending", &self.pending())
            .finish()
    }
}

impl BullExecutor {
    /// A builder for the executor of `queue`.
    pub fn builder(queue: impl Into<String>) -> BullExecutorBuilder {
        BullExecutorBuilder {
            redis: default_redis_url(),
            queue: queue.into(),
            prefix: "bull".into(),
            defaults: JobOptions::default(),
        }
    }

    /// Connects to `redis` (a `redis://` URL) and submits to `queue`.
    ///
    /// # Errors
    ///
    /// As [`BullExecutorBuilder::build`].
    pub fn connect(redis: &str, queue: &str) -> Result<BullExecutor, DistributedError> {
        BullExecutor::builder(queue).redis(redis).build()
    }

    /// The queue's name.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// How many submitted jobs have no outcome yet.
    pub fn pending(&self) -> usize {
        self.shared.lock().values().map(Vec::len).sum()
    }

    /// Calls `f(job_id, progress_json)` for every progress report of a job of
    /// this queue (any producer's), on the executor's event thread.
    pub fn on_progress(&self, f: impl Fn(&str, &str) + Send + Sync + 'static) {
        self.shared
            .on_progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(f));
    }

    /// Submits `task(arg)` with `opts`.
    ///
    /// # Errors
    ///
    /// [`DistributedError::Closed`] after shutdown, [`DistributedError::Encode`]
    /// when the argument cannot be encoded, [`DistributedError::Redis`] when the
    /// job could not be added.
    pub fn submit_job<A, R>(
        &self,
        task: &Task<A, R>,
        arg: A,
        opts: &JobOptions,
    ) -> Result<JobHandle<R>, DistributedError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        let mut v = self.enqueue(task.name(), vec![(arg, 0)], opts)?;
        Ok(v.pop().expect("one job in, one out"))
    }

    /// Submits `task` on every item (job options `opts`, without a job id); the
    /// handles are in input order.
    ///
    /// # Errors
    ///
    /// As [`submit_job`](BullExecutor::submit_job).
    pub fn map_jobs<A, R>(
        &self,
        task: &Task<A, R>,
        items: impl IntoIterator<Item = A>,
        opts: &JobOptions,
    ) -> Result<Vec<JobHandle<R>>, DistributedError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        let mut opts = opts.clone();
        opts.job_id = None;
        let items: Vec<(A, usize)> = items.into_iter().enumerate().map(|(i, a)| (a, i)).collect();
        self.enqueue(task.name(), items, &opts)
    }

    fn enqueue<A, R>(
        &self,
        name: &str,
        items: Vec<(A, usize)>,
        opts: &JobOptions,
    ) -> Result<Vec<JobHandle<R>>, DistributedError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        if self.closed.load(Ordering::Acquire) {
            return Err(DistributedError::Closed);
        }
        const BATCH: usize = 1000;
        let mut out = Vec::with_capacity(items.len());
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let mut bulk = Vec::with_capacity(BATCH);
            let mut ids = Vec::with_capacity(BATCH);
            let mut waiting = Vec::with_capacity(BATCH);
            for (arg, index) in items.by_ref().take(BATCH) {
                let data = task::encode_job(&arg, opts.encoding, opts.timeout)
                    .map_err(DistributedError::Encode)?;
                let id = opts.job_id.clone().unwrap_or_else(|| {
                    format!("{}-{}", self.uid, self.seq.fetch_add(1, Ordering::Relaxed))
                });
                let slot = Slot::new(index);
                let progress = Arc::new(Mutex::new(None));
                waiting.push(Arc::new(Slotted {
                    slot: Arc::clone(&slot),
                    index,
                    progress: Arc::clone(&progress),
                }));
                bulk.push(BulkJob::with_options(
                    name.to_string(),
                    data,
                    opts.to_bullmq(id.clone()),
                ));
                ids.push(id.clone());
                out.push(JobHandle {
                    id,
                    future: Future::from_slot(slot),
                    progress,
                });
            }
            // Registered before the jobs exist in Redis (so that no event of theirs
            // finds nobody waiting), under one lock for the whole batch: the event
            // task takes the same lock for every event it reads.
            {
                let mut jobs = self.shared.lock();
                for (id, pending) in ids.iter().zip(waiting) {
                    jobs.entry(id.clone()).or_default().push(Waiting {
                        pending,
                        added: false,
                    });
                }
            }
            let queue = Arc::clone(&self.shared.queue);
            let added = self.rt.block(async move { queue.add_bulk(bulk).await });
            let mut jobs = self.shared.lock();
            for id in &ids {
                if let Some(ws) = jobs.get_mut(id) {
                    match added {
                        Ok(_) => ws.iter_mut().for_each(|w| w.added = true),
                        Err(_) => ws.retain(|w| w.added),
                    }
                }
            }
            jobs.retain(|_, ws| !ws.is_empty());
            drop(jobs);
            if let Err(e) = added {
                return Err(DistributedError::Redis(format!(
                    "cannot add jobs to queue {:?}: {e}",
                    self.queue
                )));
            }
        }
        Ok(out)
    }

    fn name_for<A, R>(f: fn(A) -> R) -> Result<Arc<str>, SubmitError> {
        task::name_of(f).ok_or_else(|| {
            SubmitError::Rejected(
                "the function is not a registered distributed task; call \
                 mproc::distributed::register(name, f) first"
                    .into(),
            )
        })
    }
}

fn submit_error(e: DistributedError) -> SubmitError {
    match e {
        DistributedError::Closed => SubmitError::Closed,
        DistributedError::Encode(m) => SubmitError::Encode(m),
        other => SubmitError::Rejected(other.to_string()),
    }
}

impl Executor for BullExecutor {
    fn submit<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<Future<R>, SubmitError>
    where
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let name = Self::name_for(f)?;
        let mut v = self
            .enqueue::<A, R>(&name, vec![(arg, 0)], &self.defaults)
            .map_err(submit_error)?;
        Ok(v.pop().expect("one job in, one out").future)
    }

    /// Submits every item in batches (one Redis round trip per thousand jobs);
    /// `chunksize` is ignored (each item is one job).
    fn map<'a, A, R, I>(
        &'a self,
        f: fn(A) -> R,
        items: I,
        timeout: Option<Duration>,
        _chunksize: usize,
    ) -> Result<MapIter<'a, R>, SubmitError>
    where
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        let name = Self::name_for(f)?;
        let start = crate::deadline::after(timeout.unwrap_or(Duration::MAX));
        let mut opts = self.defaults.clone();
        opts.job_id = None;
        let items: Vec<(A, usize)> = items.into_iter().enumerate().map(|(i, a)| (a, i)).collect();
        let handles = self
            .enqueue::<A, R>(&name, items, &opts)
            .map_err(submit_error)?;
        let futures: VecDeque<Future<R>> = handles.into_iter().map(|h| h.future).collect();
        Ok(MapIter {
            inner: MapInner::Futures(futures),
            deadline: timeout.and_then(|t| start.map(|d| (d, t))),
            next: 0,
            expired: false,
        })
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.closed.store(true, Ordering::Release);
        if cancel_futures {
            // Cancels those not started; the sweep removes them from Redis.
            self.cancel_waiting();
        }
        if wait {
            let mut jobs = self.shared.lock();
            while jobs.values().any(|ws| {
                ws.iter()
                    .any(|w| !w.pending.abandoned() && !w.pending.cancelled())
            }) {
                jobs = self
                    .shared
                    .changed
                    .wait_timeout(jobs, Duration::from_millis(250))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
    }
}

impl BullExecutor {
    /// Cancels every pending future of a job that has not started.
    fn cancel_waiting(&self) {
        let slots: Vec<Arc<dyn Pending>> = self
            .shared
            .lock()
            .values()
            .flat_map(|ws| ws.iter().map(|w| Arc::clone(&w.pending)))
            .collect();
        for p in slots {
            p.cancel_if_waiting();
        }
    }
}

impl Drop for BullExecutor {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

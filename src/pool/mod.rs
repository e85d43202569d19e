//! Pools of long-lived worker processes: the counterpart of
//! `multiprocessing.Pool`, without its failure modes.
//!
//! A [`Pool`] starts `n` workers once and runs many tasks on them. A task is a
//! function `fn(A) -> R` (a plain `fn`, or a closure that captures nothing) whose
//! argument and result are serde types, as for [`Process`](crate::process::Process).
//!
//! ```
//! use mproc::pool::Pool;
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! let pool = Pool::new(2)?;
//! assert_eq!(pool.map(square, 0..5)?, vec![0, 1, 4, 9, 16]);
//! assert_eq!(pool.apply(square, 12)?, 144);
//! let mut sum = 0;
//! for r in pool.imap_unordered(square, 0..100) {
//!     sum += r?;
//! }
//! assert_eq!(sum, 328_350);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Use [`futures`](crate::futures) instead for `concurrent.futures`' API (one
//! [`Executor`](crate::futures::Executor) trait over processes and threads), and a
//! single [`Process`](crate::process::Process) for one long job.
//!
//! # Failures stay local
//!
//! - A task that **panics** fails with its message, location and backtrace
//!   ([`TaskError::is_panic`]); the worker keeps serving.
//! - A worker that **dies** mid-task (segfault, abort, `SIGKILL`, OOM kill) fails the
//!   task it was running with the worker's pid and signal or exit code
//!   ([`TaskError::is_worker_lost`]); tasks queued behind it on that worker go back
//!   to the queue, and a fresh worker takes its place. With
//!   [`retries`](Builder::retries) a lost task is run again, at most that many
//!   times; a task that keeps killing workers is then given up.
//! - A task that runs past its **timeout** ([`Builder::task_timeout`],
//!   [`TaskOptions::timeout`]) has its worker killed and replaced
//!   ([`TaskError::is_timeout`]).
//! - **Ctrl-C**: the first cancels queued work and closes the pool (running tasks
//!   finish); the second kills the workers. No orphan, no zombie.
//!
//! # Throughput
//!
//! Tasks travel in batches: the pool measures how long tasks take and sends each
//! worker several chunks per message (about 2 ms of work, at most two batches in
//! flight per worker; one task at a time while tasks are slow or not yet measured),
//! so even `chunksize = 1` costs no system call per task. `map` with a chunk size
//! above 1 (automatic by default, `len / (4 * processes)` as in Python) goes further:
//! each chunk is encoded once and runs in one call in the worker; a crash is still
//! pinned on the exact item. A chunk of primitive numbers (`u8` to `u128`, `i8` to
//! `i128`, `usize`, `isize`, `f32`, `f64`) travels as the items' raw bytes, both
//! ways, with no per-item encoding at all. `imap`, `imap_unordered`, `apply` and
//! calls with a timeout send tasks one by one (in batches).
//!
//! # Caveats
//!
//! - **Drop** terminates the pool: workers are killed, unfinished tasks fail as
//!   cancelled. Call [`close`](Pool::close) and [`join`](Pool::join) to finish the
//!   queued work first.
//! - **Child crash**: a task whose result was computed but not yet sent when its
//!   worker died (at most about 1 ms or 16 tasks of work) is run again on another
//!   worker.
//! - **Parent death**: workers die with the parent (`PR_SET_PDEATHSIG`).
//! - **Ctrl-C** handling installs a `SIGINT` handler while a pool lives (turn it off
//!   with [`Builder::handle_ctrl_c`]); workers ignore `SIGINT` and are stopped by
//!   the parent.
//! - **Fork**: [`StartMethod::Fork`] workers copy the parent, threads' locks
//!   included; the default forkserver has no such hazard.
//! - **Callbacks** ([`Pool::apply_async_with_callbacks`], done-callbacks) run on
//!   the pool's dispatcher thread: keep them short.

mod dispatcher;
mod error;
mod frames;
mod insights;
mod interrupt;
mod link;
mod memory;
mod plain;
mod progress;
mod results;
mod state;
mod worker;
mod worker_options;
mod worker_state;

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::task::TaskError;
pub use error::{PoolError, SubmitError};
pub use insights::{Insights, WorkerInsights};
pub use results::{AsyncResult, IMap, IMapUnordered, MapResult};

use crate::codec::{self, Message};
use crate::pool::dispatcher::{Dispatcher, WorkerSpec};
use crate::pool::progress::Progress;
use crate::pool::results::{Feeder, MapSink, Mode};
use crate::pool::state::{PoolState, Stop};
use crate::process::StartMethod;
use crate::task::Future;
use crate::task::call::{CallInfo, Chunk, Job, OneSink, Sink};
use crate::task::future::Slot;

/// `map` hands tasks to the pool in slices of about this many items.
const SUBMIT_SLICE: usize = 4096;
use crate::sys::code::EntryPoint;

/// Options for building a [`Pool`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mproc::pool::Pool;
/// use mproc::process::StartMethod;
///
/// let pool = Pool::builder()
///     .processes(2)
///     .start_method(StartMethod::Forkserver)
///     .max_tasks_per_child(100)
///     .task_timeout(Duration::from_secs(60))
///     .retries(1)
///     .build()?;
/// assert_eq!(pool.processes(), 2);
/// assert_eq!(pool.map(|x: i32| -x, [1, 2])?, [-1, -2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    processes: Option<usize>,
    method: StartMethod,
    max_tasks: Option<u64>,
    initializer: Option<Result<(EntryPoint, Vec<u8>), String>>,
    timeout: Option<Duration>,
    retries: u32,
    ctrl_c: bool,
    name: String,
    options: worker_options::WorkerOptions,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            processes: None,
            method: StartMethod::default(),
            max_tasks: None,
            initializer: None,
            timeout: None,
            retries: 0,
            ctrl_c: true,
            name: "PoolWorker".into(),
            options: worker_options::WorkerOptions::default(),
        }
    }
}

impl Builder {
    /// The number of worker processes (default: [`cpu_count`](crate::process::cpu_count)).
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    pub fn processes(&mut self, n: usize) -> &mut Self {
        self.processes = Some(n.max(1));
        self
    }

    /// How workers are started (default [`StartMethod::Forkserver`]).
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    pub fn start_method(&mut self, method: StartMethod) -> &mut Self {
        self.method = method;
        self
    }

    /// Replaces each worker after it has run `n` tasks (Python's
    /// `maxtasksperchild`): a cure for leaks in the task code. As in Python, a
    /// chunk of a `map` counts as one task.
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    pub fn max_tasks_per_child(&mut self, n: u64) -> &mut Self {
        self.max_tasks = Some(n.max(1));
        self
    }

    /// Runs `f(arg)` once in each worker when it starts (Python's `initializer`
    /// and `initargs`), for per-worker state such as a `static` `OnceLock`. A panic
    /// in it fails [`build`](Builder::build) with [`PoolError::Initializer`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::OnceLock;
    /// use mproc::pool::Pool;
    ///
    /// static GREETING: OnceLock<String> = OnceLock::new();
    ///
    /// let pool = Pool::builder()
    ///     .processes(1)
    ///     .initializer(|g: String| { let _ = GREETING.set(g); }, "hello".to_string())
    ///     .build()?;
    /// let got = pool.apply(|name: String| format!("{} {name}", GREETING.get().unwrap()), "pool".to_string())?;
    /// assert_eq!(got, "hello pool");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn initializer<A>(&mut self, f: fn(A), arg: A) -> &mut Self
    where
        A: Serialize + DeserializeOwned + 'static,
    {
        self.initializer = Some(match codec::encode(&arg) {
            Ok(m) if m.fds.is_empty() => Ok((EntryPoint::for_fn(f), m.bytes)),
            Ok(_) => Err("an initializer argument cannot hold mproc handles".into()),
            Err(e) => Err(e.to_string()),
        });
        self
    }

    /// The default timeout of every task (none by default). A task running longer
    /// has its worker killed and fails with [`TaskError::is_timeout`].
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    pub fn task_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.timeout = Some(timeout);
        self
    }

    /// How many times a task lost with its worker is run again (default 0).
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    pub fn retries(&mut self, n: u32) -> &mut Self {
        self.retries = n;
        self
    }

    /// Whether Ctrl-C stops the pool (default `true`); see the module docs.
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    pub fn handle_ctrl_c(&mut self, on: bool) -> &mut Self {
        self.ctrl_c = on;
        self
    }

    /// The workers' name prefix (default `PoolWorker`); worker `i` is `<name>-i`.
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    pub fn name(&mut self, name: impl Into<String>) -> &mut Self {
        self.name = name.into();
        self
    }

    /// Starts the workers and waits until each has run its initializer.
    ///
    /// # Errors
    ///
    /// [`PoolError`] when a worker cannot be started or its initializer fails.
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    pub fn build(&self) -> Result<Pool, PoolError> {
        let n = self
            .processes
            .unwrap_or_else(crate::process::cpu_count)
            .max(1);
        let initializer = match &self.initializer {
            None => None,
            Some(Ok(i)) => Some(i.clone()),
            Some(Err(e)) => return Err(PoolError::Encode(e.clone())),
        };
        if let Some(Err(e)) = &self.options.state_init {
            return Err(PoolError::Encode(e.clone()));
        }
        let spec = WorkerSpec {
            method: self.method,
            initializer,
            max_tasks: self.max_tasks,
            name: self.name.clone(),
            options: self.options.for_pool(),
        };
        let recorder = Arc::clone(&spec.options.recorder);
        let mut workers = Vec::with_capacity(n);
        for i in 0..n {
            workers.push(dispatcher::start_worker(&spec, i)?);
        }
        for (i, w) in workers.iter_mut().enumerate() {
            if let Err(reason) = dispatcher::await_hello(w, Duration::from_secs(60)) {
                return Err(PoolError::Initializer {
                    worker: i,
                    pid: w.pid(),
                    reason,
                });
            }
        }
        let shared = PoolState::new().map_err(|source| PoolError::Io {
            what: "wake-up pipe",
            source,
        })?;
        let registration = if self.ctrl_c {
            Some(
                interrupt::register(&shared).map_err(|source| PoolError::Io {
                    what: "SIGINT handler",
                    source,
                })?,
            )
        } else {
            None
        };
        let dispatcher = Dispatcher::new(Arc::clone(&shared), spec, workers);
        let handle = std::thread::Builder::new()
            .name("mproc-pool".into())
            .spawn(move || dispatcher.run())
            .map_err(|source| PoolError::Io {
                what: "dispatcher thread",
                source,
            })?;
        Ok(Pool {
            shared,
            dispatcher: Mutex::new(Some(handle)),
            processes: n,
            timeout: self.timeout,
            retries: self.retries,
            _ctrl_c: registration,
            recorder,
        })
    }
}

/// A pool of worker processes. See the [module docs](self).
///
/// `Pool` is `Send + Sync`: share it between threads by reference or in an `Arc`.
pub struct Pool {
    shared: Arc<PoolState>,
    dispatcher: Mutex<Option<JoinHandle<()>>>,
    processes: usize,
    timeout: Option<Duration>,
    retries: u32,
    _ctrl_c: Option<interrupt::Registration>,
    recorder: Arc<insights::Recorder>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("processes", &self.processes)
            .field("workers", &self.worker_pids())
            .finish()
    }
}

/// Functions [`Pool::starmap`] accepts: `fn(A, B) -> R` and `fn(A, B, C) -> R`,
/// called with the fields of each tuple item.
pub trait StarFn<Args, R>: Copy + sealed::Sealed<Args, R> {}

mod sealed {
    use crate::sys::code::EntryPoint;

    pub trait Sealed<Args, R> {
        #[allow(private_interfaces)]
        fn entry(self) -> EntryPoint;
    }
}

impl<A, B, R> sealed::Sealed<(A, B), R> for fn(A, B) -> R
where
    A: DeserializeOwned,
    B: DeserializeOwned,
    R: Serialize,
{
    #[allow(private_interfaces)]
    fn entry(self) -> EntryPoint {
        EntryPoint::for_fn2(self)
    }
}
impl<A, B, R> StarFn<(A, B), R> for fn(A, B) -> R
where
    A: DeserializeOwned,
    B: DeserializeOwned,
    R: Serialize,
{
}

impl<A, B, C, R> sealed::Sealed<(A, B, C), R> for fn(A, B, C) -> R
where
    A: DeserializeOwned,
    B: DeserializeOwned,
    C: DeserializeOwned,
    R: Serialize,
{
    #[allow(private_interfaces)]
    fn entry(self) -> EntryPoint {
        EntryPoint::for_fn3(self)
    }
}
impl<A, B, C, R> StarFn<(A, B, C), R> for fn(A, B, C) -> R
where
    A: DeserializeOwned,
    B: DeserializeOwned,
    C: DeserializeOwned,
    R: Serialize,
{
}

/// Per-call options: `chunksize`, a timeout, retries, a progress bar. Made by
/// [`Pool::options`]; ends with one of the verbs.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let pool = mproc::pool::Pool::new(2)?;
/// let squares = pool
///     .options()
///     .chunksize(10)
///     .timeout(Duration::from_secs(30))
///     .progress("squares")
///     .map(|x: u64| x * x, 0..100)?;
/// assert_eq!(squares[99], 9801);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct TaskOptions<'p> {
    pool: &'p Pool,
    chunksize: Option<usize>,
    timeout: Option<Duration>,
    retries: u32,
    progress: Option<String>,
    window: Option<usize>,
}

impl<'p> TaskOptions<'p> {
    /// How many items travel together (default: automatic for `map`, like
    /// Python's `len / (4 * processes)`; 1 for `imap`).
    ///
    /// # Examples
    ///
    /// See [`TaskOptions`].
    pub fn chunksize(mut self, n: usize) -> Self {
        self.chunksize = Some(n.max(1));
        self
    }

    /// The timeout of each task of this call (overrides the pool's default).
    ///
    /// # Examples
    ///
    /// See [`TaskOptions`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How many times a task lost with its worker is run again.
    ///
    /// # Examples
    ///
    /// See [`TaskOptions`].
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// Shows a progress bar labelled `label` on stderr (when it is a terminal),
    /// counting items, not chunks. Needs the `progress` feature (default) to draw.
    ///
    /// # Examples
    ///
    /// See [`TaskOptions`].
    pub fn progress(mut self, label: impl Into<String>) -> Self {
        self.progress = Some(label.into());
        self
    }

    /// For `imap`/`imap_unordered`: the most items taken from the input and not yet
    /// consumed (default `max(8192, 4 * processes * chunksize)`); this bounds memory
    /// for endless inputs.
    ///
    /// # Examples
    ///
    /// See [`TaskOptions`].
    pub fn window(mut self, n: usize) -> Self {
        self.window = Some(n.max(1));
        self
    }

    fn call(&self, entry: EntryPoint, sink: Arc<dyn Sink>) -> Arc<CallInfo> {
        Arc::new(CallInfo {
            entry,
            sink,
            timeout: self.timeout,
            retries: self.retries,
        })
    }

    fn submit_one<R>(&self, entry: EntryPoint, args: Result<Message, String>) -> Future<R>
    where
        R: DeserializeOwned + Send + 'static,
    {
        let args = match args {
            Ok(m) => m,
            Err(e) => {
                return Future::ready(
                    Err(TaskError::failed(
                        format!("cannot send the task's argument to a worker: {e}"),
                        Some(0),
                    )),
                    0,
                );
            }
        };
        let slot: Arc<Slot<R>> = Slot::new(0);
        let sink = Arc::new(OneSink {
            slot: Arc::clone(&slot),
        });
        let call = self.call(entry, sink);
        let item = Job {
            call,
            index: 0,
            args,
            attempts: 0,
            span: 1,
            chunk: false,
        };
        if self.pool.shared.push(vec![vec![item]]).is_err() {
            slot.complete(Err(TaskError::cancelled("the pool is closed", Some(0))));
        }
        Future::from_slot(slot)
    }

    /// [`Pool::apply`] with these options.
    ///
    /// # Errors
    ///
    /// As [`Pool::apply`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = mproc::pool::Pool::new(1)?;
    /// assert_eq!(pool.options().retries(2).apply(|x: u8| x + 1, 1)?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<R, TaskError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.apply_async(f, arg).get()
    }

    /// [`Pool::apply_async`] with these options.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = mproc::pool::Pool::new(1)?;
    /// let r = pool.options().timeout(Duration::from_millis(200)).apply_async(|s: u64| std::thread::sleep(Duration::from_secs(s)), 30);
    /// assert!(r.get().unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply_async<A, R>(&self, f: fn(A) -> R, arg: A) -> AsyncResult<R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let args = codec::encode(&arg).map_err(|e| e.to_string());
        AsyncResult {
            fut: self.submit_one(EntryPoint::for_fn(f), args),
        }
    }

    /// Submits `f` with an argument already encoded (the executor's `submit`).
    pub(crate) fn submit_encoded<A, R>(&self, f: fn(A) -> R, args: Message) -> Future<R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.submit_one(EntryPoint::for_fn(f), Ok(args))
    }

    fn map_sink(&self, mode: Mode, total: Option<usize>) -> Arc<MapSink> {
        let progress = self.progress.as_ref().map(|l| Progress::new(total, l));
        MapSink::new(mode, total, progress)
    }

    fn map_entry<A, R, I>(&self, entry: EntryPoint, items: I) -> MapResult<R>
    where
        A: Serialize,
        I: IntoIterator<Item = A>,
    {
        let items = items.into_iter();
        let n = match items.size_hint() {
            (lo, Some(hi)) if lo == hi => lo,
            _ => {
                let v: Vec<A> = items.collect();
                return self.map_entry(entry, v);
            }
        };
        let items = items.map(|a| codec::encode(&a).map_err(|e| e.to_string()));
        let chunksize = self
            .chunksize
            .unwrap_or_else(|| n.div_ceil(4 * self.pool.processes).max(1));
        // The total is set once the input is exhausted: a size hint may be wrong.
        let progress = self.progress.as_ref().map(|l| Progress::new(Some(n), l));
        let sink = MapSink::new(Mode::All, None, progress);
        let call = self.call(entry, Arc::clone(&sink) as Arc<dyn Sink>);
        let mut count = 0;
        let mut chunks: Vec<Chunk> = Vec::new();
        let mut closed = false;
        let mut chunk: Chunk = Vec::with_capacity(chunksize);
        for (index, args) in items.enumerate() {
            count += 1;
            match args {
                Ok(args) => chunk.push(Job {
                    call: Arc::clone(&call),
                    index,
                    args,
                    attempts: 0,
                    span: 1,
                    chunk: false,
                }),
                Err(reason) => {
                    let e = TaskError::failed(
                        format!("cannot send the task's argument to a worker: {reason}"),
                        Some(index),
                    );
                    return MapResult {
                        plain: results::no_plain,
                        sink,
                        early: Some(e),
                        _r: PhantomData,
                    };
                }
            }
            if chunk.len() == chunksize {
                chunks.push(std::mem::replace(&mut chunk, Vec::with_capacity(chunksize)));
                // Hand work over as it is encoded, so that workers start early.
                if chunks.len() * chunksize >= SUBMIT_SLICE
                    && self.pool.shared.push(std::mem::take(&mut chunks)).is_err()
                {
                    closed = true;
                    break;
                }
            }
        }
        if !chunk.is_empty() {
            chunks.push(chunk);
        }
        if !closed && !chunks.is_empty() && self.pool.shared.push(chunks).is_err() {
            closed = true;
        }
        sink.set_total(count);
        let early = closed.then(|| TaskError::cancelled("the pool is closed", None));
        MapResult {
            plain: results::no_plain,
            sink,
            early,
            _r: PhantomData,
        }
    }

    /// [`Pool::map`] with these options.
    ///
    /// # Errors
    ///
    /// As [`Pool::map`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = mproc::pool::Pool::new(2)?;
    /// assert_eq!(pool.options().chunksize(1).map(|x: u8| x * 2, [1, 2, 3])?, [2, 4, 6]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<Vec<R>, TaskError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        self.map_async(f, items).get()
    }

    /// [`Pool::map_async`] with these options.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = mproc::pool::Pool::new(2)?;
    /// let r = pool.options().chunksize(2).map_async(|x: u8| x * 2, [1, 2, 3]);
    /// assert_eq!(r.get()?, [2, 4, 6]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map_async<A, R, I>(&self, f: fn(A) -> R, items: I) -> MapResult<R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        let items: Vec<A> = items.into_iter().collect();
        let chunksize = self
            .chunksize
            .unwrap_or_else(|| items.len().div_ceil(4 * self.pool.processes).max(1));
        // A chunk runs in one call in the worker (one encode, one decode, no message
        // per task); a per-task timeout needs the tasks one by one.
        if chunksize > 1 && self.timeout.is_none() {
            self.map_chunked(f, items, chunksize)
        } else {
            self.map_entry(EntryPoint::for_fn(f), items)
        }
    }

    fn map_chunked<A, R>(&self, f: fn(A) -> R, items: Vec<A>, chunksize: usize) -> MapResult<R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let n = items.len();
        let progress = self.progress.as_ref().map(|l| Progress::new(Some(n), l));
        let sink = MapSink::new(Mode::All, None, progress);
        let entry = EntryPoint::for_fn_with::<A, R, worker::ChunkRunner>(f);
        let call = self.call(entry, Arc::clone(&sink) as Arc<dyn Sink>);
        let mut chunks: Vec<Chunk> = Vec::new();
        let mut closed = false;
        let mut index = 0;
        let mut queued = 0;
        // A slice encodes as the `Vec<A>` the worker decodes.
        for part in items.chunks(chunksize) {
            let span = part.len();
            let room = span.saturating_mul(std::mem::size_of::<A>().clamp(1, 16)) + 16;
            let mut bytes = Vec::new();
            let encoded = if plain::encode(&items, index..index + span, &mut bytes) {
                Ok(Message {
                    bytes,
                    fds: Vec::new(),
                })
            } else {
                codec::encode_with_capacity(part, room)
            };
            let args = match encoded {
                Ok(m) => m,
                Err(e) => {
                    let e = TaskError::failed(
                        format!("cannot send the tasks' arguments to a worker: {e}"),
                        Some(index),
                    );
                    return MapResult {
                        plain: plain::decode_into::<R>,
                        sink,
                        early: Some(e),
                        _r: PhantomData,
                    };
                }
            };
            chunks.push(vec![Job {
                call: Arc::clone(&call),
                index,
                args,
                attempts: 0,
                span,
                chunk: true,
            }]);
            index += span;
            queued += span;
            if queued >= SUBMIT_SLICE {
                queued = 0;
                if self.pool.shared.push(std::mem::take(&mut chunks)).is_err() {
                    closed = true;
                    break;
                }
            }
        }
        if !closed && !chunks.is_empty() && self.pool.shared.push(chunks).is_err() {
            closed = true;
        }
        sink.set_total(n);
        MapResult {
            plain: plain::decode_into::<R>,
            sink,
            early: closed.then(|| TaskError::cancelled("the pool is closed", None)),
            _r: PhantomData,
        }
    }

    /// [`Pool::starmap`] with these options.
    ///
    /// # Errors
    ///
    /// As [`Pool::map`].
    ///
    /// # Examples
    ///
    /// ```
    /// fn add(a: i32, b: i32) -> i32 { a + b }
    ///
    /// let pool = mproc::pool::Pool::new(2)?;
    /// let sums = pool.options().chunksize(1).starmap(add as fn(i32, i32) -> i32, [(1, 2), (3, 4)])?;
    /// assert_eq!(sums, [3, 7]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn starmap<Args, R, F, I>(&self, f: F, items: I) -> Result<Vec<R>, TaskError>
    where
        F: StarFn<Args, R>,
        Args: Serialize,
        R: DeserializeOwned,
        I: IntoIterator<Item = Args>,
    {
        self.map_entry(sealed::Sealed::entry(f), items).get()
    }

    fn feeder<'a, A, I>(&self, entry: EntryPoint, items: I, sink: &Arc<MapSink>) -> Feeder<'a>
    where
        A: Serialize + 'a,
        I: IntoIterator<Item = A> + 'a,
    {
        let chunksize = self.chunksize.unwrap_or(1);
        let window = self
            .window
            .unwrap_or_else(|| (4 * self.pool.processes * chunksize).max(8192))
            .max(chunksize);
        Feeder {
            input: Box::new(
                items
                    .into_iter()
                    .map(|a| codec::encode(&a).map_err(|e| e.to_string())),
            ),
            call: self.call(entry, Arc::clone(sink) as Arc<dyn Sink>),
            shared: Arc::clone(&self.pool.shared),
            chunksize,
            window,
            submitted: 0,
            exhausted: false,
        }
    }

    fn exact_len<I: IntoIterator>(items: &I::IntoIter) -> Option<usize> {
        match items.size_hint() {
            (lo, Some(hi)) if lo == hi => Some(lo),
            _ => None,
        }
    }

    /// [`Pool::imap`] with these options.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = mproc::pool::Pool::new(2)?;
    /// let v: Result<Vec<u32>, _> = pool.options().chunksize(4).imap(|x: u32| x + 1, 0..10).collect();
    /// assert_eq!(v?, (1..11).collect::<Vec<_>>());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn imap<'a, A, R, I>(&self, f: fn(A) -> R, items: I) -> IMap<'a, R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A> + 'a,
    {
        let items = items.into_iter();
        let total = Self::exact_len::<I>(&items);
        let sink = self.map_sink(Mode::Ordered, total);
        let feeder = self.feeder(EntryPoint::for_fn(f), items, &sink);
        IMap {
            sink,
            feeder,
            next: 0,
            _r: PhantomData,
        }
    }

    /// [`Pool::imap_unordered`] with these options.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = mproc::pool::Pool::new(2)?;
    /// let mut v: Vec<u32> = pool.options().chunksize(3).imap_unordered(|x: u32| x * 10, 0..5).map(Result::unwrap).collect();
    /// v.sort();
    /// assert_eq!(v, [0, 10, 20, 30, 40]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn imap_unordered<'a, A, R, I>(&self, f: fn(A) -> R, items: I) -> IMapUnordered<'a, R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A> + 'a,
    {
        let items = items.into_iter();
        let total = Self::exact_len::<I>(&items);
        let sink = self.map_sink(Mode::Unordered, total);
        let feeder = self.feeder(EntryPoint::for_fn(f), items, &sink);
        IMapUnordered {
            sink,
            feeder,
            consumed: 0,
            _r: PhantomData,
        }
    }
}

impl Pool {
    /// A pool of `n` workers with the default options (Python's `Pool(n)`).
    ///
    /// # Errors
    ///
    /// [`PoolError`] when a worker cannot be started.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = mproc::pool::Pool::new(2)?;
    /// assert_eq!(pool.worker_pids().len(), 2);
    /// # Ok::<(), mproc::pool::PoolError>(())
    /// ```
    pub fn new(n: usize) -> Result<Pool, PoolError> {
        Pool::builder().processes(n).build()
    }

    /// A [`Builder`] for a pool with more options.
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The number of worker processes.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(mproc::pool::Pool::new(1)?.processes(), 1);
    /// # Ok::<(), mproc::pool::PoolError>(())
    /// ```
    pub fn processes(&self) -> usize {
        self.processes
    }

    /// The pids of the live workers now (they change as workers are replaced).
    ///
    /// # Examples
    ///
    /// See [`Pool::new`].
    pub fn worker_pids(&self) -> Vec<u32> {
        self.shared.lock().pids.clone()
    }

    /// How many workers have been replaced so far (died, timed out or retired).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = mproc::pool::Pool::builder().processes(1).max_tasks_per_child(1).build()?;
    /// pool.map(|x: u8| x, [1, 2, 3])?;
    /// assert!(pool.replaced_workers() >= 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn replaced_workers(&self) -> u64 {
        self.shared.lock().replaced
    }

    /// Per-call options (chunksize, timeout, retries, progress bar); finish with a verb.
    ///
    /// # Examples
    ///
    /// See [`TaskOptions`].
    pub fn options(&self) -> TaskOptions<'_> {
        TaskOptions {
            pool: self,
            chunksize: None,
            timeout: self.timeout,
            retries: self.retries,
            progress: None,
            window: None,
        }
    }

    /// Runs `f(arg)` on a worker and waits for the result (Python's `apply`).
    ///
    /// # Errors
    ///
    /// [`TaskError`]: a panic, a lost worker, a timeout, a closed pool.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = mproc::pool::Pool::new(1)?;
    /// assert_eq!(pool.apply(|(a, b): (u32, u32)| a * b, (6, 7))?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<R, TaskError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.options().apply(f, arg)
    }

    /// Runs `f(arg)` on a worker without waiting (Python's `apply_async`).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = mproc::pool::Pool::new(2)?;
    /// let results: Vec<_> = (0..4u64).map(|i| pool.apply_async(|x: u64| x * x, i)).collect();
    /// let values: Vec<u64> = results.into_iter().map(|r| r.get().unwrap()).collect();
    /// assert_eq!(values, [0, 1, 4, 9]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply_async<A, R>(&self, f: fn(A) -> R, arg: A) -> AsyncResult<R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.options().apply_async(f, arg)
    }

    /// [`apply_async`](Pool::apply_async) with Python's `callback` and
    /// `error_callback`: one of them runs with the outcome, on the pool's dispatcher
    /// thread, as soon as the task finishes (on the calling thread, if it finished
    /// before this returns).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// let pool = mproc::pool::Pool::new(1)?;
    /// let (tx, rx) = mpsc::channel();
    /// let tx2 = tx.clone();
    /// let r = pool.apply_async_with_callbacks(
    ///     |x: u32| x + 1,
    ///     1,
    ///     move |v: &u32| tx.send(format!("ok {v}")).unwrap(),
    ///     move |e| tx2.send(format!("error {e}")).unwrap(),
    /// );
    /// assert_eq!(rx.recv()?, "ok 2");
    /// assert_eq!(r.get()?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply_async_with_callbacks<A, R>(
        &self,
        f: fn(A) -> R,
        arg: A,
        callback: impl FnOnce(&R) + Send + 'static,
        error_callback: impl FnOnce(&TaskError) + Send + 'static,
    ) -> AsyncResult<R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let r = self.apply_async(f, arg);
        r.fut.add_done_callback(move |outcome| match outcome {
            Ok(v) => callback(v),
            Err(e) => error_callback(e),
        });
        r
    }

    /// Runs `f` on every item and returns the results in order (Python's `map`),
    /// or the first error; the remaining tasks of the call are then cancelled.
    /// The chunk size is automatic; see [`TaskOptions::chunksize`].
    ///
    /// # Errors
    ///
    /// The first failed task's [`TaskError`] (by task index among those that failed).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = mproc::pool::Pool::new(2)?;
    /// let lens = pool.map(|s: String| s.len(), ["a", "bb", "ccc"].map(String::from))?;
    /// assert_eq!(lens, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<Vec<R>, TaskError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        self.options().map(f, items)
    }

    /// [`map`](Pool::map) without waiting (Python's `map_async`).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = mproc::pool::Pool::new(2)?;
    /// let pending = pool.map_async(|x: u64| x + 1, 0..4);
    /// assert_eq!(pending.get()?, [1, 2, 3, 4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map_async<A, R, I>(&self, f: fn(A) -> R, items: I) -> MapResult<R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        self.options().map_async(f, items)
    }

    /// Calls a two- or three-argument `f` with the fields of each tuple (Python's
    /// `starmap`). Name the function's type with `as fn(..) -> ..`.
    ///
    /// # Errors
    ///
    /// As [`map`](Pool::map).
    ///
    /// # Examples
    ///
    /// ```
    /// fn power(base: u64, exp: u32) -> u64 { base.pow(exp) }
    ///
    /// let pool = mproc::pool::Pool::new(2)?;
    /// let r = pool.starmap(power as fn(u64, u32) -> u64, [(2, 10), (3, 3)])?;
    /// assert_eq!(r, [1024, 27]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn starmap<Args, R, F, I>(&self, f: F, items: I) -> Result<Vec<R>, TaskError>
    where
        F: StarFn<Args, R>,
        Args: Serialize,
        R: DeserializeOwned,
        I: IntoIterator<Item = Args>,
    {
        self.options().starmap(f, items)
    }

    /// Results in input order, lazily (Python's `imap`, chunk size 1 by default).
    /// The input is read only as results are consumed (at most
    /// [`window`](TaskOptions::window) ahead), so an endless input is fine.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = mproc::pool::Pool::new(2)?;
    /// let first: Vec<u64> = pool.imap(|x: u64| x * x, 0..).take(3).map(Result::unwrap).collect();
    /// assert_eq!(first, [0, 1, 4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn imap<'a, A, R, I>(&self, f: fn(A) -> R, items: I) -> IMap<'a, R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A> + 'a,
    {
        self.options().imap(f, items)
    }

    /// Results as they finish (Python's `imap_unordered`); lazy like
    /// [`imap`](Pool::imap).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = mproc::pool::Pool::new(2)?;
    /// let total: u64 = pool.imap_unordered(|x: u64| x, 1..=10).map(Result::unwrap).sum();
    /// assert_eq!(total, 55);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn imap_unordered<'a, A, R, I>(&self, f: fn(A) -> R, items: I) -> IMapUnordered<'a, R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A> + 'a,
    {
        self.options().imap_unordered(f, items)
    }

    /// Stops accepting tasks (Python's `close`); queued tasks still run.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = mproc::pool::Pool::new(1)?;
    /// let r = pool.apply_async(|x: u8| x, 7);
    /// pool.close();
    /// assert!(pool.apply(|x: u8| x, 1).unwrap_err().is_cancelled());
    /// pool.join();
    /// assert_eq!(r.get()?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self) {
        self.shared.request_stop(Stop::Graceful);
    }

    /// Closes the pool if needed, waits for every queued task to finish and for
    /// the workers to exit (Python's `join`, which needs `close` first).
    ///
    /// # Examples
    ///
    /// See [`close`](Pool::close).
    pub fn join(&self) {
        self.close();
        let handle = self
            .dispatcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    /// Waits (at most `timeout`) until nothing is queued or running; `true` when idle.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = mproc::pool::Pool::new(1)?;
    /// let _r = pool.apply_async(|x: u8| x, 7);
    /// assert!(pool.wait_idle_timeout(Duration::from_secs(30)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_idle_timeout(&self, timeout: Duration) -> bool {
        let deadline = crate::deadline::after(timeout);
        let mut q = self.shared.lock();
        loop {
            if (q.pending.is_empty() && q.in_flight == 0) || q.finished {
                return true;
            }
            let now = Instant::now();
            let left = match deadline {
                Some(d) if now >= d => return false,
                Some(d) => d - now,
                None => Duration::MAX,
            };
            q = self
                .shared
                .cond
                .wait_timeout(q, left.min(Duration::from_millis(20)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Kills the workers now (Python's `terminate`): queued and running tasks fail
    /// as cancelled. Dropping the pool does the same.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = mproc::pool::Pool::new(1)?;
    /// let r = pool.apply_async(|s: u64| std::thread::sleep(Duration::from_secs(s)), 60);
    /// pool.terminate();
    /// assert!(r.get().unwrap_err().is_cancelled());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn terminate(&self) {
        self.shared
            .request_stop(Stop::Terminate("the pool was terminated"));
        self.join();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }

    /// Fails every queued task (not the running ones) as cancelled.
    pub(crate) fn cancel_pending(&self) {
        self.shared.cancel_pending("cancelled by shutdown");
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.terminate();
    }
}

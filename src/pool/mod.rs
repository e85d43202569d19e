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
//! worker several chunks per message (about 2 ms of work and at most 96 KB of
//! arguments, at most two batches in flight per worker; one task at a time while
//! tasks are slow or not yet measured), so even `chunksize = 1` costs no system call
//! per task. Each worker is handed its share of all the work not yet finished, so
//! the end of a call is spread over every worker, however many there are for the
//! CPUs. `map` with a chunk size
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
//! - **Callbacks** ([`Pool::apply_async_with_callbacks`],
//!   [`MapResult::with_callbacks`], done-callbacks) run on the pool's dispatcher
//!   thread: keep them short.

mod builder;
mod dispatcher;
mod error;
mod frames;
mod imap;
mod insights;
mod interrupt;
mod link;
mod memory;
mod options;
mod plain;
mod progress;
mod results;
mod sink;
mod state;
mod worker;
mod worker_options;
mod worker_state;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::task::TaskError;
pub use builder::Builder;
pub use error::{PoolError, SubmitError};
pub use imap::{IMap, IMapUnordered};
pub use insights::{Insights, WorkerInsights};
pub use options::TaskOptions;
pub use results::{AsyncResult, MapResult};

use crate::pool::state::{PoolState, Stop};
#[cfg(doc)]
use crate::process::StartMethod;
use crate::sys::code::EntryPoint;

/// A pool of worker processes. See the [module docs](self).
///
/// `Pool` is `Send + Sync`: share it between threads by reference or in an `Arc`.
pub struct Pool {
    pub(super) state: Arc<PoolState>,
    pub(super) dispatcher: Mutex<Option<JoinHandle<()>>>,
    pub(super) processes: usize,
    pub(super) timeout: Option<Duration>,
    pub(super) retries: u32,
    pub(super) _ctrl_c: Option<interrupt::Registration>,
    pub(super) recorder: Arc<insights::Recorder>,
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
        self.state.lock().pids.clone()
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
        self.state.lock().replaced
    }

    /// Per-call options (chunksize, timeout, retries, progress bar); finish with a verb.
    ///
    /// # Examples
    ///
    /// See [`TaskOptions`].
    pub fn options(&self) -> TaskOptions<'_> {
        TaskOptions::new(self)
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

    /// [`map_async`](Pool::map_async) with Python's `callback` and
    /// `error_callback` (see [`MapResult::with_callbacks`]): `callback` gets every
    /// result, in order, or `error_callback` the first error, on the pool's
    /// dispatcher thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// let pool = mproc::pool::Pool::new(2)?;
    /// let (tx, rx) = mpsc::channel();
    /// let _r = pool.map_async_with_callbacks(
    ///     |x: u64| x + 1,
    ///     0..4,
    ///     move |v: &[u64]| tx.send(v.to_vec()).unwrap(),
    ///     |e| eprintln!("{e}"),
    /// );
    /// assert_eq!(rx.recv()?, [1, 2, 3, 4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map_async_with_callbacks<A, R, I>(
        &self,
        f: fn(A) -> R,
        items: I,
        callback: impl FnOnce(&[R]) + Send + 'static,
        error_callback: impl FnOnce(&TaskError) + Send + 'static,
    ) -> MapResult<R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        self.map_async(f, items)
            .with_callbacks(callback, error_callback)
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

    /// [`starmap`](Pool::starmap) without waiting (Python's `starmap_async`).
    ///
    /// # Examples
    ///
    /// ```
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// let pool = mproc::pool::Pool::new(2)?;
    /// let pending = pool.starmap_async(add as fn(u64, u64) -> u64, [(1, 2), (3, 4)]);
    /// assert_eq!(pending.get()?, [3, 7]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn starmap_async<Args, R, F, I>(&self, f: F, items: I) -> MapResult<R>
    where
        F: StarFn<Args, R>,
        Args: Serialize,
        R: DeserializeOwned,
        I: IntoIterator<Item = Args>,
    {
        self.options().starmap_async(f, items)
    }

    /// [`starmap_async`](Pool::starmap_async) with Python's `callback` and
    /// `error_callback`, as [`map_async_with_callbacks`](Pool::map_async_with_callbacks).
    ///
    /// # Examples
    ///
    /// See [`MapResult::with_callbacks`].
    pub fn starmap_async_with_callbacks<Args, R, F, I>(
        &self,
        f: F,
        items: I,
        callback: impl FnOnce(&[R]) + Send + 'static,
        error_callback: impl FnOnce(&TaskError) + Send + 'static,
    ) -> MapResult<R>
    where
        F: StarFn<Args, R>,
        Args: Serialize,
        R: DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = Args>,
    {
        self.starmap_async(f, items)
            .with_callbacks(callback, error_callback)
    }

    /// Results in input order, lazily (Python's `imap`, chunk size 1 by default).
    /// The input is read only as results are consumed (at most
    /// [`window`](TaskOptions::window) ahead), so an endless input is fine. A
    /// panic in the input ends it: the results of the items before it come
    /// first, then one error that carries the panic's message, then the end.
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
        self.state.request_stop(Stop::Graceful);
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
        let mut q = self.state.lock();
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
                .state
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
        self.state
            .request_stop(Stop::Terminate("the pool was terminated"));
        self.join();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Fails every queued task (not the running ones) as cancelled.
    pub(crate) fn cancel_pending(&self) {
        self.state.cancel_pending("cancelled by shutdown");
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.terminate();
    }
}

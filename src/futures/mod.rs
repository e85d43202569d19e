//! `concurrent.futures` for Rust: one [`Executor`] trait, a process-backed and a
//! thread-backed executor, [`Future`]s that can be waited on, polled, called back
//! or `.await`ed, and [`as_completed`] and [`wait`].
//!
//! ```
//! use mproc::futures::{as_completed, Executor, ProcessPoolExecutor, ThreadPoolExecutor};
//!
//! fn fib(n: u32) -> u64 {
//!     if n < 2 { n as u64 } else { fib(n - 1) + fib(n - 2) }
//! }
//!
//! fn run(ex: &impl Executor) -> u64 {
//!     let futures: Vec<_> = (20..24).map(|n| ex.submit(fib, n).unwrap()).collect();
//!     as_completed(futures).map(|f| f.result().unwrap()).sum()
//! }
//!
//! // One line switches between processes and threads.
//! assert_eq!(run(&ProcessPoolExecutor::new(2)?), 6765 + 10946 + 17711 + 28657);
//! assert_eq!(run(&ThreadPoolExecutor::new(2)?), 6765 + 10946 + 17711 + 28657);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Pick [`ThreadPoolExecutor`] for I/O-bound work and for tasks that need the
//! caller's memory; [`ProcessPoolExecutor`] for CPU-bound work, isolation (a crash or
//! a hang in a task cannot take the caller down) and per-task timeouts. The
//! process executor runs on a [`Pool`](crate::pool::Pool); use the pool directly
//! for Python's `Pool` verbs.
//!
//! Unlike Python's `ProcessPoolExecutor`, a worker that dies does not break the
//! executor (`BrokenProcessPool`): only the task it ran fails.
//!
//! # Caveats
//!
//! - **Drop** of an executor is `shutdown(wait = true)`: queued tasks still run.
//! - **Callbacks** run on the thread that finishes the task: keep them short.
//! - A thread executor cannot stop a running task; `cancel` only stops queued ones,
//!   as in Python. Timeouts that kill a task need the process executor.
//! - **Ctrl-C** and **parent death**: see the [`pool`](crate::pool) docs.

mod process;
mod thread;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::pool::SubmitError;
pub use crate::task::{Future, NotDone, ResultTimeoutError, TaskError};
pub use process::ProcessPoolExecutor;
pub use thread::ThreadPoolExecutor;

use crate::pool::IMap;

/// What executors have in common: Python's `concurrent.futures.Executor`.
///
/// Generic code over `impl Executor` runs on threads or processes unchanged.
pub trait Executor {
    /// Schedules `f(arg)` and returns its [`Future`].
    ///
    /// # Errors
    ///
    /// [`SubmitError::Closed`] after [`shutdown`](Executor::shutdown);
    /// [`SubmitError::Encode`] when the argument cannot be serialized (processes).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::futures::{Executor, ThreadPoolExecutor};
    ///
    /// let ex = ThreadPoolExecutor::new(1)?;
    /// assert_eq!(ex.submit(|x: u8| x + 1, 1)?.result()?, 2);
    /// ex.shutdown(true, false);
    /// assert!(ex.submit(|x: u8| x, 1).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn submit<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<Future<R>, SubmitError>
    where
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static;

    /// Runs `f` on every item; the iterator yields the results in input order
    /// (Python's `Executor.map`). Every item is submitted at once, so the calls
    /// run whether or not the iterator is read. With a `timeout`, a result not
    /// ready `timeout` after this call yields one error with
    /// [`TaskError::is_timeout`], the remaining calls are cancelled and the
    /// iteration ends (Python raises `TimeoutError` there), on every executor.
    /// `chunksize` groups items on processes (ignored by threads).
    ///
    /// # Errors
    ///
    /// As [`submit`](Executor::submit).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::futures::{Executor, ThreadPoolExecutor};
    ///
    /// let ex = ThreadPoolExecutor::new(2)?;
    /// let out: Vec<u32> = ex.map(|x: u32| x * 2, 0..4, None, 1)?.map(Result::unwrap).collect();
    /// assert_eq!(out, [0, 2, 4, 6]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn map<'a, A, R, I>(
        &'a self,
        f: fn(A) -> R,
        items: I,
        timeout: Option<Duration>,
        chunksize: usize,
    ) -> Result<MapIter<'a, R>, SubmitError>
    where
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        let _ = chunksize;
        let futures = items
            .into_iter()
            .map(|a| self.submit(f, a))
            .collect::<Result<VecDeque<_>, _>>()?;
        Ok(MapIter {
            inner: MapInner::Futures(futures),
            deadline: timeout.and_then(|t| crate::deadline::after(t).map(|d| (d, t))),
            next: 0,
            expired: false,
        })
    }

    /// Stops accepting tasks (Python's `shutdown`). With `cancel_futures`, queued
    /// tasks are cancelled (their futures report [`Future::cancelled`] and fail
    /// with [`TaskError::is_cancelled`]); with `wait`, returns once every running task
    /// has finished and the workers are gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::futures::{Executor, ThreadPoolExecutor};
    ///
    /// let ex = ThreadPoolExecutor::new(1)?;
    /// let fut = ex.submit(|x: u8| x, 1)?;
    /// ex.shutdown(true, false);
    /// assert_eq!(fut.result()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn shutdown(&self, wait: bool, cancel_futures: bool);
}

pub(crate) enum MapInner<'a, R> {
    Futures(VecDeque<Future<R>>),
    Pool(IMap<'a, R>),
}

/// The iterator of [`Executor::map`]: results in input order.
pub struct MapIter<'a, R> {
    pub(crate) inner: MapInner<'a, R>,
    pub(crate) deadline: Option<(Instant, Duration)>,
    pub(crate) next: usize,
    pub(crate) expired: bool,
}

impl<R> std::fmt::Debug for MapIter<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapIter").field("next", &self.next).finish()
    }
}

impl<R> MapIter<'_, R> {
    /// The next result, waiting until the map's deadline at most.
    fn next_within(&mut self) -> Option<Result<R, TaskError>>
    where
        R: DeserializeOwned,
    {
        let deadline = self.deadline.map(|(at, _)| at);
        match &mut self.inner {
            MapInner::Futures(q) => {
                let fut = q.pop_front()?;
                Some(match fut.result_until(deadline) {
                    Ok(v) => Ok(v),
                    Err(ResultTimeoutError::Failed(e)) => Err(e),
                    Err(ResultTimeoutError::Timeout(fut)) => {
                        fut.cancel();
                        Err(TaskError::wait_timeout(Duration::ZERO, None))
                    }
                })
            }
            MapInner::Pool(it) => match deadline {
                None => it.next(),
                Some(at) => it.next_timeout(at.saturating_duration_since(Instant::now())),
            },
        }
    }

    /// Cancels every call not yet yielded.
    fn cancel_rest(&mut self) {
        match &mut self.inner {
            MapInner::Futures(q) => {
                for f in q.drain(..) {
                    f.cancel();
                }
            }
            MapInner::Pool(it) => it.cancel(),
        }
    }
}

impl<R: DeserializeOwned> Iterator for MapIter<'_, R> {
    type Item = Result<R, TaskError>;

    /// After the map's deadline passes, yields one timeout error and ends (as
    /// Python's `Executor.map` raises `TimeoutError` and ends); the calls not yet
    /// yielded are cancelled.
    fn next(&mut self) -> Option<Self::Item> {
        if self.expired {
            return None;
        }
        let i = self.next;
        let out = match self.next_within()? {
            // A wait that ran out (not a task killed at its own timeout).
            Err(e) if e.is_timeout() && e.worker_pid().is_none() => {
                self.expired = true;
                self.cancel_rest();
                let span = self.deadline.map_or(Duration::ZERO, |d| d.1);
                Err(TaskError::wait_timeout(span, Some(i)))
            }
            r => r,
        };
        self.next += 1;
        Some(out)
    }
}

struct ThreadWaker {
    thread: std::thread::Thread,
    woken: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// Waits until one of `pending` is done or `deadline`; returns its position.
fn wait_any<T>(pending: &[Future<T>], deadline: Option<Instant>) -> Option<usize> {
    let tw = Arc::new(ThreadWaker {
        thread: std::thread::current(),
        woken: AtomicBool::new(false),
    });
    let waker = Waker::from(Arc::clone(&tw));
    loop {
        if let Some(i) = pending.iter().position(|f| f.done()) {
            return Some(i);
        }
        if pending.is_empty() {
            return None;
        }
        tw.woken.store(false, Ordering::Release);
        for f in pending {
            if f.register_waker(&waker) {
                tw.woken.store(true, Ordering::Release);
            }
        }
        if pending.iter().any(|f| f.done()) {
            continue;
        }
        match deadline {
            None => {
                while !tw.woken.load(Ordering::Acquire) {
                    std::thread::park();
                }
            }
            Some(d) => {
                while !tw.woken.load(Ordering::Acquire) {
                    let now = Instant::now();
                    if now >= d {
                        return None;
                    }
                    std::thread::park_timeout(d - now);
                }
            }
        }
    }
}

/// The iterator of [`as_completed`]: futures in the order they finish.
pub struct AsCompleted<T> {
    pending: Vec<Future<T>>,
    deadline: Option<Instant>,
}

impl<T> std::fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsCompleted")
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl<T> AsCompleted<T> {
    /// The futures not yielded yet (after a timeout ended the iteration).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::futures::{as_completed_timeout, Executor, ThreadPoolExecutor};
    ///
    /// let ex = ThreadPoolExecutor::new(1)?;
    /// let slow = ex.submit(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), 300)?;
    /// let mut it = as_completed_timeout(vec![slow], Duration::from_millis(1));
    /// assert!(it.next().is_none());
    /// let rest = it.into_remaining();
    /// assert_eq!(rest.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_remaining(self) -> Vec<Future<T>> {
        self.pending
    }
}

impl<T> Iterator for AsCompleted<T> {
    type Item = Future<T>;

    fn next(&mut self) -> Option<Future<T>> {
        let i = wait_any(&self.pending, self.deadline)?;
        Some(self.pending.swap_remove(i))
    }
}

/// Yields the futures as they finish (Python's `as_completed`).
///
/// # Examples
///
/// ```
/// use mproc::futures::{as_completed, Executor, ThreadPoolExecutor};
///
/// let ex = ThreadPoolExecutor::new(2)?;
/// let futures: Vec<_> = (0..5u64).map(|i| ex.submit(|x: u64| x * x, i).unwrap()).collect();
/// let mut squares: Vec<u64> = as_completed(futures).map(|f| f.result().unwrap()).collect();
/// squares.sort();
/// assert_eq!(squares, [0, 1, 4, 9, 16]);
/// # Ok::<(), mproc::pool::PoolError>(())
/// ```
pub fn as_completed<T>(futures: impl IntoIterator<Item = Future<T>>) -> AsCompleted<T> {
    AsCompleted {
        pending: futures.into_iter().collect(),
        deadline: None,
    }
}

/// [`as_completed`] that stops yielding `timeout` after the call (Python's
/// `as_completed(fs, timeout)`, which raises there); the rest are in
/// [`AsCompleted::into_remaining`].
///
/// # Examples
///
/// See [`AsCompleted::into_remaining`].
pub fn as_completed_timeout<T>(
    futures: impl IntoIterator<Item = Future<T>>,
    timeout: Duration,
) -> AsCompleted<T> {
    AsCompleted {
        pending: futures.into_iter().collect(),
        deadline: crate::deadline::after(timeout),
    }
}

/// When [`wait`] returns (Python's `FIRST_COMPLETED`, `FIRST_EXCEPTION`,
/// `ALL_COMPLETED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReturnWhen {
    /// As soon as any future finishes.
    #[doc(alias = "FIRST_COMPLETED")]
    FirstCompleted,
    /// As soon as any future fails, or when all are finished.
    #[doc(alias = "FIRST_EXCEPTION")]
    FirstException,
    /// When all are finished (the default).
    #[default]
    #[doc(alias = "ALL_COMPLETED")]
    AllCompleted,
}

pub use ReturnWhen::{
    AllCompleted as ALL_COMPLETED, FirstCompleted as FIRST_COMPLETED,
    FirstException as FIRST_EXCEPTION,
};

/// What [`wait`] returns: Python's `DoneAndNotDoneFutures`.
#[derive(Debug)]
pub struct Waited<T> {
    /// The finished futures.
    pub done: Vec<Future<T>>,
    /// The others.
    pub not_done: Vec<Future<T>>,
}

/// Waits for futures until `return_when` is met or `timeout` passes (Python's
/// `concurrent.futures.wait`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mproc::futures::{wait, Executor, ReturnWhen, ThreadPoolExecutor};
///
/// let ex = ThreadPoolExecutor::new(2)?;
/// let quick = ex.submit(|x: u64| x, 1)?;
/// let slow = ex.submit(|ms: u64| { std::thread::sleep(Duration::from_millis(ms)); ms }, 500)?;
/// let w = wait(vec![quick, slow], None, ReturnWhen::FirstCompleted);
/// assert!(!w.done.is_empty());
/// let all = wait(w.done.into_iter().chain(w.not_done), Some(Duration::from_secs(30)), ReturnWhen::AllCompleted);
/// assert_eq!(all.done.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn wait<T>(
    futures: impl IntoIterator<Item = Future<T>>,
    timeout: Option<Duration>,
    return_when: ReturnWhen,
) -> Waited<T> {
    let deadline = timeout.and_then(crate::deadline::after);
    let mut pending: Vec<Future<T>> = futures.into_iter().collect();
    let mut done = Vec::new();
    loop {
        let mut k = 0;
        while k < pending.len() {
            if pending[k].done() {
                done.push(pending.swap_remove(k));
            } else {
                k += 1;
            }
        }
        let satisfied = match return_when {
            ReturnWhen::FirstCompleted => !done.is_empty(),
            ReturnWhen::FirstException => {
                // A future that raised, not one that was cancelled (Python's rule).
                pending.is_empty()
                    || done
                        .iter()
                        .any(|f: &Future<T>| !f.cancelled() && f.error().is_some())
            }
            ReturnWhen::AllCompleted => pending.is_empty(),
        };
        if satisfied || pending.is_empty() {
            break;
        }
        if wait_any(&pending, deadline).is_none() {
            break;
        }
    }
    Waited {
        done,
        not_done: pending,
    }
}

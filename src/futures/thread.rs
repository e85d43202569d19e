//! The thread-backed executor.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once};
use std::thread::JoinHandle;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::futures::{Executor, SubmitError};
use crate::pool::PoolError;
use crate::task::slot::Slot;
use crate::task::{Future, TaskError, panic_message};

struct Job {
    run: Box<dyn FnOnce() + Send>,
    cancel: Box<dyn FnOnce() + Send>,
}

struct Queue {
    jobs: VecDeque<Job>,
    shutdown: bool,
}

struct Inner {
    queue: Mutex<Queue>,
    cond: Condvar,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A caught panic: message, location, backtrace.
type Caught = (String, Option<String>, String);

thread_local! {
    /// `Some` while an executor task runs on this thread; `Some(Some(..))` once it panicked.
    static IN_TASK: RefCell<Option<Option<Caught>>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that records panics of executor tasks (message,
/// location, backtrace) instead of printing them, and leaves every other panic to
/// the previous hook.
fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_task = IN_TASK.with(|t| t.borrow().is_some());
            if !in_task {
                return previous(info);
            }
            let message = panic_message(info.payload());
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            let backtrace = std::backtrace::Backtrace::force_capture().to_string();
            IN_TASK.with(|t| *t.borrow_mut() = Some(Some((message, location, backtrace))));
        }));
    });
}

fn run_task<A, R>(f: fn(A) -> R, arg: A) -> Result<R, TaskError> {
    IN_TASK.with(|t| *t.borrow_mut() = Some(None));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(arg)));
    let caught = IN_TASK.with(|t| t.borrow_mut().take()).flatten();
    r.map_err(|payload| {
        let (message, location, backtrace) =
            caught.unwrap_or_else(|| (panic_message(payload.as_ref()), None, String::new()));
        TaskError::panicked(message, location, backtrace, Some(0))
    })
}

/// An executor on a fixed set of threads: Python's `ThreadPoolExecutor`, with the
/// same API as [`ProcessPoolExecutor`](crate::futures::ProcessPoolExecutor).
///
/// Tasks are `fn(A) -> R` like everywhere in mproc (so that switching executors is
/// one line); arguments are moved, never serialized.
///
/// # Examples
///
/// ```
/// use mproc::futures::{Executor, ThreadPoolExecutor};
///
/// let ex = ThreadPoolExecutor::new(4)?;
/// let lens: Vec<usize> = ex
///     .map(|s: String| s.len(), ["a", "bb"].map(String::from), None, 1)?
///     .map(Result::unwrap)
///     .collect();
/// assert_eq!(lens, [1, 2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ThreadPoolExecutor {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    n: usize,
}

impl std::fmt::Debug for ThreadPoolExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPoolExecutor")
            .field("threads", &self.n)
            .finish()
    }
}

impl ThreadPoolExecutor {
    /// An executor with `n` threads (Python's `max_workers`).
    ///
    /// # Errors
    ///
    /// [`PoolError::Invalid`] when `n` is 0 (Python raises `ValueError`);
    /// [`PoolError::Io`] when a thread cannot be started.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = mproc::futures::ThreadPoolExecutor::new(2)?;
    /// assert_eq!(ex.max_workers(), 2);
    /// assert!(mproc::futures::ThreadPoolExecutor::new(0).is_err());
    /// # Ok::<(), mproc::pool::PoolError>(())
    /// ```
    pub fn new(n: usize) -> Result<ThreadPoolExecutor, PoolError> {
        if n == 0 {
            return Err(PoolError::Invalid("max_workers must be at least 1, not 0"));
        }
        install_hook();
        let inner = Arc::new(Inner {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                shutdown: false,
            }),
            cond: Condvar::new(),
        });
        let ex = ThreadPoolExecutor {
            inner,
            threads: Mutex::new(Vec::with_capacity(n)),
            n,
        };
        for i in 0..n {
            let inner = Arc::clone(&ex.inner);
            let thread = std::thread::Builder::new()
                .name(format!("mproc-executor-{i}"))
                .spawn(move || worker(inner))
                // Dropping `ex` stops the threads already started.
                .map_err(|source| PoolError::Io {
                    what: "executor thread",
                    source,
                })?;
            ex.threads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(thread);
        }
        Ok(ex)
    }

    /// The number of threads.
    ///
    /// # Examples
    ///
    /// See [`new`](ThreadPoolExecutor::new).
    pub fn max_workers(&self) -> usize {
        self.n
    }
}

fn worker(inner: Arc<Inner>) {
    loop {
        let job = {
            let mut q = inner.lock();
            loop {
                if let Some(j) = q.jobs.pop_front() {
                    break j;
                }
                if q.shutdown {
                    return;
                }
                q = inner.cond.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        (job.run)();
    }
}

impl Executor for ThreadPoolExecutor {
    fn submit<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<Future<R>, SubmitError>
    where
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let slot: Arc<Slot<R>> = Slot::new(0);
        let run_slot = Arc::clone(&slot);
        let cancel_slot = Arc::clone(&slot);
        let job = Job {
            run: Box::new(move || {
                if run_slot.set_running() {
                    run_slot.complete(run_task(f, arg));
                }
            }),
            cancel: Box::new(move || {
                cancel_slot.abandon(TaskError::cancelled("cancelled by shutdown", Some(0)));
            }),
        };
        {
            let mut q = self.inner.lock();
            if q.shutdown {
                return Err(SubmitError::Closed);
            }
            q.jobs.push_back(job);
        }
        self.inner.cond.notify_one();
        Ok(Future::from_slot(slot))
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        let cancelled: Vec<Job> = {
            let mut q = self.inner.lock();
            q.shutdown = true;
            if cancel_futures {
                q.jobs.drain(..).collect()
            } else {
                Vec::new()
            }
        };
        self.inner.cond.notify_all();
        for job in cancelled {
            (job.cancel)();
        }
        if wait {
            let threads: Vec<_> = self
                .threads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain(..)
                .collect();
            for t in threads {
                let _ = t.join();
            }
        }
    }
}

impl Drop for ThreadPoolExecutor {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

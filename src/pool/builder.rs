//! [`Builder`]: the options a [`Pool`] is built with.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::pool::dispatcher::{self, Dispatcher, WorkerSpec};
use crate::pool::interrupt;
use crate::pool::state::PoolState;
use crate::pool::{Pool, PoolError};
use crate::process::StartMethod;
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
    pub(super) options: super::worker_options::WorkerOptions,
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
            options: super::worker_options::WorkerOptions::default(),
        }
    }
}

impl Builder {
    /// The number of worker processes (default: [`cpu_count`](crate::process::cpu_count)).
    /// At least 1: [`build`](Builder::build) fails with [`PoolError::Invalid`] on 0
    /// (Python raises `ValueError`).
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    pub fn processes(&mut self, n: usize) -> &mut Self {
        self.processes = Some(n);
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
    /// chunk of a `map` counts as one task. At least 1: [`build`](Builder::build)
    /// fails with [`PoolError::Invalid`] on 0.
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    pub fn max_tasks_per_child(&mut self, n: u64) -> &mut Self {
        self.max_tasks = Some(n);
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
    /// has its worker killed and fails with [`TaskError::is_timeout`](crate::pool::TaskError::is_timeout).
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
    /// [`PoolError::Invalid`] for 0 processes or 0 tasks per child; another
    /// [`PoolError`] when a worker cannot be started or its initializer fails.
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    pub fn build(&self) -> Result<Pool, PoolError> {
        if self.processes == Some(0) {
            return Err(PoolError::Invalid("processes must be at least 1, not 0"));
        }
        if self.max_tasks == Some(0) {
            return Err(PoolError::Invalid(
                "max_tasks_per_child must be at least 1, not 0",
            ));
        }
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
            state: shared,
            dispatcher: Mutex::new(Some(handle)),
            processes: n,
            timeout: self.timeout,
            retries: self.retries,
            _ctrl_c: registration,
            recorder,
        })
    }
}

//! What the pool's builder sets about seeing inside its workers and bounding
//! them: log forwarding (see [`observe`](crate::observe)) and memory limits. Kept
//! apart from the builder's other options; [`Builder`]'s setters for them are
//! here.

use std::sync::Arc;

use crate::pool::Builder;
use crate::pool::insights::Recorder;
use crate::sys::code::EntryPoint;
use crate::task::Kind;

/// The workers' observation options, carried from the builder to every worker
/// start.
#[derive(Clone, Debug)]
pub(crate) struct WorkerOptions {
    pub(crate) forward_logs: bool,
    /// Whether workers' output is captured (kept, bounded) or passed through
    /// prefixed; either way failed tasks carry their stderr's last lines.
    pub(crate) capture_output: bool,
    pub(crate) prefix_output: bool,
    /// The hard limit of each worker's memory (bytes).
    pub(crate) memory_limit: Option<u64>,
    /// The resident size after which a worker is retired (bytes).
    pub(crate) max_memory: Option<u64>,
    /// Whether workers measure their times for the insights.
    pub(crate) insights: bool,
    /// The pool's insights (a fresh one for each pool built).
    pub(crate) recorder: Arc<Recorder>,
    /// What makes each worker's state (`Builder::worker_state`), or why it
    /// cannot travel.
    pub(crate) state_init: Option<Result<(EntryPoint, Vec<u8>), String>>,
}

/// What a pool keeps of each worker's captured output, per stream.
const WORKER_CAPTURE_LIMIT: usize = 1 << 20;

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            forward_logs: true,
            capture_output: false,
            prefix_output: false,
            memory_limit: None,
            max_memory: None,
            insights: true,
            recorder: Recorder::new(true),
            state_init: None,
        }
    }
}

impl WorkerOptions {
    /// The options for one pool about to be built, with its own insights.
    pub(crate) fn for_pool(&self) -> WorkerOptions {
        WorkerOptions {
            recorder: Recorder::new(self.insights),
            ..self.clone()
        }
    }

    /// Applies the options to the process builder of a worker.
    pub(crate) fn configure(&self, builder: &mut crate::process::Builder) {
        builder.forward_logs(self.forward_logs);
        builder.capture_output(self.capture_output);
        builder.capture_limit(WORKER_CAPTURE_LIMIT);
        builder.prefix_output(self.prefix_output);
        if let Some(limit) = self.memory_limit {
            builder.memory_limit(limit);
        }
    }

    /// What a worker lost mid-task failed with: out of memory when an allocation
    /// failed under its hard limit, else the worker's death.
    pub(crate) fn lost_kind(
        worker: &mut crate::process::Process<()>,
        status: crate::process::ExitStatus,
        attempts: u32,
    ) -> Kind {
        match worker.memory_limit() {
            Some(limit) if worker.ran_out_of_memory() => Kind::OutOfMemory(limit),
            _ => Kind::WorkerLost { status, attempts },
        }
    }
}

impl Builder {
    /// Whether the workers' `log` records are handed to this process's logger,
    /// tagged with the worker's name and pid and the task's index (default
    /// `true`; see [`observe`](crate::observe)).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::pool::Pool;
    ///
    /// let pool = Pool::builder().processes(1).forward_logs(false).build()?;
    /// assert_eq!(pool.apply(|x: u8| { log::info!("stays in the worker"); x }, 3)?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn forward_logs(&mut self, on: bool) -> &mut Self {
        self.options.forward_logs = on;
        self
    }

    /// Collects each worker's stdout and stderr instead of sharing this
    /// process's (default `false`): nothing is shown, each worker's output is
    /// read as it comes (a worker never waits to print) and kept bounded (1 MiB),
    /// and a task that fails carries the last lines its worker wrote to stderr
    /// ([`TaskError::stderr_tail`](crate::pool::TaskError::stderr_tail)).
    ///
    /// # Examples
    ///
    /// See [`TaskError::stderr_tail`](crate::pool::TaskError::stderr_tail).
    pub fn capture_output(&mut self, on: bool) -> &mut Self {
        self.options.capture_output = on;
        self
    }

    /// Passes each worker's stdout and stderr through to this process's, each
    /// line prefixed with the worker's name (`[PoolWorker-1] ...`; default
    /// `false`); a task that fails carries the last lines its worker wrote to
    /// stderr, as with [`capture_output`](Builder::capture_output).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::pool::Pool;
    ///
    /// let pool = Pool::builder().processes(1).prefix_output(true).build()?;
    /// // Prints "[PoolWorker-0] working on 7".
    /// assert_eq!(pool.apply(|x: u8| { println!("working on {x}"); x }, 7)?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prefix_output(&mut self, on: bool) -> &mut Self {
        self.options.prefix_output = on;
        self
    }

    /// Whether workers measure how they spend their time for
    /// [`Pool::insights`](crate::pool::Pool::insights) (default `true`: a few
    /// clock reads and one small message per batch of tasks). Off, the insights
    /// still count tasks' workers' starts, recycles, crashes and timeouts, and
    /// nothing else.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::pool::Pool;
    ///
    /// let pool = Pool::builder().processes(1).insights(false).build()?;
    /// pool.map(|x: u8| x, [1, 2, 3])?;
    /// let insights = pool.insights();
    /// assert!(!insights.measured);
    /// assert_eq!(insights.total.tasks, 0);
    /// assert_eq!(insights.total.starts, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insights(&mut self, on: bool) -> &mut Self {
        self.options.insights = on;
        self
    }

    /// Retires a worker after the task during which its resident memory passed
    /// `bytes` (billiard's `max_memory_per_child`): the task's result comes back,
    /// the worker exits and a fresh one takes its place. A cure for tasks that
    /// leak or fragment memory, checked after every task (a chunk of a `map`
    /// counts as one task) at the cost of one `getrusage`.
    ///
    /// What counts is the worker's peak resident size (`ru_maxrss`); a `Fork`
    /// worker that starts above `bytes` (a copy of a large parent) is measured by
    /// its current resident size instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::pool::Pool;
    ///
    /// let pool = Pool::builder().processes(1).max_memory_per_child(64 << 20).build()?;
    /// let pid = pool.worker_pids()[0];
    /// // Touches 128 MiB: its worker is retired after it.
    /// let used = pool.apply(|n: usize| { let v = vec![1u8; n]; v.iter().map(|b| *b as usize).sum::<usize>() }, 128 << 20)?;
    /// assert_eq!(used, 128 << 20);
    /// assert!(pool.options().apply(|_: ()| std::process::id(), ())? != pid);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_memory_per_child(&mut self, bytes: u64) -> &mut Self {
        self.options.max_memory = Some(bytes);
        self
    }

    /// A hard limit on each worker's memory, in bytes (see
    /// [`process::Builder::memory_limit`](crate::process::Builder::memory_limit)
    /// for what counts). A task whose allocation fails under it fails with
    /// [`TaskError::is_out_of_memory`](crate::pool::TaskError::is_out_of_memory)
    /// (it is not retried: it would fail again); its worker is replaced and the
    /// pool goes on, instead of the machine going into swap.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::pool::Pool;
    ///
    /// let pool = Pool::builder().processes(1).memory_limit_per_worker(256 << 20).build()?;
    /// let err = pool.apply(|n: usize| vec![1u8; n].len(), 4 << 30).unwrap_err();
    /// assert!(err.is_out_of_memory(), "{err}");
    /// assert_eq!(pool.apply(|n: usize| vec![1u8; n].len(), 1 << 20)?, 1 << 20);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn memory_limit_per_worker(&mut self, bytes: u64) -> &mut Self {
        self.options.memory_limit = Some(bytes);
        self
    }
}

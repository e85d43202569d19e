//! Why a task has no result: [`TaskError`].

use std::fmt;
use std::time::Duration;

use crate::process::ExitStatus;

/// Why one task did not hand back a result, in the shape of tokio's `JoinError`:
/// ask with the `is_*` methods, read the facts with the getters.
///
/// Every message starts with the facts: the worker (number and pid), the signal or
/// exit code, the task index.
///
/// # Examples
///
/// ```
/// use mproc::pool::Pool;
///
/// let pool = Pool::new(1)?;
/// let err = pool.apply(|x: u32| -> u32 { if x > 1 { panic!("too big: {x}") } x }, 7).unwrap_err();
/// assert!(err.is_panic());
/// assert_eq!(err.panic_message(), Some("too big: 7"));
/// assert_eq!(err.task_index(), Some(0));
/// assert!(err.worker_pid().is_some());
/// assert!(err.panic_location().unwrap().contains(".rs:"));
/// assert!(err.backtrace().is_some());
/// assert!(!err.is_worker_lost() && !err.is_timeout() && !err.is_cancelled());
///
/// // A worker that dies: the facts of its death.
/// let err = pool.apply(|_: ()| -> u8 { std::process::abort() }, ()).unwrap_err();
/// assert!(err.is_worker_lost());
/// assert_eq!(err.signal(), Some(6));
/// assert_eq!(err.exit_status(), Some(mproc::process::ExitStatus::Signal(6)));
/// assert_eq!(err.attempts(), Some(1));
/// assert_eq!(err.worker_id(), Some(0));
/// assert_eq!(err.timeout(), None);
/// assert_eq!(err.panic_message(), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct TaskError {
    pub(crate) kind: Kind,
    pub(crate) index: Option<usize>,
    pub(crate) worker: Option<(usize, u32)>,
    /// The last lines the worker wrote to stderr, when the pool collects its
    /// workers' output.
    /// (Boxed: one pointer, so that `Result<_, TaskError>` stays small.)
    pub(crate) stderr: Option<Box<StderrTail>>,
}

/// The last lines of a worker's stderr.
#[derive(Debug, Clone)]
pub(crate) struct StderrTail(String);

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Panicked {
        message: String,
        location: Option<String>,
        backtrace: String,
    },
    WorkerLost {
        status: ExitStatus,
        attempts: u32,
    },
    Timeout(Duration),
    /// An allocation failed under the worker's hard memory limit (bytes).
    OutOfMemory(u64),
    WaitTimeout(Duration),
    Cancelled(&'static str),
    Failed(String),
    /// Set by the user on a future of their own ([`TaskError::from_message`]).
    Message(String),
}

impl TaskError {
    pub(crate) fn panicked(
        message: String,
        location: Option<String>,
        backtrace: String,
        index: Option<usize>,
    ) -> Self {
        TaskError::new(
            Kind::Panicked {
                message,
                location,
                backtrace,
            },
            index,
            None,
        )
    }

    pub(crate) fn new(kind: Kind, index: Option<usize>, worker: Option<(usize, u32)>) -> Self {
        TaskError {
            kind,
            index,
            worker,
            stderr: None,
        }
    }

    pub(crate) fn cancelled(reason: &'static str, index: Option<usize>) -> Self {
        TaskError::new(Kind::Cancelled(reason), index, None)
    }

    pub(crate) fn failed(reason: impl Into<String>, index: Option<usize>) -> Self {
        TaskError::new(Kind::Failed(reason.into()), index, None)
    }

    /// An error that says `message` (and is none of the kinds the `is_*` methods
    /// ask about), to fail a future made with
    /// [`Future::new`](crate::futures::Future::new) (Python's
    /// `set_exception`).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::futures::TaskError;
    ///
    /// let e = TaskError::from_message("the upstream service is down");
    /// assert_eq!(e.to_string(), "the upstream service is down");
    /// assert!(!e.is_panic() && !e.is_cancelled() && !e.is_timeout());
    /// ```
    pub fn from_message(message: impl Into<String>) -> Self {
        TaskError::new(Kind::Message(message.into()), None, None)
    }

    pub(crate) fn wait_timeout(span: Duration, index: Option<usize>) -> Self {
        TaskError::new(Kind::WaitTimeout(span), index, None)
    }

    /// Attaches the last lines of the worker's stderr.
    pub(crate) fn with_stderr(mut self, tail: Option<String>) -> Self {
        self.stderr = tail
            .filter(|t| !t.is_empty())
            .map(|t| Box::new(StderrTail(t)));
        self
    }

    #[allow(dead_code)]
    pub(crate) fn with_index(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }

    /// Whether the task panicked (the worker survived it).
    ///
    /// # Examples
    ///
    /// See [`TaskError`].
    pub fn is_panic(&self) -> bool {
        matches!(self.kind, Kind::Panicked { .. })
    }

    /// Whether the task ran past its timeout (its worker was killed), or a
    /// `map` with a timeout gave up waiting for it.
    ///
    /// # Examples
    ///
    /// See [`TaskError`].
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, Kind::Timeout(_) | Kind::WaitTimeout(_))
    }

    /// Whether the worker running the task died (signal or exit) before the task
    /// returned.
    ///
    /// # Examples
    ///
    /// See [`TaskError`].
    pub fn is_worker_lost(&self) -> bool {
        matches!(self.kind, Kind::WorkerLost { .. })
    }

    /// Whether an allocation of the task failed under the worker's hard memory
    /// limit ([`Builder::memory_limit_per_worker`](crate::pool::Builder::memory_limit_per_worker)):
    /// the worker aborted and was replaced.
    ///
    /// # Examples
    ///
    /// See [`Builder::memory_limit_per_worker`](crate::pool::Builder::memory_limit_per_worker).
    pub fn is_out_of_memory(&self) -> bool {
        matches!(self.kind, Kind::OutOfMemory(_))
    }

    /// Whether the task never ran because it was cancelled, the pool was
    /// terminated, or Ctrl-C stopped the pool.
    ///
    /// # Examples
    ///
    /// See [`TaskError`].
    pub fn is_cancelled(&self) -> bool {
        matches!(self.kind, Kind::Cancelled(_))
    }

    /// The pid of the worker process that ran the task, when it reached one.
    ///
    /// # Examples
    ///
    /// See [`TaskError`].
    pub fn worker_pid(&self) -> Option<u32> {
        self.worker.map(|(_, pid)| pid)
    }

    /// The number of the worker (0-based slot in the pool), when it reached one.
    ///
    /// # Examples
    ///
    /// See [`TaskError`].
    pub fn worker_id(&self) -> Option<usize> {
        self.worker.map(|(id, _)| id)
    }

    /// The task's index in its call (0 for `apply`, the item's position for `map`).
    ///
    /// # Examples
    ///
    /// See [`TaskError`].
    pub fn task_index(&self) -> Option<usize> {
        self.index
    }

    /// The panic message, if the task panicked.
    ///
    /// # Examples
    ///
    /// See [`TaskError`].
    pub fn panic_message(&self) -> Option<&str> {
        match &self.kind {
            Kind::Panicked { message, .. } => Some(message),
            _ => None,
        }
    }

    /// Where the task panicked (`file:line:column`), when known.
    ///
    /// # Examples
    ///
    /// See [`TaskError`].
    pub fn panic_location(&self) -> Option<&str> {
        match &self.kind {
            Kind::Panicked { location, .. } => location.as_deref(),
            _ => None,
        }
    }

    /// The backtrace captured where the task panicked (empty when unknown). The error's
    /// message includes it with `{:#}`, or with `{}` when `RUST_BACKTRACE` is set.
    ///
    /// # Examples
    ///
    /// See [`TaskError`].
    pub fn backtrace(&self) -> Option<&str> {
        match &self.kind {
            Kind::Panicked { backtrace, .. } => Some(backtrace),
            _ => None,
        }
    }

    /// The last lines (up to 20) the worker wrote to stderr before the task
    /// failed, when the pool collects its workers' output
    /// ([`Builder::capture_output`](crate::pool::Builder::capture_output) or
    /// [`prefix_output`](crate::pool::Builder::prefix_output)). The error's
    /// `Display` shows them too.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::pool::Pool;
    ///
    /// let pool = Pool::builder().processes(1).capture_output(true).build()?;
    /// let err = pool.apply(|_: ()| -> u8 { eprintln!("disk full"); std::process::abort() }, ()).unwrap_err();
    /// assert!(err.stderr_tail().unwrap().contains("disk full"));
    /// assert!(err.to_string().contains("disk full"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stderr_tail(&self) -> Option<&str> {
        self.stderr.as_deref().map(|t| t.0.as_str())
    }

    /// How the worker ended, when the task was lost with it.
    ///
    /// # Examples
    ///
    /// See [`TaskError`].
    pub fn exit_status(&self) -> Option<ExitStatus> {
        match self.kind {
            Kind::WorkerLost { status, .. } => Some(status),
            _ => None,
        }
    }

    /// The signal that killed the worker, when one did.
    ///
    /// # Examples
    ///
    /// See [`TaskError`].
    pub fn signal(&self) -> Option<i32> {
        self.exit_status().and_then(ExitStatus::signal)
    }

    /// How many times the task was started (more than once with retries).
    ///
    /// # Examples
    ///
    /// See [`TaskError`].
    pub fn attempts(&self) -> Option<u32> {
        match self.kind {
            Kind::WorkerLost { attempts, .. } => Some(attempts),
            _ => None,
        }
    }

    /// The timeout that expired, for [`is_timeout`](TaskError::is_timeout) errors.
    ///
    /// # Examples
    ///
    /// See [`TaskError`].
    pub fn timeout(&self) -> Option<Duration> {
        match self.kind {
            Kind::Timeout(d) | Kind::WaitTimeout(d) => Some(d),
            _ => None,
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_kind(f)?;
        if let Some(tail) = &self.stderr {
            write!(f, "; last lines of its stderr:\n{}", tail.0)?;
        }
        Ok(())
    }
}

impl TaskError {
    fn fmt_kind(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let task = match self.index {
            Some(i) => format!("task {i}"),
            None => "the task".to_string(),
        };
        let worker = match self.worker {
            Some((id, pid)) => format!("worker {id} (pid {pid})"),
            None => "the worker".to_string(),
        };
        match &self.kind {
            Kind::Panicked {
                message,
                location,
                backtrace,
            } => {
                write!(f, "{task} panicked")?;
                if self.worker.is_some() {
                    write!(f, " in {worker}")?;
                }
                if let Some(at) = location {
                    write!(f, " at {at}")?;
                }
                write!(f, ": {message}")?;
                crate::process::write_backtrace(f, backtrace)
            }
            Kind::WorkerLost { status, attempts } => {
                let how = match status {
                    ExitStatus::Signal(_) => format!("was {status}"),
                    ExitStatus::Code(c) => format!("exited with code {c}"),
                };
                write!(f, "{worker} {how} while running {task}")?;
                if *attempts > 1 {
                    write!(f, " (attempt {attempts}; giving up)")?;
                }
                Ok(())
            }
            Kind::Timeout(d) => write!(
                f,
                "{task} ran past its timeout of {d:?}; {worker} was killed and replaced"
            ),
            Kind::WaitTimeout(d) => write!(
                f,
                "{task} had no result within the call's timeout of {d:?}; the remaining tasks were cancelled"
            ),
            Kind::OutOfMemory(limit) => write!(
                f,
                "{task} ran out of memory in {worker}: an allocation failed under the limit of {}; the worker was replaced",
                crate::process::human_bytes(*limit)
            ),
            Kind::Cancelled(why) => write!(f, "{task} was cancelled: {why}"),
            Kind::Failed(reason) => write!(f, "{task} failed: {reason}"),
            Kind::Message(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for TaskError {}

/// The message of a caught panic's payload (a `&str` or a `String`, as `panic!`
/// makes them).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}

//! Seeing inside children: what a child process logs reaches its parent's logger.
//!
//! # Log records travel to the parent
//!
//! A record a child makes with the `log` macros (in a [`Process`] or a pool
//! worker) is handed to the **parent's** logger, tagged with where it came from.
//! Nothing needs setting up: it is on by default, with every start method, for
//! processes and pools, and costs nothing when the parent has no logger
//! (`log::max_level()` is `Off`). Opt out with
//! [`process::Builder::forward_logs`](crate::process::Builder::forward_logs) or
//! [`pool::Builder::forward_logs`](crate::pool::Builder::forward_logs).
//!
//! Each forwarded record keeps its level, target, module path, file and line;
//! its message is prefixed with `[<process name> pid <pid>]` (and ` task <index>`
//! for a pool task, the task's index in its call), and it carries the same facts
//! as key-values for structured loggers: [`KEY_PROCESS`], [`KEY_PID`] and, for a
//! pool task, [`KEY_TASK`].
//!
//! ```
//! use mproc::process::Process;
//!
//! // With a logger installed in this process (env_logger, a test logger...),
//! // this line comes out here as "[Process-N pid 1234] hello from the child".
//! let child = Process::start(|_: ()| log::info!("hello from the child"), ())?;
//! child.join()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Level filtering happens in the child.** The child starts with the parent's
//! `log::max_level()`: a record above it is dropped by the `log!` macro itself,
//! at the cost of one comparison, and is never formatted or sent.
//!
//! **Nothing is lost to a crash.** A child writes each record straight into a
//! socket to its parent as it is made (one `send` per record; nothing is buffered
//! in the child). Once `log!` has returned, the record outlives the child however
//! it ends: a panic, an abort, a `SIGKILL` at its deadline. The parent reads
//! the socket as records arrive (one thread, `mproc-logs`, for all children), and
//! the code that learns of a child's end (`join`, a pool's dispatcher) first emits
//! whatever that child logged: the last lines before a crash come out before the
//! crash is reported. A pool emits a worker's records before it hands over the
//! results of the tasks that made them.
//!
//! **Order.** Records of one child come out in the order that child made them;
//! records of different children interleave as they arrive.
//!
//! # Caveats
//!
//! - **Fork children inherit the parent's logger.** A `Spawn` or forkserver child
//!   starts with no logger and gets a forwarding one. A `Fork` child is a copy of
//!   its parent, logger included, and `log` allows one logger per process: for
//!   its records to be forwarded, install the parent's logger wrapped in a
//!   [`ForwardingLogger`]. A `Fork` child whose inherited logger is another keeps
//!   logging with it, in the child (to a shared stderr, say).
//! - **Back-pressure.** A child that logs faster than the parent's logger writes
//!   waits when its socket's buffer (about 1 MiB) is full, rather than dropping
//!   records or growing without bound.
//! - **Long records** are cut at 60 KiB (and say so).
//! - **`tracing`** events are forwarded with the `tracing` feature: a child with no
//!   subscriber of its own gets one that sends each event as a record (fields
//!   appended as `name=value`; spans are not forwarded), and the parent emits it
//!   through `log`, which a `tracing` program sees through `tracing-log`'s
//!   `LogTracer` (installed by `tracing_subscriber::fmt().init()`). A `Fork` child
//!   inherits its parent's subscriber: wrap it in a `ForwardingSubscriber`.
//! - **A changed level.** The level a child filters with is the parent's when the
//!   child started; raising the parent's level later does not reach children
//!   already running (lowering it does: the parent filters again).
//!
//! [`Process`]: crate::process::Process

pub(crate) mod child;
pub(crate) mod collect;
pub(crate) mod output;
mod record;
#[cfg(feature = "tracing")]
mod subscriber;

#[cfg(feature = "tracing")]
pub use subscriber::ForwardingSubscriber;

/// The key-value key holding the name of the child a forwarded record came from.
pub const KEY_PROCESS: &str = "mproc.process";
/// The key-value key holding the pid of the child a forwarded record came from.
pub const KEY_PID: &str = "mproc.pid";
/// The key-value key holding the index (in its call) of the pool task that made a
/// forwarded record; absent outside pool tasks.
pub const KEY_TASK: &str = "mproc.task";

/// A logger that logs with `L` in this process, and forwards to the parent in a
/// child started by mproc: install it in a program that starts children with
/// [`StartMethod::Fork`](crate::process::StartMethod::Fork), whose children inherit
/// the parent's logger (see the module docs). With the other start methods it is
/// not needed, and does no harm.
///
/// # Examples
///
/// ```
/// use mproc::observe::ForwardingLogger;
///
/// struct Stderr;
/// impl log::Log for Stderr {
///     fn enabled(&self, _: &log::Metadata<'_>) -> bool { true }
///     fn log(&self, r: &log::Record<'_>) { eprintln!("{} {}", r.level(), r.args()) }
///     fn flush(&self) {}
/// }
///
/// let logger = ForwardingLogger::new(Stderr);
/// assert!(log::Log::enabled(&logger, &log::Metadata::builder().level(log::Level::Info).build()));
/// // In `main`: log::set_boxed_logger(Box::new(logger)).unwrap();
/// ```
#[derive(Debug)]
pub struct ForwardingLogger<L> {
    inner: L,
}

impl<L: log::Log> ForwardingLogger<L> {
    /// Wraps `inner`, which logs in this process when it is not a forwarding child.
    pub fn new(inner: L) -> Self {
        ForwardingLogger { inner }
    }

    /// The wrapped logger.
    pub fn inner(&self) -> &L {
        &self.inner
    }
}

impl<L: log::Log> log::Log for ForwardingLogger<L> {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        if child::is_forwarding() {
            metadata.level() <= log::max_level()
        } else {
            self.inner.enabled(metadata)
        }
    }

    fn log(&self, record: &log::Record<'_>) {
        if !child::forward(record) {
            self.inner.log(record);
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

//! Child processes that run Rust functions: the counterpart of
//! `multiprocessing.Process`.
//!
//! A [`Process`] runs a function `fn(A) -> R` (a plain `fn` or a closure that
//! captures nothing) in a new process, and [`Process::join`] hands back its `R`, or
//! a [`JoinError`] that says exactly what happened instead: a panic (with message,
//! location and backtrace), a signal, an early exit, a child that never confirmed
//! its start. Arguments and results are serde types; a capturing closure does not
//! compile, which is the Rust answer to Python's `PicklingError`. Types that run
//! themselves implement [`Task`], the counterpart of subclassing `Process` and
//! overriding `run`.
//!
//! ```
//! use mproc::process::Process;
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! let child = Process::start(square, 12)?;
//! assert_eq!(child.join()?, 144);
//!
//! // A closure works too, as long as it captures nothing.
//! let child = Process::start(|(a, b): (i32, i32)| a - b, (50, 8))?;
//! assert_eq!(child.join()?, 42);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Use a [`Pool`](https://docs.rs/mproc) of long-lived workers instead when there
//! are many small tasks: a process per task pays a start-up each time.
//!
//! # Start methods
//!
//! - [`StartMethod::Forkserver`] (the default): a clean single-threaded server,
//!   started once per parent, forks each child. Fast and safe whatever threads the
//!   parent runs.
//! - [`StartMethod::Spawn`]: runs this executable again. The new process is taken
//!   over by mproc before `main` by a load-time hook (an `.init_array` entry), so
//!   binaries, examples, unit and integration tests and doc tests need no set-up.
//!   If a child reports that the bootstrap did not run ([`JoinError::BootstrapMissing`]),
//!   the executable was linked without mproc's hook; that is a bug to report.
//! - [`StartMethod::Fork`]: forks the calling process directly. Fastest, and the
//!   child sees the parent's memory, but it is unsafe to combine with threads (a
//!   lock held by another thread at the fork stays locked in the child forever);
//!   mproc logs a warning when the parent has other threads.
//!
//! Whatever the method, a start+join wakes the parent once: the child leaves its
//! result on its control socket (in an anonymous file when it is larger than the
//! socket can hold with nobody reading) and exits, and `join` watches only the
//! child's pidfd, reading the result once the child is gone. The forkserver and
//! a `Fork` parent set up what every child would otherwise set up for itself
//! (panic hook, codec state, stdio) before forking, so children inherit it.
//! `scripts/bench.sh` measures each method against the OS floor.
//!
//! # Caveats
//!
//! - **Parent death.** Every child gets `PR_SET_PDEATHSIG(SIGKILL)`: when the
//!   parent dies for any reason, including `SIGKILL`, its children are killed by
//!   the kernel. Children are started from the main thread or from one long-lived
//!   launcher thread, because the kernel ties the death signal to the creating thread.
//! - **Normal exit.** When the parent returns from `main` or calls
//!   `std::process::exit`, mproc sends `SIGTERM` to daemon children (then `SIGKILL`
//!   after one second) and waits for non-daemon children to finish, as Python does.
//! - **Descendants.** A child leads a process group of its own, and what it starts
//!   (a `std::process::Command`, its own children) is killed when it ends, however it
//!   ends; [`Builder::contain_descendants`]`(false)` opts out for a task that starts
//!   a daemon on purpose. When the parent is killed with `SIGKILL`, the forkserver
//!   kills its children's descendants; a `Spawn` or `Fork` child dies by its death
//!   signal with nothing left to clean up after it, so its descendants (re-parented
//!   to init) survive. A descendant that leaves the group (`setsid`) is not tracked.
//! - **Descriptors.** A `Spawn` child starts with stdio and its own channel only:
//!   descriptors the parent opened without close-on-exec are closed in it, as with
//!   Python's spawn. A `Fork` child shares the parent's, as with Python's fork.
//! - **Resources.** A start that runs out of a resource (descriptors, processes,
//!   memory) fails alone with [`SpawnError::ResourceExhausted`] naming it; running
//!   children and the forkserver are unharmed.
//! - **Drop.** Dropping a [`Process`] without joining it does not stop the child;
//!   a reaper thread reaps it when it ends, so no zombie is left.
//! - **Signals** go through a pidfd, so a recycled pid is never signalled.
//! - **Output.** Children share the parent's stdout and stderr unless
//!   [`Builder::capture_output`] (kept, bounded) or [`Builder::prefix_output`]
//!   (passed through, each line prefixed with the child's name) is set.
//! - **Logs.** What a child logs with `log` reaches the parent's logger, tagged
//!   with its name and pid ([`Builder::forward_logs`], on by default; see
//!   [`observe`](crate::observe)).
//! - **Memory.** [`Builder::memory_limit`] bounds what a child may allocate; a
//!   child over it ends with [`JoinError::OutOfMemory`].
//! - **Child code runs before `main`** in `Spawn` children: `main`'s own set-up
//!   (a logger, say) has not run there.
//! - **Panic hook.** mproc installs a panic hook (once, wrapping the one before it)
//!   to report a task's panic with its location and backtrace; other panics go to
//!   the previous hook. A task that calls `std::panic::set_hook` itself replaces it,
//!   and its later panics come back with the message only.
//! - **Fork and libtest.** A `Fork` child of a test thread inherits libtest's
//!   capture of `println!` (capture passes to threads), so its `println!` output is
//!   lost; write to `std::io::stdout()` directly, or use another start method.

#[cfg(feature = "tokio")]
mod aio;
mod bootstrap;
mod builder;
mod context;
mod error;
mod forkserver;
mod info;
mod launch;
pub(crate) mod protocol;
mod registry;

use std::fmt;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use builder::{Builder, CapturedOutput};
pub use context::{
    Context, StartMethodAlreadySet, get_all_start_methods, get_context, get_start_method,
    set_start_method,
};
pub(crate) use error::human_bytes;
pub(crate) use error::write_backtrace;
pub use error::{JoinError, JoinTimeoutError, Resource, SpawnError};
pub use info::{ProcessInfo, cpu_count, current_process, parent_process};

pub(crate) use bootstrap::{on_load, panic_message, take_task_panic};

use crate::codec;
use crate::observe::collect::Source as _;
use crate::observe::output::StreamSource;
#[doc(hidden)]
pub use crate::process::protocol::StartFault;
use crate::process::protocol::{MAX_FRAME, Report};
use crate::process::registry::ExitSource;
use crate::sys::code::SelfRunning;
use crate::sys::process::{self as os, RawExit};
use crate::sys::socket;
use crate::wire;

/// How a child process is created. See the [module docs](self#start-methods).
///
/// `StartMethod::default()` is the start method in force: [`Forkserver`] unless
/// [`set_start_method`] chose another.
///
/// [`Forkserver`]: StartMethod::Forkserver
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum StartMethod {
    /// Fork from a clean single-threaded server started once (the default).
    Forkserver,
    /// Run this executable again; the child is taken over before `main`.
    Spawn,
    /// Fork the calling process. Unsafe to mix with threads; see the module docs.
    Fork,
}

impl Default for StartMethod {
    fn default() -> Self {
        get_start_method()
    }
}

impl StartMethod {
    /// All start methods, for code that tries each.
    pub const ALL: [StartMethod; 3] = [
        StartMethod::Forkserver,
        StartMethod::Spawn,
        StartMethod::Fork,
    ];
}

/// How a process ended: Python's `exitcode`, as an enum.
///
/// # Examples
///
/// ```
/// use mproc::process::ExitStatus;
///
/// assert!(ExitStatus::Code(0).success());
/// assert_eq!(ExitStatus::Signal(9).python_exitcode(), -9);
/// assert_eq!(ExitStatus::Signal(9).to_string(), "killed by signal 9 (SIGKILL)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    /// The process exited with this code.
    Code(i32),
    /// The process was killed by this signal.
    Signal(i32),
}

impl ExitStatus {
    /// Whether the process exited with code 0.
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }

    /// The exit code, if the process exited.
    pub fn code(self) -> Option<i32> {
        match self {
            ExitStatus::Code(c) => Some(c),
            ExitStatus::Signal(_) => None,
        }
    }

    /// The signal, if one killed the process.
    pub fn signal(self) -> Option<i32> {
        match self {
            ExitStatus::Code(_) => None,
            ExitStatus::Signal(s) => Some(s),
        }
    }

    /// Python's convention: the exit code, or minus the signal number.
    pub fn python_exitcode(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => -s,
        }
    }
}

impl From<RawExit> for ExitStatus {
    fn from(raw: RawExit) -> Self {
        match raw {
            RawExit::Code(c) => ExitStatus::Code(c),
            RawExit::Signal(s) => ExitStatus::Signal(s),
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit code {c}"),
            ExitStatus::Signal(s) => write!(f, "killed by {}", error::describe_signal(*s)),
        }
    }
}

/// A value that runs itself in a child process: the counterpart of subclassing
/// `multiprocessing.Process` and overriding `run`.
///
/// # Examples
///
/// ```
/// use mproc::process::{Process, Task};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Countdown {
///     from: u32,
/// }
///
/// impl Task for Countdown {
///     type Output = Vec<u32>;
///     fn run(self) -> Vec<u32> {
///         (0..=self.from).rev().collect()
///     }
/// }
///
/// let child = Process::start_task(Countdown { from: 3 })?;
/// assert_eq!(child.join()?, vec![3, 2, 1, 0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Task: Serialize + DeserializeOwned + 'static {
    /// What the task hands back to the parent.
    type Output: Serialize + DeserializeOwned + 'static;

    /// Runs the task in the child.
    fn run(self) -> Self::Output;
}

impl<T: Task> SelfRunning for T {
    type Output = T::Output;
    fn run_self(self) -> T::Output {
        self.run()
    }
}

/// A running (or finished) child process that will hand back an `R`.
///
/// Made by [`Process::start`], [`Process::start_task`] or a [`Builder`].
pub struct Process<R> {
    pid: u32,
    name: String,
    daemon: bool,
    method: StartMethod,
    pidfd: Arc<OwnedFd>,
    control: OwnedFd,
    exit: Option<ExitSource>,
    started_at: Instant,
    handshake_timeout: Duration,
    handshake_done: bool,
    report: Option<(Report, Vec<OwnedFd>)>,
    eof: bool,
    status: Option<ExitStatus>,
    /// The child's stdout and stderr, when captured or prefixed.
    output: Option<(Arc<StreamSource>, Arc<StreamSource>)>,
    /// Whether the output is captured (not passed through).
    capturing: bool,
    /// Whether the child leads a process group of its own.
    contained: bool,
    /// The child's log socket, when its records are forwarded.
    logs: Option<Arc<crate::observe::collect::LogSource>>,
    /// The read end of the pipe on which the child reports an allocation that
    /// failed under its memory limit, and the limit.
    oom: Option<(OwnedFd, u64)>,
    /// Whether the child reported that.
    out_of_memory: bool,
    _result: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for Process<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.pid)
            .field("name", &self.name)
            .field("daemon", &self.daemon)
            .field("start_method", &self.method)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Process<()> {
    /// A [`Builder`] for setting the name, daemon flag, start method or output capture.
    ///
    /// # Examples
    ///
    /// ```
    /// let child = mproc::process::Process::builder().name("quiet").start(|x: u8| x, 7)?;
    /// assert_eq!(child.join()?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> Builder {
        Builder::default()
    }
}

impl<R> Process<R> {
    /// Starts `f(arg)` in a new process with the default options.
    ///
    /// # Errors
    ///
    /// [`SpawnError`] when the argument cannot be serialized or the process cannot
    /// be created.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::process::Process;
    ///
    /// let child = Process::start(|name: String| format!("hello, {name}"), "world".to_string())?;
    /// assert_eq!(child.join()?, "hello, world");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// A closure that captures its environment cannot travel to another process,
    /// and does not compile (the Rust counterpart of Python's `PicklingError`):
    ///
    /// ```compile_fail
    /// use mproc::process::Process;
    ///
    /// let offset = 10u32;
    /// let _child = Process::start(move |x: u32| x + offset, 1);
    /// ```
    pub fn start<A>(f: fn(A) -> R, arg: A) -> Result<Process<R>, SpawnError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        Builder::default().start(f, arg)
    }

    /// Starts `task.run()` in a new process with the default options.
    ///
    /// # Errors
    ///
    /// As [`Process::start`].
    ///
    /// # Examples
    ///
    /// See [`Task`].
    pub fn start_task<T: Task<Output = R>>(task: T) -> Result<Process<R>, SpawnError> {
        Builder::default().start_task(task)
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The child's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the child is a daemon.
    pub fn is_daemon(&self) -> bool {
        self.daemon
    }

    /// The start method it was started with.
    pub fn start_method(&self) -> StartMethod {
        self.method
    }

    /// A pidfd for the child: it polls readable once the child has exited
    /// (Python's `sentinel`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    ///
    /// let child = mproc::process::Process::start(|x: u8| x, 1)?;
    /// assert!(child.sentinel().as_raw_fd() >= 0);
    /// child.join()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sentinel(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Whether the child is still running.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let child = mproc::process::Process::start(|s: u64| std::thread::sleep(Duration::from_secs(s)), 60)?;
    /// assert!(child.is_alive());
    /// child.kill()?;
    /// assert!(child.join().unwrap_err().is_signaled());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_alive(&self) -> bool {
        self.status.is_none()
            && !os::pidfd_wait_exit(self.pidfd.as_fd(), Some(Duration::ZERO)).unwrap_or(true)
    }

    /// How the child ended, or `None` while it runs (Python's `exitcode`). Does not
    /// block.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::process::{ExitStatus, Process};
    ///
    /// let mut child = Process::start(|s: u64| std::thread::sleep(std::time::Duration::from_secs(s)), 60)?;
    /// assert_eq!(child.exit_status(), None);
    /// child.kill()?;
    /// while child.exit_status().is_none() {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(child.exit_status(), Some(ExitStatus::Signal(9)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() && !self.is_alive() {
            let _ = self.reap(Some(Instant::now() + Duration::from_secs(5)));
        }
        self.status
    }

    /// Asks the child to stop: `SIGTERM` (Python's `terminate`).
    ///
    /// # Errors
    ///
    /// The operating system's error; a child that already exited is not an error.
    ///
    /// # Examples
    ///
    /// ```
    /// let child = mproc::process::Process::start(|_: ()| std::thread::sleep(std::time::Duration::from_secs(60)), ())?;
    /// child.terminate()?;
    /// assert_eq!(child.join().unwrap_err().signal(), Some(15));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn terminate(&self) -> std::io::Result<()> {
        self.signal(os::SIGTERM)
    }

    /// Kills the child: `SIGKILL` (Python's `kill`).
    ///
    /// # Errors
    ///
    /// As [`Process::terminate`].
    ///
    /// # Examples
    ///
    /// ```
    /// let child = mproc::process::Process::start(|_: ()| std::thread::sleep(std::time::Duration::from_secs(60)), ())?;
    /// child.kill()?;
    /// assert_eq!(child.join().unwrap_err().signal(), Some(9));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kill(&self) -> std::io::Result<()> {
        self.signal(os::SIGKILL)
    }

    fn signal(&self, sig: i32) -> std::io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        // The whole group of a contained child, while its leader has not exited
        // (so that the group's id is still its own).
        if self.contained
            && !os::pidfd_wait_exit(self.pidfd.as_fd(), Some(Duration::ZERO)).unwrap_or(true)
        {
            let _ = os::signal_group(self.pid, sig);
        }
        os::pidfd_signal(self.pidfd.as_fd(), sig)
    }

    /// Waits for the child and returns its result.
    ///
    /// # Errors
    ///
    /// [`JoinError`] says why there is no result: a panic, a signal, an exit, a
    /// child that never started, a result that could not be decoded.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::process::Process;
    ///
    /// let child = Process::start(|_: ()| -> u8 { panic!("out of cheese") }, ())?;
    /// let err = child.join().unwrap_err();
    /// assert!(err.is_panic());
    /// assert_eq!(err.panic_message(), Some("out of cheese"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(self) -> Result<R, JoinError>
    where
        R: DeserializeOwned,
    {
        self.join_with_output().0
    }

    /// Like [`join`](Process::join), and also returns what the child wrote to stdout
    /// and stderr when [`Builder::capture_output`] was set (empty otherwise).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::process::Process;
    ///
    /// let child = Process::builder().capture_output(true).start(|x: u32| { println!("got {x}"); x + 1 }, 41)?;
    /// let (result, output) = child.join_with_output();
    /// assert_eq!(result?, 42);
    /// assert_eq!(output.stdout, b"got 41\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_with_output(mut self) -> (Result<R, JoinError>, CapturedOutput)
    where
        R: DeserializeOwned,
    {
        let result = match self.wait(None) {
            Ok(_) => self.take_result(),
            Err(e) => Err(e),
        };
        let output = match &self.output {
            Some((out, err)) if self.capturing => {
                let (stdout, stdout_dropped) = out.captured();
                let (stderr, stderr_dropped) = err.captured();
                CapturedOutput {
                    stdout,
                    stderr,
                    stdout_dropped,
                    stderr_dropped,
                }
            }
            _ => CapturedOutput::default(),
        };
        (result, output)
    }

    /// Waits at most `timeout` for the child's result.
    ///
    /// # Errors
    ///
    /// [`JoinTimeoutError::Timeout`] with the handle back when the child is still
    /// running; [`JoinTimeoutError::Failed`] as [`join`](Process::join).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::process::Process;
    ///
    /// let child = Process::start(|_: ()| std::thread::sleep(Duration::from_secs(60)), ())?;
    /// let err = child.join_timeout(Duration::from_millis(50)).unwrap_err();
    /// assert!(err.is_timeout());
    /// let child = err.into_inner().unwrap();
    /// child.kill()?;
    /// assert!(child.join().unwrap_err().is_signaled());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_timeout(self, timeout: Duration) -> Result<R, JoinTimeoutError<R>>
    where
        R: DeserializeOwned,
    {
        self.join_until(crate::deadline::after(timeout))
    }

    /// Waits until `deadline` at most for the child's result.
    ///
    /// # Errors
    ///
    /// As [`join_timeout`](Process::join_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let child = mproc::process::Process::start(|x: u8| x * 2, 4)?;
    /// assert_eq!(child.join_deadline(Instant::now() + Duration::from_secs(30))?, 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_deadline(self, deadline: Instant) -> Result<R, JoinTimeoutError<R>>
    where
        R: DeserializeOwned,
    {
        self.join_until(Some(deadline))
    }

    /// Joins, waiting until `deadline` at most (forever for `None`).
    fn join_until(mut self, deadline: Option<Instant>) -> Result<R, JoinTimeoutError<R>>
    where
        R: DeserializeOwned,
    {
        match self.wait(deadline) {
            Ok(true) => self.take_result().map_err(JoinTimeoutError::Failed),
            Ok(false) => Err(JoinTimeoutError::Timeout(Box::new(self))),
            Err(e) => Err(JoinTimeoutError::Failed(e)),
        }
    }

    /// Emits every log record the child has sent so far (see
    /// [`observe`](crate::observe)): called when the child's end is learnt, and by
    /// a pool before it hands over a worker's results.
    pub(crate) fn drain_logs(&self) {
        if let Some(source) = &self.logs {
            source.drain();
        }
        if let Some((out, err)) = &self.output {
            out.drain();
            err.drain();
        }
    }

    /// The last lines the child wrote to stderr, when its output is captured or
    /// prefixed.
    pub(crate) fn stderr_tail(&self) -> Option<String> {
        self.output.as_ref().and_then(|(_, err)| err.last_lines(20))
    }

    /// Whether the child ended because an allocation failed under its
    /// [`memory_limit`](Builder::memory_limit) (valid once it has ended).
    pub(crate) fn ran_out_of_memory(&mut self) -> bool {
        if !self.out_of_memory {
            if let Some((r, _)) = &self.oom {
                let mut b = [0u8; 1];
                self.out_of_memory = matches!(socket::read(r.as_fd(), &mut b), Ok(1));
            }
        }
        self.out_of_memory
    }

    /// The child's memory limit, if one was set.
    pub(crate) fn memory_limit(&self) -> Option<u64> {
        self.oom.as_ref().map(|(_, limit)| *limit)
    }

    fn io_error(&self, source: std::io::Error) -> JoinError {
        JoinError::Io {
            name: self.name.clone(),
            pid: self.pid,
            source,
        }
    }

    /// Waits for the child to exit, then reads what it reported and reaps it.
    /// `Ok(false)`: `deadline` passed first.
    ///
    /// Only the pidfd is watched: a child's reports never block on the socket (see
    /// `bootstrap::send_report`), so they can be read after it exits, and a start+join
    /// costs one wake-up of the parent rather than one per report. The socket is
    /// looked at before the exit only when the handshake deadline passes.
    fn wait(&mut self, deadline: Option<Instant>) -> Result<bool, JoinError> {
        while !self.eof {
            let handshake_deadline =
                (!self.handshake_done).then(|| self.started_at + self.handshake_timeout);
            let until = match (deadline, handshake_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = until.map(|d| d.saturating_duration_since(Instant::now()));
            if os::pidfd_wait_exit(self.pidfd.as_fd(), timeout).map_err(|e| self.io_error(e))? {
                // The child is gone: everything it sent is on the socket, and
                // everything it logged is logged before its end is reported.
                self.drain_logs();
                self.read_reports()?;
                self.eof = true;
                break;
            }
            let now = Instant::now();
            if let Some(h) = handshake_deadline {
                if now >= h {
                    self.read_reports()?;
                    if !self.handshake_done {
                        let _ = os::pidfd_signal(self.pidfd.as_fd(), os::SIGKILL);
                        let _ = self.reap(None);
                        return Err(JoinError::HandshakeTimeout {
                            name: self.name.clone(),
                            pid: self.pid,
                            waited: self.handshake_timeout,
                        });
                    }
                }
            }
            if deadline.is_some_and(|d| now >= d) {
                return Ok(false);
            }
        }
        if matches!(self.report, Some((Report::Returned(_), _)))
            && matches!(self.exit, Some(ExitSource::Server(_)))
        {
            // The result is in and the child has exited: its status, which only the
            // forkserver can read, would add a round trip through the server and
            // change nothing `join` returns.
            self.exit = None;
            registry::forget(self.pid);
            return Ok(true);
        }
        self.reap(deadline)
    }

    /// Reads every report waiting on the control socket, without waiting for more
    /// (a descendant may still hold the child's end open, so no end-of-file is
    /// awaited).
    fn read_reports(&mut self) -> Result<(), JoinError> {
        if self.eof {
            return Ok(());
        }
        let (frames, eof) = match wire::recv_ready(self.control.as_fd(), MAX_FRAME) {
            Ok(got) => got,
            Err(e)
                if e.kind() == std::io::ErrorKind::ConnectionReset
                    || e.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                (Vec::new(), true)
            }
            Err(e) => return Err(self.io_error(e)),
        };
        for msg in frames {
            let (report, fds) = self.decode_report(msg)?;
            self.handshake_done = true;
            if !matches!(report, Report::Started) {
                self.report = Some((report, fds));
            }
        }
        self.eof |= eof;
        Ok(())
    }

    /// Decodes one report frame, reading a spilled report from its file.
    fn decode_report(&self, msg: codec::Message) -> Result<(Report, Vec<OwnedFd>), JoinError> {
        let malformed = |e: &dyn fmt::Display| JoinError::Codec {
            name: self.name.clone(),
            pid: self.pid,
            reason: format!("malformed report from the child: {e}"),
        };
        let report: Report = postcard::from_bytes(&msg.bytes).map_err(|e| malformed(&e))?;
        let Report::Spilled { len } = report else {
            return Ok((report, msg.fds));
        };
        let mut fds = msg.fds.into_iter();
        let file = fds
            .next()
            .ok_or_else(|| malformed(&"a spilled report without its file"))?;
        let len = usize::try_from(len).map_err(|e| malformed(&e))?;
        let bytes =
            crate::sys::memory::read_at_start(file.as_fd(), len).map_err(|e| self.io_error(e))?;
        match postcard::from_bytes(&bytes).map_err(|e| malformed(&e))? {
            Report::Spilled { .. } => Err(malformed(&"a spilled report inside a spilled report")),
            inner => Ok((inner, fds.collect())),
        }
    }

    /// Waits for the exit status. `Ok(false)` when `deadline` passed first.
    fn reap(&mut self, deadline: Option<Instant>) -> Result<bool, JoinError> {
        if self.status.is_some() {
            return Ok(true);
        }
        let Some(source) = &self.exit else {
            return Ok(true);
        };
        match registry::wait_exit(&self.pidfd, source, deadline) {
            Ok(Some(raw)) => {
                self.drain_logs();
                self.status = Some(raw.into());
                registry::forget(self.pid);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => {
                registry::forget(self.pid);
                Err(self.io_error(e))
            }
        }
    }

    fn take_result(&mut self) -> Result<R, JoinError>
    where
        R: DeserializeOwned,
    {
        let (name, pid) = (self.name.clone(), self.pid);
        match self.report.take() {
            Some((Report::Returned(bytes), fds)) => {
                codec::decode_bytes::<R>(&bytes, fds).map_err(|e| JoinError::Codec {
                    name,
                    pid,
                    reason: format!("cannot decode the result in the parent: {e}"),
                })
            }
            Some((Report::Panicked(p), _)) => Err(JoinError::Panicked {
                name,
                pid,
                message: p.message,
                location: p.location,
                backtrace: p.backtrace,
            }),
            Some((Report::Failed(reason), _)) => Err(JoinError::Codec { name, pid, reason }),
            Some((Report::Started | Report::Spilled { .. }, _)) | None => {
                let status = self.status.unwrap_or(ExitStatus::Code(-1));
                if status == ExitStatus::Signal(6) && self.ran_out_of_memory() {
                    let limit = self.memory_limit().unwrap_or(0);
                    return Err(JoinError::OutOfMemory { name, pid, limit });
                }
                Err(match status {
                    ExitStatus::Signal(signal) => JoinError::Signaled { name, pid, signal },
                    ExitStatus::Code(_) if !self.handshake_done => {
                        JoinError::BootstrapMissing { name, pid, status }
                    }
                    ExitStatus::Code(code) => JoinError::Exited { name, pid, code },
                })
            }
        }
    }
}

impl<R> crate::connection::Sealed for Process<R> {}

/// A process is ready for [`connection::wait`](crate::connection::wait) once it has
/// ended (its [`sentinel`](Process::sentinel) is readable).
impl<R> crate::connection::Waitable for Process<R> {
    fn wait_fd(&self) -> BorrowedFd<'_> {
        self.sentinel()
    }
}

impl<R> Drop for Process<R> {
    fn drop(&mut self) {
        if self.status.is_none() {
            if let Some(source) = self.exit.take() {
                registry::detach(self.pid, source);
            }
        }
    }
}

/// The children of this process that are still running (Python's
/// `active_children`), sorted by pid.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mproc::process::{active_children, Process};
///
/// let child = Process::start(|_: ()| std::thread::sleep(Duration::from_secs(60)), ())?;
/// assert!(active_children().iter().any(|c| c.pid() == child.pid()));
/// child.kill()?;
/// let pid = child.pid();
/// let _ = child.join();
/// assert!(!active_children().iter().any(|c| c.pid() == pid));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn active_children() -> Vec<ProcessInfo> {
    registry::active()
}

/// Starts the forkserver now, so that the first [`StartMethod::Forkserver`] child
/// does not pay for it. Optional: it starts by itself when first needed.
///
/// # Errors
///
/// [`SpawnError`] when the server cannot be started.
///
/// # Examples
///
/// ```
/// mproc::process::start_forkserver()?;
/// # Ok::<(), mproc::process::SpawnError>(())
/// ```
pub fn start_forkserver() -> Result<(), SpawnError> {
    crate::sys::startup::linked();
    forkserver::ensure_started()
}

#[cfg(test)]
mod tests;

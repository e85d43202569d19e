//! [`Builder`]: the options a process starts with (name, daemon flag, start method,
//! output capture, log forwarding, memory limit), and the launch itself.

use std::marker::PhantomData;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::protocol::{Job, Origin, StartFault};
use super::{Process, StartMethod, Task, current_process, launch, registry};
use crate::codec;
use crate::observe::output::{self, StreamSource};
use crate::process::SpawnError;
use crate::sys::code::EntryPoint;
use crate::sys::socket;

/// Output a child wrote to its stdout and stderr, when captured.
///
/// Capture is bounded ([`Builder::capture_limit`], 64 MiB per stream by
/// default): beyond the limit, the first half and the last half of it are kept,
/// and the bytes left out between them are counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CapturedOutput {
    /// What was written to stdout (all of it, unless `stdout_dropped > 0`).
    pub stdout: Vec<u8>,
    /// What was written to stderr (all of it, unless `stderr_dropped > 0`).
    pub stderr: Vec<u8>,
    /// Bytes of stdout left out of the middle of `stdout` (over the limit).
    pub stdout_dropped: u64,
    /// Bytes of stderr left out of the middle of `stderr` (over the limit).
    pub stderr_dropped: u64,
}

/// Options for starting a process: name, daemon flag, start method, output capture.
///
/// # Examples
///
/// ```
/// use mproc::process::{Process, StartMethod};
///
/// let child = Process::builder()
///     .name("adder")
///     .daemon(true)
///     .start_method(StartMethod::Spawn)
///     .start(|(a, b): (u8, u8)| a + b, (2, 3))?;
/// assert_eq!(child.name(), "adder");
/// assert_eq!(child.join()?, 5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    name: Option<String>,
    daemon: bool,
    method: StartMethod,
    capture: bool,
    handshake_timeout: Duration,
    fault: StartFault,
    contain: bool,
    forward_logs: bool,
    memory_limit: Option<u64>,
    prefix_output: bool,
    capture_limit: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            name: None,
            daemon: false,
            method: StartMethod::default(),
            capture: false,
            handshake_timeout: Duration::from_secs(30),
            fault: StartFault::None,
            contain: true,
            forward_logs: true,
            memory_limit: None,
            prefix_output: false,
            capture_limit: 64 << 20,
        }
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Builder {
    /// The process's name (default `Process-N`), seen by [`current_process`] in the child.
    pub fn name(&mut self, name: impl Into<String>) -> &mut Self {
        self.name = Some(name.into());
        self
    }

    /// Whether the child is a daemon: terminated, not waited for, when the parent
    /// exits normally. Default `false`.
    pub fn daemon(&mut self, daemon: bool) -> &mut Self {
        self.daemon = daemon;
        self
    }

    /// The start method. Default: the one in force ([`get_start_method`](super::get_start_method)).
    pub fn start_method(&mut self, method: StartMethod) -> &mut Self {
        self.method = method;
        self
    }

    /// Captures the child's stdout and stderr instead of sharing the parent's; read
    /// them with [`Process::join_with_output`].
    ///
    /// The parent reads the output as it is written (one thread, `mproc-logs`,
    /// for all children), so a child that prints a lot, or without end, never
    /// waits for its parent; what is kept is bounded by
    /// [`capture_limit`](Builder::capture_limit).
    pub fn capture_output(&mut self, capture: bool) -> &mut Self {
        self.capture = capture;
        self
    }

    /// The most bytes of each of stdout and stderr that
    /// [`capture_output`](Builder::capture_output) keeps (default 64 MiB): over
    /// it, the first half and the last half of the limit are kept and the rest is
    /// counted in [`CapturedOutput::stdout_dropped`] / `stderr_dropped`.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::process::Process;
    ///
    /// let child = Process::builder()
    ///     .capture_output(true)
    ///     .capture_limit(1000)
    ///     .start(|n: usize| print!("{}", "x".repeat(n)), 1_000_000)?;
    /// let (result, output) = child.join_with_output();
    /// result?;
    /// assert_eq!(output.stdout.len(), 1000);
    /// assert_eq!(output.stdout_dropped, 999_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capture_limit(&mut self, bytes: usize) -> &mut Self {
        self.capture_limit = bytes;
        self
    }

    /// Passes the child's stdout and stderr through to the parent's, each line
    /// prefixed with `[<process name>] `, so that the output of many children can
    /// be told apart (default `false`). Lines come out whole, never mixed with
    /// another child's. [`capture_output`](Builder::capture_output) takes
    /// precedence.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::process::Process;
    ///
    /// // Prints "[greeter] hello" on this process's stdout.
    /// let child = Process::builder()
    ///     .name("greeter")
    ///     .prefix_output(true)
    ///     .start(|_: ()| println!("hello"), ())?;
    /// child.join()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prefix_output(&mut self, on: bool) -> &mut Self {
        self.prefix_output = on;
        self
    }

    /// How long a child may take to confirm that it started (default 30 s). A child
    /// that does not is killed and reported as [`JoinError::HandshakeTimeout`](super::JoinError::HandshakeTimeout).
    pub fn handshake_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Whether the processes the child starts (a `std::process::Command`, its own
    /// children) are killed with it. Default `true`.
    ///
    /// When on, the child leads a process group of its own, and its descendants
    /// (which stay in that group unless they leave it with `setsid`/`setpgid`) are
    /// sent `SIGKILL` when the child ends, however it ends (a return, a panic,
    /// [`Process::kill`], a pool retiring or killing its worker); `terminate` and
    /// `kill` signal the whole group. Under the forkserver this holds even when the
    /// parent is killed with `SIGKILL`. Turn it off for a task that deliberately
    /// starts a daemon meant to outlive it; the child then stays in its parent's
    /// process group, as in Python.
    ///
    /// A contained child is not in the terminal's foreground process group: it
    /// does not receive the terminal's Ctrl-C itself (its parent does, and the child
    /// dies with the parent), and reading from the terminal stops it (`SIGTTIN`).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::process::Process;
    ///
    /// // A task that leaves a helper running on purpose.
    /// let child = Process::builder()
    ///     .contain_descendants(false)
    ///     .start(|_: ()| std::process::id(), ())?;
    /// assert!(child.join()? > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contain_descendants(&mut self, contain: bool) -> &mut Self {
        self.contain = contain;
        self
    }

    /// Whether the child's `log` records are handed to this process's logger,
    /// tagged with the child's name and pid (default `true`; see
    /// [`observe`](crate::observe)). Nothing is forwarded while this process has
    /// no logger (`log::max_level()` is `Off` when the child starts).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::process::Process;
    ///
    /// // This child's records stay in the child (where no logger is installed).
    /// let child = Process::builder()
    ///     .forward_logs(false)
    ///     .start(|_: ()| log::info!("not forwarded"), ())?;
    /// child.join()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn forward_logs(&mut self, on: bool) -> &mut Self {
        self.forward_logs = on;
        self
    }

    /// A hard limit on the memory the child may allocate, in bytes (none by
    /// default). An allocation beyond it fails, the child aborts, and `join`
    /// reports [`JoinError::OutOfMemory`](super::JoinError::OutOfMemory) instead of driving the machine into
    /// swap or the kernel's OOM killer.
    ///
    /// The limit is the child's data segment (`RLIMIT_DATA`: its heap and private
    /// writable mappings, counted when mapped, not when touched). A `Fork` child
    /// starts with a copy of its parent's data, which counts too; `Spawn` and
    /// forkserver children start small.
    ///
    /// # Platform
    ///
    /// An abort is taken for a failed allocation when `errno` is `ENOMEM` at the
    /// abort, which is what Rust's allocation-error handler leaves. So that its
    /// backtrace printing does not change `errno`, the child removes
    /// `RUST_BACKTRACE` and `RUST_LIB_BACKTRACE` from its environment (mproc's own
    /// panic reports capture backtraces regardless); a `Fork` child whose parent
    /// already read them (by printing a panic's backtrace) may then see its
    /// failed allocation reported as a plain `SIGABRT`. A task that calls `abort`
    /// itself right after a system call failed with `ENOMEM` is reported as out
    /// of memory.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::process::Process;
    ///
    /// let child = Process::builder()
    ///     .memory_limit(256 << 20)
    ///     .start(|n: usize| vec![1u8; n].len(), 4 << 30)?;
    /// let err = child.join().unwrap_err();
    /// assert!(err.is_out_of_memory(), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn memory_limit(&mut self, bytes: u64) -> &mut Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// Makes the child simulate a start failure (tests of error reporting only).
    #[doc(hidden)]
    pub fn simulate_start_fault(&mut self, fault: StartFault) -> &mut Self {
        self.fault = fault;
        self
    }

    /// Starts `f(arg)` in a new process.
    ///
    /// # Errors
    ///
    /// [`SpawnError`] when the argument cannot be serialized or the process cannot
    /// be created.
    pub fn start<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<Process<R>, SpawnError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let msg = codec::encode(&arg).map_err(|e| SpawnError::Encode(e.to_string()))?;
        self.launch(EntryPoint::for_fn(f), msg)
    }

    /// Starts `task.run()` in a new process.
    ///
    /// # Errors
    ///
    /// As [`Builder::start`].
    pub fn start_task<T: Task>(&self, task: T) -> Result<Process<T::Output>, SpawnError> {
        let msg = codec::encode(&task).map_err(|e| SpawnError::Encode(e.to_string()))?;
        self.launch(EntryPoint::for_task::<T>(), msg)
    }

    fn launch<R>(&self, entry: EntryPoint, args: codec::Message) -> Result<Process<R>, SpawnError> {
        let name = match &self.name {
            Some(n) => n.clone(),
            None => format!("Process-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed)),
        };
        let me = current_process();
        let mut arg_fds = args.fds;
        let oom = match self.memory_limit {
            Some(limit) => {
                let (r, w) = socket::pipe().map_err(SpawnError::io("pipe"))?;
                socket::set_nonblocking(r.as_fd(), true).map_err(SpawnError::io("pipe"))?;
                arg_fds.insert(0, w);
                Some((r, limit))
            }
            None => None,
        };
        let level = log::max_level();
        let logs = if self.forward_logs && level != log::LevelFilter::Off {
            let (source, child_end) = crate::observe::collect::open(&name)
                .map_err(SpawnError::io("socketpair for the child's log records"))?;
            arg_fds.insert(0, child_end);
            Some(source)
        } else {
            None
        };
        let job = Job {
            entry,
            name: name.clone(),
            daemon: self.daemon,
            parent: Origin {
                pid: me.pid,
                name: me.name,
            },
            args: args.bytes,
            fault: self.fault,
            contain: self.contain,
            logs: logs.as_ref().map(|_| level as usize as u8),
            memory_limit: self.memory_limit,
        };
        let launched = launch::launch(launch::Request {
            job,
            arg_fds,
            capture: self.capture || self.prefix_output,
            method: self.method,
            handshake_timeout: self.handshake_timeout,
        })?;
        if let Some(source) = &logs {
            source.watch(launched.pid);
        }
        let pidfd = Arc::new(launched.pidfd);
        registry::register(launched.pid, &name, self.daemon, Arc::clone(&pidfd));
        let mode = if self.capture {
            output::Mode::Capture {
                limit: self.capture_limit,
            }
        } else {
            output::Mode::Prefix
        };
        let output = launched.output.map(|(out, err)| {
            (
                StreamSource::start(out, output::Stream::Stdout, &name, mode),
                StreamSource::start(err, output::Stream::Stderr, &name, mode),
            )
        });
        Ok(Process {
            pid: launched.pid,
            name,
            daemon: self.daemon,
            method: self.method,
            pidfd,
            control: launched.control,
            exit: Some(launched.exit),
            started_at: Instant::now(),
            handshake_timeout: self.handshake_timeout,
            handshake_done: false,
            report: None,
            eof: false,
            status: None,
            output,
            capturing: self.capture,
            contained: self.contain,
            logs,
            oom,
            out_of_memory: false,
            _result: PhantomData,
        })
    }
}

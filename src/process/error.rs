//! Errors of starting and joining processes.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::process::ExitStatus;
use crate::sys::process as os;

/// A process could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The arguments (or the task value) could not be serialized, for example
    /// because they hold a handle that cannot travel.
    #[error("cannot send the arguments to the child: {0}")]
    Encode(String),
    /// A system call failed while starting the child.
    #[error("cannot start the child: {what} failed: {source}")]
    Io {
        /// The step that failed.
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// This process was started by mproc but its bootstrap did not run, so it is
    /// running `main` as a stray copy of its parent; it refuses to start children to
    /// avoid starting copies without end.
    #[error(
        "this process was started by mproc but the mproc bootstrap did not run in it; \
         see \"Start methods\" in the process docs"
    )]
    BootstrapMissing,
    /// The forkserver could not start a child.
    #[error("the forkserver could not start the child: {0}")]
    Forkserver(String),
    /// A system resource ran out while starting this child. Only this start failed:
    /// the children already running (and the forkserver) are unharmed, and a later
    /// start succeeds once the resource is back.
    #[error("cannot start the child: {resource} ({what} failed: {source})")]
    ResourceExhausted {
        /// What ran out.
        resource: Resource,
        /// The step that failed.
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

impl SpawnError {
    /// The error of step `what` failing with an OS error: [`SpawnError::ResourceExhausted`]
    /// when the error says a resource ran out, [`SpawnError::Io`] otherwise.
    pub(crate) fn io(what: &'static str) -> impl FnOnce(io::Error) -> SpawnError {
        move |source| {
            let creating = what.contains("fork") || what.contains("spawn");
            match os::shortage(&source, creating) {
                Some(s) => SpawnError::ResourceExhausted {
                    resource: s.into(),
                    what,
                    source,
                },
                None => SpawnError::Io { what, source },
            }
        }
    }

    /// The resource that ran out, when that is why the start failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::process::{Process, Resource};
    ///
    /// match Process::start(|x: u8| x, 1) {
    ///     Ok(child) => assert_eq!(child.join()?, 1),
    ///     // Only this start failed; close some files (or wait) and try again.
    ///     Err(e) if e.resource() == Some(Resource::OpenFiles) => eprintln!("{e}"),
    ///     Err(e) => return Err(e.into()),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resource(&self) -> Option<Resource> {
        match self {
            SpawnError::ResourceExhausted { resource, .. } => Some(*resource),
            _ => None,
        }
    }
}

/// A system resource whose exhaustion stopped a start ([`SpawnError::resource`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Resource {
    /// This process's limit on open file descriptors (`EMFILE`, `RLIMIT_NOFILE`,
    /// `ulimit -n`).
    OpenFiles,
    /// The system-wide limit on open files (`ENFILE`, `fs.file-max`).
    SystemOpenFiles,
    /// The limit on processes (`EAGAIN` from `fork`: `RLIMIT_NPROC`/`ulimit -u`, a
    /// cgroup's `pids.max`, or `kernel.threads-max`).
    Processes,
    /// Memory (`ENOMEM`).
    Memory,
    /// Shared memory: the `tmpfs` behind memory files is full (`ENOSPC`).
    SharedMemory,
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Resource::OpenFiles => {
                "too many open files (this process's descriptor limit, RLIMIT_NOFILE / ulimit -n)"
            }
            Resource::SystemOpenFiles => "too many open files in the system (fs.file-max)",
            Resource::Processes => {
                "too many processes (RLIMIT_NPROC / ulimit -u, or the cgroup's pids.max)"
            }
            Resource::Memory => "out of memory",
            Resource::SharedMemory => {
                "out of shared memory (the tmpfs behind memory files is full)"
            }
        })
    }
}

impl From<os::Shortage> for Resource {
    fn from(s: os::Shortage) -> Resource {
        match s {
            os::Shortage::OpenFiles => Resource::OpenFiles,
            os::Shortage::SystemOpenFiles => Resource::SystemOpenFiles,
            os::Shortage::Processes => Resource::Processes,
            os::Shortage::Memory => Resource::Memory,
            os::Shortage::SharedMemory => Resource::SharedMemory,
        }
    }
}

/// Why a process did not hand back a result.
///
/// Every variant names the process and its pid first. Ask with the `is_*` methods
/// or match on the variant.
#[derive(Debug)]
#[non_exhaustive]
pub enum JoinError {
    /// The task panicked.
    Panicked {
        /// The process's name.
        name: String,
        /// Its pid.
        pid: u32,
        /// The panic message.
        message: String,
        /// Where it panicked (`file:line:column`), when known.
        location: Option<String>,
        /// The backtrace captured in the child.
        backtrace: String,
    },
    /// The process was killed by a signal before it returned a result.
    Signaled {
        /// The process's name.
        name: String,
        /// Its pid.
        pid: u32,
        /// The signal number.
        signal: i32,
    },
    /// The process exited with this code without returning a result.
    Exited {
        /// The process's name.
        name: String,
        /// Its pid.
        pid: u32,
        /// The exit code.
        code: i32,
    },
    /// The process ended before the mproc bootstrap ran in it (for example, the
    /// executable was built without mproc's load hook).
    BootstrapMissing {
        /// The process's name.
        name: String,
        /// Its pid.
        pid: u32,
        /// How it ended.
        status: ExitStatus,
    },
    /// The child did not confirm its start in time; it was killed.
    HandshakeTimeout {
        /// The process's name.
        name: String,
        /// Its pid.
        pid: u32,
        /// How long the parent waited.
        waited: Duration,
    },
    /// The task could not run or its result could not travel: the arguments or the
    /// result failed to (de)serialize.
    Codec {
        /// The process's name.
        name: String,
        /// Its pid.
        pid: u32,
        /// What went wrong.
        reason: String,
    },
    /// An allocation failed under the child's
    /// [`memory_limit`](crate::process::Builder::memory_limit) and the child
    /// aborted.
    OutOfMemory {
        /// The process's name.
        name: String,
        /// Its pid.
        pid: u32,
        /// The limit, in bytes.
        limit: u64,
    },
    /// Talking to the child failed.
    Io {
        /// The process's name.
        name: String,
        /// Its pid.
        pid: u32,
        /// The operating system's error.
        source: io::Error,
    },
}

impl JoinError {
    /// The pid of the process.
    pub fn pid(&self) -> u32 {
        match self {
            JoinError::Panicked { pid, .. }
            | JoinError::Signaled { pid, .. }
            | JoinError::Exited { pid, .. }
            | JoinError::BootstrapMissing { pid, .. }
            | JoinError::HandshakeTimeout { pid, .. }
            | JoinError::Codec { pid, .. }
            | JoinError::OutOfMemory { pid, .. }
            | JoinError::Io { pid, .. } => *pid,
        }
    }

    /// Whether the child ran out of the memory its
    /// [`memory_limit`](crate::process::Builder::memory_limit) allowed.
    ///
    /// # Examples
    ///
    /// See [`Builder::memory_limit`](crate::process::Builder::memory_limit).
    pub fn is_out_of_memory(&self) -> bool {
        matches!(self, JoinError::OutOfMemory { .. })
    }

    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked { .. })
    }

    /// The panic message, if the task panicked.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            JoinError::Panicked { message, .. } => Some(message),
            _ => None,
        }
    }

    /// The backtrace captured in the child where the task panicked, if it did. The
    /// error's message includes it with `{:#}`, or with `{}` when `RUST_BACKTRACE` is set.
    pub fn backtrace(&self) -> Option<&str> {
        match self {
            JoinError::Panicked { backtrace, .. } => Some(backtrace),
            _ => None,
        }
    }

    /// Whether a signal killed the process.
    pub fn is_signaled(&self) -> bool {
        matches!(self, JoinError::Signaled { .. })
    }

    /// The signal that killed the process, if one did.
    pub fn signal(&self) -> Option<i32> {
        match self {
            JoinError::Signaled { signal, .. } => Some(*signal),
            JoinError::BootstrapMissing {
                status: ExitStatus::Signal(s),
                ..
            } => Some(*s),
            _ => None,
        }
    }
}

/// `bytes` in the largest binary unit that keeps it whole or above 1 (`256 MiB`).
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value.fract() == 0.0 {
        format!("{value} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Whether a panic's error shows its backtrace in `{}`: when `RUST_LIB_BACKTRACE`, or
/// failing that `RUST_BACKTRACE`, is set and not `0` (std's rule for
/// `Backtrace::capture`), read once.
fn backtrace_wanted() -> bool {
    static WANTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WANTED.get_or_init(|| {
        let var =
            std::env::var_os("RUST_LIB_BACKTRACE").or_else(|| std::env::var_os("RUST_BACKTRACE"));
        var.is_some_and(|v| v != "0")
    })
}

/// Appends a panic's backtrace (captured in the child) to its error message: always
/// for `{:#}`, and for `{}` when `RUST_BACKTRACE` asks for backtraces.
pub(crate) fn write_backtrace(f: &mut fmt::Formatter<'_>, backtrace: &str) -> fmt::Result {
    if backtrace.is_empty() || !(f.alternate() || backtrace_wanted()) {
        return Ok(());
    }
    write!(
        f,
        "\nstack backtrace (in the child):\n{}",
        backtrace.trim_end()
    )
}

pub(crate) fn describe_signal(signal: i32) -> String {
    match crate::sys::process::signal_name(signal) {
        Some(name) => format!("signal {signal} ({name})"),
        None => format!("signal {signal}"),
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked {
                name,
                pid,
                message,
                location,
                backtrace,
            } => {
                write!(f, "process '{name}' (pid {pid}) panicked")?;
                if let Some(at) = location {
                    write!(f, " at {at}")?;
                }
                write!(f, ": {message}")?;
                write_backtrace(f, backtrace)
            }
            JoinError::Signaled { name, pid, signal } => {
                write!(
                    f,
                    "process '{name}' (pid {pid}) was killed by {}",
                    describe_signal(*signal)
                )
            }
            JoinError::OutOfMemory { name, pid, limit } => write!(
                f,
                "process '{name}' (pid {pid}) ran out of memory: an allocation failed under its limit of {}",
                human_bytes(*limit)
            ),
            JoinError::Exited { name, pid, code } => {
                write!(
                    f,
                    "process '{name}' (pid {pid}) exited with code {code} before returning a result"
                )
            }
            JoinError::BootstrapMissing { name, pid, status } => write!(
                f,
                "process '{name}' (pid {pid}) ended ({status}) before the mproc bootstrap ran; \
                 see \"Start methods\" in the process docs"
            ),
            JoinError::HandshakeTimeout { name, pid, waited } => write!(
                f,
                "process '{name}' (pid {pid}) did not confirm its start within {waited:?} and was killed; \
                 raise `handshake_timeout` if the machine is very loaded"
            ),
            JoinError::Codec { name, pid, reason } => {
                write!(f, "process '{name}' (pid {pid}): {reason}")
            }
            JoinError::Io { name, pid, source } => {
                write!(
                    f,
                    "lost contact with process '{name}' (pid {pid}): {source}"
                )
            }
        }
    }
}

impl std::error::Error for JoinError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JoinError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// [`Process::join_timeout`](crate::process::Process::join_timeout) did not get a result.
pub enum JoinTimeoutError<R> {
    /// The process is still running; here is its handle back.
    Timeout(Box<crate::process::Process<R>>),
    /// The process ended without a result.
    Failed(JoinError),
}

impl<R> JoinTimeoutError<R> {
    /// Whether the wait timed out (the process may still finish).
    pub fn is_timeout(&self) -> bool {
        matches!(self, JoinTimeoutError::Timeout(_))
    }

    /// The handle back, after a timeout.
    pub fn into_inner(self) -> Option<crate::process::Process<R>> {
        match self {
            JoinTimeoutError::Timeout(p) => Some(*p),
            JoinTimeoutError::Failed(_) => None,
        }
    }
}

impl<R> fmt::Debug for JoinTimeoutError<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinTimeoutError::Timeout(p) => write!(f, "Timeout(pid {})", p.pid()),
            JoinTimeoutError::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
        }
    }
}

impl<R> fmt::Display for JoinTimeoutError<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinTimeoutError::Timeout(p) => write!(
                f,
                "process '{}' (pid {}) is still running",
                p.name(),
                p.pid()
            ),
            JoinTimeoutError::Failed(e) => e.fmt(f),
        }
    }
}

impl<R> std::error::Error for JoinTimeoutError<R> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JoinTimeoutError::Timeout(_) => None,
            JoinTimeoutError::Failed(e) => Some(e),
        }
    }
}

impl<R> From<JoinError> for JoinTimeoutError<R> {
    fn from(e: JoinError) -> Self {
        JoinTimeoutError::Failed(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panicked(backtrace: &str) -> JoinError {
        JoinError::Panicked {
            name: "divider".into(),
            pid: 42,
            message: "attempt to divide by zero".into(),
            location: Some("src/main.rs:3:5".into()),
            backtrace: backtrace.into(),
        }
    }

    #[test]
    fn a_panic_shows_its_backtrace_with_alternate_or_rust_backtrace() {
        let err = panicked("   0: divider::main\n   1: std::rt::lang_start\n");
        let head =
            "process 'divider' (pid 42) panicked at src/main.rs:3:5: attempt to divide by zero";
        let full = format!(
            "{head}\nstack backtrace (in the child):\n   0: divider::main\n   1: std::rt::lang_start"
        );
        assert_eq!(format!("{err:#}"), full);
        assert_eq!(
            err.backtrace(),
            Some("   0: divider::main\n   1: std::rt::lang_start\n")
        );
        // `{}` follows RUST_BACKTRACE, as a panic in this process would.
        let plain = if backtrace_wanted() { &full[..] } else { head };
        assert_eq!(format!("{err}"), plain);
        // No backtrace captured: nothing is appended.
        assert_eq!(format!("{:#}", panicked("")), head);
    }
}

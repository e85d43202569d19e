//! Who this process is: `current_process()` and `parent_process()`.

use std::sync::Mutex;

use crate::process::protocol::Origin;
use crate::sys::process as os;

/// Facts about a process: its pid, name and daemon flag.
///
/// # Examples
///
/// ```
/// let me = mproc::process::current_process();
/// assert_eq!(me.pid(), std::process::id());
/// assert_eq!(me.name(), "MainProcess");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    pub(crate) pid: u32,
    pub(crate) name: String,
    pub(crate) daemon: bool,
}

impl ProcessInfo {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The name given at start (`"MainProcess"` for a process mproc did not start).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the process was started as a daemon.
    pub fn is_daemon(&self) -> bool {
        self.daemon
    }
}

struct Current {
    pid: u32,
    name: String,
    daemon: bool,
    parent: Option<Origin>,
}

static CURRENT: Mutex<Option<Current>> = Mutex::new(None);

/// Records who this process is; called once by the child bootstrap.
pub(crate) fn set_current(name: String, daemon: bool, parent: Option<Origin>) {
    let mut c = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    *c = Some(Current {
        pid: os::getpid(),
        name,
        daemon,
        parent,
    });
}

/// Holds the lock of this module's state across a `fork`, so that the child never
/// inherits it locked by a thread that does not exist there.
pub(crate) fn fork_guard() -> std::sync::MutexGuard<'static, impl Sized> {
    CURRENT.lock().unwrap_or_else(|e| e.into_inner())
}

/// The process calling this function.
///
/// In a process started by mproc this is the name and daemon flag it was started
/// with; elsewhere it is `"MainProcess"`, like Python's `current_process()`.
///
/// # Examples
///
/// ```
/// use mproc::process::{current_process, Process};
///
/// fn my_name(_: ()) -> String {
///     current_process().name().to_string()
/// }
///
/// let child = Process::builder().name("worker-7").start(my_name, ())?;
/// assert_eq!(child.join()?, "worker-7");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn current_process() -> ProcessInfo {
    let pid = os::getpid();
    let c = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    match &*c {
        Some(c) if c.pid == pid => ProcessInfo {
            pid,
            name: c.name.clone(),
            daemon: c.daemon,
        },
        _ => ProcessInfo {
            pid,
            name: "MainProcess".to_string(),
            daemon: false,
        },
    }
}

/// The process that started this one through mproc, or `None` in a process that
/// mproc did not start.
///
/// # Examples
///
/// ```
/// use mproc::process::{parent_process, Process};
///
/// fn parent_pid(_: ()) -> Option<u32> {
///     parent_process().map(|p| p.pid())
/// }
///
/// assert_eq!(parent_process(), None);
/// let child = Process::start(parent_pid, ())?;
/// assert_eq!(child.join()?, Some(std::process::id()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn parent_process() -> Option<ProcessInfo> {
    let pid = os::getpid();
    let c = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    match &*c {
        Some(c) if c.pid == pid => c.parent.as_ref().map(|p| ProcessInfo {
            pid: p.pid,
            name: p.name.clone(),
            daemon: false,
        }),
        _ => None,
    }
}

/// The number of CPUs this process may use (its affinity mask, like
/// `os.process_cpu_count()`; at least 1).
///
/// # Examples
///
/// ```
/// assert!(mproc::process::cpu_count() >= 1);
/// ```
pub fn cpu_count() -> usize {
    os::cpu_count()
}

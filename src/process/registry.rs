//! The children of this process: who is alive, who reaps a dropped handle, and what
//! happens to them when this process exits.
//!
//! Every child is registered at start with its pidfd. A child whose [`Process`]
//! handle is joined leaves the registry there; one whose handle is dropped first is
//! handed to the reaper thread, which waits for it and reaps it, so no zombie is
//! left. At normal exit (`exit()` or a return from `main`) an `atexit` handler
//! terminates daemon children and waits for the others, as Python does.
//!
//! [`Process`]: crate::process::Process

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::process::info::ProcessInfo;
use crate::process::protocol;
use crate::sys::process::{self as os, RawExit};
use crate::sys::socket;

/// How the exit status of a child is learned.
#[derive(Debug)]
pub(crate) enum ExitSource {
    /// A direct child: `waitid` on its pidfd. `group`: the child leads this process
    /// group, whose other members (its descendants) are killed when it is reaped.
    Direct {
        /// The child's process group, when it is contained.
        group: Option<u32>,
    },
    /// A child of the forkserver, which writes the status to this pipe.
    Server(OwnedFd),
}

/// Waits until the child behind `pidfd` has exited, at most until `deadline`, and
/// reaps it. `Ok(None)` at the deadline.
pub(crate) fn wait_exit(
    pidfd: &OwnedFd,
    source: &ExitSource,
    deadline: Option<Instant>,
) -> io::Result<Option<RawExit>> {
    let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    match source {
        ExitSource::Direct { group } => {
            if !os::pidfd_wait_exit(pidfd.as_fd(), timeout)? {
                return Ok(None);
            }
            if let Some(g) = group {
                // Before the reap: while the leader is a zombie its group's id
                // cannot have been reused.
                let _ = os::signal_group(*g, os::SIGKILL);
            }
            os::pidfd_reap(pidfd.as_fd(), true)
        }
        ExitSource::Server(status) => {
            if !socket::poll(&[(status.as_fd(), false)], timeout)?[0].readable {
                return Ok(None);
            }
            let mut buf = [0u8; 8];
            let mut got = 0;
            while got < buf.len() {
                let n = socket::read(status.as_fd(), &mut buf[got..])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the forkserver exited before it reported the child's exit status",
                    ));
                }
                got += n;
            }
            protocol::decode_status(buf).map(Some).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "malformed exit status from the forkserver",
                )
            })
        }
    }
}

struct Entry {
    name: String,
    daemon: bool,
    pidfd: Arc<OwnedFd>,
    /// Set when the handle was dropped before the child was reaped.
    detached: Option<ExitSource>,
}

struct Registry {
    owner: u32,
    live: HashMap<u32, Entry>,
    reaper: Option<(OwnedFd, std::thread::JoinHandle<()>)>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

fn lock() -> MutexGuard<'static, Option<Registry>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The registry of this process, reset when it was inherited through `fork`.
fn current(guard: &mut Option<Registry>) -> &mut Registry {
    let me = os::getpid();
    if guard.as_ref().is_none_or(|r| r.owner != me) {
        *guard = Some(Registry {
            owner: me,
            live: HashMap::new(),
            reaper: None,
        });
        os::at_exit(on_exit);
    }
    guard.as_mut().expect("just set")
}

/// Holds the registry's lock across a `fork` (see `info::fork_guard`).
pub(crate) fn fork_guard() -> MutexGuard<'static, impl Sized> {
    lock()
}

/// Records a newly started child.
pub(crate) fn register(pid: u32, name: &str, daemon: bool, pidfd: Arc<OwnedFd>) {
    let mut g = lock();
    current(&mut g).live.insert(
        pid,
        Entry {
            name: name.to_string(),
            daemon,
            pidfd,
            detached: None,
        },
    );
}

/// Forgets a child that its handle has reaped.
pub(crate) fn forget(pid: u32) {
    let mut g = lock();
    current(&mut g).live.remove(&pid);
}

/// Hands a child whose handle was dropped unreaped to the reaper thread.
pub(crate) fn detach(pid: u32, source: ExitSource) {
    let mut g = lock();
    let reg = current(&mut g);
    let Some(entry) = reg.live.get_mut(&pid) else {
        return;
    };
    entry.detached = Some(source);
    if reg.reaper.is_none() {
        match spawn_reaper() {
            Ok(r) => reg.reaper = Some(r),
            Err(e) => {
                log::warn!(
                    "mproc: cannot start the reaper thread ({e}); child {pid} is reaped at exit"
                );
                return;
            }
        }
    }
    if let Some((wake, _)) = &reg.reaper {
        let _ = socket::write(wake.as_fd(), &[1]);
    }
}

fn spawn_reaper() -> io::Result<(OwnedFd, std::thread::JoinHandle<()>)> {
    let (wake_r, wake_w) = socket::pipe()?;
    let handle = std::thread::Builder::new()
        .name("mproc-reaper".into())
        .spawn(move || reaper_loop(wake_r))?;
    Ok((wake_w, handle))
}

fn reaper_loop(wake: OwnedFd) {
    loop {
        let watched: Vec<(u32, Arc<OwnedFd>)> = {
            let mut g = lock();
            let reg = current(&mut g);
            reg.live
                .iter()
                .filter(|(_, e)| e.detached.is_some())
                .map(|(pid, e)| (*pid, Arc::clone(&e.pidfd)))
                .collect()
        };
        let mut fds = vec![(wake.as_fd(), false)];
        fds.extend(watched.iter().map(|(_, fd)| (fd.as_fd(), false)));
        let Ok(ready) = socket::poll(&fds, None) else {
            return;
        };
        if ready[0].readable {
            let mut buf = [0u8; 64];
            match socket::read(wake.as_fd(), &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        for ((pid, pidfd), r) in watched.iter().zip(&ready[1..]) {
            if !r.readable {
                continue;
            }
            let entry = {
                let mut g = lock();
                current(&mut g).live.remove(pid)
            };
            if let Some(Entry {
                detached: Some(source),
                ..
            }) = entry
            {
                let _ = wait_exit(
                    pidfd,
                    &source,
                    Some(Instant::now() + Duration::from_secs(5)),
                );
            }
        }
    }
}

/// The children that are still running.
pub(crate) fn active() -> Vec<ProcessInfo> {
    let mut g = lock();
    let reg = current(&mut g);
    let mut out: Vec<ProcessInfo> = reg
        .live
        .iter()
        .filter(|(_, e)| {
            !os::pidfd_wait_exit(e.pidfd.as_fd(), Some(Duration::ZERO)).unwrap_or(true)
        })
        .map(|(pid, e)| ProcessInfo {
            pid: *pid,
            name: e.name.clone(),
            daemon: e.daemon,
        })
        .collect();
    out.sort_by_key(|p| p.pid);
    out
}

/// How long daemon children get between SIGTERM and SIGKILL at exit.
const DAEMON_GRACE: Duration = Duration::from_secs(1);

extern "C" fn on_exit() {
    let _ = std::panic::catch_unwind(shutdown_children);
}

/// At normal exit: SIGTERM (then SIGKILL) to daemon children, wait for the rest.
pub(crate) fn shutdown_children() {
    let children: Vec<(u32, bool, Arc<OwnedFd>)> = {
        let mut g = lock();
        let me = os::getpid();
        match &mut *g {
            Some(reg) if reg.owner == me => reg
                .live
                .iter()
                .map(|(p, e)| (*p, e.daemon, Arc::clone(&e.pidfd)))
                .collect(),
            _ => return,
        }
    };
    for (_, daemon, pidfd) in &children {
        if *daemon {
            let _ = os::pidfd_signal(pidfd.as_fd(), os::SIGTERM);
        }
    }
    let grace_end = Instant::now() + DAEMON_GRACE;
    for (_, daemon, pidfd) in &children {
        if *daemon
            && !os::pidfd_wait_exit(
                pidfd.as_fd(),
                Some(grace_end.saturating_duration_since(Instant::now())),
            )
            .unwrap_or(true)
        {
            let _ = os::pidfd_signal(pidfd.as_fd(), os::SIGKILL);
        }
        // Non-daemon children are waited for, as Python's exit does.
        let _ = os::pidfd_wait_exit(pidfd.as_fd(), None);
    }
    // Reap direct children (a forkserver child's status is the server's business),
    // killing what a contained one left behind.
    for (pid, _, pidfd) in &children {
        if os::pidfd_wait_exit(pidfd.as_fd(), Some(Duration::ZERO)).unwrap_or(false)
            && contained(*pid)
        {
            let _ = os::signal_group(*pid, os::SIGKILL);
        }
        let _ = os::pidfd_reap(pidfd.as_fd(), false);
    }
}

/// Whether `pid` is a direct child of this process that leads a process group of its
/// own (started with containment).
fn contained(pid: u32) -> bool {
    os::process_group_of(pid) == Some(pid)
}

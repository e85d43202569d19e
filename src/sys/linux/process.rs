//! Process creation, pidfds, signals, reaping and process facts.
//!
//! # Safety
//!
//! `posix_spawn` and `fork` come from libc (rustix has neither). The spawn path
//! builds every C string and array it passes before the call and keeps them alive
//! across it. `fork_child` runs its closure in the child and never returns there:
//! the child leaves through `_exit`, so no destructor of the parent's state runs
//! twice. What the closure may safely do in a child of a multi-threaded parent is
//! the documented hazard of `StartMethod::Fork` (as with Python's `fork`).

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use rustix::process::{Pid, PidfdFlags, Signal, WaitId, WaitIdOptions};

/// How a process ended, as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RawExit {
    /// `exit(code)` or a return from `main`.
    Code(i32),
    /// Killed by this signal number.
    Signal(i32),
}

/// This process's id.
pub(crate) fn getpid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

/// The parent's id (0 when the parent is outside our pid namespace).
pub(crate) fn getppid() -> u32 {
    rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get() as u32)
}

/// Whether the calling thread is the process's main thread.
pub(crate) fn is_main_thread() -> bool {
    rustix::thread::gettid() == rustix::process::getpid()
}

/// How many threads this process has now.
pub(crate) fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count())
}

/// The number of CPUs this process may run on.
pub(crate) fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Asks the kernel to SIGKILL this process when the thread that created it exits,
/// then closes the race where that already happened: returns `false` when the
/// parent is no longer `expected_parent`.
pub(crate) fn die_with_parent(expected_parent: u32) -> bool {
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    getppid() == expected_parent
}

/// Ignores `SIGPIPE` as Rust's runtime does before `main`, so that writing to a
/// closed pipe is an `EPIPE` error instead of death. For code that runs before `main`.
pub(crate) fn ignore_sigpipe() {
    // SAFETY: installing `SIG_IGN` involves no handler code, so there is nothing that
    // could run at an unsafe time; `signal` itself is async-signal-safe.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// Leaves the process at once with `code`: no destructors, no `atexit` handlers,
/// no flushing of stdio buffers other than what the caller did.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` is async-signal-safe and does not return.
    unsafe { libc::_exit(code) }
}

/// Opens a pidfd for `pid`.
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid =
        Pid::from_raw(pid as i32).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    Ok(rustix::process::pidfd_open(pid, PidfdFlags::empty())?)
}

/// Sends signal `sig` through a pidfd (never to a recycled pid).
/// `ESRCH` (already exited) counts as success.
pub(crate) fn pidfd_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: the signal number is passed straight to the kernel, which validates it;
    // no handler of ours is involved.
    let sig = unsafe { Signal::from_raw_unchecked(sig) };
    match rustix::process::pidfd_send_signal(pidfd, sig) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Reaps the child behind `pidfd` if it has exited (`block = false`) or once it
/// exits (`block = true`). `Ok(None)`: still running.
pub(crate) fn pidfd_reap(pidfd: BorrowedFd<'_>, block: bool) -> io::Result<Option<RawExit>> {
    let mut opts = WaitIdOptions::EXITED;
    if !block {
        opts |= WaitIdOptions::NOHANG;
    }
    let status = loop {
        match rustix::process::waitid(WaitId::PidFd(pidfd), opts) {
            Err(rustix::io::Errno::INTR) => continue,
            r => break r?,
        }
    };
    Ok(status.and_then(|s| {
        if let Some(code) = s.exit_status() {
            Some(RawExit::Code(code))
        } else {
            s.terminating_signal().map(RawExit::Signal)
        }
    }))
}

/// Whether the process behind `pidfd` has exited, waiting at most `timeout`.
pub(crate) fn pidfd_wait_exit(
    pidfd: BorrowedFd<'_>,
    timeout: Option<Duration>,
) -> io::Result<bool> {
    Ok(super::socket::poll(&[(pidfd, false)], timeout)?[0].readable)
}

/// The conventional name of a signal number (`SIGKILL`), or `None`.
pub(crate) fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => return None,
    })
}

/// Signal numbers used by the portable layers.
pub(crate) const SIGTERM: i32 = libc::SIGTERM;
/// See [`SIGTERM`].
pub(crate) const SIGKILL: i32 = libc::SIGKILL;

/// Starts a new process running this very executable (`/proc/self/exe`), with the
/// current environment plus `extra_env`, and with each `(fd, target)` of
/// `fd_map` installed as descriptor number `target` in the child. Every other
/// descriptor above 2 is closed in the child, close-on-exec or not. With
/// `own_group`, the child leads a new process group from its first instruction.
/// Returns the child's pid.
pub(crate) fn spawn_self(
    extra_env: &[(&str, &str)],
    fd_map: &[(BorrowedFd<'_>, RawFd)],
    own_group: bool,
) -> io::Result<u32> {
    let path = CString::new("/proc/self/exe").expect("no NUL");
    let argv0 = std::env::args_os()
        .next()
        .unwrap_or_else(|| OsString::from("mproc-child"));
    let argv0 = CString::new(argv0.as_bytes())
        .unwrap_or_else(|_| CString::new("mproc-child").expect("no NUL"));
    let mut env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| !extra_env.iter().any(|(e, _)| k.as_bytes() == e.as_bytes()))
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    for (k, v) in extra_env {
        env.push(
            CString::new(format!("{k}={v}"))
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
        );
    }
    let argv_ptrs: [*mut libc::c_char; 2] = [argv0.as_ptr().cast_mut(), std::ptr::null_mut()];
    let mut envp: Vec<*mut libc::c_char> = env.iter().map(|c| c.as_ptr().cast_mut()).collect();
    envp.push(std::ptr::null_mut());

    // A source that is itself one of the targets would be clobbered (or, when equal
    // to its own target, keep its close-on-exec flag): move such sources out of the way.
    let targets: Vec<RawFd> = fd_map.iter().map(|(_, t)| *t).collect();
    let mut moved: Vec<OwnedFd> = Vec::new();
    let mut sources: Vec<RawFd> = Vec::with_capacity(fd_map.len());
    for (fd, _) in fd_map {
        if targets.contains(&fd.as_raw_fd()) {
            let high = rustix::io::fcntl_dupfd_cloexec(fd, 64)?;
            sources.push(high.as_raw_fd());
            moved.push(high);
        } else {
            sources.push(fd.as_raw_fd());
        }
    }

    let mut actions = std::mem::MaybeUninit::<libc::posix_spawn_file_actions_t>::uninit();
    // SAFETY: `actions` is valid, writable storage for one file-actions object.
    let rc = unsafe { libc::posix_spawn_file_actions_init(actions.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    // Every descriptor above the highest target is closed in the child, whether or
    // not it is close-on-exec (Python's spawn does the same): a descriptor some code
    // opened without `O_CLOEXEC` must not leak into a process that never asked for it.
    let close_from = targets.iter().copied().max().unwrap_or(2).max(2) + 1;
    let result = (|| {
        for (src, (_, target)) in sources.iter().zip(fd_map) {
            // SAFETY: `actions` was initialised above and is destroyed only below.
            let rc = unsafe {
                libc::posix_spawn_file_actions_adddup2(actions.as_mut_ptr(), *src, *target)
            };
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
        }
        // SAFETY: `actions` was initialised above and is destroyed only below; the
        // call only records the action (glibc 2.34+ runs `close_range` in the child).
        let rc = unsafe {
            libc::posix_spawn_file_actions_addclosefrom_np(actions.as_mut_ptr(), close_from)
        };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        let mut attr = std::mem::MaybeUninit::<libc::posix_spawnattr_t>::uninit();
        let attr_ptr: *const libc::posix_spawnattr_t = if own_group {
            // SAFETY: `attr` is valid, writable storage for one attributes object.
            let rc = unsafe { libc::posix_spawnattr_init(attr.as_mut_ptr()) };
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            // SAFETY: `attr` was initialised just above. The flag value fits the
            // `c_short` the call takes (it is 2).
            let rc = unsafe {
                libc::posix_spawnattr_setflags(
                    attr.as_mut_ptr(),
                    libc::POSIX_SPAWN_SETPGROUP as libc::c_short,
                )
            };
            let rc = if rc == 0 {
                // SAFETY: `attr` was initialised above; process group 0 means "a new
                // group led by the child".
                unsafe { libc::posix_spawnattr_setpgroup(attr.as_mut_ptr(), 0) }
            } else {
                rc
            };
            if rc != 0 {
                // SAFETY: `attr` was initialised above and is not used again.
                unsafe { libc::posix_spawnattr_destroy(attr.as_mut_ptr()) };
                return Err(io::Error::from_raw_os_error(rc));
            }
            attr.as_ptr()
        } else {
            std::ptr::null()
        };
        let mut pid: libc::pid_t = 0;
        // SAFETY:
        // - `path`, `argv_ptrs` and `envp` are NUL-terminated and their strings
        //   (`argv0`, `env`) live until after the call;
        // - `actions` is initialised; the attribute pointer is null (defaults) or
        //   points to the attributes initialised above;
        // - every source descriptor in `actions` is open until after the call
        //   (borrowed from the caller or held in `moved`).
        let rc = unsafe {
            libc::posix_spawn(
                &mut pid,
                path.as_ptr(),
                actions.as_ptr(),
                attr_ptr,
                argv_ptrs.as_ptr(),
                envp.as_ptr(),
            )
        };
        if own_group {
            // SAFETY: `attr` was initialised above (when `own_group`) and is not used again.
            unsafe { libc::posix_spawnattr_destroy(attr.as_mut_ptr()) };
        }
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(pid as u32)
    })();
    // SAFETY: `actions` was initialised by `posix_spawn_file_actions_init` above.
    unsafe { libc::posix_spawn_file_actions_destroy(actions.as_mut_ptr()) };
    drop(moved);
    result
}

/// Forks. In the child, runs `child` and leaves with its return value as the exit
/// code (101 if it panics), never returning. In the parent, returns the child's pid.
pub(crate) fn fork_child(child: impl FnOnce() -> i32) -> io::Result<u32> {
    // SAFETY: `fork` has no memory-safety preconditions of its own. In the child only
    // the forking thread exists; the closure is the code that `StartMethod::Fork`
    // documents as running there (with its hazards when the parent had threads), and
    // the child never returns into the parent's stack frames: it leaves via `_exit`.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
            exit_now(code)
        }
        pid => Ok(pid as u32),
    }
}

/// Installs `fd` as descriptor `target` (clearing close-on-exec on it).
pub(crate) fn dup_to(fd: BorrowedFd<'_>, target: RawFd) -> io::Result<()> {
    if fd.as_raw_fd() == target {
        let flags = rustix::io::fcntl_getfd(fd)?;
        return Ok(rustix::io::fcntl_setfd(
            fd,
            flags - rustix::io::FdFlags::CLOEXEC,
        )?);
    }
    // SAFETY: `target` is only written by `dup2` and then leaked on purpose: the
    // descriptor number is owned by the process from now on (stdout, stderr or the
    // bootstrap channel), not by a Rust value.
    let mut t = unsafe { OwnedFd::from_raw_fd(target) };
    let r = rustix::io::dup2(fd, &mut t);
    std::mem::forget(t);
    Ok(r?)
}

/// Takes ownership of descriptor number `fd`, which the process inherited.
///
/// Returns `None` when `fd` is not open.
pub(crate) fn take_inherited_fd(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: `fcntl(F_GETFD)` on any integer is harmless: it only reports whether it
    // names an open descriptor.
    let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1;
    if !open {
        return None;
    }
    // SAFETY: the descriptor is open, was handed to this process by its parent for
    // exactly this purpose, and no other code in this process owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let flags = rustix::io::fcntl_getfd(&owned).ok()?;
    let _ = rustix::io::fcntl_setfd(&owned, flags | rustix::io::FdFlags::CLOEXEC);
    Some(owned)
}

/// Removes `key` from the environment.
///
/// Must only be called while the process has a single thread: from the load hook,
/// before `main`.
pub(crate) fn remove_env_single_threaded(key: &str) {
    // SAFETY: the only caller is the load hook, which runs before `main` and before
    // any thread is started, so no other thread can read or write the environment
    // concurrently (the requirement of `remove_var` in edition 2024).
    unsafe { std::env::remove_var(key) };
}

/// Registers `f` to run at normal process exit (`exit()` or a return from `main`).
pub(crate) fn at_exit(f: extern "C" fn()) {
    // SAFETY: `f` is a plain C-ABI function with no arguments, valid for the whole
    // life of the program (it is a function item, not a closure).
    unsafe { libc::atexit(f) };
}

/// Registers `f` to run in the child after every `fork()` made through libc (mproc's
/// `Fork` and forkserver children, and any the program makes itself). `f` must be
/// async-signal-safe: the child of a multi-threaded parent may run nothing else.
pub(crate) fn at_fork_child(f: extern "C" fn()) {
    // SAFETY: `f` is a plain C-ABI function with no arguments, valid for the whole
    // life of the program (a function item); the caller promises it is
    // async-signal-safe. Null prepare and parent handlers are allowed.
    unsafe { libc::pthread_atfork(None, None, Some(f)) };
}

/// The kernel's id of the calling thread (`gettid`): unique among the live threads
/// of the system, and cheap to ask (no allocation, unlike `std::thread::current`,
/// which a freshly forked child would have to set up first).
pub(crate) fn gettid() -> u32 {
    rustix::thread::gettid().as_raw_nonzero().get() as u32
}

/// Kills and reaps a direct child known only by its pid, for a start that fails after
/// the child was created (its pidfd could not be opened): no zombie, no stray child.
/// The pid cannot have been recycled: this process has not reaped it yet.
pub(crate) fn kill_and_reap_pid(pid: u32) {
    let Some(p) = Pid::from_raw(pid as i32) else {
        return;
    };
    let _ = rustix::process::kill_process(p, Signal::KILL);
    while let Err(rustix::io::Errno::INTR) =
        rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty())
    {}
}

/// Puts the calling process in a process group of its own (`setpgid(0, 0)`), so
/// that the processes it starts can be signalled together with it.
pub(crate) fn own_process_group() -> io::Result<()> {
    Ok(rustix::process::setpgid(None, None)?)
}

/// Sends `sig` to every process of process group `pgid`. `ESRCH` (an empty group)
/// counts as success.
///
/// The caller must know that the group still exists: a group's id is a pid, and it
/// is not reused while the group has a member or its leader is unreaped.
pub(crate) fn signal_group(pgid: u32, sig: i32) -> io::Result<()> {
    let Some(p) = Pid::from_raw(pgid as i32) else {
        return Err(io::ErrorKind::InvalidInput.into());
    };
    // SAFETY: the signal number is passed straight to the kernel, which validates it.
    let sig = unsafe { Signal::from_raw_unchecked(sig) };
    match rustix::process::kill_process_group(p, sig) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A system resource that ran out, as the error of a system call tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shortage {
    /// `EMFILE`: this process's descriptor limit (`RLIMIT_NOFILE`).
    OpenFiles,
    /// `ENFILE`: the system-wide limit on open files.
    SystemOpenFiles,
    /// `EAGAIN` from `fork`/`clone`: the process or thread limit (`RLIMIT_NPROC`,
    /// `pids.max` of a cgroup, or `threads-max`).
    Processes,
    /// `ENOMEM`.
    Memory,
    /// `ENOSPC` (or `EFBIG`) writing to a memory file: a full `tmpfs` or the
    /// memory-file size limit.
    SharedMemory,
}

/// Which resource `e` says ran out, if any. `creating_process` tells whether the
/// call created a process (only then does `EAGAIN` mean the process limit).
pub(crate) fn shortage(e: &io::Error, creating_process: bool) -> Option<Shortage> {
    match e.raw_os_error()? {
        libc::EMFILE => Some(Shortage::OpenFiles),
        libc::ENFILE => Some(Shortage::SystemOpenFiles),
        libc::EAGAIN if creating_process => Some(Shortage::Processes),
        libc::ENOMEM => Some(Shortage::Memory),
        libc::ENOSPC | libc::EFBIG => Some(Shortage::SharedMemory),
        _ => None,
    }
}

/// The error a receive reports when descriptors that came with a message were
/// dropped by the kernel because this process had no room for them.
pub(crate) fn descriptors_dropped() -> io::Error {
    io::Error::from_raw_os_error(libc::EMFILE)
}

/// Puts child `pid` in a process group of its own (`setpgid(pid, pid)`), from the
/// parent's side: with the child's own call, whichever runs first makes the group,
/// so that it exists as soon as the parent knows the pid.
pub(crate) fn set_process_group_of(pid: u32) -> io::Result<()> {
    let p =
        Pid::from_raw(pid as i32).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    Ok(rustix::process::setpgid(Some(p), Some(p))?)
}

/// Clears the death signal set by [`die_with_parent`]: for the forkserver, which
/// notices its client's death by the end of its socket and must outlive it long
/// enough to kill its children's descendants.
pub(crate) fn no_death_signal() {
    let _ = rustix::process::set_parent_process_death_signal(None);
}

/// The process group of `pid`, or `None` when it cannot be read (gone).
pub(crate) fn process_group_of(pid: u32) -> Option<u32> {
    let p = Pid::from_raw(pid as i32)?;
    rustix::process::getpgid(Some(p))
        .ok()
        .map(|g| g.as_raw_nonzero().get() as u32)
}

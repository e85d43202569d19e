//! Memory limits of a process and what it used: `RLIMIT_DATA`, peak and current
//! resident set size, and a `SIGABRT` handler that tells an allocation that failed
//! (the limit was hit) from any other abort.
//!
//! # Safety
//!
//! The one unsafe part is the `SIGABRT` handler and its installation. The handler
//! calls only async-signal-safe functions (`write`, `signal`, `raise`) and reads
//! `errno` through `__errno_location` (the calling thread's, valid for the whole
//! life of the thread); the descriptor it writes to is a plain integer stored
//! before the handler is installed, and never closed after (it belongs to the
//! process until it ends).

use std::io;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// Limits the data segment of this process (heap and private writable mappings,
/// `RLIMIT_DATA`) to `bytes`: an allocation beyond it fails.
pub(crate) fn limit_data(bytes: u64) -> io::Result<()> {
    let limit = rustix::process::Rlimit {
        current: Some(bytes),
        maximum: Some(bytes),
    };
    // Lowering the hard limit needs no privilege.
    rustix::process::setrlimit(rustix::process::Resource::Data, limit)?;
    Ok(())
}

/// The peak resident set size of this process so far, in bytes (`getrusage`).
pub(crate) fn peak_rss() -> u64 {
    // SAFETY: `getrusage` writes the `rusage` it is given, which is zeroed first and
    // outlives the call; `RUSAGE_SELF` is a valid `who`.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return 0;
        }
        usage
    };
    (usage.ru_maxrss.max(0) as u64) * 1024
}

/// The current resident set size of process `pid`, in bytes (`/proc/<pid>/statm`).
pub(crate) fn rss_of(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}

/// The descriptor the handler writes to (-1: none).
static ABORT_REPORT_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_abort(_sig: libc::c_int) {
    // SAFETY: `__errno_location` returns this thread's errno, valid while the
    // thread lives; only read here.
    let errno = unsafe { *libc::__errno_location() };
    let fd = ABORT_REPORT_FD.load(Ordering::Relaxed);
    if errno == libc::ENOMEM && fd >= 0 {
        // SAFETY: `write` is async-signal-safe; the buffer is a static byte.
        let _ = unsafe { libc::write(fd, b"m".as_ptr().cast(), 1) };
    }
    // SAFETY: `signal` and `raise` are async-signal-safe; with the default action
    // restored, the raise ends the process with `SIGABRT` as before.
    unsafe {
        libc::signal(libc::SIGABRT, libc::SIG_DFL);
        libc::raise(libc::SIGABRT);
    }
}

/// Makes an abort that follows a failed allocation (Rust's allocation-error
/// handler aborts, with `errno` still `ENOMEM`) write one byte to `report` before
/// the process dies of `SIGABRT` as it would have. `report` stays open until the
/// process ends.
pub(crate) fn report_allocation_failure_aborts(report: OwnedFd) -> io::Result<()> {
    let old = ABORT_REPORT_FD.swap(report.into_raw_fd(), Ordering::Relaxed);
    if old >= 0 {
        // SAFETY: `old` came from `into_raw_fd` above in an earlier call and is owned
        // by this static alone; it is closed once.
        drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(old) });
    }
    // SAFETY: `on_abort` is an `extern "C" fn(c_int)` that only makes
    // async-signal-safe calls (module `# Safety`).
    let previous = unsafe {
        libc::signal(
            libc::SIGABRT,
            on_abort as extern "C" fn(libc::c_int) as *const () as libc::sighandler_t,
        )
    };
    if previous == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

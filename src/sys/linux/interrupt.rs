//! Ctrl-C (`SIGINT`) as an event a thread can wait for: a self-pipe handler.
//!
//! # Safety
//!
//! The handler does only async-signal-safe things: an atomic increment and one
//! `write(2)` to a pipe whose descriptor is created once and never closed (it lives
//! in a `OnceLock` for the rest of the process). `sigaction` is called with fully
//! initialised structures.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

static PIPE: OnceLock<(OwnedFd, OwnedFd)> = OnceLock::new();
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);
static COUNT: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_sigint(_sig: libc::c_int) {
    COUNT.fetch_add(1, Ordering::SeqCst);
    let fd = WRITE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        // The interrupted code may be about to read `errno`: keep it as it was.
        // SAFETY: `__errno_location` returns this thread's errno slot, valid for
        // the thread's life; reading it is async-signal-safe.
        let saved = unsafe { *libc::__errno_location() };
        let byte = 1u8;
        // SAFETY:
        // - `write` is async-signal-safe;
        // - `fd` is the write end of `PIPE`, which is never closed;
        // - `&byte` is valid for one byte for the duration of the call.
        let _ = unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
        // SAFETY: as above; writing the thread's own errno slot is async-signal-safe.
        unsafe { *libc::__errno_location() = saved };
    }
}

fn set_action(sig: libc::c_int, handler: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: an all-zero `sigaction` is a valid value (empty mask, no flags).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY:
    // - `action` is fully initialised and lives across the call;
    // - a null old-action pointer is allowed;
    // - `handler` is `SIG_DFL`, `SIG_IGN` or `on_sigint`, which is async-signal-safe.
    let rc = unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Installs the `SIGINT` handler and returns the read end of its pipe (a byte per
/// signal; non-blocking).
pub(crate) fn install() -> io::Result<BorrowedFd<'static>> {
    let (r, w) = match PIPE.get() {
        Some(p) => p,
        None => {
            let (r, w) = super::socket::pipe()?;
            super::socket::set_nonblocking(r.as_fd(), true)?;
            super::socket::set_nonblocking(w.as_fd(), true)?;
            let _ = PIPE.set((r, w));
            PIPE.get().expect("set above")
        }
    };
    WRITE_FD.store(w.as_raw_fd(), Ordering::SeqCst);
    set_action(libc::SIGINT, on_sigint as *const () as libc::sighandler_t)?;
    Ok(r.as_fd())
}

/// How many `SIGINT`s the handler has seen in this process.
pub(crate) fn count() -> u64 {
    COUNT.load(Ordering::SeqCst)
}

/// Puts back the default action for `SIGINT` (the process dies of it).
pub(crate) fn restore_default() -> io::Result<()> {
    set_action(libc::SIGINT, libc::SIG_DFL)
}

/// Makes this process ignore `SIGINT` (pool workers: the parent decides).
pub(crate) fn ignore() -> io::Result<()> {
    set_action(libc::SIGINT, libc::SIG_IGN)
}

/// Sends `SIGINT` to this process, with the default action: it dies of it.
pub(crate) fn die_of_sigint() -> ! {
    let _ = restore_default();
    // SAFETY: `raise` has no memory preconditions.
    unsafe { libc::raise(libc::SIGINT) };
    super::process::exit_now(130)
}

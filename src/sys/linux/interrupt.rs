//! Ctrl-C (`SIGINT`) as an event a thread can wait for: a self-pipe handler that
//! chains to the disposition it replaced and puts that disposition back, exactly,
//! when it is no longer wanted.
//!
//! The application (or a crate it uses: `ctrlc`, tokio's signal handling) may have
//! installed a `SIGINT` handler before the first pool. [`install`] saves that
//! disposition, and the handler calls the saved handler after its own work, so the
//! application still hears of every Ctrl-C while a pool lives. [`restore_previous`]
//! reinstalls the saved `sigaction` as it was (handler, flags, mask), unless
//! someone installed another handler over ours meanwhile, which it leaves alone.
//!
//! # Safety
//!
//! The handler does only async-signal-safe things: an atomic increment, one
//! `write(2)` to a pipe whose descriptor is created once and never closed (it lives
//! in a `OnceLock` for the rest of the process), reading and restoring `errno`, and
//! a call of the previous handler, which the kernel would have called itself had we
//! not been there. The previous disposition is published as a leaked, immutable
//! `sigaction` behind an `AtomicPtr` *before* our handler is installed, so a handler
//! running on any thread reads a complete value, and never a freed one. `sigaction`
//! is called with fully initialised structures.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU64, Ordering};

static PIPE: OnceLock<(OwnedFd, OwnedFd)> = OnceLock::new();
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);
static COUNT: AtomicU64 = AtomicU64::new(0);
/// The disposition our handler replaced (null: never installed). Each value is
/// leaked: a handler on another thread may hold it at any time. A new one is
/// published only when the disposition we replace differs from the last one, so
/// the leak is bounded by the number of distinct dispositions, not of pools.
static PREVIOUS: AtomicPtr<libc::sigaction> = AtomicPtr::new(ptr::null_mut());

type PlainHandler = extern "C" fn(libc::c_int);
type InfoHandler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

extern "C" fn on_sigint(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    COUNT.fetch_add(1, Ordering::SeqCst);
    let fd = WRITE_FD.load(Ordering::SeqCst);
    // The interrupted code may be about to read `errno`: keep it as it was.
    // SAFETY: `__errno_location` returns this thread's errno slot, valid for the
    // thread's life; reading it is async-signal-safe.
    let saved = unsafe { *libc::__errno_location() };
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY:
        // - `write` is async-signal-safe;
        // - `fd` is the write end of `PIPE`, which is never closed;
        // - `&byte` is valid for one byte for the duration of the call.
        let _ = unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
    // SAFETY: as above; writing the thread's own errno slot is async-signal-safe.
    unsafe { *libc::__errno_location() = saved };
    let prev = PREVIOUS.load(Ordering::Acquire);
    if prev.is_null() {
        return;
    }
    // SAFETY: a non-null `PREVIOUS` points to a leaked `sigaction`, written once
    // before it was published (Release/Acquire) and never written or freed after.
    let prev = unsafe { &*prev };
    let handler = prev.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN || handler == our_handler() {
        return;
    }
    if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: with `SA_SIGINFO`, `sa_sigaction` holds a three-argument handler
        // (that is what the kernel would call); `info` and `ctx` are the kernel's,
        // passed on unchanged.
        let f = unsafe { std::mem::transmute::<libc::sighandler_t, InfoHandler>(handler) };
        f(sig, info, ctx);
    } else {
        // SAFETY: without `SA_SIGINFO`, `sa_sigaction` holds a one-argument handler
        // (neither `SIG_DFL` nor `SIG_IGN`, checked above).
        let f = unsafe { std::mem::transmute::<libc::sighandler_t, PlainHandler>(handler) };
        f(sig);
    }
}

fn our_handler() -> libc::sighandler_t {
    on_sigint as InfoHandler as libc::sighandler_t
}

/// The current disposition of `SIGINT`.
fn current() -> io::Result<libc::sigaction> {
    // SAFETY: an all-zero `sigaction` is a valid value (empty mask, no flags).
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new-action pointer only queries; `old` is valid for writes.
    let rc = unsafe { libc::sigaction(libc::SIGINT, ptr::null(), &mut old) };
    if rc == 0 {
        Ok(old)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Installs `action` for `SIGINT`; returns the disposition it replaced.
fn replace(action: &libc::sigaction) -> io::Result<libc::sigaction> {
    // SAFETY: an all-zero `sigaction` is a valid value (empty mask, no flags).
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY:
    // - `action` is fully initialised and lives across the call; `old` is valid
    //   for writes;
    // - its handler is `SIG_DFL`, `SIG_IGN`, `on_sigint` (async-signal-safe, see the
    //   module docs) or a disposition that was installed before and saved by us.
    let rc = unsafe { libc::sigaction(libc::SIGINT, action, &mut old) };
    if rc == 0 {
        Ok(old)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether two dispositions are the same handler, flags and mask.
fn same(a: &libc::sigaction, b: &libc::sigaction) -> bool {
    // SAFETY: `sigismember` reads a fully initialised set (both come from the
    // kernel through `sigaction`); signal numbers 1..=64 are all valid on Linux.
    let same_mask = (1..=64)
        .all(|s| unsafe { libc::sigismember(&a.sa_mask, s) == libc::sigismember(&b.sa_mask, s) });
    a.sa_sigaction == b.sa_sigaction && a.sa_flags == b.sa_flags && same_mask
}

/// Remembers `prev` as the disposition to chain to and to restore.
fn publish(prev: libc::sigaction) {
    let last = PREVIOUS.load(Ordering::Acquire);
    // SAFETY: see `on_sigint`: a non-null `PREVIOUS` is a leaked, immutable value.
    if !last.is_null() && same(unsafe { &*last }, &prev) {
        return;
    }
    PREVIOUS.store(Box::into_raw(Box::new(prev)), Ordering::Release);
}

/// Installs the `SIGINT` handler (chaining to whatever was installed before) and
/// returns the read end of its pipe (a byte per signal; non-blocking). Does
/// nothing more when the handler is installed already.
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
    let prev = current()?;
    if prev.sa_sigaction == our_handler() {
        return Ok(r.as_fd());
    }
    publish(prev);
    // SAFETY: an all-zero `sigaction` is a valid value (empty mask, no flags).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = our_handler();
    // The previous handler runs inside ours: give it the mask and the alternate
    // stack it asked for.
    action.sa_mask = prev.sa_mask;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | (prev.sa_flags & libc::SA_ONSTACK);
    let replaced = replace(&action)?;
    if !same(&replaced, &prev) && replaced.sa_sigaction != our_handler() {
        // Another thread changed the disposition between our look and our
        // install: chain to (and later restore) what we actually replaced.
        publish(replaced);
    }
    Ok(r.as_fd())
}

/// How many `SIGINT`s the handler has seen in this process.
pub(crate) fn count() -> u64 {
    COUNT.load(Ordering::SeqCst)
}

/// Puts back the disposition [`install`] replaced, exactly as it was. Leaves
/// `SIGINT` alone when our handler is not the installed one (never installed,
/// restored already, or replaced by someone else since).
pub(crate) fn restore_previous() -> io::Result<()> {
    let prev = PREVIOUS.load(Ordering::Acquire);
    if prev.is_null() || current()?.sa_sigaction != our_handler() {
        return Ok(());
    }
    // SAFETY: see `on_sigint`: a non-null `PREVIOUS` is a leaked, immutable value.
    replace(unsafe { &*prev }).map(drop)
}

/// Gives a `SIGINT` that arrived when nobody wanted it to the disposition
/// [`install`] replaced: an application handler has run already (chained), an
/// ignored signal stays ignored, and under the default action the process dies of
/// it, as it would have without mproc.
pub(crate) fn pass_on() {
    let prev = PREVIOUS.load(Ordering::Acquire);
    // SAFETY: see `on_sigint`: a non-null `PREVIOUS` is a leaked, immutable value.
    if prev.is_null() || unsafe { &*prev }.sa_sigaction == libc::SIG_DFL {
        die_of_sigint();
    }
    let _ = restore_previous();
}

/// Makes this process ignore `SIGINT` (pool workers: the parent decides).
pub(crate) fn ignore() -> io::Result<()> {
    // SAFETY: an all-zero `sigaction` is a valid value (empty mask, no flags).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = libc::SIG_IGN;
    replace(&action).map(drop)
}

/// Sends `SIGINT` to this process, with the default action: it dies of it.
fn die_of_sigint() -> ! {
    // SAFETY: an all-zero `sigaction` is a valid value (empty mask, no flags).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = libc::SIG_DFL;
    let _ = replace(&action);
    // SAFETY: `raise` has no memory preconditions.
    unsafe { libc::raise(libc::SIGINT) };
    super::process::exit_now(130)
}

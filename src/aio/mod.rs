//! The async glue: waiting for a descriptor through the running runtime's reactor.
//!
//! Every blocking wait in mproc ends on a descriptor (a pidfd, a socket) or on a
//! futex word in shared memory. An async method tries its operation first, exactly
//! as the non-blocking form does (`try_recv`, `try_get`...), so the fast path costs
//! what the blocking call costs. Only when it would have to wait does it register a
//! descriptor with the reactor and sleep until that descriptor is ready:
//!
//! - a process's pidfd (readable once the child has exited), a pipe's socket;
//! - for a shared-memory object, a wake socket the waiter names in the object's
//!   table of async waiters, which the object's wake path signals beside its
//!   `futex_wake` ([`registry`]).
//!
//! Registration lasts one wait: the descriptor is added to the reactor when the
//! operation would block and removed when its future completes or is dropped. That
//! keeps each handle free of any tie to one runtime (a handle may be used from two
//! runtimes, or from a runtime and a thread) at the price of two `epoll_ctl` calls
//! per wait that actually sleeps.
//!
//! tokio is the reactor for now (`AsyncFd`); the waiting is written against
//! [`readable`] and [`writable`] only, so another runtime's glue goes here.

pub(crate) mod registry;

#[cfg(feature = "tokio")]
use std::io;
#[cfg(feature = "tokio")]
use std::os::fd::BorrowedFd;

#[cfg(feature = "tokio")]
use tokio::io::Interest;

/// Waits, without blocking the thread, until `fd` is readable, hung up or in error.
///
/// # Panics
///
/// Outside a tokio runtime with I/O enabled (`Builder::enable_io`, which
/// `#[tokio::main]` and `enable_all` turn on).
#[cfg(feature = "tokio")]
pub(crate) async fn readable(fd: BorrowedFd<'_>) -> io::Result<()> {
    ready(fd, Interest::READABLE).await
}

/// Waits, without blocking the thread, until `fd` is writable or in error.
///
/// # Panics
///
/// As [`readable`].
#[cfg(feature = "tokio")]
pub(crate) async fn writable(fd: BorrowedFd<'_>) -> io::Result<()> {
    ready(fd, Interest::WRITABLE).await
}

#[cfg(feature = "tokio")]
async fn ready(fd: BorrowedFd<'_>, interest: Interest) -> io::Result<()> {
    crate::sys::reactor::ready(fd, interest).await
}

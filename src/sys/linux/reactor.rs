//! Waiting for a descriptor through tokio's reactor (`AsyncFd`), for the async
//! methods (`crate::aio`).
//!
//! # Safety
//!
//! `AsyncFd::register_with_interest` requires the descriptor to stay open, and to
//! be the same file, for as long as the registration lives. Each registration here
//! is a local of one `async fn` and holds either a `BorrowedFd<'a>` (open for `'a`,
//! which outlives the function's future) or an `OwnedFd` it owns.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Waits until `fd` is ready for `interest` (readable includes hung up and error).
///
/// # Panics
///
/// Outside a tokio runtime with I/O enabled.
pub(crate) async fn ready(fd: BorrowedFd<'_>, interest: Interest) -> io::Result<()> {
    // SAFETY:
    // - `fd` is a `BorrowedFd<'_>` moved into the registration, which is dropped
    //   at the end of this function, within the borrow: the descriptor stays open
    //   and names the same file for the registration's whole life.
    match unsafe { AsyncFd::register_with_interest(fd, interest) } {
        Ok(reg) => {
            // A fresh registration reports the descriptor's current state, so a
            // readiness that arrived between the caller's failed attempt and here
            // is not missed.
            wait(&reg, interest).await
        }
        // The same descriptor is registered already (another task waits on this
        // handle at the same time, or the user registered it): a duplicate is a
        // different registration of the same file.
        Err(e) => {
            let (fd, e) = e.into_parts();
            if e.kind() != io::ErrorKind::AlreadyExists {
                return Err(e);
            }
            let own = super::socket::dup(fd)?;
            // SAFETY:
            // - `own` is an `OwnedFd` moved into the registration: it is open, and
            //   no one else can close it, until the registration is dropped.
            let reg = unsafe { AsyncFd::register_with_interest(own, interest) }
                .map_err(io::Error::from)?;
            wait(&reg, interest).await
        }
    }
}

async fn wait<T: AsRawFd>(reg: &AsyncFd<T>, interest: Interest) -> io::Result<()> {
    let _ = reg.ready(interest).await?;
    Ok(())
}

//! The task model under [`pool`](crate::pool) and [`futures`](crate::futures): a
//! call and its tasks ([`call`]), where their outcomes go, the slot a result
//! waits in and the [`Future`] that reads it, and [`TaskError`].
//!
//! The layers read bottom-up: `sys` → `process` → `task` → `pool` → `futures`.
//! Nothing here names the pool or the executors; their public types re-export
//! these (`mproc::futures::Future`, `mproc::pool::TaskError`).

pub(crate) mod call;
mod error;
mod future;
pub(crate) mod slot;

pub use error::TaskError;
pub(crate) use error::{Kind, panic_message};
pub use future::{Future, NotDone, ResultTimeoutError};

use std::sync::{Condvar, MutexGuard};
use std::time::Instant;

/// Sleeps on `cond` until woken or `deadline` (forever for `None`); the guard
/// back in `Err` once the deadline has passed.
pub(crate) fn sleep_until<'g, T>(
    cond: &Condvar,
    guard: MutexGuard<'g, T>,
    deadline: Option<Instant>,
) -> Result<MutexGuard<'g, T>, MutexGuard<'g, T>> {
    let Some(d) = deadline else {
        return Ok(cond.wait(guard).unwrap_or_else(|e| e.into_inner()));
    };
    let now = Instant::now();
    if now >= d {
        return Err(guard);
    }
    let (guard, _) = cond
        .wait_timeout(guard, d - now)
        .unwrap_or_else(|e| e.into_inner());
    Ok(guard)
}

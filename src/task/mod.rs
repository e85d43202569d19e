//! The task model under [`pool`](crate::pool) and [`futures`](crate::futures): a
//! call and its tasks ([`call`]), where their outcomes go, the slot a result
//! waits in and the [`Future`] that reads it, and [`TaskError`].
//!
//! The layers read bottom-up: `sys` → `process` → `task` → `pool` → `futures`.
//! Nothing here names the pool or the executors; their public types re-export
//! these (`mproc::futures::Future`, `mproc::pool::TaskError`).

pub(crate) mod call;
mod error;
pub(crate) mod future;

pub(crate) use error::Kind;
pub use error::TaskError;
pub use future::{Future, ResultTimeoutError};

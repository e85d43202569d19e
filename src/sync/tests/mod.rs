//! Loom models of the futex-word algorithms (`--cfg loom` only; see `crate::loom`).

mod loom_event;
mod loom_lock;
mod loom_semaphore;

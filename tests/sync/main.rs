//! Tests of `mproc::sync`: the semantics of each primitive (the behaviours in
//! Python's `multiprocessing`/`threading` documentation), first with threads, then
//! across real processes, and fault tests that SIGKILL holders and waiters.
//!
//! Every test that waits arms a watchdog (`tests/common`), and every wait has a
//! timeout.
#![cfg(not(miri))]

mod barrier;
mod condition;
mod event;
mod fault;
mod lock;
mod semaphore;

#[path = "../common/mod.rs"]
mod common;

use common::{eventually, watchdog};

use std::time::Duration;

/// A generous bound for waits that should end quickly: tests never wait forever,
/// but the machine is a noisy 2-CPU VM.
pub const LONG: Duration = Duration::from_secs(20);

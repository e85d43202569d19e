//! Tests of `mproc::shm`: blocks, values, arrays and atomics shared with real child
//! processes, named blocks and who removes them, and what killing users leaves.
//!
//! Every test that waits arms a watchdog (`tests/common`), and every wait has a
//! timeout.
#![cfg(not(miri))]

mod atomic;
mod memory;
mod value;

#[path = "../common/mod.rs"]
mod common;

use common::watchdog;

use std::time::Duration;

/// A generous bound for waits that should end quickly.
pub const LONG: Duration = Duration::from_secs(20);

//! Tests of `mproc::manager`: every proxy's Python semantics, nested objects,
//! proxies passed to children, pools and pipes, faults (a killed client holding a
//! lock, a killed manager), custom shared types, and the remote (TCP, Unix socket)
//! server with authentication and its refusal of garbage.
//!
//! Every test that waits arms a watchdog (`tests/common`); every wait has a timeout.
#![cfg(not(miri))]

mod core;
mod custom;
mod faults;
mod fuzz;
mod pipeline;
mod remote;

#[path = "../common/mod.rs"]
mod common;

use std::time::Duration;

/// A generous bound for waits that should end quickly (noisy 2-CPU VM).
pub const LONG: Duration = Duration::from_secs(30);

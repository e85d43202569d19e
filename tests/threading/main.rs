//! Tests of `mproc::threading`: the thread-side queues (`queues`, `shutdown`) and
//! `Timer` (`timer`).
//!
//! The queue scenarios are rewritten from CPython's `Lib/test/test_queue.py`
//! (Python Software Foundation License): the basic test run against each kind, the
//! `task_done`/`join` tests, and Python 3.13's shutdown tests. Where Python sleeps
//! 0.1 s so that a call "has had time to block", these tests wait until the thread
//! is asleep in the kernel (`/proc/self/task/<tid>/stat`), and every wait has a
//! time limit.
#![cfg(not(miri))]

mod batched;
#[path = "../common/mod.rs"]
mod common;
mod queues;
mod shutdown;
mod timer;
mod util;

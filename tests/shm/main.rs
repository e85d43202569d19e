//! Tests of `mproc::shm`: blocks, values, arrays and atomics shared with real child
//! processes, named blocks and who removes them, and what killing users leaves.
//!
//! Every test that waits arms a [`Watchdog`], and every wait has a timeout.
#![cfg(not(miri))]

mod atomic;
mod memory;
mod value;

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A generous bound for waits that should end quickly.
pub const LONG: Duration = Duration::from_secs(20);

/// Aborts the test binary (with a message naming the test) when a test runs past
/// its limit, so a hang fails loudly instead of eating CI's time. Disarmed on drop.
pub struct Watchdog {
    tx: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Arms a watchdog for the test `name`.
pub fn watchdog(name: &'static str, limit: Duration) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            eprintln!("watchdog: test `{name}` still running after {limit:?}; aborting");
            std::process::abort();
        }
    });
    Watchdog {
        tx: Some(tx),
        thread: Some(thread),
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Polls `cond` until it holds or `limit` passes; returns whether it held. For
/// facts that no primitive announces (a process is *inside* a wait).
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}

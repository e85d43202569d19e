//! `Lock` and `Event` latency (issue 4).
//!
//! Workloads:
//! - uncontended `Lock` acquire+release in one process (ns per acquire+release);
//! - `Event` ping-pong between two processes with two events (parent: `e1.set(); e2.wait();
//!   e2.clear()`, child: `e1.wait(); e1.clear(); e2.set()`), µs per round trip.
//!
//! Contenders: mproc [`Lock`] (a robust process-shared pthread mutex in shared memory) and
//! [`Event`] (the child started with the default start method), the process-shared pthread
//! mutex floor (`c/os_lock.c`),
//! the futex and spinning ping-pong floors (`c/os_futex.c`), Python's `Lock` and `Event`
//! (`py_sync.py`), and `std::sync::Mutex` in-process for reference.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use mproc::process::Process;
use mproc::sync::{Event, Lock};

use crate::anchors::{CAnchor, PyAnchor};
use crate::{Area, Compare, Config, Local, Result, Role, Watchdog};

/// Acquire+release pairs per lock sample.
pub const LOCK_OPS: usize = 20_000_000;

/// An uncontended lock: `lock_unlock(n)` returns ns per acquire+release.
pub trait LockUnlock {
    /// Runs one sample.
    fn lock_unlock(&mut self, n: usize) -> Result<f64>;
}

/// Round trips per event ping-pong sample (as `py_sync.py`).
pub const EVENT_ROUND_TRIPS: usize = 10_000;

/// A two-process event ping-pong: `round_trips(n)` returns µs per round trip (parent:
/// `e1.set(); e2.wait(); e2.clear()`, child: `e1.wait(); e1.clear(); e2.set()`).
pub trait EventPingPong {
    /// Runs one sample.
    fn round_trips(&mut self, n: usize) -> Result<f64>;
}

/// Untimed round trips before the clock starts (as `py_sync.py`).
pub const EVENT_WARMUP: usize = 100;

/// mproc [`Lock`]: `lock()` and drop of the guard.
pub struct MprocLock(pub Lock);

impl LockUnlock for MprocLock {
    fn lock_unlock(&mut self, n: usize) -> Result<f64> {
        let lock = &self.0;
        let t0 = Instant::now();
        for _ in 0..n {
            let guard = std::hint::black_box(lock)
                .lock()
                .map_err(|e| format!("lock: {e}"))?;
            drop(std::hint::black_box(guard));
        }
        Ok(t0.elapsed().as_secs_f64() / n as f64 * 1e9)
    }
}

/// The child of the event ping-pong: `n` times `e1.wait(); e1.clear(); e2.set()`.
fn ponger((e1, e2, n): (Event, Event, u64)) {
    for _ in 0..n {
        e1.wait();
        e1.clear();
        e2.set();
    }
}

/// mproc [`Event`] ping-pong with a child process.
pub struct MprocEvents;

impl EventPingPong for MprocEvents {
    fn round_trips(&mut self, n: usize) -> Result<f64> {
        let e1 = Event::new().map_err(|e| format!("event: {e}"))?;
        let e2 = Event::new().map_err(|e| format!("event: {e}"))?;
        let total = n + EVENT_WARMUP;
        let child = Process::start(ponger, (e1.clone(), e2.clone(), total as u64))
            .map_err(|e| format!("start: {e}"))?;
        // A dead child would leave `e2.wait()` waiting forever.
        let _watchdog = Watchdog::arm(Duration::from_secs(120), "mproc event ping-pong");
        let mut t0 = Instant::now();
        for i in 0..total {
            if i == EVENT_WARMUP {
                t0 = Instant::now();
            }
            e1.set();
            e2.wait();
            e2.clear();
        }
        let dt = t0.elapsed();
        child.join().map_err(|e| format!("join: {e}"))?;
        Ok(dt.as_secs_f64() / n as f64 * 1e6)
    }
}

/// `std::sync::Mutex` (futex-based, process-private): the in-process reference.
pub struct StdMutex(pub Mutex<u64>);

impl LockUnlock for StdMutex {
    fn lock_unlock(&mut self, n: usize) -> Result<f64> {
        let m = &self.0;
        let t0 = Instant::now();
        for _ in 0..n {
            let mut g = std::hint::black_box(m).lock().expect("not poisoned");
            *g += 1;
        }
        Ok(t0.elapsed().as_secs_f64() / n as f64 * 1e9)
    }
}

/// The `sync` area.
pub fn area(_cfg: &Config) -> Result<Area> {
    let mut std_mutex = StdMutex(Mutex::new(0));
    let mut lock = MprocLock(Lock::new().map_err(|e| format!("lock: {e}"))?);
    let mut events = MprocEvents;
    let mproc = Local::new("mproc Lock, Event", Role::Mproc)
        .warmup(|| MprocEvents.round_trips(EVENT_WARMUP).map(drop))
        .measure("mproc_lock_acquire_release", "ns/op", move || {
            lock.lock_unlock(LOCK_OPS)
        })
        .measure("mproc_event_pingpong", "us/roundtrip", move || {
            events.round_trips(EVENT_ROUND_TRIPS)
        });
    Ok(Area {
        name: "sync",
        title: "Lock and Event (issue 4)",
        description: format!(
            "Uncontended `Lock` acquire+release in one process ({LOCK_OPS} a sample in Rust and C; Python's \
             loop includes the interpreter, see `py_empty_loop`), ns per pair. `Event` ping-pong between two \
             processes, µs per round trip. Floors: process-shared pthread mutex (`c/os_lock.c`), futex-only \
             and spinning ping-pong (`c/os_futex.c`). Python: `py_sync.py`. In-process reference: \
             `std::sync::Mutex`."
        ),
        mproc_pending: None,
        contenders: vec![
            Box::new(mproc),
            Box::new(Local::new("std::sync::Mutex", Role::InProcess).measure(
                "std_mutex_lock_unlock",
                "ns/op",
                move || std_mutex.lock_unlock(LOCK_OPS),
            )),
            Box::new(CAnchor::new("os_lock")),
            Box::new(CAnchor::new("os_futex")),
            Box::new(PyAnchor::new("py_sync.py")),
        ],
        comparisons: vec![
            Compare::new("mproc_lock_acquire_release", "os_pshared_mutex_lock_unlock")
                .at_most(1.5, "issue 4: within 1.5× of the pthread floor"),
            Compare::new("mproc_lock_acquire_release", "py_mp_lock_acquire_release"),
            Compare::new("mproc_lock_acquire_release", "std_mutex_lock_unlock"),
            Compare::new("mproc_event_pingpong", "os_futex_pingpong")
                .at_most(1.0, "issue 4: no slower than the futex floor"),
            Compare::new("mproc_event_pingpong", "py_mp_event_pingpong")
                .at_most(1.0 / 3.0, "issue 4: ≥ 3× faster than Python"),
            Compare::new("mproc_event_pingpong", "os_spin_then_futex_pingpong"),
        ],
    })
}

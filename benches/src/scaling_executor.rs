//! `Executor::submit` with many futures in flight (issue 16).
//!
//! A `ProcessPoolExecutor` of 2 workers, both held busy by a task that waits for an
//! [`Event`]; then [`IN_FLIGHT`] futures of a trivial task are submitted, all pending at
//! once. Figures: submit cost (µs per future), the heap this process holds per pending
//! future (bytes, counted by [`CountingAlloc`], which the area's binary installs as its
//! global allocator), the growth of its resident size per pending future (bytes; includes
//! shared memory touched), and the time to drain them once the workers are released (µs
//! per future). Every result is checked.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use mproc::futures::{Executor, ProcessPoolExecutor};
use mproc::sync::Event;

use crate::pool::square;
use crate::{Area, Compare, Config, Local, Result, Role, Watchdog};

/// Futures in flight per sample.
pub const IN_FLIGHT: [usize; 2] = [10_000, 100_000];
/// Workers of the executor.
pub const WORKERS: usize = 2;

/// The system allocator, counting the bytes currently allocated: the binary of this area
/// installs it (`#[global_allocator]`) so that heap per pending future is exact, not hidden
/// by memory the allocator keeps after frees.
pub struct CountingAlloc;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees are this allocator's; the counter is only bookkeeping.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout (see the impl).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `alloc`/`realloc` above with `layout` (see the impl).
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout (see the impl).
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's pointer, layout and size (see the impl).
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

/// Bytes currently allocated through [`CountingAlloc`] (0 when it is not installed).
pub fn live_heap() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Holds a worker until `release` is set.
fn hold(release: Event) -> bool {
    release.wait_timeout(Duration::from_secs(120))
}

/// This process's resident size in bytes (`/proc/self/statm`).
pub fn rss_bytes() -> Result<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or("unreadable statm")?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;
    Ok(pages * page)
}

/// (µs per submit, heap bytes per pending future, resident bytes per pending future, µs
/// per drained future).
fn in_flight(n: usize) -> Result<(f64, f64, f64, f64)> {
    if live_heap() == 0 {
        return Err("CountingAlloc is not the global allocator of this binary".into());
    }
    let _watchdog = Watchdog::arm(Duration::from_secs(300), "mproc executor in flight");
    let ex = ProcessPoolExecutor::new(WORKERS)?;
    let release = Event::new().map_err(|e| format!("event: {e}"))?;
    let holders = (0..WORKERS)
        .map(|_| ex.submit(hold, release.clone()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let rss0 = rss_bytes()?;
    let heap0 = live_heap();
    let t0 = Instant::now();
    let futs = (0..n as u64)
        .map(|i| ex.submit(square, i))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let submit = t0.elapsed().as_secs_f64() / n as f64 * 1e6;
    let heap = (live_heap() - heap0) as f64 / n as f64;
    let rss = (rss_bytes()? - rss0) / n as f64;
    let t1 = Instant::now();
    release.set();
    for h in holders {
        if !h.result()? {
            return Err("a holder timed out: the workers were not released".into());
        }
    }
    for (i, f) in futs.into_iter().enumerate() {
        let v = f.result()?;
        if v != square(i as u64) {
            return Err(format!("future {i} returned {v}").into());
        }
    }
    let drain = t1.elapsed().as_secs_f64() / n as f64 * 1e6;
    ex.shutdown(true, false);
    Ok((submit, heap, rss, drain))
}

/// The `scaling_executor` area.
pub fn area(_cfg: &Config) -> Result<Area> {
    let mut mproc = Local::new("mproc ProcessPoolExecutor", Role::Mproc);
    for n in IN_FLIGHT {
        let k = n / 1000;
        // One run gives three figures: the first measure runs it, the other two read it.
        let last = std::rc::Rc::new(std::cell::Cell::new((
            f64::NAN,
            f64::NAN,
            f64::NAN,
            f64::NAN,
        )));
        let (l1, l2, l3, l4) = (last.clone(), last.clone(), last.clone(), last);
        mproc = mproc
            .measure(
                format!("mproc_executor_{k}k_submit"),
                "us/future",
                move || {
                    l1.set(in_flight(n)?);
                    Ok(l1.get().0)
                },
            )
            .measure(
                format!("mproc_executor_{k}k_heap_per_pending"),
                "B",
                move || Ok(l2.get().1),
            )
            .measure(
                format!("mproc_executor_{k}k_rss_per_pending"),
                "B",
                move || Ok(l3.get().2),
            )
            .measure(
                format!("mproc_executor_{k}k_drain"),
                "us/future",
                move || Ok(l4.get().3),
            );
    }
    Ok(Area {
        name: "scaling_executor",
        title: "Scaling: Executor::submit with 10,000 and 100,000 futures in flight (issue 16)",
        description: format!(
            "`ProcessPoolExecutor` of {WORKERS} workers, both held busy by a task waiting on an `Event`, then \
             N futures of `x * x` submitted, all pending at once: µs per `submit`, heap held by the submitting \
             process per pending future (bytes, a counting global allocator), growth of its resident size per \
             pending future (bytes, `/proc/self/statm`; the allocator may reuse memory freed earlier), and µs per future to \
             drain them all once the workers are released (every result checked)."
        ),
        mproc_pending: None,
        contenders: vec![Box::new(mproc)],
        comparisons: vec![
            Compare::new("mproc_executor_100k_submit", "mproc_executor_10k_submit"),
            Compare::new(
                "mproc_executor_100k_heap_per_pending",
                "mproc_executor_10k_heap_per_pending",
            ),
            Compare::new("mproc_executor_100k_drain", "mproc_executor_10k_drain"),
        ],
    })
}

//! Graceful shutdown of worker processes driven by an `Event`: workers run until
//! the parent sets `stop`, finish the unit they are on, and report what they did.
//!
//! ```text
//! cargo run --example event_shutdown
//! ```

use std::sync::atomic::Ordering;
use std::time::Duration;

use mproc::process::Process;
use mproc::shm::SharedAtomicU64;
use mproc::sync::Event;

const WORKERS: u64 = 3;

const ENOUGH: u64 = 300;

fn worker((stop, enough, done, id): (Event, Event, SharedAtomicU64, u64)) -> u64 {
    let mut units = 0;
    // `wait_timeout` doubles as an interruptible pause between units of work.
    while !stop.wait_timeout(Duration::from_millis(1)) {
        std::hint::black_box((0..10_000u64).sum::<u64>()); // one unit of work
        units += 1;
        if done.fetch_add(1, Ordering::Relaxed) + 1 == ENOUGH {
            enough.set(); // tell the parent
        }
    }
    println!(
        "worker {id} (pid {}) stopping after {units} units",
        std::process::id()
    );
    units
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stop = Event::new()?;
    let enough = Event::new()?;
    let done = SharedAtomicU64::new(0)?;
    let workers = (0..WORKERS)
        .map(|id| Process::start(worker, (stop.clone(), enough.clone(), done.clone(), id)))
        .collect::<Result<Vec<_>, _>>()?;

    // Let them work until enough units are done (or 10 s pass), then ask them to stop.
    let reached = enough.wait_timeout(Duration::from_secs(10));
    assert!(reached, "the workers made no progress in 10 s");
    println!(
        "parent: {} units done, setting stop",
        done.load(Ordering::Relaxed)
    );
    stop.set();

    let mut total = 0;
    for w in workers {
        total += w.join_timeout(Duration::from_secs(10))?;
    }
    println!("all workers stopped cleanly; {total} units in total");
    assert_eq!(total, done.load(Ordering::Relaxed));
    Ok(())
}

//! A counter incremented by many processes: with a `Lock`, every increment counts;
//! without it, concurrent read-modify-writes lose updates.
//!
//! ```text
//! cargo run --release --example counter
//! ```

use mproc::process::Process;
use mproc::shm::Value;
use mproc::sync::{Lock, OwnerDied};

const WORKERS: u64 = 4;
const PER_WORKER: u64 = 200_000;

/// `counter += 1`, as two separate steps: read, then write.
fn add_without_lock((counter, n): (Value<u64>, u64)) {
    for _ in 0..n {
        let v = counter.get();
        counter.set(v + 1);
    }
}

/// The same, holding the lock across the read and the write.
fn add_with_lock((counter, lock, n): (Value<u64>, Lock, u64)) {
    for _ in 0..n {
        // `Err` only if a previous holder died holding the lock; a counter has no
        // invariant to repair, so take the guard either way.
        let _guard = lock.lock().unwrap_or_else(OwnerDied::into_inner);
        let v = counter.get();
        counter.set(v + 1);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let expected = WORKERS * PER_WORKER;

    let unlocked = Value::new(0u64)?;
    let workers = (0..WORKERS)
        .map(|_| Process::start(add_without_lock, (unlocked.clone(), PER_WORKER)))
        .collect::<Result<Vec<_>, _>>()?;
    for w in workers {
        w.join()?;
    }
    let lost = expected - unlocked.get();
    println!(
        "without a lock: {} of {expected} increments counted, {lost} lost to races",
        unlocked.get()
    );

    let locked = Value::new(0u64)?;
    let lock = Lock::new()?;
    let workers = (0..WORKERS)
        .map(|_| Process::start(add_with_lock, (locked.clone(), lock.clone(), PER_WORKER)))
        .collect::<Result<Vec<_>, _>>()?;
    for w in workers {
        w.join()?;
    }
    println!(
        "with a lock:    {} of {expected} increments counted",
        locked.get()
    );
    assert_eq!(locked.get(), expected);
    Ok(())
}

//! Producer/consumer with a bounded queue and several consumer processes: the
//! classic `multiprocessing` pattern.
//!
//! The parent puts jobs on a bounded `JoinableQueue` (a full queue makes it wait:
//! back-pressure), three worker processes take them and put results on a second
//! queue. Shutdown is clean in both styles Python programs use: the workers of the
//! first batch stop at a sentinel (`None`), those of the second when the queue is
//! closed.
//!
//! ```text
//! cargo run --example producer_consumer
//! ```

use std::time::Duration;

use mproc::process::Process;
use mproc::queue::{JoinableQueue, Queue};

/// A job: the number to check, or `None`, the sentinel that tells a worker to stop.
type Job = Option<u64>;

fn is_prime(n: u64) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

/// A worker: takes jobs until the sentinel or until the queue is closed.
fn worker((jobs, results, id): (JoinableQueue<Job>, Queue<(u32, u64, bool)>, u32)) -> u64 {
    let mut done = 0;
    while let Ok(job) = jobs.get() {
        let Some(n) = job else {
            jobs.task_done().unwrap();
            break; // sentinel
        };
        results.put((id, n, is_prime(n))).unwrap();
        jobs.task_done().unwrap();
        done += 1;
    }
    done
}

fn run_batch(first: u64, count: u64, stop_with_sentinels: bool) -> u64 {
    const WORKERS: u32 = 3;
    let jobs = JoinableQueue::<Job>::bounded(16).unwrap();
    let results = Queue::<(u32, u64, bool)>::new().unwrap();
    let workers: Vec<Process<u64>> = (0..WORKERS)
        .map(|id| Process::start(worker, (jobs.clone(), results.clone(), id)).unwrap())
        .collect();

    for n in first..first + count {
        jobs.put(Some(n)).unwrap(); // waits while 16 jobs are queued
    }
    jobs.join(); // every job has been marked done
    if stop_with_sentinels {
        for _ in 0..WORKERS {
            jobs.put(None).unwrap();
        }
    } else {
        jobs.close(); // workers drain what is left, then `get` says Closed
    }

    let mut per_worker = Vec::new();
    for w in workers {
        per_worker.push(
            w.join_timeout(Duration::from_secs(60))
                .expect("worker failed"),
        );
    }
    let handled: u64 = per_worker.iter().sum();
    assert_eq!(handled, count);
    let mut primes = 0;
    for _ in 0..count {
        let (_id, _n, prime) = results.get().unwrap();
        primes += u64::from(prime);
    }
    assert!(results.is_empty());
    println!(
        "{count} numbers from {first}: {primes} primes; jobs per worker {per_worker:?} (stopped by {})",
        if stop_with_sentinels {
            "sentinels"
        } else {
            "close"
        }
    );
    primes
}

fn main() {
    const FIRST: u64 = 1_000_000_000;
    const COUNT: u64 = 3_000;
    let expected = (FIRST..FIRST + COUNT).filter(|&n| is_prime(n)).count() as u64;
    assert_eq!(run_batch(FIRST, COUNT, true), expected);
    assert_eq!(run_batch(FIRST, COUNT, false), expected);
}

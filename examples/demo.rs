//! The mproc demo: a CPU-bound job run serially, on threads and on a process pool
//! (with a progress bar), then a worker crash and a hung task handled gracefully.
//!
//! ```text
//! cargo run --release --example demo
//! ```

use std::time::{Duration, Instant};

use mproc::futures::{Executor, ThreadPoolExecutor};
use mproc::pool::Pool;
use mproc::process::cpu_count;

/// Counts the primes in `[lo, hi)` by trial division: honest CPU work.
fn count_primes((lo, hi): (u64, u64)) -> u64 {
    (lo.max(2)..hi)
        .filter(|&n| {
            n == 2
                || (n % 2 == 1
                    && (3..)
                        .step_by(2)
                        .take_while(|d| d * d <= n)
                        .all(|d| n % d != 0))
        })
        .count() as u64
}

const LIMIT: u64 = 6_000_000;
const TILES: u64 = 64;

fn tiles() -> Vec<(u64, u64)> {
    let step = LIMIT / TILES;
    (0..TILES).map(|i| (i * step, (i + 1) * step)).collect()
}

/// Says which worker process is new: the pool replaced the one that died. (The pool
/// starts the replacement in the background; give it up to five seconds.)
fn report_replacement(before: &[u32], pool: &Pool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut after = pool.worker_pids();
    while after.iter().all(|p| before.contains(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        after = pool.worker_pids();
    }
    let after = &after[..];
    let gone: Vec<_> = before.iter().filter(|p| !after.contains(p)).collect();
    let new: Vec<_> = after.iter().filter(|p| !before.contains(p)).collect();
    match (gone.as_slice(), new.as_slice()) {
        ([old], [new]) => {
            println!("  new worker pid {new} replaced pid {old}; workers now {after:?}")
        }
        _ => println!("  workers were {before:?}, now {after:?}"),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let workers = cpu_count().max(2);
    println!("mproc demo: counting the primes below {LIMIT} in {TILES} tiles, {workers} workers\n");

    // 1. Serially, in this process.
    let t = Instant::now();
    let serial: u64 = tiles().into_iter().map(count_primes).sum();
    let serial_time = t.elapsed();
    println!("serial:          {serial} primes in {serial_time:.2?}");

    // 2. On threads: the same function, the executor API.
    let t = Instant::now();
    let threads = ThreadPoolExecutor::new(workers)?;
    let on_threads: u64 = threads
        .map(count_primes, tiles(), None, 1)?
        .map(Result::unwrap)
        .sum();
    let thread_time = t.elapsed();
    println!("thread executor: {on_threads} primes in {thread_time:.2?}");
    assert_eq!(on_threads, serial);

    // 3. On a pool of worker processes, with a progress bar (counts tiles).
    let t = Instant::now();
    let pool = Pool::new(workers)?;
    let start_time = t.elapsed();
    let t = Instant::now();
    let on_pool: u64 = pool
        .options()
        .chunksize(1)
        .progress("primes")
        .map(count_primes, tiles())?
        .into_iter()
        .sum();
    let pool_time = t.elapsed();
    println!(
        "process pool:    {on_pool} primes in {pool_time:.2?} (+{start_time:.2?} to start {workers} workers)"
    );
    assert_eq!(on_pool, serial);

    // 4. A task that crashes its worker: only that task fails, with the facts.
    println!("\na task that aborts its worker, among 19 good ones:");
    let before = pool.worker_pids();
    let results: Vec<_> = pool
        .imap(
            |i: u32| {
                if i == 13 {
                    std::process::abort();
                }
                i * 2
            },
            0..20,
        )
        .collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        println!("  error: {e}");
    }
    println!("  the {ok} other tasks succeeded");
    report_replacement(&before, &pool);

    // 5. A task that hangs: killed at its deadline, the pool goes on.
    println!("\na task that hangs, with a 500 ms timeout:");
    let before = pool.worker_pids();
    let t = Instant::now();
    let hung = pool
        .options()
        .timeout(Duration::from_millis(500))
        .apply(|s: u64| std::thread::sleep(Duration::from_secs(s)), 3600);
    match hung {
        Err(e) => println!("  error after {:.2?}: {e}", t.elapsed()),
        Ok(()) => println!("  unexpectedly finished"),
    }
    report_replacement(&before, &pool);
    println!(
        "  the pool still answers: 6 * 7 = {}",
        pool.apply(|(a, b): (u32, u32)| a * b, (6, 7))?
    );

    // 6. The table.
    let speedup = |d: Duration| serial_time.as_secs_f64() / d.as_secs_f64();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("\n| run             |      time | speedup |");
    println!("|-----------------|-----------|---------|");
    for (name, d) in [
        ("serial", serial_time),
        ("thread executor", thread_time),
        ("process pool", pool_time),
    ] {
        println!("| {name:<15} | {:>6.0} ms | {:>6.2}x |", ms(d), speedup(d));
    }
    Ok(())
}

//! The demo's CPU-bound job fanned out through Redis to two worker processes on
//! this machine (as it would be to workers on many machines), results back through
//! the same futures as the local executors. It starts and stops its own
//! `redis-server` (from the distribution's `redis-server` package).
//!
//! ```text
//! cargo run --release --features distributed --example distributed
//! ```

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mproc::distributed::{BullExecutor, JobOptions, Task, Worker, register};
use mproc::futures::Executor;
use mproc::process::{Process, StartMethod, cpu_count};

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

/// A task that takes its process down: the job fails alone, the worker goes on.
fn crash(_: ()) -> u64 {
    std::process::abort()
}

const LIMIT: u64 = 6_000_000;
const TILES: u64 = 64;
const QUEUE: &str = "primes";

fn tiles() -> Vec<(u64, u64)> {
    let step = LIMIT / TILES;
    (0..TILES).map(|i| (i * step, (i + 1) * step)).collect()
}

fn register_tasks() {
    register("primes.count", count_primes).expect("registered once");
    register("demo.crash", crash).expect("registered once");
}

/// A worker process: what each machine would run.
fn worker_main((redis, processes): (String, usize)) -> (u64, u64) {
    register_tasks();
    let report = Worker::builder()
        .redis(redis)
        .queue(QUEUE)
        .concurrency(processes)
        .start()
        .expect("worker starts")
        .run()
        .expect("worker runs");
    (report.completed, report.failed)
}

/// A throwaway `redis-server` on a free loopback port.
struct Redis(Child, u16);

impl Redis {
    fn start() -> Result<Redis, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot run redis-server ({e}); install it: apt-get install -y redis-server"
                )
            })?;
        let end = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > end {
                return Err("redis-server did not start within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Redis(child, port))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    register_tasks();
    let redis = Redis::start()?;
    let url = format!("redis://127.0.0.1:{}", redis.1);
    let per_worker = (cpu_count() / 2).max(1);
    println!(
        "mproc distributed demo: the primes below {LIMIT} in {TILES} jobs, through Redis at {url}, \
         to 2 worker processes of {per_worker} pool processes each\n"
    );

    let workers: Vec<Process<(u64, u64)>> = (0..2)
        .map(|_| {
            Process::builder()
                .start_method(StartMethod::Spawn)
                .start(worker_main, (url.clone(), per_worker))
        })
        .collect::<Result<_, _>>()?;

    let ex = BullExecutor::connect(&url, QUEUE)?;

    let t = Instant::now();
    let total: u64 = ex
        .map(count_primes, tiles(), None, 1)?
        .map(|r| r.expect("a tile failed"))
        .sum();
    println!("distributed: {total} primes in {:.2?}", t.elapsed());
    assert_eq!(total, 412_849, "the number of primes below 6,000,000");

    // A job whose process aborts fails alone, with the facts of its death.
    let crash_task: Task<(), u64> = Task::remote("demo.crash");
    let err = ex
        .submit_job(&crash_task, (), &JobOptions::new().attempts(2))?
        .result()
        .unwrap_err();
    println!("a crashing job: {err}");
    assert!(err.is_worker_lost());
    // ... and the workers go on.
    assert_eq!(ex.submit(count_primes, (0, 100))?.result()?, 25);
    println!("the workers went on: 25 primes below 100");

    drop(ex);
    for (i, w) in workers.into_iter().enumerate() {
        w.terminate()?; // SIGTERM: a graceful stop
        let (completed, failed) = w.join()?;
        println!("worker {i}: {completed} jobs completed, {failed} attempts failed");
    }
    drop(redis);
    Ok(())
}

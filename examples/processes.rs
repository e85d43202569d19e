//! A first tour of mproc: run Rust functions in child processes, with each start
//! method, and see failures reported instead of hanging.
//!
//! ```text
//! cargo run --release --example processes
//! ```

use std::time::{Duration, Instant};

use mproc::process::{JoinError, Process, StartMethod, Task, current_process};
use serde::{Deserialize, Serialize};

/// A plain function: counts the primes below `limit`.
fn count_primes(limit: u64) -> (String, u32, u64) {
    let count = (2..limit)
        .filter(|&n| (2..).take_while(|d| d * d <= n).all(|d| n % d != 0))
        .count() as u64;
    (
        current_process().name().to_string(),
        std::process::id(),
        count,
    )
}

/// The "subclass Process and override run" style: a value that runs itself.
#[derive(Serialize, Deserialize)]
struct Collatz {
    start: u64,
}

impl Task for Collatz {
    type Output = Vec<u64>;

    fn run(self) -> Vec<u64> {
        let mut n = self.start;
        let mut path = vec![n];
        while n != 1 {
            n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
            path.push(n);
        }
        path
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "mproc processes tour (examples/processes.rs): parent pid {}, {} CPU(s)\n",
        std::process::id(),
        mproc::process::cpu_count()
    );

    println!("1. A function in a child process, with each start method");
    for method in StartMethod::ALL {
        let started = Instant::now();
        let child = Process::builder()
            .name(format!("primes-{method:?}").to_lowercase())
            .start_method(method)
            .start(count_primes, 200_000)?;
        let pid = child.pid();
        let (name, reported_pid, primes) = child.join()?;
        assert_eq!(reported_pid, pid);
        println!(
            "   {method:<10?} child '{name}' (pid {pid}) found {primes} primes below 200000 in {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
    }

    println!("\n2. A Task value that runs itself");
    let path = Process::start_task(Collatz { start: 27 })?.join()?;
    println!(
        "   the Collatz path from 27 has {} steps and peaks at {}",
        path.len() - 1,
        path.iter().max().unwrap()
    );

    println!("\n3. Four children at once");
    let children: Vec<_> = (1..=4u64)
        .map(|k| {
            Process::builder()
                .name(format!("worker-{k}"))
                .start(count_primes, k * 50_000)
        })
        .collect::<Result<_, _>>()?;
    for child in children {
        let (name, _, primes) = child.join()?;
        println!("   {name}: {primes} primes");
    }

    println!("\n4. A panic in a child comes back as an error, with where it happened");
    let child = Process::builder()
        .name("divider")
        .start(|(a, b): (u32, u32)| a / b, (100, 0))?;
    match child.join() {
        // `{err}` adds the child's backtrace when RUST_BACKTRACE is set; `{err:#}` always.
        Err(err @ JoinError::Panicked { .. }) => {
            println!("   {err}");
            if !format!("{err}").contains("stack backtrace") {
                println!("   (run with RUST_BACKTRACE=1 to see the child's backtrace too)");
            }
        }
        other => println!("   unexpected: {other:?}"),
    }

    println!("\n5. A child killed with SIGKILL is reported, not waited for forever");
    let sleeper = Process::builder().name("sleeper").start(
        |secs: u64| std::thread::sleep(Duration::from_secs(secs)),
        3600,
    )?;
    println!("   sleeper running: {}", sleeper.is_alive());
    sleeper.kill()?;
    match sleeper.join() {
        Err(err) => println!("   {err}"),
        Ok(()) => println!("   unexpected: the sleeper finished"),
    }

    println!("\n6. A child that exits early says so");
    let quitter = Process::builder()
        .name("quitter")
        .start(|code: i32| -> u32 { std::process::exit(code) }, 3)?;
    if let Err(err) = quitter.join() {
        println!("   {err}");
    }

    println!("\nDone: every child was joined or reaped; none is left running.");
    Ok(())
}

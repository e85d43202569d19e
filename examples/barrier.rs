//! Worker processes that advance through stages in lock-step with a `Barrier`,
//! whose action runs once per stage, in whichever process arrives last.
//!
//! Each `wait` returns the worker's arrival index in that stage: 0 for the first to
//! arrive, up to `WORKERS - 1` for the last (Python's `Barrier.wait` value). The
//! example prints them as a table and checks that every stage gave each index once.
//!
//! ```text
//! cargo run --example barrier
//! ```

use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mproc::process::Process;
use mproc::shm::SharedAtomicU64;
use mproc::sync::Barrier;

const WORKERS: usize = 3;
const STAGES: u64 = 4;

/// The stage counter, as this process knows it. The action must be a plain
/// `fn()`, so it finds its shared state through a static that each worker sets
/// from its arguments before it waits.
static STAGE: OnceLock<SharedAtomicU64> = OnceLock::new();

/// Runs once per stage, in the last worker to arrive.
fn stage_done() {
    let stage = STAGE
        .get()
        .expect("set before waiting")
        .fetch_add(1, Ordering::SeqCst)
        + 1;
    println!(
        "stage {stage} complete: the action ran in pid {}, the last to arrive",
        std::process::id()
    );
}

fn worker((barrier, stage, id): (Barrier, SharedAtomicU64, usize)) -> Vec<usize> {
    let _ = STAGE.set(stage);
    let mut arrivals = Vec::new();
    for s in 0..STAGES {
        // Some uneven work for this stage.
        std::thread::sleep(Duration::from_millis(5 * ((id as u64 + s) % 3)));
        let index = barrier.wait().expect("no party failed");
        arrivals.push(index);
    }
    arrivals
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stage = SharedAtomicU64::new(0)?;
    let barrier = Barrier::builder(WORKERS)
        .action(stage_done)
        .timeout(Duration::from_secs(30))
        .build()?;
    let workers = (0..WORKERS)
        .map(|id| Process::start(worker, (barrier.clone(), stage.clone(), id)))
        .collect::<Result<Vec<_>, _>>()?;
    let pids: Vec<u32> = workers.iter().map(|w| w.pid()).collect();
    let mut arrivals = Vec::new();
    for w in workers {
        arrivals.push(w.join()?);
    }
    assert_eq!(stage.load(Ordering::SeqCst), STAGES);

    println!(
        "\narrival index per stage (0 = first to arrive, {} = last):",
        WORKERS - 1
    );
    print!("{:<20}", "");
    for s in 1..=STAGES {
        print!(" stage {s}");
    }
    println!();
    for (id, (pid, positions)) in pids.iter().zip(&arrivals).enumerate() {
        print!("{:<20}", format!("worker {id} (pid {pid})"));
        for p in positions {
            print!(" {p:>7}");
        }
        println!();
    }
    for s in 0..STAGES as usize {
        let mut column: Vec<usize> = arrivals.iter().map(|a| a[s]).collect();
        column.sort_unstable();
        assert_eq!(column, (0..WORKERS).collect::<Vec<_>>(), "stage {}", s + 1);
    }
    println!(
        "every stage handed out each arrival index once: all {WORKERS} workers met at each stage"
    );
    Ok(())
}

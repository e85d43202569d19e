//! Worker processes that advance through stages in lock-step with a `Barrier`,
//! whose action runs once per stage, in whichever process arrives last.
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
        "stage {stage} done (action ran in pid {})",
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
    for (id, w) in workers.into_iter().enumerate() {
        println!("worker {id} arrived at positions {:?}", w.join()?);
    }
    assert_eq!(stage.load(Ordering::SeqCst), STAGES);
    Ok(())
}

//! What happens to children when `main` returns: daemon children are terminated,
//! the others are waited for (as in Python). Run it and watch the marker file.
//!
//! ```text
//! cargo run --example exit_policy -- /tmp/marker
//! ```

use std::path::PathBuf;
use std::time::Duration;

use mproc::process::Process;

fn sleep_secs(secs: u64) {
    std::thread::sleep(Duration::from_secs(secs));
}

fn finish_later(path: PathBuf) {
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(path, b"finished").expect("cannot write the marker");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let marker = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "/tmp/mproc-exit-policy".into()),
    );
    let daemon = Process::builder()
        .name("daemon")
        .daemon(true)
        .start(sleep_secs, 3600)?;
    let worker = Process::builder()
        .name("worker")
        .start(finish_later, marker)?;
    println!("daemon {} worker {}", daemon.pid(), worker.pid());
    // Neither is joined: returning from main hands them to the exit policy.
    Ok(())
}

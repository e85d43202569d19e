//! What happens to children when `main` returns: daemon children are terminated,
//! the others are waited for (as in Python).
//!
//! ```text
//! cargo run --example exit_policy                 # runs the program below and checks what happened
//! cargo run --example exit_policy -- /tmp/marker  # only the program: start two children, return
//! ```
//!
//! The program starts a daemon child that would sleep for an hour and a non-daemon
//! child that writes "finished" into the marker file a moment later, then returns
//! from `main` without joining either. Run without an argument, the example runs the
//! program as a child of its own, waits for it to exit, and checks both halves of
//! the policy: the marker says "finished" (the worker was waited for) and the daemon
//! is gone (it was terminated).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mproc::process::Process;

fn sleep_secs(secs: u64) {
    std::thread::sleep(Duration::from_secs(secs));
}

fn finish_later(path: PathBuf) {
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(path, b"finished").expect("cannot write the marker");
}

/// The program under test. Its one line of output holds exactly two numbers, the
/// daemon's pid then the worker's (the test suite reads them).
fn program(marker: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let daemon = Process::builder()
        .name("daemon")
        .daemon(true)
        .start(sleep_secs, 3600)?;
    let worker = Process::builder()
        .name("worker")
        .start(finish_later, marker)?;
    println!(
        "daemon {} (sleeps for an hour) worker {} (writes the marker soon); returning from main",
        daemon.pid(),
        worker.pid()
    );
    // Neither is joined: returning from main hands them to the exit policy.
    Ok(())
}

/// Whether process `pid` has ended (gone, or a zombie waiting for its new parent).
fn has_ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses: `pid (comm) S ...`.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => true,
    }
}

/// Runs the program as a child and checks what the exit policy did.
fn check(marker: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let _ = std::fs::remove_file(marker);
    println!("running this example as a program that starts two children and returns from main:");
    let out = Command::new(std::env::current_exe()?)
        .arg(marker)
        .output()?;
    let said = String::from_utf8_lossy(&out.stdout);
    print!("  it said: {said}");
    if !out.status.success() {
        return Err(format!(
            "the program failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let pids: Vec<u32> = said
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let [daemon, worker] = pids[..] else {
        return Err(format!("expected two pids in {said:?}").into());
    };
    println!("  it has exited ({})", out.status);

    let content = std::fs::read(marker).unwrap_or_default();
    let _ = std::fs::remove_file(marker);
    if content != b"finished" {
        return Err(format!(
            "the marker holds {:?}: worker {worker} was not waited for",
            String::from_utf8_lossy(&content)
        )
        .into());
    }
    println!(
        "  the marker says \"finished\": main's return waited for worker {worker}, a non-daemon child"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    while !has_ended(daemon) {
        if Instant::now() >= deadline {
            return Err(
                format!("daemon {daemon} is still running 10 s after the program exited").into(),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("  daemon {daemon} is gone: it was terminated, not left sleeping for an hour");
    println!(
        "proved: returning from main waits for non-daemon children and terminates daemon ones"
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::args_os().nth(1) {
        Some(marker) => program(PathBuf::from(marker)),
        None => {
            check(&std::env::temp_dir().join(format!("mproc-exit-policy-{}", std::process::id())))
        }
    }
}

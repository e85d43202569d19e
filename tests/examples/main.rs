//! Smoke tests of the example programs (`examples/`): each runs on a small input,
//! exits 0, prints what it promises, and leaves no process behind.
//!
//! `cargo test` builds the examples; these tests run those binaries. This test
//! process makes itself a child subreaper, so any descendant an example leaves
//! behind becomes its child and is seen here.
#![cfg(not(miri))]

#[path = "../common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::eventually;

/// One example at a time: "no process left" is judged over all our children.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const LIMIT: Duration = Duration::from_secs(180);

fn example_path(name: &str) -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    profile_dir.join("examples").join(name)
}

/// The pids whose parent is this process.
fn our_children() -> Vec<u32> {
    common::children_of(std::process::id())
        .into_iter()
        .map(|(pid, _)| pid)
        .collect()
}

/// Runs example `name` with `args` in a scratch data directory; returns its
/// output once it exits (killing it past `LIMIT`).
fn run_example(name: &str, args: &[&str]) -> Output {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    let path = example_path(name);
    assert!(
        path.exists(),
        "{} not built (cargo test builds examples)",
        path.display()
    );
    let scratch = common::temp_path(name);
    std::fs::create_dir_all(&scratch).unwrap();
    let mut child = Command::new(&path)
        .args(args)
        .env("CARGO_TARGET_DIR", &scratch)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Read the pipes on threads so a chatty example cannot block on them.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut v).map(|_| v)
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut v).map(|_| v)
    });
    let end = Instant::now() + LIMIT;
    let mut status = None;
    let finished = eventually(LIMIT, || {
        status = child.try_wait().unwrap();
        status.is_some() || Instant::now() >= end
    });
    let Some(status) = status.filter(|_| finished) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{name} (pid {pid}) still running after {LIMIT:?}");
    };
    let output = Output {
        status,
        stdout: out_t.join().unwrap().unwrap(),
        stderr: err_t.join().unwrap().unwrap(),
    };
    // Whatever the example left running has become our child: none may stay.
    let gone = eventually(Duration::from_secs(20), || {
        let left = our_children();
        for &p in &left {
            // Reap the zombies among them (they are ours now).
            let _ = rustix::process::waitpid(
                rustix::process::Pid::from_raw(p as i32),
                rustix::process::WaitOptions::NOHANG,
            );
        }
        our_children().is_empty()
    });
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(gone, "{name} left processes behind: {:?}", our_children());
    assert!(
        output.status.success(),
        "{name} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The number after `label` on the line that contains it.
fn number_after(text: &str, label: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.contains(label))
        .unwrap_or_else(|| panic!("no line with {label:?} in:\n{text}"));
    let rest = &line[line.find(label).unwrap() + label.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| panic!("no number after {label:?} in {line:?}"))
        .parse()
        .unwrap()
}

#[test]
fn analysis_agrees_with_the_serial_computation() {
    let out = run_example(
        "analysis",
        &["--rows", "30000", "--workers", "2", "--check"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("check: the serial computation agrees"),
        "{text}"
    );
    // 1 line in 500 is malformed by construction.
    let line = text.lines().find(|l| l.contains(" trips, ")).unwrap();
    let trips: u64 = line.split_whitespace().next().unwrap().parse().unwrap();
    let rejected = number_after(line, "trips, ");
    assert_eq!(trips + rejected, 30000, "{line}");
    assert_eq!(rejected, 60, "{line}");
    assert!(text.contains("per hour of day"), "{text}");
}

#[test]
fn pipeline_accounts_for_every_record_after_a_cleaner_is_killed() {
    let out = run_example("pipeline", &["--records", "40000", "--cleaners", "2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let read = number_after(&text, "records in:");
    let written = number_after(&text, "clean out:");
    let rejected = number_after(&text, "rejected:");
    assert_eq!(read, 40000, "{text}");
    assert_eq!(read, written + rejected, "{text}");
    assert!(rejected > 0, "the generated data has bad rows: {text}");
    assert!(text.contains("killed cleaner pid"), "{text}");
    assert!(
        number_after(&text, "replaced after the kill:") >= 1,
        "{text}"
    );
}

#[test]
fn game_server_serves_load_and_survives_a_killed_worker() {
    let out = run_example(
        "game_server",
        &["--workers", "2", "--load", "40", "--seconds", "3"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("killed worker 0"), "{text}");
    assert!(number_after(&text, "worker restarts") >= 1, "{text}");
    assert!(number_after(&text, "clients,") > 0, "{text}");
    assert!(text.contains("round trip: p50"), "{text}");
}

//! Ctrl-C: SIGINT goes to a child process that runs a pool (never to the test
//! binary). The first cancels queued work and stops the pool cleanly; the second
//! kills the workers. Either way no worker outlives the pool.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::process::{Pid, Signal};

use crate::LIMIT;
use crate::common::{eventually, is_dead, temp_path, watchdog};
use mproc::pool::Pool;
use mproc::process::Process;

fn sigint(pid: u32) {
    let _ = rustix::process::kill_process(Pid::from_raw(pid as i32).unwrap(), Signal::INT);
}

/// Runs in a child: a pool of two workers maps slow tasks; writes the worker pids
/// to `marker` once the map is under way. Returns (ok, cancelled, other errors,
/// worker pids).
fn run_pool_until_interrupted(marker: PathBuf) -> (usize, usize, usize, Vec<u32>) {
    let pool = Pool::new(2).unwrap();
    let pids = pool.worker_pids();
    let mut it = pool.options().chunksize(1).imap(
        |ms: u64| {
            std::thread::sleep(Duration::from_millis(ms));
            ms
        },
        vec![300u64; 40],
    );
    let first = it.next();
    let list: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
    std::fs::write(&marker, list.join(",")).unwrap();
    let (mut ok, mut cancelled, mut other) = (usize::from(first.is_some_and(|r| r.is_ok())), 0, 0);
    for r in it {
        match r {
            Ok(_) => ok += 1,
            Err(e) if e.is_cancelled() => cancelled += 1,
            Err(_) => other += 1,
        }
    }
    pool.join();
    (ok, cancelled, other, pids)
}

fn start(marker: &Path) -> Process<(usize, usize, usize, Vec<u32>)> {
    Process::builder()
        .daemon(true)
        .start(run_pool_until_interrupted, marker.to_path_buf())
        .unwrap()
}

fn wait_marker(marker: &Path) {
    assert!(eventually(Duration::from_secs(30), || {
        std::fs::read_to_string(marker).is_ok_and(|s| !s.is_empty())
    }));
}

#[test]
fn first_ctrl_c_cancels_queued_work_and_stops_cleanly() {
    let _w = watchdog("first_ctrl_c", LIMIT);
    let marker = temp_path("ctrl-c-1");
    let child = start(&marker);
    wait_marker(&marker);
    sigint(child.pid());
    let (ok, cancelled, other, pids) = child.join_timeout(Duration::from_secs(30)).unwrap();
    let _ = std::fs::remove_file(&marker);
    assert_eq!(ok + cancelled + other, 40);
    assert!(
        cancelled >= 20,
        "ok {ok}, cancelled {cancelled}, other {other}"
    );
    assert_eq!(other, 0, "running tasks finish after the first Ctrl-C");
    for pid in pids {
        assert!(eventually(Duration::from_secs(10), || is_dead(pid)));
    }
}

#[test]
fn second_ctrl_c_kills_the_workers() {
    let _w = watchdog("second_ctrl_c", LIMIT);
    let marker = temp_path("ctrl-c-2");
    let child = start(&marker);
    wait_marker(&marker);
    let pids: Vec<u32> = std::fs::read_to_string(&marker)
        .unwrap()
        .split(',')
        .map(|p| p.parse().unwrap())
        .collect();
    let _ = std::fs::remove_file(&marker);
    sigint(child.pid());
    sigint(child.pid());
    let (ok, cancelled, _other, _) = child.join_timeout(Duration::from_secs(30)).unwrap();
    assert!(cancelled >= 20, "ok {ok}, cancelled {cancelled}");
    for pid in pids {
        assert!(eventually(Duration::from_secs(10), || is_dead(pid)));
    }
}

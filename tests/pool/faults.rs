//! Workers that die, hang or crash mid-call: only the task they held fails, with
//! the facts, and the pool goes on with a replacement.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use crate::common::{eventually, is_dead, temp_path, watchdog, zombie_children};
use crate::{LIMIT, pool};
use mproc::pool::Pool;

fn kill(pid: u32, sig: Signal) {
    let _ = rustix::process::kill_process(Pid::from_raw(pid as i32).unwrap(), sig);
}

/// Kills the calling worker with SIGKILL.
fn die() {
    kill(std::process::id(), Signal::KILL);
    std::thread::sleep(Duration::from_secs(60));
}

fn kill_at_7(x: u64) -> u64 {
    if x == 7 {
        die();
    }
    x * 2
}

#[test]
fn sigkilled_worker_mid_map_fails_only_its_task() {
    let _w = watchdog("sigkilled_worker_mid_map", LIMIT);
    let p = pool(2);
    let pids = p.worker_pids();
    let err = p.options().chunksize(1).map(kill_at_7, 0..20).unwrap_err();
    assert!(err.is_worker_lost(), "{err}");
    assert_eq!(err.task_index(), Some(7));
    assert_eq!(err.signal(), Some(9));
    assert!(pids.contains(&err.worker_pid().unwrap()));
    let msg = err.to_string();
    assert!(
        msg.contains("was killed by signal 9 (SIGKILL) while running task 7"),
        "{msg}"
    );
    // The dead worker was replaced and reaped; the pool goes on.
    assert!(eventually(Duration::from_secs(10), || is_dead(
        err.worker_pid().unwrap()
    )));
    assert_eq!(p.map(|x: u64| x + 1, 0..100).unwrap()[99], 100);
    assert!(eventually(Duration::from_secs(10), || p
        .worker_pids()
        .len()
        == 2));
    assert!(!p.worker_pids().contains(&err.worker_pid().unwrap()));
    // With automatic chunking the crash still hits only task 7.
    let err = p.map(kill_at_7, 0..20).unwrap_err();
    assert_eq!(err.task_index(), Some(7));
    assert!(
        zombie_children(std::process::id())
            .iter()
            .all(|z| *z != err.worker_pid().unwrap())
    );
}

#[test]
fn sigkilled_worker_mid_imap_unordered_fails_only_its_task() {
    let _w = watchdog("sigkilled_worker_mid_imap_unordered", LIMIT);
    let p = pool(2);
    let results: Vec<_> = p
        .options()
        .chunksize(3)
        .imap_unordered(kill_at_7, 0..50)
        .collect();
    assert_eq!(results.len(), 50);
    let errors: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].task_index(), Some(7));
    assert!(errors[0].is_worker_lost());
    let mut ok: Vec<u64> = results.into_iter().filter_map(Result::ok).collect();
    ok.sort_unstable();
    let want: Vec<u64> = (0..50).filter(|x| *x != 7).map(|x| x * 2).collect();
    assert_eq!(ok, want);
    // Ordered imap: the error sits at its index.
    let results: Vec<_> = p.imap(kill_at_7, 0..12).collect();
    assert!(results[7].as_ref().unwrap_err().is_worker_lost());
    assert_eq!(*results[8].as_ref().unwrap(), 16);
}

fn write_pid_and_sleep(path: PathBuf) -> u64 {
    std::fs::write(&path, std::process::id().to_string()).unwrap();
    std::thread::sleep(Duration::from_secs(60));
    0
}

#[test]
fn worker_killed_from_outside_fails_its_apply_async() {
    let _w = watchdog("worker_killed_from_outside", LIMIT);
    let p = pool(2);
    let path = temp_path("victim");
    let victim = p.apply_async(write_pid_and_sleep, path.clone());
    let others: Vec<_> = (0..20u64)
        .map(|i| p.apply_async(|x: u64| x + 1, i))
        .collect();
    assert!(eventually(Duration::from_secs(30), || {
        std::fs::read_to_string(&path)
            .map(|s| !s.is_empty())
            .unwrap_or(false)
    }));
    let pid: u32 = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let _ = std::fs::remove_file(&path);
    kill(pid, Signal::KILL);
    let err = victim.get().unwrap_err();
    assert!(err.is_worker_lost());
    assert_eq!(err.worker_pid(), Some(pid));
    assert_eq!(err.signal(), Some(9));
    assert_eq!(err.task_index(), Some(0));
    for (i, r) in others.into_iter().enumerate() {
        assert_eq!(r.get().unwrap(), i as u64 + 1);
    }
    // SIGSEGV-style deaths and exits are reported the same way.
    let err = p
        .apply(|_: ()| -> u8 { std::process::exit(7) }, ())
        .unwrap_err();
    assert!(err.is_worker_lost());
    assert_eq!(err.exit_status(), Some(mproc::process::ExitStatus::Code(7)));
    assert!(err.to_string().contains("exited with code 7"), "{err}");
}

#[test]
fn a_task_past_its_timeout_is_killed_and_replaced() {
    let _w = watchdog("a_task_past_its_timeout", LIMIT);
    let p = pool(2);
    let start = Instant::now();
    let err = p
        .options()
        .timeout(Duration::from_millis(300))
        .apply(|s: u64| std::thread::sleep(Duration::from_secs(s)), 60)
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(err.timeout(), Some(Duration::from_millis(300)));
    assert!(start.elapsed() < Duration::from_secs(20));
    assert!(eventually(Duration::from_secs(10), || is_dead(
        err.worker_pid().unwrap()
    )));
    assert!(err.to_string().contains("ran past its timeout"), "{err}");
    // Pool-wide default; fast tasks under it are fine, the slow one alone fails.
    let p = Pool::builder()
        .processes(2)
        .task_timeout(Duration::from_millis(500))
        .handle_ctrl_c(false)
        .build()
        .unwrap();
    let results: Vec<_> = p
        .imap(
            |ms: u64| {
                std::thread::sleep(Duration::from_millis(ms));
                ms
            },
            [1, 2, 30_000, 3, 4],
        )
        .collect();
    assert!(results[2].as_ref().unwrap_err().is_timeout());
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 4);
    assert_eq!(p.apply(|x: u8| x, 9).unwrap(), 9);
}

fn die_once(marker: PathBuf) -> String {
    if std::fs::metadata(&marker).is_err() {
        std::fs::write(&marker, b"1").unwrap();
        die();
    }
    "second time lucky".to_string()
}

#[test]
fn retries_rerun_lost_tasks_within_a_budget() {
    let _w = watchdog("retries_rerun_lost_tasks", LIMIT);
    let p = pool(2);
    let marker = temp_path("die-once");
    let ok = p
        .options()
        .retries(1)
        .apply(die_once, marker.clone())
        .unwrap();
    assert_eq!(ok, "second time lucky");
    let _ = std::fs::remove_file(&marker);
    // A task that kills every worker it touches is given up after the budget.
    let err = p
        .options()
        .retries(2)
        .apply(|_: ()| -> u8 { std::process::abort() }, ())
        .unwrap_err();
    assert!(err.is_worker_lost());
    assert_eq!(err.attempts(), Some(3));
    assert!(err.to_string().contains("giving up"), "{err}");
    assert_eq!(p.apply(|x: u8| x + 1, 1).unwrap(), 2);
}

//! Ctrl-C: SIGINT goes to a child process that runs a pool (never to the test
//! binary). The first cancels queued work and stops the pool cleanly; the second
//! kills the workers. Either way no worker outlives the pool. A handler the
//! application installed before the pool still hears every Ctrl-C, and is back in
//! place, exactly, once the pool is gone.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
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

// ---- the application's own SIGINT handler ------------------------------------

/// How many `SIGINT`s the application's handler has seen (in the child).
static APP_HANDLER_CALLS: AtomicU64 = AtomicU64::new(0);

extern "C" fn app_handler(_sig: libc::c_int) {
    APP_HANDLER_CALLS.fetch_add(1, Ordering::SeqCst);
}

/// The `SIGINT` disposition as comparable values: handler, flags, and which of
/// the signals 1..=64 the mask blocks.
fn sigint_disposition() -> (usize, i32, Vec<i32>) {
    #![allow(unsafe_code)] // the test plays an application that calls sigaction
    // SAFETY: an all-zero `sigaction` is a valid value; a null new action only
    // queries, and `old` is valid for writes.
    let old = unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(libc::SIGINT, std::ptr::null(), &mut old), 0);
        old
    };
    // SAFETY: `old.sa_mask` was filled in by the kernel; 1..=64 are valid signals.
    let mask = (1..=64)
        .filter(|&s| unsafe { libc::sigismember(&old.sa_mask, s) } == 1)
        .collect();
    (old.sa_sigaction, old.sa_flags, mask)
}

/// Installs `handler` for `SIGINT` the way an application would, blocking
/// `SIGUSR1` while it runs (so that a restore which loses the mask shows).
fn install_app_disposition(handler: libc::sighandler_t) {
    #![allow(unsafe_code)] // the test plays an application that calls sigaction
    // SAFETY: an all-zero `sigaction` is a valid value; `sigaddset` gets a valid
    // set and signal; the action is fully initialised and `app_handler` only
    // touches an atomic (async-signal-safe).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = libc::SA_RESTART;
        libc::sigaddset(&mut action.sa_mask, libc::SIGUSR1);
        assert_eq!(
            libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut()),
            0
        );
    }
}

fn sigint_self() {
    sigint(std::process::id());
}

/// What a child saw around its pool; see `run_pool_after_app_disposition`.
type Seen = (u64, bool, bool, u64);

/// The SIGINT disposition the application sets up before its pool. (Chosen by
/// name: a function's address means nothing in a spawned child.)
#[derive(Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum AppDisposition {
    Handler,
    Ignore,
}

/// Runs in a child: installs `app` for SIGINT as the application, starts a
/// pool (Ctrl-C handling on), raises SIGINT at itself while the pool runs, waits
/// for the pool to close, drops it, then raises SIGINT again. Returns: the calls
/// the application's handler saw while the pool lived, whether the pool was
/// interrupted, whether the disposition after the pool is exactly the one before
/// it, and the handler's calls after the second SIGINT. (Under a SIGINT that kills,
/// the child dies instead of returning.)
fn run_pool_after_app_disposition(app: AppDisposition) -> Seen {
    let wait = Duration::from_secs(20);
    let has_handler = app == AppDisposition::Handler;
    install_app_disposition(if has_handler {
        app_handler as extern "C" fn(libc::c_int) as libc::sighandler_t
    } else {
        libc::SIG_IGN
    });
    let before = sigint_disposition();
    let pool = Pool::new(1).unwrap();
    assert_eq!(pool.apply(|x: u64| x + 1, 1).unwrap(), 2);
    sigint_self();
    // The first Ctrl-C closes the pool: new work is refused as cancelled.
    let interrupted = eventually(wait, || {
        pool.apply(|x: u64| x, 0).is_err_and(|e| e.is_cancelled())
    });
    let calls = &APP_HANDLER_CALLS;
    let with_pool = if has_handler {
        eventually(wait, || calls.load(Ordering::SeqCst) >= 1);
        calls.load(Ordering::SeqCst)
    } else {
        0
    };
    pool.join();
    drop(pool);
    let restored = sigint_disposition() == before;
    sigint_self();
    let after = if has_handler {
        eventually(wait, || calls.load(Ordering::SeqCst) > with_pool);
        calls.load(Ordering::SeqCst) - with_pool
    } else {
        0
    };
    (with_pool, interrupted, restored, after)
}

fn run_with_app_disposition(app: AppDisposition) -> Seen {
    Process::builder()
        .daemon(true)
        .start(run_pool_after_app_disposition, app)
        .unwrap()
        .join_timeout(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("the child did not come back: {e}"))
}

#[test]
fn an_application_handler_is_chained_and_restored() {
    let _w = watchdog("an_application_handler_is_chained_and_restored", LIMIT);
    let (with_pool, interrupted, restored, after) =
        run_with_app_disposition(AppDisposition::Handler);
    assert!(interrupted, "the pool did not see the Ctrl-C");
    assert_eq!(
        with_pool, 1,
        "the application's handler must hear the Ctrl-C the pool handled"
    );
    assert!(
        restored,
        "the application's SIGINT disposition was not restored exactly after the pool"
    );
    assert_eq!(
        after, 1,
        "the application's handler is not back after the pool"
    );
}

#[test]
fn an_ignored_sigint_stays_ignored_after_the_pool() {
    let _w = watchdog("an_ignored_sigint_stays_ignored_after_the_pool", LIMIT);
    let (_, interrupted, restored, _) = run_with_app_disposition(AppDisposition::Ignore);
    assert!(interrupted, "the pool did not see the Ctrl-C");
    assert!(restored, "SIG_IGN was not restored after the pool");
}

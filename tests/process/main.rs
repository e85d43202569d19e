//! The process test suite. Every behaviour runs under each start method: the
//! `for_each_method!` list at the bottom expands each test into `forkserver::`,
//! `spawn::` and `fork::` variants.
#![cfg(not(miri))]

#[path = "../common/mod.rs"]
mod common;

mod containment;
mod contexts;
mod descriptors;
mod exhaustion;
mod faults;
mod start_methods;

use std::time::Duration;

use common::{eventually, is_dead, watchdog};
use mproc::process::{
    ExitStatus, JoinError, Process, StartFault, StartMethod, Task, active_children,
    current_process, parent_process,
};
use serde::{Deserialize, Deserializer, Serialize};

const LIMIT: Duration = Duration::from_secs(60);

/// Children in these tests are daemons unless a test says otherwise, so that a
/// failing test never leaves the binary waiting for a sleeping child at exit.
fn builder(m: StartMethod) -> mproc::process::Builder {
    let mut b = Process::builder();
    b.start_method(m).daemon(true);
    b
}

fn double(x: u64) -> u64 {
    x * 2
}

fn returns_value(m: StartMethod) {
    let _w = watchdog("returns_value", LIMIT);
    assert_eq!(builder(m).start(double, 21).unwrap().join().unwrap(), 42);
    let p = builder(m)
        .start(|(s, n): (String, usize)| s.repeat(n), ("ab".to_string(), 3))
        .unwrap();
    assert_eq!(p.join().unwrap(), "ababab");
    // Larger than any socket buffer, both ways.
    let big: Vec<u8> = (0..4_000_000u32).map(|i| i as u8).collect();
    let p = builder(m)
        .start(
            |v: Vec<u8>| v.iter().rev().copied().collect::<Vec<u8>>(),
            big.clone(),
        )
        .unwrap();
    let back = p.join().unwrap();
    assert_eq!(back.len(), big.len());
    assert!(back.iter().rev().eq(big.iter()));
}

/// A result too large to wait on the socket, with a descriptor inside it: the
/// descriptor must come out of the spilled report's frame in its place.
fn big_result_with_handle(n: usize) -> (Vec<u8>, mproc::pipe::Receiver<u64>) {
    let (tx, rx) = mproc::pipe::simplex::<u64>().unwrap();
    tx.send(&(n as u64)).unwrap();
    ((0..n).map(|i| (i % 251) as u8).collect(), rx)
}

fn large_reports_travel(m: StartMethod) {
    let _w = watchdog("large_reports_travel", LIMIT);
    for n in [10, 100_000, 3_000_000] {
        let (bytes, rx) = builder(m)
            .start(big_result_with_handle, n)
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(bytes.len(), n);
        assert!(bytes.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
        assert_eq!(rx.recv_timeout(LIMIT).unwrap(), n as u64);
    }
    // A panic whose report (message and backtrace) is larger than a socket buffer.
    let err = builder(m)
        .start(|n: usize| -> u8 { panic!("{}", "x".repeat(n)) }, 500_000)
        .unwrap()
        .join()
        .unwrap_err();
    assert_eq!(err.panic_message().map(str::len), Some(500_000));
}

#[derive(Serialize, Deserialize)]
struct Sum {
    items: Vec<i64>,
}

impl Task for Sum {
    type Output = i64;
    fn run(self) -> i64 {
        self.items.iter().sum()
    }
}

fn task_trait(m: StartMethod) {
    let _w = watchdog("task_trait", LIMIT);
    let p = builder(m)
        .start_task(Sum {
            items: vec![1, 2, 3, 4],
        })
        .unwrap();
    assert_eq!(p.join().unwrap(), 10);
}

fn who_am_i(_: ()) -> (String, bool, u32, Option<u32>, String) {
    let me = current_process();
    let parent = parent_process();
    (
        me.name().to_string(),
        me.is_daemon(),
        me.pid(),
        parent.as_ref().map(|p| p.pid()),
        parent.map(|p| p.name().to_string()).unwrap_or_default(),
    )
}

fn identity(m: StartMethod) {
    let _w = watchdog("identity", LIMIT);
    let p = builder(m)
        .name("worker-a")
        .daemon(true)
        .start(who_am_i, ())
        .unwrap();
    let pid = p.pid();
    assert_eq!(p.name(), "worker-a");
    assert!(p.is_daemon());
    assert_eq!(p.start_method(), m);
    let (name, daemon, child_pid, parent_pid, parent_name) = p.join().unwrap();
    assert_eq!(name, "worker-a");
    assert!(daemon);
    assert_eq!(child_pid, pid);
    assert_eq!(parent_pid, Some(std::process::id()));
    assert_eq!(parent_name, "MainProcess");
    // Default names are numbered.
    let p = Process::builder()
        .start_method(m)
        .start(who_am_i, ())
        .unwrap();
    assert!(p.name().starts_with("Process-"), "{}", p.name());
    assert!(!p.is_daemon());
    let (_, daemon, ..) = p.join().unwrap();
    assert!(!daemon);
}

fn grandchild(method: StartMethod) -> (u32, Option<u32>, u64) {
    let me = std::process::id();
    let p = Process::builder()
        .start_method(method)
        .start(|x: u64| (parent_process().map(|p| p.pid()), x + 1), 41)
        .unwrap();
    let (parent, v) = p.join().unwrap();
    (me, parent, v)
}

fn nested(m: StartMethod) {
    let _w = watchdog("nested", LIMIT);
    for inner in StartMethod::ALL {
        let p = builder(m).start(grandchild, inner).unwrap();
        let (child_pid, grandchild_parent, v) = p.join().unwrap();
        assert_eq!(grandchild_parent, Some(child_pid), "{m:?} -> {inner:?}");
        assert_eq!(v, 42);
    }
}

fn panics_are_reported(m: StartMethod) {
    let _w = watchdog("panics_are_reported", LIMIT);
    let p = builder(m)
        .name("doomed")
        .start(
            |x: u32| -> u32 { if x > 0 { panic!("bad input {x}") } else { x } },
            7,
        )
        .unwrap();
    let err = p.join().unwrap_err();
    assert!(err.is_panic(), "{err}");
    assert_eq!(err.panic_message(), Some("bad input 7"));
    let JoinError::Panicked {
        location,
        backtrace,
        name,
        ..
    } = &err
    else {
        unreachable!()
    };
    assert_eq!(name, "doomed");
    assert!(
        location
            .as_deref()
            .unwrap()
            .contains("tests/process/main.rs"),
        "{location:?}"
    );
    assert!(!backtrace.is_empty());
    let text = err.to_string();
    assert!(
        text.contains("'doomed'") && text.contains("panicked") && text.contains("bad input 7"),
        "{text}"
    );
}

fn long_sleep(_: ()) {
    std::thread::sleep(Duration::from_secs(120));
}

fn signals_are_reported(m: StartMethod) {
    let _w = watchdog("signals_are_reported", LIMIT);
    let p = builder(m).start(long_sleep, ()).unwrap();
    assert!(p.is_alive());
    p.kill().unwrap();
    let err = p.join().unwrap_err();
    assert!(err.is_signaled(), "{err}");
    assert_eq!(err.signal(), Some(9));
    assert!(err.to_string().contains("signal 9 (SIGKILL)"), "{err}");

    let mut p = builder(m).start(long_sleep, ()).unwrap();
    p.terminate().unwrap();
    assert!(eventually(LIMIT, || p.exit_status().is_some()));
    assert_eq!(p.exit_status(), Some(ExitStatus::Signal(15)));
    assert!(!p.is_alive());
    assert_eq!(p.join().unwrap_err().signal(), Some(15));
}

fn early_exit_is_reported(m: StartMethod) {
    let _w = watchdog("early_exit_is_reported", LIMIT);
    let p = builder(m)
        .start(|code: i32| -> u8 { std::process::exit(code) }, 7)
        .unwrap();
    match p.join().unwrap_err() {
        JoinError::Exited { code, .. } => assert_eq!(code, 7),
        other => panic!("expected Exited, got {other}"),
    }
    let p = builder(m)
        .start(|_: ()| -> u8 { std::process::abort() }, ())
        .unwrap();
    assert_eq!(p.join().unwrap_err().signal(), Some(6));
}

/// Serializes fine, refuses to deserialize: for the decode-failure paths.
#[derive(Debug)]
struct Undecodable;

impl Serialize for Undecodable {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(0)
    }
}

impl<'de> Deserialize<'de> for Undecodable {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom("refusing to decode"))
    }
}

fn decode_failures_are_reported(m: StartMethod) {
    let _w = watchdog("decode_failures_are_reported", LIMIT);
    let p = builder(m).start(|_: ()| Undecodable, ()).unwrap();
    match p.join().unwrap_err() {
        JoinError::Codec { reason, .. } => assert!(reason.contains("in the parent"), "{reason}"),
        other => panic!("expected Codec, got {other}"),
    }
    let p = builder(m).start(|_: Undecodable| 1u8, Undecodable).unwrap();
    match p.join().unwrap_err() {
        JoinError::Codec { reason, .. } => {
            assert!(reason.contains("arguments in the child"), "{reason}")
        }
        other => panic!("expected Codec, got {other}"),
    }
}

fn start_failures_are_reported(m: StartMethod) {
    let _w = watchdog("start_failures_are_reported", LIMIT);
    let p = builder(m)
        .simulate_start_fault(StartFault::ExitBeforeHandshake)
        .start(double, 1)
        .unwrap();
    let err = p.join().unwrap_err();
    assert!(
        matches!(
            err,
            JoinError::BootstrapMissing {
                status: ExitStatus::Code(3),
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("before the mproc bootstrap ran"),
        "{err}"
    );

    let p = builder(m)
        .simulate_start_fault(StartFault::StallHandshake(120_000))
        .handshake_timeout(Duration::from_millis(300))
        .start(double, 1)
        .unwrap();
    let pid = p.pid();
    let err = p.join().unwrap_err();
    assert!(matches!(err, JoinError::HandshakeTimeout { .. }), "{err}");
    assert!(
        eventually(LIMIT, || is_dead(pid)),
        "the stalled child was not killed"
    );
}

fn join_timeout_gives_the_handle_back(m: StartMethod) {
    let _w = watchdog("join_timeout_gives_the_handle_back", LIMIT);
    let p = builder(m).start(long_sleep, ()).unwrap();
    let err = p.join_timeout(Duration::from_millis(100)).unwrap_err();
    assert!(err.is_timeout());
    let p = err.into_inner().unwrap();
    assert!(p.is_alive());
    p.kill().unwrap();
    assert!(
        p.join_timeout(LIMIT)
            .unwrap_err()
            .to_string()
            .contains("SIGKILL")
    );
    assert_eq!(
        builder(m)
            .start(double, 4)
            .unwrap()
            .join_timeout(LIMIT)
            .unwrap(),
        8
    );
}

fn sentinel_polls_ready_at_exit(m: StartMethod) {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let _w = watchdog("sentinel_polls_ready_at_exit", LIMIT);
    let p = builder(m).start(long_sleep, ()).unwrap();
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let sentinel = p.sentinel();
    let mut fds = [PollFd::new(&sentinel, PollFlags::IN)];
    assert_eq!(
        poll(&mut fds, Some(&zero)).unwrap(),
        0,
        "sentinel ready while the child runs"
    );
    p.kill().unwrap();
    let limit = Timespec {
        tv_sec: 30,
        tv_nsec: 0,
    };
    assert_eq!(
        poll(&mut fds, Some(&limit)).unwrap(),
        1,
        "sentinel not ready after kill"
    );
    let _ = fds;
    let _ = p.join();
}

fn active_children_lists_running_children(m: StartMethod) {
    let _w = watchdog("active_children", LIMIT);
    let p = builder(m).name("lister").start(long_sleep, ()).unwrap();
    let pid = p.pid();
    let listed = active_children();
    let me = listed
        .iter()
        .find(|c| c.pid() == pid)
        .expect("running child not listed");
    assert_eq!(me.name(), "lister");
    p.kill().unwrap();
    let _ = p.join();
    assert!(!active_children().iter().any(|c| c.pid() == pid));
}

fn output_can_be_captured(m: StartMethod) {
    let _w = watchdog("output_can_be_captured", LIMIT);
    let p = builder(m)
        .capture_output(true)
        .start(
            |n: usize| {
                // Direct writes: libtest's capture of `println!` is inherited by
                // threads, so a Fork child of a test thread would print into it.
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                for i in 0..n {
                    writeln!(out, "line {i}").unwrap();
                }
                std::io::stderr().write_all(b"done\n").unwrap();
                n
            },
            5000,
        )
        .unwrap();
    let (result, out) = p.join_with_output();
    assert_eq!(result.unwrap(), 5000);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 5000);
    assert!(text.starts_with("line 0\n") && text.ends_with("line 4999\n"));
    assert_eq!(out.stderr, b"done\n");
}

fn dropped_handles_are_reaped(m: StartMethod) {
    let _w = watchdog("dropped_handles_are_reaped", LIMIT);
    let pids: Vec<u32> = (0..10)
        .map(|i| builder(m).start(double, i).unwrap().pid())
        .collect();
    // The handles are gone; the reaper must reap every child.
    assert!(
        eventually(LIMIT, || pids
            .iter()
            .all(|&p| common::proc_state(p).is_none())),
        "zombies left: {pids:?}"
    );
}

/// Runs inside a fresh child so that no other test's descriptors or children interfere.
fn thousand_starts_leave_nothing(m: StartMethod) -> Result<(usize, usize, Vec<u32>), String> {
    // Warm up lazily created resources (forkserver, launcher, reaper).
    Process::builder()
        .start_method(m)
        .start(double, 0)
        .map_err(|e| e.to_string())?
        .join()
        .map_err(|e| e.to_string())?;
    let before = common::open_fds();
    for i in 0..1000u64 {
        let v = Process::builder()
            .start_method(m)
            .start(double, i)
            .map_err(|e| e.to_string())?
            .join()
            .map_err(|e| e.to_string())?;
        if v != 2 * i {
            return Err(format!("wrong result {v} for {i}"));
        }
    }
    let after = common::open_fds();
    Ok((before, after, common::zombie_children(std::process::id())))
}

fn thousand_starts(m: StartMethod) {
    let _w = watchdog("thousand_starts", Duration::from_secs(300));
    let p = Process::builder()
        .start_method(StartMethod::Spawn)
        .start(thousand_starts_leave_nothing, m)
        .unwrap();
    let (before, after, zombies) = p.join_timeout(Duration::from_secs(280)).unwrap().unwrap();
    assert_eq!(
        before, after,
        "descriptors leaked over 1000 starts with {m:?}"
    );
    assert!(
        zombies.is_empty(),
        "zombies after 1000 starts with {m:?}: {zombies:?}"
    );
}

fn daemons_stop_and_others_finish(method: StartMethod) -> (u32, u32, std::path::PathBuf) {
    let marker = common::temp_path("non-daemon");
    let daemon = Process::builder()
        .start_method(method)
        .daemon(true)
        .start(long_sleep, ())
        .unwrap();
    let worker = Process::builder()
        .start_method(method)
        .start(
            |path: std::path::PathBuf| {
                std::thread::sleep(Duration::from_millis(300));
                std::fs::write(path, b"finished").unwrap();
            },
            marker.clone(),
        )
        .unwrap();
    let ids = (daemon.pid(), worker.pid());
    // Both handles are dropped: what happens now is the exit policy's business.
    drop(daemon);
    drop(worker);
    (ids.0, ids.1, marker)
}

fn exit_policy(m: StartMethod) {
    let _w = watchdog("exit_policy", LIMIT);
    let p = builder(m)
        .capture_output(true)
        .start(daemons_stop_and_others_finish, m)
        .unwrap();
    let (result, out) = p.join_with_output();
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    let (daemon, _worker, marker) = result.unwrap();
    // The non-daemon child was waited for before the parent ended...
    assert_eq!(std::fs::read(&marker).unwrap(), b"finished");
    let _ = std::fs::remove_file(&marker);
    // ...and the daemon was terminated.
    assert!(
        eventually(LIMIT, || is_dead(daemon)),
        "daemon child {daemon} outlived its parent"
    );
}

fn start_from_many_threads(m: StartMethod) {
    let _w = watchdog("start_from_many_threads", LIMIT);
    let handles: Vec<_> = (0..8u64)
        .map(|i| {
            std::thread::spawn(move || {
                Process::builder()
                    .start_method(m)
                    .start(double, i)
                    .unwrap()
                    .join()
                    .unwrap()
            })
        })
        .collect();
    let results: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results, (0..8).map(|i| i * 2).collect::<Vec<_>>());
}

fn children_outlive_the_starting_thread(m: StartMethod) {
    let _w = watchdog("children_outlive_the_starting_thread", LIMIT);
    // Started from a thread that ends at once: PR_SET_PDEATHSIG must not fire.
    let p = std::thread::spawn(move || {
        Process::builder()
            .start_method(m)
            .start(
                |_: ()| {
                    std::thread::sleep(Duration::from_millis(300));
                    7u8
                },
                (),
            )
            .unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(p.join().unwrap(), 7);
}

macro_rules! for_each_method {
    ($($name:ident),* $(,)?) => {
        mod forkserver {
            $( #[test] fn $name() { super::$name(mproc::process::StartMethod::Forkserver) } )*
        }
        mod spawn {
            $( #[test] fn $name() { super::$name(mproc::process::StartMethod::Spawn) } )*
        }
        mod fork {
            $( #[test] fn $name() { super::$name(mproc::process::StartMethod::Fork) } )*
        }
    };
}

for_each_method!(
    returns_value,
    large_reports_travel,
    task_trait,
    identity,
    nested,
    panics_are_reported,
    signals_are_reported,
    early_exit_is_reported,
    decode_failures_are_reported,
    start_failures_are_reported,
    join_timeout_gives_the_handle_back,
    sentinel_polls_ready_at_exit,
    active_children_lists_running_children,
    output_can_be_captured,
    dropped_handles_are_reaped,
    thousand_starts,
    exit_policy,
    start_from_many_threads,
    children_outlive_the_starting_thread,
);

#[test]
fn current_process_in_the_parent() {
    let me = current_process();
    assert_eq!(me.pid(), std::process::id());
    assert_eq!(me.name(), "MainProcess");
    assert!(parent_process().is_none());
    assert!(mproc::process::cpu_count() >= 1);
}

#[test]
fn non_capturing_closure_coerces_to_fn() {
    // That a capturing closure does not compile is the `compile_fail` doc test on
    // `Process::start`.
    let f: fn(u8) -> u8 = |x| x + 1;
    assert_eq!(Process::start(f, 1).unwrap().join().unwrap(), 2);
}

/// Records `log` warnings, for the Fork warning test.
struct Recorder(std::sync::Mutex<Vec<String>>);

impl log::Log for Recorder {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.level() <= log::Level::Warn {
            self.0.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

/// In a fresh process: install a logger, start a thread, then use Fork.
fn fork_with_threads_warns(_: ()) -> Vec<String> {
    static RECORDER: Recorder = Recorder(std::sync::Mutex::new(Vec::new()));
    log::set_logger(&RECORDER).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let busy = std::thread::spawn(move || rx.recv_timeout(Duration::from_secs(60)));
    let p = Process::builder()
        .start_method(StartMethod::Fork)
        .start(double, 1)
        .unwrap();
    assert_eq!(p.join().unwrap(), 2);
    tx.send(()).unwrap();
    busy.join().unwrap().unwrap();
    RECORDER.0.lock().unwrap().clone()
}

#[test]
fn fork_warns_when_the_parent_has_threads() {
    let _w = watchdog("fork_warns", LIMIT);
    let p = builder(StartMethod::Spawn)
        .start(fork_with_threads_warns, ())
        .unwrap();
    let warnings = p.join().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("StartMethod::Fork with 1 other thread"),
        "{warnings:?}"
    );
}

/// In a fresh process: one thread panics over and over (so std's panic-hook lock
/// is often held) while Fork children run tasks that panic. A child must never
/// inherit that lock held and hang (regression: it did when the child installed
/// its own hook).
fn fork_while_another_thread_panics(rounds: u32) -> u32 {
    // A slow, quiet hook: the panicking thread holds std's hook lock most of the time.
    std::panic::set_hook(Box::new(|_| {
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_micros(200) {
            std::hint::spin_loop();
        }
    }));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let panicker = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::panic::catch_unwind(|| panic!("noise"));
            }
        })
    };
    let mut reported = 0;
    for i in 0..rounds {
        let p = Process::builder()
            .start_method(StartMethod::Fork)
            .handshake_timeout(Duration::from_secs(20))
            .start(|i: u32| -> u32 { panic!("task {i}") }, i)
            .unwrap();
        let err = p.join().unwrap_err();
        assert_eq!(
            err.panic_message(),
            Some(format!("task {i}").as_str()),
            "{err}"
        );
        reported += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    panicker.join().unwrap();
    reported
}

#[test]
fn fork_is_safe_while_another_thread_panics() {
    let _w = watchdog("fork_while_panicking", LIMIT);
    let p = builder(StartMethod::Spawn)
        .start(fork_while_another_thread_panics, 100)
        .unwrap();
    assert_eq!(p.join().unwrap(), 100);
}

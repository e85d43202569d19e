//! `multiprocessing.Process` scenarios: `_TestProcess`, `_TestSubclassingProcess`,
//! `TestStartMethod`, `TestCloseFds` of `_test_multiprocessing.py`.

use std::os::fd::AsFd;
use std::time::Duration;

use mproc::process::{
    ExitStatus, JoinError, Process, StartMethod, Task, active_children, cpu_count, current_process,
    parent_process,
};
use mproc::queue::Queue;
use mproc::sync::Event;
use serde::{Deserialize, Serialize};

use crate::common::{eventually, is_dead, watchdog};
use crate::{LIMIT, LONG};

/// Whether the pidfd `fd` polls readable within `timeout`.
fn readable(fd: std::os::fd::BorrowedFd<'_>, timeout: Duration) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    let ts = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: timeout.subsec_nanos() as _,
    };
    poll(&mut fds, Some(&ts)).expect("poll") == 1
}

/// Blocks until `go` is set (bounded), then returns this process's facts.
fn report_when_told(go: Event) -> (u32, String, bool, Option<u32>) {
    assert!(go.wait_timeout(LONG), "the parent never said go");
    let me = current_process();
    (
        me.pid(),
        me.name().to_string(),
        me.is_daemon(),
        parent_process().map(|p| p.pid()),
    )
}

fn sleep_secs(s: u64) {
    std::thread::sleep(Duration::from_secs(s));
}

/// `_TestProcess.test_current`: the main process is alive, not a daemon, named
/// `MainProcess`, with this pid; it has no mproc parent.
#[test]
fn test_current() {
    let me = current_process();
    assert_eq!(me.pid(), std::process::id());
    assert_eq!(me.name(), "MainProcess");
    assert!(!me.is_daemon());
}

/// `_TestProcess.test_parent_process_attributes`: `parent_process()` is `None` in
/// the main process; in a child it is the parent, with the parent's pid and name.
#[test]
fn test_parent_process_attributes() {
    let _w = watchdog("test_parent_process_attributes", LIMIT);
    assert!(parent_process().is_none());
    let child = Process::start(
        |_: ()| parent_process().map(|p| (p.pid(), p.name().to_string())),
        (),
    )
    .unwrap();
    let got = child.join().unwrap();
    assert_eq!(got, Some((std::process::id(), "MainProcess".to_string())));
}

/// `_TestProcess.test_args_argument`: the arguments reach the child whatever
/// their shape (a number, a string, a list, a tuple).
#[test]
fn test_args_argument() {
    let _w = watchdog("test_args_argument", LIMIT);
    assert_eq!(Process::start(|x: u32| x, 1).unwrap().join().unwrap(), 1);
    let s = Process::start(|s: String| s, "str".to_string()).unwrap();
    assert_eq!(s.join().unwrap(), "str");
    let v = Process::start(|v: Vec<u8>| v, vec![1]).unwrap();
    assert_eq!(v.join().unwrap(), vec![1]);
    let t = Process::start(|t: (u8,)| t, (1,)).unwrap();
    assert_eq!(t.join().unwrap(), (1,));
}

/// `_TestProcess.test_args_argument` (the queue variant): a queue passed as an
/// argument is the same queue in the child; what it puts, the parent gets.
#[test]
fn test_args_argument_queue() {
    let _w = watchdog("test_args_argument_queue", LIMIT);
    let q: Queue<(u32, String)> = Queue::bounded(1).unwrap();
    let child = Process::start(
        |q: Queue<(u32, String)>| q.put((1, "str".into())).is_ok(),
        q.clone(),
    )
    .unwrap();
    assert_eq!(q.get_timeout(LONG).unwrap(), (1, "str".to_string()));
    assert!(child.join().unwrap());
}

/// `_TestProcess.test_daemon_argument`: the daemon flag defaults to false and is
/// what the builder says, on the handle and in the child.
#[test]
fn test_daemon_argument() {
    let _w = watchdog("test_daemon_argument", LIMIT);
    let plain = Process::start(|_: ()| current_process().is_daemon(), ()).unwrap();
    assert!(!plain.is_daemon());
    assert!(!plain.join().unwrap());
    let daemon = Process::builder()
        .daemon(true)
        .start(|_: ()| current_process().is_daemon(), ())
        .unwrap();
    assert!(daemon.is_daemon());
    assert!(daemon.join().unwrap());
}

/// `_TestProcess.test_process`: a named daemon child is alive while it runs, sees
/// its own name, pid and parent, and after `join` is dead with exit code 0.
#[test]
fn test_process() {
    let _w = watchdog("test_process", LIMIT);
    let go = Event::new().unwrap();
    let mut child = Process::builder()
        .name("SomeProcess")
        .daemon(true)
        .start(report_when_told, go.clone())
        .unwrap();
    assert_eq!(child.name(), "SomeProcess");
    assert!(child.is_daemon());
    assert_ne!(child.pid(), std::process::id());
    assert!(child.is_alive());
    assert_eq!(child.exit_status(), None);
    assert!(active_children().iter().any(|c| c.pid() == child.pid()));
    go.set();
    let pid = child.pid();
    let (cpid, name, daemon, ppid) = child.join().unwrap();
    assert_eq!(cpid, pid);
    assert_eq!(name, "SomeProcess");
    assert!(daemon);
    assert_eq!(ppid, Some(std::process::id()));
    assert!(!active_children().iter().any(|c| c.pid() == pid));
}

/// `_TestProcess.test_process` (exit code): `exit_status` turns to `Code(0)`
/// once a successful child has exited, and `is_alive` to false.
#[test]
fn test_process_exitcode_zero() {
    let _w = watchdog("test_process_exitcode_zero", LIMIT);
    let mut child = Process::start(|x: u8| x, 3).unwrap();
    assert!(readable(child.sentinel(), LONG));
    assert!(eventually(LONG, || child.exit_status().is_some()));
    assert_eq!(child.exit_status(), Some(ExitStatus::Code(0)));
    assert!(!child.is_alive());
    assert_eq!(child.join().unwrap(), 3);
}

/// `_TestProcess.test_kill`: `kill` ends the child with `SIGKILL`; Python's
/// exit code is `-SIGKILL`.
#[test]
fn test_kill() {
    let _w = watchdog("test_kill", LIMIT);
    let mut child = Process::start(sleep_secs, 60).unwrap();
    assert!(child.is_alive());
    child.kill().unwrap();
    assert!(readable(child.sentinel(), LONG));
    assert!(eventually(LONG, || child.exit_status().is_some()));
    let status = child.exit_status().unwrap();
    assert_eq!(status, ExitStatus::Signal(9));
    assert_eq!(status.python_exitcode(), -9);
    let err = child.join().unwrap_err();
    assert!(err.is_signaled());
    assert_eq!(err.signal(), Some(9));
}

/// `_TestProcess.test_terminate`: `terminate` ends the child with `SIGTERM`, and
/// `join` with a timeout on a running child returns without a result first.
#[test]
fn test_terminate() {
    let _w = watchdog("test_terminate", LIMIT);
    let child = Process::start(sleep_secs, 60).unwrap();
    let err = child.join_timeout(Duration::from_millis(10)).unwrap_err();
    assert!(err.is_timeout());
    let child = err.into_inner().unwrap();
    assert!(child.is_alive());
    child.terminate().unwrap();
    let err = child.join_timeout(LONG).unwrap_err();
    assert!(!err.is_timeout());
    match err {
        mproc::process::JoinTimeoutError::Failed(e) => assert_eq!(e.signal(), Some(15)),
        other => panic!("unexpected {other:?}"),
    }
}

/// `_TestProcess.test_terminate` (a child that already exited): signalling a
/// finished child is not an error.
#[test]
fn test_terminate_after_exit() {
    let _w = watchdog("test_terminate_after_exit", LIMIT);
    let mut child = Process::start(|x: u8| x, 1).unwrap();
    assert!(eventually(LONG, || child.exit_status().is_some()));
    child.terminate().unwrap();
    child.kill().unwrap();
    assert_eq!(child.join().unwrap(), 1);
}

/// `_TestProcess.test_cpu_count`: at least one CPU.
#[test]
fn test_cpu_count() {
    assert!(cpu_count() >= 1);
}

/// `_TestProcess.test_active_children`: a running child is listed; once joined,
/// it is not.
#[test]
fn test_active_children() {
    let _w = watchdog("test_active_children", LIMIT);
    let go = Event::new().unwrap();
    let child = Process::start(report_when_told, go.clone()).unwrap();
    let pid = child.pid();
    assert!(active_children().iter().any(|c| c.pid() == pid));
    go.set();
    child.join().unwrap();
    assert!(!active_children().iter().any(|c| c.pid() == pid));
}

fn depth(n: u32) -> Vec<u32> {
    let mut out = vec![n];
    if n > 0 {
        out.extend(Process::start(depth, n - 1).unwrap().join().unwrap());
    }
    out
}

/// `_TestProcess.test_recursion`: children start children (three levels), and
/// every result comes back up.
#[test]
fn test_recursion() {
    let _w = watchdog("test_recursion", LIMIT);
    let child = Process::start(depth, 2).unwrap();
    assert_eq!(child.join().unwrap(), vec![2, 1, 0]);
}

/// `_TestProcess.test_sentinel`: the sentinel is not ready while the child runs
/// and becomes ready when it exits.
#[test]
fn test_sentinel() {
    let _w = watchdog("test_sentinel", LIMIT);
    let go = Event::new().unwrap();
    let child = Process::start(report_when_told, go.clone()).unwrap();
    assert!(!readable(child.sentinel().as_fd(), Duration::ZERO));
    go.set();
    assert!(readable(child.sentinel().as_fd(), LONG));
    child.join().unwrap();
}

/// `_TestProcess.test_parent_process`: a grandchild sees its parent alive, and sees
/// it die when that parent is terminated (mproc: the grandchild dies with it, so the
/// grandparent observes the grandchild gone; no orphan survives).
#[test]
fn test_parent_process() {
    let _w = watchdog("test_parent_process", LIMIT);
    fn spawn_grandchild(q: Queue<u32>) {
        let g = Process::start(
            |q: Queue<u32>| {
                let _ = q.put(parent_process().map(|p| p.pid()).unwrap_or(0));
                std::thread::sleep(Duration::from_secs(60));
            },
            q.clone(),
        )
        .unwrap();
        let _ = q.put(g.pid());
        std::thread::sleep(Duration::from_secs(60));
    }
    let q: Queue<u32> = Queue::new().unwrap();
    let child = Process::start(spawn_grandchild, q.clone()).unwrap();
    let a = q.get_timeout(LONG).unwrap();
    let b = q.get_timeout(LONG).unwrap();
    // One of them is the grandchild's report of its parent (the child), the
    // other the grandchild's pid reported by the child.
    let grandchild = if a == child.pid() { b } else { a };
    assert!(a == child.pid() || b == child.pid());
    assert!(!is_dead(grandchild));
    child.terminate().unwrap();
    assert_eq!(child.join().unwrap_err().signal(), Some(15));
    assert!(
        eventually(LONG, || is_dead(grandchild)),
        "the grandchild outlived its parent"
    );
}

/// `_TestProcess.test_many_processes`: start many children, end half with
/// `terminate` and half with `kill`; each reports its own signal.
#[test]
fn test_many_processes() {
    let _w = watchdog("test_many_processes", LIMIT);
    let children: Vec<_> = (0..8)
        .map(|_| Process::start(sleep_secs, 60).unwrap())
        .collect();
    for (i, c) in children.iter().enumerate() {
        if i % 2 == 0 {
            c.terminate().unwrap();
        } else {
            c.kill().unwrap();
        }
    }
    for (i, c) in children.into_iter().enumerate() {
        let want = if i % 2 == 0 { 15 } else { 9 };
        assert_eq!(c.join().unwrap_err().signal(), Some(want));
    }
}

/// `_TestProcess.test_many_processes` (successful children): many short children
/// in parallel, every result back.
#[test]
fn test_many_processes_results() {
    let _w = watchdog("test_many_processes_results", LIMIT);
    let children: Vec<_> = (0..10u64)
        .map(|i| Process::start(crate::sqr, i).unwrap())
        .collect();
    let got: Vec<u64> = children.into_iter().map(|c| c.join().unwrap()).collect();
    assert_eq!(got, (0..10).map(|i| i * i).collect::<Vec<_>>());
}

#[derive(Serialize, Deserialize)]
struct Repeat {
    word: String,
    times: usize,
}

impl Task for Repeat {
    type Output = String;
    fn run(self) -> String {
        self.word.repeat(self.times)
    }
}

/// `_TestSubclassingProcess.test_subclassing`: a type that runs itself (Python's
/// subclass overriding `run`).
#[test]
fn test_subclassing() {
    let _w = watchdog("test_subclassing", LIMIT);
    let child = Process::start_task(Repeat {
        word: "ab".into(),
        times: 3,
    })
    .unwrap();
    assert_eq!(child.join().unwrap(), "ababab");
}

/// `_TestSubclassingProcess.test_sys_exit`: a child that exits with a code
/// reports it (no result), as `ExitStatus::Code`.
#[test]
fn test_sys_exit() {
    let _w = watchdog("test_sys_exit", LIMIT);
    for code in [1, 3] {
        let mut child = Process::start(|c: i32| -> u8 { std::process::exit(c) }, code).unwrap();
        assert!(eventually(LONG, || child.exit_status().is_some()));
        assert_eq!(child.exit_status(), Some(ExitStatus::Code(code)));
        match child.join().unwrap_err() {
            JoinError::Exited { code: c, .. } => assert_eq!(c, code),
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// `_TestSubclassingProcess.test_sys_exit` (an uncaught exception): a panic in the
/// child comes back with its message and location (Python prints the traceback
/// and exits with 1).
#[test]
fn test_sys_exit_uncaught() {
    let _w = watchdog("test_sys_exit_uncaught", LIMIT);
    let child = Process::start(crate::raise, 7).unwrap();
    match child.join().unwrap_err() {
        JoinError::Panicked {
            message, location, ..
        } => {
            assert_eq!(message, "boom 7");
            assert!(location.unwrap().contains(".rs:"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// `_TestSubclassingProcess.test_stderr_flush`: what the child writes to stderr
/// (and stdout) before it exits reaches the parent.
#[test]
fn test_stderr_flush() {
    let _w = watchdog("test_stderr_flush", LIMIT);
    let child = Process::builder()
        .capture_output(true)
        .start(
            |_: ()| {
                use std::io::Write;
                let _ = std::io::stderr().write_all(b"ZeroDivisionError\n");
                let _ = std::io::stdout().write_all(b"out\n");
            },
            (),
        )
        .unwrap();
    let (r, out) = child.join_with_output();
    r.unwrap();
    assert_eq!(out.stderr, b"ZeroDivisionError\n");
    assert_eq!(out.stdout, b"out\n");
}

/// `TestStartMethod.test_get_all`: every start method exists and each runs a child.
#[test]
fn test_get_all_start_methods() {
    let _w = watchdog("test_get_all_start_methods", LIMIT);
    assert_eq!(StartMethod::ALL.len(), 3);
    assert_eq!(StartMethod::default(), StartMethod::Forkserver);
    for m in StartMethod::ALL {
        let child = Process::builder()
            .start_method(m)
            .start(|x: u64| x + 1, 41)
            .unwrap();
        assert_eq!(child.start_method(), m);
        assert_eq!(child.join().unwrap(), 42);
    }
}

/// `TestStartMethod.test_context`: each start method gives a child its own name
/// and pid and the parent's identity.
#[test]
fn test_context() {
    let _w = watchdog("test_context", LIMIT);
    for m in StartMethod::ALL {
        let go = Event::new().unwrap();
        go.set();
        let child = Process::builder()
            .start_method(m)
            .name(format!("ctx-{m:?}"))
            .start(report_when_told, go)
            .unwrap();
        let pid = child.pid();
        let (cpid, name, _, ppid) = child.join().unwrap();
        assert_eq!(
            (cpid, name.as_str(), ppid),
            (pid, format!("ctx-{m:?}").as_str(), Some(std::process::id()))
        );
    }
}

/// `_TestProcess.test_kill` under each start method.
#[test]
fn test_kill_every_start_method() {
    let _w = watchdog("test_kill_every_start_method", LIMIT);
    for m in StartMethod::ALL {
        let child = Process::builder()
            .start_method(m)
            .start(sleep_secs, 60)
            .unwrap();
        child.kill().unwrap();
        assert_eq!(child.join().unwrap_err().signal(), Some(9), "{m:?}");
    }
}

/// `_TestProcess.test_process` (join with a huge timeout, Python's
/// `join(timeout=LONG)`): `Duration::MAX` means no deadline (issue 10 item 7).
#[test]
fn test_join_huge_timeout() {
    let _w = watchdog("test_join_huge_timeout", LIMIT);
    let child = Process::start(|x: u8| x * 2, 4).unwrap();
    assert_eq!(child.join_timeout(Duration::MAX).unwrap(), 8);
}

fn fd_open_in_child((fd, path): (i32, String)) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.to_string_lossy() == path)
        .unwrap_or(false)
}

fn leaky_fd(tag: &str) -> (std::os::fd::OwnedFd, String) {
    use rustix::fs::{Mode, OFlags, open};
    use std::os::fd::AsRawFd;
    let path = crate::common::temp_path(tag);
    std::fs::write(&path, b"x").unwrap();
    // No O_CLOEXEC: a descriptor a C library might leave open.
    let fd = open(&path, OFlags::RDONLY, Mode::empty()).unwrap();
    let _ = fd.as_raw_fd();
    (fd, path.to_string_lossy().into_owned())
}

/// `TestCloseFds.test_closefd` (forkserver): a descriptor the parent opened
/// without close-on-exec is not open in a forkserver child.
#[test]
fn test_closefd_forkserver() {
    use std::os::fd::AsRawFd;
    let _w = watchdog("test_closefd_forkserver", LIMIT);
    let (fd, path) = leaky_fd("closefd-fs");
    let child = Process::builder()
        .start_method(StartMethod::Forkserver)
        .start(fd_open_in_child, (fd.as_raw_fd(), path.clone()))
        .unwrap();
    assert!(!child.join().unwrap());
    let _ = std::fs::remove_file(path);
}

/// `TestCloseFds.test_closefd` (spawn): a descriptor the parent opened without
/// close-on-exec is not open in a spawned child.
#[test]
fn test_closefd_spawn() {
    use std::os::fd::AsRawFd;
    let _w = watchdog("test_closefd_spawn", LIMIT);
    let (fd, path) = leaky_fd("closefd-spawn");
    let child = Process::builder()
        .start_method(StartMethod::Spawn)
        .start(fd_open_in_child, (fd.as_raw_fd(), path.clone()))
        .unwrap();
    assert!(!child.join().unwrap());
    let _ = std::fs::remove_file(path);
}

/// `_TestProcess.test_lose_target_ref`: a dropped handle does not stop the child,
/// and the child is reaped (no zombie) once it ends.
#[test]
fn test_lose_target_ref() {
    let _w = watchdog("test_lose_target_ref", LIMIT);
    let q: Queue<u8> = Queue::new().unwrap();
    let child = Process::start(
        |q: Queue<u8>| {
            let _ = q.put(5);
        },
        q.clone(),
    )
    .unwrap();
    let pid = child.pid();
    drop(child);
    assert_eq!(q.get_timeout(LONG).unwrap(), 5);
    assert!(
        eventually(LONG, || crate::common::proc_state(pid).is_none()),
        "zombie left"
    );
}

/// `_TestProcess.test_wait_for_threads` (mproc: a child's result waits for the
/// function, even when it started threads that finish later).
#[test]
fn test_wait_for_threads() {
    let _w = watchdog("test_wait_for_threads", LIMIT);
    let child = Process::start(
        |_: ()| {
            let t = std::thread::spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                7u8
            });
            t.join().unwrap()
        },
        (),
    )
    .unwrap();
    assert_eq!(child.join().unwrap(), 7);
}

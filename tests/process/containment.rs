//! A child's own children do not outlive it: a task's `std::process::Command` is
//! killed when the task's process is killed, returns, or loses its parent to
//! `SIGKILL`, and when a pool drops or times out the worker; unless the child opts
//! out (issue 10, item 13).

use std::time::Duration;

use mproc::pipe::{self, Sender};
use mproc::pool::Pool;
use mproc::process::{Process, StartMethod};

use crate::common::{eventually, is_dead, temp_path, watchdog};

const LIMIT: Duration = Duration::from_secs(60);

fn start_sleep() -> u32 {
    std::process::Command::new("sleep")
        .arg("120")
        .spawn()
        .expect("cannot run sleep")
        .id()
}

/// Starts `sleep`, tells its pid, then waits to be killed.
fn starts_sleep_then_waits(tell: Sender<u32>) {
    tell.send(&start_sleep()).unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

fn gone_eventually(pid: u32) -> bool {
    eventually(Duration::from_secs(30), || is_dead(pid))
}

fn kill_the_child(m: StartMethod) {
    let _w = watchdog("kill_the_child", LIMIT);
    let (tx, rx) = pipe::simplex::<u32>().unwrap();
    let p = Process::builder()
        .start_method(m)
        .daemon(true)
        .start(starts_sleep_then_waits, tx)
        .unwrap();
    let sleep = rx.recv_timeout(LIMIT).unwrap();
    assert!(!is_dead(sleep));
    p.kill().unwrap();
    assert_eq!(p.join().unwrap_err().signal(), Some(9));
    assert!(
        gone_eventually(sleep),
        "sleep {sleep} outlived its killed parent ({m:?})"
    );
}

#[test]
fn killing_a_forkserver_child_kills_its_subprocess() {
    kill_the_child(StartMethod::Forkserver);
}

#[test]
fn killing_a_spawn_child_kills_its_subprocess() {
    kill_the_child(StartMethod::Spawn);
}

#[test]
fn killing_a_fork_child_kills_its_subprocess() {
    kill_the_child(StartMethod::Fork);
}

fn returns_leaving_sleep(_: ()) -> u32 {
    start_sleep()
}

fn child_returns(m: StartMethod) {
    let _w = watchdog("child_returns", LIMIT);
    let sleep = Process::builder()
        .start_method(m)
        .start(returns_leaving_sleep, ())
        .unwrap()
        .join()
        .unwrap();
    assert!(
        gone_eventually(sleep),
        "sleep {sleep} outlived its finished parent ({m:?})"
    );
}

#[test]
fn a_finished_forkserver_child_leaves_no_subprocess() {
    child_returns(StartMethod::Forkserver);
}

#[test]
fn a_finished_spawn_child_leaves_no_subprocess() {
    child_returns(StartMethod::Spawn);
}

#[test]
fn a_finished_fork_child_leaves_no_subprocess() {
    child_returns(StartMethod::Fork);
}

#[test]
fn opting_out_lets_a_daemon_live() {
    let _w = watchdog("opting_out_lets_a_daemon_live", LIMIT);
    let sleep = Process::builder()
        .contain_descendants(false)
        .start(returns_leaving_sleep, ())
        .unwrap()
        .join()
        .unwrap();
    // Still running well after its parent was reaped (the containment kill, had
    // there been one, happens before `join` returns).
    assert!(
        !is_dead(sleep),
        "sleep {sleep} was killed although the child opted out"
    );
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(sleep as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    assert!(gone_eventually(sleep));
}

#[test]
fn dropping_a_pool_kills_its_tasks_subprocesses() {
    let _w = watchdog("dropping_a_pool_kills_its_tasks_subprocesses", LIMIT);
    let (tx, rx) = pipe::simplex::<u32>().unwrap();
    let pool = Pool::new(1).unwrap();
    let pending = pool.apply_async(starts_sleep_then_waits, tx);
    let sleep = rx.recv_timeout(LIMIT).unwrap();
    drop(pending);
    drop(pool);
    assert!(
        gone_eventually(sleep),
        "sleep {sleep} outlived the dropped pool"
    );
}

#[test]
fn a_task_timeout_kills_the_tasks_subprocesses() {
    let _w = watchdog("a_task_timeout_kills_the_tasks_subprocesses", LIMIT);
    let (tx, rx) = pipe::simplex::<u32>().unwrap();
    let pool = Pool::builder()
        .processes(1)
        .task_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let pending = pool.apply_async(starts_sleep_then_waits, tx);
    let sleep = rx.recv_timeout(LIMIT).unwrap();
    assert!(pending.get().unwrap_err().is_timeout());
    assert!(
        gone_eventually(sleep),
        "sleep {sleep} outlived its timed-out worker"
    );
}

/// Starts a forkserver child that starts `sleep`, writes the sleep's pid to `path`,
/// then waits to be killed.
fn parent_of_a_sleeper(path: std::path::PathBuf) {
    let (tx, rx) = pipe::simplex::<u32>().unwrap();
    let _child = Process::builder()
        .start_method(StartMethod::Forkserver)
        .daemon(true)
        .start(starts_sleep_then_waits, tx)
        .unwrap();
    let sleep = rx.recv_timeout(LIMIT).unwrap();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, sleep.to_string()).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn a_sigkilled_parent_leaves_no_grandchild_subprocess() {
    let _w = watchdog("a_sigkilled_parent_leaves_no_grandchild_subprocess", LIMIT);
    let path = temp_path("sleeper");
    let parent = Process::builder()
        .start_method(StartMethod::Spawn)
        .daemon(true)
        .start(parent_of_a_sleeper, path.clone())
        .unwrap();
    assert!(
        eventually(LIMIT, || path.exists()),
        "the parent never reported its grandchild"
    );
    let sleep: u32 = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(!is_dead(sleep));
    parent.kill().unwrap();
    assert_eq!(parent.join().unwrap_err().signal(), Some(9));
    assert!(
        gone_eventually(sleep),
        "sleep {sleep} outlived its SIGKILLed grandparent"
    );
}

//! Fault tests: the parent is killed with SIGKILL; no child may survive it.

use std::time::Duration;

use mproc::process::{Process, StartMethod};

use crate::common::{eventually, is_dead, temp_path, watchdog};

/// Starts one sleeping child per start method (and a grandchild under a forkserver
/// child), writes their pids to `path`, then sleeps until killed.
fn parent_with_children(path: std::path::PathBuf) {
    let mut pids = Vec::new();
    let mut keep = Vec::new();
    for m in StartMethod::ALL {
        let p = Process::builder()
            .start_method(m)
            .start(|_: ()| std::thread::sleep(Duration::from_secs(120)), ())
            .unwrap();
        pids.push(p.pid());
        keep.push(p);
    }
    let text: Vec<String> = pids.iter().map(u32::to_string).collect();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text.join(" ")).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

fn kill_parent(m: StartMethod) {
    let _w = watchdog("kill_parent", Duration::from_secs(90));
    let path = temp_path("children");
    let parent = Process::builder()
        .start_method(m)
        .daemon(true)
        .start(parent_with_children, path.clone())
        .unwrap();
    assert!(
        eventually(Duration::from_secs(60), || path.exists()),
        "the parent never reported its children"
    );
    let pids: Vec<u32> = std::fs::read_to_string(&path)
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    let _ = std::fs::remove_file(&path);
    assert_eq!(pids.len(), 3);
    assert!(pids.iter().all(|&p| !is_dead(p)), "children died too early");
    parent.kill().unwrap();
    assert_eq!(parent.join().unwrap_err().signal(), Some(9));
    assert!(
        eventually(Duration::from_secs(30), || pids.iter().all(|&p| is_dead(p))),
        "children survived their SIGKILLed parent: {:?}",
        pids.iter().filter(|&&p| !is_dead(p)).collect::<Vec<_>>()
    );
}

#[test]
fn sigkilled_forkserver_parent_leaves_no_child() {
    kill_parent(StartMethod::Forkserver);
}

#[test]
fn sigkilled_spawn_parent_leaves_no_child() {
    kill_parent(StartMethod::Spawn);
}

#[test]
fn sigkilled_fork_parent_leaves_no_child() {
    kill_parent(StartMethod::Fork);
}

/// The pid of the process that forked this one: the forkserver, for its children.
fn forked_by(_: ()) -> u32 {
    std::os::unix::process::parent_id()
}

fn forkserver_child() -> mproc::process::Builder {
    let mut b = Process::builder();
    b.start_method(StartMethod::Forkserver).daemon(true);
    b
}

/// In a process of its own (the test binary's forkserver serves other tests):
/// kills the forkserver, then starts more children. Returns the old and the new
/// server's pids, the next task's result and the zombie children left.
fn kill_own_forkserver(_: ()) -> (u32, u32, u32, Vec<u32>) {
    let old = forkserver_child()
        .start(forked_by, ())
        .unwrap()
        .join()
        .unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(old as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    assert!(eventually(Duration::from_secs(30), || {
        crate::common::proc_state(old).is_none_or(|s| s == 'Z')
    }));
    let new = forkserver_child()
        .start(forked_by, ())
        .unwrap()
        .join()
        .unwrap();
    let sum = forkserver_child()
        .start(|x: u32| x + 1, 41)
        .unwrap()
        .join()
        .unwrap();
    (
        old,
        new,
        sum,
        crate::common::zombie_children(std::process::id()),
    )
}

#[test]
fn a_killed_forkserver_is_replaced_and_reaped() {
    let _w = watchdog(
        "a_killed_forkserver_is_replaced_and_reaped",
        Duration::from_secs(90),
    );
    let (old, new, sum, zombies) = Process::builder()
        .start_method(StartMethod::Spawn)
        .start(kill_own_forkserver, ())
        .unwrap()
        .join()
        .unwrap();
    assert_ne!(old, new, "the dead server was not replaced");
    assert_eq!(sum, 42);
    assert!(
        zombies.is_empty(),
        "zombies left: {zombies:?} (old server {old})"
    );
}

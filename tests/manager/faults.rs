//! Faults across real processes: a client SIGKILLed holding a manager lock, a
//! client's references freed when it dies, the manager SIGKILLed mid-request.

use std::time::{Duration, Instant};

use mproc::manager::{Event, List, Lock, LockError, Manager, Queue, RLock};
use mproc::pipe::{self, Connection};

type Report = (bool, bool, bool, u64);
use mproc::process::Process;

use crate::common::{eventually, watchdog};
use crate::{LONG, kill_manager};

fn hold_lock_forever((lock, rlock, taken, never): (Lock, RLock, Event, Event)) {
    let g = lock.lock().unwrap();
    let r = rlock.lock().unwrap();
    let r2 = rlock.lock().unwrap();
    taken.set().unwrap();
    // Killed while waiting here.
    let _ = never.wait_timeout(Duration::from_secs(120));
    drop((r2, r, g));
}

#[test]
fn a_client_killed_holding_a_lock_gives_owner_died_to_the_next() {
    let _w = watchdog("client_killed_holding_a_lock", LONG);
    let m = Manager::start().unwrap();
    let lock = m.lock().unwrap();
    let rlock = m.rlock().unwrap();
    let taken = m.event().unwrap();
    let never = m.event().unwrap();
    let child = Process::start(
        hold_lock_forever,
        (lock.clone(), rlock.clone(), taken.clone(), never.clone()),
    )
    .unwrap();
    assert!(taken.wait_timeout(LONG).unwrap());
    let pid = child.pid();
    assert_eq!(lock.holder_pid().unwrap(), Some(pid));
    child.kill().unwrap();
    let _ = child.join();
    for (what, res) in [
        (
            "lock",
            lock.lock_timeout(LONG).map(drop).map_err(|e| e.to_string()),
        ),
        (
            "rlock",
            rlock
                .lock_timeout(LONG)
                .map(drop)
                .map_err(|e| e.to_string()),
        ),
    ] {
        let msg = res.expect_err(what);
        assert!(msg.contains(&format!("pid {pid}")), "{what}: {msg}");
    }
    // The guards inside OwnerDied were dropped: both locks are free again, and
    // the report was given once.
    let g = lock.lock().unwrap();
    drop(g);
    match rlock.lock_timeout(LONG) {
        Ok(g) => drop(g),
        Err(LockError::OwnerDied(_)) => panic!("owner death reported twice"),
        Err(e) => panic!("{e}"),
    }
}

fn adopt_then_wait((l, ready, never): (List<u8>, Event, Event)) {
    l.append(1).unwrap();
    ready.set().unwrap();
    let _ = never.wait_timeout(Duration::from_secs(120));
    drop(l);
}

#[test]
fn a_dead_clients_references_are_dropped() {
    let _w = watchdog("a_dead_clients_references_are_dropped", LONG);
    let m = Manager::start().unwrap();
    let ready = m.event().unwrap();
    let never = m.event().unwrap();
    let base = m.object_count().unwrap();
    let l = m.list::<u8>().unwrap();
    let child = Process::start(adopt_then_wait, (l.clone(), ready.clone(), never.clone())).unwrap();
    assert!(ready.wait_timeout(LONG).unwrap());
    drop(l); // now only the child holds the list
    assert_eq!(m.object_count().unwrap(), base + 1);
    child.kill().unwrap();
    let _ = child.join();
    assert!(
        eventually(LONG, || m.object_count().unwrap() == base),
        "the dead child's list was not freed"
    );
}

fn block_then_report((q, lock, started, report): (Queue<u8>, Lock, Event, Connection<Report>)) {
    // The parent kills the manager once it sees the event set, which may be
    // before this reply reaches us: then the set did happen, and the manager is
    // reported gone, as every later call must report it.
    if let Err(e) = started.set() {
        assert!(e.is_disconnected(), "{e}");
    }
    let t = Instant::now();
    // Blocks: nothing is ever put, and the parent holds the lock.
    let e1 = q.get().unwrap_err();
    let e2 = lock.lock().map(drop).unwrap_err();
    let e3 = q.len().unwrap_err();
    report
        .send(&(
            e1.is_disconnected(),
            e2.manager_error().is_some_and(|e| e.is_disconnected()),
            e3.is_disconnected(),
            t.elapsed().as_millis() as u64,
        ))
        .unwrap();
}

#[test]
fn the_manager_killed_mid_request_fails_every_client_at_once() {
    let _w = watchdog("manager_killed_mid_request", LONG);
    let m = Manager::start().unwrap();
    let q = m.queue::<u8>().unwrap();
    let lock = m.lock().unwrap();
    let _held = lock.lock().unwrap();
    let mut kids = Vec::new();
    let mut reports = Vec::new();
    for _ in 0..3 {
        let started = m.event().unwrap();
        let (a, b) = pipe::duplex::<Report>().unwrap();
        kids.push(
            Process::start(
                block_then_report,
                (q.clone(), lock.clone(), started.clone(), b),
            )
            .unwrap(),
        );
        assert!(started.wait_timeout(LONG).unwrap());
        reports.push(a);
    }
    // A thread of this process blocked too.
    let q2 = q.clone();
    let waiter = std::thread::spawn(move || {
        let e = q2.get_timeout(Duration::from_secs(60)).unwrap_err();
        (e.is_disconnected(), Instant::now())
    });
    let killed_at = Instant::now();
    kill_manager(&m);
    for r in &reports {
        assert!(r.poll(LONG), "a client hung after the manager died");
        let (a, b, c, _ms) = r.recv().unwrap();
        assert!(a && b && c, "a client got another error than Disconnected");
    }
    let (disc, at) = waiter.join().unwrap();
    assert!(disc);
    assert!(at.duration_since(killed_at) < Duration::from_secs(5));
    assert!(killed_at.elapsed() < Duration::from_secs(10));
    for k in kids {
        k.join().unwrap();
    }
    assert!(q.len().unwrap_err().is_disconnected());
    drop(m);
}

fn start_manager_and_wait(report: Connection<u32>) {
    let m = Manager::start().unwrap();
    report.send(&m.pid().unwrap()).unwrap();
    // Killed while waiting here.
    let _ = report.poll(Duration::from_secs(120));
    drop(m);
}

#[test]
fn the_manager_dies_with_the_process_that_started_it() {
    let _w = watchdog("manager_dies_with_its_parent", LONG);
    let (a, b) = pipe::duplex::<u32>().unwrap();
    let owner = Process::start(start_manager_and_wait, b).unwrap();
    assert!(a.poll(LONG));
    let server = a.recv().unwrap();
    assert!(!crate::common::is_dead(server));
    owner.kill().unwrap();
    let _ = owner.join();
    assert!(
        eventually(LONG, || crate::common::is_dead(server)),
        "the manager process outlived its owner"
    );
}

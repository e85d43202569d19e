//! `Event` (Python: `set`, `clear`, `is_set`, `wait(timeout)` returning the flag).

use std::time::Duration;

use mproc::process::Process;
use mproc::sync::Event;

use crate::{LONG, watchdog};

#[test]
fn set_clear_is_set() {
    let e = Event::new().unwrap();
    assert!(!e.is_set());
    e.set();
    assert!(e.is_set());
    e.set();
    assert!(e.is_set());
    e.clear();
    assert!(!e.is_set());
    e.clear();
    assert!(!e.is_set());
}

#[test]
fn wait_timeout_returns_the_flag() {
    let _w = watchdog("wait_timeout_returns_the_flag", LONG);
    let e = Event::new().unwrap();
    assert!(!e.wait_timeout(Duration::from_millis(20)));
    assert!(!e.wait_timeout(Duration::ZERO));
    e.set();
    assert!(e.wait_timeout(Duration::ZERO));
    e.wait();
}

fn ping_pong((ping, pong, rounds): (Event, Event, u32)) -> u32 {
    for _ in 0..rounds {
        assert!(ping.wait_timeout(LONG), "no ping");
        ping.clear();
        pong.set();
    }
    rounds
}

#[test]
fn ping_pong_between_processes() {
    let _w = watchdog("ping_pong_between_processes", LONG * 2);
    let (ping, pong) = (Event::new().unwrap(), Event::new().unwrap());
    let child = Process::start(ping_pong, (ping.clone(), pong.clone(), 500)).unwrap();
    for _ in 0..500 {
        ping.set();
        assert!(pong.wait_timeout(LONG), "no pong");
        pong.clear();
    }
    assert_eq!(child.join().unwrap(), 500);
}

fn wait_for_event((e, ms): (Event, u64)) -> bool {
    e.wait_timeout(Duration::from_millis(ms))
}

#[test]
fn child_wait_times_out_and_sees_set() {
    let _w = watchdog("child_wait_times_out_and_sees_set", LONG);
    let e = Event::new().unwrap();
    assert!(
        !Process::start(wait_for_event, (e.clone(), 30))
            .unwrap()
            .join()
            .unwrap()
    );
    let child = Process::start(wait_for_event, (e.clone(), LONG.as_millis() as u64)).unwrap();
    e.set();
    assert!(child.join().unwrap());
}

/// Regression: `set` woke one sleeping waiter only (the futex wake count reached
/// the kernel as -1). Five threads are asleep inside `wait()` before `set`; every
/// one of them must return.
#[test]
fn set_wakes_every_sleeping_thread() {
    let _w = watchdog("set_wakes_every_sleeping_thread", LONG * 2);
    let e = Event::new().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let (e, tx) = (e.clone(), tx.clone());
            std::thread::spawn(move || {
                tx.send(rustix::thread::gettid().as_raw_nonzero().get() as u32)
                    .unwrap();
                e.wait();
            })
        })
        .collect();
    let tids: Vec<u32> = (0..5).map(|_| rx.recv_timeout(LONG).unwrap()).collect();
    assert!(
        crate::eventually(LONG, || tids
            .iter()
            .all(|&t| crate::common::thread_state(t) == Some('S'))),
        "the waiters never went to sleep"
    );
    e.set();
    for w in waiters {
        w.join().unwrap();
    }
}

fn wait_forever((e, ready): (Event, mproc::sync::Semaphore)) -> bool {
    ready.release();
    e.wait();
    true
}

/// The same across processes: four children asleep in `wait()` are all woken by
/// one `set` (before the fix three of them hung until killed).
#[test]
fn set_wakes_every_sleeping_process() {
    let _w = watchdog("set_wakes_every_sleeping_process", LONG * 3);
    let e = Event::new().unwrap();
    let ready = mproc::sync::Semaphore::new(0).unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| Process::start(wait_forever, (e.clone(), ready.clone())).unwrap())
        .collect();
    for _ in 0..4 {
        let got = ready
            .acquire_timeout(LONG)
            .expect("a child never started waiting");
        got.forget();
    }
    assert!(
        crate::eventually(LONG, || children
            .iter()
            .all(|c| crate::common::all_threads_asleep(c.pid()))),
        "the children never went to sleep"
    );
    e.set();
    for c in children {
        match c.join_timeout(LONG) {
            Ok(woke) => assert!(woke),
            Err(_) => panic!("a waiter was not woken by set()"),
        }
    }
}

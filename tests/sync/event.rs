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

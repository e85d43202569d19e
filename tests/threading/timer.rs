//! `Timer`: Python's `threading.Timer` (fires after its interval, `cancel` before
//! it fires, `join`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mproc::threading::Timer;

use crate::common::watchdog;
use crate::util::LIMIT;

#[test]
fn fires_after_its_interval_and_join_returns_the_value() {
    let _w = watchdog("timer fires", Duration::from_secs(60));
    let t0 = Instant::now();
    let t = Timer::start(Duration::from_millis(50), move || t0.elapsed()).unwrap();
    let waited = t.join().unwrap().expect("it ran");
    assert!(
        waited >= Duration::from_millis(50),
        "fired early: {waited:?}"
    );
}

#[test]
fn a_dropped_timer_still_fires() {
    let _w = watchdog("dropped timer", Duration::from_secs(60));
    let (tx, rx) = mpsc::channel();
    drop(Timer::start(Duration::from_millis(1), move || tx.send(()).unwrap()).unwrap());
    rx.recv_timeout(LIMIT).expect("fired");
}

#[test]
fn cancel_in_time_means_it_never_runs() {
    let _w = watchdog("timer cancel", Duration::from_secs(60));
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let t = Timer::start(Duration::from_secs(3600), move || {
        r.store(true, Ordering::SeqCst)
    })
    .unwrap();
    assert!(!t.is_finished());
    assert!(t.cancel(), "cancelled in time");
    assert!(!t.cancel(), "a second cancel is not in time");
    assert!(t.is_cancelled() && t.is_finished());
    assert!(t.join_timeout(LIMIT), "the timer thread ends at the cancel");
    assert_eq!(t.join().unwrap(), None);
    assert!(!ran.load(Ordering::SeqCst));
}

#[test]
fn cancel_while_running_or_after_is_too_late() {
    let _w = watchdog("timer late cancel", Duration::from_secs(60));
    let (started_tx, started) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let t = Timer::start(Duration::ZERO, move || {
        started_tx.send(()).unwrap();
        release_rx.recv_timeout(LIMIT).unwrap();
        7
    })
    .unwrap();
    started.recv_timeout(LIMIT).expect("the function started");
    assert!(!t.cancel(), "running: too late");
    assert!(!t.is_finished());
    release.send(()).unwrap();
    assert!(t.join_timeout(LIMIT));
    assert!(!t.cancel(), "finished: too late");
    assert!(!t.is_cancelled());
    assert_eq!(t.join().unwrap(), Some(7));
}

#[test]
fn a_panic_reaches_join() {
    let _w = watchdog("timer panic", Duration::from_secs(60));
    let t = Timer::start(Duration::ZERO, || -> u8 { panic!("timer boom") }).unwrap();
    let payload = t.join().unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"timer boom"));
}

#[test]
fn an_endless_interval_waits_for_a_cancel() {
    let _w = watchdog("timer MAX", Duration::from_secs(60));
    let t = Timer::start(Duration::MAX, || ()).unwrap();
    assert!(!t.join_timeout(Duration::from_millis(20)));
    assert_eq!(t.interval(), Duration::MAX);
    assert!(format!("{t:?}").contains("waiting"));
    assert!(t.cancel());
    assert_eq!(t.join().unwrap(), None);
}

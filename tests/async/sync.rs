//! `Event::wait_async` across processes.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mproc::process::Process;
use mproc::sync::Event;

use crate::{Flavor, each_runtime, runtime, ticker, watchdog};

#[test]
fn event_wait_async_is_woken_by_another_process() {
    fn echo(es: (Event, Event, u32)) {
        let (ping, pong, rounds) = es;
        for _ in 0..rounds {
            assert!(ping.wait_timeout(Duration::from_secs(30)));
            ping.clear();
            pong.set();
        }
    }
    each_runtime("event wait_async", |_| async {
        let (ping, pong) = (Event::new().unwrap(), Event::new().unwrap());
        let child = Process::start(echo, (ping.clone(), pong.clone(), 200)).unwrap();
        let start = std::time::Instant::now();
        for _ in 0..200 {
            ping.set();
            pong.wait_async().await;
            pong.clear();
        }
        let took = start.elapsed();
        child.join_async().await.unwrap();
        // A wake that relied on the waiters' 50 ms nap would take 10 s.
        assert!(
            took < Duration::from_secs(6),
            "200 round trips took {took:?}"
        );
    });
}

#[test]
fn event_wait_async_returns_at_once_when_set_and_is_cancel_safe() {
    each_runtime("event cancel", |_| async {
        let e = Event::new().unwrap();
        for _ in 0..50 {
            let r = tokio::time::timeout(Duration::from_micros(100), e.wait_async()).await;
            assert!(r.is_err());
        }
        let child = Process::start(|e: Event| e.set(), e.clone()).unwrap();
        e.wait_async().await;
        assert!(e.is_set());
        e.wait_async().await; // already set: at once
        child.join_async().await.unwrap();
        // The cancelled waits left no registration behind that blocks a thread.
        e.clear();
        let e2 = e.clone();
        let t = std::thread::spawn(move || e2.wait_timeout(Duration::from_secs(30)));
        e.set();
        assert!(t.join().unwrap());
    });
}

#[test]
fn event_wait_async_never_blocks_a_current_thread_runtime() {
    let _w = watchdog("event ticking", Duration::from_secs(60));
    runtime(Flavor::CurrentThread).block_on(async {
        let ticks = ticker(Duration::from_millis(10));
        let e = Arc::new(Event::new().unwrap());
        let child = Process::start(
            |e: Event| {
                std::thread::sleep(Duration::from_secs(1));
                e.set();
            },
            (*e).clone(),
        )
        .unwrap();
        tokio::task::yield_now().await;
        let before = ticks.load(Ordering::Relaxed);
        e.wait_async().await;
        let during = ticks.load(Ordering::Relaxed) - before;
        assert!(
            during >= 10,
            "only {during} ticks while wait_async waited 1 s"
        );
        child.join_async().await.unwrap();
    });
}

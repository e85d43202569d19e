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

fn hold_until_killed(args: (mproc::sync::Lock, Event)) {
    let (lock, held) = args;
    let _g = lock.lock().unwrap();
    held.set();
    std::thread::sleep(Duration::from_secs(60));
}

fn hold_briefly(args: (mproc::sync::Lock, Event, Event)) {
    let (lock, held, release) = args;
    let g = lock.lock().unwrap();
    held.set();
    assert!(release.wait_timeout(Duration::from_secs(30)));
    drop(g);
}

/// Runs on the current thread (the guard is not `Send`): under each runtime's
/// `block_on`.
#[test]
fn lock_async_waits_for_a_release_in_another_process_and_cancel_takes_nothing() {
    use mproc::sync::Lock;
    for flavor in [Flavor::CurrentThread, Flavor::MultiThread] {
        let _w = watchdog("lock_async", Duration::from_secs(60));
        runtime(flavor).block_on(async {
            let lock = Lock::new().unwrap();
            let (held, release) = (Event::new().unwrap(), Event::new().unwrap());
            let child = Process::start(hold_briefly, (lock.clone(), held.clone(), release.clone()))
                .unwrap();
            held.wait_async().await;
            // Cancelled attempts while the child holds it take nothing.
            for _ in 0..20 {
                let r = tokio::time::timeout(Duration::from_micros(500), lock.lock_async()).await;
                assert!(r.is_err(), "acquired a lock another process holds");
            }
            assert_eq!(lock.holder_pid(), Some(child.pid()));
            release.set();
            let g = lock.lock_async().await.unwrap();
            assert_eq!(lock.holder_pid(), Some(std::process::id()));
            drop(g);
            assert!(!lock.is_locked(), "{flavor:?}");
            child.join_async().await.unwrap();
        });
    }
}

/// The holder killed while `lock_async` waits: `OwnerDied`, not a hang.
#[test]
fn lock_async_reports_a_holder_killed_while_it_waits() {
    use mproc::sync::Lock;
    let _w = watchdog("lock_async owner died", Duration::from_secs(60));
    runtime(Flavor::CurrentThread).block_on(async {
        let ticks = ticker(Duration::from_millis(10));
        let lock = Lock::new().unwrap();
        let held = Event::new().unwrap();
        let child = Process::start(hold_until_killed, (lock.clone(), held.clone())).unwrap();
        held.wait_async().await;
        let pid = child.pid();
        let killer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            child.kill().unwrap();
            child.join_async().await.unwrap_err()
        });
        let before = ticks.load(Ordering::Relaxed);
        let died = lock.lock_async().await.unwrap_err();
        assert!(
            ticks.load(Ordering::Relaxed) - before >= 3,
            "the runtime was blocked"
        );
        assert_eq!(died.pid(), Some(pid));
        let g = died.into_inner();
        g.mark_consistent();
        drop(g);
        assert!(killer.await.unwrap().is_signaled());
    });
}

/// Permits released one by one by another process, taken by racing, cancelled
/// `acquire_async`s: every permit is taken exactly once and none is lost.
#[test]
fn semaphore_acquire_async_cancelled_loses_no_permit() {
    use mproc::sync::Semaphore;
    fn releaser(args: (Semaphore, u32)) {
        let (s, n) = args;
        for _ in 0..n {
            s.release();
            std::thread::yield_now();
        }
    }
    each_runtime("semaphore acquire_async", |_| async {
        const N: u32 = 500;
        let s = Semaphore::new(0).unwrap();
        let child = Process::start(releaser, (s.clone(), N)).unwrap();
        let (mut taken, mut cancelled) = (0u32, 0u32);
        let mut seed = 0x1234_5678_9abc_def1u64;
        while taken < N {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let limit = Duration::from_micros(seed % 100);
            match tokio::time::timeout(limit, s.acquire_async()).await {
                Ok(permit) => {
                    permit.forget();
                    taken += 1;
                }
                Err(_) => cancelled += 1,
            }
        }
        child.join_async().await.unwrap();
        assert_eq!(
            s.value(),
            0,
            "a cancelled acquire_async kept a permit ({cancelled} cancelled)"
        );
        s.release();
        drop(s.acquire_async().await);
        assert_eq!(s.value(), 1);
    });
}

//! `Process::join_async` and `wait_async`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use mproc::process::{Process, StartMethod};

use crate::{Flavor, each_runtime, runtime, ticker, watchdog};

fn square(x: u64) -> u64 {
    x * x
}

#[test]
fn join_async_returns_the_value_under_every_start_method() {
    each_runtime("join_async value", |_| async {
        for method in StartMethod::ALL {
            let child = Process::builder()
                .start_method(method)
                .start(square, 12)
                .unwrap();
            assert_eq!(child.join_async().await.unwrap(), 144, "{method:?}");
        }
    });
}

#[test]
fn join_async_reports_a_panic_and_a_signal() {
    each_runtime("join_async failures", |_| async {
        let child = Process::start(|_: ()| -> u8 { panic!("out of cheese") }, ()).unwrap();
        let err = child.join_async().await.unwrap_err();
        assert_eq!(err.panic_message(), Some("out of cheese"));

        for method in [StartMethod::Spawn, StartMethod::Forkserver] {
            let child = Process::builder()
                .start_method(method)
                .start(|_: ()| std::thread::sleep(Duration::from_secs(60)), ())
                .unwrap();
            child.kill().unwrap();
            assert!(
                child.join_async().await.unwrap_err().is_signaled(),
                "{method:?}"
            );
        }
    });
}

#[test]
fn many_children_joined_concurrently() {
    each_runtime("join_async concurrent", |_| async {
        let mut tasks = Vec::new();
        for i in 0..8u64 {
            tasks.push(tokio::spawn(async move {
                Process::start(square, i)
                    .unwrap()
                    .join_async()
                    .await
                    .unwrap()
            }));
        }
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap());
        }
        assert_eq!(got, (0..8u64).map(|i| i * i).collect::<Vec<_>>());
    });
}

#[test]
fn wait_async_timed_out_keeps_the_handle() {
    each_runtime("wait_async timeout", |_| async {
        let mut child =
            Process::start(|_: ()| std::thread::sleep(Duration::from_secs(60)), ()).unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(100), child.wait_async()).await;
        assert!(waited.is_err(), "the child is still running");
        assert!(child.is_alive());
        child.kill().unwrap();
        child.wait_async().await.unwrap();
        assert!(child.join().unwrap_err().is_signaled());
    });
}

/// A child that takes a second: the current-thread runtime's ticking task keeps
/// ticking while `join_async` waits.
#[test]
fn join_async_never_blocks_a_current_thread_runtime() {
    let _w = watchdog("join_async ticking", Duration::from_secs(60));
    let rt = runtime(Flavor::CurrentThread);
    rt.block_on(async {
        let ticks = ticker(Duration::from_millis(10));
        let child = Process::start(
            |_: ()| {
                std::thread::sleep(Duration::from_secs(1));
                7u8
            },
            (),
        )
        .unwrap();
        tokio::task::yield_now().await;
        let before = ticks.load(Ordering::Relaxed);
        assert_eq!(child.join_async().await.unwrap(), 7);
        let during = ticks.load(Ordering::Relaxed) - before;
        // About 100 ticks in the second; a blocked thread would give none.
        assert!(
            during >= 10,
            "only {during} ticks while join_async waited 1 s"
        );
    });
}

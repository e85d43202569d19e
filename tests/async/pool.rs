//! Pool results awaited: `AsyncResult`, `MapResult`, `imap`/`imap_unordered`'s
//! `next_async`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use mproc::pool::Pool;

use crate::{Flavor, each_runtime, runtime, ticker, watchdog};

#[test]
fn apply_async_and_map_async_are_awaitable() {
    each_runtime("pool await", |_| async {
        let pool = Pool::new(2).unwrap();
        assert_eq!(pool.apply_async(|x: u64| x * 3, 14).await.unwrap(), 42);
        let squares = pool.map_async(|x: u32| x * x, 0..100).await.unwrap();
        assert_eq!(squares, (0..100).map(|x| x * x).collect::<Vec<_>>());
        let err = pool
            .apply_async(|_: ()| -> u8 { std::process::abort() }, ())
            .await
            .unwrap_err();
        assert!(err.is_worker_lost());
        let err = pool
            .map_async(|x: u32| if x == 7 { panic!("seven") } else { x }, 0..20)
            .await
            .unwrap_err();
        assert_eq!(err.task_index(), Some(7));
    });
}

/// `imap`'s iterators borrow their input, so they are awaited in place (not
/// spawned): under each runtime's `block_on`.
#[test]
fn imap_next_async_in_order_and_unordered() {
    for flavor in [Flavor::CurrentThread, Flavor::MultiThread] {
        let _w = watchdog("imap next_async", Duration::from_secs(60));
        let rt = runtime(flavor);
        rt.block_on(async {
            let pool = Pool::new(2).unwrap();
            let mut it = pool.imap(|x: u32| x + 1, 0..50);
            let mut got = Vec::new();
            while let Some(r) = it.next_async().await {
                got.push(r.unwrap());
            }
            assert_eq!(got, (1..51).collect::<Vec<_>>());

            let mut it = pool.imap_unordered(|x: u32| x * 2, 0..50);
            let mut got = Vec::new();
            while let Some(r) = it.next_async().await {
                got.push(r.unwrap());
            }
            got.sort_unstable();
            assert_eq!(got, (0..50).map(|x| x * 2).collect::<Vec<_>>());
        });
    }
}

/// `next_async` cancelled at random points, many times: every result once, in
/// order (imap) or as a set (imap_unordered).
#[test]
fn cancelled_next_async_loses_nothing() {
    let _w = watchdog("imap cancel", Duration::from_secs(120));
    let rt = runtime(Flavor::MultiThread);
    rt.block_on(async {
        let pool = Pool::new(2).unwrap();
        let mut it = pool.imap(|x: u32| x, 0..500);
        let (mut got, mut cancelled) = (Vec::new(), 0);
        loop {
            match tokio::time::timeout(Duration::from_micros(20), it.next_async()).await {
                Ok(Some(r)) => got.push(r.unwrap()),
                Ok(None) => break,
                Err(_) => cancelled += 1,
            }
        }
        assert_eq!(got, (0..500).collect::<Vec<_>>(), "{cancelled} cancelled");

        let mut it = pool.imap_unordered(|x: u32| x, 0..500);
        let mut got = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_micros(20), it.next_async()).await {
                Ok(Some(r)) => got.push(r.unwrap()),
                Ok(None) => break,
                Err(_) => {}
            }
        }
        got.sort_unstable();
        assert_eq!(got, (0..500).collect::<Vec<_>>());
    });
}

#[test]
fn awaiting_a_result_never_blocks_a_current_thread_runtime() {
    let _w = watchdog("pool ticking", Duration::from_secs(60));
    let rt = runtime(Flavor::CurrentThread);
    rt.block_on(async {
        let ticks = ticker(Duration::from_millis(10));
        let pool = Pool::new(1).unwrap();
        let r = pool.apply_async(
            |_: ()| {
                std::thread::sleep(Duration::from_secs(1));
                3u8
            },
            (),
        );
        tokio::task::yield_now().await;
        let before = ticks.load(Ordering::Relaxed);
        assert_eq!(r.await.unwrap(), 3);
        let during = ticks.load(Ordering::Relaxed) - before;
        assert!(
            during >= 10,
            "only {during} ticks while the result was awaited"
        );
    });
}

//! Insights add up: tasks counted = tasks submitted, times non-negative and
//! within the wall time, deaths counted by cause.

use std::time::{Duration, Instant};

use mproc::pool::Pool;
use mproc::process::StartMethod;

use crate::LIMIT;
use crate::common::watchdog;

fn spin(micros: u64) -> u64 {
    let end = Instant::now() + Duration::from_micros(micros);
    let mut n = 0;
    while Instant::now() < end {
        n += 1;
    }
    n
}

#[test]
fn insights_add_up_for_every_start_method() {
    let _w = watchdog("insights add up", LIMIT);
    for method in StartMethod::ALL {
        let began = Instant::now();
        let pool = Pool::builder()
            .processes(2)
            .start_method(method)
            .handle_ctrl_c(false)
            .build()
            .unwrap();
        // Tasks one by one, in chunks, and single applies.
        pool.options()
            .chunksize(1)
            .map(spin, vec![100; 300])
            .unwrap();
        pool.options()
            .chunksize(16)
            .map(spin, vec![10; 500])
            .unwrap();
        for _ in 0..7 {
            pool.apply(spin, 10).unwrap();
        }
        let insights = pool.insights();
        let wall = began.elapsed();
        assert!(insights.measured);
        assert_eq!(insights.total.tasks, 807, "{method:?}\n{insights}");
        assert_eq!(insights.workers.len(), 2);
        assert_eq!(insights.workers.iter().map(|w| w.tasks).sum::<u64>(), 807);
        assert!(insights.wall_time <= wall);
        for w in &insights.workers {
            assert_eq!(w.starts, 1);
            assert_eq!((w.recycles, w.crashes, w.timeouts), (0, 0, 0));
            assert!(
                w.startup_time > Duration::ZERO && w.startup_time <= wall,
                "{insights}"
            );
            // A worker's times are its own: together, no longer than it lived.
            let lived = w.task_time + w.wait_time + w.serialize_time;
            assert!(lived <= wall, "{method:?}\n{insights}");
            assert!(w.peak_rss > 0);
            assert!(pool.worker_pids().contains(&w.pid.unwrap()));
        }
        // 300 tasks of 100 µs at least.
        assert!(
            insights.total.task_time >= Duration::from_millis(30),
            "{insights}"
        );
        let table = insights.to_string();
        assert!(
            table.contains("total") && table.contains("peak MiB"),
            "{table}"
        );
    }
}

#[test]
fn deaths_are_counted_by_cause() {
    let _w = watchdog("insights count deaths", LIMIT);
    let pool = Pool::builder()
        .processes(1)
        .max_tasks_per_child(3)
        .handle_ctrl_c(false)
        .build()
        .unwrap();
    // Three tasks, then the worker retires: one recycle.
    for _ in 0..3 {
        pool.apply(spin, 1).unwrap();
    }
    let err = pool
        .apply(|_: ()| -> u8 { std::process::abort() }, ())
        .unwrap_err();
    assert!(err.is_worker_lost());
    let err = pool
        .options()
        .timeout(Duration::from_millis(300))
        .apply(|s: u64| std::thread::sleep(Duration::from_secs(s)), 60)
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(pool.apply(|x: u8| x, 5).unwrap(), 5);
    let i = pool.insights();
    assert_eq!(i.total.recycles, 1, "{i}");
    assert_eq!(i.total.crashes, 1, "{i}");
    assert_eq!(i.total.timeouts, 1, "{i}");
    assert_eq!(i.total.starts, 4, "{i}");
    assert_eq!(i.total.tasks, 4, "{i}");
}

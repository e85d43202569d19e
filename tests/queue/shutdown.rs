//! `shutdown(immediate)` (Python 3.13's `Queue.shutdown`) across real processes:
//! puts fail with `ShutDown` everywhere, gets drain (or, immediate, fail at once),
//! a joinable queue's `join` returns, and waiters asleep in other processes wake.

use std::time::Duration;

use mproc::process::Process;
use mproc::queue::{
    GetError, GetTimeoutError, JoinableQueue, PutError, Queue, SimpleQueue, TryGetError,
    TryPutError,
};

use crate::common::{all_threads_asleep, eventually};
use crate::util::watchdog;

/// Waits until the child is asleep in the kernel (blocked in its queue wait).
fn wait_asleep<R>(child: &Process<R>) {
    assert!(
        eventually(Duration::from_secs(30), || all_threads_asleep(child.pid())),
        "the child never blocked"
    );
}

fn blocked_get(q: Queue<u32>) -> String {
    format!("{:?}", q.get())
}

fn blocked_put(q: Queue<u32>) -> String {
    format!("{:?}", q.put(2))
}

#[test]
fn shutdown_wakes_getters_and_putters_blocked_in_other_processes() {
    let _w = watchdog("shutdown wakes other processes", Duration::from_secs(90));
    let empty = Queue::<u32>::new().unwrap();
    let full = Queue::<u32>::bounded(1).unwrap();
    full.put(1).unwrap();
    let getters: Vec<_> = (0..2)
        .map(|_| Process::start(blocked_get, empty.clone()).unwrap())
        .collect();
    let putter = Process::start(blocked_put, full.clone()).unwrap();
    for g in &getters {
        wait_asleep(g);
    }
    wait_asleep(&putter);
    empty.shutdown(false);
    full.shutdown(false);
    for g in getters {
        assert_eq!(
            g.join_timeout(Duration::from_secs(30)).unwrap(),
            "Err(ShutDown)"
        );
    }
    assert_eq!(
        putter.join_timeout(Duration::from_secs(30)).unwrap(),
        "Err(ShutDown(..))"
    );
    // Not immediate: what was queued is still there.
    assert_eq!(full.get(), Ok(1));
    assert_eq!(full.get(), Err(GetError::ShutDown));
}

/// What a process sees of a queue that another process shut down: its puts fail,
/// its gets drain what is left and then fail.
fn after_shutdown(q: Queue<u32>) -> (String, Vec<u32>, String) {
    let put = match q.put(9) {
        Ok(()) => "put".to_string(),
        Err(e) => format!("{e:?}"),
    };
    let mut got = Vec::new();
    let end = loop {
        match q.get_timeout(Duration::from_secs(30)) {
            Ok(x) => got.push(x),
            Err(e) => break format!("{e:?}"),
        }
    };
    (put, got, end)
}

#[test]
fn after_a_shutdown_another_process_drains_then_gets_shut_down() {
    let _w = watchdog("shutdown drains across processes", Duration::from_secs(60));
    let q = Queue::<u32>::new().unwrap();
    for x in 1..=3 {
        q.put(x).unwrap();
    }
    q.shutdown(false);
    assert!(q.is_shut_down() && !q.is_closed());
    let child = Process::start(after_shutdown, q.clone()).unwrap();
    let (put, got, end) = child.join_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(put, "ShutDown(..)");
    assert_eq!(got, [1, 2, 3]);
    assert_eq!(end, "ShutDown");
}

#[test]
fn an_immediate_shutdown_discards_what_is_queued_for_every_process() {
    let _w = watchdog("immediate shutdown", Duration::from_secs(60));
    let q = Queue::<u32>::new().unwrap();
    for x in 1..=5 {
        q.put(x).unwrap();
    }
    q.shutdown(true);
    assert_eq!(q.len(), 0);
    assert_eq!(q.try_get(), Err(TryGetError::ShutDown));
    assert_eq!(q.try_put(1), Err(TryPutError::ShutDown(1)));
    let child = Process::start(after_shutdown, q.clone()).unwrap();
    let (put, got, end) = child.join_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(put, "ShutDown(..)");
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(end, "ShutDown");
}

fn blocked_join(q: JoinableQueue<u32>) -> String {
    q.join();
    format!("joined with {} unfinished", q.unfinished())
}

#[test]
fn an_immediate_shutdown_releases_a_join_blocked_in_another_process() {
    let _w = watchdog("immediate shutdown and join", Duration::from_secs(90));
    let q = JoinableQueue::<u32>::new().unwrap();
    for x in 1..=10 {
        q.put(x).unwrap();
    }
    // One item is taken and not yet done: it still holds `join` after the shutdown.
    assert_eq!(q.get(), Ok(1));
    let joiner = Process::start(blocked_join, q.clone()).unwrap();
    wait_asleep(&joiner);
    q.shutdown(true);
    assert_eq!(q.unfinished(), 1, "the nine discarded items count as done");
    assert!(q.join_timeout(Duration::from_millis(50)).is_err());
    assert!(joiner.is_alive());
    q.task_done().unwrap();
    assert_eq!(
        joiner.join_timeout(Duration::from_secs(30)).unwrap(),
        "joined with 0 unfinished"
    );
    assert!(q.task_done().is_err(), "no item is left to be done");
    assert_eq!(
        q.get_timeout(Duration::from_secs(5)),
        Err(GetTimeoutError::ShutDown)
    );
}

#[test]
fn a_plain_shutdown_leaves_a_joinable_queues_count_alone() {
    // Python: only `immediate` counts the queued items as done.
    let q = JoinableQueue::<u32>::new().unwrap();
    q.put(1).unwrap();
    q.shutdown(false);
    assert_eq!(q.unfinished(), 1);
    assert!(q.join_timeout(Duration::from_millis(20)).is_err());
    assert_eq!(q.get(), Ok(1));
    q.task_done().unwrap();
    q.join_timeout(Duration::from_secs(5)).unwrap();
    assert!(matches!(q.put(2), Err(PutError::ShutDown(2))));
}

fn simple_blocked_get(q: SimpleQueue<u8>) -> String {
    format!("{:?}", q.get())
}

#[test]
fn a_simple_queue_shuts_down_across_processes() {
    let _w = watchdog("simple queue shutdown", Duration::from_secs(60));
    let q = SimpleQueue::<u8>::new().unwrap();
    let child = Process::start(simple_blocked_get, q.clone()).unwrap();
    wait_asleep(&child);
    q.shutdown(true);
    assert!(q.is_shut_down());
    assert_eq!(
        child.join_timeout(Duration::from_secs(30)).unwrap(),
        "Err(ShutDown)"
    );
    assert!(q.put(1).unwrap_err().is_shut_down());
}

#[test]
fn shutdown_after_close_reports_shut_down_and_close_after_shutdown_is_harmless() {
    let q = Queue::<u8>::new().unwrap();
    q.put(1).unwrap();
    q.close();
    assert_eq!(q.put(2), Err(PutError::Closed(2)));
    q.shutdown(false);
    assert_eq!(q.put(3), Err(PutError::ShutDown(3)));
    q.close();
    assert!(q.is_closed() && q.is_shut_down());
    assert_eq!(q.get(), Ok(1));
    assert_eq!(q.get(), Err(GetError::ShutDown));
}

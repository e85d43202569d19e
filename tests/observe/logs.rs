//! Log records from children reach the parent's logger: all of them, in order per
//! child, tagged, and the last ones before a crash too.

use std::time::Duration;

use mproc::pool::Pool;
use mproc::process::{Process, StartMethod};

use crate::common::watchdog;
use crate::{LIMIT, kept, logger};

const PER_CHILD: u32 = 1000;

fn log_many(marker: String) -> u32 {
    for i in 0..PER_CHILD {
        log::info!(target: "chatty", "{marker} record {i}");
    }
    std::process::id()
}

/// The numbers `i` of the records "`marker` record `i`" kept for `pid`, in order.
fn sequence(marker: &str, pid: u32) -> Vec<u32> {
    kept(marker)
        .iter()
        .filter(|k| k.pid == Some(pid as u64))
        .map(|k| {
            k.message
                .rsplit(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("a record number")
        })
        .collect()
}

fn four_children_each(method: StartMethod) {
    logger();
    let _w = watchdog("four children log 1000 records each", LIMIT);
    let marker = format!("four-{method:?}#");
    let children: Vec<_> = (0..4)
        .map(|i| {
            Process::builder()
                .name(format!("chatty-{method:?}-{i}"))
                .start_method(method)
                .start(log_many, marker.clone())
                .expect("child starts")
        })
        .collect();
    for child in children {
        let (pid, name) = (child.pid(), child.name().to_string());
        assert_eq!(child.join().expect("child returns"), pid);
        // Joined: everything the child logged has been logged here.
        let seq = sequence(&marker, pid);
        assert_eq!(seq, (0..PER_CHILD).collect::<Vec<_>>(), "records of {name}");
        for k in kept(&marker).iter().filter(|k| k.pid == Some(pid as u64)) {
            assert_eq!(k.process.as_deref(), Some(name.as_str()));
            assert_eq!(k.target, "chatty");
            assert_eq!(k.level, log::Level::Info);
            assert!(
                k.message.starts_with(&format!("[{name} pid {pid}] ")),
                "{}",
                k.message
            );
            assert_eq!(k.task, None);
        }
    }
}

#[test]
fn four_children_1000_records_each_arrive_in_order_forkserver() {
    four_children_each(StartMethod::Forkserver);
}

#[test]
fn four_children_1000_records_each_arrive_in_order_spawn() {
    four_children_each(StartMethod::Spawn);
}

#[test]
fn four_children_1000_records_each_arrive_in_order_fork() {
    four_children_each(StartMethod::Fork);
}

fn panic_after_logging(marker: String) -> u8 {
    log::error!("{marker} last words before the panic");
    panic!("{marker} boom")
}

fn abort_after_logging(marker: String) -> u8 {
    log::warn!("{marker} last words before the abort");
    std::process::abort()
}

fn hang_after_logging(marker: String) -> u8 {
    log::warn!("{marker} last words before the hang");
    std::thread::sleep(Duration::from_secs(600));
    0
}

fn last_words(method: StartMethod) {
    logger();
    let _w = watchdog("last words before a crash", LIMIT);
    let b = || {
        let mut b = Process::builder();
        b.start_method(method);
        b
    };
    // A panic.
    let marker = format!("proc-panic-{method:?}#");
    let child = b().start(panic_after_logging, marker.clone()).unwrap();
    let pid = child.pid();
    assert!(child.join().unwrap_err().is_panic());
    let got = kept(&marker);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].pid, Some(pid as u64));
    assert_eq!(got[0].level, log::Level::Error);
    assert!(got[0].message.ends_with("last words before the panic"));

    // An abort.
    let marker = format!("proc-abort-{method:?}#");
    let child = b().start(abort_after_logging, marker.clone()).unwrap();
    assert_eq!(child.join().unwrap_err().signal(), Some(6));
    assert_eq!(kept(&marker).len(), 1);

    // A SIGKILL, once the record is out (the parent sees it arrive first).
    let marker = format!("proc-kill-{method:?}#");
    let child = b().start(hang_after_logging, marker.clone()).unwrap();
    assert!(
        crate::common::eventually(LIMIT / 2, || !kept(&marker).is_empty()),
        "the record arrives while the child runs"
    );
    child.kill().unwrap();
    assert_eq!(child.join().unwrap_err().signal(), Some(9));
    assert_eq!(kept(&marker).len(), 1);
}

#[test]
fn the_last_record_before_a_panic_an_abort_and_a_kill_arrives_forkserver() {
    last_words(StartMethod::Forkserver);
}

#[test]
fn the_last_record_before_a_panic_an_abort_and_a_kill_arrives_spawn() {
    last_words(StartMethod::Spawn);
}

#[test]
fn the_last_record_before_a_panic_an_abort_and_a_kill_arrives_fork() {
    last_words(StartMethod::Fork);
}

fn pool(method: StartMethod, n: usize) -> Pool {
    Pool::builder()
        .processes(n)
        .start_method(method)
        .handle_ctrl_c(false)
        .build()
        .expect("pool starts")
}

fn log_item((marker, i): (String, u32)) -> u32 {
    log::info!("{marker} item {i}");
    i
}

fn pool_tasks(method: StartMethod) {
    logger();
    let _w = watchdog("pool tasks log with their index", LIMIT);
    let pool = pool(method, 2);
    let pids = pool.worker_pids();
    for chunksize in [1, 7] {
        let marker = format!("pool-{method:?}-{chunksize}#");
        let items: Vec<_> = (0..300).map(|i| (marker.clone(), i)).collect();
        let out = pool
            .options()
            .chunksize(chunksize)
            .map(log_item, items)
            .unwrap();
        assert_eq!(out, (0..300).collect::<Vec<_>>());
        // The map returned: every record its tasks made has been logged.
        let got = kept(&marker);
        assert_eq!(got.len(), 300, "chunksize {chunksize}");
        let mut seen = vec![false; 300];
        for k in &got {
            let i: usize = k.message.rsplit(' ').next().unwrap().parse().unwrap();
            assert_eq!(k.task, Some(i as u64), "{k:?}");
            assert!(pids.contains(&(k.pid.unwrap() as u32)), "{k:?}");
            assert!(k.process.as_deref().unwrap().starts_with("PoolWorker-"));
            assert!(k.message.contains(&format!(" task {i}] ")), "{}", k.message);
            seen[i] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
    // Last words before a panic, an abort and a kill at the deadline.
    let marker = format!("pool-panic-{method:?}#");
    assert!(
        pool.apply(panic_after_logging, marker.clone())
            .unwrap_err()
            .is_panic()
    );
    assert_eq!(kept(&marker).len(), 1);
    let marker = format!("pool-abort-{method:?}#");
    assert!(
        pool.apply(abort_after_logging, marker.clone())
            .unwrap_err()
            .is_worker_lost()
    );
    assert_eq!(kept(&marker).len(), 1);
    let marker = format!("pool-deadline-{method:?}#");
    let err = pool
        .options()
        .timeout(Duration::from_millis(500))
        .apply(hang_after_logging, marker.clone())
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let got = kept(&marker);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].task, Some(0));
    // The pool goes on.
    assert_eq!(pool.apply(|x: u8| x + 1, 1).unwrap(), 2);
}

#[test]
fn pool_tasks_log_with_their_index_and_last_words_arrive_forkserver() {
    pool_tasks(StartMethod::Forkserver);
}

#[test]
fn pool_tasks_log_with_their_index_and_last_words_arrive_spawn() {
    pool_tasks(StartMethod::Spawn);
}

#[test]
fn pool_tasks_log_with_their_index_and_last_words_arrive_fork() {
    pool_tasks(StartMethod::Fork);
}

/// Counts how many times it is formatted (in the process that formats it).
struct Counted;

static FORMATTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl std::fmt::Display for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        FORMATTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f.write_str("counted")
    }
}

fn debug_then_info(marker: String) -> u32 {
    for _ in 0..1000 {
        log::debug!("{marker} filtered {}", Counted);
    }
    log::info!("{marker} passes {}", Counted);
    FORMATTED.load(std::sync::atomic::Ordering::Relaxed)
}

#[test]
fn records_above_the_parents_level_are_never_formatted_in_the_child() {
    logger();
    let _w = watchdog("filtered records", LIMIT);
    for method in StartMethod::ALL {
        let marker = format!("filter-{method:?}#");
        let child = Process::builder()
            .start_method(method)
            .start(debug_then_info, marker.clone())
            .unwrap();
        // Only the `info!` record was formatted, in the child.
        assert_eq!(child.join().unwrap(), 1, "{method:?}");
        let got = kept(&marker);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].message.ends_with("passes counted"));
    }
}

#[test]
fn forward_logs_false_keeps_records_in_the_child() {
    logger();
    let _w = watchdog("opt-out", LIMIT);
    for method in [StartMethod::Forkserver, StartMethod::Spawn] {
        let marker = format!("optout-{method:?}#");
        let child = Process::builder()
            .start_method(method)
            .forward_logs(false)
            .start(log_item, (marker.clone(), 1))
            .unwrap();
        assert_eq!(child.join().unwrap(), 1);
        let pool = Pool::builder()
            .processes(1)
            .start_method(method)
            .forward_logs(false)
            .handle_ctrl_c(false)
            .build()
            .unwrap();
        assert_eq!(pool.apply(log_item, (marker.clone(), 2)).unwrap(), 2);
        drop(pool);
        assert!(kept(&marker).is_empty());
    }
}

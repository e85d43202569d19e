//! No task waits behind a long one while a worker stands idle (head-of-line
//! blocking). The long task here waits on an `Event` that the test opens only at
//! the end, so "behind it" would mean "until the watchdog fires", whatever the
//! machine's speed.

use std::time::Duration;

use mproc::pool::Pool;
use mproc::sync::Event;

use crate::common::watchdog;

const LIMIT: Duration = Duration::from_secs(60);

/// The gated task: returns once `gate` opens (or after a minute).
fn gated(x: (Event, u64)) -> u64 {
    let (gate, v) = x;
    assert!(gate.wait_timeout(LIMIT), "the gate never opened");
    v
}

fn quick(x: (Event, u64)) -> u64 {
    x.1 * 2
}

fn gated_or_quick(x: (Event, u64)) -> u64 {
    if x.1 == 0 { gated(x) } else { quick(x) }
}

fn two_workers() -> Pool {
    let pool = Pool::builder()
        .processes(2)
        .handle_ctrl_c(false)
        .build()
        .unwrap();
    // Both workers up and warm, so that the dispatcher sees two ready workers.
    assert_eq!(pool.map(|x: u64| x, 0..64).unwrap().len(), 64);
    pool
}

/// Quick tasks submitted together while one worker holds a long task all run on
/// the other worker. Before the fix, half of them were sent to the busy worker
/// and waited for its task.
#[test]
fn tasks_submitted_together_do_not_wait_behind_a_busy_worker() {
    let _w = watchdog(
        "tasks_submitted_together_do_not_wait_behind_a_busy_worker",
        LIMIT * 2,
    );
    let pool = two_workers();
    let gate = Event::new().unwrap();
    let long = pool.apply_async(gated, (gate.clone(), 7));
    let quick: Vec<_> = (1..=6)
        .map(|i| pool.apply_async(quick, (gate.clone(), i)))
        .collect();
    for (i, q) in quick.into_iter().enumerate() {
        let r = q.get_timeout(Duration::from_secs(20));
        assert_eq!(
            r.ok(),
            Some(2 * (i as u64 + 1)),
            "quick task {i} waited behind the long one"
        );
    }
    assert!(!long.ready(), "the gate is still closed");
    gate.set();
    assert_eq!(long.get().unwrap(), 7);
}

/// Tasks already sent to a worker behind its long task are taken back and run by
/// the idle worker: a map whose first item blocks still yields every other item
/// while the block lasts, exactly once each.
#[test]
fn tasks_queued_behind_a_long_one_are_taken_back() {
    let _w = watchdog("tasks_queued_behind_a_long_one_are_taken_back", LIMIT * 2);
    let pool = two_workers();
    let gate = Event::new().unwrap();
    let items: Vec<(Event, u64)> = (0..9).map(|i| (gate.clone(), i)).collect();
    let mut it = pool
        .options()
        .chunksize(1)
        .imap_unordered(gated_or_quick, items);
    let mut got: Vec<u64> = (0..8)
        .map(|_| {
            it.next_timeout(Duration::from_secs(20))
                .expect("a quick task waited behind the long one")
                .unwrap()
        })
        .collect();
    gate.set();
    got.push(it.next_timeout(LIMIT).unwrap().unwrap());
    assert!(it.next_timeout(LIMIT).is_none());
    got.sort_unstable();
    assert_eq!(got, [0, 2, 4, 6, 8, 10, 12, 14, 16]);
}

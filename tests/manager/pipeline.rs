//! Pipelined sets (`Dict::set_pipelined`): order, visibility after `flush`, a
//! failure reported later, a manager killed with requests in flight, and
//! pipelined sets mixed with `update_with` from many processes.

use std::time::{Duration, Instant};

use mproc::manager::{Dict, Event, Lock, LockError, Manager, ManagerError};
use mproc::pipe::{self, Connection};
use mproc::process::Process;

use crate::common::{eventually, watchdog};
use crate::{LONG, kill_manager};

const KEY: &[u8] = b"pipelined sets";

/// Writes `rounds` values to each of `keys` keys (pipelined), reading each back at
/// once; returns the number of reads that did not see this thread's own write.
fn write_and_read_back(d: &Dict<u32, u64>, base: u32, keys: u32, rounds: u64) -> u64 {
    let mut stale = 0;
    for r in 0..rounds {
        for k in 0..keys {
            let v = r * 1000 + u64::from(k);
            d.set_pipelined(base + k, v).unwrap();
            if r % 7 == 0 && d.get(&(base + k)).unwrap() != Some(v) {
                stale += 1;
            }
        }
    }
    d.flush().unwrap();
    stale
}

fn pipelined_child((d, base): (Dict<u32, u64>, u32)) -> u64 {
    // Several threads of one process, each with its own keys.
    let threads: Vec<_> = (0..3)
        .map(|t| {
            let d = d.clone();
            std::thread::spawn(move || write_and_read_back(&d, base + 100 * t, 20, 150))
        })
        .collect();
    let mut stale = write_and_read_back(&d, base + 300, 20, 150);
    for t in threads {
        stale += t.join().unwrap();
    }
    stale
}

#[test]
fn pipelined_sets_keep_their_order_and_are_visible_after_flush() {
    let _w = watchdog("pipelined_sets_order", LONG);
    let m = Manager::start().unwrap();
    let d = m.dict::<u32, u64>().unwrap();
    let kids: Vec<_> = (0..2)
        .map(|i| Process::start(pipelined_child, (d.clone(), 1000 * i)).unwrap())
        .collect();
    for k in kids {
        assert_eq!(k.join().unwrap(), 0, "a read missed its own thread's write");
    }
    // Each child flushed before it returned: every last write is there.
    assert_eq!(d.len().unwrap(), 2 * 4 * 20);
    for base in [0u32, 1000] {
        for t in 0..4 {
            for k in 0..20 {
                assert_eq!(
                    d.get(&(base + 100 * t + k)).unwrap(),
                    Some(149 * 1000 + u64::from(k))
                );
            }
        }
    }
}

#[test]
fn a_failed_pipelined_set_is_reported_by_the_next_call_and_by_flush() {
    let _w = watchdog("pipelined_failure", LONG);
    let first = Manager::builder()
        .address("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
        .authkey(KEY)
        .start()
        .unwrap();
    let addr = first.address().clone();
    let client = Manager::connect(addr.clone(), KEY).unwrap();
    let d = client.named_dict::<String, u32>("state").unwrap();
    d.set_pipelined("a".into(), 1).unwrap();
    d.flush().unwrap();
    assert_eq!(d.get("a").unwrap(), Some(1));
    first.shutdown().unwrap();
    assert!(d.get("a").unwrap_err().is_disconnected());
    let _second = Manager::builder()
        .address(addr)
        .authkey(KEY)
        .start()
        .unwrap();
    // The old dict does not exist on the new manager: the set is sent, and its
    // failure comes back later.
    d.set_pipelined("a".into(), 2).unwrap();
    let err = d.flush().unwrap_err();
    assert!(
        matches!(&err, ManagerError::Pipelined(e) if e.is_object_gone()),
        "{err}"
    );
    // Reported once.
    d.flush().unwrap();
    // Reported once, by the first call that finds the reply before it sends its
    // own request (that call is not carried out and can be retried), or else by
    // `flush`: never in place of a call's own result.
    d.set_pipelined("a".into(), 3).unwrap();
    let mut reported = 0;
    let fresh = loop {
        match client.named_dict::<String, u32>("fresh") {
            Ok(f) => break f,
            Err(ManagerError::Pipelined(e)) if e.is_object_gone() => reported += 1,
            Err(e) => panic!("{e}"),
        }
    };
    match fresh.flush() {
        Ok(()) => assert_eq!(reported, 1),
        Err(ManagerError::Pipelined(e)) if e.is_object_gone() => assert_eq!(reported, 0),
        Err(e) => panic!("{e}"),
    }
    fresh.set_pipelined("x".into(), 7).unwrap();
    assert_eq!(fresh.get("x").unwrap(), Some(7));
    fresh.flush().unwrap();
}

fn pipeline_until_it_fails((d, started, report): (Dict<u32, u32>, Event, Connection<(bool, u64)>)) {
    let mut i = 0u32;
    let err = match started.set() {
        // The manager can be killed once the set took effect (the parent woke)
        // and before its reply came back: that is the failure this test wants.
        Err(e) => e,
        Ok(()) => loop {
            i = i.wrapping_add(1);
            if let Err(e) = d.set_pipelined(i % 64, i) {
                break e;
            }
            if i % 1000 == 0
                && let Err(e) = d.get(&0)
            {
                break e;
            }
        },
    };
    let noticed = Instant::now();
    // Every later call fails at once too.
    let again = d.len().unwrap_err();
    report
        .send(&(
            err.is_disconnected() && again.is_disconnected(),
            noticed.elapsed().as_millis() as u64,
        ))
        .unwrap();
}

#[test]
fn the_manager_killed_with_pipelined_sets_in_flight_fails_the_client_at_once() {
    let _w = watchdog("pipelined_manager_killed", LONG);
    let m = Manager::start().unwrap();
    let d = m.dict::<u32, u32>().unwrap();
    let started = m.event().unwrap();
    let (a, b) = pipe::duplex::<(bool, u64)>().unwrap();
    let child = Process::start(pipeline_until_it_fails, (d, started.clone(), b)).unwrap();
    assert!(started.wait_timeout(LONG).unwrap());
    let killed_at = Instant::now();
    kill_manager(&m);
    assert!(a.poll(LONG), "the client hung after the manager died");
    let (disconnected, _) = a.recv().unwrap();
    assert!(
        disconnected,
        "the client got another error than Disconnected"
    );
    assert!(killed_at.elapsed() < Duration::from_secs(10));
    child.join().unwrap();
}

fn count_and_pipeline((d, me): (Dict<String, u64>, u32)) {
    for i in 0..200u64 {
        d.update_with("count".into(), |v| v.unwrap_or(0) + 1)
            .unwrap();
        d.set_pipelined(format!("mine-{me}"), i).unwrap();
    }
    d.flush().unwrap();
}

#[test]
fn pipelined_sets_mixed_with_update_with_from_many_processes_lose_nothing() {
    let _w = watchdog("pipelined_update_with", LONG);
    let m = Manager::start().unwrap();
    let d = m.dict::<String, u64>().unwrap();
    let kids: Vec<_> = (0..4)
        .map(|me| Process::start(count_and_pipeline, (d.clone(), me)).unwrap())
        .collect();
    for k in kids {
        k.join().unwrap();
    }
    assert_eq!(d.get("count").unwrap(), Some(800));
    for me in 0..4 {
        assert_eq!(d.get(&format!("mine-{me}")).unwrap(), Some(199));
    }
}

#[test]
fn a_lone_pipelined_set_over_tcp_reaches_the_manager_without_a_flush() {
    let _w = watchdog("lone_pipelined_set_tcp", LONG);
    let m = Manager::serve("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap(), KEY).unwrap();
    let client = Manager::connect(m.address().clone(), KEY).unwrap();
    let d = client.named_dict::<String, u32>("lone").unwrap();
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let writer = {
        let d = d.clone();
        std::thread::spawn(move || {
            // Held back by the kernel for a following call that never comes: it
            // must still leave on its own.
            d.set_pipelined("k".into(), 5).unwrap();
            let _ = wait.recv_timeout(LONG);
        })
    };
    // Read over another connection (this thread has no pipelined requests).
    assert!(
        eventually(LONG, || d.get("k").unwrap() == Some(5)),
        "the pipelined set never reached the manager"
    );
    done.send(()).unwrap();
    writer.join().unwrap();
}

fn hold_and_pipeline_forever((d, lock, ready): (Dict<u32, u32>, Lock, Event)) {
    let _g = lock.lock().unwrap();
    let mut i = 0u32;
    loop {
        d.set_pipelined(i % 100, i).unwrap();
        i = i.wrapping_add(1);
        if i == 1000 {
            ready.set().unwrap();
        }
    }
}

#[test]
fn a_client_killed_with_pipelined_sets_in_flight_frees_its_lock_with_owner_died() {
    let _w = watchdog("pipelined_client_killed", LONG);
    let m = Manager::start().unwrap();
    let d = m.dict::<u32, u32>().unwrap();
    let lock = m.lock().unwrap();
    let ready = m.event().unwrap();
    let child = Process::start(
        hold_and_pipeline_forever,
        (d.clone(), lock.clone(), ready.clone()),
    )
    .unwrap();
    assert!(ready.wait_timeout(LONG).unwrap());
    let pid = child.pid();
    child.kill().unwrap();
    let _ = child.join();
    match lock.lock_timeout(LONG) {
        Err(e @ LockError::OwnerDied(_)) => {
            let msg = e.to_string();
            assert!(msg.contains(&format!("pid {pid}")), "{msg}");
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("the dead client's lock was taken without OwnerDied"),
    }
    // The manager keeps serving; whatever sets arrived are whole values.
    let n = d.len().unwrap();
    assert!((1..=100).contains(&n), "{n} keys");
    for (k, v) in d.items().unwrap() {
        assert_eq!(v % 100, k);
    }
}

#[test]
fn pipelined_sets_filling_the_queue_of_a_dead_manager_fail_instead_of_hanging() {
    let _w = watchdog("pipelined_full_queue_dead_manager", LONG);
    // Requests go through a shared-memory queue of 4 frames' worth of bytes.
    let m = Manager::builder().max_frame(1 << 16).start().unwrap();
    let d = m.dict::<u32, Vec<u8>>().unwrap();
    d.set_pipelined(0, vec![1]).unwrap();
    let pid = m.pid().unwrap();
    kill_manager(&m);
    assert!(crate::common::eventually(LONG, || crate::common::is_dead(
        pid
    )));
    // Nobody empties the queue any more: the sixth value or so finds it full.
    let started = Instant::now();
    let err = (1..1000)
        .find_map(|i| d.set_pipelined(i, vec![7u8; 60_000]).err())
        .expect("a set into a dead manager's full queue succeeded");
    assert!(err.is_disconnected(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(m);
}

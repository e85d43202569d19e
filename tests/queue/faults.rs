//! SIGKILL a producer and a consumer in the middle of heavy traffic, many times
//! over, then check the invariants: nothing duplicated, FIFO per producer, every
//! put that returned delivered (except, per killed consumer, the one item it had
//! already taken), no deadlock, and the queue still works.
//!
//! Every process reports over its own pipe: a producer sends `i` after `put(i)`
//! returned; a consumer sends each item it got. A report cut off by the kill is
//! simply never received (a pipe never delivers half a message).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mproc::pipe::{self, Receiver, Sender};
use mproc::process::{JoinTimeoutError, Process};
use mproc::queue::Queue;

use crate::util::{Rng, watchdog};

type Item = (u32, u64);

fn producer((q, report, id, n): (Queue<Item>, Sender<u64>, u32, u64)) -> u64 {
    for i in 0..n {
        q.put((id, i)).unwrap();
        report.send(&i).unwrap();
    }
    n
}

fn consumer((q, report): (Queue<Item>, Sender<Item>)) -> u64 {
    let mut n = 0;
    while let Ok(item) = q.get() {
        report.send(&item).unwrap();
        n += 1;
    }
    n
}

fn collect<T: serde::de::DeserializeOwned + Send + 'static>(
    rx: Receiver<T>,
    counter: Arc<AtomicU64>,
) -> JoinHandle<Vec<T>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        while let Ok(x) = rx.recv() {
            out.push(x);
            counter.fetch_add(1, Ordering::Relaxed);
        }
        out
    })
}

struct Producer {
    id: u32,
    proc: Process<u64>,
    reports: JoinHandle<Vec<u64>>,
}

struct Consumer {
    proc: Process<u64>,
    reports: JoinHandle<Vec<Item>>,
}

fn start_producer(q: &Queue<Item>, id: u32, n: u64, progress: &Arc<AtomicU64>) -> Producer {
    let (tx, rx) = pipe::simplex::<u64>().unwrap();
    let proc = Process::start(producer, (q.clone(), tx, id, n)).unwrap();
    Producer {
        id,
        proc,
        reports: collect(rx, progress.clone()),
    }
}

fn start_consumer(q: &Queue<Item>, progress: &Arc<AtomicU64>) -> Consumer {
    let (tx, rx) = pipe::simplex::<Item>().unwrap();
    let proc = Process::start(consumer, (q.clone(), tx)).unwrap();
    Consumer {
        proc,
        reports: collect(rx, progress.clone()),
    }
}

fn wait_for_traffic(counter: &AtomicU64, more: u64) {
    let target = counter.load(Ordering::Relaxed) + more;
    let end = Instant::now() + Duration::from_secs(20);
    while counter.load(Ordering::Relaxed) < target {
        assert!(Instant::now() < end, "traffic stalled: a deadlock?");
        std::thread::park_timeout(Duration::from_micros(200));
    }
}

#[test]
fn sigkill_producers_and_consumers_under_load() {
    let _w = watchdog("sigkill loop", Duration::from_secs(180));
    const ROUNDS: u32 = 12;
    const PER: u64 = 3_000;
    let mut rng = Rng::from_time("sigkill loop");
    let q = Queue::<Item>::bounded(32).unwrap();
    let delivered = Arc::new(AtomicU64::new(0));
    let committed = Arc::new(AtomicU64::new(0));

    let mut next_id = 0u32;
    let mut producers: Vec<Producer> = Vec::new();
    let mut consumers: Vec<Consumer> = Vec::new();
    let mut finished_producers: Vec<(u32, Vec<u64>)> = Vec::new();
    let mut finished_consumers: Vec<Vec<Item>> = Vec::new();
    let mut consumer_kills = 0u64;
    for _ in 0..2 {
        producers.push(start_producer(&q, next_id, PER, &committed));
        next_id += 1;
        consumers.push(start_consumer(&q, &delivered));
    }

    for _ in 0..ROUNDS {
        wait_for_traffic(&delivered, 100 + rng.below(400));
        // Kill one producer...
        let p = producers.remove(rng.below(producers.len() as u64) as usize);
        p.proc.kill().unwrap();
        match p.proc.join_timeout(Duration::from_secs(20)) {
            Ok(n) => assert_eq!(n, PER), // it finished just before the kill
            r => assert!(killed(r), "the killed producer did not die of SIGKILL"),
        }
        finished_producers.push((p.id, p.reports.join().unwrap()));
        producers.push(start_producer(&q, next_id, PER, &committed));
        next_id += 1;
        wait_for_traffic(&delivered, 50 + rng.below(200));
        // ...and one consumer.
        let c = consumers.remove(rng.below(consumers.len() as u64) as usize);
        c.proc.kill().unwrap();
        assert!(
            killed(c.proc.join_timeout(Duration::from_secs(20))),
            "the killed consumer did not die of SIGKILL"
        );
        consumer_kills += 1;
        finished_consumers.push(c.reports.join().unwrap());
        consumers.push(start_consumer(&q, &delivered));
    }

    // Let the last producers finish, then close: the consumers drain and stop.
    for p in producers {
        assert_eq!(p.proc.join_timeout(Duration::from_secs(60)).unwrap(), PER);
        finished_producers.push((p.id, p.reports.join().unwrap()));
    }
    q.close();
    for c in consumers {
        c.proc.join_timeout(Duration::from_secs(60)).unwrap();
        finished_consumers.push(c.reports.join().unwrap());
    }
    assert!(
        q.is_empty(),
        "{} items left after the consumers drained",
        q.len()
    );

    // Invariants.
    let mut got: HashMap<u32, HashSet<u64>> = HashMap::new();
    for items in &finished_consumers {
        let mut last: HashMap<u32, u64> = HashMap::new();
        for &(p, i) in items {
            if let Some(prev) = last.insert(p, i) {
                assert!(
                    i > prev,
                    "producer {p}: item {i} after {prev} (FIFO broken)"
                );
            }
            assert!(
                got.entry(p).or_default().insert(i),
                "producer {p}: item {i} twice"
            );
        }
    }
    let mut missing = Vec::new();
    for (id, reported) in &finished_producers {
        let set = got.remove(id).unwrap_or_default();
        let top = reported
            .last()
            .copied()
            .into_iter()
            .chain(set.iter().copied())
            .max();
        if let Some(top) = top {
            missing.extend((0..=top).filter(|i| !set.contains(i)).map(|i| (*id, i)));
        }
    }
    assert!(
        got.is_empty(),
        "items from unknown producers: {:?}",
        got.keys()
    );
    assert!(
        missing.len() as u64 <= consumer_kills,
        "{} committed items lost ({:?}...), more than the {consumer_kills} a killed consumer may take",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    eprintln!(
        "sigkill loop: {} items delivered, {} in the hands of killed consumers, {} repairs after a death inside put/get",
        delivered.load(Ordering::Relaxed),
        missing.len(),
        q.recoveries()
    );
    assert!(q.put((0, 0)).unwrap_err().is_closed());
}

#[test]
fn consumers_killed_while_racing_for_items_lose_at_most_one_each() {
    // Consumers take no lock: they race for each item (copy, then claim by CAS).
    // Kill them over and over while three of them drain a full queue; every item
    // must still come out exactly once, except at most one per killed consumer,
    // and no death may need a repair.
    let _w = watchdog("consumer kill loop", Duration::from_secs(120));
    const N: u64 = 60_000;
    let mut rng = Rng::from_time("consumer kill loop");
    let q = Queue::<Item>::new().unwrap();
    for i in 0..N {
        q.put((0, i)).unwrap();
    }
    let delivered = Arc::new(AtomicU64::new(0));
    let mut consumers: Vec<Consumer> = (0..3).map(|_| start_consumer(&q, &delivered)).collect();
    let mut finished: Vec<Vec<Item>> = Vec::new();
    let mut kills = 0u64;
    for _ in 0..10 {
        if q.len() < 5_000 {
            break;
        }
        wait_for_traffic(&delivered, 200 + rng.below(1_000));
        let c = consumers.remove(rng.below(consumers.len() as u64) as usize);
        c.proc.kill().unwrap();
        assert!(
            killed(c.proc.join_timeout(Duration::from_secs(20))),
            "the killed consumer did not die of SIGKILL"
        );
        kills += 1;
        finished.push(c.reports.join().unwrap());
        consumers.push(start_consumer(&q, &delivered));
    }
    q.close();
    for c in consumers {
        c.proc.join_timeout(Duration::from_secs(60)).unwrap();
        finished.push(c.reports.join().unwrap());
    }
    assert!(q.is_empty(), "{} items left after the drain", q.len());
    let mut seen = HashSet::new();
    for items in &finished {
        let mut last = None;
        for &(_, i) in items {
            assert!(
                last.is_none_or(|l| l < i),
                "item {i} after {last:?} (order)"
            );
            last = Some(i);
            assert!(seen.insert(i), "item {i} twice");
        }
    }
    let missing = N - seen.len() as u64;
    assert!(
        missing <= kills,
        "{missing} items lost, more than the {kills} killed consumers may hold"
    );
    assert_eq!(q.recoveries(), 0, "a consumer's death needs no repair");
    eprintln!("consumer kill loop: {kills} kills, {missing} items went with them");
}

fn killed<R>(r: Result<R, JoinTimeoutError<R>>) -> bool {
    matches!(r, Err(JoinTimeoutError::Failed(ref e)) if e.signal() == Some(9))
}

fn hammer((q, n): (Queue<u64>, u64)) -> u64 {
    for i in 0..n {
        q.put(i).unwrap();
        let _ = q.try_get();
    }
    n
}

#[test]
fn kill_inside_the_lock_is_repaired() {
    // Processes that do nothing but put and get, so that most kills land inside
    // a put or a get; the queue must keep working for the survivors each time.
    let _w = watchdog("kill inside the lock", Duration::from_secs(120));
    let mut rng = Rng::from_time("kill inside the lock");
    let q = Queue::<u64>::bounded(16).unwrap();
    for _ in 0..20 {
        let a = Process::start(hammer, (q.clone(), u64::MAX)).unwrap();
        let b = Process::start(hammer, (q.clone(), u64::MAX)).unwrap();
        // Let them run into the thick of it (the queue fills and empties).
        let end = Instant::now() + Duration::from_millis(5 + rng.below(20));
        while Instant::now() < end {
            std::thread::park_timeout(Duration::from_millis(1));
        }
        a.kill().unwrap();
        b.kill().unwrap();
        assert!(killed(a.join_timeout(Duration::from_secs(20))));
        assert!(killed(b.join_timeout(Duration::from_secs(20))));
        // The survivor (this process) can still use both sides, within bounded time.
        while q.try_get().is_ok() {}
        q.put_timeout(7, Duration::from_secs(10)).unwrap();
        assert_eq!(q.get_timeout(Duration::from_secs(10)).unwrap(), 7);
        assert!(q.is_empty());
    }
    eprintln!(
        "kill inside the lock: {} repairs in 20 rounds",
        q.recoveries()
    );
}

/// With `RUSTFLAGS="--cfg mproc_fault"`: a child process aborts at every step of
/// the put and get protocols in turn (a crash exactly there), and the survivor
/// checks that the queue was repaired: committed items delivered once, in order,
/// uncommitted ones absent, one repair per death.
#[cfg(mproc_fault)]
mod at_every_step {
    use super::*;

    fn put_then_die((q, step, len): (Queue<Vec<u8>>, u32, usize)) {
        mproc::queue::__fault_at(step);
        let _ = q.put(vec![200; len]);
    }

    fn get_then_die((q, step): (Queue<Vec<u8>>, u32)) {
        mproc::queue::__fault_at(step);
        let _ = q.get();
    }

    fn setup(wrap: bool) -> (Queue<Vec<u8>>, Vec<Vec<u8>>) {
        let q = Queue::<Vec<u8>>::builder()
            .byte_capacity(4096)
            .max_message_size(1000)
            .build()
            .unwrap();
        let mut kept = Vec::new();
        if wrap {
            for i in 0..7u8 {
                q.put(vec![i; 500]).unwrap();
            }
            for i in 0..3u8 {
                assert_eq!(q.get().unwrap(), vec![i; 500]);
            }
            kept.extend((3..7u8).map(|i| vec![i; 500]));
        } else {
            for i in 0..3u8 {
                q.put(vec![i; 100]).unwrap();
                kept.push(vec![i; 100]);
            }
        }
        (q, kept)
    }

    fn died(r: Result<(), JoinTimeoutError<()>>) -> bool {
        matches!(r, Err(JoinTimeoutError::Failed(ref e)) if e.signal() == Some(6))
    }

    #[test]
    fn producer_aborts_at_every_step() {
        let _w = watchdog("abort at every put step", Duration::from_secs(120));
        for wrap in [false, true] {
            for step in 1..=8u32 {
                let (q, mut expected) = setup(wrap);
                let len = if wrap { 600 } else { 100 };
                let child = Process::start(put_then_die, (q.clone(), step, len)).unwrap();
                assert!(
                    died(child.join_timeout(Duration::from_secs(30))),
                    "step {step}"
                );
                q.put_timeout(vec![201; 50], Duration::from_secs(10))
                    .unwrap();
                assert_eq!(q.recoveries(), 1, "wrap={wrap} step={step}");
                if if wrap { step >= 6 } else { step >= 5 } {
                    expected.push(vec![200; len]);
                }
                expected.push(vec![201; 50]);
                let mut got = Vec::new();
                while let Ok(v) = q.try_get() {
                    got.push(v);
                }
                assert_eq!(got, expected, "wrap={wrap} step={step}");
            }
        }
    }

    #[test]
    fn consumer_aborts_at_every_step() {
        let _w = watchdog("abort at every get step", Duration::from_secs(120));
        for wrap in [false, true] {
            for step in 11..=14u32 {
                let (q, mut expected) = setup(wrap);
                let child = Process::start(get_then_die, (q.clone(), step)).unwrap();
                assert!(
                    died(child.join_timeout(Duration::from_secs(30))),
                    "step {step}"
                );
                if step >= 13 {
                    expected.remove(0);
                }
                let mut got = Vec::new();
                while let Ok(v) = q.try_get() {
                    got.push(v);
                }
                // A consumer holds no lock: its death leaves nothing to repair.
                assert_eq!(q.recoveries(), 0, "wrap={wrap} step={step}");
                assert_eq!(got, expected, "wrap={wrap} step={step}");
            }
        }
    }
}

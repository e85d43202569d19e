//! Queues between real processes: handles passed as arguments and through pipes,
//! several producers and consumers, close, JoinableQueue.

use std::collections::HashMap;
use std::time::Duration;

use mproc::pipe::{self, Receiver, Sender};
use mproc::process::Process;
use mproc::queue::{Bytes, JoinableQueue, Queue, SimpleQueue};

use crate::util::watchdog;

fn produce((q, id, n): (Queue<(u32, u64)>, u32, u64)) -> u64 {
    for i in 0..n {
        q.put((id, i)).unwrap();
    }
    n
}

fn consume(q: Queue<(u32, u64)>) -> Vec<(u32, u64)> {
    let mut got = Vec::new();
    while let Ok(item) = q.get() {
        got.push(item);
    }
    got
}

#[test]
fn producers_and_consumers_in_separate_processes() {
    let _w = watchdog("processes mpmc", Duration::from_secs(120));
    const N: u64 = 20_000;
    let q = Queue::<(u32, u64)>::bounded(128).unwrap();
    let consumers: Vec<_> = (0..2)
        .map(|_| Process::start(consume, q.clone()).unwrap())
        .collect();
    let producers: Vec<_> = (0..2u32)
        .map(|id| Process::start(produce, (q.clone(), id, N)).unwrap())
        .collect();
    for p in producers {
        assert_eq!(p.join_timeout(Duration::from_secs(60)).unwrap(), N);
    }
    q.close();
    let mut seen: HashMap<u32, Vec<u64>> = HashMap::new();
    for c in consumers {
        let got = c.join_timeout(Duration::from_secs(60)).unwrap();
        let mut last: HashMap<u32, u64> = HashMap::new();
        for (p, i) in got {
            if let Some(prev) = last.insert(p, i) {
                assert!(i > prev, "producer {p}: {i} after {prev}");
            }
            seen.entry(p).or_default().push(i);
        }
    }
    for id in 0..2 {
        let mut v = seen.remove(&id).unwrap_or_default();
        v.sort_unstable();
        assert_eq!(v.len() as u64, N, "producer {id}");
        assert!(
            v.iter().copied().eq(0..N),
            "producer {id}: lost or duplicated items"
        );
    }
    assert!(q.is_empty());
}

fn put_what_arrives(rx: Receiver<Queue<u32>>) -> u32 {
    let q = rx.recv().unwrap();
    for i in 0..100 {
        q.put(i).unwrap();
    }
    100
}

#[test]
fn a_handle_sent_through_a_pipe_to_a_child() {
    let _w = watchdog("handle through pipe", Duration::from_secs(60));
    let (tx, rx) = pipe::simplex::<Queue<u32>>().unwrap();
    let child = Process::start(put_what_arrives, rx).unwrap();
    let q = Queue::<u32>::bounded(10).unwrap();
    tx.send(&q).unwrap();
    let got: Vec<u32> = (0..100)
        .map(|_| q.get_timeout(Duration::from_secs(30)).unwrap())
        .collect();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    assert_eq!(child.join_timeout(Duration::from_secs(30)).unwrap(), 100);
}

fn worker(q: JoinableQueue<u64>) -> u64 {
    let mut sum = 0;
    while let Ok(x) = q.get() {
        sum += x;
        q.task_done().unwrap();
    }
    sum
}

#[test]
fn joinable_queue_across_processes() {
    let _w = watchdog("joinable processes", Duration::from_secs(60));
    let q = JoinableQueue::<u64>::bounded(16).unwrap();
    let workers: Vec<_> = (0..2)
        .map(|_| Process::start(worker, q.clone()).unwrap())
        .collect();
    for x in 1..=1000 {
        q.put(x).unwrap();
    }
    q.join_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(q.unfinished(), 0);
    q.close();
    let total: u64 = workers
        .into_iter()
        .map(|w| w.join_timeout(Duration::from_secs(30)).unwrap())
        .sum();
    assert_eq!(total, 500_500);
}

fn wait_for_close(q: SimpleQueue<u8>) -> String {
    match q.get() {
        Ok(x) => format!("got {x}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn close_wakes_a_consumer_in_another_process() {
    let _w = watchdog("close across processes", Duration::from_secs(60));
    let q = SimpleQueue::<u8>::new().unwrap();
    let child = Process::start(wait_for_close, q.clone()).unwrap();
    // Whether the child is already asleep or not, it must end with Closed.
    std::thread::sleep(Duration::from_millis(100));
    q.close();
    assert_eq!(
        child.join_timeout(Duration::from_secs(30)).unwrap(),
        "the queue is closed and empty"
    );
}

fn echo_big((q_in, q_out): (Queue<Bytes>, Queue<Bytes>)) -> usize {
    let mut n = 0;
    while let Ok(b) = q_in.get() {
        n += b.len();
        q_out.put(b).unwrap();
    }
    n
}

#[test]
fn large_items_cross_and_come_back_intact() {
    let _w = watchdog("large items", Duration::from_secs(60));
    let a = Queue::<Bytes>::bounded(4).unwrap();
    let b = Queue::<Bytes>::bounded(4).unwrap();
    let child = Process::start(echo_big, (a.clone(), b.clone())).unwrap();
    let mut total = 0;
    for i in 0..32usize {
        let len = (i * 97_531) % (3 << 20);
        let item: Vec<u8> = (0..len).map(|j| (j * 31 + i) as u8).collect();
        a.put(Bytes::from(item.clone())).unwrap();
        let back = b.get_timeout(Duration::from_secs(30)).unwrap();
        assert!(back.0 == item, "item {i} of {len} bytes changed in transit");
        total += len;
    }
    a.close();
    assert_eq!(child.join_timeout(Duration::from_secs(30)).unwrap(), total);
}

fn report_pid(tx: Sender<u32>) {
    tx.send(&std::process::id()).unwrap();
}

#[test]
fn a_sender_passed_as_an_argument() {
    let (tx, rx) = pipe::simplex::<u32>().unwrap();
    let child = Process::start(report_pid, tx).unwrap();
    let pid = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(pid, child.pid());
    child.join_timeout(Duration::from_secs(30)).unwrap();
}

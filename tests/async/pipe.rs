//! Pipe `send_async`/`recv_async` across processes.

use std::sync::atomic::Ordering;
use std::time::Duration;

use mproc::pipe::{self, Connection, Receiver, Sender};
use mproc::process::Process;

use crate::{Flavor, each_runtime, runtime, ticker, watchdog};

/// A child with its own current-thread runtime echoing `n + 1` until the pipe
/// closes: async on both sides of the pipe.
fn async_echo(conn: Connection<u64>) -> u64 {
    let rt = runtime(Flavor::CurrentThread);
    rt.block_on(async {
        let mut served = 0;
        while let Ok(n) = conn.recv_async().await {
            conn.send_async(&(n + 1)).await.unwrap();
            served += 1;
        }
        served
    })
}

#[test]
fn ping_pong_with_an_async_child() {
    each_runtime("pipe ping-pong", |_| async {
        let (mine, theirs) = pipe::duplex::<u64>().unwrap();
        let child = Process::start(async_echo, theirs).unwrap();
        for i in 0..200u64 {
            mine.send_async(&i).await.unwrap();
            assert_eq!(mine.recv_async().await.unwrap(), i + 1);
        }
        drop(mine);
        assert_eq!(child.join_async().await.unwrap(), 200);
    });
}

fn send_numbers(args: (Sender<u64>, u64)) {
    let (tx, n) = args;
    for i in 0..n {
        tx.send(&i).unwrap();
    }
}

/// Receives cancelled at random points, many times: every message arrives once,
/// in order.
#[test]
fn cancelled_recv_loses_nothing() {
    each_runtime("pipe cancelled recv", |_| async {
        const N: u64 = 5_000;
        let (tx, rx) = pipe::simplex::<u64>().unwrap();
        let child = Process::start(send_numbers, (tx, N)).unwrap();
        let mut next = 0;
        let mut cancelled = 0u32;
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        while next < N {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let limit = Duration::from_micros(seed % 50);
            match tokio::time::timeout(limit, rx.recv_async()).await {
                Ok(got) => {
                    assert_eq!(got.unwrap(), next, "seed {seed}");
                    next += 1;
                }
                Err(_) => cancelled += 1,
            }
        }
        child.join_async().await.unwrap();
        assert!(rx.recv_async().await.unwrap_err().is_closed());
        eprintln!("{cancelled} receives cancelled");
    });
}

/// Reads whole messages until the final one (tag 0xff); returns their tags.
fn read_tags(rx: Receiver<Vec<u8>>) -> Vec<u8> {
    let mut got = Vec::new();
    loop {
        let v = rx.recv().unwrap();
        // Whole messages only: every byte is the message's tag.
        assert!(v.iter().all(|&b| b == v[0]), "a torn message");
        got.push(v[0]);
        if v[0] == 0xff {
            return got;
        }
    }
}

/// Sends of messages larger than the socket's buffer, cancelled at random points:
/// the reader sees whole messages only, in order, every completed one among them.
#[test]
fn cancelled_send_never_tears_a_message() {
    each_runtime("pipe cancelled send", |_| async {
        const SIZE: usize = 256 << 10;
        let (tx, rx) = pipe::simplex::<Vec<u8>>().unwrap();
        let child = Process::start(read_tags, rx).unwrap();
        let mut completed = Vec::new();
        let mut cancelled = 0;
        for tag in 0..60u8 {
            let msg = vec![tag; SIZE];
            let limit = Duration::from_micros(50 + 40 * u64::from(tag % 8));
            match tokio::time::timeout(limit, tx.send_async(&msg)).await {
                Ok(r) => {
                    r.unwrap();
                    completed.push(tag);
                }
                Err(_) => cancelled += 1,
            }
        }
        tx.send_async(&vec![0xff; SIZE]).await.unwrap();
        let got = child.join_async().await.unwrap();
        assert_eq!(got.last(), Some(&0xff));
        assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order: {got:?}");
        for tag in &completed {
            assert!(
                got.contains(tag),
                "completed send {tag} never arrived: {got:?}"
            );
        }
        eprintln!("{cancelled} sends cancelled, {} arrived", got.len());
    });
}

/// A peer killed while `recv_async` waits: `Closed`, not a hang.
#[test]
fn peer_killed_while_recv_waits() {
    each_runtime("pipe peer killed", |_| async {
        let (tx, rx) = pipe::simplex::<u32>().unwrap();
        let child = Process::start(
            |tx: Sender<u32>| {
                tx.send(&1).unwrap();
                std::thread::sleep(Duration::from_secs(60));
            },
            tx,
        )
        .unwrap();
        assert_eq!(rx.recv_async().await.unwrap(), 1);
        let pid = child.pid();
        let killer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            child.kill().unwrap();
            child
        });
        let err = rx.recv_async().await.unwrap_err();
        assert!(err.is_closed(), "{err} (child {pid})");
        assert!(
            killer
                .await
                .unwrap()
                .join_async()
                .await
                .unwrap_err()
                .is_signaled()
        );
    });
}

/// `recv_async` waiting a second on a current-thread runtime: the ticker ticks.
#[test]
fn recv_async_never_blocks_a_current_thread_runtime() {
    let _w = watchdog("pipe ticking", Duration::from_secs(60));
    let rt = runtime(Flavor::CurrentThread);
    rt.block_on(async {
        let ticks = ticker(Duration::from_millis(10));
        let (tx, rx) = pipe::simplex::<u8>().unwrap();
        let child = Process::start(
            |tx: Sender<u8>| {
                std::thread::sleep(Duration::from_secs(1));
                tx.send(&9).unwrap();
            },
            tx,
        )
        .unwrap();
        tokio::task::yield_now().await;
        let before = ticks.load(Ordering::Relaxed);
        assert_eq!(rx.recv_async().await.unwrap(), 9);
        let during = ticks.load(Ordering::Relaxed) - before;
        assert!(
            during >= 10,
            "only {during} ticks while recv_async waited 1 s"
        );
        child.join_async().await.unwrap();
    });
}

/// Dropping a runtime with receives and joins pending returns, and the pending
/// operations took nothing: the message sent afterwards is received.
#[test]
fn runtime_shutdown_with_pending_operations() {
    let _w = watchdog("pipe shutdown", Duration::from_secs(60));
    for flavor in [Flavor::CurrentThread, Flavor::MultiThread] {
        let (tx, rx) = pipe::simplex::<u32>().unwrap();
        let rx = std::sync::Arc::new(rx);
        // The child ends when `ctl` closes.
        let (ctl, ctl_rx) = pipe::simplex::<u8>().unwrap();
        let child = Process::start(
            |rx: Receiver<u8>| {
                let _ = rx.recv();
            },
            ctl_rx,
        )
        .unwrap();
        let rt = runtime(flavor);
        let started = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for _ in 0..4 {
            let rx = std::sync::Arc::clone(&rx);
            let started = std::sync::Arc::clone(&started);
            rt.spawn(async move {
                started.fetch_add(1, Ordering::SeqCst);
                let _ = rx.recv_async().await;
                panic!("nothing was sent");
            });
        }
        let s = std::sync::Arc::clone(&started);
        rt.spawn(async move {
            s.fetch_add(1, Ordering::SeqCst);
            let _ = child.join_async().await;
        });
        // Drive the runtime until every task is parked in its operation.
        rt.block_on(async {
            while started.load(Ordering::SeqCst) < 5 {
                tokio::task::yield_now().await;
            }
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        });
        rt.shutdown_timeout(Duration::from_secs(10));
        tx.send(&5).unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(30)).unwrap(),
            5,
            "{flavor:?}"
        );
        drop(ctl);
    }
}

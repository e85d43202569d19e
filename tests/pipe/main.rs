//! Tests of `mproc::pipe`: every method in one process, then between real
//! processes, including a peer killed mid-message.
#![cfg(not(miri))]

mod connection_wait;
mod issue_10;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mproc::pipe::{
    self, Connection, Pipe, Receiver, RecvError, RecvTimeoutError, SendError, Sender, TryRecvError,
};
use mproc::process::{JoinTimeoutError, Process};
use mproc::queue::{Bytes, Queue};

/// Aborts the test binary with a message unless dropped within `limit`.
struct Watchdog(Option<mpsc::Sender<()>>);

fn watchdog(what: &str, limit: Duration) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    let what = what.to_string();
    thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            // Straight to fd 2: the test harness's output capture would swallow eprintln.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "watchdog: '{what}' still running after {limit:?}; aborting"
            );
            std::process::abort();
        }
    });
    Watchdog(Some(tx))
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

// ---- one process --------------------------------------------------------------

#[test]
fn duplex_both_ways_and_typed_directions() {
    let (a, b) = pipe::duplex::<String>().unwrap();
    a.send(&"to b".to_string()).unwrap();
    b.send(&"to a".to_string()).unwrap();
    assert_eq!(b.recv().unwrap(), "to b");
    assert_eq!(a.recv().unwrap(), "to a");

    let (client, server) = Pipe::new().duplex::<(u32, u32), u64>().unwrap();
    client.send(&(6, 7)).unwrap();
    let (x, y) = server.recv().unwrap();
    server.send(&(u64::from(x) * u64::from(y))).unwrap();
    assert_eq!(client.recv().unwrap(), 42);
}

#[test]
fn simplex_and_messages_in_order() {
    let _w = watchdog("simplex", Duration::from_secs(30));
    let (tx, rx) = pipe::simplex::<u32>().unwrap();
    // (A sender waits while the socket's buffer is full, so send from a thread.)
    let sender = thread::spawn(move || {
        for i in 0..10_000 {
            tx.send(&i).unwrap();
        }
    });
    for i in 0..10_000 {
        assert_eq!(rx.recv().unwrap(), i);
    }
    sender.join().unwrap();
    assert!(matches!(rx.recv(), Err(RecvError::Closed)));
}

#[test]
fn bytes_and_decode_errors_leave_the_pipe_usable() {
    let (a, b) = pipe::duplex::<u64>().unwrap();
    a.send_bytes(b"").unwrap();
    a.send_bytes(&[1, 2, 3]).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"");
    assert_eq!(b.recv_bytes().unwrap(), [1, 2, 3]);
    // Bytes that are not a u64: a decode error, then the next message is fine.
    a.send_bytes(&[0xff]).unwrap();
    a.send(&9).unwrap();
    let err = b.recv().unwrap_err();
    assert!(matches!(err, RecvError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("cannot decode"), "{err}");
    assert_eq!(b.recv().unwrap(), 9);
    // A value read as bytes is its encoding.
    a.send(&300).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), [0xac, 0x02]);
}

#[test]
fn poll_try_recv_and_timeouts() {
    let _w = watchdog("poll", Duration::from_secs(30));
    let (a, b) = pipe::duplex::<u8>().unwrap();
    assert!(!b.poll(Duration::ZERO));
    assert!(matches!(b.try_recv(), Err(TryRecvError::Empty)));
    let t = Instant::now();
    assert!(matches!(
        b.recv_timeout(Duration::from_millis(30)),
        Err(RecvTimeoutError::Timeout)
    ));
    assert!(t.elapsed() >= Duration::from_millis(30));
    assert!(b.recv_deadline(Instant::now()).unwrap_err().is_timeout());
    assert!(
        b.recv_bytes_timeout(Duration::from_millis(1))
            .unwrap_err()
            .is_timeout()
    );
    a.send(&5).unwrap();
    assert!(b.poll(Duration::from_secs(5)));
    assert!(b.poll(Duration::ZERO)); // still there until received
    assert_eq!(b.try_recv().unwrap(), 5);
    // A message arriving during a wait ends it.
    let h = thread::spawn(move || {
        b.recv_timeout(Duration::from_secs(10))
            .map_err(|e| e.to_string())
    });
    thread::sleep(Duration::from_millis(20));
    a.send(&6).unwrap();
    assert_eq!(h.join().unwrap(), Ok(6));
    // poll reports a closed peer as readable, so that recv reports it.
    let (c, d) = pipe::duplex::<u8>().unwrap();
    drop(c);
    assert!(d.poll(Duration::from_secs(5)));
    assert!(d.try_recv().unwrap_err().is_closed());
    assert!(
        d.recv_timeout(Duration::from_secs(5))
            .unwrap_err()
            .is_closed()
    );
}

#[test]
fn a_closed_peer_is_an_error_never_sigpipe() {
    let (a, b) = pipe::duplex::<Vec<u8>>().unwrap();
    a.send(&vec![1; 10]).unwrap();
    drop(a);
    assert_eq!(b.recv().unwrap(), vec![1; 10]); // what was sent arrives first
    assert!(b.recv().unwrap_err().is_closed());
    assert!(matches!(b.send(&vec![2; 1 << 20]), Err(SendError::Closed)));
    assert!(b.send_bytes(b"x").unwrap_err().is_closed());
    let (tx, rx) = pipe::simplex::<u8>().unwrap();
    drop(rx);
    assert!(tx.send(&1).unwrap_err().is_closed());
}

#[test]
fn size_limits_on_both_sides() {
    let _w = watchdog("size limits", Duration::from_secs(30));
    let (a, b) = Pipe::new()
        .max_message_size(100)
        .duplex::<Bytes, Bytes>()
        .unwrap();
    // Refused before anything is written.
    let err = a.send(&Bytes::from(vec![0; 200])).unwrap_err();
    let why = err.message_error().unwrap();
    assert_eq!((why.size(), why.limit()), (Some(202), Some(100)));
    assert!(
        err.to_string()
            .contains("202 bytes is over the limit of 100"),
        "{err}"
    );
    assert!(
        a.send_bytes(&[0; 101])
            .unwrap_err()
            .message_error()
            .is_some()
    );
    assert!(!b.poll(Duration::ZERO));
    // The receiver's own limit: a bigger message is skipped (bytes and
    // descriptors), reported, and the next message arrives intact.
    a.set_max_message_size(1 << 20);
    b.set_max_message_size(1000);
    let q = Queue::<u8>::new().unwrap();
    let (with_fd_tx, with_fd_rx) = pipe::simplex::<(Queue<u8>, Bytes)>().unwrap();
    with_fd_rx.set_max_message_size(50);
    let before = open_fds();
    with_fd_tx
        .send(&(q.clone(), Bytes::from(vec![9; 500])))
        .unwrap();
    with_fd_tx
        .send(&(q.clone(), Bytes::from(vec![8; 5])))
        .unwrap();
    let e = with_fd_rx.recv().unwrap_err();
    assert!(e.message_error().unwrap().is_too_large(), "{e}");
    let (q2, small) = with_fd_rx.recv().unwrap();
    assert_eq!(small.0, vec![8; 5]);
    drop(q2);
    assert_eq!(
        open_fds(),
        before,
        "the skipped message's descriptor was not closed"
    );

    let sender = thread::spawn(move || {
        a.send_bytes(&vec![7u8; 300_000]).unwrap(); // more than the socket buffers
        a.send(&Bytes::from(vec![1, 2, 3])).unwrap();
        a
    });
    let err = b.recv().unwrap_err();
    assert_eq!(err.message_error().unwrap().size(), Some(300_000));
    assert_eq!(b.recv().unwrap().0, vec![1, 2, 3]);
    assert_eq!(b.max_message_size(), 1000);
    sender.join().unwrap();
}

#[test]
fn large_messages_arrive_whole() {
    let _w = watchdog("large", Duration::from_secs(60));
    let (a, b) = pipe::duplex::<Bytes>().unwrap();
    let sender = thread::spawn(move || {
        for i in 0..8u8 {
            let v: Vec<u8> = (0..(3 << 20) + i as usize).map(|j| (j as u8) ^ i).collect();
            a.send(&Bytes::from(v)).unwrap();
        }
        a
    });
    for i in 0..8u8 {
        let v = b.recv().unwrap();
        assert_eq!(v.len(), (3 << 20) + i as usize);
        assert!(
            v.iter().enumerate().all(|(j, &x)| x == (j as u8) ^ i),
            "message {i}"
        );
    }
    let a = sender.join().unwrap();
    // try_recv sees Empty while a large message is half-way, then the message.
    let writer = thread::spawn(move || a.send_bytes(&vec![5u8; 8 << 20]).map(|_| a));
    let mut empties = 0;
    let got = loop {
        match b.recv_bytes_timeout(Duration::from_millis(1)) {
            Ok(v) => break v,
            Err(RecvTimeoutError::Timeout) => empties += 1,
            Err(e) => panic!("{e}"),
        }
        assert!(empties < 100_000);
    };
    assert_eq!(got.len(), 8 << 20);
    assert!(got.iter().all(|&x| x == 5));
    writer.join().unwrap().unwrap();
}

#[test]
fn concurrent_senders_on_one_end_do_not_interleave() {
    let _w = watchdog("concurrent", Duration::from_secs(60));
    let (a, b) = pipe::duplex::<Bytes>().unwrap();
    let a = std::sync::Arc::new(a);
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let a = a.clone();
            thread::spawn(move || {
                for i in 0..50usize {
                    a.send(&Bytes::from(vec![t; 1000 + i * 997])).unwrap();
                }
            })
        })
        .collect();
    for _ in 0..200 {
        let v = b.recv().unwrap();
        assert!(v.iter().all(|&x| x == v[0]), "interleaved frames");
    }
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn pipe_ends_travel_through_pipes_with_their_unread_messages() {
    let (a, b) = pipe::duplex::<u32>().unwrap();
    for i in 1..=3 {
        a.send(&i).unwrap();
    }
    // `b` reads all three from the socket into its buffer, and hands out one.
    assert_eq!(b.recv().unwrap(), 1);
    let (tx, rx) = pipe::simplex::<Connection<u32>>().unwrap();
    tx.send(&b).unwrap();
    drop(b);
    let b2 = rx.recv().unwrap();
    assert_eq!(b2.recv().unwrap(), 2);
    assert_eq!(b2.recv().unwrap(), 3);
    b2.send(&4).unwrap();
    assert_eq!(a.recv().unwrap(), 4);
    // Simplex ends too.
    let (s, r) = pipe::simplex::<String>().unwrap();
    let (tx, rx) = pipe::simplex::<(Sender<String>, Receiver<String>)>().unwrap();
    tx.send(&(s, r)).unwrap();
    let (s2, r2) = rx.recv().unwrap();
    s2.send(&"round trip".into()).unwrap();
    assert_eq!(r2.recv().unwrap(), "round trip");
}

#[test]
fn nothing_leaks() {
    let before = open_fds();
    for _ in 0..100 {
        let (a, b) = pipe::duplex::<Queue<u8>>().unwrap();
        a.send(&Queue::new().unwrap()).unwrap();
        let q = b.recv().unwrap();
        q.put(1).unwrap();
        let _ = b.recv_timeout(Duration::ZERO);
    }
    assert_eq!(open_fds(), before);
}

// ---- between processes ----------------------------------------------------------

fn echo(conn: Connection<u64>) -> u64 {
    let mut n = 0;
    while let Ok(x) = conn.recv() {
        if conn.send(&(x + 1)).is_err() {
            break;
        }
        n += 1;
    }
    n
}

#[test]
fn ping_pong_with_a_child() {
    let _w = watchdog("ping-pong", Duration::from_secs(60));
    let (here, there) = pipe::duplex::<u64>().unwrap();
    let child = Process::start(echo, there).unwrap();
    let mut x = 0;
    for _ in 0..2000 {
        here.send(&x).unwrap();
        x = here.recv_timeout(Duration::from_secs(20)).unwrap();
    }
    assert_eq!(x, 2000);
    drop(here);
    assert_eq!(child.join_timeout(Duration::from_secs(20)).unwrap(), 2000);
}

fn send_forever(tx: Sender<Bytes>) {
    let big = Bytes::from(vec![3u8; 4 << 20]);
    loop {
        if tx.send(&big).is_err() {
            return;
        }
    }
}

#[test]
fn a_peer_killed_mid_message_gives_closed_not_half_a_message() {
    let _w = watchdog("killed mid-message", Duration::from_secs(60));
    let (tx, rx) = pipe::simplex::<Bytes>().unwrap();
    let child = Process::start(send_forever, tx).unwrap();
    // Read a few whole messages, start on the next one, then kill the sender.
    for _ in 0..3 {
        let v = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(v.len(), 4 << 20);
    }
    child.kill().unwrap();
    assert!(matches!(
        child.join_timeout(Duration::from_secs(20)),
        Err(JoinTimeoutError::Failed(ref e)) if e.signal() == Some(9)
    ));
    // Whole messages it completed may still arrive; then Closed, never a hang or a
    // truncated message.
    loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(v) => assert_eq!(v.len(), 4 << 20),
            Err(RecvTimeoutError::Closed) => break,
            Err(e) => panic!("{e}"),
        }
    }
}

fn hang(_conn: Connection<u8>) {
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn a_blocked_recv_ends_when_the_peer_process_dies() {
    let _w = watchdog("blocked recv", Duration::from_secs(60));
    let (here, there) = pipe::duplex::<u8>().unwrap();
    let child = Process::start(hang, there).unwrap();
    let pid = child.pid();
    let waiter = thread::spawn(move || here.recv().map_err(|e| e.is_closed()));
    child.kill().unwrap();
    let _ = child.join_timeout(Duration::from_secs(20));
    assert_eq!(waiter.join().unwrap(), Err(true), "pid {pid}");
}

fn relay((rx, out): (Receiver<Receiver<u32>>, Sender<u32>)) -> u32 {
    let inner = rx.recv().unwrap();
    let mut sum = 0;
    while let Ok(x) = inner.recv() {
        sum += x;
    }
    out.send(&sum).unwrap();
    sum
}

#[test]
fn a_pipe_end_sent_to_a_child_through_a_pipe() {
    let _w = watchdog("end through pipe", Duration::from_secs(60));
    let (handoff_tx, handoff_rx) = pipe::simplex::<Receiver<u32>>().unwrap();
    let (out_tx, out_rx) = pipe::simplex::<u32>().unwrap();
    let child = Process::start(relay, (handoff_rx, out_tx)).unwrap();
    let (data_tx, data_rx) = pipe::simplex::<u32>().unwrap();
    handoff_tx.send(&data_rx).unwrap();
    drop(data_rx); // only the child reads it now
    for x in 1..=100 {
        data_tx.send(&x).unwrap();
    }
    drop(data_tx);
    assert_eq!(out_rx.recv_timeout(Duration::from_secs(20)).unwrap(), 5050);
    assert_eq!(child.join_timeout(Duration::from_secs(20)).unwrap(), 5050);
}

//! Pipe scenarios: `_TestConnection` and `_TestPoll` of `_test_multiprocessing.py`.

use std::time::Duration;

use mproc::pipe::{self, Connection, Pipe, Receiver, RecvError, SendError, Sender};
use mproc::process::Process;
use mproc::queue::Queue;

use crate::common::watchdog;
use crate::{LIMIT, LONG};

/// Echoes every value back until the other end closes; returns how many.
fn echo(conn: Connection<Vec<u32>>) -> usize {
    let mut n = 0;
    while let Ok(v) = conn.recv() {
        conn.send(&v).unwrap();
        n += 1;
    }
    n
}

/// Echoes raw messages until the other end closes.
fn echo_bytes(conn: Connection<()>) -> usize {
    let mut n = 0;
    while let Ok(b) = conn.recv_bytes() {
        conn.send_bytes(&b).unwrap();
        n += 1;
    }
    n
}

/// `_TestConnection.test_connection`: values go to a child and back; `poll` is
/// false before anything arrives and true after.
#[test]
fn test_connection() {
    let _w = watchdog("test_connection", LIMIT);
    let (a, b) = pipe::duplex::<Vec<u32>>().unwrap();
    let child = Process::start(echo, b).unwrap();
    assert!(!a.poll(Duration::ZERO));
    let seq = vec![1, 2, 3];
    a.send(&seq).unwrap();
    assert!(a.poll(LONG));
    assert_eq!(a.recv().unwrap(), seq);
    a.send(&vec![]).unwrap();
    assert_eq!(a.recv_timeout(LONG).unwrap(), Vec::<u32>::new());
    drop(a);
    assert_eq!(child.join().unwrap(), 2);
}

/// `_TestConnection.test_connection` (the two directions carry different types).
#[test]
fn test_connection_typed_directions() {
    let _w = watchdog("test_connection_typed_directions", LIMIT);
    let (a, b) = Pipe::new().duplex::<u32, String>().unwrap();
    let child = Process::start(
        |c: Connection<String, u32>| {
            let n = c.recv().unwrap();
            c.send(&"x".repeat(n as usize)).unwrap();
        },
        b,
    )
    .unwrap();
    a.send(&3).unwrap();
    assert_eq!(a.recv_timeout(LONG).unwrap(), "xxx");
    child.join().unwrap();
}

/// `_TestConnection.test_duplex_false`: a one-way pipe carries messages from the
/// writer (in a child) to the reader.
#[test]
fn test_duplex_false() {
    let _w = watchdog("test_duplex_false", LIMIT);
    let (tx, rx) = pipe::simplex::<String>().unwrap();
    let child = Process::start(
        |tx: Sender<String>| {
            tx.send(&"hello".to_string()).unwrap();
            tx.send(&"world".to_string()).unwrap();
        },
        tx,
    )
    .unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap(), "hello");
    assert_eq!(rx.recv_timeout(LONG).unwrap(), "world");
    child.join().unwrap();
    assert!(rx.recv_timeout(LONG).unwrap_err().is_closed());
}

/// `_TestConnection.test_spawn_close`: a child that closes its end (by exiting)
/// gives the parent every message it sent, then end-of-file.
#[test]
fn test_spawn_close() {
    let _w = watchdog("test_spawn_close", LIMIT);
    let (a, b) = pipe::duplex::<u8>().unwrap();
    let child = Process::start(
        |c: Connection<u8>| {
            c.send(&1).unwrap();
            c.send(&2).unwrap();
        },
        b,
    )
    .unwrap();
    child.join().unwrap();
    assert_eq!(a.recv().unwrap(), 1);
    assert_eq!(a.recv().unwrap(), 2);
    assert!(matches!(a.recv(), Err(RecvError::Closed)));
    assert!(matches!(a.send(&3), Err(SendError::Closed)));
}

/// `_TestConnection.test_spawn_close` (the child is killed): the survivor gets
/// "closed", never a hang.
#[test]
fn test_spawn_close_killed_peer() {
    let _w = watchdog("test_spawn_close_killed_peer", LIMIT);
    let (a, b) = pipe::duplex::<u8>().unwrap();
    let child = Process::start(
        |c: Connection<u8>| {
            c.send(&1).unwrap();
            std::thread::sleep(Duration::from_secs(60));
        },
        b,
    )
    .unwrap();
    assert_eq!(a.recv_timeout(LONG).unwrap(), 1);
    child.kill().unwrap();
    assert!(child.join().unwrap_err().is_signaled());
    assert!(a.recv_timeout(LONG).unwrap_err().is_closed());
}

/// `_TestConnection.test_sendbytes`: raw messages of many sizes, empty included,
/// go through a child and back unchanged.
#[test]
fn test_sendbytes() {
    let _w = watchdog("test_sendbytes", LIMIT);
    let (a, b) = pipe::duplex::<()>().unwrap();
    let child = Process::start(echo_bytes, b).unwrap();
    for size in [0usize, 1, 7, 4096, 65_537, 1 << 20] {
        let msg: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        a.send_bytes(&msg).unwrap();
        assert_eq!(a.recv_bytes().unwrap(), msg, "size {size}");
    }
    drop(a);
    assert_eq!(child.join().unwrap(), 6);
}

/// `_TestConnection.test_sendbytes` (a message over the receiver's limit raises):
/// it is refused with its size, skipped, and the pipe goes on.
#[test]
fn test_sendbytes_too_long() {
    let (tx, rx) = pipe::simplex::<()>().unwrap();
    rx.set_max_message_size(16);
    tx.send_bytes(&[0; 100]).unwrap();
    tx.send_bytes(b"fits").unwrap();
    let err = rx.recv_bytes().unwrap_err();
    assert!(err.message_error().unwrap().is_too_large());
    assert_eq!(rx.recv_bytes().unwrap(), b"fits");
}

/// `_TestConnection.test_sendbytes` (sender side): a message over the sender's own
/// limit is refused before anything is written.
#[test]
fn test_send_too_long_refused_before_writing() {
    let (tx, rx) = Pipe::new()
        .max_message_size(8)
        .simplex::<Vec<u8>>()
        .unwrap();
    let err = tx.send(&vec![0; 100]).unwrap_err();
    assert!(err.message_error().unwrap().is_too_large());
    assert!(rx.try_recv().unwrap_err().is_empty());
    tx.send(&vec![1]).unwrap();
    assert_eq!(rx.recv().unwrap(), vec![1]);
}

/// `_TestConnection.test_fd_transfer`: a handle (here a queue) inside a message
/// travels to a child, which uses it.
#[test]
fn test_fd_transfer() {
    let _w = watchdog("test_fd_transfer", LIMIT);
    let (tx, rx) = pipe::simplex::<(String, Queue<String>)>().unwrap();
    let child = Process::start(
        |rx: Receiver<(String, Queue<String>)>| {
            let (word, q) = rx.recv_timeout(LONG).unwrap();
            q.put(word.to_uppercase()).unwrap();
        },
        rx,
    )
    .unwrap();
    let q: Queue<String> = Queue::new().unwrap();
    tx.send(&("foo".to_string(), q.clone())).unwrap();
    assert_eq!(q.get_timeout(LONG).unwrap(), "FOO");
    child.join().unwrap();
}

/// `_TestConnection.test_fd_transfer` (a pipe end through a pipe): the child gets a
/// connection over another connection and talks on it.
#[test]
fn test_connection_transfer() {
    let _w = watchdog("test_connection_transfer", LIMIT);
    let (ctl_tx, ctl_rx) = pipe::simplex::<Connection<u32>>().unwrap();
    let (near, far) = pipe::duplex::<u32>().unwrap();
    let child = Process::start(
        |rx: Receiver<Connection<u32>>| {
            let conn = rx.recv_timeout(LONG).unwrap();
            let x = conn.recv_timeout(LONG).unwrap();
            conn.send(&(x + 1)).unwrap();
        },
        ctl_rx,
    )
    .unwrap();
    ctl_tx.send(&far).unwrap();
    drop(far);
    near.send(&41).unwrap();
    assert_eq!(near.recv_timeout(LONG).unwrap(), 42);
    child.join().unwrap();
}

/// `_TestConnection.test_context`: dropping an end (leaving `with`) closes it.
#[test]
fn test_context() {
    let (a, b) = pipe::duplex::<u8>().unwrap();
    {
        let _scoped = a;
    }
    assert!(b.recv().unwrap_err().is_closed());
    assert!(matches!(b.send(&1), Err(SendError::Closed)));
}

/// `_TestPoll.test_empty_string`: an empty message makes `poll` true and is
/// received as empty; then `poll` is false.
#[test]
fn test_empty_string() {
    let (a, b) = pipe::duplex::<()>().unwrap();
    assert!(!a.poll(Duration::ZERO));
    b.send_bytes(b"").unwrap();
    assert!(a.poll(LONG));
    assert_eq!(a.recv_bytes().unwrap(), b"");
    assert!(!a.poll(Duration::ZERO));
}

/// `_TestPoll.test_strings`: a child sends several messages (some empty); each is
/// announced by `poll` and received whole, in order.
#[test]
fn test_strings() {
    let _w = watchdog("test_strings", LIMIT);
    let strings: Vec<Vec<u8>> = vec![
        b"hello".to_vec(),
        b"".to_vec(),
        b"a".to_vec(),
        b"b".to_vec(),
        b"".to_vec(),
        b"bye".to_vec(),
        b"".to_vec(),
        b"lop".to_vec(),
    ];
    let (tx, rx) = pipe::simplex::<()>().unwrap();
    let child = Process::start(
        |(tx, strings): (Sender<()>, Vec<Vec<u8>>)| {
            for s in strings {
                tx.send_bytes(&s).unwrap();
            }
        },
        (tx, strings.clone()),
    )
    .unwrap();
    for s in &strings {
        assert!(rx.poll(LONG));
        assert_eq!(&rx.recv_bytes_timeout(LONG).unwrap(), s);
    }
    child.join().unwrap();
}

/// `_TestPoll.test_boundaries`: two messages sent back to back are received as
/// two messages of the right sizes.
#[test]
fn test_boundaries() {
    let (tx, rx) = pipe::simplex::<()>().unwrap();
    tx.send_bytes(&[b'a'; 30]).unwrap();
    tx.send_bytes(&[b'b'; 10]).unwrap();
    assert_eq!(rx.recv_bytes().unwrap(), vec![b'a'; 30]);
    assert_eq!(rx.recv_bytes().unwrap(), vec![b'b'; 10]);
}

/// `_TestPoll.test_dont_merge`: messages are not merged, even when many are
/// waiting.
#[test]
fn test_dont_merge() {
    let (a, b) = pipe::duplex::<()>().unwrap();
    a.send_bytes(b"a").unwrap();
    a.send_bytes(b"").unwrap();
    a.send_bytes(b"bc").unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"a");
    assert!(b.poll(Duration::ZERO));
    assert_eq!(b.recv_bytes().unwrap(), b"");
    assert_eq!(b.recv_bytes().unwrap(), b"bc");
    assert!(!b.poll(Duration::ZERO));
}

/// `TestTimeouts.test_timeout`-style for pipes: `recv` with a timeout on a quiet
/// pipe times out and the pipe stays usable; `Duration::MAX` means no deadline.
#[test]
fn test_recv_timeout() {
    let (a, b) = pipe::duplex::<u8>().unwrap();
    assert!(
        b.recv_timeout(Duration::from_millis(10))
            .unwrap_err()
            .is_timeout()
    );
    assert!(b.try_recv().unwrap_err().is_empty());
    a.send(&5).unwrap();
    assert_eq!(b.recv_timeout(Duration::MAX).unwrap(), 5);
    a.send_bytes(&[6]).unwrap();
    assert_eq!(b.recv_bytes_timeout(Duration::MAX).unwrap(), [6]);
}

/// `_TestConnection.test_connection` (a message that is not the expected type):
/// the error says so, and the next message is read normally.
#[test]
fn test_recv_invalid_message() {
    let (a, b) = Pipe::new().duplex::<(), String>().unwrap();
    // `b` receives `()`s; `a` receives `String`s: send `a` bytes that are not a
    // string's encoding (a length of 200 with 1 byte behind it).
    b.send_bytes(&[200, 1, b'x']).unwrap();
    let err = a.recv().unwrap_err();
    assert!(err.message_error().is_some(), "{err:?}");
    b.send_bytes(&[2, b'o', b'k']).unwrap();
    assert_eq!(a.recv().unwrap(), "ok");
}

/// `_TestConnection.test_connection` (trailing garbage after a valid value):
/// refused, not silently accepted.
#[test]
fn test_recv_trailing_bytes() {
    let (a, b) = Pipe::new().duplex::<(), u8>().unwrap();
    b.send_bytes(&[7, 0xff, 0xff]).unwrap();
    assert!(a.recv().unwrap_err().message_error().is_some());
}

/// `_TestConnection.test_sendbytes` (a large message through a child: more than a
/// socket buffer holds, both ways).
#[test]
fn test_large_message() {
    let _w = watchdog("test_large_message", LIMIT);
    let (a, b) = pipe::duplex::<Vec<u32>>().unwrap();
    let child = Process::start(echo, b).unwrap();
    let big: Vec<u32> = (0..2_000_000).collect();
    a.send(&big).unwrap();
    assert_eq!(a.recv_timeout(LONG).unwrap(), big);
    drop(a);
    assert_eq!(child.join().unwrap(), 1);
}

/// `_TestConnection.test_connection` (an end shared by threads): concurrent sends
/// and receives on one end are each whole.
#[test]
fn test_shared_end_between_threads() {
    let _w = watchdog("test_shared_end_between_threads", LIMIT);
    let (a, b) = pipe::duplex::<(u8, Vec<u8>)>().unwrap();
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let a = &a;
            s.spawn(move || {
                for _ in 0..50 {
                    a.send(&(t, vec![t; 1000])).unwrap();
                }
            });
        }
        // Received while the senders run: the socket buffer holds less than all.
        for _ in 0..200 {
            let (t, v) = b.recv_timeout(LONG).unwrap();
            assert_eq!(v, vec![t; 1000]);
        }
    });
}

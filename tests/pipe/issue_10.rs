//! Regressions of issue 10 (item 14 and `recv_bytes_into`): a message is exactly one
//! value, an oversized value is refused before it is all encoded, and a buffer too
//! short for a message loses nothing.

use mproc::pipe::{self, Pipe, RecvBytesIntoError};
use mproc::process::{Process, StartMethod};

#[test]
fn trailing_bytes_after_a_value_are_refused() {
    let (tx, rx) = pipe::simplex::<u32>().unwrap();
    // 7 as a postcard u32 is one byte; two more follow it.
    tx.send_bytes(&[7, 1, 2]).unwrap();
    let err = rx.recv().unwrap_err();
    let msg = err.message_error().expect("a message error").to_string();
    assert!(msg.contains("left over"), "{msg}");
    // The pipe is still usable.
    tx.send(&9).unwrap();
    assert_eq!(rx.recv().unwrap(), 9);
}

/// The peak resident memory of this process, in bytes (`VmHWM`).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// In a process of its own (peak memory is per process): sends a 512 MiB value
/// over a pipe limited to 1 MiB. Returns the error's text and how much the peak
/// resident memory grew.
fn oversized_send(_: ()) -> (String, Option<usize>, u64) {
    let (tx, _rx) = Pipe::new()
        .max_message_size(1 << 20)
        .simplex::<Vec<u8>>()
        .unwrap();
    // Zero pages from the allocator: reading them costs no resident memory; only
    // a copy of the encoding would.
    let value = vec![0u8; 512 << 20];
    let before = peak_rss();
    let err = tx.send(&value).unwrap_err();
    let grew = peak_rss().saturating_sub(before);
    let size = err.message_error().and_then(|m| m.size());
    (err.to_string(), size, grew)
}

#[test]
fn an_oversized_value_is_refused_before_it_is_encoded() {
    let (text, size, grew) = Process::builder()
        .start_method(StartMethod::Spawn)
        .start(oversized_send, ())
        .unwrap()
        .join()
        .unwrap();
    assert!(text.contains("limit"), "{text}");
    // 512 MiB and its 5-byte length prefix (a varint of 2^29).
    assert_eq!(size, Some((512 << 20) + 5));
    assert!(
        grew < 64 << 20,
        "refusing a 512 MiB value over a 1 MiB limit grew the peak memory by {grew} bytes"
    );
}

#[test]
fn recv_bytes_into_a_short_buffer_loses_nothing() {
    let (tx, rx) = pipe::simplex::<u8>().unwrap();
    tx.send_bytes(b"a message of 26 bytes long").unwrap();
    tx.send_bytes(b"next").unwrap();
    let mut short = [0u8; 8];
    match rx.recv_bytes_into(&mut short) {
        Err(RecvBytesIntoError::BufferTooShort { needed, room }) => {
            assert_eq!((needed, room), (26, 8))
        }
        other => panic!("expected BufferTooShort, got {other:?}"),
    }
    // Again: still there, still too long.
    assert_eq!(
        rx.recv_bytes_into(&mut short).unwrap_err().needed(),
        Some(26)
    );
    let mut buf = [0u8; 64];
    let n = rx.recv_bytes_into(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"a message of 26 bytes long");
    let n = rx.recv_bytes_into(&mut short).unwrap();
    assert_eq!(&short[..n], b"next");
    drop(tx);
    assert!(rx.recv_bytes_into(&mut buf).unwrap_err().is_closed());
}

#[test]
fn recv_bytes_into_waits_for_a_large_message_to_arrive() {
    let (tx, rx) = pipe::simplex::<u8>().unwrap();
    let big = vec![5u8; 1 << 20];
    let sender = std::thread::spawn(move || tx.send_bytes(&big).unwrap());
    let mut short = vec![0u8; 1000];
    assert_eq!(
        rx.recv_bytes_into(&mut short).unwrap_err().needed(),
        Some(1 << 20)
    );
    let mut buf = vec![0u8; 2 << 20];
    let n = rx.recv_bytes_into(&mut buf).unwrap();
    assert_eq!(n, 1 << 20);
    assert!(buf[..n].iter().all(|&b| b == 5));
    sender.join().unwrap();
}

//! A manager served on 127.0.0.1 and on a Unix socket: the right key, wrong keys,
//! broken and replayed handshakes, tampered and replayed frames, oversized frames,
//! random bytes. Each is a clear error for that client, and the server keeps
//! serving the others.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use mproc::manager::{Address, Manager, ManagerError};
use mproc::process::Process;
use sha2::Sha256;

use crate::common::watchdog;
use crate::{LONG, junk, man_in_the_middle, pass_on, tcp};

const KEY: &[u8] = b"correct horse battery staple";

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn serve() -> Manager {
    Manager::builder()
        .address(any_port())
        .authkey(KEY)
        .handshake_timeout(Duration::from_millis(500))
        .start()
        .unwrap()
}

/// The server still serves a well-behaved client.
fn still_serves(m: &Manager) {
    let c = Manager::connect(m.address().clone(), KEY).unwrap();
    let d = c.named_dict::<String, u32>("health").unwrap();
    d.update_with("n".into(), |n| n.unwrap_or(0) + 1).unwrap();
    assert!(d.get("n").unwrap().unwrap() >= 1);
}

fn remote_worker((addr, key, n): (Address, Vec<u8>, u32)) -> u32 {
    let m = Manager::connect(addr, key).unwrap();
    let d = m.named_dict::<String, u32>("shared").unwrap();
    for _ in 0..n {
        d.update_with("count".into(), |c| c.unwrap_or(0) + 1)
            .unwrap();
    }
    d.set(format!("worker-{}", std::process::id()), n).unwrap();
    d.get("count").unwrap().unwrap()
}

#[test]
fn the_right_key_over_tcp_from_other_processes() {
    let _w = watchdog("right_key_over_tcp", LONG);
    let m = serve();
    let kids: Vec<_> = (0..3)
        .map(|_| Process::start(remote_worker, (m.address().clone(), KEY.to_vec(), 50)).unwrap())
        .collect();
    for k in kids {
        assert!(k.join().unwrap() >= 50);
    }
    let d = m.named_dict::<String, u32>("shared").unwrap();
    // update_with over TCP is a compare-and-set loop: nothing lost.
    assert_eq!(d.get("count").unwrap(), Some(150));
    assert_eq!(d.len().unwrap(), 4);
    // The functions-by-address path is refused over TCP, whatever a client sends.
    still_serves(&m);
}

#[test]
fn wrong_and_missing_keys_are_rejected_quickly() {
    let _w = watchdog("wrong_keys", LONG);
    let m = serve();
    for key in [&b"wrong key"[..], b""] {
        let t = std::time::Instant::now();
        let err = Manager::connect(m.address().clone(), key).unwrap_err();
        assert!(err.is_authentication(), "{err}");
        assert!(err.to_string().contains("wrong authkey"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }
    still_serves(&m);
}

/// Plays the client's side of the HMAC exchange by hand; returns the stream, the
/// bytes sent, and whether the server accepted.
fn hand_handshake(
    stream: &mut impl ReadWrite,
    key: &[u8],
    answer: Option<[u8; 64]>,
) -> ([u8; 64], bool) {
    let mut hello = [0u8; 40];
    stream.read_exact(&mut hello).unwrap();
    assert_eq!(&hello[..6], b"mprocM");
    let answer = answer.unwrap_or_else(|| {
        let c = [7u8; 32];
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
        mac.update(b"mproc-manager/1 HMAC-SHA256 client");
        mac.update(&hello[8..]);
        mac.update(&c);
        let mut a = [0u8; 64];
        a[..32].copy_from_slice(&c);
        a[32..].copy_from_slice(&mac.finalize().into_bytes());
        a
    });
    stream.write_all(&answer).unwrap();
    let mut verdict = [0u8; 1];
    let ok = stream.read_exact(&mut verdict).is_ok() && verdict[0] == 1;
    (answer, ok)
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn closed_by_server(stream: &mut impl Read) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn truncated_replayed_and_silent_handshakes() {
    let _w = watchdog("bad_handshakes", LONG);
    let m = serve();
    let addr = tcp(&m);
    // A replayed answer: accepted once, refused the second time (fresh challenge).
    let mut s = TcpStream::connect(addr).unwrap();
    let (answer, ok) = hand_handshake(&mut s, KEY, None);
    assert!(ok, "the hand-made handshake was refused");
    let mut s2 = TcpStream::connect(addr).unwrap();
    let (_, ok) = hand_handshake(&mut s2, KEY, Some(answer));
    assert!(!ok, "a replayed handshake was accepted");
    // Truncated: half an answer, then nothing; the server gives up on its own.
    let mut s3 = TcpStream::connect(addr).unwrap();
    s3.set_read_timeout(Some(LONG)).unwrap();
    let mut hello = [0u8; 40];
    s3.read_exact(&mut hello).unwrap();
    s3.write_all(&[1u8; 20]).unwrap();
    assert!(
        closed_by_server(&mut s3),
        "a truncated handshake was not timed out"
    );
    // Silent: connects and never speaks.
    let mut s4 = TcpStream::connect(addr).unwrap();
    s4.set_read_timeout(Some(LONG)).unwrap();
    assert!(
        closed_by_server(&mut s4),
        "a silent connection was not timed out"
    );
    still_serves(&m);
}

#[test]
fn a_trickled_handshake_is_cut_at_the_handshake_limit() {
    let _w = watchdog("trickled_handshake", LONG);
    let m = serve(); // handshake limit 500 ms
    let mut s = TcpStream::connect(tcp(&m)).unwrap();
    let mut hello = [0u8; 40];
    s.read_exact(&mut hello).unwrap();
    // One byte of the 64-byte answer every 100 ms: each read alone is in time,
    // the whole answer (6.4 s) is not.
    let started = Instant::now();
    let mut cut = false;
    for _ in 0..64 {
        if s.write_all(&[0]).is_err() || closed_now(&s) {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        cut,
        "the server kept a trickled handshake for the whole answer"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    still_serves(&m);
}

/// Whether the server closed `s` (a read that does not wait sees the end).
fn closed_now(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 16];
    let r = (&*s).read(&mut b);
    s.set_nonblocking(false).unwrap();
    match r {
        Ok(0) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    }
}

#[test]
fn random_bytes_are_refused() {
    let _w = watchdog("random_bytes", LONG);
    let m = serve();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20 {
        let mut s = TcpStream::connect(tcp(&m)).unwrap();
        s.set_read_timeout(Some(LONG)).unwrap();
        let _ = s.write_all(&junk(&mut seed, 300));
        let mut hello = [0u8; 40];
        s.read_exact(&mut hello).unwrap();
        let mut verdict = [0u8; 1];
        // Refused with a 0 (or the connection closes).
        assert!(s.read_exact(&mut verdict).is_err() || verdict[0] == 0);
    }
    still_serves(&m);
}

/// A man in the middle between a client and the server that damages the first
/// frame after the handshake: flips a bit, or sends it twice.
fn tamper_proxy(server: SocketAddr, replay: bool) -> SocketAddr {
    man_in_the_middle(server, move |mut client, mut upstream| {
        // The HMAC answer, then the Noise handshake frame, as they are.
        let mut answer = [0u8; 64];
        if client.read_exact(&mut answer).is_err() {
            return;
        }
        upstream.write_all(&answer).unwrap();
        let mut frame_no = 0;
        loop {
            let mut h = [0u8; 4];
            if client.read_exact(&mut h).is_err() {
                let _ = upstream.shutdown(std::net::Shutdown::Both);
                return;
            }
            let mut body = vec![0u8; u32::from_le_bytes(h) as usize];
            if client.read_exact(&mut body).is_err() {
                return;
            }
            frame_no += 1;
            if pass_on(&mut upstream, &h, &mut body, frame_no == 2, replay).is_err() {
                return;
            }
        }
    })
}

#[test]
fn a_modified_or_replayed_frame_ends_the_session() {
    let _w = watchdog("tampered_frames", LONG);
    let m = serve();
    for replay in [false, true] {
        let via = tamper_proxy(tcp(&m), replay);
        // Hello is the first frame after the handshake. Modified, it fails
        // authentication; replayed, the copy does (its nonce is spent): either way
        // the server drops the connection and the client hears of it, at the
        // latest at its first request.
        let err = Manager::connect(Address::Tcp(via), KEY)
            .and_then(|c| c.named_dict::<u8, u8>("x").map(drop))
            .unwrap_err();
        assert!(
            matches!(
                err,
                ManagerError::Disconnected { .. } | ManagerError::Protocol(_)
            ),
            "replay={replay}: {err}"
        );
    }
    still_serves(&m);
}

#[test]
fn oversized_and_garbage_frames_on_a_unix_socket() {
    let _w = watchdog("oversized_frames", LONG);
    let dir = std::env::temp_dir().join(format!("mproc-mgr-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("m.sock");
    let _ = std::fs::remove_file(&path);
    let m = Manager::builder()
        .address(Address::unix(&path))
        .authkey(KEY)
        .max_frame(1 << 16)
        .start()
        .unwrap();
    // Authenticated, then a frame header announcing 1 GiB: dropped at once.
    let mut s = UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(LONG)).unwrap();
    assert!(hand_handshake(&mut s, KEY, None).1);
    let mut proof = [0u8; 32];
    s.read_exact(&mut proof).unwrap();
    s.write_all(&(1u32 << 30).to_le_bytes()).unwrap();
    assert!(
        closed_by_server(&mut s),
        "an oversized frame was not refused"
    );
    // Authenticated, then a frame of garbage: a bad request, then closed.
    let mut s = UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(LONG)).unwrap();
    assert!(hand_handshake(&mut s, KEY, None).1);
    s.read_exact(&mut proof).unwrap();
    let junk = [0xffu8; 40];
    s.write_all(&(junk.len() as u32).to_le_bytes()).unwrap();
    s.write_all(&junk).unwrap();
    assert!(closed_by_server(&mut s), "a garbage frame was not refused");
    // A request over the limit is refused on the client before sending.
    let c = Manager::connect(Address::unix(&path), KEY).unwrap();
    let l = c.named_list::<Vec<u8>>("big").unwrap();
    let err = l.append(vec![0u8; 1 << 17]).unwrap_err();
    assert!(matches!(err, ManagerError::TooLarge { .. }), "{err}");
    l.append(vec![1, 2, 3]).unwrap();
    assert_eq!(l.len().unwrap(), 1);
    drop(m);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn proxies_reconnect_to_a_restarted_manager_and_idle_connections_close() {
    let _w = watchdog("restart", LONG);
    let first = Manager::builder()
        .address(any_port())
        .authkey(KEY)
        .idle_timeout(Duration::from_millis(200))
        .start()
        .unwrap();
    let addr = first.address().clone();
    let client = Manager::connect(addr.clone(), KEY).unwrap();
    let d = client.named_dict::<String, u32>("state").unwrap();
    d.set("a".into(), 1).unwrap();
    // Idle: the server closes the pooled connection; the next call reconnects.
    let idle = first.named_event("idle").unwrap();
    assert!(!idle.wait_timeout(Duration::from_millis(400)).unwrap());
    assert_eq!(d.get("a").unwrap(), Some(1));
    first.shutdown().unwrap();
    assert!(d.get("a").unwrap_err().is_disconnected());
    let _second = Manager::builder()
        .address(addr)
        .authkey(KEY)
        .start()
        .unwrap();
    // Same address, new manager: the old object is gone (a typed error, no hang);
    // the client handle itself reconnects.
    let err = d.get("a").unwrap_err();
    assert!(err.is_object_gone(), "{err}");
    let d2 = client.named_dict::<String, u32>("state").unwrap();
    assert_eq!(d2.get("a").unwrap(), None);
    d2.set("a".into(), 2).unwrap();
    assert_eq!(d2.get("a").unwrap(), Some(2));
}

#[test]
fn a_reply_over_the_frame_limit_is_an_error_not_a_dropped_connection() {
    let _w = watchdog("oversized_reply", LONG);
    let m = Manager::builder().max_frame(1 << 12).start().unwrap();
    let l = m.list::<Vec<u8>>().unwrap();
    for _ in 0..4 {
        l.append(vec![7u8; 3000]).unwrap();
    }
    let err = l.to_vec().unwrap_err();
    assert!(
        matches!(&err, ManagerError::Refused(msg) if msg.contains("frame limit")),
        "{err}"
    );
    // The connection goes on.
    assert_eq!(l.slice(Some(0), Some(1)).unwrap().len(), 1);
    assert_eq!(l.len().unwrap(), 4);
}

#[test]
fn a_server_that_closes_before_the_handshake_is_disconnected_not_a_key_failure() {
    let _w = watchdog("closed_before_handshake", LONG);
    // A manager going away (or over its connection limit) accepts and closes.
    let path = crate::common::temp_path("closes-at-once.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let closer = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        drop(s);
    });
    let err = Manager::connect(Address::unix(&path), KEY).unwrap_err();
    assert!(err.is_disconnected(), "{err:?}");
    closer.join().unwrap();
    let _ = std::fs::remove_file(&path);
}

//! Tests of `mproc::manager`: every proxy's Python semantics, nested objects,
//! proxies passed to children, pools and pipes, faults (a killed client holding a
//! lock, a killed manager), custom shared types, and the remote (TCP, Unix socket)
//! server with authentication and its refusal of garbage; with feature `tls`, the
//! same over mutual TLS.
//!
//! Every test that waits arms a watchdog (`tests/common`); every wait has a timeout.
#![cfg(not(miri))]

mod core;
mod custom;
mod faults;
mod fuzz;
mod pipeline;
mod remote;
#[cfg(feature = "tls")]
mod tls;

#[path = "../common/mod.rs"]
mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// A generous bound for waits that should end quickly (noisy 2-CPU VM).
pub const LONG: Duration = Duration::from_secs(30);

/// The TCP address `m` serves.
pub fn tcp(m: &mproc::manager::Manager) -> SocketAddr {
    match m.address() {
        mproc::manager::Address::Tcp(a) => *a,
        other => panic!("not TCP: {other}"),
    }
}

/// Sends `SIGKILL` to the server process of `m` (a manager this process started).
pub fn kill_manager(m: &mproc::manager::Manager) {
    let pid = m.pid().expect("a manager started by this process");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
}

/// `n` pseudo-random bytes (xorshift64 from `seed`, which it advances).
pub fn junk(seed: &mut u64, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *seed as u8
        })
        .collect()
}

/// Sends a message (`header` then `body`) upstream as it is, or, when `damage`,
/// damaged: twice (`replay`) or with the last bit of its body flipped.
pub fn pass_on(
    upstream: &mut TcpStream,
    header: &[u8],
    body: &mut [u8],
    damage: bool,
    replay: bool,
) -> std::io::Result<()> {
    use std::io::Write;
    if damage && replay {
        upstream.write_all(header)?;
        upstream.write_all(body)?;
    } else if damage && let Some(last) = body.last_mut() {
        *last ^= 1;
    }
    upstream.write_all(header)?;
    upstream.write_all(body)
}

/// A man in the middle on 127.0.0.1 in front of `server`: what the server sends
/// reaches the client as it is; what the client sends goes through `forward`
/// (reading from the client, writing upstream), one thread per connection. Its
/// address.
pub fn man_in_the_middle(
    server: SocketAddr,
    forward: impl Fn(TcpStream, TcpStream) + Send + Clone + 'static,
) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for client in l.incoming() {
            let Ok(client) = client else { return };
            let Ok(upstream) = TcpStream::connect(server) else {
                return;
            };
            let mut down_c = client.try_clone().unwrap();
            let mut down_u = upstream.try_clone().unwrap();
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut down_u, &mut down_c);
                let _ = down_c.shutdown(std::net::Shutdown::Both);
            });
            let forward = forward.clone();
            std::thread::spawn(move || forward(client, upstream));
        }
    });
    addr
}

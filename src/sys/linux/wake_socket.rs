//! Wake sockets: how a process wakes an async waiter in another process.
//!
//! A futex word in shared memory wakes threads asleep in `futex_wait`, but no async
//! runtime's reactor can watch one. An async waiter instead owns a Unix datagram
//! socket bound to an abstract name (`\0mproc-aio/<pid>/<nonce>`, in the network
//! namespace, no file in the file system), watched by its reactor, and publishes
//! `(pid, nonce)` in the shared object; a waker sends one byte to that name.
//!
//! Why a name and not a descriptor: a waker may be any process holding the object,
//! and a descriptor created by the waiter after the object was shared cannot reach
//! it. `pidfd_getfd` would need ptrace rights over the waiter (refused under the
//! common Yama setting to all but ancestors); `SCM_RIGHTS` needs a connection the
//! two do not have. A name needs neither, and a datagram to a name whose socket is
//! gone fails at once (`ECONNREFUSED`), which tells the waker the entry is stale.
//! Each socket has one owner, so no waiter can drain another's wake-up.
//!
//! # Safety
//!
//! No unsafe code: rustix wraps `socket`, `bind`, `sendto` and `recv`.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::OnceLock;

use rustix::net::{AddressFamily, SendFlags, SocketAddrUnix, SocketFlags, SocketType};

fn name(pid: u32, nonce: u32) -> io::Result<SocketAddrUnix> {
    Ok(SocketAddrUnix::new_abstract_name(
        format!("mproc-aio/{pid}/{nonce}").as_bytes(),
    )?)
}

fn datagram_socket() -> io::Result<OwnedFd> {
    Ok(rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?)
}

#[cfg(feature = "tokio")]
/// A new non-blocking wake socket bound to `(pid, nonce)`'s name. `AddrInUse`
/// when the name is taken.
pub(crate) fn bind(pid: u32, nonce: u32) -> io::Result<OwnedFd> {
    let sock = datagram_socket()?;
    rustix::net::bind(&sock, &name(pid, nonce)?)?;
    Ok(sock)
}

/// Sends a wake-up to `(pid, nonce)`'s socket, never waiting. `Ok(false)` when no
/// socket has that name any more (the waiter is gone); a full socket already has a
/// wake-up pending, which counts as sent.
pub(crate) fn send(pid: u32, nonce: u32) -> io::Result<bool> {
    static SENDER: OnceLock<Option<OwnedFd>> = OnceLock::new();
    let Some(sender) = SENDER.get_or_init(|| datagram_socket().ok()) else {
        return Err(io::Error::other(
            "cannot create a socket to wake async waiters",
        ));
    };
    let to = name(pid, nonce)?;
    loop {
        match rustix::net::sendto(
            sender.as_fd(),
            &[1],
            SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
            &to,
        ) {
            Ok(_) | Err(rustix::io::Errno::AGAIN) => return Ok(true),
            Err(rustix::io::Errno::CONNREFUSED | rustix::io::Errno::NOENT) => return Ok(false),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(feature = "tokio")]
/// Reads every pending wake-up from `sock` without waiting.
pub(crate) fn drain(sock: &OwnedFd) {
    let mut buf = [0u8; 16];
    loop {
        match rustix::net::recv(sock, &mut buf, rustix::net::RecvFlags::DONTWAIT) {
            Ok(_) | Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        }
    }
}

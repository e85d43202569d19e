//! Connected Unix `SOCK_SEQPACKET` pairs: every send is one message, delivered
//! whole and in order, and a message in the kernel's buffer outlives its sender.
//! The carrier of log records from a child to its parent.
//!
//! # Safety
//!
//! No unsafe code: rustix wraps every call.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

/// A connected pair of sequenced-packet sockets, close-on-exec.
pub(crate) fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// Sends `msg` as one message, waiting for room. Never raises `SIGPIPE`: a
/// closed peer is `ErrorKind::BrokenPipe`.
pub(crate) fn send_message(sock: BorrowedFd<'_>, msg: &[u8]) -> io::Result<()> {
    loop {
        match rustix::net::send(sock, msg, SendFlags::NOSIGNAL) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => return Ok(()),
        }
    }
}

/// What [`recv_message`] got.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// A message of this many bytes (cut to the buffer's length when longer).
    Message(usize),
    /// Nothing is waiting now.
    Empty,
    /// Every sending end is closed and nothing is left.
    End,
}

/// Receives one message without waiting.
pub(crate) fn recv_message(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Received> {
    loop {
        match rustix::net::recv(sock, &mut *buf, RecvFlags::DONTWAIT) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::AGAIN) => return Ok(Received::Empty),
            Err(rustix::io::Errno::CONNRESET) => return Ok(Received::End),
            Err(e) => return Err(e.into()),
            Ok((_, 0)) => return Ok(Received::End),
            Ok((_, n)) => return Ok(Received::Message(n.min(buf.len()))),
        }
    }
}

/// Sets the socket's send buffer (the kernel doubles it and caps it at
/// `net.core.wmem_max`).
pub(crate) fn set_send_buffer(sock: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    Ok(rustix::net::sockopt::set_socket_send_buffer_size(
        sock, bytes,
    )?)
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn messages_keep_their_bounds_and_outlive_the_sender() {
        let (a, b) = seqpacket_pair().unwrap();
        send_message(a.as_fd(), b"one").unwrap();
        send_message(a.as_fd(), b"second").unwrap();
        drop(a);
        let mut buf = [0u8; 64];
        assert_eq!(
            recv_message(b.as_fd(), &mut buf).unwrap(),
            Received::Message(3)
        );
        assert_eq!(&buf[..3], b"one");
        assert_eq!(
            recv_message(b.as_fd(), &mut buf).unwrap(),
            Received::Message(6)
        );
        assert_eq!(&buf[..6], b"second");
        assert_eq!(recv_message(b.as_fd(), &mut buf).unwrap(), Received::End);
    }

    #[test]
    fn an_empty_socket_does_not_wait() {
        let (_a, b) = seqpacket_pair().unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(recv_message(b.as_fd(), &mut buf).unwrap(), Received::Empty);
    }
}

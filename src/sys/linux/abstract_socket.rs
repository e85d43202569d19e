//! Unix sockets in Linux's abstract namespace: no file to clean up, gone when the
//! last descriptor closes (used by a manager's private listener); and a look at
//! whether a stream's peer is gone.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};

/// Listens on the abstract address `name`.
pub(crate) fn bind(name: &[u8]) -> io::Result<UnixListener> {
    UnixListener::bind_addr(&SocketAddr::from_abstract_name(name)?)
}

/// Connects to the abstract address `name`.
pub(crate) fn connect(name: &[u8]) -> io::Result<UnixStream> {
    UnixStream::connect_addr(&SocketAddr::from_abstract_name(name)?)
}

/// Whether the peer of stream socket `sock` has closed its end, looking without
/// taking any data and without waiting (`recv` with `MSG_PEEK | MSG_DONTWAIT`).
pub(crate) fn peer_closed(sock: std::os::fd::BorrowedFd<'_>) -> bool {
    use rustix::net::RecvFlags;
    let mut b = [0u8; 1];
    loop {
        return match rustix::net::recv(sock, &mut b, RecvFlags::PEEK | RecvFlags::DONTWAIT) {
            Ok((0, _)) => true,
            Ok(_) => false,
            Err(rustix::io::Errno::AGAIN) => false,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => true,
        };
    }
}

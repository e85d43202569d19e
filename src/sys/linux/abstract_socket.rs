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

/// Turns on TCP keepalive probes on `sock`: after `idle` without traffic, a probe
/// every `idle / 3`, and after three unanswered ones the connection fails
/// (`ETIMEDOUT`), so that a peer that vanished (a half-open connection) is noticed.
pub(crate) fn tcp_keepalive(
    sock: std::os::fd::BorrowedFd<'_>,
    idle: std::time::Duration,
) -> io::Result<()> {
    use rustix::net::sockopt;
    sockopt::set_socket_keepalive(sock, true)?;
    sockopt::set_tcp_keepidle(sock, idle)?;
    sockopt::set_tcp_keepintvl(sock, (idle / 3).max(std::time::Duration::from_secs(1)))?;
    sockopt::set_tcp_keepcnt(sock, 3)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::time::Duration;

    use super::*;

    #[test]
    fn keepalive_is_set() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        tcp_keepalive(s.as_fd(), Duration::from_secs(30)).unwrap();
        assert!(rustix::net::sockopt::socket_keepalive(&s).unwrap());
        assert_eq!(
            rustix::net::sockopt::tcp_keepidle(&s).unwrap(),
            Duration::from_secs(30)
        );
        assert_eq!(rustix::net::sockopt::tcp_keepcnt(&s).unwrap(), 3);
    }

    #[test]
    fn abstract_sockets_connect_and_tell_a_closed_peer() {
        let name = format!("mproc-test-{}", std::process::id());
        let l = bind(name.as_bytes()).unwrap();
        let c = connect(name.as_bytes()).unwrap();
        let (s, _) = l.accept().unwrap();
        assert!(!peer_closed(c.as_fd()));
        drop(s);
        assert!(peer_closed(c.as_fd()));
    }
}

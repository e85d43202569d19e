//! Unix stream sockets that carry file descriptors (`SCM_RIGHTS`), and `poll`.
//!
//! # Safety
//!
//! No unsafe code: rustix's `sendmsg`/`recvmsg` wrap the control-message buffers and
//! hand received descriptors back as `OwnedFd`.

use std::io;
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};
use rustix::net::{
    AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

/// Most descriptors one `sendmsg` may carry (the kernel's `SCM_MAX_FD`).
pub(crate) const MAX_FDS_PER_MSG: usize = 253;

/// A connected pair of Unix stream sockets, close-on-exec.
pub(crate) fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// Sends (part of) `bufs` with `fds` attached to the first byte. Never raises
/// `SIGPIPE`: a closed peer is `ErrorKind::BrokenPipe`.
pub(crate) fn send_with_fds(
    sock: BorrowedFd<'_>,
    bufs: &[IoSlice<'_>],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    if fds.is_empty() {
        return loop {
            match rustix::net::sendmsg(
                sock,
                bufs,
                &mut SendAncillaryBuffer::default(),
                SendFlags::NOSIGNAL,
            ) {
                Err(rustix::io::Errno::INTR) => continue,
                r => break Ok(r?),
            }
        };
    }
    if fds.len() > MAX_FDS_PER_MSG {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "cannot pass {} file descriptors in one message (at most {MAX_FDS_PER_MSG})",
                fds.len()
            ),
        ));
    }
    let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other("control buffer too small for SCM_RIGHTS"));
    }
    loop {
        match rustix::net::sendmsg(sock, bufs, &mut control, SendFlags::NOSIGNAL) {
            Err(rustix::io::Errno::INTR) => continue,
            r => return Ok(r?),
        }
    }
}

/// Receives into `buf`, waiting; descriptors that came along are appended to
/// `fds` (close-on-exec). Returns the number of bytes, 0 at end of stream.
/// Descriptors the kernel dropped (this process is at its
/// descriptor limit) only set `*dropped`, and the bytes still count.
pub(crate) fn recv_with_fds_noting_drops(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
    dropped: &mut bool,
) -> io::Result<usize> {
    super::stream::recv_noting_drops(sock, buf, fds, false, dropped)
}

/// What [`poll`] saw on one descriptor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Readiness {
    /// Data (or end of stream, or a pidfd's exit) can be read without blocking.
    pub(crate) readable: bool,
    /// The descriptor can be written without blocking.
    pub(crate) writable: bool,
    /// The peer hung up or the descriptor is in error.
    pub(crate) hangup: bool,
}

/// Waits until one of `fds` is ready for what its flag asks (`true` = writability,
/// `false` = readability), or `timeout` passes (`None` = forever). Returns one
/// [`Readiness`] per descriptor; all-default after a timeout.
pub(crate) fn poll(
    fds: &[(BorrowedFd<'_>, bool)],
    timeout: Option<Duration>,
) -> io::Result<Vec<Readiness>> {
    let mut pfds: Vec<PollFd<'_>> = fds
        .iter()
        .map(|(fd, write)| {
            PollFd::new(
                fd,
                if *write {
                    PollFlags::OUT
                } else {
                    PollFlags::IN
                },
            )
        })
        .collect();
    let ts = timeout.map(|d| rustix::time::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: d.subsec_nanos() as _,
    });
    loop {
        match rustix::event::poll(&mut pfds, ts.as_ref()) {
            Err(rustix::io::Errno::INTR) => continue,
            r => {
                r?;
                break;
            }
        }
    }
    Ok(pfds
        .iter()
        .map(|p| {
            let r = p.revents();
            Readiness {
                readable: r.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR),
                writable: r.intersects(PollFlags::OUT | PollFlags::ERR),
                hangup: r.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL),
            }
        })
        .collect())
}

/// A pipe: `(read end, write end)`, close-on-exec.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
}

/// Duplicates `fd` (close-on-exec).
pub(crate) fn dup(fd: impl AsFd) -> io::Result<OwnedFd> {
    Ok(rustix::io::fcntl_dupfd_cloexec(fd, 0)?)
}

/// Reads what is available (blocking per the descriptor's mode); 0 at end of file.
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match rustix::io::read(fd, &mut *buf) {
            Err(rustix::io::Errno::INTR) => continue,
            r => return Ok(r?),
        }
    }
}

/// Writes part of `buf`; never raises `SIGPIPE` on a socket.
pub(crate) fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    loop {
        match rustix::io::write(fd, buf) {
            Err(rustix::io::Errno::INTR) => continue,
            r => return Ok(r?),
        }
    }
}

/// Bounds how long a blocking send on socket `fd` may wait (`None`: forever).
pub(crate) fn set_send_timeout(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<()> {
    Ok(rustix::net::sockopt::set_socket_timeout(
        fd,
        rustix::net::sockopt::Timeout::Send,
        timeout,
    )?)
}

/// Sets or clears `O_NONBLOCK` (the pool's manager never blocks on a worker).
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let mut flags = rustix::fs::fcntl_getfl(fd)?;
    flags.set(rustix::fs::OFlags::NONBLOCK, on);
    Ok(rustix::fs::fcntl_setfl(fd, flags)?)
}

/// The send buffer size of a socket (`SO_SNDBUF`), in bytes.
pub(crate) fn send_buffer_size(fd: BorrowedFd<'_>) -> io::Result<usize> {
    Ok(rustix::net::sockopt::socket_send_buffer_size(fd)?)
}

//! Extra Unix stream socket calls for `pipe`: a receive that never blocks (for the
//! spin phase of a wait), and `shutdown`.
//!
//! # Safety
//!
//! No unsafe code: rustix's `recvmsg` wraps the control-message buffer and hands
//! received descriptors back as `OwnedFd`.

use std::io::{self, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, Shutdown};

use super::socket::MAX_FDS_PER_MSG;

/// Receives into `buf` like `socket::recv_with_fds`, but with `nonblocking` it
/// returns `ErrorKind::WouldBlock` instead of waiting (`MSG_DONTWAIT`, whatever the
/// descriptor's mode). Returns the number of bytes, 0 at end of stream.
///
/// Descriptors the kernel had to drop (this process is at its descriptor limit) are
/// an `EMFILE` error; the bytes received with them are lost to the caller, so a
/// framed protocol wants [`recv_noting_drops`] instead.
pub(crate) fn recv(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
    nonblocking: bool,
) -> io::Result<usize> {
    let mut dropped = false;
    let n = recv_noting_drops(sock, buf, fds, nonblocking, &mut dropped)?;
    if dropped {
        return Err(super::process::descriptors_dropped());
    }
    Ok(n)
}

/// As [`recv`], but descriptors dropped by the kernel (`MSG_CTRUNC`: this process
/// is at its descriptor limit) only set `*dropped`: the bytes are returned, so
/// that the caller can finish the frame, keep its stream in step, and report the
/// loss for that frame alone.
pub(crate) fn recv_noting_drops(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
    nonblocking: bool,
    dropped: &mut bool,
) -> io::Result<usize> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS_PER_MSG))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [IoSliceMut::new(buf)];
    let mut flags = RecvFlags::CMSG_CLOEXEC;
    if nonblocking {
        flags |= RecvFlags::DONTWAIT;
    }
    let msg = loop {
        match rustix::net::recvmsg(sock, &mut iov, &mut control, flags) {
            Err(rustix::io::Errno::INTR) => continue,
            r => break r?,
        }
    };
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = m {
            fds.extend(rights);
        }
    }
    // The buffer has room for the most descriptors one message can carry, so a
    // truncation means the kernel could not install them here.
    if msg.flags.contains(rustix::net::ReturnFlags::CTRUNC) {
        *dropped = true;
    }
    Ok(msg.bytes)
}

/// Shuts down the reading (`read`) or writing side of a socket.
pub(crate) fn shutdown(sock: BorrowedFd<'_>, read: bool) -> io::Result<()> {
    let how = if read {
        Shutdown::Read
    } else {
        Shutdown::Write
    };
    Ok(rustix::net::shutdown(sock, how)?)
}

//! What async waiters sleep on: eventfds, and a send that never waits.
//!
//! An async runtime's reactor can watch a descriptor but not a futex word, so an
//! async waiter on a shared-memory object publishes an eventfd that the object's
//! wake path signals. Its counter is only ever used as a flag: signal adds one,
//! drain reads it back to zero.
//!
//! # Safety
//!
//! No unsafe code: rustix wraps `eventfd`, `read`, `write` and `sendmsg`.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::BorrowedFd;

use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};

use super::socket::MAX_FDS_PER_MSG;

/// As `socket::send_with_fds`, but never waits: a full send buffer is
/// `ErrorKind::WouldBlock` (nothing was written).
pub(crate) fn send_with_fds_nowait(
    sock: BorrowedFd<'_>,
    bufs: &[IoSlice<'_>],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    let flags = SendFlags::NOSIGNAL | SendFlags::DONTWAIT;
    if fds.len() > MAX_FDS_PER_MSG {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "cannot pass {} file descriptors in one message (at most {MAX_FDS_PER_MSG})",
                fds.len()
            ),
        ));
    }
    let mut space = Vec::new();
    let mut control = if fds.is_empty() {
        SendAncillaryBuffer::default()
    } else {
        space.resize(
            rustix::cmsg_space!(ScmRights(fds.len())),
            MaybeUninit::<u8>::uninit(),
        );
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(io::Error::other("control buffer too small for SCM_RIGHTS"));
        }
        control
    };
    loop {
        match rustix::net::sendmsg(sock, bufs, &mut control, flags) {
            Err(rustix::io::Errno::INTR) => continue,
            r => return Ok(r?),
        }
    }
}

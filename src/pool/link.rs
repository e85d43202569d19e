//! The transport between the pool's dispatcher thread and one worker: a Unix
//! socketpair, non-blocking on the parent's side, with an outbox and an inbox so that
//! the dispatcher never blocks on a worker (and a worker blocked on a full socket can
//! never deadlock against the dispatcher).
//!
//! This is the one place that knows how frames move; a shared-memory transport
//! (`crate::queue`) can replace it behind the same four calls: `queue`, `flush`,
//! `read`, and the descriptor to poll.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::codec::Message;
use crate::pool::frames::FrameBuf;
use crate::sys::socket;
use crate::wire::FrameReader;

struct Out {
    bytes: Vec<u8>,
    fds: Vec<OwnedFd>,
    sent: usize,
}

/// The parent's end of one worker's socket.
pub(crate) struct Link {
    sock: OwnedFd,
    out: VecDeque<Out>,
    /// Frames (partly) received.
    inbox: FrameReader,
}

impl Link {
    pub(crate) fn new(sock: OwnedFd) -> io::Result<Link> {
        socket::set_nonblocking(sock.as_fd(), true)?;
        Ok(Link {
            sock,
            out: VecDeque::new(),
            inbox: FrameReader::new(64 * 1024, usize::MAX),
        })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// Queues a complete frame (header included) to send.
    pub(crate) fn queue(&mut self, frame: FrameBuf, fds: Vec<OwnedFd>) {
        self.out.push_back(Out {
            bytes: frame.bytes,
            fds,
            sent: 0,
        });
    }

    pub(crate) fn wants_write(&self) -> bool {
        !self.out.is_empty()
    }

    /// Sends what the socket takes now.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        while let Some(front) = self.out.front_mut() {
            let fds: Vec<BorrowedFd<'_>> = if front.sent == 0 {
                front.fds.iter().map(|f| f.as_fd()).collect()
            } else {
                Vec::new()
            };
            match socket::send_with_fds(
                self.sock.as_fd(),
                &[IoSlice::new(&front.bytes[front.sent..])],
                &fds,
            ) {
                Ok(n) => {
                    front.sent += n;
                    if front.sent == front.bytes.len() {
                        self.out.pop_front();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads everything available and appends complete frames to `frames`.
    /// Returns `true` at end of stream.
    pub(crate) fn read(&mut self, frames: &mut Vec<Message>) -> io::Result<bool> {
        let eof = self.inbox.fill(self.sock.as_fd())?;
        while let Some((frame, _)) = self.inbox.next_frame()? {
            frames.push(frame);
        }
        Ok(eof)
    }
}

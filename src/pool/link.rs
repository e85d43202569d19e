//! The transport between the pool's manager thread and one worker: a Unix
//! socketpair, non-blocking on the parent's side, with an outbox and an inbox so that
//! the manager never blocks on a worker (and a worker blocked on a full socket can
//! never deadlock against the manager).
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

struct Out {
    bytes: Vec<u8>,
    fds: Vec<OwnedFd>,
    sent: usize,
}

/// The parent's end of one worker's socket.
pub(crate) struct Link {
    sock: OwnedFd,
    out: VecDeque<Out>,
    /// Received bytes are `inbuf[start..end]`; the rest of `inbuf` is room (kept
    /// initialized, so that reading never clears memory again).
    inbuf: Vec<u8>,
    start: usize,
    end: usize,
    infds: VecDeque<OwnedFd>,
}

impl Link {
    pub(crate) fn new(sock: OwnedFd) -> io::Result<Link> {
        socket::set_nonblocking(sock.as_fd(), true)?;
        Ok(Link {
            sock,
            out: VecDeque::new(),
            inbuf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            infds: VecDeque::new(),
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
        let mut eof = false;
        loop {
            if self.start > 0 && self.start * 2 >= self.end {
                self.inbuf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.inbuf.len() - self.end < 16 * 1024 {
                let grown = (self.inbuf.len() * 2).max(self.end + 64 * 1024);
                self.inbuf.resize(grown, 0);
            }
            let mut fds = Vec::new();
            let r = socket::recv_with_fds(self.sock.as_fd(), &mut self.inbuf[self.end..], &mut fds);
            self.infds.extend(fds);
            match r {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    eof = true;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        loop {
            let avail = &self.inbuf[self.start..self.end];
            if avail.len() < 8 {
                break;
            }
            let plen = u32::from_le_bytes(avail[..4].try_into().expect("4")) as usize;
            let nfds = u32::from_le_bytes(avail[4..8].try_into().expect("4")) as usize;
            if avail.len() < 8 + plen {
                break;
            }
            let bytes = avail[8..8 + plen].to_vec();
            self.start += 8 + plen;
            let take = nfds.min(self.infds.len());
            let fds = self.infds.drain(..take).collect();
            frames.push(Message { bytes, fds });
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Ok(eof)
    }
}

//! Length-prefixed frames with descriptors over a Unix stream socket.
//!
//! A frame is an 8-byte header (`u32` payload length, `u32` descriptor count, both
//! little-endian) followed by the payload; the descriptors ride on the header's
//! `sendmsg`. Used by the process bootstrap and the forkserver.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::{BorrowedFd, OwnedFd};

use crate::codec::Message;
use crate::sys::socket;

const HEADER: usize = 8;

/// Sends one frame carrying `bytes` and `fds`.
pub(crate) fn send(sock: BorrowedFd<'_>, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    send_frame(sock, bytes, fds).map_err(|(e, _)| e)
}

/// As [`send`]; a failure also tells whether part of the frame was written (then
/// the stream is out of step and the peer must be given up), or none of it (the
/// stream is as before, and only this frame failed).
pub(crate) fn send_frame(
    sock: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> Result<(), (io::Error, bool)> {
    let len = u32::try_from(bytes.len()).map_err(|_| {
        (
            io::Error::new(io::ErrorKind::InvalidInput, "frame larger than 4 GiB"),
            false,
        )
    })?;
    let mut header = [0u8; HEADER];
    header[..4].copy_from_slice(&len.to_le_bytes());
    header[4..].copy_from_slice(&(fds.len() as u32).to_le_bytes());
    let mut sent = socket::send_with_fds(sock, &[IoSlice::new(&header), IoSlice::new(bytes)], fds)
        .map_err(|e| (e, false))?;
    let total = HEADER + bytes.len();
    while sent < total {
        let n = if sent < HEADER {
            socket::send_with_fds(
                sock,
                &[IoSlice::new(&header[sent..]), IoSlice::new(bytes)],
                &[],
            )
        } else {
            socket::send_with_fds(sock, &[IoSlice::new(&bytes[sent - HEADER..])], &[])
        }
        .map_err(|e| (e, true))?;
        if n == 0 {
            return Err((io::ErrorKind::WriteZero.into(), true));
        }
        sent += n;
    }
    Ok(())
}

/// Receives one frame. `Ok(None)` at a clean end of stream (between frames); an end
/// of stream inside a frame is `UnexpectedEof`. A payload over `max_len` bytes is
/// `InvalidData` (its bytes are not read).
///
/// When the kernel dropped the frame's descriptors because this process is at its
/// descriptor limit, the frame is still read to its end (the stream stays in step
/// for the next one) and the result is an `EMFILE` error: see [`recv_frame`] for a caller that must know what the frame said.
pub(crate) fn recv(sock: BorrowedFd<'_>, max_len: usize) -> io::Result<Option<Message>> {
    match recv_frame(sock, max_len)? {
        Received::Frame(msg) => Ok(Some(msg)),
        Received::End => Ok(None),
        Received::DescriptorsDropped(_) => Err(crate::sys::process::descriptors_dropped()),
    }
}

/// What [`recv_frame`] got.
pub(crate) enum Received {
    /// A whole frame with all its descriptors.
    Frame(Message),
    /// A clean end of stream, between frames.
    End,
    /// A whole frame whose descriptors the kernel dropped (this process is at its
    /// descriptor limit): its bytes, and any descriptor that did arrive, are here.
    DescriptorsDropped(Message),
}

/// Receives one frame, telling a frame whose descriptors were dropped from one that
/// arrived whole (see [`recv`]).
pub(crate) fn recv_frame(sock: BorrowedFd<'_>, max_len: usize) -> io::Result<Received> {
    let mut dropped = false;
    let mut fds = Vec::new();
    let mut header = [0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        let n =
            socket::recv_with_fds_noting_drops(sock, &mut header[got..], &mut fds, &mut dropped)?;
        if n == 0 {
            return if got == 0 {
                Ok(Received::End)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        got += n;
    }
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let nfds = u32::from_le_bytes(header[4..].try_into().expect("4 bytes")) as usize;
    check_len(len, max_len)?;
    let mut bytes = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n =
            socket::recv_with_fds_noting_drops(sock, &mut bytes[got..], &mut fds, &mut dropped)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        got += n;
    }
    if dropped {
        return Ok(Received::DescriptorsDropped(Message { bytes, fds }));
    }
    if fds.len() != nfds {
        return Err(fd_count_mismatch(nfds, fds.len()));
    }
    Ok(Received::Frame(Message { bytes, fds }))
}

/// Frames arriving on a stream socket, read in large pieces: the bytes and
/// descriptors received but not yet taken as whole frames stay here between reads.
/// Used by the pool's links (kept across reads) and by [`recv_ready`].
pub(crate) struct FrameReader {
    /// Received bytes are `buf[start..end]`; the rest of `buf` is room (kept
    /// initialized, so that reading never clears memory again).
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Descriptors received, in order; a frame's arrive with its first byte.
    fds: VecDeque<OwnedFd>,
    /// How much room one read wants; the buffer grows by at least this much.
    chunk: usize,
    max_len: usize,
}

impl FrameReader {
    /// A reader that reads up to about `chunk` bytes at a time and refuses frames
    /// longer than `max_len` as soon as their header is in.
    pub(crate) fn new(chunk: usize, max_len: usize) -> FrameReader {
        FrameReader {
            buf: vec![0; chunk],
            start: 0,
            end: 0,
            fds: VecDeque::new(),
            chunk,
            max_len,
        }
    }

    /// Reads what `sock` has now, without waiting (whatever the descriptor's mode).
    /// Returns `true` at end of stream (or when the peer reset the connection).
    pub(crate) fn fill(&mut self, sock: BorrowedFd<'_>) -> io::Result<bool> {
        loop {
            match self.read_once(sock, true) {
                Ok(0) => return Ok(true),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(true),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads once, waiting for data. Returns `true` at end of stream.
    fn fill_waiting(&mut self, sock: BorrowedFd<'_>) -> io::Result<bool> {
        Ok(self.read_once(sock, false)? == 0)
    }

    fn read_once(&mut self, sock: BorrowedFd<'_>, nonblocking: bool) -> io::Result<usize> {
        if self.start > 0 && self.start * 2 >= self.end {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < self.chunk / 4 {
            let grown = (self.buf.len() * 2).max(self.end + self.chunk);
            self.buf.resize(grown, 0);
        }
        let mut fds = Vec::new();
        let r = crate::sys::stream::recv(sock, &mut self.buf[self.end..], &mut fds, nonblocking);
        self.fds.extend(fds);
        let n = r?;
        self.end += n;
        Ok(n)
    }

    /// The next whole frame buffered, with the number of descriptors its header
    /// announced (it carries those that came with it, at most that many).
    pub(crate) fn next_frame(&mut self) -> io::Result<Option<(Message, usize)>> {
        let avail = &self.buf[self.start..self.end];
        if avail.len() < HEADER {
            return Ok(None);
        }
        let len = u32::from_le_bytes(avail[..4].try_into().expect("4 bytes")) as usize;
        let nfds = u32::from_le_bytes(avail[4..8].try_into().expect("4 bytes")) as usize;
        check_len(len, self.max_len)?;
        if avail.len() - HEADER < len {
            return Ok(None);
        }
        let bytes = avail[HEADER..HEADER + len].to_vec();
        self.start += HEADER + len;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        let take = nfds.min(self.fds.len());
        let fds = self.fds.drain(..take).collect();
        Ok(Some((Message { bytes, fds }, nfds)))
    }

    /// Whether part of a frame has been received.
    fn has_partial_frame(&self) -> bool {
        self.end > self.start
    }
}

/// Receives every frame already queued on `sock` without waiting for more: for a
/// peer that has exited, everything it sent is there, and a few large reads replace
/// two per frame. A frame that has begun to arrive is read to its end (waiting).
/// Returns the frames and whether the stream ended.
pub(crate) fn recv_ready(sock: BorrowedFd<'_>, max_len: usize) -> io::Result<(Vec<Message>, bool)> {
    let mut reader = FrameReader::new(4096, max_len);
    let mut eof = reader.fill(sock)?;
    let mut frames = Vec::new();
    loop {
        while let Some((msg, announced)) = reader.next_frame()? {
            if msg.fds.len() != announced {
                return Err(fd_count_mismatch(announced, msg.fds.len()));
            }
            frames.push(msg);
        }
        if !reader.has_partial_frame() {
            break;
        }
        if eof {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        // The rest of this frame is on its way.
        eof = reader.fill_waiting(sock)?;
    }
    if !reader.fds.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "descriptors arrived without a frame to carry them",
        ));
    }
    Ok((frames, eof))
}

fn check_len(len: usize, max_len: usize) -> io::Result<()> {
    if len > max_len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over the limit of {max_len}"),
        ));
    }
    Ok(())
}

fn fd_count_mismatch(announced: usize, arrived: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("frame announced {announced} descriptors but {arrived} arrived"),
    )
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    fn pipe_with(text: &[u8]) -> OwnedFd {
        let (r, w) = socket::pipe().unwrap();
        assert_eq!(socket::write(w.as_fd(), text).unwrap(), text.len());
        r
    }

    fn read_all(fd: &OwnedFd) -> Vec<u8> {
        let mut buf = [0u8; 64];
        let n = socket::read(fd.as_fd(), &mut buf).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn recv_ready_splits_frames_and_their_descriptors() {
        let (a, b) = socket::socketpair().unwrap();
        let one = pipe_with(b"one");
        let two = pipe_with(b"two");
        let big = vec![7u8; 3 * 4096 + 5];
        send(a.as_fd(), b"first", &[one.as_fd()]).unwrap();
        send(a.as_fd(), &big, &[]).unwrap();
        send(a.as_fd(), b"", &[two.as_fd(), one.as_fd()]).unwrap();
        let (frames, eof) = recv_ready(b.as_fd(), 1 << 20).unwrap();
        assert!(!eof);
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].bytes, b"first");
        assert_eq!(frames[0].fds.len(), 1);
        assert_eq!(read_all(&frames[0].fds[0]), b"one");
        assert_eq!(frames[1].bytes, big);
        assert!(frames[1].fds.is_empty());
        assert!(frames[2].bytes.is_empty());
        assert_eq!(read_all(&frames[2].fds[0]), b"two");
        assert_eq!(frames[2].fds.len(), 2);
        // Nothing more is waiting, and the peer is still there.
        let (frames, eof) = recv_ready(b.as_fd(), 1 << 20).unwrap();
        assert!(frames.is_empty() && !eof);
        drop(a);
        let (frames, eof) = recv_ready(b.as_fd(), 1 << 20).unwrap();
        assert!(frames.is_empty() && eof);
    }

    #[test]
    fn recv_ready_finishes_a_frame_that_is_still_arriving() {
        let (a, b) = socket::socketpair().unwrap();
        let payload: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let mut header = [0u8; HEADER];
        header[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        // Half of the header and some of the body now, the rest from a thread.
        assert_eq!(socket::write(a.as_fd(), &header[..3]).unwrap(), 3);
        let (first, rest) = (header[3..].to_vec(), payload.clone());
        let writer = std::thread::spawn(move || {
            let mut all = first;
            all.extend_from_slice(&rest);
            let mut done = 0;
            while done < all.len() {
                done += socket::write(a.as_fd(), &all[done..]).unwrap();
            }
            a
        });
        // Three bytes of a header are there whatever the writer has done yet: the
        // frame is read to its end, waiting for the writer if need be.
        let (frames, eof) = recv_ready(b.as_fd(), 1 << 20).unwrap();
        let _a = writer.join().unwrap();
        assert!(!eof);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].bytes, payload);
    }

    #[test]
    fn recv_ready_reports_a_frame_cut_short() {
        let (a, b) = socket::socketpair().unwrap();
        let mut header = [0u8; HEADER];
        header[..4].copy_from_slice(&100u32.to_le_bytes());
        assert_eq!(socket::write(a.as_fd(), &header).unwrap(), HEADER);
        assert_eq!(socket::write(a.as_fd(), b"short").unwrap(), 5);
        drop(a);
        let err = recv_ready(b.as_fd(), 1 << 20).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn recv_ready_refuses_an_oversized_frame() {
        let (a, b) = socket::socketpair().unwrap();
        send(a.as_fd(), &[0u8; 100], &[]).unwrap();
        let err = recv_ready(b.as_fd(), 10).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("over the limit"), "{err}");
    }
}

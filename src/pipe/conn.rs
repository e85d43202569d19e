//! The untyped core of a pipe end: framing over a Unix stream socket, descriptors
//! out-of-band, spin-then-block receive.
//!
//! A frame is a 12-byte header (`u64` payload length, `u32` descriptor count, both
//! little-endian) and the payload; the descriptors ride on the header's `sendmsg`.
//! The receiver reads as much as the socket has into a buffer, so that a small
//! message costs one `recvmsg`; a large one is read straight into its own vector.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::queue::MessageError;
use crate::sys::socket;
use crate::sys::stream;

const HEADER: usize = 12;
const BUF: usize = 64 << 10;
/// Default largest message, in bytes.
pub(crate) const DEFAULT_MAX_MESSAGE: usize = 64 << 20;
const SPIN_MIN_NS: u32 = 2_000;
const SPIN_MAX_NS: u32 = 100_000;
const SPIN_START_NS: u32 = 50_000;

/// How long a receive may wait.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    No,
    Forever,
    Until(Instant),
}

/// Why a receive returned no message.
#[derive(Debug)]
pub(crate) enum RecvFail {
    Empty,
    Timeout,
    Closed,
    Invalid(MessageError),
    Io(io::Error),
    /// The next message is this many bytes, more than the caller can take; it is
    /// still there, untouched.
    TooLong(usize),
}

/// Why a send wrote nothing.
#[derive(Debug)]
pub(crate) enum SendFail {
    Closed,
    Invalid(MessageError),
    Io(io::Error),
}

/// A received payload: borrowed from the receive buffer, or a vector of its own.
pub(crate) enum Payload<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
}

impl Payload<'_> {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Payload::Borrowed(b) => b,
            Payload::Owned(v) => v,
        }
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        match self {
            Payload::Borrowed(b) => b.to_vec(),
            Payload::Owned(v) => v,
        }
    }
}

struct Partial {
    len: usize,
    got: usize,
    discard: bool,
    payload: Vec<u8>,
    fds: Vec<OwnedFd>,
}

struct Rx {
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    fds: VecDeque<OwnedFd>,
    cur: Option<Partial>,
    spin_ns: u32,
}

/// One end of a connected socket pair.
pub(crate) struct Conn {
    sock: OwnedFd,
    max: AtomicUsize,
    /// The send side. Holds the unwritten tail of a frame whose first bytes an
    /// async send wrote before it was dropped (or is still writing): every send
    /// writes it first, so a frame is never torn. Empty unless async sends are used.
    tx: Mutex<Vec<u8>>,
    rx: Mutex<Rx>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while receiving (in a user's Deserialize) leaves the buffer in a
    // consistent state: every step updates it before the next may fail.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn is_closed_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::NotConnected
    )
}

impl Conn {
    pub(crate) fn new(sock: OwnedFd, max: usize) -> Conn {
        Conn::with_buffered(sock, max, Vec::new(), Vec::new())
    }

    /// An end that arrived from another process with bytes and descriptors its
    /// sender had already read from the socket.
    pub(crate) fn with_buffered(
        sock: OwnedFd,
        max: usize,
        buffered: Vec<u8>,
        fds: Vec<OwnedFd>,
    ) -> Conn {
        let mut buf = vec![0u8; BUF.max(buffered.len())].into_boxed_slice();
        buf[..buffered.len()].copy_from_slice(&buffered);
        Conn {
            sock,
            max: AtomicUsize::new(max),
            tx: Mutex::new(Vec::new()),
            rx: Mutex::new(Rx {
                buf,
                pos: 0,
                end: buffered.len(),
                fds: fds.into(),
                cur: None,
                spin_ns: SPIN_START_NS,
            }),
        }
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    pub(crate) fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }

    pub(crate) fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
    }

    /// What a handle needs to carry along when it is sent to another process: the
    /// bytes and descriptors already read from the socket but not yet received.
    pub(crate) fn buffered<R>(
        &self,
        f: impl FnOnce(&[u8], &[BorrowedFd<'_>]) -> R,
    ) -> Result<R, &'static str> {
        let rx = lock(&self.rx);
        if rx.cur.is_some() {
            return Err(
                "a pipe end cannot be sent while it is half-way through receiving a message",
            );
        }
        let fds: Vec<BorrowedFd<'_>> = rx.fds.iter().map(|f| f.as_fd()).collect();
        Ok(f(&rx.buf[rx.pos..rx.end], &fds))
    }

    // ---- send --------------------------------------------------------------

    /// Sends one frame. Over the limit is refused before anything is written.
    pub(crate) fn send(&self, payload: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), SendFail> {
        let header = self.header(payload, fds)?;
        let mut backlog = lock(&self.tx);
        while !backlog.is_empty() {
            match socket::send_with_fds(self.fd(), &[IoSlice::new(&backlog)], &[]) {
                Ok(0) => return Err(SendFail::Closed),
                Ok(n) => drop(backlog.drain(..n)),
                Err(e) if is_closed_error(&e) => return Err(SendFail::Closed),
                Err(e) => return Err(SendFail::Io(e)),
            }
        }
        let total = HEADER + payload.len();
        let mut sent = 0;
        while sent < total {
            let r = if sent < HEADER {
                let bufs = [IoSlice::new(&header[sent..]), IoSlice::new(payload)];
                socket::send_with_fds(self.fd(), &bufs, if sent == 0 { fds } else { &[] })
            } else {
                socket::send_with_fds(self.fd(), &[IoSlice::new(&payload[sent - HEADER..])], &[])
            };
            match r {
                Ok(0) => return Err(SendFail::Closed),
                Ok(n) => sent += n,
                Err(e) if is_closed_error(&e) => return Err(SendFail::Closed),
                Err(e) => return Err(SendFail::Io(e)),
            }
        }
        Ok(())
    }

    /// A frame's header, after the checks that refuse a frame before anything is
    /// written.
    fn header(&self, payload: &[u8], fds: &[BorrowedFd<'_>]) -> Result<[u8; HEADER], SendFail> {
        let max = self.max();
        if payload.len() > max {
            return Err(SendFail::Invalid(MessageError::too_large(
                payload.len(),
                max,
            )));
        }
        if fds.len() > socket::MAX_FDS_PER_MSG {
            return Err(SendFail::Invalid(MessageError::encode(format!(
                "a message may carry at most {} handles' descriptors, not {}",
                socket::MAX_FDS_PER_MSG,
                fds.len()
            ))));
        }
        let mut header = [0u8; HEADER];
        header[..8].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        header[8..].copy_from_slice(&(fds.len() as u32).to_le_bytes());
        Ok(header)
    }

    /// Sends one frame without blocking the thread: the socket is watched by the
    /// runtime's reactor while its buffer is full.
    ///
    /// Cancel safety: until the first byte is written, dropping the future sends
    /// nothing. Once it is, the frame is committed: the rest goes to the backlog,
    /// which this future (or, if it is dropped, the next send from this end) writes.
    #[cfg(feature = "tokio")]
    pub(crate) async fn send_async(
        &self,
        payload: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), SendFail> {
        let header = self.header(payload, fds)?;
        let total = HEADER + payload.len();
        loop {
            {
                let mut backlog = lock(&self.tx);
                if self.flush_nowait(&mut backlog)? {
                    let bufs = [IoSlice::new(&header), IoSlice::new(payload)];
                    match crate::sys::event_fd::send_with_fds_nowait(self.fd(), &bufs, fds) {
                        Ok(0) => return Err(SendFail::Closed),
                        Ok(n) if n == total => return Ok(()),
                        Ok(n) => {
                            if n < HEADER {
                                backlog.extend_from_slice(&header[n..]);
                                backlog.extend_from_slice(payload);
                            } else {
                                backlog.extend_from_slice(&payload[n - HEADER..]);
                            }
                            break;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) if is_closed_error(&e) => return Err(SendFail::Closed),
                        Err(e) => return Err(SendFail::Io(e)),
                    }
                }
            }
            crate::aio::writable(self.fd())
                .await
                .map_err(SendFail::Io)?;
        }
        // Committed: write the rest (and anything queued behind it by then).
        loop {
            if self.flush_nowait(&mut lock(&self.tx))? {
                return Ok(());
            }
            crate::aio::writable(self.fd())
                .await
                .map_err(SendFail::Io)?;
        }
    }

    /// Writes the backlog without waiting; `true` once it is empty.
    #[cfg(feature = "tokio")]
    fn flush_nowait(&self, backlog: &mut Vec<u8>) -> Result<bool, SendFail> {
        while !backlog.is_empty() {
            match crate::sys::event_fd::send_with_fds_nowait(
                self.fd(),
                &[IoSlice::new(backlog)],
                &[],
            ) {
                Ok(0) => return Err(SendFail::Closed),
                Ok(n) => drop(backlog.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if is_closed_error(&e) => return Err(SendFail::Closed),
                Err(e) => return Err(SendFail::Io(e)),
            }
        }
        Ok(true)
    }

    /// Receives one frame without blocking the thread, as [`recv`](Conn::recv)
    /// with the socket watched by the runtime's reactor.
    ///
    /// Cancel safety: bytes read from the socket stay in this end's buffer (a
    /// partial frame included) until a receive completes, so dropping the future
    /// loses nothing.
    #[cfg(feature = "tokio")]
    pub(crate) async fn recv_async<R>(
        &self,
        f: impl FnOnce(Payload<'_>, Vec<OwnedFd>) -> R,
    ) -> Result<R, RecvFail> {
        let mut f = Some(f);
        loop {
            match self.recv(Wait::No, |p, fds| (f.take().expect("called once"))(p, fds)) {
                Err(RecvFail::Empty) => {}
                r => return r,
            }
            crate::aio::readable(self.fd())
                .await
                .map_err(RecvFail::Io)?;
        }
    }

    // ---- receive -----------------------------------------------------------

    /// Receives one frame and hands its payload and descriptors to `f`.
    pub(crate) fn recv<R>(
        &self,
        wait: Wait,
        f: impl FnOnce(Payload<'_>, Vec<OwnedFd>) -> R,
    ) -> Result<R, RecvFail> {
        self.recv_fitting(wait, usize::MAX, f)
    }

    /// As [`recv`](Conn::recv), for a message of at most `room` bytes: a longer
    /// one is [`RecvFail::TooLong`] and stays where it is, whole, for a later receive.
    pub(crate) fn recv_fitting<R>(
        &self,
        wait: Wait,
        room: usize,
        f: impl FnOnce(Payload<'_>, Vec<OwnedFd>) -> R,
    ) -> Result<R, RecvFail> {
        let mut rx = lock(&self.rx);
        let rx = &mut *rx;
        loop {
            if let Some(p) = rx.cur.as_ref() {
                if !p.discard && p.len > room {
                    return Err(RecvFail::TooLong(p.len));
                }
            }
            if let Some(p) = rx.cur.as_mut() {
                let take = (rx.end - rx.pos).min(p.len - p.got);
                if !p.discard {
                    p.payload[p.got..p.got + take].copy_from_slice(&rx.buf[rx.pos..rx.pos + take]);
                }
                rx.pos += take;
                p.got += take;
                if p.got == p.len {
                    let p = rx.cur.take().expect("partial frame");
                    if p.discard {
                        continue;
                    }
                    return Ok(f(Payload::Owned(p.payload), p.fds));
                }
                // The rest of a large payload goes straight into its vector; skipped
                // bytes go through the buffer (already drained by `take` above).
                if p.discard {
                    rx.pos = 0;
                    rx.end = self.read(&mut rx.buf, &mut rx.fds, wait, &mut rx.spin_ns)?;
                } else {
                    p.got +=
                        self.read(&mut p.payload[p.got..], &mut rx.fds, wait, &mut rx.spin_ns)?;
                }
                continue;
            }
            if rx.end - rx.pos >= HEADER {
                let h = &rx.buf[rx.pos..rx.pos + HEADER];
                let len = u64::from_le_bytes(h[..8].try_into().expect("8 bytes"));
                let nfds = u32::from_le_bytes(h[8..].try_into().expect("4 bytes")) as usize;
                if len > room as u64 && len <= self.max() as u64 {
                    return Err(RecvFail::TooLong(len as usize));
                }
                if nfds > rx.fds.len() {
                    return Err(RecvFail::Io(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "message announced {nfds} descriptors but {} arrived",
                            rx.fds.len()
                        ),
                    )));
                }
                rx.pos += HEADER;
                let fds: Vec<OwnedFd> = rx.fds.drain(..nfds).collect();
                let max = self.max();
                if len > max as u64 {
                    // Skip its bytes (now and in later calls) and its descriptors.
                    drop(fds);
                    rx.cur = Some(Partial {
                        len: len.min(usize::MAX as u64) as usize,
                        got: 0,
                        discard: true,
                        payload: Vec::new(),
                        fds: Vec::new(),
                    });
                    let take = (rx.end - rx.pos).min(len as usize);
                    rx.pos += take;
                    if let Some(p) = rx.cur.as_mut() {
                        p.got = take;
                        if p.got == p.len {
                            rx.cur = None;
                        }
                    }
                    return Err(RecvFail::Invalid(MessageError::too_large(
                        len as usize,
                        max,
                    )));
                }
                let len = len as usize;
                if rx.end - rx.pos >= len {
                    let start = rx.pos;
                    rx.pos += len;
                    if rx.pos == rx.end {
                        // Everything consumed: the next read starts at the front.
                        let payload = &rx.buf[start..start + len];
                        let r = f(Payload::Borrowed(payload), fds);
                        rx.pos = 0;
                        rx.end = 0;
                        return Ok(r);
                    }
                    return Ok(f(Payload::Borrowed(&rx.buf[start..start + len]), fds));
                }
                rx.cur = Some(Partial {
                    len,
                    got: 0,
                    discard: false,
                    payload: vec![0u8; len],
                    fds,
                });
                continue;
            }
            // Need more bytes: compact, then read.
            if rx.pos > 0 {
                rx.buf.copy_within(rx.pos..rx.end, 0);
                rx.end -= rx.pos;
                rx.pos = 0;
            }
            let end = rx.end;
            let n = self.read(&mut rx.buf[end..], &mut rx.fds, wait, &mut rx.spin_ns)?;
            rx.end += n;
        }
    }

    /// Reads at least one byte into `dst`, waiting as `wait` allows: a bounded,
    /// adaptive spin of non-blocking reads first, then a blocking read or `poll`.
    fn read(
        &self,
        dst: &mut [u8],
        fds: &mut VecDeque<OwnedFd>,
        wait: Wait,
        spin_ns: &mut u32,
    ) -> Result<usize, RecvFail> {
        debug_assert!(!dst.is_empty());
        let mut got_fds = Vec::new();
        let r = self.read_inner(dst, &mut got_fds, wait, spin_ns);
        fds.extend(got_fds);
        r
    }

    fn read_inner(
        &self,
        dst: &mut [u8],
        fds: &mut Vec<OwnedFd>,
        wait: Wait,
        spin_ns: &mut u32,
    ) -> Result<usize, RecvFail> {
        let once =
            |dst: &mut [u8], fds: &mut Vec<OwnedFd>, nb: bool| -> Result<Option<usize>, RecvFail> {
                match stream::recv(self.fd(), dst, fds, nb) {
                    Ok(0) => Err(RecvFail::Closed),
                    Ok(n) => Ok(Some(n)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                    Err(e) if is_closed_error(&e) => Err(RecvFail::Closed),
                    Err(e) => Err(RecvFail::Io(e)),
                }
            };
        if let Some(n) = once(dst, fds, true)? {
            return Ok(n);
        }
        if let Wait::No = wait {
            return Err(RecvFail::Empty);
        }
        // Poll before sleeping: on these machines waking a sleeping process costs
        // tens of microseconds, a handoff between two polling ones a few. Between
        // polls, yield the CPU, so that a peer waiting for this CPU gets it.
        let start = Instant::now();
        let budget = Duration::from_nanos(u64::from(*spin_ns));
        loop {
            let now = Instant::now();
            if now - start >= budget {
                break;
            }
            if let Wait::Until(d) = wait {
                if now >= d {
                    return Err(RecvFail::Timeout);
                }
            }
            std::thread::yield_now();
            if let Some(n) = once(dst, fds, true)? {
                return Ok(n);
            }
        }
        let adapt = |spin_ns: &mut u32| {
            // A wait that needed the kernel but was over soon would have been
            // cheaper polled; a long one means the peer is busy elsewhere.
            let waited = start.elapsed().as_nanos().min(u128::from(u32::MAX)) as u32;
            *spin_ns = if waited <= SPIN_MAX_NS {
                (*spin_ns)
                    .max(waited.saturating_add(waited / 4))
                    .min(SPIN_MAX_NS)
            } else {
                (*spin_ns / 2).max(SPIN_MIN_NS)
            };
        };
        loop {
            match wait {
                Wait::Forever => {
                    if let Some(n) = once(dst, fds, false)? {
                        adapt(spin_ns);
                        return Ok(n);
                    }
                }
                Wait::Until(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(RecvFail::Timeout);
                    }
                    socket::poll(&[(self.fd(), false)], Some(left)).map_err(RecvFail::Io)?;
                    if let Some(n) = once(dst, fds, true)? {
                        adapt(spin_ns);
                        return Ok(n);
                    }
                }
                Wait::No => return Err(RecvFail::Empty),
            }
        }
    }

    /// Whether bytes of a message are already buffered here (read from the socket
    /// but not yet received). Not when another thread is receiving.
    pub(crate) fn has_buffered(&self) -> bool {
        match self.rx.try_lock() {
            Ok(rx) => rx.end > rx.pos,
            Err(std::sync::TryLockError::Poisoned(p)) => {
                let rx = p.into_inner();
                rx.end > rx.pos
            }
            Err(std::sync::TryLockError::WouldBlock) => false,
        }
    }

    /// Whether a receive would find something without waiting, after waiting up to
    /// `timeout` (`None`: forever). End of stream and errors count as something.
    pub(crate) fn poll(&self, timeout: Option<Duration>) -> bool {
        // (Another thread may be blocked receiving, holding the buffer: then only
        // the socket is looked at, so that the timeout holds.)
        if self.has_buffered() {
            return true;
        }
        match socket::poll(&[(self.fd(), false)], timeout) {
            Ok(r) => r.first().is_some_and(|r| r.readable || r.hangup),
            Err(_) => true,
        }
    }
}

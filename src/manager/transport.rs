//! Streams (Unix or TCP) carrying frames, encrypted with Noise over TCP, or with
//! mutual TLS over TCP when the manager was given certificates (feature `tls`).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::auth::{self, HandshakeError, Transcript};
use super::budget::Budget;
use super::proto::{self, FrameDecoder};
#[cfg(feature = "tls")]
use super::tls::{self, ClientSide, ServerSide, TlsStream};

/// A connected stream socket.
#[derive(Debug)]
pub(crate) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
    /// TCP carrying mutual TLS (feature `tls`).
    #[cfg(feature = "tls")]
    Tls(TlsStream),
}

impl Stream {
    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(t),
            Stream::Tcp(s) => s.set_read_timeout(t),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.tcp().set_read_timeout(t),
        }
    }

    pub(crate) fn read_timeout(&self) -> io::Result<Option<Duration>> {
        match self {
            Stream::Unix(s) => s.read_timeout(),
            Stream::Tcp(s) => s.read_timeout(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.tcp().read_timeout(),
        }
    }

    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_write_timeout(t),
            Stream::Tcp(s) => s.set_write_timeout(t),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.tcp().set_write_timeout(t),
        }
    }

    pub(crate) fn shutdown(&self) {
        let _ = match self {
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Both),
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.tcp().shutdown(std::net::Shutdown::Both),
        };
    }

    /// Whether this is plain TCP (the session is then Noise's).
    pub(crate) fn is_tcp(&self) -> bool {
        matches!(self, Stream::Tcp(_))
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Unix(s) => s.as_fd(),
            Stream::Tcp(s) => s.as_fd(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.tcp().as_fd(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why a frame could not be received.
#[derive(Debug)]
pub(crate) enum RecvError {
    /// The peer closed the connection between frames.
    Closed,
    /// No frame within the read timeout.
    Idle,
    /// A broken frame: over the limit, cut short, failed decryption.
    Protocol(String),
    Io(io::Error),
}

/// How long a reader polls before it blocks.
const POLL_BUDGET: Duration = Duration::from_micros(60);

/// Largest Noise message.
const NOISE_MAX: usize = 65535;
const TAG: usize = 16;
/// Plaintext bytes per Noise message: one flag byte, the rest payload.
const CHUNK: usize = NOISE_MAX - TAG - 1;
/// Handshake frames (HMAC exchange and Noise messages) stay under this.
pub(crate) const HANDSHAKE_FRAME_MAX: usize = 256;

/// Frames over a stream.
pub(crate) struct Channel {
    pub(crate) stream: Stream,
    noise: Option<Box<snow::TransportState>>,
    decoder: FrameDecoder,
    max_frame: usize,
    rbuf: Box<[u8]>,
    /// Plaintext of a frame being reassembled from Noise chunks.
    partial: Vec<u8>,
}

impl Channel {
    fn new(stream: Stream, noise: Option<snow::TransportState>, max_frame: usize) -> Channel {
        let wire_max = if noise.is_some() {
            NOISE_MAX
        } else {
            max_frame
        };
        Channel {
            stream,
            noise: noise.map(Box::new),
            decoder: FrameDecoder::new(wire_max),
            max_frame,
            rbuf: vec![0u8; 64 << 10].into_boxed_slice(),
            partial: Vec::new(),
        }
    }

    /// The client's side of connection set-up: HMAC, then Noise over TCP, all
    /// within the stream's read timeout (the whole exchange, not each read).
    pub(crate) fn client(
        mut stream: Stream,
        key: &[u8],
        max_frame: usize,
    ) -> Result<Channel, HandshakeError> {
        let tcp = stream.is_tcp();
        let mut b = Budget::from_timeout(&mut stream)?;
        let t = auth::client(&mut b, key, &[])?;
        let noise = if tcp {
            Some(noise_initiator(&mut b, key, &t)?)
        } else {
            None
        };
        Ok(Channel::new(stream, noise, max_frame))
    }

    /// The server's side of connection set-up, within the stream's read timeout.
    pub(crate) fn server(
        mut stream: Stream,
        key: &[u8],
        max_frame: usize,
    ) -> Result<Channel, HandshakeError> {
        let tcp = stream.is_tcp();
        let mut b = Budget::from_timeout(&mut stream)?;
        let t = auth::server(&mut b, key, &[])?;
        let noise = if tcp {
            Some(noise_responder(&mut b, key, &t)?)
        } else {
            None
        };
        Ok(Channel::new(stream, noise, max_frame))
    }

    /// The client's side of a mutual-TLS connection: the TLS handshake, then the
    /// key's proof inside it, bound to the TLS session.
    #[cfg(feature = "tls")]
    pub(crate) fn client_tls(
        tcp: TcpStream,
        peer: std::net::SocketAddr,
        tls: &ClientSide,
        key: &[u8],
        max_frame: usize,
    ) -> Result<Channel, HandshakeError> {
        let until = super::budget::deadline_of(&tcp)?;
        let mut stream = tls.connect(tcp, peer, until)?;
        let binding = stream.binding()?;
        auth::client(&mut Budget::until(&mut stream, until), key, &binding)
            .map_err(tls::inner_error)?;
        Ok(Channel::new(Stream::Tls(stream), None, max_frame))
    }

    /// The server's side of a mutual-TLS connection.
    #[cfg(feature = "tls")]
    pub(crate) fn server_tls(
        tcp: TcpStream,
        tls: &ServerSide,
        key: &[u8],
        max_frame: usize,
    ) -> Result<Channel, HandshakeError> {
        let until = super::budget::deadline_of(&tcp)?;
        let mut stream = tls.accept(tcp, until)?;
        let binding = stream.binding()?;
        auth::server(&mut Budget::until(&mut stream, until), key, &binding)
            .map_err(tls::inner_error)?;
        Ok(Channel::new(Stream::Tls(stream), None, max_frame))
    }

    /// Whether the session is encrypted (Noise or TLS).
    pub(crate) fn is_encrypted(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Stream::Tls(_) = self.stream {
            return true;
        }
        self.noise.is_some()
    }

    /// Encodes `payload` as the bytes of one or more stream frames.
    pub(crate) fn seal(&mut self, payload: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        if payload.len() > self.max_frame {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "message of {} bytes is over the frame limit of {} bytes",
                    payload.len(),
                    self.max_frame
                ),
            ));
        }
        let Some(noise) = self.noise.as_mut() else {
            out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            out.extend_from_slice(payload);
            return Ok(());
        };
        let mut chunks = payload.chunks(CHUNK).peekable();
        let mut plain = Vec::with_capacity(payload.len().min(CHUNK) + 1);
        loop {
            let chunk = chunks.next().unwrap_or(&[]);
            let more = chunks.peek().is_some();
            plain.clear();
            plain.push(more as u8);
            plain.extend_from_slice(chunk);
            // The ciphertext goes straight into `out`, after its length header
            // (sized to the message: no 64 KiB scratch buffer to clear per frame).
            let at = out.len();
            out.resize(at + 4 + plain.len() + TAG, 0);
            let n = match noise.write_message(&plain, &mut out[at + 4..]) {
                Ok(n) => n,
                Err(e) => {
                    out.truncate(at);
                    return Err(io::Error::other(format!("encryption failed: {e}")));
                }
            };
            out[at..at + 4].copy_from_slice(&(n as u32).to_le_bytes());
            out.truncate(at + 4 + n);
            if !more {
                return Ok(());
            }
        }
    }

    /// Sends one message.
    pub(crate) fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        let mut out = Vec::with_capacity(payload.len() + 24);
        self.seal(payload, &mut out)?;
        self.stream.write_all(&out)
    }

    /// Sends one message that more will follow soon: over TCP the kernel holds
    /// it back (`MSG_MORE`) until the next [`send`](Self::send), or about 200 ms at
    /// most, so that a pipelined request and the call after it leave in one
    /// segment and wake the server once. Elsewhere it is [`send`](Self::send).
    pub(crate) fn send_more(&mut self, payload: &[u8]) -> io::Result<()> {
        if !self.stream.is_tcp() {
            return self.send(payload);
        }
        let mut out = Vec::with_capacity(payload.len() + 24);
        self.seal(payload, &mut out)?;
        let tcp = self.stream.as_fd();
        let mut rest = &out[..];
        while !rest.is_empty() {
            match rustix::net::send(tcp, rest, rustix::net::SendFlags::MORE) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => rest = &rest[n..],
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Sends at once what [`send_more`](Self::send_more) held back.
    pub(crate) fn push(&mut self) {
        if let Stream::Tcp(tcp) = &self.stream {
            // Setting TCP_NODELAY (already on) sends the pending segments now.
            let _ = tcp.set_nodelay(true);
        }
    }

    /// Sends bytes already sealed (several messages at once).
    pub(crate) fn send_sealed(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Receives one message.
    pub(crate) fn recv(&mut self) -> Result<Vec<u8>, RecvError> {
        loop {
            match self.decoder.next_frame() {
                Err(e) => return Err(RecvError::Protocol(e)),
                Ok(Some(frame)) => {
                    if let Some(msg) = self.open(frame)? {
                        return Ok(msg);
                    }
                    continue;
                }
                Ok(None) => {}
            }
            let n = match self.read_some() {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(RecvError::Idle);
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(RecvError::Closed);
                }
                Err(e) => return Err(RecvError::Io(e)),
            };
            if n == 0 {
                return if self.decoder.pending() == 0 && self.partial.is_empty() {
                    Err(RecvError::Closed)
                } else {
                    Err(RecvError::Protocol(
                        "the connection ended inside a frame".into(),
                    ))
                };
            }
            self.decoder.push(&self.rbuf[..n]);
        }
    }

    /// Reads what is there, polling (yielding the CPU between looks) for up to
    /// [`POLL_BUDGET`] on a Unix socket, [`TCP_POLL_BUDGET`] over TCP (see
    /// [`poll_tcp`]), before a blocking read: a reply usually comes within
    /// microseconds, and sleeping in the kernel costs tens of them to wake.
    fn read_some(&mut self) -> io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Stream::Tls(s) = &mut self.stream {
            // Wait for the next record as a plain TCP reader does (without taking
            // its bytes: rustls reads them), then read, blocking if none came.
            let mut one = [0u8; 1];
            poll_tcp(s.tcp().as_fd(), &mut one, rustix::net::RecvFlags::PEEK)?;
            return s.read(&mut self.rbuf);
        }
        let fd = self.stream.as_fd();
        let mut fds = Vec::new();
        if self.stream.is_tcp() {
            if let Some(n) = poll_tcp(fd, &mut self.rbuf, rustix::net::RecvFlags::empty())? {
                return Ok(n);
            }
            // Blocking, within the socket's read timeout.
            return crate::sys::stream::recv(fd, &mut self.rbuf, &mut fds, false);
        }
        let start = std::time::Instant::now();
        loop {
            match crate::sys::stream::recv(fd, &mut self.rbuf, &mut fds, true) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return r,
            }
            if start.elapsed() >= POLL_BUDGET {
                // Blocking, within the socket's read timeout. (Descriptors nobody
                // asked for are closed as `fds` drops.)
                return crate::sys::stream::recv(fd, &mut self.rbuf, &mut fds, false);
            }
            std::thread::yield_now();
        }
    }

    /// Whether a whole frame is already buffered (so `recv` will not block).
    pub(crate) fn has_buffered(&self) -> bool {
        self.decoder.frame_ready()
    }

    fn open(&mut self, frame: Vec<u8>) -> Result<Option<Vec<u8>>, RecvError> {
        let Some(noise) = self.noise.as_mut() else {
            return Ok(Some(frame));
        };
        let mut plain = vec![0u8; frame.len()];
        let n = noise.read_message(&frame, &mut plain).map_err(|_| {
            RecvError::Protocol(
                "a frame failed authentication (modified, replayed or out of order)".into(),
            )
        })?;
        if n == 0 {
            return Err(RecvError::Protocol("an empty encrypted frame".into()));
        }
        let more = match plain[0] {
            0 => false,
            1 => true,
            _ => return Err(RecvError::Protocol("a bad chunk flag".into())),
        };
        if self.partial.len() + n - 1 > self.max_frame {
            return Err(RecvError::Protocol(format!(
                "message over the limit of {} bytes",
                self.max_frame
            )));
        }
        self.partial.extend_from_slice(&plain[1..n]);
        if more {
            Ok(None)
        } else {
            Ok(Some(std::mem::take(&mut self.partial)))
        }
    }
}

/// How long a TCP reader polls the socket before it sleeps in `recv`.
///
/// Over loopback a reply (or a client's next request) usually comes within a few
/// microseconds, while waking a reader asleep on the other CPU costs tens of them
/// on these machines (`benches/c/os_tcp_pingpong.c` measures both: a ping-pong
/// whose sides block in `read`, and one whose sides poll). The budget is about
/// twice a wake-up, so a reader that waits longer wastes at most about twice what
/// sleeping at once would have cost.
const TCP_POLL_BUDGET: Duration = Duration::from_micros(50);

/// Reads what arrives on TCP socket `fd` within [`TCP_POLL_BUDGET`], without
/// sleeping; `None` when nothing did.
///
/// It does not poll on one CPU, nor while the machine has more runnable threads
/// than CPUs ([`oversubscribed`](crate::sync::wait::oversubscribed)): the peer, or
/// the kernel's network work that delivers its bytes, may be waiting for this CPU
/// (measured on a loaded 2-CPU machine: the polling TCP ping-pong of
/// `os_tcp_pingpong.c` falls from about 100,000 round trips a second to under
/// 10,000). Between looks it yields the CPU, for the same reason.
/// `flags` are added to the receive's (`PEEK` looks without taking the bytes).
fn poll_tcp(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: rustix::net::RecvFlags,
) -> io::Result<Option<usize>> {
    static MULTI_CPU: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let start = std::time::Instant::now();
    if !*MULTI_CPU.get_or_init(|| crate::sys::process::cpu_count() > 1)
        || crate::sync::wait::oversubscribed(start)
    {
        return Ok(None);
    }
    poll_for(fd, buf, flags, start, TCP_POLL_BUDGET)
}

/// Looks for bytes on `fd` (yielding the CPU between looks) until `budget` after
/// `start`: `Some(0)` at the end of the stream, `None` when nothing came.
fn poll_for(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: rustix::net::RecvFlags,
    start: std::time::Instant,
    budget: Duration,
) -> io::Result<Option<usize>> {
    loop {
        match rustix::net::recv(fd, &mut *buf, flags | rustix::net::RecvFlags::DONTWAIT) {
            Ok((n, _)) => return Ok(Some(n)),
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        if start.elapsed() >= budget {
            return Ok(None);
        }
        std::thread::yield_now();
    }
}

fn noise_err(e: snow::Error) -> HandshakeError {
    HandshakeError::Rejected(format!("the encrypted session could not be set up: {e}"))
}

fn write_small(stream: &mut impl Write, msg: &[u8]) -> Result<(), HandshakeError> {
    stream.write_all(&proto::frame(msg))?;
    Ok(())
}

fn read_small(stream: &mut impl Read) -> Result<Vec<u8>, HandshakeError> {
    let mut h = [0u8; 4];
    stream.read_exact(&mut h).map_err(eof_rejected)?;
    let len = u32::from_le_bytes(h) as usize;
    if len > HANDSHAKE_FRAME_MAX {
        return Err(HandshakeError::Rejected(format!(
            "a handshake frame of {len} bytes (the limit is {HANDSHAKE_FRAME_MAX})"
        )));
    }
    let mut b = vec![0u8; len];
    stream.read_exact(&mut b).map_err(eof_rejected)?;
    Ok(b)
}

fn eof_rejected(e: io::Error) -> HandshakeError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            HandshakeError::Rejected("the peer closed the connection during the handshake".into())
        }
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            HandshakeError::Rejected("the peer did not complete the handshake in time".into())
        }
        _ => HandshakeError::Io(e),
    }
}

fn builder<'a>(psk: &'a [u8; 32], prologue: &'a [u8]) -> Result<snow::Builder<'a>, HandshakeError> {
    let params = auth::NOISE_PARAMS.parse().map_err(noise_err)?;
    snow::Builder::new(params)
        .psk(0, psk)
        .map_err(noise_err)?
        .prologue(prologue)
        .map_err(noise_err)
}

fn noise_initiator(
    stream: &mut (impl Read + Write),
    key: &[u8],
    t: &Transcript,
) -> Result<snow::TransportState, HandshakeError> {
    let psk = auth::session_psk(key, t);
    let prologue = auth::prologue(t);
    let mut hs = builder(&psk, &prologue)?
        .build_initiator()
        .map_err(noise_err)?;
    let mut buf = [0u8; HANDSHAKE_FRAME_MAX];
    let n = hs.write_message(&[], &mut buf).map_err(noise_err)?;
    write_small(stream, &buf[..n])?;
    let msg = read_small(stream)?;
    hs.read_message(&msg, &mut buf).map_err(noise_err)?;
    hs.into_transport_mode().map_err(noise_err)
}

fn noise_responder(
    stream: &mut (impl Read + Write),
    key: &[u8],
    t: &Transcript,
) -> Result<snow::TransportState, HandshakeError> {
    let psk = auth::session_psk(key, t);
    let prologue = auth::prologue(t);
    let mut hs = builder(&psk, &prologue)?
        .build_responder()
        .map_err(noise_err)?;
    let mut buf = [0u8; HANDSHAKE_FRAME_MAX];
    let msg = read_small(stream)?;
    hs.read_message(&msg, &mut buf).map_err(noise_err)?;
    let n = hs.write_message(&[], &mut buf).map_err(noise_err)?;
    write_small(stream, &buf[..n])?;
    hs.into_transport_mode().map_err(noise_err)
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};
    use std::time::Instant;

    use super::*;
    use rustix::net::RecvFlags;

    fn tcp_pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    /// The polling read (whatever the machine's load, which decides whether it
    /// runs): bytes that are there, the end of the stream, a reset, and giving up.
    #[test]
    fn polling_a_tcp_socket_returns_bytes_the_end_or_errors_and_gives_up_when_idle() {
        let (mut a, b) = tcp_pair();
        let mut buf = [0u8; 64];
        let t0 = Instant::now();
        let budget = Duration::from_millis(2);
        assert_eq!(
            poll_for(b.as_fd(), &mut buf, RecvFlags::empty(), t0, budget).unwrap(),
            None
        );
        assert!(t0.elapsed() >= budget, "gave up before its budget");
        a.write_all(b"hello").unwrap();
        // Over loopback the bytes are there once `write` returns; a generous
        // budget covers a machine that is slow to run the network work.
        let long = Duration::from_secs(10);
        assert_eq!(
            poll_for(
                b.as_fd(),
                &mut buf,
                RecvFlags::empty(),
                Instant::now(),
                long
            )
            .unwrap(),
            Some(5)
        );
        assert_eq!(&buf[..5], b"hello");
        drop(a);
        assert_eq!(
            poll_for(
                b.as_fd(),
                &mut buf,
                RecvFlags::empty(),
                Instant::now(),
                long
            )
            .unwrap(),
            Some(0),
            "the end of the stream"
        );

        // A peer that closes with bytes unread resets the connection: an error,
        // not a hang or a false end of stream.
        let (a, b) = tcp_pair();
        (&a).write_all(b"unread").unwrap();
        b.set_read_timeout(Some(long)).unwrap();
        assert_eq!(b.peek(&mut buf).unwrap(), 6);
        drop(b);
        let r = poll_for(
            a.as_fd(),
            &mut buf,
            RecvFlags::empty(),
            Instant::now(),
            long,
        );
        assert!(
            matches!(&r, Err(e) if e.kind() == io::ErrorKind::ConnectionReset),
            "{r:?}"
        );
    }
}

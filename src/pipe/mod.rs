//! Pipes between two processes: [`duplex`] [`Connection`]s and [`simplex`]
//! [`Sender`]/[`Receiver`] pairs.
//!
//! The counterpart of Python's `multiprocessing.Pipe(duplex)`. A pipe is a
//! connected pair of Unix stream sockets. Ends are typed: `send` takes a serde
//! value, `recv` returns one; `send_bytes`/`recv_bytes` move raw bytes. Handles
//! inside a value (a [`Queue`](crate::queue::Queue), another pipe end) travel along
//! as file descriptors (`SCM_RIGHTS`), and pipe ends are handles themselves: pass one
//! to a child process as an argument, or send it over another pipe.
//!
//! ```
//! use mproc::pipe;
//!
//! let (parent, child) = pipe::duplex::<String>()?;
//! std::thread::spawn(move || {
//!     let msg = child.recv().unwrap();
//!     child.send(&msg.to_uppercase()).unwrap();
//! });
//! parent.send(&"ping".to_string()).unwrap();
//! assert_eq!(parent.recv().unwrap(), "PING");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Use a pipe between two processes that talk to each other. For many producers or
//! consumers, or the highest throughput of small items, use a
//! [`queue`](crate::queue), which lives in shared memory.
//!
//! # Behaviour
//!
//! - **Peer gone**: when the other end is dropped or its process dies, `recv`
//!   returns the messages already sent, then [`RecvError::Closed`]; `send` returns
//!   [`SendError::Closed`] (never `SIGPIPE`, never a hang).
//! - **Size limit**: each end has a maximum message size (64 MiB by default,
//!   [`Pipe::max_message_size`], `set_max_message_size`). Sending a larger message
//!   is refused before anything is written; receiving one reports
//!   [`MessageError::is_too_large`] and skips its bytes. Either way the pipe stays
//!   usable.
//! - **Waiting**: a receive first polls the socket for a few tens of microseconds
//!   (adapting to how long the peer usually takes), then sleeps in the kernel. Two
//!   processes that answer each other quickly thus avoid the cost of waking up
//!   (tens of microseconds on a virtual machine).
//!
//! # Caveats
//!
//! - **Drop**: dropping an end closes it; the other side sees `Closed` once it has
//!   received what was sent before.
//! - **Child crash / parent death**: the survivor gets `Closed`; a message the dead
//!   process was half-way through sending is never delivered in part.
//! - **Sharing an end**: the methods take `&self` and are safe to call from several
//!   threads (sends and receives are each serialized). An end sent to another
//!   process stays usable here as well; two processes receiving on the same end
//!   compete for messages, and concurrent large sends from two processes on one end
//!   may interleave, as with Python's pipes.
//! - **Ctrl-C, fork**: nothing special; a forked child holds copies of the ends.

#[cfg(feature = "tokio")]
mod aio;
mod conn;
mod error;

use std::any::type_name;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use error::{
    MessageError, RecvBytesIntoError, RecvError, RecvTimeoutError, SendError, TryRecvError,
};

use crate::handle::{Fd, FdRef};
use conn::{Conn, Payload, RecvFail, SendFail, Wait};

/// Creates a pipe whose two ends both send and receive `T`s (Python's
/// `Pipe(duplex=True)`).
///
/// Use [`Pipe::duplex`] for different types in each direction or a non-default
/// size limit.
///
/// # Errors
///
/// The error of `socketpair` (for example, too many open files).
///
/// # Examples
///
/// ```
/// let (a, b) = mproc::pipe::duplex::<u64>()?;
/// a.send(&1).unwrap();
/// b.send(&2).unwrap();
/// assert_eq!(b.recv().unwrap(), 1);
/// assert_eq!(a.recv().unwrap(), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn duplex<T>() -> io::Result<(Connection<T>, Connection<T>)> {
    Pipe::new().duplex()
}

/// Creates a one-way pipe: a [`Sender`] and a [`Receiver`] (Python's
/// `Pipe(duplex=False)`, which returns them the other way round).
///
/// # Errors
///
/// The error of `socketpair`.
///
/// # Examples
///
/// ```
/// let (tx, rx) = mproc::pipe::simplex::<String>()?;
/// tx.send(&"one way".to_string()).unwrap();
/// assert_eq!(rx.recv().unwrap(), "one way");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn simplex<T>() -> io::Result<(Sender<T>, Receiver<T>)> {
    Pipe::new().simplex()
}

/// Settings for a new pipe; [`duplex`](Pipe::duplex) or [`simplex`](Pipe::simplex)
/// creates it.
///
/// # Examples
///
/// ```
/// use mproc::pipe::Pipe;
///
/// // Requests one way, responses the other, at most 1 MiB each.
/// let (client, server) = Pipe::new().max_message_size(1 << 20).duplex::<String, usize>()?;
/// client.send(&"hello".to_string()).unwrap();
/// let req = server.recv().unwrap();
/// server.send(&req.len()).unwrap();
/// assert_eq!(client.recv().unwrap(), 5);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct Pipe {
    max_message: usize,
}

impl Default for Pipe {
    fn default() -> Self {
        Pipe::new()
    }
}

impl Pipe {
    /// Default settings: a 64 MiB message size limit on both ends.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = mproc::pipe::Pipe::new().simplex::<u8>()?;
    /// assert_eq!(tx.max_message_size(), 64 << 20);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> Pipe {
        Pipe {
            max_message: conn::DEFAULT_MAX_MESSAGE,
        }
    }

    /// The largest message, in encoded bytes, that either end sends or accepts.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = mproc::pipe::Pipe::new().max_message_size(8).simplex::<String>()?;
    /// assert!(tx.send(&"much more than eight bytes".to_string()).is_err());
    /// tx.send(&"short".to_string()).unwrap();
    /// assert_eq!(rx.recv().unwrap(), "short");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn max_message_size(mut self, bytes: usize) -> Pipe {
        self.max_message = bytes;
        self
    }

    /// Creates a two-way pipe: the first end sends `A`s and receives `B`s, the
    /// second the reverse.
    ///
    /// # Errors
    ///
    /// The error of `socketpair`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = mproc::pipe::Pipe::new().duplex::<u8, char>()?;
    /// a.send(&65).unwrap();
    /// b.send(&'A').unwrap();
    /// assert_eq!(b.recv().unwrap(), 65);
    /// assert_eq!(a.recv().unwrap(), 'A');
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn duplex<A, B>(&self) -> io::Result<(Connection<A, B>, Connection<B, A>)> {
        let (x, y) = crate::sys::socket::socketpair()?;
        Ok((
            Connection::from_conn(Conn::new(x, self.max_message)),
            Connection::from_conn(Conn::new(y, self.max_message)),
        ))
    }

    /// Creates a one-way pipe.
    ///
    /// # Errors
    ///
    /// The error of `socketpair` or `shutdown`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = mproc::pipe::Pipe::new().simplex::<Vec<u8>>()?;
    /// tx.send(&vec![1, 2]).unwrap();
    /// assert_eq!(rx.recv().unwrap(), vec![1, 2]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn simplex<T>(&self) -> io::Result<(Sender<T>, Receiver<T>)> {
        let (x, y) = crate::sys::socket::socketpair()?;
        crate::sys::stream::shutdown(x.as_fd(), true)?;
        crate::sys::stream::shutdown(y.as_fd(), false)?;
        Ok((
            Sender {
                conn: Conn::new(x, self.max_message),
                _t: PhantomData,
            },
            Receiver {
                conn: Conn::new(y, self.max_message),
                _t: PhantomData,
            },
        ))
    }
}

/// One end of a two-way pipe: sends `S`s and receives `R`s (Python's
/// `Connection`).
///
/// # Examples
///
/// ```
/// let (a, b) = mproc::pipe::duplex::<(u32, String)>()?;
/// a.send(&(1, "one".into())).unwrap();
/// assert_eq!(b.recv().unwrap(), (1, "one".to_string()));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Connection<S, R = S> {
    conn: Conn,
    _t: PhantomData<fn(S) -> R>,
}

/// The sending end of a one-way pipe.
///
/// # Examples
///
/// ```
/// let (tx, rx) = mproc::pipe::simplex::<u8>()?;
/// tx.send(&1).unwrap();
/// assert_eq!(rx.recv().unwrap(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Sender<T> {
    conn: Conn,
    _t: PhantomData<fn(T)>,
}

/// The receiving end of a one-way pipe.
///
/// # Examples
///
/// ```
/// let (tx, rx) = mproc::pipe::simplex::<u8>()?;
/// drop(tx);
/// assert!(rx.recv().unwrap_err().is_closed());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Receiver<T> {
    conn: Conn,
    _t: PhantomData<fn() -> T>,
}

impl<S, R> Connection<S, R> {
    fn from_conn(conn: Conn) -> Self {
        Connection {
            conn,
            _t: PhantomData,
        }
    }
}

impl<S, R> fmt::Debug for Connection<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("sends", &type_name::<S>())
            .field("receives", &type_name::<R>())
            .field("fd", &self.conn.fd())
            .finish()
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("sends", &type_name::<T>())
            .field("fd", &self.conn.fd())
            .finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("receives", &type_name::<T>())
            .field("fd", &self.conn.fd())
            .finish()
    }
}

fn send_value<T: Serialize + ?Sized>(conn: &Conn, value: &T) -> Result<(), SendError> {
    // Refused as soon as the encoding passes the limit: a value far over it never
    // costs more memory than the limit.
    let max = conn.max();
    let msg = crate::codec::encode_within(value, max).map_err(|e| {
        SendError::Invalid(match e {
            crate::codec::LimitedEncodeError::TooLarge { size } => {
                MessageError::too_large(size, max)
            }
            crate::codec::LimitedEncodeError::Codec(e) => MessageError::encode(e),
        })
    })?;
    let fds: Vec<BorrowedFd<'_>> = msg.fds.iter().map(|f| f.as_fd()).collect();
    conn.send(&msg.bytes, &fds).map_err(send_error)
}

fn send_error(e: SendFail) -> SendError {
    match e {
        SendFail::Closed => SendError::Closed,
        SendFail::Invalid(m) => SendError::Invalid(m),
        SendFail::Io(e) => SendError::Io(e),
    }
}

fn recv_value<T: DeserializeOwned>(conn: &Conn, wait: Wait) -> Result<T, RecvFail> {
    conn.recv(wait, |payload, fds| {
        crate::codec::decode_bytes::<T>(payload.as_slice(), fds)
    })?
    .map_err(|e| RecvFail::Invalid(MessageError::decode(e)))
}

fn recv_bytes(conn: &Conn, wait: Wait) -> Result<Vec<u8>, RecvFail> {
    // Descriptors that came with a value sent by `send` are dropped (closed) here.
    conn.recv(wait, |payload: Payload<'_>, _fds| payload.into_vec())
}

fn recv_error(e: RecvFail) -> RecvError {
    match e {
        RecvFail::Invalid(m) => RecvError::Invalid(m),
        RecvFail::Io(e) => RecvError::Io(e),
        RecvFail::Closed | RecvFail::Empty | RecvFail::Timeout | RecvFail::TooLong(_) => {
            RecvError::Closed
        }
    }
}

fn recv_bytes_into(conn: &Conn, buf: &mut [u8]) -> Result<usize, RecvBytesIntoError> {
    let room = buf.len();
    conn.recv_fitting(Wait::Forever, room, |payload, _fds| {
        let bytes = payload.as_slice();
        buf[..bytes.len()].copy_from_slice(bytes);
        bytes.len()
    })
    .map_err(|e| match e {
        RecvFail::TooLong(needed) => RecvBytesIntoError::BufferTooShort { needed, room },
        RecvFail::Invalid(m) => RecvBytesIntoError::Invalid(m),
        RecvFail::Io(e) => RecvBytesIntoError::Io(e),
        RecvFail::Closed | RecvFail::Empty | RecvFail::Timeout => RecvBytesIntoError::Closed,
    })
}

fn try_recv_error(e: RecvFail) -> TryRecvError {
    match e {
        RecvFail::Empty | RecvFail::Timeout => TryRecvError::Empty,
        RecvFail::Closed => TryRecvError::Closed,
        RecvFail::Invalid(m) => TryRecvError::Invalid(m),
        RecvFail::Io(e) => TryRecvError::Io(e),
        RecvFail::TooLong(_) => TryRecvError::Closed,
    }
}

fn timeout_error(e: RecvFail) -> RecvTimeoutError {
    match e {
        RecvFail::Empty | RecvFail::Timeout => RecvTimeoutError::Timeout,
        RecvFail::Closed => RecvTimeoutError::Closed,
        RecvFail::Invalid(m) => RecvTimeoutError::Invalid(m),
        RecvFail::Io(e) => RecvTimeoutError::Io(e),
        RecvFail::TooLong(_) => RecvTimeoutError::Closed,
    }
}

fn wait_for(timeout: Duration) -> Wait {
    match crate::deadline::after(timeout) {
        Some(d) => Wait::Until(d),
        None => Wait::Forever,
    }
}

macro_rules! common_methods {
    ($mk:literal) => {
        /// The largest message, in encoded bytes, this end sends or accepts.
        ///
        /// # Examples
        ///
        /// ```
        #[doc = concat!("let (tx, rx) = ", $mk, "::<u8>()?;")]
        /// assert_eq!(tx.max_message_size(), 64 << 20);
        /// assert_eq!(rx.max_message_size(), 64 << 20);
        /// # Ok::<(), std::io::Error>(())
        /// ```
        pub fn max_message_size(&self) -> usize {
            self.conn.max()
        }

        /// Sets the largest message, in encoded bytes, this end sends or accepts.
        ///
        /// # Examples
        ///
        /// ```
        #[doc = concat!("let (tx, rx) = ", $mk, "::<String>()?;")]
        /// rx.set_max_message_size(4);
        /// tx.send(&"too long".to_string()).unwrap(); // the sender's limit is still 64 MiB
        /// assert!(rx.recv().unwrap_err().message_error().unwrap().is_too_large());
        /// tx.send(&"ok".to_string()).unwrap();
        /// assert_eq!(rx.recv().unwrap(), "ok"); // the pipe is still usable
        /// # Ok::<(), std::io::Error>(())
        /// ```
        pub fn set_max_message_size(&self, bytes: usize) {
            self.conn.set_max(bytes)
        }
    };
}

macro_rules! send_methods {
    ($t:ident, $mk:literal) => {
        /// Sends `value` (Python's `send(obj)`), encoded with serde; handles inside
        /// it travel as file descriptors.
        ///
        /// It waits while the socket's buffer is full (the peer is not reading).
        ///
        /// # Errors
        ///
        /// [`SendError::Closed`] if the other end is gone; [`SendError::Invalid`] if
        /// the value is over the size limit or cannot be encoded (nothing is written
        /// then); [`SendError::Io`] otherwise.
        ///
        /// # Examples
        ///
        /// ```
        #[doc = concat!("let (tx, rx) = ", $mk, "::<Vec<u32>>()?;")]
        /// tx.send(&vec![1, 2, 3]).unwrap();
        /// assert_eq!(rx.recv().unwrap(), [1, 2, 3]);
        /// # Ok::<(), std::io::Error>(())
        /// ```
        pub fn send(&self, value: &$t) -> Result<(), SendError>
        where
            $t: Serialize,
        {
            send_value(&self.conn, value)
        }

        /// Sends raw bytes as one message (Python's `send_bytes`); the other end
        /// reads them with `recv_bytes`.
        ///
        /// # Errors
        ///
        /// As for `send`.
        ///
        /// # Examples
        ///
        /// ```
        #[doc = concat!("let (tx, rx) = ", $mk, "::<()>()?;")]
        /// tx.send_bytes(b"raw").unwrap();
        /// assert_eq!(rx.recv_bytes().unwrap(), b"raw");
        /// # Ok::<(), std::io::Error>(())
        /// ```
        pub fn send_bytes(&self, bytes: &[u8]) -> Result<(), SendError> {
            self.conn.send(bytes, &[]).map_err(send_error)
        }
    };
}

macro_rules! recv_methods {
    ($t:ident, $mk:literal) => {
        /// Receives the next message, waiting for it (Python's `recv()`).
        ///
        /// # Errors
        ///
        /// [`RecvError::Closed`] once the other end is gone and everything it sent
        /// has been received; [`RecvError::Invalid`] if the message is over the size
        /// limit (its bytes are skipped) or is not a valid encoding of the type;
        /// [`RecvError::Io`] otherwise.
        ///
        /// # Examples
        ///
        /// ```
        #[doc = concat!("let (tx, rx) = ", $mk, "::<u32>()?;")]
        /// tx.send(&7).unwrap();
        /// drop(tx);
        /// assert_eq!(rx.recv().unwrap(), 7);
        /// assert!(rx.recv().unwrap_err().is_closed());
        /// # Ok::<(), std::io::Error>(())
        /// ```
        pub fn recv(&self) -> Result<$t, RecvError>
        where
            $t: DeserializeOwned,
        {
            recv_value(&self.conn, Wait::Forever).map_err(recv_error)
        }

        /// Receives the next message if it has arrived whole.
        ///
        /// # Errors
        ///
        /// [`TryRecvError::Empty`] if it has not; otherwise as for `recv`.
        ///
        /// # Examples
        ///
        /// ```
        #[doc = concat!("let (tx, rx) = ", $mk, "::<u32>()?;")]
        /// assert!(rx.try_recv().unwrap_err().is_empty());
        /// tx.send(&1).unwrap();
        /// assert_eq!(rx.try_recv().unwrap(), 1);
        /// # Ok::<(), std::io::Error>(())
        /// ```
        pub fn try_recv(&self) -> Result<$t, TryRecvError>
        where
            $t: DeserializeOwned,
        {
            recv_value(&self.conn, Wait::No).map_err(try_recv_error)
        }

        /// Receives the next message, waiting at most `timeout`.
        ///
        /// # Errors
        ///
        /// [`RecvTimeoutError::Timeout`] if no whole message arrived in time;
        /// otherwise as for `recv`.
        ///
        /// # Examples
        ///
        /// ```
        /// use std::time::Duration;
        #[doc = concat!("let (tx, rx) = ", $mk, "::<u32>()?;")]
        /// assert!(rx.recv_timeout(Duration::from_millis(5)).unwrap_err().is_timeout());
        /// tx.send(&2).unwrap();
        /// assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 2);
        /// # Ok::<(), std::io::Error>(())
        /// ```
        pub fn recv_timeout(&self, timeout: Duration) -> Result<$t, RecvTimeoutError>
        where
            $t: DeserializeOwned,
        {
            recv_value(&self.conn, wait_for(timeout)).map_err(timeout_error)
        }

        /// Receives the next message, waiting until `deadline` at the latest.
        ///
        /// # Errors
        ///
        /// As for `recv_timeout`.
        ///
        /// # Examples
        ///
        /// ```
        /// use std::time::{Duration, Instant};
        #[doc = concat!("let (_tx, rx) = ", $mk, "::<u32>()?;")]
        /// let at = Instant::now() + Duration::from_millis(5);
        /// assert!(rx.recv_deadline(at).unwrap_err().is_timeout());
        /// # Ok::<(), std::io::Error>(())
        /// ```
        pub fn recv_deadline(&self, deadline: Instant) -> Result<$t, RecvTimeoutError>
        where
            $t: DeserializeOwned,
        {
            recv_value(&self.conn, Wait::Until(deadline)).map_err(timeout_error)
        }

        /// Receives the next message as raw bytes (Python's `recv_bytes()`).
        /// Descriptors that came with it, if it was sent by `send`, are closed.
        ///
        /// # Errors
        ///
        /// As for `recv`.
        ///
        /// # Examples
        ///
        /// ```
        #[doc = concat!("let (tx, rx) = ", $mk, "::<u8>()?;")]
        /// tx.send_bytes(&[0xff; 3]).unwrap();
        /// assert_eq!(rx.recv_bytes().unwrap(), vec![0xff; 3]);
        /// # Ok::<(), std::io::Error>(())
        /// ```
        pub fn recv_bytes(&self) -> Result<Vec<u8>, RecvError> {
            recv_bytes(&self.conn, Wait::Forever).map_err(recv_error)
        }

        /// Receives the next message as raw bytes into `buf` (Python's
        /// `recv_bytes_into`), returning its length.
        ///
        /// # Errors
        ///
        /// [`RecvBytesIntoError::BufferTooShort`] when the message is longer than
        /// `buf`: nothing is lost, the message stays first in line (receive it with
        /// a larger buffer or `recv_bytes`). Otherwise as for `recv_bytes`.
        ///
        /// # Examples
        ///
        /// ```
        #[doc = concat!("let (tx, rx) = ", $mk, "::<u8>()?;")]
        /// tx.send_bytes(b"hello").unwrap();
        /// let mut small = [0u8; 2];
        /// let err = rx.recv_bytes_into(&mut small).unwrap_err();
        /// assert_eq!(err.needed(), Some(5));
        /// let mut buf = [0u8; 16];
        /// let n = rx.recv_bytes_into(&mut buf).unwrap();
        /// assert_eq!(&buf[..n], b"hello");
        /// # Ok::<(), std::io::Error>(())
        /// ```
        pub fn recv_bytes_into(&self, buf: &mut [u8]) -> Result<usize, RecvBytesIntoError> {
            recv_bytes_into(&self.conn, buf)
        }

        /// Receives the next message as raw bytes, waiting at most `timeout`.
        ///
        /// # Errors
        ///
        /// As for `recv_timeout`.
        ///
        /// # Examples
        ///
        /// ```
        /// use std::time::Duration;
        #[doc = concat!("let (tx, rx) = ", $mk, "::<u8>()?;")]
        /// assert!(rx.recv_bytes_timeout(Duration::ZERO).unwrap_err().is_timeout());
        /// tx.send_bytes(b"x").unwrap();
        /// assert_eq!(rx.recv_bytes_timeout(Duration::from_secs(5)).unwrap(), b"x");
        /// # Ok::<(), std::io::Error>(())
        /// ```
        pub fn recv_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>, RecvTimeoutError> {
            recv_bytes(&self.conn, wait_for(timeout)).map_err(timeout_error)
        }

        /// Whether a receive would find data without waiting, after waiting up to
        /// `timeout` for some (Python's `poll(timeout)`). Also `true` when the other
        /// end is closed, so that the next receive reports it.
        ///
        /// # Examples
        ///
        /// ```
        /// use std::time::Duration;
        #[doc = concat!("let (tx, rx) = ", $mk, "::<u8>()?;")]
        /// assert!(!rx.poll(Duration::ZERO));
        /// tx.send(&1).unwrap();
        /// assert!(rx.poll(Duration::from_secs(5)));
        /// # Ok::<(), std::io::Error>(())
        /// ```
        pub fn poll(&self, timeout: Duration) -> bool {
            self.conn.poll(Some(timeout))
        }
    };
}

impl<S, R> Connection<S, R> {
    common_methods!("mproc::pipe::duplex");
    send_methods!(S, "mproc::pipe::duplex");
    recv_methods!(R, "mproc::pipe::duplex");
}

impl<T> Sender<T> {
    common_methods!("mproc::pipe::simplex");
    send_methods!(T, "mproc::pipe::simplex");
}

impl<T> Receiver<T> {
    common_methods!("mproc::pipe::simplex");
    recv_methods!(T, "mproc::pipe::simplex");
}

// ---- waiting on several ends (`connection::wait`) ------------------------------

impl<S, R> crate::connection::Sealed for Connection<S, R> {}

impl<S, R> crate::connection::Waitable for Connection<S, R> {
    fn wait_fd(&self) -> BorrowedFd<'_> {
        self.conn.fd()
    }

    fn ready_without_waiting(&self) -> bool {
        self.conn.has_buffered()
    }
}

impl<T> crate::connection::Sealed for Receiver<T> {}

impl<T> crate::connection::Waitable for Receiver<T> {
    fn wait_fd(&self) -> BorrowedFd<'_> {
        self.conn.fd()
    }

    fn ready_without_waiting(&self) -> bool {
        self.conn.has_buffered()
    }
}

// ---- handles travel ----------------------------------------------------------

struct BytesRef<'a>(&'a [u8]);

impl Serialize for BytesRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

#[derive(Serialize)]
struct WireOut<'a> {
    end: &'a str,
    fd: FdRef<'a>,
    max: u64,
    buffered: BytesRef<'a>,
    fds: Vec<FdRef<'a>>,
}

#[derive(Deserialize)]
struct WireIn {
    end: String,
    fd: Fd,
    max: u64,
    buffered: crate::queue::Bytes,
    fds: Vec<Fd>,
}

fn serialize_end<S: Serializer>(conn: &Conn, end: &str, s: S) -> Result<S::Ok, S::Error> {
    conn.buffered(|bytes, fds| {
        WireOut {
            end,
            fd: FdRef(conn.fd()),
            max: conn.max() as u64,
            buffered: BytesRef(bytes),
            fds: fds.iter().map(|f| FdRef(*f)).collect(),
        }
        .serialize(s)
    })
    .map_err(crate::codec::handle_custom_ser_error)?
}

fn deserialize_end<'de, D: Deserializer<'de>>(d: D, end: &str) -> Result<Conn, D::Error> {
    let w = WireIn::deserialize(d)?;
    if w.end != end {
        return Err(crate::codec::handle_custom_error(format!(
            "a pipe end `{}` arrived where `{end}` was expected",
            w.end
        )));
    }
    Ok(Conn::with_buffered(
        w.fd.0,
        usize::try_from(w.max).unwrap_or(usize::MAX),
        w.buffered.into_vec(),
        w.fds.into_iter().map(|f| f.0).collect(),
    ))
}

macro_rules! end_serde {
    ($name:ident < $($p:ident),* >) => {
        impl<$($p),*> Serialize for $name<$($p),*> {
            fn serialize<Ser: Serializer>(&self, s: Ser) -> Result<Ser::Ok, Ser::Error> {
                serialize_end(&self.conn, type_name::<Self>(), s)
            }
        }

        impl<'de, $($p),*> Deserialize<'de> for $name<$($p),*> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok($name {
                    conn: deserialize_end(d, type_name::<Self>())?,
                    _t: PhantomData,
                })
            }
        }
    };
}

end_serde!(Connection<S, R>);
end_serde!(Sender<T>);
end_serde!(Receiver<T>);

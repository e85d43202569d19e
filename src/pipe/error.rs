//! Errors of the pipe operations, one type per operation.

use std::fmt;
use std::io;

pub use crate::queue::MessageError;

/// An error from `send` or `send_bytes`: nothing of the message was written.
///
/// # Examples
///
/// ```
/// use mproc::pipe::{self, SendError};
///
/// let (a, b) = pipe::duplex::<u8>()?;
/// drop(b);
/// assert!(matches!(a.send(&1), Err(SendError::Closed)));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub enum SendError {
    /// The other end is closed (dropped, or its process exited).
    Closed,
    /// The message is over the size limit or cannot be encoded; the pipe is unharmed.
    Invalid(MessageError),
    /// Another I/O error.
    Io(io::Error),
}

/// An error from `recv` or `recv_bytes`.
///
/// # Examples
///
/// ```
/// use mproc::pipe::{self, RecvError};
///
/// let (a, b) = pipe::duplex::<u8>()?;
/// drop(a);
/// assert!(matches!(b.recv(), Err(RecvError::Closed)));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub enum RecvError {
    /// The other end is closed and every message it sent has been received.
    Closed,
    /// The next message was over the size limit (its bytes were skipped) or could
    /// not be decoded as the expected type; the pipe is still usable.
    Invalid(MessageError),
    /// Another I/O error.
    Io(io::Error),
}

/// An error from `try_recv`.
///
/// # Examples
///
/// ```
/// use mproc::pipe::{self, TryRecvError};
///
/// let (_a, b) = pipe::duplex::<u8>()?;
/// assert!(matches!(b.try_recv(), Err(TryRecvError::Empty)));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub enum TryRecvError {
    /// No whole message has arrived yet.
    Empty,
    /// The other end is closed and every message it sent has been received.
    Closed,
    /// As [`RecvError::Invalid`].
    Invalid(MessageError),
    /// Another I/O error.
    Io(io::Error),
}

/// An error from `recv_timeout`, `recv_deadline` and `recv_bytes_timeout`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mproc::pipe::{self, RecvTimeoutError};
///
/// let (_a, b) = pipe::duplex::<u8>()?;
/// assert!(matches!(b.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Timeout)));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub enum RecvTimeoutError {
    /// No whole message arrived in time.
    Timeout,
    /// The other end is closed and every message it sent has been received.
    Closed,
    /// As [`RecvError::Invalid`].
    Invalid(MessageError),
    /// Another I/O error.
    Io(io::Error),
}

impl SendError {
    /// Whether the other end is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = mproc::pipe::duplex::<u8>()?;
    /// drop(b);
    /// assert!(a.send(&1).unwrap_err().is_closed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, SendError::Closed)
    }

    /// Why the message was refused, when it was refused for itself.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = mproc::pipe::Pipe::new().max_message_size(4).duplex::<u8, u8>()?;
    /// let err = a.send_bytes(b"12345").unwrap_err();
    /// assert!(err.message_error().unwrap().is_too_large());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn message_error(&self) -> Option<&MessageError> {
        match self {
            SendError::Invalid(e) => Some(e),
            _ => None,
        }
    }
}

impl RecvError {
    /// Whether the other end is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = mproc::pipe::duplex::<u8>()?;
    /// drop(a);
    /// assert!(b.recv().unwrap_err().is_closed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, RecvError::Closed)
    }

    /// Why the message was refused, when it was refused for itself.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = mproc::pipe::duplex::<u8>()?;
    /// b.set_max_message_size(2);
    /// a.send_bytes(b"too long").unwrap();
    /// let err = b.recv_bytes().unwrap_err();
    /// assert_eq!(err.message_error().unwrap().size(), Some(8));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn message_error(&self) -> Option<&MessageError> {
        match self {
            RecvError::Invalid(e) => Some(e),
            _ => None,
        }
    }
}

impl TryRecvError {
    /// Whether no whole message had arrived.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_a, b) = mproc::pipe::duplex::<u8>()?;
    /// assert!(b.try_recv().unwrap_err().is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        matches!(self, TryRecvError::Empty)
    }

    /// Whether the other end is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = mproc::pipe::duplex::<u8>()?;
    /// drop(a);
    /// assert!(b.try_recv().unwrap_err().is_closed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, TryRecvError::Closed)
    }
}

impl RecvTimeoutError {
    /// Whether no whole message arrived in time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (_a, b) = mproc::pipe::duplex::<u8>()?;
    /// assert!(b.recv_timeout(Duration::ZERO).unwrap_err().is_timeout());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvTimeoutError::Timeout)
    }

    /// Whether the other end is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (a, b) = mproc::pipe::duplex::<u8>()?;
    /// drop(a);
    /// assert!(b.recv_timeout(Duration::from_secs(1)).unwrap_err().is_closed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, RecvTimeoutError::Closed)
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed => f.write_str("cannot send: the other end of the pipe is closed"),
            SendError::Invalid(e) => write!(f, "cannot send the message: {e}"),
            SendError::Io(e) => write!(f, "cannot send on the pipe: {e}"),
        }
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Closed => f.write_str("the other end of the pipe is closed"),
            RecvError::Invalid(e) => write!(f, "cannot receive the message: {e}"),
            RecvError::Io(e) => write!(f, "cannot receive on the pipe: {e}"),
        }
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("no message has arrived"),
            TryRecvError::Closed => f.write_str("the other end of the pipe is closed"),
            TryRecvError::Invalid(e) => write!(f, "cannot receive the message: {e}"),
            TryRecvError::Io(e) => write!(f, "cannot receive on the pipe: {e}"),
        }
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out waiting for a message"),
            RecvTimeoutError::Closed => f.write_str("the other end of the pipe is closed"),
            RecvTimeoutError::Invalid(e) => write!(f, "cannot receive the message: {e}"),
            RecvTimeoutError::Io(e) => write!(f, "cannot receive on the pipe: {e}"),
        }
    }
}

macro_rules! error_source {
    ($($t:ident),*) => {$(
        impl std::error::Error for $t {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                match self {
                    $t::Invalid(e) => Some(e),
                    $t::Io(e) => Some(e),
                    _ => None,
                }
            }
        }
    )*};
}
error_source!(SendError, RecvError, TryRecvError, RecvTimeoutError);

impl From<RecvError> for TryRecvError {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Closed => TryRecvError::Closed,
            RecvError::Invalid(m) => TryRecvError::Invalid(m),
            RecvError::Io(e) => TryRecvError::Io(e),
        }
    }
}

impl From<RecvError> for RecvTimeoutError {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Closed => RecvTimeoutError::Closed,
            RecvError::Invalid(m) => RecvTimeoutError::Invalid(m),
            RecvError::Io(e) => RecvTimeoutError::Io(e),
        }
    }
}

/// An error from `recv_bytes_into`.
///
/// # Examples
///
/// ```
/// use mproc::pipe::{self, RecvBytesIntoError};
///
/// let (tx, rx) = pipe::simplex::<u8>()?;
/// tx.send_bytes(&[1, 2, 3]).unwrap();
/// let mut buf = [0u8; 1];
/// assert!(matches!(
///     rx.recv_bytes_into(&mut buf),
///     Err(RecvBytesIntoError::BufferTooShort { needed: 3, room: 1 })
/// ));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub enum RecvBytesIntoError {
    /// The next message is longer than the buffer (Python's `BufferTooShort`). It
    /// was not received: it is still the next message, whole.
    BufferTooShort {
        /// The message's length in bytes.
        needed: usize,
        /// The buffer's length.
        room: usize,
    },
    /// The other end is closed and every message it sent has been received.
    Closed,
    /// The next message was over the size limit (its bytes were skipped).
    Invalid(MessageError),
    /// Another I/O error.
    Io(io::Error),
}

impl RecvBytesIntoError {
    /// The length of the message, when the buffer was too short for it.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = mproc::pipe::simplex::<u8>()?;
    /// tx.send_bytes(b"four").unwrap();
    /// assert_eq!(rx.recv_bytes_into(&mut []).unwrap_err().needed(), Some(4));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn needed(&self) -> Option<usize> {
        match self {
            RecvBytesIntoError::BufferTooShort { needed, .. } => Some(*needed),
            _ => None,
        }
    }

    /// Whether the other end is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = mproc::pipe::simplex::<u8>()?;
    /// drop(tx);
    /// assert!(rx.recv_bytes_into(&mut [0u8; 4]).unwrap_err().is_closed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, RecvBytesIntoError::Closed)
    }
}

impl fmt::Display for RecvBytesIntoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvBytesIntoError::BufferTooShort { needed, room } => write!(
                f,
                "the next message is {needed} bytes but the buffer holds {room}; \
                 it is still waiting, receive it with a larger buffer"
            ),
            RecvBytesIntoError::Closed => f.write_str("the other end of the pipe is closed"),
            RecvBytesIntoError::Invalid(e) => write!(f, "invalid message: {e}"),
            RecvBytesIntoError::Io(e) => write!(f, "pipe I/O error: {e}"),
        }
    }
}

impl std::error::Error for RecvBytesIntoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecvBytesIntoError::Invalid(e) => Some(e),
            RecvBytesIntoError::Io(e) => Some(e),
            _ => None,
        }
    }
}

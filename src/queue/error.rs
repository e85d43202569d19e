//! Errors of the queue operations, one small type per operation (crossbeam's shape):
//! an item that was not delivered comes back through `into_inner()`.

use std::fmt;
use std::time::Duration;

/// Why a message was refused or could not be read back: too large, not encodable
/// (a serde error, or a handle inside it), not decodable as the expected type, or a
/// damaged record.
///
/// Shared by [`queue`](crate::queue) and [`pipe`](crate::pipe).
///
/// # Examples
///
/// ```
/// use mproc::queue::Queue;
///
/// let q = Queue::<Vec<u8>>::builder().max_message_size(1024).build()?;
/// let err = q.put(vec![0u8; 4096]).unwrap_err();
/// let why = err.message_error().unwrap();
/// assert!(why.is_too_large());
/// assert_eq!(why.limit(), Some(1024));
/// assert!(why.to_string().contains("over the limit of 1024 bytes"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct MessageError {
    kind: MessageErrorKind,
}

#[derive(Clone, PartialEq, Eq, Debug)]
enum MessageErrorKind {
    TooLarge { size: usize, limit: usize },
    Encode(String),
    Decode(String),
    Corrupt(String),
}

impl MessageError {
    pub(crate) fn too_large(size: usize, limit: usize) -> MessageError {
        MessageError {
            kind: MessageErrorKind::TooLarge { size, limit },
        }
    }

    pub(crate) fn encode(msg: impl fmt::Display) -> MessageError {
        MessageError {
            kind: MessageErrorKind::Encode(msg.to_string()),
        }
    }

    pub(crate) fn decode(msg: impl fmt::Display) -> MessageError {
        MessageError {
            kind: MessageErrorKind::Decode(msg.to_string()),
        }
    }

    pub(crate) fn corrupt(msg: impl fmt::Display) -> MessageError {
        MessageError {
            kind: MessageErrorKind::Corrupt(msg.to_string()),
        }
    }

    /// Whether the message was over the size limit.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<String>::builder().max_message_size(8).build()?;
    /// let err = q.try_put("far too long for eight bytes".into()).unwrap_err();
    /// assert!(err.message_error().unwrap().is_too_large());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_too_large(&self) -> bool {
        matches!(self.kind, MessageErrorKind::TooLarge { .. })
    }

    /// The size in bytes of the encoded message, when it was too large.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::{Bytes, Queue};
    ///
    /// let q = Queue::<Bytes>::builder().max_message_size(100).build()?;
    /// let err = q.put(Bytes::from(vec![7u8; 200])).unwrap_err();
    /// assert_eq!(err.message_error().unwrap().size(), Some(202)); // 2-byte length prefix
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn size(&self) -> Option<usize> {
        match self.kind {
            MessageErrorKind::TooLarge { size, .. } => Some(size),
            _ => None,
        }
    }

    /// The size limit in bytes, when the message was too large.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<Vec<u64>>::builder().max_message_size(64).build()?;
    /// let err = q.put(vec![u64::MAX; 100]).unwrap_err();
    /// assert_eq!(err.message_error().unwrap().limit(), Some(64));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn limit(&self) -> Option<usize> {
        match self.kind {
            MessageErrorKind::TooLarge { limit, .. } => Some(limit),
            _ => None,
        }
    }
}

impl fmt::Debug for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageError({self})")
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            MessageErrorKind::TooLarge { size, limit } => write!(
                f,
                "message of {size} bytes is over the limit of {limit} bytes; raise it with `max_message_size`"
            ),
            MessageErrorKind::Encode(e) => write!(f, "cannot encode the message: {e}"),
            MessageErrorKind::Decode(e) => write!(f, "cannot decode the message: {e}"),
            MessageErrorKind::Corrupt(e) => write!(f, "damaged message record: {e}"),
        }
    }
}

impl std::error::Error for MessageError {}

/// An error from [`Queue::put`](super::Queue::put): the queue is closed, or the item
/// cannot go into it. The item comes back through [`into_inner`](Self::into_inner).
///
/// # Examples
///
/// ```
/// use mproc::queue::{PutError, Queue};
///
/// let q = Queue::<u32>::new()?;
/// q.close();
/// assert!(matches!(q.put(5), Err(PutError::Closed(5))));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum PutError<T> {
    /// The queue was closed: no more items can be put.
    Closed(T),
    /// The queue was shut down ([`Queue::shutdown`](super::Queue::shutdown)): no
    /// more items can be put.
    ShutDown(T),
    /// The item cannot go into the queue (too large, or not encodable).
    Invalid(T, MessageError),
}

/// An error from [`Queue::try_put`](super::Queue::try_put).
///
/// # Examples
///
/// ```
/// use mproc::queue::{Queue, TryPutError};
///
/// let q = Queue::bounded(1)?;
/// q.try_put(1u8).unwrap();
/// assert_eq!(q.try_put(2u8), Err(TryPutError::Full(2)));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum TryPutError<T> {
    /// The queue was shut down ([`Queue::shutdown`](super::Queue::shutdown)).
    ShutDown(T),
    /// The queue is full.
    Full(T),
    /// The queue was closed.
    Closed(T),
    /// The item cannot go into the queue (too large, or not encodable).
    Invalid(T, MessageError),
}

/// An error from [`Queue::put_timeout`](super::Queue::put_timeout) and
/// [`Queue::put_deadline`](super::Queue::put_deadline).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mproc::queue::{PutTimeoutError, Queue};
///
/// let q = Queue::bounded(1)?;
/// q.put('a').unwrap();
/// let err = q.put_timeout('b', Duration::from_millis(10)).unwrap_err();
/// assert!(matches!(err, PutTimeoutError::Timeout('b')));
/// assert_eq!(err.into_inner(), 'b');
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum PutTimeoutError<T> {
    /// The queue was shut down ([`Queue::shutdown`](super::Queue::shutdown)).
    ShutDown(T),
    /// The queue stayed full until the timeout.
    Timeout(T),
    /// The queue was closed.
    Closed(T),
    /// The item cannot go into the queue (too large, or not encodable).
    Invalid(T, MessageError),
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Closed(_) => f.write_str("Closed(..)"),
            PutError::ShutDown(_) => f.write_str("ShutDown(..)"),
            PutError::Invalid(_, e) => write!(f, "Invalid(.., {e:?})"),
        }
    }
}

impl<T> fmt::Debug for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => f.write_str("Full(..)"),
            TryPutError::Closed(_) => f.write_str("Closed(..)"),
            TryPutError::ShutDown(_) => f.write_str("ShutDown(..)"),
            TryPutError::Invalid(_, e) => write!(f, "Invalid(.., {e:?})"),
        }
    }
}

impl<T> fmt::Debug for PutTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            PutTimeoutError::Closed(_) => f.write_str("Closed(..)"),
            PutTimeoutError::ShutDown(_) => f.write_str("ShutDown(..)"),
            PutTimeoutError::Invalid(_, e) => write!(f, "Invalid(.., {e:?})"),
        }
    }
}

impl<T> PutError<T> {
    /// Whether the queue was shut down ([`Queue::shutdown`](super::Queue::shutdown)).
    pub fn is_shut_down(&self) -> bool {
        matches!(self, PutError::ShutDown(_))
    }

    /// The item that was not put.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<String>::new()?;
    /// q.close();
    /// assert_eq!(q.put("kept".to_string()).unwrap_err().into_inner(), "kept");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PutError::Closed(t) | PutError::ShutDown(t) | PutError::Invalid(t, _) => t,
        }
    }

    /// Whether the queue was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<u8>::new()?;
    /// q.close();
    /// assert!(q.put(1).unwrap_err().is_closed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, PutError::Closed(_))
    }

    /// Why the item was refused, when it was refused for itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<String>::builder().max_message_size(4).build()?;
    /// assert!(q.put("too long".into()).unwrap_err().message_error().unwrap().is_too_large());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn message_error(&self) -> Option<&MessageError> {
        match self {
            PutError::Invalid(_, e) => Some(e),
            _ => None,
        }
    }
}

impl<T> TryPutError<T> {
    /// Whether the queue was shut down ([`Queue::shutdown`](super::Queue::shutdown)).
    pub fn is_shut_down(&self) -> bool {
        matches!(self, TryPutError::ShutDown(_))
    }

    /// The item that was not put.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::bounded(1)?;
    /// q.put(1u16).unwrap();
    /// assert_eq!(q.try_put(2).unwrap_err().into_inner(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            TryPutError::Full(t)
            | TryPutError::Closed(t)
            | TryPutError::ShutDown(t)
            | TryPutError::Invalid(t, _) => t,
        }
    }

    /// Whether the queue was full.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::bounded(1)?;
    /// q.put(1u16).unwrap();
    /// assert!(q.try_put(2).unwrap_err().is_full());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, TryPutError::Full(_))
    }

    /// Whether the queue was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<u8>::new()?;
    /// q.close();
    /// assert!(q.try_put(1).unwrap_err().is_closed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, TryPutError::Closed(_))
    }

    /// Why the item was refused, when it was refused for itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<Vec<u8>>::builder().max_message_size(4).build()?;
    /// let err = q.try_put(vec![1, 2, 3, 4, 5]).unwrap_err();
    /// assert_eq!(err.message_error().unwrap().size(), Some(6));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn message_error(&self) -> Option<&MessageError> {
        match self {
            TryPutError::Invalid(_, e) => Some(e),
            _ => None,
        }
    }
}

impl<T> PutTimeoutError<T> {
    /// Whether the queue was shut down ([`Queue::shutdown`](super::Queue::shutdown)).
    pub fn is_shut_down(&self) -> bool {
        matches!(self, PutTimeoutError::ShutDown(_))
    }

    /// The item that was not put.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::bounded(1)?;
    /// q.put(1i32).unwrap();
    /// let err = q.put_timeout(-1, Duration::from_millis(1)).unwrap_err();
    /// assert_eq!(err.into_inner(), -1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PutTimeoutError::Timeout(t)
            | PutTimeoutError::Closed(t)
            | PutTimeoutError::ShutDown(t)
            | PutTimeoutError::Invalid(t, _) => t,
        }
    }

    /// Whether the queue stayed full until the timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::bounded(1)?;
    /// q.put(()).unwrap();
    /// assert!(q.put_timeout((), Duration::from_millis(1)).unwrap_err().is_timeout());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, PutTimeoutError::Timeout(_))
    }

    /// Whether the queue was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<u8>::new()?;
    /// q.close();
    /// assert!(q.put_timeout(1, Duration::from_secs(1)).unwrap_err().is_closed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, PutTimeoutError::Closed(_))
    }

    /// Why the item was refused, when it was refused for itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<String>::builder().max_message_size(2).build()?;
    /// let err = q.put_timeout("abc".into(), Duration::from_secs(1)).unwrap_err();
    /// assert!(err.message_error().unwrap().is_too_large());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn message_error(&self) -> Option<&MessageError> {
        match self {
            PutTimeoutError::Invalid(_, e) => Some(e),
            _ => None,
        }
    }
}

impl<T> From<PutError<T>> for TryPutError<T> {
    fn from(e: PutError<T>) -> Self {
        match e {
            PutError::Closed(t) => TryPutError::Closed(t),
            PutError::ShutDown(t) => TryPutError::ShutDown(t),
            PutError::Invalid(t, m) => TryPutError::Invalid(t, m),
        }
    }
}

impl<T> From<PutError<T>> for PutTimeoutError<T> {
    fn from(e: PutError<T>) -> Self {
        match e {
            PutError::Closed(t) => PutTimeoutError::Closed(t),
            PutError::ShutDown(t) => PutTimeoutError::ShutDown(t),
            PutError::Invalid(t, m) => PutTimeoutError::Invalid(t, m),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Closed(_) => f.write_str("cannot put into a closed queue"),
            PutError::ShutDown(_) => f.write_str("cannot put into a queue that was shut down"),
            PutError::Invalid(_, e) => write!(f, "cannot put the item: {e}"),
        }
    }
}

impl<T> fmt::Display for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => f.write_str("cannot put into a full queue"),
            TryPutError::Closed(_) => f.write_str("cannot put into a closed queue"),
            TryPutError::ShutDown(_) => f.write_str("cannot put into a queue that was shut down"),
            TryPutError::Invalid(_, e) => write!(f, "cannot put the item: {e}"),
        }
    }
}

impl<T> fmt::Display for PutTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutTimeoutError::Timeout(_) => f.write_str("timed out putting into a full queue"),
            PutTimeoutError::Closed(_) => f.write_str("cannot put into a closed queue"),
            PutTimeoutError::ShutDown(_) => {
                f.write_str("cannot put into a queue that was shut down")
            }
            PutTimeoutError::Invalid(_, e) => write!(f, "cannot put the item: {e}"),
        }
    }
}

impl<T> std::error::Error for PutError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PutError::Invalid(_, e) => Some(e),
            _ => None,
        }
    }
}

impl<T> std::error::Error for TryPutError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TryPutError::Invalid(_, e) => Some(e),
            _ => None,
        }
    }
}

impl<T> std::error::Error for PutTimeoutError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PutTimeoutError::Invalid(_, e) => Some(e),
            _ => None,
        }
    }
}

/// An error from [`Queue::get`](super::Queue::get): the queue is closed and empty, or
/// the next item could not be decoded (it is consumed all the same).
///
/// # Examples
///
/// ```
/// use mproc::queue::{GetError, Queue};
///
/// let q = Queue::<u8>::new()?;
/// q.put(1).unwrap();
/// q.close();
/// assert_eq!(q.get(), Ok(1)); // what was put before `close` is still delivered
/// assert_eq!(q.get(), Err(GetError::Closed));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum GetError {
    /// The queue was shut down ([`Queue::shutdown`](super::Queue::shutdown)) and
    /// is empty (at once, with `immediate`).
    ShutDown,
    /// The queue is closed and empty.
    Closed,
    /// The next item could not be read back as the expected type.
    Invalid(MessageError),
}

/// An error from [`Queue::try_get`](super::Queue::try_get).
///
/// # Examples
///
/// ```
/// use mproc::queue::{Queue, TryGetError};
///
/// let q = Queue::<u8>::new()?;
/// assert_eq!(q.try_get(), Err(TryGetError::Empty));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum TryGetError {
    /// The queue was shut down ([`Queue::shutdown`](super::Queue::shutdown)) and
    /// is empty (at once, with `immediate`).
    ShutDown,
    /// The queue is empty.
    Empty,
    /// The queue is closed and empty.
    Closed,
    /// The next item could not be read back as the expected type.
    Invalid(MessageError),
}

/// An error from [`Queue::get_timeout`](super::Queue::get_timeout) and
/// [`Queue::get_deadline`](super::Queue::get_deadline).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mproc::queue::{GetTimeoutError, Queue};
///
/// let q = Queue::<u8>::new()?;
/// assert_eq!(q.get_timeout(Duration::from_millis(5)), Err(GetTimeoutError::Timeout));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum GetTimeoutError {
    /// The queue was shut down ([`Queue::shutdown`](super::Queue::shutdown)) and
    /// is empty (at once, with `immediate`).
    ShutDown,
    /// The queue stayed empty until the timeout.
    Timeout,
    /// The queue is closed and empty.
    Closed,
    /// The next item could not be read back as the expected type.
    Invalid(MessageError),
}

impl GetError {
    /// Whether the queue was shut down ([`Queue::shutdown`](super::Queue::shutdown)).
    pub fn is_shut_down(&self) -> bool {
        matches!(self, GetError::ShutDown)
    }

    /// Whether the queue is closed and empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<u8>::new()?;
    /// q.close();
    /// assert!(q.get().unwrap_err().is_closed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, GetError::Closed)
    }
}

impl TryGetError {
    /// Whether the queue was shut down ([`Queue::shutdown`](super::Queue::shutdown)).
    pub fn is_shut_down(&self) -> bool {
        matches!(self, TryGetError::ShutDown)
    }

    /// Whether the queue was empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<u8>::new()?;
    /// assert!(q.try_get().unwrap_err().is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        matches!(self, TryGetError::Empty)
    }

    /// Whether the queue is closed and empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<u8>::new()?;
    /// q.close();
    /// assert!(q.try_get().unwrap_err().is_closed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, TryGetError::Closed)
    }
}

impl GetTimeoutError {
    /// Whether the queue was shut down ([`Queue::shutdown`](super::Queue::shutdown)).
    pub fn is_shut_down(&self) -> bool {
        matches!(self, GetTimeoutError::ShutDown)
    }

    /// Whether the queue stayed empty until the timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<u8>::new()?;
    /// assert!(q.get_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, GetTimeoutError::Timeout)
    }

    /// Whether the queue is closed and empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<u8>::new()?;
    /// q.close();
    /// assert!(q.get_timeout(Duration::from_secs(1)).unwrap_err().is_closed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, GetTimeoutError::Closed)
    }
}

impl From<GetError> for TryGetError {
    fn from(e: GetError) -> Self {
        match e {
            GetError::Closed => TryGetError::Closed,
            GetError::ShutDown => TryGetError::ShutDown,
            GetError::Invalid(m) => TryGetError::Invalid(m),
        }
    }
}

impl From<GetError> for GetTimeoutError {
    fn from(e: GetError) -> Self {
        match e {
            GetError::Closed => GetTimeoutError::Closed,
            GetError::ShutDown => GetTimeoutError::ShutDown,
            GetError::Invalid(m) => GetTimeoutError::Invalid(m),
        }
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Closed => f.write_str("the queue is closed and empty"),
            GetError::ShutDown => f.write_str("the queue was shut down"),
            GetError::Invalid(e) => write!(f, "cannot get the item: {e}"),
        }
    }
}

impl fmt::Display for TryGetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryGetError::Empty => f.write_str("the queue is empty"),
            TryGetError::Closed => f.write_str("the queue is closed and empty"),
            TryGetError::ShutDown => f.write_str("the queue was shut down"),
            TryGetError::Invalid(e) => write!(f, "cannot get the item: {e}"),
        }
    }
}

impl fmt::Display for GetTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetTimeoutError::Timeout => f.write_str("timed out waiting on an empty queue"),
            GetTimeoutError::Closed => f.write_str("the queue is closed and empty"),
            GetTimeoutError::ShutDown => f.write_str("the queue was shut down"),
            GetTimeoutError::Invalid(e) => write!(f, "cannot get the item: {e}"),
        }
    }
}

macro_rules! get_error_source {
    ($($t:ident),*) => {$(
        impl std::error::Error for $t {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                match self {
                    $t::Invalid(e) => Some(e),
                    _ => None,
                }
            }
        }
    )*};
}
get_error_source!(GetError, TryGetError, GetTimeoutError);

/// An error from [`JoinableQueue::task_done`](super::JoinableQueue::task_done): it was
/// called more times than items were put.
///
/// # Examples
///
/// ```
/// use mproc::queue::JoinableQueue;
///
/// let q = JoinableQueue::<u8>::new()?;
/// let err = q.task_done().unwrap_err();
/// assert_eq!(err.to_string(), "task_done called more times than items were put (0)");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TaskDoneError {
    pub(crate) puts: u64,
}

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "task_done called more times than items were put ({})",
            self.puts
        )
    }
}

impl std::error::Error for TaskDoneError {}

/// An error from [`JoinableQueue::join_timeout`](super::JoinableQueue::join_timeout):
/// some tasks were still unfinished at the timeout.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mproc::queue::JoinableQueue;
///
/// let q = JoinableQueue::new()?;
/// q.put(1u8).unwrap();
/// let err = q.join_timeout(Duration::from_millis(5)).unwrap_err();
/// assert_eq!(err.unfinished(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct JoinTimeoutError {
    pub(crate) unfinished: u64,
    pub(crate) timeout: Duration,
}

impl JoinTimeoutError {
    /// How many tasks were unfinished at the timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::queue::JoinableQueue;
    ///
    /// let q = JoinableQueue::new()?;
    /// q.put('x').unwrap();
    /// q.put('y').unwrap();
    /// assert_eq!(q.join_timeout(Duration::ZERO).unwrap_err().unfinished(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn unfinished(&self) -> u64 {
        self.unfinished
    }
}

impl fmt::Display for JoinTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:?} with {} unfinished tasks",
            self.timeout, self.unfinished
        )
    }
}

impl std::error::Error for JoinTimeoutError {}

//! Errors of the thread-side queues, one small type per operation (crossbeam's
//! shape): an item that was not put comes back through `into_inner()`.

use std::fmt;
use std::time::Duration;

/// An error from `put` on a [`Queue`](super::Queue), [`LifoQueue`](super::LifoQueue)
/// or [`PriorityQueue`](super::PriorityQueue): the queue was shut down (Python's
/// `queue.ShutDown`). The item comes back through [`into_inner`](Self::into_inner).
///
/// # Examples
///
/// ```
/// use mproc::threading::{PutError, Queue};
///
/// let q = Queue::new();
/// q.shutdown(false);
/// assert_eq!(q.put(5), Err(PutError::ShutDown(5)));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PutError<T> {
    /// The queue was shut down: no more items can be put.
    ShutDown(T),
}

/// An error from `try_put` (Python's `put_nowait`).
///
/// # Examples
///
/// ```
/// use mproc::threading::{Queue, TryPutError};
///
/// let q = Queue::with_maxsize(1);
/// q.try_put('a').unwrap();
/// assert_eq!(q.try_put('b'), Err(TryPutError::Full('b')));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TryPutError<T> {
    /// The queue holds `maxsize` items (Python's `queue.Full`).
    Full(T),
    /// The queue was shut down.
    ShutDown(T),
}

/// An error from `put_timeout` and `put_deadline`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mproc::threading::{PutTimeoutError, Queue};
///
/// let q = Queue::with_maxsize(1);
/// q.put(1).unwrap();
/// let err = q.put_timeout(2, Duration::from_millis(5)).unwrap_err();
/// assert_eq!(err, PutTimeoutError::Timeout(2));
/// assert_eq!(err.into_inner(), 2);
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PutTimeoutError<T> {
    /// The queue stayed full until the timeout (Python's `queue.Full`).
    Timeout(T),
    /// The queue was shut down, before the call or while it waited.
    ShutDown(T),
}

macro_rules! put_error_common {
    ($t:ident { $($v:ident),* }, $example:literal) => {
        impl<T> $t<T> {
            /// The item that was not put.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $example]
            /// ```
            pub fn into_inner(self) -> T {
                match self {
                    $($t::$v(t))|* => t,
                }
            }

            /// Whether the queue was shut down.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use mproc::threading::{", stringify!($t), ", Queue};")]
            ///
            /// let q = Queue::new();
            /// q.shutdown(false);
            #[doc = concat!("assert!(", stringify!($t), "::ShutDown(1).is_shutdown());")]
            /// assert!(q.put(1).unwrap_err().is_shutdown());
            /// ```
            pub fn is_shutdown(&self) -> bool {
                matches!(self, $t::ShutDown(_))
            }
        }

        impl<T> fmt::Debug for $t<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($t::$v(_) => f.write_str(concat!(stringify!($v), "(..)")),)*
                }
            }
        }

        impl<T> std::error::Error for $t<T> {}
    };
}

put_error_common!(
    PutError { ShutDown },
    "use mproc::threading::Queue;\n\nlet q = Queue::new();\nq.shutdown(false);\nassert_eq!(q.put(\"kept\").unwrap_err().into_inner(), \"kept\");"
);
put_error_common!(
    TryPutError { Full, ShutDown },
    "use mproc::threading::Queue;\n\nlet q = Queue::with_maxsize(1);\nq.put(1).unwrap();\nassert_eq!(q.try_put(2).unwrap_err().into_inner(), 2);"
);
put_error_common!(
    PutTimeoutError { Timeout, ShutDown },
    "use std::time::Duration;\nuse mproc::threading::Queue;\n\nlet q = Queue::with_maxsize(1);\nq.put(1).unwrap();\nlet err = q.put_timeout(-1, Duration::from_millis(1)).unwrap_err();\nassert_eq!(err.into_inner(), -1);"
);

impl<T> TryPutError<T> {
    /// Whether the queue was full.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::threading::Queue;
    ///
    /// let q = Queue::with_maxsize(1);
    /// q.put(1).unwrap();
    /// assert!(q.try_put(2).unwrap_err().is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, TryPutError::Full(_))
    }
}

impl<T> PutTimeoutError<T> {
    /// Whether the queue stayed full until the timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::threading::Queue;
    ///
    /// let q = Queue::with_maxsize(1);
    /// q.put(()).unwrap();
    /// assert!(q.put_timeout((), Duration::from_millis(1)).unwrap_err().is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, PutTimeoutError::Timeout(_))
    }
}

impl<T> From<PutError<T>> for TryPutError<T> {
    fn from(e: PutError<T>) -> Self {
        let PutError::ShutDown(t) = e;
        TryPutError::ShutDown(t)
    }
}

impl<T> From<PutError<T>> for PutTimeoutError<T> {
    fn from(e: PutError<T>) -> Self {
        let PutError::ShutDown(t) = e;
        PutTimeoutError::ShutDown(t)
    }
}

const SHUT_PUT: &str = "cannot put into a queue that was shut down";

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SHUT_PUT)
    }
}

impl<T> fmt::Display for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => f.write_str("cannot put into a full queue"),
            TryPutError::ShutDown(_) => f.write_str(SHUT_PUT),
        }
    }
}

impl<T> fmt::Display for PutTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutTimeoutError::Timeout(_) => f.write_str("timed out putting into a full queue"),
            PutTimeoutError::ShutDown(_) => f.write_str(SHUT_PUT),
        }
    }
}

/// An error from `get`: the queue was shut down and is empty (Python's
/// `queue.ShutDown`). After `shutdown(false)` the items already in the queue are
/// still delivered; after `shutdown(true)` there are none left.
///
/// # Examples
///
/// ```
/// use mproc::threading::{GetError, Queue};
///
/// let q = Queue::new();
/// q.put(1).unwrap();
/// q.shutdown(false);
/// assert_eq!(q.get(), Ok(1)); // drained first
/// assert_eq!(q.get(), Err(GetError::ShutDown));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum GetError {
    /// The queue was shut down and holds no more items.
    ShutDown,
}

/// An error from `try_get` (Python's `get_nowait`).
///
/// # Examples
///
/// ```
/// use mproc::threading::{Queue, TryGetError};
///
/// let q = Queue::<u8>::new();
/// assert_eq!(q.try_get(), Err(TryGetError::Empty));
/// q.shutdown(false);
/// assert_eq!(q.try_get(), Err(TryGetError::ShutDown));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TryGetError {
    /// The queue is empty (Python's `queue.Empty`).
    Empty,
    /// The queue was shut down and holds no more items.
    ShutDown,
}

/// An error from `get_timeout` and `get_deadline`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mproc::threading::{GetTimeoutError, Queue};
///
/// let q = Queue::<u8>::new();
/// assert_eq!(q.get_timeout(Duration::from_millis(5)), Err(GetTimeoutError::Timeout));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum GetTimeoutError {
    /// The queue stayed empty until the timeout (Python's `queue.Empty`).
    Timeout,
    /// The queue was shut down and holds no more items.
    ShutDown,
}

impl GetError {
    /// Whether the queue was shut down (always, today; kept for symmetry with the
    /// other get errors).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::threading::Queue;
    ///
    /// let q = Queue::<u8>::new();
    /// q.shutdown(true);
    /// assert!(q.get().unwrap_err().is_shutdown());
    /// ```
    pub fn is_shutdown(&self) -> bool {
        matches!(self, GetError::ShutDown)
    }
}

impl TryGetError {
    /// Whether the queue was empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::threading::Queue;
    ///
    /// let q = Queue::<u8>::new();
    /// assert!(q.try_get().unwrap_err().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        matches!(self, TryGetError::Empty)
    }

    /// Whether the queue was shut down and empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::threading::Queue;
    ///
    /// let q = Queue::<u8>::new();
    /// q.shutdown(false);
    /// assert!(q.try_get().unwrap_err().is_shutdown());
    /// ```
    pub fn is_shutdown(&self) -> bool {
        matches!(self, TryGetError::ShutDown)
    }
}

impl GetTimeoutError {
    /// Whether the queue stayed empty until the timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::threading::Queue;
    ///
    /// let q = Queue::<u8>::new();
    /// assert!(q.get_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, GetTimeoutError::Timeout)
    }

    /// Whether the queue was shut down and empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::threading::Queue;
    ///
    /// let q = Queue::<u8>::new();
    /// q.shutdown(false);
    /// assert!(q.get_timeout(Duration::from_secs(1)).unwrap_err().is_shutdown());
    /// ```
    pub fn is_shutdown(&self) -> bool {
        matches!(self, GetTimeoutError::ShutDown)
    }
}

impl From<GetError> for TryGetError {
    fn from(e: GetError) -> Self {
        match e {
            GetError::ShutDown => TryGetError::ShutDown,
        }
    }
}

impl From<GetError> for GetTimeoutError {
    fn from(e: GetError) -> Self {
        match e {
            GetError::ShutDown => GetTimeoutError::ShutDown,
        }
    }
}

const SHUT_GET: &str = "the queue was shut down and is empty";

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SHUT_GET)
    }
}

impl fmt::Display for TryGetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryGetError::Empty => f.write_str("the queue is empty"),
            TryGetError::ShutDown => f.write_str(SHUT_GET),
        }
    }
}

impl fmt::Display for GetTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetTimeoutError::Timeout => f.write_str("timed out waiting on an empty queue"),
            GetTimeoutError::ShutDown => f.write_str(SHUT_GET),
        }
    }
}

impl std::error::Error for GetError {}
impl std::error::Error for TryGetError {}
impl std::error::Error for GetTimeoutError {}

/// An error from `task_done`: it was called more times than items were put
/// (Python's `ValueError: task_done() called too many times`). The count of
/// unfinished tasks stays at zero.
///
/// # Examples
///
/// ```
/// use mproc::threading::Queue;
///
/// let q = Queue::<u8>::new();
/// let err = q.task_done().unwrap_err();
/// assert!(err.to_string().contains("more times than items were put"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TaskDoneError {
    pub(crate) _private: (),
}

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "task_done called more times than items were put: every task is already done; \
             call it once per item taken with get",
        )
    }
}

impl std::error::Error for TaskDoneError {}

/// An error from `join_timeout` and `join_deadline`: some tasks were still
/// unfinished at the timeout.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mproc::threading::Queue;
///
/// let q = Queue::new();
/// q.put(1).unwrap();
/// let err = q.join_timeout(Duration::from_millis(5)).unwrap_err();
/// assert_eq!(err.unfinished(), 1);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct JoinTimeoutError {
    pub(crate) unfinished: usize,
    pub(crate) timeout: Option<Duration>,
}

impl JoinTimeoutError {
    /// How many tasks were unfinished when the wait ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::threading::Queue;
    ///
    /// let q = Queue::new();
    /// q.put('a').unwrap();
    /// q.put('b').unwrap();
    /// q.get().unwrap();
    /// q.task_done().unwrap();
    /// assert_eq!(q.join_timeout(Duration::from_millis(1)).unwrap_err().unfinished(), 1);
    /// ```
    pub fn unfinished(&self) -> usize {
        self.unfinished
    }
}

impl fmt::Display for JoinTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.timeout {
            Some(t) => write!(
                f,
                "timed out after {t:?} with {} unfinished tasks",
                self.unfinished
            ),
            None => write!(
                f,
                "deadline passed with {} unfinished tasks",
                self.unfinished
            ),
        }
    }
}

impl std::error::Error for JoinTimeoutError {}

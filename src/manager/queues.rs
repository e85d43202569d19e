//! Proxies for queues: [`Queue`] and [`JoinableQueue`].

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::client::ObjRef;
use super::proto::{Op, Reply};
use super::{ManagerError, dec, enc, proxy_impl, unexpected};

fn ms(d: Duration) -> Option<u64> {
    Some(d.as_millis().min(u64::MAX as u128) as u64)
}

fn put<T: Serialize>(r: &ObjRef, item: &T, timeout_ms: Option<u64>) -> Result<(), ManagerError> {
    r.unit(Op::Put {
        item: enc(item)?,
        timeout_ms,
    })
}

fn get<T: DeserializeOwned>(r: &ObjRef, timeout_ms: Option<u64>) -> Result<T, ManagerError> {
    match r.op(Op::Take { timeout_ms }) {
        Ok(Reply::Value(Some(b))) => dec(&b),
        Ok(other) => Err(unexpected(other)),
        Err(ManagerError::Empty(_)) => Err(ManagerError::Empty("the queue")),
        Err(e) => Err(e),
    }
}

fn qlen(r: &ObjRef) -> Result<usize, ManagerError> {
    match r.op(Op::QueueLen)? {
        Reply::Len(n) => Ok(n as usize),
        other => Err(unexpected(other)),
    }
}

/// A FIFO queue held by a manager: Python's `Manager().Queue()`.
///
/// Unlike [`mproc::queue::Queue`](crate::queue::Queue) (shared memory, one machine,
/// much faster), this one is reachable from anywhere the manager is, including
/// other machines.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let m = mproc::manager::Manager::start()?;
/// let q = m.bounded_queue::<String>(1)?;
/// q.put("a".into())?;
/// assert!(q.try_put("b".into()).unwrap_err().to_string().contains("full"));
/// assert_eq!(q.len()?, 1);
/// assert_eq!(q.get()?, "a");
/// assert!(q.get_timeout(Duration::from_millis(10)).is_err());
/// # Ok::<(), mproc::manager::ManagerError>(())
/// ```
pub struct Queue<T> {
    r: Arc<ObjRef>,
    _t: PhantomData<fn() -> T>,
}

proxy_impl!("queue", Queue<T>);

/// A queue with `task_done`/`join`: Python's `Manager().JoinableQueue()`.
///
/// # Examples
///
/// ```
/// let m = mproc::manager::Manager::start()?;
/// let q = m.joinable_queue::<u32>()?;
/// q.put(1)?;
/// assert_eq!(q.get()?, 1);
/// q.task_done()?;
/// q.join()?; // every item was marked done
/// # Ok::<(), mproc::manager::ManagerError>(())
/// ```
pub struct JoinableQueue<T> {
    r: Arc<ObjRef>,
    _t: PhantomData<fn() -> T>,
}

proxy_impl!("joinable queue", JoinableQueue<T>);

macro_rules! queue_methods {
    ($ty:ident) => {
        impl<T: Serialize + DeserializeOwned> $ty<T> {
            /// Puts `item`, waiting while a bounded queue is full.
            pub fn put(&self, item: T) -> Result<(), ManagerError> {
                put(&self.r, &item, None)
            }

            /// Puts `item` if there is room now (Python's `put_nowait`).
            ///
            /// # Errors
            ///
            /// [`ManagerError::Full`] when there is no room.
            #[doc(alias = "put_nowait")]
            pub fn try_put(&self, item: T) -> Result<(), ManagerError> {
                put(&self.r, &item, Some(0))
            }

            /// Puts `item`, waiting at most `timeout` for room.
            pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), ManagerError> {
                put(&self.r, &item, ms(timeout))
            }

            /// Takes the oldest item, waiting for one.
            pub fn get(&self) -> Result<T, ManagerError> {
                get(&self.r, None)
            }

            /// Takes the oldest item if there is one (Python's `get_nowait`).
            ///
            /// # Errors
            ///
            /// [`ManagerError::Empty`] when the queue is empty.
            #[doc(alias = "get_nowait")]
            pub fn try_get(&self) -> Result<T, ManagerError> {
                get(&self.r, Some(0))
            }

            /// Takes the oldest item, waiting at most `timeout`.
            pub fn get_timeout(&self, timeout: Duration) -> Result<T, ManagerError> {
                get(&self.r, ms(timeout))
            }

            /// The number of items waiting (Python's `qsize`).
            #[doc(alias = "qsize")]
            pub fn len(&self) -> Result<usize, ManagerError> {
                qlen(&self.r)
            }

            /// Whether no item is waiting.
            pub fn is_empty(&self) -> Result<bool, ManagerError> {
                Ok(qlen(&self.r)? == 0)
            }
        }
    };
}

queue_methods!(Queue);
queue_methods!(JoinableQueue);

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// Marks one item taken earlier as done.
    ///
    /// # Errors
    ///
    /// A protocol error if called more times than items were put.
    pub fn task_done(&self) -> Result<(), ManagerError> {
        self.r.unit(Op::TaskDone)
    }

    /// Waits until every item put has been marked done.
    pub fn join(&self) -> Result<(), ManagerError> {
        self.r.unit(Op::JoinQueue { timeout_ms: None })
    }

    /// As [`join`](JoinableQueue::join), waiting at most `timeout`
    /// ([`ManagerError::Timeout`]).
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), ManagerError> {
        self.r.unit(Op::JoinQueue {
            timeout_ms: ms(timeout),
        })
    }
}

//! [`JoinableQueue`]: a [`Queue`] whose consumers report finished tasks.

use std::any::type_name;
use std::fmt;
use std::io;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{JoinTimeoutError, TaskDoneError};
use super::ring::{Kind, Ring};
use super::{Queue, QueueBuilder, deserialize_ring, serialize_ring};

/// A [`Queue`] that also counts unfinished tasks (Python's `JoinableQueue`).
///
/// Every `put` adds a task; a consumer calls [`task_done`](Self::task_done) when it
/// has finished with an item it got; [`join`](Self::join) waits until every item put
/// so far is done. All of [`Queue`]'s methods are available through `Deref`. The
/// counts live in the shared memory, so producers, consumers and joiners may be in
/// different processes.
///
/// # Caveats
///
/// A consumer that dies between its `get` and its `task_done` leaves that task
/// unfinished forever (as in Python): use [`join_timeout`](Self::join_timeout) where
/// consumers may crash.
///
/// # Examples
///
/// ```
/// use mproc::queue::JoinableQueue;
///
/// let q = JoinableQueue::new()?;
/// let worker = q.clone();
/// std::thread::spawn(move || {
///     while let Ok(n) = worker.get() {
///         let _ = n * 2u64; // work
///         worker.task_done().unwrap();
///     }
/// });
/// for n in 0..100u64 {
///     q.put(n).unwrap();
/// }
/// q.join(); // all 100 done
/// assert!(q.is_empty());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct JoinableQueue<T> {
    pub(super) queue: Queue<T>,
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue {
            queue: self.queue.clone(),
        }
    }
}

impl<T> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinableQueue")
            .field("item", &type_name::<T>())
            .field("len", &self.queue.len())
            .field("unfinished", &self.unfinished())
            .field("closed", &self.queue.is_closed())
            .finish()
    }
}

impl<T> Deref for JoinableQueue<T> {
    type Target = Queue<T>;
    fn deref(&self) -> &Queue<T> {
        &self.queue
    }
}

impl<T> JoinableQueue<T> {
    fn from_ring(ring: Ring) -> Self {
        JoinableQueue {
            queue: Queue::from_arc(Arc::new(ring)),
        }
    }

    /// Creates a joinable queue with no item bound.
    ///
    /// # Errors
    ///
    /// The error of creating or mapping the shared memory.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::JoinableQueue;
    ///
    /// let q = JoinableQueue::<u8>::new()?;
    /// assert_eq!(q.capacity(), None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<JoinableQueue<T>> {
        Self::builder().build()
    }

    /// Creates a joinable queue that holds at most `capacity` items.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero capacity; otherwise the error of creating or mapping
    /// the shared memory.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::JoinableQueue;
    ///
    /// let q = JoinableQueue::bounded(1)?;
    /// q.put(1u8).unwrap();
    /// assert!(q.is_full());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bounded(capacity: usize) -> io::Result<JoinableQueue<T>> {
        Self::builder().capacity(capacity).build()
    }

    /// A builder for a joinable queue with non-default sizes.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::JoinableQueue;
    ///
    /// let q = JoinableQueue::<String>::builder().max_message_size(100).build()?;
    /// assert_eq!(q.max_message_size(), 100);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder() -> QueueBuilder<JoinableQueue<T>> {
        QueueBuilder::new(Kind::Joinable, type_name::<T>(), Self::from_ring)
    }

    /// The plain [`Queue`] handle of this queue (sharing the same items; without
    /// `task_done`/`join`).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::JoinableQueue;
    ///
    /// let j = JoinableQueue::new()?;
    /// let q = j.queue().clone();
    /// q.put(1u8).unwrap();
    /// assert_eq!(j.unfinished(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn queue(&self) -> &Queue<T> {
        &self.queue
    }

    /// The number of items put and not yet matched by a `task_done`.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::JoinableQueue;
    ///
    /// let q = JoinableQueue::new()?;
    /// q.put('a').unwrap();
    /// q.get().unwrap();
    /// assert_eq!(q.unfinished(), 1);
    /// q.task_done().unwrap();
    /// assert_eq!(q.unfinished(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn unfinished(&self) -> u64 {
        let ring = &self.queue.ring;
        ring.puts().saturating_sub(ring.done())
    }

    /// Marks one task as finished (Python's `task_done()`), waking joiners when it
    /// was the last.
    ///
    /// # Errors
    ///
    /// [`TaskDoneError`] if every item put so far is already marked done.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::JoinableQueue;
    ///
    /// let q = JoinableQueue::new()?;
    /// q.put(1u8).unwrap();
    /// q.get().unwrap();
    /// assert!(q.task_done().is_ok());
    /// assert!(q.task_done().is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        self.queue
            .ring
            .task_done()
            .map_err(|puts| TaskDoneError { puts })
    }

    /// Waits until every item put so far has been marked done (Python's `join()`).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::JoinableQueue;
    ///
    /// let q = JoinableQueue::<u8>::new()?;
    /// q.join(); // nothing was put: returns at once
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join(&self) {
        self.queue.ring.join(None);
    }

    /// Waits at most `timeout` for every item put so far to be marked done.
    ///
    /// # Errors
    ///
    /// [`JoinTimeoutError`], with the number of unfinished tasks, at the timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::queue::JoinableQueue;
    ///
    /// let q = JoinableQueue::new()?;
    /// q.put(1u8).unwrap();
    /// assert_eq!(q.join_timeout(Duration::from_millis(5)).unwrap_err().unfinished(), 1);
    /// q.get().unwrap();
    /// q.task_done().unwrap();
    /// assert!(q.join_timeout(Duration::from_millis(5)).is_ok());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinTimeoutError> {
        match crate::deadline::after(timeout) {
            Some(d) => self
                .join_deadline(d)
                .map_err(|e| JoinTimeoutError { timeout, ..e }),
            None => {
                self.join();
                Ok(())
            }
        }
    }

    /// Waits until `deadline` at the latest for every item put so far to be marked
    /// done.
    ///
    /// # Errors
    ///
    /// [`JoinTimeoutError`] at the deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use mproc::queue::JoinableQueue;
    ///
    /// let q = JoinableQueue::new()?;
    /// q.put(1u8).unwrap();
    /// let at = Instant::now() + Duration::from_millis(5);
    /// assert!(q.join_deadline(at).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join_deadline(&self, deadline: Instant) -> Result<(), JoinTimeoutError> {
        let start = Instant::now();
        if self.queue.ring.join(Some(deadline)) {
            Ok(())
        } else {
            Err(JoinTimeoutError {
                unfinished: self.unfinished(),
                timeout: deadline.saturating_duration_since(start),
            })
        }
    }
}

impl<T> Serialize for JoinableQueue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_ring(&self.queue.ring, serializer)
    }
}

impl<'de, T> Deserialize<'de> for JoinableQueue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let ring = deserialize_ring(deserializer, Kind::Joinable, type_name::<T>())?;
        Ok(JoinableQueue::from_ring(ring))
    }
}

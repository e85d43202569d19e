//! [`SimpleQueue`]: the small unbounded queue.

use std::any::type_name;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{GetError, GetTimeoutError, PutError, TryGetError};
use super::ring::{Kind, Ring};
use super::{Queue, QueueBuilder, deserialize_ring, serialize_ring};

/// An unbounded queue with only the essential operations (Python's `SimpleQueue`):
/// `put`, `get`, `is_empty`, `close`.
///
/// It is the same shared-memory ring as [`Queue`], with no item bound; use a
/// [`Queue`] for bounds, timeouts on `put`, or `len`.
///
/// # Examples
///
/// ```
/// use mproc::queue::SimpleQueue;
///
/// let q = SimpleQueue::new()?;
/// q.put("job".to_string()).unwrap();
/// assert_eq!(q.get().unwrap(), "job");
/// assert!(q.is_empty());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct SimpleQueue<T> {
    pub(super) queue: Queue<T>,
}

impl<T> Clone for SimpleQueue<T> {
    fn clone(&self) -> Self {
        SimpleQueue {
            queue: self.queue.clone(),
        }
    }
}

impl<T> fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimpleQueue")
            .field("item", &type_name::<T>())
            .field("empty", &self.queue.is_empty())
            .field("closed", &self.queue.is_closed())
            .finish()
    }
}

impl<T> SimpleQueue<T> {
    fn from_ring(ring: Ring) -> Self {
        SimpleQueue {
            queue: Queue::from_arc(Arc::new(ring)),
        }
    }

    /// Creates a simple queue.
    ///
    /// # Errors
    ///
    /// The error of creating or mapping the shared memory.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = mproc::queue::SimpleQueue::<u8>::new()?;
    /// assert!(q.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<SimpleQueue<T>> {
        Self::builder().build()
    }

    /// A builder for a simple queue with a non-default byte capacity or maximum
    /// message size (an item bound set on it is kept).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::SimpleQueue;
    ///
    /// let q = SimpleQueue::<String>::builder().max_message_size(16).build()?;
    /// assert!(q.put("x".repeat(100)).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder() -> QueueBuilder<SimpleQueue<T>> {
        QueueBuilder::new(Kind::Simple, type_name::<T>(), Self::from_ring)
    }

    /// Whether the queue holds no items (Python's `empty()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = mproc::queue::SimpleQueue::new()?;
    /// q.put(1u8).unwrap();
    /// assert!(!q.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[doc(alias = "empty")]
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Closes the queue for every process: puts fail, gets drain then fail.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = mproc::queue::SimpleQueue::<u8>::new()?;
    /// q.close();
    /// assert!(q.get().unwrap_err().is_closed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn close(&self) {
        self.queue.close();
    }

    /// Whether the queue was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = mproc::queue::SimpleQueue::<u8>::new()?;
    /// q.close();
    /// assert!(q.is_closed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    /// Shuts the queue down in every process: see [`Queue::shutdown`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = mproc::queue::SimpleQueue::new()?;
    /// q.put(1u8).unwrap();
    /// q.shutdown(true);
    /// assert!(q.put(2).unwrap_err().is_shut_down());
    /// assert!(q.get().unwrap_err().is_shut_down());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, immediate: bool) {
        self.queue.shutdown(immediate);
    }

    /// Whether the queue was shut down (in any process).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = mproc::queue::SimpleQueue::<u8>::new()?;
    /// q.shutdown(false);
    /// assert!(q.is_shut_down());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_shut_down(&self) -> bool {
        self.queue.is_shut_down()
    }
}

impl<T: Serialize + 'static> SimpleQueue<T> {
    /// Puts `item` at the back of the queue.
    ///
    /// It waits only if the byte capacity is used up.
    ///
    /// # Errors
    ///
    /// As for [`Queue::put`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = mproc::queue::SimpleQueue::new()?;
    /// q.put([1u8, 2, 3]).unwrap();
    /// assert_eq!(q.get().unwrap(), [1, 2, 3]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.queue.put(item)
    }
}

impl<T: DeserializeOwned + 'static> SimpleQueue<T> {
    /// Takes the front item, waiting while the queue is empty.
    ///
    /// # Errors
    ///
    /// As for [`Queue::get`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = mproc::queue::SimpleQueue::new()?;
    /// q.put(Some(1u8)).unwrap();
    /// assert_eq!(q.get().unwrap(), Some(1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get(&self) -> Result<T, GetError> {
        self.queue.get()
    }

    /// Takes the front item if there is one now.
    ///
    /// # Errors
    ///
    /// As for [`Queue::try_get`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = mproc::queue::SimpleQueue::<u8>::new()?;
    /// assert!(q.try_get().unwrap_err().is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[doc(alias = "get_nowait")]
    pub fn try_get(&self) -> Result<T, TryGetError> {
        self.queue.try_get()
    }

    /// Takes the front item, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As for [`Queue::get_timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let q = mproc::queue::SimpleQueue::<u8>::new()?;
    /// assert!(q.get_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.queue.get_timeout(timeout)
    }
}

impl<T> Serialize for SimpleQueue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_ring(&self.queue.ring, serializer)
    }
}

impl<'de, T> Deserialize<'de> for SimpleQueue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let ring = deserialize_ring(deserializer, Kind::Simple, type_name::<T>())?;
        Ok(SimpleQueue::from_ring(ring))
    }
}

//! Queues from async code: `put_async`, `get_async`, `join_async`.
//!
//! Each tries the non-blocking operation first (`try_put`, `try_get`: the fast
//! path is the blocking call's), and when it would wait, looks again for a while
//! first, as the blocking call spins before it sleeps (short bursts of looks
//! between yields to the runtime, within the ring's adaptive spin budget; a get
//! waits for a small batch, as the blocking get does). Only then does it register
//! in the ring's table of async waiters (`ring::aio`) and sleep on its wake socket
//! through the runtime's reactor. An idle awaiting consumer sleeps.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{GetError, JoinableQueue, PutError, Queue, SimpleQueue, TryGetError, TryPutError};

impl<T: Serialize + 'static> Queue<T> {
    /// Puts `item` at the back of the queue, as [`put`](Self::put) does, without
    /// blocking the thread: while the queue is full, the task sleeps until a get
    /// makes room (woken through the runtime's reactor, from any process).
    ///
    /// # Errors
    ///
    /// As for [`put`](Self::put); the item comes back in the error.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with I/O and time enabled (only when it has to wait).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: the item is put whole or not at all, at one point that does not
    /// await; a `put_async` dropped while it waits for room has put nothing (and the
    /// item is dropped with the future).
    ///
    /// # Examples
    ///
    /// ```
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// # rt.block_on(async {
    /// let q = mproc::queue::Queue::bounded(1)?;
    /// q.put_async(1u32).await?;
    /// let (put, got) = tokio::join!(q.put_async(2), async { q.get_async().await });
    /// put?;
    /// assert_eq!(got?, 1);
    /// assert_eq!(q.get_async().await?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn put_async(&self, mut item: T) -> Result<(), PutError<T>> {
        loop {
            // Read before the attempt: a get between a failed attempt and the wait
            // moves it, and the wait then returns at once.
            let seen = self.ring.gets();
            match self.try_put(item) {
                Ok(()) => return Ok(()),
                Err(TryPutError::Full(back)) => item = back,
                Err(TryPutError::Closed(back)) => return Err(PutError::Closed(back)),
                Err(TryPutError::ShutDown(back)) => return Err(PutError::ShutDown(back)),
                Err(TryPutError::Invalid(back, e)) => return Err(PutError::Invalid(back, e)),
            }
            self.ring.space_async(seen).await;
        }
    }
}

impl<T: DeserializeOwned + 'static> Queue<T> {
    /// Takes the front item, as [`get`](Self::get) does, without blocking the
    /// thread: an item already there is taken at once; otherwise the task sleeps
    /// until a put (from any process) wakes it through the runtime's reactor.
    ///
    /// # Errors
    ///
    /// As for [`get`](Self::get).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with I/O and time enabled (only when it has to wait).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: an item is taken only by the attempt that returns it, which
    /// does not await; a `get_async` dropped while it waits has taken nothing, and
    /// the item it would have had stays first in the queue.
    ///
    /// # Examples
    ///
    /// ```
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// # rt.block_on(async {
    /// use mproc::process::Process;
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<String>::new()?;
    /// let child = Process::start(|q: Queue<String>| q.put("from the child".into()).unwrap(), q.clone())?;
    /// assert_eq!(q.get_async().await?, "from the child");
    /// child.join_async().await?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn get_async(&self) -> Result<T, GetError> {
        loop {
            match self.try_get() {
                Ok(v) => return Ok(v),
                Err(TryGetError::Empty) => {}
                Err(TryGetError::Closed) => return Err(GetError::Closed),
                Err(TryGetError::ShutDown) => return Err(GetError::ShutDown),
                Err(TryGetError::Invalid(e)) => return Err(GetError::Invalid(e)),
            }
            self.ring.data_async().await;
        }
    }
}

impl<T: Serialize + 'static> JoinableQueue<T> {
    /// As [`Queue::put_async`].
    ///
    /// # Errors
    ///
    /// As for [`put`](Queue::put).
    ///
    /// # Panics
    ///
    /// As for [`Queue::put_async`].
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, as [`Queue::put_async`].
    ///
    /// # Examples
    ///
    /// See [`join_async`](Self::join_async).
    pub async fn put_async(&self, item: T) -> Result<(), PutError<T>> {
        self.queue.put_async(item).await
    }
}

impl<T: DeserializeOwned + 'static> JoinableQueue<T> {
    /// As [`Queue::get_async`].
    ///
    /// # Errors
    ///
    /// As for [`get`](Queue::get).
    ///
    /// # Panics
    ///
    /// As for [`Queue::get_async`].
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, as [`Queue::get_async`].
    ///
    /// # Examples
    ///
    /// See [`join_async`](Self::join_async).
    pub async fn get_async(&self) -> Result<T, GetError> {
        self.queue.get_async().await
    }
}

impl<T> JoinableQueue<T> {
    /// Waits until every item put has been marked done, as [`join`](Self::join)
    /// does, without blocking the thread.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with I/O and time enabled (only when it has to wait).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: it only waits.
    ///
    /// # Examples
    ///
    /// ```
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// # rt.block_on(async {
    /// let q = mproc::queue::JoinableQueue::new()?;
    /// q.put_async(5u8).await?;
    /// let worker = async {
    ///     let n = q.get_async().await.unwrap();
    ///     q.task_done().unwrap();
    ///     n
    /// };
    /// let (n, ()) = tokio::join!(worker, q.join_async());
    /// assert_eq!(n, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn join_async(&self) {
        self.queue.ring.join_async().await
    }
}

impl<T: Serialize + 'static> SimpleQueue<T> {
    /// As [`Queue::put_async`] (a `SimpleQueue` is unbounded, so it waits only
    /// while its bytes are full).
    ///
    /// # Errors
    ///
    /// As for [`put`](Self::put).
    ///
    /// # Panics
    ///
    /// As for [`Queue::put_async`].
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, as [`Queue::put_async`].
    ///
    /// # Examples
    ///
    /// See [`get_async`](Self::get_async).
    pub async fn put_async(&self, item: T) -> Result<(), PutError<T>> {
        self.queue.put_async(item).await
    }
}

impl<T: DeserializeOwned + 'static> SimpleQueue<T> {
    /// As [`Queue::get_async`].
    ///
    /// # Errors
    ///
    /// As for [`get`](Self::get).
    ///
    /// # Panics
    ///
    /// As for [`Queue::get_async`].
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, as [`Queue::get_async`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// # rt.block_on(async {
    /// let q = mproc::queue::SimpleQueue::new()?;
    /// q.put_async(vec![1u8, 2]).await?;
    /// assert_eq!(q.get_async().await?, [1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn get_async(&self) -> Result<T, GetError> {
        self.queue.get_async().await
    }
}

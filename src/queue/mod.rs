//! Queues between processes, in shared memory: [`Queue`], [`JoinableQueue`],
//! [`SimpleQueue`].
//!
//! The counterparts of Python's `multiprocessing.Queue`, `JoinableQueue` and
//! `SimpleQueue`, for many producers and many consumers in any number of processes.
//! A queue is a ring buffer in an anonymous shared-memory file (`memfd`): `put`
//! encodes the item (serde, postcard) straight into the ring, `get` copies it out.
//! There is no feeder thread and no pipe; when nobody is waiting, neither side makes
//! a system call. A waiter spins briefly, then sleeps on a futex in the shared memory.
//!
//! A handle is cheap to clone, and it travels: pass it to a child process as an
//! argument (or send it over a [`Pipe`](crate::pipe)) and both processes use the same
//! queue. The memory goes away when the last handle in the last process does.
//!
//! Use a queue to hand items from some processes to others. For two processes
//! talking to each other, a [`pipe`](crate::pipe) is simpler and can carry handles;
//! within one process, `crossbeam-channel` or `std::sync::mpsc` are faster.
//!
//! ```
//! use mproc::queue::Queue;
//!
//! let q = Queue::bounded(16)?;          // at most 16 items waiting
//! q.put((1u32, "one".to_string())).unwrap();
//! q.put((2, "two".into())).unwrap();
//! assert_eq!(q.len(), 2);
//! assert_eq!(q.get().unwrap(), (1, "one".to_string()));
//! q.close();                             // no more puts; gets drain what is left
//! assert_eq!(q.get().unwrap().0, 2);
//! assert!(q.get().unwrap_err().is_closed());
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Sizes
//!
//! A queue is bounded by a number of items ([`Queue::bounded`]) and always by bytes:
//! its *byte capacity* (1 GiB by default) is reserved as address space only, and
//! backed by memory page by page as it is first used; a queue that is drained about
//! as fast as it is filled keeps reusing its first few hundred KiB. [`Queue::new`]
//! has no item bound: for practical purposes it is unbounded. One item may encode to
//! at most [`max_message_size`](QueueBuilder::max_message_size) bytes (64 MiB by
//! default; at most half the byte capacity); a larger one is refused with
//! [`MessageError::is_too_large`] and the queue is unaffected. For large binary
//! payloads use [`Bytes`], which is copied in one `memcpy` instead of byte by byte.
//!
//! # Crashes
//!
//! A process may be killed (`SIGKILL`) at any instant of a `put` or `get` without
//! harming the others:
//!
//! - a `put` that returned `Ok` has put its item: it will be returned by exactly one
//!   `get`, unless the consumer running that `get` dies after it has copied the item
//!   out and marked it taken (its claim, the compare-and-swap near the end of `get`,
//!   after which the item lives only in that process);
//! - a `put` killed before it returned either put its item whole or not at all; a
//!   `get` killed before its claim leaves the item at the head of the queue for the
//!   next consumer;
//! - the queue stays consistent and the others carry on: producers are serialized by
//!   a lock in the shared memory that names its holder's thread; a producer that
//!   waits on a holder for 10 ms asks the kernel whether that thread still runs, and
//!   the one that takes over from a dead holder repairs the state from the records'
//!   stamps (counted by [`Queue::recoveries`]);
//!   consumers take no lock: a get copies the item out, then claims it with one
//!   atomic compare-and-swap, so a consumer killed at any point either took the item
//!   or left it in place, and leaves nothing to repair;
//! - per producer, items stay in order (FIFO), and gets return them in put order.
//!
//! # Caveats
//!
//! - **Drop**: dropping a handle never loses items; the queue lives while any process
//!   holds a handle. Items left in a queue when the last handle goes are dropped.
//! - **Child crash / parent death**: see *Crashes*. A process that is *stopped*
//!   (`SIGSTOP`) inside a put holds the producers' lock until it continues (a
//!   stopped consumer holds nothing).
//! - **Handles inside items**: items travel as bytes, so an item that contains a
//!   handle (a queue, a pipe end) cannot be put; that is an error at the `put`. Send
//!   handles over a [`pipe`](crate::pipe) or as process arguments instead.
//! - **Types**: both ends must use the same item type; a handle that arrives as a
//!   queue of another type is refused when it is decoded.
//! - **Namespaces and `/proc`**: the processes that share a queue must be in one PID
//!   namespace (a handle that arrives in another is refused). Telling a dead producer
//!   from a live one reads `/proc/<tid>/stat`; where that cannot show the holder (no
//!   `/proc`, or `hidepid` hiding another user's process) it is presumed alive, so a
//!   producer killed inside a put then blocks the other producers instead of being
//!   repaired.
//! - **Ctrl-C, fork**: nothing special; a forked child shares the queue like any
//!   other process that holds a handle.

#[cfg(feature = "tokio")]
mod aio;
mod bytes;
mod error;
mod joinable;
mod ring;
mod simple;

use std::any::{Any, TypeId, type_name};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use bytes::Bytes;
pub use error::{
    GetError, GetTimeoutError, JoinTimeoutError, MessageError, PutError, PutTimeoutError,
    TaskDoneError, TryGetError, TryPutError,
};
pub use joinable::JoinableQueue;
pub use simple::SimpleQueue;

use ring::{GetFail, Item, Kind, Params, PutFail, Ring};

/// The item as the ring writes it: byte vectors (`Vec<u8>`, [`Bytes`]) go in with
/// one `memcpy` instead of serde's byte-by-byte sequence (same encoding).
fn as_item<T: Serialize + 'static>(item: &T) -> Item<'_, T> {
    let any = item as &dyn Any;
    if let Some(v) = any.downcast_ref::<Vec<u8>>() {
        Item::Bytes(v)
    } else if let Some(b) = any.downcast_ref::<Bytes>() {
        Item::Bytes(&b.0)
    } else {
        Item::Value(item)
    }
}

/// What a blocking put's failure is to its caller, with `item` given back.
fn put_error<I>(fail: PutFail, item: I) -> PutError<I> {
    match fail {
        PutFail::Invalid(e) => PutError::Invalid(item, e),
        PutFail::ShutDown => PutError::ShutDown(item),
        _ => PutError::Closed(item),
    }
}

/// What a non-blocking put's failure is to its caller, with `item` given back.
fn try_put_error<I>(fail: PutFail, item: I) -> TryPutError<I> {
    match fail {
        PutFail::Full | PutFail::Timeout => TryPutError::Full(item),
        PutFail::Closed => TryPutError::Closed(item),
        PutFail::ShutDown => TryPutError::ShutDown(item),
        PutFail::Invalid(e) => TryPutError::Invalid(item, e),
    }
}

fn is_byte_vec<T: 'static>() -> bool {
    TypeId::of::<T>() == TypeId::of::<Vec<u8>>() || TypeId::of::<T>() == TypeId::of::<Bytes>()
}

fn from_byte_vec<T: 'static>(v: Vec<u8>) -> T {
    let mut out: Option<T> = None;
    let slot = &mut out as &mut dyn Any;
    if let Some(s) = slot.downcast_mut::<Option<Vec<u8>>>() {
        *s = Some(v);
    } else if let Some(s) = slot.downcast_mut::<Option<Bytes>>() {
        *s = Some(Bytes(v));
    }
    out.expect("from_byte_vec is only called for byte vectors")
}

/// Takes the next item from `ring`, decoding it as a `T`.
fn get_item<T: DeserializeOwned + 'static>(
    ring: &Ring,
    block: bool,
    deadline: Option<Instant>,
) -> Result<T, GetFail> {
    if is_byte_vec::<T>() {
        ring.get_byte_vec(block, deadline).map(from_byte_vec)
    } else {
        ring.get(block, deadline, ring::read_to_scratch, |buf| {
            let r = crate::codec::decode_bytes(&buf, Vec::new()).map_err(MessageError::decode);
            ring::return_scratch(buf);
            r
        })
    }
}

/// A multi-producer, multi-consumer FIFO queue shared between processes.
///
/// Items are `'static` serde types (`Serialize` to put, `DeserializeOwned` to get).
/// See the [module docs](self) for sizes, crash guarantees and caveats.
///
/// # Examples
///
/// ```
/// use mproc::queue::Queue;
///
/// let q = Queue::new()?;
/// let producer = q.clone();
/// std::thread::spawn(move || {
///     for i in 0..100u64 {
///         producer.put(i).unwrap();
///     }
/// });
/// let sum: u64 = (0..100).map(|_| q.get().unwrap()).sum();
/// assert_eq!(sum, 4950);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Queue<T> {
    ring: Arc<Ring>,
    _item: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            ring: self.ring.clone(),
            _item: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("item", &type_name::<T>())
            .field("len", &self.ring.len())
            .field("capacity", &self.ring.capacity())
            .field("closed", &self.ring.was_closed())
            .field("shut_down", &self.ring.was_shut_down())
            .finish()
    }
}

/// Builds a [`Queue`], [`JoinableQueue`] or [`SimpleQueue`] with non-default sizes.
///
/// # Examples
///
/// ```
/// use mproc::queue::{JoinableQueue, Queue};
///
/// let q = Queue::<String>::builder()
///     .capacity(100)
///     .byte_capacity(1 << 20)
///     .max_message_size(4096)
///     .build()?;
/// assert_eq!(q.capacity(), Some(100));
/// assert_eq!(q.max_message_size(), 4096);
///
/// let j = JoinableQueue::<u8>::builder().capacity(2).build()?;
/// assert_eq!(j.capacity(), Some(2));
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use]
pub struct QueueBuilder<Q> {
    capacity: Option<u64>,
    byte_capacity: u64,
    max_message: Option<usize>,
    kind: Kind,
    type_name: &'static str,
    make: fn(Ring) -> Q,
}

impl<Q> fmt::Debug for QueueBuilder<Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueBuilder")
            .field("capacity", &self.capacity)
            .field("byte_capacity", &self.byte_capacity)
            .field("max_message_size", &self.max_message)
            .finish()
    }
}

impl<Q> QueueBuilder<Q> {
    pub(crate) fn new(kind: Kind, type_name: &'static str, make: fn(Ring) -> Q) -> Self {
        QueueBuilder {
            capacity: None,
            byte_capacity: ring::DEFAULT_RING_BYTES,
            max_message: None,
            kind,
            type_name,
            make,
        }
    }

    /// The most items the queue holds at once (default: no item bound, only the
    /// byte capacity). A `put` on a full queue waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<u8>::builder().capacity(1).build()?;
    /// q.put(1).unwrap();
    /// assert!(q.try_put(2).unwrap_err().is_full());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn capacity(mut self, items: usize) -> Self {
        self.capacity = Some(items as u64);
        self
    }

    /// The bytes of shared memory the queue may use for waiting items, rounded up to
    /// a power of two (default 1 GiB). Reserved as address space only; memory is used
    /// as items need it.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<u64>::builder().byte_capacity(64 << 10).build()?;
    /// assert_eq!(q.byte_capacity(), 64 << 10);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn byte_capacity(mut self, bytes: usize) -> Self {
        self.byte_capacity = bytes as u64;
        self
    }

    /// The largest encoded item, in bytes (default 64 MiB, or half the byte
    /// capacity if that is less). A larger item is refused at `put`.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<String>::builder().max_message_size(3).build()?;
    /// assert!(q.put("abcd".into()).is_err());
    /// assert!(q.put("ab".into()).is_ok()); // 1 length byte + 2
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message = Some(bytes);
        self
    }

    /// Creates the queue.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero capacity or a maximum message size over half the
    /// byte capacity; otherwise the error of creating or mapping the shared memory.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// assert!(Queue::<u8>::builder().capacity(0).build().is_err());
    /// let q = Queue::<u8>::builder().capacity(3).build()?;
    /// assert_eq!(q.capacity(), Some(3));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build(self) -> io::Result<Q> {
        if self.capacity == Some(0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a queue's capacity must be at least 1",
            ));
        }
        let ring_bytes = self
            .byte_capacity
            .max(ring::MIN_RING_BYTES)
            .checked_next_power_of_two()
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "byte capacity too large")
            })?;
        let limit = ring::max_message_for(ring_bytes);
        let max_message = match self.max_message {
            None => ring::DEFAULT_MAX_MESSAGE.min(limit),
            Some(m) if m <= limit => m,
            Some(m) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "max_message_size {m} is over {limit}, half the byte capacity of {ring_bytes}; raise byte_capacity"
                    ),
                ));
            }
        };
        let ring = Ring::create(&Params {
            kind: self.kind,
            capacity: self.capacity,
            ring_bytes,
            max_message,
            type_name: self.type_name,
        })?;
        Ok((self.make)(ring))
    }
}

impl<T> Queue<T> {
    pub(crate) fn from_arc(ring: Arc<Ring>) -> Self {
        Queue {
            ring,
            _item: PhantomData,
        }
    }

    /// Creates a queue with no item bound (Python's `Queue()`).
    ///
    /// # Errors
    ///
    /// The error of creating or mapping the shared memory.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::new()?;
    /// for i in 0..10_000u32 {
    ///     q.put(i).unwrap();
    /// }
    /// assert_eq!(q.len(), 10_000);
    /// assert_eq!(q.capacity(), None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<Queue<T>> {
        Self::builder().build()
    }

    /// Creates a queue that holds at most `capacity` items (Python's
    /// `Queue(maxsize)`).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero capacity; otherwise the error of creating or
    /// mapping the shared memory.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::bounded(2)?;
    /// q.put('a').unwrap();
    /// q.put('b').unwrap();
    /// assert!(q.is_full());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bounded(capacity: usize) -> io::Result<Queue<T>> {
        Self::builder().capacity(capacity).build()
    }

    /// A builder for a queue with non-default sizes.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<Vec<u8>>::builder().max_message_size(1 << 20).build()?;
    /// assert_eq!(q.max_message_size(), 1 << 20);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder() -> QueueBuilder<Queue<T>> {
        QueueBuilder::new(Kind::Queue, type_name::<T>(), |r| {
            Queue::from_arc(Arc::new(r))
        })
    }

    /// The number of items in the queue (Python's `qsize()`), from counters in the
    /// shared memory. Other processes may change it at any moment.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::new()?;
    /// q.put(1u8).unwrap();
    /// assert_eq!(q.len(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[doc(alias = "qsize")]
    pub fn len(&self) -> usize {
        self.ring.len() as usize
    }

    /// Whether the queue holds no items (Python's `empty()`).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<u8>::new()?;
    /// assert!(q.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[doc(alias = "empty")]
    pub fn is_empty(&self) -> bool {
        self.ring.len() == 0
    }

    /// Whether a `put` would wait now: the queue holds `capacity` items, or its byte
    /// capacity is used up (Python's `full()`).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::bounded(1)?;
    /// assert!(!q.is_full());
    /// q.put(0u8).unwrap();
    /// assert!(q.is_full());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[doc(alias = "full")]
    pub fn is_full(&self) -> bool {
        self.ring.is_full()
    }

    /// The item bound, or `None` for a queue bounded by bytes only.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// assert_eq!(Queue::<u8>::bounded(5)?.capacity(), Some(5));
    /// assert_eq!(Queue::<u8>::new()?.capacity(), None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.ring.capacity().map(|c| c as usize)
    }

    /// The bytes of shared memory reserved for waiting items.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// assert_eq!(Queue::<u8>::new()?.byte_capacity(), 1 << 30);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn byte_capacity(&self) -> usize {
        self.ring.ring_bytes() as usize
    }

    /// The largest encoded item accepted, in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// assert_eq!(Queue::<u8>::new()?.max_message_size(), 64 << 20);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn max_message_size(&self) -> usize {
        self.ring.max_message()
    }

    /// Closes the queue, for every process: from now on `put` fails with `Closed`;
    /// `get` returns the items already in the queue, then fails with `Closed`.
    /// Waiting producers and consumers are woken. Closing twice is harmless.
    ///
    /// (Python's `close()` only stops the calling process's feeder thread; here it is
    /// the shutdown signal for everyone, like closing a channel.)
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::new()?;
    /// q.put(1u8).unwrap();
    /// q.close();
    /// assert!(q.put(2).unwrap_err().is_closed());
    /// assert_eq!(q.get(), Ok(1));
    /// assert!(q.get().unwrap_err().is_closed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn close(&self) {
        self.ring.close();
    }

    /// Whether the queue was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<u8>::new()?;
    /// assert!(!q.is_closed());
    /// q.clone().close();
    /// assert!(q.is_closed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.ring.was_closed()
    }

    /// Shuts the queue down, for every process that uses it (Python 3.13's
    /// `Queue.shutdown(immediate)`).
    ///
    /// From now on every `put` fails with `ShutDown` (for example
    /// [`PutError::ShutDown`]). Without `immediate`, gets return what is queued,
    /// then fail with [`GetError::ShutDown`]; with `immediate`, what is queued is
    /// discarded now and gets fail at once (for a [`JoinableQueue`], each discarded
    /// item counts as done, so `join` returns once the items already taken are
    /// done). Every process blocked in a `put`, a `get` or a `join` on this queue
    /// is woken. Shutting down twice is harmless; an `immediate` shutdown after a
    /// plain one still discards.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::{GetError, Queue};
    ///
    /// let q = Queue::new()?;
    /// q.put(1u8).unwrap();
    /// q.put(2).unwrap();
    /// q.shutdown(false);
    /// assert!(q.put(3).unwrap_err().is_shut_down());
    /// assert_eq!(q.get(), Ok(1)); // drains what was there
    /// q.shutdown(true); // discards the rest
    /// assert_eq!(q.get(), Err(GetError::ShutDown));
    /// assert!(q.is_shut_down());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, immediate: bool) {
        self.ring.shutdown(immediate);
    }

    /// Whether the queue was shut down ([`shutdown`](Self::shutdown), in any
    /// process).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<u8>::new()?;
    /// assert!(!q.is_shut_down());
    /// q.clone().shutdown(false);
    /// assert!(q.is_shut_down());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_shut_down(&self) -> bool {
        self.ring.was_shut_down()
    }

    /// How many times a `put` found that a producer had died inside a `put`
    /// (holding the producers' lock) and repaired the queue. (A consumer killed
    /// inside a `get` needs no repair and is not counted.) For monitoring and tests.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<u8>::new()?;
    /// assert_eq!(q.recoveries(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recoveries(&self) -> u64 {
        self.ring.recoveries()
    }
}

impl<T: Serialize + 'static> Queue<T> {
    /// Puts `item` at the back of the queue, waiting while the queue is full.
    ///
    /// The item is encoded straight into shared memory; when this returns `Ok`, the
    /// item is in the queue (see the crash guarantees in the [module docs](self)).
    ///
    /// # Errors
    ///
    /// [`PutError::Closed`] if the queue is closed (also while waiting);
    /// [`PutError::Invalid`] if the item encodes to more than
    /// [`max_message_size`](Self::max_message_size) bytes or cannot be encoded (for
    /// example, it contains a handle). The item comes back in the error.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::new()?;
    /// q.put(vec![1.5f64, 2.5]).unwrap();
    /// assert_eq!(q.get().unwrap(), vec![1.5, 2.5]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.ring
            .put(as_item(&item), true, None)
            .map_err(|fail| put_error(fail, item))
    }

    /// Puts a copy of `*item` at the back of the queue, waiting while the queue is
    /// full; the caller keeps `item`, as Python's `put` never takes the object it is
    /// given.
    ///
    /// The item is encoded from the reference straight into shared memory, so
    /// sending one value many times costs no clone and no allocation per put.
    /// Otherwise as [`put`](Self::put).
    ///
    /// # Errors
    ///
    /// As for [`put`](Self::put); the reference comes back in the error.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::{Bytes, Queue};
    ///
    /// let q = Queue::<Bytes>::new()?;
    /// let frame = Bytes::from(vec![7u8; 64]);
    /// for _ in 0..3 {
    ///     q.put_ref(&frame).unwrap();
    /// }
    /// assert_eq!(q.get().unwrap(), frame);
    /// assert_eq!(q.len(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn put_ref<'a>(&self, item: &'a T) -> Result<(), PutError<&'a T>> {
        self.ring
            .put(as_item(item), true, None)
            .map_err(|fail| put_error(fail, item))
    }

    /// Puts a copy of `*item` if there is room now; the caller keeps `item` (see
    /// [`put_ref`](Self::put_ref) and [`try_put`](Self::try_put)).
    ///
    /// # Errors
    ///
    /// As for [`try_put`](Self::try_put); the reference comes back in the error.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::{Queue, TryPutError};
    ///
    /// let q = Queue::bounded(1)?;
    /// let n = 5u32;
    /// assert!(q.try_put_ref(&n).is_ok());
    /// assert_eq!(q.try_put_ref(&n), Err(TryPutError::Full(&5)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_put_ref<'a>(&self, item: &'a T) -> Result<(), TryPutError<&'a T>> {
        self.ring
            .put(as_item(item), false, None)
            .map_err(|fail| try_put_error(fail, item))
    }

    /// Puts `item` if there is room now (Python's `put_nowait()`).
    ///
    /// It may wait for another process's `put` to finish, never for room.
    ///
    /// # Errors
    ///
    /// [`TryPutError::Full`] if the queue is full; otherwise as for
    /// [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::{Queue, TryPutError};
    ///
    /// let q = Queue::bounded(1)?;
    /// assert!(q.try_put(1u8).is_ok());
    /// assert_eq!(q.try_put(2), Err(TryPutError::Full(2)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[doc(alias = "put_nowait")]
    pub fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        self.ring
            .put(as_item(&item), false, None)
            .map_err(|fail| try_put_error(fail, item))
    }

    /// Puts `item`, waiting at most `timeout` for room (Python's
    /// `put(item, timeout=t)`).
    ///
    /// # Errors
    ///
    /// [`PutTimeoutError::Timeout`] if the queue stayed full; otherwise as for
    /// [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::bounded(1)?;
    /// q.put_timeout(1u8, Duration::from_millis(10)).unwrap();
    /// assert!(q.put_timeout(2, Duration::from_millis(10)).unwrap_err().is_timeout());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
        match crate::deadline::after(timeout) {
            Some(d) => self.put_deadline(item, d),
            None => self.put(item).map_err(PutTimeoutError::from),
        }
    }

    /// Puts `item`, waiting until `deadline` at the latest for room.
    ///
    /// # Errors
    ///
    /// As for [`put_timeout`](Self::put_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::bounded(1)?;
    /// q.put(1u8).unwrap();
    /// let at = Instant::now() + Duration::from_millis(10);
    /// assert!(q.put_deadline(2, at).unwrap_err().is_timeout());
    /// assert!(Instant::now() >= at);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn put_deadline(&self, item: T, deadline: Instant) -> Result<(), PutTimeoutError<T>> {
        match self.ring.put(as_item(&item), true, Some(deadline)) {
            Ok(()) => Ok(()),
            Err(PutFail::Full | PutFail::Timeout) => Err(PutTimeoutError::Timeout(item)),
            Err(PutFail::Closed) => Err(PutTimeoutError::Closed(item)),
            Err(PutFail::ShutDown) => Err(PutTimeoutError::ShutDown(item)),
            Err(PutFail::Invalid(e)) => Err(PutTimeoutError::Invalid(item, e)),
        }
    }
}

impl<T: DeserializeOwned + 'static> Queue<T> {
    /// Takes the item at the front of the queue, waiting while it is empty.
    ///
    /// # Errors
    ///
    /// [`GetError::Closed`] once the queue is closed and empty;
    /// [`GetError::Invalid`] if the item cannot be decoded as a `T` (it is consumed).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::new()?;
    /// q.put("hello".to_string()).unwrap();
    /// assert_eq!(q.get().unwrap(), "hello");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get(&self) -> Result<T, GetError> {
        match get_item::<T>(&self.ring, true, None) {
            Ok(v) => Ok(v),
            Err(GetFail::Invalid(e)) => Err(GetError::Invalid(e)),
            Err(GetFail::ShutDown) => Err(GetError::ShutDown),
            Err(_) => Err(GetError::Closed),
        }
    }

    /// Takes the front item if there is one now (Python's `get_nowait()`).
    ///
    /// # Errors
    ///
    /// [`TryGetError::Empty`] if the queue is empty; otherwise as for
    /// [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::queue::{Queue, TryGetError};
    ///
    /// let q = Queue::new()?;
    /// assert_eq!(q.try_get(), Err(TryGetError::Empty));
    /// q.put(3u8).unwrap();
    /// assert_eq!(q.try_get(), Ok(3));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[doc(alias = "get_nowait")]
    pub fn try_get(&self) -> Result<T, TryGetError> {
        match get_item::<T>(&self.ring, false, None) {
            Ok(v) => Ok(v),
            Err(GetFail::Empty | GetFail::Timeout) => Err(TryGetError::Empty),
            Err(GetFail::Closed) => Err(TryGetError::Closed),
            Err(GetFail::ShutDown) => Err(TryGetError::ShutDown),
            Err(GetFail::Invalid(e)) => Err(TryGetError::Invalid(e)),
        }
    }

    /// Takes the front item, waiting at most `timeout` (Python's
    /// `get(timeout=t)`).
    ///
    /// # Errors
    ///
    /// [`GetTimeoutError::Timeout`] if the queue stayed empty; otherwise as for
    /// [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<u8>::new()?;
    /// assert!(q.get_timeout(Duration::from_millis(5)).unwrap_err().is_timeout());
    /// q.put(9).unwrap();
    /// assert_eq!(q.get_timeout(Duration::from_millis(5)), Ok(9));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        match crate::deadline::after(timeout) {
            Some(d) => self.get_deadline(d),
            None => self.get().map_err(GetTimeoutError::from),
        }
    }

    /// Takes the front item, waiting until `deadline` at the latest.
    ///
    /// # Errors
    ///
    /// As for [`get_timeout`](Self::get_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use mproc::queue::Queue;
    ///
    /// let q = Queue::<u8>::new()?;
    /// let at = Instant::now() + Duration::from_millis(5);
    /// assert!(q.get_deadline(at).unwrap_err().is_timeout());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_deadline(&self, deadline: Instant) -> Result<T, GetTimeoutError> {
        match get_item::<T>(&self.ring, true, Some(deadline)) {
            Ok(v) => Ok(v),
            Err(GetFail::Empty | GetFail::Timeout) => Err(GetTimeoutError::Timeout),
            Err(GetFail::Closed) => Err(GetTimeoutError::Closed),
            Err(GetFail::ShutDown) => Err(GetTimeoutError::ShutDown),
            Err(GetFail::Invalid(e)) => Err(GetTimeoutError::Invalid(e)),
        }
    }
}

/// Fault injection for the `--cfg mproc_fault` tests: this process aborts (dies
/// holding whatever queue lock it has) when a put or get reaches protocol `step`
/// (1–8: put, 11–16: get; see `ring/algorithm.rs`). Not part of the API.
#[cfg(all(mproc_fault, not(test)))]
#[doc(hidden)]
pub fn __fault_at(step: u32) {
    ring::fault::ABORT_AT.store(step, std::sync::atomic::Ordering::Relaxed);
}

pub(crate) fn serialize_ring<S: Serializer>(ring: &Ring, serializer: S) -> Result<S::Ok, S::Error> {
    crate::codec::serialize_fd(ring.fd(), serializer)
}

pub(crate) fn deserialize_ring<'de, D: Deserializer<'de>>(
    deserializer: D,
    kind: Kind,
    type_name: &str,
) -> Result<Ring, D::Error> {
    let fd = crate::codec::deserialize_fd(deserializer)?;
    Ring::attach(fd, kind, type_name).map_err(crate::codec::handle_custom_error)
}

impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_ring(&self.ring, serializer)
    }
}

impl<'de, T> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let ring = deserialize_ring(deserializer, Kind::Queue, type_name::<T>())?;
        Ok(Queue::from_arc(Arc::new(ring)))
    }
}

#[cfg(test)]
mod tests;

//! Python's `queue` and `threading.Timer`, between threads of one process:
//! [`Queue`], [`LifoQueue`], [`PriorityQueue`] and [`Timer`].
//!
//! The three queues are Python's `queue.Queue`, `queue.LifoQueue` and
//! `queue.PriorityQueue`, with the same semantics: an optional `maxsize` (0 means
//! unbounded) past which `put` blocks, blocking, timed and non-blocking `put` and
//! `get`, `task_done`/`join` to wait until every item put has been processed, and
//! Python 3.13's `shutdown(immediate)`. They differ only in the order `get` hands
//! items out:
//!
//! | type | `get` returns | Python |
//! |---|---|---|
//! | [`Queue`] | the oldest item (FIFO) | `queue.Queue` |
//! | [`LifoQueue`] | the newest item (a stack) | `queue.LifoQueue` |
//! | [`PriorityQueue`] | the smallest item (`Ord`); equal items in put order | `queue.PriorityQueue` |
//!
//! A handle is cheap to clone (an `Arc` inside) and is `Send + Sync` when the items
//! are `Send`: clone it into each thread, or share it by reference with scoped
//! threads.
//!
//! ```
//! use std::thread;
//! use mproc::threading::Queue;
//!
//! let jobs = Queue::with_maxsize(8); // put blocks while 8 items wait
//! let workers: Vec<_> = (0..2)
//!     .map(|_| {
//!         let jobs = jobs.clone();
//!         thread::spawn(move || {
//!             let mut sum = 0u64;
//!             while let Ok(n) = jobs.get() {
//!                 sum += n;
//!                 jobs.task_done().unwrap();
//!             }
//!             sum // `get` failed: the queue was shut down and is drained
//!         })
//!     })
//!     .collect();
//! for n in 1..=100 {
//!     jobs.put(n).unwrap();
//! }
//! jobs.join(); // every item was taken and marked done
//! jobs.shutdown(false); // the workers' next `get` fails
//! let total: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
//! assert_eq!(total, 5050);
//! ```
//!
//! # Which queue to use
//!
//! These are for Python's patterns between threads: a priority order, a stack,
//! `task_done`/`join`, shutdown that drains. For a plain channel between threads,
//! `std::sync::mpsc` or `crossbeam-channel` are leaner. Between processes, use
//! [`mproc::queue`](crate::queue).
//!
//! # Differences from Python
//!
//! - Errors are values, one type per operation ([`PutError`], [`TryPutError`],
//!   [`PutTimeoutError`], [`GetError`], [`TryGetError`], [`GetTimeoutError`],
//!   [`TaskDoneError`], [`JoinTimeoutError`]); an item that was not put comes back
//!   with the error.
//! - `put(item, block=False)` is [`try_put`](Queue::try_put), `put(item, timeout=t)`
//!   is [`put_timeout`](Queue::put_timeout) (`Duration::MAX` waits for ever), and the
//!   same for `get`. A negative timeout cannot be written.
//! - `qsize()`, `empty()`, `full()` are [`len`](Queue::len),
//!   [`is_empty`](Queue::is_empty), [`is_full`](Queue::is_full); `maxsize` is fixed
//!   at creation.
//! - [`PriorityQueue`] keeps items that compare equal in put order by itself:
//!   Python users put `(priority, seq, item)` tuples for that. Put
//!   [`Prioritized`]`::new(priority, item)` to order by the priority alone (the item
//!   is never compared and need not be `Ord`) with ties in put order.
//! - `shutdown(true)` returns the items it removed instead of dropping them.
//!
//! # Caveats
//!
//! - **Drop**: items still queued when the last handle is dropped are dropped with
//!   it. A thread blocked in `get` holds a handle, so it keeps the queue alive:
//!   [`shutdown`](Queue::shutdown) is the way to release it.
//! - **Panics**: a panic inside `Ord::cmp` (the only user code that runs under the
//!   queue's locks) propagates to the operation that compared: in a
//!   [`PriorityQueue`], a `get` (puts append to a staging buffer, and the next
//!   `get` orders what was put), an immediate `shutdown`, or a put that found a
//!   long staging buffer and ordered it. The queue stays usable, its counts stay right and no
//!   item is lost.
//! - **Fork**: a child forked while another thread holds a queue's lock would find
//!   it locked; these queues are for threads of one process.

mod error;
mod locked;
mod order;
mod prioritized;
mod sleepers;
mod staged;
mod timer;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use error::{
    GetError, GetTimeoutError, JoinTimeoutError, PutError, PutTimeoutError, TaskDoneError,
    TryGetError, TryPutError,
};
pub use prioritized::Prioritized;
pub use timer::Timer;

use self::staged::{Fail, Wait};
use order::{Fifo, Lifo, Priority};

/// Declares one public queue type over the shared core: the same methods and
/// documentation for each ordering, with examples that name the type.
macro_rules! thread_queue {
    (
        $(#[$meta:meta])*
        $name:ident, $core:ident, $order:ident, [$($bound:tt)*]
    ) => {
        $(#[$meta])*
        pub struct $name<T $($bound)*> {
            core: Arc<$core::Core<$order<T>>>,
        }

        impl<T $($bound)*> $name<T> {
            /// An unbounded queue (Python's `maxsize=0`).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use mproc::threading::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::new();")]
            /// q.put(1).unwrap();
            /// assert_eq!(q.maxsize(), 0);
            /// assert!(!q.is_full());
            /// ```
            pub fn new() -> Self {
                Self::with_maxsize(0)
            }

            /// A queue that holds at most `maxsize` items: `put` blocks while it is
            /// full. `0` means unbounded, as in Python.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use mproc::threading::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::with_maxsize(2);")]
            /// q.put(1).unwrap();
            /// q.put(2).unwrap();
            /// assert!(q.is_full());
            /// assert!(q.try_put(3).unwrap_err().is_full());
            /// ```
            pub fn with_maxsize(maxsize: usize) -> Self {
                $name {
                    core: Arc::new($core::Core::new(maxsize)),
                }
            }

            /// The most items the queue holds (`0`: unbounded).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use mproc::threading::", stringify!($name), ";")]
            ///
            #[doc = concat!("assert_eq!(", stringify!($name), "::<u8>::with_maxsize(3).maxsize(), 3);")]
            /// ```
            pub fn maxsize(&self) -> usize {
                self.core.maxsize()
            }

            /// Puts `item`, waiting while the queue is full (Python's `put(item)`).
            ///
            /// # Errors
            ///
            /// [`PutError::ShutDown`], with the item, if the queue was shut down
            /// before the call or while it waited.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use mproc::threading::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::new();")]
            /// q.put("job").unwrap();
            /// assert_eq!(q.len(), 1);
            /// ```
            pub fn put(&self, item: T) -> Result<(), PutError<T>> {
                self.core
                    .put(item, Wait::Forever)
                    .map_err(|(t, _)| PutError::ShutDown(t))
            }

            /// Puts `item` if there is room now (Python's `put_nowait(item)`).
            ///
            /// # Errors
            ///
            /// [`TryPutError::Full`] or [`TryPutError::ShutDown`], with the item. A
            /// queue that was shut down reports `ShutDown` even when it is full.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use mproc::threading::{", stringify!($name), ", TryPutError};")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::with_maxsize(1);")]
            /// q.try_put(1).unwrap();
            /// assert_eq!(q.try_put(2), Err(TryPutError::Full(2)));
            /// ```
            #[doc(alias = "put_nowait")]
            pub fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
                self.core.put(item, Wait::Never).map_err(|(t, why)| match why {
                    Fail::NotNow => TryPutError::Full(t),
                    Fail::ShutDown => TryPutError::ShutDown(t),
                })
            }

            /// Puts `item`, waiting at most `timeout` for room (Python's
            /// `put(item, timeout=t)`); `Duration::MAX` waits for ever.
            ///
            /// # Errors
            ///
            /// [`PutTimeoutError::Timeout`] or [`PutTimeoutError::ShutDown`], with
            /// the item.
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("use mproc::threading::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::with_maxsize(1);")]
            /// q.put_timeout(1, Duration::from_secs(1)).unwrap();
            /// let err = q.put_timeout(2, Duration::from_millis(5)).unwrap_err();
            /// assert!(err.is_timeout());
            /// assert_eq!(err.into_inner(), 2);
            /// ```
            pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
                self.put_wait(item, Wait::until(crate::deadline::after(timeout)))
            }

            /// Puts `item`, waiting until `deadline` at the latest for room.
            ///
            /// # Errors
            ///
            /// As [`put_timeout`](Self::put_timeout).
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::{Duration, Instant};
            #[doc = concat!("use mproc::threading::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::with_maxsize(1);")]
            /// q.put(1).unwrap();
            /// let deadline = Instant::now() + Duration::from_millis(5);
            /// assert!(q.put_deadline(2, deadline).unwrap_err().is_timeout());
            /// ```
            pub fn put_deadline(&self, item: T, deadline: Instant) -> Result<(), PutTimeoutError<T>> {
                self.put_wait(item, Wait::Until(deadline))
            }

            fn put_wait(&self, item: T, wait: Wait) -> Result<(), PutTimeoutError<T>> {
                self.core.put(item, wait).map_err(|(t, why)| match why {
                    Fail::NotNow => PutTimeoutError::Timeout(t),
                    Fail::ShutDown => PutTimeoutError::ShutDown(t),
                })
            }

            /// Takes the next item, waiting while the queue is empty (Python's
            /// `get()`).
            ///
            /// # Errors
            ///
            /// [`GetError::ShutDown`] once the queue was shut down and is empty
            /// (also when that happens while this call waits).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use mproc::threading::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::new();")]
            /// let q2 = q.clone();
            /// let t = std::thread::spawn(move || q2.get());
            /// q.put(7).unwrap();
            /// assert_eq!(t.join().unwrap(), Ok(7));
            /// ```
            pub fn get(&self) -> Result<T, GetError> {
                self.core.get(Wait::Forever).map_err(|_| GetError::ShutDown)
            }

            /// Takes the next item if there is one now (Python's `get_nowait()`).
            ///
            /// # Errors
            ///
            /// [`TryGetError::Empty`], or [`TryGetError::ShutDown`] when the queue
            /// was shut down and is empty.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use mproc::threading::{", stringify!($name), ", TryGetError};")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::new();")]
            /// assert_eq!(q.try_get(), Err(TryGetError::Empty));
            /// q.put(1).unwrap();
            /// assert_eq!(q.try_get(), Ok(1));
            /// ```
            #[doc(alias = "get_nowait")]
            pub fn try_get(&self) -> Result<T, TryGetError> {
                self.core.get(Wait::Never).map_err(|why| match why {
                    Fail::NotNow => TryGetError::Empty,
                    Fail::ShutDown => TryGetError::ShutDown,
                })
            }

            /// Takes the next item, waiting at most `timeout` for one (Python's
            /// `get(timeout=t)`); `Duration::MAX` waits for ever.
            ///
            /// # Errors
            ///
            /// [`GetTimeoutError::Timeout`], or [`GetTimeoutError::ShutDown`] when
            /// the queue was shut down and is empty.
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("use mproc::threading::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::<u32>::new();")]
            /// assert!(q.get_timeout(Duration::from_millis(5)).unwrap_err().is_timeout());
            /// q.put(3).unwrap();
            /// assert_eq!(q.get_timeout(Duration::MAX), Ok(3));
            /// ```
            pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
                self.get_wait(Wait::until(crate::deadline::after(timeout)))
            }

            /// Takes the next item, waiting until `deadline` at the latest.
            ///
            /// # Errors
            ///
            /// As [`get_timeout`](Self::get_timeout).
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::{Duration, Instant};
            #[doc = concat!("use mproc::threading::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::<u32>::new();")]
            /// let deadline = Instant::now() + Duration::from_millis(5);
            /// assert!(q.get_deadline(deadline).unwrap_err().is_timeout());
            /// ```
            pub fn get_deadline(&self, deadline: Instant) -> Result<T, GetTimeoutError> {
                self.get_wait(Wait::Until(deadline))
            }

            fn get_wait(&self, wait: Wait) -> Result<T, GetTimeoutError> {
                self.core.get(wait).map_err(|why| match why {
                    Fail::NotNow => GetTimeoutError::Timeout,
                    Fail::ShutDown => GetTimeoutError::ShutDown,
                })
            }

            /// Marks one item taken with `get` as processed (Python's
            /// `task_done()`); when it was the last unfinished one, every
            /// [`join`](Self::join) returns.
            ///
            /// # Errors
            ///
            /// [`TaskDoneError`] when no task is unfinished (called more times than
            /// items were put).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use mproc::threading::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::new();")]
            /// q.put(1).unwrap();
            /// q.get().unwrap();
            /// assert!(q.task_done().is_ok());
            /// assert!(q.task_done().is_err()); // one more than was put
            /// ```
            pub fn task_done(&self) -> Result<(), TaskDoneError> {
                self.core
                    .task_done()
                    .map_err(|()| TaskDoneError { _private: () })
            }

            /// Waits until every item put so far has been marked done with
            /// [`task_done`](Self::task_done) (Python's `join()`). After an
            /// immediate shutdown, the items it removed count as done.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use mproc::threading::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::new();")]
            /// let worker = {
            ///     let q = q.clone();
            ///     std::thread::spawn(move || {
            ///         while let Ok(_job) = q.get() {
            ///             q.task_done().unwrap();
            ///         }
            ///     })
            /// };
            /// for job in 0..10 {
            ///     q.put(job).unwrap();
            /// }
            /// q.join();
            /// assert_eq!(q.unfinished(), 0);
            /// q.shutdown(false);
            /// worker.join().unwrap();
            /// ```
            pub fn join(&self) {
                // Without a deadline the wait only ends when the count reaches zero.
                let _ = self.core.join(Wait::Forever);
            }

            /// Waits at most `timeout` for every item put so far to be marked done.
            ///
            /// # Errors
            ///
            /// [`JoinTimeoutError`], with the number of unfinished tasks, at the
            /// timeout.
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("use mproc::threading::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::new();")]
            /// q.put(1).unwrap();
            /// assert_eq!(q.join_timeout(Duration::from_millis(5)).unwrap_err().unfinished(), 1);
            /// q.get().unwrap();
            /// q.task_done().unwrap();
            /// assert!(q.join_timeout(Duration::from_millis(5)).is_ok());
            /// ```
            pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinTimeoutError> {
                self.core
                    .join(Wait::until(crate::deadline::after(timeout)))
                    .map_err(|unfinished| JoinTimeoutError {
                        unfinished,
                        timeout: Some(timeout),
                    })
            }

            /// Waits until `deadline` at the latest for every item put so far to be
            /// marked done.
            ///
            /// # Errors
            ///
            /// [`JoinTimeoutError`] at the deadline.
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::{Duration, Instant};
            #[doc = concat!("use mproc::threading::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::<u8>::new();")]
            /// assert!(q.join_deadline(Instant::now() + Duration::from_millis(5)).is_ok());
            /// ```
            pub fn join_deadline(&self, deadline: Instant) -> Result<(), JoinTimeoutError> {
                self.core
                    .join(Wait::Until(deadline))
                    .map_err(|unfinished| JoinTimeoutError {
                        unfinished,
                        timeout: None,
                    })
            }

            /// How many items were put and not yet marked done (Python's
            /// `unfinished_tasks`).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use mproc::threading::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::new();")]
            /// q.put(1).unwrap();
            /// q.get().unwrap();
            /// assert_eq!(q.unfinished(), 1); // taken, not yet done
            /// ```
            #[doc(alias = "unfinished_tasks")]
            pub fn unfinished(&self) -> usize {
                self.core.unfinished()
            }

            /// How many items wait in the queue now (Python's `qsize()`); other
            /// threads may change it at any moment.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use mproc::threading::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::new();")]
            /// q.put(1).unwrap();
            /// q.put(2).unwrap();
            /// assert_eq!(q.len(), 2);
            /// ```
            #[doc(alias = "qsize")]
            pub fn len(&self) -> usize {
                self.core.len()
            }

            /// Whether no item waits now (Python's `empty()`).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use mproc::threading::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::<u8>::new();")]
            /// assert!(q.is_empty());
            /// ```
            #[doc(alias = "empty")]
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Whether the queue holds `maxsize` items now (Python's `full()`);
            /// never for an unbounded queue.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use mproc::threading::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::with_maxsize(1);")]
            /// q.put(1).unwrap();
            /// assert!(q.is_full());
            /// ```
            #[doc(alias = "full")]
            pub fn is_full(&self) -> bool {
                self.core.is_full()
            }

            /// Shuts the queue down (Python 3.13's `shutdown(immediate)`), waking
            /// every thread blocked on it.
            ///
            /// From now on every put fails with `ShutDown`. With
            /// `immediate == false`, gets go on returning the items already queued
            /// and fail with `ShutDown` once it is empty. With `immediate == true`,
            /// the queued items are removed at once (and returned, in the order gets
            /// would have returned them), each counting as a finished task so that
            /// [`join`](Self::join) returns once the items already taken are marked
            /// done; gets fail at once. Shutting down again is allowed (an immediate
            /// shutdown after a plain one empties the queue).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use mproc::threading::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::new();")]
            /// q.put(1).unwrap();
            /// q.put(2).unwrap();
            /// assert!(q.shutdown(false).is_empty()); // nothing removed
            /// assert!(q.put(3).unwrap_err().is_shutdown());
            /// assert!(q.get().is_ok()); // still drains
            /// assert_eq!(q.shutdown(true).len(), 1); // the other item, removed
            /// assert!(q.get().unwrap_err().is_shutdown());
            /// q.task_done().unwrap(); // the one taken
            /// q.join(); // the removed one counts as done
            /// ```
            pub fn shutdown(&self, immediate: bool) -> Vec<T> {
                self.core.shutdown(immediate)
            }

            /// Whether [`shutdown`](Self::shutdown) was called (Python's
            /// `is_shutdown`).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use mproc::threading::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::<u8>::new();")]
            /// assert!(!q.is_shutdown());
            /// q.shutdown(false);
            /// assert!(q.is_shutdown());
            /// ```
            pub fn is_shutdown(&self) -> bool {
                self.core.is_shutdown()
            }
        }

        impl<T $($bound)*> Clone for $name<T> {
            /// Another handle to the same queue.
            fn clone(&self) -> Self {
                $name {
                    core: Arc::clone(&self.core),
                }
            }
        }

        impl<T $($bound)*> Default for $name<T> {
            /// An unbounded queue.
            fn default() -> Self {
                Self::new()
            }
        }

        impl<T $($bound)*> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("len", &self.len())
                    .field("maxsize", &self.maxsize())
                    .field("unfinished", &self.unfinished())
                    .field("shutdown", &self.is_shutdown())
                    .finish()
            }
        }
    };
}

thread_queue! {
    /// A first-in, first-out queue between threads: Python's `queue.Queue`.
    ///
    /// See the [module documentation](self) for the semantics it shares with
    /// [`LifoQueue`] and [`PriorityQueue`].
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::threading::Queue;
    ///
    /// let q = Queue::new();
    /// for x in [111, 333, 222] {
    ///     q.put(x).unwrap();
    /// }
    /// let got: Vec<_> = std::iter::from_fn(|| q.try_get().ok()).collect();
    /// assert_eq!(got, [111, 333, 222]);
    /// ```
    Queue, locked, Fifo, []
}

thread_queue! {
    /// A last-in, first-out queue (a stack) between threads: Python's
    /// `queue.LifoQueue`.
    ///
    /// See the [module documentation](self) for the semantics it shares with
    /// [`Queue`] and [`PriorityQueue`].
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::threading::LifoQueue;
    ///
    /// let q = LifoQueue::new();
    /// for x in [111, 333, 222] {
    ///     q.put(x).unwrap();
    /// }
    /// let got: Vec<_> = std::iter::from_fn(|| q.try_get().ok()).collect();
    /// assert_eq!(got, [222, 333, 111]);
    /// ```
    LifoQueue, locked, Lifo, []
}

thread_queue! {
    /// A queue that hands out its smallest item first: Python's
    /// `queue.PriorityQueue`.
    ///
    /// Items are ordered by their `Ord`, smallest first like Python's `heapq`;
    /// items that compare equal come out in the order they were put (Python users
    /// add a sequence number for that). To order by a priority alone, put
    /// [`Prioritized`] items; for largest first, `std::cmp::Reverse(item)`. See the
    /// [module documentation](self) for the semantics it shares with [`Queue`] and
    /// [`LifoQueue`].
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::threading::PriorityQueue;
    ///
    /// let q = PriorityQueue::new();
    /// q.put((2, "write report")).unwrap();
    /// q.put((1, "fix outage")).unwrap();
    /// q.put((2, "answer mail")).unwrap();
    /// assert_eq!(q.get().unwrap(), (1, "fix outage"));
    /// assert_eq!(q.get().unwrap(), (2, "answer mail")); // a tuple compares its item too
    /// assert_eq!(q.get().unwrap(), (2, "write report"));
    /// ```
    PriorityQueue, staged, Priority, [: Ord]
}

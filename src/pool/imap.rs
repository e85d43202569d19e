//! The lazy verbs' iterators, [`IMap`] and [`IMapUnordered`]: one reader
//! ([`Lazy`]) over a [`Feeder`] that reads the input as results are consumed and a
//! [`MapSink`] that collects them in input or arrival order.

use std::fmt;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::codec::Message;
use crate::pool::sink::MapSink;
use crate::pool::state::PoolState;
use crate::task::call::{CallInfo, Chunk, Job, Sink, decode};
use crate::task::{Kind, TaskError, panic_message};

/// Feeds a lazily-consumed input into the pool, keeping at most `window` tasks
/// submitted but not yet consumed.
pub(crate) struct Feeder<'a> {
    pub(crate) input: Box<dyn Iterator<Item = Result<Message, String>> + 'a>,
    pub(crate) call: Arc<CallInfo>,
    pub(crate) shared: Arc<PoolState>,
    pub(crate) chunksize: usize,
    pub(crate) window: usize,
    pub(crate) submitted: usize,
    pub(crate) exhausted: bool,
}

impl Feeder<'_> {
    /// Submits more tasks while fewer than `window` are outstanding beyond `consumed`.
    fn top_up(&mut self, consumed: usize, sink: &MapSink) {
        let mut chunks: Vec<Chunk> = Vec::new();
        while !self.exhausted && self.submitted - consumed < self.window {
            let mut chunk = Vec::with_capacity(self.chunksize);
            while chunk.len() < self.chunksize {
                // A panic in the caller's input ends the input, not the results
                // already on their way (Python yields those, then raises).
                let next = std::panic::catch_unwind(AssertUnwindSafe(|| self.input.next()));
                match next {
                    Ok(Some(Ok(args))) => {
                        chunk.push(Job {
                            call: Arc::clone(&self.call),
                            index: self.submitted,
                            args,
                            attempts: 0,
                            span: 1,
                            chunk: false,
                        });
                        self.submitted += 1;
                    }
                    Ok(Some(Err(reason))) => {
                        let i = self.submitted;
                        self.submitted += 1;
                        let why = format!("cannot send the task's argument to a worker: {reason}");
                        sink.deliver(i, Err(TaskError::failed(why, Some(i))));
                    }
                    Ok(None) => {
                        self.exhausted = true;
                        sink.set_total(self.submitted);
                        break;
                    }
                    Err(payload) => {
                        let i = self.submitted;
                        self.submitted += 1;
                        self.exhausted = true;
                        let why = format!(
                            "the input iterator panicked instead of giving item {i}: {}",
                            panic_message(payload.as_ref())
                        );
                        sink.deliver(i, Err(TaskError::failed(why, Some(i))));
                        sink.set_total(self.submitted);
                        break;
                    }
                }
            }
            if !chunk.is_empty() {
                chunks.push(chunk);
            }
        }
        if chunks.is_empty() {
            return;
        }
        if let Err(chunks) = self.shared.push(chunks) {
            // The pool is closed: nothing more will run, so stop reading the input.
            self.exhausted = true;
            sink.set_total(self.submitted);
            for item in chunks.into_iter().flatten() {
                sink.deliver(
                    item.index,
                    Err(TaskError::cancelled("the pool is closed", Some(item.index))),
                );
            }
        }
    }
}

/// What [`IMap`] and [`IMapUnordered`] share: the input's feeder and the
/// collector, read in the collector's order.
pub(crate) struct Lazy<'a> {
    sink: Arc<MapSink>,
    feeder: Feeder<'a>,
    /// Results handed out so far.
    consumed: usize,
}

impl<'a> Lazy<'a> {
    pub(crate) fn new(sink: Arc<MapSink>, feeder: Feeder<'a>) -> Lazy<'a> {
        Lazy {
            sink,
            feeder,
            consumed: 0,
        }
    }

    /// The next result, waiting until `deadline` at most (forever for `None`);
    /// after the deadline, a wait-timeout error naming `span`. `None` at the end.
    fn next_until<R: DeserializeOwned>(
        &mut self,
        deadline: Option<Instant>,
        span: Duration,
    ) -> Option<Result<R, TaskError>> {
        self.feeder.top_up(self.consumed, &self.sink);
        let mut s = self.sink.lock();
        loop {
            if let Some(r) = self.sink.take_next(&mut s) {
                s.waiting = false;
                drop(s);
                let i = self.consumed;
                self.consumed += 1;
                return Some(r.and_then(|m| decode(i, m)));
            }
            if self.feeder.exhausted && self.consumed >= self.feeder.submitted {
                return None;
            }
            match self.sink.wait(s, deadline) {
                Some(guard) => s = guard,
                None => {
                    return Some(Err(TaskError::new(
                        Kind::WaitTimeout(span),
                        Some(self.consumed),
                        None,
                    )));
                }
            }
        }
    }

    /// The next result, awaited: taken only when the future completes.
    async fn next_async<R: DeserializeOwned>(&mut self) -> Option<Result<R, TaskError>> {
        self.feeder.top_up(self.consumed, &self.sink);
        std::future::poll_fn(|cx| {
            let mut s = self.sink.lock();
            if let Some(r) = self.sink.take_next(&mut s) {
                drop(s);
                let i = self.consumed;
                self.consumed += 1;
                return Poll::Ready(Some(r.and_then(|m| decode(i, m))));
            }
            if self.feeder.exhausted && self.consumed >= self.feeder.submitted {
                return Poll::Ready(None);
            }
            self.sink.register_waker(&mut s, cx.waker());
            Poll::Pending
        })
        .await
    }

    /// The next result, waiting at most `timeout`.
    fn next_timeout<R: DeserializeOwned>(
        &mut self,
        timeout: Duration,
    ) -> Option<Result<R, TaskError>> {
        self.next_until(crate::deadline::after(timeout), timeout)
    }
}

impl Drop for Lazy<'_> {
    fn drop(&mut self) {
        // Nobody will read the rest: do not run it.
        self.sink.cancel();
    }
}

/// The ordered iterator of [`Pool::imap`](crate::pool::Pool::imap): results in
/// input order, as soon as each is ready.
pub struct IMap<'a, R> {
    pub(crate) lazy: Lazy<'a>,
    pub(crate) _r: PhantomData<fn() -> R>,
}

/// The iterator of [`Pool::imap_unordered`](crate::pool::Pool::imap_unordered):
/// results in the order they finish. Each error carries its
/// [`task_index`](TaskError::task_index).
pub struct IMapUnordered<'a, R> {
    pub(crate) lazy: Lazy<'a>,
    pub(crate) _r: PhantomData<fn() -> R>,
}

impl<R> IMap<'_, R> {
    /// Submits as much of the input as the window allows, before any `next`.
    pub(crate) fn submit_all(&mut self) {
        self.lazy.feeder.top_up(self.lazy.consumed, &self.lazy.sink);
    }

    /// Cancels the calls not yet run; `next` still yields what is in.
    pub(crate) fn cancel(&self) {
        self.lazy.sink.cancel();
    }
}

impl<R: DeserializeOwned> IMap<'_, R> {
    /// The next result, waiting at most `timeout` (Python's `next(timeout)`);
    /// `Some(Err(e))` with `e.is_timeout()` when it is not ready by then (the
    /// iterator stays usable and the task keeps running).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = mproc::pool::Pool::new(1)?;
    /// let mut it = pool.imap(|x: u8| x + 1, vec![1u8]);
    /// assert_eq!(it.next_timeout(Duration::from_secs(30)).unwrap()?, 2);
    /// assert!(it.next_timeout(Duration::from_secs(30)).is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<R, TaskError>> {
        self.lazy.next_timeout(timeout)
    }

    /// The next result in input order, awaited without blocking a thread (the async form of
    /// [`Iterator::next`]), in any runtime; `None` after the last.
    ///
    /// For a `Stream`, wrap it: `futures::stream::unfold(it, |mut it| async move {
    /// it.next_async().await.map(|r| (r, it)) })`. (The iterator holds the input
    /// iterator, so the future is `Send` only when that is.)
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: a result is taken only when the future completes, so dropping a
    /// pending `next_async` loses nothing; the next call returns that result.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     use std::task::{Context, Poll, Wake, Waker};
    /// #     struct T(std::thread::Thread);
    /// #     impl Wake for T { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
    /// #     let waker = Waker::from(std::sync::Arc::new(T(std::thread::current())));
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) { return v; }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// let pool = mproc::pool::Pool::new(2)?;
    /// let mut it = pool.imap(|x: u32| x + 1, 0..4);
    /// let got = block_on(async {
    ///     let mut got = Vec::new();
    ///     while let Some(r) = it.next_async().await {
    ///         got.push(r?);
    ///     }
    ///     Ok::<_, mproc::pool::TaskError>(got)
    /// })?;
    /// assert_eq!(got, [1, 2, 3, 4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn next_async(&mut self) -> Option<Result<R, TaskError>> {
        self.lazy.next_async().await
    }
}

impl<R: DeserializeOwned> IMapUnordered<'_, R> {
    /// As [`IMap::next_timeout`], in the order results finish.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = mproc::pool::Pool::new(1)?;
    /// let mut it = pool.imap_unordered(|x: u8| x + 1, vec![1u8]);
    /// assert_eq!(it.next_timeout(Duration::from_secs(30)).unwrap()?, 2);
    /// assert!(it.next_timeout(Duration::from_secs(30)).is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<R, TaskError>> {
        self.lazy.next_timeout(timeout)
    }

    /// The next result to finish, awaited without blocking a thread (the async form of
    /// [`Iterator::next`]), in any runtime; `None` after the last.
    ///
    /// For a `Stream`, wrap it: `futures::stream::unfold(it, |mut it| async move {
    /// it.next_async().await.map(|r| (r, it)) })`. (The iterator holds the input
    /// iterator, so the future is `Send` only when that is.)
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: a result is taken only when the future completes, so dropping a
    /// pending `next_async` loses nothing; the next call returns that result.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     use std::task::{Context, Poll, Wake, Waker};
    /// #     struct T(std::thread::Thread);
    /// #     impl Wake for T { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
    /// #     let waker = Waker::from(std::sync::Arc::new(T(std::thread::current())));
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) { return v; }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// let pool = mproc::pool::Pool::new(2)?;
    /// let mut it = pool.imap_unordered(|x: u32| x * 10, 0..4);
    /// let mut got = block_on(async {
    ///     let mut got = Vec::new();
    ///     while let Some(r) = it.next_async().await {
    ///         got.push(r?);
    ///     }
    ///     Ok::<_, mproc::pool::TaskError>(got)
    /// })?;
    /// got.sort();
    /// assert_eq!(got, [0, 10, 20, 30]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn next_async(&mut self) -> Option<Result<R, TaskError>> {
        self.lazy.next_async().await
    }
}

impl<R: DeserializeOwned> Iterator for IMap<'_, R> {
    type Item = Result<R, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.lazy.next_until(None, Duration::ZERO)
    }
}

impl<R: DeserializeOwned> Iterator for IMapUnordered<'_, R> {
    type Item = Result<R, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.lazy.next_until(None, Duration::ZERO)
    }
}

impl<R> fmt::Debug for IMap<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IMap")
            .field("next", &self.lazy.consumed)
            .finish()
    }
}

impl<R> fmt::Debug for IMapUnordered<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IMapUnordered")
            .field("consumed", &self.lazy.consumed)
            .finish()
    }
}

//! What the eager verbs hand back: [`AsyncResult`] and [`MapResult`].

use std::fmt;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::codec::{self, Message};
use crate::pool::sink::MapSink;
use crate::task::call::decode;
use crate::task::{Future, Kind, ResultTimeoutError, TaskError};

/// The result of [`Pool::apply_async`](crate::pool::Pool::apply_async): Python's
/// `AsyncResult`. Also a [`Future`] (see [`into_future`](AsyncResult::into_future)).
pub struct AsyncResult<R> {
    pub(crate) fut: Future<R>,
}

impl<R> fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AsyncResult").field(&self.fut).finish()
    }
}

impl<R> AsyncResult<R> {
    /// Waits for the result.
    ///
    /// # Errors
    ///
    /// The task's [`TaskError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = mproc::pool::Pool::new(1)?;
    /// let r = pool.apply_async(|x: u64| x + 1, 1);
    /// assert_eq!(r.get()?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(self) -> Result<R, TaskError> {
        self.fut.result()
    }

    /// Waits at most `timeout`; on timeout the handle comes back in `Err(Ok(self))`.
    ///
    /// # Errors
    ///
    /// `Err(Ok(handle))` when not ready in time, `Err(Err(e))` when the task failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = mproc::pool::Pool::new(1)?;
    /// let r = pool.apply_async(|x: u64| x + 1, 1);
    /// assert_eq!(r.get_timeout(Duration::from_secs(30)).unwrap(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_timeout(self, timeout: Duration) -> Result<R, Result<AsyncResult<R>, TaskError>> {
        match self.fut.result_timeout(timeout) {
            Ok(v) => Ok(v),
            Err(ResultTimeoutError::Timeout(fut)) => Err(Ok(AsyncResult { fut })),
            Err(ResultTimeoutError::Failed(e)) => Err(Err(e)),
        }
    }

    /// Blocks until the task is finished.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = mproc::pool::Pool::new(1)?;
    /// let r = pool.apply_async(|x: u64| x + 1, 1);
    /// r.wait();
    /// assert!(r.ready());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait(&self) {
        self.fut.wait()
    }

    /// Blocks until the task is finished or `timeout` passes; `true` when finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = mproc::pool::Pool::new(1)?;
    /// let r = pool.apply_async(|x: u64| x + 1, 1);
    /// assert!(r.wait_timeout(Duration::from_secs(30)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.fut.wait_timeout(timeout)
    }

    /// Whether the task is finished.
    ///
    /// # Examples
    ///
    /// See [`wait`](AsyncResult::wait).
    pub fn ready(&self) -> bool {
        self.fut.done()
    }

    /// Whether the task finished without error. `None` while it runs (Python
    /// raises there).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = mproc::pool::Pool::new(1)?;
    /// let r = pool.apply_async(|x: u64| x + 1, 1);
    /// r.wait();
    /// assert_eq!(r.successful(), Some(true));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn successful(&self) -> Option<bool> {
        if !self.fut.done() {
            return None;
        }
        Some(self.fut.error().is_none())
    }

    /// The [`Future`] behind this result (awaitable, with done-callbacks).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = mproc::pool::Pool::new(1)?;
    /// let fut = pool.apply_async(|x: u64| x * 3, 3).into_future();
    /// assert_eq!(fut.result()?, 9);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_future(self) -> Future<R> {
        self.fut
    }
}

/// `.await` on an [`AsyncResult`] waits for the task without blocking a thread, in
/// any runtime (the dispatcher thread wakes the awaiting task).
///
/// # Cancel safety
///
/// Dropping the awaiting future drops the result; the task itself still runs.
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
/// let pool = mproc::pool::Pool::new(1)?;
/// let r = pool.apply_async(|x: u64| x * 7, 6);
/// assert_eq!(block_on(async { r.await })?, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl<R> std::future::IntoFuture for AsyncResult<R> {
    type Output = Result<R, TaskError>;
    type IntoFuture = Future<R>;

    fn into_future(self) -> Future<R> {
        self.fut
    }
}

/// Appends a chunk's results sent as plain bytes to the output, if `R` travels so.
pub(crate) type PlainDecoder<R> = fn(&[u8], &mut Vec<R>) -> Option<Result<(), String>>;

/// The [`PlainDecoder`] of a call without chunks.
pub(crate) fn no_plain<R>(_: &[u8], _: &mut Vec<R>) -> Option<Result<(), String>> {
    None
}

/// The result of [`Pool::map_async`](crate::pool::Pool::map_async): all the results
/// in order, once they are all in.
pub struct MapResult<R> {
    pub(crate) sink: Arc<MapSink>,
    pub(crate) early: Option<TaskError>,
    /// Decodes a chunk's results sent as plain bytes (`pool::plain::decode_into`
    /// for `R`; [`no_plain`] where chunks are not used).
    pub(crate) plain: PlainDecoder<R>,
    /// With callbacks: the outcome, decoded by the thread that completed the map.
    pub(crate) called: Option<Arc<dyn Called<R>>>,
    pub(crate) _r: PhantomData<fn() -> R>,
}

/// Where the ready-hook of [`MapResult::with_callbacks`] leaves the outcome.
/// (A trait object, so that `MapResult<R>` stays `Send + Sync` for every `R`; it
/// is made only where `R: Send`.)
pub(crate) trait Called<R>: Send + Sync {
    /// Whether the outcome is in.
    fn is_in(&self) -> bool;
    /// Stores the outcome.
    fn put(&self, outcome: Result<Vec<R>, TaskError>);
    /// Takes the outcome.
    fn take(&self) -> Option<Result<Vec<R>, TaskError>>;
}

impl<R: Send> Called<R> for Mutex<Option<Result<Vec<R>, TaskError>>> {
    fn is_in(&self) -> bool {
        lock(self).is_some()
    }
    fn put(&self, outcome: Result<Vec<R>, TaskError>) {
        *lock(self) = Some(outcome);
    }
    fn take(&self) -> Option<Result<Vec<R>, TaskError>> {
        lock(self).take()
    }
}

/// A [`MapResult`] is a future: `.await` gives what [`get`](MapResult::get) gives,
/// without blocking a thread, in any runtime.
///
/// # Cancel safety
///
/// Dropping a pending `MapResult` cancels the call's remaining tasks, as dropping it
/// unawaited does.
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
/// let r = pool.map_async(|x: u32| x * x, 0..5);
/// assert_eq!(block_on(r)?, [0, 1, 4, 9, 16]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl<R: DeserializeOwned> std::future::Future for MapResult<R> {
    type Output = Result<Vec<R>, TaskError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(e) = this.early.take() {
            return std::task::Poll::Ready(Err(e));
        }
        {
            let mut s = this.sink.lock();
            // As `wait_until`: with callbacks, ready once they have run.
            let called = this.called.as_ref().is_none_or(|c| c.is_in());
            if !(this.sink.is_ready(&s) && called) {
                // Under the lock the deliverers take: an outcome that lands after
                // the check above finds this waker.
                this.sink.register_waker(&mut s, cx.waker());
                return std::task::Poll::Pending;
            }
        }
        std::task::Poll::Ready(match this.called.take() {
            Some(called) => called
                .take()
                .unwrap_or_else(|| Err(TaskError::failed("the results were taken", None))),
            None => Self::collect(&this.sink, this.plain),
        })
    }
}

impl<R> fmt::Debug for MapResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapResult").finish_non_exhaustive()
    }
}

impl<R: DeserializeOwned> MapResult<R> {
    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        if self.early.is_some() {
            return true;
        }
        let mut s = self.sink.lock();
        loop {
            // With callbacks, ready once they have run and left the outcome.
            let called = self.called.as_ref().is_none_or(|c| c.is_in());
            if self.sink.is_ready(&s) && called {
                s.waiting = false;
                return true;
            }
            match self.sink.wait(s, deadline) {
                Some(guard) => s = guard,
                None => return false,
            }
        }
    }

    /// Whether every result (or an error) is in.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = mproc::pool::Pool::new(2)?;
    /// let r = pool.map_async(|x: u32| x + 1, 0..10);
    /// r.wait();
    /// assert!(r.ready());
    /// assert_eq!(r.get()?, (1..11).collect::<Vec<_>>());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ready(&self) -> bool {
        let s = self.sink.lock();
        self.early.is_some() || self.sink.is_ready(&s)
    }

    /// Blocks until [`ready`](MapResult::ready).
    ///
    /// # Examples
    ///
    /// See [`ready`](MapResult::ready).
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Blocks until ready or `timeout` passes; `true` when ready.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = mproc::pool::Pool::new(2)?;
    /// let r = pool.map_async(|x: u32| x * 2, vec![1, 2]);
    /// assert!(r.wait_timeout(Duration::from_secs(30)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(crate::deadline::after(timeout))
    }

    /// Waits and returns every result in input order, or the first error (by
    /// task index) — the remaining tasks of the call are then cancelled.
    ///
    /// # Errors
    ///
    /// The failed task's [`TaskError`].
    ///
    /// # Examples
    ///
    /// See [`ready`](MapResult::ready).
    pub fn get(mut self) -> Result<Vec<R>, TaskError> {
        if let Some(e) = self.early.take() {
            return Err(e);
        }
        self.wait_until(None);
        match self.called.take() {
            Some(called) => called
                .take()
                .unwrap_or_else(|| Err(TaskError::failed("the results were taken", None))),
            None => Self::collect(&self.sink, self.plain),
        }
    }

    /// Python's `callback` and `error_callback` for this map: once every result
    /// is in, `callback` gets them all, in order; at the first failure,
    /// `error_callback` gets its error. One of them runs, once, on the pool's
    /// dispatcher thread (on this thread, if the map is done already). With
    /// callbacks, the calls run to the end even if this handle is dropped; `get`
    /// returns what the callback saw.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// let pool = mproc::pool::Pool::new(2)?;
    /// let (tx, rx) = mpsc::channel();
    /// let r = pool.options().chunksize(2).map_async(|x: u32| x * x, 1..=4).with_callbacks(
    ///     move |squares: &[u32]| tx.send(squares.iter().sum::<u32>()).unwrap(),
    ///     |e| eprintln!("failed: {e}"),
    /// );
    /// assert_eq!(rx.recv()?, 30);
    /// assert_eq!(r.get()?, [1, 4, 9, 16]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_callbacks(
        mut self,
        callback: impl FnOnce(&[R]) + Send + 'static,
        error_callback: impl FnOnce(&TaskError) + Send + 'static,
    ) -> Self
    where
        R: Send + 'static,
    {
        if let Some(e) = &self.early {
            error_callback(e);
            return self;
        }
        let called = Arc::new(Mutex::new(None));
        self.called = Some(Arc::clone(&called) as Arc<dyn Called<R>>);
        let sink = Arc::downgrade(&self.sink);
        let plain = self.plain;
        self.sink.on_ready(Box::new(move || {
            let Some(sink) = sink.upgrade() else { return };
            let outcome = Self::collect(&sink, plain);
            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| match &outcome {
                Ok(values) => callback(values),
                Err(e) => error_callback(e),
            }));
            called.put(outcome);
            sink.notify();
        }));
        self
    }

    fn collect(sink: &MapSink, plain: PlainDecoder<R>) -> Result<Vec<R>, TaskError> {
        let spans = std::mem::take(&mut sink.lock().spans);
        if !spans.is_empty() {
            return Self::collect_spans(sink, plain, spans);
        }
        let slots = {
            let mut s = sink.lock();
            if s.failed {
                sink.cancel();
                let err = s
                    .slots
                    .iter()
                    .flatten()
                    .find_map(|r| r.as_ref().err().cloned());
                return Err(err.unwrap_or_else(|| TaskError::failed("a task failed", None)));
            }
            std::mem::take(&mut s.slots)
        };
        let mut out = Vec::with_capacity(slots.len());
        for (i, r) in slots.into_iter().enumerate() {
            match r {
                Some(Ok(m)) => out.push(decode(i, m)?),
                Some(Err(e)) => return Err(e),
                None => return Err(TaskError::failed("a result is missing", Some(i))),
            }
        }
        Ok(out)
    }
}

impl<R: DeserializeOwned> MapResult<R> {
    /// Results that came back in chunks (plus any single ones).
    fn collect_spans(
        sink: &MapSink,
        plain: PlainDecoder<R>,
        mut spans: Vec<(usize, usize, (usize, u32), Message)>,
    ) -> Result<Vec<R>, TaskError> {
        let (failed, slots) = {
            let mut s = sink.lock();
            (s.failed, std::mem::take(&mut s.slots))
        };
        // With chunks, every task of the call is in one; `slots` holds only errors.
        if failed {
            sink.cancel();
            let err = slots
                .iter()
                .flatten()
                .find_map(|r| r.as_ref().err().cloned());
            return Err(err.unwrap_or_else(|| TaskError::failed("a task failed", None)));
        }
        spans.sort_unstable_by_key(|s| s.0);
        let total = sink.total().unwrap_or(0);
        let mut out: Vec<R> = Vec::with_capacity(total);
        for (first, span, who, m) in spans {
            if out.len() != first {
                return Err(TaskError::failed("results are missing", Some(out.len())));
            }
            // Plain numbers come back as their bytes (see `pool::plain`).
            if m.bytes.first() == Some(&crate::pool::plain::OK) {
                match (plain)(&m.bytes[1..], &mut out) {
                    Some(Ok(())) if out.len() == first + span => continue,
                    Some(Ok(())) => {
                        return Err(TaskError::failed(
                            format!(
                                "a chunk of {span} tasks returned {} results",
                                out.len() - first
                            ),
                            Some(first),
                        ));
                    }
                    Some(Err(e)) => {
                        return Err(TaskError::failed(
                            format!("cannot decode the results in the parent: {e}"),
                            Some(first),
                        ));
                    }
                    None => {}
                }
            }
            let chunk: crate::pool::worker::ChunkResult<R> = codec::decode(m).map_err(|e| {
                TaskError::failed(
                    format!("cannot decode the results in the parent: {e}"),
                    Some(first),
                )
            })?;
            match chunk {
                Ok(values) if values.len() == span => out.extend(values),
                Ok(values) => {
                    return Err(TaskError::failed(
                        format!("a chunk of {span} tasks returned {} results", values.len()),
                        Some(first),
                    ));
                }
                Err((pos, p)) => {
                    return Err(TaskError::new(
                        Kind::Panicked {
                            message: p.message,
                            location: p.location,
                            backtrace: p.backtrace,
                        },
                        Some(first + pos as usize),
                        Some(who),
                    ));
                }
            }
        }
        if out.len() != total {
            return Err(TaskError::failed("results are missing", Some(out.len())));
        }
        Ok(out)
    }
}

impl<R> Drop for MapResult<R> {
    fn drop(&mut self) {
        // Nobody will read the rest: do not run it (unless callbacks wait for it).
        if self.called.is_none() {
            self.sink.cancel();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

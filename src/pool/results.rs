//! What the verbs hand back: [`AsyncResult`], [`MapResult`], [`IMap`] and
//! [`IMapUnordered`], and the collectors (sinks) that fill them on the dispatcher thread.

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::codec::{self, Message};
use crate::pool::progress::Progress;
use crate::pool::state::PoolState;
use crate::task::call::{CallInfo, Chunk, Job, Outcomes, Sink, decode};
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

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    All,
    Ordered,
    Unordered,
}

struct MapState {
    /// Ordered results from `base` on.
    slots: VecDeque<Option<Result<Message, TaskError>>>,
    base: usize,
    /// Unordered results in arrival order.
    arrived: VecDeque<Result<Message, TaskError>>,
    /// Chunk results (`Mode::All` only): first index, span, worker, encoded
    /// `ChunkResult`.
    spans: Vec<(usize, usize, (usize, u32), Message)>,
    received: usize,
    failed: bool,
    waiting: bool,
    /// The task awaiting this call (an awaited [`MapResult`], or the
    /// `next_async` of an iterator), woken where a blocked thread is notified.
    waker: Option<Waker>,
}

/// The collector behind map, imap and imap_unordered.
pub(crate) struct MapSink {
    state: Mutex<MapState>,
    cond: Condvar,
    mode: Mode,
    /// Stop running the call's remaining tasks (first error in `map`, a dropped
    /// iterator, a timeout).
    cancelled: AtomicBool,
    /// The number of tasks in the call (`usize::MAX` while unknown).
    total: AtomicUsize,
    progress: Option<Progress>,
}

impl MapSink {
    pub(crate) fn new(
        mode: Mode,
        total: Option<usize>,
        progress: Option<Progress>,
    ) -> Arc<MapSink> {
        Arc::new(MapSink {
            state: Mutex::new(MapState {
                slots: VecDeque::new(),
                base: 0,
                arrived: VecDeque::new(),
                spans: Vec::new(),
                received: 0,
                failed: false,
                waiting: false,
                waker: None,
            }),
            cond: Condvar::new(),
            mode,
            cancelled: AtomicBool::new(false),
            total: AtomicUsize::new(total.unwrap_or(usize::MAX)),
            progress,
        })
    }

    fn lock(&self) -> MutexGuard<'_, MapState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn total(&self) -> Option<usize> {
        match self.total.load(Ordering::Acquire) {
            usize::MAX => None,
            n => Some(n),
        }
    }

    pub(crate) fn set_total(&self, n: usize) {
        self.total.store(n, Ordering::Release);
        // Under the lock, so that an async waiter that read the old total before
        // it stored its waker is found here.
        let waker = self.lock().waker.take();
        self.cond.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }

    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

impl Sink for MapSink {
    fn deliver(&self, index: usize, outcome: Result<Message, TaskError>) {
        if let Some(p) = &self.progress {
            p.inc();
        }
        let is_err = outcome.is_err();
        let mut s = self.lock();
        s.received += 1;
        s.failed |= is_err;
        let notify = match self.mode {
            Mode::Unordered => {
                s.arrived.push_back(outcome);
                true
            }
            Mode::All | Mode::Ordered => {
                if index >= s.base {
                    let pos = index - s.base;
                    if s.slots.len() <= pos {
                        s.slots.resize_with(pos + 1, || None);
                    }
                    s.slots[pos] = Some(outcome);
                }
                match self.mode {
                    Mode::All => is_err || Some(s.received) == self.total(),
                    _ => index == s.base,
                }
            }
        };
        let wake = notify && s.waiting;
        let waker = if notify { s.waker.take() } else { None };
        drop(s);
        if wake {
            self.cond.notify_all();
        }
        if let Some(w) = waker {
            w.wake();
        }
        if let (Some(p), Some(t)) = (&self.progress, self.total()) {
            if p.position() as usize >= t {
                p.finish();
            }
        }
    }

    fn is_cancelled(&self, _index: usize) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    fn deliver_many(&self, outcomes: Outcomes) {
        if self.mode != Mode::All || self.progress.is_some() {
            for (index, outcome) in outcomes {
                self.deliver(index, outcome);
            }
            return;
        }
        let mut s = self.lock();
        for (index, outcome) in outcomes {
            s.received += 1;
            s.failed |= outcome.is_err();
            if index >= s.base {
                let pos = index - s.base;
                if s.slots.len() <= pos {
                    s.slots.resize_with(pos + 1, || None);
                }
                s.slots[pos] = Some(outcome);
            }
        }
        let done = s.failed || Some(s.received) == self.total();
        let wake = s.waiting && done;
        let waker = if done { s.waker.take() } else { None };
        drop(s);
        if wake {
            self.cond.notify_all();
        }
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn deliver_span(
        &self,
        index: usize,
        span: usize,
        who: (usize, u32),
        outcome: Result<Message, TaskError>,
    ) {
        let m = match outcome {
            Ok(m) => m,
            Err(e) => return self.deliver(index, Err(e)),
        };
        if let Some(p) = &self.progress {
            for _ in 0..span {
                p.inc();
            }
        }
        let mut s = self.lock();
        s.received += span;
        s.spans.push((index, span, who, m));
        let done = Some(s.received) == self.total();
        let wake = s.waiting && done;
        let waker = if done { s.waker.take() } else { None };
        drop(s);
        if wake {
            self.cond.notify_all();
        }
        if let Some(w) = waker {
            w.wake();
        }
        if let (Some(p), Some(t)) = (&self.progress, self.total()) {
            if p.position() as usize >= t {
                p.finish();
            }
        }
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
    pub(crate) _r: PhantomData<fn() -> R>,
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
            if s.failed || Some(s.received) == self.sink.total() {
                s.waiting = false;
                return true;
            }
            s.waiting = true;
            match deadline {
                None => s = self.sink.cond.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        s.waiting = false;
                        return false;
                    }
                    s = self
                        .sink
                        .cond
                        .wait_timeout(s, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
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
        self.early.is_some() || s.failed || Some(s.received) == self.sink.total()
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
        self.collect()
    }

    fn collect(&self) -> Result<Vec<R>, TaskError> {
        let spans = std::mem::take(&mut self.sink.lock().spans);
        if !spans.is_empty() {
            return self.collect_spans(spans);
        }
        let slots = {
            let mut s = self.sink.lock();
            if s.failed {
                self.sink.cancel();
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
        &self,
        mut spans: Vec<(usize, usize, (usize, u32), Message)>,
    ) -> Result<Vec<R>, TaskError> {
        let (failed, slots) = {
            let mut s = self.sink.lock();
            (s.failed, std::mem::take(&mut s.slots))
        };
        // With chunks, every task of the call is in one; `slots` holds only errors.
        if failed {
            self.sink.cancel();
            let err = slots
                .iter()
                .flatten()
                .find_map(|r| r.as_ref().err().cloned());
            return Err(err.unwrap_or_else(|| TaskError::failed("a task failed", None)));
        }
        spans.sort_unstable_by_key(|s| s.0);
        let total = self.sink.total().unwrap_or(0);
        let mut out: Vec<R> = Vec::with_capacity(total);
        for (first, span, who, m) in spans {
            if out.len() != first {
                return Err(TaskError::failed("results are missing", Some(out.len())));
            }
            // Plain numbers come back as their bytes (see `pool::plain`).
            if m.bytes.first() == Some(&crate::pool::plain::OK) {
                match (self.plain)(&m.bytes[1..], &mut out) {
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

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(e) = this.early.take() {
            return Poll::Ready(Err(e));
        }
        {
            let mut s = this.sink.lock();
            if !(s.failed || Some(s.received) == this.sink.total()) {
                // Stored under the lock the deliverers take: a result that lands
                // after the check above finds this waker.
                s.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            s.waker = None;
        }
        Poll::Ready(this.collect())
    }
}

impl<R> Drop for MapResult<R> {
    fn drop(&mut self) {
        // Nobody will read the rest: do not run it.
        self.sink.cancel();
    }
}

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
                match self.input.next() {
                    Some(Ok(args)) => {
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
                    Some(Err(reason)) => {
                        let i = self.submitted;
                        self.submitted += 1;
                        sink.deliver(
                            i,
                            Err(TaskError::failed(
                                format!("cannot send the task's argument to a worker: {reason}"),
                                Some(i),
                            )),
                        );
                    }
                    None => {
                        self.exhausted = true;
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

/// The ordered iterator of [`Pool::imap`](crate::pool::Pool::imap): results in
/// input order, as soon as each is ready.
pub struct IMap<'a, R> {
    pub(crate) sink: Arc<MapSink>,
    pub(crate) feeder: Feeder<'a>,
    pub(crate) next: usize,
    pub(crate) _r: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for IMap<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IMap").field("next", &self.next).finish()
    }
}

impl<R: DeserializeOwned> IMap<'_, R> {
    fn next_until(
        &mut self,
        deadline: Option<Instant>,
        span: Duration,
    ) -> Option<Result<R, TaskError>> {
        self.feeder.top_up(self.next, &self.sink);
        let mut s = self.sink.lock();
        loop {
            if self.feeder.exhausted && self.next >= self.feeder.submitted {
                return None;
            }
            if let Some(Some(_)) = s.slots.front() {
                let r = s.slots.pop_front().flatten().expect("checked above");
                s.base += 1;
                s.waiting = false;
                drop(s);
                let i = self.next;
                self.next += 1;
                return Some(r.and_then(|m| decode(i, m)));
            }
            s.waiting = true;
            match deadline {
                None => s = self.sink.cond.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        s.waiting = false;
                        return Some(Err(TaskError::new(
                            Kind::WaitTimeout(span),
                            Some(self.next),
                            None,
                        )));
                    }
                    s = self
                        .sink
                        .cond
                        .wait_timeout(s, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }

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
        self.next_until(crate::deadline::after(timeout), timeout)
    }
}

impl<R: DeserializeOwned> IMap<'_, R> {
    /// The next result, awaited without blocking a thread (the async form of
    /// [`Iterator::next`]), in any runtime; `None` after the last.
    ///
    /// For a `Stream`, wrap it: `futures::stream::unfold(it, |mut it| async move {
    /// it.next_async().await.map(|r| (r, it)) })`.
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
        self.feeder.top_up(self.next, &self.sink);
        std::future::poll_fn(|cx| self.poll_next_result(cx)).await
    }

    fn poll_next_result(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<R, TaskError>>> {
        let mut s = self.sink.lock();
        if self.feeder.exhausted && self.next >= self.feeder.submitted {
            s.waker = None;
            return Poll::Ready(None);
        }
        if let Some(Some(_)) = s.slots.front() {
            let r = s.slots.pop_front().flatten().expect("checked above");
            s.base += 1;
            s.waker = None;
            drop(s);
            let i = self.next;
            self.next += 1;
            return Poll::Ready(Some(r.and_then(|m| decode(i, m))));
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl<R: DeserializeOwned> Iterator for IMap<'_, R> {
    type Item = Result<R, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_until(None, Duration::ZERO)
    }
}

impl<R> Drop for IMap<'_, R> {
    fn drop(&mut self) {
        self.sink.cancel();
    }
}

/// The iterator of [`Pool::imap_unordered`](crate::pool::Pool::imap_unordered):
/// results in the order they finish. Each error carries its
/// [`task_index`](TaskError::task_index).
pub struct IMapUnordered<'a, R> {
    pub(crate) sink: Arc<MapSink>,
    pub(crate) feeder: Feeder<'a>,
    pub(crate) consumed: usize,
    pub(crate) _r: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for IMapUnordered<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IMapUnordered")
            .field("consumed", &self.consumed)
            .finish()
    }
}

impl<R: DeserializeOwned> Iterator for IMapUnordered<'_, R> {
    type Item = Result<R, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.feeder.top_up(self.consumed, &self.sink);
        let mut s = self.sink.lock();
        loop {
            if let Some(r) = s.arrived.pop_front() {
                s.waiting = false;
                drop(s);
                let i = self.consumed;
                self.consumed += 1;
                return Some(r.and_then(|m| decode(i, m)));
            }
            if self.feeder.exhausted && self.consumed >= self.feeder.submitted {
                return None;
            }
            s.waiting = true;
            s = self.sink.cond.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl<R: DeserializeOwned> IMapUnordered<'_, R> {
    /// The next result to finish, awaited without blocking a thread (the async
    /// form of [`Iterator::next`]), in any runtime; `None` after the last.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: a result is taken only when the future completes, so dropping a
    /// pending `next_async` loses nothing.
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
        self.feeder.top_up(self.consumed, &self.sink);
        std::future::poll_fn(|cx| {
            let mut s = self.sink.lock();
            if let Some(r) = s.arrived.pop_front() {
                s.waker = None;
                drop(s);
                let i = self.consumed;
                self.consumed += 1;
                return Poll::Ready(Some(r.and_then(|m| decode(i, m))));
            }
            if self.feeder.exhausted && self.consumed >= self.feeder.submitted {
                s.waker = None;
                return Poll::Ready(None);
            }
            s.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

impl<R> Drop for IMapUnordered<'_, R> {
    fn drop(&mut self) {
        self.sink.cancel();
    }
}

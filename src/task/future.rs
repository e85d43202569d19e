//! The `Future` handle: one slot a worker fills and a caller waits on, by blocking,
//! with a deadline, by callback, or by `.await`.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::task::TaskError;

type Callback<T> = Box<dyn FnOnce(&Result<T, TaskError>) + Send>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Pending,
    Running,
    Done,
    Cancelled,
}

struct State<T> {
    phase: Phase,
    /// Present once done, until a caller takes it. While done-callbacks run it is
    /// briefly absent with `phase == Done`; waiters wait for it.
    result: Option<Result<T, TaskError>>,
    taken: bool,
    wakers: Vec<Waker>,
    callbacks: Vec<Callback<T>>,
}

/// The shared slot behind a [`Future`]; the producer side of it lives in the crate.
pub(crate) struct Slot<T> {
    state: Mutex<State<T>>,
    cond: Condvar,
    index: usize,
}

impl<T> Slot<T> {
    pub(crate) fn new(index: usize) -> Arc<Slot<T>> {
        Arc::new(Slot {
            state: Mutex::new(State {
                phase: Phase::Pending,
                result: None,
                taken: false,
                wakers: Vec::new(),
                callbacks: Vec::new(),
            }),
            cond: Condvar::new(),
            index,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the task as running; `false` when it was cancelled first (then it must
    /// not run).
    pub(crate) fn set_running(&self) -> bool {
        let mut s = self.lock();
        match s.phase {
            Phase::Pending => {
                s.phase = Phase::Running;
                true
            }
            Phase::Running => true,
            Phase::Done | Phase::Cancelled => false,
        }
    }

    /// Whether the future was cancelled.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.lock().phase == Phase::Cancelled
    }

    /// Stores the outcome (ignored when already done or cancelled), runs the done
    /// callbacks on this thread, and wakes every waiter.
    pub(crate) fn complete(&self, result: Result<T, TaskError>) {
        self.finish(result, Phase::Done);
    }

    fn finish(&self, result: Result<T, TaskError>, phase: Phase) -> bool {
        let callbacks = {
            let mut s = self.lock();
            if matches!(s.phase, Phase::Done | Phase::Cancelled) {
                return false;
            }
            s.phase = phase;
            std::mem::take(&mut s.callbacks)
        };
        for cb in callbacks {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(&result)));
        }
        let wakers = {
            let mut s = self.lock();
            s.result = Some(result);
            std::mem::take(&mut s.wakers)
        };
        self.cond.notify_all();
        for w in wakers {
            w.wake();
        }
        true
    }

    /// Cancels a task that has not started. `true` when it is (now) cancelled.
    pub(crate) fn cancel(&self) -> bool {
        {
            let s = self.lock();
            match s.phase {
                Phase::Cancelled => return true,
                Phase::Running | Phase::Done => return false,
                Phase::Pending => {}
            }
        }
        self.finish(
            Err(TaskError::cancelled(
                "cancelled before it started",
                Some(self.index),
            )),
            Phase::Cancelled,
        ) || self.is_cancelled()
    }

    fn is_done(&self) -> bool {
        matches!(self.lock().phase, Phase::Done | Phase::Cancelled)
    }

    fn add_waker(&self, waker: &Waker) -> bool {
        let mut s = self.lock();
        if s.result.is_some() || s.taken {
            return true;
        }
        if !s.wakers.iter().any(|w| w.will_wake(waker)) {
            s.wakers.push(waker.clone());
        }
        false
    }

    /// Waits until the result is there (or `deadline`); takes it.
    fn take(&self, deadline: Option<Instant>) -> Option<Result<T, TaskError>> {
        let mut s = self.lock();
        loop {
            if let Some(r) = s.result.take() {
                s.taken = true;
                return Some(r);
            }
            match deadline {
                None => s = self.cond.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return None;
                    }
                    s = self
                        .cond
                        .wait_timeout(s, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }

    fn wait_done(&self, deadline: Option<Instant>) -> bool {
        let mut s = self.lock();
        loop {
            if s.result.is_some() || s.taken {
                return true;
            }
            match deadline {
                None => s = self.cond.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    s = self
                        .cond
                        .wait_timeout(s, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }
}

/// The result of a task that runs elsewhere: Python's `concurrent.futures.Future`.
///
/// Wait for it with [`result`](Future::result) (blocking),
/// [`result_timeout`](Future::result_timeout), a done-callback, or `.await` from any
/// async runtime: `Future` implements [`std::future::Future`] with its own wakers and
/// needs no runtime.
///
/// # Examples
///
/// ```
/// use mproc::futures::{Executor, ThreadPoolExecutor};
///
/// let ex = ThreadPoolExecutor::new(2);
/// let fut = ex.submit(|x: u32| x + 1, 41)?;
/// assert_eq!(fut.result()?, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Future<T> {
    slot: Arc<Slot<T>>,
}

impl<T> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = self.slot.lock().phase;
        f.debug_struct("Future")
            .field("index", &self.slot.index)
            .field("state", &phase)
            .finish()
    }
}

impl<T> Future<T> {
    pub(crate) fn from_slot(slot: Arc<Slot<T>>) -> Future<T> {
        Future { slot }
    }

    /// A future that is already done with `result`.
    pub(crate) fn ready(result: Result<T, TaskError>, index: usize) -> Future<T> {
        let slot = Slot::new(index);
        slot.complete(result);
        Future { slot }
    }

    /// Waits for the task and returns its result (Python's `result()`).
    ///
    /// # Errors
    ///
    /// The task's [`TaskError`]: a panic, a lost worker, a timeout, a cancellation.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::futures::{Executor, ThreadPoolExecutor};
    ///
    /// let ex = ThreadPoolExecutor::new(1);
    /// let fut = ex.submit(|s: String| s.len(), "four".to_string())?;
    /// assert_eq!(fut.result()?, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn result(self) -> Result<T, TaskError> {
        self.slot.take(None).expect("waited without a deadline")
    }

    /// Waits at most `timeout` for the result.
    ///
    /// # Errors
    ///
    /// [`ResultTimeoutError::Timeout`] with the future back when the task is not
    /// done yet; [`ResultTimeoutError::Failed`] with the task's error.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::futures::{Executor, ThreadPoolExecutor};
    ///
    /// let ex = ThreadPoolExecutor::new(1);
    /// let slow = ex.submit(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), 300)?;
    /// let err = slow.result_timeout(Duration::from_millis(1)).unwrap_err();
    /// assert!(err.is_timeout());
    /// let slow = err.into_inner().unwrap();
    /// slow.result()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn result_timeout(self, timeout: Duration) -> Result<T, ResultTimeoutError<T>> {
        self.result_until(crate::deadline::after(timeout))
    }

    /// Waits until `deadline` at most for the result.
    ///
    /// # Errors
    ///
    /// As [`result_timeout`](Future::result_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use mproc::futures::{Executor, ThreadPoolExecutor};
    ///
    /// let ex = ThreadPoolExecutor::new(1);
    /// let fut = ex.submit(|x: i8| -x, 5)?;
    /// assert_eq!(fut.result_deadline(Instant::now() + Duration::from_secs(30))?, -5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn result_deadline(self, deadline: Instant) -> Result<T, ResultTimeoutError<T>> {
        self.result_until(Some(deadline))
    }

    /// Waits until `deadline` at most (forever for `None`) for the result.
    fn result_until(self, deadline: Option<Instant>) -> Result<T, ResultTimeoutError<T>> {
        match self.slot.take(deadline) {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(ResultTimeoutError::Failed(e)),
            None => Err(ResultTimeoutError::Timeout(self)),
        }
    }

    /// Waits for the task and returns its error, or `None` when it succeeded
    /// (Python's `exception()`). The result stays in the future.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::futures::{Executor, ThreadPoolExecutor};
    ///
    /// let ex = ThreadPoolExecutor::new(1);
    /// let fut = ex.submit(|_: ()| -> u8 { panic!("no") }, ())?;
    /// assert_eq!(fut.error().unwrap().panic_message(), Some("no"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "exception")]
    pub fn error(&self) -> Option<TaskError> {
        self.slot.wait_done(None);
        match &self.slot.lock().result {
            Some(Err(e)) => Some(e.clone()),
            _ => None,
        }
    }

    /// Cancels the task if it has not started; `true` when it is cancelled (now or
    /// before). A running or finished task cannot be cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::futures::{Executor, ThreadPoolExecutor};
    ///
    /// let ex = ThreadPoolExecutor::new(1);
    /// let busy = ex.submit(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), 200)?;
    /// let queued = ex.submit(|x: u8| x, 1)?;
    /// assert!(queued.cancel());
    /// assert!(queued.cancelled());
    /// assert!(queued.result().unwrap_err().is_cancelled());
    /// busy.result()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel(&self) -> bool {
        self.slot.cancel()
    }

    /// Whether the task was cancelled.
    ///
    /// # Examples
    ///
    /// See [`cancel`](Future::cancel).
    pub fn cancelled(&self) -> bool {
        self.slot.is_cancelled()
    }

    /// Whether the task is running now.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::futures::{Executor, ThreadPoolExecutor};
    ///
    /// let ex = ThreadPoolExecutor::new(1);
    /// let fut = ex.submit(|x: u8| x, 1)?;
    /// fut.wait();
    /// assert!(!fut.running());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn running(&self) -> bool {
        self.slot.lock().phase == Phase::Running
    }

    /// Whether the task is finished (with a result, an error, or cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::futures::{Executor, ThreadPoolExecutor};
    ///
    /// let ex = ThreadPoolExecutor::new(1);
    /// let fut = ex.submit(|x: u8| x, 1)?;
    /// fut.wait();
    /// assert!(fut.done());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn done(&self) -> bool {
        self.slot.is_done()
    }

    /// Blocks until the task is finished, without taking the result.
    ///
    /// # Examples
    ///
    /// See [`done`](Future::done).
    pub fn wait(&self) {
        self.slot.wait_done(None);
    }

    /// Blocks until the task is finished or `timeout` passes; `true` when finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::futures::{Executor, ThreadPoolExecutor};
    ///
    /// let ex = ThreadPoolExecutor::new(1);
    /// let fut = ex.submit(|x: u8| x, 1)?;
    /// assert!(fut.wait_timeout(Duration::from_secs(30)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.slot.wait_done(crate::deadline::after(timeout))
    }

    /// Runs `f` with the outcome when the task finishes: on the thread that
    /// finishes it (a pool's dispatcher thread, an executor thread), or right now on
    /// this thread when it is already finished. Keep callbacks short; a panic in
    /// one is caught and ignored.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use mproc::futures::{Executor, ThreadPoolExecutor};
    ///
    /// let ex = ThreadPoolExecutor::new(1);
    /// let fut = ex.submit(|x: u8| x * 2, 21)?;
    /// let (tx, rx) = mpsc::channel();
    /// fut.add_done_callback(move |r| tx.send(*r.as_ref().unwrap()).unwrap());
    /// assert_eq!(rx.recv()?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_done_callback(&self, f: impl FnOnce(&Result<T, TaskError>) + Send + 'static) {
        let mut s = self.slot.lock();
        if matches!(s.phase, Phase::Done | Phase::Cancelled) {
            // Finished: wait for the result to be stored, then run here.
            while s.result.is_none() && !s.taken {
                s = self.slot.cond.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            if let Some(r) = s.result.take() {
                drop(s);
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&r)));
                self.slot.lock().result = Some(r);
            }
            return;
        }
        s.callbacks.push(Box::new(f));
    }

    pub(crate) fn register_waker(&self, waker: &Waker) -> bool {
        self.slot.add_waker(waker)
    }
}

impl<T> std::future::Future for Future<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let slot = &self.slot;
        let mut s = slot.lock();
        if let Some(r) = s.result.take() {
            s.taken = true;
            return Poll::Ready(r);
        }
        if s.taken {
            return Poll::Ready(Err(TaskError::failed(
                "the result was already taken",
                Some(slot.index),
            )));
        }
        if !s.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            s.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// [`Future::result_timeout`] did not return a value.
pub enum ResultTimeoutError<T> {
    /// The task is not done yet; here is the future back.
    Timeout(Future<T>),
    /// The task failed.
    Failed(TaskError),
}

impl<T> ResultTimeoutError<T> {
    /// Whether the wait timed out (the task may still finish).
    ///
    /// # Examples
    ///
    /// See [`Future::result_timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, ResultTimeoutError::Timeout(_))
    }

    /// The future back, after a timeout.
    ///
    /// # Examples
    ///
    /// See [`Future::result_timeout`].
    pub fn into_inner(self) -> Option<Future<T>> {
        match self {
            ResultTimeoutError::Timeout(f) => Some(f),
            ResultTimeoutError::Failed(_) => None,
        }
    }

    /// The task's error, when it failed.
    ///
    /// # Examples
    ///
    /// See [`Future::result_timeout`].
    pub fn task_error(&self) -> Option<&TaskError> {
        match self {
            ResultTimeoutError::Timeout(_) => None,
            ResultTimeoutError::Failed(e) => Some(e),
        }
    }
}

impl<T> fmt::Debug for ResultTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResultTimeoutError::Timeout(fut) => f.debug_tuple("Timeout").field(fut).finish(),
            ResultTimeoutError::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
        }
    }
}

impl<T> fmt::Display for ResultTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResultTimeoutError::Timeout(_) => f.write_str("the task is not done yet"),
            ResultTimeoutError::Failed(e) => e.fmt(f),
        }
    }
}

impl<T> std::error::Error for ResultTimeoutError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ResultTimeoutError::Timeout(_) => None,
            ResultTimeoutError::Failed(e) => Some(e),
        }
    }
}

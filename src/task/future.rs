//! The `Future` handle: the reading side of a [`Slot`], waited on by blocking, with
//! a deadline, by callback, or by `.await`.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::task::TaskError;
use crate::task::slot::{Phase, Slot};

/// [`Future::error_timeout`] ran out of time: the task was not done after the
/// timeout it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the task is not done after {0:?}")]
pub struct NotDone(pub Duration);

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
/// let ex = ThreadPoolExecutor::new(2)?;
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

impl<T> Default for Future<T> {
    fn default() -> Self {
        Future::new()
    }
}

impl<T> Future<T> {
    /// A pending future that no executor fills: complete it yourself with
    /// [`set_result`](Future::set_result) or [`set_error`](Future::set_error)
    /// (Python's `Future()`, for tests and for adapting other sources of results).
    /// Waiters, callbacks and `.await` work as on an executor's future.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::futures::Future;
    ///
    /// let fut = Future::new();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| fut.set_result(42u32).unwrap());
    ///     fut.wait();
    /// });
    /// assert_eq!(fut.result()?, 42);
    /// # Ok::<(), mproc::futures::TaskError>(())
    /// ```
    pub fn new() -> Future<T> {
        Future { slot: Slot::new(0) }
    }

    /// Completes the future with `value` (Python's `set_result`): waiters wake and
    /// done-callbacks run, on this thread.
    ///
    /// # Errors
    ///
    /// The value back when the future is already done or cancelled (Python's
    /// `InvalidStateError`).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::futures::Future;
    ///
    /// let fut = Future::new();
    /// assert!(fut.set_result("first").is_ok());
    /// assert_eq!(fut.set_result("second"), Err("second"));
    /// assert_eq!(fut.result()?, "first");
    /// # Ok::<(), mproc::futures::TaskError>(())
    /// ```
    pub fn set_result(&self, value: T) -> Result<(), T> {
        self.set(Ok(value)).map_err(|r| match r {
            Ok(v) => v,
            Err(_) => unreachable!("set with a value"),
        })
    }

    /// Completes the future with `error` (Python's `set_exception`); see
    /// [`TaskError::from_message`] to make one.
    ///
    /// # Errors
    ///
    /// The error back when the future is already done or cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::futures::{Future, TaskError};
    ///
    /// let fut: Future<u8> = Future::new();
    /// fut.set_error(TaskError::from_message("no data")).unwrap();
    /// assert_eq!(fut.error().unwrap().to_string(), "no data");
    /// assert!(fut.set_result(1).is_err());
    /// ```
    pub fn set_error(&self, error: TaskError) -> Result<(), TaskError> {
        self.set(Err(error)).map_err(|r| match r {
            Err(e) => e,
            Ok(_) => unreachable!("set with an error"),
        })
    }

    fn set(&self, outcome: Result<T, TaskError>) -> Result<(), Result<T, TaskError>> {
        self.slot.complete_or_return(outcome)
    }

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
    /// let ex = ThreadPoolExecutor::new(1)?;
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
    /// let ex = ThreadPoolExecutor::new(1)?;
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
    /// let ex = ThreadPoolExecutor::new(1)?;
    /// let fut = ex.submit(|x: i8| -x, 5)?;
    /// assert_eq!(fut.result_deadline(Instant::now() + Duration::from_secs(30))?, -5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn result_deadline(self, deadline: Instant) -> Result<T, ResultTimeoutError<T>> {
        self.result_until(Some(deadline))
    }

    /// Waits until `deadline` at most (forever for `None`) for the result.
    pub(crate) fn result_until(
        self,
        deadline: Option<Instant>,
    ) -> Result<T, ResultTimeoutError<T>> {
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
    /// let ex = ThreadPoolExecutor::new(1)?;
    /// let fut = ex.submit(|_: ()| -> u8 { panic!("no") }, ())?;
    /// assert_eq!(fut.error().unwrap().panic_message(), Some("no"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "exception")]
    pub fn error(&self) -> Option<TaskError> {
        self.slot.error(None).flatten()
    }

    /// [`error`](Future::error), waiting at most `timeout` (Python's
    /// `exception(timeout)`).
    ///
    /// # Errors
    ///
    /// [`NotDone`] when the task is not done by then.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::futures::Future;
    ///
    /// let fut: Future<u8> = Future::new();
    /// assert!(fut.error_timeout(Duration::from_millis(1)).is_err());
    /// fut.set_result(1).unwrap();
    /// assert_eq!(fut.error_timeout(Duration::from_secs(30)).unwrap().map(|e| e.to_string()), None);
    /// ```
    #[doc(alias = "exception")]
    pub fn error_timeout(&self, timeout: Duration) -> Result<Option<TaskError>, NotDone> {
        self.slot
            .error(crate::deadline::after(timeout))
            .ok_or(NotDone(timeout))
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
    /// let ex = ThreadPoolExecutor::new(1)?;
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
    /// let ex = ThreadPoolExecutor::new(1)?;
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
    /// let ex = ThreadPoolExecutor::new(1)?;
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
    /// let ex = ThreadPoolExecutor::new(1)?;
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
    /// A running callback holds no other waiter up: `wait`, `error`, `done`,
    /// [`as_completed`](crate::futures::as_completed) and
    /// [`wait`](crate::futures::wait) go on at once. Only the readers that take the
    /// value ([`result`](Future::result), `.await`) wait for the callback to give it
    /// back. A callback added while another one runs on a finished future runs
    /// right after it, on that thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use mproc::futures::{Executor, ThreadPoolExecutor};
    ///
    /// let ex = ThreadPoolExecutor::new(1)?;
    /// let fut = ex.submit(|x: u8| x * 2, 21)?;
    /// let (tx, rx) = mpsc::channel();
    /// fut.add_done_callback(move |r| tx.send(*r.as_ref().unwrap()).unwrap());
    /// assert_eq!(rx.recv()?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_done_callback(&self, f: impl FnOnce(&Result<T, TaskError>) + Send + 'static) {
        self.slot.add_callback(Box::new(f));
    }

    pub(crate) fn register_waker(&self, waker: &Waker) -> bool {
        self.slot.add_waker(waker)
    }
}

impl<T> std::future::Future for Future<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.slot.try_take(cx.waker()) {
            Some(r) => Poll::Ready(r),
            None => Poll::Pending,
        }
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

//! [`Timer`]: Python's `threading.Timer`, a function run once after a delay on a
//! thread of its own, unless cancelled first.

use std::fmt;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Where a timer is in its life.
enum Phase<R> {
    /// The delay has not run out and nobody cancelled.
    Waiting,
    /// Cancelled before the function started: it never runs.
    Cancelled,
    /// The function is running.
    Running,
    /// The function returned (`Ok`) or panicked (`Err`); taken by `join`.
    Finished(Option<thread::Result<R>>),
}

struct Shared<R> {
    phase: Mutex<Phase<R>>,
    changed: Condvar,
}

impl<R> Shared<R> {
    fn lock(&self) -> MutexGuard<'_, Phase<R>> {
        // The lock is never held while user code runs, so a poisoned lock can only
        // come from a panic in std itself; the phase is still meaningful.
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A function run once, `interval` after [`start`](Timer::start), on a thread of
/// its own, unless [`cancel`](Timer::cancel)led first: Python's `threading.Timer`.
///
/// Unlike Python's, a timer starts when it is made (there is no separate
/// `start()`), hands back what the function returned through
/// [`join`](Timer::join), and tells whether a cancel came in time.
///
/// # Caveats
///
/// - **Drop**: dropping a `Timer` does not cancel it; the function still runs when
///   the delay ends (as a detached `std::thread` does). Call
///   [`cancel`](Timer::cancel) to stop it.
/// - **Process exit**: like any Rust thread, a timer still waiting when `main`
///   returns never fires (Python waits for non-daemon timers). `join` it to wait.
/// - **Panics**: a panic in the function is caught on the timer's thread and
///   handed to [`join`](Timer::join), like `std::thread::JoinHandle::join`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mproc::threading::Timer;
///
/// let t = Timer::start(Duration::from_millis(10), || 6 * 7)?;
/// assert_eq!(t.join().unwrap(), Some(42));
///
/// let t = Timer::start(Duration::from_secs(3600), || unreachable!("cancelled"))?;
/// assert!(t.cancel()); // in time: the function will never run
/// assert_eq!(t.join().unwrap(), None);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Timer<R = ()> {
    shared: Arc<Shared<R>>,
    thread: JoinHandle<()>,
    interval: Duration,
}

impl<R: Send + 'static> Timer<R> {
    /// Starts a timer: `function` runs on a new thread once `interval` has passed,
    /// unless the timer is cancelled first. `Duration::MAX` never fires (only a
    /// cancel ends such a timer).
    ///
    /// # Errors
    ///
    /// The `io::Error` of `std::thread::Builder::spawn` when no thread can be
    /// started.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// use mproc::threading::Timer;
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let _t = Timer::start(Duration::from_millis(5), move || tx.send("fired").unwrap())?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok("fired"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn start<F>(interval: Duration, function: F) -> io::Result<Timer<R>>
    where
        F: FnOnce() -> R + Send + 'static,
    {
        let shared = Arc::new(Shared {
            phase: Mutex::new(Phase::Waiting),
            changed: Condvar::new(),
        });
        let deadline = crate::deadline::after(interval);
        let theirs = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("mproc-timer".into())
            .spawn(move || run(&theirs, deadline, function))?;
        Ok(Timer {
            shared,
            thread,
            interval,
        })
    }
}

/// The timer's thread: wait out the delay (or a cancel), then run.
fn run<R, F: FnOnce() -> R>(shared: &Shared<R>, deadline: Option<Instant>, function: F) {
    let mut phase = shared.lock();
    loop {
        if !matches!(*phase, Phase::Waiting) {
            return; // cancelled
        }
        match deadline {
            None => {
                phase = shared
                    .changed
                    .wait(phase)
                    .unwrap_or_else(PoisonError::into_inner)
            }
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    break;
                }
                phase = shared
                    .changed
                    .wait_timeout(phase, d - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
    }
    *phase = Phase::Running;
    drop(phase);
    let result = catch_unwind(AssertUnwindSafe(function));
    *shared.lock() = Phase::Finished(Some(result));
    shared.changed.notify_all();
}

impl<R> Timer<R> {
    /// Cancels the timer if its function has not started (Python's `cancel()`).
    ///
    /// Returns `true` when the cancel came in time: the function will never run.
    /// `false` when it is running or has run (or the timer was already cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::threading::Timer;
    ///
    /// let t = Timer::start(Duration::from_secs(60), || ())?;
    /// assert!(t.cancel());
    /// assert!(!t.cancel()); // already cancelled
    /// assert!(t.is_cancelled());
    ///
    /// let t = Timer::start(Duration::ZERO, || ())?;
    /// assert!(t.join_timeout(Duration::from_secs(10)));
    /// assert!(!t.cancel()); // too late: it has run
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn cancel(&self) -> bool {
        let mut phase = self.shared.lock();
        if matches!(*phase, Phase::Waiting) {
            *phase = Phase::Cancelled;
            drop(phase);
            self.shared.changed.notify_all();
            true
        } else {
            false
        }
    }

    /// Whether the timer was cancelled in time (its function never runs).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::threading::Timer;
    ///
    /// let t = Timer::start(Duration::from_secs(60), || ())?;
    /// assert!(!t.is_cancelled());
    /// t.cancel();
    /// assert!(t.is_cancelled());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(*self.shared.lock(), Phase::Cancelled)
    }

    /// Whether the timer is done: its function has returned or panicked, or it
    /// was cancelled. (Python's `not is_alive()`, once started.)
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::threading::Timer;
    ///
    /// let t = Timer::start(Duration::from_secs(60), || ())?;
    /// assert!(!t.is_finished());
    /// t.cancel();
    /// assert!(t.is_finished());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        matches!(*self.shared.lock(), Phase::Cancelled | Phase::Finished(_))
    }

    /// The delay the timer was started with.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::threading::Timer;
    ///
    /// let t = Timer::start(Duration::from_secs(5), || ())?;
    /// assert_eq!(t.interval(), Duration::from_secs(5));
    /// t.cancel();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Waits at most `timeout` for the timer to be done (Python's
    /// `join(timeout)`); returns whether it is. `Duration::MAX` waits for ever.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::threading::Timer;
    ///
    /// let t = Timer::start(Duration::from_secs(60), || ())?;
    /// assert!(!t.join_timeout(Duration::from_millis(5)));
    /// t.cancel();
    /// assert!(t.join_timeout(Duration::from_secs(10)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use = "false means the timer is not done yet"]
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        let deadline = crate::deadline::after(timeout);
        let mut phase = self.shared.lock();
        loop {
            if matches!(*phase, Phase::Cancelled | Phase::Finished(_)) {
                return true;
            }
            phase = match deadline {
                None => self
                    .shared
                    .changed
                    .wait(phase)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    self.shared
                        .changed
                        .wait_timeout(phase, d - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    /// Waits for the timer to be done (Python's `join()`) and returns what its
    /// function returned: `Ok(Some(value))`, `Ok(None)` when it was cancelled in
    /// time, or `Err` with the panic payload when the function panicked (as
    /// `std::thread::JoinHandle::join`).
    ///
    /// # Errors
    ///
    /// The panic payload of a function that panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::threading::Timer;
    ///
    /// let t = Timer::start(Duration::from_millis(1), || "done")?;
    /// assert_eq!(t.join().unwrap(), Some("done"));
    ///
    /// let t = Timer::start(Duration::ZERO, || -> u8 { panic!("boom") })?;
    /// assert!(t.join().is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join(self) -> thread::Result<Option<R>> {
        // The function's panic is caught inside the thread, which writes its
        // outcome before it ends; a panic that still ends the thread is passed on.
        self.thread.join()?;
        let mut phase = self.shared.lock();
        match &mut *phase {
            Phase::Finished(result) => match result.take() {
                Some(Ok(r)) => Ok(Some(r)),
                Some(Err(payload)) => Err(payload),
                None => Ok(None),
            },
            Phase::Cancelled => Ok(None),
            // The thread ended normally, so `run` wrote `Cancelled` or `Finished`.
            Phase::Waiting | Phase::Running => Ok(None),
        }
    }
}

impl<R> fmt::Debug for Timer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match *self.shared.lock() {
            Phase::Waiting => "waiting",
            Phase::Cancelled => "cancelled",
            Phase::Running => "running",
            Phase::Finished(_) => "finished",
        };
        f.debug_struct("Timer")
            .field("interval", &self.interval)
            .field("phase", &phase)
            .finish()
    }
}

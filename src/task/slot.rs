//! The slot behind a [`Future`](crate::task::Future): one task's phase and outcome,
//! filled by the thread that finishes the task and read by any number of waiters.
//!
//! Waiting for the task to be *done* ([`Slot::wait_done`], [`Slot::error`], the
//! wakers of `as_completed` and `wait`) never waits for a done-callback: the phase
//! and a copy of the error are stored, and every waiter woken, before any callback
//! runs. Done-callbacks borrow the value itself, so while one runs the value is
//! *lent* out of the slot; only the readers that take the value ([`Slot::take`],
//! `.await`) wait for it, and they are woken when it comes back. A callback added
//! while the value is lent joins the lender's queue instead of waiting.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::thread::ThreadId;
use std::time::Instant;

use crate::task::{TaskError, sleep_until};

type Callback<T> = Box<dyn FnOnce(&Result<T, TaskError>) + Send>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Pending,
    Running,
    Done,
    Cancelled,
}

impl Phase {
    fn is_done(self) -> bool {
        matches!(self, Phase::Done | Phase::Cancelled)
    }
}

pub(crate) struct State<T> {
    pub(crate) phase: Phase,
    /// The outcome once done, until a reader takes it; `None` meanwhile while it
    /// is lent to done-callbacks (`lent`).
    result: Option<Result<T, TaskError>>,
    /// The error, once done with one (kept so that `error()` never waits for the
    /// value, and still answers after the value was taken).
    error: Option<TaskError>,
    /// The thread running done-callbacks with the value, while it is lent.
    lent: Option<ThreadId>,
    taken: bool,
    wakers: Vec<Waker>,
    callbacks: Vec<Callback<T>>,
}

/// The shared slot behind a [`Future`](crate::task::Future); the producer side of
/// it lives in the crate.
pub(crate) struct Slot<T> {
    state: Mutex<State<T>>,
    cond: Condvar,
    pub(crate) index: usize,
}

impl<T> Slot<T> {
    pub(crate) fn new(index: usize) -> Arc<Slot<T>> {
        Arc::new(Slot {
            state: Mutex::new(State {
                phase: Phase::Pending,
                result: None,
                error: None,
                lent: None,
                taken: false,
                wakers: Vec::new(),
                callbacks: Vec::new(),
            }),
            cond: Condvar::new(),
            index,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes every blocked and every async waiter.
    fn wake_all(&self, wakers: Vec<Waker>) {
        self.cond.notify_all();
        for w in wakers {
            w.wake();
        }
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

    /// Whether the task is finished (done or cancelled).
    pub(crate) fn is_done(&self) -> bool {
        self.lock().phase.is_done()
    }

    /// Stores the outcome (ignored when already done or cancelled), wakes every
    /// waiter, then runs the done-callbacks on this thread. `false` when it was
    /// already done.
    pub(crate) fn complete(&self, result: Result<T, TaskError>) -> bool {
        self.complete_or_return(result).is_ok()
    }

    /// [`complete`](Slot::complete), handing `result` back when already done.
    pub(crate) fn complete_or_return(
        &self,
        result: Result<T, TaskError>,
    ) -> Result<(), Result<T, TaskError>> {
        self.finish(result, Phase::Done)
    }

    /// Cancels a task that has not started, with `error` as its outcome. `true`
    /// when it is (now or before) cancelled; `false` when it runs or is done.
    pub(crate) fn cancel_with(&self, error: TaskError) -> bool {
        match self.lock().phase {
            Phase::Cancelled => return true,
            Phase::Running | Phase::Done => return false,
            Phase::Pending => {}
        }
        self.finish(Err(error), Phase::Cancelled).is_ok() || self.is_cancelled()
    }

    /// Cancels a task that has not started ([`cancel_with`](Slot::cancel_with)).
    pub(crate) fn cancel(&self) -> bool {
        self.cancel_with(TaskError::cancelled(
            "cancelled before it started",
            Some(self.index),
        ))
    }

    /// Ends a task that will never run: cancelled if it had not started, failed
    /// with `error` otherwise (a task handed back to a queue after its worker died).
    pub(crate) fn abandon(&self, error: TaskError) {
        if !self.cancel_with(error.clone()) {
            self.complete(Err(error));
        }
    }

    fn finish(
        &self,
        result: Result<T, TaskError>,
        phase: Phase,
    ) -> Result<(), Result<T, TaskError>> {
        let wakers = {
            let mut s = self.lock();
            if s.phase.is_done() {
                return Err(result);
            }
            s.phase = phase;
            s.error = result.as_ref().err().cloned();
            if s.callbacks.is_empty() {
                s.result = Some(result);
                let wakers = std::mem::take(&mut s.wakers);
                drop(s);
                self.wake_all(wakers);
                return Ok(());
            }
            s.lent = Some(std::thread::current().id());
            std::mem::take(&mut s.wakers)
        };
        // Done now: waiters for that go on while the callbacks run.
        self.wake_all(wakers);
        self.lend(result);
        Ok(())
    }

    /// Runs the queued done-callbacks (and any added meanwhile) with `result`, then
    /// puts it back and wakes the readers waiting for the value.
    fn lend(&self, result: Result<T, TaskError>) {
        let wakers = loop {
            let callbacks = {
                let mut s = self.lock();
                if s.callbacks.is_empty() {
                    s.result = Some(result);
                    s.lent = None;
                    break std::mem::take(&mut s.wakers);
                }
                std::mem::take(&mut s.callbacks)
            };
            for cb in callbacks {
                // A panicking callback must not take the others (or the value) along.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(&result)));
            }
        };
        self.wake_all(wakers);
    }

    /// Runs `f` with the outcome when done: by the thread that finishes the task
    /// when it is not done yet; here and now when it is (after a callback that
    /// another thread runs gives the value back; right after the running one when
    /// called from a callback of this future).
    pub(crate) fn add_callback(&self, f: Callback<T>) {
        let me = std::thread::current().id();
        let mut s = self.lock();
        loop {
            match s.lent {
                _ if !s.phase.is_done() => break s.callbacks.push(f),
                // From inside a callback: queued behind it, on this thread.
                Some(lender) if lender == me => break s.callbacks.push(f),
                Some(_) => s = self.cond.wait(s).unwrap_or_else(|e| e.into_inner()),
                None => break self.run_now(s, f),
            }
        }
    }

    /// Runs `f` on this thread with the value in the slot.
    fn run_now(&self, mut s: MutexGuard<'_, State<T>>, f: Callback<T>) {
        let Some(result) = s.result.take() else {
            // The value was taken by its reader: nothing left to show `f`.
            return;
        };
        s.lent = Some(std::thread::current().id());
        s.callbacks.push(f);
        drop(s);
        self.lend(result);
    }

    /// Registers `waker` to be woken when the task is done; `true` when it is
    /// done already.
    pub(crate) fn add_waker(&self, waker: &Waker) -> bool {
        let mut s = self.lock();
        if s.phase.is_done() {
            return true;
        }
        if !s.wakers.iter().any(|w| w.will_wake(waker)) {
            s.wakers.push(waker.clone());
        }
        false
    }

    /// Waits until the task is done, or `deadline`; `true` when done. Never waits
    /// for a done-callback.
    pub(crate) fn wait_done(&self, deadline: Option<Instant>) -> bool {
        self.error(deadline).is_some()
    }

    /// Waits until the task is done (or `deadline`: `None`), then gives its error
    /// (`Some(None)` when it succeeded). Never waits for a done-callback.
    pub(crate) fn error(&self, deadline: Option<Instant>) -> Option<Option<TaskError>> {
        let mut s = self.lock();
        while !s.phase.is_done() {
            s = sleep_until(&self.cond, s, deadline).ok()?;
        }
        Some(s.error.clone())
    }

    /// Takes the value if it is in the slot. Otherwise (the task runs, or a
    /// callback holds the value) `None`, and `waker` is woken when that changes.
    pub(crate) fn try_take(&self, waker: &Waker) -> Option<Result<T, TaskError>> {
        let mut s = self.lock();
        let r = s.take_value(self.index);
        if r.is_none() && !s.wakers.iter().any(|w| w.will_wake(waker)) {
            s.wakers.push(waker.clone());
        }
        r
    }

    /// Waits until the value is in the slot (or `deadline`: `None`) and takes it.
    pub(crate) fn take(&self, deadline: Option<Instant>) -> Option<Result<T, TaskError>> {
        let mut s = self.lock();
        loop {
            if let Some(r) = s.take_value(self.index) {
                return Some(r);
            }
            s = sleep_until(&self.cond, s, deadline).ok()?;
        }
    }
}

impl<T> State<T> {
    /// The value, if it is in the slot (an error once a reader took it before).
    fn take_value(&mut self, index: usize) -> Option<Result<T, TaskError>> {
        if let Some(r) = self.result.take() {
            self.taken = true;
            return Some(r);
        }
        self.taken.then(|| {
            Err(TaskError::failed(
                "the result was already taken",
                Some(index),
            ))
        })
    }
}

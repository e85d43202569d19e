//! The collector (sink) behind `map`, `imap` and `imap_unordered`: it stores each
//! task's outcome on the dispatcher thread and wakes the reader.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Instant;

use crate::codec::Message;
use crate::pool::progress::Progress;
use crate::task::call::{Outcomes, Sink};
use crate::task::{TaskError, sleep_until};

/// In which order a [`MapSink`]'s reader takes the outcomes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    All,
    Ordered,
    Unordered,
}

pub(super) struct MapState {
    /// Ordered results from `base` on.
    pub(super) slots: VecDeque<Option<Result<Message, TaskError>>>,
    pub(super) base: usize,
    /// Unordered results in arrival order.
    pub(super) arrived: VecDeque<Result<Message, TaskError>>,
    /// Chunk results (`Mode::All` only): first index, span, worker, encoded
    /// `ChunkResult`.
    pub(super) spans: Vec<(usize, usize, (usize, u32), Message)>,
    pub(super) received: usize,
    pub(super) failed: bool,
    pub(super) waiting: bool,
    /// The task awaiting this call (an awaited `MapResult`, or an iterator's
    /// `next_async`), woken where a blocked reader is notified.
    waker: Option<Waker>,
    /// Run once every outcome (or an error) is in: `MapResult::with_callbacks`.
    on_ready: Option<ReadyHook>,
}

/// What runs when a map's outcomes are all in (on the thread that completes it).
pub(super) type ReadyHook = Box<dyn FnOnce() + Send>;

/// The collector behind map, imap and imap_unordered.
pub(crate) struct MapSink {
    state: Mutex<MapState>,
    pub(super) cond: Condvar,
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
                on_ready: None,
            }),
            cond: Condvar::new(),
            mode,
            cancelled: AtomicBool::new(false),
            total: AtomicUsize::new(total.unwrap_or(usize::MAX)),
            progress,
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, MapState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn total(&self) -> Option<usize> {
        match self.total.load(Ordering::Acquire) {
            usize::MAX => None,
            n => Some(n),
        }
    }

    pub(crate) fn set_total(&self, n: usize) {
        self.total.store(n, Ordering::Release);
        let (hook, waker) = {
            let mut s = self.lock();
            (self.ready_hook(&mut s), s.waker.take())
        };
        self.cond.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
        if let Some(hook) = hook {
            hook();
        }
    }

    /// Has `waker` woken where a blocked reader would be notified; the caller,
    /// holding the lock, found nothing to take.
    pub(super) fn register_waker(&self, s: &mut MapState, waker: &Waker) {
        match &s.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => s.waker = Some(waker.clone()),
        }
    }

    /// Every outcome, or a failure, is in.
    pub(super) fn is_ready(&self, s: &MapState) -> bool {
        s.failed || Some(s.received) == self.total()
    }

    /// The ready-hook, taken, once the map is ready: the caller runs it after
    /// unlocking.
    fn ready_hook(&self, s: &mut MapState) -> Option<ReadyHook> {
        if s.on_ready.is_some() && self.is_ready(s) {
            s.on_ready.take()
        } else {
            None
        }
    }

    /// Runs `hook` once the map is ready: now, on this thread, when it is.
    pub(super) fn on_ready(&self, hook: ReadyHook) {
        let ready = {
            let mut s = self.lock();
            s.on_ready = Some(hook);
            self.ready_hook(&mut s)
        };
        if let Some(hook) = ready {
            hook();
        }
    }

    /// Wakes the readers (after a ready-hook stored its outcome).
    pub(super) fn notify(&self) {
        let waker = self.lock().waker.take();
        self.cond.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }

    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// After outcomes were stored: unlocks, wakes the reader when `notify` (there
    /// is something for it), moves the progress bar on, and runs the ready-hook if
    /// the map is now ready.
    fn after_delivery(&self, mut s: MutexGuard<'_, MapState>, notify: bool) {
        let hook = self.ready_hook(&mut s);
        let wake = notify && s.waiting;
        let waker = if notify { s.waker.take() } else { None };
        drop(s);
        if wake {
            self.cond.notify_all();
        }
        if let Some(w) = waker {
            w.wake();
        }
        self.finish_progress();
        if let Some(hook) = hook {
            hook();
        }
    }

    /// Ends the progress bar once every task is counted.
    fn finish_progress(&self) {
        if let (Some(p), Some(t)) = (&self.progress, self.total()) {
            if p.position() as usize >= t {
                p.finish();
            }
        }
    }

    /// Sleeps until an outcome arrives or `deadline` passes; `None` (and no
    /// longer waiting) once it has passed.
    pub(super) fn wait<'s>(
        &'s self,
        mut s: MutexGuard<'s, MapState>,
        deadline: Option<Instant>,
    ) -> Option<MutexGuard<'s, MapState>> {
        s.waiting = true;
        match sleep_until(&self.cond, s, deadline) {
            Ok(s) => Some(s),
            Err(mut s) => {
                s.waiting = false;
                None
            }
        }
    }

    /// Takes the next outcome in this collector's order (`Mode::Ordered`: the next
    /// index, once it is in; `Mode::Unordered`: the first to arrive).
    pub(super) fn take_next(&self, s: &mut MapState) -> Option<Result<Message, TaskError>> {
        match self.mode {
            Mode::Unordered => s.arrived.pop_front(),
            Mode::All | Mode::Ordered => {
                if !matches!(s.slots.front(), Some(Some(_))) {
                    return None;
                }
                s.base += 1;
                s.slots.pop_front().flatten()
            }
        }
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
        self.after_delivery(s, notify);
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
        let ready = self.is_ready(&s);
        self.after_delivery(s, ready);
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
        let ready = Some(s.received) == self.total();
        self.after_delivery(s, ready);
    }
}

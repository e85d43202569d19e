//! What the pool's users and its dispatcher thread share: the backlog of queued
//! chunks, the stop request, the live workers' pids, and the pipe that wakes the
//! dispatcher.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::sys::socket;
use crate::task::TaskError;
use crate::task::call::Chunk;

/// How the pool is asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Finish everything queued, then stop the workers (`close` + `join`).
    Graceful,
    /// Kill the workers now; fail whatever is queued or running.
    Terminate(&'static str),
}

/// The pool's queued work and status, behind [`PoolState`]'s lock.
pub(crate) struct Backlog {
    pub(crate) pending: VecDeque<Chunk>,
    pub(crate) pending_items: usize,
    pub(crate) closed: bool,
    pub(crate) stop: Option<Stop>,
    pub(super) asleep: bool,
    pub(crate) finished: bool,
    pub(crate) pids: Vec<u32>,
    /// Tasks sent to workers and not yet resolved.
    pub(crate) in_flight: usize,
    pub(crate) replaced: u64,
}

/// The part of the pool shared between users' threads and the dispatcher.
pub(crate) struct PoolState {
    backlog: Mutex<Backlog>,
    pub(crate) cond: Condvar,
    pub(super) wake_r: OwnedFd,
    wake_w: OwnedFd,
    interrupts: AtomicU32,
}

impl PoolState {
    pub(crate) fn new() -> std::io::Result<Arc<PoolState>> {
        let (wake_r, wake_w) = socket::pipe()?;
        socket::set_nonblocking(wake_r.as_fd(), true)?;
        socket::set_nonblocking(wake_w.as_fd(), true)?;
        Ok(Arc::new(PoolState {
            backlog: Mutex::new(Backlog {
                pending: VecDeque::new(),
                pending_items: 0,
                closed: false,
                stop: None,
                asleep: false,
                finished: false,
                pids: Vec::new(),
                in_flight: 0,
                replaced: 0,
            }),
            cond: Condvar::new(),
            wake_r,
            wake_w,
            interrupts: AtomicU32::new(0),
        }))
    }

    /// Counts a Ctrl-C; returns how many this pool has seen.
    pub(crate) fn interrupt(&self) -> u32 {
        self.interrupts.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub(crate) fn interrupts(&self) -> u32 {
        self.interrupts.load(Ordering::SeqCst)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Backlog> {
        self.backlog.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the dispatcher if it sleeps. Call after changing the backlog.
    pub(crate) fn wake(&self, q: &mut Backlog) {
        if q.asleep {
            q.asleep = false;
            let _ = socket::write(self.wake_w.as_fd(), &[1]);
        }
    }

    /// Adds chunks; `false` (and nothing queued) when the pool is closed.
    pub(crate) fn push(&self, chunks: Vec<Chunk>) -> Result<(), Vec<Chunk>> {
        let mut q = self.lock();
        if q.closed || q.stop.is_some() {
            return Err(chunks);
        }
        for c in chunks {
            q.pending_items += c.len();
            q.pending.push_back(c);
        }
        self.wake(&mut q);
        Ok(())
    }

    /// Fails every queued task with `why` (they never started).
    pub(crate) fn cancel_pending(&self, why: &'static str) {
        let chunks: Vec<Chunk> = {
            let mut q = self.lock();
            q.pending_items = 0;
            q.pending.drain(..).collect()
        };
        for c in chunks {
            for item in c {
                item.call
                    .sink
                    .abandon(item.index, TaskError::cancelled(why, Some(item.index)));
            }
        }
    }

    pub(crate) fn request_stop(&self, stop: Stop) {
        let mut q = self.lock();
        q.closed = true;
        match (q.stop, stop) {
            (Some(Stop::Terminate(_)), _) => {}
            _ => q.stop = Some(stop),
        }
        q.asleep = true;
        self.wake(&mut q);
    }
}

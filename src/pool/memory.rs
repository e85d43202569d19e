//! A worker's check of its own memory after each task, for
//! [`Builder::max_memory_per_child`](crate::pool::Builder::max_memory_per_child).

use crate::sys::limits;

/// Whether this worker's resident memory has passed its limit.
pub(crate) struct Watch {
    limit: u64,
    /// The peak resident size says nothing here: the worker started above the
    /// limit (a `Fork` copy of a large parent), so the current size is read.
    current: bool,
}

impl Watch {
    /// Watches this process against `limit` bytes.
    pub(crate) fn new(limit: u64) -> Watch {
        Watch {
            limit,
            current: limits::peak_rss() > limit,
        }
    }

    /// Whether the worker passed the limit (during the task that just ran).
    pub(crate) fn passed(&self) -> bool {
        if self.current {
            limits::rss_of(crate::sys::process::getpid()).is_some_and(|rss| rss > self.limit)
        } else {
            limits::peak_rss() > self.limit
        }
    }
}

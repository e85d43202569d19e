//! Who sleeps on a thread queue's condition variables, and the signals sent to
//! them: the bookkeeping both queue cores ([`locked`](super::locked) and
//! [`staged`](super::staged)) keep under their main lock.
//!
//! A put (get) signals a sleeping getter (putter) only while more of them sleep
//! than were signalled and have not woken yet, so a burst of puts wakes each
//! sleeper once instead of calling `notify_one` on every put.

/// One kind of sleeper.
#[derive(Clone, Copy)]
pub(super) enum Sleeper {
    Getter,
    Putter,
    Joiner,
}

/// The sleepers of one queue and the signals pending for them.
#[derive(Default)]
pub(super) struct Sleepers {
    pub(super) getters: usize,
    pub(super) putters: usize,
    pub(super) joiners: usize,
    /// Signals sent to sleeping getters (putters) that no getter (putter) has
    /// woken up for yet; never more than `getters` (`putters`).
    getters_signalled: usize,
    putters_signalled: usize,
}

impl Sleepers {
    /// Whether a sleeping getter needs a signal (one that no earlier signal
    /// already covers); if so, counts the signal the caller sends.
    #[inline]
    pub(super) fn signal_getter(&mut self) -> bool {
        signal(self.getters, &mut self.getters_signalled)
    }

    /// As [`signal_getter`](Self::signal_getter), for putters.
    #[inline]
    pub(super) fn signal_putter(&mut self) -> bool {
        signal(self.putters, &mut self.putters_signalled)
    }

    /// Getters asleep that no pending signal covers.
    #[inline]
    pub(super) fn getters_unsignalled(&self) -> usize {
        self.getters - self.getters_signalled
    }

    /// Counts every sleeper as signalled (a shutdown wakes them all); the numbers
    /// of getters, putters and joiners asleep.
    pub(super) fn signal_all(&mut self) -> (usize, usize, usize) {
        self.getters_signalled = self.getters;
        self.putters_signalled = self.putters;
        (self.getters, self.putters, self.joiners)
    }

    fn count(&mut self, who: Sleeper) -> (&mut usize, Option<&mut usize>) {
        match who {
            Sleeper::Getter => (&mut self.getters, Some(&mut self.getters_signalled)),
            Sleeper::Putter => (&mut self.putters, Some(&mut self.putters_signalled)),
            Sleeper::Joiner => (&mut self.joiners, None),
        }
    }

    /// One more `who` about to sleep.
    #[inline]
    pub(super) fn enter(&mut self, who: Sleeper) {
        *self.count(who).0 += 1;
    }

    /// A `who` that entered leaves without having slept.
    #[inline]
    pub(super) fn cancel(&mut self, who: Sleeper) {
        *self.count(who).0 -= 1;
    }

    /// A `who` woke: one fewer, and one signal fewer pending (this waiter may have
    /// been woken by one; if it was not, e.g. a time-out or a spurious wake-up,
    /// the next op sends a new signal, as the pending ones are never more than the
    /// sleepers).
    pub(super) fn leave(&mut self, who: Sleeper) {
        let (waiting, signalled) = self.count(who);
        *waiting -= 1;
        if let Some(signalled) = signalled {
            *signalled = signalled.saturating_sub(1).min(*waiting);
        }
    }
}

#[inline]
fn signal(asleep: usize, signalled: &mut usize) -> bool {
    if asleep > *signalled {
        *signalled += 1;
        true
    } else {
        false
    }
}

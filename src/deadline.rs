//! Timeouts turned into deadlines, the one way the whole crate does it.
//!
//! `Instant::now() + timeout` panics when the sum is not representable, and
//! `Duration::MAX` is the natural Rust spelling of "a timeout so long it never
//! ends". Every `*_timeout` method turns its timeout into a deadline with
//! [`after`], where such a timeout means no deadline at all.

use std::time::{Duration, Instant};

/// The deadline `timeout` from now, or `None` (wait forever) when that instant is
/// not representable, as for `Duration::MAX`.
#[inline]
pub(crate) fn after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_timeout_is_no_deadline() {
        assert_eq!(after(Duration::MAX), None);
        assert!(after(Duration::from_secs(1)).is_some());
    }
}

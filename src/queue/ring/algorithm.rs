//! The protocol itself (see the module docs): record geometry, the commit of a put,
//! the lock-free take with its claim and helping, and the repair of a producer's
//! death. Everything here works on the shared words only; waiting, the producer
//! lock and encoding live beside it.

use std::sync::atomic::{AtomicU64, Ordering};

use super::layout::*;
use super::{Ring, SharedRegion, fault};
use crate::queue::error::MessageError;

/// Bytes at the new tail that a put prefetches for the next one (two cache lines).
const PREFETCH: u64 = 128;

pub(super) fn align8(n: u64) -> u64 {
    (n + 7) & !7
}

pub(super) fn rec_size(n: u64) -> u64 {
    HDR + align8(n)
}

impl Ring {
    #[inline]
    pub(super) fn phys(&self, pos: u64) -> usize {
        (pos & self.mask) as usize
    }

    #[inline]
    pub(super) fn stamp(&self, pos: u64) -> &AtomicU64 {
        self.u64(RING_OFF + self.phys(pos))
    }

    #[inline]
    pub(super) fn len_word(&self, pos: u64) -> &AtomicU64 {
        self.u64(RING_OFF + self.phys(pos) + 8)
    }

    /// The start of the lap after the one `pos` is in (`pos` itself at a lap start).
    #[inline]
    pub(super) fn next_lap(&self, pos: u64) -> u64 {
        let ph = pos & self.mask;
        if ph == 0 { pos } else { pos + (self.size - ph) }
    }

    /// Bytes a record placed at `p` may occupy, given consumers at `h`: it may not
    /// cross the ring's end and must leave 8 free bytes after it.
    #[inline]
    pub(super) fn room(&self, p: u64, h: u64) -> u64 {
        let to_end = self.size - (p & self.mask);
        let free = (h + self.size).saturating_sub(p).saturating_sub(8);
        to_end.min(free)
    }

    /// Whether a record of `n` payload bytes fits at `p`.
    #[inline]
    pub(super) fn fits(&self, p: u64, h: u64, n: u64) -> bool {
        rec_size(n) <= self.room(p, h)
    }

    /// The most payload bytes a record at `p` may hold (`None`: not even a header).
    #[inline]
    pub(super) fn window(&self, p: u64, h: u64) -> Option<u64> {
        let room = self.room(p, h);
        (room >= HDR).then(|| (room - HDR).min(self.max_message as u64))
    }

    /// Finishes a put whose producer died after its commit point (see the module
    /// docs). Called with the producer lock held.
    pub(super) fn repair_producer(&self) {
        for _ in 0..4 {
            let t = self.region.hdr_u64::<P_TAIL>().load(Ordering::Relaxed);
            let c = self.region.hdr_u64::<P_COUNT>().load(Ordering::Relaxed);
            if t % 8 != 0 {
                return;
            }
            let st = self.stamp(t).load(Ordering::Acquire);
            if st == 0 {
                return;
            }
            let num = st & !PAD;
            if num == c.wrapping_add(1) {
                self.region
                    .hdr_u64::<P_COUNT>()
                    .store(num, Ordering::Release);
                continue;
            }
            if num != c || c == 0 {
                return; // not a state the protocol produces; leave it alone
            }
            let p = if st & PAD != 0 { self.next_lap(t) } else { t };
            if p != t && self.stamp(p).load(Ordering::Acquire) != c {
                return;
            }
            let n = self.len_word(p).load(Ordering::Relaxed);
            if n > self.max_message as u64 || self.phys(p) as u64 + rec_size(n) > self.size {
                return;
            }
            self.region
                .hdr_u64::<P_TAIL>()
                .store(p + rec_size(n), Ordering::Release);
        }
    }

    #[inline]
    pub(super) fn commit(&self, t: u64, c: u64, p: u64, n: u64) {
        fault::step(2);
        let nt = p + rec_size(n);
        self.stamp(nt).store(0, Ordering::Relaxed);
        fault::step(3);
        self.len_word(p).store(n, Ordering::Relaxed);
        fault::step(4);
        self.stamp(p).store(c + 1, Ordering::Release);
        fault::step(5);
        if p != t {
            self.stamp(t).store((c + 1) | PAD, Ordering::Release);
        }
        fault::step(6);
        let count = self.region.hdr_u64::<P_COUNT>();
        if self.asymmetric {
            // A plain store: a waiter's `membarrier` stands in for our fence (see
            // *Waiting*), so the records' stores drain in the background.
            count.store(c + 1, Ordering::Release);
        } else {
            // `SeqCst` RMW: lets `wake` skip its fence (see there).
            count.swap(c + 1, Ordering::SeqCst);
        }
        fault::step(7);
        self.region.hdr_u64::<P_TAIL>().store(nt, Ordering::Release);
        fault::step(8);
        // The next put writes there: fetch its lines now, in the background, rather
        // than stall on them then (a consumer has read them since they were last
        // written, so they must come back from its CPU).
        self.region.prefetch_for_write(
            RING_OFF + self.phys(nt),
            PREFETCH.min(self.size - (nt & self.mask)) as usize,
        );
    }

    /// One lock-free get attempt: `read(region, offset, len)` copies the payload out
    /// (optimistically, see the module docs), then the item is claimed with one CAS
    /// on the get count. The record is consumed whether `read` succeeds or not (a
    /// payload that cannot be read as the expected type is reported, not retried).
    pub(super) fn take<X>(
        &self,
        read: &mut impl FnMut(&SharedRegion, usize, usize) -> Result<X, MessageError>,
    ) -> Result<Option<X>, MessageError> {
        let count = self.region.hdr_u64::<C_COUNT>();
        let head = self.region.hdr_u64::<C_HEAD>();
        // Whether the snapshot `(g, h)` still holds: a bad value read from it is then
        // real damage, not a race with another consumer.
        let unchanged =
            |g: u64, h: u64| count.load(Ordering::SeqCst) == g && head.load(Ordering::SeqCst) == h;
        loop {
            let g = count.load(Ordering::Acquire);
            let h = head.load(Ordering::Acquire);
            if h % 8 != 0 {
                if unchanged(g, h) {
                    return Err(MessageError::corrupt("queue head is misaligned"));
                }
                continue;
            }
            let st = self.stamp(h).load(Ordering::Acquire);
            if st == g.wrapping_add(1) {
                let n = self.len_word(h).load(Ordering::Acquire);
                if n > self.max_message as u64 || self.phys(h) as u64 + rec_size(n) > self.size {
                    if unchanged(g, h) {
                        return Err(MessageError::corrupt(format!(
                            "record {st} claims {n} bytes at offset {}",
                            self.phys(h)
                        )));
                    }
                    continue;
                }
                fault::step(11);
                let x = read(
                    &self.region,
                    RING_OFF + self.phys(h) + HDR as usize,
                    n as usize,
                );
                fault::step(12);
                if count
                    .compare_exchange(g, g + 1, Ordering::SeqCst, Ordering::Relaxed)
                    .is_err()
                {
                    // Another consumer took message `g + 1`; what we copied may be
                    // anything. Drop it and look again.
                    continue;
                }
                fault::step(13);
                let _ =
                    head.compare_exchange(h, h + rec_size(n), Ordering::SeqCst, Ordering::Relaxed);
                fault::step(14);
                return x.map(Some);
            }
            if st == g && g != 0 {
                // Message `g` was taken but `head` not moved past it yet (its taker is
                // between its two CASes, or died there): help.
                let n = self.len_word(h).load(Ordering::Acquire);
                if n <= self.max_message as u64 && self.phys(h) as u64 + rec_size(n) <= self.size {
                    let _ = head.compare_exchange(
                        h,
                        h + rec_size(n),
                        Ordering::SeqCst,
                        Ordering::Relaxed,
                    );
                } else if unchanged(g, h) {
                    return Err(MessageError::corrupt(format!(
                        "record {st} claims {n} bytes at offset {}",
                        self.phys(h)
                    )));
                }
                continue;
            }
            if st == g.wrapping_add(1) | PAD && h & self.mask != 0 {
                fault::step(15);
                let _ =
                    head.compare_exchange(h, self.next_lap(h), Ordering::SeqCst, Ordering::Relaxed);
                fault::step(16);
                continue;
            }
            if !unchanged(g, h) {
                continue;
            }
            return Ok(None);
        }
    }

    /// Moves `head` past a record that was taken (the get count says so) but not
    /// yet passed: its consumer is between its two CASes, or died there. Any
    /// process may do this at any time; producers do it before they wait for room.
    pub(super) fn help_head(&self) {
        let g = self.region.hdr_u64::<C_COUNT>().load(Ordering::Acquire);
        let h = self.region.hdr_u64::<C_HEAD>().load(Ordering::Acquire);
        if g == 0 || h % 8 != 0 || self.stamp(h).load(Ordering::Acquire) != g {
            return;
        }
        let n = self.len_word(h).load(Ordering::Acquire);
        if n <= self.max_message as u64 && self.phys(h) as u64 + rec_size(n) <= self.size {
            let _ = self.region.hdr_u64::<C_HEAD>().compare_exchange(
                h,
                h + rec_size(n),
                Ordering::SeqCst,
                Ordering::Relaxed,
            );
        }
    }
}

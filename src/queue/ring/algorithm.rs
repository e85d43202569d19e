//! The protocol itself (see the module docs): record geometry, the commit of a put,
//! the lock-free take with its claim and helping, the producer lock's compare-and-
//! swap, and the repair of a producer's death. Everything here works on the shared
//! words only; waiting, the lock's liveness checks and encoding live beside it.
//!
//! The algorithm is written once, as the provided methods of [`Protocol`], over the
//! words a [`Protocol`] hands out: in a program those are the `AtomicU64`s of a
//! [`Ring`]'s shared memory (each accessor inlines to the one field or offset it
//! was before, so the compiled put and get are unchanged); under `--cfg loom` they
//! are loom atomics, and the models in `loom_ring.rs` run this very code with
//! threads standing in for processes.

use std::sync::atomic::{AtomicU64, Ordering};

use super::layout::*;
use super::{Ring, fault};
use crate::queue::error::MessageError;
use crate::word::AtomicWord;

pub(super) fn align8(n: u64) -> u64 {
    (n + 7) & !7
}

pub(super) fn rec_size(n: u64) -> u64 {
    HDR + align8(n)
}

/// One ring's shared words and geometry; the provided methods are the protocol.
pub(super) trait Protocol {
    type Word: AtomicWord;

    /// The ring's size in bytes (a power of two).
    fn size(&self) -> u64;
    /// `size - 1`.
    fn mask(&self) -> u64;
    /// The largest payload a record may claim.
    fn max_message(&self) -> u64;
    /// Whether producers count a put with a plain store (see *Waiting*).
    fn asymmetric(&self) -> bool;
    /// The producer lock (`P_LOCK`).
    fn lock_word(&self) -> &Self::Word;
    /// `tail` (`P_TAIL`).
    fn tail(&self) -> &Self::Word;
    /// `put_count` (`P_COUNT`).
    fn put_count(&self) -> &Self::Word;
    /// `head` (`C_HEAD`).
    fn head(&self) -> &Self::Word;
    /// `get_count` (`C_COUNT`).
    fn get_count(&self) -> &Self::Word;
    /// The word at byte `phys` (8-aligned, below `size`) of the ring.
    fn ring_word(&self, phys: usize) -> &Self::Word;
    /// A fault-injection point: protocol step `n` (nothing in a normal build).
    fn step(&self, n: u32);
    /// Called when this consumer lost a claim to another one, before it looks again
    /// (see [`Ring::yield_to_other_kind`]).
    fn lost_claim(&self);

    /// Releases the producer lock. With the `membarrier` protocol the release is a
    /// plain store, so a put ends without a locked instruction (which would wait
    /// for the record's stores to drain); lock waiters pay with the barrier instead.
    #[inline]
    fn release(&self) {
        let word = self.lock_word();
        if self.asymmetric() {
            word.store(0, Ordering::Release);
        } else {
            word.swap(0, Ordering::SeqCst);
        }
    }

    /// Takes the producer lock from `from` (0: free; else a holder proven dead)
    /// for `me`: one CAS.
    #[inline]
    fn acquire(&self, from: u64, me: u64) -> bool {
        self.lock_word()
            .compare_exchange(from, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    #[inline(always)]
    fn phys(&self, pos: u64) -> usize {
        (pos & self.mask()) as usize
    }

    #[inline(always)]
    fn stamp(&self, pos: u64) -> &Self::Word {
        self.ring_word(self.phys(pos))
    }

    #[inline(always)]
    fn len_word(&self, pos: u64) -> &Self::Word {
        self.ring_word(self.phys(pos) + 8)
    }

    /// The start of the lap after the one `pos` is in (`pos` itself at a lap start).
    #[inline(always)]
    fn next_lap(&self, pos: u64) -> u64 {
        let ph = pos & self.mask();
        if ph == 0 {
            pos
        } else {
            pos + (self.size() - ph)
        }
    }

    /// Bytes a record placed at `p` may occupy, given consumers at `h`: it may not
    /// cross the ring's end and must leave 8 free bytes after it.
    #[inline(always)]
    fn room(&self, p: u64, h: u64) -> u64 {
        let to_end = self.size() - (p & self.mask());
        let free = (h + self.size()).saturating_sub(p).saturating_sub(8);
        to_end.min(free)
    }

    /// Whether a record of `n` payload bytes fits at `p`.
    #[inline(always)]
    fn fits(&self, p: u64, h: u64, n: u64) -> bool {
        rec_size(n) <= self.room(p, h)
    }

    /// The most payload bytes a record at `p` may hold (`None`: not even a header).
    #[inline(always)]
    fn window(&self, p: u64, h: u64) -> Option<u64> {
        let room = self.room(p, h);
        (room >= HDR).then(|| (room - HDR).min(self.max_message()))
    }

    /// Finishes a put whose producer died after its commit point (see the module
    /// docs). Called with the producer lock held.
    fn repair_producer(&self) {
        for _ in 0..4 {
            let t = self.tail().load(Ordering::Relaxed);
            let c = self.put_count().load(Ordering::Relaxed);
            if t % 8 != 0 {
                return;
            }
            let st = self.stamp(t).load(Ordering::Acquire);
            if st == 0 {
                return;
            }
            let num = st & !PAD;
            if num == c.wrapping_add(1) {
                self.put_count().store(num, Ordering::Release);
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
            if n > self.max_message() || self.phys(p) as u64 + rec_size(n) > self.size() {
                return;
            }
            self.tail().store(p + rec_size(n), Ordering::Release);
        }
    }

    /// Steps 2–8 of a put (see the module docs) for a record of `n` payload bytes
    /// already written at `p`, with the tail at `t` and `c` messages put so far.
    /// Called with the producer lock held.
    #[inline(always)]
    fn commit_record(&self, t: u64, c: u64, p: u64, n: u64) {
        self.step(2);
        let nt = p + rec_size(n);
        self.stamp(nt).store(0, Ordering::Relaxed);
        self.step(3);
        self.len_word(p).store(n, Ordering::Relaxed);
        self.step(4);
        self.stamp(p).store(c + 1, Ordering::Release);
        self.step(5);
        if p != t {
            self.stamp(t).store((c + 1) | PAD, Ordering::Release);
        }
        self.step(6);
        let count = self.put_count();
        if self.asymmetric() {
            // A plain store: a waiter's `membarrier` stands in for our fence (see
            // *Waiting*), so the records' stores drain in the background.
            count.store(c + 1, Ordering::Release);
        } else {
            // `SeqCst` RMW: lets `wake` skip its fence (see there).
            count.swap(c + 1, Ordering::SeqCst);
        }
        self.step(7);
        self.tail().store(nt, Ordering::Release);
        self.step(8);
    }

    /// One lock-free get attempt: `read(offset, len)` copies the payload at that
    /// offset into the ring out
    /// (optimistically, see the module docs), then the item is claimed with one CAS
    /// on the get count. The record is consumed whether `read` succeeds or not (a
    /// payload that cannot be read as the expected type is reported, not retried).
    fn take_record<X>(
        &self,
        read: &mut impl FnMut(usize, usize) -> Result<X, MessageError>,
    ) -> Result<Option<X>, MessageError> {
        let count = self.get_count();
        let head = self.head();
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
                if n > self.max_message() || self.phys(h) as u64 + rec_size(n) > self.size() {
                    if unchanged(g, h) {
                        return Err(MessageError::corrupt(format!(
                            "record {st} claims {n} bytes at offset {}",
                            self.phys(h)
                        )));
                    }
                    continue;
                }
                self.step(11);
                let x = read(self.phys(h) + HDR as usize, n as usize);
                self.step(12);
                if count
                    .compare_exchange(g, g + 1, Ordering::SeqCst, Ordering::Relaxed)
                    .is_err()
                {
                    // Another consumer took message `g + 1`; what we copied may be
                    // anything. Drop it and look again.
                    self.lost_claim();
                    continue;
                }
                self.step(13);
                let _ =
                    head.compare_exchange(h, h + rec_size(n), Ordering::SeqCst, Ordering::Relaxed);
                self.step(14);
                return x.map(Some);
            }
            if st == g && g != 0 {
                // Message `g` was taken but `head` not moved past it yet (its taker is
                // between its two CASes, or died there): help.
                let n = self.len_word(h).load(Ordering::Acquire);
                if n <= self.max_message() && self.phys(h) as u64 + rec_size(n) <= self.size() {
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
            if st == g.wrapping_add(1) | PAD && h & self.mask() != 0 {
                self.step(15);
                let _ =
                    head.compare_exchange(h, self.next_lap(h), Ordering::SeqCst, Ordering::Relaxed);
                self.step(16);
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
    fn help_head(&self) {
        let g = self.get_count().load(Ordering::Acquire);
        let h = self.head().load(Ordering::Acquire);
        if g == 0 || h % 8 != 0 || self.stamp(h).load(Ordering::Acquire) != g {
            return;
        }
        let n = self.len_word(h).load(Ordering::Acquire);
        if n <= self.max_message() && self.phys(h) as u64 + rec_size(n) <= self.size() {
            let _ = self.head().compare_exchange(
                h,
                h + rec_size(n),
                Ordering::SeqCst,
                Ordering::Relaxed,
            );
        }
    }
}

impl Protocol for Ring {
    type Word = AtomicU64;

    #[inline(always)]
    fn size(&self) -> u64 {
        self.size
    }
    #[inline(always)]
    fn mask(&self) -> u64 {
        self.mask
    }
    #[inline(always)]
    fn max_message(&self) -> u64 {
        self.max_message as u64
    }
    #[inline(always)]
    fn asymmetric(&self) -> bool {
        self.asymmetric
    }
    #[inline(always)]
    fn lock_word(&self) -> &AtomicU64 {
        self.region.hdr_u64::<P_LOCK>()
    }
    #[inline(always)]
    fn tail(&self) -> &AtomicU64 {
        self.region.hdr_u64::<P_TAIL>()
    }
    #[inline(always)]
    fn put_count(&self) -> &AtomicU64 {
        self.region.hdr_u64::<P_COUNT>()
    }
    #[inline(always)]
    fn head(&self) -> &AtomicU64 {
        self.region.hdr_u64::<C_HEAD>()
    }
    #[inline(always)]
    fn get_count(&self) -> &AtomicU64 {
        self.region.hdr_u64::<C_COUNT>()
    }
    #[inline(always)]
    fn ring_word(&self, phys: usize) -> &AtomicU64 {
        self.u64(RING_OFF + phys)
    }
    #[inline(always)]
    fn step(&self, n: u32) {
        fault::step(n);
    }
    #[inline]
    fn lost_claim(&self) {
        self.yield_to_other_kind();
    }
}

//! Getting: the blocking and non-blocking get around the lock-free take, and the
//! consumer's spin that trails the producers by a batch.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::algorithm::{Protocol, rec_size};
use super::layout::*;
use super::record::{read_byte_vec, read_varint};
use super::wait::Wait;
use super::{GetFail, Ring, SharedRegion, fault};
use crate::queue::error::MessageError;

/// Items a spinning consumer waits for once some have arrived (see `get`).
const BATCH: u64 = 16;
/// Looks at a non-empty queue after which a spinning consumer stops waiting for a
/// batch.
const BATCH_LOOKS: u32 = 6;
/// Or this many bytes.
const BATCH_BYTES: u64 = 2048;
/// How long a consumer waiting for a batch leaves the put count alone between two
/// looks (timed on the clock: a `pause` lasts 38 ns on one CPU and a few on
/// another). Measured in `scaling_queue` (64-byte items, 2 CPUs whose caches are far
/// apart): the looks of the plain back-off, from 80 ns apart, took the count's line
/// from the producer often enough to cost it 8-11% of its puts.
const BATCH_GAP: Duration = Duration::from_micros(1);

impl Ring {
    /// One lock-free get attempt ([`Protocol::take_record`]): `read(region,
    /// offset, len)` copies the payload out before the claim.
    pub(super) fn take<X>(
        &self,
        read: &mut impl FnMut(&SharedRegion, usize, usize) -> Result<X, MessageError>,
    ) -> Result<Option<X>, MessageError> {
        self.take_record(&mut |off, n| read(&self.region, RING_OFF + off, n))
    }

    /// Takes the next byte item ([`read_byte_vec`]'s item): the fast path
    /// ([`take_bytes_now`](Self::take_bytes_now)), else the general
    /// [`get`](Self::get).
    #[inline]
    pub(crate) fn get_byte_vec(
        &self,
        block: bool,
        deadline: Option<Instant>,
    ) -> Result<Vec<u8>, GetFail> {
        if let Some(v) = self.take_bytes_now() {
            self.wake(Wait::Space, true, false);
            return Ok(v);
        }
        self.get(block, deadline, read_byte_vec, Ok)
    }

    /// The common case of a byte item's get, kept lean as the put's fast path is
    /// (see *Performance* in the module docs): one attempt of
    /// [`take_record`](Protocol::take_record) when the next record is there, whole,
    /// and a byte vector, with the same steps, loads and claim in the same order.
    /// Returns `None`, having taken nothing, in every other case (empty, a claim
    /// lost to another consumer, a record taken whose `head` is not moved yet, a
    /// lap's padding, anything damaged or not a byte vector), which the general path
    /// then handles, reporting what it must.
    #[inline(never)]
    fn take_bytes_now(&self) -> Option<Vec<u8>> {
        let count = self.get_count();
        let head = self.head();
        let g = count.load(Ordering::Acquire);
        let h = head.load(Ordering::Acquire);
        if h % 8 != 0 || self.stamp(h).load(Ordering::Acquire) != g.wrapping_add(1) {
            return None;
        }
        let n = self.len_word(h).load(Ordering::Acquire);
        if n == 0 || n > self.max_message as u64 || self.phys(h) as u64 + rec_size(n) > self.size {
            return None;
        }
        fault::step(11);
        // The length prefix from one word: a record's payload is 8-aligned, and one
        // of `n >= 1` bytes is padded to at least 8.
        let off = RING_OFF + self.phys(h) + HDR as usize;
        let word = self.u64(off).load(Ordering::Relaxed).to_le_bytes();
        let (len, k) = read_varint(&word[..(n as usize).min(8)])?;
        if len + k as u64 != n {
            return None;
        }
        let mut v = Vec::with_capacity(len as usize);
        self.region.read_append(off + k, len as usize, &mut v);
        fault::step(12);
        if count
            .compare_exchange(g, g + 1, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            self.yield_to_other_kind();
            return None;
        }
        fault::step(13);
        let _ = head.compare_exchange(h, h + rec_size(n), Ordering::SeqCst, Ordering::Relaxed);
        fault::step(14);
        Some(v)
    }

    /// Whether a get would find a message now (lock-free estimate).
    pub(super) fn has_data(&self) -> bool {
        let g = self.region.hdr_u64::<C_COUNT>().load(Ordering::Acquire);
        let p = self.region.hdr_u64::<P_COUNT>().load(Ordering::Acquire);
        if p > g {
            return true;
        }
        // A producer that died after its commit point has not counted its message.
        let h = self.region.hdr_u64::<C_HEAD>().load(Ordering::Acquire);
        if h % 8 != 0 {
            return true; // let the locked path report it
        }
        let st = self.stamp(h).load(Ordering::Acquire) & !PAD;
        st != 0
            && st
                == self
                    .region
                    .hdr_u64::<C_COUNT>()
                    .load(Ordering::Acquire)
                    .wrapping_add(1)
    }

    /// Takes the next message: `read` copies it out before it is claimed, then
    /// `finish` turns that into the item. Waits until `deadline` when
    /// `block`.
    pub(crate) fn get<X, R>(
        &self,
        block: bool,
        deadline: Option<Instant>,
        mut read: impl FnMut(&SharedRegion, usize, usize) -> Result<X, MessageError>,
        finish: impl FnOnce(X) -> Result<R, MessageError>,
    ) -> Result<R, GetFail> {
        loop {
            match self.take(&mut read) {
                Ok(Some(x)) => {
                    self.wake(Wait::Space, true, false);
                    return finish(x).map_err(GetFail::Invalid);
                }
                Ok(None) => {}
                Err(e) => {
                    self.wake(Wait::Space, true, false);
                    return Err(GetFail::Invalid(e));
                }
            }
            if self.is_closed() {
                // Everything put before `close` is visible now; one more look.
                return match self.take(&mut read) {
                    Ok(Some(x)) => {
                        self.wake(Wait::Space, true, false);
                        finish(x).map_err(GetFail::Invalid)
                    }
                    Ok(None) => Err(self.refused_get()),
                    Err(e) => Err(GetFail::Invalid(e)),
                };
            }
            if !block {
                return Err(GetFail::Empty);
            }
            // Spin on the put count, not on the next record: that record's lines are
            // what the producer is writing, and each look would pull them away from
            // it mid-write. (A message whose producer died before counting it is
            // found by `ready`, after the spin.)
            //
            // Once items arrive, wait for a batch (`BATCH` items or `BATCH_BYTES`, or until the
            // producers pause for one look, or `BATCH_LOOKS` looks `BATCH_GAP` apart) instead of
            // pouncing on the first one: a consumer that takes each item as soon as
            // it is counted fetches every record's lines the moment they are written,
            // one cache miss after the other, and pulls the count's line away from the
            // producer at every put; one that trails by a batch reads records that
            // are already complete, in sequence (prefetched), and lets the producers
            // write without interference.
            let batch = self.capacity.min(BATCH);
            let seen = Cell::new((0u64, 0u32));
            let spin = || {
                let p = self.region.hdr_u64::<P_COUNT>().load(Ordering::Acquire);
                let g = self.region.hdr_u64::<C_COUNT>().load(Ordering::Acquire);
                if self.is_closed() {
                    return true;
                }
                if p <= g {
                    return false;
                }
                let (prev, looks) = seen.get();
                seen.set((p, looks + 1));
                // (Large items: a batch of bytes, so the first is still in cache.)
                let bytes = self
                    .region
                    .hdr_u64::<P_TAIL>()
                    .load(Ordering::Relaxed)
                    .wrapping_sub(self.region.hdr_u64::<C_HEAD>().load(Ordering::Relaxed));
                let done =
                    p - g >= batch || bytes >= BATCH_BYTES || p == prev || looks >= BATCH_LOOKS;
                if !done {
                    // Items are coming: leave the producers' line alone for a while
                    // (every look takes it from them, and their next put waits for it).
                    let until = Instant::now() + BATCH_GAP;
                    while Instant::now() < until {
                        std::hint::spin_loop();
                    }
                }
                done
            };
            let ready = || self.has_data() || self.is_closed();
            if !self.wait(Wait::Data, deadline, spin, ready) {
                return Err(GetFail::Timeout);
            }
        }
    }
}

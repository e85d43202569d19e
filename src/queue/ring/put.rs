//! Putting: placing a record (at the tail or, past `wrap_at`, at the next lap),
//! encoding the item straight into the ring, and waiting for room.

use std::cell::Cell;
use std::io;
use std::sync::atomic::Ordering;
use std::time::Instant;

use postcard::ser_flavors::Flavor;
use serde::Serialize;

use super::algorithm::{Protocol, rec_size};
use super::layout::*;
use super::lock::Guard;
use super::record::{Encoded, Item, RingWriter, STAGE, write_varint};
use super::wait::Wait;
use super::{PutFail, Ring, fault};
use crate::queue::error::MessageError;
use crate::sys::thread_mark;

/// Bytes at the new tail that a put prefetches for the next one (two cache lines).
const PREFETCH: u64 = 128;
/// A byte length as postcard's varint, packed little-endian into one word, and its
/// length in bytes; `None` for lengths of 2^56 or more (over 8 bytes).
#[inline(always)]
fn varint_word(mut v: u64) -> Option<(u64, usize)> {
    let mut word = 0u64;
    let mut k = 0;
    loop {
        if k == 8 {
            return None;
        }
        let b = v & 0x7f;
        v >>= 7;
        if v == 0 {
            return Some((word | b << (8 * k), k + 1));
        }
        word |= (b | 0x80) << (8 * k);
        k += 1;
    }
}

impl Ring {
    /// Commits a record ([`Protocol::commit_record`]), then prefetches the lines
    /// the next put will write.
    #[inline(always)]
    pub(super) fn commit(&self, t: u64, c: u64, p: u64, n: u64) {
        self.commit_record(t, c, p, n);
        let nt = p + rec_size(n);
        // The next put writes there: fetch its lines now, in the background, rather
        // than stall on them then (a consumer has read them since they were last
        // written, so they must come back from its CPU).
        self.region.prefetch_for_write(
            RING_OFF + self.phys(nt),
            PREFETCH.min(self.size - (nt & self.mask)) as usize,
        );
    }

    pub(super) fn encode_at<T: Serialize + ?Sized>(
        &self,
        item: Item<'_, T>,
        p: u64,
        limit: u64,
    ) -> Result<Encoded, MessageError> {
        let overflow = Cell::new(false);
        let mut writer = RingWriter {
            region: &self.region,
            off: RING_OFF + self.phys(p) + HDR as usize,
            written: 0,
            limit: limit as usize,
            overflow: &overflow,
            staged: 0,
            stage: [0; STAGE],
        };
        let r = match item {
            Item::Value(v) => crate::codec::encode_plain_into(v, writer).map_err(|e| e.to_string()),
            Item::Bytes(b) => {
                let mut varint = [0u8; 10];
                let k = write_varint(b.len() as u64, &mut varint);
                writer
                    .try_extend(&varint[..k])
                    .and_then(|()| writer.try_extend(b))
                    .and_then(|()| writer.finalize())
                    .map_err(|e| e.to_string())
            }
        };
        match r {
            Ok(n) => Ok(Encoded::Done(n as u64)),
            Err(_) if overflow.get() => Ok(Encoded::Overflow),
            Err(e) => Err(MessageError::encode(e)),
        }
    }

    pub(super) fn encoded_size<T: Serialize + ?Sized>(
        &self,
        item: Item<'_, T>,
    ) -> Result<u64, MessageError> {
        match item {
            Item::Value(v) => {
                crate::codec::encode_plain_into(v, postcard::ser_flavors::Size::default())
                    .map(|n| n as u64)
                    .map_err(MessageError::encode)
            }
            Item::Bytes(b) => Ok((write_varint(b.len() as u64, &mut [0; 10]) + b.len()) as u64),
        }
    }
    /// One put attempt under the producer lock. On `Full`, `need` is set to the
    /// record's size once it is known.
    pub(super) fn put_locked<T: Serialize + ?Sized>(
        &self,
        value: Item<'_, T>,
        need: &mut u64,
    ) -> Result<(), PutFail> {
        fault::step(1);
        // The commit stores the counts, whose line the waiting consumers keep
        // reading: fetch it back now, while the record is written.
        self.region.prefetch_for_write(P_TAIL, 16);
        if self.is_closed() {
            return Err(self.refused_put());
        }
        let t = self.region.hdr_u64::<P_TAIL>().load(Ordering::Relaxed);
        let c = self.region.hdr_u64::<P_COUNT>().load(Ordering::Relaxed);
        if t % 8 != 0 {
            return Err(PutFail::Invalid(MessageError::corrupt(
                "queue tail is misaligned",
            )));
        }
        if self.capacity != u64::MAX {
            let seen = self.region.hdr_u64::<P_SEEN_GOT>();
            if c.wrapping_sub(seen.load(Ordering::Relaxed)) >= self.capacity {
                let g = self.region.hdr_u64::<C_COUNT>().load(Ordering::Acquire);
                seen.store(g, Ordering::Relaxed);
                if c.saturating_sub(g) >= self.capacity {
                    return Err(PutFail::Full);
                }
            }
        }
        let seen_head = self.region.hdr_u64::<P_SEEN_HEAD>();
        let mut h = seen_head.load(Ordering::Relaxed);
        let q = self.next_lap(t);
        // Past `wrap_at`, go back to the start of the ring as soon as the consumers
        // have left enough of it free; look at the real head for that now and then
        // (every 4 KiB of progress), not on every put.
        let past = q != t && (t & self.mask) >= self.wrap_at;
        let wants_wrap = |h: u64| self.wants_wrap(t, q, h);
        let mark = self.region.hdr_u64::<P_WRAP_MARK>();
        let look = past && !wants_wrap(h) && t >= mark.load(Ordering::Relaxed);
        if h > t || t - h > self.size || look {
            h = self.region.hdr_u64::<C_HEAD>().load(Ordering::Acquire);
            seen_head.store(h, Ordering::Relaxed);
            if look {
                mark.store(t + 4096, Ordering::Relaxed);
            }
        }
        // A fresh look at the consumers' head when a record does not fit where it
        // would go; `false` when the head has not moved (no point in a retry).
        let refresh_head = |h: &mut u64| {
            let fresh = self.region.hdr_u64::<C_HEAD>().load(Ordering::Acquire);
            seen_head.store(fresh, Ordering::Relaxed);
            std::mem::replace(h, fresh) != fresh
        };
        if let Item::Bytes(b) = value {
            // The size is known: place the record once, write the varint and the
            // bytes straight into the ring (no staging copy).
            let mut varint = [0u8; 10];
            let k = write_varint(b.len() as u64, &mut varint);
            let n = (k + b.len()) as u64;
            self.check_size(n)?;
            let write = |p: u64| {
                let off = RING_OFF + self.phys(p) + HDR as usize;
                // The varint as one word (`off` is 8-aligned, `k <= 8` for any
                // length under 2^56, and the record has at least 8 payload bytes):
                // the bytes after it are overwritten by the payload or are padding.
                if k <= 8 {
                    let mut word = [0u8; 8];
                    word[..k].copy_from_slice(&varint[..k]);
                    self.u64(off)
                        .store(u64::from_le_bytes(word), Ordering::Relaxed);
                } else {
                    self.region.write(off, &varint[..k]);
                }
                self.region.write(off + k, b);
                self.commit(t, c, p, n);
            };
            // The same placement policy as for values below: the preferred place,
            // with a fresh look at `head` if it does not fit, then either place.
            for attempt in 0..2 {
                let p = if past && wants_wrap(h) { q } else { t };
                if self.fits(p, h, n) {
                    write(p);
                    return Ok(());
                }
                if attempt == 0 && !refresh_head(&mut h) {
                    break;
                }
            }
            for p in [t, q] {
                if self.fits(p, h, n) {
                    write(p);
                    return Ok(());
                }
            }
            *need = n;
            return Err(PutFail::Full);
        }
        for attempt in 0..2 {
            let prefer_wrap = past && wants_wrap(h);
            let p = if prefer_wrap { q } else { t };
            if let Some(win) = self.window(p, h) {
                match self.encode_at(value, p, win) {
                    Ok(Encoded::Done(n)) => {
                        self.commit(t, c, p, n);
                        return Ok(());
                    }
                    Ok(Encoded::Overflow) => {}
                    Err(e) => return Err(PutFail::Invalid(e)),
                }
            }
            if attempt == 0 && !refresh_head(&mut h) {
                break;
            }
        }
        // Learn the exact size, then try each placement once more.
        let n = self.encoded_size(value).map_err(PutFail::Invalid)?;
        self.check_size(n)?;
        for p in [t, q] {
            if self.fits(p, h, n) {
                if let Ok(Encoded::Done(m)) = self.encode_at(value, p, n) {
                    self.commit(t, c, p, m);
                    return Ok(());
                }
            }
        }
        *need = n;
        Err(PutFail::Full)
    }

    /// Refuses a record of `n` payload bytes over the queue's item limit.
    pub(super) fn check_size(&self, n: u64) -> Result<(), PutFail> {
        if n > self.max_message as u64 {
            return Err(PutFail::Invalid(MessageError::too_large(
                n as usize,
                self.max_message,
            )));
        }
        Ok(())
    }

    /// Whether a record of `n` payload bytes would fit now (lock-free estimate).
    pub(super) fn has_space(&self, n: u64) -> bool {
        if self.is_closed() {
            return true;
        }
        if self.capacity != u64::MAX && self.len() >= self.capacity {
            return false;
        }
        let t = self.region.hdr_u64::<P_TAIL>().load(Ordering::Acquire);
        let h = self.region.hdr_u64::<C_HEAD>().load(Ordering::Acquire);
        self.fits(t, h, n) || self.fits(self.next_lap(t), h, n)
    }

    /// Puts `value`, waiting for room until `deadline` when `block`.
    #[inline]
    pub(crate) fn put<T: Serialize + ?Sized>(
        &self,
        value: Item<'_, T>,
        block: bool,
        deadline: Option<Instant>,
    ) -> Result<(), PutFail> {
        if let Item::Bytes(b) = value {
            if self.put_bytes_now(b) {
                return Ok(());
            }
        }
        self.put_general(value, block, deadline)
    }

    /// The common case of a byte item's put, written to store as little as it can
    /// (see *Performance* in the module docs): the producer lock free at the first
    /// CAS, the queue open, and room for the record where the placement of
    /// [`put_locked`](Self::put_locked) puts it, judged with the head this producer
    /// saw last. Returns `false`, having put nothing, in every other case (a held
    /// lock, a dead holder's repair, a closed queue, a damaged tail, a count of the
    /// consumers' progress due, no room), which [`put_general`](Self::put_general)
    /// then handles. The steps (`fault::step`) and the stores are those of
    /// `put_locked` and [`commit`](Self::commit), in the same order.
    #[inline(never)]
    fn put_bytes_now(&self, b: &[u8]) -> bool {
        let Some((varint, k)) = varint_word(b.len() as u64) else {
            return false;
        };
        let n = (k + b.len()) as u64;
        if n > self.max_message as u64 || !self.acquire(0, thread_mark::current()) {
            return false;
        }
        let _guard = Guard::held(self);
        fault::step(1);
        self.region.prefetch_for_write(P_TAIL, 16);
        if self.is_closed() {
            return false;
        }
        let t = self.region.hdr_u64::<P_TAIL>().load(Ordering::Relaxed);
        let c = self.region.hdr_u64::<P_COUNT>().load(Ordering::Relaxed);
        if t % 8 != 0
            || (self.capacity != u64::MAX
                && c.wrapping_sub(self.region.hdr_u64::<P_SEEN_GOT>().load(Ordering::Relaxed))
                    >= self.capacity)
        {
            return false;
        }
        let seen_head = self.region.hdr_u64::<P_SEEN_HEAD>();
        let mut h = seen_head.load(Ordering::Relaxed);
        if h > t || t - h > self.size {
            return false;
        }
        // The placement of `put_locked`: past `wrap_at`, the next lap once the
        // consumers have left enough of its start free, with a look at the real head
        // every 4 KiB of progress.
        let q = self.next_lap(t);
        let mut p = t;
        if q != t && (t & self.mask) >= self.wrap_at {
            if !self.wants_wrap(t, q, h) {
                let mark = self.region.hdr_u64::<P_WRAP_MARK>();
                if t >= mark.load(Ordering::Relaxed) {
                    h = self.region.hdr_u64::<C_HEAD>().load(Ordering::Acquire);
                    seen_head.store(h, Ordering::Relaxed);
                    mark.store(t + 4096, Ordering::Relaxed);
                }
            }
            if self.wants_wrap(t, q, h) {
                p = q;
            }
        }
        if !self.fits(p, h, n) {
            return false;
        }
        let off = RING_OFF + self.phys(p) + HDR as usize;
        // The varint as one word (`off` is 8-aligned and the record has at least 8
        // payload bytes): the bytes after it are the payload's or padding.
        self.u64(off).store(varint, Ordering::Relaxed);
        self.region.write(off + k, b);
        self.commit(t, c, p, n);
        drop(_guard);
        self.wake(Wait::Data, false, false);
        true
    }

    /// Whether a put at `t`, past `wrap_at`, goes to the next lap's start `q`: once
    /// the consumers at `h` have left as much room there as at `t` (or 4 KiB).
    #[inline(always)]
    fn wants_wrap(&self, t: u64, q: u64, h: u64) -> bool {
        self.window(q, h).unwrap_or(0) >= self.window(t, h).unwrap_or(0).min(4096)
    }

    /// [`put`](Self::put) for any item, and for a byte item the fast path
    /// ([`put_bytes_now`](Self::put_bytes_now)) declined.
    #[inline(never)]
    fn put_general<T: Serialize + ?Sized>(
        &self,
        value: Item<'_, T>,
        block: bool,
        deadline: Option<Instant>,
    ) -> Result<(), PutFail> {
        let mut need = 0;
        loop {
            if self.is_closed() {
                return Err(self.refused_put());
            }
            let r = {
                let _g = match self.lock(deadline) {
                    Ok(g) => g,
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                        return Err(PutFail::Timeout);
                    }
                    Err(e) => return Err(PutFail::Invalid(MessageError::corrupt(e))),
                };
                self.put_locked(value, &mut need)
            };
            match r {
                Ok(()) => {
                    self.wake(Wait::Data, false, false);
                    return Ok(());
                }
                Err(PutFail::Full) if block => {
                    self.help_head();
                    // While spinning, hold out for a quarter of the queue to be free
                    // (up to 256 items): a batch of puts then runs without touching
                    // the lines the consumers are writing. Sleeping waits for any room.
                    let slack = if self.capacity == u64::MAX {
                        0
                    } else {
                        (self.capacity / 4).min(256)
                    };
                    let roomy = || {
                        self.has_space(need)
                            && (slack == 0
                                || self.len() + slack <= self.capacity
                                || self.is_closed())
                    };
                    let ready = || self.has_space(need);
                    if !self.wait(Wait::Space, deadline, roomy, ready) {
                        return Err(PutFail::Timeout);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

//! The shared ring behind every queue: layout, put/get protocol, crash repair, waits.
//!
//! # Layout
//!
//! One memfd: a 4 KiB header, then a byte ring of `R` bytes (a power of two). The
//! memfd is sparse: a page is only backed when a record first touches it, and
//! producers wrap back to the start of the ring early (at `wrap_at`) whenever the
//! consumers are past it, so a queue that is drained as fast as it is filled keeps
//! reusing the same few hot pages however large `R` is.
//!
//! Positions (`tail`, `head`) are byte offsets that only grow; the physical offset
//! is `pos & (R - 1)`. A record is a 16-byte header (`stamp: u64`, `len: u64`), then
//! `len` payload bytes, padded to 8. Records never straddle the end of the ring: a
//! producer that wraps leaves a *pad* stamp at the old tail telling consumers to
//! jump to the next lap.
//!
//! # Protocol
//!
//! Producers serialize with one lock (see *The producer lock*); consumers take no
//! lock at all. The two sides only meet through the stamps (consumer ← producer) and
//! `head` (producer ← consumer). A message is number `c` (from 1) and its stamp is
//! `c`; a pad before message `c` has stamp `c | PAD`. Within the producer lock:
//!
//! 1. encode the value straight into free ring space at `p` (`p = tail`, or the start
//!    of the next lap), with room left for 8 more bytes after it (a byte vector is
//!    written with two `memcpy`s, its size being known up front);
//! 2. zero the stamp word at the new tail `nt` (free space);
//! 3. store `len`, then the stamp `c` at `p` (release): **the commit point**, unless
//!    the record wrapped;
//! 4. when wrapping, store the pad stamp at the old tail (release): the commit point
//!    of a wrapped record, since consumers only reach `p` through the pad;
//! 5. store `put_count = c` (see *Waiting* for its ordering), then `tail = nt`.
//!
//! Past `wrap_at` (256 KiB, or half a smaller ring) a producer wraps early as soon as
//! the consumers have left the start of the ring free.
//!
//! Invariant: *the stamp word at `tail` is 0 unless the record there is committed*
//! (step 2 keeps it; the ring starts zeroed). Producers only reuse bytes behind
//! `head`, so a record at or after `head` is never overwritten.
//!
//! A consumer (`take`) works from a snapshot `g = get_count`, then `h = head`:
//!
//! - stamp at `h` is `g + 1`: check `len`, **copy the payload out**, then claim the
//!   message with one CAS `get_count: g → g + 1`: **the take point**. Then CAS
//!   `head: h → h + size` (steps 11–14 of the fault hooks). If the claim CAS fails,
//!   another consumer took message `g + 1`; the copy is dropped and `take` starts
//!   over. The copy is optimistic, as in a seqlock: if the CAS succeeds, `get_count`
//!   was `g` throughout, so message `g + 1` was not taken, `head` could not pass `h`,
//!   and no producer wrote over the bytes while they were copied; if it fails, the
//!   bytes may be garbage and are never looked at (they are only copied, with their
//!   length checked against the ring first, never trusted).
//! - stamp at `h` is `g`: message `g` was claimed but `head` not moved past it (its
//!   taker is between its two CASes, or was killed there): *help*, CAS `head` past
//!   it, and look again. Producers help the same way before they wait for room.
//! - stamp at `h` is `(g + 1) | PAD`: CAS `head` to the next lap (steps 15–16).
//! - otherwise: empty (if the snapshot still holds; else look again).
//!
//! `head` and `get_count` only grow (no ABA), and every CAS on `head` moves it from a
//! value it held while the record there was protected, so helping is idempotent:
//! whichever process's CAS lands first does the move, the others' fail harmlessly.
//! Messages are claimed in number order, so gets return items in put order.
//!
//! # Crash repair
//!
//! A consumer holds no lock and no state that others wait on: killed before its claim
//! CAS it took nothing (the message stays for the next consumer); killed after it, it
//! took the message (which then lives only in the dead process) and a `head` it did
//! not move is moved by the next `take` or waiting producer. Nothing to repair.
//!
//! Producers: the next producer to take the lock after a holder died repairs (see
//! *The producer lock*). Outside the lock a producer holds no state, so this is the
//! only case to repair, and it needs only the stamps: a nonzero stamp at `tail`
//! means the dead producer committed but did not finish step 5; finish it (the stamp
//! gives the count, the record's `len` the new tail). A zero stamp means it committed
//! nothing: its partial bytes are free space again, and a record it may have stamped
//! past an unwritten pad is unreachable and overwritten later.
//!
//! # The producer lock
//!
//! `P_LOCK` holds 0 or the holder's *thread mark* (`sys::thread_mark`: its thread id
//! and start time). Taking it is one CAS `0 → mark`; releasing it is a plain release
//! store of 0 (with the `membarrier` protocol, see *Waiting*), so that a put does not
//! end on a locked instruction, which would stall until the record's stores drained.
//! A producer that finds the lock held spins, then sleeps on a futex word like any
//! waiter; when one holder has held it for [`HOLDER_CHECK`] it asks the kernel
//! whether that thread still runs. Only proof of death counts (no such thread, a
//! zombie, or the id reused by a later thread, told by the start time); the survivor
//! then CASes the dead mark to its own (one survivor wins) and repairs. A live
//! holder, however slow or stopped, is waited for. Thread ids only compare within
//! one PID namespace, so a ring refuses to attach in another one.
//!
//! (Until layout version 4 this was a glibc robust mutex, whose kernel-maintained
//! owner-died flag needs no `/proc`; but its unlock is a locked instruction, measured
//! at a fifth of a small put.)
//!
//! # Waiting
//!
//! A waiter spins (bounded, adaptive per handle) on a lock-free check (a consumer on
//! `put_count`, not on the next record, whose lines the producer is writing; once
//! items arrive it holds out briefly for a batch, so that it trails the producers
//! instead of fetching each record the moment it is written; a producer waits for a
//! quarter of the capacity to be free, for the same reason), then
//! sleeps on a futex word (`*_seq`) after registering in a waiter count (`SeqCst`
//! RMW, then a `SeqCst` fence, then the check); the other side bumps the word and
//! wakes only when the count is nonzero, so nobody makes a system call while nobody
//! sleeps. A consumer's last store of what a waiting producer checks is a `SeqCst`
//! RMW (the claim and `head` CASes), so its `SeqCst` load of the count needs no fence
//! of its own. A producer does not even pay for that: every put would drain its
//! store buffer, stalling on the record's cache lines, and that stall measured a
//! fifth of a small put. It stores `put_count` plainly and loads the waiter count
//! after a compiler barrier only; a consumer about to sleep issues a global
//! `membarrier(2)` after registering, which runs a full barrier on the CPU of every
//! running producer (see `sys::barrier`), so that either the producer sees the
//! waiter or the waiter sees the put. Where the kernel or a sandbox lacks the call,
//! the queue's creator records that (`H_ASYMMETRIC = 0`) and producers swap
//! `put_count` with a `SeqCst` RMW instead. Producers waiting for the producer lock
//! are woken the same way: the holder releases it with a plain store and looks at
//! their count after a compiler barrier, and a producer about to sleep on it issues
//! the barrier.
//!
//! # Performance
//!
//! When the producer's and the consumer's CPUs are far apart (separate cores whose
//! caches exchange a line in a few hundred cycles, the usual case on a VM), every
//! record line a producer writes must first be taken back from the consumer that
//! read it, and the producer's stores queue behind those transfers in its store
//! buffer until the next put's lock CAS drains it. So what sets a producer's rate is
//! how many stores a put makes, its stack's included, more than how many
//! instructions: measured with two C processes passing 64-byte messages
//! (`benches/c/os_ring.c` and variants), 16 more stores per message cost 44% of the
//! rate. Hence the byte put's fast path (`put::put_bytes_now`: about 20 stores,
//! against 70 for the general path), accessors whose bounds checks keep their panic
//! messages out of line, and `Queue::put_ref`, which spares a producer an
//! allocation per message (its `malloc` and `free` store more than the put itself).
//! The consumer's looks at `put_count` while it waits take that line from the
//! producer too, so they are spaced out once items are arriving (`get::BATCH_GAP`).
//!
//! When processes outnumber CPUs, who runs beside whom matters as much. A waiter
//! gives up its CPU when the side it waits for stands still between two of its
//! looks (that side may be queued behind it on this CPU), and not while it moves
//! (it runs elsewhere). And a producer that finds the lock held, or a consumer
//! that loses a claim, yields at once: two processes of one kind running at the
//! same time only pass the same lines back and forth, while a producer beside a
//! consumer streams (`wait::yield_to_other_kind`).
//!
//! # Where each part lives
//!
//! - `layout`: the header's offsets, creating a ring and checking one that arrives;
//! - `algorithm`: the protocol above: record geometry, the commit, the lock-free
//!   take with its claim and helping, the repair after a producer's death;
//! - `lock`: the producer lock, its takeover from a dead holder;
//! - `put`, `get`: placing and encoding a record, and the blocking operations;
//! - `wait`: spinning (adaptive), sleeping on the futex words, waking;
//! - `record`: the writer that encodes straight into the ring, and the readers;
//! - `fault`: the test hooks (crash and park at a protocol step), nothing in a
//!   normal build.

mod aio;
mod algorithm;
pub(crate) mod fault;
mod get;
mod layout;
mod lock;
#[cfg(all(test, loom))]
mod loom_ring;
mod put;
mod record;
mod wait;

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use super::error::MessageError;
pub(crate) use crate::sys::shm_region::SharedRegion;
use algorithm::Protocol;
use layout::*;
use lock::Guard;
pub(crate) use record::{Item, read_to_scratch, return_scratch};
use wait::Wait;

/// Which flavour of queue a ring belongs to (checked when a handle arrives).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Queue = 1,
    Joinable = 2,
    Simple = 3,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Queue => "Queue",
            Kind::Joinable => "JoinableQueue",
            Kind::Simple => "SimpleQueue",
        }
    }
}

/// Creation parameters (already validated by the builder).
#[derive(Clone, Debug)]
pub(crate) struct Params {
    pub(crate) kind: Kind,
    pub(crate) capacity: Option<u64>,
    pub(crate) ring_bytes: u64,
    pub(crate) max_message: usize,
    pub(crate) type_name: &'static str,
}

/// Default byte capacity: virtual, backed only as used.
pub(crate) const DEFAULT_RING_BYTES: u64 = 1 << 30;
/// Default largest message.
pub(crate) const DEFAULT_MAX_MESSAGE: usize = 64 << 20;
/// Smallest ring.
pub(crate) const MIN_RING_BYTES: u64 = 4096;

/// The largest message a ring of `ring_bytes` can take.
pub(crate) fn max_message_for(ring_bytes: u64) -> usize {
    (ring_bytes / 2 - 2 * HDR) as usize
}

/// Why a locked put did not happen.
pub(crate) enum PutFail {
    Full,
    Closed,
    ShutDown,
    Timeout,
    Invalid(MessageError),
}

/// Why a get did not return an item.
pub(crate) enum GetFail {
    Empty,
    Closed,
    ShutDown,
    Timeout,
    Invalid(MessageError),
}

/// One process's view of a shared ring.
pub(crate) struct Ring {
    region: SharedRegion,
    fd: OwnedFd,
    kind: Kind,
    size: u64,
    mask: u64,
    capacity: u64,
    max_message: usize,
    wrap_at: u64,
    /// Whether data waiters pay for the producers' fence (`H_ASYMMETRIC`).
    asymmetric: bool,
    spin_ns: AtomicU32,
    wake_misses: [AtomicU32; 4],
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("kind", &self.kind)
            .field("ring_bytes", &self.size)
            .field("capacity", &self.capacity)
            .field("max_message", &self.max_message)
            .finish_non_exhaustive()
    }
}

impl Ring {
    /// The memfd, for sending the handle to another process.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub(crate) fn capacity(&self) -> Option<u64> {
        (self.capacity != u64::MAX).then_some(self.capacity)
    }

    pub(crate) fn max_message(&self) -> usize {
        self.max_message
    }

    pub(crate) fn ring_bytes(&self) -> u64 {
        self.size
    }

    #[inline]
    fn u64(&self, off: usize) -> &AtomicU64 {
        self.region.u64_at(off)
    }

    #[inline]
    fn u32(&self, off: usize) -> &AtomicU32 {
        self.region.u32_at(off)
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.region.hdr_u32::<H_CLOSED>().load(Ordering::Acquire) != 0
    }

    pub(crate) fn recoveries(&self) -> u64 {
        self.region
            .hdr_u64::<H_RECOVERIES>()
            .load(Ordering::Relaxed)
    }

    /// Messages put and not yet taken.
    pub(crate) fn len(&self) -> u64 {
        let g = self.region.hdr_u64::<C_COUNT>().load(Ordering::Acquire);
        let p = self.region.hdr_u64::<P_COUNT>().load(Ordering::Acquire);
        p.saturating_sub(g)
    }

    pub(crate) fn puts(&self) -> u64 {
        self.region.hdr_u64::<P_COUNT>().load(Ordering::Acquire)
    }

    pub(crate) fn is_full(&self) -> bool {
        if self.len() >= self.capacity {
            return true;
        }
        let t = self.region.hdr_u64::<P_TAIL>().load(Ordering::Acquire);
        let h = self.region.hdr_u64::<C_HEAD>().load(Ordering::Acquire);
        !self.fits(t, h, 0) && !self.fits(self.next_lap(t), h, 0)
    }

    // ---- close, join ---------------------------------------------------------

    /// Why puts are refused: 0, or [`CLOSED`], [`SHUT_DOWN`], [`IMMEDIATE`] bits.
    fn stop_bits(&self) -> u32 {
        self.region.hdr_u32::<H_CLOSED>().load(Ordering::Acquire)
    }

    /// Whether `close` was called (in any process).
    pub(crate) fn was_closed(&self) -> bool {
        self.stop_bits() & CLOSED != 0
    }

    /// Whether `shutdown` was called (in any process).
    pub(crate) fn was_shut_down(&self) -> bool {
        self.stop_bits() & SHUT_DOWN != 0
    }

    /// Why a put is refused once [`is_closed`](Self::is_closed).
    #[cold]
    fn refused_put(&self) -> PutFail {
        if self.was_shut_down() {
            PutFail::ShutDown
        } else {
            PutFail::Closed
        }
    }

    /// Why a get found nothing once [`is_closed`](Self::is_closed).
    #[cold]
    fn refused_get(&self) -> GetFail {
        if self.was_shut_down() {
            GetFail::ShutDown
        } else {
            GetFail::Closed
        }
    }

    /// Sets `bits` in the stop word under the producer lock: no put is half-way
    /// through when they flip, so every put that succeeded is visible to a get that
    /// sees them.
    fn stop(&self, bits: u32) -> Option<Guard<'_>> {
        // (`lock(None)` has no deadline: it does not fail.)
        let g = self.lock(None).ok();
        self.region
            .hdr_u32::<H_CLOSED>()
            .fetch_or(bits, Ordering::AcqRel);
        g
    }

    /// Closes the queue: puts fail from now on; gets drain what is there.
    pub(crate) fn close(&self) {
        if !self.was_closed() {
            drop(self.stop(CLOSED));
        }
        self.wake(Wait::Data, true, true);
        self.wake(Wait::Space, true, true);
    }

    /// Shuts the queue down (Python 3.13's `Queue.shutdown`): puts fail from now on
    /// with "shut down"; gets drain what is there, then fail the same way. With
    /// `immediate`, what is queued is discarded now (each discarded item counts as
    /// done for a joinable queue's `join`), so gets fail at once. Every waiter in
    /// every process is woken. Returns how many items were discarded.
    pub(crate) fn shutdown(&self, immediate: bool) -> u64 {
        let mut discarded = 0;
        if immediate || !self.was_shut_down() {
            let g = self.stop(SHUT_DOWN | if immediate { IMMEDIATE } else { 0 });
            if immediate {
                // Puts are refused from now on (we hold their lock, and they look at
                // the flag under it): take everything, copying nothing. Consumers
                // racing with us claim some; each item goes to exactly one of us.
                while let Ok(Some(())) = self.take(&mut |_, _, _| Ok(())) {
                    discarded += 1;
                }
                if discarded > 0 && self.kind == Kind::Joinable {
                    self.region
                        .hdr_u64::<J_DONE>()
                        .fetch_add(discarded, Ordering::AcqRel);
                }
            }
            drop(g);
        }
        self.wake(Wait::Data, true, true);
        self.wake(Wait::Space, true, true);
        self.wake(Wait::Join, true, true);
        discarded
    }

    pub(crate) fn done(&self) -> u64 {
        self.region.hdr_u64::<J_DONE>().load(Ordering::Acquire)
    }

    /// Counts one finished task; `Err(puts)` when every put is already counted.
    pub(crate) fn task_done(&self) -> Result<(), u64> {
        let done = self.region.hdr_u64::<J_DONE>();
        let mut d = done.load(Ordering::Acquire);
        loop {
            // A consumer may take an item before its producer has counted it (the
            // record's stamp is the commit point, the count comes after), but never
            // before the consumers have: bound by whichever count is ahead.
            let puts = self
                .puts()
                .max(self.region.hdr_u64::<C_COUNT>().load(Ordering::Acquire));
            if d >= puts {
                return Err(puts);
            }
            match done.compare_exchange_weak(d, d + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(now) => d = now,
            }
        }
        self.wake(Wait::Join, true, true);
        Ok(())
    }

    /// Waits until every put is matched by a `task_done`; `false` at the deadline.
    pub(crate) fn join(&self, deadline: Option<Instant>) -> bool {
        let ready = || self.done() >= self.puts();
        self.wait(Wait::Join, deadline, ready, ready)
    }
}

#[cfg(test)]
impl Ring {
    pub(crate) fn debug_positions(&self) -> (u64, u64, u64, u64) {
        (
            self.region.hdr_u64::<P_TAIL>().load(Ordering::Relaxed),
            self.region.hdr_u64::<P_COUNT>().load(Ordering::Relaxed),
            self.region.hdr_u64::<C_HEAD>().load(Ordering::Relaxed),
            self.region.hdr_u64::<C_COUNT>().load(Ordering::Relaxed),
        )
    }
}

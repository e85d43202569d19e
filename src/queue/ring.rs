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
//! sleep the same way, on their own word, and its release is a plain store too.
//!
//! Sleeps are capped at [`NAP`] and re-check the condition, so a waker killed
//! between its commit and its wake delays a waiter, never strands it; a count left
//! high by a waiter killed in its sleep is healed after repeated empty wakes.

use std::cell::Cell;
use std::ffi::CStr;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, compiler_fence, fence};
use std::time::{Duration, Instant};

use postcard::ser_flavors::Flavor;
use serde::Serialize;

use super::error::MessageError;
use crate::sys::barrier;
use crate::sys::futex::{futex_wait, futex_wake};
use crate::sys::memory::{Mapping, file_len, memfd};
pub(crate) use crate::sys::shm_region::SharedRegion;
use crate::sys::thread_mark::{self, Liveness};

const MAGIC: u64 = u64::from_le_bytes(*b"mprocQ01");
const VERSION: u32 = 4;

// Header: read-only after creation.
const H_MAGIC: usize = 0;
const H_VERSION: usize = 8;
const H_KIND: usize = 12;
const H_RING: usize = 16;
const H_CAPACITY: usize = 24;
const H_MAX_MSG: usize = 32;
const H_WRAP_AT: usize = 40;
const H_TYPE_HASH: usize = 48;
const H_TYPE_LEN: usize = 56;
const H_TYPE_NAME: usize = 64;
const TYPE_NAME_MAX: usize = 192;
// Shared flags and statistics.
const H_CLOSED: usize = 256;
const H_RECOVERIES: usize = 264;
/// 1: waiters issue a global `membarrier` before they sleep, and producers skip
/// their fence (see *Waiting*); 0: both sides fence.
const H_ASYMMETRIC: usize = 272;
/// The creator's PID namespace ([`thread_mark::pid_namespace`]): lock holders are
/// named by thread id, which only means the same thread within one namespace.
const H_PID_NAMESPACE: usize = 280;
// Producer side (written under the producer lock).
/// The producer lock: 0, or the holder's [`thread_mark`].
const P_LOCK: usize = 512;
const P_TAIL: usize = 576;
const P_COUNT: usize = 584;
const P_SEEN_HEAD: usize = 592;
const P_SEEN_GOT: usize = 600;
const P_WRAP_MARK: usize = 608;
// Consumer side (written by consumers' CASes, lock-free).
const C_HEAD: usize = 832;
const C_COUNT: usize = 840;
// Wait words, each pair on its own cache line.
const W_DATA_SEQ: usize = 1024;
const W_DATA_WAITERS: usize = 1028;
const W_SPACE_SEQ: usize = 1088;
const W_SPACE_WAITERS: usize = 1092;
const J_DONE: usize = 1152;
const J_SEQ: usize = 1160;
const J_WAITERS: usize = 1164;
const W_LOCK_SEQ: usize = 1216;
const W_LOCK_WAITERS: usize = 1220;
/// Where the ring starts.
const RING_OFF: usize = 4096;

const HDR: u64 = 16;
const PAD: u64 = 1 << 63;
/// Longest single futex sleep before a waiter re-checks on its own.
pub(crate) const NAP: Duration = Duration::from_millis(50);
const SPIN_MIN_NS: u32 = 2_000;
const SPIN_MAX_NS: u32 = 80_000;
const SPIN_START_NS: u32 = 20_000;
const LOCK_SPINS: u32 = 200;
/// How long a producer waits on one lock holder before it asks whether that holder
/// is still alive (and its longest sleep meanwhile).
const HOLDER_CHECK: Duration = Duration::from_millis(10);
/// Items a spinning consumer waits for once some have arrived (see `get`).
const BATCH: u64 = 16;
/// Looks at a non-empty queue after which a spinning consumer stops waiting for a
/// batch.
const BATCH_LOOKS: u32 = 6;
/// Or this many bytes.
const BATCH_BYTES: u64 = 2048;
/// Bytes at the new tail that a put prefetches for the next one (two cache lines).
const PREFETCH: u64 = 128;

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

#[derive(Clone, Copy)]
enum Wait {
    Data,
    Space,
    Join,
    Lock,
}

impl Wait {
    fn offs(self) -> (usize, usize) {
        match self {
            Wait::Data => (W_DATA_SEQ, W_DATA_WAITERS),
            Wait::Space => (W_SPACE_SEQ, W_SPACE_WAITERS),
            Wait::Join => (J_SEQ, J_WAITERS),
            Wait::Lock => (W_LOCK_SEQ, W_LOCK_WAITERS),
        }
    }
}

/// Why a locked put did not happen.
pub(crate) enum PutFail {
    Full,
    Closed,
    Timeout,
    Invalid(MessageError),
}

/// Why a get did not return an item.
pub(crate) enum GetFail {
    Empty,
    Closed,
    Timeout,
    Invalid(MessageError),
}

/// A ring's geometry and modes, read once from its header.
struct Layout {
    size: u64,
    capacity: u64,
    max_message: usize,
    wrap_at: u64,
    asymmetric: bool,
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

fn align8(n: u64) -> u64 {
    (n + 7) & !7
}

fn rec_size(n: u64) -> u64 {
    HDR + align8(n)
}

fn type_hash(name: &str) -> u64 {
    // FNV-1a: stable, and enough to tell two element types apart.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// The producer lock, held.
struct Guard<'a> {
    ring: &'a Ring,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if !fault::crashed() {
            self.ring.unlock();
        }
    }
}

/// Test hooks, compiled to nothing outside tests. Crash injection for the
/// in-process tests: `step(n)` "kills" the calling thread at protocol step `n` (a
/// panic that leaves every lock it holds locked, as a `SIGKILL` would; once the
/// thread has exited, its thread mark is dead and the next producer takes the lock
/// over), or parks it there (`PARK_AT`). Rings can be made fenced (`FENCED`), and
/// futex sleeps counted (`SLEEPS`).
pub(crate) mod fault {
    #[cfg(test)]
    thread_local! {
        pub(crate) static CRASH_AT: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
        static CRASHED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    #[cfg(test)]
    thread_local! {
        /// `(step, resume)`: at `step` the thread blocks until `resume` yields
        /// (a live but stalled process, as under `SIGSTOP`).
        pub(crate) static PARK_AT: std::cell::RefCell<Option<(u32, std::sync::mpsc::Receiver<()>)>> =
            const { std::cell::RefCell::new(None) };
    }

    #[cfg(test)]
    pub(crate) fn step(n: u32) {
        if CRASH_AT.with(|c| c.get()) == n {
            CRASHED.with(|c| c.set(true));
            panic!("simulated crash at step {n}");
        }
        let park = PARK_AT.with(|p| {
            let mut p = p.borrow_mut();
            if p.as_ref().is_some_and(|(at, _)| *at == n) {
                p.take()
            } else {
                None
            }
        });
        if let Some((_, resume)) = park {
            let _ = resume.recv();
        }
    }

    #[cfg(test)]
    pub(crate) fn crashed() -> bool {
        CRASHED.with(|c| c.get())
    }

    #[cfg(not(any(test, mproc_fault)))]
    #[inline(always)]
    pub(crate) fn step(_: u32) {}

    /// Under `--cfg mproc_fault`: the protocol step at which this process aborts
    /// (0: none), set by the fault tests in a child through `queue::__fault_at`.
    #[cfg(all(mproc_fault, not(test)))]
    pub(crate) static ABORT_AT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

    #[cfg(all(mproc_fault, not(test)))]
    pub(crate) fn step(n: u32) {
        if ABORT_AT.load(std::sync::atomic::Ordering::Relaxed) == n {
            std::process::abort();
        }
    }

    #[cfg(not(test))]
    #[inline(always)]
    pub(crate) fn crashed() -> bool {
        false
    }

    #[cfg(test)]
    thread_local! {
        /// Rings created on this thread use the fenced wake protocol, as where
        /// `membarrier` is unavailable.
        pub(crate) static FENCED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    #[cfg(test)]
    thread_local! {
        /// Futex sleeps this thread has started in queue waits.
        pub(crate) static SLEEPS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    #[cfg(test)]
    pub(crate) fn sleeping() {
        SLEEPS.with(|c| c.set(c.get() + 1));
    }

    #[cfg(not(test))]
    #[inline(always)]
    pub(crate) fn sleeping() {}

    #[cfg(test)]
    pub(crate) fn fenced() -> bool {
        FENCED.with(|f| f.get())
    }

    #[cfg(not(test))]
    #[inline(always)]
    pub(crate) fn fenced() -> bool {
        false
    }
}

thread_local! {
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Writes postcard output straight into the ring. Small pushes (serde's `u8`s,
/// varints) collect in a staging buffer that is copied in with one `memcpy`; byte
/// blocks ([`Bytes`](super::Bytes), strings) larger than it go in directly. The
/// limit is checked whenever bytes reach the ring.
struct RingWriter<'a> {
    region: &'a SharedRegion,
    off: usize,
    written: usize,
    limit: usize,
    overflow: &'a Cell<bool>,
    staged: usize,
    stage: [u8; STAGE],
}

const STAGE: usize = 256;

impl RingWriter<'_> {
    #[cold]
    fn overflowed(&self) -> postcard::Error {
        self.overflow.set(true);
        postcard::Error::SerializeBufferFull
    }

    fn flush(&mut self) -> postcard::Result<()> {
        if self.written + self.staged > self.limit {
            return Err(self.overflowed());
        }
        self.region
            .write(self.off + self.written, &self.stage[..self.staged]);
        self.written += self.staged;
        self.staged = 0;
        Ok(())
    }
}

impl Flavor for RingWriter<'_> {
    type Output = usize;

    #[inline(always)]
    fn try_push(&mut self, b: u8) -> postcard::Result<()> {
        if self.staged == STAGE {
            self.flush()?;
        }
        self.stage[self.staged] = b;
        self.staged += 1;
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if self.staged + data.len() <= STAGE {
            self.stage[self.staged..self.staged + data.len()].copy_from_slice(data);
            self.staged += data.len();
            return Ok(());
        }
        self.flush()?;
        if self.written + data.len() > self.limit {
            return Err(self.overflowed());
        }
        self.region.write(self.off + self.written, data);
        self.written += data.len();
        Ok(())
    }

    fn finalize(mut self) -> postcard::Result<usize> {
        self.flush()?;
        Ok(self.written)
    }
}

enum Encoded {
    Done(u64),
    Overflow,
}

/// What a `put` writes.
pub(crate) enum Item<'a, T: ?Sized> {
    /// A serde value, encoded with postcard.
    Value(&'a T),
    /// A byte vector, written as postcard encodes `Vec<u8>` and [`Bytes`](super::Bytes)
    /// (a varint length, then the bytes) with one `memcpy`.
    Bytes(&'a [u8]),
}

impl<T: ?Sized> Clone for Item<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: ?Sized> Copy for Item<'_, T> {}

/// postcard's varint (LEB128) of `v` into `out`; returns its length.
fn write_varint(mut v: u64, out: &mut [u8; 10]) -> usize {
    let mut i = 0;
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out[i] = b;
            return i + 1;
        }
        out[i] = b | 0x80;
        i += 1;
    }
}

/// Reads a postcard varint from the start of `bytes`: `(value, length)`.
fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Copies a payload into this thread's reusable scratch buffer.
pub(crate) fn read_to_scratch(
    region: &SharedRegion,
    off: usize,
    len: usize,
) -> Result<Vec<u8>, MessageError> {
    let mut buf = SCRATCH.with(Cell::take);
    buf.clear();
    region.read_append(off, len, &mut buf);
    Ok(buf)
}

/// Gives a scratch buffer back for the next get on this thread (unless it grew
/// large).
pub(crate) fn return_scratch(buf: Vec<u8>) {
    if buf.capacity() <= 4 << 20 {
        SCRATCH.with(|s| s.set(buf));
    }
}

/// Copies a payload written by [`Item::Bytes`] (or by postcard for a `Vec<u8>`)
/// straight into a vector of its own: one `memcpy`.
pub(crate) fn read_byte_vec(
    region: &SharedRegion,
    off: usize,
    len: usize,
) -> Result<Vec<u8>, MessageError> {
    let mut head = [0u8; 10];
    let k = len.min(10);
    let mut varint = None;
    if len >= 1 && off % 8 == 0 {
        // The varint from one word instead of a copy: a record's payload is
        // 8-aligned, and one of `len >= 1` bytes is padded to at least 8.
        head[..8].copy_from_slice(&region.u64_at(off).load(Ordering::Relaxed).to_le_bytes());
        varint = read_varint(&head[..k.min(8)]);
    }
    if varint.is_none() {
        region.read(off, &mut head[..k]);
        varint = read_varint(&head[..k]);
    }
    match varint {
        Some((v, w)) if v == (len - w) as u64 => {
            let mut out = Vec::with_capacity(len - w);
            region.read_append(off + w, len - w, &mut out);
            Ok(out)
        }
        _ => Err(MessageError::decode("the record is not a byte vector")),
    }
}

impl Ring {
    /// Creates a new ring in a fresh memfd.
    pub(crate) fn create(p: &Params) -> io::Result<Ring> {
        let size = p.ring_bytes;
        debug_assert!(size.is_power_of_two() && size >= MIN_RING_BYTES);
        debug_assert!(p.max_message <= max_message_for(size));
        let name: &CStr = match p.kind {
            Kind::Queue => c"mproc-queue",
            Kind::Joinable => c"mproc-joinable-queue",
            Kind::Simple => c"mproc-simple-queue",
        };
        let total = RING_OFF as u64 + size;
        let total = usize::try_from(total)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "queue too large"))?;
        let fd = memfd(name, total)?;
        let region = SharedRegion::new(Mapping::new(fd.as_fd(), total)?);
        let wrap_at = (256u64 << 10).min(size / 2);
        region.u32_at(H_VERSION).store(VERSION, Ordering::Relaxed);
        region
            .u32_at(H_KIND)
            .store(p.kind as u32, Ordering::Relaxed);
        region.u64_at(H_RING).store(size, Ordering::Relaxed);
        let cap = p.capacity.unwrap_or(u64::MAX);
        region.u64_at(H_CAPACITY).store(cap, Ordering::Relaxed);
        region
            .u64_at(H_MAX_MSG)
            .store(p.max_message as u64, Ordering::Relaxed);
        region.u64_at(H_WRAP_AT).store(wrap_at, Ordering::Relaxed);
        region
            .u64_at(H_TYPE_HASH)
            .store(type_hash(p.type_name), Ordering::Relaxed);
        let tn = &p.type_name.as_bytes()[..p.type_name.len().min(TYPE_NAME_MAX)];
        region
            .u32_at(H_TYPE_LEN)
            .store(tn.len() as u32, Ordering::Relaxed);
        region.write(H_TYPE_NAME, tn);
        region
            .u64_at(H_PID_NAMESPACE)
            .store(thread_mark::pid_namespace(), Ordering::Relaxed);
        let asymmetric = !fault::fenced() && barrier::register();
        region
            .u32_at(H_ASYMMETRIC)
            .store(u32::from(asymmetric), Ordering::Relaxed);
        region.u64_at(H_MAGIC).store(MAGIC, Ordering::Release);
        let layout = Layout {
            size,
            capacity: cap,
            max_message: p.max_message,
            wrap_at,
            asymmetric,
        };
        Ok(Ring::new(region, fd, p.kind, layout))
    }

    /// This process's view of a ring with the given layout (as `create` wrote it
    /// or `attach` checked it).
    fn new(region: SharedRegion, fd: OwnedFd, kind: Kind, layout: Layout) -> Ring {
        Ring {
            region,
            fd,
            kind,
            size: layout.size,
            mask: layout.size - 1,
            capacity: layout.capacity,
            max_message: layout.max_message,
            wrap_at: layout.wrap_at,
            asymmetric: layout.asymmetric,
            spin_ns: AtomicU32::new(SPIN_START_NS),
            wake_misses: Default::default(),
        }
    }

    /// Maps a ring that arrived from another process, checking that it is a ring of
    /// the expected kind and element type.
    pub(crate) fn attach(fd: OwnedFd, kind: Kind, type_name: &str) -> io::Result<Ring> {
        let total = file_len(fd.as_fd())?;
        if total < RING_OFF + MIN_RING_BYTES as usize {
            return Err(invalid(format!(
                "descriptor is not an mproc queue (only {total} bytes)"
            )));
        }
        let region = SharedRegion::new(Mapping::new(fd.as_fd(), total)?);
        if region.u64_at(H_MAGIC).load(Ordering::Acquire) != MAGIC {
            return Err(invalid("descriptor is not an mproc queue".into()));
        }
        let version = region.u32_at(H_VERSION).load(Ordering::Relaxed);
        if version != VERSION {
            return Err(invalid(format!(
                "queue layout version {version} is not the supported {VERSION}"
            )));
        }
        let found = region.u32_at(H_KIND).load(Ordering::Relaxed);
        if found != kind as u32 {
            let name = [Kind::Queue, Kind::Joinable, Kind::Simple]
                .into_iter()
                .find(|k| *k as u32 == found)
                .map_or("unknown", Kind::name);
            return Err(invalid(format!(
                "a {name} arrived where a {} was expected",
                kind.name()
            )));
        }
        if region.u64_at(H_TYPE_HASH).load(Ordering::Relaxed) != type_hash(type_name) {
            let len =
                (region.u32_at(H_TYPE_LEN).load(Ordering::Relaxed) as usize).min(TYPE_NAME_MAX);
            let mut buf = vec![0u8; len];
            region.read(H_TYPE_NAME, &mut buf);
            return Err(invalid(format!(
                "a queue of `{}` arrived where a queue of `{type_name}` was expected",
                String::from_utf8_lossy(&buf)
            )));
        }
        let size = region.u64_at(H_RING).load(Ordering::Relaxed);
        let cap = region.u64_at(H_CAPACITY).load(Ordering::Relaxed);
        let max = region.u64_at(H_MAX_MSG).load(Ordering::Relaxed);
        let wrap_at = region.u64_at(H_WRAP_AT).load(Ordering::Relaxed);
        if !size.is_power_of_two()
            || size < MIN_RING_BYTES
            || RING_OFF as u64 + size != total as u64
            || cap == 0
            || max > max_message_for(size) as u64
            || wrap_at > size
        {
            return Err(invalid("queue header is damaged".into()));
        }
        let asymmetric = match region.u32_at(H_ASYMMETRIC).load(Ordering::Relaxed) {
            0 => false,
            1 if barrier::register() => true,
            1 => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "this queue was created in a process that uses membarrier(2) \
                     (MEMBARRIER_CMD_GLOBAL_EXPEDITED) to wake its waiters, and this \
                     process cannot register for it (an older kernel, or a seccomp \
                     filter that blocks membarrier); create the queue where every \
                     process that uses it can",
                ));
            }
            _ => return Err(invalid("queue header is damaged".into())),
        };
        let theirs = region.u64_at(H_PID_NAMESPACE).load(Ordering::Relaxed);
        let ours = thread_mark::pid_namespace();
        if theirs != 0 && ours != 0 && theirs != ours {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this queue was created in another PID namespace; its producers name \
                 each other by thread id, which differs between namespaces, so it can \
                 only be shared by processes of one namespace",
            ));
        }
        let layout = Layout {
            size,
            capacity: cap,
            max_message: max as usize,
            wrap_at,
            asymmetric,
        };
        Ok(Ring::new(region, fd, kind, layout))
    }

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
    fn phys(&self, pos: u64) -> usize {
        (pos & self.mask) as usize
    }

    #[inline]
    fn stamp(&self, pos: u64) -> &AtomicU64 {
        self.u64(RING_OFF + self.phys(pos))
    }

    #[inline]
    fn len_word(&self, pos: u64) -> &AtomicU64 {
        self.u64(RING_OFF + self.phys(pos) + 8)
    }

    /// The start of the lap after the one `pos` is in (`pos` itself at a lap start).
    #[inline]
    fn next_lap(&self, pos: u64) -> u64 {
        let ph = pos & self.mask;
        if ph == 0 { pos } else { pos + (self.size - ph) }
    }

    /// Bytes a record placed at `p` may occupy, given consumers at `h`: it may not
    /// cross the ring's end and must leave 8 free bytes after it.
    #[inline]
    fn room(&self, p: u64, h: u64) -> u64 {
        let to_end = self.size - (p & self.mask);
        let free = (h + self.size).saturating_sub(p).saturating_sub(8);
        to_end.min(free)
    }

    /// Whether a record of `n` payload bytes fits at `p`.
    #[inline]
    fn fits(&self, p: u64, h: u64, n: u64) -> bool {
        rec_size(n) <= self.room(p, h)
    }

    /// The most payload bytes a record at `p` may hold (`None`: not even a header).
    #[inline]
    fn window(&self, p: u64, h: u64) -> Option<u64> {
        let room = self.room(p, h);
        (room >= HDR).then(|| (room - HDR).min(self.max_message as u64))
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

    // ---- the producer lock ---------------------------------------------------

    /// Takes the producer lock: one CAS of this thread's mark into `P_LOCK` when it
    /// is free (see [`lock_contended`](Self::lock_contended) otherwise), then repairs
    /// what a dead holder left.
    #[inline]
    fn lock(&self, deadline: Option<Instant>) -> io::Result<Guard<'_>> {
        let me = thread_mark::current();
        let word = self.region.hdr_u64::<P_LOCK>();
        let took_from_dead =
            match word.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => false,
                Err(_) => self.lock_contended(me, deadline)?,
            };
        let guard = Guard { ring: self };
        if took_from_dead {
            self.recover();
        }
        Ok(guard)
    }

    /// Releases the producer lock. With the `membarrier` protocol the release is a
    /// plain store, so a put ends without a locked instruction (which would wait for
    /// the record's stores to drain); lock waiters pay with the barrier instead.
    #[inline]
    fn unlock(&self) {
        let word = self.region.hdr_u64::<P_LOCK>();
        if self.asymmetric {
            word.store(0, Ordering::Release);
        } else {
            word.swap(0, Ordering::SeqCst);
        }
        self.wake(Wait::Lock, false, false);
    }

    /// [`lock`](Self::lock) when the first try found the lock held: spin, then
    /// sleep, and take over from a holder that [`thread_mark::liveness`] proves dead
    /// (returns `true` then). A live holder is waited for however long it holds on.
    #[cold]
    #[inline(never)]
    fn lock_contended(&self, me: u64, deadline: Option<Instant>) -> io::Result<bool> {
        let word = self.region.hdr_u64::<P_LOCK>();
        let take = |from: u64| {
            word.compare_exchange(from, me, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        };
        for _ in 0..LOCK_SPINS {
            std::hint::spin_loop();
            if word.load(Ordering::Relaxed) == 0 && take(0) {
                return Ok(false);
            }
        }
        let (seq_off, waiters_off) = Wait::Lock.offs();
        let seq = self.u32(seq_off);
        let waiters = self.u32(waiters_off);
        // The holder we have been waiting on, and since when.
        let mut watched = (0u64, Instant::now());
        loop {
            let holder = word.load(Ordering::Acquire);
            if holder == 0 {
                if take(0) {
                    return Ok(false);
                }
                continue;
            }
            let now = Instant::now();
            if holder != watched.0 {
                watched = (holder, now);
            } else if now - watched.1 >= HOLDER_CHECK {
                if thread_mark::liveness(holder) == Liveness::Dead {
                    if take(holder) {
                        return Ok(true);
                    }
                    continue;
                }
                watched.1 = now;
            }
            if deadline.is_some_and(|d| now >= d) {
                return Err(io::ErrorKind::TimedOut.into());
            }
            let s = seq.load(Ordering::Acquire);
            waiters.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if self.asymmetric {
                // As for data waits: the holder releases with a plain store and
                // looks at the waiter count without a fence.
                let _ = barrier::global_barrier();
            }
            if word.load(Ordering::SeqCst) == holder {
                let nap = deadline.map_or(HOLDER_CHECK, |d| {
                    d.saturating_duration_since(now).min(HOLDER_CHECK)
                });
                let _ = futex_wait(seq, s, Some(nap));
            }
            decrement(waiters);
        }
    }

    /// Counts and repairs a producer's death (the lock is held).
    #[cold]
    #[inline(never)]
    fn recover(&self) {
        self.region
            .hdr_u64::<H_RECOVERIES>()
            .fetch_add(1, Ordering::Relaxed);
        self.repair_producer();
    }

    /// Finishes a put whose producer died after its commit point (see the module
    /// docs). Called with the producer lock held.
    fn repair_producer(&self) {
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

    // ---- put -----------------------------------------------------------------

    fn encode_at<T: Serialize + ?Sized>(
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

    fn encoded_size<T: Serialize + ?Sized>(&self, item: Item<'_, T>) -> Result<u64, MessageError> {
        match item {
            Item::Value(v) => {
                crate::codec::encode_plain_into(v, postcard::ser_flavors::Size::default())
                    .map(|n| n as u64)
                    .map_err(MessageError::encode)
            }
            Item::Bytes(b) => Ok((write_varint(b.len() as u64, &mut [0; 10]) + b.len()) as u64),
        }
    }

    #[inline]
    fn commit(&self, t: u64, c: u64, p: u64, n: u64) {
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

    /// One put attempt under the producer lock. On `Full`, `need` is set to the
    /// record's size once it is known.
    fn put_locked<T: Serialize + ?Sized>(
        &self,
        value: Item<'_, T>,
        need: &mut u64,
    ) -> Result<(), PutFail> {
        fault::step(1);
        // The commit stores the counts, whose line the waiting consumers keep
        // reading: fetch it back now, while the record is written.
        self.region.prefetch_for_write(P_TAIL, 16);
        if self.is_closed() {
            return Err(PutFail::Closed);
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
        let wants_wrap =
            |h: u64| self.window(q, h).unwrap_or(0) >= self.window(t, h).unwrap_or(0).min(4096);
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
    fn check_size(&self, n: u64) -> Result<(), PutFail> {
        if n > self.max_message as u64 {
            return Err(PutFail::Invalid(MessageError::too_large(
                n as usize,
                self.max_message,
            )));
        }
        Ok(())
    }

    /// Whether a record of `n` payload bytes would fit now (lock-free estimate).
    fn has_space(&self, n: u64) -> bool {
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
    pub(crate) fn put<T: Serialize + ?Sized>(
        &self,
        value: Item<'_, T>,
        block: bool,
        deadline: Option<Instant>,
    ) -> Result<(), PutFail> {
        let mut need = 0;
        loop {
            if self.is_closed() {
                return Err(PutFail::Closed);
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

    // ---- get -----------------------------------------------------------------

    /// One lock-free get attempt: `read(region, offset, len)` copies the payload out
    /// (optimistically, see the module docs), then the item is claimed with one CAS
    /// on the get count. The record is consumed whether `read` succeeds or not (a
    /// payload that cannot be read as the expected type is reported, not retried).
    fn take<X>(
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
    fn help_head(&self) {
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

    /// Whether a get would find a message now (lock-free estimate).
    fn has_data(&self) -> bool {
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
                    Ok(None) => Err(GetFail::Closed),
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
            // producers pause for one look, or `BATCH_LOOKS` looks) instead of
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
                p - g >= batch || bytes >= BATCH_BYTES || p == prev || looks >= BATCH_LOOKS
            };
            let ready = || self.has_data() || self.is_closed();
            if !self.wait(Wait::Data, deadline, spin, ready) {
                return Err(GetFail::Timeout);
            }
        }
    }

    // ---- close, join ---------------------------------------------------------

    /// Closes the queue: puts fail from now on; gets drain what is there.
    pub(crate) fn close(&self) {
        if !self.is_closed() {
            // Under the producer lock: no put is half-way through when the flag flips,
            // so every put that succeeded is visible to a get that sees the flag.
            let g = self.lock(None);
            self.region
                .hdr_u32::<H_CLOSED>()
                .store(1, Ordering::Release);
            drop(g);
        }
        self.wake(Wait::Data, true, true);
        self.wake(Wait::Space, true, true);
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

    // ---- waiting -------------------------------------------------------------

    /// Wakes waiters of `w`, if any are registered. `need_fence`: false when the
    /// caller's last store that the waiters' condition reads was a `SeqCst`
    /// read-modify-write (the claim and head CASes of `take`, the `put_count` swap
    /// of a put): a waiter registers with a `SeqCst` RMW and a `SeqCst` fence before
    /// it checks, so either it sees that store or this `SeqCst` load sees it
    /// registered, without a second fence here.
    #[inline(always)]
    fn wake(&self, w: Wait, all: bool, need_fence: bool) {
        if need_fence {
            fence(Ordering::SeqCst);
        } else {
            // Keeps the caller's last store before the load below in program
            // order; the CPU may still swap them, which is what the caller's
            // `SeqCst` RMW or the waiter's `membarrier` covers.
            compiler_fence(Ordering::SeqCst);
        }
        let waiters = match w {
            Wait::Data => self.region.hdr_u32::<W_DATA_WAITERS>(),
            Wait::Space => self.region.hdr_u32::<W_SPACE_WAITERS>(),
            Wait::Join => self.region.hdr_u32::<J_WAITERS>(),
            Wait::Lock => self.region.hdr_u32::<W_LOCK_WAITERS>(),
        };
        if waiters.load(Ordering::SeqCst) != 0 {
            self.wake_slow(w, all);
        }
    }

    /// The rest of [`wake`](Self::wake), once waiters were seen.
    #[cold]
    #[inline(never)]
    fn wake_slow(&self, w: Wait, all: bool) {
        let (seq_off, waiters_off) = w.offs();
        let waiters = self.u32(waiters_off);
        let seq = self.u32(seq_off);
        seq.fetch_add(1, Ordering::Release);
        let woken = futex_wake(seq, if all { i32::MAX as u32 } else { 1 });
        let misses = &self.wake_misses[w as usize];
        if woken > 0 {
            misses.store(0, Ordering::Relaxed);
        } else if misses.fetch_add(1, Ordering::Relaxed) >= 64 {
            // Waiters were registered, yet 64 wakes in a row found no sleeper: a
            // waiter died asleep and left the count high. Take one off; should this
            // be wrong, that waiter still wakes on its own within `NAP`.
            misses.store(0, Ordering::Relaxed);
            decrement(waiters);
        }
    }

    /// Spins, then sleeps, until `cond()` or `deadline`. Returns whether `cond()`
    /// held.
    fn wait(
        &self,
        w: Wait,
        deadline: Option<Instant>,
        spin_cond: impl Fn() -> bool,
        cond: impl Fn() -> bool,
    ) -> bool {
        // Spin on a cheap check, backing off between looks: a look at a cache line
        // the other side is writing steals that line from it, and letting it write
        // several items before we look turns a per-item handoff into a batch.
        let budget = Duration::from_nanos(u64::from(self.spin_ns.load(Ordering::Relaxed)));
        let start = Instant::now();
        let mut pause = 2u32;
        let mut looks = 0u32;
        loop {
            if spin_cond() {
                return true;
            }
            for _ in 0..pause {
                std::hint::spin_loop();
            }
            pause = (pause * 2).min(64);
            looks = looks.wrapping_add(1);
            if looks % 8 == 0 {
                let now = Instant::now();
                if now - start >= budget || deadline.is_some_and(|d| now >= d) {
                    break;
                }
                // Every 8 looks (about 10 µs once the pause is at its longest; the
                // first after about 5 µs), let a process that waits for this CPU
                // (perhaps the very one we wait for) run: with more processes than
                // CPUs, yielding here sooner measured up to a third more items/s.
                std::thread::yield_now();
            }
        }
        let (seq_off, waiters_off) = w.offs();
        let seq = self.u32(seq_off);
        let waiters = self.u32(waiters_off);
        loop {
            let s = seq.load(Ordering::Acquire);
            waiters.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if self.asymmetric && matches!(w, Wait::Data) {
                // Producers count their puts with a plain store and then look at
                // the waiter count without a fence: this barrier runs one on their
                // CPUs, so that either they see us registered or we see their put.
                // Should it fail, a missed wake costs at most one `NAP`.
                let _ = barrier::global_barrier();
            }
            if cond() {
                decrement(waiters);
                self.adapt_spin(start.elapsed(), true);
                return true;
            }
            let nap = match deadline {
                None => NAP,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        decrement(waiters);
                        return false;
                    }
                    left.min(NAP)
                }
            };
            fault::sleeping();
            let _ = futex_wait(seq, s, Some(nap));
            decrement(waiters);
            if cond() {
                self.adapt_spin(start.elapsed(), true);
                return true;
            }
            if start.elapsed() > Duration::from_nanos(u64::from(SPIN_MAX_NS)) {
                self.adapt_spin(start.elapsed(), true);
            }
        }
    }

    /// Tunes the spin budget from how long a wait really took: a wait that needed a
    /// sleep but was over soon (within [`SPIN_MAX_NS`], wake-up included) would have
    /// been cheaper as a longer spin; a long one means the other side is idle, and
    /// spinning for it wastes a CPU.
    fn adapt_spin(&self, waited: Duration, slept: bool) {
        let cur = self.spin_ns.load(Ordering::Relaxed);
        let waited = waited.as_nanos().min(u128::from(u32::MAX)) as u32;
        let next = if !slept {
            cur
        } else if waited <= SPIN_MAX_NS {
            cur.max(waited.saturating_add(waited / 4)).min(SPIN_MAX_NS)
        } else {
            (cur / 2).max(SPIN_MIN_NS)
        };
        if next != cur {
            self.spin_ns.store(next, Ordering::Relaxed);
        }
    }
}

fn decrement(w: &AtomicU32) {
    let _ = w.fetch_update(Ordering::SeqCst, Ordering::Relaxed, |v| v.checked_sub(1));
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

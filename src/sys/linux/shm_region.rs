//! A shared mapping seen as typed cells: atomics at checked offsets and byte copies
//! in and out. Used by the queues.
//!
//! # Safety
//!
//! [`SharedRegion`] owns one [`Mapping`] for its whole life. Everything that touches
//! the mapping goes through a method here that checks its offset against the
//! mapping's length (and alignment, for atomics) before forming a
//! pointer, so an offset computed from a bad value read out of shared memory can
//! panic but never reach outside the mapping. Bytes that another process may write
//! are only ever accessed through atomics or copied with `ptr::copy_nonoverlapping`;
//! no `&[u8]`/`&mut [u8]` into the mapping is handed out. The atomics are handed out
//! as `&AtomicU32`/`&AtomicU64` borrowed from `&self`, which keeps the mapping alive
//! while they are used.

use std::mem::align_of;
use std::ptr;
use std::sync::atomic::{AtomicU32, AtomicU64};

use super::memory::Mapping;

/// Bytes at the start of every region that [`SharedRegion::hdr_u64`] and
/// [`SharedRegion::hdr_u32`] may address without a run-time bounds check.
pub(crate) const HEADER_BYTES: usize = 4096;

/// One shared mapping, accessed only through checked, typed operations.
#[derive(Debug)]
pub(crate) struct SharedRegion {
    map: Mapping,
}

impl SharedRegion {
    /// Wraps `map`.
    ///
    /// # Panics
    ///
    /// If the mapping is shorter than [`HEADER_BYTES`].
    pub(crate) fn new(map: Mapping) -> SharedRegion {
        assert!(
            map.len() >= HEADER_BYTES,
            "a shared region needs at least {HEADER_BYTES} bytes, not {}",
            map.len()
        );
        SharedRegion { map }
    }

    /// The `AtomicU64` at the constant header offset `OFF`: bounds and alignment
    /// are checked at compile time against [`HEADER_BYTES`], which `new` checked
    /// against the mapping, so the hot paths pay no run-time check.
    #[inline(always)]
    pub(crate) fn hdr_u64<const OFF: usize>(&self) -> &AtomicU64 {
        const {
            assert!(OFF % align_of::<AtomicU64>() == 0 && OFF + 8 <= HEADER_BYTES);
        }
        // SAFETY:
        // - `OFF + 8 <= HEADER_BYTES <= self.map.len()` (compile-time assertion
        //   above; `new` checked the mapping's length), so the pointer and the 8
        //   bytes behind it are inside the mapping, and `OFF` is 8-aligned (the
        //   mapping is page-aligned);
        // - the mapping is readable and writable and lives as long as `&self`;
        // - every process accesses this word atomically (the queue protocol).
        unsafe { &*self.map.as_ptr().add(OFF).cast::<AtomicU64>() }
    }

    /// The `AtomicU32` at the constant header offset `OFF` (see [`Self::hdr_u64`]).
    #[inline(always)]
    pub(crate) fn hdr_u32<const OFF: usize>(&self) -> &AtomicU32 {
        const {
            assert!(OFF % align_of::<AtomicU32>() == 0 && OFF + 4 <= HEADER_BYTES);
        }
        // SAFETY: as for `hdr_u64`, with 4 bytes and 4-alignment.
        unsafe { &*self.map.as_ptr().add(OFF).cast::<AtomicU32>() }
    }

    /// The address of `len` bytes at `off`, which must lie inside the mapping and be
    /// `align`-aligned (panics otherwise). The panic's message is built in a cold
    /// function of its own: built here, its arguments would be written to the stack
    /// on every access, and the queue's hot paths make several accesses each.
    #[inline(always)]
    fn check(&self, off: usize, len: usize, align: usize) -> *mut u8 {
        match off.checked_add(len) {
            Some(end) if end <= self.map.len() && off % align == 0 => {
                // SAFETY:
                // - `off + len <= self.map.len()` was checked just above, so the
                //   resulting pointer stays inside (or one past the end of) the mapped
                //   range.
                unsafe { self.map.as_ptr().add(off) }
            }
            _ => bad_access(off, len, align, self.map.len()),
        }
    }

    /// The `AtomicU32` at `off` (4-aligned, inside the mapping; panics otherwise).
    #[inline]
    pub(crate) fn u32_at(&self, off: usize) -> &AtomicU32 {
        let p = self.check(off, 4, align_of::<AtomicU32>());
        // SAFETY:
        // - `p` is in bounds and aligned for `AtomicU32` (checked in `check`);
        // - the mapping is readable and writable and lives as long as `&self`;
        // - every process accesses this word atomically (the queue protocol), and an
        //   `AtomicU32` may be shared between threads (and so processes) by `&`.
        unsafe { &*p.cast::<AtomicU32>() }
    }

    /// The `AtomicU64` at `off` (8-aligned, inside the mapping; panics otherwise).
    #[inline]
    pub(crate) fn u64_at(&self, off: usize) -> &AtomicU64 {
        let p = self.check(off, 8, align_of::<AtomicU64>());
        // SAFETY:
        // - `p` is in bounds and aligned for `AtomicU64` (checked in `check`);
        // - the mapping is readable and writable and lives as long as `&self`;
        // - every process accesses this word atomically (the queue protocol).
        unsafe { &*p.cast::<AtomicU64>() }
    }

    /// Copies `src` into the mapping at `off`.
    #[inline]
    pub(crate) fn write(&self, off: usize, src: &[u8]) {
        let p = self.check(off, src.len(), 1);
        // SAFETY:
        // - the destination range `off..off + src.len()` is inside the mapping
        //   (checked), and the mapping is writable;
        // - `src` is a Rust slice, which cannot overlap the mapping because this
        //   module never hands out references into it;
        // - concurrent writers of the same bytes would only garble bytes, which the
        //   readers validate; the queue protocol gives one writer per record.
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), p, src.len()) };
    }

    /// Asks the CPU to fetch the cache lines of `off..off + len` for writing, ahead
    /// of the stores that will need them: they come in exclusive, so those stores do
    /// not wait for other CPUs to give the lines up. A hint: nothing is read or
    /// written, and a range outside the mapping is ignored.
    #[inline(always)]
    pub(crate) fn prefetch_for_write(&self, off: usize, len: usize) {
        if off.checked_add(len).is_none_or(|end| end > self.map.len()) {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        {
            let start = self.map.as_ptr() as usize + off;
            let end = start + len;
            let mut line = start & !63;
            while line < end {
                // SAFETY: `prefetchw` only hints the cache: it never faults, reads
                // or writes memory, whatever the address (CPUs without it run it as
                // a no-op), and touches no register but its operand and no flag.
                unsafe {
                    std::arch::asm!(
                        "prefetchw [{0}]",
                        in(reg) line,
                        options(nostack, preserves_flags, readonly)
                    );
                }
                line += 64;
            }
        }
    }

    /// Copies `dst.len()` bytes out of the mapping at `off`.
    #[inline]
    pub(crate) fn read(&self, off: usize, dst: &mut [u8]) {
        let p = self.check(off, dst.len(), 1);
        // SAFETY:
        // - the source range is inside the mapping (checked) and readable;
        // - `dst` is a Rust slice and cannot overlap the mapping (no references into
        //   it exist).
        unsafe { ptr::copy_nonoverlapping(p, dst.as_mut_ptr(), dst.len()) };
    }

    /// Appends `len` bytes copied out of the mapping at `off` to `dst`, without
    /// first zero-filling the new space.
    #[inline]
    pub(crate) fn read_append(&self, off: usize, len: usize, dst: &mut Vec<u8>) {
        let p = self.check(off, len, 1);
        dst.reserve(len);
        let old = dst.len();
        // SAFETY:
        // - the source range is inside the mapping (checked) and readable;
        // - `reserve` made room for `len` more bytes after `old`, and the spare
        //   capacity of a `Vec` cannot overlap the mapping;
        // - `set_len(old + len)` follows the copy that initialised those bytes.
        unsafe {
            ptr::copy_nonoverlapping(p, dst.as_mut_ptr().add(old), len);
            dst.set_len(old + len);
        }
    }
}

/// The panic of [`SharedRegion::check`] (see there).
#[cold]
#[inline(never)]
fn bad_access(off: usize, len: usize, align: usize, mapped: usize) -> ! {
    match off.checked_add(len) {
        None => panic!("shared-memory access at {off}+{len}: offset overflow"),
        Some(end) if end > mapped => {
            panic!("shared-memory access at {off}+{len} is outside the mapping of {mapped} bytes")
        }
        _ => panic!("shared-memory access at {off} is not {align}-aligned"),
    }
}

//! Typed views into shared mappings: the one place above `sys` that turns the
//! address of a mapping into Rust values.
//!
//! # Safety
//!
//! Bytes in a shared mapping can change at any moment (another process writes
//! them), so this file never creates a `&T` or `&mut T` to plain data there. What
//! it hands out, and why each is sound:
//!
//! - **Headers** (`&H` for `H: ShmHeader`): types whose every field is an atomic or a
//!   [`ShmMutex`] (an `UnsafeCell` around a `pthread_mutex_t`), so a shared
//!   reference claims no immutability; every bit pattern is a valid value (other
//!   processes may write anything), and the all-zero pattern is what a fresh memfd
//!   holds. The reference lives no longer than the `Shared` that keeps the mapping.
//! - **Plain data** (`T: ShmSafe`, bytes): copied in and out with relaxed atomic
//!   loads and stores, never referenced in place. A copy may tear when another
//!   process writes at the same time (that is what the optional lock of `Value` and
//!   `Array` is for) but is never a data race in the Rust sense; since `ShmSafe`
//!   types have no padding and accept every bit pattern, any copied bytes form a
//!   valid `T`. Every offset is checked against the mapping's length first.
//! - **Mutexes**: a held robust mutex is linked into its holder thread's robust list
//!   through pointers stored inside it; if the mapping went away while a thread of
//!   this process held it, glibc would later write through a dangling pointer.
//!   `Shared::drop` therefore leaks the mapping (and its descriptor) when any mutex
//!   in it is still held by a thread of this process: only possible after
//!   `mem::forget` of a guard, or a thread that exited holding it.
//!
//! A [`Fresh`] token, which only [`Shared::create`] makes, proves that a mapping is
//! not yet visible to any other thread or process; mutex initialisation requires it.

#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, align_of, size_of};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{
    AtomicI8, AtomicI16, AtomicI32, AtomicI64, AtomicIsize, AtomicU8, AtomicU16, AtomicU32,
    AtomicU64, AtomicUsize, Ordering,
};

use crate::sys::memory::{self, Mapping};
use crate::sys::pthread::{Acquire, MutexKind, RobustMutex};

/// Plain data that may live in shared memory: [`Value`](super::Value),
/// [`Array`](super::Array) and [`SharedMemory::load`](super::SharedMemory::load)
/// accept only these types.
///
/// Implemented for the integer and floating-point types and for arrays of
/// `ShmSafe` types. `bool` and `char` are deliberately absent: another process may
/// write any byte, and most bytes are not a valid `bool`. Store a `u8` (0 or 1)
/// instead.
///
/// # Safety
///
/// Implement it only for a type that is
/// - `#[repr(C)]` (or `#[repr(transparent)]`) with every field `ShmSafe`,
/// - free of padding bytes (add explicit padding fields),
/// - valid for **every** bit pattern (no `bool`, `char`, enums, references,
///   `NonZero*`), and
/// - free of pointers and of anything whose meaning is local to a process (file
///   descriptors, addresses, `Box`, `String`, `Vec`).
///
/// # Examples
///
/// ```
/// use mproc::shm::{ShmSafe, Value};
///
/// #[derive(Clone, Copy, Debug, PartialEq)]
/// #[repr(C)]
/// struct Point {
///     x: f64,
///     y: f64,
/// }
/// // SAFETY: repr(C), two f64 fields, no padding, every bit pattern is a valid f64.
/// unsafe impl ShmSafe for Point {}
///
/// let p = Value::new(Point { x: 1.0, y: 2.0 })?;
/// p.set(Point { x: 3.0, y: 4.0 });
/// assert_eq!(p.get(), Point { x: 3.0, y: 4.0 });
/// # Ok::<(), mproc::shm::ShmError>(())
/// ```
pub unsafe trait ShmSafe: Copy + Send + Sync + 'static {}

macro_rules! shm_safe {
    ($($t:ty),*) => {$(
        // SAFETY: a primitive number: no padding, no pointers, every bit pattern valid.
        unsafe impl ShmSafe for $t {}
    )*};
}
shm_safe!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64
);

// SAFETY: an array of `ShmSafe` elements has no padding between them (size is a
// multiple of alignment) and is valid for every bit pattern when its elements are.
unsafe impl<T: ShmSafe, const N: usize> ShmSafe for [T; N] {}

/// Types that may be viewed in place (`&Self`) inside a shared mapping.
///
/// # Safety
///
/// Every field is an atomic, a [`ShmMutex`] or another `ShmHeader` (interior
/// mutability only), the type is `#[repr(C)]`, and every bit pattern (in particular
/// all zeros) is a valid value.
pub(crate) unsafe trait ShmHeader: Send + Sync + 'static {
    /// Whether the tail after this header is an array of [`MutexSlot`]s (checked
    /// for held mutexes before unmapping).
    const TAIL_IS_MUTEX_SLOTS: bool = false;

    /// Calls `f` with every mutex inside `self` (so that dropping a mapping can tell
    /// whether one is still held).
    fn for_each_mutex(&self, f: &mut dyn FnMut(&ShmMutex)) {
        let _ = f;
    }
}

macro_rules! shm_header_atomic {
    ($($t:ty),*) => {$(
        // SAFETY: an atomic integer: interior mutability, every bit pattern valid.
        unsafe impl ShmHeader for $t {}
    )*};
}
shm_header_atomic!(
    AtomicU8,
    AtomicU16,
    AtomicU32,
    AtomicU64,
    AtomicUsize,
    AtomicI8,
    AtomicI16,
    AtomicI32,
    AtomicI64,
    AtomicIsize
);

// SAFETY: an array of headers is a header: same properties, element by element.
unsafe impl<T: ShmHeader, const N: usize> ShmHeader for [T; N] {
    fn for_each_mutex(&self, f: &mut dyn FnMut(&ShmMutex)) {
        for t in self {
            t.for_each_mutex(f);
        }
    }
}

/// Proof that a mapping is not yet shared with any other thread or process.
pub(crate) struct Fresh(());

/// A robust, process-shared mutex inside a mapping (see `sys::pthread`).
///
/// Only ever reached through a `&Shared<H>`, which keeps the mapping alive and
/// leaks it, rather than unmapping it, while a thread of this process holds the
/// mutex.
#[repr(transparent)]
pub(crate) struct ShmMutex(RobustMutex);

// SAFETY: an `UnsafeCell` around a `pthread_mutex_t` that glibc changes atomically;
// every bit pattern is a value (a corrupted one makes the mutex calls fail or
// misbehave for this mutex, see `sys::pthread`).
unsafe impl ShmHeader for ShmMutex {
    fn for_each_mutex(&self, f: &mut dyn FnMut(&ShmMutex)) {
        f(self);
    }
}

impl ShmMutex {
    /// Initialises the mutex in a mapping nobody else can see yet.
    pub(crate) fn init(&self, _fresh: &Fresh, kind: MutexKind) -> io::Result<()> {
        // SAFETY:
        // - `Fresh` exists only inside `Shared::create`, before the mapping's
        //   descriptor is shared, so no other thread or process uses these bytes;
        // - a fresh mapping is all zeros, so the mutex is not held.
        unsafe { self.0.init(kind) }
    }

    /// See `RobustMutex::lock`.
    #[inline]
    pub(crate) fn lock(&self) -> io::Result<Acquire> {
        // SAFETY:
        // - the mutex was initialised by its creator before the mapping was
        //   published (callers check the header's magic first);
        // - the mapping stays mapped while this process holds the mutex: `self` is
        //   borrowed from a `Shared`, and `Shared::drop` leaks rather than unmaps a
        //   mapping with a mutex held by a thread of this process.
        unsafe { self.0.lock() }
    }

    /// See `RobustMutex::try_lock`.
    #[inline]
    pub(crate) fn try_lock(&self) -> io::Result<Acquire> {
        // SAFETY: as in `lock`.
        unsafe { self.0.try_lock() }
    }

    /// See `RobustMutex::make_consistent`.
    pub(crate) fn make_consistent(&self) -> io::Result<()> {
        self.0.make_consistent()
    }

    /// See `RobustMutex::unlock`.
    #[inline]
    pub(crate) fn unlock(&self) -> io::Result<()> {
        self.0.unlock()
    }

    fn held_by_this_process(&self) -> bool {
        self.0.held_by_this_process()
    }
}

/// Who removes the name of a named region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unlink {
    /// Never (anonymous, or opened by name, or persisted).
    Never,
    /// When this region is dropped (the creator's last handle).
    OnDrop,
}

/// One shared mapping and the descriptor behind it.
pub(crate) struct Region {
    map: Mapping,
    fd: OwnedFd,
    name: Option<CString>,
    unlink: std::sync::Mutex<Unlink>,
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("len", &self.map.len())
            .field("name", &self.name)
            .finish()
    }
}

impl Region {
    /// A new anonymous (memfd) region of `len` zero bytes; `debug_name` shows in
    /// `/proc/<pid>/fd`.
    pub(crate) fn anonymous(debug_name: &CStr, len: usize) -> io::Result<Region> {
        let fd = memory::memfd(debug_name, len)?;
        Region::from_fd(fd, None, Unlink::Never)
    }

    /// Creates the named POSIX shared-memory object `name` (exclusively), of `len`
    /// zero bytes.
    pub(crate) fn create_named(name: &CStr, len: usize, unlink: Unlink) -> io::Result<Region> {
        let fd = memory::shm_open(name, true, len)?;
        match Region::from_fd(fd, Some(name.to_owned()), unlink) {
            Ok(r) => Ok(r),
            Err(e) => {
                let _ = memory::shm_unlink(name);
                Err(e)
            }
        }
    }

    /// Opens the existing named object `name`.
    pub(crate) fn open_named(name: &CStr) -> io::Result<Region> {
        let fd = memory::shm_open(name, false, 0)?;
        Region::from_fd(fd, Some(name.to_owned()), Unlink::Never)
    }

    /// Maps the whole file behind `fd`.
    pub(crate) fn from_fd(
        fd: OwnedFd,
        name: Option<CString>,
        unlink: Unlink,
    ) -> io::Result<Region> {
        let len = memory::file_len(fd.as_fd())?;
        let map = Mapping::new(fd.as_fd(), len)?;
        Ok(Region {
            map,
            fd,
            name,
            unlink: std::sync::Mutex::new(unlink),
        })
    }

    /// The mapping's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The descriptor, to send to another process.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The name of a named region.
    pub(crate) fn name(&self) -> Option<&CStr> {
        self.name.as_deref()
    }

    /// Changes who removes the name (see [`Unlink`]).
    pub(crate) fn set_unlink(&self, unlink: Unlink) {
        *self.unlink.lock().unwrap_or_else(|e| e.into_inner()) = unlink;
    }

    /// Who removes the name now.
    pub(crate) fn unlink_policy(&self) -> Unlink {
        *self.unlink.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The address of the first byte (for users that want to hand it to foreign
    /// code; never dereferenced here without the checks below).
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.map.as_ptr()
    }

    fn check(&self, offset: usize, len: usize, align: usize) -> Option<*mut u8> {
        let end = offset.checked_add(len)?;
        if end > self.map.len() {
            return None;
        }
        // SAFETY: `offset <= end <= len`, so the result stays inside (or one past)
        // the mapping, which is a single allocation.
        let p = unsafe { self.map.as_ptr().add(offset) };
        (p as usize % align == 0).then_some(p)
    }

    /// A view of the header `H` at `offset`, or `None` when it does not fit or is
    /// misaligned.
    pub(crate) fn view<H: ShmHeader>(&self, offset: usize) -> Option<&H> {
        let p = self.check(offset, size_of::<H>(), align_of::<H>())?;
        // SAFETY:
        // - `p` is in bounds and aligned for `H` (checked above);
        // - `H: ShmHeader`: interior mutability only, every bit pattern valid, so a
        //   shared reference is sound although other processes write these bytes;
        // - the reference borrows `self`, which keeps the mapping alive.
        Some(unsafe { &*p.cast::<H>() })
    }

    /// A view of `n` consecutive headers `S` at `offset`.
    pub(crate) fn view_slice<S: ShmHeader>(&self, offset: usize, n: usize) -> Option<&[S]> {
        let p = self.check(offset, size_of::<S>().checked_mul(n)?, align_of::<S>())?;
        // SAFETY: as in `view`, for `n` elements (the length was checked as a whole).
        Some(unsafe { std::slice::from_raw_parts(p.cast::<S>(), n) })
    }

    /// Copies `dst.len()` bytes out of the mapping from `offset`; `None` when out of
    /// bounds.
    pub(crate) fn read_bytes(&self, offset: usize, dst: &mut [u8]) -> Option<()> {
        let p = self.check(offset, dst.len(), 1)?;
        // SAFETY: `p .. p + dst.len()` is inside the mapping (checked above).
        unsafe { atomic_copy_out(p, dst) };
        Some(())
    }

    /// Copies `src` into the mapping at `offset`; `None` when out of bounds.
    pub(crate) fn write_bytes(&self, offset: usize, src: &[u8]) -> Option<()> {
        let p = self.check(offset, src.len(), 1)?;
        // SAFETY: `p .. p + src.len()` is inside the mapping (checked above).
        unsafe { atomic_copy_in(p, src) };
        Some(())
    }

    /// Copies a `T` out of the mapping at `offset` (any alignment).
    pub(crate) fn read<T: ShmSafe>(&self, offset: usize) -> Option<T> {
        let mut out = std::mem::MaybeUninit::<T>::uninit();
        // SAFETY: `out` is `size_of::<T>()` writable bytes; `u8` has no invalid
        // values, and the slice is fully written by `read_bytes` before it is read.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u8>(), size_of::<T>())
        };
        bytes.fill(0);
        self.read_bytes(offset, bytes)?;
        // SAFETY: all `size_of::<T>()` bytes were written, and `T: ShmSafe` accepts
        // every bit pattern.
        Some(unsafe { out.assume_init() })
    }

    /// Copies `value` into the mapping at `offset` (any alignment).
    pub(crate) fn write<T: ShmSafe>(&self, offset: usize, value: T) -> Option<()> {
        self.write_bytes(offset, as_bytes(&value))
    }

    /// Copies `src` into the mapping at `offset`.
    pub(crate) fn write_slice<T: ShmSafe>(&self, offset: usize, src: &[T]) -> Option<()> {
        // SAFETY: `src` is `size_of_val(src)` initialised bytes (no padding in a
        // `ShmSafe` type), readable for the borrow.
        let bytes =
            unsafe { std::slice::from_raw_parts(src.as_ptr().cast::<u8>(), size_of_val(src)) };
        self.write_bytes(offset, bytes)
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if self.unlink_policy() == Unlink::OnDrop {
            if let Some(name) = &self.name {
                let _ = memory::shm_unlink(name);
            }
        }
    }
}

fn as_bytes<T: ShmSafe>(value: &T) -> &[u8] {
    // SAFETY: `T: ShmSafe` has no padding, so all `size_of::<T>()` bytes of `value`
    // are initialised; the slice borrows `value`.
    unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }
}

/// Copies `dst.len()` bytes from shared memory at `src` with relaxed atomic loads
/// (8 bytes at a time where `src` is aligned).
///
/// # Safety
///
/// `src .. src + dst.len()` lies inside a live mapping.
unsafe fn atomic_copy_out(src: *const u8, dst: &mut [u8]) {
    let n = dst.len();
    let mut i = 0;
    while i < n && (src as usize + i) % 8 != 0 {
        // SAFETY: in bounds (caller); a `u8` is always aligned; the byte is accessed
        // only atomically in this crate.
        dst[i] = unsafe { AtomicU8::from_ptr(src.add(i).cast_mut()) }.load(Ordering::Relaxed);
        i += 1;
    }
    while i + 8 <= n {
        // SAFETY: in bounds (caller) and 8-aligned (the loop above aligned `src + i`).
        let w = unsafe { AtomicU64::from_ptr(src.add(i).cast::<u64>().cast_mut()) }
            .load(Ordering::Relaxed);
        dst[i..i + 8].copy_from_slice(&w.to_ne_bytes());
        i += 8;
    }
    while i < n {
        // SAFETY: as in the first loop.
        dst[i] = unsafe { AtomicU8::from_ptr(src.add(i).cast_mut()) }.load(Ordering::Relaxed);
        i += 1;
    }
}

/// Copies `src` into shared memory at `dst` with relaxed atomic stores.
///
/// # Safety
///
/// `dst .. dst + src.len()` lies inside a live, writable mapping.
unsafe fn atomic_copy_in(dst: *mut u8, src: &[u8]) {
    let n = src.len();
    let mut i = 0;
    while i < n && (dst as usize + i) % 8 != 0 {
        // SAFETY: in bounds (caller); bytes there are accessed only atomically here.
        unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(src[i], Ordering::Relaxed);
        i += 1;
    }
    while i + 8 <= n {
        let w = u64::from_ne_bytes(src[i..i + 8].try_into().expect("8 bytes"));
        // SAFETY: in bounds (caller) and 8-aligned (the loop above aligned it).
        unsafe { AtomicU64::from_ptr(dst.add(i).cast::<u64>()) }.store(w, Ordering::Relaxed);
        i += 8;
    }
    while i < n {
        // SAFETY: as in the first loop.
        unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(src[i], Ordering::Relaxed);
        i += 1;
    }
}

/// Where the tail (slots or data) starts: after the header, 64-byte aligned so
/// that it does not share a cache line with the header's hot words.
pub(crate) const fn tail_offset<H>() -> usize {
    size_of::<H>().div_ceil(64) * 64
}

/// A region laid out as one header `H` at offset 0 and a tail of bytes after it.
///
/// The header reference is computed once, at construction, after the bounds and
/// alignment checks.
pub(crate) struct Shared<H: ShmHeader> {
    region: ManuallyDrop<Region>,
    tail_len: usize,
    _header: PhantomData<H>,
}

impl<H: ShmHeader> std::fmt::Debug for Shared<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("region", &*self.region)
            .field("tail_len", &self.tail_len)
            .finish()
    }
}

impl<H: ShmHeader> Shared<H> {
    /// Creates an anonymous region with room for `H` and `tail_len` bytes, and runs
    /// `init` on it before anyone else can see it.
    pub(crate) fn create(
        debug_name: &CStr,
        tail_len: usize,
        init: impl FnOnce(&H, &Shared<H>, &Fresh) -> io::Result<()>,
    ) -> io::Result<Shared<H>> {
        let len = tail_offset::<H>()
            .checked_add(tail_len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "size overflows"))?;
        let region = Region::anonymous(debug_name, len.max(1))?;
        Self::create_in(region, tail_len, init)
    }

    /// As [`Shared::create`], in a region the caller just created (for example a
    /// named one).
    pub(crate) fn create_in(
        region: Region,
        tail_len: usize,
        init: impl FnOnce(&H, &Shared<H>, &Fresh) -> io::Result<()>,
    ) -> io::Result<Shared<H>> {
        let shared = Shared::open(region, tail_len)?;
        init(shared.header(), &shared, &Fresh(()))?;
        Ok(shared)
    }

    /// Views a region received from elsewhere; fails when it is too small for `H`
    /// and `tail_len` bytes. The caller validates the header's contents.
    pub(crate) fn open(region: Region, tail_len: usize) -> io::Result<Shared<H>> {
        let needed = tail_offset::<H>().checked_add(tail_len);
        if needed.is_none_or(|n| n > region.len()) || region.view::<H>(0).is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "shared region of {} bytes is too small for its header and {tail_len} bytes of data",
                    region.len()
                ),
            ));
        }
        Ok(Shared {
            region: ManuallyDrop::new(region),
            tail_len,
            _header: PhantomData,
        })
    }

    /// The header.
    #[inline]
    pub(crate) fn header(&self) -> &H {
        // SAFETY:
        // - `open` checked that `H` fits at offset 0 and that the mapping is aligned
        //   for it (a mapping is page-aligned anyway);
        // - `H: ShmHeader` may be viewed in place (see `Region::view`);
        // - the reference borrows `self`, which keeps the mapping.
        unsafe { &*self.region.as_ptr().cast::<H>() }
    }

    /// The region (for its descriptor, name and byte access).
    pub(crate) fn region(&self) -> &Region {
        &self.region
    }

    /// The tail viewed as `n` headers `S`.
    pub(crate) fn tail_slots<S: ShmHeader>(&self, n: usize) -> Option<&[S]> {
        if size_of::<S>().checked_mul(n)? > self.tail_len {
            return None;
        }
        self.region.view_slice(tail_offset::<H>(), n)
    }

    /// Copies element `index` of the tail viewed as `[T]`.
    pub(crate) fn tail_read<T: ShmSafe>(&self, index: usize) -> Option<T> {
        let off = index.checked_mul(size_of::<T>())?;
        if off.checked_add(size_of::<T>())? > self.tail_len {
            return None;
        }
        self.region.read(tail_offset::<H>() + off)
    }

    /// Writes element `index` of the tail viewed as `[T]`.
    pub(crate) fn tail_write<T: ShmSafe>(&self, index: usize, value: T) -> Option<()> {
        let off = index.checked_mul(size_of::<T>())?;
        if off.checked_add(size_of::<T>())? > self.tail_len {
            return None;
        }
        self.region.write(tail_offset::<H>() + off, value)
    }

    /// Copies `n` elements of the tail, viewed as `[T]`, into a new vector.
    pub(crate) fn tail_read_vec<T: ShmSafe>(&self, n: usize) -> Option<Vec<T>> {
        let bytes = n.checked_mul(size_of::<T>())?;
        if bytes > self.tail_len {
            return None;
        }
        let mut v = Vec::<T>::with_capacity(n);
        // SAFETY: the spare capacity is `n * size_of::<T>()` writable bytes; they are
        // zeroed first so the byte slice is initialised.
        let dst = unsafe {
            let p = v.as_mut_ptr().cast::<u8>();
            std::ptr::write_bytes(p, 0, bytes);
            std::slice::from_raw_parts_mut(p, bytes)
        };
        self.region.read_bytes(tail_offset::<H>(), dst)?;
        // SAFETY: all `n` elements' bytes are initialised (zeroed, then copied), and
        // `T: ShmSafe` accepts every bit pattern; `n` is within the capacity.
        unsafe { v.set_len(n) };
        Some(v)
    }

    /// Copies `src` into the tail, viewed as `[T]`, from element `start`.
    pub(crate) fn tail_write_slice<T: ShmSafe>(&self, start: usize, src: &[T]) -> Option<()> {
        let off = start.checked_mul(size_of::<T>())?;
        if off.checked_add(size_of_val(src))? > self.tail_len {
            return None;
        }
        self.region.write_slice(tail_offset::<H>() + off, src)
    }
}

impl<H: ShmHeader> Drop for Shared<H> {
    fn drop(&mut self) {
        let mut held = false;
        self.header()
            .for_each_mutex(&mut |m| held |= m.held_by_this_process());
        if H::TAIL_IS_MUTEX_SLOTS {
            let n = self.tail_len / size_of::<MutexSlot>();
            for slot in self.tail_slots::<MutexSlot>(n).unwrap_or(&[]) {
                held |= slot.mutex.held_by_this_process();
            }
        }
        if held {
            // A thread of this process still holds a mutex in here (its guard was
            // leaked, or it exited holding it): glibc's robust list points into the
            // mapping, so it must stay mapped. Leak it, descriptor and all.
            return;
        }
        // SAFETY: `region` is dropped exactly once, here, and never used again.
        unsafe { ManuallyDrop::drop(&mut self.region) };
    }
}

/// A tail slot with a mutex, used by barriers: one 64-byte slot per party.
#[repr(C, align(64))]
pub(crate) struct MutexSlot {
    /// Held by the party that occupies the slot while it waits.
    pub(crate) mutex: ShmMutex,
    /// What the party is told when it wakes.
    pub(crate) state: AtomicU32,
    /// The pid of the party that occupies the slot.
    pub(crate) pid: AtomicU32,
    /// 0, or the wake socket of the async party occupying the slot, which holds
    /// no mutex (`Barrier::wait_async`, `aio::registry::Parked::id`).
    pub(crate) waker: AtomicU64,
}

// SAFETY: a mutex and an atomic, `repr(C)`; every bit pattern is valid.
unsafe impl ShmHeader for MutexSlot {
    fn for_each_mutex(&self, f: &mut dyn FnMut(&ShmMutex)) {
        f(&self.mutex);
    }
}

// ---------------------------------------------------------------------------------
// Layouts: the headers of mproc's shared objects. They live here because declaring
// that a type may be viewed in place (`unsafe impl ShmHeader`) is this file's job;
// the logic that uses them lives in `shm::value`, `shm::atomic` and `sync::*`.
// Every field is an atomic or a `ShmMutex`; every header starts with a magic word
// that its creator stores (Release) after initialising everything else, and that a
// receiver checks (Acquire) before use.
// ---------------------------------------------------------------------------------

/// The header of a `Value` or `Array` region; the elements follow in the tail.
#[repr(C)]
pub(crate) struct DataHeader {
    pub(crate) magic: AtomicU64,
    pub(crate) elem_size: AtomicU64,
    pub(crate) len: AtomicU64,
}

// SAFETY: `repr(C)`, atomics only.
unsafe impl ShmHeader for DataHeader {}

/// The header of a `SharedAtomic<A>`: the atomic itself sits in the header.
#[repr(C)]
pub(crate) struct AtomicHeader<A> {
    pub(crate) magic: AtomicU64,
    pub(crate) kind: AtomicU64,
    pub(crate) value: A,
}

// SAFETY: `repr(C)`; two atomics and `A`, which the sealed `AtomicPrimitive` limits to
// the std atomic integer types: interior-mutable and valid for every bit pattern.
unsafe impl<A: super::atomic::AtomicPrimitive> ShmHeader for AtomicHeader<A> {}

/// The state of one robust lock (in a `Lock`, `RLock` or a barrier); the protocol
/// is in `sync::raw`.
#[repr(C)]
pub(crate) struct LockState {
    /// 0 when free; else the holder's thread mark (`sys::thread_mark`), with the top
    /// bit set while a waiter may sleep.
    pub(crate) owner: AtomicU64,
    /// The futex word waiters sleep on; bumped by a release that found the top bit.
    pub(crate) seq: AtomicU32,
    /// The pid of the process that last acquired the lock (written by the holder).
    pub(crate) holder_pid: AtomicU32,
    /// How many times the holder holds it (more than 1 for a re-entered `RLock`);
    /// written by the holder only.
    pub(crate) depth: AtomicU32,
    /// 1 for a re-entrant lock.
    pub(crate) reentrant: AtomicU32,
    /// 1 from the moment an acquirer finds the holder died until a guard marks the
    /// state consistent again.
    pub(crate) owner_died: AtomicU32,
    /// The pid of the holder that died (valid while `owner_died` is 1).
    pub(crate) dead_pid: AtomicU32,
    /// A number that tells this lock apart from others, even when one process maps
    /// it twice (at two addresses).
    pub(crate) id: AtomicU64,
    /// The creator's PID namespace (`sys::thread_mark::pid_namespace`): holders are
    /// named by thread id, which only means the same thread within one namespace.
    pub(crate) namespace: AtomicU64,
}

// SAFETY: `repr(C)`, atomics only.
unsafe impl ShmHeader for LockState {}

/// The header of a `Lock` or `RLock`.
#[repr(C)]
pub(crate) struct LockHeader {
    pub(crate) magic: AtomicU64,
    pub(crate) state: LockState,
}

// SAFETY: `repr(C)`: an atomic and a `LockState`.
unsafe impl ShmHeader for LockHeader {
    fn for_each_mutex(&self, f: &mut dyn FnMut(&ShmMutex)) {
        self.state.for_each_mutex(f);
    }
}

/// The header of a `Condition` (its lock is a separate `Lock`).
#[repr(C)]
pub(crate) struct ConditionHeader {
    pub(crate) magic: AtomicU64,
    /// Registered waiters (high 32 bits) and granted wake-up tokens (low 32 bits).
    pub(crate) counts: AtomicU64,
    /// The futex word waiters sleep on; bumped by every notify that grants tokens.
    pub(crate) seq: AtomicU32,
}

// SAFETY: `repr(C)`, atomics only.
unsafe impl ShmHeader for ConditionHeader {}

/// The header of an `Event`.
#[repr(C)]
pub(crate) struct EventHeader {
    pub(crate) magic: AtomicU64,
    /// Flag bit, waiters bit and a generation counter (see `sync::event`).
    pub(crate) word: AtomicU32,
}

// SAFETY: `repr(C)`, atomics only.
unsafe impl ShmHeader for EventHeader {}

/// A table of async waiters (`crate::aio::registry`), in the tail of an object
/// that async tasks wait on (an `Event`).
#[repr(C)]
pub(crate) struct AsyncWaiters {
    pub(crate) count: AtomicU32,
    pub(crate) _pad: AtomicU32,
    pub(crate) slots: [AtomicU64; crate::aio::registry::SLOTS],
}

// SAFETY: `repr(C)`, atomics only.
unsafe impl ShmHeader for AsyncWaiters {}

impl AsyncWaiters {
    /// The table's view for the registry.
    pub(crate) fn table(&self) -> crate::aio::registry::Table<'_> {
        crate::aio::registry::Table {
            count: &self.count,
            slots: std::array::from_fn(|i| &self.slots[i]),
        }
    }
}

/// The header of a `Semaphore` or `BoundedSemaphore`.
#[repr(C)]
pub(crate) struct SemaphoreHeader {
    pub(crate) magic: AtomicU64,
    /// The futex word: permits available.
    pub(crate) count: AtomicU32,
    /// Processes that are (about to be) asleep on `count`.
    pub(crate) sleepers: AtomicU32,
    /// The bound of a `BoundedSemaphore`; `u32::MAX` for a plain one.
    pub(crate) bound: AtomicU32,
}

// SAFETY: `repr(C)`, atomics only.
unsafe impl ShmHeader for SemaphoreHeader {}

/// The header of a `Barrier`; its tail holds one [`MutexSlot`] per party.
#[repr(C)]
pub(crate) struct BarrierHeader {
    pub(crate) magic: AtomicU64,
    pub(crate) parties: AtomicU32,
    /// Parties that arrived in the current cycle (changed under `lock`).
    pub(crate) count: AtomicU32,
    /// 0, or why the barrier is broken (changed under `lock`).
    pub(crate) broken: AtomicU32,
    /// The pid of the party whose death broke the barrier, if that was the cause.
    pub(crate) broken_pid: AtomicU32,
    /// The futex word waiters sleep on; bumped at every release and break.
    pub(crate) seq: AtomicU32,
    /// Guards `count`, `broken` and the slots' hand-over; held while the action runs.
    pub(crate) lock: LockState,
}

// SAFETY: `repr(C)`: atomics and a `LockState`.
unsafe impl ShmHeader for BarrierHeader {
    const TAIL_IS_MUTEX_SLOTS: bool = true;

    fn for_each_mutex(&self, f: &mut dyn FnMut(&ShmMutex)) {
        self.lock.for_each_mutex(f);
    }
}

/// The copy routines at every alignment and length, on heap buffers (where
/// valgrind's memcheck sees a single byte read or written out of bounds, see
/// `.ci/run`) and through a mapping's bounds checks.
#[cfg(test)]
mod tests {
    use super::*;

    /// A heap buffer of `len` bytes holding a pattern that tells positions apart.
    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn copies_in_and_out_at_every_alignment_and_length() {
        const LEN: usize = 40;
        for start in 0..16 {
            for n in 0..=LEN - start {
                let src = pattern(n, 7);
                let mut shared = vec![0xAAu8; LEN];
                // SAFETY: `start .. start + n` lies inside `shared` (n <= LEN - start).
                unsafe { atomic_copy_in(shared.as_mut_ptr().add(start), &src) };
                assert!(shared[..start].iter().all(|&b| b == 0xAA), "{start}/{n}");
                assert_eq!(&shared[start..start + n], &src[..], "{start}/{n}");
                assert!(
                    shared[start + n..].iter().all(|&b| b == 0xAA),
                    "{start}/{n}"
                );
                let mut back = vec![0u8; n];
                // SAFETY: as above.
                unsafe { atomic_copy_out(shared.as_ptr().add(start), &mut back) };
                assert_eq!(back, src, "{start}/{n}");
            }
        }
    }

    #[test]
    fn copies_reach_the_last_byte_of_an_exact_allocation() {
        // Exactly sized boxes: a copy one byte too long would be caught by memcheck.
        for n in 0..32 {
            let src = pattern(n, 3);
            let mut shared = vec![0u8; n].into_boxed_slice();
            // SAFETY: `shared` has exactly `n` bytes.
            unsafe { atomic_copy_in(shared.as_mut_ptr(), &src) };
            let mut back = vec![0u8; n].into_boxed_slice();
            // SAFETY: as above.
            unsafe { atomic_copy_out(shared.as_ptr(), &mut back) };
            assert_eq!(&back[..], &src[..]);
        }
    }

    #[test]
    fn a_mapping_copies_within_its_bounds_and_refuses_past_them() {
        let region = Region::anonymous(c"mproc-raw-test", 4096).unwrap();
        let len = region.len();
        for (offset, n) in [(0, 0), (0, 17), (3, 64), (len - 9, 9), (len - 1, 1)] {
            let src = pattern(n, offset as u8);
            region.write_bytes(offset, &src).unwrap();
            let mut back = vec![0u8; n];
            region.read_bytes(offset, &mut back).unwrap();
            assert_eq!(back, src);
        }
        assert!(region.write_bytes(len - 8, &[0; 9]).is_none());
        assert!(region.read_bytes(len, &mut [0; 1]).is_none());
        assert!(region.read_bytes(usize::MAX, &mut [0; 2]).is_none());
        // Typed values at odd offsets.
        region.write(5, 0x0102_0304_0506_0708u64).unwrap();
        assert_eq!(region.read::<u64>(5), Some(0x0102_0304_0506_0708));
        region.write_slice(len - 12, &[1u32, 2, 3]).unwrap();
        assert_eq!(region.read::<[u32; 3]>(len - 12), Some([1, 2, 3]));
        assert_eq!(region.read::<u64>(len - 7), None);
    }
}

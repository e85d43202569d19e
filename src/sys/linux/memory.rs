//! Anonymous and named shared memory: `memfd_create`, `shm_open`, `mmap`.
//!
//! # Safety
//!
//! [`Mapping`] owns one `mmap` region for its whole life and unmaps it on drop. It
//! hands out a raw pointer only; what is read or written through it, and how, is the
//! caller's business (`shm/raw.rs` and the queue and sync modules use atomics and
//! copies, never references to bytes another process writes).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use rustix::fs::{MemfdFlags, Mode, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};
use rustix::shm;

/// Creates an anonymous shared-memory file of `len` bytes (zero-filled, not yet
/// backed by pages). It disappears when the last descriptor and mapping are gone.
pub(crate) fn memfd(name: &CStr, len: usize) -> io::Result<OwnedFd> {
    let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    rustix::fs::ftruncate(&fd, len as u64)?;
    // The size is part of the contract with every process that maps it: forbid
    // shrinking (a SIGBUS in a peer) and growing.
    rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?;
    Ok(fd)
}

/// Creates (exclusively) or opens the named POSIX shared-memory object `name`.
/// With `create`, the object is sized to `len` bytes.
pub(crate) fn shm_open(name: &CStr, create: bool, len: usize) -> io::Result<OwnedFd> {
    let flags = if create {
        shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR
    } else {
        shm::OFlags::RDWR
    };
    let fd = shm::open(name, flags, Mode::RUSR | Mode::WUSR)?;
    if create {
        if let Err(e) = rustix::fs::ftruncate(&fd, len as u64) {
            let _ = shm::unlink(name);
            return Err(e.into());
        }
    }
    Ok(fd)
}

/// Removes the name of a POSIX shared-memory object; mappings stay valid.
pub(crate) fn shm_unlink(name: &CStr) -> io::Result<()> {
    Ok(shm::unlink(name)?)
}

/// The size in bytes of the file behind `fd`.
pub(crate) fn file_len(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let st = rustix::fs::fstat(fd)?;
    usize::try_from(st.st_size).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

/// One shared, read-write mapping of a whole shared-memory file.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a `Mapping` is a plain address range; it is unmapped only by its own
// `Drop`, and every access through it goes through atomics or explicit copies.
unsafe impl Send for Mapping {}
// SAFETY: as above: `&Mapping` gives out only the base pointer and length.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the first `len` bytes of `fd` shared and read-write.
    pub(crate) fn new(fd: impl AsFd, len: usize) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot map zero bytes",
            ));
        }
        // SAFETY:
        // - a null hint lets the kernel pick a fresh range, so no existing Rust object
        //   is overlapped;
        // - `fd` is a valid descriptor for the duration of the call (it is borrowed).
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd.as_fd(),
                0,
            )?
        };
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::from(io::ErrorKind::Other))?;
        Ok(Mapping { ptr, len })
    }

    /// The first byte of the mapping.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The length of the mapping in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY:
        // - `ptr`/`len` are exactly the range returned by `mmap` in `new`;
        // - the mapping is owned by `self` alone and no reference into it outlives
        //   `self` (callers borrow `self` while they use the pointer).
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Creates an anonymous file holding `bytes` (for a payload too large to queue on a
/// socket without a reader). Its size is sealed once written.
pub(crate) fn memfd_with(name: &CStr, bytes: &[u8]) -> io::Result<OwnedFd> {
    let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    rustix::fs::ftruncate(&fd, bytes.len() as u64)?;
    let mut done = 0;
    while done < bytes.len() {
        match rustix::io::pwrite(&fd, &bytes[done..], done as u64) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    rustix::fs::fcntl_add_seals(
        &fd,
        SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE | SealFlags::SEAL,
    )?;
    Ok(fd)
}

/// Reads the first `len` bytes of the file behind `fd`, from offset 0 whatever the
/// descriptor's position. A shorter file is `UnexpectedEof`.
pub(crate) fn read_at_start(fd: BorrowedFd<'_>, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        match rustix::io::pread(fd, &mut buf[done..], done as u64) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(buf)
}

/// Asks the C allocator to keep up to `bytes` of freed heap memory instead of
/// handing it back to the kernel at each `free` (glibc's `M_TRIM_THRESHOLD`), and to
/// serve blocks below a quarter of that from the heap instead of a fresh `mmap` each
/// (`M_MMAP_THRESHOLD`). A process that allocates and frees the same large buffers
/// over and over then stops paying a page fault for every page, every time. Does
/// nothing with another C library. (Added for the pool's workers.)
pub(crate) fn keep_freed_heap(bytes: usize) {
    #[cfg(target_env = "gnu")]
    {
        let trim = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        // SAFETY:
        // - `mallopt` takes two integers by value and only changes the allocator's
        //   tuning; glibc takes its own locks, so any thread may call it at any time.
        unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, trim) };
        // SAFETY:
        // - as above; a threshold above glibc's maximum is refused, not misused.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, trim / 4) };
    }
    #[cfg(not(target_env = "gnu"))]
    let _ = bytes;
}

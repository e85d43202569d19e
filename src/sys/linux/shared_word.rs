//! A few `AtomicU64` words in an anonymous shared mapping, readable and writable by
//! every process that maps the same memfd (the pool's "which task is running" word).
//!
//! # Safety
//!
//! [`SharedWords`] owns its [`Mapping`] for its whole life. The mapping is at least
//! one page, page-aligned (so 8-byte aligned), and its length is checked against the
//! number of words before any is handed out. Every access goes through `AtomicU64`,
//! for which every bit pattern is valid, so another process writing (or dying in the
//! middle of writing) cannot make a read undefined: the worst it can do is store a
//! wrong number, which callers validate.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::AtomicU64;

use super::memory::{self, Mapping};

/// `n` shared atomic words backed by a memfd.
#[derive(Debug)]
pub(crate) struct SharedWords {
    fd: OwnedFd,
    map: Mapping,
    words: usize,
}

impl SharedWords {
    /// Creates `words` zeroed words in a fresh memfd.
    pub(crate) fn create(words: usize) -> io::Result<SharedWords> {
        let len = (words.max(1) * 8).next_multiple_of(4096);
        let fd = memory::memfd(c"mproc-pool-words", len)?;
        SharedWords::open(fd)
    }

    /// Maps the words of a memfd made by [`SharedWords::create`] (in any process).
    pub(crate) fn open(fd: OwnedFd) -> io::Result<SharedWords> {
        let len = memory::file_len(fd.as_fd())?;
        if len < 8 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "shared word file is smaller than one word",
            ));
        }
        let map = Mapping::new(fd.as_fd(), len)?;
        Ok(SharedWords {
            fd,
            words: len / 8,
            map,
        })
    }

    /// Word `i`.
    ///
    /// # Panics
    ///
    /// When `i` is not below the number of words.
    pub(crate) fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.words, "shared word {i} out of range");
        debug_assert!(self.map.len() >= (i + 1) * 8);
        // SAFETY:
        // - `i < self.words` (checked above) and `words * 8 <= map.len()`, so the 8
        //   bytes are inside the mapping;
        // - the mapping is page-aligned, so `base + 8 * i` is aligned for `AtomicU64`;
        // - the returned reference borrows `self`, which keeps the mapping alive;
        // - the bytes are only ever accessed atomically (module `# Safety`), and every
        //   bit pattern is a valid `AtomicU64`.
        unsafe { &*self.map.as_ptr().add(i * 8).cast::<AtomicU64>() }
    }

    /// The memfd, to pass to another process.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

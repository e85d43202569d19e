//! Errors of the `shm` module.

use std::io;

/// Why a shared-memory block, [`Value`](super::Value) or [`Array`](super::Array)
/// could not be created or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShmError {
    /// The operating system refused to create the memory (descriptor limit, memory
    /// limit, size).
    #[error("cannot create {len} bytes of shared memory: {source}")]
    Create {
        /// The size asked for, in bytes.
        len: usize,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A named block could not be created because the name is taken.
    #[error(
        "shared memory named {name:?} already exists; open it, or remove it if it was left behind"
    )]
    AlreadyExists {
        /// The name, without the leading `/`.
        name: String,
    },
    /// A named block to open does not exist.
    #[error("shared memory named {name:?} does not exist")]
    NotFound {
        /// The name, without the leading `/`.
        name: String,
    },
    /// A named block exists but could not be opened or mapped (permissions, size).
    #[error("cannot open shared memory named {name:?}: {source}")]
    Open {
        /// The name, without the leading `/`.
        name: String,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The name is not a valid POSIX shared-memory name.
    #[error("invalid shared memory name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The requested size does not fit in memory (`len` elements of `elem_size`
    /// bytes overflow), or is zero where a size is required.
    #[error("invalid size: {len} elements of {elem_size} bytes")]
    Size {
        /// The number of elements asked for.
        len: usize,
        /// The size of one element in bytes.
        elem_size: usize,
    },
    /// The lock of a [`Value`](super::Value) or [`Array`](super::Array) could not be
    /// created.
    #[error("cannot create the lock of a shared value: {0}")]
    Lock(#[source] crate::sync::CreateError),
}

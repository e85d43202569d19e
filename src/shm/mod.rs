//! Shared memory between processes: raw blocks, typed values and arrays, atomics.
//!
//! What to pick, coming from Python's `multiprocessing`:
//!
//! | Python | mproc | |
//! |---|---|---|
//! | `shared_memory.SharedMemory(create=True, size=n)` | [`SharedMemory::new`] (anonymous) or [`SharedMemory::create`] (named) | bytes |
//! | `shared_memory.SharedMemory(name)` | [`SharedMemory::open`] | attach by name |
//! | `Value('d', 0.0)` / `RawValue` | [`Value::with_lock`] / [`Value::new`] | one `T` |
//! | `Array('i', 10)` / `RawArray` | [`Array::with_lock`] / [`Array::new`] | `[T]` of fixed length |
//! | `Value('i', 0)` used as a counter | [`SharedAtomicU64`] and friends | lock-free |
//!
//! Every type here is a *handle*: cloning it is cheap and shares the memory, and it
//! can be passed to a child process as a task argument (its descriptor travels
//! out-of-band with the arguments). Only plain data can live in shared memory:
//! types that implement [`ShmSafe`] (numbers, arrays of numbers, and your own
//! `#[repr(C)]` structs of them). A `String`, `Vec` or `Box` holds a pointer that
//! means nothing in another process; send those through a queue or pipe instead.
//!
//! Reads and writes are *copies*: mproc never hands out a `&T` into memory that
//! another process may be writing. Without a lock, a copy that races with a write
//! may tear (see a mix of old and new bytes). For consistency across several fields
//! or a read-modify-write, use the optional lock ([`Value::with_lock`],
//! [`Value::lock`]) or a lock from [`crate::sync`]; for counters and flags, atomics.
//!
//! # Examples
//!
//! ```
//! use std::sync::atomic::Ordering;
//! use mproc::shm::{Array, SharedAtomicU64, Value};
//!
//! let total = Value::with_lock(0u64)?;
//! let seen = SharedAtomicU64::new(0)?;
//! let samples = Array::<f32>::from_slice(&[0.5, 1.5, 2.0])?;
//!
//! // What a worker process would do with its clones of the handles:
//! for x in samples.to_vec() {
//!     total.lock().unwrap().update(|t| t + x as u64);
//!     seen.fetch_add(1, Ordering::Relaxed);
//! }
//! assert_eq!(total.get(), 3); // 0 + 1 + 2
//! assert_eq!(seen.load(Ordering::Relaxed), 3);
//! # Ok::<(), mproc::shm::ShmError>(())
//! ```
//!
//! # Caveats
//!
//! - **Drop.** Anonymous memory (every type here except a named [`SharedMemory`])
//!   is freed when the last handle in the last process is dropped or that process
//!   dies; nothing is left in the file system, even after `kill -9`.
//! - **Named blocks** are removed by the creating process when its last handle is
//!   dropped, unless [`SharedMemory::persist`] was called. If the creator is killed
//!   first, the name stays in `/dev/shm` until someone calls
//!   [`SharedMemory::unlink`] (as in Python, where the resource tracker warns
//!   about it). Another process can also shrink a named block with `ftruncate`,
//!   which makes later access in every process fail with `SIGBUS`; anonymous
//!   blocks are sealed against that.
//! - **Child crash.** Memory is not rolled back: a process killed in the middle of
//!   a multi-field update leaves it half-done. The lock of a [`Value`] or [`Array`]
//!   reports that case ([`crate::sync::OwnerDied`]).
//! - **Parent death.** Children keep their mappings; memory is freed when the last
//!   of them exits.
//! - **Fork.** A forked child inherits the mappings and handles, and shares the
//!   memory with its parent, as a spawned child that received the handles does.
//! - **Layout.** A [`ShmSafe`] type must have the same layout in every process that
//!   maps it; processes started by mproc run the same executable, so it does. A
//!   received `Value` or `Array` checks the element size, not the type.

mod atomic;
mod error;
pub(crate) mod handle;
mod memory;
pub(crate) mod raw;
mod value;

pub use atomic::{
    AtomicPrimitive, SharedAtomic, SharedAtomicI8, SharedAtomicI16, SharedAtomicI32,
    SharedAtomicI64, SharedAtomicIsize, SharedAtomicU8, SharedAtomicU16, SharedAtomicU32,
    SharedAtomicU64, SharedAtomicUsize,
};
pub use error::ShmError;
pub use memory::SharedMemory;
pub use raw::ShmSafe;
pub use value::{Array, ArrayGuard, Value, ValueGuard};

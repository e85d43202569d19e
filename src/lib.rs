//! mproc: Python's `multiprocessing` for Rust.
//!
//! Processes that run Rust functions and hand back their results — or say exactly
//! why they could not: a panic with its backtrace, a signal, a timeout — never a hang.
//!
//! ```
//! use mproc::process::Process;
//!
//! let child = Process::start(|n: u64| (1..=n).product::<u64>(), 10)?;
//! assert_eq!(child.join()?, 3_628_800);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Modules
//!
//! - [`process`]: child processes (`multiprocessing.Process`), start methods,
//!   `current_process`, `active_children`.
//! - [`pool`]: pools of worker processes (`multiprocessing.Pool`) with crash
//!   recovery, per-task timeouts, retries, Ctrl-C handling and progress bars.
//! - [`futures`]: `concurrent.futures`: one `Executor` trait over processes and
//!   threads, awaitable `Future`s, `as_completed`, `wait`.
//! - [`queue`]: `Queue`, `JoinableQueue`, `SimpleQueue` between processes, in
//!   shared memory, robust to a producer or consumer being killed.
//! - [`pipe`]: `Pipe` (duplex `Connection`s, simplex `Sender`/`Receiver`) over a Unix
//!   socket pair; handles travel along.
//! - [`shm`]: shared memory (`SharedMemory`, `Value`, `Array`) and shared atomics.
//! - [`sync`]: `Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Event`,
//!   `Condition`, `Barrier` across processes; locks report a dead holder.
//!
//! # Supported platforms
//!
//! Linux (kernel 5.4 or newer: pidfds, memfd). Every system call is behind one
//! internal `sys` module so that other Unix systems can follow.
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]
#![doc(test(attr(deny(warnings))))]

pub(crate) mod codec;
pub mod futures;
pub mod pipe;
pub mod pool;
pub mod process;
pub mod queue;
pub mod shm;
pub mod sync;
pub(crate) mod sys;
pub(crate) mod wire;

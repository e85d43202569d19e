//! mproc: Python's `multiprocessing` for Rust.
//!
//! Processes, pools, executors, queues, pipes, shared memory and locks, where a
//! crash, a hang or a dead peer is reported as a precise error instead of a hang.
//!
//! # Quick start
//!
//! ```
//! use mproc::pool::Pool;
//!
//! fn collatz_steps(mut n: u64) -> u32 {
//!     let mut steps = 0;
//!     while n != 1 {
//!         n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
//!         steps += 1;
//!     }
//!     steps
//! }
//!
//! let pool = Pool::new(2)?; // two worker processes
//! let steps = pool.map(collatz_steps, 1..=1000)?;
//! assert_eq!(steps[26], 111); // 27 takes 111 steps
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A task is a plain `fn` or a closure that captures nothing; its argument and
//! result are serde types. A capturing closure is a compile error, the Rust answer
//! to Python's `PicklingError`. No set-up line is needed in `main`, tests or doc
//! tests: a load-time hook takes over child processes before `main` runs.
//!
//! # Python → mproc
//!
//! | Python | mproc |
//! |---|---|
//! | `multiprocessing.Process`, `current_process`, `active_children`, `cpu_count` | [`process`] |
//! | `Pool` (`apply`, `map`, `imap`, `starmap`, `chunksize`, `maxtasksperchild`) | [`pool`] |
//! | `concurrent.futures` (`ProcessPoolExecutor`, `ThreadPoolExecutor`, `as_completed`, `wait`) | [`futures`] |
//! | `Queue`, `JoinableQueue`, `SimpleQueue` | [`queue`] |
//! | `Pipe` | [`pipe`] |
//! | `Lock`, `RLock`, `Semaphore`, `Event`, `Condition`, `Barrier` | [`sync`] |
//! | `Value`, `Array`, `shared_memory.SharedMemory` | [`shm`] |
//! | `queue.Queue`, `LifoQueue`, `PriorityQueue`, `threading.Timer` (between threads) | [`threading`] |
//! | `Manager()`, `BaseManager(address, authkey)` | [`manager`] |
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
//! - [`observe`]: what children log reaches the parent's logger, tagged with the
//!   child's name, pid and pool task.
//! - [`pipe`]: `Pipe` (duplex `Connection`s, simplex `Sender`/`Receiver`) over a Unix
//!   socket pair; handles travel along.
//! - [`shm`]: shared memory (`SharedMemory`, `Value`, `Array`) and shared atomics.
//! - [`sync`]: `Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Event`,
//!   `Condition`, `Barrier` across processes; locks report a dead holder.
//! - [`threading`]: Python's `queue` (`Queue`, `LifoQueue`, `PriorityQueue`) and
//!   `threading.Timer`, between threads of one process.
//! - [`manager`]: a server process holding shared objects (dict, list, queues,
//!   locks, your own types) for typed proxies, locally or over TCP with a key.
//!
//! # Feature flags
//!
//! - `progress` (default): progress bars on pool maps, with `indicatif`.
//! - `distributed`: `mproc::distributed` (many machines through BullMQ
//!   queues in Redis), with `bullmq-official`, `redis` and an internal tokio runtime.
//! - `tokio`: `*_async` methods to `.await` from async code without blocking the
//!   runtime: `Process::join_async`, pipe `send_async`/`recv_async`, queue
//!   `put_async`/`get_async`/`join_async`, `Event::wait_async`,
//!   `Lock::lock_async`, `Semaphore::acquire_async`, `Barrier::wait_async`, each
//!   documenting its cancel safety. They wait through tokio's reactor and
//!   must run inside a tokio runtime with I/O enabled. (Pool results need no
//!   feature: `AsyncResult` and `MapResult` can be awaited, and `imap` iterators
//!   have `next_async`, in any runtime.)
//! - `tracing`: `tracing` events of children reach the parent too (see
//!   [`observe`]).
//! - `tls`: a [`manager`] served over TCP can use mutual TLS
//!   (rustls, TLS 1.3) with certificates you already have, instead of the
//!   key-derived Noise session (`manager::TlsConfig`).
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

/// The README's code, compiled and run as doc tests (`cargo test --doc`), so that
/// the first thing a user copies works.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub(crate) mod aio;
pub(crate) mod codec;
pub mod connection;
pub(crate) mod deadline;
#[cfg(feature = "distributed")]
pub mod distributed;
pub mod futures;
pub(crate) mod handle;
#[cfg(all(test, loom))]
pub(crate) mod loom;
pub mod manager;
pub mod observe;
pub mod pipe;
pub mod pool;
pub mod process;
pub mod queue;
pub mod shm;
pub mod sync;
pub(crate) mod sys;
pub(crate) mod task;
pub mod threading;
pub(crate) mod wire;
pub(crate) mod word;

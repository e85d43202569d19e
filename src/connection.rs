//! Waiting on several pipe ends and processes at once: Python's
//! `multiprocessing.connection.wait`.
//!
//! [`wait`] takes any mix of pipe ends that receive ([`Connection`], [`Receiver`])
//! and processes ([`Process`], ready when it has ended: its sentinel) and returns
//! which of them are ready, waiting until one is or the timeout passes.
//!
//! ```
//! use std::time::Duration;
//! use mproc::connection::{wait, Waitable};
//! use mproc::pipe;
//! use mproc::process::Process;
//!
//! let (tx, rx) = pipe::simplex::<u32>()?;
//! let child = Process::start(|tx: pipe::Sender<u32>| tx.send(&7).unwrap(), tx)?;
//! let objects: [&dyn Waitable; 2] = [&rx, &child];
//! let ready = wait(&objects, Some(Duration::from_secs(30)))?;
//! assert!(!ready.is_empty());
//! assert_eq!(rx.recv()?, 7);
//! child.join()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Queues are not waitable: a [`Queue`](crate::queue::Queue) wakes its waiters
//! through futexes in shared memory, which have no descriptor to poll. Wait on a
//! queue with its own `get_timeout`, or send a wake-up through a pipe.
//!
//! [`Connection`]: crate::pipe::Connection
//! [`Receiver`]: crate::pipe::Receiver
//! [`Process`]: crate::process::Process

use std::io;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use crate::sys::socket;

mod sealed {
    pub trait Sealed {}
}

pub(crate) use sealed::Sealed;

/// Something [`wait`] can wait on: a receiving pipe end or a process. Sealed: the
/// crate implements it for [`Connection`](crate::pipe::Connection),
/// [`Receiver`](crate::pipe::Receiver) and [`Process`](crate::process::Process).
pub trait Waitable: sealed::Sealed {
    /// The descriptor that becomes readable when the object is ready.
    #[doc(hidden)]
    fn wait_fd(&self) -> BorrowedFd<'_>;

    /// Whether the object is ready without looking at its descriptor (a pipe end
    /// with a message already buffered).
    #[doc(hidden)]
    fn ready_without_waiting(&self) -> bool {
        false
    }
}

/// Waits until at least one of `objects` is ready, or `timeout` passes (`None`:
/// no limit), and returns the indices of the ready ones, in order (Python's
/// `multiprocessing.connection.wait`, which returns the objects themselves).
///
/// A pipe end is ready when a receive would not wait: a message (or the end of the
/// stream, or an error) is there. A process is ready when it has ended. An empty
/// list after the timeout means none was ready.
///
/// # Errors
///
/// `InvalidInput` for no objects and no timeout (it would never return); otherwise
/// the error of `poll(2)`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mproc::connection::{wait, Waitable};
/// use mproc::pipe;
///
/// let (a_tx, a_rx) = pipe::simplex::<u8>()?;
/// let (_b_tx, b_rx) = pipe::simplex::<u8>()?;
/// let objects: [&dyn Waitable; 2] = [&a_rx, &b_rx];
/// assert!(wait(&objects, Some(Duration::ZERO))?.is_empty());
/// a_tx.send(&1).unwrap();
/// assert_eq!(wait(&objects, None)?, vec![0]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn wait(objects: &[&dyn Waitable], timeout: Option<Duration>) -> io::Result<Vec<usize>> {
    let deadline = timeout.and_then(crate::deadline::after);
    let forever = timeout.is_none() || deadline.is_none();
    if objects.is_empty() && forever {
        // Nothing can ever become ready: a program waiting on nothing forever is a
        // bug better reported than a hang.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "wait on no objects and no timeout would never return",
        ));
    }
    loop {
        let buffered: Vec<bool> = objects.iter().map(|o| o.ready_without_waiting()).collect();
        let any_buffered = buffered.iter().any(|b| *b);
        let left = if any_buffered {
            Some(Duration::ZERO)
        } else if forever {
            None
        } else {
            deadline.map(|d| d.saturating_duration_since(Instant::now()))
        };
        let fds: Vec<(BorrowedFd<'_>, bool)> =
            objects.iter().map(|o| (o.wait_fd(), false)).collect();
        let polled = socket::poll(&fds, left)?;
        let ready: Vec<usize> = (0..objects.len())
            .filter(|&i| buffered[i] || polled[i].readable || polled[i].hangup)
            .collect();
        if !ready.is_empty() || any_buffered {
            return Ok(ready);
        }
        if !forever && deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(ready);
        }
    }
}

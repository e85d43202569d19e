//! Errors of the `manager` module.

use std::fmt;
use std::io;

use crate::sync::OwnerDied;

/// Why a manager operation failed.
///
/// Every proxy call returns this type (lock acquisitions wrap it in [`LockError`]).
/// A manager that died, was shut down or cannot be reached is
/// [`ManagerError::Disconnected`] at once, never a hang.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// The manager process could not be started.
    #[error("cannot start the manager process: {0}")]
    Start(String),
    /// The manager cannot be reached: it exited, was killed or shut down, or the
    /// connection to it broke.
    #[error("the manager at {address} is gone: {reason}")]
    Disconnected {
        /// The manager's address.
        address: String,
        /// What happened.
        reason: String,
    },
    /// The other side did not prove that it knows the authentication key.
    #[error("authentication with the manager at {address} failed: {reason}")]
    Authentication {
        /// The manager's address.
        address: String,
        /// What happened.
        reason: String,
    },
    /// The object no longer exists on the manager: it was freed, or the manager was
    /// restarted since the proxy was made.
    #[error(
        "shared object {id} no longer exists on the manager (freed, or the manager was restarted)"
    )]
    ObjectGone {
        /// The object's id.
        id: u64,
    },
    /// A dict has no such key (Python's `KeyError`).
    #[error("key not found")]
    KeyNotFound,
    /// A list index is out of range (Python's `IndexError`).
    #[error("index {index} out of range for a list of length {len}")]
    IndexOutOfRange {
        /// The index asked for.
        index: i64,
        /// The list's length.
        len: u64,
    },
    /// `list.remove(x)`: no item equals `x` (Python's `ValueError`).
    #[error("the value is not in the list")]
    ValueNotFound,
    /// An item popped from an empty list or queue.
    #[error("{0} is empty")]
    Empty(&'static str),
    /// A bounded queue is full (a `try_put` or a timed out `put_timeout`).
    #[error("the queue is full")]
    Full,
    /// A wait ran out of time.
    #[error("timed out")]
    Timeout,
    /// The caller does not hold the lock it tried to release or wait on.
    #[error("this thread does not hold the lock")]
    NotOwner,
    /// A `BoundedSemaphore` was released more times than it was acquired.
    #[error("semaphore released too many times (its bound is {0})")]
    SemaphoreOverflow(u32),
    /// The barrier is broken (a waiter timed out, or it was aborted).
    #[error("the barrier is broken")]
    BrokenBarrier,
    /// A value could not be encoded or decoded (for instance a proxy read back as
    /// the wrong type).
    #[error("cannot encode or decode a value: {0}")]
    Codec(String),
    /// The object is of another kind than the proxy expects.
    #[error("the shared object is a {found}, not a {expected}")]
    WrongKind {
        /// What the proxy expected.
        expected: String,
        /// What the object is.
        found: String,
    },
    /// The request was refused (a function sent to a server that only runs
    /// registered types, a type that is not registered, a limit).
    #[error("the manager refused the request: {0}")]
    Refused(String),
    /// A frame or value is over the size limit.
    #[error("{what} of {size} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// TLS certificates or keys that cannot be used (feature `tls`): unreadable,
    /// not PEM, no certificate, a key that does not match, an invalid server name.
    #[error("TLS settings: {0}")]
    Tls(String),
    /// The protocol was broken (garbage, a bad frame, a failed decryption).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A function run on the manager (`update_with`) panicked or failed.
    #[error("the function failed on the manager: {0}")]
    Function(String),
    /// An earlier pipelined request from this thread (for instance
    /// [`Dict::set_pipelined`](super::Dict::set_pipelined)) failed. The call that
    /// reports it was not carried out; it can be retried.
    #[error("an earlier pipelined request failed: {0}")]
    Pipelined(Box<ManagerError>),
    /// An I/O error, for instance while connecting.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl ManagerError {
    /// Whether the manager is gone (exited, killed, shut down, unreachable).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::manager::Manager;
    ///
    /// let m = Manager::start()?;
    /// let d = m.dict::<String, u32>()?;
    /// m.shutdown()?;
    /// assert!(d.len().unwrap_err().is_disconnected());
    /// # Ok::<(), mproc::manager::ManagerError>(())
    /// ```
    pub fn is_disconnected(&self) -> bool {
        matches!(self, ManagerError::Disconnected { .. })
    }

    /// Whether the other side failed authentication.
    pub fn is_authentication(&self) -> bool {
        matches!(self, ManagerError::Authentication { .. })
    }

    /// Whether the object no longer exists on the manager.
    pub fn is_object_gone(&self) -> bool {
        matches!(self, ManagerError::ObjectGone { .. })
    }

    /// Whether a wait ran out of time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ManagerError::Timeout)
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> ManagerError {
        ManagerError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Why a manager lock acquisition failed.
///
/// `OwnerDied` means the caller *holds* the lock now, as with
/// [`mproc::sync`](crate::sync) locks: the previous holder's process died while it
/// held the lock (the manager noticed its connections close).
pub enum LockError<G> {
    /// The previous holder died holding the lock; the guard inside is held.
    OwnerDied(OwnerDied<G>),
    /// The lock could not be taken (manager gone, timeout, ...).
    Manager(ManagerError),
}

impl<G> LockError<G> {
    /// The guard, if the lock is held despite the error.
    pub fn into_guard(self) -> Option<G> {
        match self {
            LockError::OwnerDied(d) => Some(d.into_inner()),
            LockError::Manager(_) => None,
        }
    }

    /// Whether the previous holder died holding the lock.
    pub fn is_owner_died(&self) -> bool {
        matches!(self, LockError::OwnerDied(_))
    }

    /// The manager error, if that is what this is.
    pub fn manager_error(&self) -> Option<&ManagerError> {
        match self {
            LockError::OwnerDied(_) => None,
            LockError::Manager(e) => Some(e),
        }
    }
}

impl<G> From<ManagerError> for LockError<G> {
    fn from(e: ManagerError) -> Self {
        LockError::Manager(e)
    }
}

impl<G> fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(d) => write!(f, "OwnerDied(pid {:?})", d.pid()),
            LockError::Manager(e) => f.debug_tuple("Manager").field(e).finish(),
        }
    }
}

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(d) => match d.pid() {
                Some(pid) => write!(
                    f,
                    "the previous holder (pid {pid}) died holding the manager lock"
                ),
                None => f.write_str("the previous holder died holding the manager lock"),
            },
            LockError::Manager(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<G> std::error::Error for LockError<G> {}

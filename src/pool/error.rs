//! Why a pool could not be built, and why a task could not be submitted.

/// A pool could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// A worker process could not be started.
    #[error("cannot start pool worker {worker}: {source}")]
    Spawn {
        /// The worker slot.
        worker: usize,
        /// Why.
        #[source]
        source: crate::process::SpawnError,
    },
    /// The initializer failed (panicked) in a worker.
    #[error("the initializer failed in pool worker {worker} (pid {pid}): {reason}")]
    Initializer {
        /// The worker slot.
        worker: usize,
        /// The worker's pid.
        pid: u32,
        /// The panic message or error.
        reason: String,
    },
    /// Setting up the pool's own resources failed.
    #[error("cannot set up the pool: {what}: {source}")]
    Io {
        /// The step.
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// An option's value cannot work (Python's `ValueError`): the message names
    /// the option and the rule.
    #[error("invalid pool option: {0}")]
    Invalid(&'static str),
    /// The initializer's argument could not be serialized.
    #[error("cannot send the initializer's argument to the workers: {0}")]
    Encode(String),
}

/// A task could not be submitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The pool (or executor) was closed or shut down.
    #[error("cannot submit: the pool is closed")]
    Closed,
    /// The argument could not be serialized.
    #[error("cannot send the task's argument to a worker: {0}")]
    Encode(String),
    /// The executor's backend refused the task or could not be reached (a
    /// distributed executor: an unregistered function, Redis unreachable).
    #[error("cannot submit: {0}")]
    Rejected(String),
}

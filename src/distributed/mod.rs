//! Many machines: the same task functions and the same
//! [`Executor`](crate::futures::Executor)/[`Future`](crate::futures::Future) API,
//! executed by mproc workers anywhere, through BullMQ queues in Redis (feature
//! `distributed`).
//!
//! The engine is BullMQ (the `bullmq-official` crate, the same Lua scripts as the
//! Node and Python clients): retries, backoff, delays, priorities, stalled-job
//! recovery and queue events come from it, dashboards such as bull-board show the
//! jobs, and Node or Python producers can hand jobs to Rust workers. mproc adds:
//!
//! - tasks by name: [`register`]`("resize", resize)` gives a function a stable
//!   name (the job's name) and a typed [`Task`] handle; arguments and results are
//!   plain JSON by default ([`Encoding`]);
//! - [`BullExecutor`], an [`Executor`](crate::futures::Executor): `submit`, `map`,
//!   [`as_completed`](crate::futures::as_completed), [`wait`](crate::futures::wait)
//!   return the same futures as the local pools, and a remote panic, crash or
//!   timeout comes back as the same [`TaskError`](crate::futures::TaskError);
//! - [`Worker`], the entry point of the binary that holds the functions: it runs
//!   every job in its own process pool, so a job that crashes, aborts or hangs
//!   fails alone (and is retried per its attempts), and keeps the job locks
//!   renewed while children compute;
//! - [`progress`], for a task to report how far it got.
//!
//! ```no_run
//! use mproc::distributed::{register, BullExecutor, Worker};
//! use mproc::futures::Executor;
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
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     register("collatz", collatz_steps)?;
//!     if std::env::args().any(|a| a == "--worker") {
//!         // On every worker machine:
//!         Worker::builder().queue("math").start()?.run()?;
//!         return Ok(());
//!     }
//!     // On the producer:
//!     let ex = BullExecutor::connect("redis://127.0.0.1:6379", "math")?;
//!     let steps: Vec<u32> = ex.map(collatz_steps, 1..=1000, None, 1)?.map(Result::unwrap).collect();
//!     assert_eq!(steps[26], 111);
//!     Ok(())
//! }
//! ```
//!
//! The Redis URL defaults to the `MPROC_REDIS_URL` environment variable, else
//! `redis://127.0.0.1:6379`. The `mproc` command line (`mproc queues info`,
//! `mproc jobs list`) inspects and manages the same queues.
//!
//! # Interoperability
//!
//! A job is named after its task and its data is the argument as JSON; its return
//! value is the result as JSON. So a Python producer writes
//! `await Queue("math").add("collatz", 27)` and reads `job.returnvalue`; a failed
//! job's `failedReason` is the error as mproc prints it, and its log holds a line
//! `mproc-failure {json}` with the details (kind, message, location, pid, host).
//! A timeout travels in an envelope: `{"$mproc": {"timeout_ms": 5000}, "arg": 27}`.

mod admin;
mod child;
mod executor;
mod failure;
mod runtime;
mod task;
mod worker;

pub use admin::{Admin, JobInfo, QueueInfo};
pub use child::{ProgressError, progress};
pub use executor::{Backoff, BullExecutor, BullExecutorBuilder, JobHandle, JobOptions};
pub use task::{Encoding, Task, register};
pub use worker::{StopHandle, Worker, WorkerBuilder, WorkerReport};

/// What went wrong in [`distributed`](self), apart from a task's own failure
/// (that one is a [`TaskError`](crate::futures::TaskError)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DistributedError {
    /// Redis could not be reached, or refused a command.
    #[error("{0}")]
    Redis(String),
    /// A task registration was refused.
    #[error("cannot register the task: {0}")]
    Registration(String),
    /// An argument could not be encoded.
    #[error("cannot encode the job's argument: {0}")]
    Encode(String),
    /// A setting is missing or invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The worker's process pool could not start.
    #[error("cannot start the worker's process pool: {0}")]
    Pool(String),
    /// A local system call failed (signals, the progress socket, the runtime).
    #[error("{0}")]
    Io(String),
    /// The executor was shut down.
    #[error("the executor is shut down")]
    Closed,
    /// No such job.
    #[error("job {0} does not exist")]
    NoSuchJob(String),
}

impl DistributedError {
    fn redis(url: &str, e: bullmq::Error) -> Self {
        DistributedError::Redis(format!("redis at {}: {e}", redact(url)))
    }
}

/// `url` without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

/// The Redis URL to use when none is given: `MPROC_REDIS_URL`, else the local
/// default port.
pub(crate) fn default_redis_url() -> String {
    std::env::var("MPROC_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn connection_options(url: &str) -> bullmq::options::RedisConnectionOptions {
    bullmq::options::RedisConnectionOptions::new().url(url.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(
            super::redact("redis://user:secret@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(super::redact("redis://host:1"), "redis://host:1");
    }
}

//! The pool child's side of a job: [`JobRunner`] runs the registered function with
//! the job's context set, so that [`progress`] can report to the worker process.
//!
//! Progress travels as one datagram to the worker's socket in the abstract Unix
//! namespace (named in the job's context), which forwards it to Redis: the child
//! needs no Redis connection and no descriptor from its parent.

use std::cell::RefCell;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::{self, Message};
use crate::sys::code::Runner;

/// What a child knows about the job it runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JobContext {
    pub(crate) queue: String,
    pub(crate) job_id: String,
    /// The abstract socket name of the worker's progress listener.
    pub(crate) progress_socket: String,
}

/// One progress report, from a child to its worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ProgressReport {
    pub(crate) queue: String,
    pub(crate) job_id: String,
    pub(crate) progress: serde_json::Value,
}

thread_local! {
    static CURRENT: RefCell<Option<(JobContext, Option<UnixDatagram>)>> = const { RefCell::new(None) };
}

struct Clear;

impl Drop for Clear {
    fn drop(&mut self) {
        CURRENT.with(|c| c.borrow_mut().take());
    }
}

/// Runs a job's function in the pool child: decodes `(JobContext, A)`, sets the
/// context for [`progress`], calls `f`, encodes the `R`. A panic unwinds to the
/// pool's own catch (which records message, location and backtrace).
pub(crate) struct JobRunner;

impl<A: DeserializeOwned, R: Serialize> Runner<A, R> for JobRunner {
    fn run(f: fn(A) -> R, input: Message) -> Result<Message, String> {
        let (ctx, arg): (JobContext, A) = codec::decode(input)
            .map_err(|e| format!("cannot decode the job's argument in the worker: {e}"))?;
        CURRENT.with(|c| *c.borrow_mut() = Some((ctx, None)));
        let _clear = Clear;
        let out = f(arg);
        codec::encode(&out)
            .map_err(|e| format!("cannot encode the job's result in the worker: {e}"))
    }
}

/// Why [`progress`] could not report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProgressError {
    /// Not called from a task that a distributed worker is running.
    #[error("progress can only be reported from a task run by an mproc distributed worker")]
    NoJob,
    /// The value could not be turned into JSON.
    #[error("cannot encode the progress value as JSON: {0}")]
    Encode(String),
    /// The worker process could not be reached.
    #[error("cannot reach the worker process to report progress: {0}")]
    Unreachable(String),
}

/// Reports the running job's progress (a number such as a percentage, or any
/// JSON value): BullMQ stores it on the job and emits a `progress` event, which
/// producers see through [`JobHandle::progress`](super::JobHandle::progress),
/// `QueueEvents` in any BullMQ client, and `mproc jobs show`.
///
/// Call it from inside a task function; it is cheap (one datagram to the worker
/// process) and never blocks on Redis.
///
/// # Errors
///
/// [`ProgressError::NoJob`] outside a distributed task,
/// [`ProgressError::Encode`] for a value JSON cannot hold,
/// [`ProgressError::Unreachable`] when the worker process is gone.
///
/// # Examples
///
/// ```
/// use mproc::distributed::{progress, ProgressError};
///
/// fn resize(n: u32) -> u32 {
///     for step in 0..n {
///         // Outside a worker (as in this doc test) there is no job to report on.
///         let _ = progress(100 * step / n);
///     }
///     n
/// }
/// assert_eq!(resize(4), 4);
/// assert_eq!(progress(50), Err(ProgressError::NoJob));
/// ```
pub fn progress(value: impl Serialize) -> Result<(), ProgressError> {
    let value = serde_json::to_value(value).map_err(|e| ProgressError::Encode(e.to_string()))?;
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        let (ctx, sock) = c.as_mut().ok_or(ProgressError::NoJob)?;
        if sock.is_none() {
            *sock = Some(
                UnixDatagram::unbound().map_err(|e| ProgressError::Unreachable(e.to_string()))?,
            );
        }
        let report = ProgressReport {
            queue: ctx.queue.clone(),
            job_id: ctx.job_id.clone(),
            progress: value,
        };
        let bytes =
            serde_json::to_vec(&report).map_err(|e| ProgressError::Encode(e.to_string()))?;
        let addr = SocketAddr::from_abstract_name(ctx.progress_socket.as_bytes())
            .map_err(|e| ProgressError::Unreachable(e.to_string()))?;
        sock.as_ref()
            .expect("made above")
            .send_to_addr(&bytes, &addr)
            .map_err(|e| ProgressError::Unreachable(e.to_string()))?;
        Ok(())
    })
}

//! One call of a verb and its tasks: what all tasks of a call share
//! ([`CallInfo`]), one task ([`Job`]), the groups that travel together
//! ([`Chunk`]), and where outcomes go ([`Sink`]).

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::codec::{self, Message};
use crate::sys::code::EntryPoint;
use crate::task::TaskError;
use crate::task::slot::Slot;

/// Where a call's results go. Implemented by each verb's collector.
pub(crate) trait Sink: Send + Sync {
    /// Stores the outcome of task `index` (runs on the dispatcher thread: keep it
    /// short).
    fn deliver(&self, index: usize, outcome: Result<Message, TaskError>);
    /// Whether task `index` was cancelled and must not run.
    fn is_cancelled(&self, _index: usize) -> bool {
        false
    }
    /// Task `index` was sent to a worker.
    fn started(&self, _index: usize) {}
    /// Task `index` will never run (cancelled while queued): it ends with `error`.
    fn abandon(&self, index: usize, error: TaskError) {
        self.deliver(index, Err(error));
    }
    /// Stores the outcomes of several tasks of the call at once.
    fn deliver_many(&self, outcomes: Outcomes) {
        for (index, outcome) in outcomes {
            self.deliver(index, outcome);
        }
    }
    /// Stores the outcome of a chunk task covering tasks `index..index + span`
    /// (an encoded `worker::ChunkResult`), run by worker `who`.
    fn deliver_span(
        &self,
        index: usize,
        _span: usize,
        _who: (usize, u32),
        outcome: Result<Message, TaskError>,
    ) {
        self.deliver(index, outcome);
    }
}

/// Outcomes of several tasks of one call, by task index.
pub(crate) type Outcomes = Vec<(usize, Result<Message, TaskError>)>;

/// What all tasks of one call share.
pub(crate) struct CallInfo {
    pub(crate) entry: EntryPoint,
    pub(crate) sink: Arc<dyn Sink>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) retries: u32,
}

/// One task: an item of a call.
pub(crate) struct Job {
    pub(crate) call: Arc<CallInfo>,
    pub(crate) index: usize,
    pub(crate) args: Message,
    pub(crate) attempts: u32,
    /// How many of the call's tasks this job carries: 1, or a whole chunk run in
    /// one call by `worker::ChunkRunner` (tasks `index..index + span`).
    pub(crate) span: usize,
    /// Whether this job is a chunk task (arguments `Vec<A>`, result
    /// `worker::ChunkResult<R>`; plain numbers in `pool::plain`'s format instead).
    pub(crate) chunk: bool,
}

/// Jobs that always travel together (a `chunksize` group).
pub(crate) type Chunk = Vec<Job>;

/// Decodes task `index`'s result, or says why it cannot be.
pub(crate) fn decode<R: DeserializeOwned>(index: usize, m: Message) -> Result<R, TaskError> {
    codec::decode(m).map_err(|e| {
        TaskError::failed(
            format!("cannot decode the result in the parent: {e}"),
            Some(index),
        )
    })
}

/// A sink that fills one [`Future`](crate::task::Future)'s slot.
pub(crate) struct OneSink<R> {
    pub(crate) slot: Arc<Slot<R>>,
}

impl<R: DeserializeOwned + Send + 'static> Sink for OneSink<R> {
    fn deliver(&self, index: usize, outcome: Result<Message, TaskError>) {
        self.slot.complete(outcome.and_then(|m| decode(index, m)));
    }
    fn is_cancelled(&self, _index: usize) -> bool {
        self.slot.is_cancelled()
    }
    fn started(&self, _index: usize) {
        self.slot.set_running();
    }
    fn abandon(&self, _index: usize, error: TaskError) {
        // A future cancelled before it started says so (`cancelled()`).
        self.slot.abandon(error);
    }
}

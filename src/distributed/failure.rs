//! A job's failure as it travels through Redis: the worker writes a
//! [`FailureRecord`] as a job log line (the job's `failedReason` is the same error's
//! plain text, for other BullMQ clients), and the producer turns it back into the
//! [`TaskError`] a local pool would have given.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::process::ExitStatus;
use crate::task::{Kind, TaskError};

/// The prefix of the job log line that carries the record.
pub(crate) const LOG_PREFIX: &str = "mproc-failure ";

/// Why a job failed, with where it happened.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct FailureRecord {
    /// `panic`, `worker_lost`, `timeout` or `failed`.
    pub(crate) kind: String,
    pub(crate) message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) location: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) backtrace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) signal: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) worker_id: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pid: Option<u32>,
    /// The machine the worker ran on.
    #[serde(default)]
    pub(crate) host: String,
    /// Which attempt of the job this was (1-based).
    #[serde(default)]
    pub(crate) attempt: u32,
}

/// This machine's name (for failure records and the worker's Redis name).
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into())
}

impl FailureRecord {
    /// A failure that is not the task's own (unknown name, malformed payload).
    pub(crate) fn failed(message: impl Into<String>, attempt: u32) -> Self {
        FailureRecord {
            kind: "failed".into(),
            message: message.into(),
            location: None,
            backtrace: String::new(),
            signal: None,
            code: None,
            timeout_ms: None,
            worker_id: None,
            pid: None,
            host: host_name(),
            attempt,
        }
    }

    /// What the worker's pool said about the job.
    pub(crate) fn from_task_error(e: &TaskError, attempt: u32) -> Self {
        let mut r = FailureRecord::failed(e.to_string(), attempt);
        r.worker_id = e.worker_id();
        r.pid = e.worker_pid();
        if e.is_panic() {
            r.kind = "panic".into();
            r.message = e.panic_message().unwrap_or_default().to_string();
            r.location = e.panic_location().map(str::to_string);
            r.backtrace = e.backtrace().unwrap_or_default().to_string();
        } else if let Some(status) = e.exit_status() {
            r.kind = "worker_lost".into();
            match status {
                ExitStatus::Signal(s) => r.signal = Some(s),
                ExitStatus::Code(c) => r.code = Some(c),
            }
        } else if let (true, Some(t)) = (e.is_timeout(), e.timeout()) {
            r.kind = "timeout".into();
            r.timeout_ms = Some(t.as_millis() as u64);
        }
        r
    }

    /// The job log line.
    pub(crate) fn to_log_line(&self) -> String {
        format!(
            "{LOG_PREFIX}{}",
            serde_json::to_string(self).unwrap_or_default()
        )
    }

    /// The record in a job log line, if it is one.
    pub(crate) fn from_log_line(line: &str) -> Option<Self> {
        serde_json::from_str(line.strip_prefix(LOG_PREFIX)?).ok()
    }

    /// The plain text for the job's `failedReason`: the error as a local pool
    /// would print it, then where it ran.
    pub(crate) fn reason(&self) -> String {
        let text = self.to_task_error(None).to_string();
        format!("{text} (on {}, attempt {})", self.host, self.attempt)
    }

    /// The [`TaskError`] of task `index`.
    pub(crate) fn to_task_error(&self, index: Option<usize>) -> TaskError {
        let worker = match (self.worker_id, self.pid) {
            (Some(id), Some(pid)) => Some((id, pid)),
            (None, Some(pid)) => Some((0, pid)),
            _ => None,
        };
        let kind = match self.kind.as_str() {
            "panic" => Kind::Panicked {
                message: self.message.clone(),
                location: self.location.clone(),
                backtrace: self.backtrace.clone(),
            },
            "worker_lost" => Kind::WorkerLost {
                status: match (self.signal, self.code) {
                    (Some(s), _) => ExitStatus::Signal(s),
                    (None, c) => ExitStatus::Code(c.unwrap_or(-1)),
                },
                attempts: self.attempt.max(1),
            },
            "timeout" => Kind::Timeout(Duration::from_millis(self.timeout_ms.unwrap_or(0))),
            _ => Kind::Failed(self.message.clone()),
        };
        TaskError::new(kind, index, worker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_survives_the_trip() {
        let e = TaskError::new(
            Kind::Panicked {
                message: "boom 7".into(),
                location: Some("src/x.rs:3:5".into()),
                backtrace: "bt".into(),
            },
            Some(0),
            Some((1, 4242)),
        );
        let line = FailureRecord::from_task_error(&e, 2).to_log_line();
        let back = FailureRecord::from_log_line(&line)
            .unwrap()
            .to_task_error(Some(3));
        assert!(back.is_panic());
        assert_eq!(back.panic_message(), Some("boom 7"));
        assert_eq!(back.panic_location(), Some("src/x.rs:3:5"));
        assert_eq!(back.worker_pid(), Some(4242));
        assert_eq!(back.task_index(), Some(3));
    }

    #[test]
    fn a_timeout_and_a_lost_worker_survive_the_trip() {
        let e = TaskError::new(Kind::Timeout(Duration::from_millis(1500)), None, None);
        let r = FailureRecord::from_task_error(&e, 1).to_task_error(None);
        assert!(r.is_timeout());
        assert_eq!(r.timeout(), Some(Duration::from_millis(1500)));
        let e = TaskError::new(
            Kind::WorkerLost {
                status: ExitStatus::Signal(9),
                attempts: 1,
            },
            None,
            Some((0, 9)),
        );
        let r = FailureRecord::from_task_error(&e, 3).to_task_error(None);
        assert!(r.is_worker_lost());
        assert_eq!(r.signal(), Some(9));
    }
}

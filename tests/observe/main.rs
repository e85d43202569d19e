//! Seeing inside children from the parent: forwarded log records (and, as they
//! land, captured output, insights and memory limits), with real child processes
//! and every start method. Every test arms a watchdog.
//!
//! One logger serves the whole binary (`log::set_logger` is global): it keeps
//! every record, and each test picks out its own by a marker in the message.
#![cfg(not(miri))]

#[path = "../common/mod.rs"]
mod common;

mod insights;
mod logs;
mod memory;
mod output;
mod state;
#[cfg(feature = "tracing")]
mod traced;

use std::sync::{Mutex, Once};
use std::time::Duration;

/// How long any one test may take before its watchdog aborts the binary.
pub const LIMIT: Duration = Duration::from_secs(120);

/// A record as the test logger kept it.
#[derive(Clone, Debug)]
pub struct Kept {
    /// The record's level.
    pub level: log::Level,
    /// The record's target.
    pub target: String,
    /// The message, tag included.
    pub message: String,
    /// The `mproc.process` key-value.
    pub process: Option<String>,
    /// The `mproc.pid` key-value.
    pub pid: Option<u64>,
    /// The `mproc.task` key-value.
    pub task: Option<u64>,
}

static KEPT: Mutex<Vec<Kept>> = Mutex::new(Vec::new());

struct Collecting;

impl log::Log for Collecting {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let kvs = record.key_values();
        let get = |k: &str| kvs.get(log::kv::Key::from_str(k));
        KEPT.lock().unwrap().push(Kept {
            level: record.level(),
            target: record.target().to_string(),
            message: record.args().to_string(),
            process: get(mproc::observe::KEY_PROCESS).map(|v| v.to_string()),
            pid: get(mproc::observe::KEY_PID).and_then(|v| v.to_u64()),
            task: get(mproc::observe::KEY_TASK).and_then(|v| v.to_u64()),
        });
    }

    fn flush(&self) {}
}

/// Installs the collecting logger (once), wrapped so that `Fork` children
/// forward too, at level `Info`: `debug!` is filtered out everywhere.
pub fn logger() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_boxed_logger(Box::new(mproc::observe::ForwardingLogger::new(Collecting)))
            .expect("no other logger in this binary");
        log::set_max_level(log::LevelFilter::Info);
    });
}

/// The records kept so far whose message contains `marker`, in arrival order.
pub fn kept(marker: &str) -> Vec<Kept> {
    KEPT.lock()
        .unwrap()
        .iter()
        .filter(|k| k.message.contains(marker))
        .cloned()
        .collect()
}

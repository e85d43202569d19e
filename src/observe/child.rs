//! The child's side of log forwarding: a `log` logger that writes each record,
//! as it is made, straight into the socket to the parent.
//!
//! Nothing is buffered in this process: once `log!` returns, the record is in the
//! kernel's socket buffer, where it outlives this process however it ends (a panic,
//! an abort, a `SIGKILL` at a deadline). When the parent reads slower than the
//! child logs and the socket's buffer is full, the logging thread waits for room.

use std::cell::RefCell;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::observe::record;
use crate::sys::datagram;

/// The socket to the parent, when this process forwards its records.
static SINK: RwLock<Option<OwnedFd>> = RwLock::new(None);

/// The index of the pool task running now (`u64::MAX`: none).
static TASK: AtomicU64 = AtomicU64::new(u64::MAX);

/// The logger a child installs when it has none of its own.
struct ChildLogger;

static CHILD_LOGGER: ChildLogger = ChildLogger;

impl log::Log for ChildLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            forward(record);
        }
    }

    fn flush(&self) {}
}

/// Makes this process forward its records on `sock`, with `level` as the
/// most verbose level that passes (the parent's `log::max_level()` when it
/// started this child): a record above it costs one comparison in `log!`.
///
/// A process started by `Spawn` or the forkserver has no logger yet and gets
/// this one. A `Fork` child inherits its parent's logger: when that is a
/// [`ForwardingLogger`](crate::observe::ForwardingLogger) it forwards from here
/// on; any other logger keeps logging in this process (see the module docs).
pub(crate) fn install(sock: OwnedFd, level: log::LevelFilter) {
    let _ = datagram::set_send_buffer(sock.as_fd(), 1 << 20);
    *SINK.write().unwrap_or_else(|e| e.into_inner()) = Some(sock);
    let _ = log::set_logger(&CHILD_LOGGER);
    log::set_max_level(level);
}

/// Sets the index of the pool task that runs next in this process.
pub(crate) fn set_task(index: Option<u64>) {
    TASK.store(index.unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// The index of the pool task running now.
pub(crate) fn task() -> Option<u64> {
    let t = TASK.load(Ordering::Relaxed);
    (t != u64::MAX).then_some(t)
}

/// Whether this process forwards its records to a parent.
pub(crate) fn is_forwarding() -> bool {
    SINK.read().map(|s| s.is_some()).unwrap_or(false)
}

/// Sends `record` to the parent; `false` when this process forwards nothing.
pub(crate) fn forward(record: &log::Record<'_>) -> bool {
    thread_local! {
        static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    let sink = SINK.read().unwrap_or_else(|e| e.into_inner());
    let Some(sock) = sink.as_ref() else {
        return false;
    };
    let send = |buf: &mut Vec<u8>| {
        record::encode(record, task(), buf);
        // A parent that is gone reads nothing more; the record is dropped.
        let _ = datagram::send_message(sock.as_fd(), buf);
    };
    // A record whose arguments log while being formatted gets a buffer of its own.
    let sent = BUF.try_with(|b| match b.try_borrow_mut() {
        Ok(mut buf) => send(&mut buf),
        Err(_) => send(&mut Vec::new()),
    });
    if sent.is_err() {
        // This thread is exiting and its buffer is gone.
        send(&mut Vec::new());
    }
    true
}

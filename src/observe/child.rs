//! The child's side of log forwarding: a `log` logger that writes each record,
//! as it is made, straight into the socket to the parent (a stream socket: each
//! record is its length, 4 bytes little-endian, then its encoding, written in one
//! `send` under this process's lock, so that records of several threads never
//! interleave).
//!
//! Nothing is buffered in this process: once `log!` returns, the record is in the
//! kernel's socket buffer, where it outlives this process however it ends (a panic,
//! an abort, a `SIGKILL` at a deadline). When the parent reads slower than the
//! child logs and the socket's buffer is full, the logging thread waits for room.

use std::cell::RefCell;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::observe::record;
use crate::sys::{socket, sockopt};

/// The socket to the parent, when this process forwards its records; its lock is
/// held across each record's send.
static SINK: Mutex<Option<OwnedFd>> = Mutex::new(None);

fn sink() -> MutexGuard<'static, Option<OwnedFd>> {
    SINK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Holds the sink's lock across a `fork` (see `info::fork_guard`): a child must
/// not inherit it held by a thread in the middle of a send.
pub(crate) fn fork_guard() -> MutexGuard<'static, impl Sized> {
    sink()
}

/// Whether [`SINK`] holds a socket (read without its lock on every record).
static FORWARDING: AtomicBool = AtomicBool::new(false);

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
    let _ = sockopt::set_send_buffer(sock.as_fd(), 1 << 20);
    *sink() = Some(sock);
    FORWARDING.store(true, Ordering::Release);
    let _ = log::set_logger(&CHILD_LOGGER);
    log::set_max_level(level);
    #[cfg(feature = "tracing")]
    crate::observe::subscriber::install();
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
    FORWARDING.load(Ordering::Acquire)
}

/// Sends `record` to the parent; `false` when this process forwards nothing.
pub(crate) fn forward(record: &log::Record<'_>) -> bool {
    thread_local! {
        static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    if !is_forwarding() {
        return false;
    }
    let send = |buf: &mut Vec<u8>| {
        // Encoded outside the lock (formatting may take long, or log itself).
        buf.clear();
        buf.extend_from_slice(&[0; 4]);
        record::encode_after(record, task(), buf, 4);
        let len = (buf.len() - 4) as u32;
        buf[..4].copy_from_slice(&len.to_le_bytes());
        let guard = sink();
        if let Some(sock) = guard.as_ref() {
            let mut sent = 0;
            while sent < buf.len() {
                let part = [std::io::IoSlice::new(&buf[sent..])];
                match socket::send_with_fds(sock.as_fd(), &part, &[]) {
                    Ok(n) if n > 0 => sent += n,
                    // A parent that is gone reads nothing more; the record is dropped.
                    _ => break,
                }
            }
        }
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

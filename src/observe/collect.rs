//! The parent's side of log forwarding (and of output capture, see
//! [`output`](crate::observe::output)): one thread per process reads the log
//! sockets and output pipes of all its children (an epoll set: starting a child
//! adds its descriptors without waking the thread); log records go to this
//! process's logger, tagged with the child's name, pid and pool task.
//!
//! Each child's records are read and emitted under that child's own lock, so they
//! come out in the order the child made them, whoever reads them: the collector
//! thread as they arrive, or the thread that learns of the child's end (`join`, a
//! pool replacing a dead worker), which drains what is left before it reports the
//! end. Since a child's records are in the kernel before it can end, the last
//! lines before a crash are logged before the crash is reported.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::observe::record::{self, Decoded};
use crate::sys::epoll::Poller;
use crate::sys::process as os;

/// A descriptor the collector thread reads from a child.
pub(crate) trait Source: Send + Sync {
    /// The descriptor to watch.
    fn fd(&self) -> BorrowedFd<'_>;
    /// Reads and handles everything waiting now, in order, under the source's own
    /// lock. Returns `true` once the descriptor has ended.
    fn drain(&self) -> bool;
}

/// A key for a new source.
pub(crate) fn next_key() -> u64 {
    static NEXT_KEY: AtomicU64 = AtomicU64::new(1);
    NEXT_KEY.fetch_add(1, Ordering::Relaxed)
}

/// Has `source` read as its data arrives, until it ends. A failure to watch
/// leaves it to its owner's own drains.
pub(crate) fn watch(source: Arc<dyn Source>) {
    let key = next_key();
    let mut g = collector();
    let c = match g.as_mut() {
        Some(c) if c.owner == os::getpid() => c,
        _ => match Collector::start() {
            Ok(c) => g.insert(c),
            Err(e) => {
                log::warn!("mproc: cannot start the log collector thread: {e}");
                return;
            }
        },
    };
    let added = c.poller.add(source.fd(), key).is_ok();
    if added {
        c.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, source);
    }
}

/// The read end of one child's log socket.
pub(crate) struct LogSource {
    sock: OwnedFd,
    name: String,
    pid: AtomicU32,
    /// Held while reading and emitting: keeps one child's records in order.
    reading: Mutex<ReadState>,
}

struct ReadState {
    /// Whether the socket has ended.
    ended: bool,
    /// Bytes received (allocated at the first read); `buf[start..end]` is not yet
    /// emitted (a record's length, 4 bytes little-endian, then the record).
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// Bytes read at a time from a log socket.
const READ_CHUNK: usize = 256 * 1024;

/// A fresh log socket for the child called `name`: the source stays here, the
/// other end goes to the child.
pub(crate) fn open(name: &str) -> io::Result<(Arc<LogSource>, OwnedFd)> {
    let (mine, theirs) = crate::sys::socket::socketpair()?;
    let source = Arc::new(LogSource {
        sock: mine,
        name: name.to_string(),
        pid: AtomicU32::new(0),
        reading: Mutex::new(ReadState {
            ended: false,
            buf: Vec::new(),
            start: 0,
            end: 0,
        }),
    });
    Ok((source, theirs))
}

impl LogSource {
    /// The child started with `pid`: its records are read from now on, as they
    /// arrive. A failure to watch leaves them to [`drain`](LogSource::drain).
    pub(crate) fn watch(self: &Arc<Self>, pid: u32) {
        self.pid.store(pid, Ordering::Relaxed);
        watch(Arc::clone(self) as Arc<dyn Source>);
    }

    /// Emits every record waiting now, in order. Returns `true` once the socket
    /// has ended (every sender is gone and nothing is left).
    pub(crate) fn drain(&self) -> bool {
        Source::drain(self)
    }

    fn emit_record(&self, bytes: &[u8]) {
        let Some(d) = record::decode(bytes) else {
            return;
        };
        emit(&self.name, self.pid.load(Ordering::Relaxed), &d);
    }
}

impl Source for LogSource {
    fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    fn drain(&self) -> bool {
        let mut state = self.reading.lock().unwrap_or_else(|e| e.into_inner());
        let ReadState {
            ended,
            buf,
            start,
            end,
        } = &mut *state;
        if *ended {
            return true;
        }
        if buf.is_empty() {
            buf.resize(READ_CHUNK.max(2 * (record::MAX_RECORD + 1024)), 0);
        }
        loop {
            // Room for a whole record at the end of the buffer.
            if buf.len() - *end < record::MAX_RECORD + 1024 {
                buf.copy_within(*start..*end, 0);
                *end -= *start;
                *start = 0;
            }
            let got = match crate::sys::stream::recv(
                self.sock.as_fd(),
                &mut buf[*end..],
                &mut Vec::new(),
                true,
            ) {
                Ok(0) => None,
                Ok(n) => Some(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => None,
            };
            let Some(n) = got else {
                // What is left is a record cut short by the child's death.
                *ended = true;
                *buf = Vec::new();
                return true;
            };
            *end += n;
            while *end - *start >= 4 {
                let len = u32::from_le_bytes(buf[*start..*start + 4].try_into().expect("4 bytes"))
                    as usize;
                if len > record::MAX_RECORD + 1024 {
                    // Not a record: the stream is out of step; read no more of it.
                    *ended = true;
                    *buf = Vec::new();
                    return true;
                }
                if *end - *start < 4 + len {
                    break;
                }
                self.emit_record(&buf[*start + 4..*start + 4 + len]);
                *start += 4 + len;
            }
            if *start == *end {
                *start = 0;
                *end = 0;
            }
        }
    }
}

/// Hands a child's record to this process's logger, tagged (see the module docs
/// of [`observe`](crate::observe) for the tags).
fn emit(name: &str, pid: u32, d: &Decoded<'_>) {
    if d.level > log::max_level() {
        return;
    }
    let kvs: [(&str, log::kv::Value<'_>); 3] = [
        (crate::observe::KEY_PROCESS, log::kv::Value::from(name)),
        (crate::observe::KEY_PID, log::kv::Value::from(pid)),
        (
            crate::observe::KEY_TASK,
            match d.task {
                Some(t) => log::kv::Value::from(t),
                None => log::kv::Value::null(),
            },
        ),
    ];
    let kvs = if d.task.is_some() {
        &kvs[..]
    } else {
        &kvs[..2]
    };
    let task = TaskTag(d.task);
    log::logger().log(
        &log::Record::builder()
            .level(d.level)
            .target(d.target)
            .module_path(d.module_path)
            .file(d.file)
            .line(d.line)
            .key_values(&kvs)
            .args(format_args!("[{name} pid {pid}{task}] {}", d.message))
            .build(),
    );
}

struct TaskTag(Option<u64>);

impl std::fmt::Display for TaskTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(t) => write!(f, " task {t}"),
            None => Ok(()),
        }
    }
}

/// The collector of this process (a `Fork` child inherits its parent's and
/// starts its own).
struct Collector {
    owner: u32,
    poller: Arc<Poller>,
    sources: Arc<Mutex<HashMap<u64, Arc<dyn Source>>>>,
}

static COLLECTOR: Mutex<Option<Collector>> = Mutex::new(None);

fn collector() -> MutexGuard<'static, Option<Collector>> {
    COLLECTOR.lock().unwrap_or_else(|e| e.into_inner())
}

/// Holds the collector's lock across a `fork` (see `info::fork_guard`).
pub(crate) fn fork_guard() -> MutexGuard<'static, impl Sized> {
    collector()
}

impl Collector {
    fn start() -> io::Result<Collector> {
        let poller = Arc::new(Poller::new()?);
        let sources: Arc<Mutex<HashMap<u64, Arc<dyn Source>>>> = Arc::default();
        let (p, s) = (Arc::clone(&poller), Arc::clone(&sources));
        std::thread::Builder::new()
            .name("mproc-logs".into())
            .spawn(move || run(&p, &s))?;
        Ok(Collector {
            owner: os::getpid(),
            poller,
            sources,
        })
    }
}

fn run(poller: &Poller, sources: &Mutex<HashMap<u64, Arc<dyn Source>>>) {
    let mut keys = Vec::new();
    loop {
        keys.clear();
        if poller.wait(&mut keys, None).is_err() {
            return;
        }
        for &key in &keys {
            let source = sources
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&key)
                .cloned();
            let Some(source) = source else { continue };
            if source.drain() {
                let _ = poller.remove(source.fd());
                sources
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&key);
            }
        }
        // Let records gather before reading again: one wake-up of this thread per
        // batch of records instead of one per record. A child's end, and a pool's
        // results, never wait for this: their readers drain the sockets themselves.
        if !keys.is_empty() {
            std::thread::sleep(COALESCE);
        }
    }
}

/// How long the collector lets records gather after a read (at most this much
/// later on the parent's logger; a child's socket holds far more than it makes
/// in this time).
const COALESCE: std::time::Duration = std::time::Duration::from_millis(2);

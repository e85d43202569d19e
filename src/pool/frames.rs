//! The pool's own messages between the parent and a worker, hand-encoded: a batch of
//! tasks one way, batches of results the other. Every frame is a [`crate::wire`]
//! frame (8-byte header, payload); descriptors of all the items in a frame ride on
//! it in item order.
//!
//! Integers are little-endian. A malformed frame is an error, never a panic: a
//! worker is a separate process and may be dying while it writes.

use serde::{Deserialize, Serialize};

use crate::pool::insights::WorkerStats;
use crate::sys::code::EntryPoint;

const TAG_BATCH: u8 = 1;
const TAG_STOP: u8 = 2;
const TAG_RESULTS: u8 = 3;
const TAG_HELLO: u8 = 4;
const TAG_STATS: u8 = 5;

/// Result kinds in a results frame.
const OK: u8 = 0;
const PANICKED: u8 = 1;
const FAILED: u8 = 2;
const SKIPPED: u8 = 3;

/// A panic, as the worker saw it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PanicInfo {
    pub(crate) message: String,
    pub(crate) location: Option<String>,
    pub(crate) backtrace: String,
}

/// A frame buffer that starts with room for the wire header.
pub(crate) struct FrameBuf {
    pub(crate) bytes: Vec<u8>,
    pub(crate) nfds: u32,
}

impl FrameBuf {
    fn new(tag: u8, capacity: usize) -> FrameBuf {
        let mut bytes = Vec::with_capacity(capacity + 9);
        bytes.extend_from_slice(&[0u8; 8]);
        bytes.push(tag);
        FrameBuf { bytes, nfds: 0 }
    }

    fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    fn blob(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.bytes.extend_from_slice(b);
    }

    /// Writes the wire header; the buffer is then one complete frame.
    pub(crate) fn finish(mut self) -> FrameBuf {
        let len = (self.bytes.len() - 8) as u32;
        self.bytes[..4].copy_from_slice(&len.to_le_bytes());
        self.bytes[4..8].copy_from_slice(&self.nfds.to_le_bytes());
        self
    }

    /// The payload (without the header), for `wire::send`.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.bytes[8..]
    }
}

/// Builds a batch frame: a table of entry points, then the tasks.
pub(crate) struct BatchWriter {
    buf: FrameBuf,
    count_at: usize,
    count: u32,
}

impl BatchWriter {
    /// A batch with room for `capacity` bytes of tasks (their arguments plus 20 bytes
    /// each), so that large batches are not copied as the buffer grows.
    pub(crate) fn new(entries: &[EntryPoint], capacity: usize) -> BatchWriter {
        let mut buf = FrameBuf::new(TAG_BATCH, 256 + capacity);
        buf.u32(entries.len() as u32);
        for e in entries {
            let enc = postcard::to_stdvec(e).expect("an entry point always encodes");
            buf.blob(&enc);
        }
        let count_at = buf.bytes.len();
        buf.u32(0);
        BatchWriter {
            buf,
            count_at,
            count: 0,
        }
    }

    pub(crate) fn task(&mut self, seq: u64, index: u64, entry: u32, args: &[u8], nfds: u32) {
        self.buf.u64(seq);
        self.buf.u64(index);
        self.buf.u32(entry);
        self.buf.u32(nfds);
        self.buf.blob(args);
        self.buf.nfds += nfds;
        self.count += 1;
    }

    pub(crate) fn finish(mut self) -> FrameBuf {
        let at = self.count_at;
        self.buf.bytes[at..at + 4].copy_from_slice(&self.count.to_le_bytes());
        self.buf.finish()
    }
}

/// The stop frame: finish what you hold and exit.
pub(crate) fn stop() -> FrameBuf {
    FrameBuf::new(TAG_STOP, 0).finish()
}

/// The hello frame a worker sends once its initializer ran.
pub(crate) fn hello(init: Result<(), String>) -> FrameBuf {
    let mut buf = FrameBuf::new(TAG_HELLO, 16);
    match init {
        Ok(()) => buf.bytes.push(0),
        Err(msg) => {
            buf.bytes.push(1);
            buf.blob(msg.as_bytes());
        }
    }
    buf.finish()
}

/// The frame a worker sends about the batch it ran (see `pool::insights`),
/// before the batch's last results.
pub(crate) fn stats(s: &WorkerStats) -> FrameBuf {
    let mut buf = FrameBuf::new(TAG_STATS, 48);
    for v in [
        s.tasks,
        s.task_ns,
        s.wait_ns,
        s.serialize_ns,
        s.startup_ns,
        s.peak_rss,
    ] {
        buf.u64(v);
    }
    buf.bytes.push(u8::from(s.retiring));
    buf.finish()
}

/// Builds a results frame.
pub(crate) struct ResultsWriter {
    buf: FrameBuf,
    count: u32,
}

impl ResultsWriter {
    pub(crate) fn new() -> ResultsWriter {
        let mut buf = FrameBuf::new(TAG_RESULTS, 4096);
        buf.u64(0);
        buf.u32(0);
        ResultsWriter { buf, count: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.bytes.len()
    }

    pub(crate) fn ok(&mut self, seq: u64, bytes: &[u8], nfds: u32) {
        self.buf.u64(seq);
        self.buf.bytes.push(OK);
        self.buf.u32(nfds);
        self.buf.blob(bytes);
        self.buf.nfds += nfds;
        self.count += 1;
    }

    pub(crate) fn panicked(&mut self, seq: u64, info: &PanicInfo) {
        let enc = postcard::to_stdvec(info).unwrap_or_default();
        self.buf.u64(seq);
        self.buf.bytes.push(PANICKED);
        self.buf.u32(0);
        self.buf.blob(&enc);
        self.count += 1;
    }

    pub(crate) fn failed(&mut self, seq: u64, reason: &str) {
        self.buf.u64(seq);
        self.buf.bytes.push(FAILED);
        self.buf.u32(0);
        self.buf.blob(reason.as_bytes());
        self.count += 1;
    }

    /// Task `seq` was not run: the dispatcher took it back (see
    /// `Dispatcher::take_back`), and hears here that it may run it elsewhere.
    pub(crate) fn skipped(&mut self, seq: u64) {
        self.buf.u64(seq);
        self.buf.bytes.push(SKIPPED);
        self.buf.u32(0);
        self.buf.blob(&[]);
        self.count += 1;
    }

    /// Completes the frame, recording how long its items took in total.
    pub(crate) fn finish(mut self, busy_ns: u64) -> FrameBuf {
        self.buf.bytes[9..17].copy_from_slice(&busy_ns.to_le_bytes());
        self.buf.bytes[17..21].copy_from_slice(&self.count.to_le_bytes());
        self.buf.finish()
    }
}

/// One task as the worker receives it.
pub(crate) struct TaskIn {
    pub(crate) seq: u64,
    /// The task's index in its call (the first item's, for a chunk): for tagging
    /// the records it logs.
    pub(crate) index: u64,
    pub(crate) entry: u32,
    pub(crate) nfds: u32,
    pub(crate) args: Vec<u8>,
}

/// What a worker receives.
pub(crate) enum ToWorker {
    Batch {
        entries: Vec<EntryPoint>,
        tasks: Vec<TaskIn>,
    },
    Stop,
}

/// One result as the parent receives it.
pub(crate) enum Outcome {
    Ok {
        bytes: Vec<u8>,
        nfds: u32,
    },
    Panicked(PanicInfo),
    Failed(String),
    /// Not run: taken back by the dispatcher.
    Skipped,
}

/// What the parent receives.
pub(crate) enum FromWorker {
    Hello(Result<(), String>),
    Results {
        busy_ns: u64,
        items: Vec<(u64, Outcome)>,
    },
    Stats(WorkerStats),
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Some(h)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8")))
    }
    fn blob(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

fn malformed() -> String {
    "malformed pool frame".to_string()
}

/// Parses a frame payload sent to a worker.
pub(crate) fn parse_to_worker(payload: &[u8]) -> Result<ToWorker, String> {
    let mut r = Reader { b: payload };
    match r.u8().ok_or_else(malformed)? {
        TAG_STOP => Ok(ToWorker::Stop),
        TAG_BATCH => {
            let ne = r.u32().ok_or_else(malformed)? as usize;
            let mut entries = Vec::with_capacity(ne.min(1024));
            for _ in 0..ne {
                let b = r.blob().ok_or_else(malformed)?;
                entries.push(postcard::from_bytes(b).map_err(|e| e.to_string())?);
            }
            let n = r.u32().ok_or_else(malformed)? as usize;
            let mut tasks = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                let seq = r.u64().ok_or_else(malformed)?;
                let index = r.u64().ok_or_else(malformed)?;
                let entry = r.u32().ok_or_else(malformed)?;
                let nfds = r.u32().ok_or_else(malformed)?;
                let args = r.blob().ok_or_else(malformed)?.to_vec();
                if entry as usize >= entries.len() {
                    return Err(malformed());
                }
                tasks.push(TaskIn {
                    seq,
                    index,
                    entry,
                    nfds,
                    args,
                });
            }
            Ok(ToWorker::Batch { entries, tasks })
        }
        _ => Err(malformed()),
    }
}

/// Parses a frame payload sent by a worker.
pub(crate) fn parse_from_worker(payload: &[u8]) -> Result<FromWorker, String> {
    let mut r = Reader { b: payload };
    match r.u8().ok_or_else(malformed)? {
        TAG_HELLO => match r.u8().ok_or_else(malformed)? {
            0 => Ok(FromWorker::Hello(Ok(()))),
            _ => {
                let msg = String::from_utf8_lossy(r.blob().ok_or_else(malformed)?).into_owned();
                Ok(FromWorker::Hello(Err(msg)))
            }
        },
        TAG_STATS => {
            let mut v = [0u64; 6];
            for x in &mut v {
                *x = r.u64().ok_or_else(malformed)?;
            }
            Ok(FromWorker::Stats(WorkerStats {
                tasks: v[0],
                task_ns: v[1],
                wait_ns: v[2],
                serialize_ns: v[3],
                startup_ns: v[4],
                peak_rss: v[5],
                retiring: r.u8().ok_or_else(malformed)? != 0,
            }))
        }
        TAG_RESULTS => {
            let busy_ns = r.u64().ok_or_else(malformed)?;
            let n = r.u32().ok_or_else(malformed)? as usize;
            let mut items = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                let seq = r.u64().ok_or_else(malformed)?;
                let kind = r.u8().ok_or_else(malformed)?;
                let nfds = r.u32().ok_or_else(malformed)?;
                let blob = r.blob().ok_or_else(malformed)?;
                let outcome = match kind {
                    OK => Outcome::Ok {
                        bytes: blob.to_vec(),
                        nfds,
                    },
                    PANICKED => {
                        Outcome::Panicked(postcard::from_bytes(blob).map_err(|e| e.to_string())?)
                    }
                    FAILED => Outcome::Failed(String::from_utf8_lossy(blob).into_owned()),
                    SKIPPED => Outcome::Skipped,
                    _ => return Err(malformed()),
                };
                items.push((seq, outcome));
            }
            Ok(FromWorker::Results { busy_ns, items })
        }
        _ => Err(malformed()),
    }
}

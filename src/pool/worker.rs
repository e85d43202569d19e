//! The worker's side: a long-lived child that runs batches of tasks until told to
//! stop, its parent goes away, or it reaches `max_tasks_per_child`.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::{self, Message};
pub(crate) use crate::handle::Fd;
use crate::pool::frames::{self, PanicInfo, ResultsWriter, ToWorker};
use crate::pool::insights::WorkerStats;
use crate::pool::plain;
use crate::sys::code::{EntryPoint, Runner};
use crate::sys::shared_word::SharedWords;
use crate::wire;

/// Everything a worker needs, sent as its process argument.
#[derive(Serialize, Deserialize)]
pub(crate) struct WorkerConfig {
    pub(crate) sock: Fd,
    /// Three words: the sequence number of the task started last (0: none), the
    /// position of the item running within it (for chunks), and the number below
    /// which no task may start (the dispatcher took those back; see
    /// `Dispatcher::take_back`).
    pub(crate) words: Fd,
    pub(crate) initializer: Option<(EntryPoint, Vec<u8>)>,
    pub(crate) max_tasks: Option<u64>,
    /// Retire after the task during which the resident size passed this (bytes).
    pub(crate) max_memory: Option<u64>,
    /// Makes the worker's state (`pool::worker_state`), after the initializer.
    pub(crate) state_init: Option<(EntryPoint, Vec<u8>)>,
    /// Whether to measure and report insights (`pool::insights`).
    pub(crate) insights: bool,
    /// When the parent asked for this worker (`sys::clock::monotonic_ns`).
    pub(crate) requested_ns: u64,
}

/// Items of `map` chunks run beyond the first of each (a chunk is one task to the
/// worker's loop), for the insights' task count.
static CHUNK_EXTRA_ITEMS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Results are sent at the end of each batch, and within a batch whenever this
/// long has passed since the last send (checked every 16 tasks): with a worker that
/// dies, at most that much finished work is lost (and run again elsewhere).
const FLUSH_NS: u64 = 1_000_000;

/// Freed heap memory a worker keeps for its next batches (bytes).
const KEEP_FREED_HEAP: usize = 16 << 20;

/// The panic the worker's task thread recorded last (the process bootstrap's panic
/// hook records it; a worker must not install its own hook, see
/// `bootstrap::install_panic_hook`).
fn last_panic() -> Option<PanicInfo> {
    crate::process::take_task_panic().map(|p| PanicInfo {
        message: p.message,
        location: p.location,
        backtrace: p.backtrace,
    })
}

/// The worker's shared words, for the chunk runner (set once at start; the worker
/// process lives exactly as long as them).
static WORDS: std::sync::OnceLock<SharedWords> = std::sync::OnceLock::new();

/// What a chunk task hands back: every result, or the position and panic of the
/// first item that panicked. (Results that are plain numbers come back as
/// `pool::plain::OK` followed by their bytes instead of the `Ok` variant.)
pub(crate) type ChunkResult<R> = Result<Vec<R>, (u32, PanicInfo)>;

/// Runs `f` on every item of a chunk (`Vec<A>`) in one call: the fast path of
/// `map`. Stores the running item's position in the second shared word, so that a
/// crash is pinned on the exact item.
pub(crate) struct ChunkRunner;

impl<A: DeserializeOwned + 'static, R: Serialize + 'static> Runner<A, R> for ChunkRunner {
    fn run(f: fn(A) -> R, input: Message) -> Result<Message, String> {
        // Plain numbers come as their bytes (see `plain`), anything else as postcard.
        let mut items: Vec<A> = Vec::new();
        let items = match plain::decode_into(&input.bytes, &mut items) {
            Some(Ok(())) => items,
            Some(Err(e)) => return Err(format!("cannot decode the arguments in the worker: {e}")),
            None => codec::decode(input)
                .map_err(|e| format!("cannot decode the arguments in the worker: {e}"))?,
        };
        let position = WORDS.get().map(|w| w.word(1));
        let first = crate::observe::child::task();
        let n = items.len();
        let mut out: Vec<R> = Vec::with_capacity(n);
        // One unwind guard for the whole chunk: `done` says which item panicked.
        let mut done = 0usize;
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for a in items {
                if let Some(p) = position {
                    p.store(done as u64, Ordering::Relaxed);
                }
                if let Some(first) = first {
                    crate::observe::child::set_task(Some(first + done as u64));
                }
                out.push(f(a));
                done += 1;
            }
        }));
        CHUNK_EXTRA_ITEMS.fetch_add(done.saturating_sub(1) as u64, Ordering::Relaxed);
        let failed = run.err().map(|payload| {
            let info = last_panic().unwrap_or_else(|| PanicInfo {
                message: crate::process::panic_message(&*payload),
                location: None,
                backtrace: String::new(),
            });
            (done as u32, info)
        });
        let result: ChunkResult<R> = match failed {
            Some(f) => Err(f),
            None => {
                let mut bytes = Vec::with_capacity(1 + n * std::mem::size_of::<R>());
                bytes.push(plain::OK);
                if plain::encode(&out, 0..n, &mut bytes) {
                    return Ok(Message {
                        bytes,
                        fds: Vec::new(),
                    });
                }
                Ok(out)
            }
        };
        // Room for every result at its in-memory size: enough for most values' encoding.
        let room = n.saturating_mul(std::mem::size_of::<R>().clamp(1, 16)) + 16;
        codec::encode_with_capacity(&result, room)
            .map_err(|e| format!("cannot encode the results in the worker: {e}"))
    }
}

fn run_caught(entry: &EntryPoint, input: Message) -> Result<Result<Message, String>, PanicInfo> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| entry.invoke(input))) {
        Ok(r) => Ok(r),
        Err(payload) => Err(last_panic().unwrap_or_else(|| PanicInfo {
            message: crate::process::panic_message(&*payload),
            location: None,
            backtrace: String::new(),
        })),
    }
}

fn send(sock: &OwnedFd, frame: frames::FrameBuf, fds: &[OwnedFd]) -> bool {
    let fds: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
    wire::send(sock.as_fd(), frame.payload(), &fds).is_ok()
}

/// Sends whole frames (headers included) in one `sendmsg` where the socket takes
/// them; `fds` ride on the first byte, and the reader hands them to the frames in
/// order of the counts their headers announce.
fn send_frames(sock: &OwnedFd, frames: &[&frames::FrameBuf], fds: &[OwnedFd]) -> bool {
    let fds: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
    let total: usize = frames.iter().map(|f| f.bytes.len()).sum();
    let mut sent = 0;
    while sent < total {
        // The parts not yet sent.
        let mut skip = sent;
        let mut parts = Vec::with_capacity(frames.len());
        for f in frames {
            if skip >= f.bytes.len() {
                skip -= f.bytes.len();
                continue;
            }
            parts.push(std::io::IoSlice::new(&f.bytes[skip..]));
            skip = 0;
        }
        let with = if sent == 0 { &fds[..] } else { &[][..] };
        match crate::sys::socket::send_with_fds(sock.as_fd(), &parts, with) {
            Ok(0) | Err(_) => return false,
            Ok(n) => sent += n,
        }
    }
    true
}

/// The worker process's main function.
pub(crate) fn worker_main(cfg: WorkerConfig) {
    let _ = crate::sys::interrupt::ignore();
    // Batches allocate and free the same large buffers again and again: keep the
    // freed memory for the next batch instead of faulting it back in page by page.
    crate::sys::memory::keep_freed_heap(KEEP_FREED_HEAP);
    let sock = cfg.sock.0;
    let Ok(words) = SharedWords::open(cfg.words.0) else {
        let _ = send(
            &sock,
            frames::hello(Err("cannot map the shared word".into())),
            &[],
        );
        return;
    };
    let words = WORDS.get_or_init(|| words);
    let running = words.word(0);
    let taken_back = words.word(2);
    // The initializer, then what makes the worker's state.
    let mut init = Ok(());
    for (entry, args) in cfg.initializer.into_iter().chain(cfg.state_init) {
        let input = Message {
            bytes: args,
            fds: Vec::new(),
        };
        init = match run_caught(&entry, input) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(reason)) => Err(reason),
            Err(p) => Err(match p.location {
                Some(at) => format!("panicked at {at}: {}", p.message),
                None => format!("panicked: {}", p.message),
            }),
        };
        if init.is_err() {
            break;
        }
    }
    let init_ok = init.is_ok();
    if !send(&sock, frames::hello(init), &[]) || !init_ok {
        return;
    }
    let mut stats = WorkerStats {
        startup_ns: crate::sys::clock::monotonic_ns().saturating_sub(cfg.requested_ns),
        ..WorkerStats::default()
    };
    let measure = cfg.insights;
    let clock = || if measure { Some(Instant::now()) } else { None };
    let since_ns = |t: Option<Instant>| t.map_or(0, |t| t.elapsed().as_nanos() as u64);
    let mut done: u64 = 0;
    let memory = cfg.max_memory.map(crate::pool::memory::Watch::new);
    loop {
        let waiting = clock();
        let msg = match wire::recv(sock.as_fd(), usize::MAX) {
            Ok(Some(m)) => m,
            // The parent closed our socket or went away: nothing left to do.
            _ => return,
        };
        stats.wait_ns += since_ns(waiting);
        let parsing = clock();
        let mut fds = msg.fds.into_iter();
        let (entries, tasks) = match frames::parse_to_worker(&msg.bytes) {
            Ok(ToWorker::Stop) => return,
            Ok(ToWorker::Batch { entries, tasks }) => (entries, tasks),
            Err(_) => return,
        };
        stats.serialize_ns += since_ns(parsing);
        let batch = clock();
        let mut sending_ns = 0u64;
        let ran_before = done;
        let chunk_items_before = CHUNK_EXTRA_ITEMS.load(Ordering::Relaxed);
        let mut out = ResultsWriter::new();
        let mut out_fds: Vec<OwnedFd> = Vec::new();
        let mut since = Instant::now();
        let mut busy_from = since;
        let mut retire = false;
        for task in tasks {
            if retire {
                // Never started: the parent runs it elsewhere.
                break;
            }
            let input = Message {
                bytes: task.args,
                fds: fds.by_ref().take(task.nfds as usize).collect(),
            };
            // Published before the look at `taken_back`, both sequentially
            // consistent: the dispatcher raises `taken_back` and then reads
            // `running`, so a task is either skipped here or known there to have
            // started (Dekker's pattern; `Dispatcher::take_back`).
            running.store(task.seq, Ordering::SeqCst);
            if task.seq < taken_back.load(Ordering::SeqCst) {
                // Taken back. The dispatcher may also have seen this task start
                // (both sides can see each other's write): saying so settles it.
                out.skipped(task.seq);
                continue;
            }
            crate::observe::child::set_task(Some(task.index));
            match run_caught(&entries[task.entry as usize], input) {
                Ok(Ok(result)) => {
                    out.ok(task.seq, &result.bytes, result.fds.len() as u32);
                    out_fds.extend(result.fds);
                }
                Ok(Err(reason)) => out.failed(task.seq, &reason),
                Err(p) => out.panicked(task.seq, &p),
            }
            done += 1;
            retire = memory.as_ref().is_some_and(|m| m.passed());
            // Reading the clock costs ~20 ns: with fast tasks, look every 16th one.
            if done % 16 != 0 && out.len() < 1 << 20 && out_fds.len() < 200 {
                continue;
            }
            let now = Instant::now();
            if now.duration_since(since).as_nanos() as u64 >= FLUSH_NS
                || out.len() >= 1 << 20
                || out_fds.len() >= 200
            {
                let busy = now.duration_since(busy_from).as_nanos() as u64;
                let frame = std::mem::replace(&mut out, ResultsWriter::new()).finish(busy);
                let sending = clock();
                if !send(&sock, frame, &out_fds) {
                    return;
                }
                sending_ns += since_ns(sending);
                out_fds.clear();
                since = Instant::now();
                busy_from = since;
            }
        }
        let retiring = retire || cfg.max_tasks.is_some_and(|m| done >= m);
        // The batch's stats go before its last results, in the same send (one
        // wake-up of the parent, not two): whoever sees those results sees the
        // batch counted.
        let stats_frame = measure.then(|| {
            stats.retiring = retiring;
            stats.tasks += done - ran_before
                + (CHUNK_EXTRA_ITEMS.load(Ordering::Relaxed) - chunk_items_before);
            stats.task_ns += since_ns(batch).saturating_sub(sending_ns);
            stats.serialize_ns += sending_ns;
            stats.peak_rss = crate::sys::limits::peak_rss();
            let frame = frames::stats(&stats);
            stats = WorkerStats::default();
            frame
        });
        let results = (!out.is_empty()).then(|| {
            let busy = busy_from.elapsed().as_nanos() as u64;
            std::mem::replace(&mut out, ResultsWriter::new()).finish(busy)
        });
        let sending = clock();
        let to_send: Vec<&frames::FrameBuf> = stats_frame.iter().chain(results.iter()).collect();
        if !send_frames(&sock, &to_send, &out_fds) {
            return;
        }
        stats.serialize_ns += since_ns(sending);
        crate::observe::child::set_task(None);
        // `running` keeps naming the last task started: the dispatcher must not take
        // back a task that has finished but whose result it has not read yet.
        if retiring {
            return;
        }
    }
}

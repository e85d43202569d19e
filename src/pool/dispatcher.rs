//! The pool's dispatcher thread: the only code that talks to workers.
//!
//! It takes chunks of tasks from the pool's backlog, sends them to workers in batches
//! (several chunks per frame, sized from the measured task time, at most
//! `BATCH_BYTES` of arguments, each worker topped up to its share of the work not
//! yet finished; at most two batches in flight per worker), reads results, watches
//! every worker's pidfd, and replaces workers that die, retire or run past a task's
//! deadline.
//!
//! Which task a dead worker was running is read from a word the worker shares with
//! the parent (it stores the task's sequence number before running it): that task
//! fails (or is retried within its budget); tasks behind it in the worker's batch
//! never started and go back to the front of the queue, as do tasks that finished
//! but whose results died with the worker (at most ~1 ms or 16 tasks of work, see
//! `worker::FLUSH_NS`).

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::codec::Message;
use crate::pool::frames::{self, BatchWriter, FromWorker, Outcome};
use crate::pool::insights::Ending;
use crate::pool::link::Link;
use crate::pool::state::{Backlog, PoolState, Stop};
use crate::pool::worker::{Fd, WorkerConfig, worker_main};
use crate::pool::worker_options::WorkerOptions;
use crate::process::{ExitStatus, Process, StartMethod};
use crate::sys::code::EntryPoint;
use crate::sys::shared_word::SharedWords;
use crate::sys::socket;
use crate::task::call::{CallInfo, Chunk, Job, Outcomes};
use crate::task::{Kind, TaskError};

/// How to start a worker.
#[derive(Clone)]
pub(crate) struct WorkerSpec {
    pub(crate) method: StartMethod,
    pub(crate) initializer: Option<(EntryPoint, Vec<u8>)>,
    pub(crate) max_tasks: Option<u64>,
    pub(crate) name: String,
    pub(crate) options: crate::pool::worker_options::WorkerOptions,
}

struct Held {
    seq: u64,
    item: Job,
    /// The last item of its batch.
    batch_end: bool,
}

pub(crate) struct Worker {
    id: usize,
    process: Process<()>,
    link: Link,
    words: SharedWords,
    ready: bool,
    held: VecDeque<Held>,
    batches: usize,
    allowance: Option<u64>,
    last_word: u64,
    seen_at: Instant,
    /// When the worker last showed progress: results came back, or it was handed
    /// work while it held none. A worker that holds tasks and shows none for much
    /// longer than they should take is busy with a long one: see `take_back`.
    progress_at: Instant,
    /// The `RUNNING` word as `take_back` last saw it: a change is progress too.
    running_seen: u64,
    timed_out: Option<(u64, Duration)>,
    /// How many held tasks have a timeout (0: no deadline to watch).
    timed: usize,
    stop_sent: bool,
    dead: bool,
}

impl Worker {
    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Whether the worker holds nothing and can be given work now.
    fn is_idle(&self, window: usize) -> bool {
        self.ready
            && !self.dead
            && !self.stop_sent
            && self.held.is_empty()
            && self.batches < window
            && self.allowance != Some(0)
    }

    /// The sequence number of the task the worker started last (0: none yet).
    fn last_started(&self) -> u64 {
        self.words.word(RUNNING).load(Ordering::Acquire)
    }
}

/// Starts worker `id` (hello not yet received).
pub(crate) fn start_worker(spec: &WorkerSpec, id: usize) -> Result<Worker, crate::pool::PoolError> {
    use crate::pool::PoolError;
    let io = |what| move |source| PoolError::Io { what, source };
    let (mine, theirs) = socket::socketpair().map_err(io("socketpair"))?;
    let words = SharedWords::create(WORDS).map_err(io("memfd"))?;
    let words_fd = socket::dup(words.fd()).map_err(io("dup"))?;
    let cfg = WorkerConfig {
        sock: Fd(theirs),
        words: Fd(words_fd),
        initializer: spec.initializer.clone(),
        max_tasks: spec.max_tasks,
        max_memory: spec.options.max_memory,
        state_init: spec.options.state_init.clone().and_then(Result::ok),
        insights: spec.options.insights,
        requested_ns: crate::sys::clock::monotonic_ns(),
    };
    let mut builder = Process::builder();
    spec.options.configure(&mut builder);
    let process = builder
        .name(format!("{}-{id}", spec.name))
        .daemon(true)
        .start_method(spec.method)
        .start(worker_main, cfg)
        .map_err(|source| PoolError::Spawn { worker: id, source })?;
    spec.options.recorder.started(id, process.pid());
    let link = match Link::new(mine) {
        Ok(link) => link,
        Err(e) => {
            // Not left running unwatched, nor unreaped.
            let _ = process.kill();
            let _ = process.join();
            return Err(io("socket")(e));
        }
    };
    Ok(Worker {
        id,
        process,
        link,
        words,
        ready: false,
        held: VecDeque::new(),
        batches: 0,
        allowance: spec.max_tasks,
        last_word: 0,
        seen_at: Instant::now(),
        progress_at: Instant::now(),
        running_seen: 0,
        timed_out: None,
        timed: 0,
        stop_sent: false,
        dead: false,
    })
}

/// Waits (blocking, bounded) for a fresh worker's hello.
pub(crate) fn await_hello(w: &mut Worker, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let mut frames = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no hello within {limit:?}"));
        }
        let ready = socket::poll(
            &[(w.link.fd(), false), (w.process.sentinel(), false)],
            Some(left),
        )
        .map_err(|e| e.to_string())?;
        if ready[0].readable {
            let eof = w.link.read(&mut frames).map_err(|e| e.to_string())?;
            if let Some(f) = frames.first() {
                return match frames::parse_from_worker(&f.bytes)? {
                    FromWorker::Hello(Ok(())) => {
                        w.ready = true;
                        Ok(())
                    }
                    FromWorker::Hello(Err(e)) => Err(e),
                    FromWorker::Results { .. } | FromWorker::Stats(_) => {
                        Err("results before hello".into())
                    }
                };
            }
            if eof {
                return Err("the worker closed its socket before its hello".into());
            }
        } else if ready[1].readable {
            let status = w.process.exit_status();
            return Err(match status {
                Some(s) => format!("the worker ended ({s}) before its hello"),
                None => "the worker ended before its hello".into(),
            });
        }
    }
}

/// The dispatcher's own state: the event loop over workers and the backlog.
pub(crate) struct Dispatcher {
    shared: Arc<PoolState>,
    spec: WorkerSpec,
    workers: Vec<Option<Worker>>,
    next_seq: u64,
    /// Estimated nanoseconds per task (exponential average).
    est_ns: f64,
    /// Whether `est_ns` comes from a measurement yet (until then batches are one
    /// chunk, so that slow tasks are never queued behind each other on one worker).
    measured: bool,
    broken: Option<String>,
    respawn_at: Option<Instant>,
    /// Set while replacement workers cannot be started: the pause before the next
    /// try, doubled at each failure (`broken` then holds the latest failure).
    respawn_backoff: Option<Duration>,
    /// When a worker busy with a long task may have its queued tasks taken back
    /// (see `take_back`), if not sooner.
    recheck_at: Option<Instant>,
}

/// The shared words of a worker: the sequence number of the task it started last
/// (`RUNNING`), the position within a chunk, and the number below which it must
/// not start a task (`TAKEN_BACK`: tasks taken back from it, see `take_back`).
const WORDS: usize = 3;
const RUNNING: usize = 0;
const TAKEN_BACK: usize = 2;
/// A worker that shows no progress for this long (and four times what a task
/// should take) while another worker is idle gives back the tasks it has not
/// started. Long enough that a worker merely waiting for a CPU on a loaded
/// machine keeps its tasks (a take-back then would only move work around).
const TAKE_BACK_AFTER: Duration = Duration::from_millis(50);

const TARGET_BATCH_NS: f64 = 2_000_000.0;
const MAX_BATCH: usize = 4096;
/// A batch stops growing once its arguments reach this many bytes (it holds at
/// least one chunk of the backlog). A `map` chunk this large is a batch of its own,
/// as Python sends each chunk: the worker starts on it as soon as it is in, and the
/// other chunks stay in the backlog for whichever worker is free first, instead of
/// queueing behind it. (A batch of small tasks reaches `MAX_BATCH` first.)
const BATCH_BYTES: usize = 96 * 1024;

/// Every worker's share of the tasks not yet finished: those waiting (`pending`)
/// and those the `live` workers hold (`held`), at least one.
///
/// Counted over every worker, not only the idle ones: at the end of a call the
/// busy workers become idle a moment later, and a backlog dealt out whole to the
/// first idle worker would leave them nothing to do while that one works through
/// it (the call then waits for it alone).
fn share(pending: usize, held: usize, live: usize) -> usize {
    ((pending + held) / live.max(1)).max(1)
}

/// How many tasks to give a worker that holds `held`: what it lacks of its
/// `share`, at least one.
fn top_up(share: usize, held: usize) -> usize {
    share.saturating_sub(held).max(1)
}

/// Takes the next batch from the backlog: whole chunks until it holds `size`
/// tasks or [`BATCH_BYTES`] of arguments (at least one chunk, if any waits).
/// Cancelled tasks (a dropped iterator, a cancelled future) are dropped here, so
/// that they take no worker's turn.
fn take_batch(q: &mut Backlog, size: usize) -> Vec<Job> {
    let mut items = Vec::new();
    let mut bytes = 0;
    while items.len() < size && bytes < BATCH_BYTES {
        let Some(mut chunk) = q.pending.pop_front() else {
            break;
        };
        q.pending_items = q.pending_items.saturating_sub(chunk.len());
        chunk.retain(|it| !it.call.sink.is_cancelled(it.index));
        bytes += chunk.iter().map(|it| it.args.bytes.len()).sum::<usize>();
        items.extend(chunk);
    }
    items
}
const TICK: Duration = Duration::from_millis(5);

impl Dispatcher {
    pub(crate) fn new(
        shared: Arc<PoolState>,
        spec: WorkerSpec,
        workers: Vec<Worker>,
    ) -> Dispatcher {
        let m = Dispatcher {
            shared,
            spec,
            workers: workers.into_iter().map(Some).collect(),
            next_seq: 1,
            est_ns: 2_000_000.0,
            measured: false,
            broken: None,
            respawn_at: None,
            respawn_backoff: None,
            recheck_at: None,
        };
        m.publish_pids();
        m
    }

    fn publish_pids(&self) {
        let pids = self
            .workers
            .iter()
            .flatten()
            .filter(|w| !w.dead)
            .map(|w| w.pid())
            .collect();
        self.shared.lock().pids = pids;
    }

    pub(crate) fn run(mut self) {
        let mut frames = Vec::new();
        loop {
            let stop = self.dispatch();
            if let Some(Stop::Terminate(why)) = stop {
                self.terminate(why);
                break;
            }
            if stop == Some(Stop::Graceful) && self.all_idle() {
                for w in self.workers.iter_mut().flatten() {
                    if !w.stop_sent && !w.dead {
                        w.link.queue(frames::stop(), Vec::new());
                        w.stop_sent = true;
                    }
                }
                if self.workers.iter().flatten().all(|w| w.dead) {
                    break;
                }
            }
            for w in self.workers.iter_mut().flatten() {
                if w.link.wants_write() && !w.dead {
                    let _ = w.link.flush();
                }
            }
            // Sleep until something happens.
            let timed = self
                .workers
                .iter()
                .flatten()
                .any(|w| w.timed > 0 || w.timed_out.is_some());
            let mut timeout = if timed || self.respawn_at.is_some() {
                Some(TICK)
            } else {
                None
            };
            if let Some(at) = self.recheck_at {
                let left = at.saturating_duration_since(Instant::now());
                timeout = Some(timeout.map_or(left, |t| t.min(left)));
            }
            let mut fds: Vec<(BorrowedFd<'_>, bool)> = vec![(self.shared.wake_r.as_fd(), false)];
            let mut map: Vec<(usize, u8)> = Vec::new();
            for (i, w) in self.workers.iter().enumerate() {
                let Some(w) = w else { continue };
                if w.dead {
                    continue;
                }
                fds.push((w.link.fd(), false));
                map.push((i, 0));
                fds.push((w.process.sentinel(), false));
                map.push((i, 1));
                if w.link.wants_write() {
                    fds.push((w.link.fd(), true));
                    map.push((i, 2));
                }
            }
            let ready = socket::poll(&fds, timeout).unwrap_or_default();
            {
                let mut q = self.shared.lock();
                q.asleep = false;
            }
            if ready.first().is_some_and(|r| r.readable) {
                let mut buf = [0u8; 64];
                while matches!(socket::read(self.shared.wake_r.as_fd(), &mut buf), Ok(n) if n > 0) {
                }
            }
            let mut died = Vec::new();
            for (k, r) in ready.iter().skip(1).enumerate() {
                let (i, what) = map[k];
                match what {
                    0 if r.readable && !self.read_worker(i, &mut frames) => died.push(i),
                    1 if r.readable => died.push(i),
                    2 if r.writable => {
                        if let Some(w) = self.workers[i].as_mut() {
                            let _ = w.link.flush();
                        }
                    }
                    _ => {}
                }
            }
            self.check_timeouts();
            died.sort_unstable();
            died.dedup();
            for i in died {
                self.worker_died(i);
            }
            self.respawn();
            self.notify_idle();
        }
        let mut q = self.shared.lock();
        q.finished = true;
        q.pids.clear();
        drop(q);
        self.shared.cond.notify_all();
    }

    fn all_idle(&self) -> bool {
        let q = self.shared.lock();
        q.pending.is_empty() && self.workers.iter().flatten().all(|w| w.held.is_empty())
    }

    fn notify_idle(&self) {
        let in_flight: usize = self.workers.iter().flatten().map(|w| w.held.len()).sum();
        let mut q = self.shared.lock();
        q.in_flight = in_flight;
        if q.pending.is_empty() && in_flight == 0 {
            drop(q);
            self.shared.cond.notify_all();
        }
    }

    /// Sends work to workers with room. Returns the stop request, if any.
    /// Takes back the tasks a busy worker has not started, when another worker is
    /// idle and nothing else waits: a task queued behind a long one must not wait
    /// for it while a worker stands idle (head-of-line blocking).
    ///
    /// The worker publishes the task it starts in its `RUNNING` word and then reads
    /// `TAKEN_BACK`; here `TAKEN_BACK` is raised to the next sequence number and then
    /// `RUNNING` is read, both sequentially consistent (Dekker's pattern). So the
    /// worker sees the raised word and skips the task, or this side sees the task
    /// start, or both. Tasks up to the one `RUNNING` names are kept (started, their
    /// results may still be on their way); the rest go back to the front of the
    /// backlog. In the "both" case the worker reports the task `Skipped` and it
    /// goes back to the backlog then: never run twice, never lost.
    fn take_back(&mut self) {
        self.recheck_at = None;
        let now = Instant::now();
        let window = self.window();
        let someone_idle = self.workers.iter().flatten().any(|w| w.is_idle(window));
        if !someone_idle || !self.shared.lock().pending.is_empty() {
            return;
        }
        let est = Duration::from_nanos(self.est_ns.max(0.0) as u64);
        let next_seq = self.next_seq;
        let mut back: Vec<Job> = Vec::new();
        for w in self.workers.iter_mut().flatten() {
            if w.dead
                || w.held.len() < 2 && w.held.front().is_none_or(|h| h.seq <= w.last_started())
            {
                continue;
            }
            let running = w.last_started();
            if running != w.running_seen {
                // It moved on to another task since the last look: progress.
                w.running_seen = running;
                w.progress_at = now;
            }
            let limit = TAKE_BACK_AFTER.max(est.saturating_mul(4));
            let age = now.duration_since(w.progress_at);
            if age < limit {
                let at = w.progress_at + limit;
                self.recheck_at = Some(self.recheck_at.map_or(at, |r| r.min(at)));
                continue;
            }
            w.words.word(TAKEN_BACK).store(next_seq, Ordering::SeqCst);
            let started = w.words.word(RUNNING).load(Ordering::SeqCst);
            let keep = w.held.iter().take_while(|h| h.seq <= started).count();
            if keep == w.held.len() {
                continue;
            }
            let taken = (w.held.len() - keep) as u64;
            // The worker counts the tasks it runs toward `max_tasks_per_child`.
            if let Some(a) = w.allowance.as_mut() {
                *a += taken;
            }
            for h in w.held.drain(keep..) {
                if h.item.call.timeout.is_some() {
                    w.timed = w.timed.saturating_sub(1);
                }
                let mut item = h.item;
                // It never ran: not an attempt.
                item.attempts = item.attempts.saturating_sub(1);
                back.push(item);
            }
            // The last task kept now ends its batch; batches wholly taken back end.
            if let Some(last) = w.held.back_mut() {
                last.batch_end = true;
            }
            w.batches = w.held.iter().filter(|h| h.batch_end).count();
        }
        if !back.is_empty() {
            let mut q = self.shared.lock();
            q.pending_items += back.len();
            q.pending.push_front(back);
        }
    }

    /// How many batches a worker may hold: two (one running, one waiting, so a
    /// worker never waits for the round trip) unless tasks take over a millisecond.
    fn window(&self) -> usize {
        if self.est_ns > 1_000_000.0 { 1 } else { 2 }
    }

    fn dispatch(&mut self) -> Option<Stop> {
        self.take_back();
        let window = self.window();
        let ready = |w: &&Worker| w.ready && !w.dead && !w.stop_sent;
        // While a worker stands idle, work goes to the idle workers only: a task
        // queued behind a busy worker's long task would wait for it.
        let idle = (self.workers.iter().flatten())
            .filter(|w| w.is_idle(window))
            .count();
        let live = self.workers.iter().flatten().filter(ready).count();
        let held: usize = (self.workers.iter().flatten())
            .filter(ready)
            .map(|w| w.held.len())
            .sum();
        let target = ((TARGET_BATCH_NS / self.est_ns.max(1.0)) as usize).clamp(1, MAX_BATCH);
        let mut batches: Vec<(usize, Vec<Job>)> = Vec::new();
        let stop;
        {
            let mut q = self.shared.lock();
            let share = share(q.pending_items, held, live);
            // From here on, a push must wake us (we poll right after this).
            q.asleep = true;
            stop = q.stop;
            if matches!(stop, Some(Stop::Terminate(_))) {
                return stop;
            }
            if let Some(reason) = &self.broken {
                let reason = reason.clone();
                let chunks: Vec<Chunk> = q.pending.drain(..).collect();
                q.pending_items = 0;
                drop(q);
                for item in chunks.into_iter().flatten() {
                    let e = TaskError::failed(reason.clone(), Some(item.index));
                    item.call.sink.deliver(item.index, Err(e));
                }
                return stop;
            }
            // The least busy worker first: an idle worker must not watch work queue
            // up behind a busy one.
            let mut order: Vec<(usize, usize)> = (self.workers.iter().enumerate())
                .filter_map(|(i, w)| w.as_ref().map(|w| (w.held.len(), i)))
                .collect();
            order.sort_unstable();
            for (_, i) in order {
                let Some(w) = &self.workers[i] else { continue };
                if !w.ready || w.dead || w.stop_sent || w.batches >= window {
                    continue;
                }
                if idle > 0 && !w.held.is_empty() {
                    continue;
                }
                if w.allowance == Some(0) {
                    continue;
                }
                let mut size = target.min(top_up(share, w.held.len()));
                if let Some(a) = w.allowance {
                    size = size.min(a as usize);
                }
                let items = take_batch(&mut q, size);
                if items.is_empty() {
                    break;
                }
                q.in_flight += items.len();
                batches.push((i, items));
            }
        }
        for (i, items) in batches {
            self.send_batch(i, items);
        }
        stop
    }

    fn send_batch(&mut self, i: usize, items: Vec<Job>) {
        let mut calls: Vec<Arc<CallInfo>> = Vec::new();
        let mut held = Vec::with_capacity(items.len());
        for item in items {
            if item.call.sink.is_cancelled(item.index) {
                continue;
            }
            held.push(item);
        }
        if held.is_empty() {
            return;
        }
        let mut entry_of = Vec::with_capacity(held.len());
        for item in &held {
            let pos = match calls.iter().position(|c| Arc::ptr_eq(c, &item.call)) {
                Some(p) => p,
                None => {
                    calls.push(Arc::clone(&item.call));
                    calls.len() - 1
                }
            };
            entry_of.push(pos as u32);
        }
        let entries: Vec<EntryPoint> = calls.iter().map(|c| c.entry).collect();
        let room = held.iter().map(|it| it.args.bytes.len() + 20).sum();
        let mut writer = BatchWriter::new(&entries, room);
        let mut fds = Vec::new();
        let w = self.workers[i]
            .as_mut()
            .expect("dispatching to a live worker");
        if w.held.is_empty() {
            w.progress_at = Instant::now();
        }
        let n = held.len();
        for (k, mut item) in held.into_iter().enumerate() {
            let seq = self.next_seq;
            self.next_seq += 1;
            writer.task(
                seq,
                item.index as u64,
                entry_of[k],
                &item.args.bytes,
                item.args.fds.len() as u32,
            );
            // Descriptors travel; keep our copies only for a retry.
            for fd in &item.args.fds {
                if let Ok(d) = socket::dup(fd.as_fd()) {
                    fds.push(d);
                }
            }
            item.attempts += 1;
            item.call.sink.started(item.index);
            if item.call.timeout.is_some() {
                w.timed += 1;
            }
            w.held.push_back(Held {
                seq,
                item,
                batch_end: k + 1 == n,
            });
        }
        if let Some(a) = w.allowance.as_mut() {
            *a = a.saturating_sub(n as u64);
        }
        w.batches += 1;
        w.link.queue(writer.finish(), fds);
        let _ = w.link.flush();
    }

    /// Reads what worker `i` sent. `false` when its socket ended.
    fn read_worker(&mut self, i: usize, frames: &mut Vec<Message>) -> bool {
        let Some(w) = self.workers[i].as_mut() else {
            return true;
        };
        frames.clear();
        let eof = w.link.read(frames).unwrap_or(true);
        // What the worker logged comes out before the results of the tasks that logged it.
        w.process.drain_logs();
        for f in frames.drain(..) {
            let mut fds = f.fds.into_iter();
            match frames::parse_from_worker(&f.bytes) {
                Ok(FromWorker::Hello(Ok(()))) => w.ready = true,
                Ok(FromWorker::Hello(Err(e))) => {
                    self.broken = Some(format!(
                        "the initializer failed in replacement worker {} (pid {}): {e}",
                        w.id,
                        w.pid()
                    ));
                }
                Ok(FromWorker::Results { busy_ns, items }) => {
                    w.progress_at = Instant::now();
                    let ran = (items.iter())
                        .filter(|(_, o)| !matches!(o, Outcome::Skipped))
                        .count();
                    if ran > 0 {
                        let per = (busy_ns as f64 / ran as f64).max(50.0);
                        // Averaged while the work stays alike; taken as it is when it
                        // is off by more than 4x (another call, other tasks: after a
                        // CPU-heavy call, a call of tiny tasks must not be dealt out one
                        // chunk per round trip until an average catches up).
                        let ratio = per / self.est_ns.max(1.0);
                        if self.measured && (0.25..=4.0).contains(&ratio) {
                            self.est_ns = 0.7 * self.est_ns + 0.3 * per;
                        } else {
                            self.est_ns = per;
                            self.measured = true;
                        }
                    }
                    let mut pending: Option<(Arc<CallInfo>, Outcomes)> = None;
                    let mut skipped: Vec<Job> = Vec::new();
                    for (seq, outcome) in items {
                        // Results come back in the order the tasks were sent.
                        let Some(pos) = w.held.iter().position(|h| h.seq == seq) else {
                            continue;
                        };
                        let h = w.held.remove(pos).expect("position is in range");
                        if h.item.call.timeout.is_some() {
                            w.timed = w.timed.saturating_sub(1);
                        }
                        if h.batch_end {
                            w.batches = w.batches.saturating_sub(1);
                        }
                        if let Outcome::Skipped = outcome {
                            // Taken back while the dispatcher saw it start: it never
                            // ran, and runs elsewhere.
                            let mut item = h.item;
                            item.attempts = item.attempts.saturating_sub(1);
                            skipped.push(item);
                            continue;
                        }
                        let who = Some((w.id, w.process.pid()));
                        let index = h.item.index;
                        let result = match outcome {
                            Outcome::Skipped => unreachable!("handled above"),
                            Outcome::Ok { bytes, nfds } => Ok(Message {
                                bytes,
                                fds: fds.by_ref().take(nfds as usize).collect(),
                            }),
                            Outcome::Panicked(p) => Err(TaskError::new(
                                Kind::Panicked {
                                    message: p.message,
                                    location: p.location,
                                    backtrace: p.backtrace,
                                },
                                Some(index),
                                who,
                            )
                            .with_stderr(w.process.stderr_tail())),
                            Outcome::Failed(reason) => {
                                Err(TaskError::new(Kind::Failed(reason), Some(index), who))
                            }
                        };
                        if h.item.chunk {
                            let who = (w.id, w.process.pid());
                            h.item
                                .call
                                .sink
                                .deliver_span(index, h.item.span, who, result);
                        } else {
                            // Consecutive results of one call are handed over together.
                            if let Some((call, _)) = &pending {
                                if !Arc::ptr_eq(call, &h.item.call) {
                                    if let Some((call, batch)) = pending.take() {
                                        call.sink.deliver_many(batch);
                                    }
                                }
                            }
                            match &mut pending {
                                Some((_, batch)) => batch.push((index, result)),
                                None => {
                                    pending =
                                        Some((Arc::clone(&h.item.call), vec![(index, result)]))
                                }
                            }
                        }
                    }
                    if let Some((call, batch)) = pending.take() {
                        call.sink.deliver_many(batch);
                    }
                    if !skipped.is_empty() {
                        let mut q = self.shared.lock();
                        q.pending_items += skipped.len();
                        q.pending.push_front(skipped);
                    }
                }
                Ok(FromWorker::Stats(stats)) => self.spec.options.recorder.report(w.id, stats),
                Err(_) => {
                    // A garbled frame: treat the worker as lost.
                    let _ = w.process.kill();
                }
            }
        }
        !eof
    }

    fn check_timeouts(&mut self) {
        let now = Instant::now();
        for w in self.workers.iter_mut().flatten() {
            if w.dead || w.timed_out.is_some() || w.timed == 0 {
                continue;
            }
            let word = w.words.word(RUNNING).load(Ordering::Acquire);
            if word != w.last_word {
                w.last_word = word;
                w.seen_at = now;
            }
            if word == 0 {
                continue;
            }
            let Some(h) = w.held.iter().find(|h| h.seq == word) else {
                continue;
            };
            if let Some(limit) = h.item.call.timeout {
                if now.duration_since(w.seen_at) >= limit {
                    w.timed_out = Some((word, limit));
                    let _ = w.process.kill();
                }
            }
        }
    }

    fn worker_died(&mut self, i: usize) {
        let mut frames = Vec::new();
        // Results it sent before dying count.
        let _ = self.read_worker(i, &mut frames);
        let Some(mut w) = self.workers[i].take() else {
            return;
        };
        if !w.process.is_alive() || w.process.exit_status().is_some() {
            // gone
        } else {
            // The socket ended but the process lives on: make sure it is gone.
            let _ = w.process.kill();
        }
        let mut status = None;
        for _ in 0..100 {
            status = w.process.exit_status();
            if status.is_some() {
                break;
            }
            let _ = crate::sys::process::pidfd_wait_exit(
                w.process.sentinel(),
                Some(Duration::from_millis(50)),
            );
        }
        let status = status.unwrap_or(ExitStatus::Code(-1));
        let running = w.words.word(RUNNING).load(Ordering::Acquire);
        // RUNNING keeps the last task's sequence number after its batch: the worker was
        // in a task only if that task is still held.
        let in_task = running != 0 && w.held.iter().any(|h| h.seq == running);
        let ending = Ending::of(status, w.timed_out.is_some(), w.stop_sent, in_task);
        self.spec.options.recorder.ended(w.id, ending);
        let worker = (w.id, w.pid());
        let who = Some(worker);
        let mut requeue: Vec<Job> = Vec::new();
        let position = w.words.word(1).load(Ordering::Acquire) as usize;
        for h in w.held.drain(..) {
            if h.seq == running {
                // In a chunk, the exact task that was running.
                let index = if h.item.chunk {
                    h.item.index + position.min(h.item.span - 1)
                } else {
                    h.item.index
                };
                if let Some((seq, limit)) = w.timed_out {
                    if seq == h.seq {
                        let e = TaskError::new(Kind::Timeout(limit), Some(index), who)
                            .with_stderr(w.process.stderr_tail());
                        h.item.call.sink.deliver(index, Err(e));
                        continue;
                    }
                }
                let kind = WorkerOptions::lost_kind(&mut w.process, status, h.item.attempts);
                if h.item.attempts <= h.item.call.retries && matches!(kind, Kind::WorkerLost { .. })
                {
                    requeue.push(h.item);
                } else {
                    let e =
                        TaskError::new(kind, Some(index), who).with_stderr(w.process.stderr_tail());
                    if h.item.chunk {
                        let who = worker;
                        let (first, span) = (h.item.index, h.item.span);
                        h.item.call.sink.deliver_span(first, span, who, Err(e));
                    } else {
                        h.item.call.sink.deliver(index, Err(e));
                    }
                }
            } else {
                let mut item = h.item;
                // It never ran (or its result was lost): not an attempt.
                item.attempts = item.attempts.saturating_sub(1);
                requeue.push(item);
            }
        }
        w.dead = true;
        {
            let mut q = self.shared.lock();
            if !requeue.is_empty() {
                q.pending_items += requeue.len();
                q.pending.push_front(requeue);
            }
        }
        let stopping = self.shared.lock().stop.is_some();
        if !stopping || !self.all_idle() {
            self.shared.lock().replaced += 1;
            self.workers[i] = None;
            self.respawn_at = Some(Instant::now());
        } else {
            self.workers[i] = Some(w);
        }
        self.publish_pids();
    }

    /// Starts replacements for the workers that are gone.
    ///
    /// A start that fails (a resource ran out) is retried, with a pause doubling from
    /// 100 ms to 5 s, and at once when work arrives; while no worker is left, tasks
    /// fail with the latest failure, not the first one. Only an initializer that
    /// fails stops replacement for good.
    fn respawn(&mut self) {
        const FIRST_PAUSE: Duration = Duration::from_millis(100);
        const LONGEST_PAUSE: Duration = Duration::from_secs(5);
        let Some(at) = self.respawn_at else { return };
        let retrying = self.respawn_backoff.is_some();
        if self.broken.is_some() && !retrying {
            self.respawn_at = None;
            return;
        }
        let work_waits = retrying && !self.shared.lock().pending.is_empty();
        if Instant::now() < at && !work_waits {
            return;
        }
        self.respawn_at = None;
        let mut failed = None;
        for i in 0..self.workers.len() {
            if self.workers[i].is_none() {
                match start_worker(&self.spec, i) {
                    Ok(w) => self.workers[i] = Some(w),
                    Err(e) => failed = Some(e.to_string()),
                }
            }
        }
        match failed {
            None => {
                if retrying {
                    self.broken = None;
                }
                self.respawn_backoff = None;
            }
            Some(e) => {
                let pause = self
                    .respawn_backoff
                    .map_or(FIRST_PAUSE, |p| (p * 2).min(LONGEST_PAUSE));
                self.respawn_backoff = Some(pause);
                self.respawn_at = Some(Instant::now() + pause);
                if self.workers.iter().all(|w| w.is_none()) {
                    self.broken = Some(format!(
                        "no worker is running: cannot start a replacement worker: {e}"
                    ));
                }
            }
        }
        self.publish_pids();
    }

    fn terminate(&mut self, why: &'static str) {
        for w in self.workers.iter().flatten() {
            let _ = w.process.kill();
        }
        for w in self.workers.iter_mut().flatten() {
            for _ in 0..100 {
                if w.process.exit_status().is_some() {
                    break;
                }
                let _ = crate::sys::process::pidfd_wait_exit(
                    w.process.sentinel(),
                    Some(Duration::from_millis(50)),
                );
            }
            for h in w.held.drain(..) {
                let index = h.item.index;
                h.item
                    .call
                    .sink
                    .deliver(index, Err(TaskError::cancelled(why, Some(index))));
            }
        }
        self.shared.cancel_pending(why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::sink::{MapSink, Mode};
    use crate::task::call::Sink;

    fn double(x: u64) -> u64 {
        x * 2
    }

    /// `n` one-job chunks of one call, each with `bytes` bytes of arguments; and
    /// the call's sink.
    fn backlog_of(n: usize, bytes: usize) -> (Arc<PoolState>, Arc<MapSink>) {
        let sink = MapSink::new(Mode::All, None, None);
        let call = Arc::new(CallInfo {
            entry: EntryPoint::for_fn(double),
            sink: Arc::clone(&sink) as Arc<dyn Sink>,
            timeout: None,
            retries: 0,
        });
        let chunks = (0..n)
            .map(|index| {
                vec![Job {
                    call: Arc::clone(&call),
                    index,
                    args: Message {
                        bytes: vec![0; bytes],
                        fds: Vec::new(),
                    },
                    attempts: 0,
                    span: 1,
                    chunk: true,
                }]
            })
            .collect();
        let state = PoolState::new().unwrap();
        state
            .push(chunks)
            .unwrap_or_else(|_| panic!("the pool is open"));
        (state, sink)
    }

    fn backlog(n: usize, bytes: usize) -> Arc<PoolState> {
        backlog_of(n, bytes).0
    }

    #[test]
    fn a_large_map_chunk_is_a_batch_of_its_own() {
        // 125,000 bytes: a chunk of 15,625 `u64`s (1,000,000 items over 16 workers).
        let state = backlog(4, 125_000);
        let mut q = state.lock();
        let batch = take_batch(&mut q, 4096);
        assert_eq!(
            batch.len(),
            1,
            "the other chunks stay for the other workers"
        );
        assert_eq!((q.pending.len(), q.pending_items), (3, 3));
    }

    #[test]
    fn small_tasks_fill_a_batch_up_to_its_size() {
        let state = backlog(5000, 21);
        let mut q = state.lock();
        assert_eq!(take_batch(&mut q, 4096).len(), 4096);
        assert_eq!(take_batch(&mut q, 4096).len(), 5000 - 4096);
        assert!(take_batch(&mut q, 4096).is_empty());
        assert_eq!(q.pending_items, 0);
    }

    #[test]
    fn cancelled_tasks_take_no_turn() {
        let (state, sink) = backlog_of(3, 8);
        sink.cancel();
        let mut q = state.lock();
        assert!(take_batch(&mut q, 10).is_empty());
        assert_eq!((q.pending.len(), q.pending_items), (0, 0));
    }

    #[test]
    fn the_last_tasks_are_shared_among_all_workers_not_given_to_the_first_idle_one() {
        // End of a call on 16 workers: 14 tasks wait, 15 busy workers hold 2 each
        // and one is idle. It takes its share, not the whole backlog (which the 15
        // would then watch it work through, idle).
        let live = 16;
        let s = share(14, 30, live);
        assert_eq!(top_up(s, 0), 2);
        // A busy worker holding its share still gets one task (the backlog must
        // drain even when every worker holds more than an even split).
        assert_eq!(top_up(s, 2), 1);
        assert_eq!(top_up(s, 5), 1);
        // The start of a call: the backlog is dealt out evenly.
        assert_eq!(top_up(share(64, 0, 16), 0), 4);
        assert_eq!(top_up(share(4096, 0, 16), 0), 256);
        // One task and nobody holding anything: the first worker takes it.
        assert_eq!(top_up(share(1, 0, 16), 0), 1);
        // No live worker (all being replaced): no division by zero.
        assert_eq!(share(10, 0, 0), 10);
    }
}

//! What a pool's workers did and what it cost (mpire's insights): per worker slot
//! and overall, tasks run, time in tasks, waiting for work and serialising,
//! start-up time, recycles, crashes, timeouts and peak memory.
//!
//! Workers measure their own times (a few clock reads per batch of tasks, not per
//! task) and send them beside their results, before the results they cover: once
//! a call has returned, its tasks are counted. The parent counts starts, deaths
//! and their causes.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::pool::Pool;
use crate::process::ExitStatus;

/// What one worker slot did, over every worker that held it (a slot's worker is
/// replaced when it dies, times out or is recycled), or the sum over all slots
/// ([`Insights::total`]).
///
/// Times are measured by the workers: `task_time` is spent inside tasks
/// (including decoding each task's argument and encoding its result in the
/// worker), `wait_time` waiting for the next batch of tasks, `serialize_time`
/// decoding batches and sending results outside the tasks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerInsights {
    /// The slot (`None` in a total).
    pub worker: Option<usize>,
    /// The pid of the slot's current (or last) worker.
    pub pid: Option<u32>,
    /// Workers started in this slot (1 plus its replacements).
    pub starts: u64,
    /// Tasks run to their end, returned or panicked (a `map` chunk counts its items).
    pub tasks: u64,
    /// Time inside tasks.
    pub task_time: Duration,
    /// Time waiting for work.
    pub wait_time: Duration,
    /// Time decoding batches and sending results.
    pub serialize_time: Duration,
    /// Time from asking for a worker to its being ready (summed over starts).
    pub startup_time: Duration,
    /// Workers retired on purpose (`max_tasks_per_child`, `max_memory_per_child`).
    pub recycles: u64,
    /// Workers that died (a signal, an exit, out of memory) other than at a
    /// timeout or a retirement.
    pub crashes: u64,
    /// Workers killed at a task's deadline.
    pub timeouts: u64,
    /// The largest peak resident size of the slot's workers (bytes).
    pub peak_rss: u64,
}

/// A pool's insights: one entry per worker slot, their total, and the time since
/// the pool was built. [`Display`](fmt::Display) prints a table.
///
/// # Examples
///
/// ```
/// use mproc::pool::Pool;
///
/// let pool = Pool::new(2)?;
/// pool.map(|x: u64| x * x, 0..1000)?;
/// let insights = pool.insights();
/// assert_eq!(insights.total.tasks, 1000);
/// assert_eq!(insights.workers.len(), 2);
/// assert!(insights.total.task_time <= insights.wall_time * 2);
/// println!("{insights}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Insights {
    /// Per worker slot, in slot order.
    pub workers: Vec<WorkerInsights>,
    /// The sum over the slots (the largest peak for `peak_rss`).
    pub total: WorkerInsights,
    /// Time since the pool was built.
    pub wall_time: Duration,
    /// Whether the workers measured their times (see
    /// [`Builder::insights`](crate::pool::Builder::insights)); starts, deaths and
    /// their causes are always counted.
    pub measured: bool,
}

/// What a worker sends about the batch it just ran (deltas since its last report).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct WorkerStats {
    pub(crate) tasks: u64,
    pub(crate) task_ns: u64,
    pub(crate) wait_ns: u64,
    pub(crate) serialize_ns: u64,
    /// Only in a worker's first report: from the parent's request to its hello.
    pub(crate) startup_ns: u64,
    pub(crate) peak_rss: u64,
    /// The worker exits after this batch (its task or memory limit).
    pub(crate) retiring: bool,
}

/// How a worker ended, for the counts.
pub(crate) enum Ending {
    /// Stopped by the pool (close, join, terminate).
    Stopped,
    /// Killed at a task's deadline.
    Timeout,
    /// Retired after its task limit or memory limit.
    Recycled,
    /// Anything else.
    Crashed,
}

impl Ending {
    /// Classifies a worker's end: killed at a deadline, stopped by the pool, or,
    /// for a worker that exited with code 0 between tasks, retired.
    pub(crate) fn of(status: ExitStatus, timed_out: bool, stopping: bool, running: bool) -> Ending {
        if timed_out {
            Ending::Timeout
        } else if stopping {
            Ending::Stopped
        } else if status == ExitStatus::Code(0) && !running {
            Ending::Recycled
        } else {
            Ending::Crashed
        }
    }
}

/// The parent's side: the counts, shared by the pool and its dispatcher.
#[derive(Debug)]
pub(crate) struct Recorder {
    pub(crate) measured: bool,
    created: Instant,
    slots: Mutex<Vec<WorkerInsights>>,
    /// Per slot: whether its worker said it is retiring.
    retiring: Mutex<Vec<bool>>,
}

impl Recorder {
    pub(crate) fn new(measured: bool) -> Arc<Recorder> {
        Arc::new(Recorder {
            measured,
            created: Instant::now(),
            slots: Mutex::new(Vec::new()),
            retiring: Mutex::new(Vec::new()),
        })
    }

    fn slot<T>(&self, id: usize, f: impl FnOnce(&mut WorkerInsights) -> T) -> T {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.len() <= id {
            slots.resize_with(id + 1, WorkerInsights::default);
        }
        let s = &mut slots[id];
        s.worker = Some(id);
        f(s)
    }

    /// Worker `pid` was started in slot `id`.
    pub(crate) fn started(&self, id: usize, pid: u32) {
        self.slot(id, |s| {
            s.starts += 1;
            s.pid = Some(pid);
        });
    }

    /// Worker slot `id` reported `stats`.
    fn set_retiring(&self, id: usize, on: bool) -> bool {
        let mut r = self.retiring.lock().unwrap_or_else(|e| e.into_inner());
        if r.len() <= id {
            r.resize(id + 1, false);
        }
        std::mem::replace(&mut r[id], on)
    }

    pub(crate) fn report(&self, id: usize, stats: WorkerStats) {
        if stats.retiring {
            self.set_retiring(id, true);
        }
        self.slot(id, |s| {
            s.tasks += stats.tasks;
            s.task_time += Duration::from_nanos(stats.task_ns);
            s.wait_time += Duration::from_nanos(stats.wait_ns);
            s.serialize_time += Duration::from_nanos(stats.serialize_ns);
            s.startup_time += Duration::from_nanos(stats.startup_ns);
            s.peak_rss = s.peak_rss.max(stats.peak_rss);
        });
    }

    /// The worker of slot `id` ended.
    /// A worker that said it was retiring counts as recycled however its exit
    /// was seen (the pool may kill a worker whose socket ended first).
    pub(crate) fn ended(&self, id: usize, how: Ending) {
        let said_retiring = self.set_retiring(id, false);
        let how = match how {
            Ending::Crashed if said_retiring => Ending::Recycled,
            other => other,
        };
        self.slot(id, |s| match how {
            Ending::Stopped => {}
            Ending::Timeout => s.timeouts += 1,
            Ending::Recycled => s.recycles += 1,
            Ending::Crashed => s.crashes += 1,
        });
    }

    pub(crate) fn snapshot(&self) -> Insights {
        let workers = self.slots.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut total = WorkerInsights::default();
        for w in &workers {
            total.starts += w.starts;
            total.tasks += w.tasks;
            total.task_time += w.task_time;
            total.wait_time += w.wait_time;
            total.serialize_time += w.serialize_time;
            total.startup_time += w.startup_time;
            total.recycles += w.recycles;
            total.crashes += w.crashes;
            total.timeouts += w.timeouts;
            total.peak_rss = total.peak_rss.max(w.peak_rss);
        }
        Insights {
            workers,
            total,
            wall_time: self.created.elapsed(),
            measured: self.measured,
        }
    }
}

impl Pool {
    /// What the workers did so far and what it cost: see [`Insights`].
    ///
    /// # Examples
    ///
    /// See [`Insights`].
    pub fn insights(&self) -> Insights {
        self.recorder.snapshot()
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

impl fmt::Display for Insights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "pool insights over {:.3} s{}",
            self.wall_time.as_secs_f64(),
            if self.measured {
                ""
            } else {
                " (worker times not measured)"
            }
        )?;
        writeln!(
            f,
            "{:>6} {:>8} {:>10} {:>11} {:>11} {:>11} {:>11} {:>6} {:>8} {:>7} {:>8} {:>9}",
            "worker",
            "pid",
            "tasks",
            "task ms",
            "wait ms",
            "serial ms",
            "startup ms",
            "starts",
            "recycles",
            "crashes",
            "timeouts",
            "peak MiB"
        )?;
        let row = |f: &mut fmt::Formatter<'_>, label: String, w: &WorkerInsights| {
            writeln!(
                f,
                "{:>6} {:>8} {:>10} {:>11} {:>11} {:>11} {:>11} {:>6} {:>8} {:>7} {:>8} {:>9}",
                label,
                w.pid.map_or("-".to_string(), |p| p.to_string()),
                w.tasks,
                ms(w.task_time),
                ms(w.wait_time),
                ms(w.serialize_time),
                ms(w.startup_time),
                w.starts,
                w.recycles,
                w.crashes,
                w.timeouts,
                mib(w.peak_rss)
            )
        };
        for w in &self.workers {
            row(f, w.worker.map_or("-".into(), |i| i.to_string()), w)?;
        }
        row(f, "total".into(), &self.total)?;
        if self.total.tasks > 0 {
            let per = self.total.task_time / self.total.tasks.min(u32::MAX as u64) as u32;
            writeln!(f, "mean time in a task: {per:?}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_per_slot_and_in_total() {
        let r = Recorder::new(true);
        r.started(0, 10);
        r.started(1, 11);
        let stats = WorkerStats {
            tasks: 5,
            task_ns: 1_000,
            wait_ns: 2_000,
            serialize_ns: 3,
            startup_ns: 7,
            peak_rss: 100,
            retiring: false,
        };
        r.report(0, stats);
        r.report(
            1,
            WorkerStats {
                peak_rss: 300,
                ..stats
            },
        );
        r.ended(1, Ending::of(ExitStatus::Signal(9), true, false, true));
        r.ended(0, Ending::of(ExitStatus::Code(0), false, false, false));
        r.ended(0, Ending::of(ExitStatus::Signal(6), false, false, true));
        r.ended(0, Ending::of(ExitStatus::Code(0), false, true, false));
        // Said it would retire, then was seen killed (its socket ended first).
        r.report(
            1,
            WorkerStats {
                retiring: true,
                ..WorkerStats::default()
            },
        );
        r.ended(1, Ending::of(ExitStatus::Signal(9), false, false, false));
        r.started(0, 12);
        let i = r.snapshot();
        assert_eq!(i.workers.len(), 2);
        assert_eq!(i.workers[0].pid, Some(12));
        assert_eq!(
            (
                i.workers[0].starts,
                i.workers[0].recycles,
                i.workers[0].crashes
            ),
            (2, 1, 1)
        );
        assert_eq!(i.workers[1].timeouts, 1);
        assert_eq!(i.workers[1].recycles, 1);
        assert_eq!(i.total.tasks, 10);
        assert_eq!(i.total.task_time, Duration::from_nanos(2_000));
        assert_eq!(i.total.peak_rss, 300);
        let table = i.to_string();
        assert!(table.contains("total"), "{table}");
        assert_eq!(table.lines().count(), 6, "{table}");
    }
}

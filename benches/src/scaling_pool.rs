//! Pool throughput as workers outnumber CPUs (issue 16).
//!
//! `map(square, ..)` of trivial tasks with 1, 2, 4, 8 and 16 workers on a 2-CPU machine,
//! one task per chunk ([`CHUNK1_TASKS`] tasks) and automatic chunking ([`AUTO_TASKS`]
//! tasks), tasks/s; and the CPU time idle workers burn. Contenders: mproc `Pool` (default
//! start method, a fresh pool per sample, warmed up outside the clock) and Python's
//! `multiprocessing.Pool` (`benches/py/py_scaling_pool.py`).
//!
//! The flatness rows divide a 8- or 16-worker figure by the 2-worker one. One
//! chunksize-1 map takes about 60 ms here, one automatic-chunking map 13-20 ms:
//! short enough that a burst of other work on the machine moves one sample by a
//! third; taken minutes apart, the three figures drifted apart with the machine's
//! load (and a loaded machine favours more workers: 16 runnable workers win a
//! larger part of the CPUs than 2). So, for both kinds of map, their samples are
//! taken together ([`Interleaved`]): [`PASSES`] passes over 2, 8 and 16 workers,
//! back to back, the order rotated at each pass, and each figure is the median of
//! its passes. The sample stays one map of [`AUTO_TASKS`] on a fresh pool, as a
//! user's first map on a new pool: the workers' first touch of their buffers is
//! part of it.

use std::time::{Duration, Instant};

use mproc::pool::Pool;

use crate::anchors::PyAnchor;
use crate::pool::square;
use crate::{Area, Compare, Config, Local, Result, Role};

/// Worker counts of the curve.
pub const WORKERS: [usize; 5] = [1, 2, 4, 8, 16];
/// Tasks of a chunksize-1 sample.
pub const CHUNK1_TASKS: u64 = 100_000;
/// Tasks of an automatic-chunking sample.
pub const AUTO_TASKS: u64 = 1_000_000;
/// Workers of the idle-CPU figure, and how long it watches them.
pub const IDLE_WORKERS: usize = 16;
/// See [`IDLE_WORKERS`].
pub const IDLE_WATCH: Duration = Duration::from_secs(2);

fn pool(workers: usize) -> Result<Pool> {
    let p = Pool::builder()
        .processes(workers)
        .handle_ctrl_c(false)
        .build()?;
    // Every worker started and warm before the clock.
    p.options()
        .chunksize(1)
        .map(square, 0..(workers as u64 * 50))?;
    Ok(p)
}

/// Worker counts whose samples are taken interleaved (see [`Interleaved`]).
pub const INTERLEAVED: [usize; 3] = [2, 8, 16];
/// Passes over [`INTERLEAVED`] per sample.
pub const PASSES: usize = 5;

/// The samples of [`INTERLEAVED`] for one kind of map, taken together: the first of
/// their figures asked for in a repeat runs [`PASSES`] passes over all three worker
/// counts (the order rotated at each pass, so that no count always runs first after
/// a pool start or last before the next figure) and keeps the medians; the others
/// take theirs.
pub struct Interleaved {
    tasks: u64,
    chunk1: bool,
    ready: std::collections::HashMap<usize, f64>,
}

impl Default for Interleaved {
    fn default() -> Self {
        Interleaved::with_tasks(CHUNK1_TASKS)
    }
}

impl Interleaved {
    /// Chunksize-1 samples of `tasks` tasks each ([`CHUNK1_TASKS`] by default).
    pub fn with_tasks(tasks: u64) -> Interleaved {
        Interleaved {
            tasks,
            chunk1: true,
            ready: Default::default(),
        }
    }

    /// Automatic-chunking samples of `tasks` tasks each ([`AUTO_TASKS`] in the area).
    pub fn auto(tasks: u64) -> Interleaved {
        Interleaved {
            chunk1: false,
            ..Interleaved::with_tasks(tasks)
        }
    }

    /// The rate of `workers` (one of [`INTERLEAVED`]), tasks/s.
    pub fn rate(&mut self, workers: usize) -> Result<f64> {
        if !INTERLEAVED.contains(&workers) {
            return Err(format!("{workers} workers are not among {INTERLEAVED:?}").into());
        }
        if let Some(v) = self.ready.remove(&workers) {
            return Ok(v);
        }
        let mut samples = vec![Vec::with_capacity(PASSES); INTERLEAVED.len()];
        for pass in 0..PASSES {
            for k in 0..INTERLEAVED.len() {
                let i = (pass + k) % INTERLEAVED.len();
                samples[i].push(timed_map(INTERLEAVED[i], self.tasks, self.chunk1)?);
            }
        }
        self.ready = INTERLEAVED
            .iter()
            .zip(&samples)
            .map(|(&w, s)| (w, crate::median(s)))
            .collect();
        Ok(self
            .ready
            .remove(&workers)
            .expect("every count of INTERLEAVED was just sampled"))
    }
}

fn timed_map(workers: usize, tasks: u64, chunk1: bool) -> Result<f64> {
    let p = pool(workers)?;
    let t0 = Instant::now();
    let v = if chunk1 {
        p.options().chunksize(1).map(square, 0..tasks)?
    } else {
        p.map(square, 0..tasks)?
    };
    let dt = t0.elapsed().as_secs_f64();
    let expected: u64 = (0..tasks).map(square).sum();
    if v.len() as u64 != tasks || v.iter().sum::<u64>() != expected {
        return Err("wrong results from map(square)".into());
    }
    Ok(tasks as f64 / dt)
}

/// CPU time a process has spent on a CPU, from `/proc/<pid>/schedstat` (ns).
pub fn cpu_ns(pid: u32) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/schedstat"))?;
    Ok(s.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or("unreadable schedstat")?)
}

/// CPU used by the idle workers of a fresh, warmed-up pool of [`IDLE_WORKERS`] over
/// [`IDLE_WATCH`], in percent of one CPU (all workers together).
pub fn idle_cpu_percent() -> Result<f64> {
    let p = pool(IDLE_WORKERS)?;
    let pids = p.worker_pids();
    let before = pids
        .iter()
        .map(|&w| cpu_ns(w))
        .collect::<Result<Vec<_>>>()?;
    let t0 = Instant::now();
    std::thread::sleep(IDLE_WATCH); // the workload: the pool doing nothing
    let after = pids
        .iter()
        .map(|&w| cpu_ns(w))
        .collect::<Result<Vec<_>>>()?;
    let wall = t0.elapsed().as_nanos() as f64;
    let used: u64 = after.iter().zip(&before).map(|(a, b)| a - b).sum();
    Ok(used as f64 / wall * 100.0)
}

/// The `scaling_pool` area.
pub fn area(_cfg: &Config) -> Result<Area> {
    let mut mproc = Local::new("mproc Pool", Role::Mproc);
    let mut comparisons = Vec::new();
    let interleaved = std::rc::Rc::new(std::cell::RefCell::new(Interleaved::default()));
    let auto = std::rc::Rc::new(std::cell::RefCell::new(Interleaved::auto(AUTO_TASKS)));
    for w in WORKERS {
        let together = interleaved.clone();
        let auto_together = auto.clone();
        mproc = mproc
            .measure(
                format!("mproc_pool{w}_map_chunksize1"),
                "tasks/s",
                move || {
                    if INTERLEAVED.contains(&w) {
                        together.borrow_mut().rate(w)
                    } else {
                        timed_map(w, CHUNK1_TASKS, true)
                    }
                },
            )
            .measure(format!("mproc_pool{w}_map_auto"), "tasks/s", move || {
                if INTERLEAVED.contains(&w) {
                    auto_together.borrow_mut().rate(w)
                } else {
                    timed_map(w, AUTO_TASKS, false)
                }
            });
    }
    mproc = mproc.measure(
        format!("mproc_pool{IDLE_WORKERS}_idle_cpu"),
        "%",
        idle_cpu_percent,
    );
    for mode in ["map_chunksize1", "map_auto"] {
        for w in WORKERS {
            let c = Compare::new(
                format!("mproc_pool{w}_{mode}"),
                format!("py_pool{w}_{mode}"),
            );
            comparisons.push(c);
            if w >= 8 {
                comparisons.push(
                    Compare::new(
                        format!("mproc_pool{w}_{mode}"),
                        format!("mproc_pool2_{mode}"),
                    )
                    .at_least(0.8, "issue 16: ≥ 0.8× 2 workers"),
                );
            }
        }
    }
    Ok(Area {
        name: "scaling_pool",
        title: "Scaling: pool map with 1 to 16 workers (issue 16)",
        description: format!(
            "`map(x * x)` with 1, 2, 4, 8, 16 workers on this machine's CPUs: chunksize 1 ({CHUNK1_TASKS} tasks) \
             and automatic chunking ({AUTO_TASKS} tasks), tasks/s. mproc: `Pool` (default start method), \
             a fresh pool per sample, every worker warmed up outside the clock. Python: `multiprocessing.Pool` \
             (`benches/py/py_scaling_pool.py`, 5,000 tasks at chunksize 1 and 100,000 with automatic chunking: fewer, as it is slower; the figure is a rate). `mproc_pool{IDLE_WORKERS}_idle_cpu`: \
             CPU used by the {IDLE_WORKERS} idle workers of a warm pool over {} s, percent of one CPU \
             (`/proc/<pid>/schedstat`; issue 16: under 1%). A row against `mproc_pool2_*` is the curve's \
             flatness; for each kind of map, the 2-, 8- and 16-worker samples are taken together, {PASSES} \
             passes back to back in rotated order, each sample the median of its passes (one map of a few ms \
             moves with the machine's load, and a loaded machine favours more workers).",
            IDLE_WATCH.as_secs()
        ),
        mproc_pending: None,
        contenders: vec![
            Box::new(mproc),
            Box::new(PyAnchor::new("py_scaling_pool.py")),
        ],
        comparisons,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaved_samples_serve_every_worker_count_once_per_run() {
        let mut together = Interleaved::with_tasks(500);
        // Asked in any order, each count is served from one run of the passes.
        for w in [8, 2, 16] {
            let rate = together.rate(w).unwrap();
            assert!(rate.is_finite() && rate > 0.0, "{w} workers: {rate}");
        }
        assert!(together.ready.is_empty(), "left over: {:?}", together.ready);
        // The next ask starts a new run.
        assert!(together.rate(2).unwrap() > 0.0);
        assert_eq!(together.ready.len(), 2);
        assert!(together.rate(3).is_err(), "3 workers are not interleaved");
    }

    #[test]
    fn automatic_chunking_samples_are_interleaved_too() {
        let mut auto = Interleaved::auto(20_000);
        assert!(!auto.chunk1);
        for w in INTERLEAVED {
            let rate = auto.rate(w).unwrap();
            assert!(rate.is_finite() && rate > 0.0, "{w} workers: {rate}");
        }
        assert!(auto.ready.is_empty(), "left over: {:?}", auto.ready);
    }
}

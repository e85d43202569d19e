//! Pool throughput, CPU speedup and idle worker memory (issue 5).
//!
//! Workloads, the same for every contender:
//! - 100,000 trivial tasks (`x * x`) on 2 workers, with automatic chunking and with one task
//!   per chunk (tasks/s);
//! - a CPU-bound job of [`CPU_TASKS`] tasks: speedup of 2 workers over serial in the same
//!   sample (×), each timed section preceded by untimed warm-up work as `py_cpu_speedup.py`
//!   does (idle vCPUs run slow for the first ~100 ms here);
//! - resident size of an idle worker (MB, 1 MB = 1e6 bytes).
//!
//! Contenders: mproc `Pool` ([`MprocPool`], default start method), Python's `Pool.map` and
//! `ProcessPoolExecutor` (`py_pool.py`, `py_executor.py`, `py_cpu_speedup.py`,
//! `benches/py/py_pool_rss.py`), rayon on 2 threads (the in-process ceiling) and the
//! two-process C scaling floor (`c/os_cpu_scaling.c`).

use std::time::Instant;

use rayon::prelude::*;

use crate::anchors::{CAnchor, PyAnchor};
use crate::{Area, Compare, Config, Local, Result, Role};

/// Trivial tasks per throughput sample.
pub const TASKS: u64 = 100_000;
/// Tasks of the CPU-bound job.
pub const CPU_TASKS: usize = 64;
/// Iterations of one CPU-bound task (about 5 ms here).
pub const CPU_UNIT: u64 = 4_000_000;
/// Workers (the machine has 2 cores).
pub const WORKERS: usize = 2;

/// The trivial task.
pub fn square(x: u64) -> u64 {
    x * x
}

/// The CPU-bound task: a dependent xorshift/multiply chain (ALU-bound, no memory), like
/// `c/os_cpu_scaling.c`'s work unit, [`CPU_UNIT`] iterations.
pub fn cpu_task(seed: u64) -> u64 {
    let (mut x, mut acc) = (seed | 1, 0u64);
    for _ in 0..CPU_UNIT {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        acc = acc.wrapping_add(x.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    }
    acc
}

/// A pool of [`WORKERS`] under the pool workloads.
pub trait PoolWorkload {
    /// `map(square, 0..TASKS)` with automatic chunking; seconds.
    fn map_auto(&mut self) -> Result<f64>;
    /// `map(square, 0..TASKS)` with one task per chunk; seconds.
    fn map_chunk1(&mut self) -> Result<f64>;
    /// `map(cpu_task, 0..CPU_TASKS)`; seconds.
    fn map_cpu(&mut self) -> Result<f64>;
}

fn check_squares(v: &[u64]) -> Result<()> {
    let expected: u64 = (0..TASKS).map(square).sum();
    if v.len() as u64 != TASKS || v.iter().sum::<u64>() != expected {
        return Err("wrong results from map(square)".into());
    }
    Ok(())
}

/// rayon with a [`WORKERS`]-thread pool.
pub struct Rayon(pub rayon::ThreadPool);

impl Rayon {
    /// A 2-thread rayon pool.
    pub fn new() -> Result<Rayon> {
        Ok(Rayon(
            rayon::ThreadPoolBuilder::new()
                .num_threads(WORKERS)
                .build()?,
        ))
    }
}

impl PoolWorkload for Rayon {
    fn map_auto(&mut self) -> Result<f64> {
        let t0 = Instant::now();
        let v: Vec<u64> = self.0.install(|| {
            (0..TASKS as u32)
                .into_par_iter()
                .map(|x| square(x.into()))
                .collect()
        });
        let dt = t0.elapsed().as_secs_f64();
        check_squares(&v)?;
        Ok(dt)
    }

    fn map_chunk1(&mut self) -> Result<f64> {
        let t0 = Instant::now();
        let v: Vec<u64> = self.0.install(|| {
            (0..TASKS as u32)
                .into_par_iter()
                .with_max_len(1)
                .map(|x| square(x.into()))
                .collect()
        });
        let dt = t0.elapsed().as_secs_f64();
        check_squares(&v)?;
        Ok(dt)
    }

    fn map_cpu(&mut self) -> Result<f64> {
        let t0 = Instant::now();
        let v: Vec<u64> = self.0.install(|| {
            (0..CPU_TASKS as u32)
                .into_par_iter()
                .with_max_len(1)
                .map(|i| cpu_task(i.into()))
                .collect()
        });
        let dt = t0.elapsed().as_secs_f64();
        std::hint::black_box(v);
        Ok(dt)
    }
}

/// mproc's `Pool` with [`WORKERS`] workers (default start method, the forkserver).
pub struct MprocPool(pub mproc::pool::Pool);

impl MprocPool {
    /// A pool of [`WORKERS`] workers that leaves Ctrl-C alone.
    pub fn new() -> Result<MprocPool> {
        Ok(MprocPool(
            mproc::pool::Pool::builder()
                .processes(WORKERS)
                .handle_ctrl_c(false)
                .build()?,
        ))
    }
}

impl PoolWorkload for MprocPool {
    fn map_auto(&mut self) -> Result<f64> {
        let t0 = Instant::now();
        let v = self.0.map(square, 0..TASKS)?;
        let dt = t0.elapsed().as_secs_f64();
        check_squares(&v)?;
        Ok(dt)
    }

    fn map_chunk1(&mut self) -> Result<f64> {
        let t0 = Instant::now();
        let v = self.0.options().chunksize(1).map(square, 0..TASKS)?;
        let dt = t0.elapsed().as_secs_f64();
        check_squares(&v)?;
        Ok(dt)
    }

    fn map_cpu(&mut self) -> Result<f64> {
        let t0 = Instant::now();
        let v = self
            .0
            .options()
            .chunksize(1)
            .map(cpu_task, 0..CPU_TASKS as u64)?;
        let dt = t0.elapsed().as_secs_f64();
        std::hint::black_box(v);
        Ok(dt)
    }
}

/// Resident size (MB) of an idle worker of a fresh mproc pool.
pub fn mproc_worker_rss() -> Result<f64> {
    let pool = MprocPool::new()?;
    std::thread::sleep(std::time::Duration::from_millis(200));
    let pid = *pool
        .0
        .worker_pids()
        .first()
        .ok_or("the pool has no worker")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or("no VmRSS line")?;
    Ok(kb * 1024.0 / 1e6)
}

/// Serial run of the CPU-bound job in this thread; seconds.
pub fn serial_cpu() -> f64 {
    let t0 = Instant::now();
    for i in 0..CPU_TASKS as u64 {
        std::hint::black_box(cpu_task(std::hint::black_box(i)));
    }
    t0.elapsed().as_secs_f64()
}

/// Untimed work of about `tasks` CPU tasks' length, to wake the vCPUs before a timed section.
pub fn warm_cpu(tasks: u64) {
    for i in 0..tasks {
        std::hint::black_box(cpu_task(std::hint::black_box(i)));
    }
}

/// Speedup of `w` over serial, the two timed back to back in one sample.
pub fn cpu_speedup(w: &mut impl PoolWorkload) -> Result<f64> {
    warm_cpu(12);
    let serial = serial_cpu();
    w.map_cpu()?; // warm-up of the workers, untimed
    let pooled = w.map_cpu()?;
    Ok(serial / pooled)
}

/// Back-to-back `map` calls per automatic-chunking sample (each takes only a few
/// milliseconds; `py_pool.py` times its calls back to back too).
pub const AUTO_CALLS: usize = 3;

/// The standard figures of a [`PoolWorkload`]: `<prefix>_map_auto`, `<prefix>_map_chunksize1`
/// (tasks/s) and `<prefix>_cpu_speedup` (×).
pub fn pool_contender<W: PoolWorkload + 'static>(
    label: &str,
    role: Role,
    prefix: &str,
    w: W,
) -> Local {
    let w = std::rc::Rc::new(std::cell::RefCell::new(w));
    let (w0, w1, w2, w3) = (w.clone(), w.clone(), w.clone(), w);
    Local::new(label, role)
        .warmup(move || w0.borrow_mut().map_chunk1().map(drop))
        .measure(format!("{prefix}_map_auto"), "tasks/s", move || {
            // A call takes a few milliseconds: as `py_pool.py` does, time calls back
            // to back on the warm pool (here the median of AUTO_CALLS), not one call
            // right after the CPU-bound job of the previous sample.
            let mut w = w1.borrow_mut();
            let mut times = (0..AUTO_CALLS)
                .map(|_| w.map_auto())
                .collect::<Result<Vec<f64>>>()?;
            times.sort_by(f64::total_cmp);
            Ok(TASKS as f64 / times[AUTO_CALLS / 2])
        })
        .measure(format!("{prefix}_map_chunksize1"), "tasks/s", move || {
            Ok(TASKS as f64 / w2.borrow_mut().map_chunk1()?)
        })
        .measure(format!("{prefix}_cpu_speedup"), "x", move || {
            cpu_speedup(&mut *w3.borrow_mut())
        })
}

/// The `pool` area.
pub fn area(_cfg: &Config) -> Result<Area> {
    Ok(Area {
        name: "pool",
        title: "Pool throughput, CPU speedup, idle worker memory (issue 5)",
        description: format!(
            "{TASKS} trivial tasks (`x * x`) on {WORKERS} workers, automatic chunking and chunksize 1 \
             (tasks/s; an automatic-chunking sample is the median of {AUTO_CALLS} calls back to back, as \
             Python's are). CPU-bound job of {CPU_TASKS} tasks: speedup of {WORKERS} workers over serial, timed \
             back to back in each sample (×); the ceiling is two plain C processes (`c/os_cpu_scaling.c`). \
             Idle worker resident size (MB). Python: `py_pool.py`, `py_executor.py`, `py_cpu_speedup.py`, \
             `benches/py/py_pool_rss.py`. In-process ceiling: rayon on {WORKERS} threads."
        ),
        mproc_pending: None,
        contenders: vec![
            Box::new(
                pool_contender("mproc Pool", Role::Mproc, "mproc_pool2", MprocPool::new()?)
                    .measure("mproc_pool_worker_rss", "MB", mproc_worker_rss),
            ),
            Box::new(pool_contender(
                "rayon (2 threads)",
                Role::InProcess,
                "rayon",
                Rayon::new()?,
            )),
            Box::new(PyAnchor::new("py_pool.py")),
            Box::new(PyAnchor::new("py_executor.py")),
            Box::new(PyAnchor::new("py_cpu_speedup.py")),
            Box::new(PyAnchor::new("py_pool_rss.py")),
            Box::new(CAnchor::new("os_cpu_scaling")),
        ],
        comparisons: vec![
            Compare::new("mproc_pool2_map_auto", "py_pool2_map_default_chunksize")
                .at_least(10.0, "issue 5: ≥ 10× Python's Pool.map"),
            Compare::new("mproc_pool2_map_auto", "rayon_map_auto"),
            Compare::new("mproc_pool2_map_chunksize1", "py_pool2_map_chunksize1")
                .at_least(20.0, "issue 5: ≥ 20× Python's Pool.map"),
            Compare::new("mproc_pool2_map_chunksize1", "py_ppe2_submit_result_20k")
                .at_least(50.0, "issue 5: ≥ 50× ProcessPoolExecutor.submit"),
            Compare::new("mproc_pool2_map_chunksize1", "rayon_map_chunksize1"),
            Compare::new("mproc_pool2_cpu_speedup", "os_cpu_speedup_2proc")
                .at_least(0.95, "issue 5: ≥ 0.95× two C processes"),
            Compare::new("mproc_pool2_cpu_speedup", "py_pool2_cpu_speedup"),
            Compare::new("mproc_pool2_cpu_speedup", "rayon_cpu_speedup"),
            Compare::new("mproc_pool_worker_rss", "py_pool_worker_rss_fork")
                .at_most(0.25, "issue 5: at most a quarter of Python's"),
            Compare::new("mproc_pool_worker_rss", "py_pool_worker_rss_spawn")
                .at_most(0.25, "issue 5: at most a quarter of Python's"),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rayon_maps_are_checked() {
        let mut r = Rayon::new().unwrap();
        assert!(r.map_auto().unwrap() > 0.0);
        assert!(r.map_chunk1().unwrap() > 0.0);
    }
}

//! Seeing inside children (issue 15): log forwarding and the cost of insights.
//!
//! Workloads:
//! - `map` of [`TASKS`] trivial tasks on [`WORKERS`] workers, each task logging one line
//!   at `info`, every record reaching the parent's logger (a counting logger here; a
//!   counting `logging.Handler` behind a `QueueListener` in Python's recipe,
//!   `py/py_log_forward.py`). A sample ends when the results and every record are in;
//!   tasks/s.
//! - `map` of [`TASKS`] trivial tasks with chunksize 1 on two pools that differ only in
//!   `Builder::insights` (on, the default, and off); tasks/s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::anchors::PyAnchor;
use crate::pool::{TASKS, WORKERS, square};
use crate::{Area, Compare, Config, Local, Result, Role};

/// Records the counting logger has seen.
static RECORDS: AtomicU64 = AtomicU64::new(0);

struct Counting;

impl log::Log for Counting {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        // Formats the message, as a handler that writes it would.
        let mut sink = String::new();
        let _ = std::fmt::write(&mut sink, *record.args());
        std::hint::black_box(sink);
        RECORDS.fetch_add(1, Ordering::Relaxed);
    }

    fn flush(&self) {}
}

/// A trivial task that logs one line.
pub fn logged_square(x: u64) -> u64 {
    log::info!("squaring {x}");
    x * x
}

fn install_logger() -> Result<()> {
    log::set_boxed_logger(Box::new(mproc::observe::ForwardingLogger::new(Counting)))
        .map_err(|e| format!("cannot install the counting logger: {e}"))?;
    log::set_max_level(log::LevelFilter::Info);
    Ok(())
}

fn pool(insights: bool) -> Result<mproc::pool::Pool> {
    Ok(mproc::pool::Pool::builder()
        .processes(WORKERS)
        .insights(insights)
        .handle_ctrl_c(false)
        .build()?)
}

/// One sample of the logging workload: seconds until the results and all records are in.
fn map_logged(p: &mproc::pool::Pool) -> Result<f64> {
    let before = RECORDS.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let v = p.map(logged_square, 0..TASKS)?;
    // The pool emits a worker's records before it hands over their tasks' results.
    let got = RECORDS.load(Ordering::Relaxed) - before;
    let dt = t0.elapsed().as_secs_f64();
    if v.len() as u64 != TASKS || got != TASKS {
        return Err(format!("{} results and {got} records for {TASKS} tasks", v.len()).into());
    }
    Ok(dt)
}

fn map_chunk1(p: &mproc::pool::Pool) -> Result<f64> {
    let t0 = Instant::now();
    let v = p.options().chunksize(1).map(square, 0..TASKS)?;
    let dt = t0.elapsed().as_secs_f64();
    if v.len() as u64 != TASKS {
        return Err("wrong number of results".into());
    }
    Ok(dt)
}

/// The `observe` area.
pub fn area(_cfg: &Config) -> Result<Area> {
    install_logger()?;
    let logging = pool(true)?;
    let (on, off) = (pool(true)?, pool(false)?);
    let warm = |p: &mproc::pool::Pool| -> Result<()> {
        p.map(logged_square, 0..1000)?;
        p.options().chunksize(1).map(square, 0..1000)?;
        // Let the warm-up's records drain before the first sample.
        std::thread::sleep(Duration::from_millis(50));
        Ok(())
    };
    warm(&logging)?;
    warm(&on)?;
    warm(&off)?;
    let off_rate = std::rc::Rc::new(std::cell::Cell::new(0.0));
    let off_rate2 = off_rate.clone();
    Ok(Area {
        name: "observe",
        title: "Seeing inside children: log forwarding, insights' cost (issue 15)",
        description: format!(
            "`map` of {TASKS} trivial tasks on {WORKERS} workers (default chunking), each logging one line at \
             `info`, forwarded to the parent's logger (a counting logger that formats the message); a sample \
             ends once every result and every record is in (tasks/s). Python: the `QueueHandler` / \
             `QueueListener` recipe with a counting handler (`py/py_log_forward.py`). Then `map` of {TASKS} \
             trivial tasks with chunksize 1 on two pools that differ only in `Builder::insights` (tasks/s), \
             run on, off, off, on in each sample (each figure is its two runs' rate; the off figure is \
             recorded by the on figure's sample)."
        ),
        mproc_pending: None,
        contenders: vec![
            Box::new(
                Local::new("mproc Pool (logs forwarded)", Role::Mproc).measure(
                    "mproc_pool2_map_logging",
                    "tasks/s",
                    move || Ok(TASKS as f64 / map_logged(&logging)?),
                ),
            ),
            Box::new(
                Local::new("mproc Pool (insights on / off)", Role::Mproc)
                    .measure("mproc_pool2_chunksize1_insights_on", "tasks/s", move || {
                        // On, off, off, on: each figure is the rate over its two runs,
                        // so that drift in the machine's speed hits both alike.
                        let a1 = map_chunk1(&on)?;
                        let b1 = map_chunk1(&off)?;
                        let b2 = map_chunk1(&off)?;
                        let a2 = map_chunk1(&on)?;
                        off_rate.set(2.0 * TASKS as f64 / (b1 + b2));
                        Ok(2.0 * TASKS as f64 / (a1 + a2))
                    })
                    .measure(
                        "mproc_pool2_chunksize1_insights_off",
                        "tasks/s",
                        move || Ok(off_rate2.get()),
                    ),
            ),
            Box::new(PyAnchor::new("py_log_forward.py")),
        ],
        comparisons: vec![
            Compare::new("mproc_pool2_map_logging", "py_pool2_map_logging")
                .at_least(20.0, "issue 15: ≥ 20× Python's QueueHandler recipe"),
            Compare::new(
                "mproc_pool2_chunksize1_insights_on",
                "mproc_pool2_chunksize1_insights_off",
            )
            .at_least(0.9, "issue 15: insights cost at most 10%"),
        ],
    })
}

//! Starting a thousand children at once (issue 16).
//!
//! Per start method: start [`BATCH`] children that run an empty task, all of them before
//! the first join, then join them all (µs per child), beside the sequential start+join
//! figure of the same method in the same run ([`SEQUENTIAL`] children one after the other).
//! Each batch sample checks that every child joined successfully and that no child of
//! this process is left behind (`/proc/self/task/*/children` as before the batch).

use mproc::process::{Process, StartMethod};

use crate::process::{MprocStart, StartJoin};
use crate::{Area, Compare, Config, Local, Result, Role, time_per_op};

/// Children of a batch sample.
pub const BATCH: usize = 1_000;
/// Children of a sequential sample.
pub const SEQUENTIAL: usize = 100;

const METHODS: [(StartMethod, &str); 3] = [
    (StartMethod::Fork, "fork"),
    (StartMethod::Forkserver, "forkserver"),
    (StartMethod::Spawn, "spawn"),
];

fn empty(_: ()) {}

/// The pids of this process's live or unreaped children (every thread's).
pub fn children() -> Result<Vec<u32>> {
    let mut pids = Vec::new();
    for t in std::fs::read_dir("/proc/self/task")? {
        let path = t?.path().join("children");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        pids.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    pids.sort_unstable();
    Ok(pids)
}

/// Starts [`BATCH`] children with `method`, then joins them all; µs per child.
fn batch(method: StartMethod) -> Result<f64> {
    let before = children()?;
    let t0 = std::time::Instant::now();
    let mut ps = Vec::with_capacity(BATCH);
    for i in 0..BATCH {
        ps.push(
            Process::builder()
                .start_method(method)
                .start(empty, ())
                .map_err(|e| format!("start of child {i} ({method:?}): {e}"))?,
        );
    }
    for (i, p) in ps.into_iter().enumerate() {
        p.join()
            .map_err(|e| format!("join of child {i} ({method:?}): {e}"))?;
    }
    let us = t0.elapsed().as_secs_f64() / BATCH as f64 * 1e6;
    let after = children()?;
    let left: Vec<_> = after.iter().filter(|p| !before.contains(p)).collect();
    if !left.is_empty() {
        return Err(format!(
            "{} children left after joining a batch ({method:?}): {left:?}",
            left.len()
        )
        .into());
    }
    Ok(us)
}

/// Lifts the soft limit on open files to the hard limit: a thousand children alive at
/// once hold a few descriptors each.
fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit; RLIMIT_NOFILE is a valid resource.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 && lim.rlim_cur < lim.rlim_max
    {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: `lim` is a valid rlimit no higher than the hard limit.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
}

/// The `scaling_start` area.
pub fn area(_cfg: &Config) -> Result<Area> {
    raise_nofile();
    let mut mproc = Local::new("mproc Process", Role::Mproc);
    let mut comparisons = Vec::new();
    for (method, name) in METHODS {
        let mut one = MprocStart(method);
        mproc = mproc
            .measure(
                format!("mproc_start_join_{name}"),
                "us/process",
                move || Ok(time_per_op(SEQUENTIAL, || one.start_join())?.as_secs_f64() * 1e6),
            )
            .measure(
                format!("mproc_batch{BATCH}_start_join_{name}"),
                "us/process",
                move || batch(method),
            );
        comparisons.push(
            Compare::new(
                format!("mproc_batch{BATCH}_start_join_{name}"),
                format!("mproc_start_join_{name}"),
            )
            .at_most(1.5, "issue 16: within 1.5× of the sequential figure"),
        );
    }
    Ok(Area {
        name: "scaling_start",
        title: "Scaling: 1,000 children started at once (issue 16)",
        description: format!(
            "Per start method: {BATCH} children running an empty task started one after the other \
             without waiting, then all joined (µs per child), against the sequential start+join of \
             {SEQUENTIAL} children in the same run. A batch sample fails unless every child joined \
             successfully and no child of the benchmark is left (`/proc/self/task/*/children`). The \
             benchmark lifts its soft `RLIMIT_NOFILE` to the hard limit first."
        ),
        mproc_pending: None,
        contenders: vec![Box::new(mproc.warmup(|| {
            for (m, _) in METHODS {
                MprocStart(m).start_join()?;
            }
            Ok(())
        }))],
        comparisons,
    })
}

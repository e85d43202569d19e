//! `Pipe` ping-pong latency (issue 3).
//!
//! Workload: one byte-sized message each way between a parent and a child process,
//! 20,000 round trips a sample (µs per round trip), as `py_pipe.py` and `c/os_uds.c` do;
//! unpinned, and pinned to the same CPU / to different CPUs (the `_samecpu`/`_crosscpu`
//! figures), since on these VMs waking a sleeping process on the other core costs ~30 µs.
//!
//! Contenders: mproc `Pipe` (pending: `mproc::pipe` has not landed; it plugs in as a
//! [`crate::Local`] with `Role::Mproc` over [`PingPong`]), Python's `Pipe` (`py_pipe.py`),
//! the Unix-socket floor (`c/os_uds.c`) and, for the spin-versus-sleep picture, the
//! futex and spinning floors (`c/os_futex.c`).

use crate::anchors::{CAnchor, PyAnchor};
use crate::{Area, Compare, Config, Result};

/// Round trips per sample.
pub const ROUND_TRIPS: usize = 20_000;

/// Where the two sides of a ping-pong run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Left to the scheduler.
    Unpinned,
    /// Both on CPU 0.
    SameCpu,
    /// Parent on CPU 0, child on CPU 1.
    CrossCpu,
}

impl Placement {
    /// Figure-name suffix, as in the anchors.
    pub fn suffix(self) -> &'static str {
        match self {
            Placement::Unpinned => "",
            Placement::SameCpu => "_samecpu",
            Placement::CrossCpu => "_crosscpu",
        }
    }
}

/// A two-process ping-pong: `round_trips(n, placement)` returns µs per round trip.
pub trait PingPong {
    /// Runs one sample.
    fn round_trips(&mut self, n: usize, placement: Placement) -> Result<f64>;
}

/// The `pipe` area.
pub fn area(_cfg: &Config) -> Result<Area> {
    let target = "issue 3: within 1.3× of the Unix-socket floor";
    Ok(Area {
        name: "pipe",
        title: "Pipe ping-pong (issue 3)",
        description: format!(
            "One small message each way between parent and child, {ROUND_TRIPS} round trips a sample \
             (µs per round trip), unpinned, same CPU and cross CPU. Python: `Pipe()` send/recv \
             (`py_pipe.py`). Floors: Unix socket 1-byte ping-pong (`c/os_uds.c`); futex and spinning \
             ping-pong over shared memory (`c/os_futex.c`)."
        ),
        mproc_pending: Some("mproc::pipe has not landed on main"),
        contenders: vec![
            Box::new(PyAnchor::new("py_pipe.py")),
            Box::new(CAnchor::new("os_uds")),
            Box::new(CAnchor::new("os_futex")),
        ],
        comparisons: vec![
            Compare::new("mproc_pipe_pingpong", "os_uds_pingpong_1B").at_most(1.3, target),
            Compare::new("mproc_pipe_pingpong_samecpu", "os_uds_pingpong_1B_samecpu")
                .at_most(1.3, target),
            Compare::new(
                "mproc_pipe_pingpong_crosscpu",
                "os_uds_pingpong_1B_crosscpu",
            )
            .at_most(1.3, target),
            Compare::new("mproc_pipe_pingpong", "py_pipe_pingpong_send_recv"),
            Compare::new("mproc_pipe_pingpong", "os_futex_pingpong"),
            Compare::new("mproc_pipe_pingpong", "os_spin_then_futex_pingpong"),
        ],
    })
}

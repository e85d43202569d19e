//! `Pipe` ping-pong latency (issue 3).
//!
//! Workload: one byte-sized message each way between a parent and a child process,
//! 20,000 round trips a sample (µs per round trip), as `py_pipe.py` and `c/os_uds.c` do;
//! unpinned, and pinned to the same CPU / to different CPUs (the `_samecpu`/`_crosscpu`
//! figures), since on these VMs waking a sleeping process on the other core costs ~30 µs.
//!
//! Contenders: mproc `Pipe` ([`MprocPipe`]: a `duplex::<u8>()` pair, `send`/`recv` with a
//! child started with the default start method), Python's `Pipe` (`py_pipe.py`),
//! the Unix-socket floor (`c/os_uds.c`) and, for the spin-versus-sleep picture, the
//! futex and spinning floors (`c/os_futex.c`).

use std::time::{Duration, Instant};

use mproc::pipe::{self, Connection};
use mproc::process::Process;

use crate::anchors::{CAnchor, PyAnchor};
use crate::{Area, Compare, Config, Local, Result, Role, Watchdog};

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
    /// All three, in the anchors' order.
    pub const ALL: [Placement; 3] = [Placement::Unpinned, Placement::SameCpu, Placement::CrossCpu];

    /// CPUs for (parent, child): `None` leaves a side unpinned.
    pub fn cpus(self) -> (Option<usize>, Option<usize>) {
        match self {
            Placement::Unpinned => (None, None),
            Placement::SameCpu => (Some(0), Some(0)),
            Placement::CrossCpu => (Some(0), Some(1)),
        }
    }

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

/// Pins the calling thread to `cpu`, or allows every online CPU for `None` (to undo a pin,
/// as the anchors' `unpin` does). A child process calls it on itself.
pub fn pin_to(cpu: Option<usize>) -> Result<()> {
    // SAFETY: `cpu_set_t` is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let cpus = match cpu {
        Some(c) => c..c + 1,
        None => 0..num_online_cpus(),
    };
    for c in cpus {
        // SAFETY: `set` is a valid, initialised set; CPU_SET indexes its bit array with a
        // bounds check (a CPU number past the set panics, it never writes out of bounds).
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: `set` is a valid `cpu_set_t` of the size passed; pid 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(format!(
            "sched_setaffinity({cpu:?}): {}",
            std::io::Error::last_os_error()
        )
        .into());
    }
    Ok(())
}

fn num_online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1)
}

/// The echo child: pins itself, then sends back every byte until it receives 0 (or the
/// parent's end closes).
fn mproc_echo((conn, cpu): (Connection<u8>, Option<u64>)) {
    pin_to(cpu.map(|c| c as usize)).expect("pin the echo child");
    while let Ok(b) = conn.recv() {
        if b == 0 {
            break;
        }
        conn.send(&b).expect("parent alive");
    }
}

/// mproc [`pipe::duplex`]`::<u8>()`: parent `send(&b'x')` / `recv()`, the child echoes
/// (as `py_pipe.py`'s `send`/`recv` pair), one warm-up round trip before the clock starts.
pub struct MprocPipe;

impl PingPong for MprocPipe {
    fn round_trips(&mut self, n: usize, placement: Placement) -> Result<f64> {
        let (pcpu, ccpu) = placement.cpus();
        let (a, b) = pipe::duplex::<u8>().map_err(|e| format!("pipe: {e}"))?;
        let child = Process::start(mproc_echo, (b, ccpu.map(|c| c as u64)))
            .map_err(|e| format!("start: {e}"))?;
        let _watchdog = Watchdog::arm(Duration::from_secs(120), "mproc pipe ping-pong");
        pin_to(pcpu)?;
        let run = || -> Result<f64> {
            a.send(&b'x').map_err(|e| format!("send: {e}"))?;
            a.recv().map_err(|e| format!("recv: {e}"))?;
            let t0 = Instant::now();
            for _ in 0..n {
                a.send(&b'x').map_err(|e| format!("send: {e}"))?;
                let got = a.recv().map_err(|e| format!("recv: {e}"))?;
                if got != b'x' {
                    return Err(format!("echo sent {got}, not {}", b'x').into());
                }
            }
            Ok(t0.elapsed().as_secs_f64() / n as f64 * 1e6)
        };
        let r = run();
        pin_to(None)?;
        a.send(&0).map_err(|e| format!("send: {e}"))?;
        child.join().map_err(|e| format!("join: {e}"))?;
        r
    }
}

/// The standard figures of a [`PingPong`]: `<prefix>`, `<prefix>_samecpu`, `<prefix>_crosscpu`
/// (µs per round trip), [`ROUND_TRIPS`] a sample.
pub fn pingpong_contender<W: PingPong + 'static>(
    label: &str,
    role: Role,
    prefix: &str,
    w: W,
) -> Local {
    let w = std::rc::Rc::new(std::cell::RefCell::new(w));
    let mut c = Local::new(label, role).warmup({
        let w = w.clone();
        move || {
            w.borrow_mut()
                .round_trips(ROUND_TRIPS / 10, Placement::Unpinned)
                .map(drop)
        }
    });
    for p in Placement::ALL {
        let w = w.clone();
        c = c.measure(
            format!("{prefix}{}", p.suffix()),
            "us/roundtrip",
            move || w.borrow_mut().round_trips(ROUND_TRIPS, p),
        );
    }
    c
}

/// The `pipe` area.
pub fn area(_cfg: &Config) -> Result<Area> {
    let target = "issue 3: within 1.3× of the Unix-socket floor";
    Ok(Area {
        name: "pipe",
        title: "Pipe ping-pong (issue 3)",
        description: format!(
            "One small message each way between parent and child, {ROUND_TRIPS} round trips a sample \
             (µs per round trip), unpinned, same CPU and cross CPU. mproc: `pipe::duplex::<u8>()` \
             `send`/`recv`, the echo child started with the default start method. Python: `Pipe()` send/recv \
             (`py_pipe.py`). Floors: Unix socket 1-byte ping-pong (`c/os_uds.c`); futex and spinning \
             ping-pong over shared memory (`c/os_futex.c`)."
        ),
        mproc_pending: None,
        contenders: vec![
            Box::new(pingpong_contender(
                "mproc Pipe",
                Role::Mproc,
                "mproc_pipe_pingpong",
                MprocPipe,
            )),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mproc_pingpong() {
        assert!(MprocPipe.round_trips(100, Placement::CrossCpu).unwrap() > 0.0);
    }

    #[test]
    fn pin_and_unpin() {
        pin_to(Some(0)).unwrap();
        pin_to(None).unwrap();
        assert_eq!(Placement::CrossCpu.cpus(), (Some(0), Some(1)));
    }
}

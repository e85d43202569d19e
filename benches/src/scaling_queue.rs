//! Queue throughput as producers and consumers multiply (issue 16).
//!
//! 64-byte messages through a bounded queue for the shapes [`SHAPES`] (producers →
//! consumers): (1,1), (2,2), (4,4), (8,1), (1,8), on a machine with 2 CPUs, so most shapes
//! have more processes than CPUs. The workloads are [`crate::queue`]'s: mproc
//! `Queue<Bytes>` between child processes ([`MprocQueue`]), `crossbeam-channel` between
//! threads ([`Crossbeam`]), and Python's `multiprocessing.Queue`
//! (`benches/py/py_scaling_queue.py`).

use crate::anchors::{CAnchor, PyAnchor};
use crate::queue::{Crossbeam, MprocQueue, QueueWorkload};
use crate::{Area, Compare, Config, Local, Result, Role};

/// (producers, consumers) of each measured shape.
pub const SHAPES: [(usize, usize); 5] = [(1, 1), (2, 2), (4, 4), (8, 1), (1, 8)];

/// Messages per sample (all producers together), mproc and crossbeam.
pub const COUNT: usize = 400_000;

/// Figure name of a shape: `<prefix>_64B_<p>to<c>`.
pub fn figure(prefix: &str, (p, c): (usize, usize)) -> String {
    format!("{prefix}_64B_{p}to{c}")
}

fn contender<W: QueueWorkload + 'static>(label: &str, role: Role, prefix: &str, w: W) -> Local {
    let w = std::rc::Rc::new(std::cell::RefCell::new(w));
    let w0 = w.clone();
    let mut local =
        Local::new(label, role).warmup(move || w0.borrow_mut().run(2, 2, COUNT / 10, 64).map(drop));
    for shape in SHAPES {
        let w = w.clone();
        local = local.measure(figure(prefix, shape), "msgs/s", move || {
            Ok(COUNT as f64 / w.borrow_mut().run(shape.0, shape.1, COUNT, 64)?)
        });
    }
    local
}

/// The `scaling_queue` area.
pub fn area(_cfg: &Config) -> Result<Area> {
    let mut comparisons = Vec::new();
    for shape in SHAPES {
        let m = figure("mproc_queue", shape);
        comparisons.push(
            Compare::new(m.clone(), figure("py_queue", shape))
                .at_least(50.0, "issue 16: ≥ 50× Python in every shape"),
        );
        let cb = Compare::new(m, figure("crossbeam", shape));
        comparisons.push(if matches!(shape, (1, 1) | (2, 2)) {
            cb.at_least(1.0, "issue 16: ≥ 1× crossbeam")
        } else {
            cb
        });
    }
    // The host's own cost of moving 64-byte messages between two processes (no locks):
    // it moves with where the VM's two vCPUs sit, and explains most of a run's level.
    for floor in ["os_ring_64B_1to1", "os_ring_64B_1to1_alloc"] {
        comparisons.push(Compare::new(figure("mproc_queue", (1, 1)), floor));
    }
    Ok(Area {
        name: "scaling_queue",
        title: "Scaling: queue 64 B, N producers → M consumers (issue 16)",
        description: format!(
            "64-byte messages, producers → consumers for (1,1), (2,2), (4,4), (8,1), (1,8) on this \
             machine's CPUs (messages/s, from the first producer's start to the last message received). \
             mproc: `Queue<Bytes>` bounded({cap}) between child processes (default start method), \
             {COUNT} messages a sample, each producer putting one `Bytes` again and again by reference \
             (`put_ref`), as Python's producers put one `bytes` object and crossbeam's send `[u8; 64]`s \
             by value. In-process: `crossbeam-channel` bounded({cap}) between threads, \
             {COUNT} messages a sample. Python: `multiprocessing.Queue` (`benches/py/py_scaling_queue.py`, \
             50,000 messages a sample). Each row is one point of the curve. Floor: two C processes \
             passing 64-byte messages through a lock-free single-producer ring in shared memory \
             (`c/os_ring.c`; `_alloc`: each side also allocates and frees a 64-byte buffer per \
             message, as the Rust workloads do with `Vec<u8>`): the host's cost of moving the \
             lines between its CPUs, which changes several-fold with where the host places the \
             two vCPUs.",
            cap = crate::queue::CAPACITY
        ),
        mproc_pending: None,
        contenders: vec![
            Box::new(contender(
                "mproc Queue (processes)",
                Role::Mproc,
                "mproc_queue",
                MprocQueue,
            )),
            Box::new(contender(
                "crossbeam-channel (threads)",
                Role::InProcess,
                "crossbeam",
                Crossbeam,
            )),
            Box::new(PyAnchor::new("py_scaling_queue.py")),
            Box::new(CAnchor::new("os_ring")),
        ],
        comparisons,
    })
}

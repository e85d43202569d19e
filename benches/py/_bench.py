"""The harness of mproc's Python comparison scripts (benches/py/py_*.py).

Each script measures what Python's standard library (`multiprocessing`,
`concurrent.futures`) gives for the work an mproc benchmark does. It takes SAMPLES
samples of each figure (environment REPEATS, default 3) and prints
    stdout: <figure>\t<median of the samples>\t<unit>
    stderr: #spread\t<figure>\t<min>\t<median>\t<max>\t<unit>\tn=<samples>
which benches/src/anchors.rs parses. Standard library only; run as `python3 -S`.

This module is imported again by every spawn/forkserver child: keep it small and free
of side effects beyond reading the environment.
"""
import os
import statistics
import sys
import time

SAMPLES = max(1, int(os.environ.get("REPEATS", "3") or "3"))

clock = time.perf_counter


def emit(figure, unit, samples):
    """Print the median of `samples` as `figure`, and their spread on stderr."""
    samples = list(samples)
    mid = statistics.median(samples)
    print(f"{figure}\t{mid:.6g}\t{unit}", flush=True)
    print(f"#spread\t{figure}\t{min(samples):.6g}\t{mid:.6g}\t{max(samples):.6g}\t{unit}"
          f"\tn={len(samples)}", file=sys.stderr, flush=True)


def measure(figure, unit, sample, times=None):
    """Call `sample()` `times` times (default SAMPLES) and emit the figure."""
    emit(figure, unit, [sample() for _ in range(times or SAMPLES)])


def pin(cpu):
    """Pin this process to `cpu`; None leaves it where it is."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


# Where the two sides of a ping-pong run (parent CPU, child CPU), by figure suffix.
PLACEMENTS = (("", None, None), ("_samecpu", 0, 0), ("_crosscpu", 0, 1))

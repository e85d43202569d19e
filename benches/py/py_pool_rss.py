"""Resident size of an idle multiprocessing.Pool worker, per start method.

Companion of ../shared/anchors/py_pool.py (same style, same _common.py, found through
PYTHONPATH); issue 5 compares mproc's idle worker with this.
Pool(2) is created, one small map warms both workers up (so they have imported what a
worker imports to run a task), then VmRSS of each worker is read from /proc/<pid>/status.
  py_pool_worker_rss_fork  : MB (1 MB = 1e6 bytes), the larger of the two workers; median of samples
  py_pool_worker_rss_spawn : same with the spawn start method
"""
import multiprocessing as mp

from _common import REPEATS, report


def sq(x):
    return x * x


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"no VmRSS for {pid}")


def sample(method):
    ctx = mp.get_context(method)
    with ctx.Pool(2) as pool:
        assert pool.map(sq, range(100), 1)[-1] == 99 * 99
        rss = [rss_mb(p.pid) for p in pool._pool]
    return sorted(rss)[len(rss) // 2]


if __name__ == "__main__":
    for method in ("fork", "spawn"):
        report(f"py_pool_worker_rss_{method}", [sample(method) for _ in range(REPEATS)], "MB")

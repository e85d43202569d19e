"""Resident memory of an idle multiprocessing.Pool worker, per start method.

    py_pool_worker_rss_fork   Pool(2) with fork: after one small map (so each worker has
                              imported what running a task needs), VmRSS of the larger
                              worker from /proc/<pid>/status -> MB (1e6 bytes)
    py_pool_worker_rss_spawn  the same with spawn
"""
import multiprocessing

from _bench import measure


def square(x):
    return x * x


def resident_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6
    raise SystemExit(f"/proc/{pid}/status has no VmRSS line")


def largest_worker_mb(method):
    with multiprocessing.get_context(method).Pool(2) as pool:
        assert pool.map(square, range(100), 1)[-1] == 99 * 99
        # Pool keeps its worker processes in _pool; there is no public accessor.
        return max(resident_mb(worker.pid) for worker in pool._pool)


def main():
    for method in ("fork", "spawn"):
        measure(f"py_pool_worker_rss_{method}", "MB", lambda: largest_worker_mb(method))


if __name__ == "__main__":
    main()

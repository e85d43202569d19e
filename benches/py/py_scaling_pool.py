"""multiprocessing.Pool(N) over trivial tasks (x * x), N = 1, 2, 4, 8, 16, default start
method.

    py_pool<N>_map_chunksize1  pool.map over range(5,000), chunksize=1 -> tasks/s
    py_pool<N>_map_auto        pool.map over range(100,000), chunksize chosen by the pool
                               -> tasks/s
A fresh pool per sample, every worker warmed up outside the clock (as the mproc side).
"""
import multiprocessing

from _bench import clock, measure

WORKERS = (1, 2, 4, 8, 16)
CHUNK1_TASKS = 5_000
AUTO_TASKS = 100_000


def square(x):
    return x * x


def map_rate(workers, tasks, chunksize):
    with multiprocessing.Pool(workers) as pool:
        pool.map(square, range(workers * 50), 1)
        t0 = clock()
        results = pool.map(square, range(tasks), chunksize)
        took = clock() - t0
    assert sum(results) == sum(x * x for x in range(tasks))
    return tasks / took


def main():
    for workers in WORKERS:
        measure(f"py_pool{workers}_map_chunksize1", "tasks/s",
                lambda: map_rate(workers, CHUNK1_TASKS, 1))
        measure(f"py_pool{workers}_map_auto", "tasks/s",
                lambda: map_rate(workers, AUTO_TASKS, None))


if __name__ == "__main__":
    main()

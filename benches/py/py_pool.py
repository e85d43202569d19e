"""multiprocessing.Pool(2) over trivial tasks (x * x), default start method.

    py_pool2_map_default_chunksize      pool.map over range(100,000), chunksize chosen by
                                        the pool -> tasks/s (3 x SAMPLES samples: a
                                        sample lasts only tens of milliseconds)
    py_pool2_map_chunksize1             the same with chunksize=1
    py_pool2_imap_unordered_chunksize1  the same tasks through imap_unordered(chunksize=1)
    py_pool2_create_close               Pool(2), one map of two tasks, close, join -> ms
The pool of the first three is started and warmed up once, outside the clock.
"""
import multiprocessing

from _bench import SAMPLES, clock, measure

TASKS = 100_000
TOTAL = sum(x * x for x in range(TASKS))


def square(x):
    return x * x


def map_rate(pool, chunksize):
    t0 = clock()
    results = pool.map(square, range(TASKS), chunksize)
    took = clock() - t0
    assert sum(results) == TOTAL
    return TASKS / took


def imap_unordered_rate(pool):
    t0 = clock()
    total = sum(pool.imap_unordered(square, range(TASKS), 1))
    took = clock() - t0
    assert total == TOTAL
    return TASKS / took


def create_close_ms():
    t0 = clock()
    pool = multiprocessing.Pool(2)
    assert pool.map(square, range(2), 1) == [0, 1]
    pool.close()
    pool.join()
    return (clock() - t0) * 1e3


def main():
    with multiprocessing.Pool(2) as pool:
        pool.map(square, range(1000), 1)  # both workers started and warm
        measure("py_pool2_map_default_chunksize", "tasks/s", lambda: map_rate(pool, None),
                times=3 * SAMPLES)
        measure("py_pool2_map_chunksize1", "tasks/s", lambda: map_rate(pool, 1))
        measure("py_pool2_imap_unordered_chunksize1", "tasks/s", lambda: imap_unordered_rate(pool))
    measure("py_pool2_create_close", "ms", create_close_ms)


if __name__ == "__main__":
    main()

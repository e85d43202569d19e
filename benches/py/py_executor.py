"""concurrent.futures.ProcessPoolExecutor(max_workers=2) over trivial tasks (x * x).

    py_ppe2_submit_result_20k     20,000 submit()s, then result() of each -> tasks/s
    py_ppe2_map_chunksize1000     map over range(100,000) with chunksize=1000 -> tasks/s
                                  (3 x SAMPLES samples: each is short)
    py_ppe2_map_chunksize1_20k    map over range(20,000), default chunksize 1 -> tasks/s
    py_ppe2_submit_result_serial  submit(f).result() one at a time, 2,000 times -> us/task
The executor is started and warmed up once, outside the clock.
"""
import concurrent.futures

from _bench import SAMPLES, clock, measure


def square(x):
    return x * x


def nothing():
    return None


def total(n):
    return sum(x * x for x in range(n))


def submit_result_rate(executor, n=20_000):
    t0 = clock()
    futures = [executor.submit(square, i) for i in range(n)]
    got = sum(f.result() for f in futures)
    took = clock() - t0
    assert got == total(n)
    return n / took


def map_rate(executor, n, chunksize):
    t0 = clock()
    got = sum(executor.map(square, range(n), chunksize=chunksize))
    took = clock() - t0
    assert got == total(n)
    return n / took


def one_at_a_time_us(executor, n=2_000):
    t0 = clock()
    for _ in range(n):
        executor.submit(nothing).result()
    return (clock() - t0) / n * 1e6


def main():
    with concurrent.futures.ProcessPoolExecutor(max_workers=2) as executor:
        list(executor.map(square, range(200)))  # both workers started and warm
        measure("py_ppe2_submit_result_20k", "tasks/s", lambda: submit_result_rate(executor))
        measure("py_ppe2_map_chunksize1000", "tasks/s", lambda: map_rate(executor, 100_000, 1000),
                times=3 * SAMPLES)
        measure("py_ppe2_map_chunksize1_20k", "tasks/s", lambda: map_rate(executor, 20_000, 1))
        measure("py_ppe2_submit_result_serial", "us/task", lambda: one_at_a_time_us(executor))


if __name__ == "__main__":
    main()

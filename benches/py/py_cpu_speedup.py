"""CPU-bound multiprocessing.Pool(2).map: how much two workers speed up pure Python work.

The job is 64 tasks, each a pure-Python sum of i * i for i below 200,000. A sample
times the job serially in the parent, then through pool.map (default chunksize) on a
pool started and warmed up beforehand, then split 32/32 over two bare os.fork()
children. This machine's speed wobbles for short stretches, so a sample is a pair of
neighbouring runs and the script takes 2 x SAMPLES - 1 samples; some untimed work runs
right before each timed run (an idle vCPU is slow for its first tens of milliseconds).
    py_pool2_cpu_speedup     T(serial) / T(pool) -> x (ideal 2)
    py_pool2_cpu_efficiency  time spent inside the tasks, measured in the workers, over
                             2 x T(pool) -> fraction (ideal 1; speed wobble cancels out)
    py_cpu_task_serial       T(serial) / 64 -> ms/task
    py_rawfork2_cpu_speedup  T(serial) / T(two forked children, fork included) -> x
"""
import multiprocessing
import os

from _bench import SAMPLES, clock, emit

TASKS = 64
N = 200_000
EXPECTED = sum(i * i for i in range(N))


def task(n):
    total = 0
    for i in range(n):
        total += i * i
    return total


def timed_task(n):
    t0 = clock()
    result = task(n)
    return result, clock() - t0


def serial_seconds():
    t0 = clock()
    results = [task(N) for _ in range(TASKS)]
    took = clock() - t0
    assert results[-1] == EXPECTED
    return took


def pool_seconds(pool):
    """The job through the pool: (wall seconds, seconds spent inside the tasks)."""
    t0 = clock()
    results = pool.map(timed_task, [N] * TASKS)
    took = clock() - t0
    assert all(r == EXPECTED for r, _ in results)
    return took, sum(t for _, t in results)


def forked_seconds():
    t0 = clock()
    children = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            for _ in range(TASKS // 2):
                task(N)
            os._exit(0)
        children.append(pid)
    for pid in children:
        _, status = os.waitpid(pid, 0)
        if status != 0:
            raise SystemExit(f"forked child {pid} ended with status {status}")
    return clock() - t0


def main():
    speedup, efficiency, per_task, forked = [], [], [], []
    with multiprocessing.Pool(2) as pool:
        pool.map(task, [N] * 4, 1)  # both workers started
        for _ in range(2 * SAMPLES - 1):
            for _ in range(12):  # warm-up, untimed
                task(N)
            serial = serial_seconds()
            pool.map(task, [N] * 24)  # warm-up, untimed
            pooled, busy = pool_seconds(pool)
            pool.map(task, [N] * 24)  # warm-up, untimed
            raw = forked_seconds()
            speedup.append(serial / pooled)
            efficiency.append(busy / (2 * pooled))
            per_task.append(serial / TASKS * 1e3)
            forked.append(serial / raw)
    emit("py_pool2_cpu_speedup", "x", speedup)
    emit("py_pool2_cpu_efficiency", "fraction", efficiency)
    emit("py_cpu_task_serial", "ms/task", per_task)
    emit("py_rawfork2_cpu_speedup", "x", forked)


if __name__ == "__main__":
    main()

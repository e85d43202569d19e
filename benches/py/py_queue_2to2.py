"""multiprocessing.Queue, 2 producer processes -> 2 consumer processes (64-byte messages).

Companion of ../shared/anchors/py_queue.py (same style, same _common.py, found through
PYTHONPATH): py_queue.py measures 1 -> 1 only; issue 3 also asks for 2 -> 2.
Producers and consumers are forked children. Each signals `ready` (a Barrier with the
parent), the parent starts the clock when the barrier opens and stops it when both
consumers have reported their counts (each consumer stops on a None sentinel per producer).
  py_queue_64B_2to2 : 200_000 x 64-byte messages in all -> msgs/s
"""
import multiprocessing as mp
import time

from _common import REPEATS, report


def producer(q, n, size, start):
    msg = b"x" * size
    start.wait()
    for _ in range(n):
        q.put(msg)
    q.close()
    q.join_thread()


def consumer(q, n_producers_sentinels, start, done):
    start.wait()
    got = 0
    seen = 0
    while seen < n_producers_sentinels:
        m = q.get()
        if m is None:
            seen += 1
        else:
            got += len(m)
    done.put(got)


def one_run(n, size, producers=2, consumers=2):
    q = mp.Queue()
    done = mp.Queue()
    start = mp.Barrier(producers + consumers + 1)
    per = n // producers
    ps = [mp.Process(target=producer, args=(q, per, size, start)) for _ in range(producers)]
    # Each consumer stops after one sentinel; the parent puts one per consumer after the
    # producers finished (so the clock includes draining every message).
    cs = [mp.Process(target=consumer, args=(q, 1, start, done)) for _ in range(consumers)]
    for p in ps + cs:
        p.start()
    start.wait()
    t0 = time.perf_counter()
    for p in ps:
        p.join()
    for _ in cs:
        q.put(None)
    got = sum(done.get() for _ in cs)
    dt = time.perf_counter() - t0
    for c in cs:
        c.join()
    assert got == per * producers * size, got
    return per * producers / dt


if __name__ == "__main__":
    report("py_queue_64B_2to2", [one_run(200_000, 64) for _ in range(REPEATS)], "msgs/s")

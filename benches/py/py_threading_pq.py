"""queue.PriorityQueue between threads of one process (issue 14 item 2).

Companion of benches/src/threading.rs (same numbers; the harness is _bench.py):
  py_pq_1thread       : one thread puts 200_000 integers, then gets them all -> items/s
  py_pq_threads_1to1  : 1 producer thread -> 1 consumer thread, maxsize=1024 -> items/s
  py_pq_threads_2to2  : 2 producers -> 2 consumers, maxsize=1024 -> items/s
  py_fifo_threads_1to1, py_fifo_threads_2to2 : the same through queue.Queue
  py_lifo_threads_1to1, py_lifo_threads_2to2 : the same through queue.LifoQueue
  (these two: each consumer gets its share of the items, no sentinel)
The integers come from the same 64-bit LCG as the Rust side. Producers put their share,
then the main thread puts one sentinel (larger than any item, so it comes out last) per
consumer; the clock runs from the start barrier to the last consumer's end.
"""
import queue
import threading
import time

from _bench import SAMPLES, emit

N = 200_000
MAXSIZE = 1024
SENTINEL = 1 << 64
MASK = (1 << 64) - 1


def items(n, seed):
    x = seed
    out = []
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) & MASK
        out.append(x >> 33)
    return out


def single(n):
    q = queue.PriorityQueue()
    xs = items(n, 1)
    t0 = time.perf_counter()
    for x in xs:
        q.put(x)
    last = 0
    for _ in range(n):
        x = q.get()
        assert x >= last
        last = x
    return n / (time.perf_counter() - t0)


def threads(producers, consumers, n):
    q = queue.PriorityQueue(MAXSIZE)
    per = n // producers
    shares = [items(per, 1 + p) for p in range(producers)]
    go = threading.Barrier(producers + consumers + 1)
    results = []

    def produce(xs):
        go.wait()
        for x in xs:
            q.put(x)

    def consume():
        go.wait()
        k = s = 0
        while True:
            x = q.get()
            if x == SENTINEL:
                break
            k += 1
            s += x
        results.append((k, s))

    ps = [threading.Thread(target=produce, args=(xs,)) for xs in shares]
    cs = [threading.Thread(target=consume) for _ in range(consumers)]
    for t in ps + cs:
        t.start()
    go.wait()
    t0 = time.perf_counter()
    for t in ps:
        t.join()
    for _ in cs:
        q.put(SENTINEL)
    for t in cs:
        t.join()
    dt = time.perf_counter() - t0
    assert sum(k for k, _ in results) == per * producers
    assert sum(s for _, s in results) == sum(sum(xs) for xs in shares)
    return per * producers / dt


def threads_shares(make, producers, consumers, n):
    q = make(MAXSIZE)
    per = n // producers
    share = per * producers // consumers
    assert share * consumers == per * producers
    shares = [items(per, 1 + p) for p in range(producers)]
    go = threading.Barrier(producers + consumers + 1)
    results = []

    def produce(xs):
        go.wait()
        for x in xs:
            q.put(x)

    def consume():
        go.wait()
        s = 0
        for _ in range(share):
            s += q.get()
        results.append(s)

    ps = [threading.Thread(target=produce, args=(xs,)) for xs in shares]
    cs = [threading.Thread(target=consume) for _ in range(consumers)]
    for t in ps + cs:
        t.start()
    go.wait()
    t0 = time.perf_counter()
    for t in ps + cs:
        t.join()
    dt = time.perf_counter() - t0
    assert sum(results) == sum(sum(xs) for xs in shares)
    return per * producers / dt


if __name__ == "__main__":
    emit("py_pq_1thread", "items/s", [single(N) for _ in range(SAMPLES)])
    emit("py_pq_threads_1to1", "items/s", [threads(1, 1, N) for _ in range(SAMPLES)])
    emit("py_pq_threads_2to2", "items/s", [threads(2, 2, N) for _ in range(SAMPLES)])
    for kind, make in (("fifo", queue.Queue), ("lifo", queue.LifoQueue)):
        for p, c in ((1, 1), (2, 2)):
            emit(f"py_{kind}_threads_{p}to{c}", "items/s",
                 [threads_shares(make, p, c, N) for _ in range(SAMPLES)])

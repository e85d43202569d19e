"""multiprocessing.Lock and Event with N processes.

    py_lock_<N>proc        N = 1, 2, 4, 8 processes share one Lock, 200,000 acquire+release
                           pairs in all, each incrementing a shared counter -> ops/s
    py_event_ring_<N>proc  N = 2, 4, 8 processes pass a token round a ring of N Events
                           (wait, clear, set the next), 2,000 hand-offs -> us/handoff
Children meet at a Barrier; the clock runs from the barrier (the first set, for the ring)
to the last child's finish, each child reporting its own times.
"""
import multiprocessing
import time

from _bench import measure

LOCK_OPS = 200_000
RING_HANDOFFS = 2_000


def locker(lock, counter, barrier, n, times):
    barrier.wait()
    start = time.monotonic()
    for _ in range(n):
        with lock:
            counter.value += 1
    times.put((start, time.monotonic()))


def lock_rate(procs):
    lock, times = multiprocessing.Lock(), multiprocessing.Queue()
    counter = multiprocessing.Value("q", 0, lock=False)
    barrier = multiprocessing.Barrier(procs)
    each = LOCK_OPS // procs
    children = [multiprocessing.Process(target=locker, args=(lock, counter, barrier, each, times))
                for _ in range(procs)]
    for c in children:
        c.start()
    spans = [times.get() for _ in children]
    for c in children:
        c.join()
    if counter.value != each * procs:
        raise SystemExit(f"counter {counter.value} != {each * procs}")
    return each * procs / (max(e for _, e in spans) - min(s for s, _ in spans))


def member(mine, nxt, rounds, barrier, times):
    barrier.wait()
    for _ in range(rounds):
        mine.wait()
        mine.clear()
        nxt.set()
    times.put(time.monotonic())


def ring_us(procs):
    events = [multiprocessing.Event() for _ in range(procs)]
    times = multiprocessing.Queue()
    rounds = RING_HANDOFFS // procs
    barrier = multiprocessing.Barrier(procs + 1)
    children = [multiprocessing.Process(target=member,
                                        args=(events[i], events[(i + 1) % procs], rounds, barrier,
                                              times))
                for i in range(procs)]
    for c in children:
        c.start()
    barrier.wait()
    t0 = time.monotonic()
    events[0].set()
    t1 = max(times.get() for _ in children)
    for c in children:
        c.join()
    return (t1 - t0) * 1e6 / (rounds * procs)


def main():
    for procs in (1, 2, 4, 8):
        measure(f"py_lock_{procs}proc", "ops/s", lambda: lock_rate(procs))
    for procs in (2, 4, 8):
        measure(f"py_event_ring_{procs}proc", "us/handoff", lambda: ring_us(procs))


if __name__ == "__main__":
    main()

"""Cross-process synchronisation in multiprocessing.

    py_mp_lock_acquire_release         multiprocessing.Lock (a POSIX semaphore), acquire()
                                       then release() by one process, nobody else
                                       using it, 1,000,000 times -> ns/op (with the loop)
    py_mp_lock_with                    the same as `with lock: pass`
    py_threading_lock_acquire_release  threading.Lock in the same loop, for scale
    py_empty_loop                      the bare loop, to read the figures above net of it
                                       -> ns/iter
    py_mp_event_pingpong               two multiprocessing.Events between the parent and a
                                       forked child: the parent sets `ping` and waits for
                                       `pong`; the child waits for `ping`, clears it, sets
                                       `pong`. 10,000 timed round trips after 100
                                       -> us/roundtrip
"""
import multiprocessing
import threading

from _bench import clock, measure

OPS = 1_000_000
TRIPS, WARM = 10_000, 100


def acquire_release_ns(lock):
    acquire, release = lock.acquire, lock.release
    t0 = clock()
    for _ in range(OPS):
        acquire()
        release()
    return (clock() - t0) / OPS * 1e9


def with_block_ns(lock):
    t0 = clock()
    for _ in range(OPS):
        with lock:
            pass
    return (clock() - t0) / OPS * 1e9


def bare_loop_ns():
    t0 = clock()
    for _ in range(OPS):
        pass
    return (clock() - t0) / OPS * 1e9


def answer(ping, pong, trips):
    for _ in range(trips):
        ping.wait()
        ping.clear()
        pong.set()


def event_pingpong_us():
    ping, pong = multiprocessing.Event(), multiprocessing.Event()
    child = multiprocessing.Process(target=answer, args=(ping, pong, WARM + TRIPS))
    child.start()
    t0 = clock()
    for i in range(WARM + TRIPS):
        if i == WARM:
            t0 = clock()
        ping.set()
        pong.wait()
        pong.clear()
    took = clock() - t0
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"the child ended with exit code {child.exitcode}")
    return took / TRIPS * 1e6


def main():
    lock = multiprocessing.Lock()
    acquire_release_ns(lock)  # warm-up
    measure("py_mp_lock_acquire_release", "ns/op", lambda: acquire_release_ns(lock))
    measure("py_mp_lock_with", "ns/op", lambda: with_block_ns(lock))
    thread_lock = threading.Lock()
    measure("py_threading_lock_acquire_release", "ns/op", lambda: acquire_release_ns(thread_lock))
    measure("py_empty_loop", "ns/iter", bare_loop_ns)
    measure("py_mp_event_pingpong", "us/roundtrip", event_pingpong_us)


if __name__ == "__main__":
    main()

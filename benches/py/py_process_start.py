"""multiprocessing.Process start + join of an empty function, per start method.

    py_process_start_join_<method>        50 processes, each started then joined before
                                          the next -> us/process
    py_process_batch_start_join_<method>  50 processes started, then all joined
                                          -> us/process
for <method> in fork, spawn, forkserver. Each method first starts and joins one
untimed process (this starts the forkserver and imports what a start needs).
"""
import multiprocessing

from _bench import SAMPLES, clock, measure

PER_SAMPLE = 50


def nothing():
    return None


def checked_join(p):
    p.join()
    if p.exitcode != 0:
        raise SystemExit(f"child {p.pid} ended with exit code {p.exitcode}")


def one_by_one(ctx):
    start = clock()
    for _ in range(PER_SAMPLE):
        p = ctx.Process(target=nothing)
        p.start()
        checked_join(p)
    return (clock() - start) / PER_SAMPLE * 1e6


def all_at_once(ctx):
    start = clock()
    children = [ctx.Process(target=nothing) for _ in range(PER_SAMPLE)]
    for p in children:
        p.start()
    for p in children:
        checked_join(p)
    return (clock() - start) / PER_SAMPLE * 1e6


def main():
    for method in ("fork", "spawn", "forkserver"):
        ctx = multiprocessing.get_context(method)
        warm = ctx.Process(target=nothing)
        warm.start()
        checked_join(warm)
        measure(f"py_process_start_join_{method}", "us/process", lambda: one_by_one(ctx))
        measure(f"py_process_batch_start_join_{method}", "us/process",
                lambda: all_at_once(ctx), times=max(3, SAMPLES // 2))


if __name__ == "__main__":
    main()

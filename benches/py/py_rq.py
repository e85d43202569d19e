"""RQ (Redis Queue) over trivial jobs (x * x), against its own local redis-server.

    py_rq_simpleworker_jobs_per_s  2,000 jobs enqueued, then a SimpleWorker in burst
                                   mode runs them (no fork per job) -> jobs/s, end to end
    py_rq_enqueue                  enqueue_many of 2,000 jobs -> jobs/s

RQ is not in the standard library: on first use this script makes a virtualenv
(MPROC_BENCH_VENV, default /tmp/mproc-bench-rq-venv), runs `pip install rq` there and
runs itself again with that venv's python.
"""
import os
import socket
import subprocess
import sys
import time

JOBS = 2_000


def square(x):
    return x * x


def ensure_rq():
    try:
        import rq  # noqa: F401
        import redis  # noqa: F401
        return
    except ImportError:
        pass
    venv = os.environ.get("MPROC_BENCH_VENV", "/tmp/mproc-bench-rq-venv")
    py = os.path.join(venv, "bin", "python")
    if os.environ.get("MPROC_BENCH_RQ_REEXEC"):
        sys.exit(f"rq is still not importable with {sys.executable}")
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "rq"],
                   check=True, stdout=sys.stderr)
    os.environ["MPROC_BENCH_RQ_REEXEC"] = "1"
    os.execv(py, [py, os.path.abspath(__file__)])


def start_redis():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    end = time.time() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            if time.time() > end:
                proc.kill()
                sys.exit("redis-server did not start within 10 s")
            time.sleep(0.02)


def main():
    ensure_rq()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _bench import measure
    from redis import Redis
    from rq import Queue, SimpleWorker

    import py_rq  # the job function, importable by name as the worker needs

    proc, port = start_redis()
    try:
        conn = Redis(port=port)
        counter = [0]

        def jobs(q):
            return [Queue.prepare_data(py_rq.square, args=(i,)) for i in range(JOBS)]

        def end_to_end():
            counter[0] += 1
            q = Queue(f"bench-{counter[0]}", connection=conn)
            t0 = time.perf_counter()
            q.enqueue_many(jobs(q))
            SimpleWorker([q], connection=conn).work(burst=True, logging_level="WARNING")
            took = time.perf_counter() - t0
            done = q.finished_job_registry.count
            assert done == JOBS, f"{done} of {JOBS} jobs finished"
            return JOBS / took

        def enqueue():
            counter[0] += 1
            q = Queue(f"idle-{counter[0]}", connection=conn)
            t0 = time.perf_counter()
            q.enqueue_many(jobs(q))
            return JOBS / (time.perf_counter() - t0)

        measure("py_rq_simpleworker_jobs_per_s", "jobs/s", end_to_end)
        measure("py_rq_enqueue", "jobs/s", enqueue)
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    main()

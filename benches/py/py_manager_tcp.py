"""multiprocessing.managers.BaseManager over TCP (127.0.0.1) with an authkey: a dict
accessed from a child process.

Companion of ../shared/anchors/py_manager.py (same loop, same _common.py, found through
PYTHONPATH), which measures Manager() on its default (Unix-socket) address only; issue 12
also asks for the TCP case. A BaseManager serving a dict is started on 127.0.0.1:0 with an
authkey; a forked child connects to it by address and key (as a client on another machine
would), does one warm-up set/get, then d[k] = i; x = d[k] for 10_000 iterations and reports
its own elapsed time through a Pipe. One op = one set OR one get.
  py_basemanager_dict_set_get_child_tcp : ops/s
"""
import multiprocessing as mp
import time
from multiprocessing.managers import BaseManager, DictProxy

from _common import REPEATS, report

ITERS = 10_000
AUTHKEY = b"mproc-bench-key"
_shared = {}


def get_dict():
    return _shared


class DictManager(BaseManager):
    pass


DictManager.register("get_dict", callable=get_dict, proxytype=DictProxy)


def worker(address, conn):
    m = DictManager(address=address, authkey=AUTHKEY)
    m.connect()
    d = m.get_dict()
    d["warm"] = 0
    _ = d["warm"]
    t0 = time.perf_counter()
    for i in range(ITERS):
        d["k"] = i
        x = d["k"]
    dt = time.perf_counter() - t0
    assert x == ITERS - 1
    conn.send(dt)


def one_run(address):
    r, w = mp.Pipe(duplex=False)
    p = mp.Process(target=worker, args=(address, w))
    p.start()
    dt = r.recv()
    p.join()
    assert p.exitcode == 0
    return 2 * ITERS / dt


if __name__ == "__main__":
    m = DictManager(address=("127.0.0.1", 0), authkey=AUTHKEY)
    m.start()
    try:
        report("py_basemanager_dict_set_get_child_tcp",
               [one_run(m.address) for _ in range(REPEATS)], "ops/s")
    finally:
        m.shutdown()

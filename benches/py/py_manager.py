"""multiprocessing's managers: a dict served by a manager process, used from a child.

Companion of benches/src/manager.rs (same loop, same figure names; harness _bench.py).
The child opens its connection with one set/get, then runs `d["k"] = i; x = d["k"]`
for ITERS iterations and sends its own elapsed time back through a Pipe; one op is
one set or one get.
  py_manager_dict_set_get_child          : Manager().dict() (Unix socket), ops/s
  py_basemanager_dict_set_get_child_tcp  : BaseManager on 127.0.0.1 with an authkey;
                                           the child connects by address and key, ops/s
  py_manager_start_shutdown              : Manager() then shutdown(), ms
"""
import multiprocessing as mp
from multiprocessing.managers import BaseManager, DictProxy

from _bench import SAMPLES, clock, emit

ITERS = 10_000
AUTHKEY = b"mproc-bench-key"
_served = {}


def served_dict():
    return _served


class TcpDictManager(BaseManager):
    pass


TcpDictManager.register("served_dict", callable=served_dict, proxytype=DictProxy)


def set_get_loop(d, conn):
    d["warm"] = 0
    _ = d["warm"]
    start = clock()
    x = None
    for i in range(ITERS):
        d["k"] = i
        x = d["k"]
    elapsed = clock() - start
    assert x == ITERS - 1
    conn.send(elapsed)


def over_tcp(address, conn):
    m = TcpDictManager(address=address, authkey=AUTHKEY)
    m.connect()
    set_get_loop(m.served_dict(), conn)


def ops_per_s(target, arg):
    r, w = mp.Pipe(duplex=False)
    child = mp.Process(target=target, args=(arg, w))
    child.start()
    elapsed = r.recv()
    child.join()
    assert child.exitcode == 0
    return 2 * ITERS / elapsed


def start_shutdown_ms():
    start = clock()
    m = mp.Manager()
    m.shutdown()
    return (clock() - start) * 1e3


if __name__ == "__main__":
    with mp.Manager() as m:
        d = m.dict()
        emit("py_manager_dict_set_get_child", "ops/s",
             [ops_per_s(set_get_loop, d) for _ in range(SAMPLES)])
    tcp = TcpDictManager(address=("127.0.0.1", 0), authkey=AUTHKEY)
    tcp.start()
    try:
        emit("py_basemanager_dict_set_get_child_tcp", "ops/s",
             [ops_per_s(over_tcp, tcp.address) for _ in range(SAMPLES)])
    finally:
        tcp.shutdown()
    emit("py_manager_start_shutdown", "ms", [start_shutdown_ms() for _ in range(SAMPLES)])

"""multiprocessing.Pipe between the parent and a forked child.

    py_pipe_pingpong_send_recv           send()/recv() of b"x" (pickled), echoed by the
                                         child, 20,000 round trips -> us/roundtrip
    py_pipe_pingpong_send_bytes          the same with send_bytes()/recv_bytes()
    py_pipe_pingpong_send_recv_samecpu   send()/recv() with both processes on CPU 0
    py_pipe_pingpong_send_recv_crosscpu  ... with the parent on CPU 0, the child on CPU 1
    py_pipe_bw_1MiB_duplex               the child send_bytes() 1,000 blocks of 1 MiB over
                                         Pipe() (a socket pair) -> MB/s (1e6 bytes)
    py_pipe_bw_1MiB_simplex              the same over Pipe(duplex=False) (an os.pipe)
"""
import multiprocessing
import os

from _bench import PLACEMENTS, clock, measure, pin

TRIPS = 20_000


def echo(conn, raw, cpu):
    pin(cpu)
    receive, send = (conn.recv_bytes, conn.send_bytes) if raw else (conn.recv, conn.send)
    while (message := receive()) != b"":
        send(message)


def pingpong_us(raw, parent_cpu=None, child_cpu=None):
    mine, theirs = multiprocessing.Pipe()
    child = multiprocessing.Process(target=echo, args=(theirs, raw, child_cpu))
    child.start()
    theirs.close()
    affinity = os.sched_getaffinity(0)
    pin(parent_cpu)
    send, receive = (mine.send_bytes, mine.recv_bytes) if raw else (mine.send, mine.recv)
    send(b"x")  # one untimed round trip: the child is up and running
    receive()
    t0 = clock()
    for _ in range(TRIPS):
        send(b"x")
        receive()
    took = clock() - t0
    send(b"")  # the child's signal to stop
    child.join()
    os.sched_setaffinity(0, affinity)
    return took / TRIPS * 1e6


def stream(conn, blocks, size, ready, start):
    block = bytes(size)
    ready.set()
    start.wait()
    for _ in range(blocks):
        conn.send_bytes(block)


def bandwidth_mbs(duplex, blocks=1000, size=1 << 20):
    reader, writer = multiprocessing.Pipe(duplex)
    ready, start = multiprocessing.Event(), multiprocessing.Event()
    child = multiprocessing.Process(target=stream, args=(writer, blocks, size, ready, start))
    child.start()
    writer.close()
    ready.wait()
    received = 0
    t0 = clock()
    start.set()
    for _ in range(blocks):
        received += len(reader.recv_bytes())
    took = clock() - t0
    child.join()
    if received != blocks * size:
        raise SystemExit(f"received {received} of {blocks * size} bytes")
    return received / took / 1e6


def main():
    measure("py_pipe_pingpong_send_recv", "us/roundtrip", lambda: pingpong_us(False))
    measure("py_pipe_pingpong_send_bytes", "us/roundtrip", lambda: pingpong_us(True))
    for suffix, parent_cpu, child_cpu in PLACEMENTS[1:]:
        measure(f"py_pipe_pingpong_send_recv{suffix}", "us/roundtrip",
                lambda: pingpong_us(False, parent_cpu, child_cpu))
    measure("py_pipe_bw_1MiB_duplex", "MB/s", lambda: bandwidth_mbs(True))
    measure("py_pipe_bw_1MiB_simplex", "MB/s", lambda: bandwidth_mbs(False))


if __name__ == "__main__":
    main()

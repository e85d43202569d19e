"""multiprocessing.Queue throughput, two producer processes -> two consumer processes.

    py_queue_64B_2to2  200,000 messages of 64 bytes in all -> msgs/s
All four are forked children meeting the parent at a Barrier; the parent's clock runs
from the barrier until both consumers have reported what they received. After the
producers are joined the parent puts one None per consumer, so the time includes
draining every message.
"""
import multiprocessing

from _bench import clock, measure

PRODUCERS = CONSUMERS = 2


def produce(queue, count, size, barrier):
    message = bytes(size)
    barrier.wait()
    for _ in range(count):
        queue.put(message)
    queue.close()
    queue.join_thread()


def consume(queue, barrier, totals):
    barrier.wait()
    received = 0
    while (message := queue.get()) is not None:
        received += len(message)
    totals.put(received)


def rate(total, size):
    queue, totals = multiprocessing.Queue(), multiprocessing.Queue()
    barrier = multiprocessing.Barrier(PRODUCERS + CONSUMERS + 1)
    each = total // PRODUCERS
    producers = [multiprocessing.Process(target=produce, args=(queue, each, size, barrier))
                 for _ in range(PRODUCERS)]
    consumers = [multiprocessing.Process(target=consume, args=(queue, barrier, totals))
                 for _ in range(CONSUMERS)]
    for p in producers + consumers:
        p.start()
    barrier.wait()
    t0 = clock()
    for p in producers:
        p.join()
    for _ in consumers:
        queue.put(None)
    received = sum(totals.get() for _ in consumers)
    took = clock() - t0
    for p in consumers:
        p.join()
    if received != each * PRODUCERS * size:
        raise SystemExit(f"received {received} of {each * PRODUCERS * size} bytes")
    return each * PRODUCERS / took


def main():
    measure("py_queue_64B_2to2", "msgs/s", lambda: rate(200_000, 64))


if __name__ == "__main__":
    main()

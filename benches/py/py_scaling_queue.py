"""multiprocessing.Queue throughput, N producer processes -> M consumer processes.

    py_queue_64B_<N>to<M>  50,000 messages of 64 bytes in all -> msgs/s
for (N, M) in (1,1), (2,2), (4,4), (8,1), (1,8). All are forked children meeting the
parent at a Barrier; the parent's clock runs from the barrier until every consumer has
reported what it received. After the producers are joined the parent puts one None
per consumer, so the time includes draining every message.
"""
import multiprocessing

from _bench import clock, measure

SHAPES = ((1, 1), (2, 2), (4, 4), (8, 1), (1, 8))
COUNT = 50_000


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


def rate(producers, consumers, total, size):
    queue, totals = multiprocessing.Queue(), multiprocessing.Queue()
    barrier = multiprocessing.Barrier(producers + consumers + 1)
    each = total // producers
    prods = [multiprocessing.Process(target=produce, args=(queue, each, size, barrier))
             for _ in range(producers)]
    cons = [multiprocessing.Process(target=consume, args=(queue, barrier, totals))
            for _ in range(consumers)]
    for p in prods + cons:
        p.start()
    barrier.wait()
    t0 = clock()
    for p in prods:
        p.join()
    for _ in cons:
        queue.put(None)
    received = sum(totals.get() for _ in cons)
    took = clock() - t0
    for p in cons:
        p.join()
    if received != each * producers * size:
        raise SystemExit(f"received {received} of {each * producers * size} bytes")
    return each * producers / took


def main():
    for producers, consumers in SHAPES:
        measure(f"py_queue_64B_{producers}to{consumers}", "msgs/s",
                lambda: rate(producers, consumers, COUNT, 64))


if __name__ == "__main__":
    main()

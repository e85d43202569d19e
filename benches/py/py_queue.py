"""multiprocessing.Queue throughput, one producer process -> the parent as consumer.

    py_queue_64B   200,000 messages of 64 bytes -> msgs/s
    py_queue_1MiB  500 messages of 1 MiB -> MB/s (1e6 bytes)
The producer (a forked child) builds its message, says it is ready and waits for the
start signal; the parent's clock runs from that signal to its last get().
"""
import multiprocessing

from _bench import clock, measure


def produce(queue, count, size, ready, start):
    message = bytes(size)
    ready.set()
    start.wait()
    for _ in range(count):
        queue.put(message)
    queue.close()
    queue.join_thread()


def transfer_seconds(count, size):
    queue = multiprocessing.Queue()
    ready, start = multiprocessing.Event(), multiprocessing.Event()
    producer = multiprocessing.Process(target=produce, args=(queue, count, size, ready, start))
    producer.start()
    ready.wait()
    received = 0
    t0 = clock()
    start.set()
    for _ in range(count):
        received += len(queue.get())
    took = clock() - t0
    producer.join()
    if received != count * size or producer.exitcode != 0:
        raise SystemExit(f"received {received} of {count * size} bytes, exit code {producer.exitcode}")
    return took


def main():
    measure("py_queue_64B", "msgs/s", lambda: 200_000 / transfer_seconds(200_000, 64))
    measure("py_queue_1MiB", "MB/s", lambda: 500 * (1 << 20) / transfer_seconds(500, 1 << 20) / 1e6)


if __name__ == "__main__":
    main()

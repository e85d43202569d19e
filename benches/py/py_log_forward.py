"""multiprocessing.Pool(2) whose tasks log, with the logging cookbook's QueueHandler
recipe: each worker's root logger has a QueueHandler on a multiprocessing.Queue, the
parent runs a QueueListener whose handler counts the records (formatting each
message, as a handler that writes it would).

    py_pool2_map_logging    pool.map over range(100,000), default chunksize, each task
                            logging one line at INFO; a sample ends once every result
                            and every record is in -> tasks/s
"""
import logging
import logging.handlers
import multiprocessing
import threading

from _bench import clock, measure

TASKS = 100_000


class Counting(logging.Handler):
    def __init__(self):
        super().__init__()
        self.count = 0
        self.changed = threading.Condition()

    def emit(self, record):
        record.getMessage()
        with self.changed:
            self.count += 1
            self.changed.notify_all()

    def wait_for(self, n):
        with self.changed:
            self.changed.wait_for(lambda: self.count >= n, timeout=600)
            return self.count


def init(queue):
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(queue)]
    root.setLevel(logging.INFO)


def logged_square(x):
    logging.info("squaring %d", x)
    return x * x


def sample(pool, counter):
    start = counter.count
    t0 = clock()
    results = pool.map(logged_square, range(TASKS))
    got = counter.wait_for(start + TASKS) - start
    took = clock() - t0
    assert len(results) == TASKS and got == TASKS, (len(results), got)
    return TASKS / took


def main():
    queue = multiprocessing.Queue()
    counter = Counting()
    listener = logging.handlers.QueueListener(queue, counter)
    listener.start()
    with multiprocessing.Pool(2, initializer=init, initargs=(queue,)) as pool:
        pool.map(logged_square, range(1000))  # both workers started and warm
        counter.wait_for(1000)
        measure("py_pool2_map_logging", "tasks/s", lambda: sample(pool, counter))
    listener.stop()


if __name__ == "__main__":
    main()

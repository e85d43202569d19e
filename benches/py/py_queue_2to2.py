"""multiprocessing.Queue throughput, two producer processes -> two consumer processes.

    py_queue_64B_2to2  200,000 messages of 64 bytes in all -> msgs/s
The workload of py_scaling_queue.py (its `rate`) at the 2->2 shape with more messages:
all four are forked children meeting the parent at a Barrier; the parent's clock runs
from the barrier until both consumers have reported what they received, draining
included.
"""
from _bench import measure
from py_scaling_queue import rate


def main():
    measure("py_queue_64B_2to2", "msgs/s", lambda: rate(2, 2, 200_000, 64))


if __name__ == "__main__":
    main()

"""The analysis example's computation in Python: multiprocessing.Pool + the csv module.

Usage: python3 py_analysis.py FILE.csv [WORKERS]

Companion of examples/analysis.rs and benches/src/programs.rs (harness _bench.py). The
same work on the same file: the file is split into byte ranges as the example splits it
(about 8 per worker, 1 to 8 MiB each); each task parses
the lines that start in its range with csv.reader and returns per-(zone, hour) trip
counts and fare/distance sums (integer cents and tens of metres) and per-zone and
per-hour fare histograms (10-cent bins, 2000 bins); the parent merges them.
  py_analysis_s     : seconds for the whole computation with Pool(WORKERS)
  py_analysis_rows  : valid rows counted (both sides must do the same work)
"""
import csv
import io
import multiprocessing as mp
import os
import sys

from _bench import SAMPLES, clock, emit

ZONES, HOURS, BIN_CENTS, BINS = 64, 24, 10, 2000


def hundredths(s):
    """'12.75' -> 1275; None when it is not a non-negative number with <= 2 decimals."""
    whole, _, frac = s.partition(".")
    if not whole.isdigit() or len(frac) > 2 or (frac and not frac.isdigit()):
        return None
    return int(whole) * 100 + (int(frac.ljust(2, "0")) if frac else 0)


def lines_starting_in(path, start, end):
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        end = min(end, size)
        if start >= end:
            return b""
        begin = max(start - 1, 0)
        f.seek(begin)
        buf = f.read(end - begin)
        if not buf.endswith(b"\n"):
            buf += f.readline()
    cut = buf.find(b"\n")
    return buf[cut + 1:] if cut >= 0 else b""


def aggregate(task):
    path, start, end = task
    cells = [0] * (ZONES * HOURS * 3)
    zone_fares = [0] * (ZONES * BINS)
    hour_fares = [0] * (HOURS * BINS)
    rejected = 0
    text = lines_starting_in(path, start, end).decode("ascii", "replace")
    for rec in csv.reader(io.StringIO(text)):
        try:
            ts, zone, dist, fare = rec
            if len(ts) != 19 or ts[10] != "T" or len(zone) != 3 or zone[0] != "Z":
                raise ValueError
            hour, z = int(ts[11:13]), int(zone[1:])
            d, c = hundredths(dist), hundredths(fare)
            if d is None or c is None or hour >= HOURS or z >= ZONES:
                raise ValueError
        except ValueError:
            rejected += 1
            continue
        i = (z * HOURS + hour) * 3
        cells[i] += 1
        cells[i + 1] += c
        cells[i + 2] += d
        b = min(c // BIN_CENTS, BINS - 1)
        zone_fares[z * BINS + b] += 1
        hour_fares[hour * BINS + b] += 1
    return cells, zone_fares, hour_fares, rejected


def run(path, workers):
    size = os.path.getsize(path)
    chunk = min(max(size // (8 * workers), 1 << 20), 8 << 20)
    tasks = [(path, s, min(s + chunk, size)) for s in range(0, size, chunk)]
    start = clock()
    total = None
    with mp.Pool(workers) as pool:
        for part in pool.imap_unordered(aggregate, tasks):
            if total is None:
                total = list(part)
            else:
                for k in range(3):
                    total[k] = [a + b for a, b in zip(total[k], part[k])]
                total[3] += part[3]
    return clock() - start, sum(total[0][0::3])


if __name__ == "__main__":
    path = sys.argv[1]
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    samples, rows = [], 0
    for _ in range(SAMPLES):
        elapsed, rows = run(path, workers)
        samples.append(elapsed)
    emit("py_analysis_s", "s", samples)
    emit("py_analysis_rows", "rows", [rows])

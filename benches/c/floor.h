/* floor.h: the harness of mproc's OS-floor programs (benches/c/os_*.c).
 *
 * Each program measures what the operating system and the hardware allow for one kind
 * of work, so that mproc's figures can be read against it. It takes REPEATS samples of
 * each figure (environment, default 3, at most 64) and prints
 *   stdout: <figure>\t<median of the samples>\t<unit>
 *   stderr: #spread\t<figure>\t<min>\t<median>\t<max>\t<unit>\tn=<samples>
 * which is what benches/src/anchors.rs parses. Any failure exits non-zero with a
 * "floor: ..." line on stderr. Built by the bench crate as
 *   $CC -O2 -Wall -Wextra -pthread -o <out> <prog>.c -lrt
 */
#ifndef MPROC_FLOOR_H
#define MPROC_FLOOR_H

#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FLOOR_MAX_SAMPLES 64

/* Monotonic clock in seconds. */
static inline double floor_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void floor_fail(const char *what) {
    fprintf(stderr, "floor: %s failed: %s\n", what, errno ? strerror(errno) : "(no errno)");
    exit(1);
}

/* Samples per figure: REPEATS, clamped to 1..FLOOR_MAX_SAMPLES. */
static int floor_samples(void) {
    const char *s = getenv("REPEATS");
    long n = s && *s ? strtol(s, NULL, 10) : 3;
    if (n < 1) n = 1;
    if (n > FLOOR_MAX_SAMPLES) n = FLOOR_MAX_SAMPLES;
    return (int)n;
}

static int floor_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Prints the median of v[0..n) and its spread. Reorders v. */
static void floor_emit(const char *figure, const char *unit, double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, floor_cmp);
    double mid = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    printf("%s\t%.6g\t%s\n", figure, mid, unit);
    fflush(stdout);
    fprintf(stderr, "#spread\t%s\t%.6g\t%.6g\t%.6g\t%s\tn=%d\n", figure, v[0], mid, v[n - 1], unit, n);
}

/* One sample of a figure: returns the figure's value. */
typedef double (*floor_sample_fn)(const void *arg);

/* Takes floor_samples() samples of `sample(arg)` and prints the figure. */
static void floor_measure(const char *figure, const char *unit, floor_sample_fn sample, const void *arg) {
    double v[FLOOR_MAX_SAMPLES];
    int n = floor_samples();
    for (int i = 0; i < n; i++) v[i] = sample(arg);
    floor_emit(figure, unit, v, n);
}

/* Pins the calling process to `cpu`; a negative cpu leaves it free. */
__attribute__((unused)) static void floor_pin(int cpu) {
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set)) floor_fail("sched_setaffinity");
}

/* Lets the calling process run on every online CPU again. */
__attribute__((unused)) static void floor_unpin(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    for (long c = 0; c < cpus && c < CPU_SETSIZE; c++) CPU_SET(c, &set);
    (void)sched_setaffinity(0, sizeof set, &set);
}

/* Where the two sides of a ping-pong run: free, both on CPU 0, or on CPUs 0 and 1.
 * The suffix is appended to the figure's name. */
struct floor_placement {
    const char *suffix;
    int parent, child;
};
static const struct floor_placement FLOOR_PLACEMENTS[3] __attribute__((unused)) = {
    {"", -1, -1},
    {"_samecpu", 0, 0},
    {"_crosscpu", 0, 1},
};

#endif

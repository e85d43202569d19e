/* CPU scaling floor: how much faster two processes finish two equal pieces of pure
 * computation than one process doing both, on this machine.
 *   os_cpu_speedup_2proc  T(2 pieces, one after the other, in this process) /
 *                         T(2 forked children, one piece each, at once) -> x (ideal 2)
 * A piece is about 0.2 s of a dependent integer chain (xorshift and multiply): ALU
 * only, no memory traffic, so the figure is what the CPUs themselves allow.
 */
#include "floor.h"
#include <stdint.h>
#include <sys/wait.h>

#define STEPS 150000000ull

static volatile uint64_t keep; /* the result goes somewhere, so the chain runs */

static uint64_t piece(uint64_t seed) {
    uint64_t x = seed * 2 + 1, sum = 0;
    for (uint64_t i = 0; i < STEPS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sum += x * 0x9E3779B97F4A7C15ull;
    }
    return sum;
}

static double speedup(const void *arg) {
    (void)arg;
    double start = floor_now();
    keep = piece(11);
    keep = piece(12);
    double serial = floor_now() - start;
    start = floor_now();
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        if (kids[k] < 0) floor_fail("fork");
        if (kids[k] == 0) {
            keep = piece(13 + (uint64_t)k);
            _exit(0);
        }
    }
    for (int k = 0; k < 2; k++) {
        int status;
        if (waitpid(kids[k], &status, 0) != kids[k] || !WIFEXITED(status)) floor_fail("a child");
    }
    return serial / (floor_now() - start);
}

int main(void) {
    keep = piece(10); /* warm-up: a vCPU that was idle runs slow at first */
    floor_measure("os_cpu_speedup_2proc", "x", speedup, NULL);
    return 0;
}

/* Shared-memory handoff floor: a "ball" word in a MAP_SHARED page between a parent and
 * a forked child. The parent serves by storing 1 and waits for 0; the child waits for 1
 * and returns 0. One round trip = one serve and one return.
 *   os_futex_pingpong[_samecpu|_crosscpu]  the waiter sleeps in FUTEX_WAIT at once, without
 *       spinning -> us/roundtrip (free / both on CPU 0 / on CPUs 0 and 1)
 *   os_spin_pingpong_crosscpu  both sides spin on the word, pinned to CPUs 0 and 1:
 *       the cache-line round trip -> ns/roundtrip
 *   os_spin_then_futex_pingpong  spin up to 20,000 pauses, then sleep; the other side
 *       wakes only when a sleeper announced itself (a hybrid lock's fast path), free
 *       -> ns/roundtrip
 * In every style a side calls FUTEX_WAKE only when the other announced itself asleep.
 */
#include "floor.h"
#include <linux/futex.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

struct court {
    _Alignas(64) atomic_int ball;
    _Alignas(64) atomic_int sleepers; /* sides inside FUTEX_WAIT (or about to be) */
};

enum style { SLEEP, SPIN, SPIN_THEN_SLEEP };

struct game {
    struct court *court;
    enum style style;
    int trips, warm;
    int parent_cpu, child_cpu;
    double scale; /* seconds -> the figure's unit */
};

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static void futex_wait(atomic_int *w, int expected) {
    syscall(SYS_futex, (int *)w, FUTEX_WAIT, expected, NULL, NULL, 0);
}

static void futex_wake(atomic_int *w) {
    syscall(SYS_futex, (int *)w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* Waits until the ball is no longer `mine`. */
static void await_change(struct court *c, int mine, enum style style) {
    if (style != SLEEP) {
        int spins = style == SPIN ? -1 : 20000;
        for (int i = 0; spins < 0 || i < spins; i++) {
            if (atomic_load_explicit(&c->ball, memory_order_acquire) != mine) return;
            relax();
        }
    }
    while (atomic_load(&c->ball) == mine) {
        atomic_fetch_add(&c->sleepers, 1);
        /* seq_cst increment then re-check: a store after our check sees the count. */
        if (atomic_load(&c->ball) == mine) futex_wait(&c->ball, mine);
        atomic_fetch_sub(&c->sleepers, 1);
    }
}

static void hand_over(struct court *c, int value) {
    /* seq_cst store then load: pairs with await_change's increment then re-check. */
    atomic_store(&c->ball, value);
    if (atomic_load(&c->sleepers) > 0) futex_wake(&c->ball);
}

static double play(const void *arg) {
    const struct game *g = arg;
    struct court *c = g->court;
    atomic_store(&c->ball, 0);
    atomic_store(&c->sleepers, 0);
    int total = g->warm + g->trips;
    pid_t pid = fork();
    if (pid < 0) floor_fail("fork");
    if (pid == 0) {
        floor_pin(g->child_cpu);
        for (int i = 0; i < total; i++) {
            await_change(c, 0, g->style);
            hand_over(c, 0);
        }
        _exit(0);
    }
    floor_pin(g->parent_cpu);
    double start = 0;
    for (int i = 0; i < total; i++) {
        if (i == g->warm) start = floor_now();
        hand_over(c, 1);
        await_change(c, 1, g->style);
    }
    double took = floor_now() - start;
    floor_unpin();
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
        floor_fail("the child");
    return took / g->trips * g->scale;
}

int main(void) {
    struct court *c = mmap(NULL, sizeof *c, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (c == MAP_FAILED) floor_fail("mmap");
    for (int k = 0; k < 3; k++) {
        const struct floor_placement *p = &FLOOR_PLACEMENTS[k];
        struct game g = {c, SLEEP, 20000, 1000, p->parent, p->child, 1e6};
        char name[64];
        snprintf(name, sizeof name, "os_futex_pingpong%s", p->suffix);
        floor_measure(name, "us/roundtrip", play, &g);
    }
    struct game spin = {c, SPIN, 2000000, 1000, 0, 1, 1e9};
    floor_measure("os_spin_pingpong_crosscpu", "ns/roundtrip", play, &spin);
    struct game hybrid = {c, SPIN_THEN_SLEEP, 1000000, 1000, -1, -1, 1e9};
    floor_measure("os_spin_then_futex_pingpong", "ns/roundtrip", play, &hybrid);
    return 0;
}

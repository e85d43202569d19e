/* Contended lock floor: N processes (1, 2, 4, 8) share one PTHREAD_PROCESS_SHARED mutex in a
 * MAP_SHARED page; each does its share of 2 million lock + increment + unlock, starting
 * together at a process-shared barrier. Total pairs per second from the first start to the
 * last finish -> ops/s.
 *   os_pshared_mutex_<N>proc
 */
#include "floor.h"
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define OPS 2000000
#define MAXP 8

struct shared {
    _Alignas(64) pthread_mutex_t mutex;
    _Alignas(64) uint64_t counter;
    _Alignas(64) pthread_barrier_t go;
    _Alignas(64) double start[MAXP], end[MAXP];
};

static struct shared *S;

static double rate(const void *arg) {
    int procs = *(const int *)arg;
    long each = OPS / procs;
    pthread_barrierattr_t ba;
    pthread_barrierattr_init(&ba);
    pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
    if (pthread_barrier_init(&S->go, &ba, (unsigned)procs)) floor_fail("pthread_barrier_init");
    S->counter = 0;
    for (int p = 0; p < procs; p++) {
        pid_t pid = fork();
        if (pid < 0) floor_fail("fork");
        if (pid == 0) {
            pthread_barrier_wait(&S->go);
            S->start[p] = floor_now();
            for (long i = 0; i < each; i++) {
                if (pthread_mutex_lock(&S->mutex)) _exit(3);
                S->counter++;
                pthread_mutex_unlock(&S->mutex);
            }
            S->end[p] = floor_now();
            _exit(0);
        }
    }
    for (int p = 0; p < procs; p++) {
        int st;
        if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) floor_fail("child");
    }
    pthread_barrier_destroy(&S->go);
    if (S->counter != (uint64_t)(each * procs)) floor_fail("counter check");
    double t0 = S->start[0], t1 = S->end[0];
    for (int p = 1; p < procs; p++) {
        if (S->start[p] < t0) t0 = S->start[p];
        if (S->end[p] > t1) t1 = S->end[p];
    }
    return (double)(each * procs) / (t1 - t0);
}

int main(void) {
    S = mmap(NULL, sizeof *S, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (S == MAP_FAILED) floor_fail("mmap");
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (pthread_mutex_init(&S->mutex, &attr)) floor_fail("pthread_mutex_init");
    static const int PROCS[] = {1, 2, 4, 8};
    char name[64];
    for (unsigned i = 0; i < sizeof PROCS / sizeof PROCS[0]; i++) {
        snprintf(name, sizeof name, "os_pshared_mutex_%dproc", PROCS[i]);
        floor_measure(name, "ops/s", rate, &PROCS[i]);
    }
    return 0;
}

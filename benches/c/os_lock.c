/* Uncontended lock floor: one lock plus one unlock of an object in a MAP_SHARED page,
 * by one process with no other user, the fast path a cross-process lock must match
 * -> ns/op (an op = lock + unlock; 20 million ops a sample).
 *   os_pshared_mutex_lock_unlock  pthread_mutex_t with PTHREAD_PROCESS_SHARED
 *   os_psem_wait_post             sem_t with pshared = 1 (CPython's multiprocessing.Lock)
 *   os_atomic_spinlock            atomic exchange to take, release store to give back
 */
#include "floor.h"
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/mman.h>

#define OPS 20000000

struct locks {
    _Alignas(64) pthread_mutex_t mutex;
    _Alignas(64) sem_t sem;
    _Alignas(64) atomic_int spin;
};

static struct locks *L;

static double mutex_ns(const void *arg) {
    (void)arg;
    double start = floor_now();
    for (int i = 0; i < OPS; i++) {
        if (pthread_mutex_lock(&L->mutex)) floor_fail("pthread_mutex_lock");
        __asm__ volatile("" ::: "memory");
        pthread_mutex_unlock(&L->mutex);
    }
    return (floor_now() - start) / OPS * 1e9;
}

static double sem_ns(const void *arg) {
    (void)arg;
    double start = floor_now();
    for (int i = 0; i < OPS; i++) {
        if (sem_wait(&L->sem)) floor_fail("sem_wait");
        __asm__ volatile("" ::: "memory");
        sem_post(&L->sem);
    }
    return (floor_now() - start) / OPS * 1e9;
}

static double spin_ns(const void *arg) {
    (void)arg;
    double start = floor_now();
    for (int i = 0; i < OPS; i++) {
        while (atomic_exchange_explicit(&L->spin, 1, memory_order_acquire)) {
        }
        __asm__ volatile("" ::: "memory");
        atomic_store_explicit(&L->spin, 0, memory_order_release);
    }
    return (floor_now() - start) / OPS * 1e9;
}

int main(void) {
    L = mmap(NULL, sizeof *L, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (L == MAP_FAILED) floor_fail("mmap");
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (pthread_mutex_init(&L->mutex, &attr)) floor_fail("pthread_mutex_init");
    if (sem_init(&L->sem, 1, 1)) floor_fail("sem_init");
    atomic_init(&L->spin, 0);
    mutex_ns(NULL); /* warm-up */
    floor_measure("os_pshared_mutex_lock_unlock", "ns/op", mutex_ns, NULL);
    floor_measure("os_psem_wait_post", "ns/op", sem_ns, NULL);
    floor_measure("os_atomic_spinlock", "ns/op", spin_ns, NULL);
    return 0;
}

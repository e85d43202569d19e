/* Message-passing floor: how fast two processes on this machine's CPUs can pass 64-byte
 * messages through shared memory with no locking at all. One producer and one consumer
 * (forked) share a 128 KiB ring of 72-byte records (an 8-byte sequence stamp, then the
 * payload) in a MAP_SHARED mapping. The producer copies each message in and publishes it
 * with a release store of its stamp; the consumer waits for the stamp (acquire), copies
 * the payload out and publishes its position with a release store, which the producer
 * reads only when the ring looks full. No read-modify-write anywhere: this is the
 * hardware's cost of moving the lines between the two CPUs, which every queue pays and
 * which changes a lot with where the host places the two vCPUs.
 *   os_ring_64B_1to1         the payload copied into a stack buffer on each side
 *   os_ring_64B_1to1_alloc   each side allocates and frees a 64-byte buffer per message,
 *                            as a Rust program sending `Vec<u8>`s does (mproc's bench)
 * Messages per second from the producer's start to the consumer's last message.
 */
#include "floor.h"
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define RING_BYTES (128u * 1024u)
#define RECORD 72u
#define SLOTS (RING_BYTES / RECORD)
#define MESSAGES 2000000L

struct shared {
    _Alignas(64) _Atomic uint64_t head; /* messages consumed (consumer writes) */
    _Alignas(64) _Atomic int go;
    _Alignas(64) double start, end;
    _Alignas(4096) unsigned char ring[SLOTS * RECORD];
};

static struct shared *S;

static _Atomic uint64_t *stamp(uint64_t i) {
    return (_Atomic uint64_t *)&S->ring[(i % SLOTS) * RECORD];
}

static void producer(int alloc) {
    unsigned char msg[64];
    memset(msg, 7, sizeof msg);
    uint64_t seen_head = 0;
    while (!atomic_load(&S->go)) {
    }
    S->start = floor_now();
    for (uint64_t i = 0; i < (uint64_t)MESSAGES; i++) {
        unsigned char *m = msg;
        if (alloc) {
            m = malloc(64);
            if (!m) floor_fail("malloc");
            memset(m, 7, 64);
        }
        while (i - seen_head >= SLOTS) seen_head = atomic_load_explicit(&S->head, memory_order_acquire);
        memcpy(&S->ring[(i % SLOTS) * RECORD + 8], m, 64);
        atomic_store_explicit(stamp(i), i + 1, memory_order_release);
        if (alloc) free(m);
    }
}

static void consumer(int alloc) {
    unsigned char buf[64];
    uint64_t sum = 0;
    while (!atomic_load(&S->go)) {
    }
    for (uint64_t i = 0; i < (uint64_t)MESSAGES; i++) {
        while (atomic_load_explicit(stamp(i), memory_order_acquire) != i + 1) __builtin_ia32_pause();
        unsigned char *m = buf;
        if (alloc) {
            m = malloc(64);
            if (!m) floor_fail("malloc");
        }
        memcpy(m, &S->ring[(i % SLOTS) * RECORD + 8], 64);
        atomic_store_explicit(&S->head, i + 1, memory_order_release);
        __asm__ volatile("" : : "r"(m) : "memory");
        sum += m[0] + m[63];
        if (alloc) free(m);
    }
    S->end = floor_now();
    if (sum != 14u * (uint64_t)MESSAGES) _exit(3);
}

static double rate(const void *arg) {
    int alloc = *(const int *)arg;
    memset(S, 0, sizeof *S);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        if (kids[k] < 0) floor_fail("fork");
        if (kids[k] == 0) {
            if (k == 0) consumer(alloc);
            else producer(alloc);
            _exit(0);
        }
    }
    atomic_store(&S->go, 1);
    for (int k = 0; k < 2; k++) {
        int st;
        if (waitpid(kids[k], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) floor_fail("child");
    }
    return (double)MESSAGES / (S->end - S->start);
}

int main(void) {
    S = mmap(NULL, sizeof *S, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (S == MAP_FAILED) floor_fail("mmap");
    static const int PLAIN = 0, ALLOC = 1;
    floor_measure("os_ring_64B_1to1", "msgs/s", rate, &PLAIN);
    floor_measure("os_ring_64B_1to1_alloc", "msgs/s", rate, &ALLOC);
    return 0;
}

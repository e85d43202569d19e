/* memcpy floor for moving bulk data: 64 MiB copies in one thread -> GB/s (1e9 bytes
 * copied per second, each byte counted once).
 *   os_memcpy_64MiB_hot             both buffers already faulted in; 10 copies a sample
 *   os_memcpy_64MiB_fresh_anon      into a new private anonymous mapping each time, so the
 *                                   copy pays the page faults (mmap..munmap timed)
 *   os_memcpy_64MiB_fresh_anon_thp  the same with MADV_HUGEPAGE on the new mapping
 *   os_memcpy_64MiB_fresh_memfd     into a new memfd mapped MAP_SHARED (what a new shared
 *                                   memory segment costs on first write)
 */
#include "floor.h"
#include <sys/mman.h>

#define SIZE ((size_t)64 << 20)

enum target { HOT, FRESH_ANON, FRESH_ANON_THP, FRESH_MEMFD };

struct copy {
    enum target target;
    const char *src;
    char *hot_dst;
    int times;
};

static void *fresh_destination(enum target t, int *fd) {
    void *p;
    *fd = -1;
    if (t == FRESH_MEMFD) {
        *fd = memfd_create("mproc-floor", MFD_CLOEXEC);
        if (*fd < 0) floor_fail("memfd_create");
        if (ftruncate(*fd, (off_t)SIZE)) floor_fail("ftruncate");
        p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
    } else {
        p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        /* Best effort: where THP is off the figure equals fresh_anon. */
        if (p != MAP_FAILED && t == FRESH_ANON_THP) (void)madvise(p, SIZE, MADV_HUGEPAGE);
    }
    if (p == MAP_FAILED) floor_fail("mmap");
    return p;
}

static double copy_gbs(const void *arg) {
    const struct copy *c = arg;
    double start = floor_now();
    for (int i = 0; i < c->times; i++) {
        int fd = -1;
        char *dst = c->target == HOT ? c->hot_dst : fresh_destination(c->target, &fd);
        memcpy(dst, c->src, SIZE);
        /* Keep the compiler from dropping a copy nobody reads. */
        __asm__ volatile("" : : "r"(dst) : "memory");
        if (c->target != HOT) {
            munmap(dst, SIZE);
            if (fd >= 0) close(fd);
        }
    }
    return (double)SIZE * c->times / (floor_now() - start) / 1e9;
}

int main(void) {
    char *src = malloc(SIZE), *dst = malloc(SIZE);
    if (!src || !dst) floor_fail("malloc");
    memset(src, 0x5a, SIZE);
    memset(dst, 0, SIZE);
    struct copy warm = {HOT, src, dst, 2};
    copy_gbs(&warm);
    struct copy hot = {HOT, src, dst, 10};
    floor_measure("os_memcpy_64MiB_hot", "GB/s", copy_gbs, &hot);
    struct copy anon = {FRESH_ANON, src, NULL, 5};
    floor_measure("os_memcpy_64MiB_fresh_anon", "GB/s", copy_gbs, &anon);
    struct copy thp = {FRESH_ANON_THP, src, NULL, 5};
    floor_measure("os_memcpy_64MiB_fresh_anon_thp", "GB/s", copy_gbs, &thp);
    struct copy memfd = {FRESH_MEMFD, src, NULL, 5};
    floor_measure("os_memcpy_64MiB_fresh_memfd", "GB/s", copy_gbs, &memfd);
    return 0;
}

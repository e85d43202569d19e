/* Unix stream socket floor (multiprocessing.Pipe() and mproc's pipes are socket pairs).
 *   os_uds_pingpong_1B[_samecpu|_crosscpu]  one byte each way between a parent and a
 *       forked child over a socketpair, free / both on CPU 0 / on CPUs 0 and 1
 *       -> us/roundtrip (20,000 timed round trips after 100 untimed ones)
 *   os_uds_bw_1MiB_writes  the child writes 1 GiB in 1 MiB write()s, the parent reads
 *       into a 1 MiB buffer; default socket buffers -> GB/s (1e9 bytes)
 */
#include "floor.h"
#include <sys/socket.h>
#include <sys/wait.h>

#define TRIPS 20000
#define WARM 100
#define BLOCK (1 << 20)
#define VOLUME (1ll << 30)

static void full_read(int fd, void *buf, size_t len) {
    char *p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) floor_fail("read");
        p += n;
        len -= (size_t)n;
    }
}

static void full_write(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) floor_fail("write");
        p += n;
        len -= (size_t)n;
    }
}

static void reap(pid_t pid) {
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
        floor_fail("the child");
}

static double pingpong_us(const void *arg) {
    const struct floor_placement *where = arg;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) floor_fail("socketpair");
    pid_t pid = fork();
    if (pid < 0) floor_fail("fork");
    char ball = 'b';
    if (pid == 0) {
        close(sv[0]);
        floor_pin(where->child);
        for (int i = 0; i < WARM + TRIPS; i++) {
            full_read(sv[1], &ball, 1);
            full_write(sv[1], &ball, 1);
        }
        _exit(0);
    }
    close(sv[1]);
    floor_pin(where->parent);
    double start = 0;
    for (int i = 0; i < WARM + TRIPS; i++) {
        if (i == WARM) start = floor_now();
        full_write(sv[0], &ball, 1);
        full_read(sv[0], &ball, 1);
    }
    double took = floor_now() - start;
    floor_unpin();
    reap(pid);
    close(sv[0]);
    return took / TRIPS * 1e6;
}

static double bandwidth_gbs(const void *arg) {
    (void)arg;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) floor_fail("socketpair");
    char *buf = malloc(BLOCK);
    if (!buf) floor_fail("malloc");
    memset(buf, 'w', BLOCK);
    pid_t pid = fork();
    if (pid < 0) floor_fail("fork");
    if (pid == 0) {
        close(sv[0]);
        char go;
        full_read(sv[1], &go, 1);
        for (long long sent = 0; sent < VOLUME; sent += BLOCK) full_write(sv[1], buf, BLOCK);
        _exit(0);
    }
    close(sv[1]);
    double start = floor_now();
    full_write(sv[0], "g", 1);
    long long got = 0;
    for (;;) {
        ssize_t n = read(sv[0], buf, BLOCK);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) floor_fail("read");
        if (n == 0) break;
        got += n;
    }
    double took = floor_now() - start;
    reap(pid);
    close(sv[0]);
    free(buf);
    if (got != VOLUME) {
        fprintf(stderr, "floor: received %lld of %lld bytes\n", got, VOLUME);
        exit(1);
    }
    return (double)VOLUME / took / 1e9;
}

int main(void) {
    for (int k = 0; k < 3; k++) {
        char name[64];
        snprintf(name, sizeof name, "os_uds_pingpong_1B%s", FLOOR_PLACEMENTS[k].suffix);
        floor_measure(name, "us/roundtrip", pingpong_us, &FLOOR_PLACEMENTS[k]);
    }
    floor_measure("os_uds_bw_1MiB_writes", "GB/s", bandwidth_gbs, NULL);
    return 0;
}

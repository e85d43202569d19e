/* TCP loopback floor (mproc's manager over TCP, Python's BaseManager): a 64-byte request
 * and a 64-byte reply between a parent and a forked child over 127.0.0.1, TCP_NODELAY on
 * both ends. One round trip = the parent writes 64 bytes, the child reads them and writes
 * 64 bytes back, the parent reads them.
 *   os_tcp_pingpong_64B       both sides block in read() -> roundtrips/s
 *   os_tcp_pingpong_64B_spin  both sides poll with recv(MSG_DONTWAIT), yielding the CPU
 *       between looks, and never sleep in recv: what a round trip costs when neither side has
 *       to be woken -> roundtrips/s (on a loaded machine, or with both on one CPU, it falls far
 *       below the blocking figure: the peer waits for the CPU the poller holds)
 * 20,000 timed round trips after 200 untimed ones, the two processes unpinned.
 */
#include "floor.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define TRIPS 20000
#define WARM 200
#define MSG 64

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

/* Reads exactly `len` bytes, blocking or polling. */
static void full_read(int fd, void *buf, size_t len, int spin) {
    char *p = buf;
    while (len) {
        ssize_t n = recv(fd, p, len, spin ? MSG_DONTWAIT : 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && spin && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            sched_yield();
            continue;
        }
        if (n <= 0) floor_fail("recv");
        p += n;
        len -= (size_t)n;
    }
}

static void nodelay(int fd) {
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one)) floor_fail("TCP_NODELAY");
}

/* A connected pair of TCP sockets over 127.0.0.1. */
static void tcp_pair(int sv[2]) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0) floor_fail("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a)) floor_fail("bind");
    if (listen(l, 1)) floor_fail("listen");
    if (getsockname(l, (struct sockaddr *)&a, &alen)) floor_fail("getsockname");
    sv[0] = socket(AF_INET, SOCK_STREAM, 0);
    if (sv[0] < 0) floor_fail("socket");
    if (connect(sv[0], (struct sockaddr *)&a, sizeof a)) floor_fail("connect");
    sv[1] = accept(l, NULL, NULL);
    if (sv[1] < 0) floor_fail("accept");
    close(l);
    nodelay(sv[0]);
    nodelay(sv[1]);
}

static double pingpong_per_s(const void *arg) {
    int spin = *(const int *)arg;
    int sv[2];
    tcp_pair(sv);
    pid_t pid = fork();
    if (pid < 0) floor_fail("fork");
    char msg[MSG];
    memset(msg, 'm', sizeof msg);
    if (pid == 0) {
        close(sv[0]);
        for (int i = 0; i < WARM + TRIPS; i++) {
            full_read(sv[1], msg, MSG, spin);
            full_write(sv[1], msg, MSG);
        }
        _exit(0);
    }
    close(sv[1]);
    double start = 0;
    for (int i = 0; i < WARM + TRIPS; i++) {
        if (i == WARM) start = floor_now();
        full_write(sv[0], msg, MSG);
        full_read(sv[0], msg, MSG, spin);
    }
    double took = floor_now() - start;
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
        floor_fail("the child");
    close(sv[0]);
    return TRIPS / took;
}

int main(void) {
    static const int blocking = 0, spinning = 1;
    floor_measure("os_tcp_pingpong_64B", "roundtrips/s", pingpong_per_s, &blocking);
    floor_measure("os_tcp_pingpong_64B_spin", "roundtrips/s", pingpong_per_s, &spinning);
    return 0;
}

/* Process creation floor: the cheapest ways Linux offers to start a process and wait
 * for it, per process (us/process).
 *   os_fork_exit_waitpid       fork; the child calls _exit(0); waitpid
 *   os_vfork_exec_true_wait    vfork + execve("/bin/true") + waitpid
 *   os_posix_spawn_true_wait   posix_spawn("/bin/true") + waitpid
 *   os_fork_exec_true_wait     fork + execve("/bin/true") + waitpid
 *   os_fork_exec_static_wait   fork + execve(<static empty program>) + waitpid
 *   os_posix_spawn_static_wait posix_spawn(<static empty program>) + waitpid
 * /bin/true is dynamically linked (it pays the loader); the static program, built from
 * empty_main.c with -static, does not. Usage: os_spawn <static empty program>
 */
#include "floor.h"
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

enum how { FORK_EXIT, VFORK_EXEC, FORK_EXEC, POSIX_SPAWN };

struct job {
    enum how how;
    const char *path; /* the program to exec, unless FORK_EXIT */
    int count;        /* processes per sample */
};

static void wait_ok(pid_t pid) {
    int status;
    if (waitpid(pid, &status, 0) != pid) floor_fail("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "floor: child ended with status %#x\n", status);
        exit(1);
    }
}

/* Separate function so that vfork's borrowed stack frame holds nothing of the loop. */
static __attribute__((noinline)) pid_t start_one(const struct job *j) {
    char *argv[2] = {(char *)j->path, NULL};
    pid_t pid = -1;
    switch (j->how) {
    case FORK_EXIT:
        pid = fork();
        if (pid == 0) _exit(0);
        break;
    case VFORK_EXEC:
        pid = vfork();
        if (pid == 0) {
            execve(j->path, argv, environ);
            _exit(127);
        }
        break;
    case FORK_EXEC:
        pid = fork();
        if (pid == 0) {
            execve(j->path, argv, environ);
            _exit(127);
        }
        break;
    case POSIX_SPAWN: {
        int rc = posix_spawn(&pid, j->path, NULL, NULL, argv, environ);
        if (rc) {
            errno = rc;
            floor_fail("posix_spawn");
        }
        break;
    }
    }
    if (pid < 0) floor_fail("fork");
    return pid;
}

static double per_process_us(const void *arg) {
    const struct job *j = arg;
    double t = floor_now();
    for (int i = 0; i < j->count; i++) wait_ok(start_one(j));
    return (floor_now() - t) / j->count * 1e6;
}

static void figure(const char *name, enum how how, const char *path, int count) {
    struct job warm = {how, path, 20};
    per_process_us(&warm); /* page in the program and the kernel paths */
    struct job j = {how, path, count};
    floor_measure(name, "us/process", per_process_us, &j);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s <static empty program>\n", argv[0]);
        return 2;
    }
    const char *empty = argv[1], *truebin = "/bin/true";
    if (access(empty, X_OK) || access(truebin, X_OK)) floor_fail("access to the programs to exec");
    figure("os_fork_exit_waitpid", FORK_EXIT, NULL, 2000);
    figure("os_vfork_exec_true_wait", VFORK_EXEC, truebin, 500);
    figure("os_posix_spawn_true_wait", POSIX_SPAWN, truebin, 500);
    figure("os_fork_exec_true_wait", FORK_EXEC, truebin, 500);
    figure("os_fork_exec_static_wait", FORK_EXEC, empty, 1000);
    figure("os_posix_spawn_static_wait", POSIX_SPAWN, empty, 1000);
    return 0;
}

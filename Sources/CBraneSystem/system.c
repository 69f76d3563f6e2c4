#define _GNU_SOURCE
#include "brane_system.h"
#include "brane_wire.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int brane_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

int brane_pidfd_send_signal(int pidfd, int signal) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, signal, NULL, 0);
}

int brane_wait_pidfd(int pidfd, int options, int *code, int *status) {
    siginfo_t info = {0};
    int rc;
    do {
        rc = waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, options);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return -1;
    *code = info.si_pid == 0 ? 0 : info.si_code;
    *status = info.si_status;
    return 0;
}

int brane_spawn_add_closefrom(posix_spawn_file_actions_t *actions, int lowest_fd) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowest_fd);
}

short brane_spawn_flag_setsid(void) { return POSIX_SPAWN_SETSID; }

int brane_landlock_abi(void) {
    return (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
}

int brane_seccomp_kill_process_available(void) {
    uint32_t action = SECCOMP_RET_KILL_PROCESS;
    if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0)
        return 0;
    return syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
}

/* Namespace probes run in a short-lived child so the caller's namespaces never change. */
static int probe_unshare(int flags) {
    pid_t pid = fork();
    if (pid < 0)
        return 0;
    if (pid == 0)
        _exit(unshare(flags) == 0 ? 0 : 1);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int brane_can_unshare_network(void) { return probe_unshare(CLONE_NEWNET); }
int brane_can_unshare_user(void) { return probe_unshare(CLONE_NEWUSER); }

int brane_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

const char *brane_library_defining(const char *symbol_name) {
    void *symbol = dlsym(RTLD_DEFAULT, symbol_name);
    Dl_info info;
    if (symbol == NULL || dladdr(symbol, &info) == 0)
        return NULL;
    return info.dli_fname;
}

int brane_pin_to_cpu(pid_t pid, int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    long count = sysconf(_SC_NPROCESSORS_ONLN);
    for (int c = 0; c < count; c++)
        if (cpu < 0 || c == cpu)
            CPU_SET(c, &set);
    return sched_setaffinity(pid, sizeof set, &set);
}

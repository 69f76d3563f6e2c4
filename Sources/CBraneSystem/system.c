#define _GNU_SOURCE
#include "brane_system.h"
#include "brane_wire.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/uio.h>
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

int brane_wait_pidfd(int pidfd, int options, int *code, int *status, uint64_t *cpu_microseconds) {
    siginfo_t info = {0};
    struct rusage usage = {0};
    long rc;
    /* The raw syscall: glibc's waitid has no rusage argument. */
    do {
        rc = syscall(SYS_waitid, P_PIDFD, pidfd, &info, options, &usage);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return -1;
    *code = info.si_pid == 0 ? 0 : info.si_code;
    *status = info.si_status;
    *cpu_microseconds = (uint64_t)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000u +
                        (uint64_t)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
    return 0;
}

int brane_pidfd_getfd(int pidfd, int target_fd) { return (int)syscall(SYS_pidfd_getfd, pidfd, target_fd, 0); }

int brane_seccomp_receive(int listener, brane_seccomp_event *event) {
    struct seccomp_notif notification;
    memset(&notification, 0, sizeof notification); /* the kernel refuses a buffer that is not zeroed */
    int rc;
    do {
        rc = ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &notification);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return -1;
    event->id = notification.id;
    event->pid = notification.pid;
    event->nr = notification.data.nr;
    event->arch = notification.data.arch;
    for (int i = 0; i < 6; i++)
        event->args[i] = notification.data.args[i];
    return 0;
}

int brane_seccomp_user_notification_available(void) {
    uint32_t action = SECCOMP_RET_USER_NOTIF;
    return syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
}

long brane_read_process_memory(pid_t pid, uint64_t address, void *into, size_t length) {
    struct iovec local = {into, length}, remote = {(void *)(uintptr_t)address, length};
    return (long)process_vm_readv(pid, &local, 1, &remote, 1, 0);
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
int brane_can_unshare_namespaces(void) {
    return probe_unshare(CLONE_NEWNET | CLONE_NEWUTS) || probe_unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWUTS);
}

int brane_open_without_links(const char *base, const char *path) {
    int directory = base ? open(base, O_PATH | O_DIRECTORY | O_CLOEXEC) : AT_FDCWD;
    if (base && directory < 0)
        return -1;
    struct open_how how = {
        .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
        .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | (base ? RESOLVE_BENEATH : 0),
    };
    int fd = (int)syscall(SYS_openat2, directory, path, &how, sizeof how);
    if (base)
        close(directory);
    return fd;
}

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

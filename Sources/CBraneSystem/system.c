#define _GNU_SOURCE
#include "brane_system.h"
#include "brane_wire.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/stat.h>
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

int brane_seccomp_answer_success(int listener, uint64_t id) {
    /* Still pending: whatever the host read of the blocked call's memory was that call's. */
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) != 0)
        return -1;
    struct seccomp_notif_resp response = {.id = id, .val = 0, .error = 0, .flags = 0};
    return ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &response);
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

int brane_rename_noreplace(const char *from, const char *to) {
    return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 1U /* RENAME_NOREPLACE */);
}

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

ssize_t brane_send_with_descriptor(int socket, const void *bytes, size_t length, int descriptor) {
    union {
        struct cmsghdr align;
        char bytes[CMSG_SPACE(sizeof(int))];
    } control = {0};
    struct iovec part = {(void *)bytes, length};
    struct msghdr message = {.msg_iov = &part, .msg_iovlen = 1, .msg_control = control.bytes,
                             .msg_controllen = sizeof control.bytes};
    struct cmsghdr *c = CMSG_FIRSTHDR(&message);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &descriptor, sizeof descriptor);
    return sendmsg(socket, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
}

ssize_t brane_receive_with_descriptor(int socket, void *bytes, size_t length, int *descriptor) {
    union {
        struct cmsghdr align;
        char bytes[CMSG_SPACE(sizeof(int) * 4)];
    } control;
    struct iovec part = {bytes, length};
    struct msghdr message = {.msg_iov = &part, .msg_iovlen = 1, .msg_control = control.bytes,
                             .msg_controllen = sizeof control.bytes};
    ssize_t n;
    do
        n = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    *descriptor = -1;
    int extra = 0;
    for (struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&message) : NULL; c != NULL; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (*descriptor < 0)
                *descriptor = fd;
            else {
                close(fd);
                extra = 1;
            }
        }
    }
    if (extra || (message.msg_flags & MSG_CTRUNC)) {
        if (*descriptor >= 0)
            close(*descriptor);
        *descriptor = -1;
    }
    if (n >= 0 && extra) {
        errno = EPROTO;
        return -1;
    }
    return n;
}

/* A lookup and everything it points at, in one allocation the resolver may outlive us with. */
struct pending_lookup {
    struct gaicb request;
    struct addrinfo hints;
    char name[];
};

int brane_resolve(const char *host, int timeout_ms, struct addrinfo **result) {
    size_t length = strlen(host);
    struct pending_lookup *lookup = calloc(1, sizeof *lookup + length + 1);
    if (lookup == NULL)
        return EAI_MEMORY;
    memcpy(lookup->name, host, length + 1);
    lookup->hints.ai_family = AF_UNSPEC;
    lookup->hints.ai_socktype = SOCK_STREAM;
    lookup->request.ar_name = lookup->name;
    lookup->request.ar_request = &lookup->hints;
    struct gaicb *list[1] = {&lookup->request};
    int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
    if (rc != 0) {
        free(lookup);
        return rc;
    }
    struct timespec now, deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    while ((rc = gai_error(&lookup->request)) == EAI_INPROGRESS) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long left = (long long)(deadline.tv_sec - now.tv_sec) * 1000000000LL + (deadline.tv_nsec - now.tv_nsec);
        if (left <= 0)
            break;
        struct timespec wait = {(time_t)(left / 1000000000LL), (long)(left % 1000000000LL)};
        gai_suspend((const struct gaicb *const *)list, 1, &wait);
    }
    if (rc == EAI_INPROGRESS) {
        /* Still running: the resolver thread owns the lookup until it ends, so it is left to it (a few hundred bytes). */
        if (gai_cancel(&lookup->request) == EAI_CANCELED)
            free(lookup);
        return BRANE_RESOLVE_TIMED_OUT;
    }
    *result = rc == 0 ? lookup->request.ar_result : NULL;
    free(lookup);
    return rc;
}

int brane_connect_unix_without_links(int socket, const char *path) {
    struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
    int target = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
    if (target < 0)
        return -1;
    struct stat info;
    if (fstat(target, &info) != 0 || !S_ISSOCK(info.st_mode)) {
        close(target);
        errno = ENOTSOCK;
        return -1;
    }
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    /* "/proc/self/fd/N" by hand: this runs in brane_connect_unix_in_child's child, where stdio is off limits. */
    static const char prefix[] = "/proc/self/fd/";
    memcpy(address.sun_path, prefix, sizeof prefix - 1);
    char digits[12];
    int count = 0;
    for (int n = target; count == 0 || n > 0; n /= 10)
        digits[count++] = (char)('0' + n % 10);
    for (int k = 0; k < count; k++)
        address.sun_path[sizeof prefix - 1 + k] = digits[count - 1 - k];
    int rc = connect(socket, (struct sockaddr *)&address, sizeof address);
    int error = errno;
    close(target);
    errno = error;
    return rc;
}

int brane_seccomp_install(const void *instructions, unsigned short count) {
    /* Once: a filter already on may forbid the prctl; TSYNC is what the profiles let a second filter use. */
    static int no_new_privs;
    if (!no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    no_new_privs = 1;
    struct sock_fprog program = {.len = count, .filter = (struct sock_filter *)(uintptr_t)instructions};
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &program);
}

static void *reap(void *child) {
    waitpid((pid_t)(intptr_t)child, NULL, 0);
    return NULL;
}

int brane_connect_unix_in_child(int socket, const char *path, int switch_identity, uid_t uid, gid_t gid, int timeout_ms) {
    /* A child with the instance's credentials makes the connect, so the peer sees them (SO_PEERCRED)
     * and the socket file's permissions are checked against them, not root's; and a path on a hung
     * filesystem blocks the child, not the host. Raw clone and only raw system calls in the child:
     * it is a copy of a threaded process. */
    long child = syscall(SYS_clone, (unsigned long)SIGCHLD, 0UL, 0UL, 0UL, 0UL);
    if (child < 0)
        return -1;
    if (child == 0) {
        if (switch_identity && (syscall(SYS_setgroups, 0L, NULL) != 0 || syscall(SYS_setresgid, gid, gid, gid) != 0 ||
                                syscall(SYS_setresuid, uid, uid, uid) != 0))
            syscall(SYS_exit_group, 255L);
        long rc = brane_connect_unix_without_links(socket, path);
        syscall(SYS_exit_group, rc == 0 ? 0L : (long)(errno & 0x7f));
    }
    int status = 0;
    for (int waited = 0;; waited++) {
        pid_t done = waitpid((pid_t)child, &status, WNOHANG);
        if (done == (pid_t)child)
            break;
        if (done < 0 && errno != EINTR)
            return -1;
        if (waited >= timeout_ms) {
            /* Stuck (in a filesystem that does not answer): killed, and reaped whenever it can die. */
            kill((pid_t)child, SIGKILL);
            pthread_t reaper;
            if (pthread_create(&reaper, NULL, reap, (void *)(intptr_t)child) == 0)
                pthread_detach(reaper);
            errno = ETIMEDOUT;
            return -1;
        }
        struct timespec millisecond = {0, 1000000};
        nanosleep(&millisecond, NULL);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        errno = WIFEXITED(status) && WEXITSTATUS(status) < 128 ? WEXITSTATUS(status) : EPERM;
        return -1;
    }
    return 0;
}

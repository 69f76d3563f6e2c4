/*
 * brane_system.h — the Linux calls Swift cannot make directly: syscalls glibc
 * does not wrap, variadic prctl, and siginfo unions. Every function is a thin
 * pass-through returning -1 with errno set on failure, like the call it wraps.
 */
#ifndef BRANE_SYSTEM_H
#define BRANE_SYSTEM_H
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <stdint.h>

int brane_pidfd_open(pid_t pid);
int brane_pidfd_send_signal(int pidfd, int signal);
/* waitid(P_PIDFD, ...): fills `code` (CLD_EXITED, CLD_KILLED, CLD_DUMPED, …), `status`
 * (exit code or signal) and the child's user + system CPU time in microseconds.
 * With WNOHANG and nothing to reap, returns 0 and sets code to 0. */
int brane_wait_pidfd(int pidfd, int options, int *code, int *status, uint64_t *cpu_microseconds);
/* A duplicate of `target_fd` in the process behind `pidfd`, close-on-exec. */
int brane_pidfd_getfd(int pidfd, int target_fd);

/* One seccomp user notification: the syscall a filtered process is blocked in. */
typedef struct brane_seccomp_event {
    uint64_t id;
    uint32_t pid;
    int32_t nr;
    uint32_t arch;
    uint64_t args[6];
} brane_seccomp_event;
/* Receives the next notification from `listener` (SECCOMP_IOCTL_NOTIF_RECV). */
int brane_seccomp_receive(int listener, brane_seccomp_event *event);
/* Answers a stopped call with success, without running it, if the notification is still pending
 * (checked after the host read the call's memory); 0, or -1 with errno. */
int brane_seccomp_answer_success(int listener, uint64_t id);
/* 1 when the kernel offers seccomp user notification (SECCOMP_RET_USER_NOTIF). */
int brane_seccomp_user_notification_available(void);
/* Reads up to `length` bytes at `address` in process `pid` (a string argument of a forbidden call). */
long brane_read_process_memory(pid_t pid, uint64_t address, void *into, size_t length);

int brane_spawn_add_closefrom(posix_spawn_file_actions_t *actions, int lowest_fd);
short brane_spawn_flag_setsid(void);

/* Landlock ABI version the kernel offers, or -1 with errno (ENOSYS/EOPNOTSUPP) when none. */
int brane_landlock_abi(void);
/* Seccomp: 1 when the kernel supports filters and the kill-process action. */
int brane_seccomp_kill_process_available(void);
/* 1 when this process could create an empty network namespace (probed in a child thread). */
int brane_can_unshare_network(void);
/* 1 when this process could give a child empty network and UTS namespaces (the runner's two attempts). */
int brane_can_unshare_namespaces(void);

/* A directory opened O_RDONLY without following any symlink or magic link: beneath `base` when
 * given (openat2 RESOLVE_BENEATH), else from the root. -1 with errno otherwise. */
int brane_open_without_links(const char *base, const char *path);

/* pipe2(O_CLOEXEC), which Swift's Glibc module does not expose. */
int brane_pipe_cloexec(int fds[2]);

/* rename(2) that fails with EEXIST instead of replacing what is at `to` (renameat2
 * RENAME_NOREPLACE), for moving a new tree into a directory others may also write. */
int brane_rename_noreplace(const char *from, const char *to);
/* The file of the loaded object that defines `symbol_name`, or NULL. */
const char *brane_library_defining(const char *symbol_name);
/* Pins `pid` (0: the calling thread) to one CPU, or to every CPU when cpu < 0. */
int brane_pin_to_cpu(pid_t pid, int cpu);

/* no_new_privs (once), then `count` instructions of classic BPF installed as a seccomp filter on
 * every thread (TSYNC) — brane-bench measures what a filter adds to every syscall. */
int brane_seccomp_install(const void *instructions, unsigned short count);

/* sendmsg of `bytes` with `descriptor` attached as SCM_RIGHTS (MSG_NOSIGNAL | MSG_DONTWAIT). */
ssize_t brane_send_with_descriptor(int socket, const void *bytes, size_t length, int descriptor);
/* recvmsg of up to `length` bytes (retrying on EINTR) with at most one SCM_RIGHTS descriptor,
 * close-on-exec, stored in *descriptor, else -1. More than one is refused: all are closed and it
 * returns -1 with EPROTO. One the kernel could not install (MSG_CTRUNC: the receiver is at its
 * RLIMIT_NOFILE) leaves *descriptor -1 and returns the bytes. */
ssize_t brane_receive_with_descriptor(int socket, void *bytes, size_t length, int *descriptor);

/* connect(2) of `socket` to the unix socket at `path`, reached without following any symlink or
 * magic link (openat2 O_PATH, then its /proc/self/fd entry); -1 with errno, ENOTSOCK when it is no socket. */
int brane_connect_unix_without_links(int socket, const char *path);
/* The same from a short-lived child — running as `uid`/`gid` with no groups when `switch_identity`
 * (a root host connecting for an instance: the peer's SO_PEERCRED and the socket file's permissions
 * see the instance, not root) — waited for at most `timeout_ms` (then ETIMEDOUT; the child is killed). */
int brane_connect_unix_in_child(int socket, const char *path, int switch_identity, uid_t uid, gid_t gid, int timeout_ms);

struct addrinfo;
#define BRANE_RESOLVE_TIMED_OUT 1
/* getaddrinfo for TCP (any family) that gives up after `timeout_ms`: 0 with `*result` (freeaddrinfo
 * it), an EAI_* code, or BRANE_RESOLVE_TIMED_OUT. A lookup still running then is abandoned. */
int brane_resolve(const char *host, int timeout_ms, struct addrinfo **result);
#endif

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
/* waitid(P_PIDFD, ...): fills `code` (CLD_EXITED, CLD_KILLED, CLD_DUMPED, …) and `status`
 * (exit code or signal). With WNOHANG and nothing to reap, returns 0 and sets code to 0. */
int brane_wait_pidfd(int pidfd, int options, int *code, int *status);

int brane_spawn_add_closefrom(posix_spawn_file_actions_t *actions, int lowest_fd);
short brane_spawn_flag_setsid(void);

/* Landlock ABI version the kernel offers, or -1 with errno (ENOSYS/EOPNOTSUPP) when none. */
int brane_landlock_abi(void);
/* Seccomp: 1 when the kernel supports filters and the kill-process action. */
int brane_seccomp_kill_process_available(void);
/* 1 when this process could create an empty network namespace (probed in a child thread). */
int brane_can_unshare_network(void);
int brane_can_unshare_user(void);



/* pipe2(O_CLOEXEC), which Swift's Glibc module does not expose. */
int brane_pipe_cloexec(int fds[2]);
/* The file of the loaded object that defines `symbol_name`, or NULL. */
const char *brane_library_defining(const char *symbol_name);
/* Pins `pid` (0: the calling thread) to one CPU, or to every CPU when cpu < 0. */
int brane_pin_to_cpu(pid_t pid, int cpu);
#endif

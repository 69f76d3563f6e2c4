/*
 * brane-sandbox --zygote <host-pid>: the pre-initialised parent of a plugin's instances.
 *
 * The host spawns it like a runner (same environment, so a Swift plugin's runtime is preloaded
 * and relocated once, here) with a SOCK_SEQPACKET socket on fd 3. It is single-threaded, runs no
 * plugin code and reads nothing but requests of one byte carrying an instance's socket
 * (SCM_RIGHTS). For each it clones a child with CLONE_PARENT, so the child is the host's own —
 * reaped, signalled and pidfd-tracked by the host exactly as a spawned runner — and answers with
 * the child's pid (or -errno) and a pidfd for it. The child then applies its instance's sandbox
 * from the start, as an exec'd runner does; nothing of the sandbox is done here. A spare (a child
 * forked ahead of its instance's start) enters its namespaces at once, the slowest step, and
 * waits for its SETUP frame, which must ask for the same.
 */
#define _GNU_SOURCE
#include "zygote.h"

#include "brane_system.h"
#include "brane_wire.h"
#include "wire.h"

#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CONTROL_FD 3

/* glibc's fork() fixes up the child's thread descriptor; a raw clone3 must do the same itself:
 * the kernel writes the tid there only on request, and the robust-futex list is per task. */
static pid_t *thread_id_slot;
static void *robust_list_head;
static size_t robust_list_length;

static void become_instance(int instance_socket) {
    *thread_id_slot = (pid_t)syscall(SYS_set_tid_address, thread_id_slot);
    syscall(SYS_set_robust_list, robust_list_head, robust_list_length);
    if (dup2(instance_socket, RUNNER_SOCKET_FD) != RUNNER_SOCKET_FD || syscall(SYS_close_range, RUNNER_SOCKET_FD + 1, ~0U, 0) != 0 ||
        setsid() < 0)
        _exit(BRANE_EXIT_PROTOCOL);
}

prepared_namespaces zygote_serve(pid_t host) {
    if (prctl(PR_GET_TID_ADDRESS, &thread_id_slot) != 0 || thread_id_slot == NULL ||
        syscall(SYS_get_robust_list, 0, &robust_list_head, &robust_list_length) != 0)
        _exit(BRANE_EXIT_ZYGOTE_UNSUPPORTED);
    for (;;) {
        uint8_t request;
        int instance_socket;
        ssize_t n = brane_receive_with_descriptor(CONTROL_FD, &request, 1, &instance_socket);
        if (n == 0)
            _exit(0); /* the host closed its end: nothing more to fork */
        if (n != 1 || instance_socket < 0 || (request & ~(BRANE_ZYGOTE_PREPARE | BRANE_ZYGOTE_PREPARE_NETWORK)) != 0 ||
            request == BRANE_ZYGOTE_PREPARE_NETWORK)
            _exit(BRANE_EXIT_PROTOCOL);
        int pidfd = -1;
        struct clone_args args = {
            .flags = CLONE_PARENT | CLONE_PIDFD,
            .pidfd = (uint64_t)(uintptr_t)&pidfd,
        };
        long child = syscall(SYS_clone3, &args, sizeof args);
        if (child == 0) {
            become_instance(instance_socket);
            prepared_namespaces prepared = {.done = request & BRANE_ZYGOTE_PREPARE, .network = request & BRANE_ZYGOTE_PREPARE_NETWORK};
            if (prepared.done) {
                /* A spare may wait long for its start: it must die with the host meanwhile. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != host)
                    _exit(BRANE_EXIT_PROTOCOL);
                prepared.entered = enter_namespaces(prepared.network);
            }
            return prepared;
        }
        int32_t answer = child > 0 ? (int32_t)child : -errno;
        close(instance_socket);
        ssize_t sent = pidfd >= 0 ? brane_send_with_descriptor(CONTROL_FD, &answer, sizeof answer, pidfd)
                                  : send(CONTROL_FD, &answer, sizeof answer, MSG_NOSIGNAL);
        if (pidfd >= 0)
            close(pidfd);
        if (sent != (ssize_t)sizeof answer)
            _exit(BRANE_EXIT_PROTOCOL);
    }
}

void zygote_reseed_stack_guard(void) {
#if defined(__x86_64__)
    /* Static, not on this frame's stack: a local whose address is taken gives the function a canary check. */
    static uintptr_t guard;
    if (getrandom(&guard, sizeof guard, 0) != (ssize_t)sizeof guard)
        _exit(BRANE_EXIT_PROTOCOL);
    guard &= ~(uintptr_t)0xff; /* glibc keeps the low byte zero, so string functions stop at it */
    __asm__ volatile("movq %0, %%fs:0x28" : : "r"(guard) : "memory");
#endif
}

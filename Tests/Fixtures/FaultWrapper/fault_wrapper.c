/*
 * fault-wrapper — runs a program on a kernel that lacks something, for the fail-closed tests.
 *
 *   fault-wrapper <fault> <program> [args...]     the whole program (e.g. brane) sees the fault
 *   runner-<fault> <host-pid>                     (a copy or link named so) the runner alone sees it:
 *                                                 execs the runner built beside this binary
 *
 * Faults: landlock-enosys (landlock_create_ruleset fails with ENOSYS, as on a kernel without
 * Landlock), unshare-eperm (unshare fails with EPERM, as where namespaces are not allowed).
 * A seccomp filter makes the fault real for the kernel calls themselves, and exec keeps it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int install_fault(const char *fault) {
    long number;
    unsigned error;
    if (strcmp(fault, "landlock-enosys") == 0) {
        number = SYS_landlock_create_ruleset;
        error = ENOSYS;
    } else if (strcmp(fault, "unshare-eperm") == 0) {
        number = SYS_unshare;
        error = EPERM;
    } else {
        fprintf(stderr, "fault-wrapper: unknown fault %s (landlock-enosys, unshare-eperm)\n", fault);
        return -1;
    }
    struct sock_filter program[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)number, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | error),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog filter = {.len = sizeof program / sizeof program[0], .filter = program};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &filter) < 0) {
        perror("fault-wrapper: seccomp");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    char self[PATH_MAX];
    const char *name = basename(argv[0]);
    if (strncmp(name, "runner-", 7) == 0) {
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 64);
        if (n < 0 || install_fault(name + 7) < 0)
            return 70;
        self[n] = 0;
        strcat(dirname(self), "/Brane_BraneHost.resources/brane-sandbox"); /* CBuildPlugin builds it there */
        argv[0] = self;
        execv(self, argv);
        perror("fault-wrapper: exec brane-sandbox");
        return 71;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: fault-wrapper <landlock-enosys|unshare-eperm> <program> [args...]\n");
        return 64;
    }
    if (install_fault(argv[1]) < 0)
        return 70;
    execvp(argv[2], argv + 2);
    perror("fault-wrapper: exec");
    return 71;
}

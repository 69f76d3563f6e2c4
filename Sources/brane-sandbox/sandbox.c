/*
 * The sandbox steps, each applied once, in the order main() calls them. Every
 * step either succeeds or reports itself through fail_step and exits: a runner
 * never goes on with a weaker sandbox than the host asked for.
 */
#define _GNU_SOURCE
#include "sandbox.h"

#include "brane_landlock.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdio.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

void apply_rlimits(const uint64_t limits[BRANE_RLIMIT_COUNT]) {
    static const int resources[BRANE_RLIMIT_COUNT] = {
        [BRANE_RLIMIT_AS] = RLIMIT_AS,         [BRANE_RLIMIT_CPU] = RLIMIT_CPU,
        [BRANE_RLIMIT_NOFILE] = RLIMIT_NOFILE, [BRANE_RLIMIT_FSIZE] = RLIMIT_FSIZE,
        [BRANE_RLIMIT_NPROC] = RLIMIT_NPROC,
    };
    for (int i = 0; i < BRANE_RLIMIT_COUNT; i++) {
        if (limits[i] == BRANE_RLIMIT_KEEP)
            continue;
        struct rlimit limit = {.rlim_cur = limits[i], .rlim_max = limits[i]};
        /* CPU: the soft limit sends SIGXCPU, the hard one a second later SIGKILL. */
        if (i == BRANE_RLIMIT_CPU)
            limit.rlim_max = limits[i] + 1;
        if (setrlimit(resources[i], &limit) < 0)
            fail_step(BRANE_STEP_RLIMITS, errno, "setrlimit failed");
    }
}

brane_netns_state isolate_network(void) {
    if (unshare(CLONE_NEWNET) == 0)
        return BRANE_NETNS_ISOLATED;
    /* Without CAP_SYS_ADMIN, a user namespace lets an unprivileged host do the same. */
    if (errno == EPERM && unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0)
        return BRANE_NETNS_ISOLATED;
    return BRANE_NETNS_UNAVAILABLE; /* seccomp still forbids every network syscall */
}

void forbid_new_privileges(void) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        fail_step(BRANE_STEP_NO_NEW_PRIVS, errno, "PR_SET_NO_NEW_PRIVS failed");
}

void drop_capabilities(void) {
    if (cap_reset_ambient() < 0)
        fail_step(BRANE_STEP_CAPABILITIES, errno, "clearing the ambient capability set failed");
    cap_flag_value_t may_drop_bound = CAP_CLEAR;
    cap_t current = cap_get_proc();
    if (current == NULL)
        fail_step(BRANE_STEP_CAPABILITIES, errno, "cap_get_proc failed");
    cap_get_flag(current, CAP_SETPCAP, CAP_EFFECTIVE, &may_drop_bound);
    cap_free(current);
    /* Only a process holding CAP_SETPCAP can shrink the bounding set; one without it
     * (an unprivileged host) has empty sets already and no_new_privs keeps them so. */
    if (may_drop_bound == CAP_SET) {
        for (cap_value_t cap = 0; cap < (cap_value_t)cap_max_bits(); cap++)
            if (CAP_IS_SUPPORTED(cap) && cap_drop_bound(cap) < 0)
                fail_step(BRANE_STEP_CAPABILITIES, errno, "dropping the bounding set failed");
    }
    cap_t empty = cap_init();
    if (empty == NULL || cap_set_proc(empty) < 0)
        fail_step(BRANE_STEP_CAPABILITIES, errno, "clearing effective/permitted/inheritable failed");
    cap_free(empty);
}

int landlock_abi(void) {
    return (int)syscall(SYS_landlock_create_ruleset, NULL, 0, 1U /* LANDLOCK_CREATE_RULESET_VERSION */);
}

void restrict_filesystem_and_network(const landlock_policy *policy) {
    if (policy->handled_fs == 0)
        return; /* the host found no Landlock on this kernel and said so in `brane doctor` */
    struct brane_landlock_ruleset_attr attr = {
        .handled_access_fs = policy->handled_fs,
        .handled_access_net = policy->handled_net,
        .scoped = policy->scoped,
    };
    size_t attr_size = policy->scoped ? 24 : policy->handled_net ? 16 : 8;
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0U);
    if (ruleset < 0)
        fail_step(BRANE_STEP_LANDLOCK, errno, "landlock_create_ruleset failed");
    for (uint32_t i = 0; i < policy->path_count; i++) {
        int fd = open(policy->paths[i].path, O_PATH | O_CLOEXEC);
        if (fd < 0)
            continue; /* a declared path that does not exist grants nothing */
        struct brane_landlock_path_beneath_attr rule = {
            .allowed_access = policy->paths[i].access,
            .parent_fd = fd,
        };
        /* A file (not a directory) takes only file rights; the host sends both and the
         * kernel answers EINVAL, so retry with the file subset. */
        long rc = syscall(SYS_landlock_add_rule, ruleset, BRANE_LANDLOCK_RULE_PATH_BENEATH, &rule, 0U);
        if (rc < 0 && errno == EINVAL) {
            rule.allowed_access &= BRANE_LANDLOCK_FS_EXECUTE | BRANE_LANDLOCK_FS_WRITE_FILE |
                                   BRANE_LANDLOCK_FS_READ_FILE | BRANE_LANDLOCK_FS_TRUNCATE |
                                   BRANE_LANDLOCK_FS_IOCTL_DEV;
            rc = syscall(SYS_landlock_add_rule, ruleset, BRANE_LANDLOCK_RULE_PATH_BENEATH, &rule, 0U);
        }
        close(fd);
        if (rc < 0) {
            char message[256];
            snprintf(message, sizeof message, "landlock_add_rule failed for %s", policy->paths[i].path);
            fail_step(BRANE_STEP_LANDLOCK, errno, message);
        }
    }
    for (uint32_t i = 0; i < policy->port_count; i++) {
        struct brane_landlock_net_port_attr rule = {
            .allowed_access = policy->ports[i].access,
            .port = policy->ports[i].port,
        };
        if (syscall(SYS_landlock_add_rule, ruleset, BRANE_LANDLOCK_RULE_NET_PORT, &rule, 0U) < 0)
            fail_step(BRANE_STEP_LANDLOCK, errno, "landlock_add_rule failed for a TCP port");
    }
    if (syscall(SYS_landlock_restrict_self, ruleset, 0U) < 0)
        fail_step(BRANE_STEP_LANDLOCK, errno, "landlock_restrict_self failed");
    close(ruleset);
}

void install_seccomp(const uint8_t *instructions, uint32_t count) {
    struct sock_fprog program = {
        .len = (unsigned short)count,
        .filter = (struct sock_filter *)(uintptr_t)instructions,
    };
    if (count == 0 || count > BPF_MAXINSNS)
        fail_step(BRANE_STEP_SECCOMP, EINVAL, "the seccomp program is empty or too long");
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0U, &program) < 0)
        fail_step(BRANE_STEP_SECCOMP, errno, "seccomp(SECCOMP_SET_MODE_FILTER) failed");
}

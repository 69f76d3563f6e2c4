/*
 * The sandbox steps, each applied once, in the order main() calls them. Every
 * step either succeeds or reports itself through fail_step and exits: a runner
 * never goes on with a weaker sandbox than the host asked for, unless the host
 * set the development opt-out, and then FILTERED says what was really applied.
 */
#define _GNU_SOURCE
#include "sandbox.h"

#include "brane_landlock.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
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

namespaces_entered enter_namespaces(bool network) {
    int flags = CLONE_NEWUTS | (network ? CLONE_NEWNET : 0);
    int rc = unshare(flags);
    /* Without CAP_SYS_ADMIN, a user namespace lets an unprivileged host do the same. */
    if (rc < 0 && errno == EPERM)
        rc = unshare(CLONE_NEWUSER | flags);
    if (rc < 0)
        return (namespaces_entered){false, errno};
    static const char name[] = "brane-sandbox";
    if (sethostname(name, sizeof name - 1) < 0)
        return (namespaces_entered){true, errno};
    return (namespaces_entered){true, 0};
}

uint32_t namespaces_applied(bool network, namespaces_entered entered, bool allow_weaker) {
    uint32_t applied = BRANE_APPLIED_UTS_NAMESPACE | (network ? BRANE_APPLIED_NETWORK_NAMESPACE : 0);
    if (entered.error == 0 || (allow_weaker && entered.entered))
        return applied;
    if (allow_weaker)
        return 0;
    if (entered.entered)
        fail_step(BRANE_STEP_UTS_NAMESPACE, entered.error, "sethostname in the new UTS namespace failed");
    fail_step(network ? BRANE_STEP_NETWORK_NAMESPACE : BRANE_STEP_UTS_NAMESPACE, entered.error,
              network ? "cannot create an empty network namespace: the plugin would share the host's network"
                      : "cannot create a UTS namespace: the plugin would see the host's name");
}

void forbid_new_privileges(void) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        fail_step(BRANE_STEP_NO_NEW_PRIVS, errno, "PR_SET_NO_NEW_PRIVS failed");
}

void drop_bounding_and_ambient(void) {
    /* One call each, where libcap's helpers first ask about every capability: 41 calls instead of 123. */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
        fail_step(BRANE_STEP_CAPABILITIES, errno, "clearing the ambient capability set failed");
    cap_flag_value_t may_drop_bound = CAP_CLEAR;
    cap_t current = cap_get_proc();
    if (current == NULL)
        fail_step(BRANE_STEP_CAPABILITIES, errno, "cap_get_proc failed");
    cap_get_flag(current, CAP_SETPCAP, CAP_EFFECTIVE, &may_drop_bound);
    cap_free(current);
    /* Only a process holding CAP_SETPCAP can shrink the bounding set; one without it
     * (an unprivileged host) has empty sets already and no_new_privs keeps them so.
     * cap_max_bits is what this kernel has; dropping one already dropped succeeds. */
    if (may_drop_bound == CAP_SET) {
        for (cap_value_t cap = 0; cap < (cap_value_t)cap_max_bits(); cap++)
            if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
                fail_step(BRANE_STEP_CAPABILITIES, errno, "dropping the bounding set failed");
    }
}

void switch_identity(uid_t uid, gid_t gid, pid_t host) {
    if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
        fail_step(BRANE_STEP_IDENTITY_SWITCH, errno, "cannot switch to the instance's own uid and gid");
    /* What one instance writes into the plugin's (set-gid) write paths, the next can read. */
    umask(007);
    /* A change of credentials clears the parent-death signal: arm it again, then close the race. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != host)
        _exit(BRANE_EXIT_PROTOCOL);
}

void clear_capabilities(void) {
    cap_t empty = cap_init();
    if (empty == NULL || cap_set_proc(empty) < 0)
        fail_step(BRANE_STEP_CAPABILITIES, errno, "clearing effective/permitted/inheritable failed");
    cap_free(empty);
}

int landlock_abi(void) {
    return (int)syscall(SYS_landlock_create_ruleset, NULL, 0, 1U /* LANDLOCK_CREATE_RULESET_VERSION */);
}

/* A manifest entry cannot be widened by a link: a relative one is opened beneath the plugin
 * directory and a writable one anywhere without following any symlink; an absolute read-only
 * one (a system file such as /etc/os-release, which the plugin's archive cannot plant) may
 * follow ordinary links but never /proc's magic ones (fd/N, root, cwd, exe). */
static int open_rule_path(const landlock_path_rule *rule, int plugin_directory) {
    if (!(rule->flags & BRANE_PATH_DECLARED))
        return open(rule->path, O_PATH | O_CLOEXEC);
    bool relative = rule->path[0] != '/';
    bool writable = rule->access & BRANE_LANDLOCK_FS_WRITE_FILE;
    struct open_how how = {
        .flags = O_PATH | O_CLOEXEC,
        .resolve = RESOLVE_NO_MAGICLINKS | (relative || writable ? RESOLVE_NO_SYMLINKS : 0) | (relative ? RESOLVE_BENEATH : 0),
    };
    return (int)syscall(SYS_openat2, relative ? plugin_directory : AT_FDCWD, rule->path, &how, sizeof how);
}

int build_landlock_ruleset(const landlock_policy *policy, int plugin_directory, bool allow_weaker) {
    if (policy->abi == 0)
        return -1; /* the host planned without Landlock, under the development opt-out */
    int offered = landlock_abi();
    if (offered < policy->abi) {
        if (allow_weaker)
            return -1;
        char message[160];
        snprintf(message, sizeof message, "the kernel offers Landlock ABI %d, the plan needs %d: file access would not be confined",
                 offered < 0 ? 0 : offered, policy->abi);
        fail_step(BRANE_STEP_LANDLOCK, offered < 0 ? errno : 0, message);
    }
    struct brane_landlock_ruleset_attr attr = {
        .handled_access_fs = policy->handled_fs,
        .handled_access_net = policy->handled_net,
        .scoped = policy->scoped,
    };
    size_t attr_size = policy->scoped ? 24 : policy->handled_net ? 16 : 8;
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0U);
    if (ruleset < 0)
        fail_step(BRANE_STEP_LANDLOCK, errno, "landlock_create_ruleset failed");
    char message[320];
    for (uint32_t i = 0; i < policy->path_count; i++) {
        const landlock_path_rule *path = &policy->paths[i];
        int fd = open_rule_path(path, plugin_directory);
        if (fd < 0 && errno == ENOENT)
            continue; /* a path that does not exist grants nothing */
        if (fd < 0) {
            /* The plugin's own tree or manifest is at fault, not this kernel. */
            snprintf(message, sizeof message, "filesystem entry %.200s %s", path->path,
                     errno == ELOOP || errno == EXDEV ? "is or passes through a symbolic link, or leaves the plugin directory"
                                                      : "cannot be opened");
            fail_step(path->flags & BRANE_PATH_DECLARED ? BRANE_STEP_DECLARED_PATH : BRANE_STEP_LANDLOCK, errno, message);
        }
        struct brane_landlock_path_beneath_attr rule = {.allowed_access = path->access, .parent_fd = fd};
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
            snprintf(message, sizeof message, "landlock_add_rule failed for %.200s", path->path);
            fail_step(BRANE_STEP_LANDLOCK, errno, message);
        }
    }
    return ruleset;
}

void enforce_landlock(int ruleset) {
    if (syscall(SYS_landlock_restrict_self, ruleset, 0U) < 0)
        fail_step(BRANE_STEP_LANDLOCK, errno, "landlock_restrict_self failed");
    close(ruleset);
}

static struct sock_fprog program_of(const uint8_t *instructions, uint32_t count, brane_setup_step step) {
    if (count == 0 || count > BPF_MAXINSNS)
        fail_step(step, EINVAL, "the seccomp program is empty or too long");
    return (struct sock_fprog){.len = (unsigned short)count, .filter = (struct sock_filter *)(uintptr_t)instructions};
}

int install_seccomp_with_listener(const uint8_t *instructions, uint32_t count) {
    struct sock_fprog program = program_of(instructions, count, BRANE_STEP_SECCOMP);
    int listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &program);
    if (listener < 0)
        fail_step(BRANE_STEP_SECCOMP, errno, "seccomp(SECCOMP_SET_MODE_FILTER, NEW_LISTENER) failed");
    return listener;
}

void install_serve_filter(const uint8_t *instructions, uint32_t count) {
    struct sock_fprog program = program_of(instructions, count, BRANE_STEP_SERVE_PHASE);
    /* TSYNC: threads the plugin started during init get the narrower filter too. */
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &program) != 0)
        fail_step(BRANE_STEP_SERVE_PHASE, errno, "installing the serve-phase seccomp filter failed");
}

/* The sandbox steps brane-sandbox applies before it loads a plugin. */
#ifndef RUNNER_SANDBOX_H
#define RUNNER_SANDBOX_H
#include "brane_wire.h"
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct landlock_path_rule {
    uint64_t access;
    uint32_t flags; /* BRANE_PATH_* */
    char *path;
} landlock_path_rule;

typedef struct landlock_policy {
    int32_t abi; /* the ABI the plan was made for; 0 only under the development opt-out */
    uint64_t handled_fs, handled_net, scoped;
    uint32_t path_count;
    landlock_path_rule *paths;
} landlock_policy;

/* Each step applies fully or reports itself through fail_step and exits; `allow_weaker`
 * (the development opt-out) turns "the kernel cannot do this" into a skipped step, which the
 * returned state (reported in FILTERED) then shows. */
void apply_rlimits(const uint64_t limits[BRANE_RLIMIT_COUNT]);
/* The outcome of entering the namespaces: `error` 0, or the errno of the unshare or, once the
 * namespaces are entered (`entered`), of naming the host in the new UTS namespace. */
typedef struct namespaces_entered {
    bool entered;
    int error;
} namespaces_entered;
/* A new UTS namespace and, with `network`, an empty network namespace: only the calls. */
namespaces_entered enter_namespaces(bool network);
/* What was entered, as BRANE_APPLIED_* bits; a failure is fatal (fail_step) unless `allow_weaker`. */
uint32_t namespaces_applied(bool network, namespaces_entered entered, bool allow_weaker);
void forbid_new_privileges(void);
/* Bounding and ambient sets first (they need CAP_SETPCAP), then the process's own sets. */
void drop_bounding_and_ambient(void);
void switch_identity(uid_t uid, gid_t gid, pid_t host);
void clear_capabilities(void);
int landlock_abi(void);
/* Opens every rule's path (declared ones without following symlinks) and builds the ruleset,
 * before the identity switch. Returns the ruleset fd, or -1 when skipped under the opt-out. */
int build_landlock_ruleset(const landlock_policy *policy, int plugin_directory, bool allow_weaker);
void enforce_landlock(int ruleset);
/* Installs the load-phase filter with a user-notification listener and returns the listener's fd. */
int install_seccomp_with_listener(const uint8_t *instructions, uint32_t count);
/* Installs the narrower serve-phase filter on every thread, after init. */
void install_serve_filter(const uint8_t *instructions, uint32_t count);

#endif

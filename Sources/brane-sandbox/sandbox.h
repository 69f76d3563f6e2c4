/* The sandbox steps brane-sandbox applies before it loads a plugin. */
#ifndef RUNNER_SANDBOX_H
#define RUNNER_SANDBOX_H
#include "brane_wire.h"
#include <stdint.h>

typedef struct landlock_path_rule {
    uint64_t access;
    char *path;
} landlock_path_rule;

typedef struct landlock_port_rule {
    uint64_t access;
    uint64_t port;
} landlock_port_rule;

typedef struct landlock_policy {
    uint64_t handled_fs, handled_net, scoped;
    uint32_t path_count, port_count;
    landlock_path_rule *paths;
    landlock_port_rule *ports;
} landlock_policy;

void apply_rlimits(const uint64_t limits[BRANE_RLIMIT_COUNT]);
brane_netns_state isolate_network(void);
void forbid_new_privileges(void);
void drop_capabilities(void);
int landlock_abi(void);
void restrict_filesystem_and_network(const landlock_policy *policy);
void install_seccomp(const uint8_t *instructions, uint32_t count);

#endif

/* The zygote mode of brane-sandbox: one pre-initialised process per plugin that forks instances. */
#ifndef RUNNER_ZYGOTE_H
#define RUNNER_ZYGOTE_H
#include "sandbox.h"
#include <stdbool.h>
#include <sys/types.h>

/* The namespaces a spare entered before its SETUP frame (BRANE_ZYGOTE_PREPARE), if any. */
typedef struct prepared_namespaces {
    bool done;
    bool network;
    namespaces_entered entered;
} prepared_namespaces;

/* Serves fork requests on fd 3 until the host closes it (then exits). Returns only in a forked
 * child, whose parent is the host, with the instance's socket on fd 3 and no other descriptor
 * above 2, in a session of its own: from there it is an instance like an exec'd runner, but for
 * the namespaces it may have entered already, which it returns. */
prepared_namespaces zygote_serve(pid_t host);
/* A fresh stack-protector canary for a forked child, so instances do not share the zygote's.
 * Only from a frame that never returns: a frame begun with the old canary would fail its check. */
void zygote_reseed_stack_guard(void);
#endif

/*
 * brane_wire.h — the frame format between the host and brane-sandbox.
 *
 * Internal to Brane (plugins never see it). Every message is a 12-byte header
 * followed by `length` payload bytes; integers are little-endian. Requests
 * carry an id that the reply repeats, so a stale reply is never mistaken for
 * the answer to a later call.
 */
#ifndef BRANE_WIRE_H
#define BRANE_WIRE_H
#include <stdint.h>

#define BRANE_FRAME_HEADER_SIZE 12u

typedef enum brane_frame_type {
    BRANE_FRAME_SETUP = 1,    /* host -> runner: the sandbox to apply and the plugin to load */
    BRANE_FRAME_READY = 2,    /* runner -> host: sandbox on, plugin initialised */
    BRANE_FRAME_CALL = 3,     /* host -> runner: u16 method length, method, input bytes */
    BRANE_FRAME_RESULT = 4,   /* runner -> host: output bytes of a successful call */
    BRANE_FRAME_ERROR = 5,    /* runner -> host: the plugin's error JSON */
    BRANE_FRAME_LOG = 6,      /* runner -> host: u32 level, message bytes */
    BRANE_FRAME_SHUTDOWN = 7, /* host -> runner: call shutdown and exit 0 */
    BRANE_FRAME_FAILED = 8,   /* runner -> host: u32 step, i32 errno, message; then exit */
    /* During a CALL, with its request id (ABI 1.1): */
    BRANE_FRAME_CONSULT = 9,         /* runner -> host: u16 specialist id length, id, input bytes */
    BRANE_FRAME_CONSULT_RESULT = 10, /* host -> runner: the consulted specialist's output */
    BRANE_FRAME_CONSULT_ERROR = 11,  /* host -> runner: {"message": "..."} (refused or failed) */
    /* Start-up, between SETUP and READY: */
    BRANE_FRAME_FILTERED = 12,  /* runner -> host: u32 listener fd (for pidfd_getfd), u32 BRANE_APPLIED_* bits, i32 Landlock ABI */
    BRANE_FRAME_LISTENING = 13, /* host -> runner: the host holds the listener; the runner closes its copy */
    /* During a CALL, with its request id (ABI 1.2): */
    BRANE_FRAME_CONNECT = 14,       /* runner -> host: u16 port, u16 host length, host (a name, an address or a unix socket path) */
    BRANE_FRAME_CONNECTED = 15,     /* host -> runner: the connected stream, as SCM_RIGHTS on the header's first byte */
    BRANE_FRAME_CONNECT_ERROR = 16, /* host -> runner: why not, an English sentence */
    /* Start-up, after LISTENING: */
    BRANE_FRAME_LOADING = 17, /* runner -> host: LISTENING read, the plugin is loaded next (no plugin code ran before it) */
} brane_frame_type;

/* Setup flags. */
#define BRANE_SETUP_ISOLATE_NETWORK 1u   /* enter an empty network namespace */
#define BRANE_SETUP_ALLOW_WEAKER 2u      /* development opt-out: a step the kernel cannot give is skipped, not fatal */
#define BRANE_SETUP_SWITCH_IDENTITY 4u   /* run as the setup frame's uid/gid (a root host) */

/* A zygote's fork request: one byte, with the instance's socket attached. PREPARE asks the child
 * to enter its namespaces at once, before its SETUP frame (a spare, forked ahead of its start):
 * a UTS namespace, and an empty network namespace too with PREPARE_NETWORK. The SETUP frame
 * must then ask for exactly those, or the child refuses it. */
#define BRANE_ZYGOTE_FORK 0u
#define BRANE_ZYGOTE_PREPARE 1u
#define BRANE_ZYGOTE_PREPARE_NETWORK 2u

/* Landlock path rule flag: a manifest entry, opened without following any symlink — beneath the
 * plugin directory when relative (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS). */
#define BRANE_PATH_DECLARED 1u

/* The order of rlimits in the setup frame. */
enum { BRANE_RLIMIT_AS, BRANE_RLIMIT_CPU, BRANE_RLIMIT_NOFILE, BRANE_RLIMIT_FSIZE, BRANE_RLIMIT_NPROC,
       BRANE_RLIMIT_COUNT };
#define BRANE_RLIMIT_KEEP UINT64_MAX

/* The step a runner was at when it failed (FAILED frame and exit code). */
typedef enum brane_setup_step {
    BRANE_STEP_SETUP_FRAME = 1,
    BRANE_STEP_RLIMITS = 2,
    BRANE_STEP_NETWORK_NAMESPACE = 3,
    BRANE_STEP_NO_NEW_PRIVS = 4,
    BRANE_STEP_CAPABILITIES = 5,
    BRANE_STEP_LANDLOCK = 6,
    BRANE_STEP_SECCOMP = 7,
    BRANE_STEP_DLOPEN = 8,
    BRANE_STEP_ENTRY_SYMBOL = 9,
    BRANE_STEP_ABI_CHECK = 10,
    BRANE_STEP_IDENTITY = 11,
    BRANE_STEP_INIT = 12,
    BRANE_STEP_IDENTITY_SWITCH = 13,
    BRANE_STEP_UTS_NAMESPACE = 14,
    BRANE_STEP_SERVE_PHASE = 15,
    BRANE_STEP_DECLARED_PATH = 16, /* a manifest entry is a link, leaves the plugin dir, or cannot be opened */
} brane_setup_step;

/* Runner exit status: 0 after SHUTDOWN, 64 + step after a failed setup step,
 * BRANE_EXIT_PROTOCOL when the host broke the frame protocol; a zygote that cannot fork
 * instances correctly on this kernel exits BRANE_EXIT_ZYGOTE_UNSUPPORTED (the host then spawns). */
#define BRANE_EXIT_STEP_BASE 64
#define BRANE_EXIT_PROTOCOL 90
#define BRANE_EXIT_ZYGOTE_UNSUPPORTED 91

/* What FILTERED reports applied, as bits, before plugin code runs: the host compares them with the plan. */
#define BRANE_APPLIED_NETWORK_NAMESPACE 1u
#define BRANE_APPLIED_UTS_NAMESPACE 2u
#define BRANE_APPLIED_IDENTITY 4u
#define BRANE_APPLIED_LANDLOCK 8u

#endif

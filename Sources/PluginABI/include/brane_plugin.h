/*
 * brane_plugin.h — the Brane plugin ABI, version 1.2.
 *
 * This header is the whole contract between Brane and a plugin. A plugin is a
 * shared library that exports one symbol, `brane_plugin_entry`, returning a
 * static descriptor. Brane checks the descriptor's magic, major version and
 * size before it calls anything else in the library (PostgreSQL's module magic
 * block, SQLite's extension entry point and Vulkan's sized structs are the
 * models).
 *
 * Compatibility rules:
 *  - A change to BRANE_ABI_MAJOR breaks plugins; Brane refuses any other major.
 *  - A minor version only appends fields to the end of a struct. Each struct
 *    starts with its size, so both sides read only what the other one has.
 *  - The plugin runs with its own directory as the working directory, so data
 *    it ships (e.g. data/terms.db) opens by a relative path.
 *  - Nothing crosses the boundary but C scalars, C strings and byte buffers.
 *    Whoever allocates frees: buffers returned by `invoke` go back through the
 *    plugin's own `release`.
 *
 * See docs/abi.md for a complete example.
 */
#ifndef BRANE_PLUGIN_H
#define BRANE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BRANE_PLUGIN_MAGIC 0x504E5242u /* "BRNP" in little-endian memory order */
#define BRANE_ABI_MAJOR 1
#define BRANE_ABI_MINOR 2
#define BRANE_PLUGIN_ENTRY_SYMBOL "brane_plugin_entry"

#if defined(__GNUC__) || defined(__clang__)
#define BRANE_EXPORT __attribute__((visibility("default")))
#else
#define BRANE_EXPORT
#endif

typedef enum brane_plugin_kind {
    BRANE_KIND_SPECIALIST = 1, /* domain expert: specialist/consult */
    BRANE_KIND_SYNAPSE = 2,    /* MCP tool: tools/call */
    BRANE_KIND_SENSOR = 3,     /* system probe: sensor/sample */
    BRANE_KIND_SCANNER = 4,    /* asset discovery: scanner/scan */
} brane_plugin_kind;

typedef enum brane_log_level {
    BRANE_LOG_DEBUG = 0,
    BRANE_LOG_INFO = 1,
    BRANE_LOG_WARNING = 2,
    BRANE_LOG_ERROR = 3,
} brane_log_level;

/* Status returned by init and invoke. */
typedef enum brane_status {
    BRANE_OK = 0,
    /* The call failed; the output buffer, if any, holds a JSON object
     * {"message": "..."} that Brane passes to the caller. */
    BRANE_ERROR = 1,
} brane_status;

/* Services the host offers to a plugin, handed to `init`. Valid until
 * `shutdown` returns. Fields after `struct_size` may grow in later minor
 * versions: check `struct_size` before using a field added after 1.0. */
typedef struct brane_host_api {
    uint32_t struct_size;
    uint16_t abi_major;
    uint16_t abi_minor;
    /* Sends a log line to the host (UTF-8, need not be NUL-terminated). */
    void (*log)(brane_log_level level, const char *message, size_t length);
    /* The plugin's configuration as JSON (an object; "{}" when none), valid
     * until shutdown. `length` receives its size in bytes. */
    const char *(*config)(size_t *length);

    /* --- 1.1 --- */
    /* Asks another specialist, through the host, and waits for its answer
     * (specialist -> host -> specialist). Only from within `invoke`, on its
     * thread. The host allows it only when the caller's manifest lists the
     * target under `specialist.consults` and both run at the same privacy tier.
     * Returns BRANE_OK with the target's output, or BRANE_ERROR with
     * {"message": "..."}; either way `*output` stays valid until the next
     * consult or until `invoke` returns, and belongs to the host. */
    int (*consult)(const char *specialist_id, const uint8_t *input, size_t input_length,
                   const uint8_t **output, size_t *output_length);

    /* --- 1.2 --- */
    /* Opens a connection through the host: no plugin creates a socket of its own, at any tier.
     * `host` is a name or address with a TCP `port`, or the absolute path of a unix socket
     * with `port` 0. Only from within `invoke`, on its thread. The host allows only what the
     * manifest declares under `network.connect` (tier 1: loopback and unix sockets; tier 2: the
     * declared host:port pairs as well), resolves the name itself, connects within the call's
     * deadline and writes an audit entry, allowed or not. Returns BRANE_OK with a connected,
     * blocking, close-on-exec stream socket in `*fd`, which the plugin owns and closes; on it the
     * plugin may read, write, send (without an address), receive, poll and shut down, nothing
     * that creates or re-addresses a socket. Or BRANE_ERROR with `*fd` set to -1 and, when
     * `message` is not NULL, `*message` an English sentence (NUL-terminated, owned by the host,
     * valid until the next connect or until `invoke` returns). */
    int (*connect)(const char *host, uint16_t port, int *fd, const char **message);
} brane_host_api;

/* True when `host` offers `field` (a field added in a later minor version). */
#define BRANE_HOST_HAS(host, field) \
    ((host)->struct_size >= offsetof(brane_host_api, field) + sizeof((host)->field))

/* What `brane_plugin_entry` returns: a static, immutable descriptor. */
typedef struct brane_plugin_descriptor {
    uint32_t magic;       /* BRANE_PLUGIN_MAGIC */
    uint32_t struct_size; /* sizeof(brane_plugin_descriptor) as compiled */
    uint16_t abi_major;   /* BRANE_ABI_MAJOR as compiled */
    uint16_t abi_minor;   /* BRANE_ABI_MINOR as compiled */
    uint32_t kind;        /* a brane_plugin_kind */
    const char *id;       /* reverse-DNS id; must equal the manifest's */
    const char *version;  /* semver; must equal the manifest's */

    /* Called once, after the sandbox is on. Return BRANE_OK or BRANE_ERROR; before an
     * error, log why (host->log at BRANE_LOG_ERROR): init has no output, and the log line is
     * what the user sees. */
    int (*init)(const brane_host_api *host);
    /* One call. `method` is e.g. "tools/call", "sensor/sample",
     * "scanner/scan", "specialist/consult"; `input` is JSON. On return,
     * `*output`/`*output_length` hold a buffer the plugin allocated (or NULL/0)
     * and Brane hands back to `release`. */
    int (*invoke)(const char *method, const uint8_t *input, size_t input_length,
                  uint8_t **output, size_t *output_length);
    /* Frees a buffer returned by invoke. */
    void (*release)(uint8_t *output, size_t output_length);
    /* Called once before the process exits cleanly. May be NULL. */
    void (*shutdown)(void);
} brane_plugin_descriptor;

/* Fills the four header fields of a descriptor in a designated initializer:
 *   static const brane_plugin_descriptor d = { BRANE_DESCRIPTOR_HEADER, ... }; */
#define BRANE_DESCRIPTOR_HEADER                                   \
    .magic = BRANE_PLUGIN_MAGIC,                                  \
    .struct_size = (uint32_t)sizeof(brane_plugin_descriptor),     \
    .abi_major = BRANE_ABI_MAJOR, .abi_minor = BRANE_ABI_MINOR

/* The one symbol a plugin exports. */
typedef const brane_plugin_descriptor *(*brane_plugin_entry_fn)(void);
BRANE_EXPORT const brane_plugin_descriptor *brane_plugin_entry(void);

/* The one compatibility rule, for the host's C runner and its Swift side alike: a plugin built
 * for ABI major.minor loads when the major equals BRANE_ABI_MAJOR and the minor is no newer
 * than BRANE_ABI_MINOR. Returns NULL when compatible, or a static English sentence. */
const char *brane_abi_problem(uint16_t major, uint16_t minor);

/* Host side: checks a descriptor before anything in it is called. Returns
 * NULL when it is usable, or a static English sentence saying why not. */
const char *brane_descriptor_problem(const brane_plugin_descriptor *descriptor);

#ifdef __cplusplus
}
#endif
#endif /* BRANE_PLUGIN_H */

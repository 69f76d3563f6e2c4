/*
 * brane-sandbox — runs one plugin instance in its own sandboxed process.
 *
 *   brane-sandbox <host-pid>            (socket on fd 3; spawned by the Brane host only)
 *   brane-sandbox --zygote <host-pid>   (forks instances on request: zygote.c)
 *
 * The host spawns it with an empty environment (but SWIFT_BACKTRACE=enable=no,
 * and LD_PRELOAD of a Swift plugin's runtime), fds 0-2 on /dev/null, the socket
 * on fd 3, every other fd closed, a new session and a reset signal mask; a
 * zygote's child starts in the same state. The runner reads the SETUP frame, applies
 * the sandbox in this order — rlimits, empty network namespace (every tier),
 * no_new_privs, capabilities, Landlock, seccomp — and only then calls dlopen,
 * because a plugin's constructors run inside dlopen. It then checks the
 * descriptor, calls init, replies READY and serves CALL frames until SHUTDOWN
 * or end of file. The loop is a plain blocking read/write: no threads of its
 * own, nothing that would need more syscalls than the profile grants.
 */
#define _GNU_SOURCE
#include "brane_plugin.h"
#include "brane_wire.h"
#include "sandbox.h"
#include "wire.h"
#include "zygote.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define SETUP_FRAME_LIMIT (16u << 20)
#define LOG_MESSAGE_LIMIT 4096u
#define METHOD_LIMIT 256u

static const brane_plugin_descriptor *plugin;
static char *plugin_config;
static size_t plugin_config_length;
/* Plugin threads may log while the serve loop writes a reply. */
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t current_request;

static void host_log(brane_log_level level, const char *message, size_t length) {
    uint32_t level_word = (uint32_t)level;
    if (message == NULL)
        length = 0;
    if (length > LOG_MESSAGE_LIMIT)
        length = LOG_MESSAGE_LIMIT;
    pthread_mutex_lock(&write_lock);
    wire_write(BRANE_FRAME_LOG, current_request, &level_word, sizeof level_word, message, length);
    pthread_mutex_unlock(&write_lock);
}

static const char *host_config(size_t *length) {
    if (length)
        *length = plugin_config_length;
    return plugin_config;
}

static uint32_t consult_frame_limit;
/* Requests to the host (consult, connect) belong to the call in progress: only its thread may
 * make them, while invoke runs, or two readers would split the host's replies between them. */
static pthread_t serve_thread;
static bool invoking;

static bool may_ask_host(void) { return pthread_equal(pthread_self(), serve_thread) && invoking; }

/* Sends a request inside the current call and reads the host's reply, which repeats the request
 * id and is one of the two expected types; anything else breaks the protocol. The reply has its own
 * buffer so the call's input survives. */
static frame ask_host(uint16_t type, const void *part1, size_t length1, const void *part2, size_t length2,
                      uint16_t answer, uint16_t refusal, uint32_t limit, int *descriptor) {
    static wire_buffer reply_buffer;
    pthread_mutex_lock(&write_lock);
    int written = wire_write(type, current_request, part1, length1, part2, length2);
    pthread_mutex_unlock(&write_lock);
    frame f;
    if (written < 0 || wire_read_into(&reply_buffer, &f, limit, descriptor) < 0 || f.request_id != current_request ||
        (f.type != answer && f.type != refusal))
        _exit(BRANE_EXIT_PROTOCOL);
    return f;
}

/* A consult is a request inside the current call: the host answers it before the call's result. */
static int host_consult(const char *specialist_id, const uint8_t *input, size_t input_length,
                        const uint8_t **output, size_t *output_length) {
    static const char refused[] = "{\"message\":\"consult needs a specialist id and an output pointer, from within invoke on its thread\"}";
    if (output == NULL || output_length == NULL)
        return BRANE_ERROR;
    size_t id_length = specialist_id ? strlen(specialist_id) : 0;
    if (id_length == 0 || id_length > METHOD_LIMIT || (input == NULL && input_length > 0) || !may_ask_host()) {
        *output = (const uint8_t *)refused;
        *output_length = sizeof refused - 1;
        return BRANE_ERROR;
    }
    uint8_t header[2 + METHOD_LIMIT];
    uint16_t length_word = (uint16_t)id_length;
    memcpy(header, &length_word, 2);
    memcpy(header + 2, specialist_id, id_length);
    frame f = ask_host(BRANE_FRAME_CONSULT, header, 2 + id_length, input, input_length, BRANE_FRAME_CONSULT_RESULT,
                       BRANE_FRAME_CONSULT_ERROR, consult_frame_limit, NULL);
    *output = f.payload;
    *output_length = f.length;
    return f.type == BRANE_FRAME_CONSULT_RESULT ? BRANE_OK : BRANE_ERROR;
}

#define HOST_NAME_LIMIT 1024u
#define CONNECT_MESSAGE_LIMIT 4096u

/* The host connects for the plugin and hands over the stream with SCM_RIGHTS. */
static int host_connect(const char *host, uint16_t port, int *fd, const char **message) {
    static char reason[CONNECT_MESSAGE_LIMIT + 1];
    const char *refusal = NULL;
    size_t host_length = host ? strnlen(host, HOST_NAME_LIMIT + 1) : 0;
    if (fd == NULL)
        refusal = "connect needs a place for the descriptor";
    else if (host_length == 0 || host_length > HOST_NAME_LIMIT)
        refusal = "connect needs a host name, address or unix socket path of 1 to 1024 bytes";
    else if (!may_ask_host())
        refusal = "connect is only allowed from within invoke, on its thread";
    if (fd)
        *fd = -1;
    if (refusal) {
        if (message)
            *message = refusal;
        return BRANE_ERROR;
    }
    uint8_t header[4];
    uint16_t length_word = (uint16_t)host_length;
    memcpy(header, &port, 2);
    memcpy(header + 2, &length_word, 2);
    int received;
    frame f = ask_host(BRANE_FRAME_CONNECT, header, sizeof header, host, host_length, BRANE_FRAME_CONNECTED,
                       BRANE_FRAME_CONNECT_ERROR, CONNECT_MESSAGE_LIMIT, &received);
    /* A stream comes with CONNECTED and only with it. */
    if (f.type == BRANE_FRAME_CONNECT_ERROR && received >= 0)
        _exit(BRANE_EXIT_PROTOCOL);
    if (f.type == BRANE_FRAME_CONNECTED && received < 0) {
        if (message)
            *message = "the host connected, but the stream could not be received: the plugin has as many open files as its limit allows";
        return BRANE_ERROR;
    }
    if (f.type == BRANE_FRAME_CONNECTED) {
        *fd = received;
        return BRANE_OK;
    }
    memcpy(reason, f.payload, f.length);
    reason[f.length] = 0;
    if (message)
        *message = reason;
    return BRANE_ERROR;
}

static const brane_host_api host_api = {
    .struct_size = sizeof(brane_host_api),
    .abi_major = BRANE_ABI_MAJOR,
    .abi_minor = BRANE_ABI_MINOR,
    .log = host_log,
    .config = host_config,
    .consult = host_consult,
    .connect = host_connect,
};

typedef struct setup {
    uint32_t flags;
    uint32_t call_frame_limit;
    uint64_t rlimits[BRANE_RLIMIT_COUNT];
    uint32_t uid, gid;
    landlock_policy landlock;
    const uint8_t *seccomp_program;
    uint32_t seccomp_instructions;
    uint8_t *serve_program;
    uint32_t serve_instructions;
    char *library;
    char *expected_id;
    char *directory;
} setup;

static setup read_setup(void) {
    frame f;
    if (wire_read(&f, SETUP_FRAME_LIMIT) < 0 || f.type != BRANE_FRAME_SETUP)
        fail_step(BRANE_STEP_SETUP_FRAME, EPROTO, "expected a SETUP frame from the host");
    cursor c = {f.payload, f.payload + f.length};
    setup s = {0};
    s.flags = take_u32(&c);
    s.call_frame_limit = take_u32(&c);
    for (int i = 0; i < BRANE_RLIMIT_COUNT; i++)
        s.rlimits[i] = take_u64(&c);
    s.uid = take_u32(&c);
    s.gid = take_u32(&c);
    s.landlock.abi = (int32_t)take_u32(&c);
    s.landlock.handled_fs = take_u64(&c);
    s.landlock.handled_net = take_u64(&c);
    s.landlock.scoped = take_u64(&c);
    s.landlock.path_count = take_u32(&c);
    s.landlock.paths = calloc(s.landlock.path_count + 1, sizeof *s.landlock.paths);
    for (uint32_t i = 0; s.landlock.paths && i < s.landlock.path_count; i++) {
        s.landlock.paths[i].access = take_u64(&c);
        s.landlock.paths[i].flags = take_u32(&c);
        s.landlock.paths[i].path = take_string(&c);
    }
    s.seccomp_instructions = take_u32(&c);
    /* The frame buffer is reused by the next read; the load program is installed before that. */
    s.seccomp_program = take_bytes(&c, (size_t)s.seccomp_instructions * 8u);
    s.serve_instructions = take_u32(&c);
    s.serve_program = malloc((size_t)s.serve_instructions * 8u + 1);
    if (s.serve_program)
        memcpy(s.serve_program, take_bytes(&c, (size_t)s.serve_instructions * 8u), (size_t)s.serve_instructions * 8u);
    s.library = take_string(&c);
    s.expected_id = take_string(&c);
    plugin_config_length = take_u32(&c);
    plugin_config = malloc(plugin_config_length + 1);
    if (s.landlock.paths == NULL || s.serve_program == NULL || plugin_config == NULL)
        fail_step(BRANE_STEP_SETUP_FRAME, ENOMEM, "out of memory reading the setup frame");
    memcpy(plugin_config, take_bytes(&c, plugin_config_length), plugin_config_length);
    plugin_config[plugin_config_length] = 0;
    s.directory = take_string(&c);
    return s;
}

/* Hands the seccomp listener to the host (it takes a copy with pidfd_getfd), with what was
 * applied — reported now, before any plugin code can run in this process — and waits until
 * the host holds it. The runner's own copy is closed: the plugin must never answer for itself.
 * LOADING then tells the host that what follows may be plugin code: a spare sandboxed ahead
 * that dies or stalls before it ran none, and its start is made again. */
static void hand_over_listener(int listener, uint32_t applied, int32_t landlock) {
    uint8_t payload[12];
    uint32_t fd = (uint32_t)listener;
    memcpy(payload, &fd, 4);
    memcpy(payload + 4, &applied, 4);
    memcpy(payload + 8, &landlock, 4);
    frame f;
    if (wire_write(BRANE_FRAME_FILTERED, 0, payload, sizeof payload, NULL, 0) < 0 || wire_read(&f, 0) < 0 ||
        f.type != BRANE_FRAME_LISTENING || wire_write(BRANE_FRAME_LOADING, 0, NULL, 0, NULL, 0) < 0)
        _exit(BRANE_EXIT_PROTOCOL);
    close(listener);
}

static void load_plugin(const setup *s) {
    void *library = dlopen(s->library, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL)
        fail_step(BRANE_STEP_DLOPEN, 0, dlerror());
    brane_plugin_entry_fn entry = (brane_plugin_entry_fn)dlsym(library, BRANE_PLUGIN_ENTRY_SYMBOL);
    if (entry == NULL)
        fail_step(BRANE_STEP_ENTRY_SYMBOL, 0, "the library does not export brane_plugin_entry");
    const brane_plugin_descriptor *d = entry();
    const char *problem = brane_descriptor_problem(d);
    if (problem != NULL)
        fail_step(BRANE_STEP_ABI_CHECK, 0, problem);
    if (strcmp(d->id, s->expected_id) != 0)
        fail_step(BRANE_STEP_IDENTITY, 0, "the library's plugin id differs from its manifest's id");
    plugin = d;
}

static _Noreturn void serve(uint32_t call_frame_limit) {
    char method[METHOD_LIMIT + 1];
    for (;;) {
        frame f;
        if (wire_read(&f, call_frame_limit) < 0)
            _exit(BRANE_EXIT_PROTOCOL); /* host gone, or a frame it should never send */
        if (f.type == BRANE_FRAME_SHUTDOWN) {
            if (plugin->shutdown)
                plugin->shutdown();
            _exit(0);
        }
        if (f.type != BRANE_FRAME_CALL || f.length < 2)
            _exit(BRANE_EXIT_PROTOCOL);
        uint16_t method_length;
        memcpy(&method_length, f.payload, 2);
        if (method_length > METHOD_LIMIT || (uint32_t)method_length + 2 > f.length)
            _exit(BRANE_EXIT_PROTOCOL);
        memcpy(method, f.payload + 2, method_length);
        method[method_length] = 0;
        const uint8_t *input = f.payload + 2 + method_length;
        size_t input_length = f.length - 2 - method_length;

        current_request = f.request_id;
        uint8_t *output = NULL;
        size_t output_length = 0;
        invoking = true;
        int status = plugin->invoke(method, input, input_length, &output, &output_length);
        invoking = false;
        pthread_mutex_lock(&write_lock);
        int written = wire_write(status == BRANE_OK ? BRANE_FRAME_RESULT : BRANE_FRAME_ERROR, f.request_id,
                                 output, output ? output_length : 0, NULL, 0);
        pthread_mutex_unlock(&write_lock);
        if (output)
            plugin->release(output, output_length);
        if (written < 0)
            _exit(BRANE_EXIT_PROTOCOL);
    }
}

/* Dies with the host; the check after it closes the race where the host died first. */
static void bind_to_host(pid_t host) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != host)
        _exit(BRANE_EXIT_PROTOCOL);
}

static _Noreturn void run_instance(pid_t host, prepared_namespaces prepared) {
    bind_to_host(host);
    serve_thread = pthread_self();
    setup s = read_setup();
    bool allow_weaker = s.flags & BRANE_SETUP_ALLOW_WEAKER;
    /* The plugin finds its data/ relative to its own directory (Landlock lets it read there). */
    int plugin_directory = open(s.directory, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (plugin_directory < 0 || fchdir(plugin_directory) != 0)
        fail_step(BRANE_STEP_SETUP_FRAME, errno, "cannot enter the plugin directory");
    apply_rlimits(s.rlimits);
    bool network = s.flags & BRANE_SETUP_ISOLATE_NETWORK;
    if (prepared.done && prepared.network != network)
        fail_step(BRANE_STEP_SETUP_FRAME, EINVAL, "this instance's namespaces were entered for another plan");
    uint32_t applied = namespaces_applied(network, prepared.done ? prepared.entered : enter_namespaces(network), allow_weaker);
    drop_bounding_and_ambient();
    /* Paths are opened while the runner may still traverse every directory on the way. */
    int ruleset = build_landlock_ruleset(&s.landlock, plugin_directory, allow_weaker);
    close(plugin_directory);
    if (s.flags & BRANE_SETUP_SWITCH_IDENTITY) {
        switch_identity(s.uid, s.gid, host);
        applied |= BRANE_APPLIED_IDENTITY;
    }
    forbid_new_privileges();
    clear_capabilities();
    if (ruleset >= 0) {
        enforce_landlock(ruleset);
        applied |= BRANE_APPLIED_LANDLOCK;
    }
    int listener = install_seccomp_with_listener(s.seccomp_program, s.seccomp_instructions);
    hand_over_listener(listener, applied, ruleset >= 0 ? s.landlock.abi : 0);

    consult_frame_limit = s.call_frame_limit;
    load_plugin(&s);
    if (plugin->init(&host_api) != BRANE_OK)
        fail_step(BRANE_STEP_INIT, 0, "the plugin's init returned an error");
    install_serve_filter(s.serve_program, s.serve_instructions);

    uint8_t ready[8];
    uint32_t kind = plugin->kind;
    memcpy(ready, &kind, 4);
    memcpy(ready + 4, &plugin->abi_major, 2);
    memcpy(ready + 6, &plugin->abi_minor, 2);
    size_t version_length = strnlen(plugin->version, METHOD_LIMIT);
    uint16_t version_word = (uint16_t)version_length;
    uint8_t version[2 + METHOD_LIMIT];
    memcpy(version, &version_word, 2);
    memcpy(version + 2, plugin->version, version_length);
    if (wire_write(BRANE_FRAME_READY, 0, ready, sizeof ready, version, 2 + version_length) < 0)
        _exit(BRANE_EXIT_PROTOCOL);
    serve(s.call_frame_limit);
}

int main(int argc, char **argv) {
    bool zygote = argc == 3 && strcmp(argv[1], "--zygote") == 0;
    pid_t host = argc == 2 || zygote ? (pid_t)strtol(argv[argc - 1], NULL, 10) : 0;
    if (host <= 0)
        _exit(BRANE_EXIT_PROTOCOL);
    prepared_namespaces prepared = {0};
    if (zygote) {
        bind_to_host(host);
        prepared = zygote_serve(host);
        /* In a forked child from here on; this frame never returns. */
        zygote_reseed_stack_guard();
    }
    run_instance(host, prepared);
}

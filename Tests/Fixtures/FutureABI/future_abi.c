/* A plugin built against a future major ABI; its init must never run. */
#include "brane_plugin.h"

#include <stdlib.h>

static int init(const brane_host_api *host) {
    (void)host;
    abort(); /* reaching this would mean the host called into an incompatible plugin */
}

static int invoke(const char *m, const uint8_t *i, size_t l, uint8_t **o, size_t *ol) {
    (void)m, (void)i, (void)l, (void)o, (void)ol;
    abort();
}

static void release(uint8_t *o, size_t l) { (void)o, (void)l; }

BRANE_EXPORT const brane_plugin_descriptor *brane_plugin_entry(void) {
    static const brane_plugin_descriptor descriptor = {
        .magic = BRANE_PLUGIN_MAGIC,
        .struct_size = sizeof(brane_plugin_descriptor),
        .abi_major = BRANE_ABI_MAJOR + 1,
        .abi_minor = 0,
        .kind = BRANE_KIND_SYNAPSE,
        .id = "test.brane.future-abi",
        .version = "9.0.0",
        .init = init,
        .invoke = invoke,
        .release = release,
    };
    return &descriptor;
}

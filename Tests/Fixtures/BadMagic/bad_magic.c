/* The entry symbol exists but returns something that is not a Brane descriptor. */
#include "brane_plugin.h"

static const uint32_t not_a_descriptor[16] = {0xdeadbeef};

BRANE_EXPORT const brane_plugin_descriptor *brane_plugin_entry(void) {
    return (const brane_plugin_descriptor *)(const void *)not_a_descriptor;
}

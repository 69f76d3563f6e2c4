#include "brane_plugin.h"

/* The size of a 1.0 descriptor: every later minor version is at least this big. */
#define BRANE_DESCRIPTOR_1_0_SIZE (offsetof(brane_plugin_descriptor, shutdown) + sizeof(void (*)(void)))

const char *brane_abi_problem(uint16_t major, uint16_t minor) {
    if (major != BRANE_ABI_MAJOR)
        return major > BRANE_ABI_MAJOR ? "incompatible ABI: the plugin was built for a newer major version than this host"
                                       : "incompatible ABI: the plugin was built for an older major version than this host";
    if (minor > BRANE_ABI_MINOR)
        return "incompatible ABI: the plugin was built for a newer minor version than this host; upgrade Brane";
    return NULL;
}

const char *brane_descriptor_problem(const brane_plugin_descriptor *d) {
    if (d == NULL)
        return "brane_plugin_entry returned NULL";
    if (d->magic != BRANE_PLUGIN_MAGIC)
        return "bad magic: the entry symbol does not return a Brane plugin descriptor";
    const char *abi = brane_abi_problem(d->abi_major, d->abi_minor);
    if (abi != NULL)
        return abi;
    if (d->struct_size < BRANE_DESCRIPTOR_1_0_SIZE)
        return "descriptor struct_size is smaller than ABI 1.0 requires";
    if (d->kind < BRANE_KIND_SPECIALIST || d->kind > BRANE_KIND_SCANNER)
        return "descriptor kind is not specialist, synapse, sensor or scanner";
    if (d->id == NULL || d->version == NULL)
        return "descriptor id or version is NULL";
    if (d->init == NULL || d->invoke == NULL || d->release == NULL)
        return "descriptor lacks init, invoke or release";
    return NULL;
}

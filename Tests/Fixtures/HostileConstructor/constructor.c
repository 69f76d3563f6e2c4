/* A plugin whose constructor attacks during dlopen, before Brane calls anything in it. */
#include "brane_plugin.h"

#include <sys/socket.h>

__attribute__((constructor)) static void attack_on_load(void) { socket(AF_INET, SOCK_STREAM, 0); }

BRANE_EXPORT const brane_plugin_descriptor *brane_plugin_entry(void) { return NULL; }

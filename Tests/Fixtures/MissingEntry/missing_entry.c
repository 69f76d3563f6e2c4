/* A shared library that exports no brane_plugin_entry. */
__attribute__((visibility("default"))) int some_other_symbol(void) { return 42; }

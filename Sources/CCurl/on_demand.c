/* libcurl, loaded on first use.
 *
 * libcurl and the 28 libraries it brings cost every process that links it about 3 ms at exec
 * (docs/performance.md), while only an http(s) index, a model call, the Docker scanner and
 * com.brane.fetch's calls use it. So nothing links it: each libcurl function that is called —
 * by Brane, or by FoundationNetworking, which the CLI links in for the MCP SDK's client
 * transports — is defined here with libcurl's own prototype and forwards to the real one, looked
 * up once in libcurl.so.4, which the first call loads. Where it cannot be loaded, each function
 * fails the way libcurl reports failure (NULL, CURLE_FAILED_INIT, ...) and
 * brane_curl_start_failure() says why. */
#define CURL_DISABLE_TYPECHECK /* typecheck-gcc.h makes curl_easy_setopt a macro */
/* Not hidden: a process that also loads libcurl's users as shared libraries (the tests, with the
 * shared FoundationNetworking) cannot be linked with hidden definitions of what they import. A
 * forwarder that ends up serving another library's call still calls the real function. */
#include "brane_curl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

/* An option's number gives its argument's type, in ranges of 10000 (CURLOPT_WITH_ARGUMENT below):
 * a libcurl with a range past BLOB must be read before it is built against. */
_Static_assert(CURLOPT_LASTENTRY < CURLOPTTYPE_BLOB + 10000, "a CURLoption type this file does not forward");
_Static_assert(CURLMOPT_LASTENTRY < CURLOPTTYPE_BLOB, "a CURLMoption type this file does not forward");

static void *library;
static char load_error[512];
/* The first libcurl function the loaded library lacked (an older libcurl), for the error. */
static const char *_Atomic missing_function;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void load(void) {
    library = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        const char *why = dlerror();
        snprintf(load_error, sizeof load_error, "%s", why ? why : "libcurl.so.4 could not be loaded");
    }
}

/* Why libcurl cannot be used (loaded, or a function of it missing), or NULL. */
static const char *load_failure(void) {
    pthread_once(&load_once, load);
    if (!library)
        return load_error;
    const char *missing = atomic_load(&missing_function);
    if (!missing)
        return NULL;
    static _Thread_local char lacks[160];
    snprintf(lacks, sizeof lacks, "libcurl.so.4 has no %s (a libcurl older than the one Brane was built against)", missing);
    return lacks;
}

const char *brane_curl_start_failure(void) {
    static _Thread_local char message[sizeof load_error + 32];
    const char *why = load_failure();
    snprintf(message, sizeof message, "libcurl could not start%s%s", why ? ": " : "", why ? why : "");
    return message;
}

/* libcurl's `name`, or NULL. dlsym on the handle searches libcurl and what it needs, never the
 * process's global scope, so it cannot find the forwarder `self`; the check makes that certain. */
static void *real(const char *name, void *_Atomic *slot, void *self) {
    void *function = atomic_load_explicit(slot, memory_order_acquire);
    if (function)
        return function;
    pthread_once(&load_once, load);
    function = library ? dlsym(library, name) : NULL;
    if (function == self)
        function = NULL;
    if (!function && library) {
        const char *none = NULL;
        atomic_compare_exchange_strong(&missing_function, &none, name);
    }
    atomic_store_explicit(slot, function, memory_order_release);
    return function;
}

#define REAL(name) ({ static void *_Atomic slot; (__typeof__(&name))real(#name, &slot, (void *)name); })
#define FORWARD(type, name, failure, parameters, arguments) \
    type name parameters { __typeof__(&name) function = REAL(name); return function ? function arguments : (failure); }
#define FORWARD_VOID(name, parameters, arguments) \
    void name parameters { __typeof__(&name) function = REAL(name); if (function) function arguments; }

FORWARD(CURLcode, curl_global_init, CURLE_FAILED_INIT, (long flags), (flags))
FORWARD(char *, curl_version, "libcurl (not loaded)", (void), ())
FORWARD(curl_version_info_data *, curl_version_info, NULL, (CURLversion version), (version))
FORWARD_VOID(curl_free, (void *pointer), (pointer))

FORWARD(CURL *, curl_easy_init, NULL, (void), ())
FORWARD(CURLcode, curl_easy_perform, CURLE_FAILED_INIT, (CURL *curl), (curl))
FORWARD(CURLcode, curl_easy_pause, CURLE_FAILED_INIT, (CURL *curl, int bitmask), (curl, bitmask))
FORWARD(const char *, curl_easy_strerror, brane_curl_start_failure(), (CURLcode code), (code))
FORWARD_VOID(curl_easy_cleanup, (CURL *curl), (curl))
FORWARD(struct curl_slist *, curl_slist_append, NULL, (struct curl_slist *list, const char *text), (list, text))
FORWARD_VOID(curl_slist_free_all, (struct curl_slist *list), (list))

FORWARD(CURLM *, curl_multi_init, NULL, (void), ())
FORWARD(CURLMcode, curl_multi_add_handle, CURLM_INTERNAL_ERROR, (CURLM *multi, CURL *curl), (multi, curl))
FORWARD(CURLMcode, curl_multi_remove_handle, CURLM_INTERNAL_ERROR, (CURLM *multi, CURL *curl), (multi, curl))
FORWARD(CURLMcode, curl_multi_assign, CURLM_INTERNAL_ERROR, (CURLM *multi, curl_socket_t socket, void *data), (multi, socket, data))
FORWARD(CURLMcode, curl_multi_socket_action, CURLM_INTERNAL_ERROR, (CURLM *multi, curl_socket_t socket, int events, int *running),
        (multi, socket, events, running))
FORWARD(CURLMsg *, curl_multi_info_read, NULL, (CURLM *multi, int *queued), (multi, queued))
FORWARD(CURLMcode, curl_multi_cleanup, CURLM_INTERNAL_ERROR, (CURLM *multi), (multi))

FORWARD(CURLU *, curl_url, NULL, (void), ())
FORWARD_VOID(curl_url_cleanup, (CURLU *url), (url))
FORWARD(CURLUcode, curl_url_get, CURLUE_OUT_OF_MEMORY, (CURLU *url, CURLUPart part, char **value, unsigned int flags),
        (url, part, value, flags))
FORWARD(CURLUcode, curl_url_set, CURLUE_OUT_OF_MEMORY, (CURLU *url, CURLUPart part, const char *value, unsigned int flags),
        (url, part, value, flags))

/* An option's one argument has the type its number's range gives (CURLOPTTYPE_*), the same for
 * easy and multi options; the real function is called with that type. */
#define CURLOPT_WITH_ARGUMENT(function, handle, option, arguments)                                      \
    ((option) < CURLOPTTYPE_OBJECTPOINT     ? function(handle, option, va_arg(arguments, long))            \
     : (option) < CURLOPTTYPE_FUNCTIONPOINT ? function(handle, option, va_arg(arguments, void *))          \
     : (option) < CURLOPTTYPE_OFF_T         ? function(handle, option, va_arg(arguments, void (*)(void)))  \
     : (option) < CURLOPTTYPE_BLOB          ? function(handle, option, va_arg(arguments, curl_off_t))      \
                                            : function(handle, option, va_arg(arguments, void *)))

#define FORWARD_OPTION(type, name, handle_type, option_type, failure)                  \
    type name(handle_type *handle, option_type option, ...) {                          \
        __typeof__(&name) function = REAL(name);                                       \
        if (!function)                                                                 \
            return failure;                                                            \
        va_list arguments;                                                             \
        va_start(arguments, option);                                                   \
        type result = CURLOPT_WITH_ARGUMENT(function, handle, option, arguments);      \
        va_end(arguments);                                                             \
        return result;                                                                 \
    }

FORWARD_OPTION(CURLcode, curl_easy_setopt, CURL, CURLoption, CURLE_FAILED_INIT)
FORWARD_OPTION(CURLMcode, curl_multi_setopt, CURLM, CURLMoption, CURLM_INTERNAL_ERROR)

/* Every CURLINFO is answered through a pointer. */
CURLcode curl_easy_getinfo(CURL *curl, CURLINFO info, ...) {
    __typeof__(&curl_easy_getinfo) function = REAL(curl_easy_getinfo);
    if (!function)
        return CURLE_FAILED_INIT;
    va_list arguments;
    va_start(arguments, info);
    CURLcode result = function(curl, info, va_arg(arguments, void *));
    va_end(arguments);
    return result;
}

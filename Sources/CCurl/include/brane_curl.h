// libcurl for http(s) marketplace indexes, model calls, the Docker scanner and com.brane.fetch, loaded on
// first use (on_demand.c). curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call:
// one typed wrapper per argument type.
#include <curl/curl.h>

/* What to tell the user when libcurl would not start: "libcurl could not start", with why when it
 * could not be loaded (or lacks a function Brane calls). Loads it first; valid until the next call. */
const char *brane_curl_start_failure(void);

typedef size_t (*brane_curl_write_fn)(char *data, size_t size, size_t count, void *context);

static inline CURLcode brane_curl_set_long(CURL *curl, CURLoption option, long value) { return curl_easy_setopt(curl, option, value); }
static inline CURLcode brane_curl_set_offset(CURL *curl, CURLoption option, curl_off_t value) { return curl_easy_setopt(curl, option, value); }
static inline CURLcode brane_curl_set_string(CURL *curl, CURLoption option, const char *value) { return curl_easy_setopt(curl, option, value); }
static inline CURLcode brane_curl_set_pointer(CURL *curl, CURLoption option, void *value) { return curl_easy_setopt(curl, option, value); }
static inline CURLcode brane_curl_set_write_function(CURL *curl, brane_curl_write_fn function) { return curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, function); }
static inline long brane_curl_response_code(CURL *curl) {
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    return code;
}
/* A string-valued CURLINFO (content type, redirect URL), or NULL. Valid until the handle is cleaned up. */
static inline const char *brane_curl_string_info(CURL *curl, CURLINFO info) {
    const char *value = NULL;
    return curl_easy_getinfo(curl, info, &value) == CURLE_OK ? value : NULL;
}
/* The errno of the last failed connect, or 0. */
static inline long brane_curl_os_errno(CURL *curl) {
    long value = 0;
    curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &value);
    return value;
}

/* A sandboxed plugin creates no sockets: the host connects for it (ABI 1.2) and libcurl takes
 * that stream instead of making one (once; *slot becomes -1 and libcurl closes it), and does not
 * connect it again. */
static curl_socket_t brane_curl_take_socket(void *slot, curlsocktype purpose, struct curl_sockaddr *address) {
    (void)purpose;
    (void)address;
    int *given = slot;
    int fd = *given;
    *given = -1;
    return fd < 0 ? CURL_SOCKET_BAD : fd;
}
static int brane_curl_socket_is_connected(void *context, curl_socket_t fd, curlsocktype purpose) {
    (void)context;
    (void)fd;
    (void)purpose;
    return CURL_SOCKOPT_ALREADY_CONNECTED;
}
static inline void brane_curl_use_connected_socket(CURL *curl, int *slot) {
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, brane_curl_take_socket);
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, slot);
    curl_easy_setopt(curl, CURLOPT_SOCKOPTFUNCTION, brane_curl_socket_is_connected);
}

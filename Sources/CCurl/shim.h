// libcurl for http(s) marketplace indexes. curl_easy_setopt and curl_easy_getinfo are variadic,
// which Swift cannot call: one typed wrapper per argument type.
#include <curl/curl.h>

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
/* The errno of the last failed connect (EACCES when Landlock refused it), or 0. */
static inline long brane_curl_os_errno(CURL *curl) {
    long value = 0;
    curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &value);
    return value;
}

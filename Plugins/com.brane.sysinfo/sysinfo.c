/*
 * com.brane.sysinfo — a tier-0 sensor in C: load averages, memory and uptime from /proc.
 * It may read exactly the three /proc files its manifest declares (Landlock); it has no network,
 * cannot write, and cannot start a process.
 */
#include "brane_plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const brane_host_api *host;

static int init(const brane_host_api *api) {
    host = api;
    return BRANE_OK;
}

/* Reads the value of a "Key:   123 kB" line of /proc/meminfo, in KiB; -1 when absent. */
static long long meminfo_kib(const char *text, const char *key) {
    const char *at = strstr(text, key);
    return at ? strtoll(at + strlen(key), NULL, 10) : -1;
}

static int read_file(const char *path, char *buffer, size_t size) {
    FILE *file = fopen(path, "r");
    if (!file)
        return -1;
    size_t n = fread(buffer, 1, size - 1, file);
    buffer[n] = 0;
    fclose(file);
    return 0;
}

static int sample(uint8_t **output, size_t *output_length) {
    char loadavg[256], meminfo[8192], uptime[128];
    if (read_file("/proc/loadavg", loadavg, sizeof loadavg) < 0 || read_file("/proc/meminfo", meminfo, sizeof meminfo) < 0 ||
        read_file("/proc/uptime", uptime, sizeof uptime) < 0) {
        static const char failure[] = "{\"message\":\"cannot read /proc (is it mounted?)\"}";
        *output = (uint8_t *)strdup(failure);
        *output_length = sizeof failure - 1;
        return BRANE_ERROR;
    }
    double load1 = 0, load5 = 0, load15 = 0, up = 0;
    int running = 0, total = 0;
    sscanf(loadavg, "%lf %lf %lf %d/%d", &load1, &load5, &load15, &running, &total);
    sscanf(uptime, "%lf", &up);
    long long mem_total = meminfo_kib(meminfo, "MemTotal:"), mem_available = meminfo_kib(meminfo, "MemAvailable:");
    long long swap_total = meminfo_kib(meminfo, "SwapTotal:"), swap_free = meminfo_kib(meminfo, "SwapFree:");
    double used_percent = mem_total > 0 ? 100.0 * (double)(mem_total - mem_available) / (double)mem_total : 0;
    char *json = malloc(512);
    if (!json)
        return BRANE_ERROR;
    int n = snprintf(json, 512,
                     "{\"load\":{\"1m\":%.2f,\"5m\":%.2f,\"15m\":%.2f},\"tasks\":{\"running\":%d,\"total\":%d},"
                     "\"memory\":{\"totalKiB\":%lld,\"availableKiB\":%lld,\"usedPercent\":%.1f},"
                     "\"swap\":{\"totalKiB\":%lld,\"freeKiB\":%lld},\"uptimeSeconds\":%.0f}",
                     load1, load5, load15, running, total, mem_total, mem_available, used_percent, swap_total, swap_free, up);
    *output = (uint8_t *)json;
    *output_length = (size_t)n;
    return BRANE_OK;
}

static int invoke(const char *method, const uint8_t *input, size_t input_length, uint8_t **output,
                  size_t *output_length) {
    (void)input;
    (void)input_length;
    if (strcmp(method, "sensor/sample") == 0)
        return sample(output, output_length);
    static const char unknown[] = "{\"message\":\"unknown method; this sensor answers sensor/sample\"}";
    host->log(BRANE_LOG_WARNING, method, strlen(method));
    *output = (uint8_t *)strdup(unknown);
    *output_length = sizeof unknown - 1;
    return BRANE_ERROR;
}

static void release(uint8_t *output, size_t output_length) {
    (void)output_length;
    free(output);
}

BRANE_EXPORT const brane_plugin_descriptor *brane_plugin_entry(void) {
    static const brane_plugin_descriptor descriptor = {
        BRANE_DESCRIPTOR_HEADER,
        .kind = BRANE_KIND_SENSOR,
        .id = "com.brane.sysinfo",
        .version = "0.1.0",
        .init = init,
        .invoke = invoke,
        .release = release,
        .shutdown = NULL,
    };
    return &descriptor;
}

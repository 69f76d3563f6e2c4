/* A specialist whose whole state is how many events it has been fed: it alerts at every 25th.
 * Unlike a baseline, a count never heals, so a replay that misses or doubles one event shows. */
#define _GNU_SOURCE /* memmem */
#include "brane_plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned long fed;

static int init(const brane_host_api *host) {
    (void)host;
    return BRANE_OK;
}

static int reply(uint8_t **output, size_t *length, const char *text) {
    *length = strlen(text);
    *output = malloc(*length + 1);
    if (!*output) return BRANE_ERROR;
    memcpy(*output, text, *length);
    return BRANE_OK;
}

/* The event's "date" (ten characters of yyyy-mm-dd), so an alert also says which event it counted. */
static void event_date(const uint8_t *input, size_t length, char date[11]) {
    static const char key[] = "\"date\":\"";
    strcpy(date, "?");
    for (size_t at = 0; at + sizeof key - 1 + 10 <= length; at++) {
        if (memcmp(input + at, key, sizeof key - 1) == 0) {
            memcpy(date, input + at + sizeof key - 1, 10);
            date[10] = 0;
            if (strchr(date, '"')) strcpy(date, "?");
            return;
        }
    }
}

static int invoke(const char *method, const uint8_t *input, size_t input_length, uint8_t **output, size_t *output_length) {
    char text[256], date[11];
    if (strcmp(method, "specialist/event") == 0) {
        fed++;
        /* An event that asks for it costs 300 ms of CPU: how a test spends an instance's CPU-time limit. */
        if (input_length >= 11 && memmem(input, input_length, "\"burn\":true", 11)) {
            clock_t until = clock() + CLOCKS_PER_SEC * 3 / 10;
            while (clock() < until) {}
        }
        event_date(input, input_length, date);
        if (fed % 25 == 0)
            snprintf(text, sizeof text, "{\"alerts\":[{\"rule\":\"every-25\",\"date\":\"event %lu\",\"trigger\":\"count\",\"message\":\"%lu events, the last on %s\"}]}",
                     fed, fed, date);
        else
            snprintf(text, sizeof text, "{\"alerts\":[]}");
        return reply(output, output_length, text);
    }
    if (strcmp(method, "specialist/consult") == 0) {
        snprintf(text, sizeof text, "{\"fed\":%lu}", fed);
        return reply(output, output_length, text);
    }
    reply(output, output_length, "{\"message\":\"unknown method\"}");
    return BRANE_ERROR;
}

static void release(uint8_t *output, size_t length) {
    (void)length;
    free(output);
}

BRANE_EXPORT const brane_plugin_descriptor *brane_plugin_entry(void) {
    static const brane_plugin_descriptor descriptor = {
        BRANE_DESCRIPTOR_HEADER,
        .kind = BRANE_KIND_SPECIALIST,
        .id = "test.brane.tally",
        .version = "0.0.1",
        .init = init,
        .invoke = invoke,
        .release = release,
    };
    return &descriptor;
}

#include "wire.h"

#include "brane_system.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static wire_buffer call_buffer;

static int read_exactly(void *into, size_t length) {
    uint8_t *p = into;
    while (length > 0) {
        ssize_t n = read(RUNNER_SOCKET_FD, p, length);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        length -= (size_t)n;
    }
    return 0;
}

/* Reads the first bytes of a frame with recvmsg, so a descriptor the host attached to them
 * (SCM_RIGHTS) arrives: *descriptor gets it, or -1 — also when the kernel could not install it
 * (the plugin is at RLIMIT_NOFILE). More than one descriptor is a protocol error. */
static int read_start_with_descriptor(void *into, size_t length, int *descriptor) {
    ssize_t n = brane_receive_with_descriptor(RUNNER_SOCKET_FD, into, length, descriptor);
    if (n <= 0) {
        if (*descriptor >= 0)
            close(*descriptor);
        *descriptor = -1;
        return -1;
    }
    return read_exactly((uint8_t *)into + n, length - (size_t)n);
}

int wire_read(frame *out, uint32_t max_length) { return wire_read_into(&call_buffer, out, max_length, NULL); }

int wire_read_into(wire_buffer *into, frame *out, uint32_t max_length, int *descriptor) {
    uint8_t header[BRANE_FRAME_HEADER_SIZE];
    if (descriptor ? read_start_with_descriptor(header, sizeof header, descriptor) < 0
                   : read_exactly(header, sizeof header) < 0)
        return -1;
    uint32_t length, request_id;
    uint16_t type;
    memcpy(&length, header, 4);
    memcpy(&request_id, header + 4, 4);
    memcpy(&type, header + 8, 2);
    if (length > max_length)
        return -1;
    if (length + 1 > into->capacity) {
        free(into->data);
        into->capacity = length + 1;
        into->data = malloc(into->capacity);
        if (into->data == NULL) {
            into->capacity = 0;
            return -1;
        }
    }
    if (read_exactly(into->data, length) < 0)
        return -1;
    into->data[length] = 0; /* lets the serve loop hand out NUL-terminated strings in place */
    *out = (frame){.request_id = request_id, .type = type, .payload = into->data, .length = length};
    return 0;
}

int wire_write(uint16_t type, uint32_t request_id, const void *part1, size_t length1, const void *part2,
               size_t length2) {
    uint8_t header[BRANE_FRAME_HEADER_SIZE] = {0};
    uint32_t length = (uint32_t)(length1 + length2);
    memcpy(header, &length, 4);
    memcpy(header + 4, &request_id, 4);
    memcpy(header + 8, &type, 2);
    struct iovec parts[3] = {{header, sizeof header}, {(void *)part1, length1}, {(void *)part2, length2}};
    struct iovec *next = parts;
    int count = 3;
    while (count > 0) {
        ssize_t n = writev(RUNNER_SOCKET_FD, next, count);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        while (count > 0 && (size_t)n >= next->iov_len) {
            n -= (ssize_t)next->iov_len;
            next++;
            count--;
        }
        if (count > 0) {
            next->iov_base = (uint8_t *)next->iov_base + n;
            next->iov_len -= (size_t)n;
        }
    }
    return 0;
}

_Noreturn void fail_step(brane_setup_step step, int error, const char *message) {
    uint8_t head[8];
    uint32_t s = step;
    int32_t e = error;
    memcpy(head, &s, 4);
    memcpy(head + 4, &e, 4);
    wire_write(BRANE_FRAME_FAILED, 0, head, sizeof head, message, message ? strlen(message) : 0);
    _exit(BRANE_EXIT_STEP_BASE + (int)step);
}

const uint8_t *take_bytes(cursor *c, size_t length) {
    if ((size_t)(c->end - c->at) < length)
        fail_step(BRANE_STEP_SETUP_FRAME, EPROTO, "setup frame is shorter than its fields say");
    const uint8_t *start = c->at;
    c->at += length;
    return start;
}

uint16_t take_u16(cursor *c) {
    uint16_t v;
    memcpy(&v, take_bytes(c, 2), 2);
    return v;
}

uint32_t take_u32(cursor *c) {
    uint32_t v;
    memcpy(&v, take_bytes(c, 4), 4);
    return v;
}

uint64_t take_u64(cursor *c) {
    uint64_t v;
    memcpy(&v, take_bytes(c, 8), 8);
    return v;
}

char *take_string(cursor *c) {
    uint16_t length = take_u16(c);
    const uint8_t *bytes = take_bytes(c, length);
    char *s = malloc((size_t)length + 1);
    if (s == NULL)
        fail_step(BRANE_STEP_SETUP_FRAME, ENOMEM, "out of memory reading the setup frame");
    memcpy(s, bytes, length);
    s[length] = 0;
    return s;
}

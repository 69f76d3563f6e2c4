/* Frame I/O on the runner's socket (fd 3). */
#ifndef RUNNER_WIRE_H
#define RUNNER_WIRE_H
#include "brane_wire.h"
#include <stddef.h>
#include <stdint.h>

#define RUNNER_SOCKET_FD 3

typedef struct frame {
    uint32_t request_id;
    uint16_t type;
    uint8_t *payload; /* owned by the reader's buffer; valid until the next read */
    uint32_t length;
} frame;

/* A growable buffer frames are read into; a frame's payload lives until the next read into it. */
typedef struct wire_buffer {
    uint8_t *data;
    size_t capacity;
} wire_buffer;

/* Reads one frame of at most `max_length` payload bytes into the serve loop's buffer.
 * Returns 0, or -1 on EOF, a short read or an oversized frame. */
int wire_read(frame *out, uint32_t max_length);
/* The same into another buffer, so a reply read during a call leaves the call's input intact.
 * With `descriptor`, the header is read with recvmsg and a descriptor the host attached to it
 * is stored there (else -1); the caller must close it unless it hands it on. */
int wire_read_into(wire_buffer *into, frame *out, uint32_t max_length, int *descriptor);
/* Writes header + up to two payload parts in one writev. Returns 0 or -1. */
int wire_write(uint16_t type, uint32_t request_id, const void *part1, size_t length1, const void *part2,
               size_t length2);

/* Reports a failed setup step to the host and exits with 64 + step. */
_Noreturn void fail_step(brane_setup_step step, int error, const char *message);

/* Cursor over a setup payload; every getter fails the setup step when the payload is short. */
typedef struct cursor {
    const uint8_t *at;
    const uint8_t *end;
} cursor;
uint16_t take_u16(cursor *c);
uint32_t take_u32(cursor *c);
uint64_t take_u64(cursor *c);
const uint8_t *take_bytes(cursor *c, size_t length);
/* A length-prefixed string (u16 length), copied NUL-terminated. */
char *take_string(cursor *c);

#endif

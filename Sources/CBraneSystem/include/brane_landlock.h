/*
 * brane_landlock.h — Landlock's UAPI up to ABI 6, carried here because build
 * machines may have older kernel headers than the kernels Brane runs on.
 * Values are the kernel's (include/uapi/linux/landlock.h).
 */
#ifndef BRANE_LANDLOCK_H
#define BRANE_LANDLOCK_H
#include <stdint.h>

struct brane_landlock_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net; /* ABI 4 */
    uint64_t scoped;             /* ABI 6 */
};

struct brane_landlock_path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

struct brane_landlock_net_port_attr {
    uint64_t allowed_access;
    uint64_t port;
};

#define BRANE_LANDLOCK_RULE_PATH_BENEATH 1
#define BRANE_LANDLOCK_RULE_NET_PORT 2

/* Filesystem rights. */
#define BRANE_LANDLOCK_FS_EXECUTE (1ULL << 0)
#define BRANE_LANDLOCK_FS_WRITE_FILE (1ULL << 1)
#define BRANE_LANDLOCK_FS_READ_FILE (1ULL << 2)
#define BRANE_LANDLOCK_FS_READ_DIR (1ULL << 3)
#define BRANE_LANDLOCK_FS_REMOVE_DIR (1ULL << 4)
#define BRANE_LANDLOCK_FS_REMOVE_FILE (1ULL << 5)
#define BRANE_LANDLOCK_FS_MAKE_CHAR (1ULL << 6)
#define BRANE_LANDLOCK_FS_MAKE_DIR (1ULL << 7)
#define BRANE_LANDLOCK_FS_MAKE_REG (1ULL << 8)
#define BRANE_LANDLOCK_FS_MAKE_SOCK (1ULL << 9)
#define BRANE_LANDLOCK_FS_MAKE_FIFO (1ULL << 10)
#define BRANE_LANDLOCK_FS_MAKE_BLOCK (1ULL << 11)
#define BRANE_LANDLOCK_FS_MAKE_SYM (1ULL << 12)
#define BRANE_LANDLOCK_FS_REFER (1ULL << 13)     /* ABI 2 */
#define BRANE_LANDLOCK_FS_TRUNCATE (1ULL << 14)  /* ABI 3 */
#define BRANE_LANDLOCK_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */

/* Network rights (ABI 4). */
#define BRANE_LANDLOCK_NET_BIND_TCP (1ULL << 0)
#define BRANE_LANDLOCK_NET_CONNECT_TCP (1ULL << 1)

/* Scopes (ABI 6): no connecting to abstract unix sockets or signalling outside the domain. */
#define BRANE_LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define BRANE_LANDLOCK_SCOPE_SIGNAL (1ULL << 1)

#endif

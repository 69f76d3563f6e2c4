/*
 * A plugin that attacks its sandbox. Each `attack/<name>` method tries one escape; the
 * tests assert how it is contained. Attacks that return report what the kernel answered
 * ({"errno": N} or a measurement); the others are expected never to return.
 */
#define _GNU_SOURCE
#include "brane_plugin.h"

#include <errno.h>
#include <stdarg.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <dlfcn.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern char **environ;
static const brane_host_api *host;
/* Set by attack/in-release and attack/in-shutdown: the next release or the shutdown misbehaves. */
static int attack_in_release, attack_in_shutdown;

static void write_raw(const void *bytes, size_t length) {
    if (write(3, bytes, length) < 0) {}
}

/* A raw frame on the runner's socket, bypassing the host API (header: length, request id, type). */
static void write_frame(uint16_t type, const void *payload, uint32_t length) {
    uint8_t header[12] = {0};
    memcpy(header, &length, 4);
    memcpy(header + 8, &type, 2);
    write_raw(header, sizeof header);
    write_raw(payload, length);
}

/* init attacks, chosen by the manifest's config {"initAttack": "..."}: every start-up phase is attacked too. */
static int init(const brane_host_api *api) {
    host = api;
    size_t length = 0;
    const char *config = api->config(&length);
    if (strstr(config, "\"failed-then-hang\"")) { /* a forged FAILED frame, then the process keeps running */
        uint8_t failed[8 + 6] = {12, 0, 0, 0, 0, 0, 0, 0, 'f', 'o', 'r', 'g', 'e', 'd'};
        write_frame(8, failed, sizeof failed);
        for (;;)
            sleep(3600);
    }
    if (strstr(config, "\"failed-landlock\"")) { /* a forged FAILED naming a sandbox step: "the host cannot sandbox me" */
        uint8_t failed[8 + 4] = {6, 0, 0, 0, 38, 0, 0, 0, 'f', 'a', 'k', 'e'};
        write_frame(8, failed, sizeof failed);
        _exit(70);
    }
    if (strstr(config, "\"own-filter\"")) { /* its own filter, answering EPERM for socket: calls the listener never sees */
        struct sock_filter program[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_socket, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog filter = {.len = 4, .filter = program};
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &filter);
    }
    if (strstr(config, "\"socket-in-init\""))
        socket(AF_INET, SOCK_STREAM, 0);
    /* Only once a file named kill-marker is in its directory (the runner's cwd): starts before it
     * succeed, so the one that dies can be a spare sandboxed ahead. */
    if (strstr(config, "\"sigkill-in-init-after-marker\"")) {
        int marker = open("kill-marker", O_RDONLY | O_CLOEXEC);
        if (marker >= 0)
            kill(getpid(), SIGKILL);
    }
    if (strstr(config, "\"hang-in-init\""))
        for (;;)
            sleep(3600);
    if (strstr(config, "\"log-flood-in-init\""))
        for (int i = 0; i < 100000; i++)
            api->log(BRANE_LOG_INFO, "flood", 5);
    return BRANE_OK;
}

static int reply(uint8_t **output, size_t *length, const char *format, ...) __attribute__((format(printf, 3, 4)));
static int reply(uint8_t **output, size_t *length, const char *format, ...) {
    char *text = NULL;
    va_list args;
    va_start(args, format);
    int n = vasprintf(&text, format, args);
    va_end(args);
    *output = (uint8_t *)text;
    *length = n < 0 ? 0 : (size_t)n;
    return BRANE_OK;
}

/* The result of an open(2): {"fd": N} or {"errno": N}. */
static int report_open(const char *path, int flags, uint8_t **output, size_t *length) {
    int fd = open(path, flags, 0600);
    if (fd < 0)
        return reply(output, length, "{\"errno\":%d}", errno);
    close(fd);
    return reply(output, length, "{\"fd\":%d}", fd);
}

/* A string value from the call input, e.g. {"path": "/x"} → "/x" (test input is simple JSON). */
static const char *input_string(const uint8_t *input, size_t length, const char *key, char *into, size_t size) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    char *text = strndup((const char *)input, length);
    char *at = text ? strstr(text, pattern) : NULL;
    if (!at) {
        free(text);
        return NULL;
    }
    at += strlen(pattern);
    char *end = strchr(at, '"');
    size_t n = end ? (size_t)(end - at) : strlen(at);
    if (n >= size)
        n = size - 1;
    memcpy(into, at, n);
    into[n] = 0;
    free(text);
    return into;
}

static long input_number(const uint8_t *input, size_t length, const char *key) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    char *text = strndup((const char *)input, length);
    char *at = text ? strstr(text, pattern) : NULL;
    long value = at ? strtol(at + strlen(pattern), NULL, 10) : -1;
    free(text);
    return value;
}

static void *socket_thread(void *unused) {
    (void)unused;
    socket(AF_INET, SOCK_DGRAM, 0);
    return NULL;
}

/* A JSON string's body: quotes, backslashes and controls escaped (the host's messages and peer names). */
static const char *json_text(const char *text, char *into, size_t size) {
    size_t n = 0;
    for (; text && *text && n + 7 < size; text++) {
        unsigned char c = (unsigned char)*text;
        if (c == '"' || c == '\\')
            n += (size_t)snprintf(into + n, size - n, "\\%c", c);
        else if (c < 0x20)
            n += (size_t)snprintf(into + n, size - n, "\\u%04x", c);
        else
            into[n++] = (char)c;
    }
    into[n] = 0;
    return into;
}

/* Connections through the host (ABI 1.2), then something done with the stream: {"status", "fd", "message"}. */
static int broker_attack(const char *target, uint16_t port, const char *then, uint16_t other_port, uint8_t **output, size_t *length) {
    int fd = -1;
    const char *message = NULL;
    int status = host->connect(target, port, &fd, &message);
    char text[4096];
    if (status != BRANE_OK)
        return reply(output, length, "{\"status\":%d,\"fd\":%d,\"message\":\"%s\"}", status, fd, json_text(message, text, sizeof text));
    struct sockaddr_in elsewhere = {.sin_family = AF_INET, .sin_port = htons(other_port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    long rc = 0;
    if (strcmp(then, "send") == 0) /* what a plugin may do: send without an address */
        rc = send(fd, "hello from the sandbox", 22, MSG_NOSIGNAL);
    else if (strcmp(then, "reconnect") == 0) /* point the stream somewhere else */
        rc = connect(fd, (struct sockaddr *)&elsewhere, sizeof elsewhere);
    else if (strcmp(then, "disconnect") == 0) { /* AF_UNSPEC disconnects a TCP socket, which could then connect anywhere */
        struct sockaddr unspecified = {.sa_family = AF_UNSPEC};
        rc = connect(fd, &unspecified, sizeof unspecified);
    } else if (strcmp(then, "reconnect-same") == 0) { /* what libcurl 7.88 does: connect again to the stream's own peer, then use it */
        struct sockaddr_storage peer;
        socklen_t peer_length = sizeof peer;
        getpeername(fd, (struct sockaddr *)&peer, &peer_length);
        rc = connect(fd, (struct sockaddr *)&peer, peer_length);
        if (rc == 0)
            rc = send(fd, "hello from the sandbox", 22, MSG_NOSIGNAL);
    }
    else if (strcmp(then, "sendto-address") == 0)
        rc = sendto(fd, "x", 1, MSG_NOSIGNAL, (struct sockaddr *)&elsewhere, sizeof elsewhere);
    else if (strcmp(then, "fastopen") == 0)
        rc = sendto(fd, "x", 1, MSG_FASTOPEN, NULL, 0);
    else if (strcmp(then, "bind") == 0)
        rc = bind(fd, (struct sockaddr *)&elsewhere, sizeof elsewhere);
    else if (strcmp(then, "listen") == 0)
        rc = listen(fd, 1);
    else if (strcmp(then, "setsockopt-rthdr") == 0) { /* an IPv6 routing header: the stream's data would go elsewhere */
        uint8_t header[40] = {0, 4, 4, 1};
        rc = setsockopt(fd, IPPROTO_IPV6, IPV6_RTHDR, header, sizeof header);
    } else if (strcmp(then, "setsockopt-ipoptions") == 0) { /* IPv4 source routing */
        uint8_t options[8] = {131, 7, 4, 127, 0, 0, 2, 1};
        rc = setsockopt(fd, IPPROTO_IP, IP_OPTIONS, options, sizeof options);
    } else if (strcmp(then, "setsockopt-bindtodevice") == 0)
        rc = setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3);
    else if (strcmp(then, "setsockopt-linger") == 0) { /* a close that blocks whoever closes the last reference */
        struct linger linger = {1, 100000};
        rc = setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger);
    } else if (strcmp(then, "setsockopt-tuning") == 0) { /* what a plugin may set */
        int one = 1;
        struct timeval timeout = {2, 0};
        rc = setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) | setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) |
             setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) | setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    } else if (strcmp(then, "reconnect-loop") == 0) { /* more no-op connects than the host answers */
        struct sockaddr_storage peer;
        socklen_t peer_length = sizeof peer;
        getpeername(fd, (struct sockaddr *)&peer, &peer_length);
        for (int i = 0; i < 1000 && rc == 0; i++)
            rc = connect(fd, (struct sockaddr *)&peer, peer_length);
    }
    else if (strcmp(then, "pass-back") == 0) { /* hand the stream back to the host over the runner's socket */
        union {
            struct cmsghdr align;
            char bytes[CMSG_SPACE(sizeof(int))];
        } control = {0};
        struct iovec part = {"x", 1};
        struct msghdr message_header = {.msg_iov = &part, .msg_iovlen = 1, .msg_control = control.bytes, .msg_controllen = sizeof control.bytes};
        struct cmsghdr *c = CMSG_FIRSTHDR(&message_header);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
        rc = sendmsg(3, &message_header, 0);
    }
    int error = rc < 0 ? errno : 0;
    int flags = fcntl(fd, F_GETFL);
    int descriptor_flags = fcntl(fd, F_GETFD);
    close(fd);
    return reply(output, length, "{\"status\":0,\"fd\":%d,\"rc\":%ld,\"errno\":%d,\"nonblocking\":%s,\"cloexec\":%s}", fd, rc, error,
                 flags & O_NONBLOCK ? "true" : "false", descriptor_flags & FD_CLOEXEC ? "true" : "false");
}

static char thread_message[4096];
static void *connect_thread(void *unused) {
    (void)unused;
    int fd = -1;
    const char *message = NULL;
    int status = host->connect("127.0.0.1", 9, &fd, &message);
    snprintf(thread_message, sizeof thread_message, "%d %d %s", status, fd, message ? message : "");
    return NULL;
}

static void *sleeper(void *unused) {
    (void)unused;
    for (;;)
        sleep(3600);
    return NULL;
}

static int invoke(const char *method, const uint8_t *input, size_t input_length, uint8_t **output, size_t *length) {
    char path[512];
    if (strcmp(method, "ping") == 0)
        return reply(output, length, "{\"pong\":true}");

    /* Sockets: no tier may create one (the host connects for tiers 1 and 2). */
    if (strcmp(method, "attack/socket-inet") == 0)
        return reply(output, length, "{\"fd\":%d}", socket(AF_INET, SOCK_STREAM, 0));
    if (strcmp(method, "attack/socketpair-unix") == 0) {
        int fds[2];
        return reply(output, length, "{\"rc\":%d}", socketpair(AF_UNIX, SOCK_STREAM, 0, fds));
    }

    if (strcmp(method, "attack/broker") == 0 && input_string(input, input_length, "host", path, sizeof path)) {
        char then[64] = "";
        input_string(input, input_length, "then", then, sizeof then);
        return broker_attack(path, (uint16_t)input_number(input, input_length, "port"), then,
                             (uint16_t)input_number(input, input_length, "otherPort"), output, length);
    }
    if (strcmp(method, "attack/open-many-then-broker") == 0 && input_string(input, input_length, "host", path, sizeof path)) {
        int opened[64], count = 0;
        while (count < 64 && (opened[count] = open(".", O_RDONLY | O_DIRECTORY)) >= 0)
            count++;
        int fd = -1;
        const char *message = NULL;
        int status = host->connect(path, (uint16_t)input_number(input, input_length, "port"), &fd, &message);
        while (count > 0)
            close(opened[--count]);
        char text[4096];
        return reply(output, length, "{\"status\":%d,\"fd\":%d,\"message\":\"%s\"}", status, fd, json_text(message, text, sizeof text));
    }
    if (strcmp(method, "attack/broker-many") == 0 && input_string(input, input_length, "host", path, sizeof path)) { /* a connect loop */
        long count = input_number(input, input_length, "count"), connected = 0;
        const char *message = NULL;
        for (long i = 0; i < count; i++) {
            int fd = -1;
            if (host->connect(path, (uint16_t)input_number(input, input_length, "port"), &fd, &message) == BRANE_OK) {
                connected++;
                close(fd);
            }
        }
        char text[4096];
        return reply(output, length, "{\"connected\":%ld,\"message\":\"%s\"}", connected, json_text(message, text, sizeof text));
    }
    if (strcmp(method, "attack/broker-control-characters") == 0) /* a host name that would forge a terminal line */
        return broker_attack("evil\x1b[2J\r\nbrane: all clear\x07", 80, "", 0, output, length);
    if (strcmp(method, "attack/broker-from-thread") == 0) {
        pthread_t thread;
        pthread_create(&thread, NULL, connect_thread, NULL);
        pthread_join(thread, NULL);
        char text[4096];
        return reply(output, length, "{\"thread\":\"%s\"}", json_text(thread_message, text, sizeof text));
    }
    if (strcmp(method, "attack/socket-mptcp") == 0)
        return reply(output, length, "{\"fd\":%d}", socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP));
    if (strcmp(method, "attack/socket-raw") == 0)
        return reply(output, length, "{\"fd\":%d}", socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
    if (strcmp(method, "attack/socket-packet") == 0)
        return reply(output, length, "{\"fd\":%d}", socket(AF_PACKET, SOCK_RAW, 0));
    if (strcmp(method, "attack/socket-unix") == 0)
        return reply(output, length, "{\"fd\":%d}", socket(AF_UNIX, SOCK_STREAM, 0));
    if (strcmp(method, "attack/fastopen-sendto") == 0) { /* TCP Fast Open: connect and send in one call, on a fresh socket */
        struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        return reply(output, length, "{\"rc\":%zd}", sendto(-1, "x", 1, MSG_FASTOPEN, (struct sockaddr *)&address, sizeof address));
    }
    if (strcmp(method, "attack/dns") == 0) { /* a DNS query to any resolver, by UDP */
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in resolver = {.sin_family = AF_INET, .sin_port = htons(53), .sin_addr.s_addr = inet_addr("8.8.8.8")};
        return reply(output, length, "{\"rc\":%zd}", sendto(fd, "\0\1\1\0\0\1\0\0\0\0\0\0", 12, 0, (struct sockaddr *)&resolver, sizeof resolver));
    }
    /* Consults through the host (ABI 1.1): {"status": BRANE_OK or BRANE_ERROR, "answer": <the host's JSON>}. */
    if (strcmp(method, "attack/consult") == 0 && input_string(input, input_length, "id", path, sizeof path)) {
        const uint8_t *answer = NULL;
        size_t answer_length = 0;
        int status = host->consult(path, (const uint8_t *)"{}", 2, &answer, &answer_length);
        return reply(output, length, "{\"status\":%d,\"answer\":%.*s}", status, (int)answer_length, (const char *)answer);
    }
    if (strcmp(method, "attack/socket-udp") == 0)
        return reply(output, length, "{\"fd\":%d}", socket(AF_INET, SOCK_DGRAM, 0));

    /* Files outside the allow-list. */
    if (strcmp(method, "attack/open-read") == 0 && input_string(input, input_length, "path", path, sizeof path))
        return report_open(path, O_RDONLY, output, length);
    if (strcmp(method, "attack/open-write") == 0 && input_string(input, input_length, "path", path, sizeof path))
        return report_open(path, O_WRONLY | O_CREAT | O_TRUNC, output, length);

    if (strcmp(method, "attack/write-bytes") == 0 && input_string(input, input_length, "path", path, sizeof path)) {
        long count = input_number(input, input_length, "bytes");
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        char block[4096];
        memset(block, 'w', sizeof block);
        long written = 0;
        while (fd >= 0 && written < count) {
            ssize_t n = write(fd, block, sizeof block);
            if (n <= 0)
                break;
            written += n;
        }
        return reply(output, length, "{\"written\":%ld}", written);
    }
    if (strcmp(method, "attack/open-many") == 0) {
        int opened = 0;
        while (opened < 100000 && open("/lib", O_RDONLY | O_DIRECTORY) >= 0)
            opened++;
        return reply(output, length, "{\"opened\":%d,\"errno\":%d}", opened, errno);
    }

    /* New programs and processes. */
    if (strcmp(method, "attack/execve") == 0) {
        char *argv[] = {"/bin/sh", "-c", "id", NULL};
        execve("/bin/sh", argv, environ);
        return reply(output, length, "{\"errno\":%d}", errno);
    }
    if (strcmp(method, "attack/fork") == 0)
        return reply(output, length, "{\"pid\":%d}", fork());
    if (strcmp(method, "attack/vfork") == 0)
        return reply(output, length, "{\"pid\":%ld}", syscall(SYS_vfork));
    if (strcmp(method, "attack/clone-process") == 0)
        return reply(output, length, "{\"pid\":%ld}", syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0));
    if (strcmp(method, "attack/fork-bomb") == 0) {
        for (;;)
            fork();
    }
    if (strcmp(method, "attack/thread-bomb") == 0) {
        int count = 0;
        pthread_t thread;
        while (count < 100000 && pthread_create(&thread, NULL, sleeper, NULL) == 0)
            count++;
        return reply(output, length, "{\"threads\":%d}", count);
    }

    /* Other processes and the kernel. */
    if (strcmp(method, "attack/kill-init") == 0)
        return reply(output, length, "{\"rc\":%d}", kill(1, 0));
    if (strcmp(method, "attack/setuid-root") == 0)
        return reply(output, length, "{\"rc\":%d}", setuid(0));
    if (strcmp(method, "attack/prctl-capbset-read") == 0)
        return reply(output, length, "{\"rc\":%d}", prctl(PR_CAPBSET_READ, 0, 0, 0, 0));
    if (strcmp(method, "attack/prctl-set-dumpable") == 0)
        return reply(output, length, "{\"rc\":%d}", prctl(PR_SET_DUMPABLE, 1, 0, 0, 0));
    if (strcmp(method, "attack/own-seccomp-filter") == 0)
        return reply(output, length, "{\"rc\":%d}", prctl(PR_SET_SECCOMP, 2, 0, 0, 0));
    if (strcmp(method, "attack/tiocsti") == 0) {
        char c = 'x';
        return reply(output, length, "{\"rc\":%d}", ioctl(0, TIOCSTI, &c));
    }
    if (strcmp(method, "attack/raw-syscall") == 0) {
        long number = input_number(input, input_length, "nr");
        return reply(output, length, "{\"rc\":%ld}", syscall(number, 0, 0, 0, 0, 0, 0));
    }
    if (strcmp(method, "attack/mmap-wx") == 0) {
        void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return reply(output, length, "{\"mapped\":%s}", page == MAP_FAILED ? "false" : "true");
    }
    if (strcmp(method, "attack/mprotect-wx") == 0) {
        void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return reply(output, length, "{\"rc\":%d}", mprotect(page, 4096, PROT_READ | PROT_WRITE | PROT_EXEC));
    }
    if (strcmp(method, "attack/ignore-sigsys-then-socket") == 0) {
        signal(SIGSYS, SIG_IGN);
        return reply(output, length, "{\"fd\":%d}", socket(AF_INET, SOCK_STREAM, 0));
    }

    /* Signals it raises at itself must not pass for the sandbox or a limit. */
    if (strcmp(method, "attack/raise-sigsys") == 0)
        raise(SIGSYS);
    if (strcmp(method, "attack/raise-sigxcpu") == 0)
        raise(SIGXCPU);

    /* A syscall of another ABI: i386's open through int 0x80. */
    if (strcmp(method, "attack/int80") == 0) {
#if defined(__x86_64__)
        long rc;
        __asm__ volatile("int $0x80" : "=a"(rc) : "a"(5L), "b"(0L), "c"(0L) : "memory");
        return reply(output, length, "{\"rc\":%ld}", rc);
#else
        return reply(output, length, "{\"skipped\":true}");
#endif
    }

    /* Later phases: the next release, or the shutdown, makes a forbidden call. */
    if (strcmp(method, "attack/in-release") == 0) {
        attack_in_release = 1;
        return reply(output, length, "{\"armed\":true}");
    }
    if (strcmp(method, "attack/in-shutdown") == 0) {
        attack_in_shutdown = 1;
        return reply(output, length, "{\"armed\":true}");
    }
    /* A forbidden call from a second thread while the main thread answers. */
    if (strcmp(method, "attack/socket-from-thread") == 0) {
        pthread_t thread;
        pthread_create(&thread, NULL, socket_thread, NULL);
        pthread_join(thread, NULL);
        return reply(output, length, "{\"joined\":true}");
    }

    /* What the sandbox shows of the machine. */
    if (strcmp(method, "inspect/uname") == 0) {
        struct utsname name;
        uname(&name);
        return reply(output, length, "{\"nodename\":\"%s\"}", name.nodename);
    }
    if (strcmp(method, "inspect/ids") == 0)
        return reply(output, length, "{\"uid\":%u,\"gid\":%u,\"euid\":%u}", getuid(), getgid(), geteuid());

    /* Text meant to fool a terminal or a reader of the host's output. */
    if (strcmp(method, "attack/log-escapes") == 0) {
        static const char forged[] = "ok\x1b[2J\x1b]0;pwned\x07\rbrane: all plugins verified\n[brane] forged line\xc2\x9b" "31m";
        host->log(BRANE_LOG_WARNING, forged, sizeof forged - 1);
        return reply(output, length, "{\"note\":\"%s\"}", "\\u001b[31mred\\u009b");
    }
    if (strcmp(method, "attack/error-escapes") == 0) {
        reply(output, length, "{\"message\":\"bad\\u001b[2J\\rbrane: fine\\nforged\"}");
        return BRANE_ERROR;
    }
    if (strcmp(method, "attack/log-flood") == 0) {
        long count = input_number(input, input_length, "lines");
        char line[1024];
        memset(line, 'L', sizeof line);
        for (long i = 0; i < count; i++)
            host->log(BRANE_LOG_INFO, line, sizeof line);
        return reply(output, length, "{\"logged\":%ld}", count);
    }
    if (strcmp(method, "attack/raw-giant-log") == 0) { /* a LOG frame written straight to the socket, past the runner's cap */
        size_t size = 60000;
        uint8_t *payload = calloc(1, size);
        memset(payload + 4, 'G', size - 4);
        write_frame(6, payload, (uint32_t)size);
        free(payload);
        return reply(output, length, "{\"sent\":%zu}", size);
    }

    /* What leaked in from the parent. */
    if (strcmp(method, "inspect/open-fds") == 0) {
        char list[4096] = "";
        size_t used = 0;
        for (int fd = 0; fd < 1024; fd++)
            if (fcntl(fd, F_GETFD) >= 0)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%d", used ? "," : "", fd);
        return reply(output, length, "{\"fds\":[%s]}", list);
    }
    /* What an instance shares with others (a zygote's children share its layout, not its canary). */
    if (strcmp(method, "inspect/layout") == 0) {
        unsigned long guard = 0;
#if defined(__x86_64__)
        __asm__ volatile("movq %%fs:0x28, %0" : "=r"(guard));
#endif
        return reply(output, length, "{\"stackGuard\":\"%lx\",\"libc\":\"%lx\",\"parent\":%d,\"pid\":%d}", guard,
                     (unsigned long)(uintptr_t)&getppid, (int)getppid(), (int)getpid());
    }
    if (strcmp(method, "inspect/environment") == 0) {
        char list[4096] = "";
        size_t used = 0;
        for (char **e = environ; e && *e && used < sizeof list - 256; e++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s\"%s\"", used ? "," : "", *e);
        return reply(output, length, "{\"environment\":[%s]}", list);
    }
    if (strcmp(method, "inspect/auxv") == 0) {
        /* As runtimes that find the auxiliary vector on the stack do (Go's, from argv): past the
         * environment's NULL. Whether what lies there is the vector the kernel gave, with the
         * AT_RANDOM that getauxval reads. */
        char **e = environ;
        while (*e)
            e++;
        const unsigned long *pair = (const unsigned long *)(e + 1);
        int pairs = 0, found = 0;
        for (; pairs < 64 && pair[0] != AT_NULL; pairs++, pair += 2)
            found |= pair[0] == AT_RANDOM && pair[1] == getauxval(AT_RANDOM);
        return reply(output, length, "{\"firstType\":%lu,\"pairs\":%d,\"atRandomFound\":%s}",
                     *(const unsigned long *)(e + 1), pairs, found ? "true" : "false");
    }
    if (strcmp(method, "inspect/config") == 0) {
        size_t config_length = 0;
        const char *config = host->config(&config_length);
        return reply(output, length, "%.*s", (int)config_length, config);
    }

    /* Resource exhaustion. */
    if (strcmp(method, "attack/memory-bomb") == 0) {
        size_t chunk = 16u << 20, total = 0;
        for (;;) {
            char *block = malloc(chunk);
            if (!block)
                break;
            memset(block, 1, chunk);
            total += chunk;
        }
        return reply(output, length, "{\"allocatedMiB\":%zu}", total >> 20);
    }
    if (strcmp(method, "attack/cpu-spin") == 0) {
        for (volatile unsigned long i = 0;; i++) {}
    }
    if (strcmp(method, "attack/sleep-forever") == 0) {
        for (;;)
            sleep(3600);
    }
    if (strcmp(method, "attack/endless-output") == 0) {
        size_t size = 64u << 20;
        uint8_t *big = malloc(size);
        if (!big)
            return reply(output, length, "{\"malloc\":\"failed\"}");
        memset(big, 'A', size);
        *output = big;
        *length = size;
        return BRANE_OK;
    }

    /* The wire protocol: the plugin writes to the runner's socket (fd 3) itself. */
    if (strcmp(method, "attack/giant-frame") == 0) {
        uint8_t header[12] = {0xf0, 0xff, 0xff, 0xff, 0, 0, 0, 0, 4, 0, 0, 0};
        write(3, header, sizeof header);
        sleep(3600);
    }
    if (strcmp(method, "attack/garbage-frame") == 0) {
        uint8_t garbage[64];
        for (size_t i = 0; i < sizeof garbage; i++)
            garbage[i] = (uint8_t)(i * 37 + 11);
        write(3, garbage, sizeof garbage);
        sleep(3600);
    }
    if (strcmp(method, "attack/close-socket") == 0) { /* so that another file could take fd 3 */
        close(3);
        sleep(3600);
    }
    if (strcmp(method, "attack/dup-onto-socket") == 0) { /* another file on fd 3, where recvmsg may read */
        dup2(0, 3);
        sleep(3600);
    }
    if (strcmp(method, "attack/dup-onto-socket-high") == 0) { /* the same, with bits above 32 set: the kernel reads an int */
        syscall(SYS_dup2, 0L, 0x100000003L);
        sleep(3600);
    }
    if (strcmp(method, "attack/close-socket-high") == 0) {
        syscall(SYS_close, 0x100000003L);
        sleep(3600);
    }
    if (strcmp(method, "attack/shutdown-socket") == 0) {
        shutdown(3, SHUT_RDWR);
        sleep(3600);
    }

    /* Plain crashes, which must not be mistaken for sandbox kills. */
    if (strcmp(method, "crash/segfault") == 0) {
        volatile int *null = NULL;
        *null = 1;
    }
    if (strcmp(method, "crash/abort") == 0)
        abort();

    /* Its tools, as an MCP server or a model calls them: `crash` dies mid-call. */
    if (strcmp(method, "tools/call") == 0 && input_string(input, input_length, "name", path, sizeof path)) {
        if (strcmp(path, "crash") == 0) {
            volatile int *null = NULL;
            *null = 1;
        }
        if (strcmp(path, "slow") == 0) /* long enough that concurrent calls overlap */
            usleep(300 * 1000);
        if (strcmp(path, "hang") == 0) /* under the 3 s call timeout: only a cancellation ends it early */
            usleep(2500 * 1000);
        return reply(output, length, "{\"ok\":true,\"pid\":%d}", (int)getpid());
    }

    reply(output, length, "{\"message\":\"unknown method %s\"}", method);
    return BRANE_ERROR;
}

static void release(uint8_t *output, size_t length) {
    (void)length;
    free(output);
    if (attack_in_release)
        socket(AF_INET6, SOCK_STREAM, IPPROTO_MPTCP);
}

static void shutdown_plugin(void) {
    if (attack_in_shutdown)
        socket(AF_PACKET, SOCK_RAW, 0);
}

/* One library, several descriptors: copied under another name it lies about itself, so the
 * tests can check that the descriptor must agree with the manifest (and can be a specialist). */
BRANE_EXPORT const brane_plugin_descriptor *brane_plugin_entry(void) {
    static brane_plugin_descriptor descriptor = {
        BRANE_DESCRIPTOR_HEADER,
        .kind = BRANE_KIND_SYNAPSE,
        .id = "test.brane.hostile",
        .version = "0.0.1",
        .init = init,
        .invoke = invoke,
        .release = release,
        .shutdown = shutdown_plugin,
    };
    Dl_info self;
    const char *name = dladdr((void *)brane_plugin_entry, &self) && self.dli_fname ? self.dli_fname : "";
    if (strstr(name, "Specialist"))
        descriptor.kind = BRANE_KIND_SPECIALIST;
    if (strstr(name, "LyingVersion"))
        descriptor.version = "9.9.9";
    if (strstr(name, "FutureMinor"))
        descriptor.abi_minor = BRANE_ABI_MINOR + 1;
    if (strstr(name, "OldMinor"))
        descriptor.abi_minor = 0;
    return &descriptor;
}

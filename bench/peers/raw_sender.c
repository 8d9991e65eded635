// SPDX-License-Identifier: MIT
/* tether-bench-raw: the practical upper bound of make bench's throughput
 * comparison. A blocking socket, its own upgrade, and every frame built and
 * masked once up front: sending is nothing but write() of a 64 KiB block of
 * ready frames, so what it measures is the kernel and the sink.
 *
 *   tether-bench-raw --host H --port P --count N [--size 100]
 *
 * Prints `sent=N elapsed_us=T` (T: from the 101 being verified to the
 * server's close frame arriving) and exits 0; non-zero on any failure. */

#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/base64.h>
#include <mbedtls/sha1.h>

#define BLOCK_TARGET (64 * 1024)

static int fail(const char* what) {
    fprintf(stderr, "tether-bench-raw: %s\n", what);
    return 1;
}

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int write_all(int fd, const uint8_t* data, size_t size) {
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

static int connect_to(const char* host, const char* port) {
    struct addrinfo hints;
    struct addrinfo* found = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &found) != 0) {
        return -1;
    }
    int fd = -1;
    for (struct addrinfo* a = found; a != NULL; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(found);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

/* Finds header `name` in the response head (lines after the status line). */
static int header_value(const char* head, const char* name, char* out, size_t out_size) {
    size_t name_len = strlen(name);
    const char* line = strstr(head, "\r\n");
    while (line != NULL && line[2] != '\r' && line[2] != '\0') {
        line += 2;
        const char* end = strstr(line, "\r\n");
        if (end == NULL) {
            return -1;
        }
        if ((size_t)(end - line) > name_len && strncasecmp(line, name, name_len) == 0 &&
            line[name_len] == ':') {
            const char* value = line + name_len + 1;
            while (*value == ' ' || *value == '\t') {
                ++value;
            }
            const char* value_end = end;
            while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t')) {
                --value_end;
            }
            size_t length = (size_t)(value_end - value);
            if (length + 1 > out_size) {
                return -1;
            }
            memcpy(out, value, length);
            out[length] = '\0';
            return 0;
        }
        line = end;
    }
    return -1;
}

/* Sends the upgrade and checks the 101 and Sec-WebSocket-Accept. Bytes read
 * past the response head are left in leftover (the server's first frames). */
static int upgrade(int fd, const char* host, const char* port, uint8_t* leftover,
                   size_t* leftover_size) {
    uint8_t nonce[16];
    if (getrandom(nonce, sizeof nonce, 0) != (ssize_t)sizeof nonce) {
        return fail("getrandom failed");
    }
    unsigned char key[32];
    size_t key_len = 0;
    mbedtls_base64_encode(key, sizeof key, &key_len, nonce, sizeof nonce);
    key[key_len] = '\0';

    char request[512];
    int request_len = snprintf(request, sizeof request,
                               "GET / HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\n"
                               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                               "Sec-WebSocket-Version: 13\r\n\r\n",
                               host, port, (const char*)key);
    if (request_len <= 0 || (size_t)request_len >= sizeof request) {
        return fail("host name too long");
    }
    if (write_all(fd, (const uint8_t*)request, (size_t)request_len) != 0) {
        return fail("writing the upgrade request failed");
    }

    char head[4096];
    size_t have = 0;
    char* blank = NULL;
    while (blank == NULL) {
        if (have + 1 >= sizeof head) {
            return fail("upgrade response too long");
        }
        ssize_t n = read(fd, head + have, sizeof head - 1 - have);
        if (n <= 0) {
            return fail("connection closed during the upgrade");
        }
        have += (size_t)n;
        head[have] = '\0';
        blank = strstr(head, "\r\n\r\n");
    }
    size_t head_len = (size_t)(blank + 4 - head);
    *leftover_size = have - head_len;
    memcpy(leftover, head + head_len, *leftover_size);
    blank[2] = '\0'; /* keep the last header line's CRLF for header_value */

    if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
        return fail("server did not answer 101");
    }
    char accept[64];
    if (header_value(head, "Sec-WebSocket-Accept", accept, sizeof accept) != 0) {
        return fail("no Sec-WebSocket-Accept");
    }
    char joined[96];
    snprintf(joined, sizeof joined, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", (const char*)key);
    unsigned char digest[20];
    mbedtls_sha1_ret((const unsigned char*)joined, strlen(joined), digest);
    unsigned char expected[64];
    size_t expected_len = 0;
    mbedtls_base64_encode(expected, sizeof expected, &expected_len, digest, sizeof digest);
    if (strlen(accept) != expected_len || memcmp(accept, expected, expected_len) != 0) {
        return fail("wrong Sec-WebSocket-Accept");
    }
    char extensions[256];
    if (header_value(head, "Sec-WebSocket-Extensions", extensions, sizeof extensions) == 0) {
        return fail("server agreed an extension that was not offered");
    }
    return 0;
}

/* One masked client frame: returns its size. */
static size_t build_frame(uint8_t* out, uint8_t opcode, const uint8_t* payload, size_t size,
                          const uint8_t mask[4]) {
    size_t at = 0;
    out[at++] = (uint8_t)(0x80 | opcode);
    if (size < 126) {
        out[at++] = (uint8_t)(0x80 | size);
    } else if (size <= 0xFFFF) {
        out[at++] = 0x80 | 126;
        out[at++] = (uint8_t)(size >> 8);
        out[at++] = (uint8_t)size;
    } else {
        out[at++] = 0x80 | 127;
        for (int shift = 56; shift >= 0; shift -= 8) {
            out[at++] = (uint8_t)((uint64_t)size >> shift);
        }
    }
    memcpy(out + at, mask, 4);
    at += 4;
    for (size_t i = 0; i < size; ++i) {
        out[at + i] = payload[i] ^ mask[i & 3];
    }
    return at + size;
}

/* Reads frames until the server's close frame; returns its code (1005 when
 * it carried none) or -1. */
static int await_close(int fd, uint8_t* buffer, size_t have, size_t capacity) {
    for (;;) {
        /* Step over whole frames; the server sends nothing but its close. */
        while (have >= 2) {
            uint8_t opcode = buffer[0] & 0x0F;
            size_t length = buffer[1] & 0x7F;
            size_t header = 2;
            if (buffer[1] & 0x80) {
                return -1; /* a server never masks */
            }
            if (length == 126) {
                if (have < 4) {
                    break;
                }
                length = ((size_t)buffer[2] << 8) | buffer[3];
                header = 4;
            } else if (length == 127) {
                return -1; /* nothing this large is expected */
            }
            if (have < header + length) {
                if (header + length > capacity) {
                    return -1;
                }
                break;
            }
            if (opcode == 0x8) {
                if (length == 0) {
                    return 1005;
                }
                if (length < 2) {
                    return -1;
                }
                return (buffer[header] << 8) | buffer[header + 1];
            }
            memmove(buffer, buffer + header + length, have - header - length);
            have -= header + length;
        }
        ssize_t n = read(fd, buffer + have, capacity - have);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        have += (size_t)n;
    }
}

static void usage(void) {
    fprintf(stderr, "usage: tether-bench-raw --host H --port P --count N [--size 100]\n");
}

int main(int argc, char** argv) {
    const char* host = "127.0.0.1";
    const char* port = NULL;
    unsigned long long count = 0;
    unsigned long size = 100;
    for (int i = 1; i < argc; ++i) {
        if (i + 1 >= argc) {
            usage();
            return 2;
        }
        char* end = NULL;
        if (strcmp(argv[i], "--host") == 0) {
            host = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0) {
            port = argv[++i];
        } else if (strcmp(argv[i], "--count") == 0) {
            count = strtoull(argv[++i], &end, 10);
            if (*end != '\0') {
                usage();
                return 2;
            }
        } else if (strcmp(argv[i], "--size") == 0) {
            size = strtoul(argv[++i], &end, 10);
            if (*end != '\0' || size > 16u * 1024 * 1024) {
                usage();
                return 2;
            }
        } else {
            usage();
            return 2;
        }
    }
    if (port == NULL) {
        usage();
        return 2;
    }

    int fd = connect_to(host, port);
    if (fd < 0) {
        return fail("connect failed");
    }
    uint8_t* reply = malloc(65536);
    size_t reply_have = 0;
    if (reply == NULL || upgrade(fd, host, port, reply, &reply_have) != 0) {
        return 1;
    }

    /* The block: as many whole frames as fit in ~64 KiB (at least one). */
    size_t frame_size = size + 4 + (size < 126 ? 2 : size <= 0xFFFF ? 4 : 10);
    size_t per_block = frame_size >= BLOCK_TARGET ? 1 : BLOCK_TARGET / frame_size;
    uint8_t* payload = malloc(size + 1);
    uint8_t* block = malloc(per_block * frame_size);
    if (payload == NULL || block == NULL) {
        return fail("out of memory");
    }
    for (size_t i = 0; i < size; ++i) {
        payload[i] = (uint8_t)('a' + i % 26);
    }
    uint8_t mask[4];
    if (getrandom(mask, sizeof mask, 0) != (ssize_t)sizeof mask) {
        return fail("getrandom failed");
    }
    for (size_t i = 0; i < per_block; ++i) {
        build_frame(block + i * frame_size, 0x1, payload, size, mask);
    }

    uint64_t started = now_us();
    unsigned long long left = count;
    while (left > 0) {
        size_t frames = left < per_block ? (size_t)left : per_block;
        if (write_all(fd, block, frames * frame_size) != 0) {
            return fail("write failed");
        }
        left -= frames;
    }
    uint8_t close_frame[8];
    const uint8_t normal[2] = {1000 >> 8, 1000 & 0xFF};
    size_t close_size = build_frame(close_frame, 0x8, normal, 2, mask);
    if (write_all(fd, close_frame, close_size) != 0) {
        return fail("writing the close frame failed");
    }
    int code = await_close(fd, reply, reply_have, 65536);
    uint64_t elapsed = now_us() - started;
    close(fd);
    if (code != 1000) {
        fprintf(stderr, "tether-bench-raw: server close code %d, expected 1000\n", code);
        return 1;
    }
    printf("sent=%llu elapsed_us=%llu\n", count, (unsigned long long)elapsed);
    return 0;
}

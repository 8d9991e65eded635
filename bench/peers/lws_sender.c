// SPDX-License-Identifier: MIT
/* tether-bench-lws: the libwebsockets client of make bench's throughput
 * comparison, written the way the lws examples write a client: one message
 * per LWS_CALLBACK_CLIENT_WRITEABLE, lws_write() from a buffer with LWS_PRE
 * headroom, lws_callback_on_writable() for the next. No extensions are
 * offered, so permessage-deflate is never agreed.
 *
 *   tether-bench-lws --host H --port P --count N [--size 100]
 *
 * Prints `sent=N elapsed_us=T` (T: from LWS_CALLBACK_CLIENT_ESTABLISHED to
 * LWS_CALLBACK_CLIENT_CLOSED, which lws reaches right after reading the
 * server's close frame) and exits 0; non-zero on any failure, including a
 * server close code other than 1000. */

#define _GNU_SOURCE
#include <libwebsockets.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct run {
    unsigned long long count;
    unsigned long long sent;
    size_t size;
    unsigned char* buffer; /* LWS_PRE headroom, then the payload */
    uint64_t started_us;
    uint64_t finished_us;
    int server_close_code; /* -1 until the server's close frame arrives */
    int established;
    int closing; /* our close frame is queued: further WRITEABLEs do nothing */
    int done;
    int failed;
};

/* lws answers the server's close frame to our close ("close ack") by
 * dropping the connection without passing the frame to any callback, so its
 * code cannot be checked through the API. This recv() (libwebsockets calls
 * recv for plain sockets; the executable's definition takes precedence)
 * keeps the first bytes the server sends after the upgrade, which are the
 * close frame: the sink sends nothing else unprompted. */
static int watched_fd = -1;
static unsigned char server_bytes[256];
static size_t server_bytes_len;

ssize_t recv(int fd, void* buffer, size_t size, int flags) {
    ssize_t n = (ssize_t)syscall(SYS_recvfrom, fd, buffer, size, flags, NULL, NULL);
    if (n > 0 && fd == watched_fd && server_bytes_len < sizeof server_bytes) {
        size_t keep = sizeof server_bytes - server_bytes_len;
        if ((size_t)n < keep) {
            keep = (size_t)n;
        }
        memcpy(server_bytes + server_bytes_len, buffer, keep);
        server_bytes_len += keep;
    }
    return n;
}

/* The close code of the first close frame in server_bytes, 1005 for one
 * without a code, -1 if there is none. */
static int server_close_code_seen(void) {
    size_t at = 0;
    while (at + 2 <= server_bytes_len) {
        size_t length = server_bytes[at + 1] & 0x7F;
        if (length > 125 || (server_bytes[at + 1] & 0x80) != 0) {
            return -1; /* a server frame is unmasked; nothing large is expected */
        }
        if (at + 2 + length > server_bytes_len) {
            return -1;
        }
        if ((server_bytes[at] & 0x0F) == 0x8) {
            if (length == 0) {
                return 1005;
            }
            return length >= 2 ? (server_bytes[at + 2] << 8) | server_bytes[at + 3] : -1;
        }
        at += 2 + length;
    }
    return -1;
}

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int callback(struct lws* wsi, enum lws_callback_reasons reason, void* user, void* in,
                    size_t len) {
    struct run* run = (struct run*)lws_context_user(lws_get_context(wsi));
    (void)user;
    switch (reason) {
        case LWS_CALLBACK_CLIENT_ESTABLISHED:
            run->established = 1;
            run->started_us = now_us();
            watched_fd = (int)lws_get_socket_fd(wsi);
            lws_callback_on_writable(wsi);
            break;
        case LWS_CALLBACK_CLIENT_WRITEABLE:
            if (run->closing) {
                break;
            }
            if (run->sent < run->count) {
                int n = lws_write(wsi, run->buffer + LWS_PRE, run->size, LWS_WRITE_TEXT);
                if (n < (int)run->size) {
                    fprintf(stderr, "tether-bench-lws: lws_write failed\n");
                    run->failed = 1;
                    return -1;
                }
                ++run->sent;
                lws_callback_on_writable(wsi);
                break;
            }
            /* All sent: lws sends this close frame and then waits for the
             * server's (LRS_AWAITING_CLOSE_ACK) before it drops the socket. */
            run->closing = 1;
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
            return -1;
        case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
            /* Only a close the server starts comes here: not the benchmark. */
            fprintf(stderr, "tether-bench-lws: server closed first (%zu bytes)\n", len);
            run->failed = 1;
            break;
        case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
            fprintf(stderr, "tether-bench-lws: connection error: %s\n",
                    in != NULL ? (const char*)in : "(none)");
            run->failed = 1;
            run->done = 1;
            break;
        case LWS_CALLBACK_CLIENT_CLOSED:
            run->finished_us = now_us();
            run->server_close_code = server_close_code_seen();
            run->done = 1;
            break;
        default:
            break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"tether-bench", callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void usage(void) {
    fprintf(stderr, "usage: tether-bench-lws --host H --port P --count N [--size 100]\n");
}

int main(int argc, char** argv) {
    const char* host = "127.0.0.1";
    long port = -1;
    struct run run;
    memset(&run, 0, sizeof run);
    run.size = 100;
    run.server_close_code = -1;
    for (int i = 1; i < argc; ++i) {
        if (i + 1 >= argc) {
            usage();
            return 2;
        }
        char* end = NULL;
        if (strcmp(argv[i], "--host") == 0) {
            host = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0) {
            port = strtol(argv[++i], &end, 10);
            if (*end != '\0' || port <= 0 || port > 65535) {
                usage();
                return 2;
            }
        } else if (strcmp(argv[i], "--count") == 0) {
            run.count = strtoull(argv[++i], &end, 10);
            if (*end != '\0') {
                usage();
                return 2;
            }
        } else if (strcmp(argv[i], "--size") == 0) {
            run.size = strtoul(argv[++i], &end, 10);
            if (*end != '\0' || run.size > 16u * 1024 * 1024) {
                usage();
                return 2;
            }
        } else {
            usage();
            return 2;
        }
    }
    if (port < 0) {
        usage();
        return 2;
    }
    run.buffer = malloc(LWS_PRE + run.size + 1);
    if (run.buffer == NULL) {
        return 1;
    }
    for (size_t i = 0; i < run.size; ++i) {
        run.buffer[LWS_PRE + i] = (unsigned char)('a' + i % 26);
    }

    lws_set_log_level(getenv("TETHER_BENCH_LWS_DEBUG") ? LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO
                                                       : LLL_ERR | LLL_WARN,
                      NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.user = &run;
    info.gid = -1;
    info.uid = -1;
    struct lws_context* context = lws_create_context(&info);
    if (context == NULL) {
        fprintf(stderr, "tether-bench-lws: lws_create_context failed\n");
        return 1;
    }

    struct lws_client_connect_info connect;
    memset(&connect, 0, sizeof connect);
    connect.context = context;
    connect.address = host;
    connect.port = (int)port;
    connect.path = "/";
    connect.host = host;
    connect.origin = host;
    connect.protocol = NULL; /* no Sec-WebSocket-Protocol: the sink offers none */
    connect.local_protocol_name = protocols[0].name;
    if (lws_client_connect_via_info(&connect) == NULL) {
        fprintf(stderr, "tether-bench-lws: connect failed\n");
        lws_context_destroy(context);
        return 1;
    }
    while (!run.done) {
        if (lws_service(context, 0) < 0) {
            run.failed = 1;
            break;
        }
    }
    lws_context_destroy(context);
    free(run.buffer);

    if (run.failed || !run.established) {
        return 1;
    }
    if (run.sent != run.count) {
        fprintf(stderr, "tether-bench-lws: sent %llu of %llu\n", run.sent, run.count);
        return 1;
    }
    if (run.server_close_code != 1000) {
        fprintf(stderr, "tether-bench-lws: server close code %d, expected 1000\n",
                run.server_close_code);
        return 1;
    }
    printf("sent=%llu elapsed_us=%llu\n", run.count,
           (unsigned long long)(run.finished_us - run.started_us));
    return 0;
}

// SPDX-License-Identifier: MIT
#include "options.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace tether::bench {
namespace {

const char* const kUsage =
    "usage: tether-bench-link hold|tls-reconnects [options] URL\n"
    "  --token-file PATH        bearer token (first line)\n"
    "  --device-id ID           device name for the session id (default bench-link)\n"
    "  --ca-file PATH           trusted CA for wss://\n"
    "  --ping-interval MS       heartbeat interval (default 30000)\n"
    "  --pong-timeout MS        heartbeat pong timeout (default 10000)\n"
    "  --backoff-initial MS     first retry delay (default 1000)\n"
    "  --backoff-max MS         delay cap (default 32000)\n"
    "  --jitter MODE            none, full, equal, decorrelated (default none)\n"
    "  --connect-timeout MS     per address (default 10000)\n"
    "  --healthy-after MS       a link up this long resets the backoff (default 10000;\n"
    "                           tls-reconnects: 0, so each reconnect starts at once)\n"
    "  --count K                tls-reconnects: reconnects to measure (default 50)\n"
    "  --resumption on|off      TLS session resumption (default on)\n"
    "  --server-pid PID         tls-reconnects: also report that process's CPU\n"
    "  --log-rx                 log every read that returned bytes\n";

bool number(const char* text, std::uint32_t* out) {
    char* end = nullptr;
    const unsigned long value = std::strtoul(text, &end, 10);
    if (end == text || *end != '\0' || value > 0xFFFFFFFFul) {
        return false;
    }
    *out = static_cast<std::uint32_t>(value);
    return true;
}

}  // namespace

bool parse_options(int argc, char** argv, Options* o) {
    o->client.reconnect.backoff.jitter = JitterMode::kNone;
    if (argc < 2) {
        std::fputs(kUsage, stderr);
        return false;
    }
    if (std::strcmp(argv[1], "hold") == 0) {
        o->mode = Mode::kHold;
    } else if (std::strcmp(argv[1], "tls-reconnects") == 0) {
        o->mode = Mode::kTlsReconnects;
        o->client.reconnect.backoff.healthy_after_ms = 0;
    } else {
        std::fputs(kUsage, stderr);
        return false;
    }
    ReconnectConfig& r = o->client.reconnect;
    for (int i = 2; i < argc; ++i) {
        const char* arg = argv[i];
        const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
        bool ok = true;
        bool takes_value = true;
        if (std::strcmp(arg, "--log-rx") == 0) {
            o->log_rx = true;
            takes_value = false;
        } else if (arg[0] != '-') {
            if (o->client.url_count == 1) {
                ok = false;
            } else {
                o->client.urls[o->client.url_count++] = arg;
            }
            takes_value = false;
        } else if (value == nullptr) {
            ok = false;
        } else if (std::strcmp(arg, "--token-file") == 0) {
            o->token_file = value;
        } else if (std::strcmp(arg, "--device-id") == 0) {
            o->device_id = value;
        } else if (std::strcmp(arg, "--ca-file") == 0) {
            o->tls.ca_file = value;
        } else if (std::strcmp(arg, "--ping-interval") == 0) {
            ok = number(value, &r.heartbeat.interval_ms);
        } else if (std::strcmp(arg, "--pong-timeout") == 0) {
            ok = number(value, &r.heartbeat.pong_timeout_ms);
        } else if (std::strcmp(arg, "--backoff-initial") == 0) {
            ok = number(value, &r.backoff.initial_delay_ms);
        } else if (std::strcmp(arg, "--backoff-max") == 0) {
            ok = number(value, &r.backoff.max_delay_ms);
        } else if (std::strcmp(arg, "--jitter") == 0) {
            ok = parse_jitter_mode(value, &r.backoff.jitter);
        } else if (std::strcmp(arg, "--connect-timeout") == 0) {
            ok = number(value, &r.connect_timeout_ms);
        } else if (std::strcmp(arg, "--healthy-after") == 0) {
            ok = number(value, &r.backoff.healthy_after_ms);
        } else if (std::strcmp(arg, "--count") == 0) {
            ok = number(value, &o->count) && o->count > 0;
        } else if (std::strcmp(arg, "--resumption") == 0) {
            ok = std::strcmp(value, "on") == 0 || std::strcmp(value, "off") == 0;
            o->tls.session_resumption = std::strcmp(value, "on") == 0;
        } else if (std::strcmp(arg, "--server-pid") == 0) {
            std::uint32_t pid = 0;
            ok = number(value, &pid);
            o->server_pid = static_cast<long>(pid);
        } else {
            ok = false;
        }
        if (!ok) {
            std::fprintf(stderr, "tether-bench-link: bad argument '%s'\n%s", arg, kUsage);
            return false;
        }
        if (takes_value) {
            ++i;
        }
    }
    if (o->client.url_count != 1) {
        std::fprintf(stderr, "tether-bench-link: one URL required\n%s", kUsage);
        return false;
    }
    o->client.reconnect.resume_protocol = true;
    return true;
}

}  // namespace tether::bench

// SPDX-License-Identifier: MIT
#include "options.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace tether::fleet {
namespace {

bool parse_u32(const char* text, std::uint32_t* out) {
    if (text == nullptr || *text < '0' || *text > '9') {
        return false;
    }
    errno = 0;
    char* end = nullptr;
    const unsigned long long value = std::strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || value > UINT32_MAX) {
        return false;
    }
    *out = static_cast<std::uint32_t>(value);
    return true;
}

bool parse_count(const char* text, std::size_t* out) {
    std::uint32_t value = 0;
    if (!parse_u32(text, &value)) {
        return false;
    }
    *out = value;
    return true;
}

}  // namespace

const char* usage_text() {
    return "usage: tether-fleet --clients N --messages M [options] URL\n"
           "\n"
           "N clients on one poll loop in one thread. Each sends M numbered messages:\n"
           "to an echo server (plain mode, done when every echo came back) or, with\n"
           "--tether-v1, to tether-server (done when every message is acknowledged).\n"
           "Prints one logfmt summary line; exit 0 when done, 1 otherwise.\n"
           "\n"
           "  --timeout-ms T            give up waiting after T ms (default 30000; not with "
           "--hold)\n"
           "  --tether-v1               speak tether.v1: session of user \"tether\" on device\n"
           "                            fleet-<i> for client i\n"
           "  --token T                 bearer token sent with every upgrade\n"
           "  --jitter MODE             none, full, equal or decorrelated\n"
           "  --backoff-initial-ms T    first backoff delay\n"
           "  --backoff-max-ms T        backoff cap\n"
           "  --healthy-after-ms T      a link up this long resets the backoff\n"
           "  --hold                    keep running once done, until SIGTERM or SIGINT; then\n"
           "                            close every client with 1000 and exit\n"
           "  --events FILE             one line per event: MONOTONIC_MS CLIENT EVENT [k=v...]\n"
           "                            with EVENT attempt (a connect to the server begins),\n"
           "                            online (resumed=0/1 in tether.v1), down, retry\n"
           "                            (delay_ms, reason, detail), given_up\n"
           "\n"
           "Standard output also gets \"all_online n=N t_ms=MS\" each time every client is\n"
           "online again after one was not (MS: CLOCK_MONOTONIC, as in --events).\n";
}

bool parse_options(int argc, char** argv, Options* options, char* error, std::size_t capacity) {
    for (int i = 1; i < argc; ++i) {
        const char* arg = argv[i];
        const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
        bool ok = true;
        bool takes_value = true;
        if (std::strcmp(arg, "--clients") == 0) {
            ok = parse_count(value, &options->clients);
        } else if (std::strcmp(arg, "--messages") == 0) {
            ok = parse_count(value, &options->messages);
        } else if (std::strcmp(arg, "--timeout-ms") == 0) {
            ok = parse_u32(value, &options->timeout_ms);
        } else if (std::strcmp(arg, "--token") == 0) {
            ok = value != nullptr && *value != '\0';
            options->token = value;
        } else if (std::strcmp(arg, "--jitter") == 0) {
            ok = parse_jitter_mode(value, &options->jitter);
            options->jitter_given = true;
        } else if (std::strcmp(arg, "--backoff-initial-ms") == 0) {
            ok = parse_u32(value, &options->backoff_initial_ms);
        } else if (std::strcmp(arg, "--backoff-max-ms") == 0) {
            ok = parse_u32(value, &options->backoff_max_ms);
        } else if (std::strcmp(arg, "--healthy-after-ms") == 0) {
            ok = parse_u32(value, &options->healthy_after_ms);
        } else if (std::strcmp(arg, "--events") == 0) {
            ok = value != nullptr;
            options->events_path = value;
        } else {
            takes_value = false;
            if (std::strcmp(arg, "--tether-v1") == 0) {
                options->tether_v1 = true;
            } else if (std::strcmp(arg, "--hold") == 0) {
                options->hold = true;
            } else if (arg[0] != '-' && options->url == nullptr) {
                options->url = arg;
            } else {
                std::snprintf(error, capacity, "unknown option %s", arg);
                return false;
            }
        }
        if (!ok) {
            std::snprintf(error, capacity, "bad value for %s", arg);
            return false;
        }
        if (takes_value) {
            ++i;
        }
    }
    if (options->url == nullptr) {
        std::snprintf(error, capacity, "no URL");
        return false;
    }
    if (options->clients == 0) {
        std::snprintf(error, capacity, "--clients must be > 0");
        return false;
    }
    return true;
}

}  // namespace tether::fleet

// SPDX-License-Identifier: MIT
#include "options.h"

#include <string>

#include "cli.h"

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
           "online again after one was not (MS: CLOCK_MONOTONIC, as in --events).\n"
           "\n"
           "  -h, --help                this text\n"
           "  --version                 print \"tether-fleet VERSION\" and exit\n"
           "Options that take a value accept --option VALUE and --option=VALUE.\n"
           "Exit codes: 0 done, 1 not done (timeout, a client gave up), 2 bad usage.\n";
}

bool parse_options(int argc, char** argv, Options* options, char* error, std::size_t capacity) {
    cli::ArgReader args(argc, argv);
    while (args.next()) {
        const char* arg = args.text();
        if (!args.is_option()) {
            if (options->url != nullptr) {
                std::snprintf(error, capacity, "one URL only (see --help)");
                return false;
            }
            options->url = arg;
            continue;
        }
        if (args.is("help")) {
            options->help = true;
            continue;
        }
        const std::string name = args.name();
        bool takes_value = true;
        for (const char* flag : {"version", "tether-v1", "hold"}) {
            if (name == flag) {
                takes_value = false;
            }
        }
        if (!takes_value) {
            if (args.has_inline_value()) {
                cli::takes_no_value_message(name.c_str(), error, capacity);
                return false;
            }
            (name == "version" ? options->version
             : name == "hold"  ? options->hold
                               : options->tether_v1) = true;
            continue;
        }
        const bool known = name == "clients" || name == "messages" || name == "timeout-ms" ||
                           name == "token" || name == "jitter" || name == "backoff-initial-ms" ||
                           name == "backoff-max-ms" || name == "healthy-after-ms" ||
                           name == "events";
        if (!known) {
            cli::unknown_option_message(arg, error, capacity);
            return false;
        }
        const char* value = args.value();
        if (value == nullptr) {
            cli::needs_value_message(name.c_str(), error, capacity);
            return false;
        }
        bool ok = true;
        if (name == "clients") {
            ok = parse_count(value, &options->clients);
        } else if (name == "messages") {
            ok = parse_count(value, &options->messages);
        } else if (name == "timeout-ms") {
            ok = parse_u32(value, &options->timeout_ms);
        } else if (name == "token") {
            ok = *value != '\0';
            options->token = value;
        } else if (name == "jitter") {
            ok = parse_jitter_mode(value, &options->jitter);
            options->jitter_given = true;
        } else if (name == "backoff-initial-ms") {
            ok = parse_u32(value, &options->backoff_initial_ms);
        } else if (name == "backoff-max-ms") {
            ok = parse_u32(value, &options->backoff_max_ms);
        } else if (name == "healthy-after-ms") {
            ok = parse_u32(value, &options->healthy_after_ms);
        } else {
            options->events_path = value;
        }
        if (!ok) {
            std::snprintf(error, capacity, "--%s: bad value '%s' (see --help)", name.c_str(),
                          value);
            return false;
        }
    }
    if (options->help || options->version) {
        return true;
    }
    if (options->url == nullptr) {
        std::snprintf(error, capacity, "no URL (see --help)");
        return false;
    }
    if (options->clients == 0) {
        std::snprintf(error, capacity, "--clients must be > 0 (see --help)");
        return false;
    }
    return true;
}

}  // namespace tether::fleet

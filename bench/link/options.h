// SPDX-License-Identifier: MIT
// tether-bench-link's command line.
#pragma once

#include <cstdint>

#include "tether/client.h"
#include "tether/port/posix_transport.h"

namespace tether::bench {

enum class Mode : std::uint8_t {
    kHold,           ///< connect and stay connected until SIGTERM/SIGINT
    kTlsReconnects,  ///< connect, then close and reconnect `count` times
};

struct Options {
    Mode mode = Mode::kHold;
    ClientConfig client;
    port::TlsSettings tls;
    const char* token_file = nullptr;
    const char* device_id = "bench-link";
    const char* user = "tether";
    std::uint32_t count = 50;
    long server_pid = 0;  ///< tls-reconnects: also report this process's CPU
    bool log_rx = false;  ///< log every read that returned bytes (the last sign of life)
};

/// Parses argv into *options; false after printing a message on stderr.
bool parse_options(int argc, char** argv, Options* options);

}  // namespace tether::bench

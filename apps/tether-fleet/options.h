// SPDX-License-Identifier: MIT
// tether-fleet's command line.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/backoff.h"

namespace tether::fleet {

struct Options {
    std::size_t clients = 10;
    std::size_t messages = 10;
    std::uint32_t timeout_ms = 30000;
    const char* url = nullptr;
    // tether.v1 (docs/PROTOCOL.md): sessions of user "tether" on devices fleet-<i>.
    bool tether_v1 = false;
    const char* token = nullptr;
    // Backoff; 0 keeps the library default.
    bool jitter_given = false;
    JitterMode jitter = JitterMode::kFull;
    std::uint32_t backoff_initial_ms = 0;
    std::uint32_t backoff_max_ms = 0;
    std::uint32_t healthy_after_ms = 0;
    bool hold = false;
    const char* events_path = nullptr;
    bool help = false;
    bool version = false;
};

/// Parses argv into *options. Returns true, or false with a message for the
/// user in `error`.
bool parse_options(int argc, char** argv, Options* options, char* error, std::size_t capacity);

/// The usage text.
const char* usage_text();

}  // namespace tether::fleet

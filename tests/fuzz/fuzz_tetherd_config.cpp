// SPDX-License-Identifier: MIT
// tetherd's config file parser (apps/tetherd/lib/config.h parse_config).
#include <cstddef>
#include <cstdint>
#include <string>

#include "config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    tether::daemon::DaemonConfig config;
    std::string error;
    if (tether::daemon::parse_config(reinterpret_cast<const char*>(data), size, &config, &error)) {
        (void)tether::daemon::describe(config);
    } else if (error.empty()) {
        __builtin_trap();  // a refusal always says why
    }
    return 0;
}

// SPDX-License-Identifier: MIT
// net::lookup_hosts: the input is a hosts file searched for a few names.
#include <cstddef>
#include <cstdint>

#include "tether/net/hosts_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tether::net;
    const char* text = reinterpret_cast<const char*>(data);
    static const char* const kNames[] = {"localhost", "gateway.local.", "a", ""};
    IpAddress found[4];
    for (const char* name : kNames) {
        for (std::size_t max = 0; max <= 4; max += 2) {
            if (lookup_hosts(text, size, name, max == 0 ? nullptr : found, max) > max) {
                __builtin_trap();
            }
        }
    }
    return 0;
}

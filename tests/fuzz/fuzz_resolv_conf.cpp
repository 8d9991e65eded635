// SPDX-License-Identifier: MIT
// net::parse_resolv_conf over the input, checking the documented ranges.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tether/net/dns_message.h"
#include "tether/net/resolv_conf.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tether::net;
    ResolvConf conf;
    parse_resolv_conf(reinterpret_cast<const char*>(data), size, &conf);
    if (conf.timeout_s < 1 || conf.timeout_s > ResolvConf::kMaxTimeoutS || conf.attempts < 1 ||
        conf.attempts > ResolvConf::kMaxAttempts || conf.ndots > ResolvConf::kMaxNdots) {
        __builtin_trap();
    }
    for (const auto& domain : conf.search) {
        const std::size_t length = std::strlen(domain);  // must be terminated
        if (length > 0 && !dns_name_is_valid(domain, length)) {
            __builtin_trap();
        }
    }
    return 0;
}

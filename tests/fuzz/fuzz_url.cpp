// SPDX-License-Identifier: MIT
// net::parse_ws_url over the input as a NUL-terminated string.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tether/net/url.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tether::net;
    std::vector<char> text(data, data + size);
    text.push_back('\0');
    WsUrl url;
    if (parse_ws_url(text.data(), &url) == UrlStatus::kOk) {
        if (std::strlen(url.host) == 0 || url.host[kMaxHostLength] != '\0' || url.path[0] != '/' ||
            url.path[kMaxPathLength] != '\0' || url.port == 0) {
            __builtin_trap();
        }
    }
    return 0;
}

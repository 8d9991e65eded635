// SPDX-License-Identifier: MIT
// ws:// and wss:// URLs, parsed into fixed buffers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tether::net {

inline constexpr std::size_t kMaxHostLength = 253;
inline constexpr std::size_t kMaxPathLength = 1024;

struct WsUrl {
    bool tls = false;                    ///< wss://
    char host[kMaxHostLength + 1] = {};  ///< a name or an address literal, without brackets
    bool host_is_ipv6 = false;           ///< was written in brackets
    std::uint16_t port = 0;              ///< explicit, or 80 / 443 by scheme
    char path[kMaxPathLength + 1] = {};  ///< path and query, starting with '/'
};

enum class [[nodiscard]] UrlStatus{
    kOk,
    kBadScheme,    ///< not ws:// or wss:// (case-insensitive)
    kBadHost,      ///< empty, too long, bad characters, unbalanced brackets
    kBadPort,      ///< not 1..65535
    kBadPath,      ///< too long, or a byte outside visible ASCII
    kHasUserinfo,  ///< "user:pass@host": credentials in a URL end up in logs; use a token file
    kHasFragment,  ///< '#' is not allowed in a WebSocket URI (RFC 6455 section 3)
};

const char* to_string(UrlStatus status);

/// Parses `text` (NUL-terminated). On kOk fills *out; otherwise leaves it in
/// an unspecified but valid state.
UrlStatus parse_ws_url(const char* text, WsUrl* out);

}  // namespace tether::net

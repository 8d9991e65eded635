// SPDX-License-Identifier: MIT
#include "tether/net/url.h"

#include <cstring>

namespace tether::net {
namespace {

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool starts_with_nocase(const char* text, const char* prefix) {
    for (; *prefix != '\0'; ++text, ++prefix) {
        if (lower(*text) != *prefix) {
            return false;
        }
    }
    return true;
}

bool host_char(char c, bool bracketed) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_') {
        return true;
    }
    return bracketed && c == ':';
}

}  // namespace

const char* to_string(UrlStatus status) {
    switch (status) {
        case UrlStatus::kOk:
            return "ok";
        case UrlStatus::kBadScheme:
            return "bad_scheme";
        case UrlStatus::kBadHost:
            return "bad_host";
        case UrlStatus::kBadPort:
            return "bad_port";
        case UrlStatus::kBadPath:
            return "bad_path";
        case UrlStatus::kHasUserinfo:
            return "has_userinfo";
        case UrlStatus::kHasFragment:
            return "has_fragment";
    }
    return "unknown";
}

UrlStatus parse_ws_url(const char* text, WsUrl* out) {
    *out = WsUrl{};
    const char* p = text;
    if (starts_with_nocase(p, "wss://")) {
        out->tls = true;
        p += 6;
    } else if (starts_with_nocase(p, "ws://")) {
        p += 5;
    } else {
        return UrlStatus::kBadScheme;
    }

    // The authority ends at the first '/', '?' or end of text.
    const char* authority_end = p;
    while (*authority_end != '\0' && *authority_end != '/' && *authority_end != '?' &&
           *authority_end != '#') {
        ++authority_end;
    }
    for (const char* c = p; c < authority_end; ++c) {
        if (*c == '@') {
            return UrlStatus::kHasUserinfo;
        }
    }

    const char* host_begin = p;
    const char* host_end = nullptr;
    const char* after_host = nullptr;
    if (*p == '[') {
        out->host_is_ipv6 = true;
        host_begin = p + 1;
        host_end = static_cast<const char*>(
            std::memchr(host_begin, ']', static_cast<std::size_t>(authority_end - host_begin)));
        if (host_end == nullptr) {
            return UrlStatus::kBadHost;
        }
        after_host = host_end + 1;
    } else {
        host_end = host_begin;
        while (host_end < authority_end && *host_end != ':') {
            ++host_end;
        }
        after_host = host_end;
    }
    const std::size_t host_length = static_cast<std::size_t>(host_end - host_begin);
    if (host_length == 0 || host_length > kMaxHostLength) {
        return UrlStatus::kBadHost;
    }
    for (const char* c = host_begin; c < host_end; ++c) {
        if (!host_char(*c, out->host_is_ipv6)) {
            return UrlStatus::kBadHost;
        }
    }
    std::memcpy(out->host, host_begin, host_length);
    out->host[host_length] = '\0';

    out->port = out->tls ? 443 : 80;
    if (after_host < authority_end) {
        if (*after_host != ':' || after_host + 1 == authority_end) {
            return out->host_is_ipv6 ? UrlStatus::kBadHost : UrlStatus::kBadPort;
        }
        std::uint32_t port = 0;
        for (const char* c = after_host + 1; c < authority_end; ++c) {
            if (*c < '0' || *c > '9') {
                return UrlStatus::kBadPort;
            }
            port = port * 10u + static_cast<std::uint32_t>(*c - '0');
            if (port > 65535u) {
                return UrlStatus::kBadPort;
            }
        }
        if (port == 0) {
            return UrlStatus::kBadPort;
        }
        out->port = static_cast<std::uint16_t>(port);
    }

    const char* path = authority_end;
    std::size_t path_length = 0;
    if (*path != '/') {
        out->path[path_length++] = '/';  // "ws://host?x" is "ws://host/?x"
    }
    for (const char* c = path; *c != '\0'; ++c) {
        if (*c == '#') {
            return UrlStatus::kHasFragment;
        }
        if (*c <= ' ' || *c == 0x7F || (static_cast<unsigned char>(*c) & 0x80u) != 0) {
            return UrlStatus::kBadPath;
        }
        if (path_length == kMaxPathLength) {
            return UrlStatus::kBadPath;
        }
        out->path[path_length++] = *c;
    }
    out->path[path_length] = '\0';
    return UrlStatus::kOk;
}

}  // namespace tether::net

// SPDX-License-Identifier: MIT
// The CONNECT exchange. The response parser works a line at a time: bytes
// collect in line_ until CRLF (a bare CR or LF is malformed), the first line
// must be "HTTP/1.x NNN ...", and the empty line ends the block. Field lines
// longer than line_ are skipped (only Proxy-Authenticate is looked at, and
// its scheme comes first); the whole block is bounded by kMaxConnectResponse.
#include "tether/net/http_proxy.h"

#include <cstring>

#include "tether/ascii.h"
#include "tether/net/ip_address.h"

namespace tether::net {
namespace {

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equal_nocase(const char* a, std::size_t a_length, const char* b, std::size_t b_length) {
    if (a_length != b_length) {
        return false;
    }
    for (std::size_t i = 0; i < a_length; ++i) {
        if (lower(a[i]) != lower(b[i])) {
            return false;
        }
    }
    return true;
}

bool starts_with_nocase(const char* text, const char* prefix) {
    for (; *prefix != '\0'; ++text, ++prefix) {
        if (*text == '\0' || lower(*text) != *prefix) {
            return false;
        }
    }
    return true;
}

bool is_control(unsigned char c) {
    return c < 0x20 || c == 0x7F;
}

bool host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == ':';
}

// Decodes %XX escapes of [begin, end) into out (capacity includes the NUL).
// Fails on a bad escape, a control character (decoded or not) or overflow.
bool percent_decode(const char* begin, const char* end, char* out, std::size_t capacity) {
    std::size_t length = 0;
    for (const char* p = begin; p < end; ++p) {
        char c = *p;
        if (c == '%') {
            if (end - p < 3) {
                return false;
            }
            const int high = hex_digit_value(p[1]);
            const int low = hex_digit_value(p[2]);
            if (high < 0 || low < 0) {
                return false;
            }
            c = static_cast<char>(high * 16 + low);
            p += 2;
        }
        if (is_control(static_cast<unsigned char>(c)) || length + 1 >= capacity) {
            return false;
        }
        out[length++] = c;
    }
    out[length] = '\0';
    return true;
}

bool credentials_valid(const char* username, const char* password) {
    if (username == nullptr) {
        return password == nullptr;
    }
    const std::size_t user_length = std::strlen(username);
    if (user_length > kMaxProxyUsername) {
        return false;
    }
    for (std::size_t i = 0; i < user_length; ++i) {
        if (is_control(static_cast<unsigned char>(username[i])) || username[i] == ':') {
            return false;
        }
    }
    if (password == nullptr) {
        return true;
    }
    const std::size_t password_length = std::strlen(password);
    if (password_length > kMaxProxyPassword) {
        return false;
    }
    for (std::size_t i = 0; i < password_length; ++i) {
        if (is_control(static_cast<unsigned char>(password[i]))) {
            return false;
        }
    }
    return true;
}

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Appends bytes to a bounded buffer; remembers overflow.
struct Writer {
    char* out;
    std::size_t capacity;
    std::size_t length = 0;
    bool overflow = false;

    void put(char c) {
        if (length < capacity) {
            out[length++] = c;
        } else {
            overflow = true;
        }
    }
    void put(const char* text) {
        for (; *text != '\0'; ++text) {
            put(*text);
        }
    }
    void put_port(std::uint16_t port) {
        char digits[5];
        std::size_t count = 0;
        unsigned value = port;
        do {
            digits[count++] = static_cast<char>('0' + value % 10u);
            value /= 10u;
        } while (value != 0 && count < sizeof digits);
        while (count > 0) {
            put(digits[--count]);
        }
    }
    void put_authority(const char* host, bool ipv6, std::uint16_t port) {
        if (ipv6) {
            put('[');
        }
        put(host);
        if (ipv6) {
            put(']');
        }
        put(':');
        put_port(port);
    }
};

// Base64 of user ":" password, streamed three bytes at a time so the joined
// secret never sits in a buffer of its own.
void put_basic(Writer& writer, const char* username, const char* password) {
    std::uint32_t group = 0;
    int filled = 0;
    auto emit = [&](unsigned char byte) {
        group = group << 8 | byte;
        if (++filled == 3) {
            for (int shift = 18; shift >= 0; shift -= 6) {
                writer.put(kBase64[(group >> shift) & 0x3Fu]);
            }
            group = 0;
            filled = 0;
        }
    };
    for (const char* p = username; *p != '\0'; ++p) {
        emit(static_cast<unsigned char>(*p));
    }
    emit(':');
    for (const char* p = password != nullptr ? password : ""; *p != '\0'; ++p) {
        emit(static_cast<unsigned char>(*p));
    }
    if (filled > 0) {
        const int pad = 3 - filled;
        group <<= 8 * pad;
        for (int i = 0; i < 4 - pad; ++i) {
            writer.put(kBase64[(group >> (18 - 6 * i)) & 0x3Fu]);
        }
        for (int i = 0; i < pad; ++i) {
            writer.put('=');
        }
    }
    group = 0;
}

// One no_proxy entry [begin, end) against host:port.
bool entry_matches(const char* begin, const char* end, const char* host, std::size_t host_length,
                   std::uint16_t port) {
    if (end - begin == 1 && *begin == '*') {
        return true;
    }
    // "[v6]" or "[v6]:port"; "name:port"; a bare IPv6 literal has several ':'.
    const char* name_end = end;
    const char* port_text = nullptr;
    if (*begin == '[') {
        const char* close = static_cast<const char*>(
            std::memchr(begin, ']', static_cast<std::size_t>(end - begin)));
        if (close == nullptr) {
            return false;
        }
        ++begin;
        name_end = close;
        if (close + 1 < end) {
            if (close[1] != ':') {
                return false;
            }
            port_text = close + 2;
        }
    } else {
        const char* colon = nullptr;
        std::size_t colons = 0;
        for (const char* p = begin; p < end; ++p) {
            if (*p == ':') {
                colon = p;
                ++colons;
            }
        }
        if (colons == 1) {
            name_end = colon;
            port_text = colon + 1;
        }
    }
    if (port_text != nullptr) {
        std::uint32_t wanted = 0;
        if (port_text == end) {
            return false;
        }
        for (const char* p = port_text; p < end; ++p) {
            if (*p < '0' || *p > '9' || wanted > 65535u) {
                return false;
            }
            wanted = wanted * 10u + static_cast<std::uint32_t>(*p - '0');
        }
        if (wanted != port) {
            return false;
        }
    }
    if (begin < name_end && *begin == '.') {
        ++begin;
    }
    if (name_end > begin && name_end[-1] == '.') {
        --name_end;
    }
    const std::size_t length = static_cast<std::size_t>(name_end - begin);
    if (length == 0) {
        return false;
    }
    if (equal_nocase(begin, length, host, host_length)) {
        return true;
    }
    // A name below the entry: "a.example.com" under "example.com". Address
    // literals contain no such structure worth matching (curl compares them whole).
    IpAddress ignored;
    if (parse_ip_address(host, host_length, &ignored)) {
        return false;
    }
    return host_length > length && host[host_length - length - 1] == '.' &&
           equal_nocase(host + host_length - length, length, begin, length);
}

}  // namespace

const char* to_string(ProxyUrlStatus status) {
    switch (status) {
        case ProxyUrlStatus::kOk:
            return "ok";
        case ProxyUrlStatus::kBadScheme:
            return "bad_scheme";
        case ProxyUrlStatus::kBadHost:
            return "bad_host";
        case ProxyUrlStatus::kBadPort:
            return "bad_port";
        case ProxyUrlStatus::kBadPath:
            return "bad_path";
        case ProxyUrlStatus::kBadCredentials:
            return "bad_credentials";
    }
    return "unknown";
}

ProxyUrlStatus parse_proxy_url(const char* text, ProxyUrl* out) {
    *out = ProxyUrl{};
    const char* p = text;
    const char* scheme_end = std::strstr(p, "://");
    if (scheme_end != nullptr) {
        if (!equal_nocase(p, static_cast<std::size_t>(scheme_end - p), "http", 4)) {
            return ProxyUrlStatus::kBadScheme;
        }
        p = scheme_end + 3;
    }
    const char* authority_end = p;
    while (*authority_end != '\0' && *authority_end != '/' && *authority_end != '?' &&
           *authority_end != '#') {
        ++authority_end;
    }
    if (*authority_end != '\0' && std::strcmp(authority_end, "/") != 0) {
        return ProxyUrlStatus::kBadPath;
    }
    // The last '@' ends the userinfo (a password may hold a literal '@').
    const char* at = nullptr;
    for (const char* c = p; c < authority_end; ++c) {
        if (*c == '@') {
            at = c;
        }
    }
    if (at != nullptr) {
        const char* colon =
            static_cast<const char*>(std::memchr(p, ':', static_cast<std::size_t>(at - p)));
        const char* user_end = colon != nullptr ? colon : at;
        if (!percent_decode(p, user_end, out->username, sizeof out->username) ||
            (colon != nullptr &&
             !percent_decode(colon + 1, at, out->password, sizeof out->password)) ||
            std::strchr(out->username, ':') != nullptr) {
            *out = ProxyUrl{};
            return ProxyUrlStatus::kBadCredentials;
        }
        out->has_credentials = true;
        p = at + 1;
    }
    // Host and port by the WebSocket URL rules (one authority grammar).
    char authority[kMaxHostLength + 16] = "ws://";
    const std::size_t length = static_cast<std::size_t>(authority_end - p);
    if (length == 0 || length + 6 > sizeof authority) {
        *out = ProxyUrl{};
        return ProxyUrlStatus::kBadHost;
    }
    std::memcpy(authority + 5, p, length);
    authority[5 + length] = '\0';
    WsUrl url;
    const UrlStatus status = parse_ws_url(authority, &url);
    if (status != UrlStatus::kOk) {
        *out = ProxyUrl{};
        return status == UrlStatus::kBadPort ? ProxyUrlStatus::kBadPort : ProxyUrlStatus::kBadHost;
    }
    std::memcpy(out->host, url.host, sizeof out->host);
    out->host_is_ipv6 = url.host_is_ipv6;
    out->port = url.port;
    return ProxyUrlStatus::kOk;
}

bool no_proxy_matches(const char* list, const char* host, std::uint16_t port) {
    if (list == nullptr || host == nullptr) {
        return false;
    }
    std::size_t host_length = std::strlen(host);
    if (host_length > 0 && host[host_length - 1] == '.') {
        --host_length;
    }
    const char* p = list;
    while (*p != '\0') {
        while (*p == ',' || *p == ' ' || *p == '\t') {
            ++p;
        }
        const char* begin = p;
        while (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t') {
            ++p;
        }
        if (p > begin && entry_matches(begin, p, host, host_length, port)) {
            return true;
        }
    }
    return false;
}

const char* to_string(ConnectBuildStatus status) {
    switch (status) {
        case ConnectBuildStatus::kOk:
            return "ok";
        case ConnectBuildStatus::kBadHost:
            return "bad_host";
        case ConnectBuildStatus::kBadCredentials:
            return "bad_credentials";
        case ConnectBuildStatus::kNoSpace:
            return "no_space";
    }
    return "unknown";
}

ConnectBuildStatus build_connect_request(const ConnectRequest& request, char* out,
                                         std::size_t capacity, std::size_t* length) {
    *length = 0;
    const std::size_t host_length = request.host == nullptr ? 0 : std::strlen(request.host);
    if (host_length == 0 || host_length > kMaxHostLength || request.port == 0) {
        return ConnectBuildStatus::kBadHost;
    }
    bool ipv6 = false;
    for (std::size_t i = 0; i < host_length; ++i) {
        if (!host_char(request.host[i])) {
            return ConnectBuildStatus::kBadHost;
        }
        ipv6 = ipv6 || request.host[i] == ':';
    }
    if (!credentials_valid(request.username, request.password)) {
        return ConnectBuildStatus::kBadCredentials;
    }
    Writer writer{out, capacity};
    writer.put("CONNECT ");
    writer.put_authority(request.host, ipv6, request.port);
    writer.put(" HTTP/1.1\r\nHost: ");
    writer.put_authority(request.host, ipv6, request.port);
    writer.put("\r\n");
    if (request.username != nullptr) {
        writer.put("Proxy-Authorization: Basic ");
        put_basic(writer, request.username, request.password);
        writer.put("\r\n");
    }
    writer.put("\r\n");
    if (writer.overflow) {
        std::memset(out, 0, capacity);
        return ConnectBuildStatus::kNoSpace;
    }
    *length = writer.length;
    return ConnectBuildStatus::kOk;
}

const char* to_string(ConnectResult result) {
    switch (result) {
        case ConnectResult::kNeedMore:
            return "need_more";
        case ConnectResult::kEstablished:
            return "established";
        case ConnectResult::kAuthRequired:
            return "auth_required";
        case ConnectResult::kForbidden:
            return "forbidden";
        case ConnectResult::kBadGateway:
            return "bad_gateway";
        case ConnectResult::kUnavailable:
            return "unavailable";
        case ConnectResult::kGatewayTimeout:
            return "gateway_timeout";
        case ConnectResult::kRejected:
            return "rejected";
        case ConnectResult::kMalformed:
            return "malformed";
        case ConnectResult::kTooLarge:
            return "too_large";
    }
    return "unknown";
}

std::size_t ConnectResponseParser::bytes_wanted() const {
    if (result_ != ConnectResult::kNeedMore) {
        return 0;
    }
    // The least that can still end the block: the CRLF of this line (when it
    // has content or is the status line) and the empty line's CRLF.
    const bool line_empty = line_length_ == 0 && !line_truncated_;
    if (line_empty && status_line_done_) {
        return saw_cr_ ? 1 : 2;
    }
    return saw_cr_ ? 3 : 4;
}

ConnectResult ConnectResponseParser::feed(const std::uint8_t* data, std::size_t size,
                                          std::size_t* consumed) {
    *consumed = 0;
    std::size_t i = 0;
    while (result_ == ConnectResult::kNeedMore && i < size) {
        const char c = static_cast<char>(data[i++]);
        if (++total_ > kMaxConnectResponse) {
            result_ = ConnectResult::kTooLarge;
            break;
        }
        if (saw_cr_) {
            if (c != '\n') {
                result_ = ConnectResult::kMalformed;
                break;
            }
            saw_cr_ = false;
            result_ = finish_line();
            line_length_ = 0;
            line_truncated_ = false;
            continue;
        }
        if (c == '\r') {
            saw_cr_ = true;
            continue;
        }
        if (c == '\n' || (is_control(static_cast<unsigned char>(c)) && c != '\t')) {
            result_ = ConnectResult::kMalformed;
            break;
        }
        if (line_length_ < sizeof line_ - 1) {
            line_[line_length_++] = c;
        } else {
            line_truncated_ = true;
        }
    }
    *consumed = i;
    return result_;
}

ConnectResult ConnectResponseParser::finish_line() {
    line_[line_length_] = '\0';
    if (!status_line_done_) {
        status_line_done_ = true;
        return line_truncated_ ? ConnectResult::kMalformed : parse_status_line();
    }
    if (line_length_ == 0 && !line_truncated_) {
        return result_for_status();  // the blank line: the block is complete
    }
    return parse_field_line();
}

ConnectResult ConnectResponseParser::parse_status_line() {
    // "HTTP/1.x SP 3DIGIT [SP reason]"
    if (line_length_ < 12 || std::strncmp(line_, "HTTP/1.", 7) != 0 || line_[7] < '0' ||
        line_[7] > '9' || line_[8] != ' ') {
        return ConnectResult::kMalformed;
    }
    std::uint16_t code = 0;
    for (int i = 9; i < 12; ++i) {
        if (line_[i] < '0' || line_[i] > '9') {
            return ConnectResult::kMalformed;
        }
        code = static_cast<std::uint16_t>(code * 10 + (line_[i] - '0'));
    }
    if (code < 100 || (line_length_ > 12 && line_[12] != ' ')) {
        return ConnectResult::kMalformed;
    }
    if (code < 200) {
        // 1xx before the final answer is allowed by HTTP but no proxy sends
        // one to CONNECT; refusing it keeps the parser one response long.
        return ConnectResult::kMalformed;
    }
    status_code_ = code;
    return ConnectResult::kNeedMore;
}

ConnectResult ConnectResponseParser::parse_field_line() {
    if (line_[0] == ' ' || line_[0] == '\t') {
        return ConnectResult::kMalformed;  // obsolete line folding
    }
    const char* colon = std::strchr(line_, ':');
    if (colon == nullptr || colon == line_) {
        // A field line too long for line_ may have its colon past the cut.
        return line_truncated_ ? ConnectResult::kNeedMore : ConnectResult::kMalformed;
    }
    const std::size_t name_length = static_cast<std::size_t>(colon - line_);
    for (std::size_t i = 0; i < name_length; ++i) {
        if (line_[i] == ' ' || line_[i] == '\t') {
            return ConnectResult::kMalformed;
        }
    }
    if (equal_nocase(line_, name_length, "Proxy-Authenticate", 18)) {
        proxy_authenticate_ = true;
        const char* value = colon + 1;
        while (*value == ' ' || *value == '\t') {
            ++value;
        }
        // Several challenges may share a field, comma-separated; Basic is
        // looked for at the start of each element.
        for (const char* p = value; *p != '\0'; ++p) {
            if ((p == value || p[-1] == ',' || p[-1] == ' ') && starts_with_nocase(p, "basic") &&
                (p[5] == '\0' || p[5] == ' ' || p[5] == ',')) {
                offers_basic_ = true;
            }
        }
    }
    return ConnectResult::kNeedMore;
}

ConnectResult ConnectResponseParser::result_for_status() const {
    if (status_code_ >= 200 && status_code_ <= 299) {
        return ConnectResult::kEstablished;
    }
    switch (status_code_) {
        case 401:  // tinyproxy 1.11, for credentials it does not accept
        case 407:
            return ConnectResult::kAuthRequired;
        case 403:
            return ConnectResult::kForbidden;
        case 502:
            return ConnectResult::kBadGateway;
        case 503:
            return ConnectResult::kUnavailable;
        case 504:
            return ConnectResult::kGatewayTimeout;
        default:
            return ConnectResult::kRejected;
    }
}

}  // namespace tether::net

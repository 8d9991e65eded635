// SPDX-License-Identifier: MIT
// The server's half of the opening handshake.
//
// feed() copies bytes into buffer_ one at a time, checking line endings as
// they arrive, until the block ends with CRLF CRLF. evaluate() then walks the
// block once: every line's CR is overwritten with NUL, and so is the end of
// each trimmed header value, so the recorded fields are C strings pointing
// into buffer_ and nothing is copied. buffer_ has one spare byte so the
// request line's end can be marked as well.
#include "tether/net/ws_server_handshake.h"

#include <cstring>

namespace tether::net {

const char* to_string(RequestStatus status) {
    switch (status) {
        case RequestStatus::kOk:
            return "ok";
        case RequestStatus::kNeedMore:
            return "need_more";
        case RequestStatus::kTooLarge:
            return "too_large";
        case RequestStatus::kMalformed:
            return "malformed";
        case RequestStatus::kNotGet:
            return "not_get";
        case RequestStatus::kNotHttp11:
            return "not_http11";
        case RequestStatus::kBadTarget:
            return "bad_target";
        case RequestStatus::kMissingHost:
            return "missing_host";
        case RequestStatus::kMissingUpgrade:
            return "missing_upgrade";
        case RequestStatus::kMissingConnection:
            return "missing_connection";
        case RequestStatus::kBadVersion:
            return "bad_version";
        case RequestStatus::kBadKey:
            return "bad_key";
        case RequestStatus::kInvalidArgument:
            return "invalid_argument";
    }
    return "unknown";
}

std::uint16_t status_for(RequestStatus status) {
    switch (status) {
        case RequestStatus::kOk:
        case RequestStatus::kNeedMore:
            return 0;
        case RequestStatus::kMissingUpgrade:
        case RequestStatus::kBadVersion:
            return 426;
        default:
            return 400;
    }
}

namespace {

bool is_tchar(char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        return true;
    }
    return c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool is_ows(char c) {
    return c == ' ' || c == '\t';
}

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equals_ignore_case(const char* text, std::size_t size, const char* lower_literal) {
    std::size_t i = 0;
    for (; i < size; ++i) {
        if (lower_literal[i] == '\0' || lower(text[i]) != lower_literal[i]) {
            return false;
        }
    }
    return lower_literal[i] == '\0';
}

bool is_hex_lower(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool is_base64(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

// Calls `match(item, size)` for every non-empty element of a comma list
// (OWS trimmed); true as soon as one matches.
template <typename Match>
bool list_any(const char* list, Match match) {
    const char* p = list;
    for (;;) {
        while (is_ows(*p) || *p == ',') {
            ++p;
        }
        if (*p == '\0') {
            return false;
        }
        const char* start = p;
        while (*p != '\0' && *p != ',') {
            ++p;
        }
        const char* end = p;
        while (end > start && is_ows(end[-1])) {
            --end;
        }
        if (match(start, static_cast<std::size_t>(end - start))) {
            return true;
        }
    }
}

bool list_has_token(const char* list, const char* lower_token) {
    return list_any(list, [lower_token](const char* item, std::size_t size) {
        return equals_ignore_case(item, size, lower_token);
    });
}

// 22 base64 characters and "==": 16 bytes. The last character carries only
// two data bits, so its low four bits must be zero (canonical encoding).
bool valid_key(const char* key) {
    if (std::strlen(key) != kWebSocketKeyLength || key[22] != '=' || key[23] != '=') {
        return false;
    }
    for (std::size_t i = 0; i < 22; ++i) {
        if (!is_base64(key[i])) {
            return false;
        }
    }
    static const char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const std::size_t last = static_cast<std::size_t>(std::strchr(kAlphabet, key[21]) - kAlphabet);
    return (last & 0x0Fu) == 0;
}

bool valid_target(const char* target) {
    if (target[0] != '/') {
        return false;
    }
    for (const char* p = target; *p != '\0'; ++p) {
        if (*p <= ' ' || *p > '~' || *p == '#') {
            return false;
        }
    }
    return true;
}

// W3C trace context, version-format: 2-32-16-2 lowercase hex digits.
bool valid_traceparent(const char* value) {
    static const std::size_t kFields[] = {2, 32, 16, 2};
    const char* p = value;
    for (std::size_t field = 0; field < 4; ++field) {
        for (std::size_t i = 0; i < kFields[field]; ++i, ++p) {
            if (!is_hex_lower(*p)) {
                return false;
            }
        }
        if (field < 3 && *p++ != '-') {
            return false;
        }
    }
    return *p == '\0';
}

// "Bearer" 1*SP token68 (RFC 6750 section 2.1); returns the token or null.
const char* bearer_of(char* value) {
    if (!equals_ignore_case(value, 6, "bearer") || value[6] != ' ') {
        return nullptr;
    }
    char* token = value + 7;
    while (*token == ' ') {
        ++token;
    }
    if (*token == '\0') {
        return nullptr;
    }
    for (const char* p = token; *p != '\0'; ++p) {
        const bool allowed = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                             (*p >= 'A' && *p <= 'Z') || std::strchr("-._~+/=", *p) != nullptr;
        if (!allowed) {
            return nullptr;
        }
    }
    return token;
}

}  // namespace

void UpgradeRequestParser::reset() {
    result_ = RequestStatus::kNeedMore;
    used_ = 0;
    saw_cr_ = false;
    target_ = nullptr;
    host_ = nullptr;
    key_ = nullptr;
    bearer_ = nullptr;
    traceparent_ = nullptr;
    protocol_count_ = 0;
    for (const char*& protocol : protocols_) {
        protocol = nullptr;
    }
}

RequestStatus UpgradeRequestParser::finish(RequestStatus status) {
    result_ = status;
    if (status != RequestStatus::kOk) {
        target_ = nullptr;
        host_ = nullptr;
        key_ = nullptr;
        bearer_ = nullptr;
        traceparent_ = nullptr;
        protocol_count_ = 0;
    }
    return status;
}

RequestStatus UpgradeRequestParser::feed(const std::uint8_t* data, std::size_t size,
                                         std::size_t* consumed) {
    if (consumed == nullptr || (data == nullptr && size != 0)) {
        if (consumed != nullptr) {
            *consumed = 0;
        }
        return RequestStatus::kInvalidArgument;
    }
    *consumed = 0;
    if (result_ != RequestStatus::kNeedMore) {
        return result_;
    }
    for (std::size_t i = 0; i < size; ++i) {
        const char c = static_cast<char>(data[i]);
        if (used_ == kMaxRequestSize) {
            *consumed = i;
            return finish(RequestStatus::kTooLarge);
        }
        buffer_[used_++] = c;
        const bool cr_before = saw_cr_;
        saw_cr_ = c == '\r';
        if (c == '\0' || (cr_before && c != '\n') || (!cr_before && c == '\n')) {
            *consumed = i + 1;
            return finish(RequestStatus::kMalformed);
        }
        if (c == '\n' && used_ >= 4 && buffer_[used_ - 3] == '\n') {
            *consumed = i + 1;
            return finish(evaluate());
        }
    }
    *consumed = size;
    return RequestStatus::kNeedMore;
}

RequestStatus UpgradeRequestParser::evaluate() {
    // Mark every line end; `line` walks from one line to the next.
    for (std::size_t i = 0; i < used_; ++i) {
        if (buffer_[i] == '\r') {
            buffer_[i] = '\0';
        }
    }
    buffer_[used_] = '\0';

    // Request line: METHOD SP target SP version.
    char* line = buffer_;
    char* first_space = std::strchr(line, ' ');
    char* second_space = first_space == nullptr ? nullptr : std::strchr(first_space + 1, ' ');
    if (first_space == nullptr || second_space == nullptr ||
        std::strchr(second_space + 1, ' ') != nullptr || first_space == line) {
        return RequestStatus::kMalformed;
    }
    *first_space = '\0';
    *second_space = '\0';
    const char* method = line;
    char* target = first_space + 1;
    const char* version = second_space + 1;
    for (const char* p = method; *p != '\0'; ++p) {
        if (!is_tchar(*p)) {
            return RequestStatus::kMalformed;
        }
    }

    std::size_t hosts = 0;
    std::size_t versions = 0;
    std::size_t keys = 0;
    std::size_t authorizations = 0;
    bool upgrade = false;
    bool connection = false;
    bool version_13 = false;
    line = second_space + 1 + std::strlen(version) + 2;
    while (*line != '\0') {
        char* end = line + std::strlen(line);
        char* colon = line;
        while (colon < end && is_tchar(*colon)) {
            ++colon;
        }
        if (colon == line || *colon != ':') {
            return RequestStatus::kMalformed;  // also an obs-fold line starting with SP/HTAB
        }
        for (const char* p = colon + 1; p < end; ++p) {
            if ((static_cast<unsigned char>(*p) < 0x20 && *p != '\t') || *p == 0x7F) {
                return RequestStatus::kMalformed;
            }
        }
        const std::size_t name_size = static_cast<std::size_t>(colon - line);
        char* value = colon + 1;
        while (is_ows(*value)) {
            ++value;
        }
        char* value_end = end;
        while (value_end > value && is_ows(value_end[-1])) {
            --value_end;
        }
        *value_end = '\0';
        char* next = end + 2;

        if (equals_ignore_case(line, name_size, "host")) {
            ++hosts;
            host_ = value;
        } else if (equals_ignore_case(line, name_size, "upgrade")) {
            upgrade = upgrade || list_has_token(value, "websocket");
        } else if (equals_ignore_case(line, name_size, "connection")) {
            connection = connection || list_has_token(value, "upgrade");
        } else if (equals_ignore_case(line, name_size, "sec-websocket-version")) {
            ++versions;
            version_13 = std::strcmp(value, "13") == 0;
        } else if (equals_ignore_case(line, name_size, "sec-websocket-key")) {
            ++keys;
            key_ = value;
        } else if (equals_ignore_case(line, name_size, "sec-websocket-protocol")) {
            if (protocol_count_ < kMaxProtocolHeaders) {
                protocols_[protocol_count_++] = value;
            }
        } else if (equals_ignore_case(line, name_size, "authorization")) {
            ++authorizations;
            bearer_ = bearer_of(value);
        } else if (equals_ignore_case(line, name_size, "traceparent")) {
            traceparent_ = valid_traceparent(value) ? value : nullptr;
        }
        line = next;
    }

    if (authorizations > 1) {
        return RequestStatus::kMalformed;
    }
    if (std::strcmp(method, "GET") != 0) {
        return RequestStatus::kNotGet;
    }
    if (std::strcmp(version, "HTTP/1.1") != 0) {
        return RequestStatus::kNotHttp11;
    }
    if (!valid_target(target)) {
        return RequestStatus::kBadTarget;
    }
    target_ = target;
    if (hosts != 1) {
        return RequestStatus::kMissingHost;
    }
    if (!upgrade) {
        return RequestStatus::kMissingUpgrade;
    }
    if (!connection) {
        return RequestStatus::kMissingConnection;
    }
    if (versions != 1 || !version_13) {
        return RequestStatus::kBadVersion;
    }
    if (keys != 1 || !valid_key(key_)) {
        return RequestStatus::kBadKey;
    }
    return RequestStatus::kOk;
}

bool UpgradeRequestParser::offers_subprotocol(const char* name) const {
    if (result_ != RequestStatus::kOk || name == nullptr) {
        return false;
    }
    for (std::size_t i = 0; i < protocol_count_; ++i) {
        if (list_any(protocols_[i], [name](const char* item, std::size_t size) {
                return std::strlen(name) == size && std::memcmp(item, name, size) == 0;
            })) {
            return true;
        }
    }
    return false;
}

namespace {

// Appends to a bounded buffer and keeps counting past its end, so a failed
// build still reports the size it needed.
class Writer {
  public:
    Writer(char* out, std::size_t capacity) : out_(out), capacity_(capacity) {}

    void text(const char* s) {
        for (; *s != '\0'; ++s) {
            put(*s);
        }
    }
    void number(std::uint32_t value) {
        char digits[10];
        std::size_t count = 0;
        do {
            digits[count++] = static_cast<char>('0' + value % 10u);
            value /= 10u;
        } while (value != 0);
        while (count != 0) {
            put(digits[--count]);
        }
    }
    std::size_t size() const { return size_; }
    bool fits() const { return size_ <= capacity_; }

  private:
    void put(char c) {
        if (size_ < capacity_) {
            out_[size_] = c;
        }
        ++size_;
    }
    char* out_;
    std::size_t capacity_;
    std::size_t size_ = 0;
};

const char* reason_phrase(std::uint16_t status) {
    switch (status) {
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 426:
            return "Upgrade Required";
        case 429:
            return "Too Many Requests";
        case 500:
            return "Internal Server Error";
        case 503:
            return "Service Unavailable";
        default:
            return nullptr;
    }
}

HandshakeStatus finish_write(const Writer& writer, std::size_t* length) {
    *length = writer.size();
    return writer.fits() ? HandshakeStatus::kOk : HandshakeStatus::kBufferTooSmall;
}

}  // namespace

HandshakeStatus build_accept_response(const AcceptResponse& response, char* out,
                                      std::size_t capacity, std::size_t* length) {
    if (length == nullptr) {
        return HandshakeStatus::kInvalidArgument;
    }
    *length = 0;
    if (out == nullptr && capacity != 0) {
        return HandshakeStatus::kInvalidArgument;
    }
    char accept[kWebSocketAcceptLength + 1];
    if (response.key == nullptr || compute_accept(response.key, accept) != HandshakeStatus::kOk) {
        return HandshakeStatus::kInvalidArgument;
    }
    if (response.subprotocol != nullptr) {
        if (response.subprotocol[0] == '\0') {
            return HandshakeStatus::kInvalidArgument;
        }
        for (const char* p = response.subprotocol; *p != '\0'; ++p) {
            if (!is_tchar(*p)) {
                return HandshakeStatus::kInvalidArgument;
            }
        }
    }
    Writer writer(out, capacity);
    writer.text(
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: ");
    writer.text(accept);
    writer.text("\r\n");
    if (response.subprotocol != nullptr) {
        writer.text("Sec-WebSocket-Protocol: ");
        writer.text(response.subprotocol);
        writer.text("\r\n");
    }
    writer.text("\r\n");
    return finish_write(writer, length);
}

HandshakeStatus build_error_response(const ErrorResponse& response, char* out, std::size_t capacity,
                                     std::size_t* length) {
    if (length == nullptr) {
        return HandshakeStatus::kInvalidArgument;
    }
    *length = 0;
    const char* reason = reason_phrase(response.status);
    if ((out == nullptr && capacity != 0) || reason == nullptr ||
        (response.has_retry_after && response.retry_after_seconds > kMaxRetryAfterSeconds)) {
        return HandshakeStatus::kInvalidArgument;
    }
    Writer writer(out, capacity);
    writer.text("HTTP/1.1 ");
    writer.number(response.status);
    writer.text(" ");
    writer.text(reason);
    writer.text("\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ");
    writer.number(static_cast<std::uint32_t>(std::strlen(reason) + 1));
    writer.text("\r\n");
    if (response.status == 401) {
        writer.text("WWW-Authenticate: Bearer\r\n");
    }
    if (response.status == 426) {
        writer.text("Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
    }
    if (response.has_retry_after) {
        writer.text("Retry-After: ");
        writer.number(response.retry_after_seconds);
        writer.text("\r\n");
    }
    writer.text("\r\n");
    writer.text(reason);
    writer.text("\n");
    return finish_write(writer, length);
}

}  // namespace tether::net

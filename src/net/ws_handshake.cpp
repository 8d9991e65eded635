// SPDX-License-Identifier: MIT
#include "tether/net/ws_handshake.h"

#include <mbedtls/base64.h>
#include <mbedtls/sha1.h>

#include <cstring>

namespace tether::net {

const char* to_string(HandshakeStatus status) {
    switch (status) {
        case HandshakeStatus::kOk:
            return "ok";
        case HandshakeStatus::kNeedMore:
            return "need_more";
        case HandshakeStatus::kBufferTooSmall:
            return "buffer_too_small";
        case HandshakeStatus::kResponseTooLarge:
            return "response_too_large";
        case HandshakeStatus::kMalformed:
            return "malformed";
        case HandshakeStatus::kNotSwitching:
            return "not_switching";
        case HandshakeStatus::kMissingUpgrade:
            return "missing_upgrade";
        case HandshakeStatus::kMissingConnection:
            return "missing_connection";
        case HandshakeStatus::kBadAccept:
            return "bad_accept";
        case HandshakeStatus::kUnexpectedExtension:
            return "unexpected_extension";
        case HandshakeStatus::kUnexpectedSubprotocol:
            return "unexpected_subprotocol";
        case HandshakeStatus::kMissingSubprotocol:
            return "missing_subprotocol";
        case HandshakeStatus::kInvalidArgument:
            return "invalid_argument";
    }
    return "unknown";
}

namespace {

// ---------------------------------------------------------------------------
// Character classes (RFC 9110 section 5.6).

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool is_tchar(char c) {
    return is_alpha(c) || is_digit(c) ||
           (c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr);
}

// Field-value and reason-phrase octets: HTAB, SP, VCHAR and obs-text. Every
// other control character, DEL included, could split or smuggle a line.
bool is_field_octet(char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte == '\t' || (byte >= 0x20 && byte != 0x7F);
}

bool is_ows(char c) {
    return c == ' ' || c == '\t';
}

char to_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// A byte range of the caller's text or of the response buffer; never NUL-terminated.
struct Span {
    const char* data;
    std::size_t size;
};

bool equals_ignore_case(Span text, const char* lower_literal) {
    const std::size_t literal_size = std::strlen(lower_literal);
    if (text.size != literal_size) {
        return false;
    }
    for (std::size_t i = 0; i < literal_size; ++i) {
        if (to_lower(text.data[i]) != lower_literal[i]) {
            return false;
        }
    }
    return true;
}

bool equals_exactly(Span text, const char* literal) {
    return std::strlen(literal) == text.size && std::memcmp(text.data, literal, text.size) == 0;
}

Span trim_ows(Span text) {
    while (text.size > 0 && is_ows(text.data[0])) {
        ++text.data;
        --text.size;
    }
    while (text.size > 0 && is_ows(text.data[text.size - 1])) {
        --text.size;
    }
    return text;
}

bool is_token(Span text) {
    if (text.size == 0) {
        return false;
    }
    for (std::size_t i = 0; i < text.size; ++i) {
        if (!is_tchar(text.data[i])) {
            return false;
        }
    }
    return true;
}

bool is_field_value(Span text) {
    for (std::size_t i = 0; i < text.size; ++i) {
        if (!is_field_octet(text.data[i])) {
            return false;
        }
    }
    return true;
}

Span span_of(const char* text) {
    return Span{text, std::strlen(text)};
}

// ---------------------------------------------------------------------------
// Request building.

// Appends into a bounded buffer and keeps counting past its end, so a caller
// whose buffer is too small learns the size it needs.
class RequestWriter {
  public:
    RequestWriter(char* out, std::size_t capacity) : out_(out), capacity_(capacity) {}

    void append(const char* data, std::size_t size) {
        if (length_ <= capacity_ && size <= capacity_ - length_) {
            std::memcpy(out_ + length_, data, size);
        }
        length_ += size;
    }
    void append(const char* text) { append(text, std::strlen(text)); }
    void append_decimal(std::uint32_t value) {
        char digits[10];
        std::size_t count = 0;
        do {
            digits[sizeof digits - 1 - count] = static_cast<char>('0' + value % 10u);
            value /= 10u;
            ++count;
        } while (value != 0);
        append(digits + sizeof digits - count, count);
    }
    std::size_t length() const { return length_; }
    bool fits() const { return length_ <= capacity_; }

  private:
    char* out_;
    std::size_t capacity_;
    std::size_t length_ = 0;
};

// RFC 3986 reg-name, IPv4 and IPv6 literal characters (zone ids included).
bool is_host_char(char c) {
    return is_alpha(c) || is_digit(c) ||
           (c != '\0' && std::strchr("-._~!$&'()*+,;=%:", c) != nullptr);
}

// Accepts "name", "1.2.3.4", "::1" and "[::1]"; sets *needs_brackets for a
// bare IPv6 literal (recognised by its colon, which no name or IPv4 contains).
bool valid_host(const char* host, bool* needs_brackets) {
    Span text = span_of(host);
    const bool bracketed = text.size >= 2 && text.data[0] == '[' && text.data[text.size - 1] == ']';
    if (bracketed) {
        text = Span{text.data + 1, text.size - 2};
    }
    if (text.size == 0) {
        return false;
    }
    bool has_colon = false;
    for (std::size_t i = 0; i < text.size; ++i) {
        if (!is_host_char(text.data[i])) {
            return false;
        }
        has_colon = has_colon || text.data[i] == ':';
    }
    if (bracketed && !has_colon) {
        return false;
    }
    *needs_brackets = has_colon && !bracketed;
    return true;
}

bool valid_path(const char* path) {
    if (path[0] != '/') {
        return false;
    }
    for (const char* p = path; *p != '\0'; ++p) {
        const auto byte = static_cast<unsigned char>(*p);
        if (byte <= 0x20 || byte >= 0x7F || byte == '#') {
            return false;
        }
    }
    return true;
}

bool is_base64_char(char c) {
    return is_alpha(c) || is_digit(c) || c == '+' || c == '/';
}

bool valid_key(const char* key) {
    if (key == nullptr || std::strlen(key) != kWebSocketKeyLength) {
        return false;
    }
    for (std::size_t i = 0; i < kWebSocketKeyLength - 2; ++i) {
        if (!is_base64_char(key[i])) {
            return false;
        }
    }
    return key[kWebSocketKeyLength - 2] == '=' && key[kWebSocketKeyLength - 1] == '=';
}

bool valid_subprotocols(const UpgradeRequest& request) {
    if (request.subprotocol_count > 0 && request.subprotocols == nullptr) {
        return false;
    }
    for (std::size_t i = 0; i < request.subprotocol_count; ++i) {
        const char* protocol = request.subprotocols[i];
        if (protocol == nullptr || !is_token(span_of(protocol))) {
            return false;
        }
    }
    return true;
}

bool has_authorization(const UpgradeRequest& request) {
    return request.authorization != nullptr && request.authorization[0] != '\0';
}

// Names the handshake writes itself, or whose meaning would contradict a GET
// upgrade; a duplicate from the caller could override ours at the server.
bool is_reserved_header(Span name, bool authorization_given) {
    static const char* const kReserved[] = {
        "host",
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
        "sec-websocket-accept",
        "content-length",
        "transfer-encoding",
    };
    for (const char* reserved : kReserved) {
        if (equals_ignore_case(name, reserved)) {
            return true;
        }
    }
    return authorization_given && equals_ignore_case(name, "authorization");
}

bool valid_extra_header(const char* line, bool authorization_given) {
    if (line == nullptr) {
        return false;
    }
    const char* colon = std::strchr(line, ':');
    if (colon == nullptr) {
        return false;
    }
    const Span name{line, static_cast<std::size_t>(colon - line)};
    return is_token(name) && !is_reserved_header(name, authorization_given) &&
           is_field_value(span_of(colon + 1));
}

bool valid_extra_headers(const UpgradeRequest& request) {
    if (request.extra_header_count > 0 && request.extra_headers == nullptr) {
        return false;
    }
    const bool authorization_given = has_authorization(request);
    for (std::size_t i = 0; i < request.extra_header_count; ++i) {
        if (!valid_extra_header(request.extra_headers[i], authorization_given)) {
            return false;
        }
    }
    return true;
}

bool valid_request(const UpgradeRequest& request, bool* host_needs_brackets) {
    if (request.host == nullptr || !valid_host(request.host, host_needs_brackets)) {
        return false;
    }
    if (request.path != nullptr && !valid_path(request.path)) {
        return false;
    }
    if (!valid_key(request.key) || !valid_subprotocols(request)) {
        return false;
    }
    if (request.deflate != nullptr && !valid_deflate_offer(*request.deflate)) {
        return false;
    }
    if (request.authorization != nullptr && !is_field_value(span_of(request.authorization))) {
        return false;
    }
    return valid_extra_headers(request);
}

void write_host_line(const UpgradeRequest& request, bool needs_brackets, RequestWriter* writer) {
    writer->append("Host: ");
    if (needs_brackets) {
        writer->append("[");
    }
    writer->append(request.host);
    if (needs_brackets) {
        writer->append("]");
    }
    const std::uint16_t default_port = request.tls ? 443 : 80;
    if (request.port != 0 && request.port != default_port) {
        writer->append(":");
        writer->append_decimal(request.port);
    }
    writer->append("\r\n");
}

// ---------------------------------------------------------------------------
// HTTP-date parsing.

// Reads fixed-layout date text left to right; every reader fails without
// moving when the text does not match.
class DateCursor {
  public:
    DateCursor(const char* text, std::size_t size) : p_(text), end_(text + size) {}

    bool at_end() const { return p_ == end_; }

    bool literal(const char* expected) {
        const std::size_t size = std::strlen(expected);
        if (static_cast<std::size_t>(end_ - p_) < size || std::memcmp(p_, expected, size) != 0) {
            return false;
        }
        p_ += size;
        return true;
    }

    bool digits(std::size_t count, std::uint32_t* value) {
        if (static_cast<std::size_t>(end_ - p_) < count) {
            return false;
        }
        std::uint32_t result = 0;
        for (std::size_t i = 0; i < count; ++i) {
            if (!is_digit(p_[i])) {
                return false;
            }
            result = result * 10u + static_cast<std::uint32_t>(p_[i] - '0');
        }
        p_ += count;
        *value = result;
        return true;
    }

    // One of `names`, matched case-sensitively as RFC 9110 requires.
    bool one_of(const char* const* names, std::size_t count, std::uint32_t* index) {
        for (std::size_t i = 0; i < count; ++i) {
            if (literal(names[i])) {
                *index = static_cast<std::uint32_t>(i);
                return true;
            }
        }
        return false;
    }

    // "HH:MM:SS" with HH <= 23, MM <= 59, SS <= 60.
    bool time_of_day(std::uint32_t* seconds) {
        std::uint32_t hour = 0;
        std::uint32_t minute = 0;
        std::uint32_t second = 0;
        if (!digits(2, &hour) || !literal(":") || !digits(2, &minute) || !literal(":") ||
            !digits(2, &second)) {
            return false;
        }
        if (hour > 23 || minute > 59 || second > 60) {
            return false;
        }
        *seconds = hour * 3600u + minute * 60u + second;
        return true;
    }

  private:
    const char* p_;
    const char* end_;
};

const char* const kShortDayNames[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
const char* const kLongDayNames[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                     "Friday", "Saturday", "Sunday"};
const char* const kMonthNames[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// The broken-down date a format yields before range checks; month is 0-based
// as it comes out of the kMonthNames lookup.
struct CivilTime {
    std::uint32_t year = 0;
    std::uint32_t month = 0;
    std::uint32_t day = 0;
    std::uint32_t seconds_of_day = 0;
};

bool is_leap_year(std::uint32_t year) {
    return (year % 4u == 0 && year % 100u != 0) || year % 400u == 0;
}

std::uint32_t days_in_month(std::uint32_t year, std::uint32_t month0) {
    static const std::uint8_t kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return (month0 == 1 && is_leap_year(year)) ? 29u : kDays[month0];
}

// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
bool parse_imf_fixdate(const char* text, std::size_t size, CivilTime* time) {
    DateCursor cursor(text, size);
    std::uint32_t ignored = 0;
    return cursor.one_of(kShortDayNames, 7, &ignored) && cursor.literal(", ") &&
           cursor.digits(2, &time->day) && cursor.literal(" ") &&
           cursor.one_of(kMonthNames, 12, &time->month) && cursor.literal(" ") &&
           cursor.digits(4, &time->year) && cursor.literal(" ") &&
           cursor.time_of_day(&time->seconds_of_day) && cursor.literal(" GMT") && cursor.at_end();
}

// RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT".
bool parse_rfc850_date(const char* text, std::size_t size, CivilTime* time) {
    DateCursor cursor(text, size);
    std::uint32_t ignored = 0;
    std::uint32_t two_digit_year = 0;
    if (!(cursor.one_of(kLongDayNames, 7, &ignored) && cursor.literal(", ") &&
          cursor.digits(2, &time->day) && cursor.literal("-") &&
          cursor.one_of(kMonthNames, 12, &time->month) && cursor.literal("-") &&
          cursor.digits(2, &two_digit_year) && cursor.literal(" ") &&
          cursor.time_of_day(&time->seconds_of_day) && cursor.literal(" GMT") && cursor.at_end())) {
        return false;
    }
    time->year = two_digit_year + (two_digit_year >= 70 ? 1900u : 2000u);
    return true;
}

// asctime: "Sun Nov  6 08:49:37 1994" (a one-digit day is padded with a space).
bool parse_asctime_date(const char* text, std::size_t size, CivilTime* time) {
    DateCursor cursor(text, size);
    std::uint32_t ignored = 0;
    if (!(cursor.one_of(kShortDayNames, 7, &ignored) && cursor.literal(" ") &&
          cursor.one_of(kMonthNames, 12, &time->month) && cursor.literal(" "))) {
        return false;
    }
    const bool day_read =
        cursor.literal(" ") ? cursor.digits(1, &time->day) : cursor.digits(2, &time->day);
    return day_read && cursor.literal(" ") && cursor.time_of_day(&time->seconds_of_day) &&
           cursor.literal(" ") && cursor.digits(4, &time->year) && cursor.at_end();
}

// ---------------------------------------------------------------------------
// Response parsing helpers.

// Saturating delta-seconds: digits only, at least one.
bool parse_delta_seconds(Span text, std::uint32_t* seconds) {
    if (text.size == 0) {
        return false;
    }
    std::uint32_t value = 0;
    for (std::size_t i = 0; i < text.size; ++i) {
        if (!is_digit(text.data[i])) {
            return false;
        }
        value = value * 10u + static_cast<std::uint32_t>(text.data[i] - '0');
        if (value > kMaxRetryAfterSeconds) {
            value = kMaxRetryAfterSeconds + 1u;  // stays saturated, cannot overflow
        }
    }
    *seconds = value > kMaxRetryAfterSeconds ? kMaxRetryAfterSeconds : value;
    return true;
}

bool list_contains_token(Span list, const char* lower_token) {
    std::size_t start = 0;
    for (std::size_t i = 0; i <= list.size; ++i) {
        if (i == list.size || list.data[i] == ',') {
            const Span element = trim_ows(Span{list.data + start, i - start});
            if (equals_ignore_case(element, lower_token)) {
                return true;
            }
            start = i + 1;
        }
    }
    return false;
}

// Status line: HTTP/1.x SP 3DIGIT [SP reason-phrase].
bool parse_status_line(Span line, std::uint16_t* code, bool* is_http11) {
    DateCursor cursor(line.data, line.size);
    std::uint32_t minor = 0;
    std::uint32_t value = 0;
    if (!cursor.literal("HTTP/1.") || !cursor.digits(1, &minor) || minor > 1 ||
        !cursor.literal(" ") || !cursor.digits(3, &value) || value < 100 || value > 599) {
        return false;
    }
    const std::size_t reason_start = 12;  // strlen("HTTP/1.1 101")
    if (line.size > reason_start &&
        (line.data[reason_start] != ' ' ||
         !is_field_value(Span{line.data + reason_start, line.size - reason_start}))) {
        return false;
    }
    *code = static_cast<std::uint16_t>(value);
    *is_http11 = minor == 1;
    return true;
}

}  // namespace

// ---------------------------------------------------------------------------
// Public functions.

HandshakeStatus make_websocket_key(const std::uint8_t random16[16],
                                   char out[kWebSocketKeyLength + 1]) {
    if (random16 == nullptr || out == nullptr) {
        return HandshakeStatus::kInvalidArgument;
    }
    std::size_t written = 0;
    const int result = mbedtls_base64_encode(reinterpret_cast<unsigned char*>(out),
                                             kWebSocketKeyLength + 1, &written, random16, 16);
    return result == 0 ? HandshakeStatus::kOk : HandshakeStatus::kInvalidArgument;
}

HandshakeStatus compute_accept(const char* key, char out[kWebSocketAcceptLength + 1]) {
    static const char kGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    if (key == nullptr || out == nullptr || std::strlen(key) != kWebSocketKeyLength) {
        return HandshakeStatus::kInvalidArgument;
    }
    unsigned char input[kWebSocketKeyLength + sizeof kGuid - 1];
    std::memcpy(input, key, kWebSocketKeyLength);
    std::memcpy(input + kWebSocketKeyLength, kGuid, sizeof kGuid - 1);
    unsigned char digest[20];
    std::size_t written = 0;
    if (mbedtls_sha1_ret(input, sizeof input, digest) != 0 ||
        mbedtls_base64_encode(reinterpret_cast<unsigned char*>(out), kWebSocketAcceptLength + 1,
                              &written, digest, sizeof digest) != 0) {
        return HandshakeStatus::kInvalidArgument;
    }
    return HandshakeStatus::kOk;
}

HandshakeStatus build_upgrade_request(const UpgradeRequest& request, char* out,
                                      std::size_t capacity, std::size_t* length) {
    if (length == nullptr) {
        return HandshakeStatus::kInvalidArgument;
    }
    *length = 0;
    bool host_needs_brackets = false;
    if ((out == nullptr && capacity != 0) || !valid_request(request, &host_needs_brackets)) {
        return HandshakeStatus::kInvalidArgument;
    }
    RequestWriter writer(out, capacity);
    writer.append("GET ");
    writer.append(request.path != nullptr ? request.path : "/");
    writer.append(" HTTP/1.1\r\n");
    write_host_line(request, host_needs_brackets, &writer);
    writer.append("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
    writer.append(request.key);
    writer.append("\r\nSec-WebSocket-Version: 13\r\n");
    if (request.subprotocol_count > 0) {
        writer.append("Sec-WebSocket-Protocol: ");
        for (std::size_t i = 0; i < request.subprotocol_count; ++i) {
            writer.append(i == 0 ? "" : ", ");
            writer.append(request.subprotocols[i]);
        }
        writer.append("\r\n");
    }
    if (request.deflate != nullptr) {
        char offer[kMaxDeflateOfferLength + 1];
        // valid_request() checked the offer and the buffer holds the longest
        // one, so this cannot fail; the text is NUL-terminated.
        (void)write_deflate_offer(*request.deflate, offer, sizeof offer);
        writer.append("Sec-WebSocket-Extensions: ");
        writer.append(offer);
        writer.append("\r\n");
    }
    if (has_authorization(request)) {
        writer.append("Authorization: ");
        writer.append(request.authorization);
        writer.append("\r\n");
    }
    for (std::size_t i = 0; i < request.extra_header_count; ++i) {
        writer.append(request.extra_headers[i]);
        writer.append("\r\n");
    }
    writer.append("\r\n");
    *length = writer.length();
    return writer.fits() ? HandshakeStatus::kOk : HandshakeStatus::kBufferTooSmall;
}

std::int64_t days_from_civil(std::int32_t year, std::uint32_t month, std::uint32_t day) {
    // Shift the year to start in March so the leap day is the last day of the
    // year; then whole 400-year eras (146097 days) and a day-of-era count.
    const std::int64_t y = static_cast<std::int64_t>(year) - (month <= 2 ? 1 : 0);
    const std::int64_t era = y / 400;
    const std::int64_t year_of_era = y - era * 400;
    const std::int64_t shifted_month = month > 2 ? month - 3 : month + 9;
    const std::int64_t day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    const std::int64_t day_of_era =
        year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;  // 719468: 0000-03-01 to 1970-01-01
}

bool parse_http_date(const char* text, std::size_t size, std::int64_t* seconds) {
    if (text == nullptr || seconds == nullptr) {
        return false;
    }
    CivilTime time;
    if (!parse_imf_fixdate(text, size, &time) && !parse_rfc850_date(text, size, &time) &&
        !parse_asctime_date(text, size, &time)) {
        return false;
    }
    if (time.year < 1900 || time.day < 1 || time.day > days_in_month(time.year, time.month)) {
        return false;
    }
    const std::int64_t days =
        days_from_civil(static_cast<std::int32_t>(time.year), time.month + 1, time.day);
    *seconds = days * 86400 + time.seconds_of_day;
    return true;
}

// ---------------------------------------------------------------------------
// UpgradeResponseParser.

namespace {

// What one pass over the header lines found. Spans point into the parser's buffer.
struct HeaderScan {
    std::uint16_t status_code = 0;
    bool is_http11 = false;
    std::size_t upgrade_count = 0;
    bool upgrade_all_websocket = true;
    bool connection_has_upgrade = false;
    std::size_t accept_count = 0;
    bool accept_matches = false;
    std::size_t extensions_count = 0;
    Span extensions{nullptr, 0};
    std::size_t protocol_count = 0;
    Span protocol{nullptr, 0};
    std::size_t retry_after_count = 0;
    Span retry_after{nullptr, 0};
    std::size_t date_count = 0;
    Span date{nullptr, 0};
};

void record_header(Span name, Span value, const char* expected_accept, HeaderScan* scan) {
    if (equals_ignore_case(name, "upgrade")) {
        ++scan->upgrade_count;
        scan->upgrade_all_websocket =
            scan->upgrade_all_websocket && equals_ignore_case(value, "websocket");
    } else if (equals_ignore_case(name, "connection")) {
        scan->connection_has_upgrade =
            scan->connection_has_upgrade || list_contains_token(value, "upgrade");
    } else if (equals_ignore_case(name, "sec-websocket-accept")) {
        ++scan->accept_count;
        scan->accept_matches = equals_exactly(value, expected_accept);
    } else if (equals_ignore_case(name, "sec-websocket-extensions")) {
        ++scan->extensions_count;
        scan->extensions = value;
    } else if (equals_ignore_case(name, "sec-websocket-protocol")) {
        ++scan->protocol_count;
        scan->protocol = value;
    } else if (equals_ignore_case(name, "retry-after")) {
        ++scan->retry_after_count;
        scan->retry_after = value;
    } else if (equals_ignore_case(name, "date")) {
        ++scan->date_count;
        scan->date = value;
    }
}

// Splits the header block text[0, size) (status line, header lines, empty
// line, all CRLF-terminated) and records every header.
bool scan_header_block(const char* text, std::size_t size, const char* expected_accept,
                       HeaderScan* scan) {
    const auto line_end = [text, size](std::size_t from) {
        const void* cr = std::memchr(text + from, '\r', size - from);
        return static_cast<std::size_t>(static_cast<const char*>(cr) - text);
    };
    std::size_t end = line_end(0);
    if (!parse_status_line(Span{text, end}, &scan->status_code, &scan->is_http11)) {
        return false;
    }
    for (std::size_t start = end + 2; text[start] != '\r'; start = end + 2) {
        end = line_end(start);
        const Span line{text + start, end - start};
        const char* colon = static_cast<const char*>(std::memchr(line.data, ':', line.size));
        if (colon == nullptr) {
            return false;
        }
        const Span name{line.data, static_cast<std::size_t>(colon - line.data)};
        const Span raw_value{colon + 1, line.size - name.size - 1};
        // An obs-fold line (leading SP/HTAB) or a space before the colon fails is_token.
        if (!is_token(name) || !is_field_value(raw_value)) {
            return false;
        }
        record_header(name, trim_ows(raw_value), expected_accept, scan);
    }
    return true;
}

HandshakeStatus check_switching(const HeaderScan& scan, const char* const* subprotocols,
                                std::size_t subprotocol_count, bool require_subprotocol,
                                const char** selected, const DeflateOffer* offer,
                                DeflateAgreement* agreement) {
    if (scan.upgrade_count == 0 || !scan.upgrade_all_websocket) {
        return HandshakeStatus::kMissingUpgrade;
    }
    if (!scan.connection_has_upgrade) {
        return HandshakeStatus::kMissingConnection;
    }
    if (scan.accept_count != 1 || !scan.accept_matches) {
        return HandshakeStatus::kBadAccept;
    }
    if (scan.extensions_count > 0 &&
        (offer == nullptr || scan.extensions_count > 1 ||
         !parse_deflate_answer(scan.extensions.data, scan.extensions.size, *offer, agreement))) {
        *agreement = DeflateAgreement{};
        return HandshakeStatus::kUnexpectedExtension;
    }
    if (scan.protocol_count == 0) {
        return require_subprotocol ? HandshakeStatus::kMissingSubprotocol : HandshakeStatus::kOk;
    }
    if (scan.protocol_count > 1) {
        return HandshakeStatus::kUnexpectedSubprotocol;
    }
    for (std::size_t i = 0; i < subprotocol_count; ++i) {
        if (equals_exactly(scan.protocol, subprotocols[i])) {
            *selected = subprotocols[i];
            return HandshakeStatus::kOk;
        }
    }
    return HandshakeStatus::kUnexpectedSubprotocol;
}

// Retry-After in seconds from now, or false when it is absent or unusable.
bool retry_after_from(const HeaderScan& scan, std::uint32_t* seconds) {
    if (scan.retry_after_count != 1) {
        return false;
    }
    if (parse_delta_seconds(scan.retry_after, seconds)) {
        return true;
    }
    std::int64_t retry_at = 0;
    std::int64_t now = 0;
    if (scan.date_count != 1 ||
        !parse_http_date(scan.retry_after.data, scan.retry_after.size, &retry_at) ||
        !parse_http_date(scan.date.data, scan.date.size, &now)) {
        return false;
    }
    const std::int64_t delta = retry_at - now;
    if (delta < 0) {
        *seconds = 0;
    } else {
        *seconds = delta > kMaxRetryAfterSeconds ? kMaxRetryAfterSeconds
                                                 : static_cast<std::uint32_t>(delta);
    }
    return true;
}

}  // namespace

UpgradeResponseParser::UpgradeResponseParser(const char* expected_accept,
                                             const char* const* subprotocols,
                                             std::size_t subprotocol_count,
                                             bool require_subprotocol)
    : expected_accept_{},
      subprotocols_(nullptr),
      subprotocol_count_(0),
      require_subprotocol_(false),
      arguments_valid_(false),
      result_(HandshakeStatus::kNeedMore),
      used_(0),
      total_(0),
      status_code_(0),
      has_retry_after_(false),
      retry_after_seconds_(0),
      selected_subprotocol_(nullptr),
      buffer_{} {
    reset(expected_accept, subprotocols, subprotocol_count, require_subprotocol);
}

void UpgradeResponseParser::reset(const char* expected_accept, const char* const* subprotocols,
                                  std::size_t subprotocol_count, bool require_subprotocol) {
    arguments_valid_ = expected_accept != nullptr &&
                       std::strlen(expected_accept) == kWebSocketAcceptLength &&
                       (subprotocols != nullptr || subprotocol_count == 0) &&
                       (!require_subprotocol || subprotocol_count > 0);
    for (std::size_t i = 0; arguments_valid_ && i < subprotocol_count; ++i) {
        arguments_valid_ = subprotocols[i] != nullptr;
    }
    std::memset(expected_accept_, 0, sizeof expected_accept_);
    if (arguments_valid_) {
        std::memcpy(expected_accept_, expected_accept, kWebSocketAcceptLength);
    }
    subprotocols_ = subprotocols;
    subprotocol_count_ = subprotocol_count;
    require_subprotocol_ = require_subprotocol;
    result_ = HandshakeStatus::kNeedMore;
    used_ = 0;
    total_ = 0;
    status_code_ = 0;
    has_retry_after_ = false;
    retry_after_seconds_ = 0;
    selected_subprotocol_ = nullptr;
    deflate_ = DeflateAgreement{};
}

void UpgradeResponseParser::set_deflate_offer(const DeflateOffer* offer) {
    deflate_offered_ = offer != nullptr;
    deflate_offer_ = offer != nullptr ? *offer : DeflateOffer{};
}

HandshakeStatus UpgradeResponseParser::finish(HandshakeStatus status) {
    result_ = status;
    return status;
}

HandshakeStatus UpgradeResponseParser::feed(const std::uint8_t* data, std::size_t size,
                                            std::size_t* consumed) {
    if (consumed == nullptr) {
        return HandshakeStatus::kInvalidArgument;
    }
    *consumed = 0;
    if (!arguments_valid_ || (data == nullptr && size > 0)) {
        return HandshakeStatus::kInvalidArgument;
    }
    if (result_ != HandshakeStatus::kNeedMore) {
        return result_;
    }
    // Invariant: buffer_[0, used_) holds no NUL, and every CR in it except a
    // final one is followed by LF and every LF preceded by CR. So lines can be
    // split at CR later, and the block ends exactly at the first CRLFCRLF.
    for (std::size_t i = 0; i < size; ++i) {
        if (total_ == kMaxResponseSize) {
            *consumed = i;
            return finish(HandshakeStatus::kResponseTooLarge);
        }
        const std::uint8_t byte = data[i];
        const bool after_cr = used_ > 0 && buffer_[used_ - 1] == '\r';
        if (byte == 0 || (after_cr != (byte == '\n'))) {
            *consumed = i + 1;
            return finish(HandshakeStatus::kMalformed);
        }
        buffer_[used_++] = byte;
        ++total_;
        if (byte != '\n' || used_ < 4 || buffer_[used_ - 3] != '\n') {
            continue;
        }
        bool interim = false;
        const HandshakeStatus status = evaluate(&interim);
        if (interim) {
            used_ = 0;
            continue;
        }
        *consumed = i + 1;
        return finish(status);
    }
    *consumed = size;
    return HandshakeStatus::kNeedMore;
}

HandshakeStatus UpgradeResponseParser::evaluate(bool* interim) {
    HeaderScan scan;
    if (!scan_header_block(reinterpret_cast<const char*>(buffer_), used_, expected_accept_,
                           &scan)) {
        return HandshakeStatus::kMalformed;
    }
    if (scan.status_code >= 100 && scan.status_code < 200 && scan.status_code != 101) {
        *interim = true;
        return HandshakeStatus::kNeedMore;
    }
    status_code_ = scan.status_code;
    has_retry_after_ = retry_after_from(scan, &retry_after_seconds_);
    if (scan.status_code != 101) {
        return HandshakeStatus::kNotSwitching;
    }
    if (!scan.is_http11) {
        return HandshakeStatus::kMalformed;
    }
    const HandshakeStatus status = check_switching(
        scan, subprotocols_, subprotocol_count_, require_subprotocol_, &selected_subprotocol_,
        deflate_offered_ ? &deflate_offer_ : nullptr, &deflate_);
    if (status != HandshakeStatus::kOk) {
        deflate_ = DeflateAgreement{};
    }
    return status;
}

}  // namespace tether::net

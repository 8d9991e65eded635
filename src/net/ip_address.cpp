// SPDX-License-Identifier: MIT
#include "tether/net/ip_address.h"

#include "tether/ascii.h"

#include <cstring>

namespace tether::net {

namespace {

constexpr std::size_t kIpv6Groups = 8;

// Strict dotted quad: four decimal parts of 1..3 digits, no leading zeros, each <= 255.
bool parse_ipv4(const char* text, std::size_t len, std::uint8_t out[4]) {
    std::size_t pos = 0;
    for (std::size_t part = 0; part < 4; ++part) {
        if (part > 0) {
            if (pos >= len || text[pos] != '.') {
                return false;
            }
            ++pos;
        }
        const std::size_t start = pos;
        unsigned value = 0;
        while (pos < len && text[pos] >= '0' && text[pos] <= '9' && pos - start < 3) {
            value = value * 10u + static_cast<unsigned>(text[pos] - '0');
            ++pos;
        }
        const std::size_t digits = pos - start;
        if (digits == 0 || value > 255u || (digits > 1 && text[start] == '0')) {
            return false;
        }
        out[part] = static_cast<std::uint8_t>(value);
    }
    return pos == len;
}

// One to four hex digits at text[*pos]; advances *pos past them.
bool parse_hex_group(const char* text, std::size_t len, std::size_t* pos, std::uint16_t* group) {
    unsigned value = 0;
    std::size_t digits = 0;
    while (*pos < len) {
        const int digit = hex_digit_value(text[*pos]);
        if (digit < 0) {
            break;
        }
        if (++digits > 4) {
            return false;
        }
        value = (value << 4) | static_cast<unsigned>(digit);
        ++*pos;
    }
    *group = static_cast<std::uint16_t>(value);
    return digits > 0;
}

bool token_has_dot(const char* text, std::size_t len, std::size_t pos) {
    for (; pos < len && text[pos] != ':'; ++pos) {
        if (text[pos] == '.') {
            return true;
        }
    }
    return false;
}

// Groups are collected in order; `gap` remembers where "::" stood so the
// missing zero groups can be inserted there once the total is known.
bool parse_ipv6(const char* text, std::size_t len, std::uint8_t out[16]) {
    std::uint16_t groups[kIpv6Groups] = {};
    std::size_t count = 0;
    std::size_t gap = kIpv6Groups + 1;  // none
    std::size_t pos = 0;
    if (len >= 1 && text[0] == ':') {
        if (len < 2 || text[1] != ':') {
            return false;
        }
        gap = 0;
        pos = 2;
    }
    while (pos < len) {
        if (token_has_dot(text, len, pos)) {
            std::uint8_t tail[4];
            if (count + 2 > kIpv6Groups || !parse_ipv4(text + pos, len - pos, tail)) {
                return false;
            }
            groups[count++] = static_cast<std::uint16_t>((tail[0] << 8) | tail[1]);
            groups[count++] = static_cast<std::uint16_t>((tail[2] << 8) | tail[3]);
            pos = len;
            break;
        }
        if (count == kIpv6Groups || !parse_hex_group(text, len, &pos, &groups[count])) {
            return false;
        }
        ++count;
        if (pos == len) {
            break;
        }
        if (text[pos] != ':' || ++pos == len) {
            return false;  // a stray character or a single trailing colon
        }
        if (text[pos] == ':') {
            if (gap <= kIpv6Groups) {
                return false;  // a second "::"
            }
            gap = count;
            ++pos;
        }
    }
    const bool has_gap = gap <= kIpv6Groups;
    if (has_gap ? count >= kIpv6Groups : count != kIpv6Groups) {
        return false;
    }
    std::uint16_t expanded[kIpv6Groups] = {};
    const std::size_t head = has_gap ? gap : count;
    for (std::size_t i = 0; i < head; ++i) {
        expanded[i] = groups[i];
    }
    for (std::size_t i = head; i < count; ++i) {
        expanded[kIpv6Groups - (count - i)] = groups[i];
    }
    for (std::size_t i = 0; i < kIpv6Groups; ++i) {
        out[2 * i] = static_cast<std::uint8_t>(expanded[i] >> 8);
        out[2 * i + 1] = static_cast<std::uint8_t>(expanded[i] & 0xFFu);
    }
    return true;
}

// Appends to a buffer that is known to be large enough (kIpAddressTextCapacity).
struct TextWriter {
    char* out;
    std::size_t size = 0;

    void put(char c) { out[size++] = c; }
    void put_decimal(unsigned value) {
        if (value >= 100u) {
            put(static_cast<char>('0' + value / 100u));
        }
        if (value >= 10u) {
            put(static_cast<char>('0' + (value / 10u) % 10u));
        }
        put(static_cast<char>('0' + value % 10u));
    }
    void put_hex(unsigned value) {
        static const char kDigits[] = "0123456789abcdef";
        bool started = false;
        for (int shift = 12; shift >= 0; shift -= 4) {
            const unsigned digit = (value >> static_cast<unsigned>(shift)) & 0xFu;
            if (digit != 0 || started || shift == 0) {
                put(kDigits[digit]);
                started = true;
            }
        }
    }
    void put_ipv4(const std::uint8_t* bytes) {
        for (std::size_t i = 0; i < 4; ++i) {
            if (i > 0) {
                put('.');
            }
            put_decimal(bytes[i]);
        }
    }
};

void write_ipv6(const std::uint8_t* bytes, TextWriter* writer) {
    unsigned groups[kIpv6Groups];
    for (std::size_t i = 0; i < kIpv6Groups; ++i) {
        groups[i] = (static_cast<unsigned>(bytes[2 * i]) << 8) | bytes[2 * i + 1];
    }
    const bool mapped = groups[0] == 0 && groups[1] == 0 && groups[2] == 0 && groups[3] == 0 &&
                        groups[4] == 0 && groups[5] == 0xFFFFu;
    if (mapped) {
        const char prefix[] = "::ffff:";
        for (std::size_t i = 0; i + 1 < sizeof prefix; ++i) {
            writer->put(prefix[i]);
        }
        writer->put_ipv4(bytes + 12);
        return;
    }
    // RFC 5952 4.2: shorten the longest run of at least two zero groups, the first if tied.
    std::size_t best_start = kIpv6Groups;
    std::size_t best_length = 1;
    for (std::size_t i = 0; i < kIpv6Groups;) {
        std::size_t run = 0;
        while (i + run < kIpv6Groups && groups[i + run] == 0) {
            ++run;
        }
        if (run > best_length) {
            best_start = i;
            best_length = run;
        }
        i += run > 0 ? run : 1;
    }
    for (std::size_t i = 0; i < kIpv6Groups; ++i) {
        if (i == best_start) {
            writer->put(':');
            writer->put(':');
            i += best_length - 1;
            continue;
        }
        if (i > 0 && i != best_start + best_length) {
            writer->put(':');
        }
        writer->put_hex(groups[i]);
    }
}

}  // namespace

bool operator==(const IpAddress& a, const IpAddress& b) {
    if (a.family != b.family) {
        return false;
    }
    const std::size_t significant = a.family == kIpv4 ? 4u : 16u;
    return std::memcmp(a.bytes, b.bytes, significant) == 0;
}

IpAddress make_ipv4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    IpAddress address{};
    address.family = kIpv4;
    address.bytes[0] = a;
    address.bytes[1] = b;
    address.bytes[2] = c;
    address.bytes[3] = d;
    return address;
}

bool parse_ip_address(const char* text, std::size_t len, IpAddress* out) {
    if (text == nullptr || len == 0) {
        return false;
    }
    IpAddress parsed{};
    if (std::memchr(text, ':', len) != nullptr) {
        if (!parse_ipv6(text, len, parsed.bytes)) {
            return false;
        }
        parsed.family = kIpv6;
    } else {
        if (!parse_ipv4(text, len, parsed.bytes)) {
            return false;
        }
        parsed.family = kIpv4;
    }
    *out = parsed;
    return true;
}

std::size_t format_ip_address(const IpAddress& address, char* out, std::size_t cap) {
    char buffer[kIpAddressTextCapacity];
    TextWriter writer{buffer};
    if (address.family == kIpv4) {
        writer.put_ipv4(address.bytes);
    } else if (address.family == kIpv6) {
        write_ipv6(address.bytes, &writer);
    }
    if (writer.size == 0 || writer.size + 1 > cap) {
        if (cap > 0) {
            out[0] = '\0';
        }
        return 0;
    }
    std::memcpy(out, buffer, writer.size);
    out[writer.size] = '\0';
    return writer.size;
}

}  // namespace tether::net

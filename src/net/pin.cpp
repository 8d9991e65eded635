// SPDX-License-Identifier: MIT
#include "tether/net/pin.h"

#include <cstddef>
#include <cstring>

#include "tether/ascii.h"

namespace tether::net {
namespace {

int base64_value(char c) {
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

}  // namespace

bool parse_sha256_pin(const char* text, std::uint8_t out[32]) {
    const std::size_t length = std::strlen(text);
    if (length == 64) {
        for (std::size_t i = 0; i < 32; ++i) {
            const int high = hex_digit_value(text[2 * i]);
            const int low = hex_digit_value(text[2 * i + 1]);
            if (high < 0 || low < 0) {
                return false;
            }
            out[i] = static_cast<std::uint8_t>(high << 4 | low);
        }
        return true;
    }
    if (length != 44 || text[43] != '=') {
        return false;
    }
    std::uint32_t bits = 0;
    unsigned bit_count = 0;
    std::size_t written = 0;
    for (std::size_t i = 0; i < 43; ++i) {
        const int value = base64_value(text[i]);
        if (value < 0) {
            return false;
        }
        bits = (bits << 6 | static_cast<std::uint32_t>(value)) & 0xFFFFu;
        bit_count += 6;
        if (bit_count >= 8) {
            bit_count -= 8;
            if (written < 32) {
                out[written++] = static_cast<std::uint8_t>(bits >> bit_count);
            }
        }
    }
    // 43 characters carry 258 bits: the last two must be zero (canonical).
    return (bits & 0x3u) == 0;
}

}  // namespace tether::net

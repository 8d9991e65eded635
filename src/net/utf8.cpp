// SPDX-License-Identifier: MIT
#include "tether/net/utf8.h"

#include <cstring>

namespace tether::net {

namespace {

constexpr std::uint64_t kHighBits = 0x8080808080808080ull;

// Index of the first byte at or after `from` that is not ASCII, or `size`.
// Eight bytes at a time through memcpy, so `data` needs no alignment.
std::size_t skip_ascii(const std::uint8_t* data, std::size_t from, std::size_t size) {
    std::size_t i = from;
    while (size - i >= 8) {
        std::uint64_t word = 0;
        std::memcpy(&word, data + i, sizeof word);
        if ((word & kHighBits) != 0) {
            break;
        }
        i += 8;
    }
    while (i < size && data[i] < 0x80) {
        ++i;
    }
    return i;
}

}  // namespace

void Utf8Validator::reset() {
    pending_ = 0;
    next_lower_ = 0x80;
    next_upper_ = 0xBF;
    failed_ = false;
}

// Lead bytes and the range of the first continuation byte (RFC 3629 section 4):
//   C2..DF  80..BF            (C0, C1 would be overlong)
//   E0      A0..BF            (below A0: overlong)
//   E1..EC  80..BF
//   ED      80..9F            (above 9F: surrogates)
//   EE..EF  80..BF
//   F0      90..BF            (below 90: overlong)
//   F1..F3  80..BF
//   F4      80..8F            (above 8F: beyond U+10FFFF)
// Every later continuation byte is 80..BF. Checking the first continuation
// against its narrowed range is what lets validation fail at the earliest byte.
bool Utf8Validator::start_sequence(std::uint8_t lead) {
    next_lower_ = 0x80;
    next_upper_ = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
        pending_ = 1;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        pending_ = 2;
        next_lower_ = lead == 0xE0 ? 0xA0 : 0x80;
        next_upper_ = lead == 0xED ? 0x9F : 0xBF;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        pending_ = 3;
        next_lower_ = lead == 0xF0 ? 0x90 : 0x80;
        next_upper_ = lead == 0xF4 ? 0x8F : 0xBF;
    } else {
        return false;  // 80..C1 or F5..FF
    }
    return true;
}

bool Utf8Validator::continue_sequence(std::uint8_t byte) {
    if (byte < next_lower_ || byte > next_upper_) {
        return false;
    }
    next_lower_ = 0x80;
    next_upper_ = 0xBF;
    --pending_;
    return true;
}

bool Utf8Validator::feed(const std::uint8_t* data, std::size_t size) {
    if (failed_ || (data == nullptr && size > 0)) {
        failed_ = true;
        return false;
    }
    std::size_t i = 0;
    while (i < size) {
        if (pending_ == 0) {
            i = skip_ascii(data, i, size);
            if (i == size) {
                break;
            }
        }
        const std::uint8_t byte = data[i++];
        if (!(pending_ == 0 ? start_sequence(byte) : continue_sequence(byte))) {
            failed_ = true;
            return false;
        }
    }
    return true;
}

bool is_valid_utf8(const std::uint8_t* data, std::size_t size) {
    Utf8Validator validator;
    return validator.feed(data, size) && validator.complete();
}

}  // namespace tether::net

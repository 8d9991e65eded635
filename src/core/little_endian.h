// SPDX-License-Identifier: MIT
// Explicit little-endian encoding for what the core writes to storage, so a
// file written on ARM reads the same on x86 (and no struct is memcpy'd).
#pragma once

#include <cstddef>
#include <cstdint>

namespace tether {

inline void put_le(std::uint8_t* out, std::uint64_t value, std::size_t size) {
    for (std::size_t i = 0; i < size; ++i) {
        out[i] = static_cast<std::uint8_t>(value >> (8 * i));
    }
}

inline std::uint64_t get_le(const std::uint8_t* in, std::size_t size) {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < size; ++i) {
        value |= static_cast<std::uint64_t>(in[i]) << (8 * i);
    }
    return value;
}

inline std::uint32_t get_le32(const std::uint8_t* in) {
    return static_cast<std::uint32_t>(get_le(in, 4));
}

}  // namespace tether

// SPDX-License-Identifier: MIT
// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as used by zlib and
// Ethernet: crc32("123456789") == 0xCBF43926.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tether {

/// CRC of `size` bytes. Chain calls by passing the previous result as `crc`.
std::uint32_t crc32(const std::uint8_t* data, std::size_t size, std::uint32_t crc = 0);

}  // namespace tether

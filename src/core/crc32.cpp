// SPDX-License-Identifier: MIT
#include "tether/crc32.h"

namespace tether {
namespace {

// Reflected form of the IEEE 802.3 polynomial 0x04C11DB7: bit 0 of each byte is
// processed first, which is why the shift goes right.
constexpr std::uint32_t kReflectedPolynomial = 0xEDB88320u;

// Slicing-by-8: entries[0] is the classic table, one entry per byte value
// (the CRC remainder after shifting that byte through the register);
// entries[k][n] is that remainder shifted through k more zero bytes, so eight
// input bytes fold into the register with eight independent lookups instead
// of a chain of eight. 8 KiB of .rodata, built by the compiler (no start-up
// time, no RAM), for about a fifth of the instructions per byte: the spool
// and tether-server checksum every message.
struct Table {
    std::uint32_t entries[8][256];
};

constexpr Table make_table() {
    Table table{};
    for (std::uint32_t byte = 0; byte < 256u; ++byte) {
        std::uint32_t remainder = byte;
        for (int bit = 0; bit < 8; ++bit) {
            remainder =
                (remainder & 1u) != 0 ? (remainder >> 1) ^ kReflectedPolynomial : remainder >> 1;
        }
        table.entries[0][byte] = remainder;
    }
    for (std::uint32_t byte = 0; byte < 256u; ++byte) {
        for (int k = 1; k < 8; ++k) {
            const std::uint32_t previous = table.entries[k - 1][byte];
            table.entries[k][byte] = (previous >> 8) ^ table.entries[0][previous & 0xFFu];
        }
    }
    return table;
}

constexpr Table kTable = make_table();

static_assert(kTable.entries[0][1] == 0x77073096u, "CRC-32 table does not match IEEE 802.3");
static_assert(kTable.entries[0][255] == 0x2D02EF8Du, "CRC-32 table does not match IEEE 802.3");

// Little-endian load from bytes: the same on every host byte order.
std::uint32_t load_le32(const std::uint8_t* p) {
    return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
           static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

}  // namespace

std::uint32_t crc32(const std::uint8_t* data, std::size_t size, std::uint32_t crc) {
    // The register is kept inverted between calls (pre- and post-conditioning
    // with all ones), so the public value of one call is the seed of the next.
    std::uint32_t reg = ~crc;
    const auto& t = kTable.entries;
    for (; size >= 8; data += 8, size -= 8) {
        const std::uint32_t low = reg ^ load_le32(data);
        const std::uint32_t high = load_le32(data + 4);
        reg = t[7][low & 0xFFu] ^ t[6][(low >> 8) & 0xFFu] ^ t[5][(low >> 16) & 0xFFu] ^
              t[4][low >> 24] ^ t[3][high & 0xFFu] ^ t[2][(high >> 8) & 0xFFu] ^
              t[1][(high >> 16) & 0xFFu] ^ t[0][high >> 24];
    }
    for (std::size_t i = 0; i < size; ++i) {
        reg = t[0][(reg ^ data[i]) & 0xFFu] ^ (reg >> 8);
    }
    return ~reg;
}

}  // namespace tether

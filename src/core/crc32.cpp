#include "tether/crc32.h"

namespace tether {
namespace {

// Reflected form of the IEEE 802.3 polynomial 0x04C11DB7: bit 0 of each byte is
// processed first, which is why the shift goes right.
constexpr std::uint32_t kReflectedPolynomial = 0xEDB88320u;

// One entry per byte value: the CRC remainder after shifting that byte through
// the register. Built by the compiler, so it lives in .rodata and costs no
// start-up time or RAM.
struct Table {
    std::uint32_t entries[256];
};

constexpr Table make_table() {
    Table table{};
    for (std::uint32_t byte = 0; byte < 256u; ++byte) {
        std::uint32_t remainder = byte;
        for (int bit = 0; bit < 8; ++bit) {
            remainder =
                (remainder & 1u) != 0 ? (remainder >> 1) ^ kReflectedPolynomial : remainder >> 1;
        }
        table.entries[byte] = remainder;
    }
    return table;
}

constexpr Table kTable = make_table();

static_assert(kTable.entries[1] == 0x77073096u, "CRC-32 table does not match IEEE 802.3");
static_assert(kTable.entries[255] == 0x2D02EF8Du, "CRC-32 table does not match IEEE 802.3");

}  // namespace

std::uint32_t crc32(const std::uint8_t* data, std::size_t size, std::uint32_t crc) {
    // The register is kept inverted between calls (pre- and post-conditioning
    // with all ones), so the public value of one call is the seed of the next.
    std::uint32_t reg = ~crc;
    for (std::size_t i = 0; i < size; ++i) {
        reg = kTable.entries[(reg ^ data[i]) & 0xFFu] ^ (reg >> 8);
    }
    return ~reg;
}

}  // namespace tether

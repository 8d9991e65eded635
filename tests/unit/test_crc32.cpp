// SPDX-License-Identifier: MIT
#include <CppUTest/TestHarness.h>

#include <cstdint>
#include <cstring>

#include "tether/crc32.h"

namespace {

std::uint32_t crc_of(const char* text) {
    return tether::crc32(reinterpret_cast<const std::uint8_t*>(text), std::strlen(text));
}

}  // namespace

TEST_GROUP(Crc32){};

TEST(Crc32, MatchesTheStandardCheckValue) {
    UNSIGNED_LONGS_EQUAL(0xCBF43926u, crc_of("123456789"));
}

TEST(Crc32, MatchesZlibOnKnownInputs) {
    // Reference values from zlib.crc32.
    UNSIGNED_LONGS_EQUAL(0x414FA339u, crc_of("The quick brown fox jumps over the lazy dog"));
    const std::uint8_t one = 0x01;
    UNSIGNED_LONGS_EQUAL(0xA505DF1Bu, tether::crc32(&one, 1));
    std::uint8_t zeros[32] = {};
    UNSIGNED_LONGS_EQUAL(0x190A55ADu, tether::crc32(zeros, sizeof zeros));
    std::uint8_t ones[32];
    std::memset(ones, 0xFF, sizeof ones);
    UNSIGNED_LONGS_EQUAL(0xFF6CAB0Bu, tether::crc32(ones, sizeof ones));
    std::uint8_t every_byte[256];
    for (unsigned i = 0; i < 256; ++i) {
        every_byte[i] = static_cast<std::uint8_t>(i);
    }
    UNSIGNED_LONGS_EQUAL(0x29058C73u, tether::crc32(every_byte, sizeof every_byte));
}

TEST(Crc32, EmptyInputGivesTheSeed) {
    UNSIGNED_LONGS_EQUAL(0u, tether::crc32(nullptr, 0));
    UNSIGNED_LONGS_EQUAL(0xCBF43926u, tether::crc32(nullptr, 0, 0xCBF43926u));
}

TEST(Crc32, ChainedCallsEqualOneCallAtEverySplit) {
    const char* text = "123456789";
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(text);
    for (std::size_t split = 0; split <= 9; ++split) {
        const std::uint32_t first = tether::crc32(bytes, split);
        UNSIGNED_LONGS_EQUAL(0xCBF43926u, tether::crc32(bytes + split, 9 - split, first));
    }
}

TEST(Crc32, DetectsEverySingleBitFlip) {
    std::uint8_t data[16];
    for (unsigned i = 0; i < sizeof data; ++i) {
        data[i] = static_cast<std::uint8_t>(i * 37u + 11u);
    }
    const std::uint32_t clean = tether::crc32(data, sizeof data);
    for (unsigned bit = 0; bit < 8 * sizeof data; ++bit) {
        data[bit / 8] = static_cast<std::uint8_t>(data[bit / 8] ^ (1u << (bit % 8)));
        CHECK(tether::crc32(data, sizeof data) != clean);
        data[bit / 8] = static_cast<std::uint8_t>(data[bit / 8] ^ (1u << (bit % 8)));
    }
    UNSIGNED_LONGS_EQUAL(clean, tether::crc32(data, sizeof data));
}

namespace {

// The definition, one bit at a time: what the table-driven code must equal.
std::uint32_t crc_bitwise(const std::uint8_t* data, std::size_t size) {
    std::uint32_t reg = 0xFFFFFFFFu;
    for (std::size_t i = 0; i < size; ++i) {
        reg ^= data[i];
        for (int bit = 0; bit < 8; ++bit) {
            reg = (reg & 1u) != 0 ? (reg >> 1) ^ 0xEDB88320u : reg >> 1;
        }
    }
    return ~reg;
}

}  // namespace

TEST(Crc32, EqualsTheBitwiseDefinitionAtEveryLengthAndAlignment) {
    std::uint8_t data[96];
    std::uint32_t state = 12345u;
    for (auto& byte : data) {
        state = state * 1103515245u + 12345u;
        byte = static_cast<std::uint8_t>(state >> 24);
    }
    for (std::size_t offset = 0; offset < 8; ++offset) {
        for (std::size_t size = 0; offset + size <= sizeof data; ++size) {
            UNSIGNED_LONGS_EQUAL(crc_bitwise(data + offset, size),
                                 tether::crc32(data + offset, size));
        }
    }
}

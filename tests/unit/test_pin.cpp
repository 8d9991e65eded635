// SPDX-License-Identifier: MIT
#include <cstdint>
#include <cstring>

#include <CppUTest/TestHarness.h>

#include "tether/net/pin.h"

TEST_GROUP(Sha256Pin){};

TEST(Sha256Pin, HexAndBase64GiveTheSameBytes) {
    // SHA-256 of "abc": ba7816bf... / ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=
    std::uint8_t from_hex[32];
    std::uint8_t from_base64[32];
    CHECK_TRUE(tether::net::parse_sha256_pin(
        "BA7816BF8F01CFEA414140DE5DAE2223b00361a396177a9cb410ff61f20015ad", from_hex));
    CHECK_TRUE(
        tether::net::parse_sha256_pin("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=", from_base64));
    CHECK_EQUAL(0, std::memcmp(from_hex, from_base64, 32));
    CHECK_EQUAL(0xba, from_hex[0]);
    CHECK_EQUAL(0xad, from_hex[31]);
}

TEST(Sha256Pin, RejectsWhatIsNotAPin) {
    std::uint8_t out[32];
    CHECK_FALSE(tether::net::parse_sha256_pin("", out));
    CHECK_FALSE(tether::net::parse_sha256_pin(
        "BA7816BF8F01CFEA414140DE5DAE2223b00361a396177a9cb410ff61f20015a", out));  // 63
    CHECK_FALSE(tether::net::parse_sha256_pin(
        "ZA7816BF8F01CFEA414140DE5DAE2223b00361a396177a9cb410ff61f20015ad", out));
    CHECK_FALSE(tether::net::parse_sha256_pin("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0", out));
    CHECK_FALSE(tether::net::parse_sha256_pin("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa1=", out));
    CHECK_FALSE(tether::net::parse_sha256_pin("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAF*0=", out));
}

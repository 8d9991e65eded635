// SPDX-License-Identifier: MIT
#include <CppUTest/TestHarness.h>

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>

#include "tether/net/ip_address.h"

using tether::net::IpAddress;

namespace {

bool parse(const char* text, IpAddress* out) {
    return tether::net::parse_ip_address(text, std::strlen(text), out);
}

std::string format(const IpAddress& address) {
    char text[tether::net::kIpAddressTextCapacity];
    const std::size_t size = tether::net::format_ip_address(address, text, sizeof text);
    CHECK_EQUAL(std::strlen(text), size);
    return std::string(text, size);
}

// Parses `text` and formats it again: the canonical text of the address.
std::string canonical(const char* text) {
    IpAddress address{};
    if (!parse(text, &address)) {
        return "<invalid>";
    }
    return format(address);
}

}  // namespace

TEST_GROUP(IpAddress){};

TEST(IpAddress, ParsesDottedQuadIntoNetworkOrder) {
    IpAddress address{};
    CHECK_TRUE(parse("192.0.2.33", &address));
    UNSIGNED_LONGS_EQUAL(tether::net::kIpv4, address.family);
    const std::uint8_t expected[4] = {192, 0, 2, 33};
    MEMCMP_EQUAL(expected, address.bytes, 4);
    CHECK_TRUE(address == tether::net::make_ipv4(192, 0, 2, 33));
    STRCMP_EQUAL("0.0.0.0", canonical("0.0.0.0").c_str());
    STRCMP_EQUAL("255.255.255.255", canonical("255.255.255.255").c_str());
}

TEST(IpAddress, RejectsIpv4ThatIsNotStrictDottedDecimal) {
    const char* const rejected[] = {
        "",           "1.2.3",    "1.2.3.4.5", "01.2.3.4",  "1.2.3.04", "256.1.1.1",
        "1.2.3.4 ",   " 1.2.3.4", "1..2.3",    "1.2.3.",    ".1.2.3",   "0x1.2.3.4",
        "1234.1.1.1", "-1.2.3.4", "1.2.3.4a",  "1.2.3.999", "00.0.0.0", "1,2,3,4",
    };
    for (const char* text : rejected) {
        IpAddress address = tether::net::make_ipv4(9, 9, 9, 9);
        CHECK_FALSE_TEXT(parse(text, &address), text);
        CHECK_TEXT(address == tether::net::make_ipv4(9, 9, 9, 9), "left untouched");
    }
}

TEST(IpAddress, ParsesOnlyTheGivenLength) {
    IpAddress address{};
    const char text[] = "10.0.0.1 trailing";
    CHECK_TRUE(tether::net::parse_ip_address(text, 8, &address));
    CHECK_TRUE(address == tether::net::make_ipv4(10, 0, 0, 1));
    CHECK_FALSE(tether::net::parse_ip_address(text, 9, &address));
    CHECK_FALSE(tether::net::parse_ip_address(nullptr, 0, &address));
    const char with_nul[] = {'1', '.', '2', '.', '3', '.', '4', '\0'};
    CHECK_FALSE(tether::net::parse_ip_address(with_nul, sizeof with_nul, &address));
}

TEST(IpAddress, ParsesIpv6TextForms) {
    IpAddress address{};
    CHECK_TRUE(parse("2001:DB8:0:0:8:800:200C:417A", &address));
    UNSIGNED_LONGS_EQUAL(tether::net::kIpv6, address.family);
    const std::uint8_t expected[16] = {0x20, 0x01, 0x0d, 0xb8, 0,    0,    0,    0,
                                       0,    0x08, 0x08, 0x00, 0x20, 0x0c, 0x41, 0x7a};
    MEMCMP_EQUAL(expected, address.bytes, 16);
    IpAddress compressed{};
    CHECK_TRUE(parse("2001:db8::8:800:200c:417a", &compressed));
    CHECK_TRUE(address == compressed);

    STRCMP_EQUAL("::", canonical("::").c_str());
    STRCMP_EQUAL("::1", canonical("::1").c_str());
    STRCMP_EQUAL("1::", canonical("1::").c_str());
    STRCMP_EQUAL("1::7:8", canonical("1::7:8").c_str());
    STRCMP_EQUAL("1:2:3:4:5:6:0:8", canonical("1:2:3:4:5:6::8").c_str());
    STRCMP_EQUAL("0:2:3:4:5:6:7:8", canonical("::2:3:4:5:6:7:8").c_str());
    STRCMP_EQUAL("1:2:3:4:5:6:7:0", canonical("1:2:3:4:5:6:7::").c_str());
    STRCMP_EQUAL("::ffff:192.0.2.1", canonical("::ffff:192.0.2.1").c_str());
    STRCMP_EQUAL("::ffff:192.0.2.1", canonical("0:0:0:0:0:FFFF:C000:0201").c_str());
    STRCMP_EQUAL("1:2:3:4:5:6:102:304", canonical("1:2:3:4:5:6:1.2.3.4").c_str());
    STRCMP_EQUAL("::102:304", canonical("::1.2.3.4").c_str());
    STRCMP_EQUAL("64:ff9b::c000:221", canonical("64:ff9b::192.0.2.33").c_str());
}

TEST(IpAddress, RejectsMalformedIpv6AndZoneIds) {
    const char* const rejected[] = {
        ":",
        ":::",
        ":1::",
        "1:",
        "1:::2",
        "1::2::3",
        "::1::",
        "1:2:3:4:5:6:7",
        "1:2:3:4:5:6:7:8:9",
        "1::2:3:4:5:6:7:8",
        "12345::",
        "g::",
        "::-1",
        "fe80::1%eth0",
        "fe80::1%",
        "[::1]",
        "::1 ",
        "1:2:3:4:5:6:7:1.2.3.4",
        "::1.2.3",
        "::1.2.3.4:5",
        "::256.0.0.1",
        "1.2.3.4::",
        "::ffff:01.2.3.4",
        "1:2:3:4:5:6:7:8::",
    };
    for (const char* text : rejected) {
        IpAddress address = tether::net::make_ipv4(9, 9, 9, 9);
        CHECK_FALSE_TEXT(parse(text, &address), text);
        CHECK_TEXT(address == tether::net::make_ipv4(9, 9, 9, 9), text);
    }
}

TEST(IpAddress, FormatsIpv6CanonicallyPerRfc5952) {
    // RFC 5952 section 4: leading zeros dropped, lowercase, the longest zero
    // run compressed (the first one if tied), a single zero group never.
    STRCMP_EQUAL("2001:db8::1", canonical("2001:0db8:0000:0000:0000:0000:0000:0001").c_str());
    STRCMP_EQUAL("2001:db8:0:1:1:1:1:1", canonical("2001:db8:0:1:1:1:1:1").c_str());
    STRCMP_EQUAL("2001:0:0:1::1", canonical("2001:0:0:1:0:0:0:1").c_str());
    STRCMP_EQUAL("2001:db8::1:0:0:1", canonical("2001:db8:0:0:1:0:0:1").c_str());
    STRCMP_EQUAL("2001:db8::abcd", canonical("2001:DB8::ABCD").c_str());
    STRCMP_EQUAL("1::", canonical("1:0:0:0:0:0:0:0").c_str());
    STRCMP_EQUAL("1:2:3:4:5:6:7:8", canonical("0001:0002:0003:0004:0005:0006:0007:0008").c_str());
    STRCMP_EQUAL("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                 canonical("FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF").c_str());
}

TEST(IpAddress, FormatNeedsRoomForTheTextAndNul) {
    IpAddress address{};
    CHECK_TRUE(parse("192.0.2.1", &address));
    char text[16];
    std::memset(text, 'x', sizeof text);
    UNSIGNED_LONGS_EQUAL(0, tether::net::format_ip_address(address, text, 9));
    STRCMP_EQUAL("", text);
    UNSIGNED_LONGS_EQUAL(9, tether::net::format_ip_address(address, text, 10));
    STRCMP_EQUAL("192.0.2.1", text);
    UNSIGNED_LONGS_EQUAL(0, tether::net::format_ip_address(address, nullptr, 0));

    IpAddress longest{};
    CHECK_TRUE(parse("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", &longest));
    char big[tether::net::kIpAddressTextCapacity];
    UNSIGNED_LONGS_EQUAL(39, tether::net::format_ip_address(longest, big, sizeof big));

    IpAddress unknown{};
    unknown.family = 5;
    UNSIGNED_LONGS_EQUAL(0, tether::net::format_ip_address(unknown, big, sizeof big));
}

TEST(IpAddress, EqualityComparesFamilyAndSignificantBytes) {
    IpAddress a = tether::net::make_ipv4(10, 1, 2, 3);
    IpAddress b = a;
    b.bytes[10] = 0x55;  // beyond the four significant bytes
    CHECK_TRUE(a == b);
    b.bytes[3] = 4;
    CHECK_TRUE(a != b);
    IpAddress mapped{};
    CHECK_TRUE(parse("::ffff:10.1.2.3", &mapped));
    CHECK_TRUE(a != mapped);
    IpAddress v6a{};
    IpAddress v6b{};
    CHECK_TRUE(parse("2001:db8::1", &v6a));
    CHECK_TRUE(parse("2001:db8::2", &v6b));
    CHECK_TRUE(v6a != v6b);
    CHECK_TRUE(parse("2001:db8::2", &v6a));
    CHECK_TRUE(v6a == v6b);
}

// glibc's inet_ntop follows RFC 5952 except for the deprecated IPv4-compatible
// form (::a.b.c.d), which it still prints; those addresses are left out.
TEST(IpAddress, RandomIpv6AddressesRoundTripAndMatchInetNtop) {
    std::mt19937 random(20240607u);
    for (int round = 0; round < 5000; ++round) {
        IpAddress address{};
        address.family = tether::net::kIpv6;
        for (std::size_t group = 0; group < 8; ++group) {
            // Mostly zero groups, so runs of every length and position occur.
            const auto pick = static_cast<std::uint32_t>(random() % 4u);
            const auto value =
                static_cast<std::uint32_t>(pick < 2 ? 0u : (pick == 2 ? random() % 16u : random()));
            address.bytes[2 * group] = static_cast<std::uint8_t>(value >> 8);
            address.bytes[2 * group + 1] = static_cast<std::uint8_t>(value);
        }
        const std::string text = format(address);
        IpAddress parsed{};
        CHECK_TRUE_TEXT(parse(text.c_str(), &parsed), text.c_str());
        CHECK_TEXT(parsed == address, text.c_str());

        bool compat = true;
        for (std::size_t i = 0; i < 12; ++i) {
            compat = compat && address.bytes[i] == 0;
        }
        compat = compat && (address.bytes[12] != 0 || address.bytes[13] != 0);
        if (!compat) {
            char expected[INET6_ADDRSTRLEN];
            CHECK(inet_ntop(AF_INET6, address.bytes, expected, sizeof expected) != nullptr);
            STRCMP_EQUAL(expected, text.c_str());
        }
    }
}

// inet_pton (glibc) is strict in the same way for these inputs: four-part
// decimal IPv4 without leading zeros, RFC 4291 IPv6 without zones.
TEST(IpAddress, RandomStringsAreAcceptedExactlyWhenInetPtonAcceptsThem) {
    std::mt19937 random(77u);
    const char alphabet[] = "0123456789abcdefABCDEF:.:.::12%x";
    const std::size_t letters = sizeof alphabet - 1;
    int accepted = 0;
    for (int round = 0; round < 200000; ++round) {
        std::string text;
        const std::size_t size = random() % 24u;
        for (std::size_t i = 0; i < size; ++i) {
            text += alphabet[random() % letters];
        }
        std::uint8_t expected[16] = {};
        const bool has_colon = text.find(':') != std::string::npos;
        const bool reference =
            inet_pton(has_colon ? AF_INET6 : AF_INET, text.c_str(), expected) == 1;
        IpAddress address{};
        const bool ours = parse(text.c_str(), &address);
        CHECK_EQUAL_TEXT(reference, ours, text.c_str());
        if (ours) {
            ++accepted;
            MEMCMP_EQUAL(expected, address.bytes, has_colon ? 16 : 4);
        }
    }
    CHECK(accepted > 100);
}

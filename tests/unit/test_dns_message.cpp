// SPDX-License-Identifier: MIT
#include <CppUTest/TestHarness.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "support/dns_builder.h"
#include "tether/net/dns_message.h"

using tether::net::DnsStatus;
using tether::net::DnsType;
using tether::net::IpAddress;
using tether::test::DnsMessageBuilder;
using tether::test::kAnswerFlags;

namespace {

constexpr std::uint16_t kId = 0xBEEF;
constexpr std::uint16_t kTypeA = 1;
constexpr std::uint16_t kTypeCname = 5;
constexpr std::uint16_t kTypeAaaa = 28;
constexpr std::size_t kQuestionOffset = 12;

const std::uint8_t kV6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42};

struct Parsed {
    DnsStatus status;
    std::size_t count;
    std::uint32_t ttl;
    IpAddress addresses[8];
};

Parsed parse_bytes(const std::uint8_t* data, std::size_t size, const char* name = "example.com",
                   DnsType type = DnsType::kA, std::size_t max = 8) {
    Parsed parsed{};
    // An exactly sized copy, so an over-read lands outside the allocation
    // (and is reported under AddressSanitizer).
    std::vector<std::uint8_t> copy(data, data + size);
    parsed.count = 99;
    parsed.ttl = 99;
    parsed.status = tether::net::parse_answer(copy.data(), copy.size(), kId, name, type,
                                              parsed.addresses, max, &parsed.count, &parsed.ttl);
    return parsed;
}

Parsed parse(const DnsMessageBuilder& message, const char* name = "example.com",
             DnsType type = DnsType::kA, std::size_t max = 8) {
    return parse_bytes(message.data(), message.size(), name, type, max);
}

void check_status(DnsStatus expected, DnsStatus actual) {
    STRCMP_EQUAL(tether::net::to_string(expected), tether::net::to_string(actual));
}

// A typical answer to "www.example.com A": a CNAME to cdn.example.net
// (compressed against the question), two addresses (the second owner
// compressed against the CNAME target), an NS record in authority and an
// A record in additional.
DnsMessageBuilder typical_answer(std::uint16_t flags = kAnswerFlags) {
    DnsMessageBuilder m;
    m.header(kId, flags, 1, 3, 1, 1).question("www.example.com", kTypeA);
    m.pointer(kQuestionOffset).fixed(kTypeCname, 300, 17);
    const std::size_t target = m.size();
    m.labels("cdn.example").u8(3).u8('n').u8('e').u8('t').u8(0);  // 17 bytes
    m.pointer(target).fixed(kTypeA, 60, 4).u8(192).u8(0).u8(2).u8(10);
    m.pointer(target).fixed(kTypeA, 120, 4).u8(192).u8(0).u8(2).u8(11);
    m.pointer(kQuestionOffset + 4).fixed(2, 3600, 5).labels("ns").pointer(kQuestionOffset + 4);
    m.name("ns.example.com").fixed(kTypeA, 3600, 4).u8(192).u8(0).u8(2).u8(53);
    return m;
}

}  // namespace

TEST_GROUP(DnsMessage){};

TEST(DnsMessage, EveryStatusHasADistinctName) {
    const DnsStatus all[] = {DnsStatus::kOk,
                             DnsStatus::kInvalidName,
                             DnsStatus::kBufferTooSmall,
                             DnsStatus::kMalformed,
                             DnsStatus::kIdMismatch,
                             DnsStatus::kQuestionMismatch,
                             DnsStatus::kNameError,
                             DnsStatus::kServerFailure,
                             DnsStatus::kRefused,
                             DnsStatus::kUnexpectedRcode,
                             DnsStatus::kTruncated,
                             DnsStatus::kNoAnswer,
                             DnsStatus::kTimeout};
    for (DnsStatus a : all) {
        CHECK(std::strcmp(tether::net::to_string(a), "unknown") != 0);
        for (DnsStatus b : all) {
            CHECK(a == b || std::strcmp(tether::net::to_string(a), tether::net::to_string(b)) != 0);
        }
    }
    STRCMP_EQUAL("name_error", tether::net::to_string(DnsStatus::kNameError));
    STRCMP_EQUAL("unknown", tether::net::to_string(static_cast<DnsStatus>(99)));
}

TEST(DnsMessage, BuildsARecursiveQueryByteForByte) {
    std::uint8_t out[tether::net::kMaxDnsQuerySize];
    std::size_t size = 0;
    check_status(DnsStatus::kOk, tether::net::build_query(0x1234, "Example.com", DnsType::kA, out,
                                                          sizeof out, &size));
    const std::uint8_t expected[] = {0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
                                     0x00, 0x00, 7,    'E',  'x',  'a',  'm',  'p',  'l',  'e',
                                     3,    'c',  'o',  'm',  0,    0x00, 0x01, 0x00, 0x01};
    UNSIGNED_LONGS_EQUAL(sizeof expected, size);
    MEMCMP_EQUAL(expected, out, sizeof expected);

    std::uint8_t absolute[tether::net::kMaxDnsQuerySize];
    check_status(DnsStatus::kOk, tether::net::build_query(0x1234, "Example.com.", DnsType::kAaaa,
                                                          absolute, sizeof absolute, &size));
    UNSIGNED_LONGS_EQUAL(sizeof expected, size);
    MEMCMP_EQUAL(expected, absolute, sizeof expected - 4);
    const std::uint8_t aaaa_tail[] = {0x00, 28, 0x00, 0x01};
    MEMCMP_EQUAL(aaaa_tail, absolute + size - 4, 4);
}

TEST(DnsMessage, ReportsTheSizeNeededWhenTheBufferIsTooSmall) {
    std::uint8_t out[64];
    std::size_t size = 0;
    check_status(DnsStatus::kBufferTooSmall,
                 tether::net::build_query(1, "a.example", DnsType::kA, out, 26, &size));
    UNSIGNED_LONGS_EQUAL(27, size);
    check_status(DnsStatus::kOk,
                 tether::net::build_query(1, "a.example", DnsType::kA, out, 27, &size));
    UNSIGNED_LONGS_EQUAL(27, size);
}

TEST(DnsMessage, ValidatesHostnames) {
    const std::string label63(63, 'a');
    const std::string label64(64, 'a');
    // 4 x 63 characters and 3 dots make 255; trim to exactly 253.
    std::string longest = label63 + "." + label63 + "." + label63 + "." + label63;
    longest.resize(253);
    const std::string too_long = longest + "b";
    const char* const valid[] = {
        "a",           "localhost",    "a-b.c_d.example", "xn--bcher-kva.example",
        "123.example", "example.com.", label63.c_str(),   longest.c_str()};
    for (const char* name : valid) {
        CHECK_TRUE_TEXT(tether::net::dns_name_is_valid(name, std::strlen(name)), name);
    }
    const std::string longest_dot = longest + ".";
    CHECK_TRUE(tether::net::dns_name_is_valid(longest_dot.c_str(), longest_dot.size()));
    const char* const invalid[] = {
        "",    ".",           "..",   "a..b",      ".a",     "a.b..",         "a b",
        "a/b", "caf\xc3\xa9", "a\tb", "*.example", "a.b:80", label64.c_str(), too_long.c_str()};
    for (const char* name : invalid) {
        CHECK_FALSE_TEXT(tether::net::dns_name_is_valid(name, std::strlen(name)), name);
    }
    CHECK_FALSE(tether::net::dns_name_is_valid(nullptr, 0));
    CHECK_TRUE(tether::net::dns_name_is_valid("ab/", 2));  // only `len` bytes count

    std::uint8_t out[tether::net::kMaxDnsQuerySize];
    std::size_t size = 7;
    check_status(DnsStatus::kInvalidName, tether::net::build_query(1, too_long.c_str(), DnsType::kA,
                                                                   out, sizeof out, &size));
    UNSIGNED_LONGS_EQUAL(7, size);
    check_status(DnsStatus::kInvalidName,
                 tether::net::build_query(1, nullptr, DnsType::kA, out, sizeof out, &size));
    const std::string way_too_long(400, 'a');
    check_status(
        DnsStatus::kInvalidName,
        tether::net::build_query(1, way_too_long.c_str(), DnsType::kA, out, sizeof out, &size));
    check_status(DnsStatus::kOk,
                 tether::net::build_query(1, longest.c_str(), DnsType::kA, out, sizeof out, &size));
    UNSIGNED_LONGS_EQUAL(tether::net::kMaxDnsQuerySize, size);
}

TEST(DnsMessage, ParsesASimpleAnswerWithACompressedOwner) {
    DnsMessageBuilder m;
    m.header(kId, kAnswerFlags, 1, 1).question("example.com", kTypeA);
    m.pointer(kQuestionOffset).fixed(kTypeA, 3600, 4).u8(93).u8(184).u8(216).u8(34);
    const Parsed parsed = parse(m);
    check_status(DnsStatus::kOk, parsed.status);
    UNSIGNED_LONGS_EQUAL(1, parsed.count);
    UNSIGNED_LONGS_EQUAL(3600, parsed.ttl);
    CHECK_TRUE(parsed.addresses[0] == tether::net::make_ipv4(93, 184, 216, 34));
}

TEST(DnsMessage, ParsesAaaaRecords) {
    DnsMessageBuilder m;
    m.header(kId, kAnswerFlags, 1, 1)
        .question("example.com", kTypeAaaa)
        .aaaa("example.com", 30, kV6);
    const Parsed parsed = parse(m, "example.com", DnsType::kAaaa);
    check_status(DnsStatus::kOk, parsed.status);
    UNSIGNED_LONGS_EQUAL(1, parsed.count);
    UNSIGNED_LONGS_EQUAL(tether::net::kIpv6, parsed.addresses[0].family);
    MEMCMP_EQUAL(kV6, parsed.addresses[0].bytes, 16);
}

TEST(DnsMessage, FollowsACnameChainAndTakesTheSmallestTtl) {
    const DnsMessageBuilder m = typical_answer();
    const Parsed parsed = parse(m, "WWW.Example.COM.");
    check_status(DnsStatus::kOk, parsed.status);
    UNSIGNED_LONGS_EQUAL(2, parsed.count);
    CHECK_TRUE(parsed.addresses[0] == tether::net::make_ipv4(192, 0, 2, 10));
    CHECK_TRUE(parsed.addresses[1] == tether::net::make_ipv4(192, 0, 2, 11));
    UNSIGNED_LONGS_EQUAL(60, parsed.ttl);
}

TEST(DnsMessage, StopsCollectingAtMaxButStillChecksTheRest) {
    const DnsMessageBuilder m = typical_answer();
    Parsed parsed = parse(m, "www.example.com", DnsType::kA, 1);
    check_status(DnsStatus::kOk, parsed.status);
    UNSIGNED_LONGS_EQUAL(1, parsed.count);
    UNSIGNED_LONGS_EQUAL(60, parsed.ttl);
    parsed = parse(m, "www.example.com", DnsType::kA, 0);
    check_status(DnsStatus::kNoAnswer, parsed.status);
    UNSIGNED_LONGS_EQUAL(0, parsed.count);
    UNSIGNED_LONGS_EQUAL(0, parsed.ttl);
    std::size_t count = 5;
    std::uint32_t ttl = 5;
    check_status(DnsStatus::kNoAnswer,
                 tether::net::parse_answer(m.data(), m.size(), kId, "www.example.com", DnsType::kA,
                                           nullptr, 0, &count, &ttl));
}

TEST(DnsMessage, ComparesNamesIgnoringCase) {
    DnsMessageBuilder m;
    m.header(kId, kAnswerFlags, 1, 2).question("EXAMPLE.Com", kTypeA);
    m.cname("example.COM", 10, "Target.Example.com").a("TARGET.example.COM", 10, 1, 2, 3, 4);
    const Parsed parsed = parse(m, "example.com");
    check_status(DnsStatus::kOk, parsed.status);
    UNSIGNED_LONGS_EQUAL(1, parsed.count);
}

TEST(DnsMessage, IgnoresRecordsOfOtherOwnersTypesAndClasses) {
    DnsMessageBuilder m;
    m.header(kId, kAnswerFlags, 1, 5).question("example.com", kTypeA);
    m.a("evil.example", 10, 6, 6, 6, 6);                            // another owner
    m.aaaa("example.com", 10, kV6);                                 // another type
    m.name("example.com").fixed(kTypeA, 10, 4, 3).u32(0x01020304);  // class CHAOS
    m.name("example.com").fixed(16, 10, 3).u8(2).u8('h').u8('i');   // TXT
    m.a("example.org", 10, 7, 7, 7, 7);
    const Parsed parsed = parse(m);
    check_status(DnsStatus::kNoAnswer, parsed.status);
    UNSIGNED_LONGS_EQUAL(0, parsed.count);
}

TEST(DnsMessage, AddressesOfAnOwnerOutsideTheChainAreIgnored) {
    // The CNAME says www -> a; an address for b must not be taken.
    DnsMessageBuilder m;
    m.header(kId, kAnswerFlags, 1, 3).question("www.example.com", kTypeA);
    m.cname("www.example.com", 10, "a.example.com").a("b.example.com", 10, 6, 6, 6, 6);
    m.a("a.example.com", 10, 1, 1, 1, 1);
    const Parsed parsed = parse(m, "www.example.com");
    check_status(DnsStatus::kOk, parsed.status);
    UNSIGNED_LONGS_EQUAL(1, parsed.count);
    CHECK_TRUE(parsed.addresses[0] == tether::net::make_ipv4(1, 1, 1, 1));
}

TEST(DnsMessage, AcceptsEightCnamesButNotNine) {
    for (int links = 8; links <= 9; ++links) {
        DnsMessageBuilder m;
        m.header(kId, kAnswerFlags, 1, static_cast<std::uint16_t>(links + 1))
            .question("n0.example", kTypeA);
        for (int i = 0; i < links; ++i) {
            m.cname("n" + std::to_string(i) + ".example", 100,
                    "n" + std::to_string(i + 1) + ".example");
        }
        m.a("n" + std::to_string(links) + ".example", 100, 10, 0, 0, 1);
        const Parsed parsed = parse(m, "n0.example");
        check_status(links == 8 ? DnsStatus::kOk : DnsStatus::kMalformed, parsed.status);
    }
}

TEST(DnsMessage, CnameLoopsEndAsMalformed) {
    DnsMessageBuilder m;
    m.header(kId, kAnswerFlags, 1, 10).question("a.example", kTypeA);
    for (int i = 0; i < 5; ++i) {
        m.cname("a.example", 1, "b.example").cname("b.example", 1, "a.example");
    }
    check_status(DnsStatus::kMalformed, parse(m, "a.example").status);
}

TEST(DnsMessage, TreatsTtlsWithTheTopBitSetAsZero) {
    DnsMessageBuilder m;
    m.header(kId, kAnswerFlags, 1, 2).question("example.com", kTypeA);
    m.a("example.com", 0x80000000u, 1, 2, 3, 4).a("example.com", 500, 1, 2, 3, 5);
    const Parsed parsed = parse(m);
    check_status(DnsStatus::kOk, parsed.status);
    UNSIGNED_LONGS_EQUAL(2, parsed.count);
    UNSIGNED_LONGS_EQUAL(0, parsed.ttl);
}

TEST(DnsMessage, RejectsAddressRecordsOfTheWrongSize) {
    DnsMessageBuilder m;
    m.header(kId, kAnswerFlags, 1, 1).question("example.com", kTypeA);
    m.name("example.com").fixed(kTypeA, 10, 5).u32(0x01020304).u8(5);
    check_status(DnsStatus::kMalformed, parse(m).status);
    DnsMessageBuilder v6;
    v6.header(kId, kAnswerFlags, 1, 1).question("example.com", kTypeAaaa);
    v6.name("example.com").fixed(kTypeAaaa, 10, 4).u32(0x01020304);
    check_status(DnsStatus::kMalformed, parse(v6, "example.com", DnsType::kAaaa).status);
}

TEST(DnsMessage, ChecksIdFlagsAndQuestion) {
    DnsMessageBuilder m;
    m.header(kId, kAnswerFlags, 1, 1)
        .question("example.com", kTypeA)
        .a("example.com", 1, 1, 2, 3, 4);
    check_status(DnsStatus::kOk, parse(m).status);

    DnsMessageBuilder other_id = m;
    other_id.patch_u16(0, static_cast<std::uint16_t>(kId + 1));
    check_status(DnsStatus::kIdMismatch, parse(other_id).status);

    DnsMessageBuilder query = m;
    query.patch_u16(2, 0x0100);  // QR clear: a query, not a response
    check_status(DnsStatus::kMalformed, parse(query).status);

    DnsMessageBuilder opcode = m;
    opcode.patch_u16(2, kAnswerFlags | 0x1000);  // opcode 2 (STATUS)
    check_status(DnsStatus::kMalformed, parse(opcode).status);

    for (int questions : {0, 2}) {
        DnsMessageBuilder count = m;
        count.patch_u16(4, static_cast<std::uint16_t>(questions));
        check_status(DnsStatus::kMalformed, parse(count).status);
    }

    check_status(DnsStatus::kQuestionMismatch, parse(m, "example.org").status);
    check_status(DnsStatus::kQuestionMismatch, parse(m, "www.example.com").status);
    check_status(DnsStatus::kQuestionMismatch, parse(m, "example.com", DnsType::kAaaa).status);
    DnsMessageBuilder chaos = m;
    chaos.patch_u16(12 + 13 + 2, 3);  // question class
    check_status(DnsStatus::kQuestionMismatch, parse(chaos).status);

    check_status(DnsStatus::kInvalidName, parse(m, "bad name").status);
    check_status(DnsStatus::kInvalidName, parse(m, "").status);
    std::size_t count = 1;
    std::uint32_t ttl = 1;
    check_status(DnsStatus::kInvalidName,
                 tether::net::parse_answer(m.data(), m.size(), kId, nullptr, DnsType::kA, nullptr,
                                           0, &count, &ttl));
}

TEST(DnsMessage, MapsRcodesToStatuses) {
    struct Case {
        std::uint16_t rcode;
        DnsStatus status;
    };
    const Case cases[] = {{1, DnsStatus::kUnexpectedRcode}, {2, DnsStatus::kServerFailure},
                          {3, DnsStatus::kNameError},       {4, DnsStatus::kUnexpectedRcode},
                          {5, DnsStatus::kRefused},         {9, DnsStatus::kUnexpectedRcode}};
    for (const Case& c : cases) {
        DnsMessageBuilder m;
        // An NXDOMAIN usually carries the SOA in authority: not parsed.
        m.header(kId, static_cast<std::uint16_t>(kAnswerFlags | c.rcode), 1, 0, 1)
            .question("example.com", kTypeA);
        const Parsed parsed = parse(m);
        check_status(c.status, parsed.status);
        UNSIGNED_LONGS_EQUAL(0, parsed.count);
    }
}

TEST(DnsMessage, TruncatedAnswersReportTheCompleteRecords) {
    DnsMessageBuilder empty;
    empty.header(kId, kAnswerFlags | tether::test::kTruncatedFlag, 1, 0)
        .question("example.com", kTypeA);
    Parsed parsed = parse(empty);
    check_status(DnsStatus::kTruncated, parsed.status);
    UNSIGNED_LONGS_EQUAL(0, parsed.count);

    // The header still counts 3 answers but the third was cut off mid-record.
    DnsMessageBuilder cut;
    cut.header(kId, kAnswerFlags | tether::test::kTruncatedFlag, 1, 3)
        .question("example.com", kTypeA);
    cut.a("example.com", 40, 1, 1, 1, 1)
        .a("example.com", 30, 1, 1, 1, 2)
        .name("example.com")
        .u16(1);
    parsed = parse(cut);
    check_status(DnsStatus::kTruncated, parsed.status);
    UNSIGNED_LONGS_EQUAL(2, parsed.count);
    UNSIGNED_LONGS_EQUAL(30, parsed.ttl);
}

TEST(DnsMessage, EveryProperPrefixOfAnAnswerIsMalformed) {
    const DnsMessageBuilder m = typical_answer();
    check_status(DnsStatus::kOk, parse(m, "www.example.com").status);
    for (std::size_t size = 0; size < m.size(); ++size) {
        const Parsed parsed = parse_bytes(m.data(), size, "www.example.com");
        STRCMP_EQUAL_TEXT("malformed", tether::net::to_string(parsed.status),
                          std::to_string(size).c_str());
        UNSIGNED_LONGS_EQUAL(0, parsed.count);
    }
}

TEST(DnsMessage, EveryPrefixOfATruncatedAnswerStaysInBounds) {
    const DnsMessageBuilder m = typical_answer(kAnswerFlags | tether::test::kTruncatedFlag);
    const std::size_t question_end = kQuestionOffset + 17 + 4;
    std::size_t previous_count = 0;
    for (std::size_t size = 0; size <= m.size(); ++size) {
        const Parsed parsed = parse_bytes(m.data(), size, "www.example.com");
        const DnsStatus expected =
            size < question_end ? DnsStatus::kMalformed : DnsStatus::kTruncated;
        STRCMP_EQUAL_TEXT(tether::net::to_string(expected), tether::net::to_string(parsed.status),
                          std::to_string(size).c_str());
        CHECK(parsed.count >= previous_count);  // more bytes never lose an address
        previous_count = parsed.count;
    }
    UNSIGNED_LONGS_EQUAL(2, previous_count);
}

TEST(DnsMessage, AcceptsTrailingBytesAfterTheLastRecord) {
    DnsMessageBuilder m;
    m.header(kId, kAnswerFlags, 1, 1)
        .question("example.com", kTypeA)
        .a("example.com", 1, 1, 2, 3, 4);
    m.u32(0xDEADBEEF);
    check_status(DnsStatus::kOk, parse(m).status);
}

TEST(DnsMessage, RejectsRecordsRunningPastTheEnd) {
    DnsMessageBuilder m;
    m.header(kId, kAnswerFlags, 1, 1).question("example.com", kTypeA);
    m.name("example.com").fixed(kTypeA, 1, 200).u32(0x01020304);  // rdata length lies
    check_status(DnsStatus::kMalformed, parse(m).status);
    DnsMessageBuilder missing;
    missing.header(kId, kAnswerFlags, 1, 2).question("example.com", kTypeA);
    missing.a("example.com", 1, 1, 2, 3, 4);  // the second answer is absent
    check_status(DnsStatus::kMalformed, parse(missing).status);
}

TEST(DnsMessage, RejectsPointersThatDoNotPointBackwards) {
    // A pointer to itself, a forward pointer and one into the header.
    for (std::size_t target : {std::size_t{29}, std::size_t{40}, std::size_t{4}}) {
        DnsMessageBuilder m;
        m.header(kId, kAnswerFlags, 1, 1).question("example.com", kTypeA);  // ends at 29
        m.pointer(target).fixed(kTypeA, 1, 4).u32(0x01020304);
        check_status(DnsStatus::kMalformed, parse(m).status);
    }
    DnsMessageBuilder in_question;
    in_question.header(kId, kAnswerFlags, 1, 0).pointer(12).u16(kTypeA).u16(1);
    check_status(DnsStatus::kMalformed, parse(in_question).status);
}

TEST(DnsMessage, RejectsPointerLoopsThroughLabels) {
    // Offset 29 holds label "x" then a pointer back to 29: every pointer goes
    // backwards, yet the name never ends. The 255-byte limit stops it.
    DnsMessageBuilder m;
    m.header(kId, kAnswerFlags, 1, 1).question("example.com", kTypeA);
    m.u8(1).u8('x').pointer(29).fixed(kTypeA, 1, 4).u32(0x01020304);
    check_status(DnsStatus::kMalformed, parse(m).status);
}

TEST(DnsMessage, FollowsAtMostThirtyTwoCompressionJumps) {
    for (std::size_t chain : {std::size_t{31}, std::size_t{32}}) {
        DnsMessageBuilder m;
        m.header(kId, kAnswerFlags, 1, 2).question("example.com", kTypeA);
        // A TXT record (another type, ignored) whose rdata is a chain of
        // pointers, each to the one before, the first to the question name.
        m.name("pad.example").fixed(16, 1, static_cast<std::uint16_t>(2 * chain));
        std::size_t previous = kQuestionOffset;
        for (std::size_t i = 0; i < chain; ++i) {
            const std::size_t here = m.size();
            m.pointer(previous);
            previous = here;
        }
        // The owner jumps once into the chain, which jumps `chain` more times.
        m.pointer(previous).fixed(kTypeA, 1, 4).u32(0x01020304);
        check_status(
            chain + 1 <= tether::net::kMaxCompressionJumps ? DnsStatus::kOk : DnsStatus::kMalformed,
            parse(m).status);
    }
}

TEST(DnsMessage, RejectsNamesLongerThan255BytesAfterDecompression) {
    std::string longest(63, 'a');
    longest = longest + "." + longest + "." + longest + "." + std::string(61, 'a');  // 253
    DnsMessageBuilder m;
    m.header(kId, kAnswerFlags, 1, 2).question(longest, kTypeA);
    m.pointer(kQuestionOffset).fixed(kTypeA, 1, 4).u32(0x01020304);
    m.labels("b").pointer(kQuestionOffset).fixed(kTypeA, 1, 4).u32(0x01020305);  // 257 bytes
    check_status(DnsStatus::kMalformed, parse(m, longest.c_str()).status);
    DnsMessageBuilder ok;
    ok.header(kId, kAnswerFlags, 1, 1).question(longest, kTypeA);
    ok.pointer(kQuestionOffset).fixed(kTypeA, 1, 4).u32(0x01020304);
    check_status(DnsStatus::kOk, parse(ok, longest.c_str()).status);
}

TEST(DnsMessage, RejectsExtendedLabelTypesAndBadCnameRdata) {
    for (std::uint8_t kind : {std::uint8_t{0x40}, std::uint8_t{0x80}}) {
        DnsMessageBuilder m;
        m.header(kId, kAnswerFlags, 1, 1).question("example.com", kTypeA);
        m.u8(kind).u8(0).fixed(kTypeA, 1, 4).u32(0x01020304);
        check_status(DnsStatus::kMalformed, parse(m).status);
    }
    // CNAME rdata longer than the name it holds.
    DnsMessageBuilder slack;
    slack.header(kId, kAnswerFlags, 1, 1).question("example.com", kTypeA);
    slack.name("example.com").fixed(kTypeCname, 1, 4).name("t").u8(0);
    check_status(DnsStatus::kMalformed, parse(slack).status);
    // CNAME rdata that is not a name at all.
    DnsMessageBuilder junk;
    junk.header(kId, kAnswerFlags, 1, 1).question("example.com", kTypeA);
    junk.name("example.com").fixed(kTypeCname, 1, 2).u8(0xC0).u8(0xFF);
    check_status(DnsStatus::kMalformed, parse(junk).status);
}

// Random answers against a model: a CNAME chain of random length, the
// addresses of its final owner, and decoys (other owners, a chain member's
// addresses before it joins the chain), with owners randomly compressed or
// spelt in another case. The model expects exactly the final owner's addresses.
TEST(DnsMessage, RandomAnswersMatchAModel) {
    std::mt19937 random(4242u);
    for (int round = 0; round < 2000; ++round) {
        const std::size_t links = random() % 5u;
        std::vector<std::string> chain;
        for (std::size_t i = 0; i <= links; ++i) {
            chain.push_back("h" + std::to_string(random() % 1000u) + "-" + std::to_string(i) +
                            ".example");
        }
        struct Record {
            std::string owner;
            bool is_cname;
            std::string target;
            std::uint8_t last_byte;
        };
        std::vector<Record> records;
        std::vector<std::uint8_t> expected;
        for (std::size_t i = 0; i <= links; ++i) {
            if (random() % 2u == 0) {
                records.push_back({"decoy.example", false, "", 66});
            }
            if (i < links) {
                records.push_back({chain[i], true, chain[i + 1], 0});
            }
        }
        const std::size_t addresses = random() % 4u;
        for (std::size_t i = 0; i < addresses; ++i) {
            const auto last = static_cast<std::uint8_t>(i + 1);
            records.push_back({chain.back(), false, "", last});
            expected.push_back(last);
        }
        DnsMessageBuilder m;
        m.header(kId, kAnswerFlags, 1, static_cast<std::uint16_t>(records.size()))
            .question(chain.front(), kTypeA);
        std::vector<std::pair<std::string, std::size_t>> written = {{chain.front(), 12}};
        for (Record& record : records) {
            std::size_t earlier = 0;
            for (const auto& seen : written) {
                earlier = seen.first == record.owner ? seen.second : earlier;
            }
            if (earlier != 0 && random() % 2u == 0) {
                m.pointer(earlier);
            } else {
                std::string spelt = record.owner;
                if (random() % 2u == 0) {
                    spelt[0] = static_cast<char>(spelt[0] - 'a' + 'A');
                }
                written.emplace_back(record.owner, m.size());
                m.name(spelt);
            }
            if (record.is_cname) {
                m.fixed(kTypeCname, 1, static_cast<std::uint16_t>(record.target.size() + 2));
                written.emplace_back(record.target, m.size());
                m.name(record.target);
            } else {
                m.fixed(kTypeA, 1, 4).u8(10).u8(0).u8(0).u8(record.last_byte);
            }
        }
        const Parsed parsed = parse(m, chain.front().c_str());
        check_status(expected.empty() ? DnsStatus::kNoAnswer : DnsStatus::kOk, parsed.status);
        UNSIGNED_LONGS_EQUAL(expected.size(), parsed.count);
        for (std::size_t i = 0; i < expected.size(); ++i) {
            CHECK_TRUE(parsed.addresses[i] == tether::net::make_ipv4(10, 0, 0, expected[i]));
        }
    }
}

// SPDX-License-Identifier: MIT
#include <CppUTest/TestHarness.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "tether/session_id.h"

using tether::PersistentState;
using tether::Status;
using tether::Uuid;

namespace {

// 6ba7b810-9dad-11d1-80b4-00c04fd430c8, the DNS namespace of RFC 4122 appendix C.
const Uuid kDnsNamespace = {{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0,
                             0x4f, 0xd4, 0x30, 0xc8}};

std::string text_of(const Uuid& uuid) {
    char text[tether::kUuidTextLength + 1];
    std::memset(text, 'x', sizeof text);
    tether::format_uuid(uuid, text);
    return text;
}

std::string uuid5_text(const Uuid& ns, const char* name) {
    Uuid out = {};
    const Status status =
        tether::uuid_v5(ns, reinterpret_cast<const std::uint8_t*>(name), std::strlen(name), &out);
    CHECK(status == Status::kOk);
    return text_of(out);
}

std::string session_text(const char* user, const char* fingerprint) {
    Uuid out = {};
    CHECK(tether::session_id_for(user, fingerprint, &out) == Status::kOk);
    return text_of(out);
}

}  // namespace

TEST_GROUP(SessionId){};

// Expected values below come from Python's uuid.uuid5.
TEST(SessionId, Uuid5MatchesKnownVectors) {
    STRCMP_EQUAL("886313e1-3b8a-5372-9b90-0c9aee199e5d",
                 uuid5_text(kDnsNamespace, "python.org").c_str());
    STRCMP_EQUAL("2ed6657d-e927-568b-95e1-2665a8aea6a2",
                 uuid5_text(kDnsNamespace, "www.example.com").c_str());
    STRCMP_EQUAL("4ebd0208-8328-5d69-8c44-ec50939c0967", uuid5_text(kDnsNamespace, "").c_str());
    STRCMP_EQUAL("9379694c-71f8-59c7-bc6b-9cb5380b3dcf",
                 uuid5_text(tether::kTetherSessionNamespace, "").c_str());
}

TEST(SessionId, Uuid5AcceptsAnEmptyNullNameButRejectsMissingPointers) {
    Uuid out = {};
    CHECK(tether::uuid_v5(kDnsNamespace, nullptr, 0, &out) == Status::kOk);
    STRCMP_EQUAL("4ebd0208-8328-5d69-8c44-ec50939c0967", text_of(out).c_str());
    CHECK(tether::uuid_v5(kDnsNamespace, nullptr, 1, &out) == Status::kInvalidArgument);
    const std::uint8_t name[] = {'x'};
    CHECK(tether::uuid_v5(kDnsNamespace, name, 1, nullptr) == Status::kInvalidArgument);
}

TEST(SessionId, NamespaceIsTheDocumentedConstant) {
    STRCMP_EQUAL("7ada0a06-5620-4a46-80ff-248e31991504",
                 text_of(tether::kTetherSessionNamespace).c_str());
}

TEST(SessionId, SessionIdHashesUserNewlineFingerprint) {
    STRCMP_EQUAL("3334c5d6-8597-5e59-98f9-9990e45afef8",
                 session_text("alice", "0123456789abcdef0123456789abcdef").c_str());
    STRCMP_EQUAL("3409862f-6792-5479-9c0a-593bd5e002cc",
                 session_text("gateway-17", "d1c2b3a4e5f60718293a4b5c6d7e8f90").c_str());
    STRCMP_EQUAL("ff8c43ff-16d3-5e01-ae2f-a62d1990b8a3", session_text("u", "f").c_str());
    const std::string long_fingerprint(300, 'b');
    STRCMP_EQUAL("de3935d4-d4e3-571b-9973-8c2f42b881b2",
                 session_text("a", long_fingerprint.c_str()).c_str());
    const char* joined = "alice\n0123456789abcdef0123456789abcdef";
    STRCMP_EQUAL(session_text("alice", "0123456789abcdef0123456789abcdef").c_str(),
                 uuid5_text(tether::kTetherSessionNamespace, joined).c_str());
}

TEST(SessionId, SessionIdRejectsMissingEmptyOrAmbiguousInputs) {
    Uuid out = {};
    CHECK(tether::session_id_for("", "f", &out) == Status::kInvalidArgument);
    CHECK(tether::session_id_for("u", "", &out) == Status::kInvalidArgument);
    CHECK(tether::session_id_for(nullptr, "f", &out) == Status::kInvalidArgument);
    CHECK(tether::session_id_for("u", nullptr, &out) == Status::kInvalidArgument);
    CHECK(tether::session_id_for("u", "f", nullptr) == Status::kInvalidArgument);
    CHECK(tether::session_id_for("a\nb", "c", &out) == Status::kInvalidArgument);
    // A newline in the fingerprint stays unambiguous: the first one splits.
    CHECK(tether::session_id_for("a", "b\nc", &out) == Status::kOk);
}

TEST(SessionId, FormatThenParseRoundTrips) {
    Uuid original = {};
    for (unsigned i = 0; i < 16; ++i) {
        original.bytes[i] = static_cast<std::uint8_t>(i * 17u + 3u);
    }
    const std::string text = text_of(original);
    STRCMP_EQUAL("03142536-4758-697a-8b9c-adbecfe0f102", text.c_str());
    Uuid parsed = {};
    CHECK(tether::parse_uuid(text.c_str(), &parsed));
    CHECK(parsed == original);
}

TEST(SessionId, ParseAcceptsEitherCase) {
    Uuid lower = {};
    Uuid upper = {};
    CHECK(tether::parse_uuid("886313e1-3b8a-5372-9b90-0c9aee199e5d", &lower));
    CHECK(tether::parse_uuid("886313E1-3B8A-5372-9B90-0C9AEE199E5D", &upper));
    CHECK(lower == upper);
    UNSIGNED_LONGS_EQUAL(0x88, lower.bytes[0]);
    UNSIGNED_LONGS_EQUAL(0x5d, lower.bytes[15]);
    STRCMP_EQUAL("886313e1-3b8a-5372-9b90-0c9aee199e5d", text_of(upper).c_str());
}

TEST(SessionId, ParseRejectsAnythingButTheCanonicalForm) {
    const char* const bad[] = {
        "",
        "886313e1-3b8a-5372-9b90-0c9aee199e5",    // one short
        "886313e1-3b8a-5372-9b90-0c9aee199e5d0",  // one long
        "886313e1-3b8a-5372-9b90-0c9aee199e5g",   // bad hex at the end
        "886313e1-3b8a-5372-9b90-0c9aee199e5:",   // just past '9'
        "886313e1-3b8a-5372-9b90-0c9aee199e5@",   // just before 'A'
        "886313e1-3b8a-5372-9b90-0c9aee199e5`",   // just before 'a'
        "886313e1-3b8a-5372-9b90-0c9aee199e5/",   // just before '0'
        "886313e1-3b8a-5372-9b90-0c9aee199e5G",   // just past 'F'
        "886313e13b8a-5372-9b90-0c9aee199e5d-",   // dash moved
        "886313e1-3b8a-53729b90-0c9aee199e5d0",   // dash missing
        "886313e1-3b8a-5372-9b90-0c9a-ee199e5d",  // dash misplaced
        "{886313e1-3b8a-5372-9b90-0c9aee199e5}",  // braces
        "886313e1 3b8a 5372 9b90 0c9aee199e5d",   // spaces
        "886313e13b8a53729b900c9aee199e5d",       // no dashes
    };
    for (const char* text : bad) {
        Uuid out = kDnsNamespace;
        CHECK_FALSE_TEXT(tether::parse_uuid(text, &out), text);
        CHECK(out == kDnsNamespace);
    }
    Uuid out = {};
    CHECK_FALSE(tether::parse_uuid(nullptr, &out));
    CHECK_FALSE(tether::parse_uuid("886313e1-3b8a-5372-9b90-0c9aee199e5d", nullptr));
}

TEST(SessionId, UuidsCompareByEveryByte) {
    for (unsigned i = 0; i < 16; ++i) {
        Uuid other = kDnsNamespace;
        other.bytes[i] = static_cast<std::uint8_t>(other.bytes[i] ^ 0x01u);
        CHECK_FALSE(other == kDnsNamespace);
    }
    CHECK(kDnsNamespace == kDnsNamespace);
}

TEST(SessionId, BeginNewSessionIncrements) {
    PersistentState state;
    UNSIGNED_LONGS_EQUAL(1u, tether::begin_new_session(&state));
    UNSIGNED_LONGS_EQUAL(1u, state.session_version);
    UNSIGNED_LONGS_EQUAL(2u, tether::begin_new_session(&state));
    UNSIGNED_LONGS_EQUAL(2u, state.session_version);
}

TEST(SessionId, BeginNewSessionSkipsZeroOnWrap) {
    PersistentState state;
    state.session_version = 0xFFFFFFFEu;
    UNSIGNED_LONGS_EQUAL(0xFFFFFFFFu, tether::begin_new_session(&state));
    UNSIGNED_LONGS_EQUAL(1u, tether::begin_new_session(&state));
    UNSIGNED_LONGS_EQUAL(1u, state.session_version);
}

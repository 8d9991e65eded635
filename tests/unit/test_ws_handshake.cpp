// SPDX-License-Identifier: MIT
#include <CppUTest/TestHarness.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "support/alloc_counter.h"
#include "tether/net/ws_handshake.h"

using tether::net::build_upgrade_request;
using tether::net::compute_accept;
using tether::net::days_from_civil;
using tether::net::HandshakeStatus;
using tether::net::kMaxResponseSize;
using tether::net::make_websocket_key;
using tether::net::parse_http_date;
using tether::net::UpgradeRequest;
using tether::net::UpgradeResponseParser;

namespace {

// The RFC 6455 section 1.3 example pair.
const char kKey[] = "dGhlIHNhbXBsZSBub25jZQ==";
const char kAccept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

// Compared by name so a failure prints "bad_accept" rather than a number.
#define CHECK_STATUS(expected, actual) \
    STRCMP_EQUAL(tether::net::to_string(expected), tether::net::to_string(actual))

std::string ok_response_with(const std::string& extra_headers) {
    return "HTTP/1.1 101 Switching Protocols\r\n"
           "Upgrade: websocket\r\n"
           "Connection: Upgrade\r\n"
           "Sec-WebSocket-Accept: " +
           std::string(kAccept) + "\r\n" + extra_headers + "\r\n";
}

const std::string kOkResponse = ok_response_with("");

struct FeedResult {
    HandshakeStatus status;
    std::size_t consumed;  // summed over all calls
};

// Delivers `bytes` in chunks of `chunk` bytes (0: all at once) until the
// parser gives an answer other than kNeedMore, checking that every
// incomplete chunk is consumed whole.
FeedResult feed_chunked(UpgradeResponseParser& parser, const std::string& bytes,
                        std::size_t chunk) {
    const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
    const std::size_t step = chunk == 0 ? bytes.size() : chunk;
    std::size_t offset = 0;
    std::size_t total = 0;
    HandshakeStatus status = HandshakeStatus::kNeedMore;
    while (offset < bytes.size()) {
        const std::size_t size = std::min(step, bytes.size() - offset);
        std::size_t consumed = 12345;
        status = parser.feed(data + offset, size, &consumed);
        total += consumed;
        offset += size;
        if (status != HandshakeStatus::kNeedMore) {
            break;
        }
        UNSIGNED_LONGS_EQUAL(size, consumed);
    }
    return FeedResult{status, total};
}

const std::size_t kChunkSizes[] = {0, 1, 3, 7, 13};

struct ParserSetup {
    const char* const* protocols = nullptr;
    std::size_t protocol_count = 0;
    bool require = false;
};

// Parses `bytes` once per chunking and checks that every chunking gives the same
// status and consumed count; returns the status.
HandshakeStatus parse_every_way(const std::string& bytes, std::size_t* consumed = nullptr,
                                ParserSetup setup = ParserSetup{}) {
    HandshakeStatus first = HandshakeStatus::kInvalidArgument;
    std::size_t first_consumed = 0;
    for (std::size_t i = 0; i < sizeof kChunkSizes / sizeof kChunkSizes[0]; ++i) {
        UpgradeResponseParser parser(kAccept, setup.protocols, setup.protocol_count, setup.require);
        const FeedResult result = feed_chunked(parser, bytes, kChunkSizes[i]);
        if (i == 0) {
            first = result.status;
            first_consumed = result.consumed;
        } else {
            CHECK_STATUS(first, result.status);
            UNSIGNED_LONGS_EQUAL(first_consumed, result.consumed);
        }
    }
    if (consumed != nullptr) {
        *consumed = first_consumed;
    }
    return first;
}

HandshakeStatus parse_once(UpgradeResponseParser& parser, const std::string& bytes) {
    return feed_chunked(parser, bytes, 0).status;
}

std::string build(const UpgradeRequest& request, HandshakeStatus expected = HandshakeStatus::kOk) {
    char out[1024];
    std::size_t length = 999;
    CHECK_STATUS(expected, build_upgrade_request(request, out, sizeof out, &length));
    if (expected != HandshakeStatus::kOk) {
        UNSIGNED_LONGS_EQUAL(0, length);
        return std::string();
    }
    return std::string(out, length);
}

UpgradeRequest minimal_request() {
    UpgradeRequest request;
    request.host = "example.com";
    request.key = kKey;
    return request;
}

std::string host_line_for(const char* host, std::uint16_t port, bool tls) {
    UpgradeRequest request = minimal_request();
    request.host = host;
    request.port = port;
    request.tls = tls;
    const std::string bytes = build(request);
    const std::size_t start = bytes.find("Host: ");
    return bytes.substr(start, bytes.find("\r\n", start) - start);
}

}  // namespace

// ---------------------------------------------------------------------------

TEST_GROUP(HandshakeStatus){};

TEST(HandshakeStatus, EveryCodeHasADistinctName) {
    std::vector<std::string> names;
    for (int code = 0; code <= static_cast<int>(HandshakeStatus::kInvalidArgument); ++code) {
        const char* name = tether::net::to_string(static_cast<HandshakeStatus>(code));
        CHECK(std::strcmp(name, "unknown") != 0);
        for (const std::string& other : names) {
            CHECK(other != name);
        }
        names.push_back(name);
    }
    UNSIGNED_LONGS_EQUAL(13, names.size());
    STRCMP_EQUAL("not_switching", tether::net::to_string(HandshakeStatus::kNotSwitching));
    STRCMP_EQUAL("unknown", tether::net::to_string(static_cast<HandshakeStatus>(99)));
}

// ---------------------------------------------------------------------------

TEST_GROUP(WsHandshakeKey){};

TEST(WsHandshakeKey, KeyIsBase64OfTheSixteenRandomBytes) {
    char key[25];
    const auto* nonce = reinterpret_cast<const std::uint8_t*>("the sample nonce");
    CHECK_STATUS(HandshakeStatus::kOk, make_websocket_key(nonce, key));
    STRCMP_EQUAL(kKey, key);

    std::uint8_t bytes[16];
    std::memset(bytes, 0, sizeof bytes);
    CHECK_STATUS(HandshakeStatus::kOk, make_websocket_key(bytes, key));
    STRCMP_EQUAL("AAAAAAAAAAAAAAAAAAAAAA==", key);
    std::memset(bytes, 0xFF, sizeof bytes);
    CHECK_STATUS(HandshakeStatus::kOk, make_websocket_key(bytes, key));
    STRCMP_EQUAL("/////////////////////w==", key);
    for (std::uint8_t i = 0; i < 16; ++i) {
        bytes[i] = i;
    }
    CHECK_STATUS(HandshakeStatus::kOk, make_websocket_key(bytes, key));
    STRCMP_EQUAL("AAECAwQFBgcICQoLDA0ODw==", key);
}

TEST(WsHandshakeKey, AcceptMatchesTheRfcExample) {
    char accept[29];
    CHECK_STATUS(HandshakeStatus::kOk, compute_accept(kKey, accept));
    STRCMP_EQUAL(kAccept, accept);
    CHECK_STATUS(HandshakeStatus::kOk, compute_accept("x3JJHMbDL1EzLkh9GBhXDw==", accept));
    STRCMP_EQUAL("HSmrc0sMlYUkAGmm5OPpG2HaGWk=", accept);
}

TEST(WsHandshakeKey, NullPointersAndWrongKeyLengthAreRejected) {
    char key[25];
    char accept[29];
    const std::uint8_t bytes[16] = {};
    CHECK_STATUS(HandshakeStatus::kInvalidArgument, make_websocket_key(nullptr, key));
    CHECK_STATUS(HandshakeStatus::kInvalidArgument, make_websocket_key(bytes, nullptr));
    CHECK_STATUS(HandshakeStatus::kInvalidArgument, compute_accept(nullptr, accept));
    CHECK_STATUS(HandshakeStatus::kInvalidArgument, compute_accept(kKey, nullptr));
    CHECK_STATUS(HandshakeStatus::kInvalidArgument,
                 compute_accept("dGhlIHNhbXBsZSBub25jZQ=", accept));
    CHECK_STATUS(HandshakeStatus::kInvalidArgument,
                 compute_accept("dGhlIHNhbXBsZSBub25jZQ===", accept));
}

TEST(WsHandshakeKey, GeneratedKeyIsAcceptedByTheRequestBuilder) {
    char key[25];
    std::uint8_t bytes[16];
    for (std::uint8_t i = 0; i < 16; ++i) {
        bytes[i] = static_cast<std::uint8_t>(0xA5 ^ (i * 37));
    }
    CHECK_STATUS(HandshakeStatus::kOk, make_websocket_key(bytes, key));
    UpgradeRequest request = minimal_request();
    request.key = key;
    const std::string bytes_out = build(request);
    CHECK(bytes_out.find(std::string("Sec-WebSocket-Key: ") + key + "\r\n") != std::string::npos);
}

// ---------------------------------------------------------------------------

TEST_GROUP(WsUpgradeRequest){};

TEST(WsUpgradeRequest, SampleRequestHasExactBytes) {
    const char* const protocols[] = {"v1.tether", "v2.tether"};
    const char* const extra[] = {"X-Device-Id: gw-0042", "User-Agent: tether/0.1"};
    UpgradeRequest request;
    request.host = "telemetry.example.com";
    request.port = 8443;
    request.tls = true;
    request.path = "/v1/stream?device=gw-0042";
    request.key = kKey;
    request.subprotocols = protocols;
    request.subprotocol_count = 2;
    request.authorization = "Bearer abc.def";
    request.extra_headers = extra;
    request.extra_header_count = 2;
    STRCMP_EQUAL(
        "GET /v1/stream?device=gw-0042 HTTP/1.1\r\n"
        "Host: telemetry.example.com:8443\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: v1.tether, v2.tether\r\n"
        "Authorization: Bearer abc.def\r\n"
        "X-Device-Id: gw-0042\r\n"
        "User-Agent: tether/0.1\r\n"
        "\r\n",
        build(request).c_str());
}

TEST(WsUpgradeRequest, MinimalRequestOmitsOptionalHeaders) {
    UpgradeRequest request = minimal_request();
    request.path = nullptr;
    request.authorization = "";
    STRCMP_EQUAL(
        "GET / HTTP/1.1\r\n"
        "Host: example.com\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "\r\n",
        build(request).c_str());
}

TEST(WsUpgradeRequest, HostCarriesThePortOnlyWhenNotTheSchemeDefault) {
    STRCMP_EQUAL("Host: example.com", host_line_for("example.com", 0, false).c_str());
    STRCMP_EQUAL("Host: example.com", host_line_for("example.com", 80, false).c_str());
    STRCMP_EQUAL("Host: example.com:443", host_line_for("example.com", 443, false).c_str());
    STRCMP_EQUAL("Host: example.com", host_line_for("example.com", 0, true).c_str());
    STRCMP_EQUAL("Host: example.com", host_line_for("example.com", 443, true).c_str());
    STRCMP_EQUAL("Host: example.com:80", host_line_for("example.com", 80, true).c_str());
    STRCMP_EQUAL("Host: 10.0.0.1:1", host_line_for("10.0.0.1", 1, false).c_str());
    STRCMP_EQUAL("Host: 10.0.0.1:65535", host_line_for("10.0.0.1", 65535, true).c_str());
}

TEST(WsUpgradeRequest, Ipv6LiteralsAreBracketed) {
    STRCMP_EQUAL("Host: [::1]:8080", host_line_for("::1", 8080, false).c_str());
    STRCMP_EQUAL("Host: [2001:db8::7]", host_line_for("2001:db8::7", 443, true).c_str());
    STRCMP_EQUAL("Host: [::1]:9000", host_line_for("[::1]", 9000, true).c_str());
    STRCMP_EQUAL("Host: [fe80::1%25eth0]", host_line_for("fe80::1%25eth0", 80, false).c_str());
}

TEST(WsUpgradeRequest, TooSmallBufferReportsTheNeededSizeAndWritesNoFurther) {
    const UpgradeRequest request = minimal_request();
    const std::string expected = build(request);
    std::vector<char> out(expected.size() + 8, '#');
    std::size_t length = 0;
    CHECK_STATUS(HandshakeStatus::kBufferTooSmall,
                 build_upgrade_request(request, out.data(), expected.size() - 1, &length));
    UNSIGNED_LONGS_EQUAL(expected.size(), length);
    for (std::size_t i = expected.size() - 1; i < out.size(); ++i) {
        LONGS_EQUAL('#', out[i]);
    }
    CHECK_STATUS(HandshakeStatus::kBufferTooSmall,
                 build_upgrade_request(request, nullptr, 0, &length));
    UNSIGNED_LONGS_EQUAL(expected.size(), length);
    CHECK_STATUS(HandshakeStatus::kOk,
                 build_upgrade_request(request, out.data(), expected.size(), &length));
    UNSIGNED_LONGS_EQUAL(expected.size(), length);
    STRCMP_EQUAL(expected.c_str(), std::string(out.data(), length).c_str());
    LONGS_EQUAL('#', out[expected.size()]);
}

TEST(WsUpgradeRequest, NullOutputOrLengthIsRejected) {
    const UpgradeRequest request = minimal_request();
    std::size_t length = 7;
    CHECK_STATUS(HandshakeStatus::kInvalidArgument,
                 build_upgrade_request(request, nullptr, 10, &length));
    UNSIGNED_LONGS_EQUAL(0, length);
    char out[512];
    CHECK_STATUS(HandshakeStatus::kInvalidArgument,
                 build_upgrade_request(request, out, sizeof out, nullptr));
}

TEST(WsUpgradeRequest, HeaderInjectionThroughValuesIsRejected) {
    UpgradeRequest request = minimal_request();
    request.authorization = "Bearer x\r\nX-Evil: 1";
    build(request, HandshakeStatus::kInvalidArgument);
    request.authorization = "Bearer x\nX-Evil: 1";
    build(request, HandshakeStatus::kInvalidArgument);
    request.authorization = "Bearer x\rX";
    build(request, HandshakeStatus::kInvalidArgument);
    request.authorization = "Bearer \x7f";
    build(request, HandshakeStatus::kInvalidArgument);
    request.authorization = "Bearer\tx";  // HTAB is legal inside a value
    CHECK(build(request).find("Authorization: Bearer\tx\r\n") != std::string::npos);

    const char* extra[] = {"X-Trace: a\r\nX-Evil: 1"};
    request = minimal_request();
    request.extra_headers = extra;
    request.extra_header_count = 1;
    build(request, HandshakeStatus::kInvalidArgument);
    extra[0] = "X-Trace: a\nb";
    build(request, HandshakeStatus::kInvalidArgument);
    extra[0] = "X-Trace: a\x01";
    build(request, HandshakeStatus::kInvalidArgument);
    extra[0] = "X-Trace: caf\xc3\xa9";  // obs-text passes through
    CHECK(build(request).find("X-Trace: caf\xc3\xa9\r\n") != std::string::npos);
}

TEST(WsUpgradeRequest, ExtraHeaderNamesMustBeTokens) {
    const char* extra[] = {nullptr};
    UpgradeRequest request = minimal_request();
    request.extra_headers = extra;
    request.extra_header_count = 1;
    const char* const bad[] = {"X Trace: a",  "X-Trace : a", ": a",      "X-Trace",
                               "X(Trace): a", "\r\nX: a",    "X\x01: a", " X-Trace: a"};
    build(request, HandshakeStatus::kInvalidArgument);  // null entry
    for (const char* line : bad) {
        extra[0] = line;
        build(request, HandshakeStatus::kInvalidArgument);
    }
    extra[0] = "X-Odd_Name!#$%&'*+.^`|~9:";  // every tchar, empty value
    CHECK(build(request).find("\r\nX-Odd_Name!#$%&'*+.^`|~9:\r\n") != std::string::npos);
    request.extra_headers = nullptr;
    build(request, HandshakeStatus::kInvalidArgument);
}

TEST(WsUpgradeRequest, HeadersOwnedByTheHandshakeCannotBeAddedAgain) {
    const char* extra[] = {nullptr};
    UpgradeRequest request = minimal_request();
    request.extra_headers = extra;
    request.extra_header_count = 1;
    const char* const reserved[] = {"Host: evil",
                                    "upgrade: h2c",
                                    "CONNECTION: close",
                                    "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==",
                                    "sec-websocket-version: 8",
                                    "Sec-WebSocket-Protocol: x",
                                    "Sec-WebSocket-Extensions: permessage-deflate",
                                    "Sec-WebSocket-Accept: x",
                                    "Content-Length: 5",
                                    "Transfer-Encoding: chunked"};
    for (const char* line : reserved) {
        extra[0] = line;
        build(request, HandshakeStatus::kInvalidArgument);
    }
    extra[0] = "Authorization: Basic eDp5";
    CHECK(build(request).find("\r\nAuthorization: Basic eDp5\r\n") != std::string::npos);
    request.authorization = "Bearer t";
    build(request, HandshakeStatus::kInvalidArgument);
}

TEST(WsUpgradeRequest, PathMustBeAnOriginFormTarget) {
    UpgradeRequest request = minimal_request();
    const char* const bad[] = {"",        "chat",         "/a b",   "/a\r\nX: y", "/a\n",
                               "/a#frag", "/caf\xc3\xa9", "/a\x7f", "/a\t"};
    for (const char* path : bad) {
        request.path = path;
        build(request, HandshakeStatus::kInvalidArgument);
    }
    request.path = "/a/b?c=d&e=%20~!$'()*+,;=:@";
    CHECK(build(request).find("GET /a/b?c=d&e=%20~!$'()*+,;=:@ HTTP/1.1\r\n") == 0);
}

TEST(WsUpgradeRequest, HostMustBeANameOrAddressLiteral) {
    UpgradeRequest request = minimal_request();
    const char* const bad[] = {
        "",  "exa mple.com", "example.com\r\nX: y", "a/b",  "user@host", "host?x",
        "[", "[]",           "[example.com]",       "[::1", "::1]",      "a[::1]"};
    request.host = nullptr;
    build(request, HandshakeStatus::kInvalidArgument);
    for (const char* host : bad) {
        request.host = host;
        build(request, HandshakeStatus::kInvalidArgument);
    }
}

TEST(WsUpgradeRequest, KeyMustLookLikeAGeneratedKey) {
    UpgradeRequest request = minimal_request();
    const char* const bad[] = {
        "dGhlIHNhbXBsZSBub25jZQ=",  "dGhlIHNhbXBsZSBub25jZQ===", "dGhlIHNhbXBsZSBub25jZQAA",
        "dGhlIHNhbXBsZSBub25jZ-==", "dGhlIHNhbXBsZSBub25jZQ=A",  "dGhlIHNhbXBsZSBub25j\r\n=="};
    request.key = nullptr;
    build(request, HandshakeStatus::kInvalidArgument);
    for (const char* key : bad) {
        request.key = key;
        build(request, HandshakeStatus::kInvalidArgument);
    }
    request.key = "ab+/AAAAAAAAAAAAAAAAZZ==";
    CHECK(build(request).find("Sec-WebSocket-Key: ab+/AAAAAAAAAAAAAAAAZZ==\r\n") !=
          std::string::npos);
}

TEST(WsUpgradeRequest, SubprotocolsMustBeTokens) {
    const char* protocols[] = {"good", nullptr};
    UpgradeRequest request = minimal_request();
    request.subprotocols = protocols;
    request.subprotocol_count = 2;
    const char* const bad[] = {"", "a b", "a,b", "a\r\nX: y", "chat/1"};
    build(request, HandshakeStatus::kInvalidArgument);  // null entry
    for (const char* protocol : bad) {
        protocols[1] = protocol;
        build(request, HandshakeStatus::kInvalidArgument);
    }
    protocols[1] = "v2.chat";
    CHECK(build(request).find("\r\nSec-WebSocket-Protocol: good, v2.chat\r\n") !=
          std::string::npos);
    request.subprotocol_count = 1;
    CHECK(build(request).find("\r\nSec-WebSocket-Protocol: good\r\n") != std::string::npos);
    request.subprotocols = nullptr;
    build(request, HandshakeStatus::kInvalidArgument);
}

TEST(WsUpgradeRequest, BuildingDoesNotAllocate) {
    const char* const protocols[] = {"v1"};
    UpgradeRequest request = minimal_request();
    request.subprotocols = protocols;
    request.subprotocol_count = 1;
    char out[512];
    std::size_t length = 0;
    tether::test::AllocationCounter counter;
    CHECK_STATUS(HandshakeStatus::kOk, build_upgrade_request(request, out, sizeof out, &length));
    char key[25];
    char accept[29];
    const std::uint8_t random16[16] = {1, 2, 3};
    CHECK_STATUS(HandshakeStatus::kOk, make_websocket_key(random16, key));
    CHECK_STATUS(HandshakeStatus::kOk, compute_accept(key, accept));
    UNSIGNED_LONGS_EQUAL(0, counter.count());
}

// ---------------------------------------------------------------------------

TEST_GROUP(WsUpgradeResponse){};

TEST(WsUpgradeResponse, ValidResponseIsAcceptedInEveryChunking) {
    std::size_t consumed = 0;
    CHECK_STATUS(HandshakeStatus::kOk, parse_every_way(kOkResponse, &consumed));
    UNSIGNED_LONGS_EQUAL(kOkResponse.size(), consumed);
}

TEST(WsUpgradeResponse, FrameBytesAfterTheHeaderBlockAreLeftToTheCaller) {
    const std::string frames("\x81\x05hello\x89\x00", 9);
    const std::string bytes = kOkResponse + frames;
    for (std::size_t chunk : kChunkSizes) {
        UpgradeResponseParser parser(kAccept, nullptr, 0, false);
        const FeedResult result = feed_chunked(parser, bytes, chunk);
        CHECK_STATUS(HandshakeStatus::kOk, result.status);
        UNSIGNED_LONGS_EQUAL(kOkResponse.size(), result.consumed);
        UNSIGNED_LONGS_EQUAL(101, parser.status_code());
        CHECK(parser.selected_subprotocol() == nullptr);
        CHECK_FALSE(parser.has_retry_after());
    }
    // The one-shot case names the exact split point.
    UpgradeResponseParser parser(kAccept, nullptr, 0, false);
    std::size_t consumed = 0;
    CHECK_STATUS(
        HandshakeStatus::kOk,
        parser.feed(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), &consumed));
    STRCMP_EQUAL(frames.c_str(), bytes.substr(consumed).c_str());
}

TEST(WsUpgradeResponse, LaterCallsRepeatTheResultAndConsumeNothing) {
    UpgradeResponseParser parser(kAccept, nullptr, 0, false);
    CHECK_STATUS(HandshakeStatus::kOk, parse_once(parser, kOkResponse));
    const std::uint8_t more[] = {0x81, 0x00};
    std::size_t consumed = 9;
    CHECK_STATUS(HandshakeStatus::kOk, parser.feed(more, sizeof more, &consumed));
    UNSIGNED_LONGS_EQUAL(0, consumed);

    UpgradeResponseParser failed(kAccept, nullptr, 0, false);
    CHECK_STATUS(HandshakeStatus::kMalformed, parse_once(failed, "HTTP/1.1 101 OK\n"));
    consumed = 9;
    CHECK_STATUS(HandshakeStatus::kMalformed, failed.feed(more, sizeof more, &consumed));
    UNSIGNED_LONGS_EQUAL(0, consumed);
}

TEST(WsUpgradeResponse, EmptyFeedsAreHarmless) {
    UpgradeResponseParser parser(kAccept, nullptr, 0, false);
    std::size_t consumed = 9;
    CHECK_STATUS(HandshakeStatus::kNeedMore, parser.feed(nullptr, 0, &consumed));
    UNSIGNED_LONGS_EQUAL(0, consumed);
    UNSIGNED_LONGS_EQUAL(0, parser.status_code());
    CHECK_STATUS(HandshakeStatus::kOk, parse_once(parser, kOkResponse));
}

TEST(WsUpgradeResponse, HeaderNamesAndValuesAreMatchedLikeTheRfcSays) {
    const std::string bytes =
        "HTTP/1.1 101 \r\n"
        "uPgRaDe: \t WebSocket \t\r\n"
        "CONNECTION:keep-alive ,  UPGRADE\r\n"
        "sec-websocket-accept:\t" +
        std::string(kAccept) +
        " \r\n"
        "Server: x\r\n"
        "\r\n";
    CHECK_STATUS(HandshakeStatus::kOk, parse_every_way(bytes));
}

TEST(WsUpgradeResponse, StatusLineMayOmitTheReasonPhrase) {
    std::string bytes = kOkResponse;
    bytes.replace(0, bytes.find("\r\n"), "HTTP/1.1 101");
    CHECK_STATUS(HandshakeStatus::kOk, parse_every_way(bytes));
}

TEST(WsUpgradeResponse, ConnectionTokenMayComeFromAnyRepeatedHeader) {
    const std::string bytes =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Connection: keep-alive\r\n"
        "Upgrade: websocket\r\n"
        "Connection: ,, upgrade,\r\n"
        "Connection: close\r\n"
        "Sec-WebSocket-Accept: " +
        std::string(kAccept) + "\r\n\r\n";
    CHECK_STATUS(HandshakeStatus::kOk, parse_every_way(bytes));
}

TEST(WsUpgradeResponse, ConnectionWithoutTheUpgradeTokenFails) {
    const std::string base =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Sec-WebSocket-Accept: " +
        std::string(kAccept) + "\r\n";
    CHECK_STATUS(HandshakeStatus::kMissingConnection, parse_every_way(base + "\r\n"));
    CHECK_STATUS(HandshakeStatus::kMissingConnection,
                 parse_every_way(base + "Connection: keep-alive\r\n\r\n"));
    CHECK_STATUS(HandshakeStatus::kMissingConnection,
                 parse_every_way(base + "Connection: upgraded, keep-upgrade\r\n\r\n"));
    CHECK_STATUS(HandshakeStatus::kMissingConnection,
                 parse_every_way(base + "Connection: up grade\r\n\r\n"));
    CHECK_STATUS(HandshakeStatus::kMissingConnection,
                 parse_every_way(base + "Connections: upgrade\r\n\r\n"));
}

TEST(WsUpgradeResponse, UpgradeMustBeWebsocket) {
    const std::string base =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " +
        std::string(kAccept) + "\r\n";
    CHECK_STATUS(HandshakeStatus::kMissingUpgrade, parse_every_way(base + "\r\n"));
    CHECK_STATUS(HandshakeStatus::kMissingUpgrade, parse_every_way(base + "Upgrade: h2c\r\n\r\n"));
    CHECK_STATUS(HandshakeStatus::kMissingUpgrade,
                 parse_every_way(base + "Upgrade: websocket, h2c\r\n\r\n"));
    CHECK_STATUS(HandshakeStatus::kMissingUpgrade,
                 parse_every_way(base + "Upgrade: websocket\r\nUpgrade: h2c\r\n\r\n"));
    CHECK_STATUS(HandshakeStatus::kMissingUpgrade,
                 parse_every_way(base + "Upgrade: websockets\r\n\r\n"));
    CHECK_STATUS(HandshakeStatus::kOk,
                 parse_every_way(base + "Upgrade: websocket\r\nUpgrade: WEBSOCKET\r\n\r\n"));
}

TEST(WsUpgradeResponse, AcceptMustBeExactlyOneCorrectValue) {
    const std::string base =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n";
    const std::string good = "Sec-WebSocket-Accept: " + std::string(kAccept) + "\r\n";
    CHECK_STATUS(HandshakeStatus::kBadAccept, parse_every_way(base + "\r\n"));
    CHECK_STATUS(HandshakeStatus::kBadAccept, parse_every_way(base + good + good + "\r\n"));
    CHECK_STATUS(
        HandshakeStatus::kBadAccept,
        parse_every_way(base + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo\r\n\r\n"));
    CHECK_STATUS(
        HandshakeStatus::kBadAccept,
        parse_every_way(base + "Sec-WebSocket-Accept: S3PPLMBITXAQ9KYGZZHZRBK+XOO=\r\n\r\n"));
    CHECK_STATUS(HandshakeStatus::kBadAccept,
                 parse_every_way(base + "Sec-WebSocket-Accept: " + kKey + "\r\n\r\n"));
    CHECK_STATUS(HandshakeStatus::kBadAccept,
                 parse_every_way(base + "Sec-WebSocket-Accept: \r\n\r\n"));
}

TEST(WsUpgradeResponse, AnyExtensionIsUnexpected) {
    CHECK_STATUS(
        HandshakeStatus::kUnexpectedExtension,
        parse_every_way(ok_response_with("Sec-WebSocket-Extensions: permessage-deflate\r\n")));
    CHECK_STATUS(HandshakeStatus::kUnexpectedExtension,
                 parse_every_way(ok_response_with("sec-websocket-extensions:\r\n")));
}

TEST(WsUpgradeResponse, SelectedSubprotocolMustBeOneOffered) {
    const char* const protocols[] = {"v1.tether", "v2.tether"};
    const ParserSetup offered{protocols, 2, false};
    for (std::size_t chunk : kChunkSizes) {
        UpgradeResponseParser parser(kAccept, protocols, 2, true);
        const FeedResult result = feed_chunked(
            parser, ok_response_with("Sec-WebSocket-Protocol:  v2.tether \r\n"), chunk);
        CHECK_STATUS(HandshakeStatus::kOk, result.status);
        POINTERS_EQUAL(protocols[1], parser.selected_subprotocol());
    }
    CHECK_STATUS(HandshakeStatus::kUnexpectedSubprotocol,
                 parse_every_way(ok_response_with("Sec-WebSocket-Protocol: V1.tether\r\n"), nullptr,
                                 offered));
    CHECK_STATUS(HandshakeStatus::kUnexpectedSubprotocol,
                 parse_every_way(ok_response_with("Sec-WebSocket-Protocol: v3.tether\r\n"), nullptr,
                                 offered));
    CHECK_STATUS(
        HandshakeStatus::kUnexpectedSubprotocol,
        parse_every_way(ok_response_with("Sec-WebSocket-Protocol: v1.tether, v2.tether\r\n"),
                        nullptr, offered));
    CHECK_STATUS(HandshakeStatus::kUnexpectedSubprotocol,
                 parse_every_way(ok_response_with("Sec-WebSocket-Protocol: v1.tether\r\n"
                                                  "Sec-WebSocket-Protocol: v1.tether\r\n"),
                                 nullptr, offered));
    CHECK_STATUS(HandshakeStatus::kUnexpectedSubprotocol,
                 parse_every_way(ok_response_with("Sec-WebSocket-Protocol: v1.tether\r\n")));
    CHECK_STATUS(
        HandshakeStatus::kUnexpectedSubprotocol,
        parse_every_way(ok_response_with("Sec-WebSocket-Protocol:\r\n"), nullptr, offered));
}

TEST(WsUpgradeResponse, RequiredSubprotocolMustBeSelected) {
    const char* const protocols[] = {"v1.tether"};
    CHECK_STATUS(HandshakeStatus::kMissingSubprotocol,
                 parse_every_way(kOkResponse, nullptr, ParserSetup{protocols, 1, true}));
    UpgradeResponseParser optional(kAccept, protocols, 1, false);
    CHECK_STATUS(HandshakeStatus::kOk, parse_once(optional, kOkResponse));
    CHECK(optional.selected_subprotocol() == nullptr);
}

TEST(WsUpgradeResponse, FirstFailingCheckWinsInDocumentedOrder) {
    // Every check fails here; removing the culprits one at a time walks the order.
    std::string upgrade = "Upgrade: h2c\r\n";
    std::string connection = "Connection: close\r\n";
    std::string accept = "Sec-WebSocket-Accept: wrong\r\n";
    std::string extension = "Sec-WebSocket-Extensions: x\r\n";
    std::string protocol = "Sec-WebSocket-Protocol: other\r\n";
    const char* const protocols[] = {"mine"};
    const ParserSetup required{protocols, 1, true};
    auto response = [&]() {
        return "HTTP/1.1 101 Switching Protocols\r\n" + protocol + extension + accept + connection +
               upgrade + "\r\n";
    };
    CHECK_STATUS(HandshakeStatus::kMissingUpgrade, parse_every_way(response(), nullptr, required));
    upgrade = "Upgrade: websocket\r\n";
    CHECK_STATUS(HandshakeStatus::kMissingConnection,
                 parse_every_way(response(), nullptr, required));
    connection = "Connection: upgrade\r\n";
    CHECK_STATUS(HandshakeStatus::kBadAccept, parse_every_way(response(), nullptr, required));
    accept = "Sec-WebSocket-Accept: " + std::string(kAccept) + "\r\n";
    CHECK_STATUS(HandshakeStatus::kUnexpectedExtension,
                 parse_every_way(response(), nullptr, required));
    extension = "";
    CHECK_STATUS(HandshakeStatus::kUnexpectedSubprotocol,
                 parse_every_way(response(), nullptr, required));
    protocol = "";
    CHECK_STATUS(HandshakeStatus::kMissingSubprotocol,
                 parse_every_way(response(), nullptr, required));
    protocol = "Sec-WebSocket-Protocol: mine\r\n";
    CHECK_STATUS(HandshakeStatus::kOk, parse_every_way(response(), nullptr, required));
}

TEST(WsUpgradeResponse, MalformedStatusLinesAreRejected) {
    const char* const lines[] = {
        "HTTP/1.2 101 Switching Protocols",
        "HTTP/2 101 Switching Protocols",
        "http/1.1 101 Switching Protocols",
        "HTTP/1.1 1010 Switching",
        "HTTP/1.1 10 Switching",
        "HTTP/1.1 099 Low",
        "HTTP/1.1 600 High",
        "HTTP/1.1 101x",
        "HTTP/1.1  101 Switching",
        "HTTP/1.1 1a1 Switching",
        "HTTP/1.1 101 Bad\x01Reason",
        "HTTP/1.1 101 Bad\x7fReason",
        "HTTP/1.1\t101 Switching",
        " HTTP/1.1 101 Switching",
        "",
        "HTTP/1.1",
    };
    for (const char* line : lines) {
        std::string bytes = kOkResponse;
        bytes.replace(0, bytes.find("\r\n"), line);
        CHECK_STATUS(HandshakeStatus::kMalformed, parse_every_way(bytes));
    }
}

TEST(WsUpgradeResponse, SwitchingRequiresHttp11) {
    std::string bytes = kOkResponse;
    bytes.replace(0, 8, "HTTP/1.0");
    CHECK_STATUS(HandshakeStatus::kMalformed, parse_every_way(bytes));
}

TEST(WsUpgradeResponse, MalformedHeaderLinesAreRejected) {
    const char* const lines[] = {
        " folded: value\r\n",       // obs-fold with SP
        "\tfolded\r\n",             // obs-fold with HTAB, no colon
        "NoColonHere\r\n",          //
        "Upgrade : websocket\r\n",  // space before colon
        ": empty-name\r\n",         //
        "Bad(Name): x\r\n",         //
        "Bad/Name: x\r\n",          //
        "X-Ctl: a\x01b\r\n",        //
        "X-Del: a\x7f\r\n",         //
        "X-Esc: \x1b[0m\r\n",       //
    };
    for (const char* line : lines) {
        CHECK_STATUS(HandshakeStatus::kMalformed, parse_every_way(ok_response_with(line)));
    }
    // Obs-text and HTAB inside a value are legal.
    CHECK_STATUS(HandshakeStatus::kOk,
                 parse_every_way(ok_response_with("Server: caf\xc3\xa9\tv1\r\n")));
}

TEST(WsUpgradeResponse, BareLineBreaksAndNulFailAtTheOffendingByte) {
    struct Case {
        std::string bytes;
        std::size_t offending;  // index of the byte that must fail
    };
    const std::string status = "HTTP/1.1 101 Switching Protocols";
    const Case cases[] = {
        {status + "\nUpgrade: websocket\r\n\r\n", status.size()},
        {status + "\r\nX: a\rb\r\n\r\n", status.size() + 7},
        {status + "\r\nX: a\r\r\n\r\n", status.size() + 7},
        {std::string("HTTP/1.1 101 Sw\0itching\r\n\r\n", 27), 15},
        {status + "\r\nX: 1\r\n\n", status.size() + 8},
        {"\nHTTP/1.1 101 OK\r\n\r\n", 0},
    };
    for (const Case& c : cases) {
        for (std::size_t chunk : kChunkSizes) {
            UpgradeResponseParser parser(kAccept, nullptr, 0, false);
            const FeedResult result = feed_chunked(parser, c.bytes, chunk);
            CHECK_STATUS(HandshakeStatus::kMalformed, result.status);
            UNSIGNED_LONGS_EQUAL(c.offending + 1, result.consumed);
        }
    }
}

TEST(WsUpgradeResponse, LeadingEmptyLineIsMalformed) {
    CHECK_STATUS(HandshakeStatus::kMalformed, parse_every_way("\r\n" + kOkResponse));
    CHECK_STATUS(HandshakeStatus::kMalformed, parse_every_way("\r\n\r\n"));
}

TEST(WsUpgradeResponse, ResponseOfExactlyTheLimitIsAcceptedAndOneMoreByteIsNot) {
    const std::string head = "X-Pad: ";
    const std::size_t pad = kMaxResponseSize - kOkResponse.size() - head.size() - 2;
    const std::string at_limit = ok_response_with(head + std::string(pad, 'p') + "\r\n");
    UNSIGNED_LONGS_EQUAL(kMaxResponseSize, at_limit.size());
    std::size_t consumed = 0;
    CHECK_STATUS(HandshakeStatus::kOk, parse_every_way(at_limit + "\x81", &consumed));
    UNSIGNED_LONGS_EQUAL(kMaxResponseSize, consumed);

    const std::string over = ok_response_with(head + std::string(pad + 1, 'p') + "\r\n");
    UNSIGNED_LONGS_EQUAL(kMaxResponseSize + 1, over.size());
    CHECK_STATUS(HandshakeStatus::kResponseTooLarge, parse_every_way(over, &consumed));
    UNSIGNED_LONGS_EQUAL(kMaxResponseSize, consumed);
}

TEST(WsUpgradeResponse, EndlessHeadersStopAtTheLimit) {
    std::string endless;
    while (endless.size() < 3 * kMaxResponseSize) {
        endless += "X-More: yes\r\n";
    }
    std::size_t consumed = 0;
    CHECK_STATUS(HandshakeStatus::kResponseTooLarge,
                 parse_every_way("HTTP/1.1 101 OK\r\n" + endless, &consumed));
    UNSIGNED_LONGS_EQUAL(kMaxResponseSize, consumed);
}

TEST(WsUpgradeResponse, InterimResponsesAreSkippedButCountTowardsTheLimit) {
    const std::string interim =
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n";
    std::size_t consumed = 0;
    CHECK_STATUS(HandshakeStatus::kOk, parse_every_way(interim + kOkResponse + "\x81", &consumed));
    UNSIGNED_LONGS_EQUAL(interim.size() + kOkResponse.size(), consumed);

    const std::string filler = "HTTP/1.1 100 Continue\r\n\r\n";
    std::string many;
    while (many.size() + filler.size() <= kMaxResponseSize) {
        many += filler;
    }
    CHECK_STATUS(HandshakeStatus::kResponseTooLarge, parse_every_way(many + kOkResponse));
}

TEST(WsUpgradeResponse, OtherStatusesAreReportedAsNotSwitching) {
    const std::string body = "<html>busy</html>";
    const std::string head =
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Length: 17\r\n"
        "Retry-After: 120\r\n"
        "\r\n";
    for (std::size_t chunk : kChunkSizes) {
        UpgradeResponseParser parser(kAccept, nullptr, 0, false);
        const FeedResult result = feed_chunked(parser, head + body, chunk);
        CHECK_STATUS(HandshakeStatus::kNotSwitching, result.status);
        UNSIGNED_LONGS_EQUAL(head.size(), result.consumed);
        UNSIGNED_LONGS_EQUAL(503, parser.status_code());
        CHECK_TRUE(parser.has_retry_after());
        UNSIGNED_LONGS_EQUAL(120, parser.retry_after_seconds());
    }
    UpgradeResponseParser parser(kAccept, nullptr, 0, false);
    CHECK_STATUS(
        HandshakeStatus::kNotSwitching,
        parse_once(parser, "HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\n\r\n"));
    UNSIGNED_LONGS_EQUAL(401, parser.status_code());
    CHECK_FALSE(parser.has_retry_after());
    UNSIGNED_LONGS_EQUAL(0, parser.retry_after_seconds());
    // A non-101 response is not held to the WebSocket header rules.
    parser.reset(kAccept, nullptr, 0, false);
    CHECK_STATUS(HandshakeStatus::kNotSwitching,
                 parse_once(parser, "HTTP/1.1 200 OK\r\nUpgrade: h2c\r\n\r\n"));
    UNSIGNED_LONGS_EQUAL(200, parser.status_code());
}

TEST(WsUpgradeResponse, MalformedNonSwitchingResponseIsStillMalformed) {
    CHECK_STATUS(HandshakeStatus::kMalformed,
                 parse_every_way("HTTP/1.1 503 Busy\r\nRetry After: 5\r\n\r\n"));
}

namespace {

// Parses a 429 carrying the given extra headers and returns the parser's view.
struct RetryView {
    bool present;
    std::uint32_t seconds;
};

RetryView retry_after_of(const std::string& headers) {
    UpgradeResponseParser parser(kAccept, nullptr, 0, false);
    const std::string bytes = "HTTP/1.1 429 Too Many Requests\r\n" + headers + "\r\n";
    CHECK_STATUS(HandshakeStatus::kNotSwitching, parse_once(parser, bytes));
    UNSIGNED_LONGS_EQUAL(429, parser.status_code());
    return RetryView{parser.has_retry_after(), parser.retry_after_seconds()};
}

void check_retry(const std::string& headers, std::uint32_t seconds) {
    const RetryView view = retry_after_of(headers);
    CHECK_TRUE_TEXT(view.present, headers.c_str());
    UNSIGNED_LONGS_EQUAL_TEXT(seconds, view.seconds, headers.c_str());
}

void check_no_retry(const std::string& headers) {
    const RetryView view = retry_after_of(headers);
    CHECK_FALSE_TEXT(view.present, headers.c_str());
    UNSIGNED_LONGS_EQUAL_TEXT(0, view.seconds, headers.c_str());
}

}  // namespace

TEST(WsUpgradeResponse, RetryAfterDateIsRelativeToTheResponseDate) {
    const std::string date = "Date: Wed, 21 Oct 2015 07:28:00 GMT\r\n";
    for (std::size_t chunk : kChunkSizes) {
        UpgradeResponseParser parser(kAccept, nullptr, 0, false);
        const FeedResult result =
            feed_chunked(parser,
                         "HTTP/1.1 429 Too Many Requests\r\n" + date +
                             "Retry-After: Wed, 21 Oct 2015 07:30:30 GMT\r\n\r\n",
                         chunk);
        CHECK_STATUS(HandshakeStatus::kNotSwitching, result.status);
        CHECK_TRUE(parser.has_retry_after());
        UNSIGNED_LONGS_EQUAL(150, parser.retry_after_seconds());
    }
    // Header order does not matter; RFC 850 and asctime forms mix freely.
    check_retry("Retry-After: Wednesday, 21-Oct-15 08:28:00 GMT\r\n" + date, 3600);
    check_retry(date + "Retry-After: Wed Oct 21 07:28:09 2015\r\n", 9);
    check_retry(
        "Date: Thu, 31 Dec 2015 23:59:00 GMT\r\nRetry-After: Fri, 01 Jan 2016 00:01:00 GMT\r\n",
        120);
    check_retry(
        "Date: Sun, 28 Feb 2016 23:00:00 GMT\r\nRetry-After: Tue, 01 Mar 2016 00:00:00 GMT\r\n",
        86400);  // a day and an hour across a leap day: clamped
    check_retry(
        "Date: Sun, 28 Feb 2016 23:00:00 GMT\r\nRetry-After: Mon, 29 Feb 2016 23:00:00 GMT\r\n",
        86400);
    check_retry(
        "Date: Mon, 29 Feb 2016 23:00:00 GMT\r\nRetry-After: Mon, 29 Feb 2016 22:00:00 GMT\r\n",
        0);  // already past
    check_retry(date + "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n", 0);
}

TEST(WsUpgradeResponse, RetryAfterDateWithoutAUsableDateIsAbsent) {
    const std::string retry = "Retry-After: Wed, 21 Oct 2015 07:30:30 GMT\r\n";
    check_no_retry(retry);
    check_no_retry(retry + "Date: yesterday\r\n");
    check_no_retry(
        retry + "Date: Wed, 21 Oct 2015 07:28:00 GMT\r\nDate: Wed, 21 Oct 2015 07:28:00 GMT\r\n");
    check_no_retry(
        "Date: Wed, 21 Oct 2015 07:28:00 GMT\r\nRetry-After: Wed, 32 Oct 2015 07:30:30 GMT\r\n");
}

TEST(WsUpgradeResponse, RetryAfterSecondsAreDigitsOnlyAndClampedToADay) {
    check_retry("Retry-After: 0\r\n", 0);
    check_retry("Retry-After:   30  \r\n", 30);
    check_retry("Retry-After: 007\r\n", 7);
    check_retry("Retry-After: 86400\r\n", 86400);
    check_retry("Retry-After: 86401\r\n", 86400);
    check_retry("Retry-After: 99999999999999999999999999\r\n", 86400);
    check_no_retry("");
    check_no_retry("Retry-After:\r\n");
    check_no_retry("Retry-After: -5\r\n");
    check_no_retry("Retry-After: +5\r\n");
    check_no_retry("Retry-After: 1.5\r\n");
    check_no_retry("Retry-After: 12a\r\n");
    check_no_retry("Retry-After: 1 2\r\n");
    check_no_retry("Retry-After: 5\r\nRetry-After: 5\r\n");
}

TEST(WsUpgradeResponse, InvalidArgumentsAreReported) {
    const std::uint8_t byte = 'H';
    std::size_t consumed = 9;
    UpgradeResponseParser parser(kAccept, nullptr, 0, false);
    CHECK_STATUS(HandshakeStatus::kInvalidArgument, parser.feed(&byte, 1, nullptr));
    CHECK_STATUS(HandshakeStatus::kInvalidArgument, parser.feed(nullptr, 1, &consumed));
    UNSIGNED_LONGS_EQUAL(0, consumed);

    const char* const with_null[] = {"v1", nullptr};
    const char* const protocols[] = {"v1"};
    UpgradeResponseParser bad_accept(nullptr, nullptr, 0, false);
    UpgradeResponseParser short_accept("s3pPLMBiTxaQ9kYGzzhZRbK+xOo", nullptr, 0, false);
    UpgradeResponseParser null_list(kAccept, nullptr, 1, false);
    UpgradeResponseParser null_entry(kAccept, with_null, 2, false);
    UpgradeResponseParser nothing_offered(kAccept, protocols, 0, true);
    UpgradeResponseParser* invalid[] = {&bad_accept, &short_accept, &null_list, &null_entry,
                                        &nothing_offered};
    for (UpgradeResponseParser* p : invalid) {
        consumed = 9;
        CHECK_STATUS(HandshakeStatus::kInvalidArgument, p->feed(&byte, 1, &consumed));
        UNSIGNED_LONGS_EQUAL(0, consumed);
    }
}

TEST(WsUpgradeResponse, ResetStartsANewAttempt) {
    const char* const protocols[] = {"v1"};
    UpgradeResponseParser parser(kAccept, nullptr, 0, false);
    CHECK_STATUS(HandshakeStatus::kNotSwitching,
                 parse_once(parser, "HTTP/1.1 503 Busy\r\nRetry-After: 9\r\n\r\n"));
    parser.reset(kAccept, protocols, 1, true);
    UNSIGNED_LONGS_EQUAL(0, parser.status_code());
    CHECK_FALSE(parser.has_retry_after());
    UNSIGNED_LONGS_EQUAL(0, parser.retry_after_seconds());
    CHECK_STATUS(HandshakeStatus::kOk,
                 parse_once(parser, ok_response_with("Sec-WebSocket-Protocol: v1\r\n")));
    POINTERS_EQUAL(protocols[0], parser.selected_subprotocol());
    parser.reset(kAccept, nullptr, 0, false);
    CHECK(parser.selected_subprotocol() == nullptr);
    // Half a response, then a reset: the old bytes are gone.
    CHECK_STATUS(HandshakeStatus::kNeedMore, parse_once(parser, "HTTP/1.1 200 OK\r\nX: y"));
    parser.reset(kAccept, nullptr, 0, false);
    CHECK_STATUS(HandshakeStatus::kOk, parse_once(parser, kOkResponse));
}

TEST(WsUpgradeResponse, ParsingDoesNotAllocate) {
    UpgradeResponseParser parser(kAccept, nullptr, 0, false);
    const std::string bytes =
        "HTTP/1.1 429 Slow\r\nDate: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
        "Retry-After: Wed, 21 Oct 2015 07:30:30 GMT\r\n\r\n";
    tether::test::AllocationCounter counter;
    std::size_t consumed = 0;
    CHECK_STATUS(
        HandshakeStatus::kNotSwitching,
        parser.feed(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), &consumed));
    UNSIGNED_LONGS_EQUAL(0, counter.count());
}

// ---------------------------------------------------------------------------

TEST_GROUP(HttpDate){};

TEST(HttpDate, DaysFromCivilMatchesKnownDates) {
    CHECK_EQUAL(std::int64_t{0}, days_from_civil(1970, 1, 1));
    CHECK_EQUAL(std::int64_t{-1}, days_from_civil(1969, 12, 31));
    CHECK_EQUAL(std::int64_t{11017}, days_from_civil(2000, 3, 1));
    CHECK_EQUAL(std::int64_t{157113}, days_from_civil(2400, 2, 29));
    CHECK_EQUAL(std::int64_t{-25567}, days_from_civil(1900, 1, 1));
    CHECK_EQUAL(std::int64_t{-719162}, days_from_civil(1, 1, 1));
    CHECK_EQUAL(std::int64_t{2932896}, days_from_civil(9999, 12, 31));
}

TEST(HttpDate, DaysFromCivilCountsEveryDayOnce) {
    // Walks the calendar day by day (a model with its own leap-year rule) from
    // 1900 to 2500 and checks that consecutive dates are one day apart.
    const std::uint32_t lengths[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    std::int64_t expected = days_from_civil(1900, 1, 1);
    for (std::int32_t year = 1900; year <= 2500; ++year) {
        const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        for (std::uint32_t month = 1; month <= 12; ++month) {
            const std::uint32_t days = lengths[month - 1] + ((month == 2 && leap) ? 1 : 0);
            for (std::uint32_t day = 1; day <= days; ++day) {
                if (days_from_civil(year, month, day) != expected) {
                    FAIL("days_from_civil skipped or repeated a day");
                }
                ++expected;
            }
        }
    }
    CHECK_EQUAL(days_from_civil(2501, 1, 1), expected);
}

namespace {

bool parse(const char* text, std::int64_t* seconds) {
    return parse_http_date(text, std::strlen(text), seconds);
}

void check_date(const char* text, std::int64_t expected) {
    std::int64_t seconds = -12345;
    CHECK_TRUE_TEXT(parse(text, &seconds), text);
    CHECK_EQUAL_TEXT(std::int64_t{expected}, seconds, text);
}

void check_not_a_date(const char* text) {
    std::int64_t seconds = -12345;
    CHECK_FALSE_TEXT(parse(text, &seconds), text);
    CHECK_EQUAL_TEXT(std::int64_t{-12345}, seconds, text);
}

}  // namespace

TEST(HttpDate, AllThreeFormatsOfTheRfcExampleAgree) {
    check_date("Sun, 06 Nov 1994 08:49:37 GMT", 784111777);
    check_date("Sunday, 06-Nov-94 08:49:37 GMT", 784111777);
    check_date("Sun Nov  6 08:49:37 1994", 784111777);
    check_date("Sun Nov 06 08:49:37 1994", 784111777);
}

TEST(HttpDate, EveryDayAndMonthNameIsKnown) {
    const char* const days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    const char* const long_days[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                     "Friday", "Saturday", "Sunday"};
    const char* const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (const char* day : days) {
        check_date((std::string(day) + ", 01 Jan 1970 00:00:00 GMT").c_str(), 0);
        check_date((std::string(day) + " Jan  1 00:00:00 1970").c_str(), 0);
    }
    for (const char* day : long_days) {
        check_date((std::string(day) + ", 01-Jan-70 00:00:00 GMT").c_str(), 0);
    }
    for (std::uint32_t m = 0; m < 12; ++m) {
        const std::string text = std::string("Mon, 01 ") + months[m] + " 2001 00:00:00 GMT";
        check_date(text.c_str(), days_from_civil(2001, m + 1, 1) * 86400);
    }
}

TEST(HttpDate, TwoDigitYearsPivotAt1970) {
    check_date("Thursday, 01-Jan-70 00:00:00 GMT", 0);
    check_date("Tuesday, 31-Dec-69 00:00:00 GMT", 3155673600);  // 2069-12-31
    check_date("Saturday, 01-Jan-00 00:00:01 GMT", 946684801);
    check_date("Friday, 31-Dec-99 23:59:59 GMT", 946684799);
}

TEST(HttpDate, CalendarAndClockRangesAreChecked) {
    check_date("Mon, 29 Feb 2016 00:00:00 GMT", days_from_civil(2016, 2, 29) * 86400);
    check_date("Tue, 29 Feb 2000 00:00:00 GMT", days_from_civil(2000, 2, 29) * 86400);
    check_date("Wed, 31 Dec 2014 23:59:60 GMT", days_from_civil(2015, 1, 1) * 86400);
    check_date("Mon, 01 Jan 1900 00:00:00 GMT", -25567LL * 86400);
    check_not_a_date("Sun, 29 Feb 2015 00:00:00 GMT");
    check_not_a_date("Thu, 29 Feb 1900 00:00:00 GMT");
    check_not_a_date("Sun, 31 Nov 1994 08:49:37 GMT");
    check_not_a_date("Sun, 00 Nov 1994 08:49:37 GMT");
    check_not_a_date("Sun, 32 Jan 1994 08:49:37 GMT");
    check_not_a_date("Sun, 06 Nov 1994 24:00:00 GMT");
    check_not_a_date("Sun, 06 Nov 1994 08:60:00 GMT");
    check_not_a_date("Sun, 06 Nov 1994 08:49:61 GMT");
    check_not_a_date("Sun, 31 Dec 1899 23:59:59 GMT");
}

TEST(HttpDate, AnythingElseIsNotADate) {
    const char* const bad[] = {
        "",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 GMT ",
        " Sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37",
        "sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun,06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 06 Nov 1994 08.49.37 GMT",
        "Sun, 06 Nox 1994 08:49:37 GMT",
        "Snu, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06-Nov-94 08:49:37 GMT",
        "Sunday, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37",
        "Sun Nov  6 08:49:37 94",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov  16 08:49:37 1994",
        "Sun Nov  6 08:49:37 1994 ",
        "Sun  Nov 6 08:49:37 1994",
        "1994-11-06T08:49:37Z",
        "784111777",
    };
    for (const char* text : bad) {
        check_not_a_date(text);
    }
    std::int64_t seconds = 0;
    CHECK_FALSE(parse_http_date(nullptr, 0, &seconds));
    CHECK_FALSE(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", 29, nullptr));
    // Only `size` bytes are read: a valid prefix of a longer buffer parses.
    CHECK_TRUE(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT; more", 29, &seconds));
    CHECK_EQUAL(std::int64_t{784111777}, seconds);
}

// SPDX-License-Identifier: MIT
#include <cstdint>
#include <cstring>
#include <string>

#include "support/alloc_counter.h"
#include "tether/net/ws_server_handshake.h"

// CppUTest last: its operator-new macros break standard headers.
#include <CppUTest/TestHarness.h>

using tether::net::AcceptResponse;
using tether::net::ErrorResponse;
using tether::net::HandshakeStatus;
using tether::net::RequestStatus;
using tether::net::UpgradeRequestParser;

namespace {

const std::string kRfcKey = "dGhlIHNhbXBsZSBub25jZQ==";

std::string request_with(const std::string& headers,
                         const std::string& request_line = "GET /v1/stream?device=7 HTTP/1.1") {
    return request_line + "\r\n" + headers + "\r\n";
}

std::string good_headers() {
    return "Host: server.example.com\r\n"
           "Upgrade: websocket\r\n"
           "Connection: keep-alive, Upgrade\r\n"
           "Sec-WebSocket-Key: " +
           kRfcKey +
           "\r\n"
           "Sec-WebSocket-Version: 13\r\n"
           "Sec-WebSocket-Protocol: chat, tether.v1\r\n"
           "Authorization: Bearer t0k3n-._~+/=\r\n"
           "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n";
}

// Feeds `text` in chunks of `chunk` bytes (0: whole); returns the first
// answer other than kNeedMore (or kNeedMore) and the bytes consumed in all.
RequestStatus feed(UpgradeRequestParser& parser, const std::string& text, std::size_t chunk,
                   std::size_t* consumed_total = nullptr) {
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(text.data());
    std::size_t total = 0;
    RequestStatus status = RequestStatus::kNeedMore;
    const std::size_t step = chunk == 0 ? text.size() : chunk;
    for (std::size_t offset = 0; offset < text.size(); offset += step) {
        const std::size_t size = std::min(step, text.size() - offset);
        std::size_t used = 0;
        status = parser.feed(bytes + offset, size, &used);
        total += used;
        if (status != RequestStatus::kNeedMore) {
            break;
        }
    }
    if (consumed_total != nullptr) {
        *consumed_total = total;
    }
    return status;
}

const std::size_t kChunks[] = {0, 1, 2, 3, 7, 13, 64};

void expect_status(const std::string& text, RequestStatus expected) {
    for (std::size_t chunk : kChunks) {
        UpgradeRequestParser parser;
        const RequestStatus status = feed(parser, text, chunk);
        STRCMP_EQUAL(to_string(expected), to_string(status));
    }
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
    const std::size_t at = text.find(from);
    CHECK_TRUE(at != std::string::npos);
    return text.replace(at, from.size(), to);
}

}  // namespace

TEST_GROUP(WsServerHandshake){};

TEST(WsServerHandshake, AcceptsAFullRequestInEveryChunking) {
    const std::string text = request_with(good_headers());
    for (std::size_t chunk : kChunks) {
        UpgradeRequestParser parser;
        std::size_t consumed = 0;
        CHECK_EQUAL(static_cast<int>(RequestStatus::kOk),
                    static_cast<int>(feed(parser, text, chunk, &consumed)));
        UNSIGNED_LONGS_EQUAL(text.size(), consumed);
        STRCMP_EQUAL("/v1/stream?device=7", parser.target());
        STRCMP_EQUAL("server.example.com", parser.host());
        STRCMP_EQUAL(kRfcKey.c_str(), parser.key());
        STRCMP_EQUAL("t0k3n-._~+/=", parser.bearer_token());
        STRCMP_EQUAL("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                     parser.traceparent());
        CHECK_TRUE(parser.has_subprotocols());
        CHECK_TRUE(parser.offers_subprotocol("tether.v1"));
        CHECK_TRUE(parser.offers_subprotocol("chat"));
        CHECK_FALSE(parser.offers_subprotocol("tether"));
        CHECK_FALSE(parser.offers_subprotocol("tether.v2"));
        CHECK_FALSE(parser.offers_subprotocol(nullptr));
    }
}

TEST(WsServerHandshake, BytesAfterTheRequestAreLeft) {
    const std::string text = request_with(good_headers());
    UpgradeRequestParser parser;
    const std::string with_frame = text + "\x81\x85";
    std::size_t used = 0;
    CHECK_TRUE(RequestStatus::kOk ==
               parser.feed(reinterpret_cast<const std::uint8_t*>(with_frame.data()),
                           with_frame.size(), &used));
    UNSIGNED_LONGS_EQUAL(text.size(), used);
    // Done: later calls repeat the answer and consume nothing.
    CHECK_TRUE(RequestStatus::kOk ==
               parser.feed(reinterpret_cast<const std::uint8_t*>("x"), 1, &used));
    UNSIGNED_LONGS_EQUAL(0, used);
}

TEST(WsServerHandshake, OptionalFieldsMayBeAbsent) {
    std::string headers = good_headers();
    headers = replace(headers, "Sec-WebSocket-Protocol: chat, tether.v1\r\n", "");
    headers = replace(headers, "Authorization: Bearer t0k3n-._~+/=\r\n", "");
    headers = replace(
        headers, "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n", "");
    UpgradeRequestParser parser;
    CHECK_TRUE(RequestStatus::kOk == feed(parser, request_with(headers), 5));
    CHECK_FALSE(parser.has_subprotocols());
    CHECK_FALSE(parser.offers_subprotocol("tether.v1"));
    CHECK_TRUE(parser.bearer_token() == nullptr);
    CHECK_TRUE(parser.traceparent() == nullptr);
}

TEST(WsServerHandshake, HeaderNamesAndListTokensAreCaseInsensitive) {
    const std::string text = request_with(
        "HOST: h\r\nupgrade: WebSocket\r\nCONNECTION: UPGRADE\r\nsec-websocket-key:" + kRfcKey +
        "  \r\nSEC-WEBSOCKET-VERSION:\t13\r\nsec-websocket-protocol: a\r\n"
        "Sec-WebSocket-Protocol: ,tether.v1 ,\r\nauthorization: bearer   abc\r\n");
    UpgradeRequestParser parser;
    CHECK_TRUE(RequestStatus::kOk == feed(parser, text, 3));
    STRCMP_EQUAL(kRfcKey.c_str(), parser.key());
    STRCMP_EQUAL("abc", parser.bearer_token());
    CHECK_TRUE(parser.offers_subprotocol("tether.v1"));
    CHECK_TRUE(parser.offers_subprotocol("a"));
    CHECK_FALSE(parser.offers_subprotocol("TETHER.V1"));  // subprotocols are exact
}

TEST(WsServerHandshake, OtherAuthorizationSchemesGiveNoToken) {
    const char* const values[] = {"Basic dXNlcjpwYXNz", "Bearer",     "Bearer ",
                                  "Bearertoken",        "Bearer a b", "Bearer tok\"en"};
    for (const char* value : values) {
        UpgradeRequestParser parser;
        const std::string text =
            request_with(replace(good_headers(), "Bearer t0k3n-._~+/=", value));
        CHECK_TRUE(RequestStatus::kOk == feed(parser, text, 0));
        CHECK_TRUE(parser.bearer_token() == nullptr);
    }
}

TEST(WsServerHandshake, MalformedTraceparentIsIgnored) {
    const char* const values[] = {"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
                                  "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
                                  "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-",
                                  "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"};
    for (const char* value : values) {
        UpgradeRequestParser parser;
        const std::string text = request_with(replace(
            good_headers(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", value));
        CHECK_TRUE(RequestStatus::kOk == feed(parser, text, 0));
        CHECK_TRUE(parser.traceparent() == nullptr);
    }
}

TEST(WsServerHandshake, RequestLineIsChecked) {
    expect_status(request_with(good_headers(), "POST / HTTP/1.1"), RequestStatus::kNotGet);
    expect_status(request_with(good_headers(), "GET / HTTP/1.0"), RequestStatus::kNotHttp11);
    expect_status(request_with(good_headers(), "GET / HTTP/2"), RequestStatus::kNotHttp11);
    expect_status(request_with(good_headers(), "GET http://h/ HTTP/1.1"),
                  RequestStatus::kBadTarget);
    expect_status(request_with(good_headers(), "GET /a#b HTTP/1.1"), RequestStatus::kBadTarget);
    expect_status(request_with(good_headers(), "GET /a\x7f HTTP/1.1"), RequestStatus::kBadTarget);
    expect_status(request_with(good_headers(), "GET / HTTP/1.1 extra"), RequestStatus::kMalformed);
    expect_status(request_with(good_headers(), "GET /"), RequestStatus::kMalformed);
    expect_status(request_with(good_headers(), " / HTTP/1.1"), RequestStatus::kMalformed);
    expect_status(request_with(good_headers(), "G(T / HTTP/1.1"), RequestStatus::kMalformed);
    expect_status("\r\n\r\n", RequestStatus::kMalformed);
}

TEST(WsServerHandshake, RequiredHeadersAreChecked) {
    const std::string good = good_headers();
    expect_status(request_with(replace(good, "Host: server.example.com\r\n", "")),
                  RequestStatus::kMissingHost);
    expect_status(request_with(good + "Host: again\r\n"), RequestStatus::kMissingHost);
    expect_status(request_with(replace(good, "Upgrade: websocket", "Upgrade: h2c")),
                  RequestStatus::kMissingUpgrade);
    expect_status(request_with(replace(good, "keep-alive, Upgrade", "keep-alive")),
                  RequestStatus::kMissingConnection);
    expect_status(request_with(replace(good, "Version: 13", "Version: 8")),
                  RequestStatus::kBadVersion);
    expect_status(request_with(replace(good, "Sec-WebSocket-Version: 13\r\n", "")),
                  RequestStatus::kBadVersion);
    expect_status(request_with(good + "Sec-WebSocket-Version: 13\r\n"), RequestStatus::kBadVersion);
    expect_status(request_with(replace(good, "Sec-WebSocket-Key: " + kRfcKey + "\r\n", "")),
                  RequestStatus::kBadKey);
    expect_status(request_with(good + "Sec-WebSocket-Key: " + kRfcKey + "\r\n"),
                  RequestStatus::kBadKey);
    const char* const bad_keys[] = {"dGhlIHNhbXBsZSBub25jZQ=",   "dGhlIHNhbXBsZSBub25jZQ=x",
                                    "dGhlIHNhbXBsZSBub25jZR==",  "dGhlIHNhbXBsZSBub25j*Q==",
                                    "dGhlIHNhbXBsZSBub25jZQ===", ""};
    for (const char* key : bad_keys) {
        expect_status(request_with(replace(good, kRfcKey, key)), RequestStatus::kBadKey);
    }
    expect_status(request_with(good + "Authorization: Bearer x\r\n"), RequestStatus::kMalformed);
}

TEST(WsServerHandshake, SyntaxErrorsFailAtTheOffendingByte) {
    const std::string text = "GET / HTTP/1.1\nHost: h\r\n\r\n";
    UpgradeRequestParser parser;
    std::size_t consumed = 0;
    CHECK_TRUE(RequestStatus::kMalformed == feed(parser, text, 1, &consumed));
    UNSIGNED_LONGS_EQUAL(15, consumed);
    expect_status("GET / HTTP/1.1\rX", RequestStatus::kMalformed);
    expect_status(std::string("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 28),
                  RequestStatus::kMalformed);
    expect_status(request_with(good_headers() + " folded\r\n"), RequestStatus::kMalformed);
    expect_status(request_with(good_headers() + "No-Colon\r\n"), RequestStatus::kMalformed);
    expect_status(request_with(good_headers() + "Bad Name: x\r\n"), RequestStatus::kMalformed);
    expect_status(request_with(good_headers() + "X: a\x01z\r\n"), RequestStatus::kMalformed);
    expect_status(request_with(good_headers() + ": x\r\n"), RequestStatus::kMalformed);
}

TEST(WsServerHandshake, HeaderBlockIsBoundedTo8KiB) {
    const std::string head = "GET / HTTP/1.1\r\nX-Pad: ";
    const std::string exact = head + std::string(8192 - head.size() - 4, 'a') + "\r\n\r\n";
    UNSIGNED_LONGS_EQUAL(8192, exact.size());
    // Exactly the limit parses (and then fails for the missing headers).
    expect_status(exact, RequestStatus::kMissingHost);
    const std::string over = head + std::string(8192 - head.size() - 3, 'a') + "\r\n\r\n";
    for (std::size_t chunk : kChunks) {
        UpgradeRequestParser parser;
        std::size_t consumed = 0;
        CHECK_TRUE(RequestStatus::kTooLarge == feed(parser, over, chunk, &consumed));
        UNSIGNED_LONGS_EQUAL(8192, consumed);
    }
}

TEST(WsServerHandshake, ResetStartsOver) {
    UpgradeRequestParser parser;
    CHECK_TRUE(RequestStatus::kMalformed == feed(parser, "GET\n", 0));
    CHECK_TRUE(parser.target() == nullptr);
    parser.reset();
    CHECK_TRUE(RequestStatus::kOk == feed(parser, request_with(good_headers()), 11));
}

TEST(WsServerHandshake, InvalidArguments) {
    UpgradeRequestParser parser;
    std::size_t used = 99;
    CHECK_TRUE(RequestStatus::kInvalidArgument == parser.feed(nullptr, 1, &used));
    UNSIGNED_LONGS_EQUAL(0, used);
    CHECK_TRUE(RequestStatus::kInvalidArgument ==
               parser.feed(reinterpret_cast<const std::uint8_t*>("G"), 1, nullptr));
    CHECK_TRUE(RequestStatus::kNeedMore == parser.feed(nullptr, 0, &used));
}

TEST(WsServerHandshake, StatusNamesAndHttpCodes) {
    STRCMP_EQUAL("ok", to_string(RequestStatus::kOk));
    STRCMP_EQUAL("need_more", to_string(RequestStatus::kNeedMore));
    STRCMP_EQUAL("too_large", to_string(RequestStatus::kTooLarge));
    STRCMP_EQUAL("malformed", to_string(RequestStatus::kMalformed));
    STRCMP_EQUAL("not_get", to_string(RequestStatus::kNotGet));
    STRCMP_EQUAL("not_http11", to_string(RequestStatus::kNotHttp11));
    STRCMP_EQUAL("bad_target", to_string(RequestStatus::kBadTarget));
    STRCMP_EQUAL("missing_host", to_string(RequestStatus::kMissingHost));
    STRCMP_EQUAL("missing_upgrade", to_string(RequestStatus::kMissingUpgrade));
    STRCMP_EQUAL("missing_connection", to_string(RequestStatus::kMissingConnection));
    STRCMP_EQUAL("bad_version", to_string(RequestStatus::kBadVersion));
    STRCMP_EQUAL("bad_key", to_string(RequestStatus::kBadKey));
    STRCMP_EQUAL("invalid_argument", to_string(RequestStatus::kInvalidArgument));
    STRCMP_EQUAL("unknown", to_string(static_cast<RequestStatus>(99)));
    UNSIGNED_LONGS_EQUAL(0, tether::net::status_for(RequestStatus::kOk));
    UNSIGNED_LONGS_EQUAL(0, tether::net::status_for(RequestStatus::kNeedMore));
    UNSIGNED_LONGS_EQUAL(426, tether::net::status_for(RequestStatus::kMissingUpgrade));
    UNSIGNED_LONGS_EQUAL(426, tether::net::status_for(RequestStatus::kBadVersion));
    UNSIGNED_LONGS_EQUAL(400, tether::net::status_for(RequestStatus::kBadKey));
    UNSIGNED_LONGS_EQUAL(400, tether::net::status_for(RequestStatus::kTooLarge));
}

TEST(WsServerHandshake, ParsingAllocatesNothing) {
    const std::string text = request_with(good_headers());
    tether::test::AllocationCounter counter;
    UpgradeRequestParser parser;
    std::size_t used = 0;
    const RequestStatus status =
        parser.feed(reinterpret_cast<const std::uint8_t*>(text.data()), text.size(), &used);
    const std::size_t allocations = counter.count();
    CHECK_TRUE(RequestStatus::kOk == status);
    UNSIGNED_LONGS_EQUAL(0, allocations);
}

TEST_GROUP(WsServerResponse){};

TEST(WsServerResponse, AcceptIsTheRfcExample) {
    AcceptResponse response;
    response.key = kRfcKey.c_str();
    response.subprotocol = "tether.v1";
    char out[512];
    std::size_t length = 0;
    CHECK_TRUE(HandshakeStatus::kOk == build_accept_response(response, out, sizeof out, &length));
    STRCMP_EQUAL(
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "Sec-WebSocket-Protocol: tether.v1\r\n"
        "\r\n",
        std::string(out, length).c_str());
    response.subprotocol = nullptr;
    CHECK_TRUE(HandshakeStatus::kOk == build_accept_response(response, out, sizeof out, &length));
    CHECK_TRUE(std::string(out, length).find("Sec-WebSocket-Protocol") == std::string::npos);
}

TEST(WsServerResponse, AcceptReportsTheSizeItNeeds) {
    AcceptResponse response;
    response.key = kRfcKey.c_str();
    std::size_t needed = 0;
    CHECK_TRUE(HandshakeStatus::kBufferTooSmall ==
               build_accept_response(response, nullptr, 0, &needed));
    UNSIGNED_LONGS_EQUAL(129, needed);
    char out[129];
    std::size_t length = 0;
    CHECK_TRUE(HandshakeStatus::kBufferTooSmall ==
               build_accept_response(response, out, 128, &length));
    CHECK_TRUE(HandshakeStatus::kOk == build_accept_response(response, out, 129, &length));
}

TEST(WsServerResponse, AcceptRejectsBadArguments) {
    AcceptResponse response;
    char out[256];
    std::size_t length = 0;
    CHECK_TRUE(HandshakeStatus::kInvalidArgument ==
               build_accept_response(response, out, sizeof out, &length));
    response.key = "short";
    CHECK_TRUE(HandshakeStatus::kInvalidArgument ==
               build_accept_response(response, out, sizeof out, &length));
    response.key = kRfcKey.c_str();
    response.subprotocol = "bad proto";
    CHECK_TRUE(HandshakeStatus::kInvalidArgument ==
               build_accept_response(response, out, sizeof out, &length));
    response.subprotocol = "";
    CHECK_TRUE(HandshakeStatus::kInvalidArgument ==
               build_accept_response(response, out, sizeof out, &length));
    response.subprotocol = nullptr;
    CHECK_TRUE(HandshakeStatus::kInvalidArgument ==
               build_accept_response(response, nullptr, 10, &length));
    CHECK_TRUE(HandshakeStatus::kInvalidArgument ==
               build_accept_response(response, out, sizeof out, nullptr));
}

TEST(WsServerResponse, ErrorResponsesCarryTheirHeaders) {
    char out[512];
    std::size_t length = 0;
    ErrorResponse response;
    response.status = 401;
    CHECK_TRUE(HandshakeStatus::kOk == build_error_response(response, out, sizeof out, &length));
    STRCMP_EQUAL(
        "HTTP/1.1 401 Unauthorized\r\n"
        "Connection: close\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Length: 13\r\n"
        "WWW-Authenticate: Bearer\r\n"
        "\r\n"
        "Unauthorized\n",
        std::string(out, length).c_str());

    response.status = 503;
    response.has_retry_after = true;
    response.retry_after_seconds = 5;
    CHECK_TRUE(HandshakeStatus::kOk == build_error_response(response, out, sizeof out, &length));
    STRCMP_EQUAL(
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Connection: close\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Length: 20\r\n"
        "Retry-After: 5\r\n"
        "\r\n"
        "Service Unavailable\n",
        std::string(out, length).c_str());

    response = ErrorResponse{};
    response.status = 426;
    CHECK_TRUE(HandshakeStatus::kOk == build_error_response(response, out, sizeof out, &length));
    CHECK_TRUE(
        std::string(out, length).find("Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n") !=
        std::string::npos);
    const std::uint16_t others[] = {400, 403, 404, 429, 500};
    const char* const phrases[] = {"400 Bad Request", "403 Forbidden", "404 Not Found",
                                   "429 Too Many Requests", "500 Internal Server Error"};
    for (std::size_t i = 0; i < 5; ++i) {
        response.status = others[i];
        CHECK_TRUE(HandshakeStatus::kOk ==
                   build_error_response(response, out, sizeof out, &length));
        CHECK_TRUE(std::string(out, length).rfind(std::string("HTTP/1.1 ") + phrases[i], 0) == 0);
    }
}

TEST(WsServerResponse, ErrorRejectsBadArguments) {
    char out[512];
    std::size_t length = 0;
    ErrorResponse response;
    response.status = 418;
    CHECK_TRUE(HandshakeStatus::kInvalidArgument ==
               build_error_response(response, out, sizeof out, &length));
    response.status = 429;
    response.has_retry_after = true;
    response.retry_after_seconds = tether::net::kMaxRetryAfterSeconds + 1;
    CHECK_TRUE(HandshakeStatus::kInvalidArgument ==
               build_error_response(response, out, sizeof out, &length));
    response.retry_after_seconds = tether::net::kMaxRetryAfterSeconds;
    CHECK_TRUE(HandshakeStatus::kInvalidArgument ==
               build_error_response(response, nullptr, 5, &length));
    CHECK_TRUE(HandshakeStatus::kInvalidArgument ==
               build_error_response(response, out, sizeof out, nullptr));
    CHECK_TRUE(HandshakeStatus::kBufferTooSmall ==
               build_error_response(response, out, 10, &length));
    CHECK_TRUE(length > 10);
}

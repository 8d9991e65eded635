// SPDX-License-Identifier: MIT
#include <CppUTest/TestHarness.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "tether/net/ws_deflate.h"
#include "tether/net/ws_handshake.h"

using tether::net::DeflateAgreement;
using tether::net::DeflateOffer;
using tether::net::HandshakeStatus;
using tether::net::parse_deflate_answer;
using tether::net::UpgradeRequest;
using tether::net::UpgradeResponseParser;
using tether::net::write_deflate_offer;

namespace {

const char kKey[] = "dGhlIHNhbXBsZSBub25jZQ==";
const char kAccept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

std::string offer_text(const DeflateOffer& offer) {
    char out[tether::net::kMaxDeflateOfferLength + 1];
    const std::size_t n = write_deflate_offer(offer, out, sizeof out);
    return std::string(out, n);
}

bool answer(const char* text, const DeflateOffer& offer, DeflateAgreement* agreement) {
    return parse_deflate_answer(text, std::strlen(text), offer, agreement);
}

bool accepts(const char* text, const DeflateOffer& offer = DeflateOffer{}) {
    DeflateAgreement agreement;
    const bool ok = answer(text, offer, &agreement);
    CHECK_EQUAL(ok, agreement.active);
    return ok;
}

std::string response(const std::string& headers) {
    return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Accept: " +
           std::string(kAccept) + "\r\n" + headers + "\r\n";
}

HandshakeStatus parse_response(const std::string& bytes, const DeflateOffer* offer,
                               DeflateAgreement* agreement, std::size_t chunk = 0) {
    static UpgradeResponseParser parser(kAccept, nullptr, 0, false);
    parser.reset(kAccept, nullptr, 0, false);
    parser.set_deflate_offer(offer);
    const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
    const std::size_t step = chunk == 0 ? bytes.size() : chunk;
    HandshakeStatus status = HandshakeStatus::kNeedMore;
    for (std::size_t at = 0; at < bytes.size() && status == HandshakeStatus::kNeedMore;
         at += step) {
        std::size_t used = 0;
        const std::size_t n = bytes.size() - at < step ? bytes.size() - at : step;
        status = parser.feed(data + at, n, &used);
    }
    *agreement = parser.deflate();
    return status;
}

#define CHECK_STATUS(expected, actual) \
    STRCMP_EQUAL(tether::net::to_string(expected), tether::net::to_string(actual))

}  // namespace

TEST_GROUP(DeflateOffer){};

TEST(DeflateOffer, DefaultOfferSignalsClientWindowSupport) {
    STRCMP_EQUAL("permessage-deflate; client_max_window_bits", offer_text(DeflateOffer{}).c_str());
}

TEST(DeflateOffer, EveryParameterWritten) {
    DeflateOffer offer;
    offer.server_no_context_takeover = true;
    offer.client_no_context_takeover = true;
    offer.server_max_window_bits = 10;
    offer.client_max_window_bits = 9;
    STRCMP_EQUAL(
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=10; client_max_window_bits=9",
        offer_text(offer).c_str());
}

TEST(DeflateOffer, WindowBitsOutOfRangeRejected) {
    DeflateOffer offer;
    offer.client_max_window_bits = 8;  // zlib cannot compress with 8
    CHECK_FALSE(tether::net::valid_deflate_offer(offer));
    STRCMP_EQUAL("", offer_text(offer).c_str());
    offer.client_max_window_bits = 16;
    CHECK_FALSE(tether::net::valid_deflate_offer(offer));
    offer.client_max_window_bits = 15;
    offer.server_max_window_bits = 8;
    CHECK_FALSE(tether::net::valid_deflate_offer(offer));
}

TEST(DeflateOffer, TooSmallBufferGivesZero) {
    char out[10];
    UNSIGNED_LONGS_EQUAL(0, write_deflate_offer(DeflateOffer{}, out, sizeof out));
}

TEST(DeflateOffer, UpgradeRequestCarriesTheOffer) {
    DeflateOffer offer;
    offer.client_no_context_takeover = true;
    UpgradeRequest request;
    request.host = "example.com";
    request.key = kKey;
    request.deflate = &offer;
    char out[512];
    std::size_t length = 0;
    CHECK_STATUS(HandshakeStatus::kOk, build_upgrade_request(request, out, sizeof out, &length));
    const std::string text(out, length);
    CHECK(text.find("Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; "
                    "client_max_window_bits\r\n") != std::string::npos);
}

TEST(DeflateOffer, UpgradeRequestRejectsAnInvalidOffer) {
    DeflateOffer offer;
    offer.server_max_window_bits = 3;
    UpgradeRequest request;
    request.host = "example.com";
    request.key = kKey;
    request.deflate = &offer;
    char out[512];
    std::size_t length = 0;
    CHECK_STATUS(HandshakeStatus::kInvalidArgument,
                 build_upgrade_request(request, out, sizeof out, &length));
}

TEST(DeflateOffer, NoOfferNoHeader) {
    UpgradeRequest request;
    request.host = "example.com";
    request.key = kKey;
    char out[512];
    std::size_t length = 0;
    CHECK_STATUS(HandshakeStatus::kOk, build_upgrade_request(request, out, sizeof out, &length));
    CHECK(std::string(out, length).find("Extensions") == std::string::npos);
}

TEST_GROUP(DeflateAnswer){};

TEST(DeflateAnswer, PlainAcceptanceGivesDefaults) {
    DeflateAgreement agreement;
    CHECK_TRUE(answer("permessage-deflate", DeflateOffer{}, &agreement));
    CHECK_TRUE(agreement.active);
    CHECK_FALSE(agreement.server_no_context_takeover);
    CHECK_FALSE(agreement.client_no_context_takeover);
    UNSIGNED_LONGS_EQUAL(15, agreement.server_max_window_bits);
    UNSIGNED_LONGS_EQUAL(15, agreement.client_max_window_bits);
}

TEST(DeflateAnswer, EveryParameterRead) {
    DeflateOffer offer;
    offer.server_max_window_bits = 12;
    DeflateAgreement agreement;
    CHECK_TRUE(
        answer("PerMessage-Deflate ; server_no_context_takeover;client_no_context_takeover;"
               " server_max_window_bits=10; client_max_window_bits = \"11\"",
               offer, &agreement));
    CHECK_TRUE(agreement.server_no_context_takeover);
    CHECK_TRUE(agreement.client_no_context_takeover);
    UNSIGNED_LONGS_EQUAL(10, agreement.server_max_window_bits);
    UNSIGNED_LONGS_EQUAL(11, agreement.client_max_window_bits);
}

TEST(DeflateAnswer, ServerWindowEightIsAcceptedForTheInflater) {
    DeflateAgreement agreement;
    CHECK_TRUE(answer("permessage-deflate; server_max_window_bits=8", DeflateOffer{}, &agreement));
    UNSIGNED_LONGS_EQUAL(8, agreement.server_max_window_bits);
}

TEST(DeflateAnswer, ClientWindowEightFails) {
    CHECK_FALSE(accepts("permessage-deflate; client_max_window_bits=8"));
}

TEST(DeflateAnswer, ClientWindowAboveOurOfferFails) {
    DeflateOffer offer;
    offer.client_max_window_bits = 10;
    CHECK_FALSE(accepts("permessage-deflate; client_max_window_bits=11", offer));
    CHECK_TRUE(accepts("permessage-deflate; client_max_window_bits=10", offer));
    DeflateAgreement agreement;
    CHECK_TRUE(answer("permessage-deflate", offer, &agreement));
    UNSIGNED_LONGS_EQUAL(10, agreement.client_max_window_bits);  // our own choice stands
}

TEST(DeflateAnswer, ServerWindowAboveOurOfferFails) {
    DeflateOffer offer;
    offer.server_max_window_bits = 10;
    CHECK_FALSE(accepts("permessage-deflate; server_max_window_bits=11", offer));
    CHECK_TRUE(accepts("permessage-deflate; server_max_window_bits=9", offer));
}

TEST(DeflateAnswer, AskedServerWindowMissingFails) {
    DeflateOffer offer;
    offer.server_max_window_bits = 10;
    CHECK_FALSE(accepts("permessage-deflate", offer));
}

TEST(DeflateAnswer, AskedServerNoContextTakeoverMissingFails) {
    DeflateOffer offer;
    offer.server_no_context_takeover = true;
    CHECK_FALSE(accepts("permessage-deflate", offer));
    CHECK_TRUE(accepts("permessage-deflate; server_no_context_takeover", offer));
}

TEST(DeflateAnswer, OurClientNoContextTakeoverPromiseStands) {
    DeflateOffer offer;
    offer.client_no_context_takeover = true;
    DeflateAgreement agreement;
    CHECK_TRUE(answer("permessage-deflate", offer, &agreement));
    CHECK_TRUE(agreement.client_no_context_takeover);
}

TEST(DeflateAnswer, WindowValuesMustBeWellFormed) {
    CHECK_FALSE(accepts("permessage-deflate; server_max_window_bits"));
    CHECK_FALSE(accepts("permessage-deflate; server_max_window_bits="));
    CHECK_FALSE(accepts("permessage-deflate; server_max_window_bits=7"));
    CHECK_FALSE(accepts("permessage-deflate; server_max_window_bits=16"));
    CHECK_FALSE(accepts("permessage-deflate; server_max_window_bits=010"));
    CHECK_FALSE(accepts("permessage-deflate; server_max_window_bits=1a"));
    CHECK_FALSE(accepts("permessage-deflate; server_max_window_bits=\"12"));
    CHECK_FALSE(accepts("permessage-deflate; client_max_window_bits"));
}

TEST(DeflateAnswer, NoContextTakeoverTakesNoValue) {
    CHECK_FALSE(accepts("permessage-deflate; server_no_context_takeover=1"));
    CHECK_FALSE(accepts("permessage-deflate; client_no_context_takeover="));
}

TEST(DeflateAnswer, DuplicateParametersFail) {
    CHECK_FALSE(
        accepts("permessage-deflate; server_no_context_takeover; server_no_context_takeover"));
    CHECK_FALSE(
        accepts("permessage-deflate; client_no_context_takeover; client_no_context_takeover"));
    CHECK_FALSE(
        accepts("permessage-deflate; server_max_window_bits=10; server_max_window_bits=10"));
    CHECK_FALSE(
        accepts("permessage-deflate; client_max_window_bits=10; client_max_window_bits=10"));
}

TEST(DeflateAnswer, UnknownParameterFails) {
    CHECK_FALSE(accepts("permessage-deflate; mem_level=8"));
    CHECK_FALSE(accepts("permessage-deflate; "));
    CHECK_FALSE(accepts("permessage-deflate;; server_no_context_takeover"));
}

TEST(DeflateAnswer, OtherOrSeveralExtensionsFail) {
    CHECK_FALSE(accepts("x-webkit-deflate-frame"));
    CHECK_FALSE(accepts("permessage-deflate, permessage-deflate"));
    CHECK_FALSE(accepts("permessage-deflate; server_no_context_takeover, x-foo"));
    CHECK_FALSE(accepts(""));
}

TEST_GROUP(DeflateHandshake){};

TEST(DeflateHandshake, AnswerWithoutOfferIsUnexpected) {
    DeflateAgreement agreement;
    CHECK_STATUS(HandshakeStatus::kUnexpectedExtension,
                 parse_response(response("Sec-WebSocket-Extensions: permessage-deflate\r\n"),
                                nullptr, &agreement));
    CHECK_FALSE(agreement.active);
}

TEST(DeflateHandshake, AcceptedOfferGivesTheAgreement) {
    DeflateOffer offer;
    offer.server_max_window_bits = 12;
    for (std::size_t chunk : {0u, 1u, 5u}) {
        DeflateAgreement agreement;
        CHECK_STATUS(HandshakeStatus::kOk,
                     parse_response(response("sec-websocket-extensions:  permessage-deflate; "
                                             "server_max_window_bits=12; "
                                             "client_max_window_bits=13 \r\n"),
                                    &offer, &agreement, chunk));
        CHECK_TRUE(agreement.active);
        UNSIGNED_LONGS_EQUAL(12, agreement.server_max_window_bits);
        UNSIGNED_LONGS_EQUAL(13, agreement.client_max_window_bits);
    }
}

TEST(DeflateHandshake, DeclinedOfferIsPlainWebSocket) {
    DeflateOffer offer;
    DeflateAgreement agreement;
    CHECK_STATUS(HandshakeStatus::kOk, parse_response(response(""), &offer, &agreement));
    CHECK_FALSE(agreement.active);
}

TEST(DeflateHandshake, InvalidAnswerFailsTheHandshake) {
    DeflateOffer offer;
    DeflateAgreement agreement;
    CHECK_STATUS(HandshakeStatus::kUnexpectedExtension,
                 parse_response(response("Sec-WebSocket-Extensions: permessage-deflate; "
                                         "client_max_window_bits=8\r\n"),
                                &offer, &agreement));
    CHECK_FALSE(agreement.active);
}

TEST(DeflateHandshake, TwoExtensionHeadersFail) {
    DeflateOffer offer;
    DeflateAgreement agreement;
    CHECK_STATUS(HandshakeStatus::kUnexpectedExtension,
                 parse_response(response("Sec-WebSocket-Extensions: permessage-deflate\r\n"
                                         "Sec-WebSocket-Extensions: permessage-deflate\r\n"),
                                &offer, &agreement));
}

TEST(DeflateHandshake, ResetClearsTheAgreementButKeepsTheOffer) {
    DeflateOffer offer;
    DeflateAgreement agreement;
    CHECK_STATUS(HandshakeStatus::kOk,
                 parse_response(response("Sec-WebSocket-Extensions: permessage-deflate\r\n"),
                                &offer, &agreement));
    CHECK_TRUE(agreement.active);
    UpgradeResponseParser parser(kAccept, nullptr, 0, false);
    parser.set_deflate_offer(&offer);
    parser.reset(kAccept, nullptr, 0, false);
    const std::string bytes = response("Sec-WebSocket-Extensions: permessage-deflate\r\n");
    std::size_t used = 0;
    CHECK_STATUS(
        HandshakeStatus::kOk,
        parser.feed(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), &used));
    CHECK_TRUE(parser.deflate().active);
    parser.reset(kAccept, nullptr, 0, false);
    CHECK_FALSE(parser.deflate().active);
}

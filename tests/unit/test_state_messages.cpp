// SPDX-License-Identifier: MIT
#include <cstdint>
#include <cstring>
#include <string>

// CppUTest redefines operator new: it comes after the standard headers.
#include <CppUTest/TestHarness.h>

#include "tether/net/state_messages.h"

using namespace tether::net::v1;

namespace {

const char kId[] = "0123456789abcdef";

struct Parsed {
    V1Status status;
    StateMessage message;
    std::string document;
};

Parsed parse(const std::string& text) {
    Parsed out{};
    char document[kMaxStateDocument];
    out.status = parse_state_message(reinterpret_cast<const std::uint8_t*>(text.data()),
                                     text.size(), &out.message, document, sizeof document);
    if (out.status == V1Status::kOk) {
        out.document.assign(document, out.message.document_size);
    }
    return out;
}

std::string text_of(char* out, std::size_t length) {
    return std::string(out, length);
}

std::string big_document(std::size_t size) {
    // {"k":"xxxx..."} of exactly `size` bytes
    return "{\"k\":\"" + std::string(size - 8, 'x') + "\"}";
}

}  // namespace

TEST_GROUP(StateMessages){};

TEST(StateMessages, DesiredRoundTripsAsIncrementAndSnapshot) {
    char out[kMaxStateMessage];
    std::size_t length = 0;
    const std::string patch = "{\"rate\":10,\"old\":null}";
    CHECK(write_desired(7, false, patch.data(), patch.size(), out, sizeof out, &length) ==
          V1Status::kOk);
    Parsed parsed = parse(text_of(out, length));
    CHECK(parsed.status == V1Status::kOk);
    CHECK(parsed.message.type == StateType::kDesired);
    CHECK_EQUAL(7u, parsed.message.version);
    CHECK_FALSE(parsed.message.whole);
    STRCMP_EQUAL(patch.c_str(), parsed.document.c_str());

    CHECK(write_desired(8, true, "{}", 2, out, sizeof out, &length) == V1Status::kOk);
    parsed = parse(text_of(out, length));
    CHECK(parsed.status == V1Status::kOk);
    CHECK(parsed.message.whole);
    STRCMP_EQUAL("{}", parsed.document.c_str());
}

TEST(StateMessages, ReportAndAnswersRoundTrip) {
    char out[kMaxStateMessage];
    std::size_t length = 0;
    CHECK(write_report(kId, 3, false, "{\"t\":21.5}", 10, out, sizeof out, &length) ==
          V1Status::kOk);
    Parsed parsed = parse(text_of(out, length));
    CHECK(parsed.status == V1Status::kOk);
    CHECK(parsed.message.type == StateType::kReport);
    STRCMP_EQUAL(kId, parsed.message.id);
    CHECK_EQUAL(3u, parsed.message.base);
    STRCMP_EQUAL("{\"t\":21.5}", parsed.document.c_str());

    CHECK(write_report_ok(kId, 4, out, sizeof out, &length) == V1Status::kOk);
    parsed = parse(text_of(out, length));
    CHECK(parsed.status == V1Status::kOk);
    CHECK(parsed.message.type == StateType::kReportOk);
    CHECK_EQUAL(4u, parsed.message.version);

    CHECK(write_report_refused(kId, kRefusedStale, 9, "{\"t\":1}", 7, out, sizeof out, &length) ==
          V1Status::kOk);
    parsed = parse(text_of(out, length));
    CHECK(parsed.status == V1Status::kOk);
    CHECK(parsed.message.type == StateType::kReportRefused);
    STRCMP_EQUAL("stale", parsed.message.reason);
    CHECK_EQUAL(9u, parsed.message.version);
    CHECK(parsed.message.whole);
    STRCMP_EQUAL("{\"t\":1}", parsed.document.c_str());

    CHECK(write_report_refused(kId, kRefusedTooLarge, 0, nullptr, 0, out, sizeof out, &length) ==
          V1Status::kOk);
    parsed = parse(text_of(out, length));
    CHECK(parsed.status == V1Status::kOk);
    CHECK_FALSE(parsed.message.whole);
    CHECK_EQUAL(0u, parsed.message.document_size);

    CHECK(write_applied(12, out, sizeof out, &length) == V1Status::kOk);
    parsed = parse(text_of(out, length));
    CHECK(parsed.status == V1Status::kOk);
    CHECK(parsed.message.type == StateType::kApplied);
    CHECK_EQUAL(12u, parsed.message.version);
}

TEST(StateMessages, OtherTypesAreLeftToTheControlParser) {
    CHECK(parse("{\"type\":\"gap\",\"first\":1,\"last\":2}").status == V1Status::kUnknownType);
    CHECK(parse("{\"type\":7}").status == V1Status::kUnknownType);
    CHECK(parse("{}").status == V1Status::kUnknownType);
    CHECK(parse("[1]").status == V1Status::kNotJson);
    CHECK(parse("{\"type\":\"applied\",\"version\":1} {}").status == V1Status::kNotJson);
}

TEST(StateMessages, RefusesWhatItDoesNotUnderstand) {
    // both, neither, snapshot disagreeing, not an object, version 0, a fraction
    CHECK(parse("{\"type\":\"desired\",\"version\":1,\"snapshot\":true,\"state\":{},\"patch\":{}}")
              .status == V1Status::kBadField);
    CHECK(parse("{\"type\":\"desired\",\"version\":1,\"snapshot\":true}").status ==
          V1Status::kMissingField);
    CHECK(parse("{\"type\":\"desired\",\"version\":1,\"snapshot\":true,\"patch\":{}}").status ==
          V1Status::kBadField);
    CHECK(parse("{\"type\":\"desired\",\"version\":1,\"snapshot\":false,\"patch\":[1]}").status ==
          V1Status::kBadField);
    CHECK(parse("{\"type\":\"desired\",\"version\":0,\"snapshot\":false,\"patch\":{}}").status ==
          V1Status::kBadField);
    CHECK(parse("{\"type\":\"applied\",\"version\":1.5}").status == V1Status::kBadField);
    CHECK(parse("{\"type\":\"applied\",\"version\":9007199254740992}").status ==
          V1Status::kBadField);
    // ids: length, case, type
    CHECK(parse("{\"type\":\"report_ok\",\"id\":\"0123456789ABCDEF\",\"version\":1}").status ==
          V1Status::kBadField);
    CHECK(parse("{\"type\":\"report_ok\",\"id\":\"0123\",\"version\":1}").status ==
          V1Status::kBadField);
    CHECK(parse("{\"type\":\"report_ok\",\"id\":1,\"version\":1}").status == V1Status::kBadField);
    // a duplicate key inside the document
    CHECK(parse("{\"type\":\"report\",\"id\":\"0123456789abcdef\",\"base\":0,"
                "\"patch\":{\"a\":1,\"a\":2}}")
              .status == V1Status::kBadField);
}

TEST(StateMessages, TheDocumentBoundIsExact) {
    const std::string fits = big_document(kMaxStateDocument);
    CHECK_EQUAL(kMaxStateDocument, fits.size());
    std::string message =
        "{\"type\":\"report\",\"id\":\"0123456789abcdef\",\"base\":0,\"state\":" + fits + "}";
    Parsed parsed = parse(message);
    CHECK(parsed.status == V1Status::kOk);
    CHECK_EQUAL(kMaxStateDocument, parsed.document.size());

    const std::string over = big_document(kMaxStateDocument + 1);
    message = "{\"type\":\"report\",\"id\":\"0123456789abcdef\",\"base\":0,\"state\":" + over + "}";
    CHECK(parse(message).status == V1Status::kBadField);

    char out[kMaxStateMessage];
    std::size_t length = 0;
    CHECK(write_desired(1, true, fits.data(), fits.size(), out, sizeof out, &length) ==
          V1Status::kOk);
    CHECK(write_desired(1, true, over.data(), over.size(), out, sizeof out, &length) ==
          V1Status::kInvalidArgument);
    CHECK(write_desired(1, true, fits.data(), fits.size(), out, 100, &length) ==
          V1Status::kBufferTooSmall);
}

TEST(StateMessages, WritersRefuseArgumentsOutOfRange) {
    char out[256];
    std::size_t length = 0;
    CHECK(write_desired(0, false, "{}", 2, out, sizeof out, &length) == V1Status::kInvalidArgument);
    CHECK(write_desired(1, false, "[]", 2, out, sizeof out, &length) == V1Status::kInvalidArgument);
    CHECK(write_report("xyz", 0, false, "{}", 2, out, sizeof out, &length) ==
          V1Status::kInvalidArgument);
    CHECK(write_report_ok(kId, 0, out, sizeof out, &length) == V1Status::kInvalidArgument);
    CHECK(write_report_refused(kId, "bad\"reason", 1, nullptr, 0, out, sizeof out, &length) ==
          V1Status::kInvalidArgument);
    CHECK(write_applied(0, out, sizeof out, &length) == V1Status::kInvalidArgument);
}

TEST(StateMessages, HelloCarriesTheAppliedDesiredVersionWithTheFeature) {
    Hello hello;
    std::memcpy(hello.session, "0a6c2f4e-9b1d-5e3a-8c7f-1234567890ab", 36);
    hello.version = 1;
    std::memcpy(hello.device, "pi", 2);
    hello.features = kFeatureState | kFeatureAge;
    hello.desired_version = 42;
    char out[kMaxControlSize];
    std::size_t length = 0;
    CHECK(write_hello(hello, out, sizeof out, &length) == V1Status::kOk);
    const std::string text(out, length);
    STRCMP_CONTAINS("\"features\":[\"age\",\"state\"]", text.c_str());
    STRCMP_CONTAINS("\"desired_version\":42", text.c_str());
    Control control{};
    CHECK(parse_control(reinterpret_cast<const std::uint8_t*>(out), length, &control) ==
          V1Status::kOk);
    CHECK_EQUAL(kFeatureState | kFeatureAge, control.hello.features);
    CHECK_EQUAL(42u, control.hello.desired_version);

    hello.features = kFeatureAge;
    CHECK(write_hello(hello, out, sizeof out, &length) == V1Status::kOk);
    CHECK(std::string(out, length).find("desired_version") == std::string::npos);
}

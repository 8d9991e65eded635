// SPDX-License-Identifier: MIT
#include <cjson/cJSON.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <utility>
#include <vector>

// CppUTest redefines operator new: it comes after the standard headers.
#include <CppUTest/TestHarness.h>

#include "support/alloc_counter.h"
#include "support/tether_strings.h"
#include "tether/net/tether_v1.h"

using namespace tether::net::v1;

namespace {

using Bytes = std::vector<std::uint8_t>;

const char kSession[] = "0a6c2f4e-9b1d-5e3a-8c7f-1234567890ab";

// --- Binary helpers -----------------------------------------------------------

Bytes data_header(std::uint64_t seq) {
    Bytes out(kHeaderSize);
    write_data_header(seq, out.data());
    return out;
}

Bytes ack(std::uint64_t seq) {
    Bytes out(kHeaderSize);
    write_ack(seq, out.data());
    return out;
}

// --- Control helpers ----------------------------------------------------------

// Copies the text into a buffer of exactly its size (no terminator), so a
// parser reading past the end shows up under valgrind or ASan.
V1Status parse(const std::string& text, Control* out) {
    std::uint8_t* buffer = static_cast<std::uint8_t*>(std::malloc(text.size() + 1));
    std::memcpy(buffer, text.data(), text.size());
    const V1Status status = parse_control(buffer, text.size(), out);
    std::free(buffer);
    return status;
}

V1Status parse_status(const std::string& text) {
    Control control{};
    return parse(text, &control);
}

// A JSON object from (name, raw JSON value) pairs, in order.
using Fields = std::vector<std::pair<std::string, std::string>>;

std::string object_of(const Fields& fields) {
    std::string out = "{";
    for (const auto& field : fields) {
        if (out.size() > 1) {
            out += ",";
        }
        out += "\"" + field.first + "\":" + field.second;
    }
    return out + "}";
}

Fields without(const Fields& fields, const std::string& name) {
    Fields out;
    for (const auto& field : fields) {
        if (field.first != name) {
            out.push_back(field);
        }
    }
    return out;
}

Fields with(const Fields& fields, const std::string& name, const std::string& value) {
    Fields out = fields;
    for (auto& field : out) {
        if (field.first == name) {
            field.second = value;
        }
    }
    return out;
}

std::string quoted(const std::string& text) {
    return "\"" + text + "\"";
}

const Fields kHelloFields = {
    {"type", "\"hello\""},   {"session", quoted(kSession)}, {"version", "3"},
    {"device", "\"pi-17\""}, {"last_downlink", "40"},       {"oldest_uplink", "118"},
    {"next_uplink", "121"},
};
const Fields kWelcomeFields = {
    {"type", "\"welcome\""}, {"session", quoted(kSession)}, {"resumed", "true"},
    {"last_uplink", "117"},  {"ack_every", "64"},           {"ack_interval_ms", "200"},
};
const Fields kGapFields = {
    {"type", "\"gap\""},
    {"first", "121"},
    {"last", "130"},
    {"reason", "\"overflow\""},
};
const Fields kErrorFields = {
    {"type", "\"error\""},
    {"code", "4002"},
    {"message", "\"unexpected hello\""},
};

const std::vector<std::string> kSeqFields[] = {
    {"last_downlink", "oldest_uplink", "next_uplink"},
    {"last_uplink"},
    {"first", "last"},
};

// Writers' output as a string (the writers do not NUL-terminate).
template <typename Message, typename Writer>
std::string written(const Message& message, Writer writer) {
    char out[kMaxControlSize];
    std::size_t length = 0;
    CHECK_EQUAL(V1Status::kOk, writer(message, out, sizeof out, &length));
    return std::string(out, length);
}

template <typename Message, typename Writer>
V1Status write_status(const Message& message, Writer writer) {
    char out[kMaxControlSize];
    std::size_t length = 0;
    return writer(message, out, sizeof out, &length);
}

Hello example_hello() {
    Hello hello;
    std::strcpy(hello.session, kSession);
    hello.version = 3;
    std::strcpy(hello.device, "pi-17");
    hello.last_downlink = 40;
    hello.oldest_uplink = 118;
    hello.next_uplink = 121;
    return hello;
}

Welcome example_welcome() {
    Welcome welcome;
    std::strcpy(welcome.session, kSession);
    welcome.resumed = true;
    welcome.last_uplink = 117;
    return welcome;
}

Gap example_gap() {
    Gap gap;
    gap.first = 121;
    gap.last = 130;
    std::strcpy(gap.reason, "overflow");
    return gap;
}

Error example_error() {
    Error error;
    error.code = 4002;
    std::strcpy(error.message, "unexpected hello");
    return error;
}

// A fixed-seed generator for the randomized tests (xorshift64*).
class Random {
  public:
    explicit Random(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next() {
        state_ ^= state_ >> 12;
        state_ ^= state_ << 25;
        state_ ^= state_ >> 27;
        return state_ * 0x2545F4914F6CDD1Dull;
    }
    std::size_t below(std::size_t bound) { return static_cast<std::size_t>(next() % bound); }

  private:
    std::uint64_t state_;
};

}  // namespace

// =============================================================================

TEST_GROUP(TetherV1Binary){};

TEST(TetherV1Binary, DataHeaderForSeqOneIsExactBytes) {
    const Bytes expected = {0x44, 0x00, 0, 0, 0, 0, 0, 0, 0, 0x01};
    CHECK(expected == data_header(1));
}

TEST(TetherV1Binary, AckForLargeSeqIsBigEndian) {
    const std::uint64_t seq = (std::uint64_t{1} << 40) + 5;
    const Bytes expected = {0x41, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x05};
    CHECK(expected == ack(seq));
    const Bytes expected_data = {0x44, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x05};
    CHECK(expected_data == data_header(seq));
}

TEST(TetherV1Binary, MaximumSeqIsAllOnes) {
    const Bytes expected = {0x41, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    CHECK(expected == ack(UINT64_MAX));
    BinaryMessage message{};
    CHECK_EQUAL(V1Status::kOk, decode_binary(expected.data(), expected.size(), &message));
    CHECK(message.seq == UINT64_MAX);
}

TEST(TetherV1Binary, SeqBytesPlacedMostSignificantFirst) {
    const Bytes expected = {0x44, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
    CHECK(expected == data_header(0x0102030405060708ull));
}

TEST(TetherV1Binary, DecodesDataWithPayloadPointingIntoInput) {
    Bytes wire = data_header(42);
    wire.push_back('h');
    wire.push_back('i');
    BinaryMessage message{};
    CHECK_EQUAL(V1Status::kOk, decode_binary(wire.data(), wire.size(), &message));
    CHECK(message.kind == Kind::kData);
    CHECK(message.seq == 42);
    POINTERS_EQUAL(wire.data() + kHeaderSize, message.payload);
    UNSIGNED_LONGS_EQUAL(2, message.payload_size);
}

TEST(TetherV1Binary, DecodesDataWithEmptyPayload) {
    const Bytes wire = data_header(7);
    BinaryMessage message{};
    CHECK_EQUAL(V1Status::kOk, decode_binary(wire.data(), wire.size(), &message));
    CHECK(message.kind == Kind::kData);
    CHECK(message.seq == 7);
    UNSIGNED_LONGS_EQUAL(0, message.payload_size);
}

TEST(TetherV1Binary, DecodesAckWithoutPayload) {
    const Bytes wire = ack(120);
    BinaryMessage message{};
    message.payload = wire.data();
    message.payload_size = 99;
    CHECK_EQUAL(V1Status::kOk, decode_binary(wire.data(), wire.size(), &message));
    CHECK(message.kind == Kind::kAck);
    CHECK(message.seq == 120);
    POINTERS_EQUAL(nullptr, message.payload);
    UNSIGNED_LONGS_EQUAL(0, message.payload_size);
}

TEST(TetherV1Binary, EveryMessageShorterThanHeaderIsTooShort) {
    for (const Bytes& full : {data_header(1), ack(1)}) {
        for (std::size_t size = 0; size < kHeaderSize; ++size) {
            BinaryMessage message{};
            CHECK_EQUAL(V1Status::kTooShort, decode_binary(full.data(), size, &message));
        }
    }
}

TEST(TetherV1Binary, AckLongerThanTenBytesIsTooShort) {
    Bytes wire = ack(5);
    wire.push_back(0);
    BinaryMessage message{};
    CHECK_EQUAL(V1Status::kTooShort, decode_binary(wire.data(), wire.size(), &message));
}

TEST(TetherV1Binary, UnknownKindRejected) {
    const std::uint8_t kinds[] = {0x00, 0x64 /* 'd' */, 0x61 /* 'a' */, 0x45, 0xFF};
    for (const std::uint8_t kind : kinds) {
        Bytes wire = data_header(1);
        wire[0] = kind;
        BinaryMessage message{};
        CHECK_EQUAL(V1Status::kUnknownKind, decode_binary(wire.data(), wire.size(), &message));
    }
}

TEST(TetherV1Binary, AnyFlagBitRejected) {
    for (int bit = 0; bit < 8; ++bit) {
        for (Bytes wire : {data_header(1), ack(1)}) {
            wire[1] = static_cast<std::uint8_t>(1u << bit);
            BinaryMessage message{};
            CHECK_EQUAL(V1Status::kBadFlags, decode_binary(wire.data(), wire.size(), &message));
        }
    }
}

TEST(TetherV1Binary, RandomSeqsRoundTrip) {
    Random random(0x7E7E7E7Eull);
    for (int i = 0; i < 2000; ++i) {
        const std::uint64_t seq = random.next() >> random.below(64);
        BinaryMessage message{};
        const Bytes data = data_header(seq);
        CHECK_EQUAL(V1Status::kOk, decode_binary(data.data(), data.size(), &message));
        CHECK(message.kind == Kind::kData && message.seq == seq);
        const Bytes acknowledgement = ack(seq);
        CHECK_EQUAL(V1Status::kOk,
                    decode_binary(acknowledgement.data(), acknowledgement.size(), &message));
        CHECK(message.kind == Kind::kAck && message.seq == seq);
    }
}

TEST(TetherV1Binary, BinaryCodecNeverAllocates) {
    std::uint8_t wire[kHeaderSize + 4] = {};
    tether::test::AllocationCounter counter;
    write_data_header(9, wire);
    BinaryMessage message{};
    CHECK_EQUAL(V1Status::kOk, decode_binary(wire, sizeof wire, &message));
    write_ack(9, wire);
    CHECK_EQUAL(V1Status::kOk, decode_binary(wire, kHeaderSize, &message));
    UNSIGNED_LONGS_EQUAL(0, counter.count());
}

TEST(TetherV1Binary, StatusNamesAreDistinct) {
    const V1Status all[] = {
        V1Status::kOk,          V1Status::kBufferTooSmall,
        V1Status::kTooShort,    V1Status::kUnknownKind,
        V1Status::kBadFlags,    V1Status::kNotJson,
        V1Status::kUnknownType, V1Status::kMissingField,
        V1Status::kBadField,    V1Status::kInvalidArgument,
    };
    std::set<std::string> names;
    for (const V1Status status : all) {
        names.insert(to_string(status));
    }
    UNSIGNED_LONGS_EQUAL(sizeof all / sizeof all[0], names.size());
    STRCMP_EQUAL("bad_field", to_string(V1Status::kBadField));
    STRCMP_EQUAL("unknown", to_string(static_cast<V1Status>(99)));
}

// =============================================================================
// The "age" extension (PROTOCOL.md 3.6): DATA flag 0x01 and a 4-byte age.

namespace {

Bytes aged_header(std::uint64_t seq, std::uint32_t age_ms) {
    Bytes out(kAgedDataHeaderSize);
    write_aged_data_header(seq, age_ms, out.data());
    return out;
}

}  // namespace

TEST_GROUP(TetherV1Age){};

TEST(TetherV1Age, AgedDataHeaderIsExactBytes) {
    const Bytes expected = {0x44, 0x01, 0x01, 0x02, 0x03, 0x04, 0x05,
                            0x06, 0x07, 0x08, 0x0A, 0x0B, 0x0C, 0x0D};
    CHECK(expected == aged_header(0x0102030405060708ull, 0x0A0B0C0Du));
}

TEST(TetherV1Age, AgeAboveTheCapIsWrittenAsTheCap) {
    const Bytes capped = aged_header(1, kMaxAgeMs);
    CHECK(capped == aged_header(1, kMaxAgeMs + 1));
    CHECK(capped == aged_header(1, UINT32_MAX));
    const Bytes expected = {0x44, 0x01, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x7F, 0xFF, 0xFF, 0xFF};
    CHECK(expected == capped);
}

TEST(TetherV1Age, DecodesAgeAndPayloadWhereNegotiated) {
    Bytes wire = aged_header(42, 1500);
    wire.push_back('h');
    wire.push_back('i');
    BinaryMessage message{};
    CHECK_EQUAL(V1Status::kOk, decode_binary(wire.data(), wire.size(), &message, kFeatureAge));
    CHECK(message.kind == Kind::kData);
    CHECK(message.seq == 42);
    CHECK(message.has_age);
    UNSIGNED_LONGS_EQUAL(1500, message.age_ms);
    POINTERS_EQUAL(wire.data() + kAgedDataHeaderSize, message.payload);
    UNSIGNED_LONGS_EQUAL(2, message.payload_size);
}

TEST(TetherV1Age, AgedDataWithEmptyPayloadIsFourteenBytes) {
    const Bytes wire = aged_header(7, 0);
    UNSIGNED_LONGS_EQUAL(14, wire.size());
    BinaryMessage message{};
    CHECK_EQUAL(V1Status::kOk, decode_binary(wire.data(), wire.size(), &message, kFeatureAge));
    CHECK(message.has_age);
    UNSIGNED_LONGS_EQUAL(0, message.age_ms);
    UNSIGNED_LONGS_EQUAL(0, message.payload_size);
}

TEST(TetherV1Age, AgedDataShorterThanFourteenBytesIsTooShort) {
    const Bytes full = aged_header(1, 5);
    for (std::size_t size = kHeaderSize; size < kAgedDataHeaderSize; ++size) {
        BinaryMessage message{};
        CHECK_EQUAL(V1Status::kTooShort, decode_binary(full.data(), size, &message, kFeatureAge));
    }
}

TEST(TetherV1Age, PlainDataStillDecodesOnAnAgedConnection) {
    Bytes wire = data_header(9);
    wire.push_back('x');
    BinaryMessage message{};
    message.has_age = true;
    message.age_ms = 77;
    CHECK_EQUAL(V1Status::kOk, decode_binary(wire.data(), wire.size(), &message, kFeatureAge));
    CHECK_FALSE(message.has_age);
    UNSIGNED_LONGS_EQUAL(0, message.age_ms);
    POINTERS_EQUAL(wire.data() + kHeaderSize, message.payload);
    UNSIGNED_LONGS_EQUAL(1, message.payload_size);
}

TEST(TetherV1Age, TheAgeFlagIsRejectedWhereNotNegotiated) {
    // A receiver that did not negotiate "age" (and every downlink receiver)
    // rejects it like any reserved bit, whatever the length.
    const Bytes wire = aged_header(1, 5);
    BinaryMessage message{};
    CHECK_EQUAL(V1Status::kBadFlags, decode_binary(wire.data(), wire.size(), &message));
    CHECK_EQUAL(V1Status::kBadFlags, decode_binary(wire.data(), wire.size(), &message, 0));
    CHECK_EQUAL(V1Status::kBadFlags, decode_binary(wire.data(), kHeaderSize, &message));
}

TEST(TetherV1Age, OtherFlagBitsStayReservedOnAnAgedConnection) {
    for (int bit = 1; bit < 8; ++bit) {
        for (Bytes wire : {aged_header(1, 5), data_header(1)}) {
            wire[1] = static_cast<std::uint8_t>(wire[1] | (1u << bit));
            BinaryMessage message{};
            CHECK_EQUAL(V1Status::kBadFlags,
                        decode_binary(wire.data(), wire.size(), &message, kFeatureAge));
        }
    }
}

TEST(TetherV1Age, AnAckNeverCarriesAFlag) {
    Bytes wire = ack(3);
    wire[1] = kFlagAge;
    BinaryMessage message{};
    CHECK_EQUAL(V1Status::kBadFlags,
                decode_binary(wire.data(), wire.size(), &message, kFeatureAge));
    // An ACK stays exactly 10 bytes: four more are not an age.
    wire.resize(kAgedDataHeaderSize);
    CHECK_EQUAL(V1Status::kTooShort,
                decode_binary(wire.data(), wire.size(), &message, kFeatureAge));
}

TEST(TetherV1Age, RandomSeqsAndAgesRoundTrip) {
    Random random(0xA6EA6Eull);
    for (int i = 0; i < 2000; ++i) {
        const std::uint64_t seq = random.next() >> random.below(64);
        const auto age = static_cast<std::uint32_t>(random.next() >> (32 + random.below(32)));
        const Bytes wire = aged_header(seq, age);
        BinaryMessage message{};
        CHECK_EQUAL(V1Status::kOk, decode_binary(wire.data(), wire.size(), &message, kFeatureAge));
        CHECK(message.seq == seq && message.has_age);
        UNSIGNED_LONGS_EQUAL(age < kMaxAgeMs ? age : kMaxAgeMs, message.age_ms);
    }
}

TEST(TetherV1Age, AgedCodecNeverAllocates) {
    std::uint8_t wire[kAgedDataHeaderSize + 4] = {};
    tether::test::AllocationCounter counter;
    write_aged_data_header(9, 1234, wire);
    BinaryMessage message{};
    CHECK_EQUAL(V1Status::kOk, decode_binary(wire, sizeof wire, &message, kFeatureAge));
    UNSIGNED_LONGS_EQUAL(0, counter.count());
}

TEST(TetherV1Age, HelloAndWelcomeWriteFeaturesOnlyWhenAsked) {
    Hello hello = example_hello();
    const std::string plain = written(hello, write_hello);
    CHECK(plain.find("features") == std::string::npos);
    hello.features = kFeatureAge;
    const std::string aged = written(hello, write_hello);
    STRCMP_EQUAL((plain.substr(0, plain.size() - 1) + ",\"features\":[\"age\"]}").c_str(),
                 aged.c_str());
    Welcome welcome = example_welcome();
    const std::string plain_welcome = written(welcome, write_welcome);
    CHECK(plain_welcome.find("features") == std::string::npos);
    welcome.features = kFeatureAge;
    STRCMP_EQUAL(
        (plain_welcome.substr(0, plain_welcome.size() - 1) + ",\"features\":[\"age\"]}").c_str(),
        written(welcome, write_welcome).c_str());
}

TEST(TetherV1Age, FeaturesRoundTrip) {
    Hello hello = example_hello();
    hello.features = kFeatureAge;
    Control control{};
    CHECK_EQUAL(V1Status::kOk, parse(written(hello, write_hello), &control));
    CHECK(control.type == ControlType::kHello);
    UNSIGNED_LONGS_EQUAL(kFeatureAge, control.hello.features);
    Welcome welcome = example_welcome();
    welcome.features = kFeatureAge;
    CHECK_EQUAL(V1Status::kOk, parse(written(welcome, write_welcome), &control));
    CHECK(control.type == ControlType::kWelcome);
    UNSIGNED_LONGS_EQUAL(kFeatureAge, control.welcome.features);
}

TEST(TetherV1Age, AbsentOrEmptyFeaturesAreNone) {
    Control control{};
    control.hello.features = 99;
    CHECK_EQUAL(V1Status::kOk, parse(object_of(kHelloFields), &control));
    UNSIGNED_LONGS_EQUAL(0, control.hello.features);
    const Fields empty = {{"features", "[]"}};
    Fields fields = kWelcomeFields;
    fields.push_back(empty[0]);
    control.welcome.features = 99;
    CHECK_EQUAL(V1Status::kOk, parse(object_of(fields), &control));
    UNSIGNED_LONGS_EQUAL(0, control.welcome.features);
}

TEST(TetherV1Age, UnknownFeatureNamesAreIgnored) {
    Fields fields = kHelloFields;
    fields.push_back({"features", "[\"zstd\",\"age\",\"AGE\",\"\"]"});
    Control control{};
    CHECK_EQUAL(V1Status::kOk, parse(object_of(fields), &control));
    UNSIGNED_LONGS_EQUAL(kFeatureAge, control.hello.features);
    fields.back().second = "[\"later\"]";
    CHECK_EQUAL(V1Status::kOk, parse(object_of(fields), &control));
    UNSIGNED_LONGS_EQUAL(0, control.hello.features);
}

TEST(TetherV1Age, FeaturesThatAreNotAnArrayOfStringsAreBadField) {
    const char* const bad[] = {"\"age\"",     "1",   "true",           "null",
                               "{\"age\":1}", "[1]", "[\"age\",null]", "[[\"age\"]]"};
    for (const Fields& base : {kHelloFields, kWelcomeFields}) {
        for (const char* value : bad) {
            Fields fields = base;
            fields.push_back({"features", value});
            CHECK_EQUAL(V1Status::kBadField, parse_status(object_of(fields)));
        }
    }
}

TEST(TetherV1Age, WritersRejectUnknownFeatureBits) {
    Hello hello = example_hello();
    hello.features = 0x04;  // the first bit no feature uses
    CHECK_EQUAL(V1Status::kInvalidArgument, write_status(hello, write_hello));
    Welcome welcome = example_welcome();
    welcome.features = kFeatureAge | 0x80000000u;
    CHECK_EQUAL(V1Status::kInvalidArgument, write_status(welcome, write_welcome));
}

// =============================================================================

TEST_GROUP(TetherV1Control){};

TEST(TetherV1Control, ParsesProtocolExampleHello) {
    Control control{};
    CHECK_EQUAL(V1Status::kOk, parse(object_of(kHelloFields), &control));
    CHECK(control.type == ControlType::kHello);
    STRCMP_EQUAL(kSession, control.hello.session);
    UNSIGNED_LONGS_EQUAL(3, control.hello.version);
    STRCMP_EQUAL("pi-17", control.hello.device);
    CHECK(control.hello.last_downlink == 40);
    CHECK(control.hello.oldest_uplink == 118);
    CHECK(control.hello.next_uplink == 121);
}

TEST(TetherV1Control, ParsesWelcome) {
    Control control{};
    CHECK_EQUAL(V1Status::kOk,
                parse(object_of(with(kWelcomeFields, "resumed", "false")), &control));
    CHECK(control.type == ControlType::kWelcome);
    STRCMP_EQUAL(kSession, control.welcome.session);
    CHECK_FALSE(control.welcome.resumed);
    CHECK(control.welcome.last_uplink == 117);
    UNSIGNED_LONGS_EQUAL(64, control.welcome.ack_every);
    UNSIGNED_LONGS_EQUAL(200, control.welcome.ack_interval_ms);
}

TEST(TetherV1Control, ParsesGapWithAndWithoutReason) {
    Control control{};
    CHECK_EQUAL(V1Status::kOk, parse(object_of(kGapFields), &control));
    CHECK(control.type == ControlType::kGap);
    CHECK(control.gap.first == 121);
    CHECK(control.gap.last == 130);
    STRCMP_EQUAL("overflow", control.gap.reason);

    // A reason left over from an earlier parse must not survive.
    CHECK_EQUAL(V1Status::kOk, parse(object_of(without(kGapFields, "reason")), &control));
    STRCMP_EQUAL("", control.gap.reason);

    CHECK_EQUAL(V1Status::kOk, parse(object_of(with(kGapFields, "last", "121")), &control));
    CHECK(control.gap.last == 121);
}

TEST(TetherV1Control, ParsesError) {
    Control control{};
    CHECK_EQUAL(V1Status::kOk, parse(object_of(kErrorFields), &control));
    CHECK(control.type == ControlType::kError);
    UNSIGNED_LONGS_EQUAL(4002, control.error.code);
    STRCMP_EQUAL("unexpected hello", control.error.message);
}

TEST(TetherV1Control, WhitespaceFieldOrderAndUnknownFieldsAreAccepted) {
    const std::string text =
        " \r\n\t{ \"next_uplink\" : 121 , \"future\" : {\"x\":[1,2]}, \"last_downlink\":40,"
        "\"oldest_uplink\":118,\"device\":\"pi-17\",\"version\":3,\"session\":\"" +
        std::string(kSession) + "\",\"type\":\"hello\"}\n \t\r";
    Control control{};
    CHECK_EQUAL(V1Status::kOk, parse(text, &control));
    CHECK(control.type == ControlType::kHello);
    CHECK(control.hello.next_uplink == 121);
}

TEST(TetherV1Control, UppercaseSessionAccepted) {
    Control control{};
    const std::string upper = "0A6C2F4E-9B1D-5E3A-8C7F-1234567890AB";
    CHECK_EQUAL(V1Status::kOk,
                parse(object_of(with(kHelloFields, "session", quoted(upper))), &control));
    STRCMP_EQUAL(upper.c_str(), control.hello.session);
}

TEST(TetherV1Control, SeqLimitsAreInclusive) {
    Control control{};
    CHECK_EQUAL(V1Status::kOk,
                parse(object_of(with(kHelloFields, "next_uplink", "9007199254740991")), &control));
    CHECK(control.hello.next_uplink == kMaxJsonSeq);
    CHECK_EQUAL(V1Status::kOk, parse(object_of(with(kHelloFields, "next_uplink", "0")), &control));
    CHECK(control.hello.next_uplink == 0);
}

TEST(TetherV1Control, IntegralNumbersInOtherNotationsAreIntegers) {
    // JSON has one number type: 1e2 and 100.0 are the integer 100.
    Control control{};
    CHECK_EQUAL(V1Status::kOk,
                parse(object_of(with(kHelloFields, "next_uplink", "1e2")), &control));
    CHECK(control.hello.next_uplink == 100);
    CHECK_EQUAL(V1Status::kOk,
                parse(object_of(with(kHelloFields, "next_uplink", "100.0")), &control));
    CHECK(control.hello.next_uplink == 100);
}

TEST(TetherV1Control, VersionLimits) {
    Control control{};
    CHECK_EQUAL(V1Status::kOk,
                parse(object_of(with(kHelloFields, "version", "4294967295")), &control));
    CHECK(control.hello.version == UINT32_MAX);
    CHECK_EQUAL(V1Status::kOk, parse(object_of(with(kHelloFields, "version", "1")), &control));
    CHECK_EQUAL(V1Status::kBadField, parse_status(object_of(with(kHelloFields, "version", "0"))));
    CHECK_EQUAL(V1Status::kBadField,
                parse_status(object_of(with(kHelloFields, "version", "4294967296"))));
}

TEST(TetherV1Control, DeviceLengthLimits) {
    Control control{};
    const std::string longest(kMaxDeviceLength, 'd');
    CHECK_EQUAL(V1Status::kOk,
                parse(object_of(with(kHelloFields, "device", quoted(longest))), &control));
    STRCMP_EQUAL(longest.c_str(), control.hello.device);
    CHECK_EQUAL(V1Status::kBadField,
                parse_status(object_of(with(kHelloFields, "device", quoted(longest + "d")))));
    CHECK_EQUAL(V1Status::kBadField, parse_status(object_of(with(kHelloFields, "device", "\"\""))));
}

TEST(TetherV1Control, DeviceMustBePrintableAscii) {
    for (const char* device :
         {"\"a\\u0001b\"", "\"tab\\there\"", "\"caf\xC3\xA9\"", "\"x\\u007f\""}) {
        CHECK_EQUAL(V1Status::kBadField,
                    parse_status(object_of(with(kHelloFields, "device", device))));
    }
    Control control{};
    CHECK_EQUAL(V1Status::kOk,
                parse(object_of(with(kHelloFields, "device", "\"rack 4 / pi~17\"")), &control));
    STRCMP_EQUAL("rack 4 / pi~17", control.hello.device);
}

TEST(TetherV1Control, SessionMustBeCanonicalUuidText) {
    const std::string session(kSession);
    const std::vector<std::string> bad = {
        session.substr(1),                       // 35 characters
        session + "0",                           // 37 characters
        "0a6c2f4e9-b1d-5e3a-8c7f-1234567890ab",  // dash moved
        "0a6c2f4e-9b1d-5e3a-8c7f-1234567890ag",  // not hex
        "{a6c2f4e-9b1d-5e3a-8c7f-1234567890a}",  // braces
        "0a6c2f4e-9b1d-5e3a-8c7f_1234567890ab",  // underscore for a dash
        "0a6c2f4e 9b1d 5e3a 8c7f 1234567890ab",
        "",
    };
    for (const std::string& text : bad) {
        CHECK_EQUAL(V1Status::kBadField,
                    parse_status(object_of(with(kHelloFields, "session", quoted(text)))));
        CHECK_EQUAL(V1Status::kBadField,
                    parse_status(object_of(with(kWelcomeFields, "session", quoted(text)))));
    }
}

TEST(TetherV1Control, GapRangeRules) {
    CHECK_EQUAL(V1Status::kBadField, parse_status(object_of(with(kGapFields, "first", "0"))));
    CHECK_EQUAL(V1Status::kBadField, parse_status(object_of(with(kGapFields, "last", "120"))));
    CHECK_EQUAL(
        V1Status::kOk,
        parse_status(object_of(with(with(kGapFields, "first", "1"), "last", "9007199254740991"))));
}

TEST(TetherV1Control, GapReasonLengthLimit) {
    Control control{};
    const std::string longest(kMaxReasonLength, 'r');
    CHECK_EQUAL(V1Status::kOk,
                parse(object_of(with(kGapFields, "reason", quoted(longest))), &control));
    STRCMP_EQUAL(longest.c_str(), control.gap.reason);
    CHECK_EQUAL(V1Status::kBadField,
                parse_status(object_of(with(kGapFields, "reason", quoted(longest + "r")))));
    CHECK_EQUAL(V1Status::kOk, parse(object_of(with(kGapFields, "reason", "\"\"")), &control));
    STRCMP_EQUAL("", control.gap.reason);
}

TEST(TetherV1Control, ErrorCodeAndMessageLimits) {
    Control control{};
    CHECK_EQUAL(V1Status::kOk, parse(object_of(with(kErrorFields, "code", "1000")), &control));
    UNSIGNED_LONGS_EQUAL(1000, control.error.code);
    CHECK_EQUAL(V1Status::kOk, parse(object_of(with(kErrorFields, "code", "4999")), &control));
    UNSIGNED_LONGS_EQUAL(4999, control.error.code);
    CHECK_EQUAL(V1Status::kBadField, parse_status(object_of(with(kErrorFields, "code", "999"))));
    CHECK_EQUAL(V1Status::kBadField, parse_status(object_of(with(kErrorFields, "code", "5000"))));
    CHECK_EQUAL(V1Status::kBadField, parse_status(object_of(with(kErrorFields, "code", "65536"))));

    const std::string longest(kMaxErrorMessageLength, 'm');
    CHECK_EQUAL(V1Status::kOk,
                parse(object_of(with(kErrorFields, "message", quoted(longest))), &control));
    STRCMP_EQUAL(longest.c_str(), control.error.message);
    CHECK_EQUAL(V1Status::kBadField,
                parse_status(object_of(with(kErrorFields, "message", quoted(longest + "m")))));
}

TEST(TetherV1Control, EscapedStringsCountUnescapedBytes) {
    // 64 bytes after unescaping even though the JSON text is longer.
    std::string reason;
    for (int i = 0; i < 32; ++i) {
        reason += "\\u0041\\n";
    }
    Control control{};
    CHECK_EQUAL(V1Status::kOk,
                parse(object_of(with(kGapFields, "reason", quoted(reason))), &control));
    UNSIGNED_LONGS_EQUAL(kMaxReasonLength, std::strlen(control.gap.reason));
    CHECK_EQUAL('A', control.gap.reason[0]);
    CHECK_EQUAL('\n', control.gap.reason[1]);
}

TEST(TetherV1Control, MissingEachFieldIsMissingField) {
    for (const Fields* fields : {&kHelloFields, &kWelcomeFields, &kGapFields, &kErrorFields}) {
        for (const auto& field : *fields) {
            if (field.first == "type" || field.first == "reason") {
                continue;
            }
            CHECK_EQUAL_TEXT(V1Status::kMissingField,
                             parse_status(object_of(without(*fields, field.first))),
                             field.first.c_str());
        }
    }
}

TEST(TetherV1Control, WrongJsonTypeForEachFieldIsBadField) {
    const std::vector<std::string> not_numbers = {"\"1\"", "true", "false",
                                                  "null",  "[1]",  "{\"v\":1}"};
    const std::vector<std::string> not_strings = {"1", "true", "null", "[\"a\"]", "{}"};
    const std::vector<std::string> not_booleans = {"1", "0", "\"true\"", "null", "[]"};
    struct Case {
        const Fields* fields;
        std::vector<std::string> numbers;
        std::vector<std::string> strings;
        std::vector<std::string> booleans;
    };
    const Case cases[] = {
        {&kHelloFields,
         {"version", "last_downlink", "oldest_uplink", "next_uplink"},
         {"session", "device"},
         {}},
        {&kWelcomeFields,
         {"last_uplink", "ack_every", "ack_interval_ms"},
         {"session"},
         {"resumed"}},
        {&kGapFields, {"first", "last"}, {"reason"}, {}},
        {&kErrorFields, {"code"}, {"message"}, {}},
    };
    for (const Case& c : cases) {
        for (const auto& name : c.numbers) {
            for (const auto& value : not_numbers) {
                CHECK_EQUAL_TEXT(V1Status::kBadField,
                                 parse_status(object_of(with(*c.fields, name, value))),
                                 (name + "=" + value).c_str());
            }
        }
        for (const auto& name : c.strings) {
            for (const auto& value : not_strings) {
                CHECK_EQUAL_TEXT(V1Status::kBadField,
                                 parse_status(object_of(with(*c.fields, name, value))),
                                 (name + "=" + value).c_str());
            }
        }
        for (const auto& name : c.booleans) {
            for (const auto& value : not_booleans) {
                CHECK_EQUAL_TEXT(V1Status::kBadField,
                                 parse_status(object_of(with(*c.fields, name, value))),
                                 (name + "=" + value).c_str());
            }
        }
    }
}

TEST(TetherV1Control, OutOfRangeNumbersAreBadField) {
    const std::vector<std::string> bad_seqs = {
        "-1",
        "-0.5",
        "1.5",
        "0.000001",
        "9007199254740992",
        "9007199254740993",
        "18446744073709551615",
        "1e300",
        "-1e300",
        "1e400",
    };
    for (const auto& names : kSeqFields) {
        for (const std::string& name : names) {
            const Fields* fields = name == "last_uplink"                 ? &kWelcomeFields
                                   : (name == "first" || name == "last") ? &kGapFields
                                                                         : &kHelloFields;
            for (const std::string& value : bad_seqs) {
                CHECK_EQUAL_TEXT(V1Status::kBadField,
                                 parse_status(object_of(with(*fields, name, value))),
                                 (name + "=" + value).c_str());
            }
        }
    }
    for (const char* name : {"ack_every", "ack_interval_ms"}) {
        for (const char* value : {"-1", "4294967296", "2.5"}) {
            CHECK_EQUAL(V1Status::kBadField,
                        parse_status(object_of(with(kWelcomeFields, name, value))));
        }
    }
    CHECK_EQUAL(V1Status::kBadField, parse_status(object_of(with(kHelloFields, "version", "2.5"))));
    CHECK_EQUAL(V1Status::kBadField, parse_status(object_of(with(kErrorFields, "code", "4002.5"))));
}

TEST(TetherV1Control, TypeMissingWrongOrUnknownIsUnknownType) {
    const std::vector<std::string> bad_types = {"1",           "null",      "true",
                                                "[\"hello\"]", "\"Hello\"", "\"HELLO\"",
                                                "\"data\"",    "\"\"",      "\"hello \""};
    for (const auto& type : bad_types) {
        CHECK_EQUAL_TEXT(V1Status::kUnknownType,
                         parse_status(object_of(with(kHelloFields, "type", type))), type.c_str());
    }
    CHECK_EQUAL(V1Status::kUnknownType, parse_status(object_of(without(kHelloFields, "type"))));
    CHECK_EQUAL(V1Status::kUnknownType, parse_status("{}"));
    // Keys match case-sensitively.
    CHECK_EQUAL(V1Status::kUnknownType, parse_status("{\"Type\":\"gap\",\"first\":1,\"last\":1}"));
}

TEST(TetherV1Control, AnythingButOneObjectIsNotJson) {
    const std::string gap = object_of(kGapFields);
    const std::vector<std::string> bad = {
        "",
        " ",
        "[]",
        "[" + gap + "]",
        "\"gap\"",
        "42",
        "null",
        "true",
        "{",
        "{\"type\":\"gap\",}",
        "{'type':'gap'}",
        gap + "x",
        gap + gap,
        gap + " }",
        gap + ",",
        gap.substr(0, gap.size() - 1),
        std::string(gap) + std::string(1, '\0'),
        std::string(gap) + std::string("\0{}", 3),
    };
    for (const std::string& text : bad) {
        CHECK_EQUAL_TEXT(V1Status::kNotJson, parse_status(text), text.c_str());
    }
}

TEST(TetherV1Control, SizeLimitIsInclusive) {
    const std::string gap = object_of(kGapFields);
    std::string padded = gap + std::string(kMaxControlSize - gap.size(), ' ');
    CHECK_EQUAL(V1Status::kOk, parse_status(padded));
    padded += " ";
    CHECK_EQUAL(V1Status::kNotJson, parse_status(padded));
    // Also when the object itself is too large (a long unknown field).
    Fields big = kGapFields;
    big.push_back({"padding", quoted(std::string(kMaxControlSize, 'p'))});
    CHECK_EQUAL(V1Status::kNotJson, parse_status(object_of(big)));
}

TEST(TetherV1Control, NullInputWithZeroSizeIsNotJson) {
    Control control{};
    CHECK_EQUAL(V1Status::kNotJson, parse_control(nullptr, 0, &control));
}

TEST(TetherV1Control, InvalidUtf8NeverCrashes) {
    // UTF-8 validity is the WebSocket layer's job; here it must only be safe.
    const std::vector<std::string> texts = {
        "\xFF\xFE",
        "{\"type\":\"gap\xC0\"}",
        "{\"type\":\"gap\",\"first\":1,\"last\":2,\"reason\":\"\xED\xA0\x80\"}",
        "{\"type\":\"gap\",\"first\":1,\"last\":2,\"reason\":\"\\ud800\"}",
        "{\"type\":\"gap\",\"first\":1,\"last\":2,\"reason\":\"\\udc00\\ud800\"}",
        "{\"type\":\"gap\",\"first\":1,\"last\":2,\"reason\":\"\\u00\"}",
        "{\"type\":\"gap\",\"first\":1,\"last\":2,\"reason\":\"\\",
        "{\"\xF4\x90\x80\x80\":1}",
    };
    for (const std::string& text : texts) {
        Control control{};
        const V1Status status = parse(text, &control);
        CHECK_TEXT(status != V1Status::kOk || std::strlen(control.gap.reason) <= kMaxReasonLength,
                   text.c_str());
    }
}

TEST(TetherV1Control, NulInsideStringEndsTheText) {
    Control control{};
    CHECK_EQUAL(V1Status::kOk,
                parse(object_of(with(kGapFields, "reason", "\"ab\\u0000cd\"")), &control));
    STRCMP_EQUAL("ab", control.gap.reason);
}

// --- Writers --------------------------------------------------------------------

TEST(TetherV1Control, WritesHelloExactly) {
    STRCMP_EQUAL(("{\"type\":\"hello\",\"session\":\"" + std::string(kSession) +
                  "\",\"version\":3,\"device\":\"pi-17\",\"last_downlink\":40,"
                  "\"oldest_uplink\":118,\"next_uplink\":121}")
                     .c_str(),
                 written(example_hello(), write_hello).c_str());
}

TEST(TetherV1Control, WritesWelcomeExactly) {
    STRCMP_EQUAL(("{\"type\":\"welcome\",\"session\":\"" + std::string(kSession) +
                  "\",\"resumed\":true,\"last_uplink\":117,\"ack_every\":64,"
                  "\"ack_interval_ms\":200}")
                     .c_str(),
                 written(example_welcome(), write_welcome).c_str());
}

TEST(TetherV1Control, WritesGapExactlyAndOmitsEmptyReason) {
    STRCMP_EQUAL("{\"type\":\"gap\",\"first\":121,\"last\":130,\"reason\":\"overflow\"}",
                 written(example_gap(), write_gap).c_str());
    Gap gap = example_gap();
    gap.reason[0] = '\0';
    STRCMP_EQUAL("{\"type\":\"gap\",\"first\":121,\"last\":130}", written(gap, write_gap).c_str());
}

TEST(TetherV1Control, WritesErrorExactly) {
    STRCMP_EQUAL("{\"type\":\"error\",\"code\":4002,\"message\":\"unexpected hello\"}",
                 written(example_error(), write_error).c_str());
}

TEST(TetherV1Control, HelloRoundTripsAtItsLimits) {
    Random random(17);
    for (int i = 0; i < 300; ++i) {
        Hello hello = example_hello();
        const char digits[] = "0123456789abcdefABCDEF";
        for (std::size_t j = 0; j < kSessionTextLength; ++j) {
            if (hello.session[j] != '-') {
                hello.session[j] = digits[random.below(sizeof digits - 1)];
            }
        }
        hello.version =
            i == 0 ? UINT32_MAX : static_cast<std::uint32_t>(1 + random.below(UINT32_MAX));
        const std::size_t device_length =
            i == 0 ? kMaxDeviceLength : 1 + random.below(kMaxDeviceLength);
        for (std::size_t j = 0; j < device_length; ++j) {
            char c = 0;
            do {
                c = static_cast<char>(0x20 + random.below(0x5F));
            } while (c == '"' || c == '\\');
            hello.device[j] = c;
        }
        hello.device[device_length] = '\0';
        hello.last_downlink = i == 0 ? kMaxJsonSeq : random.next() % (kMaxJsonSeq + 1);
        hello.oldest_uplink = i == 1 ? 0 : random.next() % (kMaxJsonSeq + 1);
        hello.next_uplink = random.next() >> (11 + random.below(53));

        const std::string text = written(hello, write_hello);
        Control control{};
        CHECK_EQUAL_TEXT(V1Status::kOk, parse(text, &control), text.c_str());
        CHECK(control.type == ControlType::kHello);
        STRCMP_EQUAL(hello.session, control.hello.session);
        CHECK(hello.version == control.hello.version);
        STRCMP_EQUAL(hello.device, control.hello.device);
        CHECK(hello.last_downlink == control.hello.last_downlink);
        CHECK(hello.oldest_uplink == control.hello.oldest_uplink);
        CHECK(hello.next_uplink == control.hello.next_uplink);
    }
}

TEST(TetherV1Control, WelcomeRoundTrips) {
    for (const bool resumed : {false, true}) {
        for (const std::uint64_t last : {std::uint64_t{0}, std::uint64_t{117}, kMaxJsonSeq}) {
            for (const std::uint32_t every : {0u, 64u, UINT32_MAX}) {
                Welcome welcome = example_welcome();
                welcome.resumed = resumed;
                welcome.last_uplink = last;
                welcome.ack_every = every;
                welcome.ack_interval_ms = UINT32_MAX - every;
                Control control{};
                CHECK_EQUAL(V1Status::kOk, parse(written(welcome, write_welcome), &control));
                CHECK(control.type == ControlType::kWelcome);
                STRCMP_EQUAL(welcome.session, control.welcome.session);
                CHECK(control.welcome.resumed == resumed);
                CHECK(control.welcome.last_uplink == last);
                CHECK(control.welcome.ack_every == every);
                CHECK(control.welcome.ack_interval_ms == UINT32_MAX - every);
            }
        }
    }
}

TEST(TetherV1Control, GapRoundTrips) {
    const std::string longest(kMaxReasonLength, 'z');
    for (const char* reason : {"", "expired", "not_in_outbox", longest.c_str()}) {
        for (const std::uint64_t first : {std::uint64_t{1}, std::uint64_t{121}, kMaxJsonSeq}) {
            Gap gap;
            gap.first = first;
            gap.last = first == kMaxJsonSeq ? first : first + 9;
            std::strcpy(gap.reason, reason);
            Control control{};
            CHECK_EQUAL(V1Status::kOk, parse(written(gap, write_gap), &control));
            CHECK(control.type == ControlType::kGap);
            CHECK(control.gap.first == gap.first);
            CHECK(control.gap.last == gap.last);
            STRCMP_EQUAL(reason, control.gap.reason);
        }
    }
}

TEST(TetherV1Control, ErrorRoundTrips) {
    const std::string longest(kMaxErrorMessageLength, '~');
    const std::uint16_t codes[] = {1000, 1011, 4001, 4009, 4999};
    for (const std::uint16_t code : codes) {
        for (const char* message : {"", "token expired", longest.c_str()}) {
            Error error;
            error.code = code;
            std::strcpy(error.message, message);
            Control control{};
            CHECK_EQUAL(V1Status::kOk, parse(written(error, write_error), &control));
            CHECK(control.type == ControlType::kError);
            UNSIGNED_LONGS_EQUAL(code, control.error.code);
            STRCMP_EQUAL(message, control.error.message);
        }
    }
}

TEST(TetherV1Control, WritersReportBufferTooSmallBelowExactFit) {
    char out[kMaxControlSize];
    std::size_t length = 0;
    const std::size_t hello_size = written(example_hello(), write_hello).size();
    for (std::size_t capacity = 0; capacity < hello_size; ++capacity) {
        CHECK_EQUAL(V1Status::kBufferTooSmall,
                    write_hello(example_hello(), out, capacity, &length));
    }
    // The output is not NUL-terminated, so the exact size fits.
    CHECK_EQUAL(V1Status::kOk, write_hello(example_hello(), out, hello_size, &length));
    UNSIGNED_LONGS_EQUAL(hello_size, length);

    const std::size_t welcome_size = written(example_welcome(), write_welcome).size();
    CHECK_EQUAL(V1Status::kBufferTooSmall,
                write_welcome(example_welcome(), out, welcome_size - 1, &length));
    CHECK_EQUAL(V1Status::kOk, write_welcome(example_welcome(), out, welcome_size, &length));
    const std::size_t gap_size = written(example_gap(), write_gap).size();
    CHECK_EQUAL(V1Status::kBufferTooSmall, write_gap(example_gap(), out, gap_size - 1, &length));
    CHECK_EQUAL(V1Status::kOk, write_gap(example_gap(), out, gap_size, &length));
    const std::size_t error_size = written(example_error(), write_error).size();
    CHECK_EQUAL(V1Status::kBufferTooSmall,
                write_error(example_error(), out, error_size - 1, &length));
    CHECK_EQUAL(V1Status::kOk, write_error(example_error(), out, error_size, &length));
}

TEST(TetherV1Control, BufferTooSmallWritesNothingPastCapacity) {
    char out[64];
    std::memset(out, '#', sizeof out);
    std::size_t length = 7;
    CHECK_EQUAL(V1Status::kBufferTooSmall, write_hello(example_hello(), out, 32, &length));
    for (std::size_t i = 32; i < sizeof out; ++i) {
        CHECK_EQUAL('#', out[i]);
    }
    UNSIGNED_LONGS_EQUAL(7, length);
}

TEST(TetherV1Control, HelloWriterRejectsFieldsOutOfRange) {
    std::vector<Hello> bad(12, example_hello());
    bad[0].session[8] = 'x';
    bad[1].session[35] = '\0';
    std::memset(bad[2].session, 'a', sizeof bad[2].session);  // no terminator
    bad[3].version = 0;
    bad[4].device[0] = '\0';
    std::strcpy(bad[5].device, "pi\"17");
    std::strcpy(bad[6].device, "pi\\17");
    std::strcpy(bad[7].device, "pi\t17");
    std::strcpy(bad[8].device, "caf\xC3\xA9");
    bad[9].last_downlink = kMaxJsonSeq + 1;
    bad[10].oldest_uplink = UINT64_MAX;
    std::memset(bad[11].device, 'd', sizeof bad[11].device);  // 129 bytes, no terminator
    for (std::size_t i = 0; i < bad.size(); ++i) {
        CHECK_EQUAL_TEXT(V1Status::kInvalidArgument, write_status(bad[i], write_hello),
                         std::to_string(i).c_str());
    }
    Hello next = example_hello();
    next.next_uplink = kMaxJsonSeq + 1;
    CHECK_EQUAL(V1Status::kInvalidArgument, write_status(next, write_hello));
}

TEST(TetherV1Control, WelcomeWriterRejectsFieldsOutOfRange) {
    Welcome welcome = example_welcome();
    welcome.session[13] = '0';
    CHECK_EQUAL(V1Status::kInvalidArgument, write_status(welcome, write_welcome));
    welcome = example_welcome();
    welcome.last_uplink = kMaxJsonSeq + 1;
    CHECK_EQUAL(V1Status::kInvalidArgument, write_status(welcome, write_welcome));
}

TEST(TetherV1Control, GapWriterRejectsFieldsOutOfRange) {
    Gap gap = example_gap();
    gap.first = 0;
    gap.last = 0;
    CHECK_EQUAL(V1Status::kInvalidArgument, write_status(gap, write_gap));
    gap = example_gap();
    gap.last = gap.first - 1;
    CHECK_EQUAL(V1Status::kInvalidArgument, write_status(gap, write_gap));
    gap = example_gap();
    gap.last = kMaxJsonSeq + 1;
    CHECK_EQUAL(V1Status::kInvalidArgument, write_status(gap, write_gap));
    gap = example_gap();
    std::strcpy(gap.reason, "say \"why\"");
    CHECK_EQUAL(V1Status::kInvalidArgument, write_status(gap, write_gap));
    gap = example_gap();
    std::memset(gap.reason, 'r', sizeof gap.reason);  // no terminator
    CHECK_EQUAL(V1Status::kInvalidArgument, write_status(gap, write_gap));
}

TEST(TetherV1Control, ErrorWriterRejectsFieldsOutOfRange) {
    Error error = example_error();
    error.code = 999;
    CHECK_EQUAL(V1Status::kInvalidArgument, write_status(error, write_error));
    error.code = 5000;
    CHECK_EQUAL(V1Status::kInvalidArgument, write_status(error, write_error));
    error = example_error();
    std::strcpy(error.message, "a\\b");
    CHECK_EQUAL(V1Status::kInvalidArgument, write_status(error, write_error));
    error = example_error();
    std::memset(error.message, 'm', sizeof error.message);  // no terminator
    CHECK_EQUAL(V1Status::kInvalidArgument, write_status(error, write_error));
}

TEST(TetherV1Control, WritersNeverAllocate) {
    char out[kMaxControlSize];
    std::size_t length = 0;
    const Hello hello = example_hello();
    const Welcome welcome = example_welcome();
    const Gap gap = example_gap();
    const Error error = example_error();
    tether::test::AllocationCounter counter;
    CHECK_EQUAL(V1Status::kOk, write_hello(hello, out, sizeof out, &length));
    CHECK_EQUAL(V1Status::kOk, write_welcome(welcome, out, sizeof out, &length));
    CHECK_EQUAL(V1Status::kOk, write_gap(gap, out, sizeof out, &length));
    CHECK_EQUAL(V1Status::kOk, write_error(error, out, sizeof out, &length));
    UNSIGNED_LONGS_EQUAL(0, counter.count());
}

// --- cJSON's allocations --------------------------------------------------------

namespace {

std::size_t g_live_allocations = 0;
std::size_t g_total_allocations = 0;

void* counting_malloc(std::size_t size) {
    ++g_live_allocations;
    ++g_total_allocations;
    return std::malloc(size);
}

void counting_free(void* pointer) {
    if (pointer != nullptr) {
        --g_live_allocations;
    }
    std::free(pointer);
}

}  // namespace

TEST_GROUP(TetherV1ControlMemory){void setup() override{g_live_allocations = 0;
g_total_allocations = 0;
cJSON_Hooks hooks{counting_malloc, counting_free};
cJSON_InitHooks(&hooks);
}
void teardown() override {
    cJSON_InitHooks(nullptr);
}
}
;

TEST(TetherV1ControlMemory, EveryParseFreesWhatCjsonAllocated) {
    std::vector<std::string> texts;
    for (const Fields* fields : {&kHelloFields, &kWelcomeFields, &kGapFields, &kErrorFields}) {
        texts.push_back(object_of(*fields));
        for (const auto& field : *fields) {
            texts.push_back(object_of(without(*fields, field.first)));
            texts.push_back(object_of(with(*fields, field.first, "null")));
            texts.push_back(object_of(with(*fields, field.first, "-1.5")));
            texts.push_back(
                object_of(with(*fields, field.first, "\"" + std::string(200, 's') + "\"")));
        }
    }
    texts.push_back("[1,2,{\"a\":[]}]");
    texts.push_back(object_of(kGapFields) + " trailing");
    texts.push_back("{\"type\":\"gap\",\"first\":[1,2,3");

    // Random byte mutations of the valid messages (fixed seed).
    Random random(0xC0FFEEull);
    const std::size_t valid = 4;
    for (int i = 0; i < 4000; ++i) {
        std::string text = texts[random.below(valid)];
        const std::size_t edits = 1 + random.below(4);
        for (std::size_t e = 0; e < edits; ++e) {
            const std::size_t at = random.below(text.size());
            switch (random.below(3)) {
                case 0:
                    text[at] = static_cast<char>(random.below(256));
                    break;
                case 1:
                    text.erase(at, 1 + random.below(8));
                    break;
                default:
                    text.insert(at, 1, "{}[]\",:0-.e\\"[random.below(12)]);
                    break;
            }
            if (text.empty()) {
                text = "{";
            }
        }
        texts.push_back(text);
    }

    std::size_t accepted = 0;
    for (const std::string& text : texts) {
        Control control{};
        if (parse(text, &control) == V1Status::kOk) {
            ++accepted;
        }
        UNSIGNED_LONGS_EQUAL_TEXT(0, g_live_allocations, text.c_str());
    }
    CHECK(g_total_allocations > texts.size());
    CHECK(accepted >= 4);
}

// =============================================================================

TEST_GROUP(TetherV1RetryAfter){};

namespace {

bool retry_after(const std::string& reason, std::uint32_t* seconds) {
    std::uint8_t* buffer = static_cast<std::uint8_t*>(std::malloc(reason.size() + 1));
    std::memcpy(buffer, reason.data(), reason.size());
    const bool found = parse_retry_after_reason(buffer, reason.size(), seconds);
    std::free(buffer);
    return found;
}

}  // namespace

TEST(TetherV1RetryAfter, ReadsWholeTokenAnywhere) {
    const std::vector<std::pair<std::string, std::uint32_t>> good = {
        {"retry_after=5", 5},
        {"overloaded retry_after=30", 30},
        {"retry_after=30 overloaded", 30},
        {"a retry_after=7 b", 7},
        {"restart,retry_after=12;x", 12},
        {"x;retry_after=13", 13},
        {"\tretry_after=0\t", 0},
        {"retry_after=86400", 86400},
        {"retry_after=0000000000000000000086400", 86400},
        {"retry_after=x retry_after=9", 9},
        {"retry_after=4 retry_after=9", 4},
    };
    for (const auto& c : good) {
        std::uint32_t seconds = 999999;
        CHECK_TEXT(retry_after(c.first, &seconds), c.first.c_str());
        UNSIGNED_LONGS_EQUAL_TEXT(c.second, seconds, c.first.c_str());
    }
}

TEST(TetherV1RetryAfter, RejectsAnythingElse) {
    const std::vector<std::string> bad = {
        "",
        " ",
        "overloaded",
        "retry_after",
        "retry_after=",
        "retry_after= 5",
        "retry_after =5",
        "retry_after=-5",
        "retry_after=+5",
        "retry_after=5s",
        "retry_after=5.0",
        "retry_after=0x10",
        "retry_after=86401",
        "retry_after=99999999999999999999",
        "xretry_after=5",
        "_retry_after=5",
        "Retry_After=5",
        "RETRY_AFTER=5",
        "retry-after=5",
        "retry_after:5",
        std::string("retry_after=5\0", 14),
    };
    for (const std::string& reason : bad) {
        std::uint32_t seconds = 1234;
        CHECK_FALSE_TEXT(retry_after(reason, &seconds), reason.c_str());
        UNSIGNED_LONGS_EQUAL(1234, seconds);
    }
}

TEST(TetherV1RetryAfter, NullReasonWithZeroSizeHasNoValue) {
    std::uint32_t seconds = 1;
    CHECK_FALSE(parse_retry_after_reason(nullptr, 0, &seconds));
    UNSIGNED_LONGS_EQUAL(1, seconds);
}

TEST(TetherV1RetryAfter, LongestCloseReasonIsScanned) {
    // A close reason is at most 123 bytes; the token may sit at its end.
    const std::string reason = std::string(110, 'z') + " retry_after=60";
    std::uint32_t seconds = 0;
    CHECK_TRUE(retry_after(reason, &seconds));
    UNSIGNED_LONGS_EQUAL(60, seconds);
}

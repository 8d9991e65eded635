// SPDX-License-Identifier: MIT
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "fakes/fake_transport.h"
#include "fakes/fixed_masks.h"
#include "support/alloc_counter.h"
#include "support/tether_strings.h"
#include "tether/net/ws_handshake.h"
#include "tether/net/ws_stream.h"

// CppUTest last: its operator-new macros break standard headers.
#include <CppUTest/TestHarness.h>

using tether::IoStatus;
using tether::TransportError;
using tether::net::HandshakeStatus;
using tether::net::WsOpcode;
using tether::net::WsResult;
using tether::net::WsStatus;
using tether::net::WsStream;
using tether::net::WsStreamConfig;
using tether::test::FakeTransport;
using tether::test::FixedMasks;

namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes text(const std::string& s) {
    return Bytes(s.begin(), s.end());
}

Bytes cat(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

Bytes pattern(std::size_t size) {
    Bytes out(size);
    for (std::size_t i = 0; i < size; ++i) {
        out[i] = static_cast<std::uint8_t>(i * 7u + 3u);
    }
    return out;
}

// An unmasked frame as a server sends it: `first` is FIN/RSV/opcode.
Bytes server_frame(std::uint8_t first, const Bytes& payload) {
    Bytes out{first};
    const std::size_t size = payload.size();
    if (size < 126) {
        out.push_back(static_cast<std::uint8_t>(size));
    } else if (size < 65536) {
        out.push_back(126);
        out.push_back(static_cast<std::uint8_t>(size >> 8));
        out.push_back(static_cast<std::uint8_t>(size));
    } else {
        out.push_back(127);
        for (int shift = 56; shift >= 0; shift -= 8) {
            out.push_back(static_cast<std::uint8_t>(static_cast<std::uint64_t>(size) >> shift));
        }
    }
    return cat(out, payload);
}

Bytes close_payload(std::uint16_t code, const Bytes& reason = Bytes{}) {
    return cat(Bytes{static_cast<std::uint8_t>(code >> 8), static_cast<std::uint8_t>(code)},
               reason);
}

// A client frame with the all-zero mask key of FixedMasks(0).
Bytes zero_masked_frame(std::uint8_t first, const Bytes& payload) {
    Bytes unmasked = server_frame(first, payload);
    const std::size_t header = unmasked.size() - payload.size();
    unmasked[1] = static_cast<std::uint8_t>(unmasked[1] | 0x80u);
    Bytes out(unmasked.begin(), unmasked.begin() + static_cast<std::ptrdiff_t>(header));
    out.insert(out.end(), {0, 0, 0, 0});
    return cat(out, payload);
}

struct Recorder final : tether::net::WsHandler {
    std::vector<std::pair<WsOpcode, Bytes>> messages;
    std::vector<Bytes> pongs;
    int closes = 0;
    std::uint16_t close_code = 0;
    Bytes close_reason;
    int frames = 0;

    void on_message(WsOpcode type, const std::uint8_t* data, std::size_t size) override {
        messages.emplace_back(type, Bytes(data, data + size));
    }
    void on_pong(const std::uint8_t* payload, std::size_t size) override {
        pongs.emplace_back(payload, payload + size);
    }
    void on_close(std::uint16_t code, const std::uint8_t* reason, std::size_t size) override {
        ++closes;
        close_code = code;
        close_reason.assign(reason, reason + size);
    }
    void on_frame() override { ++frames; }
};

struct Rig {
    explicit Rig(const WsStreamConfig& config = WsStreamConfig{}, std::size_t rx_size = 70000,
                 std::size_t tx_size = 70000, std::uint32_t key = 0)
        : masks(key),
          rx(rx_size),
          tx(tx_size),
          stream(config, rx.data(), rx.size(), tx.data(), tx.size(), masks) {
        CHECK_TRUE(stream.attach(&transport));
    }

    FixedMasks masks;
    FakeTransport transport;
    Bytes rx;
    Bytes tx;
    WsStream stream;
    Recorder handler;
};

// Delivers `input` whole (chunk 0) or in chunks of `chunk` bytes, calling
// read_frames() after each; returns the first result that is not kOk.
WsResult feed(Rig& rig, const Bytes& input, std::size_t chunk) {
    if (chunk == 0) {
        rig.transport.push_input(input);
        return rig.stream.read_frames(rig.handler);
    }
    for (std::size_t offset = 0; offset < input.size(); offset += chunk) {
        const std::size_t size = std::min(chunk, input.size() - offset);
        rig.transport.push_input(input.data() + offset, size);
        const WsResult result = rig.stream.read_frames(rig.handler);
        if (result.status != WsStatus::kOk) {
            return result;
        }
    }
    return rig.stream.read_frames(rig.handler);
}

const std::size_t kDeliveries[] = {0, 1, 3, 7, 13};

// Runs `check` on a fresh stream for every way of delivering `input`.
void for_each_delivery(const Bytes& input, const std::function<void(Rig&, const WsResult&)>& check,
                       const WsStreamConfig& config = WsStreamConfig{}) {
    for (std::size_t chunk : kDeliveries) {
        Rig rig(config);
        const WsResult result = feed(rig, input, chunk);
        check(rig, result);
    }
}

// Also checks that no message came out, except `messages_before` complete
// ones that precede the offending frame.
void expect_protocol_error(const Bytes& input, std::uint16_t code,
                           const WsStreamConfig& config = WsStreamConfig{},
                           std::size_t messages_before = 0) {
    for_each_delivery(
        input,
        [code, messages_before](Rig& rig, const WsResult& result) {
            CHECK_EQUAL(WsStatus::kProtocolError, result.status);
            UNSIGNED_LONGS_EQUAL(code, result.close_code);
            // Sticky: nothing more is read.
            const WsResult again = rig.stream.read_frames(rig.handler);
            CHECK_EQUAL(WsStatus::kProtocolError, again.status);
            UNSIGNED_LONGS_EQUAL(code, again.close_code);
            UNSIGNED_LONGS_EQUAL(messages_before, rig.handler.messages.size());
            UNSIGNED_LONGS_EQUAL(0, rig.handler.closes);
        },
        config);
}

void check_bytes(const Bytes& expected, const Bytes& actual) {
    UNSIGNED_LONGS_EQUAL(expected.size(), actual.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        if (expected[i] != actual[i]) {
            FAIL(("byte " + std::to_string(i) + " differs").c_str());
        }
    }
}

const char kResponse[] =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    "\r\n";
const char kAccept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

}  // namespace

// --- Sending ------------------------------------------------------------------

TEST_GROUP(WsStreamSend){};

TEST(WsStreamSend, MaskedHelloIsTheRfcExample) {
    Rig rig(WsStreamConfig{}, 1024, 1024, 0x37fa213du);
    CHECK_TRUE(rig.stream.queue_message(WsOpcode::kText, text("Hello").data(), 5));
    UNSIGNED_LONGS_EQUAL(11, rig.stream.queued_bytes());
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    check_bytes(Bytes{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58},
                rig.transport.output());
    UNSIGNED_LONGS_EQUAL(0, rig.stream.queued_bytes());
    UNSIGNED_LONGS_EQUAL(1, rig.stream.counters().frames_sent);
    UNSIGNED_LONGS_EQUAL(11, rig.stream.counters().bytes_written);
    UNSIGNED_LONGS_EQUAL(1, rig.stream.counters().write_calls);
}

TEST(WsStreamSend, HundredByteTextFrameTakesSixBytesOfHeader) {
    Rig rig;
    const Bytes payload = Bytes(100, 'x');
    CHECK_TRUE(rig.stream.queue_message(WsOpcode::kText, payload.data(), payload.size()));
    UNSIGNED_LONGS_EQUAL(106, rig.stream.queued_bytes());
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    check_bytes(zero_masked_frame(0x81, payload), rig.transport.output());
}

TEST(WsStreamSend, BinaryOf256BytesUsesSixteenBitLength) {
    Rig rig(WsStreamConfig{}, 1024, 1024, 0x37fa213du);
    const Bytes payload = pattern(256);
    CHECK_TRUE(rig.stream.queue_message(WsOpcode::kBinary, payload.data(), payload.size()));
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    const Bytes& out = rig.transport.output();
    UNSIGNED_LONGS_EQUAL(4 + 4 + 256, out.size());
    check_bytes(Bytes{0x82, 0xFE, 0x01, 0x00, 0x37, 0xfa, 0x21, 0x3d},
                Bytes(out.begin(), out.begin() + 8));
    const std::uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    for (std::size_t i = 0; i < payload.size(); ++i) {
        UNSIGNED_LONGS_EQUAL(payload[i] ^ key[i % 4], out[8 + i]);
    }
}

TEST(WsStreamSend, EveryLengthAndSplitIsMaskedWithTheKeyInPhase) {
    const std::uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    const Bytes all = pattern(300);
    for (std::size_t prefix_size = 0; prefix_size <= 11; ++prefix_size) {
        for (std::size_t size = 0; prefix_size + size <= 300; size += size < 40 ? 1 : 37) {
            Rig rig(WsStreamConfig{}, 1024, 1024, 0x37fa213du);
            CHECK_TRUE(rig.stream.queue_message_parts(WsOpcode::kBinary, all.data(), prefix_size,
                                                      all.data() + prefix_size, size));
            CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
            const Bytes& out = rig.transport.output();
            const std::size_t total = prefix_size + size;
            const std::size_t header = total < 126 ? 6 : 8;
            UNSIGNED_LONGS_EQUAL(header + total, out.size());
            for (std::size_t i = 0; i < total; ++i) {
                if (out[header + i] != (all[i] ^ key[i % 4])) {
                    FAIL(("prefix " + std::to_string(prefix_size) + " size " +
                          std::to_string(size) + ": byte " + std::to_string(i) + " differs")
                             .c_str());
                }
            }
        }
    }
}

TEST(WsStreamSend, BinaryOf64KiBUsesSixtyFourBitLength) {
    Rig rig;
    const Bytes payload = pattern(65536);
    CHECK_TRUE(rig.stream.queue_message(WsOpcode::kBinary, payload.data(), payload.size()));
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    const Bytes& out = rig.transport.output();
    check_bytes(Bytes{0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0},
                Bytes(out.begin(), out.begin() + 14));
    check_bytes(zero_masked_frame(0x82, payload), out);
}

TEST(WsStreamSend, ControlFrames) {
    Rig rig(WsStreamConfig{}, 1024, 1024, 0x37fa213du);
    CHECK_TRUE(rig.stream.queue_ping(text("Hello").data(), 5));
    CHECK_TRUE(rig.stream.queue_close(1000, "bye"));
    CHECK_TRUE(rig.stream.queue_close(0));
    CHECK_TRUE(rig.stream.queue_ping(nullptr, 0));
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    const Bytes expected{// ping "Hello"
                         0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
                         // close 1000 "bye": 03 e8 62 79 65 masked
                         0x88, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x03 ^ 0x37, 0xe8 ^ 0xfa, 0x62 ^ 0x21,
                         0x79 ^ 0x3d, 0x65 ^ 0x37,
                         // close without code
                         0x88, 0x80, 0x37, 0xfa, 0x21, 0x3d,
                         // empty ping
                         0x89, 0x80, 0x37, 0xfa, 0x21, 0x3d};
    check_bytes(expected, rig.transport.output());
    UNSIGNED_LONGS_EQUAL(4, rig.stream.counters().frames_sent);
}

TEST(WsStreamSend, OversizedControlPayloadsAreRefused) {
    Rig rig;
    const Bytes big(126, 'p');
    CHECK_FALSE(rig.stream.queue_ping(big.data(), big.size()));
    CHECK_EQUAL(WsStatus::kProtocolError, rig.stream.last_error());
    CHECK_TRUE(rig.stream.queue_ping(big.data(), 125));
    CHECK_EQUAL(WsStatus::kOk, rig.stream.last_error());
    const std::string reason_ok(123, 'r');
    const std::string reason_long(124, 'r');
    CHECK_TRUE(rig.stream.queue_close(1000, reason_ok.c_str()));
    const std::size_t queued = rig.stream.queued_bytes();
    CHECK_FALSE(rig.stream.queue_close(1000, reason_long.c_str()));
    CHECK_EQUAL(WsStatus::kProtocolError, rig.stream.last_error());
    UNSIGNED_LONGS_EQUAL(queued, rig.stream.queued_bytes());
}

TEST(WsStreamSend, MisuseIsRefused) {
    Rig rig;
    CHECK_FALSE(rig.stream.queue_message(WsOpcode::kPing, text("x").data(), 1));
    CHECK_EQUAL(WsStatus::kProtocolError, rig.stream.last_error());
    CHECK_FALSE(rig.stream.queue_message(WsOpcode::kText, nullptr, 3));
    CHECK_FALSE(rig.stream.queue_ping(nullptr, 3));
    CHECK_FALSE(rig.stream.queue_raw(nullptr, 3));
    CHECK_EQUAL(WsStatus::kProtocolError, rig.stream.last_error());
    UNSIGNED_LONGS_EQUAL(0, rig.stream.queued_bytes());
    CHECK_TRUE(rig.stream.queue_message(WsOpcode::kBinary, nullptr, 0));
    check_bytes(Bytes{0x82, 0x80, 0, 0, 0, 0}, Bytes(rig.tx.begin(), rig.tx.begin() + 6));
}

TEST(WsStreamSend, EntropyFailureQueuesNothing) {
    Rig rig;
    rig.masks.set_failing(true);
    CHECK_FALSE(rig.stream.queue_message(WsOpcode::kText, text("Hello").data(), 5));
    CHECK_EQUAL(WsStatus::kEntropyFailure, rig.stream.last_error());
    CHECK_FALSE(rig.stream.queue_ping(nullptr, 0));
    CHECK_FALSE(rig.stream.queue_close(1000));
    CHECK_EQUAL(WsStatus::kEntropyFailure, rig.stream.last_error());
    UNSIGNED_LONGS_EQUAL(0, rig.stream.queued_bytes());
    UNSIGNED_LONGS_EQUAL(0, rig.stream.counters().frames_sent);
    rig.masks.set_failing(false);
    CHECK_TRUE(rig.stream.queue_message(WsOpcode::kText, text("Hello").data(), 5));
    CHECK_EQUAL(WsStatus::kOk, rig.stream.last_error());
}

TEST(WsStreamSend, MaskKeysAreFetchedInBulk) {
    Rig rig;
    for (int i = 0; i < 64; ++i) {
        CHECK_TRUE(rig.stream.queue_message(WsOpcode::kText, text("a").data(), 1));
    }
    UNSIGNED_LONGS_EQUAL(1, rig.masks.calls());
    UNSIGNED_LONGS_EQUAL(tether::net::kWsMaskPoolSize, rig.masks.bytes());
    CHECK_TRUE(rig.stream.queue_message(WsOpcode::kText, text("a").data(), 1));
    UNSIGNED_LONGS_EQUAL(2, rig.masks.calls());
}

TEST(WsStreamSend, FullBufferRefusesTheWholeFrame) {
    Rig rig(WsStreamConfig{}, 64, 20);
    CHECK_TRUE(rig.stream.queue_message(WsOpcode::kText, text("0123456789").data(), 10));
    UNSIGNED_LONGS_EQUAL(16, rig.stream.queued_bytes());
    UNSIGNED_LONGS_EQUAL(4, rig.stream.tx_space());
    CHECK_FALSE(rig.stream.queue_message(WsOpcode::kText, text("ab").data(), 2));
    CHECK_EQUAL(WsStatus::kOk, rig.stream.last_error());
    UNSIGNED_LONGS_EQUAL(16, rig.stream.queued_bytes());
    UNSIGNED_LONGS_EQUAL(1, rig.stream.counters().frames_sent);
    CHECK_FALSE(rig.stream.queue_raw(text("12345").data(), 5));
    CHECK_TRUE(rig.stream.queue_raw(text("1234").data(), 4));
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    check_bytes(cat(zero_masked_frame(0x81, text("0123456789")), text("1234")),
                rig.transport.output());
}

TEST(WsStreamSend, ThousandMessagesGoOutInAHandfulOfWrites) {
    Rig rig(WsStreamConfig{}, 1024, 64 * 1024);
    const Bytes payload = pattern(100);
    Bytes expected;
    int flushes = 0;
    for (int i = 0; i < 1000; ++i) {
        if (!rig.stream.queue_message(WsOpcode::kText, payload.data(), payload.size())) {
            CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
            ++flushes;
            CHECK_TRUE(rig.stream.queue_message(WsOpcode::kText, payload.data(), payload.size()));
        }
        const Bytes frame = zero_masked_frame(0x81, payload);
        expected.insert(expected.end(), frame.begin(), frame.end());
    }
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    ++flushes;
    UNSIGNED_LONGS_EQUAL(2, flushes);  // 106,000 bytes through a 64 KiB buffer
    UNSIGNED_LONGS_EQUAL(2, rig.transport.write_calls() + rig.transport.writev_calls());
    UNSIGNED_LONGS_EQUAL(2, rig.stream.counters().write_calls);
    UNSIGNED_LONGS_EQUAL(1000, rig.stream.counters().frames_sent);
    check_bytes(expected, rig.transport.output());
}

TEST(WsStreamSend, PartialWritesResumeExactly) {
    Rig rig;
    rig.transport.set_max_write_size(7);
    Bytes expected;
    for (int i = 0; i < 3; ++i) {
        const Bytes payload = pattern(static_cast<std::size_t>(20 + i * 50));
        CHECK_TRUE(rig.stream.queue_message(WsOpcode::kBinary, payload.data(), payload.size()));
        expected = cat(expected, zero_masked_frame(0x82, payload));
    }
    std::size_t flushes = 0;
    while (rig.stream.queued_bytes() != 0) {
        CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
        ++flushes;
        UNSIGNED_LONGS_EQUAL(flushes, rig.transport.write_calls() + rig.transport.writev_calls());
    }
    UNSIGNED_LONGS_EQUAL((expected.size() + 6) / 7, flushes);
    check_bytes(expected, rig.transport.output());
    // Nothing queued: flushing makes no call.
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    UNSIGNED_LONGS_EQUAL(flushes, rig.transport.write_calls() + rig.transport.writev_calls());
}

TEST(WsStreamSend, WrittenPrefixIsCompactedWhenRoomIsNeeded) {
    Rig rig(WsStreamConfig{}, 64, 40);
    rig.transport.set_max_write_size(20);
    CHECK_TRUE(rig.stream.queue_message(WsOpcode::kText, text("0123456789").data(), 10));
    CHECK_TRUE(rig.stream.queue_message(WsOpcode::kText, text("abcdefghij").data(), 10));
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    UNSIGNED_LONGS_EQUAL(12, rig.stream.queued_bytes());
    UNSIGNED_LONGS_EQUAL(28, rig.stream.tx_space());
    CHECK_TRUE(rig.stream.queue_message(WsOpcode::kText, text("ABCDEFGHIJ").data(), 10));
    UNSIGNED_LONGS_EQUAL(28, rig.stream.queued_bytes());
    while (rig.stream.queued_bytes() != 0) {
        CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    }
    check_bytes(cat(cat(zero_masked_frame(0x81, text("0123456789")),
                        zero_masked_frame(0x81, text("abcdefghij"))),
                    zero_masked_frame(0x81, text("ABCDEFGHIJ"))),
                rig.transport.output());
    UNSIGNED_LONGS_EQUAL(40, rig.stream.tx_space());
}

TEST(WsStreamSend, WouldBlockKeepsEverythingQueued) {
    Rig rig;
    CHECK_TRUE(rig.stream.queue_message(WsOpcode::kText, text("Hello").data(), 5));
    rig.transport.block_next_writes(1);
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    UNSIGNED_LONGS_EQUAL(11, rig.stream.queued_bytes());
    UNSIGNED_LONGS_EQUAL(0, rig.stream.counters().write_calls);
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    UNSIGNED_LONGS_EQUAL(0, rig.stream.queued_bytes());
    check_bytes(zero_masked_frame(0x81, text("Hello")), rig.transport.output());
}

TEST(WsStreamSend, WriteFailuresAreReported) {
    Rig rig;
    CHECK_TRUE(rig.stream.queue_message(WsOpcode::kText, text("Hello").data(), 5));
    rig.transport.fail_writes(TransportError::kReset);
    const WsResult failed = rig.stream.flush();
    CHECK_EQUAL(WsStatus::kTransportError, failed.status);
    CHECK_TRUE(failed.transport_error == TransportError::kReset);
    rig.transport.fail_writes(TransportError::kNone);
    CHECK_EQUAL(WsStatus::kClosed, rig.stream.flush().status);
}

TEST(WsStreamSend, NothingWorksWithoutATransport) {
    FixedMasks masks;
    Bytes rx(64), tx(64);
    WsStream stream(WsStreamConfig{}, rx.data(), rx.size(), tx.data(), tx.size(), masks);
    CHECK_FALSE(stream.attached());
    CHECK_FALSE(stream.attach(nullptr));
    CHECK_FALSE(stream.queue_message(WsOpcode::kText, text("a").data(), 1));
    CHECK_EQUAL(WsStatus::kNotAttached, stream.last_error());
    CHECK_FALSE(stream.queue_ping(nullptr, 0));
    CHECK_FALSE(stream.queue_close(1000));
    CHECK_FALSE(stream.queue_raw(text("a").data(), 1));
    CHECK_EQUAL(WsStatus::kNotAttached, stream.flush().status);
    Recorder handler;
    CHECK_EQUAL(WsStatus::kNotAttached, stream.read_frames(handler).status);
    tether::net::UpgradeResponseParser parser(kAccept, nullptr, 0, false);
    HandshakeStatus status = HandshakeStatus::kOk;
    CHECK_EQUAL(WsStatus::kNotAttached, stream.read_handshake(&parser, &status).status);
    CHECK_EQUAL(HandshakeStatus::kNeedMore, status);
}

TEST(WsStreamSend, DetachDropsQueuedBytes) {
    Rig rig;
    CHECK_TRUE(rig.stream.queue_message(WsOpcode::kText, text("Hello").data(), 5));
    rig.stream.detach();
    CHECK_FALSE(rig.stream.attached());
    UNSIGNED_LONGS_EQUAL(0, rig.stream.queued_bytes());
    CHECK_EQUAL(WsStatus::kNotAttached, rig.stream.flush().status);
}

TEST(WsStreamSend, StatusNames) {
    const WsStatus all[] = {WsStatus::kOk,
                            WsStatus::kClosed,
                            WsStatus::kTransportError,
                            WsStatus::kProtocolError,
                            WsStatus::kEntropyFailure,
                            WsStatus::kNotAttached};
    for (WsStatus a : all) {
        STRCMP_CONTAINS("", tether::net::to_string(a));
        for (WsStatus b : all) {
            if (a != b) {
                CHECK(std::strcmp(tether::net::to_string(a), tether::net::to_string(b)) != 0);
            }
        }
    }
    STRCMP_EQUAL("protocol_error", tether::net::to_string(WsStatus::kProtocolError));
    STRCMP_EQUAL("unknown", tether::net::to_string(static_cast<WsStatus>(99)));
}

// --- Receiving ----------------------------------------------------------------

TEST_GROUP(WsStreamReceive){};

TEST(WsStreamReceive, SingleFrameText) {
    for_each_delivery(Bytes{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'}, [](Rig& rig, const WsResult& r) {
        CHECK_EQUAL(WsStatus::kOk, r.status);
        UNSIGNED_LONGS_EQUAL(1, rig.handler.messages.size());
        CHECK_TRUE(rig.handler.messages[0].first == WsOpcode::kText);
        check_bytes(text("Hello"), rig.handler.messages[0].second);
        UNSIGNED_LONGS_EQUAL(1, rig.handler.frames);
        UNSIGNED_LONGS_EQUAL(1, rig.stream.counters().frames_received);
        UNSIGNED_LONGS_EQUAL(1, rig.stream.counters().messages_received);
        UNSIGNED_LONGS_EQUAL(7, rig.stream.counters().bytes_read);
    });
}

TEST(WsStreamReceive, FragmentedText) {
    for_each_delivery(Bytes{0x01, 0x03, 'H', 'e', 'l', 0x80, 0x02, 'l', 'o'},
                      [](Rig& rig, const WsResult& r) {
                          CHECK_EQUAL(WsStatus::kOk, r.status);
                          UNSIGNED_LONGS_EQUAL(1, rig.handler.messages.size());
                          check_bytes(text("Hello"), rig.handler.messages[0].second);
                          UNSIGNED_LONGS_EQUAL(2, rig.handler.frames);
                          UNSIGNED_LONGS_EQUAL(2, rig.stream.counters().frames_received);
                      });
}

TEST(WsStreamReceive, CodePointSplitAcrossFragments) {
    // U+00E9 is C3 A9; the fragments split it.
    for_each_delivery(Bytes{0x01, 0x02, 'a', 0xC3, 0x80, 0x01, 0xA9},
                      [](Rig& rig, const WsResult& r) {
                          CHECK_EQUAL(WsStatus::kOk, r.status);
                          UNSIGNED_LONGS_EQUAL(1, rig.handler.messages.size());
                          check_bytes(Bytes{'a', 0xC3, 0xA9}, rig.handler.messages[0].second);
                      });
}

TEST(WsStreamReceive, SeveralMessagesInARow) {
    const Bytes input = cat(cat(server_frame(0x81, text("one")), server_frame(0x82, pattern(300))),
                            server_frame(0x81, Bytes{}));
    for_each_delivery(input, [](Rig& rig, const WsResult& r) {
        CHECK_EQUAL(WsStatus::kOk, r.status);
        UNSIGNED_LONGS_EQUAL(3, rig.handler.messages.size());
        check_bytes(text("one"), rig.handler.messages[0].second);
        CHECK_TRUE(rig.handler.messages[1].first == WsOpcode::kBinary);
        check_bytes(pattern(300), rig.handler.messages[1].second);
        UNSIGNED_LONGS_EQUAL(0, rig.handler.messages[2].second.size());
    });
}

TEST(WsStreamReceive, BinaryWithSixteenAndSixtyFourBitLengths) {
    const Bytes small = server_frame(0x82, pattern(256));
    check_bytes(Bytes{0x82, 0x7E, 0x01, 0x00}, Bytes(small.begin(), small.begin() + 4));
    const Bytes large = server_frame(0x82, pattern(65536));
    check_bytes(Bytes{0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0},
                Bytes(large.begin(), large.begin() + 10));
    WsStreamConfig config;
    config.max_message_size = 65536;
    for (std::size_t chunk : {std::size_t{0}, std::size_t{1}, std::size_t{13}, std::size_t{5000}}) {
        Rig rig(config);
        CHECK_EQUAL(WsStatus::kOk, feed(rig, cat(small, large), chunk).status);
        UNSIGNED_LONGS_EQUAL(2, rig.handler.messages.size());
        check_bytes(pattern(256), rig.handler.messages[0].second);
        check_bytes(pattern(65536), rig.handler.messages[1].second);
    }
}

TEST(WsStreamReceive, PingIsAnsweredWithThePayload) {
    for_each_delivery(Bytes{0x89, 0x05, 'H', 'e', 'l', 'l', 'o'}, [](Rig& rig, const WsResult& r) {
        CHECK_EQUAL(WsStatus::kOk, r.status);
        UNSIGNED_LONGS_EQUAL(1, rig.handler.frames);
        UNSIGNED_LONGS_EQUAL(1, rig.stream.counters().pings_answered);
        CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
        check_bytes(zero_masked_frame(0x8A, text("Hello")), rig.transport.output());
        CHECK_TRUE(rig.handler.messages.empty());
    });
}

TEST(WsStreamReceive, InterleavedPingInsideAFragmentedMessage) {
    const Bytes input{0x01, 0x03, 'H', 'e', 'l', 0x89, 0x02, 'h', 'i', 0x80, 0x02, 'l', 'o'};
    for_each_delivery(input, [](Rig& rig, const WsResult& r) {
        CHECK_EQUAL(WsStatus::kOk, r.status);
        UNSIGNED_LONGS_EQUAL(1, rig.handler.messages.size());
        check_bytes(text("Hello"), rig.handler.messages[0].second);
        UNSIGNED_LONGS_EQUAL(3, rig.handler.frames);
        CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
        check_bytes(zero_masked_frame(0x8A, text("hi")), rig.transport.output());
    });
}

TEST(WsStreamReceive, InterleavedPongAndCloseInsideAFragmentedMessage) {
    const Bytes input = cat(cat(Bytes{0x02, 0x01, 'a', 0x8A, 0x01, 'p', 0x00, 0x01, 'b'},
                                server_frame(0x88, close_payload(1001, text("away")))),
                            Bytes{0x80, 0x01, 'c'});
    for_each_delivery(input, [](Rig& rig, const WsResult& r) {
        CHECK_EQUAL(WsStatus::kOk, r.status);
        UNSIGNED_LONGS_EQUAL(1, rig.handler.pongs.size());
        check_bytes(text("p"), rig.handler.pongs[0]);
        UNSIGNED_LONGS_EQUAL(1, rig.handler.closes);
        UNSIGNED_LONGS_EQUAL(1001, rig.handler.close_code);
        check_bytes(text("away"), rig.handler.close_reason);
        CHECK_TRUE(rig.stream.close_received());
        CHECK_TRUE(rig.handler.messages.empty());  // nothing read after the close
    });
}

TEST(WsStreamReceive, LongPongInManyReads) {
    const Bytes payload = pattern(125);
    for_each_delivery(server_frame(0x8A, payload), [&payload](Rig& rig, const WsResult& r) {
        CHECK_EQUAL(WsStatus::kOk, r.status);
        UNSIGNED_LONGS_EQUAL(1, rig.handler.pongs.size());
        check_bytes(payload, rig.handler.pongs[0]);
    });
}

TEST(WsStreamReceive, CloseCodeAndReasonReachTheHandler) {
    const Bytes input =
        cat(server_frame(0x88, close_payload(1000, text("bye"))), server_frame(0x81, text("x")));
    for_each_delivery(input, [](Rig& rig, const WsResult& r) {
        CHECK_EQUAL(WsStatus::kOk, r.status);
        CHECK_TRUE(rig.stream.close_received());
        UNSIGNED_LONGS_EQUAL(1, rig.handler.closes);
        UNSIGNED_LONGS_EQUAL(1000, rig.handler.close_code);
        check_bytes(text("bye"), rig.handler.close_reason);
        CHECK_TRUE(rig.handler.messages.empty());
        CHECK_EQUAL(WsStatus::kOk, rig.stream.read_frames(rig.handler).status);
        CHECK_TRUE(rig.handler.messages.empty());
    });
}

TEST(WsStreamReceive, CloseWithoutCodeReportsNoStatus) {
    for_each_delivery(Bytes{0x88, 0x00}, [](Rig& rig, const WsResult& r) {
        CHECK_EQUAL(WsStatus::kOk, r.status);
        UNSIGNED_LONGS_EQUAL(tether::net::kCloseNoStatus, rig.handler.close_code);
        UNSIGNED_LONGS_EQUAL(0, rig.handler.close_reason.size());
    });
}

TEST(WsStreamReceive, AllowedCloseCodesAreAccepted) {
    for (int code : {1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999}) {
        Rig rig;
        CHECK_EQUAL(
            WsStatus::kOk,
            feed(rig, server_frame(0x88, close_payload(static_cast<std::uint16_t>(code))), 0)
                .status);
        UNSIGNED_LONGS_EQUAL(code, rig.handler.close_code);
    }
}

TEST(WsStreamReceive, MaskedServerFrameIs1002) {
    expect_protocol_error(Bytes{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58},
                          1002);
}

TEST(WsStreamReceive, ReservedBitsAre1002) {
    expect_protocol_error(Bytes{0xC1, 0x01, 'a'}, 1002);
    expect_protocol_error(Bytes{0xA1, 0x01, 'a'}, 1002);
    expect_protocol_error(Bytes{0x91, 0x01, 'a'}, 1002);
}

TEST(WsStreamReceive, UnknownOpcodesAre1002) {
    for (int opcode : {0x3, 0x7, 0xB, 0xF}) {
        expect_protocol_error(Bytes{static_cast<std::uint8_t>(0x80 | opcode), 0x01, 'a'}, 1002);
    }
}

TEST(WsStreamReceive, OversizedOrFragmentedControlFrameIs1002) {
    expect_protocol_error(cat(Bytes{0x89, 0x7E, 0x00, 0x7E}, pattern(126)), 1002);
    expect_protocol_error(Bytes{0x09, 0x01, 'a'}, 1002);
    expect_protocol_error(Bytes{0x08, 0x00}, 1002);
}

TEST(WsStreamReceive, LengthNotInFewestBytesIs1002) {
    expect_protocol_error(Bytes{0x81, 0x7E, 0x00, 0x05, 'H', 'e', 'l', 'l', 'o'}, 1002);
}

TEST(WsStreamReceive, ContinuationWithoutAMessageIs1002) {
    expect_protocol_error(Bytes{0x80, 0x01, 'a'}, 1002);
    expect_protocol_error(Bytes{0x81, 0x01, 'a', 0x80, 0x01, 'b'}, 1002, WsStreamConfig{}, 1);
}

TEST(WsStreamReceive, NewMessageInsideAFragmentedOneIs1002) {
    expect_protocol_error(Bytes{0x01, 0x01, 'a', 0x81, 0x01, 'b'}, 1002);
    expect_protocol_error(Bytes{0x01, 0x01, 'a', 0x02, 0x01, 'b'}, 1002);
}

TEST(WsStreamReceive, CloseWithOneBytePayloadIs1002) {
    expect_protocol_error(Bytes{0x88, 0x01, 0x03}, 1002);
}

TEST(WsStreamReceive, CloseCodesNotAllowedOnTheWireAre1002) {
    for (int code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535}) {
        expect_protocol_error(server_frame(0x88, close_payload(static_cast<std::uint16_t>(code))),
                              1002);
    }
}

TEST(WsStreamReceive, CloseReasonInvalidUtf8Is1007) {
    expect_protocol_error(server_frame(0x88, close_payload(1000, Bytes{0xC3, 0x28})), 1007);
}

TEST(WsStreamReceive, TextInvalidUtf8Is1007) {
    expect_protocol_error(Bytes{0x81, 0x02, 0xC3, 0x28}, 1007);
    // Truncated at the end of the message.
    expect_protocol_error(Bytes{0x81, 0x02, 'a', 0xC3}, 1007);
    expect_protocol_error(Bytes{0x01, 0x01, 0xE2, 0x80, 0x01, 0x82}, 1007);
}

TEST(WsStreamReceive, InvalidUtf8FailsWithoutWaitingForTheEnd) {
    // The first fragment is already invalid; the message never ends.
    expect_protocol_error(Bytes{0x01, 0x02, 0xC0, 0xAF}, 1007);
    // And inside a long frame, before its payload is complete.
    expect_protocol_error(Bytes{0x81, 0x7E, 0x01, 0x00, 'o', 'k', 0xFF}, 1007);
}

TEST(WsStreamReceive, Utf8CheckCanBeTurnedOff) {
    WsStreamConfig config;
    config.validate_utf8 = false;
    for_each_delivery(
        cat(Bytes{0x81, 0x02, 0xC3, 0x28}, server_frame(0x88, close_payload(1000, Bytes{0xFF}))),
        [](Rig& rig, const WsResult& r) {
            CHECK_EQUAL(WsStatus::kOk, r.status);
            UNSIGNED_LONGS_EQUAL(1, rig.handler.messages.size());
            UNSIGNED_LONGS_EQUAL(1, rig.handler.closes);
        },
        config);
}

TEST(WsStreamReceive, MessageTooBigIs1009BeforeThePayloadArrives) {
    WsStreamConfig config;
    config.max_message_size = 100;
    // Declared 101 bytes; only one payload byte ever arrives.
    expect_protocol_error(Bytes{0x82, 0x65, 0x00}, 1009, config);
    // Two fragments of 60.
    expect_protocol_error(cat(server_frame(0x02, pattern(60)), Bytes{0x80, 0x3C, 0x00}), 1009,
                          config);
    // A 64-bit length far beyond any buffer.
    expect_protocol_error(Bytes{0x82, 0x7F, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},
                          1009, config);
    // Exactly the limit is fine.
    for_each_delivery(
        cat(server_frame(0x02, pattern(60)), server_frame(0x80, pattern(40))),
        [](Rig& rig, const WsResult& r) {
            CHECK_EQUAL(WsStatus::kOk, r.status);
            UNSIGNED_LONGS_EQUAL(1, rig.handler.messages.size());
            UNSIGNED_LONGS_EQUAL(100, rig.handler.messages[0].second.size());
        },
        config);
}

TEST(WsStreamReceive, MessageLimitIsClampedToTheReceiveBuffer) {
    WsStreamConfig config;
    config.max_message_size = 1 << 20;
    Rig rig(config, 50);
    const WsResult r = feed(rig, server_frame(0x82, pattern(51)), 0);
    CHECK_EQUAL(WsStatus::kProtocolError, r.status);
    UNSIGNED_LONGS_EQUAL(1009, r.close_code);
}

TEST(WsStreamReceive, EofMidFrameIsClosed) {
    for (std::size_t chunk : kDeliveries) {
        Rig rig;
        rig.transport.push_input_split(Bytes{0x81, 0x05, 'H', 'e'}, chunk);
        rig.transport.push_eof();
        CHECK_EQUAL(WsStatus::kClosed, rig.stream.read_frames(rig.handler).status);
        CHECK_TRUE(rig.handler.messages.empty());
        CHECK_FALSE(rig.stream.close_received());
    }
}

TEST(WsStreamReceive, EofBetweenFramesDeliversWhatCameBefore) {
    Rig rig;
    rig.transport.push_input(server_frame(0x81, text("last")));
    rig.transport.push_eof();
    CHECK_EQUAL(WsStatus::kClosed, rig.stream.read_frames(rig.handler).status);
    UNSIGNED_LONGS_EQUAL(1, rig.handler.messages.size());
}

TEST(WsStreamReceive, TransportErrorCarriesTheReason) {
    Rig rig;
    rig.transport.push_input(Bytes{0x81, 0x05, 'H'});
    rig.transport.push_error(TransportError::kReset);
    const WsResult r = rig.stream.read_frames(rig.handler);
    CHECK_EQUAL(WsStatus::kTransportError, r.status);
    CHECK_TRUE(r.transport_error == TransportError::kReset);
}

TEST(WsStreamReceive, PendingBytesAreDrainedBeforeReturning) {
    Rig rig;
    rig.transport.set_pending_tracks_input(true);
    rig.transport.set_max_read_size(5);
    for (int i = 0; i < 3; ++i) {
        rig.transport.push_input(server_frame(0x81, text("message " + std::to_string(i))));
    }
    CHECK_TRUE(rig.transport.pending() > 0);
    CHECK_EQUAL(WsStatus::kOk, rig.stream.read_frames(rig.handler).status);
    UNSIGNED_LONGS_EQUAL(0, rig.transport.pending());
    UNSIGNED_LONGS_EQUAL(3, rig.handler.messages.size());
    check_bytes(text("message 2"), rig.handler.messages[2].second);
}

TEST(WsStreamReceive, OnePingAnswerIsOwedWhenTheBufferIsFull) {
    Rig rig(WsStreamConfig{}, 256, 20);
    CHECK_TRUE(rig.stream.queue_message(WsOpcode::kBinary, pattern(12).data(), 12));  // 18 bytes
    rig.transport.push_input(Bytes{0x89, 0x01, 'a', 0x89, 0x01, 'b'});
    CHECK_EQUAL(WsStatus::kOk, rig.stream.read_frames(rig.handler).status);
    UNSIGNED_LONGS_EQUAL(0, rig.stream.counters().pings_answered);
    UNSIGNED_LONGS_EQUAL(18, rig.stream.queued_bytes());
    // A refused user call is not overwritten by the internal pong attempt.
    CHECK_FALSE(rig.stream.queue_message(WsOpcode::kText, text("abc").data(), 3));
    CHECK_EQUAL(WsStatus::kOk, rig.stream.last_error());
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);  // data out, pong queued after
    UNSIGNED_LONGS_EQUAL(1, rig.stream.counters().pings_answered);
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    check_bytes(cat(zero_masked_frame(0x82, pattern(12)), zero_masked_frame(0x8A, text("b"))),
                rig.transport.output());
}

TEST(WsStreamReceive, OwedPongIsQueuedByTheNextRead) {
    Rig rig(WsStreamConfig{}, 256, 20);
    CHECK_TRUE(rig.stream.queue_message(WsOpcode::kBinary, pattern(12).data(), 12));
    rig.transport.push_input(Bytes{0x89, 0x01, 'a'});
    CHECK_EQUAL(WsStatus::kOk, rig.stream.read_frames(rig.handler).status);
    rig.transport.block_next_writes(1);
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    UNSIGNED_LONGS_EQUAL(0, rig.stream.counters().pings_answered);
    rig.transport.set_max_write_size(18);
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    // The write freed the room and flush() queued the pong right after it.
    UNSIGNED_LONGS_EQUAL(1, rig.stream.counters().pings_answered);
    CHECK_EQUAL(WsStatus::kOk, rig.stream.read_frames(rig.handler).status);
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    check_bytes(cat(zero_masked_frame(0x82, pattern(12)), zero_masked_frame(0x8A, text("a"))),
                rig.transport.output());
}

TEST(WsStreamReceive, OwedPongGoesOutOnTheNextReadWhenRoomAppears) {
    Rig rig(WsStreamConfig{}, 256, 20);
    CHECK_TRUE(rig.stream.queue_message(WsOpcode::kBinary, pattern(12).data(), 12));
    rig.transport.push_input(Bytes{0x89, 0x01, 'a'});
    CHECK_EQUAL(WsStatus::kOk, rig.stream.read_frames(rig.handler).status);
    rig.stream.detach();
    CHECK_TRUE(rig.stream.attach(&rig.transport));
    // A new connection owes nothing.
    CHECK_EQUAL(WsStatus::kOk, rig.stream.read_frames(rig.handler).status);
    UNSIGNED_LONGS_EQUAL(0, rig.stream.queued_bytes());
}

TEST(WsStreamReceive, EntropyFailureWhileAnsweringAPing) {
    Rig rig;
    rig.masks.set_failing(true);
    rig.transport.push_input(Bytes{0x89, 0x01, 'a'});
    CHECK_EQUAL(WsStatus::kEntropyFailure, rig.stream.read_frames(rig.handler).status);
    CHECK_EQUAL(WsStatus::kEntropyFailure, rig.stream.flush().status);
    CHECK_EQUAL(WsStatus::kEntropyFailure, rig.stream.read_frames(rig.handler).status);
    rig.masks.set_failing(false);
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    check_bytes(zero_masked_frame(0x8A, text("a")), rig.transport.output());
}

TEST(WsStreamReceive, ReattachForgetsAPartialFrame) {
    Rig rig;
    rig.transport.push_input(Bytes{0x01, 0x03, 'H', 'e', 'l', 0x81, 0x05, 'x'});
    CHECK_EQUAL(WsStatus::kProtocolError, rig.stream.read_frames(rig.handler).status);
    FakeTransport second;
    CHECK_TRUE(rig.stream.attach(&second));
    second.push_input(Bytes{0x81, 0x02, 'o', 'k'});
    CHECK_EQUAL(WsStatus::kOk, rig.stream.read_frames(rig.handler).status);
    UNSIGNED_LONGS_EQUAL(1, rig.handler.messages.size());
    check_bytes(text("ok"), rig.handler.messages[0].second);
    // A connection cut in the middle of a frame.
    FakeTransport third;
    third.push_input(Bytes{0x82, 0x7E, 0x10});
    CHECK_TRUE(rig.stream.attach(&third));
    CHECK_EQUAL(WsStatus::kOk, rig.stream.read_frames(rig.handler).status);
    FakeTransport fourth;
    fourth.push_input(Bytes{0x81, 0x02, 'o', 'k'});
    CHECK_TRUE(rig.stream.attach(&fourth));
    CHECK_EQUAL(WsStatus::kOk, rig.stream.read_frames(rig.handler).status);
    UNSIGNED_LONGS_EQUAL(2, rig.handler.messages.size());
}

TEST(WsStreamReceive, ReattachBetweenFramesAllocatesNothing) {
    Rig rig;
    rig.transport.push_input(Bytes{0x81, 0x02, 'o', 'k'});
    CHECK_EQUAL(WsStatus::kOk, rig.stream.read_frames(rig.handler).status);
    FakeTransport second;
    tether::test::AllocationCounter counter;
    CHECK_TRUE(rig.stream.attach(&second));
    UNSIGNED_LONGS_EQUAL(0, counter.count());
}

// --- The opening handshake ----------------------------------------------------

TEST_GROUP(WsStreamHandshake){};

TEST(WsStreamHandshake, FramesInTheSameChunkAsTheResponse) {
    const Bytes input = cat(text(kResponse), Bytes{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'});
    for (std::size_t chunk : kDeliveries) {
        Rig rig;
        CHECK_TRUE(rig.stream.queue_raw(text("GET / HTTP/1.1\r\n\r\n").data(), 18));
        CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
        tether::net::UpgradeResponseParser parser(kAccept, nullptr, 0, false);
        HandshakeStatus status = HandshakeStatus::kNeedMore;
        const std::size_t step = chunk == 0 ? input.size() : chunk;
        std::size_t offset = 0;
        while (status == HandshakeStatus::kNeedMore && offset < input.size()) {
            const std::size_t size = std::min(step, input.size() - offset);
            rig.transport.push_input(input.data() + offset, size);
            offset += size;
            CHECK_EQUAL(WsStatus::kOk, rig.stream.read_handshake(&parser, &status).status);
        }
        CHECK_EQUAL(HandshakeStatus::kOk, status);
        CHECK_TRUE(rig.handler.messages.empty());
        rig.transport.push_input(
            Bytes(input.begin() + static_cast<std::ptrdiff_t>(offset), input.end()));
        CHECK_EQUAL(WsStatus::kOk, rig.stream.read_frames(rig.handler).status);
        UNSIGNED_LONGS_EQUAL(1, rig.handler.messages.size());
        check_bytes(text("Hello"), rig.handler.messages[0].second);
        STRCMP_EQUAL("GET / HTTP/1.1\r\n\r\n", rig.transport.output_string().c_str());
    }
}

TEST(WsStreamHandshake, CompletedParserLeavesLaterBytesForFrames) {
    Rig rig;
    tether::net::UpgradeResponseParser parser(kAccept, nullptr, 0, false);
    HandshakeStatus status = HandshakeStatus::kNeedMore;
    rig.transport.push_input(text(kResponse));
    CHECK_EQUAL(WsStatus::kOk, rig.stream.read_handshake(&parser, &status).status);
    CHECK_EQUAL(HandshakeStatus::kOk, status);
    rig.transport.push_input(Bytes{0x81, 0x01, 'a'});
    CHECK_EQUAL(WsStatus::kOk, rig.stream.read_handshake(&parser, &status).status);
    CHECK_EQUAL(HandshakeStatus::kOk, status);
    CHECK_EQUAL(WsStatus::kOk, rig.stream.read_frames(rig.handler).status);
    UNSIGNED_LONGS_EQUAL(1, rig.handler.messages.size());
}

TEST(WsStreamHandshake, IncompleteResponseWouldBlock) {
    Rig rig;
    tether::net::UpgradeResponseParser parser(kAccept, nullptr, 0, false);
    HandshakeStatus status = HandshakeStatus::kOk;
    CHECK_EQUAL(WsStatus::kOk, rig.stream.read_handshake(&parser, &status).status);
    CHECK_EQUAL(HandshakeStatus::kNeedMore, status);
    rig.transport.push_input(text("HTTP/1.1 101 Switching"));
    CHECK_EQUAL(WsStatus::kOk, rig.stream.read_handshake(&parser, &status).status);
    CHECK_EQUAL(HandshakeStatus::kNeedMore, status);
}

TEST(WsStreamHandshake, RefusalIsThePartersAnswer) {
    Rig rig;
    tether::net::UpgradeResponseParser parser(kAccept, nullptr, 0, false);
    HandshakeStatus status = HandshakeStatus::kOk;
    rig.transport.push_input(text("HTTP/1.1 503 Busy\r\nRetry-After: 30\r\n\r\n"));
    CHECK_EQUAL(WsStatus::kOk, rig.stream.read_handshake(&parser, &status).status);
    CHECK_EQUAL(HandshakeStatus::kNotSwitching, status);
    UNSIGNED_LONGS_EQUAL(30, parser.retry_after_seconds());
}

TEST(WsStreamHandshake, EofAndErrorsAreReported) {
    tether::net::UpgradeResponseParser parser(kAccept, nullptr, 0, false);
    HandshakeStatus status = HandshakeStatus::kOk;
    {
        Rig rig;
        rig.transport.push_input(text("HTTP/1.1 101"));
        rig.transport.push_eof();
        CHECK_EQUAL(WsStatus::kClosed, rig.stream.read_handshake(&parser, &status).status);
        CHECK_EQUAL(HandshakeStatus::kNeedMore, status);
    }
    {
        Rig rig;
        parser.reset(kAccept, nullptr, 0, false);
        rig.transport.push_error(TransportError::kTlsFailed);
        const WsResult r = rig.stream.read_handshake(&parser, &status);
        CHECK_EQUAL(WsStatus::kTransportError, r.status);
        CHECK_TRUE(r.transport_error == TransportError::kTlsFailed);
    }
}

TEST(WsStreamHandshake, NullArgumentsAreRejected) {
    Rig rig;
    tether::net::UpgradeResponseParser parser(kAccept, nullptr, 0, false);
    HandshakeStatus status = HandshakeStatus::kOk;
    rig.transport.push_input(text(kResponse));
    CHECK_EQUAL(WsStatus::kOk, rig.stream.read_handshake(nullptr, &status).status);
    CHECK_EQUAL(HandshakeStatus::kInvalidArgument, status);
    CHECK_EQUAL(WsStatus::kOk, rig.stream.read_handshake(&parser, nullptr).status);
    UNSIGNED_LONGS_EQUAL(0, rig.transport.read_calls());
}

// --- Allocation ---------------------------------------------------------------

namespace {

struct CountingHandler final : tether::net::WsHandler {
    std::size_t messages = 0;
    std::size_t bytes = 0;
    void on_message(WsOpcode, const std::uint8_t*, std::size_t size) override {
        ++messages;
        bytes += size;
    }
    void on_pong(const std::uint8_t*, std::size_t) override {}
    void on_close(std::uint16_t, const std::uint8_t*, std::size_t) override {}
};

}  // namespace

TEST_GROUP(WsStreamAllocation){};

TEST(WsStreamAllocation, TenThousandMessagesEachWayAllocateNothing) {
    Rig rig(WsStreamConfig{}, 64 * 1024, 64 * 1024);
    rig.transport.set_discard_output(true);
    const Bytes payload = pattern(100);
    Bytes input;
    for (int i = 0; i < 10000; ++i) {
        // Alternate single frames and two fragments, with a ping now and then.
        const auto append = [&input](const Bytes& frame) {
            input.insert(input.end(), frame.begin(), frame.end());
        };
        if (i % 2 == 0) {
            append(server_frame(0x82, payload));
        } else {
            append(server_frame(0x02, Bytes(payload.begin(), payload.begin() + 40)));
            append(server_frame(0x80, Bytes(payload.begin() + 40, payload.end())));
        }
        if (i % 1000 == 0) {
            append(server_frame(0x89, text("beat")));
        }
    }
    rig.transport.push_input_split(input, 4000);
    CountingHandler handler;

    tether::test::AllocationCounter counter;
    for (int i = 0; i < 10000; ++i) {
        if (!rig.stream.queue_message(WsOpcode::kText, payload.data(), payload.size())) {
            CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
            CHECK_TRUE(rig.stream.queue_message(WsOpcode::kText, payload.data(), payload.size()));
        }
    }
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    CHECK_EQUAL(WsStatus::kOk, rig.stream.read_frames(handler).status);
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    const std::size_t allocations = counter.count();

    UNSIGNED_LONGS_EQUAL(0, allocations);
    UNSIGNED_LONGS_EQUAL(10000, handler.messages);
    UNSIGNED_LONGS_EQUAL(10000 * 100, handler.bytes);
    UNSIGNED_LONGS_EQUAL(10, rig.stream.counters().pings_answered);
    UNSIGNED_LONGS_EQUAL(10000 * 106 + 10 * 10, rig.transport.bytes_written());
}

// --- The server role ------------------------------------------------------------

namespace {

WsStreamConfig server_config() {
    WsStreamConfig config;
    config.server = true;
    return config;
}

// A client frame masked with `key` (most significant byte first on the wire).
Bytes masked_frame(std::uint8_t first, const Bytes& payload, std::uint32_t key) {
    Bytes unmasked = server_frame(first, payload);
    const std::size_t header = unmasked.size() - payload.size();
    unmasked[1] = static_cast<std::uint8_t>(unmasked[1] | 0x80u);
    Bytes out(unmasked.begin(), unmasked.begin() + static_cast<std::ptrdiff_t>(header));
    const std::uint8_t key_bytes[4] = {
        static_cast<std::uint8_t>(key >> 24), static_cast<std::uint8_t>(key >> 16),
        static_cast<std::uint8_t>(key >> 8), static_cast<std::uint8_t>(key)};
    out.insert(out.end(), key_bytes, key_bytes + 4);
    for (std::size_t i = 0; i < payload.size(); ++i) {
        out.push_back(static_cast<std::uint8_t>(payload[i] ^ key_bytes[i % 4]));
    }
    return out;
}

}  // namespace

TEST_GROUP(WsStreamServer){};

TEST(WsStreamServer, SendsUnmaskedFramesWithoutTouchingTheMaskSource) {
    Rig rig(server_config(), 1024, 1024, 0x37fa213du);
    CHECK_TRUE(rig.stream.queue_message(WsOpcode::kText, text("Hello").data(), 5));
    CHECK_TRUE(rig.stream.queue_ping(text("p").data(), 1));
    CHECK_TRUE(rig.stream.queue_close(1001, "bye"));
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    check_bytes(Bytes{0x81, 0x05, 'H', 'e', 'l', 'l', 'o',  // RFC 6455 5.7, unmasked
                      0x89, 0x01, 'p',                      // ping
                      0x88, 0x05, 0x03, 0xe9, 'b', 'y', 'e'},
                rig.transport.output());
    UNSIGNED_LONGS_EQUAL(0, rig.masks.calls());
}

TEST(WsStreamServer, EntropyFailureDoesNotMatterToAServer) {
    Rig rig(server_config());
    rig.masks.set_failing(true);
    CHECK_TRUE(rig.stream.queue_message(WsOpcode::kBinary, text("x").data(), 1));
    CHECK_EQUAL(WsStatus::kOk, rig.stream.last_error());
}

TEST(WsStreamServer, LargeFramesUseTheSameLengthEncodingWithoutAMask) {
    Rig rig(server_config());
    const Bytes payload = pattern(65536);
    CHECK_TRUE(rig.stream.queue_message(WsOpcode::kBinary, payload.data(), payload.size()));
    UNSIGNED_LONGS_EQUAL(65536 + 10, rig.stream.queued_bytes());
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    check_bytes(server_frame(0x82, payload), rig.transport.output());
}

TEST(WsStreamServer, MaskedClientFramesAreUnmaskedInEveryChunking) {
    const Bytes payload = pattern(300);
    const Bytes input = cat(
        cat(masked_frame(0x01, text("Hel"), 0x37fa213du),
            masked_frame(0x89, text("ping"), 0x01020304u)),
        cat(masked_frame(0x80, text("lo"), 0xdeadbeefu), masked_frame(0x82, payload, 0xa5a5a5a5u)));
    for_each_delivery(
        input,
        [&payload](Rig& rig, const WsResult& result) {
            CHECK_EQUAL(WsStatus::kOk, result.status);
            UNSIGNED_LONGS_EQUAL(2, rig.handler.messages.size());
            CHECK_TRUE(WsOpcode::kText == rig.handler.messages[0].first);
            check_bytes(text("Hello"), rig.handler.messages[0].second);
            CHECK_TRUE(WsOpcode::kBinary == rig.handler.messages[1].first);
            check_bytes(payload, rig.handler.messages[1].second);
            CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
            check_bytes(server_frame(0x8A, text("ping")), rig.transport.output());
        },
        server_config());
}

TEST(WsStreamServer, MaskedCloseReachesTheHandler) {
    Rig rig(server_config());
    CHECK_EQUAL(
        WsStatus::kOk,
        feed(rig, masked_frame(0x88, close_payload(4002, text("bad")), 0x11223344u), 0).status);
    UNSIGNED_LONGS_EQUAL(1, rig.handler.closes);
    UNSIGNED_LONGS_EQUAL(4002, rig.handler.close_code);
    check_bytes(text("bad"), rig.handler.close_reason);
    CHECK_TRUE(rig.stream.close_received());
}

TEST(WsStreamServer, UnmaskedClientFrameIs1002) {
    expect_protocol_error(server_frame(0x81, text("Hello")), 1002, server_config());
    expect_protocol_error(cat(masked_frame(0x82, text("ok"), 1u), server_frame(0x89, text("p"))),
                          1002, server_config(), 1);
}

TEST(WsStreamServer, OtherRulesAreTheClientsOnes) {
    expect_protocol_error(masked_frame(0xC1, text("x"), 5u), 1002, server_config());  // RSV1
    expect_protocol_error(masked_frame(0x81, Bytes{0xC0}, 5u), 1007, server_config());
    WsStreamConfig small = server_config();
    small.max_message_size = 10;
    expect_protocol_error(masked_frame(0x82, pattern(11), 5u), 1009, small);
}

TEST(WsStreamServer, ReattachAfterACompleteMaskedFrameReusesTheContext) {
    Rig rig(server_config());
    CHECK_EQUAL(WsStatus::kOk, feed(rig, masked_frame(0x82, pattern(200), 9u), 0).status);
    UNSIGNED_LONGS_EQUAL(1, rig.handler.messages.size());
    FakeTransport second;
    tether::test::AllocationCounter counter;
    CHECK_TRUE(rig.stream.attach(&second));
    UNSIGNED_LONGS_EQUAL(0, counter.count());
}

TEST(WsStreamServer, ReattachAfterAPartialMaskedFrameStartsClean) {
    Rig rig(server_config());
    const Bytes frame = masked_frame(0x82, pattern(200), 9u);
    rig.transport.push_input(frame.data(), 50);
    CHECK_EQUAL(WsStatus::kOk, rig.stream.read_frames(rig.handler).status);
    FakeTransport second;
    CHECK_TRUE(rig.stream.attach(&second));
    second.push_input(masked_frame(0x81, text("fresh"), 3u));
    CHECK_EQUAL(WsStatus::kOk, rig.stream.read_frames(rig.handler).status);
    UNSIGNED_LONGS_EQUAL(1, rig.handler.messages.size());
    check_bytes(text("fresh"), rig.handler.messages[0].second);
}

// --- A message in two parts -------------------------------------------------------

TEST_GROUP(WsStreamParts){};

TEST(WsStreamParts, ServerFrameIsPrefixThenData) {
    Rig rig(server_config());
    const Bytes header = pattern(10);
    const Bytes payload = text("payload");
    CHECK_TRUE(rig.stream.queue_message_parts(WsOpcode::kBinary, header.data(), header.size(),
                                              payload.data(), payload.size()));
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    check_bytes(server_frame(0x82, cat(header, payload)), rig.transport.output());
    UNSIGNED_LONGS_EQUAL(1, rig.stream.counters().frames_sent);
}

TEST(WsStreamParts, ClientFrameIsMaskedAcrossBothParts) {
    // A 3-byte prefix puts the data at mask offset 3: the key must carry on.
    for (std::size_t prefix_size :
         {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{10}, std::size_t{200}}) {
        Rig rig(WsStreamConfig{}, 70000, 70000, 0x37fa213du);
        const Bytes prefix = pattern(prefix_size);
        const Bytes data = text("the rest of the message, long enough to span the key");
        CHECK_TRUE(rig.stream.queue_message_parts(WsOpcode::kText, prefix.data(), prefix.size(),
                                                  data.data(), data.size()));
        CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
        check_bytes(masked_frame(0x81, cat(prefix, data), 0x37fa213du), rig.transport.output());
    }
}

TEST(WsStreamParts, LengthEncodingCountsBothParts) {
    Rig rig(server_config());
    const Bytes prefix = pattern(10);
    const Bytes data = pattern(65530);
    CHECK_TRUE(rig.stream.queue_message_parts(WsOpcode::kBinary, prefix.data(), prefix.size(),
                                              data.data(), data.size()));
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    check_bytes(server_frame(0x82, cat(prefix, data)), rig.transport.output());
}

TEST(WsStreamParts, EmptyDataOrEmptyPrefix) {
    Rig rig(server_config());
    const Bytes prefix = text("AB");
    CHECK_TRUE(rig.stream.queue_message_parts(WsOpcode::kBinary, prefix.data(), 2, nullptr, 0));
    CHECK_TRUE(rig.stream.queue_message_parts(WsOpcode::kBinary, nullptr, 0, prefix.data(), 2));
    CHECK_TRUE(rig.stream.queue_message_parts(WsOpcode::kBinary, nullptr, 0, nullptr, 0));
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    check_bytes(cat(cat(server_frame(0x82, prefix), server_frame(0x82, prefix)),
                    server_frame(0x82, Bytes{})),
                rig.transport.output());
}

TEST(WsStreamParts, AllOrNothingWhenTheBufferLacksRoom) {
    Rig rig(server_config(), 1024, 64);
    const Bytes prefix = pattern(10);
    const Bytes data = pattern(52);  // 2 + 10 + 52 = 64: fits exactly
    CHECK_TRUE(rig.stream.queue_message_parts(WsOpcode::kBinary, prefix.data(), prefix.size(),
                                              data.data(), data.size()));
    CHECK_FALSE(rig.stream.queue_message_parts(WsOpcode::kBinary, prefix.data(), prefix.size(),
                                               data.data(), 1));
    CHECK_EQUAL(WsStatus::kOk, rig.stream.last_error());
    UNSIGNED_LONGS_EQUAL(64, rig.stream.queued_bytes());
    CHECK_EQUAL(WsStatus::kOk, rig.stream.flush().status);
    check_bytes(server_frame(0x82, cat(prefix, data)), rig.transport.output());
}

TEST(WsStreamParts, MisuseIsRefused) {
    Rig rig(server_config());
    const Bytes bytes = pattern(4);
    CHECK_FALSE(rig.stream.queue_message_parts(WsOpcode::kPing, bytes.data(), 4, bytes.data(), 4));
    CHECK_EQUAL(WsStatus::kProtocolError, rig.stream.last_error());
    CHECK_FALSE(rig.stream.queue_message_parts(WsOpcode::kBinary, nullptr, 4, bytes.data(), 4));
    CHECK_EQUAL(WsStatus::kProtocolError, rig.stream.last_error());
    CHECK_FALSE(rig.stream.queue_message_parts(WsOpcode::kBinary, bytes.data(), 4, nullptr, 4));
    CHECK_EQUAL(WsStatus::kProtocolError, rig.stream.last_error());
    UNSIGNED_LONGS_EQUAL(0, rig.stream.queued_bytes());
    rig.stream.detach();
    CHECK_FALSE(
        rig.stream.queue_message_parts(WsOpcode::kBinary, bytes.data(), 4, bytes.data(), 4));
    CHECK_EQUAL(WsStatus::kNotAttached, rig.stream.last_error());
}

TEST(WsStreamParts, EntropyFailureQueuesNothingForAClient) {
    Rig rig;
    rig.masks.set_failing(true);
    const Bytes bytes = pattern(4);
    CHECK_FALSE(
        rig.stream.queue_message_parts(WsOpcode::kBinary, bytes.data(), 4, bytes.data(), 4));
    CHECK_EQUAL(WsStatus::kEntropyFailure, rig.stream.last_error());
    UNSIGNED_LONGS_EQUAL(0, rig.stream.queued_bytes());
}

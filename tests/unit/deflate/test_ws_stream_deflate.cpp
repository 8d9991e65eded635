// SPDX-License-Identifier: MIT
// WsStream with permessage-deflate (RFC 7692), using the zlib deflater.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fakes/fake_transport.h"
#include "fakes/fixed_masks.h"
#include "tether/deflate/zlib_deflater.h"
#include "tether/net/ws_stream.h"

#include <CppUTest/TestHarness.h>

using tether::deflate::ZlibDeflater;
using tether::net::DeflateAgreement;
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

Bytes frame(std::uint8_t first, const Bytes& payload) {
    Bytes out{first};
    const std::size_t size = payload.size();
    if (size < 126) {
        out.push_back(static_cast<std::uint8_t>(size));
    } else {
        out.push_back(126);
        out.push_back(static_cast<std::uint8_t>(size >> 8));
        out.push_back(static_cast<std::uint8_t>(size));
    }
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

const Bytes kHello = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};

struct Recorder final : tether::net::WsHandler {
    std::vector<std::string> messages;
    void on_message(WsOpcode, const std::uint8_t* data, std::size_t size) override {
        messages.emplace_back(reinterpret_cast<const char*>(data), size);
    }
    void on_pong(const std::uint8_t*, std::size_t) override {}
    void on_close(std::uint16_t, const std::uint8_t*, std::size_t) override {}
};

DeflateAgreement agreement(bool no_context_takeover = false) {
    DeflateAgreement a;
    a.active = true;
    a.client_no_context_takeover = no_context_takeover;
    a.server_no_context_takeover = no_context_takeover;
    return a;
}

struct Rig {
    explicit Rig(bool deflate = true, std::size_t max_message = 60000, std::size_t threshold = 0,
                 bool no_context_takeover = false)
        : masks(0x37fa213d),
          rx(70000),
          tx(70000),
          stream(config(max_message), rx.data(), rx.size(), tx.data(), tx.size(), masks) {
        CHECK_TRUE(stream.attach(&transport));
        if (deflate) {
            CHECK_TRUE(stream.enable_deflate(&deflater, agreement(no_context_takeover), threshold));
        }
    }
    static WsStreamConfig config(std::size_t max_message) {
        WsStreamConfig c;
        c.max_message_size = max_message;
        return c;
    }
    WsResult feed(const Bytes& input, std::size_t chunk = 0) {
        if (chunk == 0) {
            transport.push_input(input);
            return stream.read_frames(handler);
        }
        for (std::size_t at = 0; at < input.size(); at += chunk) {
            transport.push_input(input.data() + at, std::min(chunk, input.size() - at));
            const WsResult r = stream.read_frames(handler);
            if (r.status != WsStatus::kOk) {
                return r;
            }
        }
        return stream.read_frames(handler);
    }
    FixedMasks masks;
    FakeTransport transport;
    Bytes rx;
    Bytes tx;
    ZlibDeflater deflater;
    WsStream stream;
    Recorder handler;
};

void check_protocol_error(const WsResult& r, std::uint16_t code) {
    CHECK_EQUAL(static_cast<int>(WsStatus::kProtocolError), static_cast<int>(r.status));
    UNSIGNED_LONGS_EQUAL(code, r.close_code);
}

}  // namespace

TEST_GROUP(WsStreamDeflate){};

TEST(WsStreamDeflate, SendsTheRfcHelloMaskedByteForByte) {
    Rig rig;
    const Bytes hello = text("Hello");
    CHECK_TRUE(rig.stream.queue_message(WsOpcode::kText, hello.data(), hello.size()));
    CHECK_TRUE(rig.stream.queue_message(WsOpcode::kText, hello.data(), hello.size()));
    CHECK_EQUAL(static_cast<int>(WsStatus::kOk), static_cast<int>(rig.stream.flush().status));
    // FIN+RSV1+text, masked length 7, key 37 fa 21 3d, f2 48 cd c9 c9 07 00 masked;
    // then the second "Hello" with context takeover, f2 00 11 00 00.
    const Bytes key = {0x37, 0xfa, 0x21, 0x3d};
    Bytes expected = {0xc1, 0x87, 0x37, 0xfa, 0x21, 0x3d};
    for (std::size_t i = 0; i < kHello.size(); ++i) {
        expected.push_back(static_cast<std::uint8_t>(kHello[i] ^ key[i % 4]));
    }
    const Bytes second = {0xf2, 0x00, 0x11, 0x00, 0x00};
    expected.insert(expected.end(), {0xc1, 0x85, 0x37, 0xfa, 0x21, 0x3d});
    for (std::size_t i = 0; i < second.size(); ++i) {
        expected.push_back(static_cast<std::uint8_t>(second[i] ^ key[i % 4]));
    }
    CHECK(expected == rig.transport.output());
    UNSIGNED_LONGS_EQUAL(1, rig.transport.write_calls() + rig.transport.writev_calls());
    UNSIGNED_LONGS_EQUAL(2, rig.stream.counters().messages_compressed);
    UNSIGNED_LONGS_EQUAL(10, rig.stream.counters().compress_bytes_in);
    UNSIGNED_LONGS_EQUAL(12, rig.stream.counters().compress_bytes_out);
}

TEST(WsStreamDeflate, BelowTheThresholdIsSentPlain) {
    Rig rig(true, 60000, 6);
    const Bytes hello = text("Hello");
    CHECK_TRUE(rig.stream.queue_message(WsOpcode::kText, hello.data(), hello.size()));
    (void)rig.stream.flush();
    UNSIGNED_LONGS_EQUAL(0x81, rig.transport.output()[0]);
    UNSIGNED_LONGS_EQUAL(0, rig.stream.counters().messages_compressed);
}

TEST(WsStreamDeflate, ManySmallCompressedMessagesCoalesce) {
    Rig rig;
    const Bytes m = text("{\"temp\":21.5,\"humidity\":40}");
    for (int i = 0; i < 100; ++i) {
        CHECK_TRUE(rig.stream.queue_message(WsOpcode::kText, m.data(), m.size()));
    }
    (void)rig.stream.flush();
    UNSIGNED_LONGS_EQUAL(1, rig.transport.write_calls() + rig.transport.writev_calls());
    CHECK(rig.stream.counters().compress_bytes_out < rig.stream.counters().compress_bytes_in / 4);
}

TEST(WsStreamDeflate, ReceivesTheRfcExamplesWholeAndByteByByte) {
    for (std::size_t chunk : {0u, 1u, 3u}) {
        Rig rig;
        Bytes input = frame(0xc1, kHello);
        const Bytes again = frame(0xc1, Bytes{0xf2, 0x00, 0x11, 0x00, 0x00});
        const Bytes stored =
            frame(0xc1, Bytes{0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00});
        input.insert(input.end(), again.begin(), again.end());
        input.insert(input.end(), stored.begin(), stored.end());
        CHECK_EQUAL(static_cast<int>(WsStatus::kOk),
                    static_cast<int>(rig.feed(input, chunk).status));
        UNSIGNED_LONGS_EQUAL(3, rig.handler.messages.size());
        for (const std::string& m : rig.handler.messages) {
            STRCMP_EQUAL("Hello", m.c_str());
        }
    }
}

TEST(WsStreamDeflate, ReceivesAFragmentedCompressedMessage) {
    // RFC 7692 section 7.2.3.1 fragments: f2 48 cd / c9 c9 07 00, RSV1 on the first only,
    // with a ping between them.
    Rig rig;
    Bytes input = frame(0x41, Bytes{0xf2, 0x48, 0xcd});
    const Bytes ping = frame(0x89, Bytes{});
    const Bytes rest = frame(0x80, Bytes{0xc9, 0xc9, 0x07, 0x00});
    input.insert(input.end(), ping.begin(), ping.end());
    input.insert(input.end(), rest.begin(), rest.end());
    CHECK_EQUAL(static_cast<int>(WsStatus::kOk), static_cast<int>(rig.feed(input, 1).status));
    UNSIGNED_LONGS_EQUAL(1, rig.handler.messages.size());
    STRCMP_EQUAL("Hello", rig.handler.messages[0].c_str());
}

TEST(WsStreamDeflate, RoundTripBetweenTwoStreams) {
    Rig sender;
    std::string big;
    for (int i = 0; big.size() < 50000; ++i) {
        big += "{\"seq\":" + std::to_string(i) + "}";
    }
    const Bytes payload = text(big);
    CHECK_TRUE(sender.stream.queue_message(WsOpcode::kBinary, payload.data(), payload.size()));
    (void)sender.stream.flush();
    // Unmask the client's frame into a server frame for a second client stream.
    Bytes wire = sender.transport.output();
    std::size_t header = (wire[1] & 0x7f) == 126 ? 4 : ((wire[1] & 0x7f) == 127 ? 10 : 2);
    const std::uint8_t* key = wire.data() + header;
    Bytes plain(wire.begin(), wire.begin() + static_cast<std::ptrdiff_t>(header));
    plain[1] = static_cast<std::uint8_t>(plain[1] & 0x7f);
    for (std::size_t i = header + 4; i < wire.size(); ++i) {
        plain.push_back(static_cast<std::uint8_t>(wire[i] ^ key[(i - header - 4) % 4]));
    }
    CHECK(plain.size() < payload.size() / 3);
    Rig receiver;
    CHECK_EQUAL(static_cast<int>(WsStatus::kOk),
                static_cast<int>(receiver.feed(plain, 1000).status));
    UNSIGNED_LONGS_EQUAL(1, receiver.handler.messages.size());
    CHECK(big == receiver.handler.messages[0]);
}

TEST(WsStreamDeflate, MaskedCompressedFramesOfEverySizeUnmaskToTheDeflateStream) {
    // Sizes around the 8- and 16-byte masking steps: each frame unmasked with the
    // fixed key must inflate to the message.
    for (std::size_t n = 1; n < 200; n += 3) {
        Rig sender;
        std::string message;
        for (std::size_t i = 0; i < n; ++i) {
            message.push_back(static_cast<char>('a' + (i * 7 + i / 5) % 26));
        }
        CHECK_TRUE(sender.stream.queue_message(
            WsOpcode::kText, reinterpret_cast<const std::uint8_t*>(message.data()),
            message.size()));
        (void)sender.stream.flush();
        const Bytes& wire = sender.transport.output();
        const std::size_t header = (wire[1] & 0x7f) == 126 ? 4 : 2;
        const std::uint8_t* key = wire.data() + header;
        Bytes payload;
        for (std::size_t i = header + 4; i < wire.size(); ++i) {
            payload.push_back(static_cast<std::uint8_t>(wire[i] ^ key[(i - header - 4) % 4]));
        }
        ZlibDeflater inflater;
        CHECK_TRUE(inflater.start(agreement()));
        std::uint8_t out[256];
        std::size_t produced = 0;
        CHECK_EQUAL(static_cast<int>(tether::net::InflateStatus::kOk),
                    static_cast<int>(inflater.inflate(payload.data(), payload.size(), true, out,
                                                      sizeof out, &produced)));
        CHECK(message == std::string(reinterpret_cast<const char*>(out), produced));
    }
}

TEST(WsStreamDeflate, BombIsClosedWith1009) {
    ZlibDeflater packer;
    CHECK_TRUE(packer.start(agreement()));
    const std::string zeros(1000000, '\0');
    static std::uint8_t packed[8192];
    std::size_t length = 0;
    CHECK_TRUE(packer.compress(nullptr, 0, reinterpret_cast<const std::uint8_t*>(zeros.data()),
                               zeros.size(), packed, sizeof packed, &length));
    CHECK(length < 2000);
    for (std::size_t chunk : {0u, 1u, 100u}) {
        Rig rig(true, 4096);
        check_protocol_error(rig.feed(frame(0xc2, Bytes(packed, packed + length)), chunk), 1009);
        UNSIGNED_LONGS_EQUAL(0, rig.handler.messages.size());
        CHECK(rig.stream.counters().inflate_bytes_out <= 4096);
    }
}

TEST(WsStreamDeflate, ExactlyMaxMessageSizeIsAccepted) {
    ZlibDeflater packer;
    CHECK_TRUE(packer.start(agreement()));
    const std::string fill(4096, 'x');
    std::uint8_t packed[256];
    std::size_t length = 0;
    CHECK_TRUE(packer.compress(nullptr, 0, reinterpret_cast<const std::uint8_t*>(fill.data()),
                               fill.size(), packed, sizeof packed, &length));
    Rig rig(true, 4096);
    CHECK_EQUAL(static_cast<int>(WsStatus::kOk),
                static_cast<int>(rig.feed(frame(0xc2, Bytes(packed, packed + length))).status));
    UNSIGNED_LONGS_EQUAL(1, rig.handler.messages.size());
}

TEST(WsStreamDeflate, Rsv1WithoutNegotiationIs1002) {
    Rig rig(false);
    check_protocol_error(rig.feed(frame(0xc1, kHello)), 1002);
}

TEST(WsStreamDeflate, Rsv1OnAContinuationIs1002) {
    Rig rig;
    Bytes input = frame(0x41, Bytes{0xf2, 0x48, 0xcd});
    const Bytes rest = frame(0xc0, Bytes{0xc9, 0xc9, 0x07, 0x00});
    input.insert(input.end(), rest.begin(), rest.end());
    check_protocol_error(rig.feed(input), 1002);
}

TEST(WsStreamDeflate, Rsv1OnAControlFrameIs1002) {
    Rig rig;
    check_protocol_error(rig.feed(frame(0xc9, Bytes{})), 1002);
}

TEST(WsStreamDeflate, Rsv2Is1002EvenWithDeflate) {
    Rig rig;
    check_protocol_error(rig.feed(frame(0xa1, kHello)), 1002);
}

TEST(WsStreamDeflate, CorruptStreamIs1007) {
    Rig rig;
    check_protocol_error(rig.feed(frame(0xc1, Bytes{0xff, 0xff, 0xff, 0xff})), 1007);
}

TEST(WsStreamDeflate, InvalidUtf8AfterInflationIs1007) {
    ZlibDeflater packer;
    CHECK_TRUE(packer.start(agreement()));
    const std::uint8_t bad[] = {0xc3, 0x28};
    std::uint8_t packed[64];
    std::size_t length = 0;
    CHECK_TRUE(packer.compress(nullptr, 0, bad, sizeof bad, packed, sizeof packed, &length));
    Rig rig;
    check_protocol_error(rig.feed(frame(0xc1, Bytes(packed, packed + length))), 1007);
}

TEST(WsStreamDeflate, AttachTurnsCompressionOff) {
    Rig rig;
    CHECK_TRUE(rig.stream.deflate_enabled());
    FakeTransport other;
    CHECK_TRUE(rig.stream.attach(&other));
    CHECK_FALSE(rig.stream.deflate_enabled());
}

TEST(WsStreamDeflate, AServerStreamRefusesDeflate) {
    FixedMasks masks;
    FakeTransport transport;
    static std::uint8_t rx[1024];
    static std::uint8_t tx[1024];
    WsStreamConfig config;
    config.server = true;
    config.max_message_size = sizeof rx;
    WsStream stream(config, rx, sizeof rx, tx, sizeof tx, masks);
    CHECK_TRUE(stream.attach(&transport));
    ZlibDeflater deflater;
    CHECK_FALSE(stream.enable_deflate(&deflater, agreement(), 0));
    CHECK_FALSE(stream.deflate_enabled());
}

// SPDX-License-Identifier: MIT
#include <CppUTest/TestHarness.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "tether/deflate/zlib_deflater.h"

using tether::deflate::ZlibDeflater;
using tether::net::DeflateAgreement;
using tether::net::InflateStatus;

namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes bytes(std::initializer_list<int> list) {
    Bytes out;
    for (int b : list) {
        out.push_back(static_cast<std::uint8_t>(b));
    }
    return out;
}

DeflateAgreement agreement(bool no_context_takeover = false, std::uint8_t bits = 15) {
    DeflateAgreement a;
    a.active = true;
    a.client_no_context_takeover = no_context_takeover;
    a.server_no_context_takeover = no_context_takeover;
    a.client_max_window_bits = bits;
    a.server_max_window_bits = bits;
    return a;
}

Bytes compress(ZlibDeflater& d, const std::string& text) {
    std::uint8_t out[70000];
    std::size_t written = 0;
    CHECK_TRUE(d.compress(nullptr, 0, reinterpret_cast<const std::uint8_t*>(text.data()),
                          text.size(), out, sizeof out, &written));
    return Bytes(out, out + written);
}

std::string inflate_all(ZlibDeflater& d, const Bytes& in, std::size_t chunk = 0,
                        std::size_t capacity = 70000, InflateStatus expected = InflateStatus::kOk) {
    std::vector<std::uint8_t> out(capacity + 1);
    std::size_t total = 0;
    const std::size_t step = chunk == 0 ? (in.empty() ? 1 : in.size()) : chunk;
    InflateStatus status = InflateStatus::kOk;
    std::size_t at = 0;
    do {
        const std::size_t n = in.size() - at < step ? in.size() - at : step;
        const bool final = at + n == in.size();
        std::size_t produced = 0;
        status =
            d.inflate(in.data() + at, n, final, out.data() + total, capacity - total, &produced);
        CHECK(produced <= capacity - total);
        total += produced;
        at += n;
    } while (status == InflateStatus::kOk && at < in.size());
    CHECK_EQUAL(static_cast<int>(expected), static_cast<int>(status));
    return std::string(reinterpret_cast<const char*>(out.data()), total);
}

}  // namespace

TEST_GROUP(ZlibDeflater){};

TEST(ZlibDeflater, HelloIsTheRfcExample) {
    ZlibDeflater d;
    CHECK_TRUE(d.start(agreement()));
    const Bytes expected = bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00});
    CHECK(expected == compress(d, "Hello"));
    // The same message again, with context takeover (section 7.2.3.2).
    CHECK(bytes({0xf2, 0x00, 0x11, 0x00, 0x00}) == compress(d, "Hello"));
}

TEST(ZlibDeflater, NoContextTakeoverRepeatsTheFirstForm) {
    ZlibDeflater d;
    CHECK_TRUE(d.start(agreement(true)));
    const Bytes first = compress(d, "Hello");
    CHECK(first == compress(d, "Hello"));
}

TEST(ZlibDeflater, InflatesTheRfcExamples) {
    ZlibDeflater d;
    CHECK_TRUE(d.start(agreement()));
    STRCMP_EQUAL("Hello",
                 inflate_all(d, bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00})).c_str());
    STRCMP_EQUAL("Hello", inflate_all(d, bytes({0xf2, 0x00, 0x11, 0x00, 0x00})).c_str());
    // An uncompressed (stored) block (section 7.2.3.3).
    STRCMP_EQUAL(
        "Hello",
        inflate_all(d, bytes({0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}))
            .c_str());
}

TEST(ZlibDeflater, InflatesOneByteAtATime) {
    ZlibDeflater d;
    CHECK_TRUE(d.start(agreement()));
    STRCMP_EQUAL("Hello",
                 inflate_all(d, bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}), 1).c_str());
}

TEST(ZlibDeflater, RoundTripLargeMessageEveryWindow) {
    std::string text;
    for (int i = 0; text.size() < 50000; ++i) {
        text += "{\"seq\":" + std::to_string(i) + ",\"temp\":" + std::to_string(i % 37) + "}";
    }
    for (std::uint8_t bits = 9; bits <= 15; ++bits) {
        ZlibDeflater sender(bits);
        ZlibDeflater receiver(bits);
        CHECK_TRUE(sender.start(agreement(false, bits)));
        CHECK_TRUE(receiver.start(agreement(false, bits)));
        for (int round = 0; round < 3; ++round) {
            const Bytes packed = compress(sender, text);
            CHECK(packed.size() < text.size() / 3);
            CHECK(text == inflate_all(receiver, packed, 997));
        }
    }
}

TEST(ZlibDeflater, BombStopsAtCapacity) {
    ZlibDeflater sender;
    ZlibDeflater receiver;
    CHECK_TRUE(sender.start(agreement()));
    CHECK_TRUE(receiver.start(agreement()));
    const Bytes packed = compress(sender, std::string(60000, 'A'));
    CHECK(packed.size() < 200);
    (void)inflate_all(receiver, packed, 0, 1000, InflateStatus::kTooBig);
}

TEST(ZlibDeflater, ExactCapacityIsNotABomb) {
    ZlibDeflater sender;
    ZlibDeflater receiver;
    CHECK_TRUE(sender.start(agreement()));
    CHECK_TRUE(receiver.start(agreement()));
    const std::string text(1000, 'B');
    CHECK(text == inflate_all(receiver, compress(sender, text), 0, 1000));
    CHECK(text == inflate_all(receiver, compress(sender, text), 1, 1000));
}

TEST(ZlibDeflater, GarbageIsCorrupt) {
    ZlibDeflater d;
    CHECK_TRUE(d.start(agreement()));
    (void)inflate_all(d, bytes({0xff, 0xff, 0xff, 0xff}), 0, 100, InflateStatus::kCorrupt);
}

TEST(ZlibDeflater, WindowAboveTheArenaIsRefused) {
    ZlibDeflater d(10);
    CHECK_FALSE(d.start(agreement(false, 11)));
    CHECK_TRUE(d.start(agreement(false, 10)));
    CHECK(d.arena_bytes() < ZlibDeflater::arena_size(15));
}

TEST(ZlibDeflater, CompressedThatDoesNotFitIsRefused) {
    ZlibDeflater d;
    CHECK_TRUE(d.start(agreement()));
    std::uint8_t out[8];
    std::size_t written = 0;
    const std::string text = "a fairly long text that will not fit eight bytes";
    CHECK_FALSE(d.compress(nullptr, 0, reinterpret_cast<const std::uint8_t*>(text.data()),
                           text.size(), out, sizeof out, &written));
}

TEST(ZlibDeflater, PrefixAndDataCompressAsOne) {
    ZlibDeflater a;
    ZlibDeflater b;
    CHECK_TRUE(a.start(agreement()));
    CHECK_TRUE(b.start(agreement()));
    std::uint8_t out[64];
    std::size_t written = 0;
    CHECK_TRUE(a.compress(reinterpret_cast<const std::uint8_t*>("Hel"), 3,
                          reinterpret_cast<const std::uint8_t*>("lo"), 2, out, sizeof out,
                          &written));
    STRCMP_EQUAL("Hello", inflate_all(b, Bytes(out, out + written)).c_str());
}

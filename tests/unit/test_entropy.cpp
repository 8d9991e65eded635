// SPDX-License-Identifier: MIT
#include <array>
#include <cstring>
#include <set>

#include "support/tether_strings.h"
#include "tether/port/entropy.h"
#include "tether/port/posix_transport.h"

// CppUTest last: its operator-new macro breaks standard headers.
#include <CppUTest/TestHarness.h>

using tether::Status;
using tether::port::Entropy;

namespace {

// A seed source the test switches off, standing in for an OS or hardware
// RNG that stops delivering. It lives here only: release code cannot link it.
struct SwitchableSource {
    bool working = true;
    unsigned calls = 0;

    static int poll(void* context, unsigned char* out, std::size_t size) {
        SwitchableSource* self = static_cast<SwitchableSource*>(context);
        ++self->calls;
        if (!self->working) {
            return -1;
        }
        for (std::size_t i = 0; i < size; ++i) {
            out[i] = static_cast<unsigned char>(i * 31u + self->calls);
        }
        return 0;
    }
};

void check_everything_fails(Entropy& entropy) {
    std::uint8_t out[16] = {};
    CHECK_FALSE(entropy.ready());
    CHECK_EQUAL(Status::kUnavailable, entropy.fill(out, sizeof out));
    CHECK_FALSE(entropy.fill_masks(out, 4));
    CHECK_FALSE(entropy.fill_random(out, sizeof out));
    bool ok = true;
    CHECK_EQUAL(0u, entropy.next_u32(&ok));
    CHECK_FALSE(ok);
    CHECK_TRUE(Entropy::rng_callback(entropy.rng_context(), out, sizeof out) != 0);
    CHECK_EQUAL(Status::kUnavailable, entropy.reseed());
}

}  // namespace

TEST_GROUP(Entropy) {
    Entropy entropy;
};

TEST(Entropy, InitSeedsFromTheOs) {
    CHECK_FALSE(entropy.ready());
    CHECK_EQUAL(Status::kOk, entropy.init("tether-test"));
    CHECK_TRUE(entropy.ready());
    CHECK_EQUAL(Status::kOk, entropy.reseed());
    // A second init reseeds the same state.
    CHECK_EQUAL(Status::kOk, entropy.init());
    CHECK_TRUE(entropy.ready());
}

TEST(Entropy, FillGivesDifferentBytesEachTime) {
    CHECK_EQUAL(Status::kOk, entropy.init());
    std::set<std::array<std::uint8_t, 32>> seen;
    for (int i = 0; i < 50; ++i) {
        std::array<std::uint8_t, 32> block{};
        CHECK_EQUAL(Status::kOk, entropy.fill(block.data(), block.size()));
        CHECK_TRUE(seen.insert(block).second);
    }
    // Larger than one DRBG request (1024 bytes).
    std::array<std::uint8_t, 3000> large{};
    CHECK_EQUAL(Status::kOk, entropy.fill(large.data(), large.size()));
    CHECK_TRUE(std::memcmp(large.data(), large.data() + 1500, 1500) != 0);
}

TEST(Entropy, NextU32CoversEveryLowByte) {
    CHECK_EQUAL(Status::kOk, entropy.init());
    std::array<unsigned, 256> counts{};
    for (int i = 0; i < 100000; ++i) {
        bool ok = false;
        const std::uint32_t value = entropy.next_u32(&ok);
        CHECK_TRUE(ok);
        ++counts[value & 0xFFu];
    }
    for (unsigned count : counts) {
        // Expected 390.6 each; 250..550 is more than 7 standard deviations.
        CHECK_TRUE(count > 250 && count < 550);
    }
}

TEST(Entropy, MasksAndRandomBytesComeFromThePool) {
    CHECK_EQUAL(Status::kOk, entropy.init());
    std::uint8_t a[4] = {};
    std::uint8_t b[4] = {};
    CHECK_TRUE(entropy.fill_masks(a, sizeof a));
    CHECK_TRUE(entropy.fill_masks(b, sizeof b));
    CHECK_TRUE(std::memcmp(a, b, sizeof a) != 0);
    // Spanning several pool refills.
    static std::uint8_t big[3 * Entropy::kPoolSize + 5];
    CHECK_TRUE(entropy.fill_random(big, sizeof big));
    CHECK_TRUE(std::memcmp(big, big + Entropy::kPoolSize, Entropy::kPoolSize) != 0);
    CHECK_EQUAL(0, Entropy::rng_callback(entropy.rng_context(), a, sizeof a));
}

TEST(Entropy, EverythingFailsBeforeInit) {
    check_everything_fails(entropy);
}

TEST(Entropy, FailedSeedFailsClosed) {
    SwitchableSource source;
    source.working = false;
    CHECK_EQUAL(Status::kUnavailable,
                entropy.init_with_seed_source(SwitchableSource::poll, &source));
    CHECK_TRUE(source.calls > 0);
    check_everything_fails(entropy);
}

TEST(Entropy, FailedReseedFailsClosedUntilInit) {
    SwitchableSource source;
    CHECK_EQUAL(Status::kOk, entropy.init_with_seed_source(SwitchableSource::poll, &source, "p"));
    bool ok = false;
    entropy.next_u32(&ok);  // the pool now holds unused bytes
    CHECK_TRUE(ok);
    source.working = false;
    CHECK_EQUAL(Status::kUnavailable, entropy.reseed());
    // Not even bytes drawn before the failure are handed out.
    check_everything_fails(entropy);
    source.working = true;
    CHECK_EQUAL(Status::kOk, entropy.init_with_seed_source(SwitchableSource::poll, &source));
    CHECK_TRUE(entropy.fill_masks(reinterpret_cast<std::uint8_t*>(&ok), 1));
}

TEST(Entropy, RejectsBadArguments) {
    CHECK_EQUAL(Status::kInvalidArgument, entropy.init_with_seed_source(nullptr, nullptr));
    char long_text[Entropy::kMaxPersonalization + 2];
    std::memset(long_text, 'p', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    CHECK_EQUAL(Status::kInvalidArgument, entropy.init(long_text));
    CHECK_FALSE(entropy.ready());
    CHECK_TRUE(Entropy::rng_callback(nullptr, nullptr, 0) != 0);
}

TEST(Entropy, TlsContextRefusesAnUnseededSource) {
    tether::port::TlsContext context;
    CHECK_EQUAL(Status::kUnavailable, context.init(tether::port::TlsSettings{}, entropy));
    STRCMP_CONTAINS("entropy", context.error_text());
}

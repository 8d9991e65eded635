// SPDX-License-Identifier: MIT
// AcceptBackoff: pauses of the accept loop after EMFILE, with time passed in.
#include <cstdint>

#include "tether/server/accept_backoff.h"

// CppUTest last: its operator-new macro breaks standard headers.
#include <CppUTest/TestHarness.h>

using tether::TimeMs;
using tether::server::AcceptBackoff;
using tether::server::AcceptBackoffConfig;

TEST_GROUP(AcceptBackoff) {
    AcceptBackoff backoff{AcceptBackoffConfig{}};  // 10 ms doubling to 1 s
};

TEST(AcceptBackoff, NothingIsPausedBeforeAFailure) {
    CHECK_FALSE(backoff.in_episode());
    CHECK_FALSE(backoff.paused(0));
    UNSIGNED_LONGS_EQUAL(0, backoff.wait_ms(0));
    UNSIGNED_LONGS_EQUAL(0, backoff.last_pause_ms());
}

TEST(AcceptBackoff, PausesDoubleFromTenMillisecondsToOneSecond) {
    const std::uint32_t expected[] = {10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000};
    TimeMs now = 5000;
    bool first = true;
    for (std::uint32_t pause : expected) {
        CHECK_EQUAL(first, backoff.on_failure(now));  // only the first starts the episode
        first = false;
        UNSIGNED_LONGS_EQUAL(pause, backoff.last_pause_ms());
        CHECK_TRUE(backoff.paused(now));
        CHECK_TRUE(backoff.paused(now + pause - 1));
        UNSIGNED_LONGS_EQUAL(pause, backoff.wait_ms(now));
        now += pause;
        CHECK_FALSE(backoff.paused(now));
        UNSIGNED_LONGS_EQUAL(0, backoff.wait_ms(now));
    }
    CHECK_TRUE(backoff.in_episode());
}

TEST(AcceptBackoff, ASuccessEndsTheEpisodeAndTheNextStartsAgainAtTheFirstPause) {
    backoff.on_failure(0);
    backoff.on_failure(10);
    backoff.on_failure(30);
    backoff.on_success();
    CHECK_FALSE(backoff.in_episode());
    CHECK_FALSE(backoff.paused(31));
    CHECK_TRUE(backoff.on_failure(100));
    UNSIGNED_LONGS_EQUAL(10, backoff.last_pause_ms());
}

TEST(AcceptBackoff, TimeWrapsAroundHarmlessly) {
    const TimeMs now = 0xFFFFFFFAu;
    backoff.on_failure(now);
    CHECK_TRUE(backoff.paused(now + 9u));
    UNSIGNED_LONGS_EQUAL(1, backoff.wait_ms(now + 9u));
    CHECK_FALSE(backoff.paused(now + 10u));
}

TEST(AcceptBackoff, ConfigurationIsClampedIntoItsRanges) {
    AcceptBackoff odd(AcceptBackoffConfig{0, 0});
    odd.on_failure(0);
    odd.on_failure(1);
    UNSIGNED_LONGS_EQUAL(1, odd.last_pause_ms());  // never no pause at all
    CHECK_TRUE(odd.paused(1));
    CHECK_FALSE(odd.paused(2));
    AcceptBackoff huge(AcceptBackoffConfig{5, 0xFFFFFFFFu});
    huge.on_failure(0);
    for (int i = 0; i < 40; ++i) {
        huge.on_failure(0);
    }
    UNSIGNED_LONGS_EQUAL(86400000u, huge.last_pause_ms());
}

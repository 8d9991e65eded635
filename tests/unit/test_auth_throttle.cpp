// SPDX-License-Identifier: MIT
// AuthThrottle: failed upgrades per source address, with time passed in.
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "tether/net/ip_address.h"
#include "tether/server/auth_throttle.h"

// CppUTest last: its operator-new macro breaks standard headers.
#include <CppUTest/TestHarness.h>

using tether::TimeMs;
using tether::server::AddressKey;
using tether::server::AuthThrottle;
using tether::server::AuthThrottleConfig;

namespace {

AddressKey v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    tether::net::IpAddress address{};
    address.family = tether::net::kIpv4;
    const std::uint8_t bytes[4] = {a, b, c, d};
    std::memcpy(address.bytes, bytes, sizeof bytes);
    return AddressKey::of(address);
}

AddressKey v6(const char* text) {
    tether::net::IpAddress address{};
    CHECK_TRUE(tether::net::parse_ip_address(text, std::strlen(text), &address));
    return AddressKey::of(address);
}

// Fails `count` times at `now`; true when one of them started the penalty.
bool fail(AuthThrottle& throttle, const AddressKey& key, int count, TimeMs now) {
    bool started = false;
    for (int i = 0; i < count; ++i) {
        started = throttle.record_failure(key, now) || started;
    }
    return started;
}

}  // namespace

TEST_GROUP(AuthThrottle) {
    AuthThrottle throttle{AuthThrottleConfig{}};  // 10 in 10 s, 60 s penalty
    const AddressKey attacker = v4(192, 0, 2, 7);
};

TEST(AuthThrottle, TheTenthFailureWithinTheWindowStartsThePenalty) {
    CHECK_FALSE(fail(throttle, attacker, 9, 1000));
    CHECK_FALSE(throttle.check(attacker, 1000).throttled);
    CHECK_TRUE(throttle.record_failure(attacker, 10999));
    const AuthThrottle::Verdict verdict = throttle.check(attacker, 10999);
    CHECK_TRUE(verdict.throttled);
    UNSIGNED_LONGS_EQUAL(60000, verdict.retry_after_ms);
    UNSIGNED_LONGS_EQUAL(60, verdict.retry_after_s);
    // Further failures (a caller that did not check) neither extend nor restart it.
    CHECK_FALSE(throttle.record_failure(attacker, 20000));
    UNSIGNED_LONGS_EQUAL(50999, throttle.check(attacker, 20000).retry_after_ms);
}

TEST(AuthThrottle, FailuresSpreadOverMoreThanTheWindowNeverThrottle) {
    for (TimeMs now = 0; now < 100000; now += 10000) {
        CHECK_FALSE(fail(throttle, attacker, 9, now));
        CHECK_FALSE(throttle.check(attacker, now).throttled);
    }
    // The window starts at the first failure: the tenth, 10 s later, starts a new one.
    CHECK_FALSE(fail(throttle, attacker, 1, 109999));
    CHECK_FALSE(fail(throttle, attacker, 1, 120000));
}

TEST(AuthThrottle, ThePenaltyEndsAndTheAddressStartsAfresh) {
    CHECK_TRUE(fail(throttle, attacker, 10, 5000));
    CHECK_TRUE(throttle.check(attacker, 64999).throttled);
    UNSIGNED_LONGS_EQUAL(1, throttle.check(attacker, 64999).retry_after_s);  // 1 ms: rounded up
    CHECK_FALSE(throttle.check(attacker, 65000).throttled);
    UNSIGNED_LONGS_EQUAL(0, throttle.tracked());
    CHECK_FALSE(fail(throttle, attacker, 9, 65000));
    CHECK_TRUE(fail(throttle, attacker, 1, 65001));
}

TEST(AuthThrottle, AFailureAfterThePenaltyStartsAfreshWithoutACheck) {
    CHECK_TRUE(fail(throttle, attacker, 10, 0));
    CHECK_FALSE(throttle.record_failure(attacker, 60000));
    UNSIGNED_LONGS_EQUAL(1, throttle.tracked());
    CHECK_FALSE(throttle.check(attacker, 60000).throttled);
}

TEST(AuthThrottle, OtherAddressesAreNotAffected) {
    CHECK_TRUE(fail(throttle, attacker, 10, 0));
    CHECK_FALSE(throttle.check(v4(192, 0, 2, 8), 1).throttled);
    CHECK_FALSE(throttle.check(v4(198, 51, 100, 7), 1).throttled);
    CHECK_TRUE(throttle.check(attacker, 1).throttled);
}

TEST(AuthThrottle, IPv6CountsPerSlash64AndMappedIPv4AsIPv4) {
    CHECK_TRUE(v6("2001:db8:1:2::1") == v6("2001:db8:1:2:ffff:ffff:ffff:ffff"));
    CHECK_FALSE(v6("2001:db8:1:2::1") == v6("2001:db8:1:3::1"));
    CHECK_TRUE(v6("::ffff:192.0.2.7") == attacker);
    CHECK_FALSE(v6("::c000:207") == attacker);  // not the mapped form
    for (int i = 0; i < 10; ++i) {
        char text[40];
        std::snprintf(text, sizeof text, "2001:db8:1:2::%x", i + 1);
        throttle.record_failure(v6(text), 0);
    }
    CHECK_TRUE(throttle.check(v6("2001:db8:1:2:abcd::"), 0).throttled);
    CHECK_FALSE(throttle.check(v6("2001:db8:1:3::1"), 0).throttled);
}

TEST(AuthThrottle, TheTableIsBoundedAndEvictsTheOldestFailure) {
    AuthThrottleConfig config;
    config.max_addresses = 3;
    AuthThrottle small(config);
    const AddressKey a = v4(10, 0, 0, 1);
    const AddressKey b = v4(10, 0, 0, 2);
    const AddressKey c = v4(10, 0, 0, 3);
    const AddressKey d = v4(10, 0, 0, 4);
    fail(small, a, 9, 0);
    fail(small, b, 9, 1);
    fail(small, c, 9, 2);
    CHECK_TRUE(small.record_failure(b, 3));  // b's tenth: penalised, and now the youngest
    UNSIGNED_LONGS_EQUAL(3, small.tracked());
    // a's last failure is now the oldest: d evicts it.
    CHECK_FALSE(small.record_failure(d, 4));
    UNSIGNED_LONGS_EQUAL(3, small.tracked());
    UNSIGNED_LONGS_EQUAL(1, small.evictions());
    // a starts over (its nine are forgotten) and evicts c.
    CHECK_FALSE(fail(small, a, 9, 5));
    UNSIGNED_LONGS_EQUAL(2, small.evictions());
    CHECK_TRUE(small.check(b, 5).throttled);  // b kept its penalty
    CHECK_FALSE(small.check(c, 5).throttled);
}

TEST(AuthThrottle, PruneDropsEntriesWhoseWindowOrPenaltyIsOver) {
    fail(throttle, v4(10, 0, 0, 1), 3, 0);
    fail(throttle, attacker, 10, 1000);
    fail(throttle, v4(10, 0, 0, 2), 3, 2000);
    throttle.prune(9999);
    UNSIGNED_LONGS_EQUAL(3, throttle.tracked());
    throttle.prune(10000);  // the first window is over; the penalty is next in age and live
    UNSIGNED_LONGS_EQUAL(2, throttle.tracked());
    throttle.prune(61000);
    UNSIGNED_LONGS_EQUAL(0, throttle.tracked());
}

TEST(AuthThrottle, TimeWrapsAroundHarmlessly) {
    const TimeMs start = 0xFFFFF000u;
    CHECK_TRUE(fail(throttle, attacker, 10, start));
    CHECK_TRUE(throttle.check(attacker, start + 59999u).throttled);
    CHECK_FALSE(throttle.check(attacker, start + 60000u).throttled);
}

TEST(AuthThrottle, ZeroMaxFailuresTurnsItOffAndRangesAreClamped) {
    AuthThrottleConfig config;
    config.max_failures = 0;
    AuthThrottle off(config);
    CHECK_FALSE(fail(off, attacker, 1000, 0));
    CHECK_FALSE(off.check(attacker, 0).throttled);
    UNSIGNED_LONGS_EQUAL(0, off.tracked());
    AuthThrottleConfig odd;
    odd.window_ms = 0;
    odd.penalty_ms = 0xFFFFFFFFu;
    odd.max_addresses = 0;
    const AuthThrottle clamped(odd);
    UNSIGNED_LONGS_EQUAL(1, clamped.config().window_ms);
    UNSIGNED_LONGS_EQUAL(86400000u, clamped.config().penalty_ms);
    UNSIGNED_LONGS_EQUAL(1, clamped.config().max_addresses);
}

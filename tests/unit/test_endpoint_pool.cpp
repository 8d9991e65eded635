// SPDX-License-Identifier: MIT
#include <CppUTest/TestHarness.h>

#include <cstdint>
#include <cstring>

#include "tether/endpoint_pool.h"
#include "tether/status.h"
#include "tether/time.h"

using tether::BreakerState;
using tether::EndpointPool;
using tether::EndpointPoolConfig;
using tether::EndpointSelection;
using tether::Status;
using tether::TimeMs;

namespace {

EndpointPoolConfig small_config() {
    EndpointPoolConfig config;
    config.failure_threshold = 3;
    config.cooldown_ms = 1000;
    config.max_cooldown_ms = 8000;
    config.return_to_primary_after_ms = 0;
    return config;
}

// Opens endpoint `index` with `failure_threshold` plain failures at `now`.
void open_by_failures(EndpointPool& pool, std::uint8_t index, TimeMs now) {
    for (std::uint32_t i = 0; i < pool.config().failure_threshold; ++i) {
        pool.record_failure(index, now, false, 0);
    }
}

// Fixed-seed xorshift32, so every run exercises the same sequences.
class Random {
  public:
    explicit Random(std::uint32_t seed) : state_(seed == 0u ? 1u : seed) {}
    std::uint32_t next() {
        state_ ^= state_ << 13u;
        state_ ^= state_ >> 17u;
        state_ ^= state_ << 5u;
        return state_;
    }
    std::uint32_t below(std::uint32_t bound) { return next() % bound; }

  private:
    std::uint32_t state_;
};

}  // namespace

TEST_GROUP(EndpointPool){};

TEST(EndpointPool, NamesEveryBreakerState) {
    STRCMP_EQUAL("closed", tether::to_string(BreakerState::kClosed));
    STRCMP_EQUAL("open", tether::to_string(BreakerState::kOpen));
    STRCMP_EQUAL("half_open", tether::to_string(BreakerState::kHalfOpen));
    STRCMP_EQUAL("unknown", tether::to_string(static_cast<BreakerState>(7)));
}

TEST(EndpointPool, ValidateAcceptsDefaultsAndTheDocumentedBounds) {
    CHECK(Status::kOk == tether::validate(EndpointPoolConfig{}));
    EndpointPoolConfig config;
    config.failure_threshold = 1;
    config.cooldown_ms = 1;
    config.max_cooldown_ms = 1;
    config.return_to_primary_after_ms = 0;
    CHECK(Status::kOk == tether::validate(config));
    config.cooldown_ms = tether::kMaxEndpointPoolDurationMs;
    config.max_cooldown_ms = tether::kMaxEndpointPoolDurationMs;
    config.return_to_primary_after_ms = tether::kMaxEndpointPoolDurationMs;
    CHECK(Status::kOk == tether::validate(config));
    UNSIGNED_LONGS_EQUAL(86400000u, tether::kMaxEndpointPoolDurationMs);
}

TEST(EndpointPool, ValidateRejectsEachOutOfRangeField) {
    EndpointPoolConfig config;
    config.failure_threshold = 0;
    CHECK(Status::kInvalidArgument == tether::validate(config));

    config = EndpointPoolConfig{};
    config.cooldown_ms = 0;
    CHECK(Status::kInvalidArgument == tether::validate(config));

    config = EndpointPoolConfig{};
    config.max_cooldown_ms = config.cooldown_ms - 1u;
    CHECK(Status::kInvalidArgument == tether::validate(config));

    config = EndpointPoolConfig{};
    config.max_cooldown_ms = tether::kMaxEndpointPoolDurationMs + 1u;
    CHECK(Status::kInvalidArgument == tether::validate(config));

    config = EndpointPoolConfig{};
    config.cooldown_ms = tether::kMaxEndpointPoolDurationMs + 1u;
    config.max_cooldown_ms = tether::kMaxEndpointPoolDurationMs + 1u;
    CHECK(Status::kInvalidArgument == tether::validate(config));

    config = EndpointPoolConfig{};
    config.return_to_primary_after_ms = tether::kMaxEndpointPoolDurationMs + 1u;
    CHECK(Status::kInvalidArgument == tether::validate(config));
}

TEST(EndpointPool, ConstructorClampsTheCountAndAnInvalidConfig) {
    EndpointPoolConfig bad;
    bad.failure_threshold = 0;
    bad.cooldown_ms = 0;
    bad.max_cooldown_ms = 0;
    bad.return_to_primary_after_ms = 0xFFFFFFFFu;
    EndpointPool none(bad, 0);
    UNSIGNED_LONGS_EQUAL(1u, none.size());
    UNSIGNED_LONGS_EQUAL(1u, none.config().failure_threshold);
    UNSIGNED_LONGS_EQUAL(1u, none.config().cooldown_ms);
    UNSIGNED_LONGS_EQUAL(1u, none.config().max_cooldown_ms);
    UNSIGNED_LONGS_EQUAL(tether::kMaxEndpointPoolDurationMs,
                         none.config().return_to_primary_after_ms);
    CHECK(Status::kOk == tether::validate(none.config()));

    EndpointPoolConfig long_cooldown;
    long_cooldown.cooldown_ms = 0xFFFFFFFFu;
    long_cooldown.max_cooldown_ms = 0xFFFFFFFFu;
    EndpointPool many(long_cooldown, 20);
    UNSIGNED_LONGS_EQUAL(EndpointPool::kMaxEndpoints, many.size());
    UNSIGNED_LONGS_EQUAL(tether::kMaxEndpointPoolDurationMs, many.config().cooldown_ms);
    UNSIGNED_LONGS_EQUAL(tether::kMaxEndpointPoolDurationMs, many.config().max_cooldown_ms);

    // A threshold clamped to 1 opens on the first failure, for the clamped 1 ms.
    none.record_failure(0, 100, false, 0);
    CHECK(BreakerState::kOpen == none.state(0));
    EndpointSelection selection = none.select(100);
    CHECK_FALSE(selection.available);
    UNSIGNED_LONGS_EQUAL(101u, selection.available_at);
}

TEST(EndpointPool, SelectsThePrimaryWhileItsBreakerIsClosed) {
    EndpointPool pool(small_config(), 3);
    for (TimeMs now = 0; now < 5; ++now) {
        EndpointSelection selection = pool.select(now);
        CHECK_TRUE(selection.available);
        UNSIGNED_LONGS_EQUAL(0u, selection.index);
        UNSIGNED_LONGS_EQUAL(now, selection.available_at);
    }
    CHECK(BreakerState::kClosed == pool.state(0));
}

TEST(EndpointPool, FailsOverInPriorityOrder) {
    EndpointPool pool(small_config(), 3);
    open_by_failures(pool, 0, 100);
    EndpointSelection selection = pool.select(100);
    CHECK_TRUE(selection.available);
    UNSIGNED_LONGS_EQUAL(1u, selection.index);

    open_by_failures(pool, 1, 200);
    selection = pool.select(200);
    CHECK_TRUE(selection.available);
    UNSIGNED_LONGS_EQUAL(2u, selection.index);
    CHECK(BreakerState::kOpen == pool.state(0));
    CHECK(BreakerState::kOpen == pool.state(1));
    CHECK(BreakerState::kClosed == pool.state(2));
}

TEST(EndpointPool, OpensOnlyWhenConsecutiveFailuresReachTheThreshold) {
    EndpointPool pool(small_config(), 2);
    pool.record_failure(0, 10, false, 0);
    pool.record_failure(0, 20, false, 0);
    CHECK(BreakerState::kClosed == pool.state(0));
    UNSIGNED_LONGS_EQUAL(2u, pool.consecutive_failures(0));
    UNSIGNED_LONGS_EQUAL(0u, pool.select(20).index);

    pool.record_failure(0, 30, false, 0);
    CHECK(BreakerState::kOpen == pool.state(0));
    UNSIGNED_LONGS_EQUAL(3u, pool.consecutive_failures(0));
    UNSIGNED_LONGS_EQUAL(1u, pool.select(30).index);
}

TEST(EndpointPool, SuccessBetweenFailuresRestartsTheCount) {
    EndpointPool pool(small_config(), 2);
    pool.record_failure(0, 10, false, 0);
    pool.record_failure(0, 20, false, 0);
    pool.record_success(0);
    UNSIGNED_LONGS_EQUAL(0u, pool.consecutive_failures(0));
    pool.record_failure(0, 30, false, 0);
    pool.record_failure(0, 40, false, 0);
    CHECK(BreakerState::kClosed == pool.state(0));
}

TEST(EndpointPool, OneOverloadSignalOpensTheBreakerAtOnce) {
    EndpointPool pool(small_config(), 2);
    pool.record_failure(0, 500, true, 0);  // for example an HTTP 503 without Retry-After
    CHECK(BreakerState::kOpen == pool.state(0));
    UNSIGNED_LONGS_EQUAL(1u, pool.consecutive_failures(0));
    EndpointSelection selection = pool.select(500);
    CHECK_TRUE(selection.available);
    UNSIGNED_LONGS_EQUAL(1u, selection.index);
    // The first cool-down applies: the primary is back at 500 + 1000.
    CHECK_FALSE(pool.higher_priority_available(1, 1499));
    CHECK_TRUE(pool.higher_priority_available(1, 1500));
}

TEST(EndpointPool, RetryAfterLongerThanTheCooldownHoldsTheBreakerOpen) {
    EndpointPool pool(small_config(), 1);
    pool.record_failure(0, 1000, true, 5000);
    EndpointSelection selection = pool.select(1000);
    CHECK_FALSE(selection.available);
    UNSIGNED_LONGS_EQUAL(6000u, selection.available_at);
    CHECK_FALSE(pool.select(5999).available);
    CHECK(BreakerState::kOpen == pool.state(0));
    selection = pool.select(6000);
    CHECK_TRUE(selection.available);
    UNSIGNED_LONGS_EQUAL(0u, selection.index);
    CHECK(BreakerState::kHalfOpen == pool.state(0));
}

TEST(EndpointPool, RetryAfterShorterThanTheCooldownKeepsTheCooldown) {
    EndpointPool pool(small_config(), 1);
    pool.record_failure(0, 1000, true, 200);
    UNSIGNED_LONGS_EQUAL(2000u, pool.select(1000).available_at);
}

TEST(EndpointPool, FailureWhileOpenExtendsButNeverShortensTheHold) {
    EndpointPool pool(small_config(), 1);
    pool.record_failure(0, 1000, true, 0);  // open until 2000
    pool.record_failure(0, 1500, false, 0);
    UNSIGNED_LONGS_EQUAL(2u, pool.consecutive_failures(0));
    UNSIGNED_LONGS_EQUAL(2000u, pool.select(1500).available_at);

    pool.record_failure(0, 1500, true, 100);  // would end at 1600: too early to count
    UNSIGNED_LONGS_EQUAL(2000u, pool.select(1500).available_at);

    pool.record_failure(0, 1600, true, 3000);
    UNSIGNED_LONGS_EQUAL(4600u, pool.select(1600).available_at);
    CHECK(BreakerState::kOpen == pool.state(0));
    UNSIGNED_LONGS_EQUAL(4u, pool.consecutive_failures(0));
}

TEST(EndpointPool, HugeRetryAfterIsClampedToHalfTheWrapSafeRange) {
    EndpointPool pool(small_config(), 1);
    const TimeMs start = 0x10000000u;
    const TimeMs limit = start + tether::kMaxIntervalMs / 2u;
    pool.record_failure(0, start, true, 0xFFFFFFFFu);
    UNSIGNED_LONGS_EQUAL(limit, pool.select(start).available_at);

    EndpointPool extended(small_config(), 1);
    extended.record_failure(0, start, true, 0);
    extended.record_failure(0, start, false, 0xFFFFFFFFu);
    UNSIGNED_LONGS_EQUAL(limit, extended.select(start).available_at);
    CHECK_FALSE(extended.select(limit - 1u).available);
    CHECK_TRUE(extended.select(limit).available);
}

TEST(EndpointPool, HalfOpenBreakerAdmitsExactlyOneProbe) {
    EndpointPool pool(small_config(), 2);
    open_by_failures(pool, 0, 0);
    UNSIGNED_LONGS_EQUAL(1u, pool.select(999).index);

    EndpointSelection probe = pool.select(1000);
    CHECK_TRUE(probe.available);
    UNSIGNED_LONGS_EQUAL(0u, probe.index);
    CHECK(BreakerState::kHalfOpen == pool.state(0));

    // While the probe is out, everything else goes to the next endpoint.
    for (TimeMs now = 1000; now < 20000; now += 1000) {
        EndpointSelection selection = pool.select(now);
        CHECK_TRUE(selection.available);
        UNSIGNED_LONGS_EQUAL(1u, selection.index);
    }
    CHECK(BreakerState::kHalfOpen == pool.state(0));
}

TEST(EndpointPool, ProbeOutOnTheOnlyEndpointLeavesNothingAvailableUntilItReports) {
    EndpointPool pool(small_config(), 1);
    open_by_failures(pool, 0, 0);
    CHECK_TRUE(pool.select(1000).available);
    EndpointSelection selection = pool.select(1500);
    CHECK_FALSE(selection.available);
    UNSIGNED_LONGS_EQUAL(1500u, selection.available_at);  // no deadline: "now"
}

TEST(EndpointPool, SuccessfulProbeClosesTheBreakerAndResetsTheCooldown) {
    EndpointPool pool(small_config(), 1);
    open_by_failures(pool, 0, 0);
    CHECK_TRUE(pool.select(1000).available);
    pool.record_failure(0, 1000, false, 0);  // reopened for 2000 ms
    UNSIGNED_LONGS_EQUAL(3000u, pool.select(1000).available_at);
    CHECK_TRUE(pool.select(3000).available);

    pool.record_success(0);
    CHECK(BreakerState::kClosed == pool.state(0));
    UNSIGNED_LONGS_EQUAL(0u, pool.consecutive_failures(0));
    CHECK_TRUE(pool.select(3000).available);
    CHECK_TRUE(pool.select(3000).available);  // closed: no single-probe limit

    // The next opening starts again from the first cool-down.
    open_by_failures(pool, 0, 5000);
    UNSIGNED_LONGS_EQUAL(6000u, pool.select(5000).available_at);
}

TEST(EndpointPool, FailedProbeReopensWithADoubledCooldownCappedAtTheMaximum) {
    EndpointPool pool(small_config(), 1);
    TimeMs now = 0;
    open_by_failures(pool, 0, now);
    const std::uint32_t expected[] = {1000, 2000, 4000, 8000, 8000, 8000};
    for (std::uint32_t cooldown : expected) {
        EndpointSelection waiting = pool.select(now);
        CHECK_FALSE(waiting.available);
        UNSIGNED_LONGS_EQUAL(now + cooldown, waiting.available_at);
        CHECK_FALSE(pool.select(now + cooldown - 1u).available);
        now += cooldown;
        EndpointSelection probe = pool.select(now);
        CHECK_TRUE(probe.available);
        CHECK(BreakerState::kHalfOpen == pool.state(0));
        pool.record_failure(0, now, false, 0);  // one failed probe reopens, whatever the count
        CHECK(BreakerState::kOpen == pool.state(0));
    }
}

TEST(EndpointPool, CooldownGrowthSaturatesAfterManyReopenings) {
    EndpointPoolConfig config = small_config();
    config.cooldown_ms = 1;
    config.max_cooldown_ms = tether::kMaxEndpointPoolDurationMs;
    EndpointPool pool(config, 1);
    TimeMs now = 0;
    open_by_failures(pool, 0, now);
    std::uint32_t last = 0;
    for (int opening = 0; opening < 40; ++opening) {
        EndpointSelection waiting = pool.select(now);
        last = waiting.available_at - now;
        now = waiting.available_at;
        CHECK_TRUE(pool.select(now).available);
        pool.record_failure(0, now, false, 0);
    }
    UNSIGNED_LONGS_EQUAL(tether::kMaxEndpointPoolDurationMs, last);
}

TEST(EndpointPool, ReturnsToThePrimaryOnceItRecovers) {
    EndpointPool pool(small_config(), 3);
    pool.record_failure(0, 0, true, 0);
    EndpointSelection selection = pool.select(0);
    UNSIGNED_LONGS_EQUAL(1u, selection.index);
    pool.record_success(1);

    CHECK_FALSE(pool.higher_priority_available(1, 999));
    CHECK_TRUE(pool.higher_priority_available(1, 1000));
    // Asking changes nothing: the primary is still open, no probe is out.
    CHECK(BreakerState::kOpen == pool.state(0));
    CHECK_TRUE(pool.higher_priority_available(1, 1000));

    selection = pool.select(1000);
    UNSIGNED_LONGS_EQUAL(0u, selection.index);
    CHECK(BreakerState::kHalfOpen == pool.state(0));
    CHECK_FALSE(pool.higher_priority_available(1, 1000));  // its probe is out

    pool.record_success(0);
    CHECK(BreakerState::kClosed == pool.state(0));
    CHECK_TRUE(pool.higher_priority_available(1, 1000));
    CHECK_TRUE(pool.higher_priority_available(2, 1000));
    CHECK_FALSE(pool.higher_priority_available(0, 1000));  // nothing outranks the primary
}

TEST(EndpointPool, HigherPriorityCheckSkipsEndpointsOfLowerPriority) {
    EndpointPool pool(small_config(), 3);
    pool.record_failure(0, 0, true, 0);
    pool.record_failure(1, 0, true, 5000);
    CHECK_FALSE(pool.higher_priority_available(2, 500));
    CHECK_TRUE(pool.higher_priority_available(2, 1000));  // the primary's cool-down is over
    CHECK_TRUE(pool.higher_priority_available(1, 1000));
    pool.record_failure(0, 1000, false, 10000);
    CHECK_FALSE(pool.higher_priority_available(2, 1000));
    CHECK_TRUE(pool.higher_priority_available(2, 5000));  // now endpoint 1 is back
    CHECK_FALSE(pool.higher_priority_available(1, 5000));
}

TEST(EndpointPool, WhenAllAreOpenReportsTheEarliestAvailability) {
    EndpointPool pool(small_config(), 3);
    pool.record_failure(0, 100, true, 7000);  // until 7100
    pool.record_failure(1, 200, true, 0);     // until 1200
    pool.record_failure(2, 300, true, 4000);  // until 4300
    EndpointSelection selection = pool.select(400);
    CHECK_FALSE(selection.available);
    UNSIGNED_LONGS_EQUAL(1200u, selection.available_at);

    // Endpoint 1's probe goes out at 1200; while it is out it sets no deadline.
    selection = pool.select(1200);
    CHECK_TRUE(selection.available);
    UNSIGNED_LONGS_EQUAL(1u, selection.index);
    selection = pool.select(1300);
    CHECK_FALSE(selection.available);
    UNSIGNED_LONGS_EQUAL(4300u, selection.available_at);
}

TEST(EndpointPool, EarliestAvailabilityIsFoundAcrossTimeWrapAround) {
    EndpointPool pool(small_config(), 2);
    const TimeMs start = 0xFFFFFC00u;             // 1024 ms before the wrap
    pool.record_failure(0, start, true, 0x500u);  // until 0x100, after the wrap
    pool.record_failure(1, start, true, 0x80u);   // hold below the cool-down: until 0xFFFFFFE8
    EndpointSelection selection = pool.select(start);
    CHECK_FALSE(selection.available);
    UNSIGNED_LONGS_EQUAL(0xFFFFFFE8u, selection.available_at);
    pool.record_failure(1, start, true, 0x600u);  // extends endpoint 1 to 0x200
    UNSIGNED_LONGS_EQUAL(0x100u, pool.select(start).available_at);
    UNSIGNED_LONGS_EQUAL(0x100u, pool.select(0xFFFFFFFFu).available_at);
    CHECK_FALSE(pool.select(0xFFu).available);
    selection = pool.select(0x100u);
    CHECK_TRUE(selection.available);
    UNSIGNED_LONGS_EQUAL(0u, selection.index);
}

TEST(EndpointPool, SingleEndpointCyclesThroughEveryState) {
    EndpointPool pool(small_config(), 1);
    UNSIGNED_LONGS_EQUAL(1u, pool.size());
    CHECK_TRUE(pool.select(0).available);
    open_by_failures(pool, 0, 0);
    CHECK(BreakerState::kOpen == pool.state(0));
    EndpointSelection selection = pool.select(10);
    CHECK_FALSE(selection.available);
    UNSIGNED_LONGS_EQUAL(1000u, selection.available_at);
    CHECK_TRUE(pool.select(1000).available);
    CHECK(BreakerState::kHalfOpen == pool.state(0));
    pool.record_success(0);
    CHECK(BreakerState::kClosed == pool.state(0));
    CHECK_FALSE(pool.higher_priority_available(0, 1000));
}

TEST(EndpointPool, CooldownsSurviveTimeWrapAround) {
    EndpointPool pool(small_config(), 2);
    const TimeMs start = 0xFFFFFF00u;
    open_by_failures(pool, 0, start);
    const TimeMs reopen = start + 1000u;  // 0x2E8, after the wrap
    UNSIGNED_LONGS_EQUAL(1u, pool.select(start).index);
    UNSIGNED_LONGS_EQUAL(1u, pool.select(0xFFFFFFFFu).index);
    UNSIGNED_LONGS_EQUAL(1u, pool.select(0u).index);
    CHECK_FALSE(pool.higher_priority_available(1, reopen - 1u));
    CHECK_TRUE(pool.higher_priority_available(1, reopen));
    EndpointSelection probe = pool.select(reopen);
    UNSIGNED_LONGS_EQUAL(0u, probe.index);
    pool.record_failure(0, reopen, false, 0);
    CHECK_FALSE(pool.higher_priority_available(1, reopen + 1999u));
    CHECK_TRUE(pool.higher_priority_available(1, reopen + 2000u));
}

TEST(EndpointPool, ReleasedProbeLetsTheNextAttemptThrough) {
    EndpointPool pool(small_config(), 2);
    open_by_failures(pool, 0, 0);
    UNSIGNED_LONGS_EQUAL(0u, pool.select(1000).index);
    CHECK_FALSE(pool.higher_priority_available(1, 1000));

    pool.release(0);
    CHECK(BreakerState::kHalfOpen == pool.state(0));
    UNSIGNED_LONGS_EQUAL(3u, pool.consecutive_failures(0));
    CHECK_TRUE(pool.higher_priority_available(1, 1000));
    UNSIGNED_LONGS_EQUAL(0u, pool.select(1000).index);  // the next probe
    UNSIGNED_LONGS_EQUAL(1u, pool.select(1000).index);  // and only that one

    // A failure after a release is a failed probe too: it reopens with the doubled cool-down.
    pool.release(0);
    pool.record_failure(0, 1100, false, 0);
    CHECK(BreakerState::kOpen == pool.state(0));
    CHECK_FALSE(pool.higher_priority_available(1, 3099));
    CHECK_TRUE(pool.higher_priority_available(1, 3100));
}

TEST(EndpointPool, ReleaseOutsideHalfOpenChangesNothing) {
    EndpointPool pool(small_config(), 2);
    pool.record_failure(0, 0, false, 0);
    pool.release(0);
    CHECK(BreakerState::kClosed == pool.state(0));
    UNSIGNED_LONGS_EQUAL(1u, pool.consecutive_failures(0));

    pool.record_failure(0, 0, true, 0);
    pool.release(0);
    CHECK(BreakerState::kOpen == pool.state(0));
    UNSIGNED_LONGS_EQUAL(1u, pool.select(999).index);
}

TEST(EndpointPool, OutOfRangeIndicesAreIgnored) {
    EndpointPool pool(small_config(), 2);
    pool.record_failure(2, 0, true, 0);
    pool.record_failure(255, 0, true, 0);
    pool.record_success(2);
    pool.release(7);
    CHECK(BreakerState::kClosed == pool.state(0));
    CHECK(BreakerState::kClosed == pool.state(1));
    CHECK(BreakerState::kClosed == pool.state(2));
    CHECK(BreakerState::kClosed == pool.state(255));
    UNSIGNED_LONGS_EQUAL(0u, pool.consecutive_failures(2));
    UNSIGNED_LONGS_EQUAL(0u, pool.consecutive_failures(0));

    // Every real endpoint outranks an index past the end.
    pool.record_failure(0, 0, true, 0);
    CHECK_TRUE(pool.higher_priority_available(200, 0));
    pool.record_failure(1, 0, true, 0);
    CHECK_FALSE(pool.higher_priority_available(200, 0));
}

TEST(EndpointPool, RefreshKeepsAnExpiredCooldownExpiredBeyondTheWrapRange) {
    const TimeMs opened = 0;
    const TimeMs much_later = 1000u + 0x80000000u;  // 24.8 days after the cool-down ended

    EndpointPool untouched(small_config(), 1);
    untouched.record_failure(0, opened, true, 0);
    CHECK_FALSE(untouched.select(much_later).available);  // the 32-bit limit refresh() exists for

    EndpointPool refreshed(small_config(), 1);
    refreshed.record_failure(0, opened, true, 0);
    refreshed.refresh(500);  // still cooling down: nothing to do
    CHECK_FALSE(refreshed.select(999).available);
    refreshed.refresh(5000);
    CHECK(BreakerState::kOpen == refreshed.state(0));
    CHECK_TRUE(refreshed.higher_priority_available(1, much_later));
    EndpointSelection selection = refreshed.select(much_later);
    CHECK_TRUE(selection.available);
    UNSIGNED_LONGS_EQUAL(0u, selection.index);
}

// ---------------------------------------------------------------------------
// Random operation sequences against a reference model.
//
// The model keeps time as an unbounded 64-bit count of milliseconds since the
// start and computes cool-downs by repeated doubling, so it shares neither the
// wrap-around arithmetic nor the shift of the implementation. The pool runs on
// 32-bit time starting just before the wrap.

namespace {

struct ModelEndpoint {
    BreakerState state = BreakerState::kClosed;
    bool probe_out = false;
    std::uint32_t failures = 0;
    std::uint32_t openings = 0;
    std::uint64_t open_until = 0;
    bool held = false;
    std::uint64_t hold_until = 0;
};

struct ModelSelection {
    bool available;
    std::uint8_t index;
    std::uint64_t available_at;
};

class PoolModel {
  public:
    PoolModel(const EndpointPoolConfig& config, std::size_t count)
        : config_(config), count_(count) {}

    static bool is_held(const ModelEndpoint& e, std::uint64_t now) {
        return e.held && now < e.hold_until;
    }

    ModelSelection select(std::uint64_t now) {
        bool any_known = false;
        std::uint64_t earliest = 0;
        for (std::size_t i = 0; i < count_; ++i) {
            ModelEndpoint& e = endpoints_[i];
            const bool held = is_held(e, now);
            if (!held && e.state == BreakerState::kClosed) {
                return {true, static_cast<std::uint8_t>(i), now};
            }
            if (!held && ((e.state == BreakerState::kOpen && now >= e.open_until) ||
                          (e.state == BreakerState::kHalfOpen && !e.probe_out))) {
                e.state = BreakerState::kHalfOpen;
                e.probe_out = true;
                return {true, static_cast<std::uint8_t>(i), now};
            }
            std::uint64_t at = 0;
            bool known = true;
            if (e.state == BreakerState::kOpen) {
                at = held && e.hold_until > e.open_until ? e.hold_until : e.open_until;
            } else if (held) {
                at = e.hold_until;
            } else {
                known = false;
            }
            if (known) {
                if (!any_known || at < earliest) {
                    earliest = at;
                }
                any_known = true;
            }
        }
        return {false, 0, any_known ? earliest : now};
    }

    ModelSelection select_fallback(std::uint64_t now) {
        bool any_held = false;
        std::uint64_t earliest = 0;
        for (std::size_t i = 0; i < count_; ++i) {
            ModelEndpoint& e = endpoints_[i];
            if (is_held(e, now)) {
                if (!any_held || e.hold_until < earliest) {
                    earliest = e.hold_until;
                }
                any_held = true;
            } else if (e.state == BreakerState::kClosed || !e.probe_out) {
                if (e.state != BreakerState::kClosed) {
                    e.state = BreakerState::kHalfOpen;
                    e.probe_out = true;
                }
                return {true, static_cast<std::uint8_t>(i), now};
            }
        }
        return {false, 0, any_held ? earliest : now};
    }

    void record_failure(std::size_t i, std::uint64_t now, bool open_now, std::uint32_t hold) {
        if (i >= count_) {
            return;
        }
        ModelEndpoint& e = endpoints_[i];
        e.failures += 1;
        const std::uint64_t limit = tether::kMaxIntervalMs / 2u;
        const std::uint64_t capped_hold = hold < limit ? hold : limit;
        if (hold > 0 && (!e.held || now + capped_hold > e.hold_until)) {
            e.hold_until = now + capped_hold;
        }
        if (hold > 0) {
            e.held = true;
        }
        if (e.state == BreakerState::kOpen) {
            if (hold > 0 && now + capped_hold > e.open_until) {
                e.open_until = now + capped_hold;
            }
            return;
        }
        if (e.state == BreakerState::kHalfOpen || open_now ||
            e.failures >= config_.failure_threshold) {
            e.openings += 1;
            std::uint64_t cooldown = config_.cooldown_ms;
            for (std::uint32_t k = 1; k < e.openings; ++k) {
                cooldown *= 2;
                if (cooldown > config_.max_cooldown_ms) {
                    cooldown = config_.max_cooldown_ms;
                }
            }
            std::uint64_t period = capped_hold > cooldown ? capped_hold : cooldown;
            e.state = BreakerState::kOpen;
            e.probe_out = false;
            e.open_until = now + period;
        }
    }

    void record_success(std::size_t i) {
        if (i < count_) {
            endpoints_[i] = ModelEndpoint{};
        }
    }

    void release(std::size_t i) {
        if (i < count_ && endpoints_[i].state == BreakerState::kHalfOpen) {
            endpoints_[i].probe_out = false;
        }
    }

    bool higher_priority_available(std::size_t current, std::uint64_t now) const {
        for (std::size_t i = 0; i < current && i < count_; ++i) {
            const ModelEndpoint& e = endpoints_[i];
            if (is_held(e, now)) {
                continue;
            }
            if (e.state == BreakerState::kClosed ||
                (e.state == BreakerState::kOpen && now >= e.open_until) ||
                (e.state == BreakerState::kHalfOpen && !e.probe_out)) {
                return true;
            }
        }
        return false;
    }

    const ModelEndpoint& endpoint(std::size_t i) const { return endpoints_[i]; }

  private:
    EndpointPoolConfig config_;
    std::size_t count_;
    ModelEndpoint endpoints_[EndpointPool::kMaxEndpoints];
};

std::uint32_t random_hold(Random& random) {
    switch (random.below(6)) {
        case 0:
            return 150;
        case 1:
            return 2500;
        case 2:
            return 20000;
        default:
            return 0;
    }
}

void run_model_sequence(std::uint32_t seed, std::uint32_t threshold) {
    constexpr std::size_t kEndpoints = 3;
    EndpointPoolConfig config;
    config.failure_threshold = threshold;
    config.cooldown_ms = 300;
    config.max_cooldown_ms = 2000;
    config.return_to_primary_after_ms = 0;
    EndpointPool pool(config, kEndpoints);
    PoolModel model(config, kEndpoints);
    Random random(seed);
    const TimeMs base = 0xFFFFF000u;
    std::uint64_t elapsed = 0;

    for (int step = 0; step < 3000; ++step) {
        const TimeMs now = base + static_cast<TimeMs>(elapsed);
        // Indices 0..3: one past the end checks that out-of-range calls are ignored.
        const std::uint8_t index = static_cast<std::uint8_t>(random.below(kEndpoints + 1));
        switch (random.below(9)) {
            case 0:
            case 1: {
                const bool fallback = random.below(3) == 0;
                const EndpointSelection got =
                    fallback ? pool.select_fallback(now) : pool.select(now);
                const ModelSelection want =
                    fallback ? model.select_fallback(elapsed) : model.select(elapsed);
                CHECK_EQUAL(want.available, got.available);
                UNSIGNED_LONGS_EQUAL(want.index, got.index);
                UNSIGNED_LONGS_EQUAL(base + static_cast<TimeMs>(want.available_at),
                                     got.available_at);
                break;
            }
            case 2:
            case 3: {
                const bool open_now = random.below(4) == 0;
                const std::uint32_t hold = random_hold(random);
                pool.record_failure(index, now, open_now, hold);
                model.record_failure(index, elapsed, open_now, hold);
                break;
            }
            case 4:
                pool.record_success(index);
                model.record_success(index);
                break;
            case 5:
                pool.release(index);
                model.release(index);
                break;
            case 6: {
                const std::uint8_t current =
                    static_cast<std::uint8_t>(random.below(kEndpoints + 1));
                CHECK_EQUAL(model.higher_priority_available(current, elapsed),
                            pool.higher_priority_available(current, now));
                break;
            }
            case 7:
                pool.refresh(now);  // no observable effect within the wrap range
                break;
            default:
                elapsed += random.below(8) == 0 ? random.below(30000) : random.below(400);
                break;
        }
        for (std::uint8_t i = 0; i < kEndpoints; ++i) {
            CHECK(model.endpoint(i).state == pool.state(i));
            UNSIGNED_LONGS_EQUAL(model.endpoint(i).failures, pool.consecutive_failures(i));
        }
    }
    CHECK(elapsed > 0x1000u);  // the run crossed the 32-bit wrap
}

}  // namespace

TEST(EndpointPool, RandomOperationSequencesMatchTheReferenceModel) {
    for (std::uint32_t seed = 1; seed <= 40; ++seed) {
        run_model_sequence(seed * 2654435761u, 1u + seed % 3u);
    }
}

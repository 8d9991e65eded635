// SPDX-License-Identifier: MIT
#include <CppUTest/TestHarness.h>

#include <cstdint>
#include <cstring>

#include "tether/backoff.h"
#include "tether/time.h"

using tether::Backoff;
using tether::BackoffConfig;
using tether::BackoffStep;
using tether::JitterMode;
using tether::kMaxBackoffDelayMs;
using tether::Status;

namespace {

constexpr std::uint32_t kRandomMin = 0u;
constexpr std::uint32_t kRandomMax = UINT32_MAX;
constexpr std::uint32_t kRandomHalf = 0x80000000u;

BackoffConfig config_with(JitterMode jitter) {
    BackoffConfig config;
    config.jitter = jitter;
    return config;
}

// Counts `attempts` attempts, then asks for the next step.
BackoffStep step_after(Backoff& backoff, std::uint32_t attempts, std::uint32_t random) {
    backoff.restore(attempts);
    return backoff.next(random);
}

// Numerical Recipes LCG; the high half has the better statistical quality.
class Lcg {
  public:
    explicit Lcg(std::uint64_t seed) : state_(seed) {}
    std::uint32_t next() {
        state_ = state_ * 6364136223846793005ull + 1442695040888963407ull;
        return static_cast<std::uint32_t>(state_ >> 32);
    }

  private:
    std::uint64_t state_;
};

}  // namespace

TEST_GROUP(Backoff){};

TEST(Backoff, BaseDelayDoublesFromTheInitialDelay) {
    const Backoff backoff(BackoffConfig{});
    UNSIGNED_LONGS_EQUAL(0u, backoff.base_delay(0));
    UNSIGNED_LONGS_EQUAL(1000u, backoff.base_delay(1));
    UNSIGNED_LONGS_EQUAL(2000u, backoff.base_delay(2));
    UNSIGNED_LONGS_EQUAL(4000u, backoff.base_delay(3));
    UNSIGNED_LONGS_EQUAL(8000u, backoff.base_delay(4));
    UNSIGNED_LONGS_EQUAL(16000u, backoff.base_delay(5));
}

TEST(Backoff, CapsAtMaximum) {
    const Backoff backoff(BackoffConfig{});
    UNSIGNED_LONGS_EQUAL(32000u, backoff.base_delay(6));
    UNSIGNED_LONGS_EQUAL(32000u, backoff.base_delay(7));
    UNSIGNED_LONGS_EQUAL(32000u, backoff.base_delay(64));
}

TEST(Backoff, CapThatIsNotAPowerOfTheMultiplierIsReachedExactly) {
    BackoffConfig config;
    config.max_delay_ms = 5000;
    const Backoff backoff(config);
    UNSIGNED_LONGS_EQUAL(4000u, backoff.base_delay(3));
    UNSIGNED_LONGS_EQUAL(5000u, backoff.base_delay(4));
}

TEST(Backoff, HugeAttemptCountsStayAtTheCap) {
    const Backoff backoff(BackoffConfig{});
    UNSIGNED_LONGS_EQUAL(32000u, backoff.base_delay(4000000000u));
    UNSIGNED_LONGS_EQUAL(32000u, backoff.base_delay(UINT32_MAX));
}

TEST(Backoff, HugeMultiplierJumpsStraightToTheCap) {
    BackoffConfig config;
    config.multiplier_permille = UINT32_MAX;
    config.max_delay_ms = kMaxBackoffDelayMs;
    const Backoff backoff(config);
    UNSIGNED_LONGS_EQUAL(1000u, backoff.base_delay(1));
    UNSIGNED_LONGS_EQUAL(kMaxBackoffDelayMs, backoff.base_delay(2));
    UNSIGNED_LONGS_EQUAL(kMaxBackoffDelayMs, backoff.base_delay(UINT32_MAX));
}

TEST(Backoff, LargestInitialDelayTimesLargestMultiplierDoesNotOverflow) {
    BackoffConfig config;
    config.initial_delay_ms = kMaxBackoffDelayMs - 1u;
    config.max_delay_ms = kMaxBackoffDelayMs;
    config.multiplier_permille = UINT32_MAX;
    const Backoff backoff(config);
    UNSIGNED_LONGS_EQUAL(kMaxBackoffDelayMs - 1u, backoff.base_delay(1));
    UNSIGNED_LONGS_EQUAL(kMaxBackoffDelayMs, backoff.base_delay(2));
}

TEST(Backoff, MultiplierOfOneKeepsTheInitialDelayForever) {
    BackoffConfig config;
    config.multiplier_permille = 1000;
    const Backoff backoff(config);
    UNSIGNED_LONGS_EQUAL(1000u, backoff.base_delay(2));
    UNSIGNED_LONGS_EQUAL(1000u, backoff.base_delay(UINT32_MAX));
}

TEST(Backoff, GrowthTooSmallToSurviveRoundingKeepsTheDelay) {
    BackoffConfig config;
    config.initial_delay_ms = 1;
    config.multiplier_permille = 1001;
    const Backoff backoff(config);
    UNSIGNED_LONGS_EQUAL(1u, backoff.base_delay(4000000000u));
}

TEST(Backoff, SlowestGrowthStillReachesTheCapForHugeAttemptCounts) {
    BackoffConfig config;
    config.multiplier_permille = 1001;
    config.max_delay_ms = kMaxBackoffDelayMs;
    const Backoff backoff(config);
    UNSIGNED_LONGS_EQUAL(1001u, backoff.base_delay(2));
    UNSIGNED_LONGS_EQUAL(1002u, backoff.base_delay(3));
    UNSIGNED_LONGS_EQUAL(kMaxBackoffDelayMs, backoff.base_delay(4000000000u));
}

TEST(Backoff, EachGrowthStepRoundsDownToWholeMilliseconds) {
    BackoffConfig config;
    config.multiplier_permille = 1500;
    config.max_delay_ms = 100000;
    const Backoff backoff(config);
    UNSIGNED_LONGS_EQUAL(1500u, backoff.base_delay(2));
    UNSIGNED_LONGS_EQUAL(2250u, backoff.base_delay(3));
    UNSIGNED_LONGS_EQUAL(3375u, backoff.base_delay(4));
    UNSIGNED_LONGS_EQUAL(5062u, backoff.base_delay(5));   // 5062.5
    UNSIGNED_LONGS_EQUAL(7593u, backoff.base_delay(6));   // 5062 * 1.5
    UNSIGNED_LONGS_EQUAL(11389u, backoff.base_delay(7));  // 11389.5
}

TEST(Backoff, NoAttemptCountedMeansNoDelay) {
    Backoff backoff(config_with(JitterMode::kNone));
    const BackoffStep step = backoff.next(kRandomMax);
    CHECK_FALSE(step.give_up);
    UNSIGNED_LONGS_EQUAL(0u, step.delay_ms);
}

TEST(Backoff, RecordAttemptCountsUp) {
    Backoff backoff(BackoffConfig{});
    backoff.record_attempt();
    backoff.record_attempt();
    UNSIGNED_LONGS_EQUAL(2u, backoff.attempts());
}

TEST(Backoff, RecordAttemptSaturatesInsteadOfWrapping) {
    Backoff backoff(BackoffConfig{});
    backoff.restore(UINT32_MAX - 1u);
    backoff.record_attempt();
    UNSIGNED_LONGS_EQUAL(UINT32_MAX, backoff.attempts());
    backoff.record_attempt();
    UNSIGNED_LONGS_EQUAL(UINT32_MAX, backoff.attempts());
}

TEST(Backoff, NoJitterWaitsExactlyTheBaseDelay) {
    Backoff backoff(config_with(JitterMode::kNone));
    backoff.record_attempt();
    UNSIGNED_LONGS_EQUAL(1000u, backoff.next(kRandomMin).delay_ms);
    UNSIGNED_LONGS_EQUAL(1000u, backoff.next(kRandomMax).delay_ms);
    backoff.record_attempt();
    UNSIGNED_LONGS_EQUAL(2000u, backoff.next(kRandomHalf).delay_ms);
}

TEST(Backoff, FullJitterSpansZeroToTheBaseDelay) {
    Backoff backoff(config_with(JitterMode::kFull));
    UNSIGNED_LONGS_EQUAL(0u, step_after(backoff, 3, kRandomMin).delay_ms);
    UNSIGNED_LONGS_EQUAL(4000u, step_after(backoff, 3, kRandomMax).delay_ms);
    UNSIGNED_LONGS_EQUAL(2000u, step_after(backoff, 3, kRandomHalf).delay_ms);  // 4001 / 2
    UNSIGNED_LONGS_EQUAL(1000u, step_after(backoff, 3, 0x40000000u).delay_ms);  // 4001 / 4
}

TEST(Backoff, EqualJitterSpansHalfToTheWholeBaseDelay) {
    Backoff backoff(config_with(JitterMode::kEqual));
    UNSIGNED_LONGS_EQUAL(2000u, step_after(backoff, 3, kRandomMin).delay_ms);
    UNSIGNED_LONGS_EQUAL(4000u, step_after(backoff, 3, kRandomMax).delay_ms);
    UNSIGNED_LONGS_EQUAL(3000u, step_after(backoff, 3, kRandomHalf).delay_ms);  // 2000 + 2001 / 2
}

TEST(Backoff, EqualJitterReachesAnOddBaseDelay) {
    BackoffConfig config = config_with(JitterMode::kEqual);
    config.initial_delay_ms = 1001;
    Backoff backoff(config);
    UNSIGNED_LONGS_EQUAL(500u, step_after(backoff, 1, kRandomMin).delay_ms);
    UNSIGNED_LONGS_EQUAL(1001u, step_after(backoff, 1, kRandomMax).delay_ms);
}

TEST(Backoff, FullJitterAtTheCapForHugeAttemptCounts) {
    Backoff backoff(config_with(JitterMode::kFull));
    const BackoffStep step = step_after(backoff, 4000000000u, kRandomMax);
    CHECK_FALSE(step.give_up);
    UNSIGNED_LONGS_EQUAL(32000u, step.delay_ms);
}

TEST(Backoff, DecorrelatedJitterGrowsFromThreeTimesThePreviousDelay) {
    Backoff backoff(config_with(JitterMode::kDecorrelated));
    backoff.record_attempt();
    UNSIGNED_LONGS_EQUAL(3000u, backoff.next(kRandomMax).delay_ms);   // [1000, 3000]
    UNSIGNED_LONGS_EQUAL(9000u, backoff.next(kRandomMax).delay_ms);   // [1000, 9000]
    UNSIGNED_LONGS_EQUAL(27000u, backoff.next(kRandomMax).delay_ms);  // [1000, 27000]
    UNSIGNED_LONGS_EQUAL(32000u, backoff.next(kRandomMax).delay_ms);  // [1000, 81000] capped
    UNSIGNED_LONGS_EQUAL(1000u, backoff.next(kRandomMin).delay_ms);   // [1000, 96000]
    UNSIGNED_LONGS_EQUAL(2000u, backoff.next(kRandomHalf).delay_ms);  // [1000, 3000]
    UNSIGNED_LONGS_EQUAL(3500u, backoff.next(kRandomHalf).delay_ms);  // 1000 + 5001 / 2
}

TEST(Backoff, DecorrelatedJitterNeverGoesBelowTheInitialDelay) {
    Backoff backoff(config_with(JitterMode::kDecorrelated));
    backoff.record_attempt();
    UNSIGNED_LONGS_EQUAL(1000u, backoff.next(kRandomMin).delay_ms);
    UNSIGNED_LONGS_EQUAL(1000u, backoff.next(kRandomMin).delay_ms);
}

TEST(Backoff, ResetStartsAgainAtTheInitialDelay) {
    Backoff backoff(config_with(JitterMode::kDecorrelated));
    backoff.record_attempt();
    backoff.record_attempt();
    UNSIGNED_LONGS_EQUAL(3000u, backoff.next(kRandomMax).delay_ms);
    UNSIGNED_LONGS_EQUAL(9000u, backoff.next(kRandomMax).delay_ms);

    backoff.reset();
    UNSIGNED_LONGS_EQUAL(0u, backoff.attempts());
    UNSIGNED_LONGS_EQUAL(0u, backoff.next(kRandomMax).delay_ms);
    backoff.record_attempt();
    UNSIGNED_LONGS_EQUAL(3000u, backoff.next(kRandomMax).delay_ms);
}

TEST(Backoff, ResetClearsTheAttemptsForExponentialModes) {
    Backoff backoff(config_with(JitterMode::kNone));
    backoff.restore(5);
    UNSIGNED_LONGS_EQUAL(16000u, backoff.next(kRandomMax).delay_ms);
    backoff.reset();
    backoff.record_attempt();
    UNSIGNED_LONGS_EQUAL(1000u, backoff.next(kRandomMax).delay_ms);
}

TEST(Backoff, RestoreContinuesWhereThePersistedCounterStopped) {
    Backoff backoff(config_with(JitterMode::kNone));
    backoff.restore(4);
    UNSIGNED_LONGS_EQUAL(4u, backoff.attempts());
    UNSIGNED_LONGS_EQUAL(8000u, backoff.next(kRandomMin).delay_ms);
    backoff.record_attempt();
    UNSIGNED_LONGS_EQUAL(16000u, backoff.next(kRandomMin).delay_ms);
}

TEST(Backoff, RestoreSeedsDecorrelatedJitterWithTheBaseDelay) {
    Backoff backoff(config_with(JitterMode::kDecorrelated));
    backoff.restore(3);  // base delay 4000
    UNSIGNED_LONGS_EQUAL(12000u, backoff.next(kRandomMax).delay_ms);
}

TEST(Backoff, RestoreOfZeroSeedsDecorrelatedJitterWithTheInitialDelay) {
    Backoff backoff(config_with(JitterMode::kDecorrelated));
    backoff.restore(5);
    backoff.restore(0);
    UNSIGNED_LONGS_EQUAL(0u, backoff.next(kRandomMax).delay_ms);
    backoff.record_attempt();
    UNSIGNED_LONGS_EQUAL(3000u, backoff.next(kRandomMax).delay_ms);
}

TEST(Backoff, GivesUpAfterMaxAttempts) {
    BackoffConfig config = config_with(JitterMode::kNone);
    config.max_attempts = 3;
    Backoff backoff(config);
    backoff.record_attempt();
    BackoffStep step = backoff.next(kRandomMax);
    CHECK_FALSE(step.give_up);
    UNSIGNED_LONGS_EQUAL(1000u, step.delay_ms);
    backoff.record_attempt();
    step = backoff.next(kRandomMax);
    CHECK_FALSE(step.give_up);
    UNSIGNED_LONGS_EQUAL(2000u, step.delay_ms);
    backoff.record_attempt();
    step = backoff.next(kRandomMax);
    CHECK_TRUE(step.give_up);
    UNSIGNED_LONGS_EQUAL(0u, step.delay_ms);
    backoff.record_attempt();
    CHECK_TRUE(backoff.next(kRandomMax).give_up);
}

TEST(Backoff, ResetAfterGivingUpAllowsNewAttempts) {
    BackoffConfig config;
    config.max_attempts = 1;
    Backoff backoff(config);
    backoff.record_attempt();
    CHECK_TRUE(backoff.next(kRandomMax).give_up);
    backoff.reset();
    CHECK_FALSE(backoff.next(kRandomMax).give_up);
}

TEST(Backoff, ZeroMaxAttemptsRetriesForever) {
    Backoff backoff(BackoffConfig{});
    const BackoffStep step = step_after(backoff, UINT32_MAX, kRandomMax);
    CHECK_FALSE(step.give_up);
    UNSIGNED_LONGS_EQUAL(32000u, step.delay_ms);
}

TEST(Backoff, EveryDelayStaysWithinItsModesBounds) {
    struct Case {
        JitterMode jitter;
        std::uint32_t initial;
        std::uint32_t multiplier;
        std::uint32_t cap;
    };
    const Case cases[] = {
        {JitterMode::kNone, 1000, 2000, 32000},
        {JitterMode::kFull, 1000, 2000, 32000},
        {JitterMode::kFull, 1, 1000, 1},
        {JitterMode::kFull, 7, 3333, kMaxBackoffDelayMs},
        {JitterMode::kEqual, 1000, 2000, 32000},
        {JitterMode::kEqual, 333, 1700, 77777},
        {JitterMode::kEqual, 1, 1000, 1},
        {JitterMode::kDecorrelated, 1000, 2000, 32000},
        {JitterMode::kDecorrelated, 1, 1000, 1},
        {JitterMode::kDecorrelated, 250, 2000, kMaxBackoffDelayMs},
    };
    Lcg lcg(0x7e7e7e7eu);
    for (const Case& c : cases) {
        BackoffConfig config;
        config.jitter = c.jitter;
        config.initial_delay_ms = c.initial;
        config.multiplier_permille = c.multiplier;
        config.max_delay_ms = c.cap;
        LONGS_EQUAL(static_cast<int>(Status::kOk), static_cast<int>(tether::validate(config)));
        Backoff backoff(config);
        std::uint32_t previous = c.initial;
        for (int i = 0; i < 4000; ++i) {
            // Mostly growing streaks, with the occasional reset.
            if (lcg.next() % 50u == 0u) {
                backoff.reset();
                previous = c.initial;
            }
            backoff.record_attempt();
            const std::uint32_t base = backoff.base_delay(backoff.attempts());
            CHECK(base >= c.initial);
            CHECK(base <= c.cap);
            const BackoffStep step = backoff.next(lcg.next());
            CHECK_FALSE(step.give_up);
            switch (c.jitter) {
                case JitterMode::kNone:
                    UNSIGNED_LONGS_EQUAL(base, step.delay_ms);
                    break;
                case JitterMode::kFull:
                    CHECK(step.delay_ms <= base);
                    break;
                case JitterMode::kEqual:
                    CHECK(step.delay_ms >= base / 2u);
                    CHECK(step.delay_ms <= base);
                    break;
                case JitterMode::kDecorrelated: {
                    const std::uint64_t upper = 3ull * previous;
                    CHECK(step.delay_ms >= c.initial);
                    CHECK(step.delay_ms <= c.cap);
                    CHECK(step.delay_ms <= upper);
                    previous = step.delay_ms;
                    break;
                }
            }
        }
    }
}

TEST(Backoff, ExtremeRandomValuesReachBothEndsOfEveryMode) {
    // The extremes of the random range map exactly onto the ends of each
    // mode's interval at every step of the growth.
    Backoff full(config_with(JitterMode::kFull));
    Backoff equal(config_with(JitterMode::kEqual));
    for (std::uint32_t attempts = 1; attempts <= 8; ++attempts) {
        const std::uint32_t base = full.base_delay(attempts);
        UNSIGNED_LONGS_EQUAL(0u, step_after(full, attempts, kRandomMin).delay_ms);
        UNSIGNED_LONGS_EQUAL(base, step_after(full, attempts, kRandomMax).delay_ms);
        UNSIGNED_LONGS_EQUAL(base / 2u, step_after(equal, attempts, kRandomMin).delay_ms);
        UNSIGNED_LONGS_EQUAL(base, step_after(equal, attempts, kRandomMax).delay_ms);
    }
}

TEST_GROUP(BackoffConfig){};

TEST(BackoffConfig, DefaultsAreValid) {
    LONGS_EQUAL(static_cast<int>(Status::kOk), static_cast<int>(tether::validate(BackoffConfig{})));
}

TEST(BackoffConfig, BoundaryValuesAreValid) {
    BackoffConfig config;
    config.initial_delay_ms = kMaxBackoffDelayMs;
    config.max_delay_ms = kMaxBackoffDelayMs;
    config.multiplier_permille = 1000;
    config.jitter = JitterMode::kDecorrelated;
    config.max_attempts = UINT32_MAX;
    config.healthy_after_ms = tether::kMaxIntervalMs;
    LONGS_EQUAL(static_cast<int>(Status::kOk), static_cast<int>(tether::validate(config)));
    config.initial_delay_ms = 1;
    config.max_delay_ms = 1;
    config.multiplier_permille = UINT32_MAX;
    config.max_attempts = 0;
    config.healthy_after_ms = 0;
    LONGS_EQUAL(static_cast<int>(Status::kOk), static_cast<int>(tether::validate(config)));
}

TEST(BackoffConfig, RejectsZeroInitialDelay) {
    BackoffConfig config;
    config.initial_delay_ms = 0;
    LONGS_EQUAL(static_cast<int>(Status::kInvalidArgument),
                static_cast<int>(tether::validate(config)));
}

TEST(BackoffConfig, RejectsShrinkingMultiplier) {
    BackoffConfig config;
    config.multiplier_permille = 999;
    LONGS_EQUAL(static_cast<int>(Status::kInvalidArgument),
                static_cast<int>(tether::validate(config)));
}

TEST(BackoffConfig, RejectsCapBelowInitialDelay) {
    BackoffConfig config;
    config.initial_delay_ms = 5000;
    config.max_delay_ms = 4999;
    LONGS_EQUAL(static_cast<int>(Status::kInvalidArgument),
                static_cast<int>(tether::validate(config)));
}

TEST(BackoffConfig, RejectsCapAboveOneDay) {
    BackoffConfig config;
    config.max_delay_ms = kMaxBackoffDelayMs + 1u;
    LONGS_EQUAL(static_cast<int>(Status::kInvalidArgument),
                static_cast<int>(tether::validate(config)));
}

TEST(BackoffConfig, RejectsInitialDelayAboveOneDay) {
    BackoffConfig config;
    config.initial_delay_ms = kMaxBackoffDelayMs + 1u;
    config.max_delay_ms = kMaxBackoffDelayMs;
    LONGS_EQUAL(static_cast<int>(Status::kInvalidArgument),
                static_cast<int>(tether::validate(config)));
}

TEST(BackoffConfig, RejectsUnknownJitterMode) {
    BackoffConfig config;
    config.jitter = static_cast<JitterMode>(4);
    LONGS_EQUAL(static_cast<int>(Status::kInvalidArgument),
                static_cast<int>(tether::validate(config)));
}

TEST(BackoffConfig, RejectsHealthyIntervalBeyondTheDeadlineRange) {
    BackoffConfig config;
    config.healthy_after_ms = tether::kMaxIntervalMs + 1u;
    LONGS_EQUAL(static_cast<int>(Status::kInvalidArgument),
                static_cast<int>(tether::validate(config)));
}

TEST(BackoffConfig, ConstructorClampsLowFieldsIntoRange) {
    BackoffConfig config;
    config.initial_delay_ms = 0;
    config.multiplier_permille = 10;
    config.max_delay_ms = 0;
    config.jitter = static_cast<JitterMode>(200);
    const Backoff backoff(config);
    UNSIGNED_LONGS_EQUAL(1u, backoff.config().initial_delay_ms);
    UNSIGNED_LONGS_EQUAL(1000u, backoff.config().multiplier_permille);
    UNSIGNED_LONGS_EQUAL(1u, backoff.config().max_delay_ms);
    LONGS_EQUAL(static_cast<int>(JitterMode::kFull), static_cast<int>(backoff.config().jitter));
    LONGS_EQUAL(static_cast<int>(Status::kOk),
                static_cast<int>(tether::validate(backoff.config())));
}

TEST(BackoffConfig, ConstructorClampsHighFieldsIntoRange) {
    BackoffConfig config;
    config.initial_delay_ms = UINT32_MAX;
    config.max_delay_ms = UINT32_MAX;
    config.healthy_after_ms = UINT32_MAX;
    config.max_attempts = 17;
    const Backoff backoff(config);
    UNSIGNED_LONGS_EQUAL(kMaxBackoffDelayMs, backoff.config().initial_delay_ms);
    UNSIGNED_LONGS_EQUAL(kMaxBackoffDelayMs, backoff.config().max_delay_ms);
    UNSIGNED_LONGS_EQUAL(tether::kMaxIntervalMs, backoff.config().healthy_after_ms);
    UNSIGNED_LONGS_EQUAL(17u, backoff.config().max_attempts);
    LONGS_EQUAL(static_cast<int>(Status::kOk),
                static_cast<int>(tether::validate(backoff.config())));
}

TEST(BackoffConfig, ConstructorRaisesACapBelowTheInitialDelay) {
    BackoffConfig config;
    config.initial_delay_ms = 5000;
    config.max_delay_ms = 10;
    const Backoff backoff(config);
    UNSIGNED_LONGS_EQUAL(5000u, backoff.config().initial_delay_ms);
    UNSIGNED_LONGS_EQUAL(5000u, backoff.config().max_delay_ms);
}

TEST(BackoffConfig, ConstructorKeepsAValidConfig) {
    BackoffConfig config;
    config.initial_delay_ms = 250;
    config.multiplier_permille = 1500;
    config.max_delay_ms = 60000;
    config.jitter = JitterMode::kEqual;
    config.max_attempts = 9;
    config.healthy_after_ms = 30000;
    const Backoff backoff(config);
    UNSIGNED_LONGS_EQUAL(250u, backoff.config().initial_delay_ms);
    UNSIGNED_LONGS_EQUAL(1500u, backoff.config().multiplier_permille);
    UNSIGNED_LONGS_EQUAL(60000u, backoff.config().max_delay_ms);
    LONGS_EQUAL(static_cast<int>(JitterMode::kEqual), static_cast<int>(backoff.config().jitter));
    UNSIGNED_LONGS_EQUAL(9u, backoff.config().max_attempts);
    UNSIGNED_LONGS_EQUAL(30000u, backoff.config().healthy_after_ms);
}

TEST_GROUP(JitterMode){};

TEST(JitterMode, NamesRoundTrip) {
    const JitterMode all[] = {JitterMode::kNone, JitterMode::kFull, JitterMode::kEqual,
                              JitterMode::kDecorrelated};
    for (JitterMode mode : all) {
        JitterMode parsed = static_cast<JitterMode>(99);
        CHECK_TRUE(tether::parse_jitter_mode(tether::to_string(mode), &parsed));
        LONGS_EQUAL(static_cast<int>(mode), static_cast<int>(parsed));
    }
    STRCMP_EQUAL("none", tether::to_string(JitterMode::kNone));
    STRCMP_EQUAL("full", tether::to_string(JitterMode::kFull));
    STRCMP_EQUAL("equal", tether::to_string(JitterMode::kEqual));
    STRCMP_EQUAL("decorrelated", tether::to_string(JitterMode::kDecorrelated));
    STRCMP_EQUAL("unknown", tether::to_string(static_cast<JitterMode>(99)));
}

TEST(JitterMode, TheCountCoversEveryNamedMode) {
    for (std::size_t i = 0; i < tether::kJitterModeCount; ++i) {
        const auto mode = static_cast<JitterMode>(i);
        CHECK(std::strcmp("unknown", tether::to_string(mode)) != 0);
        JitterMode parsed = JitterMode::kNone;
        CHECK_TRUE(tether::parse_jitter_mode(tether::to_string(mode), &parsed));
        CHECK(parsed == mode);
    }
    STRCMP_EQUAL("unknown", tether::to_string(static_cast<JitterMode>(tether::kJitterModeCount)));
}

TEST(JitterMode, ParseRejectsOtherTextAndLeavesTheModeAlone) {
    const char* const rejected[] = {"", "Full", "fullx", "ful", "unknown", " none"};
    for (const char* text : rejected) {
        JitterMode mode = JitterMode::kEqual;
        CHECK_FALSE(tether::parse_jitter_mode(text, &mode));
        LONGS_EQUAL(static_cast<int>(JitterMode::kEqual), static_cast<int>(mode));
    }
    JitterMode mode = JitterMode::kEqual;
    CHECK_FALSE(tether::parse_jitter_mode(nullptr, &mode));
    LONGS_EQUAL(static_cast<int>(JitterMode::kEqual), static_cast<int>(mode));
    CHECK_FALSE(tether::parse_jitter_mode("full", nullptr));
}

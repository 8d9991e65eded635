// SPDX-License-Identifier: MIT
#include <CppUTest/TestHarness.h>

#include <cstdint>

#include "tether/heartbeat.h"
#include "tether/status.h"
#include "tether/time.h"

using tether::Heartbeat;
using tether::HeartbeatAction;
using tether::HeartbeatConfig;
using tether::Status;
using tether::TimeMs;

namespace {

HeartbeatConfig config_of(std::uint32_t interval, std::uint32_t timeout, std::uint32_t missed) {
    HeartbeatConfig config;
    config.interval_ms = interval;
    config.pong_timeout_ms = timeout;
    config.max_missed_pongs = missed;
    return config;
}

std::uint32_t payload_number(const Heartbeat& heartbeat) {
    std::uint8_t payload[tether::kPingPayloadSize] = {};
    heartbeat.ping_payload(payload);
    return (static_cast<std::uint32_t>(payload[0]) << 24u) |
           (static_cast<std::uint32_t>(payload[1]) << 16u) |
           (static_cast<std::uint32_t>(payload[2]) << 8u) | static_cast<std::uint32_t>(payload[3]);
}

// Answers the ping poll() just asked for, at `now`.
bool answer_latest_ping(Heartbeat& heartbeat, TimeMs now) {
    std::uint8_t payload[tether::kPingPayloadSize] = {};
    heartbeat.ping_payload(payload);
    return heartbeat.on_pong(now, payload, sizeof payload);
}

// Polls every millisecond from `from` up to and including `to`; returns the
// first time poll() gave `wanted`, or `to + 1` when it never did.
TimeMs first_time_of(Heartbeat& heartbeat, HeartbeatAction wanted, TimeMs from, TimeMs to) {
    for (TimeMs now = from;; ++now) {
        if (heartbeat.poll(now) == wanted) {
            return now;
        }
        if (now == to) {
            return to + 1u;
        }
    }
}

// Fixed-seed xorshift32, so every run exercises the same arrival patterns.
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

TEST_GROUP(Heartbeat){};

TEST(Heartbeat, ValidateAcceptsDefaultsDisabledAndExactlyOneDay) {
    CHECK(Status::kOk == tether::validate(HeartbeatConfig{}));
    CHECK(Status::kOk == tether::validate(config_of(0, 0, 0)));  // disabled: rest ignored
    CHECK(Status::kOk == tether::validate(config_of(1, 1, 1)));
    CHECK(Status::kOk == tether::validate(config_of(86400000u - 3000u, 1000, 3)));
    UNSIGNED_LONGS_EQUAL(86400000u, tether::kMaxHeartbeatDetectionMs);
}

TEST(Heartbeat, ValidateRejectsZeroTimeoutZeroMissesAndMoreThanADay) {
    CHECK(Status::kInvalidArgument == tether::validate(config_of(30000, 0, 1)));
    CHECK(Status::kInvalidArgument == tether::validate(config_of(30000, 10000, 0)));
    CHECK(Status::kInvalidArgument == tether::validate(config_of(86400000u - 3000u, 1000, 4)));
    CHECK(Status::kInvalidArgument == tether::validate(config_of(86400001u, 1, 1)));
    // The product must not wrap into range.
    CHECK(Status::kInvalidArgument == tether::validate(config_of(1, 0x10000u, 0x10000u)));
}

TEST(Heartbeat, PingsAfterAnIdleInterval) {
    Heartbeat heartbeat(HeartbeatConfig{});
    CHECK_TRUE(heartbeat.enabled());
    heartbeat.start(1000);
    UNSIGNED_LONGS_EQUAL(31000u, heartbeat.next_deadline());
    CHECK(HeartbeatAction::kNone == heartbeat.poll(1000));
    CHECK(HeartbeatAction::kNone == heartbeat.poll(30999));
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(31000));
    UNSIGNED_LONGS_EQUAL(1u, payload_number(heartbeat));
    UNSIGNED_LONGS_EQUAL(41000u, heartbeat.next_deadline());
    // Only one ping per interval: polling again waits for the pong.
    CHECK(HeartbeatAction::kNone == heartbeat.poll(31000));
    CHECK(HeartbeatAction::kNone == heartbeat.poll(40999));
}

TEST(Heartbeat, PingPayloadIsTheBigEndianPingNumber) {
    Heartbeat heartbeat(config_of(10, 5, 1));
    heartbeat.start(0);
    TimeMs now = 0;
    for (std::uint32_t number = 1; number <= 300; ++number) {
        now += 10;
        CHECK(HeartbeatAction::kSendPing == heartbeat.poll(now));
        CHECK_TRUE(answer_latest_ping(heartbeat, now));
    }
    std::uint8_t payload[tether::kPingPayloadSize] = {0xAA, 0xAA, 0xAA, 0xAA};
    heartbeat.ping_payload(payload);
    BYTES_EQUAL(0x00, payload[0]);
    BYTES_EQUAL(0x00, payload[1]);
    BYTES_EQUAL(0x01, payload[2]);  // 300 = 0x012C
    BYTES_EQUAL(0x2C, payload[3]);
}

TEST(Heartbeat, ReceivedDataPostponesThePing) {
    Heartbeat heartbeat(HeartbeatConfig{});
    heartbeat.start(0);
    heartbeat.on_frame_received(20000);
    CHECK(HeartbeatAction::kNone == heartbeat.poll(30000));
    UNSIGNED_LONGS_EQUAL(50000u, heartbeat.next_deadline());
    CHECK(HeartbeatAction::kNone == heartbeat.poll(49999));
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(50000));
}

TEST(Heartbeat, PongClearsTheWaitAndRestartsTheInterval) {
    Heartbeat heartbeat(HeartbeatConfig{});
    heartbeat.start(0);
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(30000));
    CHECK_TRUE(answer_latest_ping(heartbeat, 30050));
    UNSIGNED_LONGS_EQUAL(0u, heartbeat.missed_pongs());
    UNSIGNED_LONGS_EQUAL(60050u, heartbeat.next_deadline());
    CHECK(HeartbeatAction::kNone == heartbeat.poll(40000));  // the old pong deadline
    CHECK(HeartbeatAction::kNone == heartbeat.poll(60049));
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(60050));
    UNSIGNED_LONGS_EQUAL(2u, payload_number(heartbeat));
}

TEST(Heartbeat, AnyFrameWhileAwaitingThePongProvesLiveness) {
    Heartbeat heartbeat(HeartbeatConfig{});
    heartbeat.start(0);
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(30000));
    heartbeat.on_frame_received(39999);  // data queued ahead of the pong
    CHECK(HeartbeatAction::kNone == heartbeat.poll(40000));
    UNSIGNED_LONGS_EQUAL(69999u, heartbeat.next_deadline());
}

TEST(Heartbeat, DeadExactlyIntervalPlusTimeoutAfterTheLastFrameByDefault) {
    Heartbeat heartbeat(HeartbeatConfig{});
    heartbeat.start(0);
    heartbeat.on_frame_received(5000);
    UNSIGNED_LONGS_EQUAL(35000u, first_time_of(heartbeat, HeartbeatAction::kSendPing, 5000, 60000));
    UNSIGNED_LONGS_EQUAL(45000u, heartbeat.next_deadline());
    // Every millisecond up to 44999 is still alive; 45000 is dead.
    UNSIGNED_LONGS_EQUAL(45000u, first_time_of(heartbeat, HeartbeatAction::kDead, 35001, 60000));
    UNSIGNED_LONGS_EQUAL(1u, heartbeat.missed_pongs());
}

TEST(Heartbeat, DeathIsFinalUntilTheNextStart) {
    Heartbeat heartbeat(HeartbeatConfig{});
    heartbeat.start(0);
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(30000));
    CHECK(HeartbeatAction::kDead == heartbeat.poll(40000));
    CHECK(HeartbeatAction::kDead == heartbeat.poll(40001));
    UNSIGNED_LONGS_EQUAL(40000u, heartbeat.next_deadline());
    heartbeat.on_frame_received(40002);  // too late: the verdict stands
    CHECK(HeartbeatAction::kDead == heartbeat.poll(40003));
    CHECK(HeartbeatAction::kDead == heartbeat.poll(100000));
    UNSIGNED_LONGS_EQUAL(40000u, heartbeat.next_deadline());

    heartbeat.start(200000);
    CHECK(HeartbeatAction::kNone == heartbeat.poll(200000));
    UNSIGNED_LONGS_EQUAL(230000u, heartbeat.next_deadline());
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(230000));
}

TEST(Heartbeat, ThreeAllowedMissesSendTwoMorePingsBeforeDeath) {
    Heartbeat heartbeat(config_of(30000, 10000, 3));
    heartbeat.start(0);
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(30000));
    UNSIGNED_LONGS_EQUAL(1u, payload_number(heartbeat));
    CHECK(HeartbeatAction::kNone == heartbeat.poll(39999));
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(40000));
    UNSIGNED_LONGS_EQUAL(2u, payload_number(heartbeat));
    UNSIGNED_LONGS_EQUAL(1u, heartbeat.missed_pongs());
    UNSIGNED_LONGS_EQUAL(50000u, heartbeat.next_deadline());
    CHECK(HeartbeatAction::kNone == heartbeat.poll(49999));
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(50000));
    UNSIGNED_LONGS_EQUAL(3u, payload_number(heartbeat));
    UNSIGNED_LONGS_EQUAL(2u, heartbeat.missed_pongs());
    CHECK(HeartbeatAction::kNone == heartbeat.poll(59999));
    CHECK(HeartbeatAction::kDead == heartbeat.poll(60000));  // interval + 3 * timeout
    UNSIGNED_LONGS_EQUAL(3u, heartbeat.missed_pongs());
}

TEST(Heartbeat, AnswerToTheLastRetryPingKeepsTheLinkAlive) {
    Heartbeat heartbeat(config_of(30000, 10000, 3));
    heartbeat.start(0);
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(30000));
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(40000));
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(50000));
    CHECK_TRUE(answer_latest_ping(heartbeat, 59999));
    UNSIGNED_LONGS_EQUAL(0u, heartbeat.missed_pongs());
    UNSIGNED_LONGS_EQUAL(9999u, heartbeat.last_rtt_ms());
    CHECK(HeartbeatAction::kNone == heartbeat.poll(60000));
    UNSIGNED_LONGS_EQUAL(89999u, heartbeat.next_deadline());
}

TEST(Heartbeat, MeasuresTheRoundTripTime) {
    Heartbeat heartbeat(HeartbeatConfig{});
    heartbeat.start(0);
    CHECK_FALSE(heartbeat.has_rtt());
    UNSIGNED_LONGS_EQUAL(0u, heartbeat.last_rtt_ms());
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(30000));
    CHECK_TRUE(answer_latest_ping(heartbeat, 30123));
    CHECK_TRUE(heartbeat.has_rtt());
    UNSIGNED_LONGS_EQUAL(123u, heartbeat.last_rtt_ms());

    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(60123));
    CHECK_TRUE(answer_latest_ping(heartbeat, 60130));
    UNSIGNED_LONGS_EQUAL(7u, heartbeat.last_rtt_ms());
}

TEST(Heartbeat, PongAfterADataFrameStillMeasuresButOnlyOnce) {
    Heartbeat heartbeat(HeartbeatConfig{});
    heartbeat.start(0);
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(30000));
    heartbeat.on_frame_received(30010);
    CHECK_TRUE(answer_latest_ping(heartbeat, 30020));
    UNSIGNED_LONGS_EQUAL(20u, heartbeat.last_rtt_ms());
    CHECK_FALSE(answer_latest_ping(heartbeat, 30500));  // a duplicate answers nothing
    UNSIGNED_LONGS_EQUAL(20u, heartbeat.last_rtt_ms());
    UNSIGNED_LONGS_EQUAL(60500u, heartbeat.next_deadline());  // but it is still a frame
}

TEST(Heartbeat, StalePongCountsAsLivenessWithoutARoundTripTime) {
    Heartbeat heartbeat(config_of(30000, 10000, 2));
    heartbeat.start(0);
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(30000));
    std::uint8_t first[tether::kPingPayloadSize] = {};
    heartbeat.ping_payload(first);
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(40000));  // ping 1 missed, ping 2 out
    UNSIGNED_LONGS_EQUAL(1u, heartbeat.missed_pongs());

    CHECK_FALSE(heartbeat.on_pong(45000, first, sizeof first));  // the late answer to ping 1
    CHECK_FALSE(heartbeat.has_rtt());
    UNSIGNED_LONGS_EQUAL(0u, heartbeat.missed_pongs());
    CHECK(HeartbeatAction::kNone == heartbeat.poll(50000));  // ping 2's deadline no longer applies
    UNSIGNED_LONGS_EQUAL(75000u, heartbeat.next_deadline());
}

TEST(Heartbeat, MalformedOrUnsolicitedPongsRecordNoRoundTripTime) {
    Heartbeat heartbeat(HeartbeatConfig{});
    heartbeat.start(0);
    const std::uint8_t one[tether::kPingPayloadSize] = {0, 0, 0, 1};
    CHECK_FALSE(heartbeat.on_pong(100, one, sizeof one));  // before any ping: unsolicited
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(30100));
    CHECK_FALSE(heartbeat.on_pong(30101, one, 3));  // wrong size
    CHECK_FALSE(heartbeat.on_pong(30102, nullptr, 0));
    const std::uint8_t five[5] = {0, 0, 0, 1, 0};
    CHECK_FALSE(heartbeat.on_pong(30103, five, sizeof five));
    CHECK_FALSE(heartbeat.has_rtt());
    UNSIGNED_LONGS_EQUAL(60103u, heartbeat.next_deadline());
    CHECK_TRUE(heartbeat.on_pong(30104, one, sizeof one));
    UNSIGNED_LONGS_EQUAL(4u, heartbeat.last_rtt_ms());
}

TEST(Heartbeat, StartForgetsTheEarlierConnection) {
    Heartbeat heartbeat(HeartbeatConfig{});
    heartbeat.start(0);
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(30000));
    CHECK_TRUE(answer_latest_ping(heartbeat, 30010));
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(60010));
    heartbeat.start(65000);  // reconnected with the ping outstanding
    CHECK_FALSE(heartbeat.has_rtt());
    UNSIGNED_LONGS_EQUAL(0u, heartbeat.last_rtt_ms());
    CHECK_FALSE(answer_latest_ping(heartbeat, 65001));  // belongs to the old connection
    CHECK(HeartbeatAction::kNone == heartbeat.poll(70010));
    UNSIGNED_LONGS_EQUAL(95001u, heartbeat.next_deadline());
}

TEST(Heartbeat, DisabledHeartbeatNeverPings) {
    Heartbeat heartbeat(config_of(0, 0, 0));
    CHECK_FALSE(heartbeat.enabled());
    heartbeat.start(0);
    for (TimeMs now = 0; now < 0xF0000000u; now += 0x00100000u) {
        CHECK(HeartbeatAction::kNone == heartbeat.poll(now));
    }
    heartbeat.on_frame_received(5);
    CHECK_FALSE(heartbeat.on_pong(6, nullptr, 0));
    CHECK(HeartbeatAction::kNone == heartbeat.poll(0xFFFFFFFFu));
}

TEST(Heartbeat, ConstructorClampsAnInvalidConfig) {
    Heartbeat heartbeat(config_of(100, 0, 0));  // behaves as timeout 1, one miss
    heartbeat.start(0);
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(100));
    UNSIGNED_LONGS_EQUAL(101u, heartbeat.next_deadline());
    CHECK(HeartbeatAction::kDead == heartbeat.poll(101));

    Heartbeat huge(config_of(0xFFFFFFFFu, 0xFFFFFFFFu, 1));  // each clamped to one day
    huge.start(0);
    UNSIGNED_LONGS_EQUAL(tether::kMaxHeartbeatDetectionMs, huge.next_deadline());
    CHECK(HeartbeatAction::kNone == huge.poll(tether::kMaxHeartbeatDetectionMs - 1u));
    CHECK(HeartbeatAction::kSendPing == huge.poll(tether::kMaxHeartbeatDetectionMs));
    UNSIGNED_LONGS_EQUAL(2u * tether::kMaxHeartbeatDetectionMs, huge.next_deadline());
}

TEST(Heartbeat, WithoutProbesSteadyTrafficNeverYieldsARoundTripTime) {
    Heartbeat heartbeat(config_of(30000, 10000, 1));
    heartbeat.start(0);
    for (TimeMs now = 1000; now <= 300000; now += 1000) {
        heartbeat.on_frame_received(now);
        CHECK(HeartbeatAction::kNone == heartbeat.poll(now));
    }
    CHECK_FALSE(heartbeat.has_rtt());
}

TEST(Heartbeat, ProbesMeasureTheRoundTripTimeWhileFramesKeepArriving) {
    HeartbeatConfig config = config_of(30000, 10000, 1);
    config.rtt_probe_ms = 30000;
    Heartbeat heartbeat(config);
    heartbeat.start(0);
    UNSIGNED_LONGS_EQUAL(30000u, heartbeat.next_deadline());
    for (TimeMs now = 1000; now < 30000; now += 1000) {
        heartbeat.on_frame_received(now);
        CHECK(HeartbeatAction::kNone == heartbeat.poll(now));
    }
    UNSIGNED_LONGS_EQUAL(30000u, heartbeat.next_deadline());  // the probe, before the idle ping
    heartbeat.on_frame_received(30000);
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(30000));
    UNSIGNED_LONGS_EQUAL(1u, payload_number(heartbeat));
    UNSIGNED_LONGS_EQUAL(60000u, heartbeat.next_deadline());  // no pong deadline for a probe
    heartbeat.on_frame_received(30010);                       // data ahead of the pong
    CHECK_TRUE(answer_latest_ping(heartbeat, 30045));
    CHECK_TRUE(heartbeat.has_rtt());
    UNSIGNED_LONGS_EQUAL(45u, heartbeat.last_rtt_ms());
    // The next probe is due rtt_probe_ms after the previous ping.
    heartbeat.on_frame_received(59999);
    CHECK(HeartbeatAction::kNone == heartbeat.poll(59999));
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(60000));
    UNSIGNED_LONGS_EQUAL(2u, payload_number(heartbeat));
}

TEST(Heartbeat, AnUnansweredProbeNeitherMissesNorKillsALiveLink) {
    HeartbeatConfig config = config_of(30000, 10000, 1);
    config.rtt_probe_ms = 20000;
    Heartbeat heartbeat(config);
    heartbeat.start(0);
    std::uint32_t probes = 0;
    for (TimeMs now = 500; now <= 200000; now += 500) {
        heartbeat.on_frame_received(now);
        const HeartbeatAction action = heartbeat.poll(now);
        CHECK(action != HeartbeatAction::kDead);
        probes += action == HeartbeatAction::kSendPing ? 1u : 0u;
        UNSIGNED_LONGS_EQUAL(0u, heartbeat.missed_pongs());
    }
    UNSIGNED_LONGS_EQUAL(10u, probes);  // every 20 s, never answered
    CHECK_FALSE(heartbeat.has_rtt());
    // Silence after the last frame: dead exactly at interval + timeout, as without probes.
    const TimeMs last_frame = 200000;
    UNSIGNED_LONGS_EQUAL(last_frame + 40000u, first_time_of(heartbeat, HeartbeatAction::kDead,
                                                            last_frame + 1u, last_frame + 100000u));
}

TEST(Heartbeat, ValidateRejectsAProbeIntervalAboveADay) {
    HeartbeatConfig config;
    config.rtt_probe_ms = tether::kMaxHeartbeatDetectionMs;
    CHECK(Status::kOk == tether::validate(config));
    config.rtt_probe_ms = tether::kMaxHeartbeatDetectionMs + 1u;
    CHECK(Status::kInvalidArgument == tether::validate(config));
}

TEST(Heartbeat, SurvivesTimeWrapAround) {
    Heartbeat heartbeat(config_of(1000, 500, 2));
    const TimeMs start = 0xFFFFFF00u;
    heartbeat.start(start);
    UNSIGNED_LONGS_EQUAL(0x2E8u, heartbeat.next_deadline());
    CHECK(HeartbeatAction::kNone == heartbeat.poll(0xFFFFFFFFu));
    CHECK(HeartbeatAction::kNone == heartbeat.poll(0x2E7u));
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(0x2E8u));
    CHECK_TRUE(answer_latest_ping(heartbeat, 0x2F0u));
    UNSIGNED_LONGS_EQUAL(8u, heartbeat.last_rtt_ms());

    // Across the wrap again, from a ping sent just before it.
    heartbeat.start(0xFFFFFFFFu - 1000u);
    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(0xFFFFFFFFu));
    CHECK_TRUE(answer_latest_ping(heartbeat, 9u));
    UNSIGNED_LONGS_EQUAL(10u, heartbeat.last_rtt_ms());
    UNSIGNED_LONGS_EQUAL(1009u, first_time_of(heartbeat, HeartbeatAction::kSendPing, 10u, 5000u));
    UNSIGNED_LONGS_EQUAL(2009u, first_time_of(heartbeat, HeartbeatAction::kDead, 1010u, 5000u));
}

// ---------------------------------------------------------------------------
// Properties over random frame-arrival patterns.

namespace {

struct Pattern {
    HeartbeatConfig config;
    TimeMs start;
};

// Simulates `duration` ms, polling every millisecond after delivering that
// millisecond's frames. Frames come in bursts with random gaps, the link goes
// quiet for random stretches, and pings are answered after a random delay
// (sometimes too late, sometimes never). Because poll() runs every
// millisecond, the action at each moment is a function of the time since the
// last frame alone, which the loop checks exactly:
//   kSendPing at interval + k * timeout for k < max_missed_pongs,
//   kDead at interval + max_missed_pongs * timeout (the detection bound),
//   kNone otherwise.
// After kDead the connection is restarted.
void run_arrival_pattern(const Pattern& pattern, std::uint32_t seed) {
    const HeartbeatConfig& config = pattern.config;
    const std::uint32_t bound =
        config.interval_ms + config.max_missed_pongs * config.pong_timeout_ms;
    Heartbeat heartbeat(config);
    Random random(seed);
    heartbeat.start(pattern.start);
    TimeMs last_frame = pattern.start;
    std::uint32_t deaths = 0;
    std::uint32_t pings = 0;

    bool link_up = true;
    std::uint32_t phase_left = 0;    // ms until the link flips between up and quiet
    std::uint32_t next_data_in = 1;  // ms until the next data frame, while up
    bool pong_pending = false;       // an answer is on its way
    TimeMs pong_due = 0;
    TimeMs pong_sent_for = 0;  // when the ping being answered left
    std::uint8_t pong_payload[tether::kPingPayloadSize] = {};

    for (std::uint32_t step = 0; step < 60000; ++step) {
        const TimeMs now = pattern.start + step;
        if (phase_left == 0) {
            link_up = random.below(3) != 0;
            phase_left = 1u + random.below(4u * bound);
        }
        --phase_left;

        if (pong_pending && now == pong_due) {
            pong_pending = false;
            const bool measured = heartbeat.on_pong(now, pong_payload, sizeof pong_payload);
            if (measured) {
                UNSIGNED_LONGS_EQUAL(tether::time_since(now, pong_sent_for),
                                     heartbeat.last_rtt_ms());
            }
            last_frame = now;
        }
        if (link_up && --next_data_in == 0) {
            heartbeat.on_frame_received(now);
            last_frame = now;
        }
        if (next_data_in == 0) {
            next_data_in = 1u + random.below(2u * config.interval_ms);
        }

        const HeartbeatAction action = heartbeat.poll(now);
        const std::uint32_t idle = tether::time_since(now, last_frame);
        HeartbeatAction expected = HeartbeatAction::kNone;
        if (idle >= bound) {
            expected = HeartbeatAction::kDead;
        } else if (idle >= config.interval_ms &&
                   (idle - config.interval_ms) % config.pong_timeout_ms == 0u) {
            expected = HeartbeatAction::kSendPing;
        }
        CHECK(expected == action);
        CHECK(idle <= bound);  // never silent past the bound

        if (action == HeartbeatAction::kSendPing) {
            ++pings;
            if (link_up && random.below(4) != 0) {
                pong_pending = true;
                pong_due = now + 1u + random.below(2u * config.pong_timeout_ms);
                pong_sent_for = now;
                heartbeat.ping_payload(pong_payload);
            }
        } else if (action == HeartbeatAction::kDead) {
            ++deaths;
            heartbeat.start(now);
            last_frame = now;
            pong_pending = false;
        }
    }
    CHECK(pings > 0u);
    CHECK(deaths > 0u);
}

}  // namespace

TEST(Heartbeat, RandomArrivalsAreDeclaredDeadExactlyAtTheDetectionBound) {
    const Pattern patterns[] = {
        {config_of(100, 30, 1), 0},          {config_of(100, 30, 3), 0xFFFFF000u},
        {config_of(50, 50, 2), 0x7FFFFF00u}, {config_of(7, 1, 4), 0xFFFFFFF0u},
        {config_of(200, 7, 5), 12345u},
    };
    std::uint32_t seed = 0x9E3779B9u;
    for (const Pattern& pattern : patterns) {
        for (int run = 0; run < 4; ++run) {
            seed = seed * 1664525u + 1013904223u;
            run_arrival_pattern(pattern, seed);
        }
    }
}

TEST(Heartbeat, FramesMoreOftenThanTheIntervalNeverTriggerAPingOrDeath) {
    const HeartbeatConfig configs[] = {config_of(100, 30, 1), config_of(2, 1, 1),
                                       config_of(30000, 10000, 1)};
    Random random(0xC0FFEEu);
    for (const HeartbeatConfig& config : configs) {
        Heartbeat heartbeat(config);
        TimeMs now = 0xFFFF0000u;
        heartbeat.start(now);
        for (int frame = 0; frame < 5000; ++frame) {
            const TimeMs next_frame = now + 1u + random.below(config.interval_ms - 1u);
            // Poll at each deadline reported and every few ms in between.
            while (now != next_frame) {
                CHECK(HeartbeatAction::kNone == heartbeat.poll(now));
                CHECK_FALSE(tether::time_reached(now, heartbeat.next_deadline()));
                now += 1u + random.below(config.interval_ms / 4u + 1u);
                if (tether::time_reached(now, next_frame)) {
                    now = next_frame;
                }
            }
            heartbeat.on_frame_received(now);
        }
        CHECK(HeartbeatAction::kNone == heartbeat.poll(now));
    }
}

TEST(Heartbeat, PollingOnlyAtDeadlinesDetectsALostLinkAtTheBound) {
    // Event-driven: the loop sleeps until next_deadline() or the next frame.
    const HeartbeatConfig configs[] = {HeartbeatConfig{}, config_of(30000, 10000, 3),
                                       config_of(15000, 5000, 2)};
    Random random(0xBADC0DEu);
    for (const HeartbeatConfig& config : configs) {
        const std::uint32_t bound =
            config.interval_ms + config.max_missed_pongs * config.pong_timeout_ms;
        for (int trial = 0; trial < 50; ++trial) {
            Heartbeat heartbeat(config);
            const TimeMs start = random.next();
            heartbeat.start(start);
            TimeMs now = start;
            TimeMs last_frame = start;
            const std::uint32_t frames = random.below(20);
            for (std::uint32_t i = 0; i < frames; ++i) {
                const TimeMs frame_at = now + 1u + random.below(bound - 1u);
                while (tether::time_reached(frame_at, heartbeat.next_deadline()) &&
                       heartbeat.next_deadline() != frame_at) {
                    now = heartbeat.next_deadline();
                    CHECK(HeartbeatAction::kSendPing == heartbeat.poll(now));
                }
                now = frame_at;
                heartbeat.on_frame_received(now);
                last_frame = now;
            }
            // The link dies silently after the last frame.
            HeartbeatAction action = HeartbeatAction::kNone;
            std::uint32_t polls = 0;
            while (action != HeartbeatAction::kDead) {
                now = heartbeat.next_deadline();
                action = heartbeat.poll(now);
                ++polls;
                CHECK(polls <= config.max_missed_pongs + 1u);
            }
            UNSIGNED_LONGS_EQUAL(bound, tether::time_since(now, last_frame));
        }
    }
}

// SPDX-License-Identifier: MIT
#include <CppUTest/TestHarness.h>

#include <cstdint>

#include "support/tether_strings.h"
#include "tether/reconnect.h"

using tether::Action;
using tether::Actions;
using tether::ActionType;
using tether::Event;
using tether::EventType;
using tether::Failure;
using tether::FailureKind;
using tether::LinkState;
using tether::ReconnectConfig;
using tether::ReconnectMachine;
using tether::TimeMs;

namespace {

// Jitter off, so every delay is exact: 1 s, 2 s, 4 s ... capped at 32 s.
ReconnectConfig exact_config() {
    ReconnectConfig config;
    config.backoff.jitter = tether::JitterMode::kNone;
    config.backoff.initial_delay_ms = 1000;
    config.backoff.max_delay_ms = 32000;
    config.backoff.healthy_after_ms = 10000;
    config.heartbeat.interval_ms = 30000;
    config.heartbeat.pong_timeout_ms = 10000;
    return config;
}

Failure failure(FailureKind kind, std::uint16_t code = 0) {
    Failure result{kind};
    result.code = code;
    return result;
}

Failure overloaded(std::uint16_t status, std::uint32_t retry_after_ms) {
    Failure result{FailureKind::kHttpStatus};
    result.code = status;
    result.has_retry_after = true;
    result.retry_after_ms = retry_after_ms;
    return result;
}

// Drives one machine and checks, after every step, that a change of state is
// one the transition table declares.
struct Driver {
    explicit Driver(const ReconnectConfig& config, TimeMs start = 1000)
        : machine(config), now(start) {}

    Actions step(const Event& event) {
        const LinkState before = machine.state();
        last = machine.step(event, now, random);
        if (machine.state() != before) {
            CHECK_TEXT(tether::transition_declared(before, event.type, machine.state()),
                       "undeclared transition");
        }
        return last;
    }
    Actions on(EventType type) { return step(Event::of(type)); }
    Actions fail(const Failure& what, bool more_addresses = false) {
        return step(Event::failed(what, more_addresses));
    }
    // Advances the clock to the machine's deadline and fires the timer.
    Actions fire() {
        CHECK_TRUE(machine.has_deadline());
        now = machine.next_deadline();
        return step(Event::timer());
    }
    void advance(std::uint32_t ms) { now += ms; }

    void to_online() {
        step(Event::start());
        on(EventType::kResolved);
        on(EventType::kTcpConnected);
        if (machine.state() == LinkState::kTlsHandshake) {
            on(EventType::kTlsEstablished);
        }
        on(EventType::kUpgraded);
        if (machine.state() == LinkState::kSessionResume) {
            on(EventType::kSessionResumed);
        }
        CHECK_EQUAL(LinkState::kOnline, machine.state());
    }

    ReconnectMachine machine;
    TimeMs now;
    std::uint32_t random = 0;
    Actions last;
};

bool has(const Actions& actions, ActionType type) {
    return actions.contains(type);
}

}  // namespace

TEST_GROUP(ReconnectMachine){};

TEST(ReconnectMachine, ValidatesItsConfiguration) {
    ReconnectConfig config = exact_config();
    CHECK_EQUAL(tether::Status::kOk, tether::validate(config));
    config.endpoint_count = 0;
    CHECK_EQUAL(tether::Status::kInvalidArgument, tether::validate(config));
    config = exact_config();
    config.endpoint_count = 9;
    CHECK_EQUAL(tether::Status::kInvalidArgument, tether::validate(config));
    config = exact_config();
    config.connect_timeout_ms = 0;
    CHECK_EQUAL(tether::Status::kInvalidArgument, tether::validate(config));
    config = exact_config();
    config.close_timeout_ms = 25u * 60u * 60u * 1000u;
    CHECK_EQUAL(tether::Status::kInvalidArgument, tether::validate(config));
    config.close_timeout_ms = tether::kMaxTimeoutMs + 1;
    CHECK_EQUAL(tether::Status::kInvalidArgument, tether::validate(config));
    config.close_timeout_ms = tether::kMaxTimeoutMs;
    CHECK_EQUAL(tether::Status::kOk, tether::validate(config));
    config = exact_config();
    config.backoff.initial_delay_ms = 0;
    CHECK_EQUAL(tether::Status::kInvalidArgument, tether::validate(config));
}

TEST(ReconnectMachine, StartsIdleWithNoDeadline) {
    Driver d(exact_config());
    CHECK_EQUAL(LinkState::kIdle, d.machine.state());
    CHECK_FALSE(d.machine.has_deadline());
    CHECK_EQUAL(0, d.on(EventType::kTimer).count);
}

TEST(ReconnectMachine, StartCountsAnAttemptPersistsAndResolvesThePrimary) {
    Driver d(exact_config());
    const Actions actions = d.step(Event::start());
    CHECK_EQUAL(LinkState::kResolving, d.machine.state());
    CHECK_EQUAL(3, actions.count);
    CHECK_EQUAL(ActionType::kPersist, actions.items[0].type);
    CHECK_EQUAL(ActionType::kNotifyState, actions.items[1].type);
    CHECK_EQUAL(ActionType::kResolve, actions.items[2].type);
    CHECK_EQUAL(0, actions.items[2].endpoint);
    UNSIGNED_LONGS_EQUAL(1, d.machine.attempts());
    UNSIGNED_LONGS_EQUAL(d.now + 10000, d.machine.next_deadline());
}

TEST(ReconnectMachine, StartWithARestoredCounterWaitsTheBackoffFirst) {
    Driver d(exact_config());
    d.machine.restore_attempts(3);
    const Actions actions = d.step(Event::start());
    CHECK_EQUAL(LinkState::kWaitingToRetry, d.machine.state());
    CHECK_FALSE(has(actions, ActionType::kResolve));
    UNSIGNED_LONGS_EQUAL(4000, d.machine.retry_delay_ms());
    UNSIGNED_LONGS_EQUAL(d.now + 4000, d.machine.next_deadline());
    d.fire();
    CHECK_EQUAL(LinkState::kResolving, d.machine.state());
    UNSIGNED_LONGS_EQUAL(4, d.machine.attempts());
}

TEST(ReconnectMachine, StartWithExhaustedAttemptsGivesUpAtOnce) {
    ReconnectConfig config = exact_config();
    config.backoff.max_attempts = 3;
    Driver d(config);
    d.machine.restore_attempts(3);
    d.step(Event::start());
    CHECK_EQUAL(LinkState::kGivenUp, d.machine.state());
    STRCMP_EQUAL("max_attempts", d.machine.give_up_reason());
    CHECK_FALSE(d.machine.has_deadline());
}

TEST(ReconnectMachine, RestoringZeroAttemptsLeavesGivenUp) {
    ReconnectConfig config = exact_config();
    config.backoff.max_attempts = 1;
    Driver d(config);
    d.step(Event::start());
    d.fail(failure(FailureKind::kTcpRefused));
    CHECK_EQUAL(LinkState::kGivenUp, d.machine.state());
    d.machine.restore_attempts(0);
    d.step(Event::start());
    CHECK_EQUAL(LinkState::kResolving, d.machine.state());
}

TEST(ReconnectMachine, StartWhileEveryEndpointIsHeldWaitsForTheFirstHoldToEnd) {
    Driver d(exact_config());
    d.step(Event::start());
    d.on(EventType::kResolved);
    d.on(EventType::kTcpConnected);
    d.fail(overloaded(503, 30000));  // Retry-After: 30 holds the only endpoint
    d.step(Event::stop());
    CHECK_EQUAL(LinkState::kIdle, d.machine.state());
    d.machine.restore_attempts(0);
    d.advance(5000);
    d.step(Event::start());
    CHECK_EQUAL(LinkState::kWaitingToRetry, d.machine.state());
    UNSIGNED_LONGS_EQUAL(25000, d.machine.retry_delay_ms());
    d.fire();
    CHECK_EQUAL(LinkState::kResolving, d.machine.state());
}

TEST(ReconnectMachine, ResolvedConnectsWithAConnectTimeout) {
    Driver d(exact_config());
    d.step(Event::start());
    d.advance(50);
    const Actions actions = d.on(EventType::kResolved);
    CHECK_EQUAL(LinkState::kTcpConnecting, d.machine.state());
    CHECK_EQUAL(0, actions.find(ActionType::kConnect)->endpoint);
    UNSIGNED_LONGS_EQUAL(d.now + 10000, d.machine.next_deadline());
}

TEST(ReconnectMachine, AFailedAddressMovesToTheNextWithoutCountingAnAttempt) {
    Driver d(exact_config());
    d.step(Event::start());
    d.on(EventType::kResolved);
    d.advance(300);
    const Actions actions = d.fail(failure(FailureKind::kTcpRefused), true);
    CHECK_EQUAL(LinkState::kTcpConnecting, d.machine.state());
    CHECK_EQUAL(2, actions.count);
    CHECK_EQUAL(ActionType::kCloseTransport, actions.items[0].type);
    CHECK_EQUAL(ActionType::kConnect, actions.items[1].type);
    UNSIGNED_LONGS_EQUAL(1, d.machine.attempts());
    UNSIGNED_LONGS_EQUAL(d.now + 10000, d.machine.next_deadline());
}

TEST(ReconnectMachine, PlainEndpointGoesFromTcpStraightToTheUpgrade) {
    Driver d(exact_config());
    d.step(Event::start());
    d.on(EventType::kResolved);
    const Actions actions = d.on(EventType::kTcpConnected);
    CHECK_EQUAL(LinkState::kWsHandshake, d.machine.state());
    CHECK_TRUE(has(actions, ActionType::kSendUpgrade));
    CHECK_FALSE(has(actions, ActionType::kStartTls));
}

TEST(ReconnectMachine, TlsEndpointHandshakesBeforeTheUpgrade) {
    ReconnectConfig config = exact_config();
    config.tls_endpoints = 1;
    config.tls_timeout_ms = 15000;
    Driver d(config);
    d.step(Event::start());
    d.on(EventType::kResolved);
    Actions actions = d.on(EventType::kTcpConnected);
    CHECK_EQUAL(LinkState::kTlsHandshake, d.machine.state());
    CHECK_TRUE(has(actions, ActionType::kStartTls));
    UNSIGNED_LONGS_EQUAL(d.now + 15000, d.machine.next_deadline());
    actions = d.on(EventType::kTlsEstablished);
    CHECK_EQUAL(LinkState::kWsHandshake, d.machine.state());
    CHECK_TRUE(has(actions, ActionType::kSendUpgrade));
}

TEST(ReconnectMachine, PlainWebSocketIsOnlineOnceUpgraded) {
    Driver d(exact_config());
    d.step(Event::start());
    d.on(EventType::kResolved);
    d.on(EventType::kTcpConnected);
    const Actions actions = d.on(EventType::kUpgraded);
    CHECK_EQUAL(LinkState::kOnline, d.machine.state());
    CHECK_TRUE(has(actions, ActionType::kNotifyState));
    CHECK_EQUAL(tether::BreakerState::kClosed, d.machine.pool().state(0));
}

TEST(ReconnectMachine, ResumeProtocolSaysHelloThenGoesOnlineOnWelcome) {
    ReconnectConfig config = exact_config();
    config.resume_protocol = true;
    config.resume_timeout_ms = 7000;
    Driver d(config);
    d.step(Event::start());
    d.on(EventType::kResolved);
    d.on(EventType::kTcpConnected);
    Actions actions = d.on(EventType::kUpgraded);
    CHECK_EQUAL(LinkState::kSessionResume, d.machine.state());
    CHECK_TRUE(has(actions, ActionType::kSendHello));
    UNSIGNED_LONGS_EQUAL(d.now + 7000, d.machine.next_deadline());
    actions = d.on(EventType::kSessionResumed);
    CHECK_EQUAL(LinkState::kOnline, d.machine.state());
}

TEST(ReconnectMachine, EventsThatDoNotApplyAreIgnored) {
    Driver d(exact_config());
    CHECK_EQUAL(0, d.on(EventType::kTcpConnected).count);
    CHECK_EQUAL(0, d.on(EventType::kTransportClosed).count);
    CHECK_EQUAL(0, d.fail(failure(FailureKind::kTcpReset)).count);
    CHECK_EQUAL(0, d.step(Event::stop()).count);
    d.step(Event::start());
    CHECK_EQUAL(0, d.on(EventType::kUpgraded).count);
    CHECK_EQUAL(0, d.on(EventType::kSessionResumed).count);
    CHECK_EQUAL(0, d.on(EventType::kFrameReceived).count);
    CHECK_EQUAL(0, d.step(Event::start()).count);
    CHECK_EQUAL(LinkState::kResolving, d.machine.state());
}

TEST(ReconnectMachine, AConnectFailureWaitsTheExponentialDelay) {
    Driver d(exact_config());
    std::uint32_t expected[] = {1000, 2000, 4000, 8000, 16000, 32000, 32000};
    d.step(Event::start());
    for (std::uint32_t delay : expected) {
        const Actions actions = d.fail(failure(FailureKind::kTcpRefused));
        CHECK_TRUE(has(actions, ActionType::kCloseTransport));
        CHECK_EQUAL(LinkState::kWaitingToRetry, d.machine.state());
        UNSIGNED_LONGS_EQUAL(delay, d.machine.retry_delay_ms());
        STRCMP_EQUAL("tcp_refused", d.machine.last_failure_reason());
        d.fire();
        CHECK_EQUAL(LinkState::kResolving, d.machine.state());
    }
}

TEST(ReconnectMachine, EachConnectingPhaseTimesOut) {
    ReconnectConfig config = exact_config();
    config.tls_endpoints = 1;
    config.resume_protocol = true;
    const EventType progress[] = {EventType::kResolved, EventType::kTcpConnected,
                                  EventType::kTlsEstablished, EventType::kUpgraded};
    for (int phase = 0; phase <= 4; ++phase) {
        Driver d(config);
        d.step(Event::start());
        for (int i = 0; i < phase; ++i) {
            d.on(progress[i]);
        }
        const LinkState phase_state = d.machine.state();
        d.now = d.machine.next_deadline() - 1;
        CHECK_EQUAL(0, d.step(Event::timer()).count);
        CHECK_EQUAL(phase_state, d.machine.state());
        const Actions actions = d.fire();
        CHECK_TRUE(has(actions, ActionType::kCloseTransport));
        CHECK_EQUAL(LinkState::kWaitingToRetry, d.machine.state());
    }
}

TEST(ReconnectMachine, APhaseTimeoutOnTheLastAttemptGivesUp) {
    ReconnectConfig config = exact_config();
    config.backoff.max_attempts = 1;
    Driver d(config);
    d.step(Event::start());
    d.fire();
    CHECK_EQUAL(LinkState::kGivenUp, d.machine.state());
    STRCMP_EQUAL("max_attempts", d.machine.give_up_reason());
}

TEST(ReconnectMachine, OnlineSendsAPingAfterTheIdleInterval) {
    Driver d(exact_config());
    d.to_online();
    const TimeMs online_at = d.now;
    d.fire();  // healthy at +10 s
    const Actions actions = d.fire();
    UNSIGNED_LONGS_EQUAL(online_at + 30000, d.now);
    const Action* ping = actions.find(ActionType::kSendPing);
    CHECK(ping != nullptr);
    CHECK_EQUAL(LinkState::kOnline, d.machine.state());
    UNSIGNED_LONGS_EQUAL(0, ping->ping_payload[0] | ping->ping_payload[1] | ping->ping_payload[2]);
    CHECK(ping->ping_payload[3] != 0);
}

TEST(ReconnectMachine, FramesReceivedPostponeThePing) {
    Driver d(exact_config());
    d.to_online();
    const TimeMs online_at = d.now;
    d.fire();  // healthy at +10 s
    d.now = online_at + 25000;
    d.on(EventType::kFrameReceived);
    UNSIGNED_LONGS_EQUAL(online_at + 55000, d.machine.next_deadline());
}

TEST(ReconnectMachine, APongRecordsTheRoundTrip) {
    Driver d(exact_config());
    d.to_online();
    d.fire();
    const Actions actions = d.fire();
    const Action* ping = actions.find(ActionType::kSendPing);
    CHECK(ping != nullptr);
    std::uint8_t payload[tether::kPingPayloadSize];
    for (std::size_t i = 0; i < sizeof payload; ++i) {
        payload[i] = ping->ping_payload[i];
    }
    d.advance(42);
    d.step(Event::pong(payload, sizeof payload));
    CHECK_TRUE(d.machine.heartbeat().has_rtt());
    UNSIGNED_LONGS_EQUAL(42, d.machine.heartbeat().last_rtt_ms());
}

TEST(ReconnectMachine, UnderTrafficAProbePingMeasuresTheRoundTrip) {
    ReconnectConfig config = exact_config();
    config.heartbeat.rtt_probe_ms = 30000;
    Driver d(config);
    d.to_online();
    const TimeMs online_at = d.now;
    const Action* ping = nullptr;
    Actions actions;
    while (ping == nullptr && tether::time_since(d.now, online_at) < 31000u) {
        d.advance(500);
        d.on(EventType::kFrameReceived);
        actions = d.step(Event::timer());
        ping = actions.find(ActionType::kSendPing);
    }
    CHECK(ping != nullptr);
    UNSIGNED_LONGS_EQUAL(online_at + 30000, d.now);
    std::uint8_t payload[tether::kPingPayloadSize];
    for (std::size_t i = 0; i < sizeof payload; ++i) {
        payload[i] = ping->ping_payload[i];
    }
    d.advance(17);
    d.on(EventType::kFrameReceived);
    d.step(Event::pong(payload, sizeof payload));
    CHECK_TRUE(d.machine.heartbeat().has_rtt());
    UNSIGNED_LONGS_EQUAL(17, d.machine.heartbeat().last_rtt_ms());
    CHECK_EQUAL(LinkState::kOnline, d.machine.state());
}

TEST(ReconnectMachine, StayingUpForTheHealthyTimeResetsTheAttempts) {
    Driver d(exact_config());
    d.machine.restore_attempts(5);
    d.step(Event::start());
    d.fire();
    d.on(EventType::kResolved);
    d.on(EventType::kTcpConnected);
    d.on(EventType::kUpgraded);
    UNSIGNED_LONGS_EQUAL(6, d.machine.attempts());
    const TimeMs online_at = d.now;
    const Actions actions = d.fire();
    UNSIGNED_LONGS_EQUAL(online_at + 10000, d.now);
    CHECK_TRUE(has(actions, ActionType::kPersist));
    UNSIGNED_LONGS_EQUAL(0, d.machine.attempts());
}

TEST(ReconnectMachine, AServerThatDropsEveryConnectionEarlyKeepsTheBackoffGrowing) {
    Driver d(exact_config());
    d.step(Event::start());
    std::uint32_t expected[] = {1000, 2000, 4000, 8000, 16000};
    for (std::uint32_t delay : expected) {
        d.on(EventType::kResolved);
        d.on(EventType::kTcpConnected);
        d.on(EventType::kUpgraded);
        d.advance(5000);  // dropped after 5 s, before the 10 s healthy mark
        d.fail(failure(FailureKind::kConnectionLost));
        UNSIGNED_LONGS_EQUAL(delay, d.machine.retry_delay_ms());
        d.fire();
    }
}

TEST(ReconnectMachine, ADeadLinkIsDetectedAtIntervalPlusTimeout) {
    Driver d(exact_config());
    d.to_online();
    const TimeMs last_frame = d.now;
    d.fire();  // healthy
    d.fire();  // ping at +30 s
    const Actions actions = d.fire();
    UNSIGNED_LONGS_EQUAL(last_frame + 40000, d.now);
    CHECK_EQUAL(LinkState::kWaitingToRetry, d.machine.state());
    CHECK_TRUE(has(actions, ActionType::kCloseTransport));
    CHECK_FALSE(has(actions, ActionType::kSendClose));
    STRCMP_EQUAL("dead_link", d.machine.last_failure_reason());
}

TEST(ReconnectMachine, AHealthyLinkThatDropsReconnectsWithinTheFirstJitteredDelay) {
    ReconnectConfig config = exact_config();
    config.backoff.jitter = tether::JitterMode::kFull;
    Driver d(config);
    d.to_online();
    d.fire();  // healthy: the attempt counter is back to 0
    UNSIGNED_LONGS_EQUAL(0, d.machine.attempts());
    d.random = 0x80000000u;  // the middle of [0, 1000]
    d.fail(failure(FailureKind::kConnectionLost));
    CHECK_EQUAL(LinkState::kWaitingToRetry, d.machine.state());
    UNSIGNED_LONGS_EQUAL(500, d.machine.retry_delay_ms());
}

TEST(ReconnectMachine, ADeadLinkOnTheLastAttemptGivesUp) {
    ReconnectConfig config = exact_config();
    config.backoff.max_attempts = 1;
    config.heartbeat.interval_ms = 2000;
    config.heartbeat.pong_timeout_ms = 1000;
    Driver d(config);
    d.to_online();
    d.fire();
    d.fire();
    CHECK_EQUAL(LinkState::kGivenUp, d.machine.state());
}

TEST(ReconnectMachine, APeerCloseIsEchoedThenRetried) {
    Driver d(exact_config());
    d.to_online();
    const Actions actions = d.fail(failure(FailureKind::kPeerClosed, 1001));
    CHECK_EQUAL(1001, actions.find(ActionType::kSendClose)->close_code);
    CHECK_TRUE(has(actions, ActionType::kCloseTransport));
    CHECK_EQUAL(LinkState::kWaitingToRetry, d.machine.state());
    UNSIGNED_LONGS_EQUAL(1000, d.machine.retry_delay_ms());
}

TEST(ReconnectMachine, AProtocolErrorSendsItsCloseCode) {
    Driver d(exact_config());
    d.to_online();
    const Actions actions = d.fail(failure(FailureKind::kProtocolError, 1007));
    CHECK_EQUAL(1007, actions.find(ActionType::kSendClose)->close_code);
}

TEST(ReconnectMachine, SupersededSessionGivesUpInsteadOfFighting) {
    Driver d(exact_config());
    d.to_online();
    const Actions actions = d.fail(failure(FailureKind::kPeerClosed, 4009));
    CHECK_EQUAL(LinkState::kGivenUp, d.machine.state());
    CHECK_EQUAL(4009, actions.find(ActionType::kSendClose)->close_code);
    STRCMP_EQUAL("close_superseded", d.machine.give_up_reason());
    CHECK_FALSE(d.machine.has_deadline());
}

TEST(ReconnectMachine, AuthFailureRefreshesOnceThenBacksOff) {
    Driver d(exact_config());
    d.step(Event::start());
    d.on(EventType::kResolved);
    d.on(EventType::kTcpConnected);
    Actions actions = d.fail(failure(FailureKind::kHttpStatus, 401));
    CHECK_TRUE(has(actions, ActionType::kRefreshCredentials));
    UNSIGNED_LONGS_EQUAL(0, d.machine.retry_delay_ms());
    d.fire();
    d.on(EventType::kResolved);
    d.on(EventType::kTcpConnected);
    actions = d.fail(failure(FailureKind::kHttpStatus, 401));
    CHECK_FALSE(has(actions, ActionType::kRefreshCredentials));
    UNSIGNED_LONGS_EQUAL(2000, d.machine.retry_delay_ms());
}

namespace {

// A failure streak of 16 attempts: each opens the WebSocket (or, with
// `at_upgrade`, reaches the upgrade) and is failed with `what` at once.
// Returns the retry delays in order and counts the credential refreshes.
struct Streak {
    std::uint32_t delays[16] = {};
    int refreshes = 0;
};

Streak fail_every_attempt(const Failure& what, bool at_upgrade, bool resume = false) {
    ReconnectConfig config = exact_config();
    config.resume_protocol = resume;
    Driver d(config);
    Streak streak;
    d.step(Event::start());
    for (std::uint32_t& delay : streak.delays) {
        d.on(EventType::kResolved);
        d.on(EventType::kTcpConnected);
        if (!at_upgrade) {
            d.on(EventType::kUpgraded);
            if (resume) {
                d.on(EventType::kSessionResumed);
            }
            CHECK_EQUAL(LinkState::kOnline, d.machine.state());
        }
        streak.refreshes += has(d.fail(what), ActionType::kRefreshCredentials) ? 1 : 0;
        CHECK_EQUAL(LinkState::kWaitingToRetry, d.machine.state());
        delay = d.machine.retry_delay_ms();
        d.fire();
    }
    return streak;
}

}  // namespace

TEST(ReconnectMachine, AnAuthCloseRightAfterOpenBacksOffLikeA401) {
    // One immediate refresh, then 2 s, 4 s ... up to the 32 s cap: the same
    // ladder as a 401 on the upgrade. Opening the link must not end the streak.
    const std::uint32_t expected[16] = {0,     2000,  4000,  8000,  16000, 32000, 32000, 32000,
                                        32000, 32000, 32000, 32000, 32000, 32000, 32000, 32000};
    const Streak http = fail_every_attempt(failure(FailureKind::kHttpStatus, 401), true);
    const Streak plain = fail_every_attempt(failure(FailureKind::kPeerClosed, 4001), false);
    const Streak resumed = fail_every_attempt(failure(FailureKind::kPeerClosed, 4001), false, true);
    for (std::size_t i = 0; i < 16; ++i) {
        UNSIGNED_LONGS_EQUAL(expected[i], http.delays[i]);
        UNSIGNED_LONGS_EQUAL(expected[i], plain.delays[i]);
        UNSIGNED_LONGS_EQUAL(expected[i], resumed.delays[i]);
    }
    CHECK_EQUAL(1, http.refreshes);
    CHECK_EQUAL(1, plain.refreshes);
    CHECK_EQUAL(1, resumed.refreshes);
}

TEST(ReconnectMachine, AForbiddenCloseRefreshesOnceThenWaitsTheCap) {
    // 4003: the same hello is refused again, so after one fresh token the
    // device waits the cap (32 s) every time instead of climbing from 2 s.
    const Streak streak = fail_every_attempt(failure(FailureKind::kPeerClosed, 4003), false, true);
    UNSIGNED_LONGS_EQUAL(0, streak.delays[0]);
    for (std::size_t i = 1; i < 16; ++i) {
        UNSIGNED_LONGS_EQUAL(32000, streak.delays[i]);
    }
    CHECK_EQUAL(1, streak.refreshes);
}

TEST(ReconnectMachine, EveryCloseRightAfterOpenClimbsTheBackoff) {
    // Each close-code row of the policy, met by every attempt the moment it
    // opens: the delay never falls back and reaches the cap.
    std::uint32_t rows = 0;
    const tether::FailurePolicyRow* table = tether::failure_policy_table(&rows);
    int checked = 0;
    for (std::uint32_t r = 0; r < rows; ++r) {
        const tether::FailurePolicyRow& row = table[r];
        if (row.kind != FailureKind::kPeerClosed ||
            row.decision.action == tether::RecoveryAction::kGiveUp) {
            continue;
        }
        // The catch-all row: a code no earlier row takes (1008, policy violation).
        const std::uint16_t code = row.code_max == 0xFFFF ? 1008 : row.code_min;
        const Streak streak = fail_every_attempt(failure(FailureKind::kPeerClosed, code), false);
        for (std::size_t i = 1; i < 16; ++i) {
            CHECK_TEXT(streak.delays[i] >= streak.delays[i - 1], row.decision.reason);
        }
        CHECK_TEXT(streak.delays[1] > 0, row.decision.reason);
        UNSIGNED_LONGS_EQUAL(32000, streak.delays[15]);
        ++checked;
    }
    CHECK(checked >= 9);
}

TEST(ReconnectMachine, AnAuthCloseAfterAHealthyLinkRefreshesAtOnceAgain) {
    Driver d(exact_config());
    d.step(Event::start());
    d.on(EventType::kResolved);
    d.on(EventType::kTcpConnected);
    d.fail(failure(FailureKind::kHttpStatus, 403));
    d.fire();
    d.on(EventType::kResolved);
    d.on(EventType::kTcpConnected);
    d.on(EventType::kUpgraded);
    d.fire();  // healthy: the streak is over
    UNSIGNED_LONGS_EQUAL(0, d.machine.attempts());
    const Actions actions = d.fail(failure(FailureKind::kPeerClosed, 4001));
    CHECK_TRUE(has(actions, ActionType::kRefreshCredentials));
    UNSIGNED_LONGS_EQUAL(0, d.machine.retry_delay_ms());
}

TEST(ReconnectMachine, AnAuthCloseBeforeTheLinkIsHealthyBacksOff) {
    Driver d(exact_config());
    d.step(Event::start());
    d.on(EventType::kResolved);
    d.on(EventType::kTcpConnected);
    d.fail(failure(FailureKind::kHttpStatus, 403));
    d.fire();
    d.on(EventType::kResolved);
    d.on(EventType::kTcpConnected);
    d.on(EventType::kUpgraded);
    d.advance(9999);  // one millisecond short of healthy
    const Actions actions = d.fail(failure(FailureKind::kPeerClosed, 4001));
    CHECK_FALSE(has(actions, ActionType::kRefreshCredentials));
    UNSIGNED_LONGS_EQUAL(2000, d.machine.retry_delay_ms());
}

TEST(ReconnectMachine, OverloadWaitsAtLeastRetryAfter) {
    Driver d(exact_config());
    d.step(Event::start());
    d.on(EventType::kResolved);
    d.on(EventType::kTcpConnected);
    d.fail(overloaded(503, 60000));
    CHECK_EQUAL(LinkState::kWaitingToRetry, d.machine.state());
    UNSIGNED_LONGS_EQUAL(60000, d.machine.retry_delay_ms());
    CHECK_EQUAL(tether::BreakerState::kOpen, d.machine.pool().state(0));
    const TimeMs failed_at = d.now;
    d.fire();
    CHECK(d.now - failed_at >= 60000);
    CHECK_EQUAL(LinkState::kResolving, d.machine.state());
}

TEST(ReconnectMachine, OverloadCloseCodesAlsoOpenTheBreaker) {
    Driver d(exact_config());
    d.to_online();
    d.fail(failure(FailureKind::kPeerClosed, 1013));
    CHECK_EQUAL(tether::BreakerState::kOpen, d.machine.pool().state(0));
    UNSIGNED_LONGS_EQUAL(1000, d.machine.retry_delay_ms());
    // With no other endpoint, the backoff sets the pace, not the cool-down.
    d.fire();
    CHECK_EQUAL(LinkState::kResolving, d.machine.state());
    CHECK_EQUAL(tether::BreakerState::kHalfOpen, d.machine.pool().state(0));
}

TEST(ReconnectMachine, ARetryAfterHoldsTheEndpointEvenWhenTheBackoffIsShorter) {
    ReconnectConfig config = exact_config();
    config.endpoint_count = 2;
    Driver d(config);
    d.step(Event::start());
    d.fail(overloaded(503, 20000));  // primary held 20 s
    d.fire();
    CHECK_EQUAL(1, d.machine.endpoint());
    d.fail(overloaded(429, 40000));  // secondary held 40 s
    UNSIGNED_LONGS_EQUAL(40000, d.machine.retry_delay_ms());
    d.fire();
    CHECK_EQUAL(LinkState::kResolving, d.machine.state());
    CHECK_EQUAL(0, d.machine.endpoint());
}

TEST(ReconnectMachine, AServerErrorWithRetryAfterHoldsWithoutOpeningTheBreaker) {
    Driver d(exact_config());
    d.step(Event::start());
    d.fail(overloaded(500, 9000));
    CHECK_EQUAL(tether::BreakerState::kClosed, d.machine.pool().state(0));
    UNSIGNED_LONGS_EQUAL(9000, d.machine.retry_delay_ms());
    CHECK_TRUE(d.machine.pool().held(0, d.now + 8999));
    CHECK_FALSE(d.machine.pool().held(0, d.now + 9000));
}

TEST(ReconnectMachine, AnInvalidCertificateIsRetriedOnlyAtTheSlowestRate) {
    ReconnectConfig config = exact_config();
    config.tls_endpoints = 1;
    Driver d(config);
    d.step(Event::start());
    d.on(EventType::kResolved);
    d.on(EventType::kTcpConnected);
    d.fail(failure(FailureKind::kTlsCertificateInvalid));
    UNSIGNED_LONGS_EQUAL(32000, d.machine.retry_delay_ms());
}

TEST(ReconnectMachine, OverloadFailsOverToTheNextEndpoint) {
    ReconnectConfig config = exact_config();
    config.endpoint_count = 2;
    Driver d(config);
    d.step(Event::start());
    d.on(EventType::kResolved);
    d.on(EventType::kTcpConnected);
    d.fail(overloaded(503, 0));
    d.fire();
    CHECK_EQUAL(LinkState::kResolving, d.machine.state());
    CHECK_EQUAL(1, d.machine.endpoint());
    CHECK_EQUAL(1, d.last.find(ActionType::kResolve)->endpoint);
}

TEST(ReconnectMachine, RepeatedFailuresFailOverAfterTheBreakerThreshold) {
    ReconnectConfig config = exact_config();
    config.endpoint_count = 3;
    Driver d(config);
    d.step(Event::start());
    for (int i = 0; i < 3; ++i) {
        CHECK_EQUAL(0, d.machine.endpoint());
        d.fail(failure(FailureKind::kTcpRefused));
        d.fire();
    }
    CHECK_EQUAL(1, d.machine.endpoint());
}

TEST(ReconnectMachine, AFailureThatSaysNothingOfTheEndpointHandsBackItsProbe) {
    Driver d(exact_config());
    d.step(Event::start());
    for (int i = 0; i < 3; ++i) {
        d.fail(failure(FailureKind::kTcpRefused));
        d.fire();
    }
    CHECK_EQUAL(tether::BreakerState::kHalfOpen, d.machine.pool().state(0));
    d.fail(failure(FailureKind::kNetworkUnreachable));
    for (int i = 0; i < 3; ++i) {
        d.fire();
        CHECK_EQUAL(LinkState::kResolving, d.machine.state());
        d.fail(failure(FailureKind::kNetworkUnreachable));
    }
}

TEST(ReconnectMachine, ReturnsToThePrimaryOnceItRecovers) {
    ReconnectConfig config = exact_config();
    config.endpoint_count = 2;
    config.pool.cooldown_ms = 30000;
    config.pool.return_to_primary_after_ms = 60000;
    config.heartbeat.interval_ms = 0;
    Driver d(config);
    d.step(Event::start());
    d.on(EventType::kResolved);
    d.on(EventType::kTcpConnected);
    d.fail(overloaded(503, 0));
    d.fire();
    d.on(EventType::kResolved);
    d.on(EventType::kTcpConnected);
    d.on(EventType::kUpgraded);
    CHECK_EQUAL(1, d.machine.endpoint());
    const TimeMs online_at = d.now;
    d.fire();  // healthy
    const Actions actions = d.fire();
    UNSIGNED_LONGS_EQUAL(online_at + 60000, d.now);
    CHECK_EQUAL(LinkState::kClosing, d.machine.state());
    CHECK_EQUAL(1000, actions.find(ActionType::kSendClose)->close_code);
    const Actions reconnect = d.on(EventType::kTransportClosed);
    CHECK_TRUE(has(reconnect, ActionType::kCloseTransport));
    CHECK_EQUAL(LinkState::kResolving, d.machine.state());
    CHECK_EQUAL(0, reconnect.find(ActionType::kResolve)->endpoint);
}

TEST(ReconnectMachine, StaysOnTheSecondaryWhileThePrimaryIsStillCooling) {
    ReconnectConfig config = exact_config();
    config.endpoint_count = 2;
    config.pool.cooldown_ms = 100000;
    config.pool.max_cooldown_ms = 100000;
    config.pool.return_to_primary_after_ms = 60000;
    config.heartbeat.interval_ms = 0;
    Driver d(config);
    d.step(Event::start());
    d.fail(overloaded(503, 0));
    d.fire();
    d.on(EventType::kResolved);
    d.on(EventType::kTcpConnected);
    d.on(EventType::kUpgraded);
    const TimeMs online_at = d.now;
    d.fire();  // healthy
    d.fire();  // +60 s: primary still open
    CHECK_EQUAL(LinkState::kOnline, d.machine.state());
    UNSIGNED_LONGS_EQUAL(online_at + 120000, d.machine.next_deadline());
}

TEST(ReconnectMachine, StopWhileOnlineClosesWithTheGivenCode) {
    Driver d(exact_config());
    d.to_online();
    const Actions actions = d.step(Event::stop(1001));
    CHECK_EQUAL(LinkState::kClosing, d.machine.state());
    CHECK_EQUAL(1001, actions.find(ActionType::kSendClose)->close_code);
    UNSIGNED_LONGS_EQUAL(d.now + 5000, d.machine.next_deadline());
}

TEST(ReconnectMachine, ClosingEndsWhenTheTransportCloses) {
    Driver d(exact_config());
    d.to_online();
    d.step(Event::stop());
    const Actions actions = d.on(EventType::kTransportClosed);
    CHECK_EQUAL(LinkState::kIdle, d.machine.state());
    CHECK_TRUE(has(actions, ActionType::kCloseTransport));
    CHECK_FALSE(d.machine.has_deadline());
}

TEST(ReconnectMachine, ClosingEndsWhenThePeerAnswersOrTheLinkFails) {
    Driver d(exact_config());
    d.to_online();
    d.step(Event::stop());
    d.fail(failure(FailureKind::kPeerClosed, 1000));
    CHECK_EQUAL(LinkState::kIdle, d.machine.state());
}

TEST(ReconnectMachine, ClosingGivesUpWaitingAfterTheCloseTimeout) {
    Driver d(exact_config());
    d.to_online();
    d.step(Event::stop());
    const Actions actions = d.fire();
    CHECK_EQUAL(LinkState::kIdle, d.machine.state());
    CHECK_TRUE(has(actions, ActionType::kCloseTransport));
}

TEST(ReconnectMachine, StopWhileClosingToSwitchEndpointsStaysDown) {
    ReconnectConfig config = exact_config();
    config.endpoint_count = 2;
    config.pool.return_to_primary_after_ms = 60000;
    config.heartbeat.interval_ms = 0;
    Driver d(config);
    d.step(Event::start());
    d.fail(overloaded(503, 0));
    d.fire();
    d.on(EventType::kResolved);
    d.on(EventType::kTcpConnected);
    d.on(EventType::kUpgraded);
    d.fire();
    d.fire();
    CHECK_EQUAL(LinkState::kClosing, d.machine.state());
    d.step(Event::stop());
    d.fire();
    CHECK_EQUAL(LinkState::kIdle, d.machine.state());
}

TEST(ReconnectMachine, SwitchingEndpointsAlsoFinishesOnFailureOrTimeout) {
    ReconnectConfig config = exact_config();
    config.endpoint_count = 2;
    config.pool.return_to_primary_after_ms = 60000;
    config.heartbeat.interval_ms = 0;
    for (int variant = 0; variant < 2; ++variant) {
        Driver d(config);
        d.step(Event::start());
        d.fail(overloaded(503, 0));
        d.fire();
        d.on(EventType::kResolved);
        d.on(EventType::kTcpConnected);
        d.on(EventType::kUpgraded);
        d.fire();
        d.fire();
        CHECK_EQUAL(LinkState::kClosing, d.machine.state());
        if (variant == 0) {
            d.fail(failure(FailureKind::kConnectionLost));
        } else {
            d.fire();
        }
        CHECK_EQUAL(LinkState::kResolving, d.machine.state());
        CHECK_EQUAL(0, d.machine.endpoint());
    }
}

TEST(ReconnectMachine, StopWhileConnectingReleasesEverything) {
    const EventType progress[] = {EventType::kResolved, EventType::kTcpConnected};
    for (int phase = 0; phase <= 2; ++phase) {
        Driver d(exact_config());
        d.step(Event::start());
        for (int i = 0; i < phase; ++i) {
            d.on(progress[i]);
        }
        const Actions actions = d.step(Event::stop());
        CHECK_EQUAL(LinkState::kIdle, d.machine.state());
        CHECK_TRUE(has(actions, ActionType::kCloseTransport));
    }
}

TEST(ReconnectMachine, StopWhileWaitingOrGivenUpGoesIdle) {
    Driver d(exact_config());
    d.step(Event::start());
    d.fail(failure(FailureKind::kTcpRefused));
    const Actions waiting = d.step(Event::stop());
    CHECK_EQUAL(LinkState::kIdle, d.machine.state());
    CHECK_FALSE(has(waiting, ActionType::kCloseTransport));

    Driver g(exact_config());
    g.to_online();
    g.fail(failure(FailureKind::kPeerClosed, 4009));
    g.step(Event::stop());
    CHECK_EQUAL(LinkState::kIdle, g.machine.state());
}

TEST(ReconnectMachine, StartAfterGivingUpBySupersessionTriesAgain) {
    Driver d(exact_config());
    d.to_online();
    d.fail(failure(FailureKind::kPeerClosed, 4009));
    d.step(Event::start());
    CHECK_EQUAL(LinkState::kWaitingToRetry, d.machine.state());
    STRCMP_EQUAL("", d.machine.give_up_reason());
}

TEST(ReconnectMachine, DeadlinesWorkAcrossClockWrapAround) {
    Driver d(exact_config(), 0xFFFFF000u);
    d.step(Event::start());
    d.fail(failure(FailureKind::kTcpRefused));
    d.fire();
    d.fail(failure(FailureKind::kTcpRefused));
    UNSIGNED_LONGS_EQUAL(2000, d.machine.retry_delay_ms());
    d.now = d.machine.next_deadline() - 1;
    CHECK_EQUAL(0, d.step(Event::timer()).count);
    d.fire();
    CHECK_EQUAL(LinkState::kResolving, d.machine.state());
}

TEST(ReconnectMachine, FullJitterDrawsFromTheRandomArgument) {
    ReconnectConfig config = exact_config();
    config.backoff.jitter = tether::JitterMode::kFull;
    Driver d(config);
    d.step(Event::start());
    d.random = 0xFFFFFFFFu;
    d.fail(failure(FailureKind::kTcpRefused));
    UNSIGNED_LONGS_EQUAL(1000, d.machine.retry_delay_ms());
    d.fire();
    d.random = 0;
    d.fail(failure(FailureKind::kTcpRefused));
    UNSIGNED_LONGS_EQUAL(0, d.machine.retry_delay_ms());
}

TEST(ReconnectMachine, ConnectNowSkipsTheRemainingBackoffWait) {
    Driver d(exact_config());
    d.machine.restore_attempts(5);  // a 32 s wait ahead
    d.step(Event::start());
    CHECK_EQUAL(LinkState::kWaitingToRetry, d.machine.state());
    d.advance(100);
    const Actions actions = d.step(Event::connect_now());
    CHECK_EQUAL(LinkState::kResolving, d.machine.state());
    CHECK_TRUE(has(actions, ActionType::kResolve));
    CHECK_TRUE(has(actions, ActionType::kPersist));
    CHECK_TRUE(has(actions, ActionType::kNotifyState));
    UNSIGNED_LONGS_EQUAL(6,
                         d.machine.attempts());  // the streak goes on: a crash loop still backs off
}

TEST(ReconnectMachine, ConnectNowLeavesGivenUpWithAFreshCounter) {
    ReconnectConfig config = exact_config();
    config.backoff.max_attempts = 1;
    Driver d(config);
    d.step(Event::start());
    d.fail(failure(FailureKind::kTcpRefused));
    CHECK_EQUAL(LinkState::kGivenUp, d.machine.state());
    d.step(Event::connect_now());
    CHECK_EQUAL(LinkState::kResolving, d.machine.state());
    UNSIGNED_LONGS_EQUAL(1, d.machine.attempts());
    STRCMP_EQUAL("", d.machine.give_up_reason());
}

TEST(ReconnectMachine, ConnectNowStillHonoursARetryAfterHold) {
    Driver d(exact_config());
    d.step(Event::start());
    d.fail(overloaded(503, 30000));
    d.advance(1000);
    d.step(Event::connect_now());
    CHECK_EQUAL(LinkState::kWaitingToRetry, d.machine.state());
    UNSIGNED_LONGS_EQUAL(29000, d.machine.retry_delay_ms());
}

TEST(ReconnectMachine, ConnectNowDoesNothingWhileConnectingOnlineOrStopped) {
    Driver d(exact_config());
    UNSIGNED_LONGS_EQUAL(0, d.step(Event::connect_now()).count);
    CHECK_EQUAL(LinkState::kIdle, d.machine.state());
    d.step(Event::start());
    UNSIGNED_LONGS_EQUAL(0, d.step(Event::connect_now()).count);
    CHECK_EQUAL(LinkState::kResolving, d.machine.state());
    d.on(EventType::kResolved);
    d.on(EventType::kTcpConnected);
    d.on(EventType::kUpgraded);
    CHECK_EQUAL(LinkState::kOnline, d.machine.state());
    UNSIGNED_LONGS_EQUAL(0, d.step(Event::connect_now()).count);
    CHECK_EQUAL(LinkState::kOnline, d.machine.state());
}

// SPDX-License-Identifier: MIT
// The transition table three ways: as code (transition_table()), as docs
// (docs/ARCHITECTURE.md) and as behaviour (a long random walk). The docs must
// show the code table verbatim; the machine must never take a transition the
// table does not declare; and the walk must take every declared one.
#include <cstdint>
#include <set>
#include <string>
#include <tuple>
#include <vector>

// After the standard headers: CppUTest's leak-detecting operator new macro
// must not reach their internals.
#include <CppUTest/TestHarness.h>

#include "support/alloc_counter.h"
#include "support/doc_section.h"
#include "tether/reconnect.h"

using tether::EventType;
using tether::LinkState;

namespace {

std::string render_states(std::uint16_t states) {
    std::string text;
    for (std::size_t i = 0; i < tether::kLinkStateCount; ++i) {
        if (((static_cast<unsigned>(states) >> i) & 1u) != 0u) {
            text += text.empty() ? "" : ", ";
            text += tether::to_string(static_cast<LinkState>(i));
        }
    }
    return text;
}

std::vector<std::string> rendered_table() {
    std::vector<std::string> lines = {"| From | Event | Condition | To | Actions |",
                                      "|---|---|---|---|---|"};
    std::size_t count = 0;
    const tether::TransitionRow* rows = tether::transition_table(&count);
    for (std::size_t i = 0; i < count; ++i) {
        lines.push_back("| " + render_states(rows[i].from) + " | " +
                        tether::to_string(rows[i].event) + " | " + rows[i].guard + " | " +
                        tether::to_string(rows[i].to) + " | " + rows[i].actions + " |");
    }
    return lines;
}

using Triple = std::tuple<int, int, int>;

// A small deterministic generator, so the walk is the same on every run.
struct Lcg {
    std::uint32_t state;
    std::uint32_t next() {
        state = state * 1664525u + 1013904223u;
        return state;
    }
    std::uint32_t below(std::uint32_t bound) {
        return static_cast<std::uint32_t>((static_cast<std::uint64_t>(next()) * bound) >> 32);
    }
};

tether::Failure random_failure(Lcg& rng) {
    static const tether::Failure kFailures[] = {
        {tether::FailureKind::kTcpRefused},
        {tether::FailureKind::kConnectionLost},
        {tether::FailureKind::kDnsFailure},
        {tether::FailureKind::kTlsCertificateInvalid},
        {tether::FailureKind::kHttpStatus, 401},
        {tether::FailureKind::kHttpStatus, 503, true, 45000},
        {tether::FailureKind::kPeerClosed, 1001},
        {tether::FailureKind::kPeerClosed, 1013},
        {tether::FailureKind::kPeerClosed, 4009},
        {tether::FailureKind::kProtocolError, 1002},
        {tether::FailureKind::kProxyStatus, 407},
        {tether::FailureKind::kProxyStatus, 502},
    };
    return kFailures[rng.below(sizeof kFailures / sizeof kFailures[0])];
}

// The event a healthy peer and network would deliver next in `state`.
EventType progress_for(LinkState state) {
    switch (state) {
        case LinkState::kResolving:
            return EventType::kResolved;
        case LinkState::kTcpConnecting:
            return EventType::kTcpConnected;
        case LinkState::kProxyConnect:
            return EventType::kTunnelEstablished;
        case LinkState::kTlsHandshake:
            return EventType::kTlsEstablished;
        case LinkState::kWsHandshake:
            return EventType::kUpgraded;
        case LinkState::kSessionResume:
            return EventType::kSessionResumed;
        case LinkState::kOnline:
            return EventType::kFrameReceived;
        case LinkState::kClosing:
            return EventType::kTransportClosed;
        default:
            return EventType::kTimer;
    }
}

// Runs the machine the way a loop would, with events arriving in any order,
// and records every transition it takes.
void random_walk(const tether::ReconnectConfig& config, std::uint32_t seed, int steps,
                 std::set<Triple>* seen) {
    tether::ReconnectMachine machine(config);
    Lcg rng{seed};
    tether::TimeMs now = 0xFFFF0000u;  // wraps during the walk
    for (int i = 0; i < steps; ++i) {
        tether::Event event = tether::Event::timer();
        const std::uint32_t pick = rng.below(100);
        if (pick < 30 && machine.has_deadline()) {
            now += tether::time_until(now, machine.next_deadline());
        } else if (pick < 55) {
            event = tether::Event::of(progress_for(machine.state()));
        } else if (pick < 60) {
            event = tether::Event::start();
        } else if (pick < 63) {
            event = tether::Event::stop(1001);
        } else if (pick < 65) {
            machine.restore_attempts(0);
            continue;
        } else if (pick < 66) {
            // The operator's reconnect: rare, as in life (drawn among the
            // other events, it would cut nearly every backoff wait short).
            event = tether::Event::connect_now();
        } else if (pick < 80) {
            // Drawn in two statements: the order in which function arguments
            // are evaluated is unspecified (GCC differs between x86-64 and
            // ARM), and the walk must be the same on every target.
            const bool more_addresses = rng.below(3) == 0;
            const tether::Failure failure = random_failure(rng);
            event = tether::Event::failed(failure, more_addresses);
        } else {
            // Any event but connect_now (the last), which has its own band.
            event =
                tether::Event::of(static_cast<EventType>(rng.below(tether::kEventTypeCount - 1)));
        }
        now += rng.below(3000);
        const LinkState before = machine.state();
        const bool had_deadline = machine.has_deadline();
        const tether::TimeMs deadline_before = machine.next_deadline();
        const tether::Actions actions = machine.step(event, now, rng.next());
        const LinkState after = machine.state();
        CHECK(actions.count < tether::Actions::kCapacity);
        // A step took a transition when it changed the state, asked for an
        // action or moved a deadline (a frame postponing the next ping).
        const bool moved_deadline = had_deadline != machine.has_deadline() ||
                                    (had_deadline && deadline_before != machine.next_deadline());
        if (after != before || actions.count != 0 || moved_deadline) {
            if (!tether::transition_declared(before, event.type, after)) {
                FAIL((std::string("undeclared: ") + tether::to_string(before) + " --" +
                      tether::to_string(event.type) + "--> " + tether::to_string(after))
                         .c_str());
            }
            seen->insert(Triple{static_cast<int>(before), static_cast<int>(event.type),
                                static_cast<int>(after)});
        }
        if (machine.has_deadline()) {
            CHECK(tether::time_until(now, machine.next_deadline()) <= 24u * 3600u * 1000u);
        }
    }
}

std::vector<tether::ReconnectConfig> walk_configs() {
    std::vector<tether::ReconnectConfig> configs;
    for (int variant = 0; variant < 8; ++variant) {
        tether::ReconnectConfig config;
        config.endpoint_count = static_cast<std::uint8_t>(1 + (variant % 3));
        config.tls_endpoints = (variant & 1) ? 0x01 : 0x02;
        config.proxied_endpoints = (variant & 4) ? 0x01 : 0x00;
        config.resume_protocol = (variant & 2) != 0;
        config.backoff.max_attempts = (variant & 4) ? 4 : 0;
        config.heartbeat.interval_ms = 2000;
        config.heartbeat.pong_timeout_ms = 1000;
        config.backoff.healthy_after_ms = 5000;
        config.pool.return_to_primary_after_ms = 4000;
        config.pool.cooldown_ms = 5000;
        configs.push_back(config);
    }
    return configs;
}

}  // namespace

TEST_GROUP(ReconnectTable){};

TEST(ReconnectTable, DocsShowTheCodeTableVerbatim) {
    const std::vector<std::string> docs =
        tether::test::doc_section("docs/ARCHITECTURE.md", "state-table");
    const std::vector<std::string> code = rendered_table();
    if (docs != code) {
        FAIL(("docs/ARCHITECTURE.md state-table differs from the code; it should read:\n" +
              tether::test::join_lines(code))
                 .c_str());
    }
}

TEST(ReconnectTable, EveryStateAndEventHasAName) {
    std::set<std::string> names;
    for (std::size_t i = 0; i < tether::kLinkStateCount; ++i) {
        names.insert(tether::to_string(static_cast<LinkState>(i)));
    }
    for (std::size_t i = 0; i < tether::kEventTypeCount; ++i) {
        names.insert(tether::to_string(static_cast<EventType>(i)));
    }
    for (std::size_t i = 0; i < tether::kActionTypeCount; ++i) {
        names.insert(tether::to_string(static_cast<tether::ActionType>(i)));
    }
    CHECK_EQUAL(tether::kLinkStateCount + tether::kEventTypeCount + tether::kActionTypeCount,
                names.size());
    CHECK(names.count("unknown") == 0);
}

TEST(ReconnectTable, ARandomWalkTakesEveryDeclaredTransitionAndNoOther) {
    std::set<Triple> seen;
    std::uint32_t seed = 1;
    for (const tether::ReconnectConfig& config : walk_configs()) {
        random_walk(config, seed++, 400000, &seen);
    }
    std::size_t count = 0;
    const tether::TransitionRow* rows = tether::transition_table(&count);
    for (std::size_t i = 0; i < count; ++i) {
        bool taken = false;
        for (std::size_t s = 0; s < tether::kLinkStateCount; ++s) {
            if ((rows[i].from >> s) & 1u) {
                const Triple triple{static_cast<int>(s), static_cast<int>(rows[i].event),
                                    static_cast<int>(rows[i].to)};
                if (seen.count(triple) == 0) {
                    FAIL((std::string("never taken: ") +
                          tether::to_string(static_cast<LinkState>(s)) + " --" +
                          tether::to_string(rows[i].event) + "--> " + tether::to_string(rows[i].to))
                             .c_str());
                }
                taken = true;
            }
        }
        CHECK(taken);
    }
}

TEST(ReconnectTable, TheMachineNeverTouchesTheHeap) {
    const tether::ReconnectConfig config = walk_configs()[3];
    // The walk's own bookkeeping (the set) allocates; measure the machine alone.
    tether::ReconnectMachine machine(config);
    Lcg rng{99};
    tether::TimeMs now = 0;
    tether::test::AllocationCounter counter;
    for (int i = 0; i < 100000; ++i) {
        tether::Event event = tether::Event::timer();
        if (machine.has_deadline() && rng.below(2) == 0) {
            now += tether::time_until(now, machine.next_deadline());
        } else if (rng.below(4) == 0) {
            event = tether::Event::failed(random_failure(rng));
        } else {
            event = tether::Event::of(static_cast<EventType>(rng.below(tether::kEventTypeCount)));
        }
        (void)machine.step(event, now, rng.next());
    }
    UNSIGNED_LONGS_EQUAL(0, counter.count());
}

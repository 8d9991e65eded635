// SPDX-License-Identifier: MIT
// tetherd's link history: reconnects, attempts by outcome, time offline.
#include "link_report.h"

#include <CppUTest/TestHarness.h>

using tether::ClientEvent;
using tether::LinkState;

namespace {

ClientEvent event(LinkState state, const char* reason = "") {
    ClientEvent e{};
    e.state = state;
    e.reason = reason;
    e.detail = "";
    return e;
}

}  // namespace

TEST_GROUP(TetherdLinkHistory){};

TEST(TetherdLinkHistory, CountsReconnectsOutcomesAndTimeOffline) {
    tether::daemon::LinkHistory history(1000);
    history.observe(event(LinkState::kResolving), 1000, 5);
    history.observe(event(LinkState::kOnline), 1300, 6);  // 300 ms to come up
    UNSIGNED_LONGS_EQUAL(0, history.reconnects());
    UNSIGNED_LONGS_EQUAL(300, history.offline_ms_total());
    history.observe(event(LinkState::kWaitingToRetry, "connection_lost"), 2000, 7);
    UNSIGNED_LONGS_EQUAL(550, history.offline_ms_until(2250));  // the current stretch counts
    history.observe(event(LinkState::kOnline), 2500, 8);
    UNSIGNED_LONGS_EQUAL(1, history.reconnects());
    UNSIGNED_LONGS_EQUAL(800, history.offline_ms_total());
    UNSIGNED_LONGS_EQUAL(800, history.offline_ms_until(9000));  // online: no more offline time
    UNSIGNED_LONGS_EQUAL(2, history.attempts_by_outcome().at("success"));
    UNSIGNED_LONGS_EQUAL(1, history.attempts_by_outcome().at("connection_lost"));
    CHECK(history.state() == LinkState::kOnline);
    UNSIGNED_LONGS_EQUAL(8, history.since_wall_ms());
}

TEST(TetherdLinkHistory, TheLastAckAgeCountsFromTheStartUntilTheFirstAck) {
    tether::daemon::LinkHistory history(0xFFFFF000u);  // the monotonic clock wraps below
    history.observe_acked(0, 0xFFFFF800u);
    UNSIGNED_LONGS_EQUAL(0x800u, history.last_ack_age_ms(0xFFFFF800u));
    history.observe_acked(10, 0x100u);  // acks arrived
    UNSIGNED_LONGS_EQUAL(0u, history.last_ack_age_ms(0x100u));
    history.observe_acked(10, 0x500u);  // none since
    UNSIGNED_LONGS_EQUAL(0x400u, history.last_ack_age_ms(0x500u));
    history.observe_acked(11, 0x600u);
    UNSIGNED_LONGS_EQUAL(0x50u, history.last_ack_age_ms(0x650u));
    UNSIGNED_LONGS_EQUAL(0x1650u, history.uptime_ms(0x650u));
}

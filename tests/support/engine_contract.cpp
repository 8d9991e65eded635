// SPDX-License-Identifier: MIT
#include "support/engine_contract.h"

#include <cstring>
#include <string>

#include "tether/net/json_document.h"

// CppUTest last: its operator-new macro breaks standard headers.
#include <CppUTest/TestHarness.h>

namespace tether::test {

using server::GapResult;
using server::HelloDecision;
using server::HelloRequest;
using server::HelloResult;
using server::SessionStats;
using server::UplinkMeta;
using server::UplinkResult;

void RecordedEvents::on_hello(std::uint64_t ticket, Status status, const HelloResult& result) {
    hellos.push_back(HelloAnswer{ticket, status, result});
}
void RecordedEvents::on_acknowledgeable(std::string_view session, std::uint64_t last_uplink) {
    std::uint64_t& highest = acked[std::string(session)];
    highest = last_uplink > highest ? last_uplink : highest;
}
void RecordedEvents::on_downlink_ready(std::string_view session) {
    ++downlink_ready[std::string(session)];
}
void RecordedEvents::on_superseded(std::string_view session, std::uint32_t version) {
    superseded[std::string(session)] = version;
}
void RecordedEvents::on_session_failed(std::string_view session, Status status) {
    failed[std::string(session)] = status;
}
void RecordedEvents::on_pushed(std::uint64_t ticket, Status status, std::uint64_t seq) {
    pushes.push_back(PushAnswer{ticket, status, seq});
}
void RecordedEvents::on_store_error(const char*, Status, const char*) {
    ++store_errors;
}
void RecordedEvents::on_desired_changed(std::string_view session, std::uint64_t version) {
    std::uint64_t& highest = desired_changed[std::string(session)];
    highest = version > highest ? version : highest;
}
void RecordedEvents::on_desired_since(std::uint64_t ticket, Status status,
                                      const std::vector<server::DesiredChange>& changes) {
    desired_since.push_back(DesiredSinceAnswer{ticket, status, changes});
}
void RecordedEvents::on_desired_set(std::uint64_t ticket, Status status, std::uint64_t version) {
    desired_set.push_back(DesiredSetAnswer{ticket, status, version});
}
void RecordedEvents::on_reported(std::uint64_t ticket, Status status,
                                 const server::ReportResult& result) {
    reports.push_back(ReportAnswer{ticket, status, result});
}
void RecordedEvents::on_state_read(std::uint64_t ticket, Status status,
                                   const server::StateDocuments& documents) {
    states.push_back(StateAnswer{ticket, status, documents});
}

namespace {

constexpr const char* kAlice = "0a6c5b8e-1111-4222-8333-444455556666";
constexpr const char* kBob = "0b7d6c9f-2222-4333-8444-555566667777";

std::uint64_t g_ticket = 1;

constexpr std::size_t net_max_document() {
    return net::v1::kMaxStateDocument;
}

HelloRequest request_for(const char* session, std::uint32_t version, const char* user = "alice") {
    HelloRequest request;
    request.session = session;
    request.version = version;
    request.device = "pi-17";
    request.last_downlink = 0;
    request.oldest_uplink = 1;
    request.next_uplink = 1;
    request.user = user;
    return request;
}

// Asks for a hello and waits for its answer.
RecordedEvents::HelloAnswer hello(EngineUnderTest& t, RecordedEvents& events,
                                  const HelloRequest& request) {
    const std::uint64_t ticket = g_ticket++;
    CHECK(Status::kOk == t.engine().hello(request, ticket));
    t.settle();
    for (const RecordedEvents::HelloAnswer& answer : events.hellos) {
        if (answer.ticket == ticket) {
            return answer;
        }
    }
    FAIL("no answer to the hello");
    return RecordedEvents::HelloAnswer{};
}

HelloResult accepted(EngineUnderTest& t, RecordedEvents& events, const HelloRequest& request) {
    const RecordedEvents::HelloAnswer answer = hello(t, events, request);
    CHECK(Status::kOk == answer.status);
    CHECK(HelloDecision::kAccepted == answer.result.decision);
    return answer.result;
}

void send(EngineUnderTest& t, const char* session, std::uint64_t seq, const char* text) {
    const UplinkResult result = t.engine().uplink_data(
        session, seq, reinterpret_cast<const std::uint8_t*>(text), std::strlen(text), UplinkMeta{});
    CHECK(result == UplinkResult::kStored || result == UplinkResult::kDuplicate ||
          result == UplinkResult::kStoredAfterUnreportedGap || result == UplinkResult::kQueued);
}

void flush(EngineUnderTest& t) {
    t.engine().flush(0);
    t.settle();
}

SessionStats stats_of(EngineUnderTest& t, const char* session) {
    SessionStats stats;
    CHECK(t.engine().session_stats(session, &stats));
    return stats;
}

std::uint64_t push(EngineUnderTest& t, RecordedEvents& events, const char* session,
                   const char* text, Status expected = Status::kOk) {
    const std::uint64_t ticket = g_ticket++;
    CHECK(Status::kOk == t.engine().push_downlink(session,
                                                  reinterpret_cast<const std::uint8_t*>(text),
                                                  std::strlen(text), ticket));
    t.settle();
    for (const RecordedEvents::PushAnswer& answer : events.pushes) {
        if (answer.ticket == ticket) {
            CHECK(expected == answer.status);
            return answer.seq;
        }
    }
    FAIL("no answer to the push");
    return 0;
}

void a_new_session_starts_empty(EngineUnderTest& t, RecordedEvents& events) {
    const HelloResult result = accepted(t, events, request_for(kAlice, 1));
    CHECK_FALSE(result.resumed);
    UNSIGNED_LONGS_EQUAL(0, result.last_uplink);
    CHECK_FALSE(result.has_downlink_gap);
    CHECK_FALSE(result.recorded_hole);
}

void uplink_is_acknowledged_after_a_flush(EngineUnderTest& t, RecordedEvents& events) {
    (void)accepted(t, events, request_for(kAlice, 1));
    send(t, kAlice, 1, "a");
    send(t, kAlice, 2, "b");
    send(t, kAlice, 3, "c");
    flush(t);
    UNSIGNED_LONGS_EQUAL(3, events.acked[kAlice]);
    const SessionStats stats = stats_of(t, kAlice);
    UNSIGNED_LONGS_EQUAL(3, stats.received);
    UNSIGNED_LONGS_EQUAL(4, stats.next_expected);
    UNSIGNED_LONGS_EQUAL(0, stats.gap_count);
}

void a_duplicate_is_dropped_and_counted(EngineUnderTest& t, RecordedEvents& events) {
    (void)accepted(t, events, request_for(kAlice, 1));
    send(t, kAlice, 1, "a");
    send(t, kAlice, 2, "b");
    send(t, kAlice, 2, "b");
    send(t, kAlice, 1, "a");
    flush(t);
    UNSIGNED_LONGS_EQUAL(2, events.acked[kAlice]);
    const SessionStats stats = stats_of(t, kAlice);
    UNSIGNED_LONGS_EQUAL(2, stats.received);
    UNSIGNED_LONGS_EQUAL(2, stats.duplicates);
}

void a_skipped_seq_is_an_unreported_gap(EngineUnderTest& t, RecordedEvents& events) {
    (void)accepted(t, events, request_for(kAlice, 1));
    send(t, kAlice, 1, "a");
    send(t, kAlice, 4, "d");
    flush(t);
    UNSIGNED_LONGS_EQUAL(4, events.acked[kAlice]);
    const SessionStats stats = stats_of(t, kAlice);
    UNSIGNED_LONGS_EQUAL(2, stats.received);
    UNSIGNED_LONGS_EQUAL(1, stats.gap_count);
    UNSIGNED_LONGS_EQUAL(2, stats.missing_seqs);
    UNSIGNED_LONGS_EQUAL(1, stats.unreported_gaps);
}

void a_gap_message_moves_next_expected(EngineUnderTest& t, RecordedEvents& events) {
    (void)accepted(t, events, request_for(kAlice, 1));
    send(t, kAlice, 1, "a");
    const GapResult gap = t.engine().uplink_gap(kAlice, 2, 9, "dropped");
    CHECK(gap == GapResult::kRecorded || gap == GapResult::kQueued);
    send(t, kAlice, 10, "j");
    flush(t);
    UNSIGNED_LONGS_EQUAL(10, events.acked[kAlice]);
    const SessionStats stats = stats_of(t, kAlice);
    UNSIGNED_LONGS_EQUAL(11, stats.next_expected);
    UNSIGNED_LONGS_EQUAL(8, stats.missing_seqs);
    UNSIGNED_LONGS_EQUAL(0, stats.unreported_gaps);
    // Entirely below next_expected: ignored.
    const GapResult old = t.engine().uplink_gap(kAlice, 3, 4, "dropped");
    CHECK(old == GapResult::kIgnored || old == GapResult::kQueued);
    flush(t);
    UNSIGNED_LONGS_EQUAL(1, stats_of(t, kAlice).gap_count);
}

void a_resumed_session_says_what_it_holds(EngineUnderTest& t, RecordedEvents& events) {
    (void)accepted(t, events, request_for(kAlice, 1));
    send(t, kAlice, 1, "a");
    send(t, kAlice, 2, "b");
    flush(t);
    t.engine().release(kAlice);
    HelloRequest again = request_for(kAlice, 2);
    again.oldest_uplink = 2;
    again.next_uplink = 3;
    const HelloResult result = accepted(t, events, again);
    CHECK(result.resumed);
    UNSIGNED_LONGS_EQUAL(2, result.last_uplink);
    CHECK_FALSE(result.recorded_hole);
}

void an_older_version_is_superseded(EngineUnderTest& t, RecordedEvents& events) {
    (void)accepted(t, events, request_for(kAlice, 5));
    const RecordedEvents::HelloAnswer older = hello(t, events, request_for(kAlice, 4));
    CHECK(Status::kOk == older.status);
    CHECK(HelloDecision::kSuperseded == older.result.decision);
    // The same version again (a reconnect of the same process) is accepted.
    (void)accepted(t, events, request_for(kAlice, 5));
    UNSIGNED_LONGS_EQUAL(5, stats_of(t, kAlice).version);
}

void a_hole_in_the_hello_is_recorded(EngineUnderTest& t, RecordedEvents& events) {
    (void)accepted(t, events, request_for(kAlice, 1));
    send(t, kAlice, 1, "a");
    flush(t);
    HelloRequest again = request_for(kAlice, 2);
    again.oldest_uplink = 7;
    again.next_uplink = 9;
    const HelloResult result = accepted(t, events, again);
    CHECK(result.recorded_hole);
    UNSIGNED_LONGS_EQUAL(6, result.last_uplink);
    const SessionStats stats = stats_of(t, kAlice);
    UNSIGNED_LONGS_EQUAL(7, stats.next_expected);
    UNSIGNED_LONGS_EQUAL(1, stats.gap_count);
    STRCMP_EQUAL(server::kReasonNotInOutbox,
                 stats.gaps.empty() ? "" : stats.gaps.front().reason.c_str());
}

void another_users_hello_is_forbidden(EngineUnderTest& t, RecordedEvents& events) {
    (void)accepted(t, events, request_for(kAlice, 1, "alice"));
    send(t, kAlice, 1, "a");
    flush(t);
    const RecordedEvents::HelloAnswer bob = hello(t, events, request_for(kAlice, 9, "bob"));
    CHECK(Status::kOk == bob.status);
    CHECK(HelloDecision::kForbidden == bob.result.decision);
    const SessionStats stats = stats_of(t, kAlice);
    UNSIGNED_LONGS_EQUAL(1, stats.version);
    UNSIGNED_LONGS_EQUAL(1, stats.received);
    // Bob's own session is his.
    (void)accepted(t, events, request_for(kBob, 1, "bob"));
}

void downlink_is_numbered_held_and_trimmed_by_acks(EngineUnderTest& t, RecordedEvents& events) {
    (void)accepted(t, events, request_for(kAlice, 1));
    UNSIGNED_LONGS_EQUAL(1, push(t, events, kAlice, "one"));
    UNSIGNED_LONGS_EQUAL(2, push(t, events, kAlice, "two"));
    CHECK(events.downlink_ready[kAlice] >= 1);
    const server::DownlinkMessage* first = t.engine().downlink_next(kAlice, 0);
    CHECK(first != nullptr);
    UNSIGNED_LONGS_EQUAL(1, first->seq);
    STRCMP_EQUAL("one", std::string(first->payload.begin(), first->payload.end()).c_str());
    const server::DownlinkMessage* second = t.engine().downlink_next(kAlice, 1);
    CHECK(second != nullptr);
    UNSIGNED_LONGS_EQUAL(2, second->seq);
    CHECK(Status::kOk == t.engine().downlink_acked(kAlice, 1));
    t.settle();
    UNSIGNED_LONGS_EQUAL(1, stats_of(t, kAlice).downlink_acked);
    CHECK(Status::kInvalidArgument == t.engine().downlink_acked(kAlice, 3));
    // A new connection replays what was not acknowledged.
    t.engine().release(kAlice);
    HelloRequest again = request_for(kAlice, 2);
    again.last_downlink = 1;
    const HelloResult result = accepted(t, events, again);
    UNSIGNED_LONGS_EQUAL(1, result.replay_after);
    const server::DownlinkMessage* replay = t.engine().downlink_next(kAlice, result.replay_after);
    CHECK(replay != nullptr);
    UNSIGNED_LONGS_EQUAL(2, replay->seq);
}

void downlink_beyond_the_replay_window_is_an_expired_gap(EngineUnderTest& t,
                                                         RecordedEvents& events) {
    (void)accepted(t, events, request_for(kAlice, 1));
    t.engine().release(kAlice);
    const std::size_t pushed = t.replay_capacity() + 2;
    for (std::size_t i = 0; i < pushed; ++i) {
        (void)push(t, events, kAlice, "x");
    }
    const HelloResult result = accepted(t, events, request_for(kAlice, 2));
    CHECK(result.has_downlink_gap);
    UNSIGNED_LONGS_EQUAL(1, result.downlink_gap.first);
    UNSIGNED_LONGS_EQUAL(2, result.downlink_gap.last);
    STRCMP_EQUAL(server::kReasonExpired, result.downlink_gap.reason.c_str());
    UNSIGNED_LONGS_EQUAL(2, result.replay_after);
    const server::DownlinkMessage* first = t.engine().downlink_next(kAlice, result.replay_after);
    CHECK(first != nullptr);
    UNSIGNED_LONGS_EQUAL(3, first->seq);
}

void bad_input_is_refused_at_once(EngineUnderTest& t, RecordedEvents& events) {
    HelloRequest bad = request_for("not-a-uuid", 1);
    CHECK(Status::kInvalidArgument == t.engine().hello(bad, g_ticket++));
    bad = request_for(kAlice, 0);
    CHECK(Status::kInvalidArgument == t.engine().hello(bad, g_ticket++));
    (void)accepted(t, events, request_for(kAlice, 1));
    const std::uint8_t byte = 0;
    CHECK(UplinkResult::kInvalidArgument ==
          t.engine().uplink_data(kAlice, 0, &byte, 1, UplinkMeta{}));
    CHECK(UplinkResult::kInvalidArgument ==
          t.engine().uplink_data(kAlice, server::kMaxSeq + 1, &byte, 1, UplinkMeta{}));
    const std::vector<std::uint8_t> big(t.max_payload() + 1, 0x55);
    CHECK(UplinkResult::kTooLarge ==
          t.engine().uplink_data(kAlice, 1, big.data(), big.size(), UplinkMeta{}));
    CHECK(GapResult::kInvalidArgument == t.engine().uplink_gap(kAlice, 5, 4, ""));
    CHECK(GapResult::kInvalidArgument == t.engine().uplink_gap(kAlice, 1, 2, std::string(65, 'r')));
    CHECK(Status::kTooLarge ==
          t.engine().push_downlink(kAlice, big.data(), big.size(), g_ticket++));
    flush(t);
    UNSIGNED_LONGS_EQUAL(0, stats_of(t, kAlice).received);
}

void a_push_to_an_unknown_session_is_not_found(EngineUnderTest& t, RecordedEvents& events) {
    (void)push(t, events, kBob, "nobody", Status::kNotFound);
    SessionStats stats;
    CHECK_FALSE(t.engine().session_stats(kBob, &stats));
}

// --- Device state (PROTOCOL.md 9) ---------------------------------------------

using server::DesiredChange;
using server::ReportOutcome;
using server::ReportRequest;
using server::ReportResult;
using server::StateDocuments;

constexpr const char* kReportA = "00000000000000a1";
constexpr const char* kReportB = "00000000000000b2";

// Finds the answer with `ticket` among `answers` (any of the vectors above).
template <typename Answer>
const Answer& answer_for(const std::vector<Answer>& answers, std::uint64_t ticket) {
    for (const Answer& answer : answers) {
        if (answer.ticket == ticket) {
            return answer;
        }
    }
    FAIL("no answer");
    return answers.front();
}

RecordedEvents::DesiredSetAnswer set_desired(EngineUnderTest& t, RecordedEvents& events,
                                             const char* session, const std::string& patch,
                                             bool has_expected = false,
                                             std::uint64_t expected = 0) {
    const std::uint64_t ticket = g_ticket++;
    CHECK(Status::kOk == t.engine().set_desired(session, patch, has_expected, expected, ticket));
    t.settle();
    return answer_for(events.desired_set, ticket);
}

// set_desired that must succeed with `version`.
void desire(EngineUnderTest& t, RecordedEvents& events, const char* session,
            const std::string& patch, std::uint64_t version) {
    const RecordedEvents::DesiredSetAnswer answer = set_desired(t, events, session, patch);
    CHECK(Status::kOk == answer.status);
    UNSIGNED_LONGS_EQUAL(version, answer.version);
}

RecordedEvents::DesiredSinceAnswer desired_since(EngineUnderTest& t, RecordedEvents& events,
                                                 const char* session, std::uint64_t applied) {
    const std::uint64_t ticket = g_ticket++;
    CHECK(Status::kOk == t.engine().desired_since(session, applied, ticket));
    t.settle();
    return answer_for(events.desired_since, ticket);
}

RecordedEvents::ReportAnswer report(EngineUnderTest& t, RecordedEvents& events, const char* session,
                                    const char* id, std::uint64_t base, bool whole,
                                    const std::string& document) {
    ReportRequest request;
    request.session = session;
    request.id = id;
    request.base = base;
    request.whole = whole;
    request.document = document;
    const std::uint64_t ticket = g_ticket++;
    CHECK(Status::kOk == t.engine().report(request, ticket));
    t.settle();
    return answer_for(events.reports, ticket);
}

RecordedEvents::StateAnswer read_state(EngineUnderTest& t, RecordedEvents& events,
                                       const char* session) {
    const std::uint64_t ticket = g_ticket++;
    CHECK(Status::kOk == t.engine().read_state(session, ticket));
    t.settle();
    return answer_for(events.states, ticket);
}

const std::string kLongName = "{\"name\":\"" + std::string(300, 'n') + "\"}";

void desired_changes_are_numbered_and_announced(EngineUnderTest& t, RecordedEvents& events) {
    (void)accepted(t, events, request_for(kAlice, 1));
    CHECK(desired_since(t, events, kAlice, 0).changes.empty());  // no document yet
    desire(t, events, kAlice, "{\"rate\": 10, \"on\": true}", 1);
    UNSIGNED_LONGS_EQUAL(1, events.desired_changed[kAlice]);
    desire(t, events, kAlice, "{\"on\":null,\"mode\":\"eco\"}", 2);
    UNSIGNED_LONGS_EQUAL(2, events.desired_changed[kAlice]);
    const RecordedEvents::StateAnswer state = read_state(t, events, kAlice);
    CHECK(Status::kOk == state.status);
    UNSIGNED_LONGS_EQUAL(2, state.documents.desired_version);
    STRCMP_EQUAL("{\"rate\":10,\"mode\":\"eco\"}", state.documents.desired.c_str());
    UNSIGNED_LONGS_EQUAL(0, state.documents.reported_version);
    STRCMP_EQUAL("{}", state.documents.reported.c_str());
    // Up to date: nothing to send.
    const RecordedEvents::DesiredSinceAnswer none = desired_since(t, events, kAlice, 2);
    CHECK(Status::kOk == none.status);
    CHECK(none.changes.empty());
}

void a_short_gap_gets_the_increments(EngineUnderTest& t, RecordedEvents& events) {
    (void)accepted(t, events, request_for(kAlice, 1));
    desire(t, events, kAlice, kLongName, 1);
    desire(t, events, kAlice, "{\"rate\":1}", 2);
    desire(t, events, kAlice, "{\"rate\":2}", 3);
    desire(t, events, kAlice, "{\"mode\":\"eco\"}", 4);
    const RecordedEvents::DesiredSinceAnswer answer = desired_since(t, events, kAlice, 1);
    CHECK(Status::kOk == answer.status);
    LONGS_EQUAL(3, answer.changes.size());
    const char* patches[] = {"{\"rate\":1}", "{\"rate\":2}", "{\"mode\":\"eco\"}"};
    for (std::size_t i = 0; i < 3 && i < answer.changes.size(); ++i) {
        UNSIGNED_LONGS_EQUAL(2 + i, answer.changes[i].version);
        CHECK_FALSE(answer.changes[i].snapshot);
        STRCMP_EQUAL(patches[i], answer.changes[i].document.c_str());
    }
    // Nothing applied yet: the whole document.
    const RecordedEvents::DesiredSinceAnswer fresh = desired_since(t, events, kAlice, 0);
    LONGS_EQUAL(1, fresh.changes.size());
    CHECK(fresh.changes[0].snapshot);
    UNSIGNED_LONGS_EQUAL(4, fresh.changes[0].version);
}

void a_long_outage_gets_one_snapshot(EngineUnderTest& t, RecordedEvents& events) {
    (void)accepted(t, events, request_for(kAlice, 1));
    const std::uint64_t changes = server::kDesiredHistory + 6;
    for (std::uint64_t v = 1; v <= changes; ++v) {
        desire(t, events, kAlice, "{\"step\":" + std::to_string(v) + "}", v);
    }
    const RecordedEvents::DesiredSinceAnswer answer = desired_since(t, events, kAlice, 3);
    CHECK(Status::kOk == answer.status);
    LONGS_EQUAL(1, answer.changes.size());
    CHECK(answer.changes[0].snapshot);
    UNSIGNED_LONGS_EQUAL(changes, answer.changes[0].version);
    STRCMP_EQUAL(("{\"step\":" + std::to_string(changes) + "}").c_str(),
                 answer.changes[0].document.c_str());
    // A device newer than the store (restored from a backup) gets the snapshot too.
    const RecordedEvents::DesiredSinceAnswer newer = desired_since(t, events, kAlice, changes + 10);
    LONGS_EQUAL(1, newer.changes.size());
    CHECK(newer.changes[0].snapshot);
    UNSIGNED_LONGS_EQUAL(changes, newer.changes[0].version);
}

void the_window_holds_the_last_increments(EngineUnderTest& t, RecordedEvents& events) {
    (void)accepted(t, events, request_for(kAlice, 1));
    // A document large enough that 64 small increments, each ~70 bytes as a
    // message on the wire, are smaller than it.
    desire(t, events, kAlice, "{\"name\":\"" + std::string(7000, 'n') + "\"}", 1);
    const std::uint64_t last = server::kDesiredHistory + 6;
    for (std::uint64_t v = 2; v <= last; ++v) {
        desire(t, events, kAlice, "{\"step\":" + std::to_string(v) + "}", v);
    }
    const std::uint64_t oldest_held = last - server::kDesiredHistory + 1;
    const RecordedEvents::DesiredSinceAnswer all =
        desired_since(t, events, kAlice, oldest_held - 1);
    LONGS_EQUAL(server::kDesiredHistory, all.changes.size());
    UNSIGNED_LONGS_EQUAL(oldest_held, all.changes.empty() ? 0 : all.changes.front().version);
    UNSIGNED_LONGS_EQUAL(last, all.changes.empty() ? 0 : all.changes.back().version);
    CHECK_FALSE(all.changes.empty() || all.changes.back().snapshot);
    // One more than is held: the snapshot.
    const RecordedEvents::DesiredSinceAnswer older =
        desired_since(t, events, kAlice, oldest_held - 2);
    LONGS_EQUAL(1, older.changes.size());
    CHECK(older.changes[0].snapshot);
    UNSIGNED_LONGS_EQUAL(last, older.changes[0].version);
}

void an_expected_version_that_differs_is_a_conflict(EngineUnderTest& t, RecordedEvents& events) {
    (void)accepted(t, events, request_for(kAlice, 1));
    const RecordedEvents::DesiredSetAnswer first =
        set_desired(t, events, kAlice, "{\"a\":1}", true, 0);
    CHECK(Status::kOk == first.status);
    UNSIGNED_LONGS_EQUAL(1, first.version);
    const RecordedEvents::DesiredSetAnswer late =
        set_desired(t, events, kAlice, "{\"a\":2}", true, 0);
    CHECK(Status::kConflict == late.status);
    UNSIGNED_LONGS_EQUAL(1, late.version);
    const RecordedEvents::DesiredSetAnswer next =
        set_desired(t, events, kAlice, "{\"a\":3}", true, 1);
    CHECK(Status::kOk == next.status);
    UNSIGNED_LONGS_EQUAL(2, next.version);
    STRCMP_EQUAL("{\"a\":3}", read_state(t, events, kAlice).documents.desired.c_str());
}

void bad_or_too_large_desired_patches_change_nothing(EngineUnderTest& t, RecordedEvents& events) {
    (void)accepted(t, events, request_for(kAlice, 1));
    CHECK(Status::kInvalidArgument == set_desired(t, events, kAlice, "[1,2]").status);
    CHECK(Status::kInvalidArgument == set_desired(t, events, kAlice, "not json").status);
    CHECK(Status::kInvalidArgument == set_desired(t, events, kAlice, "{\"a\":1,\"a\":2}").status);
    const std::string big = "{\"big\":\"" + std::string(net_max_document(), 'x') + "\"}";
    CHECK(Status::kTooLarge == set_desired(t, events, kAlice, big).status);
    const std::string half = std::string(net_max_document() / 2, 'h');
    desire(t, events, kAlice, "{\"one\":\"" + half + "\"}", 1);
    // Each patch fits; the document they make would not.
    CHECK(Status::kTooLarge == set_desired(t, events, kAlice, "{\"two\":\"" + half + "\"}").status);
    const RecordedEvents::StateAnswer state = read_state(t, events, kAlice);
    UNSIGNED_LONGS_EQUAL(1, state.documents.desired_version);
    UNSIGNED_LONGS_EQUAL(1, events.desired_changed[kAlice]);
}

void state_of_an_unknown_session_is_not_found(EngineUnderTest& t, RecordedEvents& events) {
    CHECK(Status::kNotFound == set_desired(t, events, kBob, "{\"a\":1}").status);
    CHECK(Status::kNotFound == desired_since(t, events, kBob, 0).status);
    CHECK(Status::kNotFound == read_state(t, events, kBob).status);
    CHECK(Status::kNotFound == t.engine().desired_applied(kBob, 0));
    const RecordedEvents::ReportAnswer nobody =
        report(t, events, kBob, kReportA, 0, false, "{\"t\":1}");
    CHECK(Status::kOk != nobody.status);
    CHECK(ReportOutcome::kUnavailable == nobody.result.outcome);
    CHECK(events.desired_changed.empty());
    SessionStats stats;
    CHECK_FALSE(t.engine().session_stats(kBob, &stats));  // asking created nothing
}

void reports_apply_on_their_base_only(EngineUnderTest& t, RecordedEvents& events) {
    (void)accepted(t, events, request_for(kAlice, 1));
    RecordedEvents::ReportAnswer first =
        report(t, events, kAlice, kReportA, 0, false, "{\"temp\":20}");
    CHECK(Status::kOk == first.status);
    CHECK(ReportOutcome::kApplied == first.result.outcome);
    UNSIGNED_LONGS_EQUAL(1, first.result.version);
    // The same report again (its answer was lost): the same answer, no change.
    RecordedEvents::ReportAnswer again =
        report(t, events, kAlice, kReportA, 0, false, "{\"temp\":20}");
    CHECK(ReportOutcome::kRepeated == again.result.outcome);
    UNSIGNED_LONGS_EQUAL(1, again.result.version);
    // Another report on the old base: refused with what is there now.
    RecordedEvents::ReportAnswer stale =
        report(t, events, kAlice, kReportB, 0, false, "{\"temp\":99}");
    CHECK(Status::kOk == stale.status);
    CHECK(ReportOutcome::kStale == stale.result.outcome);
    UNSIGNED_LONGS_EQUAL(1, stale.result.version);
    STRCMP_EQUAL("{\"temp\":20}", stale.result.document.c_str());
    // On the current base: a merge patch, then a whole document.
    RecordedEvents::ReportAnswer merged =
        report(t, events, kAlice, kReportB, 1, false, "{\"fan\":\"on\"}");
    CHECK(ReportOutcome::kApplied == merged.result.outcome);
    UNSIGNED_LONGS_EQUAL(2, merged.result.version);
    STRCMP_EQUAL("{\"temp\":20,\"fan\":\"on\"}",
                 read_state(t, events, kAlice).documents.reported.c_str());
    RecordedEvents::ReportAnswer whole =
        report(t, events, kAlice, "00000000000000c3", 2, true, "{\"x\":1}");
    CHECK(ReportOutcome::kApplied == whole.result.outcome);
    UNSIGNED_LONGS_EQUAL(3, whole.result.version);
    const StateDocuments documents = read_state(t, events, kAlice).documents;
    UNSIGNED_LONGS_EQUAL(3, documents.reported_version);
    STRCMP_EQUAL("{\"x\":1}", documents.reported.c_str());
    STRCMP_EQUAL("00000000000000c3", documents.report_id.c_str());
    // Too large: refused, nothing changes.
    const std::string big = "{\"big\":\"" + std::string(net_max_document(), 'x') + "\"}";
    RecordedEvents::ReportAnswer large =
        report(t, events, kAlice, "00000000000000d4", 3, false, big);
    CHECK(ReportOutcome::kTooLarge == large.result.outcome);
    UNSIGNED_LONGS_EQUAL(3, read_state(t, events, kAlice).documents.reported_version);
}

void applied_is_recorded_up_to_the_desired_version(EngineUnderTest& t, RecordedEvents& events) {
    (void)accepted(t, events, request_for(kAlice, 1));
    desire(t, events, kAlice, "{\"a\":1}", 1);
    desire(t, events, kAlice, "{\"a\":2}", 2);
    CHECK(Status::kInvalidArgument == t.engine().desired_applied(kAlice, 3));
    CHECK(Status::kOk == t.engine().desired_applied(kAlice, 2));
    CHECK(Status::kOk == t.engine().desired_applied(kAlice, 1));  // an old one: kept at 2
    flush(t);
    UNSIGNED_LONGS_EQUAL(2, read_state(t, events, kAlice).documents.desired_applied);
}

void state_survives_a_restart(EngineUnderTest& t, RecordedEvents& events) {
    (void)accepted(t, events, request_for(kAlice, 1));
    desire(t, events, kAlice, kLongName, 1);
    // Enough changes that a store which rewrites its state log does so.
    const std::uint64_t last = 3 * server::kDesiredHistory + 10;
    for (std::uint64_t v = 2; v <= last; ++v) {
        desire(t, events, kAlice, "{\"step\":" + std::to_string(v) + "}", v);
    }
    CHECK(Status::kOk == t.engine().desired_applied(kAlice, last - 2));
    CHECK(ReportOutcome::kApplied ==
          report(t, events, kAlice, kReportA, 0, false, "{\"temp\":20}").result.outcome);
    flush(t);
    if (!t.reopen()) {
        return;
    }
    const StateDocuments documents = read_state(t, events, kAlice).documents;
    UNSIGNED_LONGS_EQUAL(last, documents.desired_version);
    const std::string expected =
        "{\"name\":\"" + std::string(300, 'n') + "\",\"step\":" + std::to_string(last) + "}";
    STRCMP_EQUAL(expected.c_str(), documents.desired.c_str());
    UNSIGNED_LONGS_EQUAL(last - 2, documents.desired_applied);
    UNSIGNED_LONGS_EQUAL(1, documents.reported_version);
    STRCMP_EQUAL("{\"temp\":20}", documents.reported.c_str());
    STRCMP_EQUAL(kReportA, documents.report_id.c_str());
    // The increments are still held, and the last report's id is still known.
    (void)accepted(t, events, request_for(kAlice, 2));
    const RecordedEvents::DesiredSinceAnswer since = desired_since(t, events, kAlice, last - 2);
    LONGS_EQUAL(2, since.changes.size());
    UNSIGNED_LONGS_EQUAL(last - 1, since.changes.empty() ? 0 : since.changes[0].version);
    CHECK(ReportOutcome::kRepeated ==
          report(t, events, kAlice, kReportA, 0, false, "{\"temp\":20}").result.outcome);
    desire(t, events, kAlice, "{\"after\":1}", last + 1);
}

const ContractCase kCases[] = {
    {"a_new_session_starts_empty", a_new_session_starts_empty},
    {"uplink_is_acknowledged_after_a_flush", uplink_is_acknowledged_after_a_flush},
    {"a_duplicate_is_dropped_and_counted", a_duplicate_is_dropped_and_counted},
    {"a_skipped_seq_is_an_unreported_gap", a_skipped_seq_is_an_unreported_gap},
    {"a_gap_message_moves_next_expected", a_gap_message_moves_next_expected},
    {"a_resumed_session_says_what_it_holds", a_resumed_session_says_what_it_holds},
    {"an_older_version_is_superseded", an_older_version_is_superseded},
    {"a_hole_in_the_hello_is_recorded", a_hole_in_the_hello_is_recorded},
    {"another_users_hello_is_forbidden", another_users_hello_is_forbidden},
    {"downlink_is_numbered_held_and_trimmed_by_acks",
     downlink_is_numbered_held_and_trimmed_by_acks},
    {"downlink_beyond_the_replay_window_is_an_expired_gap",
     downlink_beyond_the_replay_window_is_an_expired_gap},
    {"bad_input_is_refused_at_once", bad_input_is_refused_at_once},
    {"a_push_to_an_unknown_session_is_not_found", a_push_to_an_unknown_session_is_not_found},
    {"desired_changes_are_numbered_and_announced", desired_changes_are_numbered_and_announced},
    {"a_short_gap_gets_the_increments", a_short_gap_gets_the_increments},
    {"a_long_outage_gets_one_snapshot", a_long_outage_gets_one_snapshot},
    {"the_window_holds_the_last_increments", the_window_holds_the_last_increments},
    {"an_expected_version_that_differs_is_a_conflict",
     an_expected_version_that_differs_is_a_conflict},
    {"bad_or_too_large_desired_patches_change_nothing",
     bad_or_too_large_desired_patches_change_nothing},
    {"state_of_an_unknown_session_is_not_found", state_of_an_unknown_session_is_not_found},
    {"reports_apply_on_their_base_only", reports_apply_on_their_base_only},
    {"applied_is_recorded_up_to_the_desired_version",
     applied_is_recorded_up_to_the_desired_version},
    {"state_survives_a_restart", state_survives_a_restart},
};

}  // namespace

const ContractCase* engine_contract_cases(std::size_t* count) {
    *count = sizeof kCases / sizeof kCases[0];
    return kCases;
}

void run_engine_contract(std::unique_ptr<EngineUnderTest> (*make)(RecordedEvents* events)) {
    std::size_t count = 0;
    const ContractCase* cases = engine_contract_cases(&count);
    for (std::size_t i = 0; i < count; ++i) {
        RecordedEvents events;
        std::unique_ptr<EngineUnderTest> under_test = make(&events);
        CHECK_TEXT(under_test != nullptr, cases[i].name);
        cases[i].run(*under_test, events);
        CHECK_TEXT(events.failed.empty(), cases[i].name);
    }
}

}  // namespace tether::test

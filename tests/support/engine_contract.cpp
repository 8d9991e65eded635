#include "support/engine_contract.h"

#include <cstring>
#include <string>

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

namespace {

constexpr const char* kAlice = "0a6c5b8e-1111-4222-8333-444455556666";
constexpr const char* kBob = "0b7d6c9f-2222-4333-8444-555566667777";

std::uint64_t g_ticket = 1;

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

// SPDX-License-Identifier: MIT
// RedisEngine against a scripted RedisLink: the exact commands it sends and
// what it decides from each reply (the Lua functions themselves run against a
// real redis-server in tests/integration/test_redis_store.py).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fakes/fake_redis_link.h"
#include "tether/server/redis_engine.h"
#include "tether/server/redis_functions.h"

// CppUTest last: its operator-new macro breaks standard headers.
#include <CppUTest/TestHarness.h>

#include "support/tether_strings.h"

using tether::Status;
using tether::server::DesiredChange;
using tether::server::DownlinkMessage;
using tether::server::EngineEvents;
using tether::server::EngineStats;
using tether::server::GapResult;
using tether::server::HelloDecision;
using tether::server::HelloRequest;
using tether::server::HelloResult;
using tether::server::RedisDurability;
using tether::server::RedisEngine;
using tether::server::RedisEngineOptions;
using tether::server::RedisValue;
using tether::server::ReportOutcome;
using tether::server::ReportRequest;
using tether::server::ReportResult;
using tether::server::SessionStats;
using tether::server::StateDocuments;
using tether::server::UplinkMeta;
using tether::server::UplinkResult;
using tether::test::FakeRedisLink;

namespace {

constexpr const char* kSession = "0a6c1f3e-2b4d-5c6e-8f90-123456789abc";
constexpr const char* kOther = "11111111-2222-5333-8444-555555555555";
const std::string kState = std::string("t:{") + kSession + "}:state";
const std::string kDown = std::string("t:{") + kSession + "}:down";
const std::string kOtherState = std::string("t:{") + kOther + "}:state";
const std::string kDesired = std::string("t:{") + kSession + "}:desired";
const std::string kStateRead =
    "HMGET " + kState +
    " version desired_version desired desired_applied reported_version reported report_id";

// Every event, as one line, in order.
class RecordingEvents final : public EngineEvents {
  public:
    std::vector<std::string> lines;
    HelloResult last_hello;

    void on_hello(std::uint64_t ticket, Status status, const HelloResult& result) override {
        last_hello = result;
        std::string line = "hello " + std::to_string(ticket) + " " + to_string(status);
        if (status == Status::kOk) {
            const char* names[] = {"accepted", "superseded", "forbidden"};
            line += std::string(" ") + names[static_cast<int>(result.decision)];
        }
        lines.push_back(line);
    }
    void on_acknowledgeable(std::string_view session, std::uint64_t last_uplink) override {
        lines.push_back("ack " + std::string(session) + " " + std::to_string(last_uplink));
    }
    void on_downlink_ready(std::string_view session) override {
        lines.push_back("downlink " + std::string(session));
    }
    void on_superseded(std::string_view session, std::uint32_t version) override {
        lines.push_back("superseded " + std::string(session) + " " + std::to_string(version));
    }
    void on_session_failed(std::string_view session, Status status) override {
        lines.push_back("failed " + std::string(session) + " " + to_string(status));
    }
    void on_pushed(std::uint64_t ticket, Status status, std::uint64_t seq) override {
        lines.push_back("pushed " + std::to_string(ticket) + " " + to_string(status) + " " +
                        std::to_string(seq));
    }
    void on_desired_changed(std::string_view session, std::uint64_t version) override {
        lines.push_back("changed " + std::string(session) + " " + std::to_string(version));
    }
    void on_desired_since(std::uint64_t ticket, Status status,
                          const std::vector<DesiredChange>& changes) override {
        std::string line = "since " + std::to_string(ticket) + " " + to_string(status);
        for (const DesiredChange& change : changes) {
            line += " " + std::to_string(change.version) + (change.snapshot ? ":s:" : ":p:") +
                    change.document;
        }
        lines.push_back(line);
    }
    void on_desired_set(std::uint64_t ticket, Status status, std::uint64_t version) override {
        lines.push_back("set " + std::to_string(ticket) + " " + to_string(status) + " " +
                        std::to_string(version));
    }
    void on_reported(std::uint64_t ticket, Status status, const ReportResult& result) override {
        const char* outcomes[] = {"applied", "repeated", "stale", "too_large", "unavailable"};
        std::string line = "reported " + std::to_string(ticket) + " " + to_string(status) + " " +
                           outcomes[static_cast<int>(result.outcome)] + " " +
                           std::to_string(result.version);
        if (!result.document.empty()) {
            line += " " + result.document;
        }
        lines.push_back(line);
    }
    void on_state_read(std::uint64_t ticket, Status status,
                       const StateDocuments& documents) override {
        lines.push_back("read " + std::to_string(ticket) + " " + to_string(status) + " " +
                        std::to_string(documents.desired_version) + " " + documents.desired + " " +
                        std::to_string(documents.desired_applied) + " " +
                        std::to_string(documents.reported_version) + " " + documents.reported +
                        " [" + documents.report_id + "]");
    }
    std::vector<std::string> take() {
        std::vector<std::string> out;
        out.swap(lines);
        return out;
    }
};

RedisValue str(std::string_view text) {
    return RedisValue::of_string(text);
}
RedisValue num(std::int64_t value) {
    return RedisValue::of_integer(value);
}

RedisValue state(std::vector<std::pair<std::string, std::string>> fields) {
    std::vector<RedisValue> flat;
    for (const auto& field : fields) {
        flat.push_back(str(field.first));
        flat.push_back(str(field.second));
    }
    return RedisValue::of_array(std::move(flat));
}

RedisValue default_state() {
    return state({{"device", "pi-17"},
                  {"owner", "alice"},
                  {"version", "3"},
                  {"epoch", "3"},
                  {"next_expected", "118"},
                  {"received", "100"},
                  {"duplicates", "2"},
                  {"highest_seq", "117"},
                  {"gap_count", "1"},
                  {"missing_seqs", "17"},
                  {"unreported_gaps", "0"},
                  {"trimmed_through", "0"},
                  {"downlink_last", "42"},
                  {"downlink_acked", "40"},
                  {"instance", "i1"},
                  {"backend_field", "ignored"}});
}

RedisValue hello_reply(const char* decision, std::int64_t resumed, std::int64_t last_uplink,
                       std::int64_t hole, std::int64_t has_gap, std::int64_t gap_first,
                       std::int64_t gap_last, std::int64_t replay_after, RedisValue hash) {
    return RedisValue::of_array({str(decision), num(resumed), num(last_uplink), num(hole),
                                 num(has_gap), num(gap_first), num(gap_last), num(replay_after),
                                 std::move(hash)});
}

RedisValue entry(std::uint64_t seq, std::string_view payload) {
    return RedisValue::of_array(
        {str(std::to_string(seq) + "-0"),
         RedisValue::of_array({str("payload"), str(payload), str("queued_ms"), str("5")})});
}

RedisValue uplink_ok(std::int64_t last_uplink, std::int64_t stored, std::int64_t duplicates,
                     std::int64_t gaps, std::int64_t missing) {
    return RedisValue::of_array({str("ok"), num(last_uplink), num(stored), num(duplicates),
                                 num(gaps), num(missing), default_state()});
}

RedisValue nil() {
    return RedisValue::nil();
}

// HMGET's reply for the state fields: version, desired_version, desired,
// desired_applied, reported_version, reported, report_id (nil when absent).
RedisValue documents(std::vector<RedisValue> fields) {
    return RedisValue::of_array(std::move(fields));
}

RedisValue increment(std::uint64_t version, std::string_view patch) {
    return RedisValue::of_array(
        {str(std::to_string(version) + "-0"), RedisValue::of_array({str("patch"), str(patch)})});
}

RedisValue pair(const char* outcome, std::int64_t value) {
    return RedisValue::of_array({str(outcome), num(value)});
}

std::string lines_of(const std::vector<std::string>& lines) {
    std::string text;
    for (const std::string& line : lines) {
        text += line + "\n";
    }
    return text;
}

const std::uint8_t* bytes(const char* text) {
    return reinterpret_cast<const std::uint8_t*>(text);
}

}  // namespace

TEST_GROUP(RedisEngine) {
    FakeRedisLink link;
    RecordingEvents events;
    RedisEngineOptions options;
    std::unique_ptr<RedisEngine> engine;
    std::vector<std::string> logged;

    void setup() override {
        options.prefix = "t";
        options.instance = "i1";
        options.unix_time_ms = [] { return std::uint64_t{1700}; };
        options.log = [this](std::string_view line) { logged.emplace_back(line); };
    }

    // Opens the engine and brings the link up with the library loaded.
    void start() {
        engine = std::make_unique<RedisEngine>(link, options);
        engine->set_events(&events);
        CHECK_EQUAL(Status::kOk, engine->open(10));
        link.connect();
        const std::vector<std::string> sent = link.take();
        LONGS_EQUAL(1, sent.size());
        CHECK(sent[0].rfind("FUNCTION LOAD REPLACE #!lua name=tether", 0) == 0);
        link.reply(str("tether"));
        CHECK(engine->ready());
    }

    HelloRequest request(const char* session = kSession, std::uint32_t version = 3) {
        HelloRequest r;
        r.session = session;
        r.version = version;
        r.device = "pi-17";
        r.last_downlink = 40;
        r.oldest_uplink = 118;
        r.next_uplink = 121;
        r.user = "alice";
        return r;
    }

    // A hello accepted with replay [41, 42] held.
    void serve(const char* session = kSession, std::uint64_t ticket = 7) {
        CHECK_EQUAL(Status::kOk, engine->hello(request(session), ticket));
        (void)link.take();
        link.reply(hello_reply("accepted", 1, 117, 0, 0, 0, 0, 40, default_state()));
        link.reply(RedisValue::of_array({entry(41, "reboot"), entry(42, "update")}));
        const std::vector<std::string> sent = link.take();
        LONGS_EQUAL(1, sent.size());
        STRCMP_EQUAL((std::string("SADD t:sessions ") + session).c_str(), sent[0].c_str());
        link.reply(num(1));
        STRCMP_EQUAL(("hello " + std::to_string(ticket) + " ok accepted\n").c_str(),
                     lines_of(events.take()).c_str());
    }
};

TEST(RedisEngine, OpenSubscribesAndStartsTheLink) {
    engine = std::make_unique<RedisEngine>(link, options);
    engine->set_events(&events);
    CHECK_EQUAL(Status::kOk, engine->open(10));
    CHECK(link.started());
    LONGS_EQUAL(3, link.channels().size());
    STRCMP_EQUAL("t:downlink", link.channels()[0].c_str());
    STRCMP_EQUAL("t:supersede", link.channels()[1].c_str());
    STRCMP_EQUAL("t:desired", link.channels()[2].c_str());
    CHECK_FALSE(engine->ready());
    CHECK_EQUAL(Status::kInvalidArgument, engine->open(10));
}

TEST(RedisEngine, OpenRefusesOptionsOutOfRange) {
    const auto refused = [this](RedisEngineOptions bad) {
        RedisEngine candidate(link, std::move(bad));
        candidate.set_events(&events);
        return candidate.open(0) == Status::kInvalidArgument;
    };
    RedisEngineOptions bad = options;
    bad.prefix = "";
    CHECK(refused(bad));
    bad = options;
    bad.prefix = "a{b";
    CHECK(refused(bad));
    bad = options;
    bad.instance = "two words";
    CHECK(refused(bad));
    bad = options;
    bad.durability = RedisDurability::kReplicas;
    bad.replicas = 0;
    CHECK(refused(bad));
    bad = options;
    bad.replay_capacity = 0;
    CHECK(refused(bad));
    bad = options;
    bad.max_batch_messages = 0;
    CHECK(refused(bad));
    RedisEngine no_events(link, options);
    CHECK_EQUAL(Status::kInvalidArgument, no_events.open(0));
}

TEST(RedisEngine, ParsesDurability) {
    RedisEngineOptions parsed;
    CHECK(tether::server::parse_redis_durability("replicas:2", &parsed));
    CHECK(parsed.durability == RedisDurability::kReplicas);
    LONGS_EQUAL(2, parsed.replicas);
    CHECK(tether::server::parse_redis_durability("reply", &parsed));
    CHECK(parsed.durability == RedisDurability::kReply);
    CHECK_FALSE(tether::server::parse_redis_durability("replicas:0", &parsed));
    CHECK_FALSE(tether::server::parse_redis_durability("replicas:", &parsed));
    CHECK_FALSE(tether::server::parse_redis_durability("replicas:x", &parsed));
    CHECK_FALSE(tether::server::parse_redis_durability("fsync", &parsed));
    CHECK_FALSE(tether::server::parse_redis_durability("reply", nullptr));
}

TEST(RedisEngine, ReadyOnlyAfterTheLibraryLoads) {
    engine = std::make_unique<RedisEngine>(link, options);
    engine->set_events(&events);
    CHECK_EQUAL(Status::kOk, engine->open(10));
    CHECK_EQUAL(Status::kUnavailable, engine->hello(request(), 1));
    link.connect();
    CHECK_FALSE(engine->ready());
    CHECK_EQUAL(Status::kUnavailable, engine->hello(request(), 1));
    link.reply(RedisValue::of_error("ERR unknown command 'FUNCTION'"));
    CHECK_FALSE(engine->ready());
    LONGS_EQUAL(1, engine->stats().store_errors);
    LONGS_EQUAL(1, logged.size());
    STRCMP_CONTAINS("redis_function_load_failed", logged[0].c_str());
    CHECK_FALSE(engine->stats().ready);
}

TEST(RedisEngine, TheLibraryNamesEveryFunctionAndTheDefaultCapacity) {
    const std::string library(tether::server::redis_function_library());
    CHECK(library.rfind("#!lua name=tether\n", 0) == 0);
    for (const char* name :
         {"tether_hello", "tether_uplink", "tether_gap", "tether_ack_downlink", "tether_push",
          "tether_desired_put", "tether_desired_applied", "tether_report"}) {
        STRCMP_CONTAINS((std::string("register_function('") + name).c_str(), library.c_str());
    }
    STRCMP_CONTAINS(
        ("local capacity = " + std::to_string(tether::server::kRedisDefaultReplayCapacity)).c_str(),
        library.c_str());
}

TEST(RedisEngine, AcceptedHelloIsAnsweredWithItsReplayHeld) {
    start();
    HelloRequest upper = request();
    const std::string upper_id = "0A6C1F3E-2B4D-5C6E-8F90-123456789ABC";
    upper.session = upper_id;
    CHECK_EQUAL(Status::kOk, engine->hello(upper, 7));
    const std::vector<std::string> sent = link.take();
    LONGS_EQUAL(2, sent.size());
    STRCMP_EQUAL(("FCALL tether_hello 1 " + kState + " 3 pi-17 40 118 alice i1").c_str(),
                 sent[0].c_str());
    STRCMP_EQUAL(("XRANGE " + kDown + " - + COUNT 1024").c_str(), sent[1].c_str());
    link.reply(hello_reply("accepted", 1, 120, 1, 1, 41, 41, 41, default_state()));
    CHECK(events.lines.empty());  // the replay is not held yet
    link.reply(RedisValue::of_array({entry(42, "update")}));
    // Listed in P:sessions before the device is welcomed: consumers find it
    // before its first message.
    CHECK(events.lines.empty());
    const std::vector<std::string> registered = link.take();
    LONGS_EQUAL(1, registered.size());
    STRCMP_EQUAL(("SADD t:sessions " + std::string(kSession)).c_str(), registered[0].c_str());
    link.reply(num(1));
    STRCMP_EQUAL("hello 7 ok accepted\n", lines_of(events.take()).c_str());
    const HelloResult& result = events.last_hello;
    CHECK(result.resumed);
    LONGS_EQUAL(120, result.last_uplink);
    CHECK(result.recorded_hole);
    CHECK(result.has_downlink_gap);
    LONGS_EQUAL(41, result.downlink_gap.first);
    LONGS_EQUAL(41, result.downlink_gap.last);
    STRCMP_EQUAL("expired", result.downlink_gap.reason.c_str());
    LONGS_EQUAL(41, result.replay_after);
    const DownlinkMessage* next = engine->downlink_next(upper_id, result.replay_after);
    CHECK(next != nullptr);
    LONGS_EQUAL(42, next->seq);
    STRCMP_EQUAL("update", std::string(next->payload.begin(), next->payload.end()).c_str());
    CHECK(engine->downlink_next(kSession, 42) == nullptr);
    CHECK(engine->downlink_next(kOther, 0) == nullptr);
}

TEST(RedisEngine, AHelloWhoseSessionCannotBeListedIsNotWelcomed) {
    // A session missing from P:sessions would be read by no consumer: the
    // hello fails (logged once) and the device's next hello registers it.
    start();
    CHECK_EQUAL(Status::kOk, engine->hello(request(), 7));
    (void)link.take();
    link.reply(hello_reply("accepted", 1, 117, 0, 0, 0, 0, 40, default_state()));
    link.reply(RedisValue::of_array({}));
    (void)link.take();  // SADD
    link.reply(RedisValue::of_error("ERR oom"));
    LONGS_EQUAL(1, engine->stats().store_errors);
    STRCMP_EQUAL("hello 7 io_error\n", lines_of(events.take()).c_str());
    CHECK(engine->sessions().empty());
    CHECK(!logged.empty() && logged.back().rfind("event=redis_register_failed", 0) == 0);
}

TEST(RedisEngine, AHelloWhoseSaddCannotBeSentIsAnsweredUnavailable) {
    // The link takes no more commands (its queue is full) but stays up: no
    // on_disconnected will come, so the hello is answered here.
    start();
    CHECK_EQUAL(Status::kOk, engine->hello(request(), 7));
    (void)link.take();
    link.reply(hello_reply("accepted", 1, 117, 0, 0, 0, 0, 40, default_state()));
    link.refuse_commands(true);
    link.reply(RedisValue::of_array({}));
    STRCMP_EQUAL("hello 7 unavailable\n", lines_of(events.take()).c_str());
    CHECK(engine->sessions().empty());
    LONGS_EQUAL(1, engine->stats().store_errors);
}

TEST(RedisEngine, SupersededAndForbiddenHellosAreAnsweredAtOnce) {
    start();
    CHECK_EQUAL(Status::kOk, engine->hello(request(), 1));
    link.reply(hello_reply("superseded", 1, 117, 0, 0, 0, 0, 40, default_state()));
    STRCMP_EQUAL("hello 1 ok superseded\n", lines_of(events.take()).c_str());
    LONGS_EQUAL(117, events.last_hello.last_uplink);
    link.reply(RedisValue::of_array({}));  // its XRANGE: ignored
    CHECK_EQUAL(Status::kOk, engine->hello(request(), 2));
    link.reply(hello_reply("forbidden", 1, 0, 0, 0, 0, 0, 40, RedisValue::of_array({})));
    link.reply(RedisValue::of_array({}));
    STRCMP_EQUAL("hello 2 ok forbidden\n", lines_of(events.take()).c_str());
    CHECK(engine->sessions().empty());
    (void)link.take();
    CHECK(link.take().empty());  // no SADD for a refused hello
}

TEST(RedisEngine, HelloFailsOnAnErrorOrAMalformedReply) {
    start();
    CHECK_EQUAL(Status::kOk, engine->hello(request(), 1));
    link.reply(RedisValue::of_error("ERR tether: bad hello"));
    link.reply(RedisValue::of_array({}));
    CHECK_EQUAL(Status::kOk, engine->hello(request(), 2));
    link.reply(RedisValue::of_array({str("accepted"), num(1)}));
    link.reply(RedisValue::of_array({}));
    CHECK_EQUAL(Status::kOk, engine->hello(request(), 3));
    link.reply(hello_reply("maybe", 1, 0, 0, 0, 0, 0, 0, default_state()));
    link.reply(RedisValue::of_array({}));
    CHECK_EQUAL(Status::kOk, engine->hello(request(), 4));
    link.reply(hello_reply("accepted", 1, 1, 0, 0, 0, 0, 0, state({{"version", "x"}})));
    link.reply(RedisValue::of_array({}));
    CHECK_EQUAL(Status::kOk, engine->hello(request(), 5));
    link.reply(hello_reply("accepted", 1, 1, 0, 0, 0, 0, 0, default_state()));
    link.reply(RedisValue::of_array({str("not an entry")}));
    STRCMP_EQUAL(
        "hello 1 io_error\nhello 2 io_error\nhello 3 io_error\nhello 4 io_error\n"
        "hello 5 io_error\n",
        lines_of(events.take()).c_str());
    LONGS_EQUAL(5, engine->stats().store_errors);
    CHECK(engine->sessions().empty());
}

TEST(RedisEngine, HelloRefusesInvalidRequests) {
    start();
    HelloRequest bad = request();
    bad.session = "not-a-uuid";
    CHECK_EQUAL(Status::kInvalidArgument, engine->hello(bad, 1));
    bad = request();
    bad.version = 0;
    CHECK_EQUAL(Status::kInvalidArgument, engine->hello(bad, 1));
    bad = request();
    bad.device = "";
    CHECK_EQUAL(Status::kInvalidArgument, engine->hello(bad, 1));
    const std::string long_device(129, 'd');
    bad = request();
    bad.device = long_device;
    CHECK_EQUAL(Status::kInvalidArgument, engine->hello(bad, 1));
    bad = request();
    bad.last_downlink = tether::server::kMaxSeq + 1;
    CHECK_EQUAL(Status::kInvalidArgument, engine->hello(bad, 1));
    bad = request();
    bad.oldest_uplink = tether::server::kMaxSeq + 1;
    CHECK_EQUAL(Status::kInvalidArgument, engine->hello(bad, 1));
    CHECK(link.take().empty());
    link.refuse_commands(true);
    CHECK_EQUAL(Status::kUnavailable, engine->hello(request(), 1));
}

TEST(RedisEngine, UplinkOfOneSessionGoesOutAsOneCallPerFlush) {
    start();
    serve(kSession, 1);
    serve(kOther, 2);
    UplinkMeta meta;
    meta.received_unix_ms = 5000;
    CHECK_EQUAL(UplinkResult::kQueued, engine->uplink_data(kSession, 118, bytes("a"), 1, meta));
    meta.has_age = true;
    meta.age_ms = 300;
    CHECK_EQUAL(UplinkResult::kQueued, engine->uplink_data(kSession, 119, bytes("bc"), 2, meta));
    meta.has_age = false;
    CHECK_EQUAL(UplinkResult::kQueued, engine->uplink_data(kOther, 118, nullptr, 0, meta));
    CHECK(link.take().empty());  // nothing before the flush
    engine->flush(20);
    const std::vector<std::string> sent = link.take();
    LONGS_EQUAL(2, sent.size());
    STRCMP_EQUAL(
        ("FCALL tether_uplink 1 " + kState + " 3 1000000 118 5000  a 119 5000 4700 bc").c_str(),
        sent[0].c_str());
    STRCMP_EQUAL(("FCALL tether_uplink 1 " + kOtherState + " 3 1000000 118 5000  ").c_str(),
                 sent[1].c_str());
    link.reply(uplink_ok(119, 2, 0, 0, 0));
    link.reply(uplink_ok(118, 0, 1, 0, 0));
    STRCMP_EQUAL((std::string("ack ") + kSession + " 119\nack " + kOther + " 118\n").c_str(),
                 lines_of(events.take()).c_str());
    const EngineStats totals = engine->stats();
    LONGS_EQUAL(2, totals.sessions);
    LONGS_EQUAL(2, totals.received);
    LONGS_EQUAL(1, totals.duplicates);
    engine->flush(30);
    CHECK(link.take().empty());  // nothing queued, nothing sent
}

TEST(RedisEngine, BatchesAreBoundedByCountAndBytes) {
    options.max_batch_messages = 2;
    options.max_batch_bytes = 4;
    options.uplink_maxlen = 0;
    start();
    serve();
    const UplinkMeta meta;
    CHECK_EQUAL(UplinkResult::kQueued, engine->uplink_data(kSession, 118, bytes("1"), 1, meta));
    CHECK_EQUAL(UplinkResult::kQueued, engine->uplink_data(kSession, 119, bytes("2"), 1, meta));
    CHECK_EQUAL(UplinkResult::kQueued, engine->uplink_data(kSession, 120, bytes("333"), 3, meta));
    CHECK_EQUAL(UplinkResult::kQueued, engine->uplink_data(kSession, 121, bytes("55555"), 5, meta));
    engine->flush(20);
    const std::vector<std::string> sent = link.take();
    LONGS_EQUAL(3, sent.size());
    STRCMP_EQUAL(("FCALL tether_uplink 1 " + kState + " 3 0 118 0  1 119 0  2").c_str(),
                 sent[0].c_str());
    STRCMP_EQUAL(("FCALL tether_uplink 1 " + kState + " 3 0 120 0  333").c_str(), sent[1].c_str());
    STRCMP_EQUAL(("FCALL tether_uplink 1 " + kState + " 3 0 121 0  55555").c_str(),
                 sent[2].c_str());
}

TEST(RedisEngine, GapsKeepTheirPlaceBetweenDataBatches) {
    start();
    serve();
    const UplinkMeta meta;
    CHECK_EQUAL(UplinkResult::kQueued, engine->uplink_data(kSession, 118, bytes("a"), 1, meta));
    CHECK_EQUAL(GapResult::kQueued, engine->uplink_gap(kSession, 119, 130, "dropped"));
    CHECK_EQUAL(UplinkResult::kQueued, engine->uplink_data(kSession, 131, bytes("b"), 1, meta));
    engine->flush(20);
    const std::vector<std::string> sent = link.take();
    LONGS_EQUAL(3, sent.size());
    STRCMP_EQUAL(("FCALL tether_uplink 1 " + kState + " 3 1000000 118 0  a").c_str(),
                 sent[0].c_str());
    STRCMP_EQUAL(("FCALL tether_gap 1 " + kState + " 3 119 130 dropped").c_str(), sent[1].c_str());
    STRCMP_EQUAL(("FCALL tether_uplink 1 " + kState + " 3 1000000 131 0  b").c_str(),
                 sent[2].c_str());
    link.reply(uplink_ok(118, 1, 0, 0, 0));
    link.reply(RedisValue::of_array({str("recorded"), num(130), num(1), num(12), default_state()}));
    link.reply(uplink_ok(131, 1, 0, 0, 0));
    STRCMP_EQUAL((std::string("ack ") + kSession + " 118\nack " + kSession + " 130\nack " +
                  kSession + " 131\n")
                     .c_str(),
                 lines_of(events.take()).c_str());
    LONGS_EQUAL(1, engine->stats().gap_count);
    LONGS_EQUAL(12, engine->stats().missing_seqs);
}

TEST(RedisEngine, UplinkRefusesWhatItCannotQueue) {
    options.max_payload_size = 4;
    start();
    const UplinkMeta meta;
    CHECK_EQUAL(UplinkResult::kUnknownSession,
                engine->uplink_data(kSession, 1, bytes("a"), 1, meta));
    CHECK_EQUAL(GapResult::kUnknownSession, engine->uplink_gap(kSession, 1, 2, ""));
    serve();
    CHECK_EQUAL(UplinkResult::kInvalidArgument,
                engine->uplink_data(kSession, 0, bytes("a"), 1, meta));
    CHECK_EQUAL(UplinkResult::kInvalidArgument,
                engine->uplink_data(kSession, tether::server::kMaxSeq + 1, bytes("a"), 1, meta));
    CHECK_EQUAL(UplinkResult::kInvalidArgument, engine->uplink_data(kSession, 1, nullptr, 1, meta));
    CHECK_EQUAL(UplinkResult::kTooLarge, engine->uplink_data(kSession, 1, bytes("abcde"), 5, meta));
    CHECK_EQUAL(GapResult::kInvalidArgument, engine->uplink_gap(kSession, 0, 2, ""));
    CHECK_EQUAL(GapResult::kInvalidArgument, engine->uplink_gap(kSession, 3, 2, ""));
    CHECK_EQUAL(GapResult::kInvalidArgument,
                engine->uplink_gap(kSession, 1, 2, std::string(65, 'r')));
    link.drop("gone");
    (void)events.take();
    CHECK_EQUAL(UplinkResult::kUnknownSession,
                engine->uplink_data(kSession, 118, bytes("a"), 1, meta));
}

TEST(RedisEngine, NotConnectedUplinkIsAnIoError) {
    start();
    serve();
    // The link went down and the engine has not heard yet: nothing can be queued.
    link.stop();
    const UplinkMeta meta;
    CHECK_EQUAL(UplinkResult::kIoError, engine->uplink_data(kSession, 118, bytes("a"), 1, meta));
    CHECK_EQUAL(GapResult::kIoError, engine->uplink_gap(kSession, 118, 120, ""));
    CHECK_EQUAL(Status::kIoError, engine->downlink_acked(kSession, 41));
    CHECK_EQUAL(Status::kUnavailable, engine->push_downlink(kSession, bytes("x"), 1, 1));
}

TEST(RedisEngine, ReplicasAcknowledgeOnlyAfterWaitConfirms) {
    CHECK(tether::server::parse_redis_durability("replicas:1", &options));
    start();
    CHECK_EQUAL(Status::kOk, engine->hello(request(), 7));
    std::vector<std::string> sent = link.take();
    LONGS_EQUAL(2, sent.size());  // the hello and its replay: no WAIT yet
    link.reply(hello_reply("accepted", 1, 117, 0, 0, 0, 0, 40, default_state()));
    link.reply(RedisValue::of_array({}));
    CHECK(events.lines.empty());
    sent = link.take();
    LONGS_EQUAL(2, sent.size());  // SADD, and one WAIT covering it and the hello
    STRCMP_EQUAL("WAIT 1 1000", sent[1].c_str());
    link.reply(num(1));  // SADD
    CHECK(events.lines.empty());
    link.reply(num(1));  // the WAIT
    STRCMP_EQUAL("hello 7 ok accepted\n", lines_of(events.take()).c_str());

    const UplinkMeta meta;
    CHECK_EQUAL(UplinkResult::kQueued, engine->uplink_data(kSession, 118, bytes("a"), 1, meta));
    engine->flush(20);
    sent = link.take();
    LONGS_EQUAL(2, sent.size());
    STRCMP_EQUAL("WAIT 1 1000", sent[1].c_str());
    link.reply(uplink_ok(118, 1, 0, 0, 0));
    CHECK(events.lines.empty());  // replied, not yet on a replica
    link.reply(num(1));
    STRCMP_EQUAL((std::string("ack ") + kSession + " 118\n").c_str(),
                 lines_of(events.take()).c_str());
    LONGS_EQUAL(0, engine->wait_shortfalls());
}

TEST(RedisEngine, AWaitShortfallAcknowledgesNothingAndIsRetriedAtTheNextFlush) {
    CHECK(tether::server::parse_redis_durability("replicas:2", &options));
    start();
    CHECK_EQUAL(Status::kOk, engine->hello(request(), 7));
    link.reply(hello_reply("accepted", 1, 117, 0, 0, 0, 0, 40, default_state()));
    link.reply(RedisValue::of_array({}));
    (void)link.take();
    link.reply(num(1));  // SADD
    link.reply(num(2));  // the WAIT behind it
    STRCMP_EQUAL("hello 7 ok accepted\n", lines_of(events.take()).c_str());

    const UplinkMeta meta;
    CHECK_EQUAL(UplinkResult::kQueued, engine->uplink_data(kSession, 118, bytes("a"), 1, meta));
    engine->flush(20);
    (void)link.take();
    link.reply(uplink_ok(118, 1, 0, 0, 0));
    link.reply(num(1));  // one replica of two
    CHECK(events.lines.empty());
    LONGS_EQUAL(1, engine->wait_shortfalls());
    LONGS_EQUAL(1, logged.size());
    STRCMP_CONTAINS("redis_wait_shortfall wanted=2 confirmed=1", logged[0].c_str());

    engine->flush(220);  // nothing new to write: only the WAIT again
    std::vector<std::string> sent = link.take();
    LONGS_EQUAL(1, sent.size());
    STRCMP_EQUAL("WAIT 2 1000", sent[0].c_str());
    link.reply(RedisValue::of_error("ERR WAIT cannot be used with replica instances"));
    LONGS_EQUAL(2, engine->wait_shortfalls());
    LONGS_EQUAL(1, logged.size());  // logged once per streak
    engine->flush(420);
    sent = link.take();
    LONGS_EQUAL(1, sent.size());
    link.reply(num(2));
    STRCMP_EQUAL((std::string("ack ") + kSession + " 118\n").c_str(),
                 lines_of(events.take()).c_str());
    engine->flush(620);
    CHECK(link.take().empty());  // nothing awaits: no WAIT
}

TEST(RedisEngine, ALostConnectionFailsEverythingPending) {
    start();
    serve();
    CHECK_EQUAL(Status::kOk, engine->hello(request(kOther), 8));
    CHECK_EQUAL(Status::kOk, engine->push_downlink(kSession, bytes("x"), 1, 9));
    const UplinkMeta meta;
    CHECK_EQUAL(UplinkResult::kQueued, engine->uplink_data(kSession, 118, bytes("a"), 1, meta));
    link.drop("Connection reset by peer");
    STRCMP_EQUAL((std::string("hello 8 unavailable\npushed 9 unavailable 0\nfailed ") + kSession +
                  " unavailable\n")
                     .c_str(),
                 lines_of(events.take()).c_str());
    CHECK_FALSE(engine->ready());
    CHECK(engine->sessions().empty());
    STRCMP_CONTAINS("redis_down reason=Connection reset by peer", logged.back().c_str());
    (void)link.take();
    link.connect();  // the library is loaded again before anything else
    const std::vector<std::string> sent = link.take();
    LONGS_EQUAL(1, sent.size());
    CHECK(sent[0].rfind("FUNCTION LOAD REPLACE", 0) == 0);
    CHECK_FALSE(engine->ready());
    link.reply(str("tether"));
    CHECK(engine->ready());
}

TEST(RedisEngine, ASupersedeMessageFromAnotherInstanceSupersedesTheLocalConnection) {
    start();
    serve();                                                         // epoch 3
    link.publish("t:supersede", std::string(kSession) + " 4 i1 9");  // its own: ignored
    link.publish("t:supersede", std::string(kSession) + " 2 i2 2");  // an older hello: ignored
    link.publish("t:supersede", std::string(kSession) + " 3 i2 3");  // this very hello: ignored
    link.publish("t:supersede", std::string(kOther) + " 9 i2 9");    // not served here
    link.publish("t:supersede", "garbage");
    link.publish("t:supersede", std::string(kSession) + " x i2 9");
    link.publish("t:supersede", std::string(kSession) + " 9 i2 x");
    link.publish("t:supersede", std::string(kSession) + " 9 i2");  // no epoch
    link.publish("other:supersede", std::string(kSession) + " 9 i2 9");
    link.publish("t", "x");
    link.publish("t:unknown", "x");
    CHECK(events.lines.empty());
    LONGS_EQUAL(1, engine->sessions().size());
    // The same version through another instance (a device that reconnected
    // there): a later epoch, so the connection here has lost the session.
    link.publish("t:supersede", std::string(kSession) + " 3 i2 4");
    STRCMP_EQUAL((std::string("superseded ") + kSession + " 3\n").c_str(),
                 lines_of(events.take()).c_str());
    CHECK(engine->sessions().empty());
}

TEST(RedisEngine, TheVersionFenceReportsSuperseded) {
    start();
    serve();
    const UplinkMeta meta;
    CHECK_EQUAL(UplinkResult::kQueued, engine->uplink_data(kSession, 118, bytes("a"), 1, meta));
    engine->flush(20);
    (void)link.take();
    link.reply(RedisValue::of_array({str("superseded"), num(5)}));
    STRCMP_EQUAL((std::string("superseded ") + kSession + " 5\n").c_str(),
                 lines_of(events.take()).c_str());
    CHECK(engine->sessions().empty());
}

TEST(RedisEngine, AFenceAnswerForAnEarlierHelloLeavesTheNewerOneServed) {
    start();
    serve();  // epoch 3
    const UplinkMeta meta;
    CHECK_EQUAL(UplinkResult::kQueued, engine->uplink_data(kSession, 118, bytes("a"), 1, meta));
    engine->flush(20);
    (void)link.take();
    // A new hello of the session here (epoch 4) before the write's answer came.
    CHECK_EQUAL(Status::kOk, engine->hello(request(), 8));
    (void)link.take();
    link.reply(RedisValue::of_array({str("superseded"), num(3)}));  // the epoch-3 write
    RedisValue state = default_state();
    for (std::size_t i = 0; i + 1 < state.elements.size(); i += 2) {
        if (state.elements[i].text == "epoch") {
            state.elements[i + 1] = str("4");
        }
    }
    link.reply(hello_reply("accepted", 1, 117, 0, 0, 0, 0, 40, state));
    link.reply(RedisValue::of_array({}));
    (void)link.take();
    link.reply(num(0));
    // The epoch-3 connection is told it lost the session; the new hello is served.
    STRCMP_EQUAL((std::string("superseded ") + kSession + " 3\nhello 8 ok accepted\n").c_str(),
                 lines_of(events.take()).c_str());
    LONGS_EQUAL(1, engine->sessions().size());
}

TEST(RedisEngine, AWriteErrorFailsItsSession) {
    start();
    serve(kSession, 1);
    serve(kOther, 2);
    const UplinkMeta meta;
    CHECK_EQUAL(UplinkResult::kQueued, engine->uplink_data(kSession, 118, bytes("a"), 1, meta));
    CHECK_EQUAL(UplinkResult::kQueued, engine->uplink_data(kOther, 118, bytes("a"), 1, meta));
    engine->flush(20);
    (void)link.take();
    link.reply(RedisValue::of_error("ERR OOM command not allowed"));
    link.reply(RedisValue::of_error("NOTFOUND tether: unknown session"));
    STRCMP_EQUAL(
        (std::string("failed ") + kSession + " io_error\nfailed " + kOther + " not_found\n")
            .c_str(),
        lines_of(events.take()).c_str());
    serve(kSession, 3);
    CHECK_EQUAL(GapResult::kQueued, engine->uplink_gap(kSession, 118, 120, "dropped"));
    engine->flush(30);
    (void)link.take();
    link.reply(RedisValue::of_array({str("recorded"), num(120)}));  // malformed
    STRCMP_EQUAL((std::string("failed ") + kSession + " io_error\n").c_str(),
                 lines_of(events.take()).c_str());
}

TEST(RedisEngine, ADownlinkNotificationFetchesTheNewMessages) {
    start();
    serve();
    link.publish("t:downlink", kOther);  // not served here: nothing
    CHECK(link.take().empty());
    link.publish("t:downlink", kSession);
    link.publish("t:downlink", kSession);  // while fetching: once more after it
    std::vector<std::string> sent = link.take();
    LONGS_EQUAL(1, sent.size());
    STRCMP_EQUAL(("XRANGE " + kDown + " (42-0 + COUNT 1024").c_str(), sent[0].c_str());
    link.reply(RedisValue::of_array({entry(42, "old"), entry(43, "new")}));
    STRCMP_EQUAL((std::string("downlink ") + kSession + "\n").c_str(),
                 lines_of(events.take()).c_str());
    sent = link.take();
    LONGS_EQUAL(1, sent.size());
    STRCMP_EQUAL(("XRANGE " + kDown + " (43-0 + COUNT 1024").c_str(), sent[0].c_str());
    link.reply(RedisValue::of_array({}));
    CHECK(events.lines.empty());  // nothing new
    const DownlinkMessage* next = engine->downlink_next(kSession, 42);
    CHECK(next != nullptr);
    LONGS_EQUAL(43, next->seq);
    SessionStats stats;
    CHECK(engine->session_stats(kSession, &stats));
    LONGS_EQUAL(3, stats.downlink_held);
    LONGS_EQUAL(41, stats.downlink_oldest_held);
    LONGS_EQUAL(43, stats.downlink_last_seq);
    link.publish("t:downlink", kSession);
    (void)link.take();
    link.reply(RedisValue::of_error("ERR wrong type"));
    STRCMP_EQUAL((std::string("failed ") + kSession + " io_error\n").c_str(),
                 lines_of(events.take()).c_str());
}

TEST(RedisEngine, ADownlinkNotificationDuringTheHelloIsNotLost) {
    start();
    CHECK_EQUAL(Status::kOk, engine->hello(request(), 7));
    (void)link.take();
    link.publish("t:downlink", kSession);
    CHECK(link.take().empty());
    link.reply(hello_reply("accepted", 1, 117, 0, 0, 0, 0, 40, default_state()));
    link.reply(RedisValue::of_array({entry(41, "a"), entry(42, "b")}));
    const std::vector<std::string> sent = link.take();
    LONGS_EQUAL(2, sent.size());
    STRCMP_EQUAL(("XRANGE " + kDown + " (42-0 + COUNT 1024").c_str(), sent[1].c_str());
}

TEST(RedisEngine, HeldMessagesStayWithinTheReplayCapacity) {
    options.replay_capacity = 2;
    start();
    serve();
    link.publish("t:downlink", kSession);
    (void)link.take();
    link.reply(RedisValue::of_array({entry(43, "c"), entry(44, "d")}));
    // A full page: the rest is asked for.
    const std::vector<std::string> sent = link.take();
    LONGS_EQUAL(1, sent.size());
    STRCMP_EQUAL(("XRANGE " + kDown + " (44-0 + COUNT 2").c_str(), sent[0].c_str());
    SessionStats stats;
    CHECK(engine->session_stats(kSession, &stats));
    LONGS_EQUAL(2, stats.downlink_held);
    LONGS_EQUAL(43, stats.downlink_oldest_held);
}

TEST(RedisEngine, PushAnswersWithTheAssignedSeq) {
    options.max_payload_size = 8;
    start();
    CHECK_EQUAL(Status::kOk, engine->push_downlink(kSession, bytes("reboot"), 6, 11));
    const std::vector<std::string> sent = link.take();
    LONGS_EQUAL(1, sent.size());
    STRCMP_EQUAL(("FCALL tether_push 1 " + kState + " reboot 1700 1024").c_str(), sent[0].c_str());
    link.reply(num(43));
    CHECK_EQUAL(Status::kOk, engine->push_downlink(kSession, nullptr, 0, 12));
    link.reply(RedisValue::of_error("NOTFOUND tether: unknown session"));
    CHECK_EQUAL(Status::kOk, engine->push_downlink(kSession, nullptr, 0, 13));
    link.reply(RedisValue::of_error("ERR tether: downlink seqs exhausted"));
    STRCMP_EQUAL("pushed 11 ok 43\npushed 12 not_found 0\npushed 13 io_error 0\n",
                 lines_of(events.take()).c_str());
    LONGS_EQUAL(1, engine->stats().downlink_pushed);
    CHECK_EQUAL(Status::kTooLarge, engine->push_downlink(kSession, bytes("123456789"), 9, 14));
    CHECK_EQUAL(Status::kInvalidArgument, engine->push_downlink("nope", bytes("1"), 1, 14));
}

TEST(RedisEngine, DownlinkAcksGoOutAtOnceAndDropWhatIsHeld) {
    start();
    serve();
    CHECK_EQUAL(Status::kNotFound, engine->downlink_acked(kOther, 1));
    CHECK_EQUAL(Status::kInvalidArgument, engine->downlink_acked(kSession, 43));
    CHECK_EQUAL(Status::kOk, engine->downlink_acked(kSession, 39));  // below downlink_acked
    CHECK(link.take().empty());
    CHECK_EQUAL(Status::kOk, engine->downlink_acked(kSession, 41));
    const std::vector<std::string> sent = link.take();
    LONGS_EQUAL(1, sent.size());
    STRCMP_EQUAL(("FCALL tether_ack_downlink 1 " + kState + " 3 41").c_str(), sent[0].c_str());
    CHECK_EQUAL(Status::kOk, engine->downlink_acked(kSession, 41));  // already sent
    CHECK(link.take().empty());
    const DownlinkMessage* next = engine->downlink_next(kSession, 0);
    CHECK(next != nullptr);
    LONGS_EQUAL(42, next->seq);
    link.reply(RedisValue::of_array(
        {str("ok"), num(41), state({{"downlink_last", "42"}, {"downlink_acked", "41"}})}));
    SessionStats stats;
    CHECK(engine->session_stats(kSession, &stats));
    LONGS_EQUAL(41, stats.downlink_acked);
    CHECK(events.lines.empty());
    CHECK_EQUAL(Status::kOk, engine->downlink_acked(kSession, 42));
    (void)link.take();
    link.reply(RedisValue::of_array({str("invalid"), num(41)}));
    STRCMP_EQUAL((std::string("failed ") + kSession + " invalid_argument\n").c_str(),
                 lines_of(events.take()).c_str());
}

TEST(RedisEngine, SessionStatsComeFromTheLastAnswer) {
    start();
    serve();
    SessionStats stats;
    CHECK_FALSE(engine->session_stats(kOther, &stats));
    CHECK_FALSE(engine->session_stats(kSession, nullptr));
    CHECK(engine->session_stats(kSession, &stats));
    STRCMP_EQUAL(kSession, stats.session.c_str());
    STRCMP_EQUAL("pi-17", stats.device.c_str());
    STRCMP_EQUAL("alice", stats.owner.c_str());
    LONGS_EQUAL(3, stats.version);
    LONGS_EQUAL(100, stats.received);
    LONGS_EQUAL(2, stats.duplicates);
    LONGS_EQUAL(117, stats.highest_seq);
    LONGS_EQUAL(118, stats.next_expected);
    LONGS_EQUAL(117, stats.acknowledgeable);
    LONGS_EQUAL(1, stats.gap_count);
    LONGS_EQUAL(17, stats.missing_seqs);
    LONGS_EQUAL(42, stats.downlink_last_seq);
    LONGS_EQUAL(40, stats.downlink_acked);
    LONGS_EQUAL(2, stats.downlink_held);
    LONGS_EQUAL(41, stats.downlink_oldest_held);
    CHECK(stats.gaps.empty());
    const EngineStats totals = engine->stats();
    LONGS_EQUAL(1, totals.sessions);
    CHECK(totals.ready);
    CHECK_FALSE(totals.failed);
}

TEST(RedisEngine, ReleaseSendsWhatIsQueuedAndForgetsTheSession) {
    start();
    serve();
    const UplinkMeta meta;
    CHECK_EQUAL(UplinkResult::kQueued, engine->uplink_data(kSession, 118, bytes("a"), 1, meta));
    engine->release(kSession);
    engine->release(kOther);  // unknown: nothing
    const std::vector<std::string> sent = link.take();
    LONGS_EQUAL(1, sent.size());
    CHECK(sent[0].rfind("FCALL tether_uplink", 0) == 0);
    CHECK(engine->sessions().empty());
    link.reply(uplink_ok(118, 1, 0, 0, 0));  // counted, no longer acknowledged
    CHECK(events.lines.empty());
    LONGS_EQUAL(1, engine->stats().received);
}

TEST(RedisEngine, ANewHelloOfAServedSessionSendsTheOlderDataFirst) {
    start();
    serve();
    const UplinkMeta meta;
    CHECK_EQUAL(UplinkResult::kQueued, engine->uplink_data(kSession, 118, bytes("a"), 1, meta));
    CHECK_EQUAL(Status::kOk, engine->hello(request(kSession, 4), 9));
    const std::vector<std::string> sent = link.take();
    LONGS_EQUAL(3, sent.size());
    CHECK(sent[0].rfind("FCALL tether_uplink", 0) == 0);
    CHECK(sent[1].rfind("FCALL tether_hello", 0) == 0);
}

TEST(RedisEngine, AnUnexpectedReplyIsCountedAndIgnored) {
    start();
    link.reply_with_tag(999, num(1));
    LONGS_EQUAL(1, engine->stats().store_errors);
    STRCMP_CONTAINS("unexpected_reply", logged.back().c_str());
}

TEST(RedisEngine, DrivesTheLinkAsAPollable) {
    start();
    link.set_fd(5);
    link.set_deadline(true, 1234);
    tether::PollRequest requests[4];
    LONGS_EQUAL(1, engine->poll_requests(requests, 4));
    LONGS_EQUAL(5, requests[0].fd);
    tether::TimeMs at = 0;
    CHECK(engine->next_deadline(&at));
    LONGS_EQUAL(1234, at);
    CHECK_FALSE(engine->has_buffered_input());
    engine->service(77);
    LONGS_EQUAL(1, link.serviced());
    LONGS_EQUAL(77, link.last_service());
}

TEST(RedisEngine, CloseSendsWhatIsQueuedAndStopsTheLink) {
    start();
    serve();
    const UplinkMeta meta;
    CHECK_EQUAL(UplinkResult::kQueued, engine->uplink_data(kSession, 118, bytes("a"), 1, meta));
    engine->close();
    LONGS_EQUAL(1, link.take().size());
    CHECK(link.stopped());
}

// --- Device state --------------------------------------------------------------

TEST(RedisEngine, DesiredSinceSendsTheHeldIncrements) {
    start();
    CHECK_EQUAL(Status::kOk, engine->desired_since(kSession, 2, 5));
    const std::vector<std::string> sent = link.take();
    LONGS_EQUAL(2, sent.size());
    STRCMP_EQUAL(kStateRead.c_str(), sent[0].c_str());
    STRCMP_EQUAL(("XRANGE " + kDesired + " (2-0 + COUNT 64").c_str(), sent[1].c_str());
    // A document larger than the two increments as messages.
    const std::string document = R"({"rate":10,"sensors":["t","h"],"threshold":3.5,"label":")" +
                                 std::string(200, 'l') + R"("})";
    link.reply(documents({str("3"), str("4"), str(document), str("2"), nil(), nil(), nil()}));
    CHECK(events.lines.empty());  // answered with the increments
    // Version 5 was set between the two reads: not part of version 4.
    link.reply(
        RedisValue::of_array({increment(3, R"({"rate":10})"), increment(4, R"({"threshold":3.5})"),
                              increment(5, R"({"rate":20})")}));
    STRCMP_EQUAL("since 5 ok 3:p:{\"rate\":10} 4:p:{\"threshold\":3.5}\n",
                 lines_of(events.take()).c_str());
}

TEST(RedisEngine, DesiredSinceSendsASnapshotWhenAnIncrementIsGone) {
    start();
    CHECK_EQUAL(Status::kOk, engine->desired_since(kSession, 1, 6));
    const std::string document = R"({"rate":10,"threshold":3.5})";
    link.reply(documents({str("3"), str("70"), str(document), nil(), nil(), nil(), nil()}));
    link.reply(RedisValue::of_array({increment(7, R"({"rate":1})"), increment(8, "{}")}));
    STRCMP_EQUAL(("since 6 ok 70:s:" + document + "\n").c_str(), lines_of(events.take()).c_str());
    // Up to date, or no document at all: nothing to send.
    CHECK_EQUAL(Status::kOk, engine->desired_since(kSession, 70, 7));
    link.reply(documents({str("3"), str("70"), str(document), nil(), nil(), nil(), nil()}));
    link.reply(RedisValue::of_array({}));
    CHECK_EQUAL(Status::kOk, engine->desired_since(kSession, 0, 8));
    link.reply(documents({str("3"), nil(), nil(), nil(), nil(), nil(), nil()}));
    link.reply(RedisValue::of_array({}));
    STRCMP_EQUAL("since 7 ok\nsince 8 ok\n", lines_of(events.take()).c_str());
}

TEST(RedisEngine, DesiredSinceAnswersUnknownSessionsAndFailures) {
    start();
    CHECK_EQUAL(Status::kOk, engine->desired_since(kSession, 0, 1));
    link.reply(documents({nil(), nil(), nil(), nil(), nil(), nil(), nil()}));  // no hello ever
    link.reply(RedisValue::of_array({}));
    CHECK_EQUAL(Status::kOk, engine->desired_since(kSession, 0, 2));
    link.reply(RedisValue::of_error("ERR wrong type"));
    link.reply(RedisValue::of_array({}));
    CHECK_EQUAL(Status::kOk, engine->desired_since(kSession, 0, 3));
    link.reply(documents({str("3"), str("x"), nil(), nil(), nil(), nil(), nil()}));
    link.reply(RedisValue::of_array({}));
    CHECK_EQUAL(Status::kOk, engine->desired_since(kSession, 0, 4));
    link.reply(documents({str("3"), str("1"), str("{}"), nil(), nil(), nil(), nil()}));
    link.reply(RedisValue::of_array({str("not an entry")}));
    STRCMP_EQUAL("since 1 not_found\nsince 2 io_error\nsince 3 io_error\nsince 4 io_error\n",
                 lines_of(events.take()).c_str());
    LONGS_EQUAL(3, engine->stats().store_errors);
    // A session id that cannot exist: answered from the next service(), never
    // from inside the call.
    (void)link.take();
    CHECK_EQUAL(Status::kOk, engine->desired_since("nope", 0, 5));
    CHECK(link.take().empty());
    CHECK(events.lines.empty());
    CHECK(engine->has_buffered_input());  // the loop must not block before it goes out
    tether::TimeMs at = 0;
    CHECK(engine->next_deadline(&at));
    LONGS_EQUAL(10, at);
    engine->service(20);
    CHECK_FALSE(engine->has_buffered_input());
    CHECK_FALSE(engine->next_deadline(&at));
    STRCMP_EQUAL("since 5 not_found\n", lines_of(events.take()).c_str());
}

TEST(RedisEngine, SetDesiredMergesHereAndWritesWithTheVersionRead) {
    start();
    CHECK_EQUAL(Status::kOk,
                engine->set_desired(kSession, R"( { "b" : [1, 2], "a": null } )", false, 0, 9));
    std::vector<std::string> sent = link.take();
    LONGS_EQUAL(1, sent.size());
    STRCMP_EQUAL(kStateRead.c_str(), sent[0].c_str());
    link.reply(documents(
        {str("3"), str("4"), str(R"({"a":1,"n":9007199254740991})"), nil(), nil(), nil(), nil()}));
    sent = link.take();
    LONGS_EQUAL(1, sent.size());
    // The merge keeps arrays and large numbers exact (Lua's cjson would not).
    STRCMP_EQUAL(("FCALL tether_desired_put 1 " + kState +
                  R"( 4 {"n":9007199254740991,"b":[1,2]} {"b":[1,2],"a":null} 64)")
                     .c_str(),
                 sent[0].c_str());
    CHECK(events.lines.empty());
    link.reply(pair("ok", 5));
    STRCMP_EQUAL("set 9 ok 5\n", lines_of(events.take()).c_str());
}

TEST(RedisEngine, SetDesiredReadsAgainWhenAnotherWriterCameFirst) {
    start();
    CHECK_EQUAL(Status::kOk, engine->set_desired(kSession, R"({"a":2})", false, 0, 9));
    link.reply(documents({str("3"), str("4"), str(R"({"a":1})"), nil(), nil(), nil(), nil()}));
    (void)link.take();
    link.reply(pair("conflict", 5));
    std::vector<std::string> sent = link.take();
    LONGS_EQUAL(1, sent.size());
    STRCMP_EQUAL(kStateRead.c_str(), sent[0].c_str());
    link.reply(documents({str("3"), str("5"), str(R"({"c":3})"), nil(), nil(), nil(), nil()}));
    sent = link.take();
    LONGS_EQUAL(1, sent.size());
    STRCMP_EQUAL(
        ("FCALL tether_desired_put 1 " + kState + R"( 5 {"c":3,"a":2} {"a":2} 64)").c_str(),
        sent[0].c_str());
    link.reply(pair("ok", 6));
    STRCMP_EQUAL("set 9 ok 6\n", lines_of(events.take()).c_str());

    // A document that keeps changing: kRedisDesiredAttempts reads, then unavailable.
    CHECK_EQUAL(Status::kOk, engine->set_desired(kSession, R"({"a":3})", false, 0, 10));
    for (unsigned read = 1; read <= tether::server::kRedisDesiredAttempts; ++read) {
        link.reply(documents(
            {str("3"), str(std::to_string(10 + read)), str("{}"), nil(), nil(), nil(), nil()}));
        link.reply(pair("conflict", 11 + read));
        CHECK(read == tether::server::kRedisDesiredAttempts || events.lines.empty());
    }
    STRCMP_EQUAL("set 10 unavailable 19\n", lines_of(events.take()).c_str());
    CHECK_EQUAL(0, link.unanswered());
    STRCMP_CONTAINS("redis_desired_contended", logged.back().c_str());
}

TEST(RedisEngine, SetDesiredWithAnExpectedVersionConflictsInsteadOfRetrying) {
    start();
    CHECK_EQUAL(Status::kOk, engine->set_desired(kSession, R"({"a":2})", true, 3, 1));
    link.reply(documents({str("3"), str("4"), str(R"({"a":1})"), nil(), nil(), nil(), nil()}));
    CHECK(link.take().size() == 1);  // only the read: no write
    STRCMP_EQUAL("set 1 conflict 4\n", lines_of(events.take()).c_str());
    CHECK_EQUAL(Status::kOk, engine->set_desired(kSession, R"({"a":2})", true, 4, 2));
    link.reply(documents({str("3"), str("4"), str(R"({"a":1})"), nil(), nil(), nil(), nil()}));
    const std::vector<std::string> sent = link.take();
    LONGS_EQUAL(2, sent.size());
    STRCMP_EQUAL(("FCALL tether_desired_put 1 " + kState + R"( 4 {"a":2} {"a":2} 64)").c_str(),
                 sent[1].c_str());
    link.reply(pair("conflict", 5));  // another writer between the read and the write
    STRCMP_EQUAL("set 2 conflict 5\n", lines_of(events.take()).c_str());
    CHECK(link.take().empty());
    // The first version of a new session: expected 0.
    CHECK_EQUAL(Status::kOk, engine->set_desired(kSession, R"({"a":1})", true, 0, 3));
    link.reply(documents({str("3"), nil(), nil(), nil(), nil(), nil(), nil()}));
    STRCMP_EQUAL(("FCALL tether_desired_put 1 " + kState + R"( 0 {"a":1} {"a":1} 64)").c_str(),
                 link.take()[1].c_str());
    link.reply(pair("ok", 1));
    STRCMP_EQUAL("set 3 ok 1\n", lines_of(events.take()).c_str());
}

TEST(RedisEngine, SetDesiredRefusesBadPatchesAndUnknownSessions) {
    start();
    CHECK_EQUAL(Status::kOk, engine->set_desired(kSession, "{not json", false, 0, 1));
    CHECK_EQUAL(Status::kOk, engine->set_desired(kSession, "[1]", false, 0, 2));
    CHECK_EQUAL(Status::kOk, engine->set_desired(kSession, R"({"a":1,"a":2})", false, 0, 3));
    const std::string huge = R"({"a":")" + std::string(8200, 'x') + R"("})";
    CHECK_EQUAL(Status::kOk, engine->set_desired(kSession, huge, false, 0, 4));
    CHECK_EQUAL(Status::kOk, engine->set_desired("not-a-session", "{}", false, 0, 5));
    CHECK(link.take().empty());
    CHECK(events.lines.empty());  // nothing from inside the calls
    engine->service(20);
    STRCMP_EQUAL(
        "set 1 invalid_argument 0\nset 2 invalid_argument 0\nset 3 invalid_argument 0\n"
        "set 4 too_large 0\nset 5 not_found 0\n",
        lines_of(events.take()).c_str());
    // The merge's result too large.
    const std::string half = R"({"b":")" + std::string(5000, 'y') + R"("})";
    CHECK_EQUAL(Status::kOk, engine->set_desired(kSession, half, false, 0, 6));
    link.reply(documents({str("3"), str("2"), str(R"({"a":")" + std::string(5000, 'x') + R"("})"),
                          nil(), nil(), nil(), nil()}));
    // No hello ever: no state hash.
    CHECK_EQUAL(Status::kOk, engine->set_desired(kSession, "{}", false, 0, 7));
    link.reply(documents({nil(), nil(), nil(), nil(), nil(), nil(), nil()}));
    // The session went between the read and the write; then a failed write;
    // then a stored document that is no object.
    CHECK_EQUAL(Status::kOk, engine->set_desired(kSession, "{}", false, 0, 8));
    link.reply(documents({str("3"), nil(), nil(), nil(), nil(), nil(), nil()}));
    link.reply(RedisValue::of_error("NOTFOUND tether: unknown session"));
    CHECK_EQUAL(Status::kOk, engine->set_desired(kSession, "{}", false, 0, 9));
    link.reply(documents({str("3"), nil(), nil(), nil(), nil(), nil(), nil()}));
    link.reply(RedisValue::of_error("ERR OOM command not allowed"));
    CHECK_EQUAL(Status::kOk, engine->set_desired(kSession, "{}", false, 0, 10));
    link.reply(documents({str("3"), str("1"), str("[]"), nil(), nil(), nil(), nil()}));
    CHECK_EQUAL(Status::kOk, engine->set_desired(kSession, "{}", false, 0, 11));
    link.reply(RedisValue::of_error("ERR wrong type"));
    STRCMP_EQUAL(
        "set 6 too_large 0\nset 7 not_found 0\nset 8 not_found 0\nset 9 io_error 0\n"
        "set 10 io_error 0\nset 11 io_error 0\n",
        lines_of(events.take()).c_str());
    CHECK_EQUAL(0, link.unanswered());
}

TEST(RedisEngine, AReportIsMergedHereAndWrittenWithTheConnectionsEpoch) {
    start();
    serve();  // epoch 3
    ReportRequest request;
    request.session = kSession;
    request.id = "00000000000000a1";
    request.base = 2;
    request.document = R"({"temp":21.5,"fan":null})";
    CHECK_EQUAL(Status::kOk, engine->report(request, 4));
    std::vector<std::string> sent = link.take();
    LONGS_EQUAL(1, sent.size());
    STRCMP_EQUAL(kStateRead.c_str(), sent[0].c_str());
    link.reply(documents({str("3"), nil(), nil(), nil(), str("2"), str(R"({"temp":20,"fan":1})"),
                          str("00000000000000a0")}));
    sent = link.take();
    LONGS_EQUAL(1, sent.size());
    STRCMP_EQUAL(
        ("FCALL tether_report 1 " + kState + R"( 3 2 00000000000000a1 {"temp":21.5})").c_str(),
        sent[0].c_str());
    CHECK(events.lines.empty());
    link.reply(pair("ok", 3));
    STRCMP_EQUAL("reported 4 ok applied 3\n", lines_of(events.take()).c_str());
    // A whole document replaces the reported one.
    request.id = "00000000000000a2";
    request.base = 3;
    request.whole = true;
    request.document = R"({"x":[]})";
    CHECK_EQUAL(Status::kOk, engine->report(request, 5));
    link.reply(documents({str("3"), nil(), nil(), nil(), str("3"), str(R"({"temp":21.5})"),
                          str("00000000000000a1")}));
    STRCMP_EQUAL(("FCALL tether_report 1 " + kState + R"( 3 3 00000000000000a2 {"x":[]})").c_str(),
                 link.take()[1].c_str());
    link.reply(pair("ok", 4));
    STRCMP_EQUAL("reported 5 ok applied 4\n", lines_of(events.take()).c_str());
}

TEST(RedisEngine, RepeatedAndStaleReportsAreAnsweredWithoutRetrying) {
    start();
    serve();
    ReportRequest request;
    request.session = kSession;
    request.id = "00000000000000a1";
    request.base = 2;
    request.document = R"({"temp":22})";
    // The last report applied, resent after a lost answer: its version, no write.
    CHECK_EQUAL(Status::kOk, engine->report(request, 1));
    link.reply(documents(
        {str("3"), nil(), nil(), nil(), str("3"), str(R"({"temp":22})"), str("00000000000000a1")}));
    // A base that is not current: the current document, no write.
    request.id = "00000000000000a2";
    CHECK_EQUAL(Status::kOk, engine->report(request, 2));
    link.reply(documents(
        {str("3"), nil(), nil(), nil(), str("3"), str(R"({"temp":22})"), str("00000000000000a1")}));
    LONGS_EQUAL(2, link.take().size());  // the two reads only
    STRCMP_EQUAL("reported 1 ok repeated 3\nreported 2 ok stale 3 {\"temp\":22}\n",
                 lines_of(events.take()).c_str());
    // The base moved between the read and the write: stale, and not tried again.
    CHECK_EQUAL(Status::kOk, engine->report(request, 3));
    link.reply(documents({str("3"), nil(), nil(), nil(), str("2"), nil(), nil()}));
    (void)link.take();
    link.reply(RedisValue::of_array({str("stale"), num(3), str(R"({"other":1})")}));
    CHECK(link.take().empty());
    // And the same id applied meanwhile by another connection of the device.
    CHECK_EQUAL(Status::kOk, engine->report(request, 4));
    link.reply(documents({str("3"), nil(), nil(), nil(), str("2"), nil(), nil()}));
    link.reply(pair("repeated", 3));
    STRCMP_EQUAL("reported 3 ok stale 3 {\"other\":1}\nreported 4 ok repeated 3\n",
                 lines_of(events.take()).c_str());
    // Before any report: version 0, "{}".
    (void)link.take();
    request.base = 0;
    CHECK_EQUAL(Status::kOk, engine->report(request, 5));
    link.reply(documents({str("3"), nil(), nil(), nil(), nil(), nil(), nil()}));
    STRCMP_EQUAL(
        ("FCALL tether_report 1 " + kState + R"( 3 0 00000000000000a2 {"temp":22})").c_str(),
        link.take()[1].c_str());
}

TEST(RedisEngine, ReportRefusalsAndFailures) {
    start();
    ReportRequest request;
    request.session = kSession;
    request.id = "00000000000000a1";
    request.base = 0;
    request.document = "{}";
    CHECK_EQUAL(Status::kOk, engine->report(request, 1));  // not served here
    CHECK(link.take().empty());
    engine->service(20);
    STRCMP_EQUAL("reported 1 not_found unavailable 0\n", lines_of(events.take()).c_str());
    serve();
    request.id = "00000000000000A1";
    CHECK_EQUAL(Status::kOk, engine->report(request, 20));
    request.id = "00a1";
    CHECK_EQUAL(Status::kOk, engine->report(request, 21));
    request.id = "00000000000000a1";
    request.base = tether::server::kMaxSeq;
    CHECK_EQUAL(Status::kOk, engine->report(request, 22));
    request.base = 0;
    CHECK(link.take().empty());
    engine->service(30);
    STRCMP_EQUAL(
        "reported 20 invalid_argument unavailable 0\nreported 21 invalid_argument unavailable "
        "0\nreported 22 invalid_argument unavailable 0\n",
        lines_of(events.take()).c_str());
    // Not one JSON object, as a patch or a whole document: refused with the
    // current version, after the checks of id and base; nothing written.
    request.base = 2;
    request.document = "[1,2]";
    CHECK_EQUAL(Status::kOk, engine->report(request, 23));
    link.reply(documents({str("3"), nil(), nil(), nil(), str("2"), str("{}"), nil()}));
    request.whole = true;
    request.document = R"({"a":1,"a":2})";
    CHECK_EQUAL(Status::kOk, engine->report(request, 24));
    link.reply(documents({str("3"), nil(), nil(), nil(), str("2"), str("{}"), nil()}));
    request.whole = false;
    request.base = 0;
    STRCMP_EQUAL(
        "reported 23 invalid_argument unavailable 2\nreported 24 invalid_argument unavailable "
        "2\n",
        lines_of(events.take()).c_str());
    LONGS_EQUAL(2, link.take().size());  // the reads only
    // The merge's result too large; a whole document too large (after the
    // checks of id and base, with the current version).
    const std::string half = R"({"b":")" + std::string(5000, 'y') + R"("})";
    request.document = half;
    CHECK_EQUAL(Status::kOk, engine->report(request, 3));
    link.reply(documents({str("3"), nil(), nil(), nil(), nil(),
                          str(R"({"a":")" + std::string(5000, 'x') + R"("})"), nil()}));
    const std::string huge = R"({"b":")" + std::string(8200, 'y') + R"("})";
    request.document = huge;
    request.whole = true;
    CHECK_EQUAL(Status::kOk, engine->report(request, 2));
    link.reply(documents({str("3"), nil(), nil(), nil(), str("0"), nil(), nil()}));
    request.whole = false;
    // Failures: the read, the write.
    request.document = "{}";
    CHECK_EQUAL(Status::kOk, engine->report(request, 4));
    link.reply(RedisValue::of_error("ERR OOM"));
    CHECK_EQUAL(Status::kOk, engine->report(request, 5));
    link.reply(documents({str("3"), nil(), nil(), nil(), nil(), nil(), nil()}));
    link.reply(RedisValue::of_error("ERR OOM"));
    STRCMP_EQUAL(
        "reported 3 ok too_large 0\nreported 2 ok too_large 0\n"
        "reported 4 io_error unavailable 0\n"
        "reported 5 io_error unavailable 0\n",
        lines_of(events.take()).c_str());
    // The fence: a newer hello took the session elsewhere.
    CHECK_EQUAL(Status::kOk, engine->report(request, 6));
    link.reply(documents({str("3"), nil(), nil(), nil(), nil(), nil(), nil()}));
    link.reply(pair("superseded", 5));
    STRCMP_EQUAL(
        (std::string("reported 6 unavailable unavailable 0\nsuperseded ") + kSession + " 5\n")
            .c_str(),
        lines_of(events.take()).c_str());
    CHECK(engine->sessions().empty());
}

TEST(RedisEngine, DesiredAppliedGoesOutOnceAndIsCheckedByRedis) {
    start();
    CHECK_EQUAL(Status::kNotFound, engine->desired_applied(kSession, 3));
    serve();
    CHECK_EQUAL(Status::kInvalidArgument,
                engine->desired_applied(kSession, tether::server::kMaxSeq + 1));
    // Nothing known yet: no version can have been applied.
    CHECK_EQUAL(Status::kInvalidArgument, engine->desired_applied(kSession, 1));
    link.publish("t:desired", std::string(kSession) + " 5");
    STRCMP_EQUAL((std::string("changed ") + kSession + " 5\n").c_str(),
                 lines_of(events.take()).c_str());
    CHECK_EQUAL(Status::kInvalidArgument, engine->desired_applied(kSession, 6));
    CHECK_EQUAL(Status::kOk, engine->desired_applied(kSession, 3));
    std::vector<std::string> sent = link.take();
    LONGS_EQUAL(1, sent.size());
    STRCMP_EQUAL(("FCALL tether_desired_applied 1 " + kState + " 3 3").c_str(), sent[0].c_str());
    CHECK_EQUAL(Status::kOk, engine->desired_applied(kSession, 3));  // sent already
    CHECK_EQUAL(Status::kOk, engine->desired_applied(kSession, 2));
    CHECK(link.take().empty());
    link.reply(pair("ok", 3));
    CHECK(events.lines.empty());  // no answer
    CHECK_EQUAL(Status::kOk, engine->desired_applied(kSession, 5));
    (void)link.take();
    link.reply(pair("invalid", 4));  // beyond desired_version (a store replaced meanwhile)
    STRCMP_EQUAL((std::string("failed ") + kSession + " invalid_argument\n").c_str(),
                 lines_of(events.take()).c_str());
    serve();
    link.publish("t:desired", std::string(kSession) + " 5");
    (void)events.take();
    CHECK_EQUAL(Status::kOk, engine->desired_applied(kSession, 4));
    link.reply(pair("superseded", 6));
    STRCMP_EQUAL((std::string("superseded ") + kSession + " 6\n").c_str(),
                 lines_of(events.take()).c_str());
    serve();
    link.publish("t:desired", std::string(kSession) + " 5");
    (void)events.take();
    CHECK_EQUAL(Status::kOk, engine->desired_applied(kSession, 4));
    link.reply(RedisValue::of_error("ERR OOM"));
    STRCMP_EQUAL((std::string("failed ") + kSession + " io_error\n").c_str(),
                 lines_of(events.take()).c_str());
    serve();
    link.publish("t:desired", std::string(kSession) + " 5");
    (void)events.take();
    link.stop();
    CHECK_EQUAL(Status::kIoError, engine->desired_applied(kSession, 4));
}

TEST(RedisEngine, ReadStateAnswersBothDocuments) {
    start();
    CHECK_EQUAL(Status::kOk, engine->read_state(kSession, 3));
    const std::vector<std::string> sent = link.take();
    LONGS_EQUAL(1, sent.size());
    STRCMP_EQUAL(kStateRead.c_str(), sent[0].c_str());
    link.reply(documents({str("3"), str("4"), str(R"({"a":1})"), str("3"), str("7"),
                          str(R"({"t":2})"), str("00000000000000a1")}));
    CHECK_EQUAL(Status::kOk, engine->read_state(kSession, 4));
    link.reply(documents({str("3"), nil(), nil(), nil(), nil(), nil(), nil()}));
    CHECK_EQUAL(Status::kOk, engine->read_state(kSession, 5));
    link.reply(documents({nil(), nil(), nil(), nil(), nil(), nil(), nil()}));
    CHECK_EQUAL(Status::kOk, engine->read_state(kSession, 6));
    link.reply(documents({str("3"), nil()}));  // the wrong shape
    CHECK_EQUAL(Status::kOk, engine->read_state(kSession, 7));
    link.reply(documents({str("3"), str("-1"), nil(), nil(), nil(), nil(), nil()}));
    CHECK_EQUAL(Status::kOk, engine->read_state("nope", 8));
    engine->service(20);
    STRCMP_EQUAL(
        "read 3 ok 4 {\"a\":1} 3 7 {\"t\":2} [00000000000000a1]\n"
        "read 4 ok 0 {} 0 0 {} []\n"
        "read 5 not_found 0 {} 0 0 {} []\n"
        "read 6 io_error 0 {} 0 0 {} []\n"
        "read 7 io_error 0 {} 0 0 {} []\n"
        "read 8 not_found 0 {} 0 0 {} []\n",
        lines_of(events.take()).c_str());
}

TEST(RedisEngine, ADesiredMessageNotifiesTheSessionServedHere) {
    start();
    link.publish("t:desired", std::string(kSession) + " 7");  // not served yet
    serve();
    link.publish("t:desired", std::string(kSession) + " 8");
    link.publish("t:desired", std::string(kOther) + " 9");  // not served here
    link.publish("t:desired", std::string(kSession) + " x");
    link.publish("t:desired", std::string(kSession));
    link.publish("other:desired", std::string(kSession) + " 10");
    STRCMP_EQUAL((std::string("changed ") + kSession + " 8\n").c_str(),
                 lines_of(events.take()).c_str());
}

TEST(RedisEngine, ALostConnectionAnswersEveryStateOperation) {
    start();
    serve();
    CHECK_EQUAL(Status::kOk, engine->desired_since(kSession, 0, 1));
    CHECK_EQUAL(Status::kOk, engine->set_desired(kSession, "{}", false, 0, 2));
    ReportRequest request;
    request.session = kSession;
    request.id = "00000000000000a1";
    request.document = "{}";
    CHECK_EQUAL(Status::kOk, engine->report(request, 3));
    CHECK_EQUAL(Status::kOk, engine->read_state(kSession, 4));
    CHECK_EQUAL(Status::kOk, engine->set_desired(kSession, "[", false, 0, 5));  // decided
    link.drop("gone");
    STRCMP_EQUAL(("since 1 unavailable\nset 2 unavailable 0\nreported 3 unavailable unavailable "
                  "0\nread 4 unavailable 0 {} 0 0 {} []\nset 5 invalid_argument 0\nfailed " +
                  std::string(kSession) + " unavailable\n")
                     .c_str(),
                 lines_of(events.take()).c_str());
    engine->service(20);
    CHECK(events.lines.empty());  // each answered once
    CHECK_EQUAL(Status::kUnavailable, engine->desired_since(kSession, 0, 6));
    CHECK_EQUAL(Status::kUnavailable, engine->set_desired(kSession, "{}", false, 0, 6));
    CHECK_EQUAL(Status::kUnavailable, engine->report(request, 6));
    CHECK_EQUAL(Status::kUnavailable, engine->read_state(kSession, 6));
}

TEST(RedisEngine, StateOperationsInFlightAreBounded) {
    start();
    for (std::size_t i = 0; i < tether::server::kRedisMaxStateOperations; ++i) {
        CHECK_EQUAL(Status::kOk, engine->read_state(kSession, i));
    }
    CHECK_EQUAL(Status::kUnavailable, engine->read_state(kSession, 9999));
    CHECK_EQUAL(Status::kUnavailable, engine->set_desired("nope", "{}", false, 0, 9999));
    link.reply(documents({str("3"), nil(), nil(), nil(), nil(), nil(), nil()}));
    CHECK_EQUAL(Status::kOk, engine->read_state(kSession, 10000));
    // A command the link cannot queue is refused at once.
    link.refuse_commands(true);
    (void)events.take();
    CHECK_EQUAL(Status::kUnavailable, engine->read_state(kOther, 10001));
    CHECK(events.lines.empty());
}

TEST(RedisEngine, WithReplicasStateAnswersWaitForWait) {
    CHECK(tether::server::parse_redis_durability("replicas:1", &options));
    start();
    CHECK_EQUAL(Status::kOk, engine->hello(request(), 7));
    link.reply(hello_reply("accepted", 1, 117, 0, 0, 0, 0, 40, default_state()));
    link.reply(RedisValue::of_array({}));
    link.reply(num(1));  // SADD
    link.reply(num(1));  // the WAIT behind it
    STRCMP_EQUAL("hello 7 ok accepted\n", lines_of(events.take()).c_str());
    (void)link.take();

    CHECK_EQUAL(Status::kOk, engine->set_desired(kSession, R"({"a":1})", false, 0, 1));
    link.reply(documents({str("3"), nil(), nil(), nil(), nil(), nil(), nil()}));
    std::vector<std::string> sent = link.take();
    LONGS_EQUAL(3, sent.size());
    STRCMP_EQUAL("WAIT 1 1000", sent[2].c_str());
    link.reply(pair("ok", 1));
    STRCMP_EQUAL((std::string("changed ") + kSession + " 1\n").c_str(),
                 lines_of(events.take()).c_str());
    link.reply(num(0));  // no replica confirmed: held
    CHECK(events.lines.empty());
    engine->flush(20);  // asks again
    sent = link.take();
    LONGS_EQUAL(1, sent.size());
    STRCMP_EQUAL("WAIT 1 1000", sent[0].c_str());
    link.reply(num(1));
    STRCMP_EQUAL("set 1 ok 1\n", lines_of(events.take()).c_str());

    ReportRequest report;
    report.session = kSession;
    report.id = "00000000000000a1";
    report.document = "{}";
    CHECK_EQUAL(Status::kOk, engine->report(report, 2));
    link.reply(documents({str("3"), nil(), nil(), nil(), nil(), nil(), nil()}));
    link.reply(pair("ok", 1));
    CHECK(events.lines.empty());
    link.reply(num(1));
    STRCMP_EQUAL("reported 2 ok applied 1\n", lines_of(events.take()).c_str());
    // A refusal wrote nothing: answered at once.
    CHECK_EQUAL(Status::kOk, engine->report(report, 3));
    link.reply(
        documents({str("3"), nil(), nil(), nil(), str("1"), str("{}"), str("00000000000000a1")}));
    STRCMP_EQUAL("reported 3 ok repeated 1\n", lines_of(events.take()).c_str());
}

TEST(RedisEngine, EachDesiredVersionIsAnnouncedOnce) {
    start();
    serve();
    // A change made here: announced with its answer; its P:desired message
    // repeats it.
    CHECK_EQUAL(Status::kOk, engine->set_desired(kSession, R"({"a":1})", false, 0, 9));
    link.reply(documents({str("3"), str("4"), str("{}"), nil(), nil(), nil(), nil()}));
    link.reply(pair("ok", 5));
    link.publish("t:desired", std::string(kSession) + " 5");
    link.publish("t:desired", std::string(kSession) + " 6");  // another writer's
    STRCMP_EQUAL(
        (std::string("changed ") + kSession + " 5\nset 9 ok 5\nchanged " + kSession + " 6\n")
            .c_str(),
        lines_of(events.take()).c_str());
    // A read that saw version 8 told the device of it: 7 and 8 are old news.
    CHECK_EQUAL(Status::kOk, engine->desired_since(kSession, 6, 10));
    const std::string document = R"({"a":2,"name":")" + std::string(200, 'n') + R"("})";
    link.reply(documents({str("3"), str("8"), str(document), nil(), nil(), nil(), nil()}));
    link.reply(RedisValue::of_array({increment(7, R"({"a":2})"), increment(8, "{}")}));
    link.publish("t:desired", std::string(kSession) + " 7");
    link.publish("t:desired", std::string(kSession) + " 8");
    STRCMP_EQUAL("since 10 ok 7:p:{\"a\":2} 8:p:{}\n", lines_of(events.take()).c_str());
    CHECK_EQUAL(Status::kOk, engine->desired_applied(kSession, 8));
}

TEST(RedisEngine, TheHellosDesiredVersionIsKnown) {
    start();
    CHECK_EQUAL(Status::kOk, engine->hello(request(), 7));
    RedisValue hash = default_state();
    hash.elements.push_back(str("desired_version"));
    hash.elements.push_back(str("12"));
    link.reply(hello_reply("accepted", 1, 117, 0, 0, 0, 0, 40, hash));
    link.reply(RedisValue::of_array({}));
    (void)link.take();
    (void)events.take();
    SessionStats stats;
    CHECK(engine->session_stats(kSession, &stats));
    LONGS_EQUAL(12, stats.desired_version);
    CHECK_EQUAL(Status::kOk, engine->desired_applied(kSession, 12));
    CHECK_EQUAL(Status::kInvalidArgument, engine->desired_applied(kSession, 13));
    link.publish("t:desired", std::string(kSession) + " 12");  // published before the hello
    CHECK(events.lines.empty());
}

TEST(RedisEngine, APushToASessionServedHereIsHeldAtOnce) {
    start();
    serve();
    CHECK_EQUAL(Status::kOk, engine->push_downlink(kSession, bytes("x"), 1, 11));
    (void)link.take();
    link.reply(num(43));
    const std::vector<std::string> sent = link.take();
    LONGS_EQUAL(1, sent.size());
    STRCMP_EQUAL(("XRANGE " + kDown + " (42-0 + COUNT 1024").c_str(), sent[0].c_str());
    CHECK_FALSE(engine->idle());
    link.reply(RedisValue::of_array({entry(43, "x")}));
    CHECK(engine->idle());
    STRCMP_EQUAL((std::string("pushed 11 ok 43\ndownlink ") + kSession + "\n").c_str(),
                 lines_of(events.take()).c_str());
}

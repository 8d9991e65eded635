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
using tether::server::SessionStats;
using tether::server::UplinkMeta;
using tether::server::UplinkResult;
using tether::test::FakeRedisLink;

namespace {

constexpr const char* kSession = "0a6c1f3e-2b4d-5c6e-8f90-123456789abc";
constexpr const char* kOther = "11111111-2222-5333-8444-555555555555";
const std::string kState = std::string("t:{") + kSession + "}:state";
const std::string kDown = std::string("t:{") + kSession + "}:down";
const std::string kOtherState = std::string("t:{") + kOther + "}:state";

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
    LONGS_EQUAL(2, link.channels().size());
    STRCMP_EQUAL("t:downlink", link.channels()[0].c_str());
    STRCMP_EQUAL("t:supersede", link.channels()[1].c_str());
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
         {"tether_hello", "tether_uplink", "tether_gap", "tether_ack_downlink", "tether_push"}) {
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
    const std::vector<std::string> after = link.take();
    LONGS_EQUAL(1, after.size());
    STRCMP_EQUAL((std::string("SADD t:sessions ") + kSession).c_str(), after[0].c_str());
    (void)events.take();  // the hello's answer
    // A session missing from P:sessions would be read by no consumer: it fails,
    // logged once, so that the device's next hello registers it.
    link.reply(RedisValue::of_error("ERR oom"));
    LONGS_EQUAL(1, engine->stats().store_errors);
    STRCMP_EQUAL((std::string("failed ") + kSession + " io_error\n").c_str(),
                 lines_of(events.take()).c_str());
    CHECK(engine->sessions().empty());
    CHECK(!logged.empty() && logged.back().rfind("event=redis_register_failed", 0) == 0);
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
    LONGS_EQUAL(3, sent.size());
    STRCMP_EQUAL("WAIT 1 1000", sent[2].c_str());
    link.reply(hello_reply("accepted", 1, 117, 0, 0, 0, 0, 40, default_state()));
    link.reply(RedisValue::of_array({}));
    CHECK(events.lines.empty());
    link.reply(num(1));  // the WAIT
    STRCMP_EQUAL("hello 7 ok accepted\n", lines_of(events.take()).c_str());
    sent = link.take();
    LONGS_EQUAL(1, sent.size());  // SADD
    link.reply(num(1));

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
    link.reply(num(2));
    (void)link.take();
    link.reply(num(1));  // SADD
    (void)events.take();

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

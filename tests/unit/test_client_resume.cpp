// SPDX-License-Identifier: MIT
// The client speaking tether.v1 to a scripted server: hello, welcome,
// retransmission, acknowledgements both ways, gaps, duplicates, restarts.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <CppUTest/TestHarness.h>

#include "fakes/counting_random.h"
#include "fakes/fake_connection.h"
#include "fakes/fake_resolver.h"
#include "fakes/fake_storage.h"
#include "fakes/fixed_masks.h"
#include "support/client_frames.h"
#include "support/tether_strings.h"
#include "support/v1_frames.h"
#include "tether/client.h"
#include "tether/net/tether_v1.h"
#include "tether/net/ws_handshake.h"

using tether::Client;
using tether::LinkState;
using tether::TimeMs;
using tether::test::accept_for;
using tether::test::ack_frame;
using tether::test::client_frames;
using tether::test::ClientFrame;
using tether::test::data_frame;
using tether::test::seq_of;
using tether::test::server_frame;

namespace {

constexpr const char* kSession = "7ada0a06-5620-4a46-80ff-248e31991504";

struct Recorder final : tether::ClientListener {
    void on_state(const tether::ClientEvent& event) override { last = event; }
    void on_message(tether::net::WsOpcode, const std::uint8_t* data, std::size_t size) override {
        messages.emplace_back(reinterpret_cast<const char*>(data), size);
    }
    void on_downlink_seq(std::uint64_t seq) override { seqs.push_back(seq); }
    void on_gap(bool downlink, std::uint64_t first, std::uint64_t last_seq) override {
        gaps.push_back({downlink ? 1u : 0u, first, last_seq});
    }
    struct GapSeen {
        unsigned downlink;
        std::uint64_t first;
        std::uint64_t last;
    };
    std::vector<std::string> messages;
    std::vector<std::uint64_t> seqs;
    std::vector<GapSeen> gaps;
    tether::ClientEvent last{};
};

std::string welcome(std::uint64_t last_uplink, bool resumed = true) {
    return tether::test::welcome_frame(kSession, last_uplink, resumed);
}

struct DataSeen {
    std::uint64_t seq;
    std::string payload;
};

struct Rig {
    Rig(tether::test::FakeStorage& storage_,
        tether::OverflowPolicy overflow = tether::OverflowPolicy::kDropOldest,
        std::size_t outbox_size = 64 * 1024, bool message_age = true)
        : storage(storage_),
          record(storage),
          state(load(record)),
          client(config(overflow, message_age),
                 tether::ClientBuffers{outbox, outbox_size, rx, sizeof rx, tx, sizeof tx},
                 connection, resolver, random, masks, &recorder, nullptr, &record, &state) {
        CHECK_EQUAL(tether::Status::kOk, client.init());
    }

    static tether::PersistentState load(tether::StateRecord& record) {
        tether::PersistentState loaded;
        tether::LoadSource source;
        (void)record.load(&loaded, &source);
        return loaded;
    }

    tether::ClientConfig config(tether::OverflowPolicy overflow, bool message_age) {
        tether::ClientConfig c;
        c.message_age = message_age;
        c.urls[0] = "ws://127.0.0.1:9000/v1";
        c.url_count = 1;
        c.reconnect.resume_protocol = true;
        c.reconnect.backoff.jitter = tether::JitterMode::kNone;
        c.session_id = kSession;
        c.device_id = "pi-17";
        c.overflow = overflow;
        c.ws.max_message_size = 4096;
        return c;
    }

    std::string output() { return connection.stream().output_string(); }
    void service() { client.service(now); }

    // Start (or retry), answer the upgrade; the client then says hello.
    void upgrade() {
        if (client.state() == LinkState::kIdle) {
            client.start(now);
        }
        service();
        CHECK_EQUAL(LinkState::kWsHandshake, client.state());
        const std::string request = output();
        CHECK(request.find("Sec-WebSocket-Protocol: tether.v1\r\n") != std::string::npos);
        connection.stream().push_input(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Protocol: tether.v1\r\nSec-WebSocket-Accept: " +
            accept_for(request) + "\r\n\r\n");
        service();
        CHECK_EQUAL(LinkState::kSessionResume, client.state());
    }
    void resume(std::uint64_t last_uplink) {
        upgrade();
        connection.stream().push_input(welcome(last_uplink));
        service();
        CHECK_EQUAL(LinkState::kOnline, client.state());
        service();
    }

    // As resume(), with a welcome that accepts the "age" extension.
    void resume_aged(std::uint64_t last_uplink) {
        upgrade();
        connection.stream().push_input(
            tether::test::welcome_frame(kSession, last_uplink, true, true));
        service();
        CHECK_EQUAL(LinkState::kOnline, client.state());
        service();
    }
    // Every DATA sent on the current connection, decoded as a server that
    // accepted "age" would.
    std::vector<tether::test::UplinkData> uplink_sent() {
        std::vector<tether::test::UplinkData> out;
        for (const ClientFrame& frame : client_frames(output())) {
            if (frame.opcode == 2 && !frame.payload.empty() && frame.payload[0] == 'D') {
                out.push_back(tether::test::uplink_data_of(frame.payload));
                CHECK_TRUE(out.back().valid);
            }
        }
        return out;
    }
    // The server goes away (1001); the client waits its backoff.
    void lose_link() {
        connection.stream().push_input(server_frame(0x8, std::string("\x03\xe9", 2)));
        service();
        CHECK_EQUAL(LinkState::kWaitingToRetry, client.state());
        now += recorder.last.delay_ms;
    }

    std::string hello_json() {
        const std::vector<ClientFrame> frames = client_frames(output());
        CHECK(!frames.empty());
        CHECK_EQUAL(1u, frames[0].opcode);
        return frames[0].payload;
    }
    std::vector<DataSeen> data_sent() {
        std::vector<DataSeen> out;
        for (const ClientFrame& frame : client_frames(output())) {
            if (frame.opcode == 2 && frame.payload.size() >= 10 && frame.payload[0] == 'D') {
                out.push_back({seq_of(frame.payload), frame.payload.substr(10)});
            }
        }
        return out;
    }
    std::vector<std::uint64_t> acks_sent() {
        std::vector<std::uint64_t> out;
        for (const ClientFrame& frame : client_frames(output())) {
            if (frame.opcode == 2 && frame.payload.size() == 10 && frame.payload[0] == 'A') {
                out.push_back(seq_of(frame.payload));
            }
        }
        return out;
    }
    std::vector<std::string> texts_sent() {
        std::vector<std::string> out;
        for (const ClientFrame& frame : client_frames(output())) {
            if (frame.opcode == 1) {
                out.push_back(frame.payload);
            }
        }
        return out;
    }
    tether::Status send(const std::string& text) {
        return client.send(now, reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
    }

    tether::test::FakeStorage& storage;
    tether::StateRecord record;
    tether::PersistentState state;
    std::uint8_t outbox[64 * 1024];
    std::uint8_t rx[4096];
    std::uint8_t tx[16 * 1024];
    tether::test::FakeConnection connection;
    tether::test::FakeResolver resolver;
    tether::test::CountingRandom random;
    tether::test::FixedMasks masks;
    Recorder recorder;
    Client client;
    TimeMs now = 1000;
};

}  // namespace

TEST_GROUP(ClientResume){};

TEST(ClientResume, NeedsASessionIdAndADeviceId) {
    tether::test::FakeStorage storage;
    tether::StateRecord record(storage);
    tether::PersistentState state;
    tether::ClientConfig config;
    config.urls[0] = "ws://h/";
    config.url_count = 1;
    config.reconnect.resume_protocol = true;
    config.session_id = "not-a-uuid";
    config.device_id = "pi";
    std::uint8_t outbox[1024], rx[1024], tx[1024];
    tether::test::FakeConnection connection;
    tether::test::FakeResolver resolver;
    tether::test::CountingRandom random;
    tether::test::FixedMasks masks;
    Client client(config,
                  tether::ClientBuffers{outbox, sizeof outbox, rx, sizeof rx, tx, sizeof tx},
                  connection, resolver, random, masks, nullptr, nullptr, &record, &state);
    CHECK_EQUAL(tether::Status::kInvalidArgument, client.init());
    STRCMP_CONTAINS("session id", client.config_error());
}

TEST(ClientResume, SaysHelloWithTheSessionAndItsCounters) {
    tether::test::FakeStorage storage;
    Rig rig(storage);
    CHECK_EQUAL(tether::Status::kOk, rig.send("a"));
    CHECK_EQUAL(tether::Status::kOk, rig.send("b"));
    rig.upgrade();
    tether::net::v1::Control control{};
    const std::string hello = rig.hello_json();
    CHECK(tether::net::v1::parse_control(reinterpret_cast<const std::uint8_t*>(hello.data()),
                                         hello.size(), &control) == tether::net::v1::V1Status::kOk);
    CHECK(control.type == tether::net::v1::ControlType::kHello);
    STRCMP_EQUAL(kSession, control.hello.session);
    STRCMP_EQUAL("pi-17", control.hello.device);
    UNSIGNED_LONGS_EQUAL(1, control.hello.version);
    UNSIGNED_LONGS_EQUAL(0, control.hello.last_downlink);
    UNSIGNED_LONGS_EQUAL(1, control.hello.oldest_uplink);
    UNSIGNED_LONGS_EQUAL(3, control.hello.next_uplink);
}

TEST(ClientResume, WelcomeFreesWhatTheServerHoldsAndResendsTheRestInOrder) {
    tether::test::FakeStorage storage;
    Rig rig(storage);
    // Recovered from disk: the server may hold any of them.
    std::uint64_t seq = 0;
    for (const char* text : {"m1", "m2", "m3", "m4", "m5"}) {
        ++seq;
        CHECK_EQUAL(tether::Status::kOk,
                    rig.client.restore(seq, reinterpret_cast<const std::uint8_t*>(text), 2));
    }
    rig.resume(2);
    const std::vector<DataSeen> data = rig.data_sent();
    CHECK_EQUAL(3, data.size());
    UNSIGNED_LONGS_EQUAL(3, data[0].seq);
    STRCMP_EQUAL("m3", data[0].payload.c_str());
    UNSIGNED_LONGS_EQUAL(5, data[2].seq);
    CHECK_EQUAL(3, rig.client.outbox().size());
}

TEST(ClientResume, AnAckFreesTheOutbox) {
    tether::test::FakeStorage storage;
    Rig rig(storage);
    rig.resume(0);
    for (int i = 0; i < 10; ++i) {
        CHECK_EQUAL(tether::Status::kOk, rig.send("x" + std::to_string(i)));
    }
    rig.service();
    CHECK_EQUAL(10, rig.data_sent().size());
    rig.connection.stream().push_input(ack_frame(7));
    rig.service();
    CHECK_EQUAL(3, rig.client.outbox().size());
    UNSIGNED_LONGS_EQUAL(7, rig.client.counters().uplink_acked);
}

TEST(ClientResume, AnAckForSomethingNeverSentIsAViolation) {
    tether::test::FakeStorage storage;
    Rig rig(storage);
    rig.resume(0);
    rig.connection.stream().push_input(ack_frame(99));
    rig.service();
    CHECK_EQUAL(LinkState::kWaitingToRetry, rig.client.state());
    STRCMP_EQUAL("protocol_error", rig.recorder.last.reason);
}

TEST(ClientResume, DataBeforeWelcomeIsAViolationClosedWith4002) {
    tether::test::FakeStorage storage;
    Rig rig(storage);
    rig.upgrade();
    rig.connection.stream().push_input(data_frame(1, "early"));
    rig.service();
    CHECK_EQUAL(LinkState::kWaitingToRetry, rig.client.state());
    bool closed_4002 = false;
    for (const ClientFrame& frame : client_frames(rig.output())) {
        closed_4002 = closed_4002 || (frame.opcode == 8 && frame.payload.size() >= 2 &&
                                      static_cast<std::uint8_t>(frame.payload[0]) == 0x0F &&
                                      static_cast<std::uint8_t>(frame.payload[1]) == 0xA2);
    }
    CHECK_TRUE(closed_4002);
}

TEST(ClientResume, DownlinkIsDeliveredOnceInOrderAndAcknowledged) {
    tether::test::FakeStorage storage;
    Rig rig(storage);
    rig.resume(0);
    rig.connection.stream().push_input(data_frame(1, "one") + data_frame(2, "two") +
                                       data_frame(2, "two") + data_frame(3, "three"));
    rig.service();
    CHECK_EQUAL(3, rig.recorder.messages.size());
    STRCMP_EQUAL("three", rig.recorder.messages[2].c_str());
    UNSIGNED_LONGS_EQUAL(1, rig.client.counters().downlink_duplicates);
    CHECK(rig.acks_sent().empty());  // batched
    rig.now += 200;
    rig.service();
    CHECK_EQUAL(1, rig.acks_sent().size());
    UNSIGNED_LONGS_EQUAL(3, rig.acks_sent()[0]);
    UNSIGNED_LONGS_EQUAL(3, Rig::load(rig.record).last_delivered_downlink_seq);
}

TEST(ClientResume, ManyDownlinkMessagesAreAcknowledgedInBatches) {
    tether::test::FakeStorage storage;
    Rig rig(storage);
    rig.resume(0);
    std::string burst;
    for (std::uint64_t seq = 1; seq <= 64; ++seq) {
        burst += data_frame(seq, "d");
    }
    rig.connection.stream().push_input(burst);
    rig.service();
    CHECK_EQUAL(1, rig.acks_sent().size());
    UNSIGNED_LONGS_EQUAL(64, rig.acks_sent()[0]);
}

TEST(ClientResume, ADownlinkGapIsReportedAndSkipped) {
    tether::test::FakeStorage storage;
    Rig rig(storage);
    rig.resume(0);
    rig.connection.stream().push_input(
        server_frame(0x1, "{\"type\":\"gap\",\"first\":1,\"last\":9,\"reason\":\"expired\"}") +
        data_frame(10, "ten"));
    rig.service();
    CHECK_EQUAL(1, rig.recorder.gaps.size());
    UNSIGNED_LONGS_EQUAL(9, rig.recorder.gaps[0].last);
    CHECK_EQUAL(1, rig.recorder.messages.size());
    UNSIGNED_LONGS_EQUAL(10, rig.recorder.seqs[0]);
}

TEST(ClientResume, AnOutboxThatOverflowedOfflineReportsTheExactGap) {
    tether::test::FakeStorage storage;
    Rig rig(storage, tether::OverflowPolicy::kDropOldest, 512);
    for (int i = 0; i < 40; ++i) {
        CHECK_EQUAL(tether::Status::kOk, rig.send("message-" + std::to_string(i)));
    }
    const std::uint64_t oldest = rig.client.outbox().oldest_seq();
    CHECK(oldest > 1);
    rig.resume(0);
    const std::vector<std::string> texts = rig.texts_sent();
    CHECK_EQUAL(2, texts.size());  // hello, gap
    STRCMP_EQUAL(("{\"type\":\"gap\",\"first\":1,\"last\":" + std::to_string(oldest - 1) +
                  ",\"reason\":\"dropped\"}")
                     .c_str(),
                 texts[1].c_str());
    const std::vector<DataSeen> data = rig.data_sent();
    UNSIGNED_LONGS_EQUAL(oldest, data.front().seq);
    UNSIGNED_LONGS_EQUAL(40, data.back().seq);
    UNSIGNED_LONGS_EQUAL(1, rig.client.counters().gaps_reported);
}

TEST(ClientResume, ARestartResumesTheSessionWithANewerVersionAndFreshSeqs) {
    tether::test::FakeStorage storage;
    std::uint64_t first_run_seq = 0;
    {
        Rig rig(storage);
        rig.resume(0);
        CHECK_EQUAL(tether::Status::kOk, rig.send("before"));
        rig.service();
        first_run_seq = rig.data_sent().back().seq;
        rig.connection.stream().push_input(data_frame(1, "cmd"));
        rig.service();
        rig.now += 200;
        rig.service();
    }
    Rig again(storage);
    CHECK_EQUAL(tether::Status::kOk, again.send("after"));
    // The first run never stayed up for the healthy time: the restored
    // attempt counter makes the restart wait its backoff first.
    again.client.start(again.now);
    CHECK_EQUAL(LinkState::kWaitingToRetry, again.client.state());
    again.now += again.recorder.last.delay_ms;
    again.upgrade();
    tether::net::v1::Control control{};
    const std::string hello = again.hello_json();
    CHECK(tether::net::v1::parse_control(reinterpret_cast<const std::uint8_t*>(hello.data()),
                                         hello.size(), &control) == tether::net::v1::V1Status::kOk);
    UNSIGNED_LONGS_EQUAL(2, control.hello.version);
    UNSIGNED_LONGS_EQUAL(1, control.hello.last_downlink);
    CHECK(control.hello.oldest_uplink > first_run_seq);  // never a reused seq
}

TEST(ClientResume, AWelcomeClaimingSeqsNeverAssignedRenumbersTheOutbox) {
    tether::test::FakeStorage storage;
    Rig rig(storage);
    CHECK_EQUAL(tether::Status::kOk, rig.send("fresh-1"));
    CHECK_EQUAL(tether::Status::kOk, rig.send("fresh-2"));
    rig.upgrade();
    rig.connection.stream().push_input(welcome(5000));
    rig.service();
    rig.service();
    CHECK_EQUAL(LinkState::kOnline, rig.client.state());
    UNSIGNED_LONGS_EQUAL(2, rig.client.counters().renumbered);
    const std::vector<DataSeen> data = rig.data_sent();
    CHECK_EQUAL(2, data.size());
    UNSIGNED_LONGS_EQUAL(5001, data[0].seq);
    STRCMP_EQUAL("fresh-1", data[0].payload.c_str());
    UNSIGNED_LONGS_EQUAL(5002, data[1].seq);
    CHECK(Rig::load(rig.record).next_uplink_seq > 5002);
}

TEST(ClientResume, ServiceRestartWithRetryAfterIsHonoured) {
    tether::test::FakeStorage storage;
    Rig rig(storage);
    rig.resume(0);
    rig.connection.stream().push_input(
        server_frame(0x8, std::string("\x03\xf4", 2) + "retry_after=5"));  // 1012
    rig.service();
    CHECK_EQUAL(LinkState::kWaitingToRetry, rig.client.state());
    UNSIGNED_LONGS_EQUAL(5000, rig.recorder.last.delay_ms);
}

TEST(ClientResume, SupersededStopsReconnecting) {
    tether::test::FakeStorage storage;
    Rig rig(storage);
    rig.resume(0);
    rig.connection.stream().push_input(server_frame(0x8, std::string("\x0f\xa9", 2)));  // 4009
    rig.service();
    CHECK_EQUAL(LinkState::kGivenUp, rig.client.state());
    STRCMP_EQUAL("close_superseded", rig.client.machine().give_up_reason());
}

// --- The "age" extension (docs/PROTOCOL.md 3.6) -------------------------------

namespace {

tether::net::v1::Hello parsed_hello(Rig& rig) {
    tether::net::v1::Control control{};
    const std::string hello = rig.hello_json();
    CHECK(tether::net::v1::parse_control(reinterpret_cast<const std::uint8_t*>(hello.data()),
                                         hello.size(), &control) == tether::net::v1::V1Status::kOk);
    CHECK(control.type == tether::net::v1::ControlType::kHello);
    return control.hello;
}

constexpr std::uint32_t kMaxAge = tether::net::v1::kMaxAgeMs;

}  // namespace

TEST(ClientResume, HelloOffersTheAgeExtensionUnlessItIsOff) {
    tether::test::FakeStorage storage;
    Rig rig(storage);
    rig.upgrade();
    STRCMP_CONTAINS(",\"features\":[\"age\"]}", rig.hello_json().c_str());
    UNSIGNED_LONGS_EQUAL(tether::net::v1::kFeatureAge, parsed_hello(rig).features);

    tether::test::FakeStorage other;
    Rig off(other, tether::OverflowPolicy::kDropOldest, 64 * 1024, false);
    off.upgrade();
    CHECK(off.hello_json().find("features") == std::string::npos);
}

TEST(ClientResume, WithoutAWelcomeThatNamesAgeDataIsPlain) {
    // An older server ignores the hello's "features" and never echoes it.
    tether::test::FakeStorage storage;
    Rig rig(storage);
    CHECK_EQUAL(tether::Status::kOk, rig.send("a"));
    rig.now += 300;
    rig.resume(0);
    CHECK_EQUAL(tether::Status::kOk, rig.send("b"));
    rig.service();
    const std::vector<tether::test::UplinkData> data = rig.uplink_sent();
    CHECK_EQUAL(2, data.size());
    for (const tether::test::UplinkData& one : data) {
        CHECK_FALSE(one.has_age);
    }
    STRCMP_EQUAL("a", data[0].payload.c_str());
    STRCMP_EQUAL("b", data[1].payload.c_str());
    UNSIGNED_LONGS_EQUAL(0, rig.client.counters().sent_with_age);
}

TEST(ClientResume, TheAgeIsTakenWhenTheDataIsWrittenAndGrowsAcrossAReconnect) {
    tether::test::FakeStorage storage;
    Rig rig(storage);
    CHECK_EQUAL(tether::Status::kOk, rig.send("early"));  // at 1000, while offline
    rig.now = 1250;
    rig.resume_aged(0);
    rig.now = 2250;
    CHECK_EQUAL(tether::Status::kOk, rig.send("online"));  // written at once: age 0
    rig.service();
    std::vector<tether::test::UplinkData> data = rig.uplink_sent();
    CHECK_EQUAL(2, data.size());
    CHECK_TRUE(data[0].has_age);
    UNSIGNED_LONGS_EQUAL(250, data[0].age_ms);
    STRCMP_EQUAL("early", data[0].payload.c_str());
    CHECK_TRUE(data[1].has_age);
    UNSIGNED_LONGS_EQUAL(0, data[1].age_ms);

    // Neither was acknowledged: after the reconnect both go again, older.
    rig.now += 40;
    rig.lose_link();
    const TimeMs resent_at = rig.now;
    rig.resume_aged(0);
    data = rig.uplink_sent();
    CHECK_EQUAL(2, data.size());
    UNSIGNED_LONGS_EQUAL(1, data[0].seq);
    UNSIGNED_LONGS_EQUAL(resent_at - 1000, data[0].age_ms);
    UNSIGNED_LONGS_EQUAL(resent_at - 2250, data[1].age_ms);
    CHECK(data[1].age_ms > 0);
    UNSIGNED_LONGS_EQUAL(4, rig.client.counters().sent_with_age);
}

TEST(ClientResume, AnAgeOnlyTheServerNamesIsNeverSent) {
    tether::test::FakeStorage storage;
    Rig rig(storage, tether::OverflowPolicy::kDropOldest, 64 * 1024, false);
    CHECK_EQUAL(tether::Status::kOk, rig.send("a"));
    rig.resume_aged(0);
    const std::vector<tether::test::UplinkData> data = rig.uplink_sent();
    CHECK_EQUAL(1, data.size());
    CHECK_FALSE(data[0].has_age);
}

TEST(ClientResume, RestoredMessagesGoWithoutAnAge) {
    // Their clock restarted with the process: no age is better than a wrong one.
    tether::test::FakeStorage storage;
    Rig rig(storage);
    CHECK_EQUAL(tether::Status::kOk,
                rig.client.restore(1, reinterpret_cast<const std::uint8_t*>("r1"), 2));
    CHECK_EQUAL(tether::Status::kOk,
                rig.client.restore(2, reinterpret_cast<const std::uint8_t*>("r2"), 2));
    CHECK_EQUAL(tether::Status::kOk, rig.send("new"));
    rig.now += 500;
    rig.resume_aged(0);
    const std::vector<tether::test::UplinkData> data = rig.uplink_sent();
    CHECK_EQUAL(3, data.size());
    CHECK_FALSE(data[0].has_age);
    STRCMP_EQUAL("r1", data[0].payload.c_str());
    CHECK_FALSE(data[1].has_age);
    CHECK_TRUE(data[2].has_age);
    UNSIGNED_LONGS_EQUAL(3, data[2].seq);
    UNSIGNED_LONGS_EQUAL(500, data[2].age_ms);
}

TEST(ClientResume, TheLargestPayloadFillsTheMessageLimitWithItsAge) {
    tether::test::FakeStorage storage;
    Rig rig(storage);
    // 4096 bytes on the wire: the 14-byte aged header and the payload.
    UNSIGNED_LONGS_EQUAL(4096 - tether::net::v1::kAgedDataHeaderSize, rig.client.max_payload());
    const std::string biggest(rig.client.max_payload(), 'x');
    CHECK_EQUAL(tether::Status::kTooLarge, rig.send(biggest + "x"));
    CHECK_EQUAL(tether::Status::kOk, rig.send(biggest));
    rig.resume_aged(0);
    std::size_t largest_frame = 0;
    for (const ClientFrame& frame : client_frames(rig.output())) {
        largest_frame = frame.payload.size() > largest_frame ? frame.payload.size() : largest_frame;
    }
    UNSIGNED_LONGS_EQUAL(4096, largest_frame);

    tether::test::FakeStorage other;
    Rig off(other, tether::OverflowPolicy::kDropOldest, 64 * 1024, false);
    UNSIGNED_LONGS_EQUAL(4096 - tether::net::v1::kHeaderSize, off.client.max_payload());
}

TEST(ClientResume, AnAgeThatWouldWrapIsCappedAtTheMaximum) {
    tether::test::FakeStorage storage;
    Rig rig(storage);
    CHECK_EQUAL(tether::Status::kOk, rig.send("old"));  // at 1000
    // The loop runs now and then while the link waits (here: not started).
    rig.now += 0x40000000u;
    rig.service();
    rig.now += 0x40000000u;
    rig.service();                 // 2^31 ms since the push: the wrapping clock can no longer tell
    rig.now += 0x80000000u + 99u;  // 2^32 + 99 ms in all: the clock reads 99 ms later
    CHECK_EQUAL(tether::Status::kOk, rig.send("fresh"));
    rig.now += 1;
    rig.resume_aged(0);
    const std::vector<tether::test::UplinkData> data = rig.uplink_sent();
    CHECK_EQUAL(2, data.size());
    UNSIGNED_LONGS_EQUAL(kMaxAge, data[0].age_ms);
    UNSIGNED_LONGS_EQUAL(1, data[1].age_ms);
}

TEST(ClientResume, ACappedAgeStaysCappedWhenItsMessageIsRenumbered) {
    tether::test::FakeStorage storage;
    Rig rig(storage);
    CHECK_EQUAL(tether::Status::kOk, rig.send("x"));
    CHECK_EQUAL(tether::Status::kOk, rig.send("y"));
    rig.now += 0x80000000u;
    rig.service();
    rig.now += 0x80000000u + 50u;
    CHECK_EQUAL(tether::Status::kOk, rig.send("z"));
    rig.upgrade();
    rig.connection.stream().push_input(tether::test::welcome_frame(kSession, 5000, true, true));
    rig.service();
    rig.service();
    CHECK_EQUAL(LinkState::kOnline, rig.client.state());
    UNSIGNED_LONGS_EQUAL(3, rig.client.counters().renumbered);
    const std::vector<tether::test::UplinkData> data = rig.uplink_sent();
    CHECK_EQUAL(3, data.size());
    UNSIGNED_LONGS_EQUAL(5001, data[0].seq);
    UNSIGNED_LONGS_EQUAL(kMaxAge, data[0].age_ms);
    UNSIGNED_LONGS_EQUAL(5002, data[1].seq);
    UNSIGNED_LONGS_EQUAL(kMaxAge, data[1].age_ms);
    UNSIGNED_LONGS_EQUAL(5003, data[2].seq);
    UNSIGNED_LONGS_EQUAL(0, data[2].age_ms);
}

TEST(ClientResume, DownlinkDataWithAnAgeIsAViolation) {
    // Downlink never carries an age, whatever the welcome said.
    tether::test::FakeStorage storage;
    Rig rig(storage);
    rig.resume_aged(0);
    std::uint8_t header[tether::net::v1::kAgedDataHeaderSize];
    tether::net::v1::write_aged_data_header(1, 5, header);
    rig.connection.stream().push_input(
        server_frame(0x2, std::string(reinterpret_cast<char*>(header), sizeof header) + "cmd"));
    rig.service();
    CHECK_EQUAL(LinkState::kWaitingToRetry, rig.client.state());
    STRCMP_EQUAL("protocol_error", rig.recorder.last.reason);
    CHECK(rig.recorder.messages.empty());
}

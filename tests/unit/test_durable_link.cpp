// SPDX-License-Identifier: MIT
// The durable link against a scripted tether.v1 server and fake disks: the
// recovery rule after kills, power cuts and damaged spools, storage failures,
// the intake limit, and drop reports.
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <CppUTest/TestHarness.h>

#include "fakes/counting_random.h"
#include "fakes/fake_connection.h"
#include "fakes/fake_resolver.h"
#include "fakes/fake_storage.h"
#include "support/client_frames.h"
#include "support/tether_strings.h"
#include "support/v1_frames.h"
#include "tether/durable_link.h"
#include "tether/net/tether_v1.h"
#include "tether/net/ws_handshake.h"

using tether::DurableLink;
using tether::LinkState;
using tether::Status;
using tether::TimeMs;
using tether::test::ack_frame;
using tether::test::client_frames;
using tether::test::ClientFrame;
using tether::test::data_frame;
using tether::test::seq_of;

namespace {

constexpr const char* kSession = "7ada0a06-5620-4a46-80ff-248e31991504";

// A disk that fails every write and sync while `failing`, like a full or
// read-only file system.
class FlakyStorage final : public tether::Storage {
  public:
    explicit FlakyStorage(tether::test::FakeStorage& inner) : inner_(inner) {}
    Status read(std::uint32_t offset, std::uint8_t* out, std::size_t size,
                std::size_t* read_size) override {
        return inner_.read(offset, out, size, read_size);
    }
    Status write(std::uint32_t offset, const std::uint8_t* data, std::size_t size) override {
        ++writes;
        return failing ? Status::kIoError : inner_.write(offset, data, size);
    }
    Status sync() override { return failing ? Status::kIoError : inner_.sync(); }
    int last_error() const override { return failing ? error : 0; }

    bool failing = false;
    int error = ENOSPC;
    std::size_t writes = 0;

  private:
    tether::test::FakeStorage& inner_;
};

struct Listener final : tether::DurableLinkListener {
    void on_storage(const tether::StorageEvent& event) override { storage.push_back(event); }
    void on_refused(std::size_t size, std::size_t limit) override {
        refused.push_back(size);
        refused_limit = limit;
    }
    void on_gap(bool downlink, std::uint64_t first, std::uint64_t last) override {
        if (!downlink) {
            uplink_gaps.push_back({first, last});
        }
    }
    bool downlink_can_accept(std::size_t) override { return room; }
    void on_message(tether::net::WsOpcode, const std::uint8_t*, std::size_t) override {
        if (refuse && link != nullptr) {
            link->refuse_downlink();
        }
    }
    tether::DurableLink* link = nullptr;
    bool refuse = false;
    void on_downlink_seq(std::uint64_t seq) override { downlink_seqs.push_back(seq); }
    bool room = true;
    std::vector<std::uint64_t> downlink_seqs;
    std::vector<tether::StorageEvent> storage;
    std::vector<std::size_t> refused;
    std::size_t refused_limit = 0;
    std::vector<tether::SeqRange> uplink_gaps;
};

std::string welcome(std::uint64_t last_uplink) {
    return tether::test::welcome_frame(kSession, last_uplink);
}

struct DataSeen {
    std::uint64_t seq;
    std::string payload;
};

// One run of a device: a link over the same two disks, which outlive it.
struct Run {
    Run(tether::Storage& state_disk, tether::Storage& spool_disk,
        std::size_t outbox_bytes = 64 * 1024, std::uint32_t fsync_interval_ms = 1000)
        : config(make_config(outbox_bytes, fsync_interval_ms)),
          sizes(tether::DurableLinkSizes::for_config(config)),
          memory(sizes.total()),
          link(config,
               tether::DurableLinkBuffers{memory.data(), memory.data() + sizes.outbox,
                                          memory.data() + sizes.outbox + sizes.rx,
                                          memory.data() + sizes.outbox + sizes.rx + sizes.tx},
               connection, resolver, random, &state_disk, &spool_disk, nullptr, &listener) {
        listener.link = &link;
        CHECK_EQUAL(Status::kOk, link.open(&report));
    }

    static tether::DurableLinkConfig make_config(std::size_t outbox_bytes,
                                                 std::uint32_t fsync_interval_ms) {
        tether::DurableLinkConfig c;
        c.client.urls[0] = "ws://127.0.0.1:9000/v1";
        c.client.url_count = 1;
        c.client.reconnect.resume_protocol = true;
        c.client.reconnect.backoff.jitter = tether::JitterMode::kNone;
        c.client.session_id = kSession;
        c.client.device_id = "pi-17";
        c.client.ws.max_message_size = 4096;
        c.outbox_bytes = outbox_bytes;
        c.spool = true;
        c.spool_config.max_bytes = 256 * 1024;
        c.spool_config.fsync_interval_ms = fsync_interval_ms;
        c.spool_config.min_compact_bytes = 64 * 1024;
        c.client.confirm_downlink = true;
        return c;
    }

    Status send(const std::string& text) {
        return link.send(now, reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
    }
    void service() { link.service(now); }
    std::string output() { return connection.stream().output_string(); }

    void online(std::uint64_t last_uplink, bool age = false) {
        link.start(now);
        if (link.state() == LinkState::kWaitingToRetry) {
            // A restart keeps backing off: the attempt counter is persisted.
            now += link.client().machine().retry_delay_ms();
        }
        service();
        CHECK_EQUAL(LinkState::kWsHandshake, link.state());
        connection.stream().push_input(tether::test::v1_upgrade_response(output()));
        service();
        CHECK_EQUAL(LinkState::kSessionResume, link.state());
        connection.stream().push_input(
            age ? tether::test::welcome_frame(kSession, last_uplink, true, true)
                : welcome(last_uplink));
        service();
        CHECK_EQUAL(LinkState::kOnline, link.state());
        service();
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
    std::vector<std::string> texts_sent() {
        std::vector<std::string> out;
        for (const ClientFrame& frame : client_frames(output())) {
            if (frame.opcode == 1) {
                out.push_back(frame.payload);
            }
        }
        return out;
    }
    std::vector<std::string> gaps_sent() {
        std::vector<std::string> out;
        for (const std::string& text : texts_sent()) {
            if (text.find("\"type\":\"gap\"") != std::string::npos) {
                out.push_back(text);
            }
        }
        return out;
    }

    tether::DurableLinkConfig config;
    tether::DurableLinkSizes sizes;
    std::vector<std::uint8_t> memory;
    tether::test::FakeConnection connection;
    tether::test::FakeResolver resolver;
    tether::test::CountingRandom random;
    Listener listener;
    tether::RecoveryReport report;
    DurableLink link;
    TimeMs now = 1000;
};

std::string numbered(int i) {
    return "m" + std::to_string(i);
}

}  // namespace

TEST_GROUP(DurableLink){};

TEST(DurableLink, AMessageThatCouldNeverBeDeliveredIsRefusedAtIntakeOnce) {
    tether::test::FakeStorage state, spool;
    Run run(state, spool);
    // tether.v1 adds a 14-byte header (with the age) to the 4096-byte WebSocket limit.
    UNSIGNED_LONGS_EQUAL(4096 - tether::net::v1::kAgedDataHeaderSize, run.link.max_payload());
    const std::string biggest(run.link.max_payload(), 'x');
    const std::string one_more(run.link.max_payload() + 1, 'x');
    CHECK_EQUAL(Status::kTooLarge, run.send(one_more));
    CHECK_EQUAL(Status::kTooLarge, run.send(one_more));
    CHECK_EQUAL(Status::kOk, run.send(biggest));
    CHECK_EQUAL(Status::kOk, run.send("after"));
    CHECK_EQUAL(1, run.listener.refused.size());  // logged once, then counted
    UNSIGNED_LONGS_EQUAL(one_more.size(), run.listener.refused[0]);
    UNSIGNED_LONGS_EQUAL(2, run.link.counters().refused_too_large);
    run.online(0);
    const std::vector<DataSeen> data = run.data_sent();
    CHECK_EQUAL(2, data.size());
    UNSIGNED_LONGS_EQUAL(biggest.size(), data[0].payload.size());
    STRCMP_EQUAL("after", data[1].payload.c_str());
}

TEST(DurableLink, MessagesGoOutWithoutWaitingForTheSpoolsSync) {
    tether::test::FakeStorage state, spool;
    Run run(state, spool, 64 * 1024, 60000);
    run.online(0);
    CHECK_EQUAL(Status::kOk, run.send("burst-end"));
    run.service();
    const std::vector<DataSeen> data = run.data_sent();
    CHECK_EQUAL(1, data.size());
    STRCMP_EQUAL("burst-end", data[0].payload.c_str());
}

TEST(DurableLink, AKilledRunLosesNothingItAcceptedAndNeverReusesASeq) {
    tether::test::FakeStorage state, spool;
    std::uint64_t last_seq = 0;
    {
        Run first(state, spool);
        first.online(0);
        for (int i = 1; i <= 10; ++i) {
            CHECK_EQUAL(Status::kOk, first.send(numbered(i)));
        }
        first.service();  // the loop iteration that accepted them hands them to the kernel
        first.connection.stream().push_input(ack_frame(5));
        first.service();
        last_seq = first.link.client().outbox().next_seq() - 1;
        // kill -9: no shutdown; what was written stays in the file.
    }
    Run second(state, spool);
    UNSIGNED_LONGS_EQUAL(5, second.report.restored);
    UNSIGNED_LONGS_EQUAL(6, second.report.first_restored);
    UNSIGNED_LONGS_EQUAL(last_seq, second.report.last_restored);
    CHECK(second.report.continue_at > last_seq + 1);  // past the reservation
    UNSIGNED_LONGS_EQUAL(last_seq + 1, second.report.unrecovered.first);
    CHECK_EQUAL(Status::kOk, second.send("new"));
    second.online(5);
    const std::vector<DataSeen> data = second.data_sent();
    CHECK_EQUAL(6, data.size());
    STRCMP_EQUAL("m6", data[0].payload.c_str());
    UNSIGNED_LONGS_EQUAL(6, data[0].seq);
    STRCMP_EQUAL("new", data[5].payload.c_str());
    UNSIGNED_LONGS_EQUAL(second.report.continue_at, data[5].seq);
    const std::vector<std::string> gaps = second.gaps_sent();
    CHECK_EQUAL(1, gaps.size());
    CHECK(gaps[0].find("\"reason\":\"unrecovered\"") != std::string::npos);
}

TEST(DurableLink, MessagesPutBackFromTheSpoolGoWithoutAnAge) {
    tether::test::FakeStorage state, spool;
    {
        Run first(state, spool);
        for (int i = 1; i <= 3; ++i) {
            CHECK_EQUAL(Status::kOk, first.send(numbered(i)));
        }
        first.service();
        // kill -9 while offline: the three wait in the spool.
    }
    Run second(state, spool);
    UNSIGNED_LONGS_EQUAL(3, second.report.restored);
    CHECK_EQUAL(Status::kOk, second.send("new"));
    second.now += 700;
    second.online(0, true);
    std::vector<tether::test::UplinkData> data;
    for (const ClientFrame& frame : client_frames(second.output())) {
        if (frame.opcode == 2 && !frame.payload.empty() && frame.payload[0] == 'D') {
            data.push_back(tether::test::uplink_data_of(frame.payload));
        }
    }
    CHECK_EQUAL(4, data.size());
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK_TRUE(data[i].valid);
        CHECK_FALSE(data[i].has_age);
        STRCMP_EQUAL(numbered(static_cast<int>(i) + 1).c_str(), data[i].payload.c_str());
    }
    CHECK_TRUE(data[3].has_age);
    STRCMP_EQUAL("new", data[3].payload.c_str());
    CHECK(data[3].age_ms >= 700);
}

TEST(DurableLink, APowerCutLosesOnlyUnsyncedMessagesAndTheyLieInsideTheGap) {
    tether::test::FakeStorage state, spool;
    {
        Run first(state, spool, 64 * 1024, 60000);
        for (int i = 1; i <= 3; ++i) {
            CHECK_EQUAL(Status::kOk, first.send(numbered(i)));
        }
        first.service();  // written and synced: the first sync is never waited for
        for (int i = 4; i <= 6; ++i) {
            CHECK_EQUAL(Status::kOk, first.send(numbered(i)));
        }
        first.service();  // written, not synced (the interval has not passed)
    }
    spool.crash();
    Run second(state, spool);
    UNSIGNED_LONGS_EQUAL(3, second.report.restored);
    CHECK(second.report.unrecovered.first <= 4);
    CHECK(second.report.unrecovered.last >= 6);
    CHECK(second.report.continue_at > 6);
}

TEST(DurableLink, ACleanShutdownContinuesWithoutAGap) {
    tether::test::FakeStorage state, spool;
    {
        Run first(state, spool);
        first.online(0);
        CHECK_EQUAL(Status::kOk, first.send("a"));
        CHECK_EQUAL(Status::kOk, first.send("b"));
        first.service();
        first.connection.stream().push_input(ack_frame(2));
        first.service();
        CHECK_EQUAL(Status::kOk, first.link.shutdown());
    }
    Run second(state, spool);
    UNSIGNED_LONGS_EQUAL(3, second.report.continue_at);
    UNSIGNED_LONGS_EQUAL(0, second.report.unrecovered.last);
    CHECK_EQUAL(Status::kOk, second.send("c"));
    second.online(2);
    const std::vector<DataSeen> data = second.data_sent();
    CHECK_EQUAL(1, data.size());
    UNSIGNED_LONGS_EQUAL(3, data[0].seq);
    CHECK_EQUAL(0, second.gaps_sent().size());
}

TEST(DurableLink, ALostSpoolNeverLetsNewMessagesReuseTheOldSeqs) {
    tether::test::FakeStorage state, spool;
    {
        Run first(state, spool);
        for (int i = 1; i <= 20; ++i) {
            CHECK_EQUAL(Status::kOk, first.send(numbered(i)));
        }
        first.service();
    }
    spool.truncate(0);  // deleted, or its header destroyed
    Run second(state, spool);
    UNSIGNED_LONGS_EQUAL(0, second.report.restored);
    CHECK(second.report.continue_at > 20);
    CHECK_EQUAL(Status::kOk, second.send("new"));
    second.online(0);
    const std::vector<DataSeen> data = second.data_sent();
    CHECK_EQUAL(1, data.size());
    CHECK(data[0].seq > 20);
    const std::vector<std::string> gaps = second.gaps_sent();
    CHECK_EQUAL(1, gaps.size());
    CHECK(gaps[0].find("\"first\":1,") != std::string::npos);
}

TEST(DurableLink, ATruncatedJournalNeverResendsAcknowledgedMessagesUnderNewSeqs) {
    tether::test::FakeStorage state, spool;
    std::size_t journal_middle = 0;
    {
        Run first(state, spool);
        first.online(0);
        for (int i = 1; i <= 20; ++i) {
            CHECK_EQUAL(Status::kOk, first.send(numbered(i)));
            if (i == 8) {
                first.service();
                journal_middle = spool.contents().size();
            }
        }
        first.service();
        first.connection.stream().push_input(ack_frame(15));
        first.service();
    }
    // Cut the journal after message 8: the ACK records are gone, so
    // messages 1..8, which the server holds, come back from disk.
    spool.truncate(journal_middle);
    Run second(state, spool);
    CHECK(second.report.restored > 0);
    CHECK_EQUAL(Status::kOk, second.send("new"));
    second.online(15);
    for (const DataSeen& seen : second.data_sent()) {
        STRCMP_EQUAL("new", seen.payload.c_str());  // nothing the server had, again
        CHECK(seen.seq > 20);
    }
    UNSIGNED_LONGS_EQUAL(0, second.link.client().counters().renumbered);
}

TEST(DurableLink, ASmallerOutboxOnRestartReportsWhatItCannotHoldAsAGap) {
    tether::test::FakeStorage state, spool;
    {
        Run first(state, spool, 64 * 1024);
        for (int i = 1; i <= 200; ++i) {
            CHECK_EQUAL(Status::kOk, first.send(numbered(i)));
        }
        first.service();
    }
    Run second(state, spool, 2048);
    CHECK(second.report.evicted > 0);
    UNSIGNED_LONGS_EQUAL(200, second.report.restored + second.report.evicted);
    second.online(0);
    const std::vector<DataSeen> data = second.data_sent();
    CHECK(!data.empty());
    const std::vector<std::string> gaps = second.gaps_sent();
    CHECK(!gaps.empty());
    CHECK(gaps[0].find("\"first\":1,\"last\":" + std::to_string(data[0].seq - 1)) !=
          std::string::npos);
}

TEST(DurableLink, AFullDiskDegradesToMemoryOnceKeepsSendingAndRecovers) {
    tether::test::FakeStorage state, spool_disk;
    FlakyStorage spool(spool_disk);
    Run run(state, spool);
    run.online(0);
    spool.failing = true;
    for (int i = 1; i <= 50; ++i) {
        CHECK_EQUAL(Status::kOk, run.send(numbered(i)));
        run.service();
    }
    CHECK(run.link.spool_health() == tether::SpoolHealth::kDegraded);
    CHECK_EQUAL(1, run.listener.storage.size());  // said once, then counted
    CHECK_TRUE(run.listener.storage[0].failed);
    LONGS_EQUAL(ENOSPC, run.listener.storage[0].error);
    CHECK_EQUAL(50, run.data_sent().size());  // sending never stopped
    CHECK(run.link.counters().memory_only > 0);

    spool.failing = false;
    run.now += DurableLink::kSpoolRetryMs;
    run.service();
    CHECK(run.link.spool_health() == tether::SpoolHealth::kOk);
    CHECK_EQUAL(2, run.listener.storage.size());
    CHECK_FALSE(run.listener.storage[1].failed);
    // What was accepted meanwhile is on disk now: a kill loses none of it.
    tether::test::FakeStorage copy_state;
    copy_state.set_contents(state.contents());
    tether::test::FakeStorage copy_spool;
    copy_spool.set_contents(spool_disk.contents());
    Run after(copy_state, copy_spool);
    UNSIGNED_LONGS_EQUAL(50, after.report.restored);
}

TEST(DurableLink, AFailingStateRecordIsReportedOnce) {
    tether::test::FakeStorage state_disk, spool;
    FlakyStorage state(state_disk);
    Run run(state, spool);
    state.failing = true;
    state.error = EROFS;
    // Enough messages to cross the seq reservation, which must be saved.
    for (int i = 1; i <= 3000; ++i) {
        (void)run.send("x");
    }
    bool reported = false;
    for (const tether::StorageEvent& event : run.listener.storage) {
        if (event.what == tether::StorageEvent::What::kStateRecord && event.failed) {
            CHECK_FALSE(reported);
            LONGS_EQUAL(EROFS, event.error);
            reported = true;
        }
    }
    CHECK_TRUE(reported);
}

TEST(DurableLink, EvictionsUnderAFloodAreReportedAsOneRange) {
    tether::test::FakeStorage state, spool;
    Run run(state, spool, 2048);
    run.online(0);
    run.connection.stream().set_discard_output(true);
    run.connection.stream().block_next_writes(100000);  // the link stalls; the outbox overflows
    for (int i = 1; i <= 500; ++i) {
        CHECK_EQUAL(Status::kOk, run.send(numbered(i)));
        run.service();
    }
    run.now += DurableLink::kDropReportMs;
    run.service();
    CHECK(!run.listener.uplink_gaps.empty());
    CHECK(run.listener.uplink_gaps.size() <= 2);
}

TEST(DurableLink, DownlinkIsAcknowledgedOnlyOnceTheApplicationConfirmsIt) {
    tether::test::FakeStorage state, spool;
    Run run(state, spool);
    run.online(0);
    run.connection.stream().push_input(data_frame(1, "cmd-1"));
    run.service();
    run.now += 1000;  // past the ack interval
    run.service();
    UNSIGNED_LONGS_EQUAL(0, run.link.client().downlink_confirmed());
    for (const ClientFrame& frame : client_frames(run.output())) {
        CHECK_FALSE(frame.opcode == 2 && frame.payload.size() == 10 && frame.payload[0] == 'A');
    }
    run.link.confirm_downlink(1);
    run.service();  // starts the ack interval
    run.now += 1000;
    run.service();
    UNSIGNED_LONGS_EQUAL(1, run.link.client().downlink_confirmed());
    bool acked = false;
    for (const ClientFrame& frame : client_frames(run.output())) {
        acked = acked || (frame.opcode == 2 && frame.payload.size() == 10 &&
                          frame.payload[0] == 'A' && seq_of(frame.payload) == 1);
    }
    CHECK_TRUE(acked);
}

TEST(DurableLink, AFullApplicationKeepsTheLinkUpAndResumesOnceItHasRoom) {
    tether::test::FakeStorage state, spool;
    Run run(state, spool);
    run.online(0);
    run.listener.room = false;
    run.connection.stream().push_input(data_frame(1, "cmd-1"));
    run.connection.stream().push_input(data_frame(2, "cmd-2"));
    run.service();
    CHECK_EQUAL(LinkState::kOnline, run.link.state());  // pongs and uplink go on
    CHECK(run.listener.downlink_seqs.empty());
    CHECK_EQUAL(Status::kOk, run.send("uplink meanwhile"));
    run.service();
    CHECK_EQUAL(1, run.data_sent().size());
    run.listener.room = true;
    run.now += tether::Client::kDownlinkReplayMs;
    run.service();
    // One resume, so that the server sends 1 and 2 again.
    CHECK_EQUAL(LinkState::kWaitingToRetry, run.link.state());
    UNSIGNED_LONGS_EQUAL(2, run.link.client().counters().downlink_overruns);
}

TEST(DurableLink, MessagesRenumberedByAWelcomeStayOnDisk) {
    tether::test::FakeStorage state, spool;
    std::size_t after_five = 0;
    {
        Run first(state, spool);
        first.online(0);
        for (int i = 1; i <= 10; ++i) {
            CHECK_EQUAL(Status::kOk, first.send(numbered(i)));
            first.service();
            if (i == 5) {
                after_five = spool.contents().size();
            }
        }
    }
    // The state record is lost and the spool lags behind what the server got.
    state.truncate(0);
    spool.truncate(after_five);
    {
        Run second(state, spool);
        for (int i = 1; i <= 3; ++i) {
            CHECK_EQUAL(Status::kOk, second.send("n" + std::to_string(i)));
        }
        second.service();
        second.online(10);  // the server holds 1..10
        UNSIGNED_LONGS_EQUAL(3, second.link.client().counters().renumbered);
        second.service();
    }
    Run third(state, spool);  // killed again before the server acknowledged them
    std::vector<std::string> restored;
    tether::OutboxEntry entry;
    for (tether::Outbox::Iterator it = third.link.client().outbox().unacked(); it.next(&entry);) {
        CHECK(entry.seq > 10);
        restored.emplace_back(reinterpret_cast<const char*>(entry.data), entry.size);
    }
    CHECK_EQUAL(3, restored.size());
    STRCMP_EQUAL("n1", restored[0].c_str());
    STRCMP_EQUAL("n3", restored[2].c_str());
}

TEST(DurableLink, ADownlinkMessageTheApplicationRefusesIsFetchedAgain) {
    tether::test::FakeStorage state, spool;
    Run run(state, spool);
    run.online(0);
    run.listener.refuse = true;
    run.connection.stream().push_input(data_frame(1, "cmd-1"));
    run.service();
    CHECK_EQUAL(LinkState::kOnline, run.link.state());
    UNSIGNED_LONGS_EQUAL(1, run.link.client().counters().downlink_overruns);
    run.link.confirm_downlink(1);  // nothing was taken: nothing to confirm
    UNSIGNED_LONGS_EQUAL(0, run.link.client().downlink_confirmed());
    run.listener.refuse = false;
    run.service();
    CHECK_EQUAL(LinkState::kOnline, run.link.state());  // not at once: no reconnect loop
    run.now += tether::Client::kDownlinkReplayMs;
    run.service();
    CHECK_EQUAL(LinkState::kWaitingToRetry, run.link.state());  // one resume to fetch it again
}

TEST(DurableLink, DeviceStateNeedsTheResumeProtocol) {
    tether::test::FakeStorage state, spool;
    tether::DurableLinkConfig config = Run::make_config(64 * 1024, 1000);
    config.client.reconnect.resume_protocol = false;
    config.device_state.enabled = true;
    const tether::DurableLinkSizes sizes = tether::DurableLinkSizes::for_config(config);
    std::vector<std::uint8_t> memory(sizes.total());
    tether::test::FakeConnection connection;
    tether::test::FakeResolver resolver;
    tether::test::CountingRandom random;
    DurableLink link(config,
                     tether::DurableLinkBuffers{memory.data(), memory.data() + sizes.outbox,
                                                memory.data() + sizes.outbox + sizes.rx,
                                                memory.data() + sizes.outbox + sizes.rx + sizes.tx},
                     connection, resolver, random, &state, &spool, nullptr, nullptr);
    CHECK_EQUAL(Status::kInvalidArgument, link.open(nullptr));
    STRCMP_CONTAINS("tether.v1", link.error());
}

namespace {

// Three refused connects in a row: the run is backing off, attempts persisted.
void fail_three_times(Run& run) {
    for (int i = 0; i < 3; ++i) {
        run.connection.fail_next_open(tether::TransportError::kRefused);
    }
    run.link.start(run.now);
    for (int i = 0; i < 20 && run.link.client().machine().attempts() < 3; ++i) {
        run.service();
        if (run.link.state() == LinkState::kWaitingToRetry) {
            run.now += run.link.client().machine().retry_delay_ms();
        }
    }
    CHECK(run.link.client().machine().attempts() >= 3);
}

}  // namespace

TEST(DurableLink, ACleanStopClearsThePersistedBackoffSoTheNextRunConnectsAtOnce) {
    tether::test::FakeStorage state, spool;
    {
        Run first(state, spool);
        fail_three_times(first);
        first.link.stop(first.now, 1001);
        first.service();
        CHECK_EQUAL(Status::kOk, first.link.shutdown());
    }
    Run second(state, spool);
    UNSIGNED_LONGS_EQUAL(0, second.report.state.reconnect_attempts);
    second.link.start(second.now);
    CHECK(second.link.state() != LinkState::kWaitingToRetry);
}

TEST(DurableLink, AKilledRunStillBacksOffAfterTheRestart) {
    tether::test::FakeStorage state, spool;
    {
        Run first(state, spool);
        fail_three_times(first);
        // Killed: neither stop() nor shutdown() runs.
    }
    Run second(state, spool);
    CHECK(second.report.state.reconnect_attempts >= 3);
    second.link.start(second.now);
    CHECK_EQUAL(LinkState::kWaitingToRetry, second.link.state());
}

TEST(DurableLink, AShutdownWithoutStopKeepsTheBackoff) {
    tether::test::FakeStorage state, spool;
    {
        Run first(state, spool);
        fail_three_times(first);
        CHECK_EQUAL(Status::kOk, first.link.shutdown());
    }
    Run second(state, spool);
    CHECK(second.report.state.reconnect_attempts >= 3);
}

TEST(DurableLink, SyncSpoolMakesEverythingAcceptedSurviveAPowerCut) {
    tether::test::FakeStorage state, spool;
    {
        Run first(state, spool, 64 * 1024, 60000);
        for (int i = 1; i <= 3; ++i) {
            CHECK_EQUAL(Status::kOk, first.send(numbered(i)));
        }
        first.service();  // the first sync is never waited for
        for (int i = 4; i <= 6; ++i) {
            CHECK_EQUAL(Status::kOk, first.send(numbered(i)));
        }
        CHECK_EQUAL(Status::kOk, first.link.sync_spool());  // tetherctl flush
    }
    spool.crash();
    Run second(state, spool);
    UNSIGNED_LONGS_EQUAL(6, second.report.restored);
}

TEST(DurableLink, ASyncSpoolThatFailsIsReportedOnceAndDegrades) {
    tether::test::FakeStorage state, spool_disk;
    FlakyStorage spool(spool_disk);
    Run run(state, spool, 64 * 1024, 60000);
    CHECK_EQUAL(Status::kOk, run.send("m1"));
    spool.failing = true;
    CHECK(run.link.sync_spool() != Status::kOk);
    CHECK(run.link.spool_health() == tether::SpoolHealth::kDegraded);
    CHECK_EQUAL(1, run.listener.storage.size());
    CHECK_EQUAL(Status::kIoError, run.link.sync_spool());  // still memory only: said already
    CHECK_EQUAL(1, run.listener.storage.size());
}

TEST(DurableLink, ConnectNowCutsARestoredBackoffShort) {
    tether::test::FakeStorage state, spool;
    {
        Run first(state, spool);
        first.link.start(first.now);  // one attempt counted and persisted, never healthy
        first.service();
    }
    Run second(state, spool);
    second.link.start(second.now);
    CHECK_EQUAL(LinkState::kWaitingToRetry, second.link.state());
    CHECK_TRUE(second.link.connect_now(second.now));
    CHECK(second.link.state() != LinkState::kWaitingToRetry);
    second.service();
    CHECK_EQUAL(LinkState::kWsHandshake, second.link.state());
    CHECK_FALSE(second.link.connect_now(second.now));  // already connecting: nothing to hurry
}

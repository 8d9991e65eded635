// SPDX-License-Identifier: MIT
// The device-state extension (docs/PROTOCOL.md section 9) in the durable link
// and its client, against a scripted tether.v1 server and fake disks:
// negotiation, desired increments, snapshots, duplicates and skips, folding
// while the application is busy, the commit point, reports in flight across
// reconnects and restarts, refusals, and storage failures.
#include <sys/stat.h>

#include <cerrno>
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
#include "support/temp_dir.h"
#include "support/tether_strings.h"
#include "support/v1_frames.h"
#include "tether/durable_link.h"
#include "tether/net/state_messages.h"
#include "tether/net/tether_v1.h"
#include "tether/port/posix_link.h"

using tether::DurableLink;
using tether::LinkState;
using tether::Status;
using tether::TimeMs;
using tether::test::client_frames;
using tether::test::ClientFrame;
using tether::test::server_frame;

namespace {

constexpr const char* kSession = "7ada0a06-5620-4a46-80ff-248e31991504";

// A disk that fails every write and sync while `failing`.
class FlakyStorage final : public tether::Storage {
  public:
    explicit FlakyStorage(tether::test::FakeStorage& inner) : inner_(inner) {}
    Status read(std::uint32_t offset, std::uint8_t* out, std::size_t size,
                std::size_t* read_size) override {
        return inner_.read(offset, out, size, read_size);
    }
    Status write(std::uint32_t offset, const std::uint8_t* data, std::size_t size) override {
        return failing ? Status::kIoError : inner_.write(offset, data, size);
    }
    Status sync() override { return failing ? Status::kIoError : inner_.sync(); }
    int last_error() const override { return failing ? ENOSPC : 0; }
    bool failing = false;

  private:
    tether::test::FakeStorage& inner_;
};

struct Change {
    std::uint64_t version;
    bool snapshot;
    std::string patch;
    std::string document;
};

struct Listener final : tether::DurableLinkListener {
    void on_storage(const tether::StorageEvent& event) override { storage.push_back(event); }
    void on_desired(const tether::DesiredChange& change) override {
        changes.push_back(
            {change.version, change.snapshot,
             change.patch != nullptr ? std::string(change.patch, change.patch_size) : std::string(),
             std::string(change.document, change.document_size)});
        if (apply_at_once && link != nullptr) {
            CHECK_EQUAL(Status::kOk, link->desired_applied(change.version));
        }
    }
    void on_report_answer(const tether::ReportAnswer& answer) override {
        answers.push_back(answer);
        answer_reasons.push_back(answer.reason);
        answer_documents.push_back(answer.document != nullptr
                                       ? std::string(answer.document, answer.document_size)
                                       : std::string());
    }
    tether::DurableLink* link = nullptr;
    bool apply_at_once = false;
    std::vector<Change> changes;
    std::vector<tether::ReportAnswer> answers;
    std::vector<std::string> answer_reasons;
    std::vector<std::string> answer_documents;
    std::vector<tether::StorageEvent> storage;
};

std::string text_frame(const char* json, std::size_t size) {
    return server_frame(0x1, std::string(json, size));
}

std::string welcome(std::uint64_t last_uplink, bool state) {
    tether::net::v1::Welcome w;
    std::snprintf(w.session, sizeof w.session, "%s", kSession);
    w.resumed = true;
    w.last_uplink = last_uplink;
    w.features = state ? tether::net::v1::kFeatureState : 0;
    char out[512];
    std::size_t length = 0;
    CHECK(tether::net::v1::write_welcome(w, out, sizeof out, &length) ==
          tether::net::v1::V1Status::kOk);
    return text_frame(out, length);
}

std::string desired(std::uint64_t version, bool snapshot, const std::string& document) {
    char out[tether::net::v1::kMaxStateMessage];
    std::size_t length = 0;
    CHECK(tether::net::v1::write_desired(version, snapshot, document.data(), document.size(), out,
                                         sizeof out, &length) == tether::net::v1::V1Status::kOk);
    return text_frame(out, length);
}

std::string report_ok(const char* id, std::uint64_t version) {
    char out[256];
    std::size_t length = 0;
    CHECK(tether::net::v1::write_report_ok(id, version, out, sizeof out, &length) ==
          tether::net::v1::V1Status::kOk);
    return text_frame(out, length);
}

std::string report_refused(const char* id, const char* reason, std::uint64_t version,
                           const std::string& document) {
    char out[tether::net::v1::kMaxStateMessage];
    std::size_t length = 0;
    CHECK(tether::net::v1::write_report_refused(
              id, reason, version, document.empty() ? nullptr : document.data(), document.size(),
              out, sizeof out, &length) == tether::net::v1::V1Status::kOk);
    return text_frame(out, length);
}

// A state message the client sent.
struct Sent {
    tether::net::v1::StateMessage message;
    std::string document;
};

// One run of a device over the same disks, which outlive it.
struct Run {
    explicit Run(tether::Storage& state_disk, tether::Storage& device_disk,
                 std::size_t max_message = 16 * 1024, bool enabled = true)
        : config(make_config(max_message, enabled)),
          sizes(tether::DurableLinkSizes::for_config(config)),
          memory(sizes.total()),
          link(config, buffers(), connection, resolver, random, &state_disk, nullptr, nullptr,
               &listener) {
        listener.link = &link;
        link.set_device_state_storage(&device_disk);
    }

    tether::DurableLinkBuffers buffers() {
        tether::DurableLinkBuffers b{};
        b.outbox = memory.data();
        b.rx = b.outbox + sizes.outbox;
        b.tx = b.rx + sizes.rx;
        b.spool = nullptr;
        b.device_state = b.tx + sizes.tx;
        return b;
    }

    static tether::DurableLinkConfig make_config(std::size_t max_message, bool enabled = true) {
        tether::DurableLinkConfig c;
        c.client.urls[0] = "ws://127.0.0.1:9000/v1";
        c.client.url_count = 1;
        c.client.reconnect.resume_protocol = true;
        c.client.reconnect.backoff.jitter = tether::JitterMode::kNone;
        c.client.session_id = kSession;
        c.client.device_id = "pi-17";
        c.client.ws.max_message_size = max_message;
        c.outbox_bytes = 64 * 1024;
        c.device_state.enabled = enabled;
        return c;
    }

    void open() { CHECK_EQUAL(Status::kOk, link.open(nullptr)); }
    void service() { link.service(now); }
    std::string output() { return connection.stream().output_string(); }
    void push(const std::string& bytes) {
        connection.stream().push_input(bytes);
        service();
    }

    // Up to the welcome; `state` says whether it accepts the extension.
    void online(bool state = true) {
        if (link.state() == LinkState::kIdle) {
            link.start(now);
        }
        if (link.state() == LinkState::kWaitingToRetry) {
            now += link.client().machine().retry_delay_ms();
        }
        service();
        CHECK_EQUAL(LinkState::kWsHandshake, link.state());
        connection.stream().push_input(tether::test::v1_upgrade_response(output()));
        service();
        CHECK_EQUAL(LinkState::kSessionResume, link.state());
        push(welcome(0, state));
        CHECK_EQUAL(LinkState::kOnline, link.state());
        service();
    }

    // The link loses its connection and comes back.
    void reconnect() {
        connection.stream().push_eof();
        service();
        online();
    }

    tether::net::v1::Hello hello() {
        for (const ClientFrame& frame : client_frames(output())) {
            tether::net::v1::Control control{};
            if (frame.opcode == 1 &&
                tether::net::v1::parse_control(
                    reinterpret_cast<const std::uint8_t*>(frame.payload.data()),
                    frame.payload.size(), &control) == tether::net::v1::V1Status::kOk &&
                control.type == tether::net::v1::ControlType::kHello) {
                return control.hello;
            }
        }
        FAIL("no hello sent");
        return {};
    }

    std::vector<Sent> state_sent() {
        std::vector<Sent> out;
        for (const ClientFrame& frame : client_frames(output())) {
            if (frame.opcode != 1) {
                continue;
            }
            Sent sent;
            char document[tether::net::v1::kMaxStateDocument];
            if (tether::net::v1::parse_state_message(
                    reinterpret_cast<const std::uint8_t*>(frame.payload.data()),
                    frame.payload.size(), &sent.message, document,
                    sizeof document) == tether::net::v1::V1Status::kOk) {
                sent.document.assign(document, sent.message.document_size);
                out.push_back(sent);
            }
        }
        return out;
    }
    std::vector<Sent> reports_sent() {
        std::vector<Sent> out;
        for (const Sent& sent : state_sent()) {
            if (sent.message.type == tether::net::v1::StateType::kReport) {
                out.push_back(sent);
            }
        }
        return out;
    }
    std::vector<std::uint64_t> applied_sent() {
        std::vector<std::uint64_t> out;
        for (const Sent& sent : state_sent()) {
            if (sent.message.type == tether::net::v1::StateType::kApplied) {
                out.push_back(sent.message.version);
            }
        }
        return out;
    }
    // The close code of the client's close frame, 0 when none.
    unsigned close_code() {
        for (const ClientFrame& frame : client_frames(output())) {
            if (frame.opcode == 8 && frame.payload.size() >= 2) {
                return static_cast<unsigned>(static_cast<std::uint8_t>(frame.payload[0])) << 8 |
                       static_cast<std::uint8_t>(frame.payload[1]);
            }
        }
        return 0;
    }

    std::string desired_document() {
        std::size_t size = 0;
        const char* document = link.desired_document(&size);
        return std::string(document, size);
    }
    std::string reported_document() {
        std::size_t size = 0;
        const char* document = link.reported_document(&size);
        return std::string(document, size);
    }
    Status report(const std::string& json, bool whole = false) {
        return link.report(json.data(), json.size(), whole);
    }

    tether::DurableLinkConfig config;
    tether::DurableLinkSizes sizes;
    std::vector<std::uint8_t> memory;
    tether::test::FakeConnection connection;
    tether::test::FakeResolver resolver;
    tether::test::CountingRandom random;
    Listener listener;
    DurableLink link;
    TimeMs now = 1000;
};

}  // namespace

TEST_GROUP(DurableLinkState){};

TEST(DurableLinkState, TheHelloOffersStateWithTheAppliedVersion) {
    tether::test::FakeStorage state, device;
    Run run(state, device);
    run.open();
    run.online();
    const tether::net::v1::Hello hello = run.hello();
    CHECK((hello.features & tether::net::v1::kFeatureState) != 0);
    UNSIGNED_LONGS_EQUAL(0, hello.desired_version);
    CHECK_TRUE(run.link.device_state().negotiated);
    CHECK_TRUE(run.link.device_state().enabled);
    STRCMP_EQUAL("{}", run.desired_document().c_str());
    STRCMP_EQUAL("{}", run.reported_document().c_str());
}

TEST(DurableLinkState, WithoutNegotiationAStateMessageIsAViolation) {
    tether::test::FakeStorage state, device;
    Run run(state, device);
    run.open();
    run.online(false);
    CHECK_FALSE(run.link.device_state().negotiated);
    run.push(desired(1, true, "{\"a\":1}"));
    UNSIGNED_LONGS_EQUAL(tether::net::v1::kCloseViolation, run.close_code());
    CHECK_EQUAL(0, run.listener.changes.size());
}

TEST(DurableLinkState, AReportWaitsForANegotiatedConnection) {
    tether::test::FakeStorage state, device;
    Run run(state, device);
    run.open();
    run.online(false);
    CHECK_EQUAL(Status::kOk, run.report("{\"fw\":\"1.0\"}"));
    run.service();
    CHECK_EQUAL(0, run.reports_sent().size());
    CHECK_TRUE(run.link.device_state().report_pending);
}

TEST(DurableLinkState, AnIncrementIsDeliveredAndAppliedIsSentOnlyAfterTheConfirmation) {
    tether::test::FakeStorage state, device;
    Run run(state, device);
    run.open();
    run.online();
    run.push(desired(1, true, "{\"rate\":10,\"on\":true}"));
    CHECK_EQUAL(1, run.listener.changes.size());
    CHECK_TRUE(run.listener.changes[0].snapshot);
    STRCMP_EQUAL("{\"rate\":10,\"on\":true}", run.listener.changes[0].document.c_str());
    CHECK_EQUAL(0, run.applied_sent().size());  // not confirmed yet
    CHECK_EQUAL(Status::kOk, run.link.desired_applied(1));
    run.service();
    CHECK_EQUAL(1, run.applied_sent().size());
    UNSIGNED_LONGS_EQUAL(1, run.applied_sent()[0]);
    STRCMP_EQUAL("{\"rate\":10,\"on\":true}", run.desired_document().c_str());

    run.push(desired(2, false, "{\"rate\":20}"));
    CHECK_EQUAL(2, run.listener.changes.size());
    const Change& increment = run.listener.changes[1];
    CHECK_FALSE(increment.snapshot);
    UNSIGNED_LONGS_EQUAL(2, increment.version);
    STRCMP_EQUAL("{\"rate\":20}", increment.patch.c_str());
    STRCMP_EQUAL("{\"rate\":20,\"on\":true}", increment.document.c_str());
    CHECK_EQUAL(Status::kInvalidArgument, run.link.desired_applied(3));  // not the one delivered
    CHECK_EQUAL(Status::kOk, run.link.desired_applied(2));
    run.service();
    CHECK_EQUAL(2, run.applied_sent().size());
    CHECK_TRUE(run.link.device_state().in_sync);
    UNSIGNED_LONGS_EQUAL(1, run.link.device_state().desired_snapshots);
    UNSIGNED_LONGS_EQUAL(1, run.link.device_state().desired_increments);
}

TEST(DurableLinkState, DuplicatesAreDroppedAndASkippedVersionIsAViolation) {
    tether::test::FakeStorage state, device;
    Run run(state, device);
    run.listener.apply_at_once = true;
    run.open();
    run.online();
    run.push(desired(1, true, "{\"a\":1}"));
    run.push(desired(1, true, "{\"a\":1}"));  // the same snapshot again
    run.push(desired(2, false, "{\"b\":2}"));
    run.push(desired(2, false, "{\"b\":2}"));  // a duplicate increment
    run.push(desired(1, false, "{\"a\":1}"));  // an old one
    CHECK_EQUAL(2, run.listener.changes.size());
    UNSIGNED_LONGS_EQUAL(0, run.close_code());
    STRCMP_EQUAL("{\"a\":1,\"b\":2}", run.desired_document().c_str());

    run.push(desired(4, false, "{\"c\":3}"));  // 3 is missing
    UNSIGNED_LONGS_EQUAL(tether::net::v1::kCloseViolation, run.close_code());
    CHECK_EQUAL(2, run.listener.changes.size());
    STRCMP_EQUAL("{\"a\":1,\"b\":2}", run.desired_document().c_str());
}

TEST(DurableLinkState, ASnapshotReplacesTheDocumentEvenAtALowerVersion) {
    tether::test::FakeStorage state, device;
    Run run(state, device);
    run.listener.apply_at_once = true;
    run.open();
    run.online();
    run.push(desired(5, true, "{\"a\":1,\"b\":2}"));
    // The server was restored from a backup: it is the authority.
    run.push(desired(3, true, "{\"a\":0}"));
    CHECK_EQUAL(2, run.listener.changes.size());
    CHECK_TRUE(run.listener.changes[1].snapshot);
    UNSIGNED_LONGS_EQUAL(3, run.listener.changes[1].version);
    STRCMP_EQUAL("{\"a\":0}", run.desired_document().c_str());
    UNSIGNED_LONGS_EQUAL(3, run.link.device_state().desired_applied);
}

TEST(DurableLinkState, ChangesWhileTheApplicationIsBusyAreFoldedIntoOneSnapshot) {
    tether::test::FakeStorage state, device;
    Run run(state, device);
    run.open();
    run.online();
    run.push(desired(1, true, "{\"a\":1}"));
    CHECK_EQUAL(1, run.listener.changes.size());
    run.push(desired(2, false, "{\"b\":2}"));
    run.push(desired(3, false, "{\"a\":null,\"c\":3}"));
    CHECK_EQUAL(1, run.listener.changes.size());  // the application has not confirmed 1
    UNSIGNED_LONGS_EQUAL(3, run.link.device_state().desired_received);
    CHECK_EQUAL(Status::kOk, run.link.desired_applied(1));
    run.service();
    CHECK_EQUAL(2, run.listener.changes.size());
    const Change& folded = run.listener.changes[1];
    CHECK_TRUE(folded.snapshot);
    UNSIGNED_LONGS_EQUAL(3, folded.version);
    STRCMP_EQUAL("{\"b\":2,\"c\":3}", folded.document.c_str());
    CHECK_EQUAL(Status::kOk, run.link.desired_applied(3));
    run.service();
    STRCMP_EQUAL("{\"b\":2,\"c\":3}", run.desired_document().c_str());
    const std::vector<std::uint64_t> applied = run.applied_sent();
    CHECK_EQUAL(2, applied.size());
    UNSIGNED_LONGS_EQUAL(3, applied[1]);
}

TEST(DurableLinkState, ACrashBeforeTheConfirmationDeliversTheChangeAgainExactlyOnce) {
    tether::test::FakeStorage state, device;
    {
        Run run(state, device);
        run.listener.apply_at_once = true;
        run.open();
        run.online();
        run.push(desired(1, true, "{\"a\":1}"));
        run.listener.apply_at_once = false;
        run.push(desired(2, false, "{\"a\":2}"));
        CHECK_EQUAL(2, run.listener.changes.size());
        // The process dies before the application confirms 2.
    }
    Run run(state, device);
    run.open();
    STRCMP_EQUAL("{\"a\":1}", run.desired_document().c_str());
    run.online();
    UNSIGNED_LONGS_EQUAL(1, run.hello().desired_version);
    run.push(desired(2, false, "{\"a\":2}"));
    run.push(desired(2, false, "{\"a\":2}"));
    CHECK_EQUAL(1, run.listener.changes.size());
    CHECK_FALSE(run.listener.changes[0].snapshot);
    UNSIGNED_LONGS_EQUAL(2, run.listener.changes[0].version);
    STRCMP_EQUAL("{\"a\":2}", run.listener.changes[0].document.c_str());
}

TEST(DurableLinkState, AppliedIsSentOnlyOnceTheSaveSucceededAndAFailureIsReportedOnce) {
    tether::test::FakeStorage state, inner;
    FlakyStorage device(inner);
    Run run(state, device);
    run.open();
    run.online();
    run.push(desired(1, true, "{\"a\":1}"));
    device.failing = true;
    CHECK_EQUAL(Status::kIoError, run.link.desired_applied(1));
    run.service();
    CHECK_EQUAL(0, run.applied_sent().size());
    CHECK_EQUAL(1, run.listener.storage.size());
    CHECK(run.listener.storage[0].what == tether::StorageEvent::What::kDeviceState);
    CHECK_TRUE(run.listener.storage[0].failed);
    LONGS_EQUAL(ENOSPC, run.listener.storage[0].error);
    // Tried again every 5 s, reported once.
    TimeMs at = 0;
    CHECK_TRUE(run.link.next_deadline(&at));
    run.now += DurableLink::kSpoolRetryMs;
    run.service();
    CHECK_EQUAL(1, run.listener.storage.size());
    CHECK(run.link.device_state().state_failures >= 2);
    CHECK_EQUAL(0, run.applied_sent().size());
    UNSIGNED_LONGS_EQUAL(0, run.link.client().desired_version());
    device.failing = false;
    run.now += DurableLink::kSpoolRetryMs;
    run.service();
    CHECK_EQUAL(2, run.listener.storage.size());
    CHECK_FALSE(run.listener.storage[1].failed);
    CHECK_EQUAL(1, run.applied_sent().size());
    UNSIGNED_LONGS_EQUAL(1, run.link.client().desired_version());
}

TEST(DurableLinkState, AReportGoesAsAPatchAndIsResentAfterAReconnectWithTheSameIdAndBase) {
    tether::test::FakeStorage state, device;
    Run run(state, device);
    run.open();
    run.online();
    CHECK_EQUAL(Status::kOk, run.report("{ \"fw\" : \"1.0\" }"));
    run.service();
    std::vector<Sent> reports = run.reports_sent();
    CHECK_EQUAL(1, reports.size());
    CHECK_FALSE(reports[0].message.whole);
    UNSIGNED_LONGS_EQUAL(0, reports[0].message.base);
    STRCMP_EQUAL("{\"fw\":\"1.0\"}", reports[0].document.c_str());
    CHECK_TRUE(tether::net::v1::is_report_id(reports[0].message.id, 16));
    const std::string id = reports[0].message.id;

    run.reconnect();
    reports = run.reports_sent();
    CHECK_EQUAL(1, reports.size());
    STRCMP_EQUAL(id.c_str(), reports[0].message.id);
    UNSIGNED_LONGS_EQUAL(0, reports[0].message.base);

    run.push(report_ok(id.c_str(), 1));
    CHECK_EQUAL(1, run.listener.answers.size());
    CHECK_TRUE(run.listener.answers[0].accepted);
    UNSIGNED_LONGS_EQUAL(1, run.link.device_state().reported_version);
    CHECK_FALSE(run.link.device_state().report_pending);
    run.reconnect();
    CHECK_EQUAL(0, run.reports_sent().size());  // answered: never again
}

TEST(DurableLinkState, AReportInFlightSurvivesARestart) {
    tether::test::FakeStorage state, device;
    std::string id;
    {
        Run run(state, device);
        run.open();
        run.online();
        CHECK_EQUAL(Status::kOk, run.report("{\"fw\":\"1.0\"}"));
        run.service();
        id = run.reports_sent().at(0).message.id;
    }
    Run run(state, device);
    run.open();
    STRCMP_EQUAL("{\"fw\":\"1.0\"}", run.reported_document().c_str());
    run.online();
    const std::vector<Sent> reports = run.reports_sent();
    CHECK_EQUAL(1, reports.size());
    STRCMP_EQUAL(id.c_str(), reports[0].message.id);
}

TEST(DurableLinkState, ReportsMadeWhileOneIsInFlightGoTogetherAsTheWholeDocument) {
    tether::test::FakeStorage state, device;
    Run run(state, device);
    run.open();
    run.online();
    CHECK_EQUAL(Status::kOk, run.report("{\"fw\":\"1.0\"}"));
    run.service();
    CHECK_EQUAL(Status::kOk, run.report("{\"temp\":20}"));
    CHECK_EQUAL(Status::kOk, run.report("{\"temp\":21,\"up\":true}"));
    run.service();
    CHECK_EQUAL(1, run.reports_sent().size());  // one in flight
    const std::string first = run.reports_sent()[0].message.id;
    run.push(report_ok(first.c_str(), 1));
    const std::vector<Sent> reports = run.reports_sent();
    CHECK_EQUAL(2, reports.size());
    CHECK_TRUE(reports[1].message.whole);
    UNSIGNED_LONGS_EQUAL(1, reports[1].message.base);
    STRCMP_EQUAL("{\"fw\":\"1.0\",\"temp\":21,\"up\":true}", reports[1].document.c_str());
    CHECK(first != reports[1].message.id);
}

TEST(DurableLinkState, OneReportMadeWhileOneIsInFlightGoesAsItsPatch) {
    tether::test::FakeStorage state, device;
    Run run(state, device);
    run.open();
    run.online();
    CHECK_EQUAL(Status::kOk, run.report("{\"fw\":\"1.0\"}"));
    run.service();
    CHECK_EQUAL(Status::kOk, run.report("{\"temp\":20}"));
    run.push(report_ok(run.reports_sent()[0].message.id, 1));
    const std::vector<Sent> reports = run.reports_sent();
    CHECK_EQUAL(2, reports.size());
    CHECK_FALSE(reports[1].message.whole);
    STRCMP_EQUAL("{\"temp\":20}", reports[1].document.c_str());
    UNSIGNED_LONGS_EQUAL(1, reports[1].message.base);
}

TEST(DurableLinkState, AStaleRefusalAdoptsTheServersDocumentAndIsNotResentByItself) {
    tether::test::FakeStorage state, device;
    Run run(state, device);
    run.open();
    run.online();
    CHECK_EQUAL(Status::kOk, run.report("{\"fw\":\"1.0\"}"));
    run.service();
    const std::string id = run.reports_sent()[0].message.id;
    run.push(report_refused(id.c_str(), "stale", 4, "{\"fw\":\"0.9\",\"x\":1}"));
    CHECK_EQUAL(1, run.listener.answers.size());
    CHECK_FALSE(run.listener.answers[0].accepted);
    STRCMP_EQUAL("stale", run.listener.answer_reasons[0].c_str());
    UNSIGNED_LONGS_EQUAL(4, run.listener.answers[0].version);
    STRCMP_EQUAL("{\"fw\":\"0.9\",\"x\":1}", run.listener.answer_documents[0].c_str());
    UNSIGNED_LONGS_EQUAL(4, run.link.device_state().reported_version);
    UNSIGNED_LONGS_EQUAL(1, run.link.device_state().reports_refused);
    CHECK_FALSE(run.link.device_state().report_pending);
    STRCMP_EQUAL("{\"fw\":\"1.0\"}", run.reported_document().c_str());  // the device's truth
    run.reconnect();
    CHECK_EQUAL(0, run.reports_sent().size());

    // The application's next report goes on the new version, as the whole
    // document (the device's differs from the server's).
    CHECK_EQUAL(Status::kOk, run.report("{\"temp\":3}"));
    run.service();
    const std::vector<Sent> reports = run.reports_sent();
    CHECK_EQUAL(1, reports.size());
    CHECK_TRUE(reports[0].message.whole);
    UNSIGNED_LONGS_EQUAL(4, reports[0].message.base);
    STRCMP_EQUAL("{\"fw\":\"1.0\",\"temp\":3}", reports[0].document.c_str());
}

TEST(DurableLinkState, WithoutEntropyAReportWaitsForItsId) {
    tether::test::FakeStorage state, device;
    Run run(state, device);
    run.open();
    run.online();
    run.random.failing = true;  // fails closed: no id, no report
    CHECK_EQUAL(Status::kOk, run.report("{\"fw\":\"1.0\"}"));
    run.service();
    CHECK_EQUAL(0, run.reports_sent().size());
    CHECK_TRUE(run.link.device_state().report_pending);
    run.random.failing = false;
    run.service();
    CHECK_EQUAL(1, run.reports_sent().size());
    CHECK_TRUE(tether::net::v1::is_report_id(run.reports_sent()[0].message.id, 16));
}

TEST(DurableLinkState, AReportThatChangesNothingSendsNothing) {
    tether::test::FakeStorage state, device;
    Run run(state, device);
    run.open();
    run.online();
    CHECK_EQUAL(Status::kOk, run.report("{\"fw\":\"1.0\"}", true));
    run.service();
    CHECK_EQUAL(Status::kOk, run.report("{\"fw\":\"1.0\"}", true));  // in flight already
    run.push(report_ok(run.reports_sent()[0].message.id, 1));
    CHECK_EQUAL(Status::kOk, run.report("{\"fw\":\"1.0\"}", true));  // the server has it
    CHECK_EQUAL(Status::kOk, run.report("{\"fw\":\"1.0\"}"));
    run.service();
    CHECK_EQUAL(1, run.reports_sent().size());
    CHECK_TRUE(run.link.device_state().in_sync);
}

TEST(DurableLinkState, AnUnavailableStoreGetsTheSameReportAgainLater) {
    tether::test::FakeStorage state, device;
    Run run(state, device);
    run.open();
    run.online();
    CHECK_EQUAL(Status::kOk, run.report("{\"fw\":\"1.0\"}"));
    run.service();
    const std::string id = run.reports_sent()[0].message.id;
    run.push(report_refused(id.c_str(), "unavailable", 0, ""));
    CHECK_EQUAL(1, run.reports_sent().size());
    CHECK_TRUE(run.link.device_state().report_pending);
    run.now += DurableLink::kSpoolRetryMs;
    run.service();
    const std::vector<Sent> reports = run.reports_sent();
    CHECK_EQUAL(2, reports.size());
    STRCMP_EQUAL(id.c_str(), reports[1].message.id);
}

TEST(DurableLinkState, AnAnswerToAnotherReportChangesNothing) {
    tether::test::FakeStorage state, device;
    Run run(state, device);
    run.open();
    run.online();
    CHECK_EQUAL(Status::kOk, run.report("{\"fw\":\"1.0\"}"));
    run.service();
    run.push(report_ok("00000000000000ff", 9));
    CHECK_EQUAL(0, run.listener.answers.size());
    UNSIGNED_LONGS_EQUAL(0, run.link.device_state().reported_version);
    UNSIGNED_LONGS_EQUAL(0, run.close_code());
}

TEST(DurableLinkState, ReportsAreValidatedAndBounded) {
    tether::test::FakeStorage state, device;
    Run run(state, device);
    run.open();
    CHECK_EQUAL(Status::kInvalidArgument, run.report("[1,2]"));
    CHECK_EQUAL(Status::kInvalidArgument, run.report("{\"a\":1,\"a\":2}"));
    CHECK_EQUAL(Status::kInvalidArgument, run.report("not json"));
    const std::string big =
        "{\"k\":\"" + std::string(tether::net::v1::kMaxStateDocument, 'x') + "\"}";
    CHECK_EQUAL(Status::kTooLarge, run.report(big));
    CHECK_FALSE(run.link.device_state().report_pending);
    STRCMP_EQUAL("{}", run.reported_document().c_str());
}

TEST(DurableLinkState, ATornDeviceStateSlotFallsBackToTheOlderOne) {
    tether::test::FakeStorage state, device;
    {
        Run run(state, device);
        run.listener.apply_at_once = true;
        run.open();
        run.online();
        run.push(desired(1, true, "{\"a\":1}"));   // saved in slot 0
        run.push(desired(2, false, "{\"a\":2}"));  // saved in slot 1
    }
    // Slot 1's first document byte is damaged.
    const std::size_t slot =
        tether::DeviceStateRecord::slot_size(tether::net::v1::kMaxStateDocument);
    device.flip_bit(slot + tether::DeviceStateRecord::kHeaderSize, 0);
    Run run(state, device);
    run.open();
    STRCMP_EQUAL("{\"a\":1}", run.desired_document().c_str());
    run.online();
    UNSIGNED_LONGS_EQUAL(1, run.hello().desired_version);
}

TEST(DurableLinkState, ASmallMessageLimitIsRefusedWithAClearError) {
    tether::test::FakeStorage state, device;
    Run run(state, device, 4096);
    CHECK_EQUAL(Status::kInvalidArgument, run.link.open(nullptr));
    CHECK(std::strstr(run.link.error(), "max message size") != nullptr);
}

TEST(DurableLinkState, TheFeatureNeedsItsStorage) {
    tether::test::FakeStorage state, device;
    Run run(state, device);
    run.link.set_device_state_storage(nullptr);
    CHECK_EQUAL(Status::kInvalidArgument, run.link.open(nullptr));
}

TEST(DurableLinkState, OffItCostsNoBufferAndRefusesItsCalls) {
    tether::DurableLinkConfig config = Run::make_config(16 * 1024);
    config.device_state.enabled = false;
    UNSIGNED_LONGS_EQUAL(0, tether::DurableLinkSizes::for_config(config).device_state);
    config.device_state.enabled = true;
    CHECK(tether::DurableLinkSizes::for_config(config).device_state > 0);
}

namespace {

// A disk that dies after `budget` writes and syncs: that call and every later
// one fails and changes nothing.
class DyingStorage final : public tether::Storage {
  public:
    DyingStorage(tether::test::FakeStorage& inner, std::size_t budget)
        : inner_(inner), left_(budget) {}
    Status read(std::uint32_t offset, std::uint8_t* out, std::size_t size,
                std::size_t* read_size) override {
        return inner_.read(offset, out, size, read_size);
    }
    Status write(std::uint32_t offset, const std::uint8_t* data, std::size_t size) override {
        return take() ? inner_.write(offset, data, size) : Status::kIoError;
    }
    Status sync() override { return take() ? inner_.sync() : Status::kIoError; }
    std::size_t used = 0;

  private:
    bool take() {
        ++used;
        if (left_ == 0) {
            return false;
        }
        --left_;
        return true;
    }
    tether::test::FakeStorage& inner_;
    std::size_t left_;
};

std::string numbered_document(std::uint64_t version) {
    return "{\"n\":" + std::to_string(version) + "}";
}

struct Workload {
    std::uint64_t applied_on_wire = 0;  // highest "applied" the first run sent
    std::string last_report_id;         // the last report it sent, unanswered
    std::uint64_t last_report_base = 0;
    std::size_t disk_calls = 0;
};

// Desired 1..6 applied at once, and reports, one of them answered.
Workload run_workload(tether::test::FakeStorage& state, tether::test::FakeStorage& device,
                      std::size_t budget) {
    DyingStorage disk(device, budget);
    Run run(state, disk);
    run.listener.apply_at_once = false;
    run.open();
    run.online();
    for (std::uint64_t v = 1; v <= 6; ++v) {
        run.push(v == 1 ? desired(v, true, numbered_document(v))
                        : desired(v, false, numbered_document(v)));
        (void)run.link.desired_applied(v);
        run.service();
        if (v == 2) {
            (void)run.report("{\"fw\":\"1.0\"}");
            run.service();
        }
        if (v == 4) {
            const std::vector<Sent> reports = run.reports_sent();
            if (!reports.empty()) {
                run.push(report_ok(reports.back().message.id, reports.back().message.base + 1));
            }
            (void)run.report("{\"fw\":\"2.0\"}");
            run.service();
        }
    }
    Workload w;
    for (std::uint64_t v : run.applied_sent()) {
        w.applied_on_wire = v > w.applied_on_wire ? v : w.applied_on_wire;
    }
    const std::vector<Sent> reports = run.reports_sent();
    if (!reports.empty()) {
        w.last_report_id = reports.back().message.id;
        w.last_report_base = reports.back().message.base;
    }
    w.disk_calls = disk.used;
    return w;
}

}  // namespace

// At every write and sync of the device-state disk the device dies (a kill,
// or a power cut that loses what was not synced). The next run never names
// a desired version below one the server was told was applied, holds exactly
// the document of the version it names, and still has the last report it
// sent (same id) unless that report was acknowledged.
TEST(DurableLinkState, EveryCrashPointKeepsWhatTheServerWasTold) {
    tether::test::FakeStorage probe_state, probe_device;
    const std::size_t total = run_workload(probe_state, probe_device, 1000000).disk_calls;
    CHECK(total > 10);
    for (std::size_t budget = 0; budget <= total; ++budget) {
        for (int power_cut = 0; power_cut < 2; ++power_cut) {
            tether::test::FakeStorage state, device;
            const Workload w = run_workload(state, device, budget);
            if (power_cut == 1) {
                device.crash();  // every unsynced write lost
            }
            Run run(state, device);
            run.open();
            const tether::DeviceStateView view = run.link.device_state();
            CHECK(view.desired_applied >= w.applied_on_wire);
            const std::string expected =
                view.desired_applied == 0 ? "{}" : numbered_document(view.desired_applied);
            STRCMP_EQUAL(expected.c_str(), run.desired_document().c_str());
            run.online();
            UNSIGNED_LONGS_EQUAL(view.desired_applied, run.hello().desired_version);
            if (!w.last_report_id.empty() && view.reported_version <= w.last_report_base) {
                const std::vector<Sent> reports = run.reports_sent();
                CHECK_EQUAL(1, reports.size());
                STRCMP_EQUAL(w.last_report_id.c_str(), reports[0].message.id);
            }
        }
    }
}

TEST(DurableLinkState, OffTheHelloOffersNothingAndTheCallsAreRefused) {
    tether::test::FakeStorage state, device;
    Run run(state, device, 16 * 1024, false);
    run.open();
    run.online();
    CHECK((run.hello().features & tether::net::v1::kFeatureState) == 0);
    UNSIGNED_LONGS_EQUAL(0, run.hello().desired_version);
    CHECK_FALSE(run.link.device_state().enabled);
    CHECK_EQUAL(Status::kInvalidArgument, run.report("{\"a\":1}"));
    CHECK_EQUAL(Status::kInvalidArgument, run.link.desired_applied(1));
    // A state message the client never offered is a violation.
    run.push(desired(1, true, "{\"a\":1}"));
    UNSIGNED_LONGS_EQUAL(tether::net::v1::kCloseViolation, run.close_code());
}

TEST(DurableLinkState, AServerSendingADeviceMessageIsAViolation) {
    tether::test::FakeStorage state, device;
    Run run(state, device);
    run.open();
    run.online();
    char out[64];
    std::size_t length = 0;
    CHECK(tether::net::v1::write_applied(3, out, sizeof out, &length) ==
          tether::net::v1::V1Status::kOk);
    run.push(text_frame(out, length));
    UNSIGNED_LONGS_EQUAL(tether::net::v1::kCloseViolation, run.close_code());
}

TEST(DurableLinkState, OrdinaryControlMessagesStillWorkWithStateOn) {
    tether::test::FakeStorage state, device;
    Run run(state, device);
    run.open();
    run.online();
    const std::string gap = "{\"type\":\"gap\",\"first\":1,\"last\":3,\"reason\":\"x\"}";
    run.push(text_frame(gap.data(), gap.size()));
    UNSIGNED_LONGS_EQUAL(0, run.close_code());
    CHECK_EQUAL(LinkState::kOnline, run.link.state());
}

TEST_GROUP(ClientDeviceState){};

TEST(ClientDeviceState, InitRefusesMissingBuffersAndASmallMessageLimit) {
    tether::ClientConfig config;
    config.urls[0] = "ws://h/";
    config.url_count = 1;
    config.reconnect.resume_protocol = true;
    config.session_id = kSession;
    config.device_id = "pi";
    config.device_state = true;
    config.ws.max_message_size = 16 * 1024;
    static std::uint8_t outbox[32 * 1024], rx[16 * 1024], tx[32 * 1024];
    static char document[tether::net::v1::kMaxStateDocument];
    tether::test::FakeConnection connection;
    tether::test::FakeResolver resolver;
    tether::test::CountingRandom random;
    tether::test::FixedMasks masks;
    {
        tether::Client client(
            config, tether::ClientBuffers{outbox, sizeof outbox, rx, sizeof rx, tx, sizeof tx},
            connection, resolver, random, masks);
        CHECK_EQUAL(Status::kInvalidArgument, client.init());
        STRCMP_CONTAINS("state document buffer", client.config_error());
    }
    tether::ClientBuffers buffers{outbox, sizeof outbox, rx, 4096, tx, sizeof tx};
    buffers.state_document = document;
    buffers.state_document_size = sizeof document;
    {
        tether::Client client(config, buffers, connection, resolver, random, masks);
        CHECK_EQUAL(Status::kInvalidArgument, client.init());  // the receive buffer is too small
        STRCMP_CONTAINS("max message size", client.config_error());
    }
    buffers.rx_size = sizeof rx;
    tether::Client client(config, buffers, connection, resolver, random, masks);
    CHECK_EQUAL(Status::kOk, client.init());
    CHECK_FALSE(client.state_negotiated());
    CHECK_FALSE(client.queue_state_message(0, "{}", 2));
}

TEST_GROUP(PosixLinkDeviceState){};

TEST(PosixLinkDeviceState, OpensItsRecordInTheStateDirectory) {
    tether::test::TempDir dir;
    const std::string state_dir = dir.file("state");
    const std::string record = dir.file("state/device-state");
    (void)dir.file("state/state");
    tether::port::PosixLinkSettings settings;
    settings.link.client.urls[0] = "ws://127.0.0.1:9/v1";
    settings.link.client.url_count = 1;
    settings.link.client.reconnect.resume_protocol = true;
    settings.link.device_state.enabled = true;
    settings.state_dir = state_dir.c_str();
    settings.device_id = "pi-9";
    tether::port::PosixLink link(settings, nullptr);
    CHECK_EQUAL(Status::kOk, link.open());
    CHECK_TRUE(link.link().device_state().enabled);
    CHECK(link.sizes().device_state > 0);
    struct stat info {};
    CHECK_EQUAL(0, ::stat(record.c_str(), &info));
    CHECK_EQUAL(Status::kOk, link.link().report("{\"fw\":\"1\"}", 10));
    CHECK_EQUAL(0, ::stat(record.c_str(), &info));
    CHECK(info.st_size > 0);
}

TEST(PosixLinkDeviceState, NeedsAStateDirectory) {
    tether::port::PosixLinkSettings settings;
    settings.link.client.urls[0] = "ws://127.0.0.1:9/v1";
    settings.link.client.url_count = 1;
    settings.link.client.reconnect.resume_protocol = true;
    settings.link.device_state.enabled = true;
    settings.device_id = "pi-9";
    tether::port::PosixLink link(settings, nullptr);
    CHECK_EQUAL(Status::kInvalidArgument, link.open());
    STRCMP_CONTAINS("state directory", link.error());
}

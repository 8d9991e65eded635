// SPDX-License-Identifier: MIT
// The durable link in plain WebSocket mode with a spool: what a killed
// process sends again after its restart, at-least-once and at-most-once.
#include <cstdint>
#include <string>
#include <vector>

#include <CppUTest/TestHarness.h>

#include "fakes/counting_random.h"
#include "fakes/fake_connection.h"
#include "fakes/fake_resolver.h"
#include "fakes/fake_storage.h"
#include "support/client_frames.h"
#include "support/tether_strings.h"
#include "tether/durable_link.h"
#include "tether/net/ws_handshake.h"

using tether::Delivery;
using tether::DurableLink;
using tether::LinkState;
using tether::Status;
using tether::TimeMs;

namespace {

std::string switching_response(const std::string& request) {
    const std::string marker = "Sec-WebSocket-Key: ";
    const std::size_t at = request.find(marker);
    CHECK(at != std::string::npos);
    const std::string key = request.substr(at + marker.size(), 24);
    char accept[tether::net::kWebSocketAcceptLength + 1];
    CHECK(tether::net::compute_accept(key.c_str(), accept) == tether::net::HandshakeStatus::kOk);
    return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Accept: " +
           std::string(accept) + "\r\n\r\n";
}

struct Listener final : tether::DurableLinkListener {
    void on_in_doubt(std::uint64_t, std::uint64_t, std::uint64_t count, bool) override {
        in_doubt += count;
    }
    std::uint64_t in_doubt = 0;
};

// One run of a device in plain mode over the same two disks.
struct PlainRun {
    PlainRun(tether::Storage& state_disk, tether::Storage& spool_disk, Delivery delivery)
        : config(make_config(delivery)),
          sizes(tether::DurableLinkSizes::for_config(config)),
          memory(sizes.total()),
          link(config,
               tether::DurableLinkBuffers{memory.data(), memory.data() + sizes.outbox,
                                          memory.data() + sizes.outbox + sizes.rx,
                                          memory.data() + sizes.outbox + sizes.rx + sizes.tx},
               connection, resolver, random, &state_disk, &spool_disk, nullptr, &listener) {
        CHECK_EQUAL(Status::kOk, link.open(&report));
    }
    static tether::DurableLinkConfig make_config(Delivery delivery) {
        tether::DurableLinkConfig c;
        c.client.urls[0] = "ws://127.0.0.1:9000/plain";
        c.client.url_count = 1;
        c.client.reconnect.backoff.jitter = tether::JitterMode::kNone;
        c.client.ws.max_message_size = 4096;
        c.client.delivery = delivery;
        c.outbox_bytes = 64 * 1024;
        c.spool = true;
        c.spool_config.max_bytes = 256 * 1024;
        return c;
    }
    void send(const std::string& text) {
        CHECK_EQUAL(Status::kOk, link.send(now, reinterpret_cast<const std::uint8_t*>(text.data()),
                                           text.size()));
    }
    void service() { link.service(now); }
    std::string output() { return connection.stream().output_string(); }
    void online() {
        link.start(now);
        if (link.state() == LinkState::kWaitingToRetry) {
            now += link.client().machine().retry_delay_ms();
        }
        service();
        CHECK_EQUAL(LinkState::kWsHandshake, link.state());
        connection.stream().push_input(switching_response(output()));
        service();
        CHECK_EQUAL(LinkState::kOnline, link.state());
        service();
    }
    // The server answers every ping written so far.
    void answer_pings() {
        std::string pongs;
        for (const tether::test::ClientFrame& frame : tether::test::client_frames(output())) {
            if (frame.opcode == 0x9) {
                pongs += tether::test::server_frame(0xA, frame.payload);
            }
        }
        connection.stream().push_input(pongs);
        service();
    }
    std::vector<std::string> texts_sent() {
        std::vector<std::string> out;
        for (const tether::test::ClientFrame& frame : tether::test::client_frames(output())) {
            if (frame.opcode == 0x1) {
                out.push_back(frame.payload);
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

}  // namespace

TEST_GROUP(DurableLinkPlain){};

TEST(DurableLinkPlain, AtLeastOnceAKilledRunsUnconfirmedMessagesGoOutAgain) {
    tether::test::FakeStorage state, spool;
    {
        PlainRun run(state, spool, Delivery::kAtLeastOnce);
        run.online();
        run.send("a");
        run.send("b");
        run.service();
        run.answer_pings();  // a and b confirmed: the spool forgets them
        run.send("c");
        run.service();  // c written, never confirmed
        run.link.commit();
        const std::vector<std::string> expected = {"a", "b", "c"};
        CHECK(expected == run.texts_sent());
    }  // killed: no stop(), no shutdown()
    PlainRun second(state, spool, Delivery::kAtLeastOnce);
    CHECK_EQUAL(1, second.report.restored);
    second.online();
    const std::vector<std::string> again = {"c"};
    CHECK(again == second.texts_sent());
}

TEST(DurableLinkPlain, AtMostOnceAKilledRunNeverSendsAgainWhatItHandedOver) {
    tether::test::FakeStorage state, spool;
    {
        PlainRun run(state, spool, Delivery::kAtMostOnce);
        run.online();
        run.send("a");
        run.send("b");
        run.service();  // handed over, not confirmed
        run.connection.stream().push_eof();
        run.service();
        CHECK_EQUAL(2, run.listener.in_doubt);
        run.send("c");  // the link is down: c waits
        run.link.commit();
    }  // killed
    PlainRun second(state, spool, Delivery::kAtMostOnce);
    CHECK_EQUAL(1, second.report.restored);
    second.online();
    const std::vector<std::string> expected = {"c"};
    CHECK(expected == second.texts_sent());
}

TEST(DurableLinkPlain, AtLeastOnceACleanStopLeavesNothingToSendAgain) {
    tether::test::FakeStorage state, spool;
    {
        PlainRun run(state, spool, Delivery::kAtLeastOnce);
        run.online();
        run.send("a");
        run.service();
        run.link.stop(run.now);
        run.connection.stream().push_input(std::string("\x88\x02\x03\xe8", 4));
        run.service();
        CHECK_EQUAL(LinkState::kIdle, run.link.state());
        CHECK_EQUAL(Status::kOk, run.link.shutdown());
    }
    PlainRun second(state, spool, Delivery::kAtLeastOnce);
    CHECK_EQUAL(0, second.report.restored);
}

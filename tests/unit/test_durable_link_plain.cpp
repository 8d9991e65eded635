// SPDX-License-Identifier: MIT
// The durable link in plain WebSocket mode with a spool: what a killed
// process sends again after its restart, at-least-once and at-most-once.
#include <cstdint>
#include <map>
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

TEST(DurableLinkPlain, AtMostOnceTheRestartReportsWhatTheKilledRunLeftInDoubt) {
    tether::test::FakeStorage state, spool;
    {
        PlainRun run(state, spool, Delivery::kAtMostOnce);
        run.online();
        run.send("a");
        run.send("b");
        run.service();
        run.answer_pings();  // a and b confirmed
        run.now += DurableLink::kSettledSaveMs;
        run.service();  // ...and saved as settled
        run.send("c");
        run.send("d");
        run.service();  // handed over, never confirmed
        run.link.commit();
    }  // killed
    PlainRun second(state, spool, Delivery::kAtMostOnce);
    CHECK_EQUAL(3, second.report.in_doubt.first);
    CHECK_EQUAL(4, second.report.in_doubt.last);
    CHECK_EQUAL(0, second.report.restored);
    second.online();
    second.now += DurableLink::kSettledSaveMs;
    second.service();
    // Reported once: a further kill does not report it again.
    {
        PlainRun third(state, spool, Delivery::kAtMostOnce);
        CHECK_EQUAL(0, third.report.in_doubt.first);
    }
}

TEST(DurableLinkPlain, AtMostOnceACleanStopLeavesNothingInDoubt) {
    tether::test::FakeStorage state, spool;
    {
        PlainRun run(state, spool, Delivery::kAtMostOnce);
        run.online();
        run.send("a");
        run.service();
        run.link.stop(run.now);
        run.connection.stream().push_input(std::string("\x88\x02\x03\xe8", 4));
        run.service();
        CHECK_EQUAL(Status::kOk, run.link.shutdown());
    }
    PlainRun second(state, spool, Delivery::kAtMostOnce);
    CHECK_EQUAL(0, second.report.in_doubt.first);
    CHECK_EQUAL(0, second.report.in_doubt.last);
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

namespace {

// The server's side of one connection: it has read the client's output up
// to `parsed` (complete frames only) and holds the pings it has not answered.
struct Peer {
    std::size_t parsed = std::string::npos;
    std::vector<std::string> pings;
};

void peer_read(const std::string& output, std::size_t read_to, Peer* peer,
               std::vector<std::string>* received) {
    if (peer->parsed == std::string::npos) {
        const std::size_t end = output.find("\r\n\r\n");
        if (end == std::string::npos) {
            return;
        }
        peer->parsed = end + 4;
    }
    std::size_t at = peer->parsed;
    while (at + 6 <= read_to) {
        const auto b0 = static_cast<std::uint8_t>(output[at]);
        std::size_t length = static_cast<std::uint8_t>(output[at + 1]) & 0x7Fu;
        std::size_t header = 2;
        if (length == 126) {
            length = static_cast<std::size_t>(static_cast<std::uint8_t>(output[at + 2]) << 8 |
                                              static_cast<std::uint8_t>(output[at + 3]));
            header = 4;
        }
        const std::size_t mask_at = at + header;
        if (mask_at + 4 + length > read_to) {
            break;
        }
        std::string payload = output.substr(mask_at + 4, length);
        for (std::size_t i = 0; i < payload.size(); ++i) {
            payload[i] = static_cast<char>(payload[i] ^ output[mask_at + (i % 4)]);
        }
        if ((b0 & 0x0Fu) == 0x1) {
            received->push_back(payload);
        } else if ((b0 & 0x0Fu) == 0x9) {
            peer->pings.push_back(payload);
        }
        at = mask_at + 4 + length;
    }
    peer->parsed = at;
}

struct Lcg {
    std::uint32_t state;
    std::uint32_t next(std::uint32_t bound) {
        state = state * 1664525u + 1013904223u;
        return (state >> 8) % bound;
    }
};

// Runs of a device over the same two disks: bursts of messages (committed
// after each, as tetherd commits after each read), partial writes, a server
// that reads any prefix and answers all or none of its pings, link losses,
// and kills (the run ends without stop() or shutdown(); the disks keep what
// was written, as the kernel does for a killed process). Ends with a steady
// run until everything is settled. Returns how often each message arrived.
std::map<std::string, int> run_device_model(Delivery delivery, std::uint32_t seed,
                                            std::size_t* sent, std::size_t* kills) {
    tether::test::FakeStorage state, spool;
    Lcg lcg{seed};
    std::vector<std::string> received;
    TimeMs now = 1000;
    auto run = std::make_unique<PlainRun>(state, spool, delivery);
    Peer peer;
    auto connect = [&]() {
        run->now = now;
        if (run->link.state() == LinkState::kIdle) {
            run->link.start(run->now);
        }
        for (int i = 0; i < 200 && run->link.state() != LinkState::kWsHandshake; ++i) {
            run->now += 250;
            run->service();
        }
        CHECK_EQUAL(LinkState::kWsHandshake, run->link.state());
        run->connection.stream().push_input(switching_response(run->output()));
        run->service();
        CHECK_EQUAL(LinkState::kOnline, run->link.state());
        now = run->now;
        peer = Peer{};
    };
    connect();
    for (int round = 0; round < 50; ++round) {
        const std::uint32_t burst = 1 + lcg.next(8);
        for (std::uint32_t i = 0; i < burst; ++i) {
            run->send("m" + std::to_string((*sent)++));
        }
        run->link.commit();
        run->connection.stream().set_max_write_size(lcg.next(2) == 0 ? 0 : 1 + lcg.next(30));
        run->service();
        const std::string out = run->output();
        const std::size_t from = peer.parsed == std::string::npos ? 0 : peer.parsed;
        const std::size_t read_to =
            from + lcg.next(static_cast<std::uint32_t>(out.size() - from + 1));
        peer_read(out, read_to, &peer, &received);
        if (lcg.next(2) == 0) {
            std::string pongs;
            for (const std::string& ping : peer.pings) {
                pongs += tether::test::server_frame(0xA, ping);
            }
            peer.pings.clear();
            run->connection.stream().push_input(pongs);
        }
        run->service();
        const std::uint32_t fault = lcg.next(6);
        if (fault == 0) {
            run->connection.stream().push_eof();  // what the server did not read is gone
            run->service();
            connect();
        } else if (fault == 1) {
            run.reset();  // kill -9
            ++*kills;
            run = std::make_unique<PlainRun>(state, spool, delivery);
            connect();
        }
    }
    run->connection.stream().set_max_write_size(0);
    for (int i = 0; i < 20 && (i < 2 || !run->link.idle()); ++i) {
        run->service();
        peer_read(run->output(), run->output().size(), &peer, &received);
        std::string pongs;
        for (const std::string& ping : peer.pings) {
            pongs += tether::test::server_frame(0xA, ping);
        }
        peer.pings.clear();
        run->connection.stream().push_input(pongs);
        run->service();
    }
    CHECK_TRUE(run->link.idle());
    std::map<std::string, int> arrivals;
    for (const std::string& text : received) {
        ++arrivals[text];
    }
    return arrivals;
}

}  // namespace

TEST(DurableLinkPlain, ModelAtMostOnceNothingTwiceAcrossLinkLossesAndKills) {
    std::size_t lost = 0;
    std::size_t kills = 0;
    for (std::uint32_t seed = 1; seed <= 20; ++seed) {
        std::size_t sent = 0;
        const std::map<std::string, int> arrivals =
            run_device_model(Delivery::kAtMostOnce, seed, &sent, &kills);
        for (std::size_t n = 0; n < sent; ++n) {
            const auto found = arrivals.find("m" + std::to_string(n));
            if (found == arrivals.end()) {
                ++lost;
            } else {
                CHECK_EQUAL(1, found->second);
            }
        }
    }
    CHECK(kills > 0);
    CHECK(lost > 0);  // the model does lose messages: "never twice" is not trivial here
}

TEST(DurableLinkPlain, ModelAtLeastOnceNothingLostAcrossLinkLossesAndKills) {
    std::size_t duplicates = 0;
    std::size_t kills = 0;
    for (std::uint32_t seed = 1; seed <= 20; ++seed) {
        std::size_t sent = 0;
        const std::map<std::string, int> arrivals =
            run_device_model(Delivery::kAtLeastOnce, seed, &sent, &kills);
        for (std::size_t n = 0; n < sent; ++n) {
            const auto found = arrivals.find("m" + std::to_string(n));
            CHECK_TRUE(found != arrivals.end());
            if (found != arrivals.end()) {
                duplicates += static_cast<std::size_t>(found->second - 1);
            }
        }
    }
    CHECK(kills > 0);
    CHECK(duplicates > 0);  // the model does resend: "never lost" is not trivial here
}

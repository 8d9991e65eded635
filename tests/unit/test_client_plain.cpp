// SPDX-License-Identifier: MIT
// Plain WebSocket delivery (no tether.v1) over fakes: confirmation pings,
// at-most-once (never twice, the loss counted) and at-least-once (never
// lost, duplicates counted), and a model run with link losses at every point.
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <CppUTest/TestHarness.h>

#include "fakes/counting_random.h"
#include "fakes/fake_connection.h"
#include "fakes/fake_resolver.h"
#include "fakes/fixed_masks.h"
#include "support/client_frames.h"
#include "support/tether_strings.h"
#include "tether/client.h"
#include "tether/net/ws_handshake.h"

using tether::Client;
using tether::ClientConfig;
using tether::Delivery;
using tether::LinkState;
using tether::TimeMs;
using tether::test::FakeConnection;
using tether::test::FakeResolver;

namespace {

struct InDoubt {
    std::uint64_t first;
    std::uint64_t last;
    std::uint64_t count;
    bool resent;
};

struct Recorder final : tether::ClientListener {
    void on_in_doubt(std::uint64_t first, std::uint64_t last, std::uint64_t count,
                     bool resent) override {
        in_doubt.push_back({first, last, count, resent});
    }
    void on_uplink_acked(std::uint64_t seq) override { acked.push_back(seq); }
    void on_uplink_handover(std::uint64_t seq) override { handed.push_back(seq); }
    void on_message(tether::net::WsOpcode, const std::uint8_t* data, std::size_t size) override {
        downlink.emplace_back(reinterpret_cast<const char*>(data), size);
    }
    std::vector<InDoubt> in_doubt;
    std::vector<std::uint64_t> acked;
    std::vector<std::uint64_t> handed;
    std::vector<std::string> downlink;
};

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

// The server's side of one connection: it reads the client's output up to
// `read_to` bytes (what reached it), taking complete frames only.
struct ServerView {
    std::size_t body_start = std::string::npos;  // after the HTTP request
    std::size_t parsed = 0;                      // bytes of complete frames taken
    std::vector<std::string> pings;              // ping payloads read, not answered yet
};

// Takes the complete frames in output[view.parsed, read_to): data payloads
// go to *received, ping payloads to view.pings.
void server_read(const std::string& output, std::size_t read_to, ServerView* view,
                 std::vector<std::string>* received) {
    if (view->body_start == std::string::npos) {
        const std::size_t end = output.find("\r\n\r\n");
        if (end == std::string::npos) {
            return;
        }
        view->body_start = end + 4;
        view->parsed = view->body_start;
    }
    std::size_t at = view->parsed;
    while (at + 6 <= read_to) {
        const auto b0 = static_cast<std::uint8_t>(output[at]);
        const auto b1 = static_cast<std::uint8_t>(output[at + 1]);
        std::size_t length = b1 & 0x7Fu;
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
        const unsigned opcode = b0 & 0x0Fu;
        if (opcode == 0x1 || opcode == 0x2) {
            received->push_back(payload);
        } else if (opcode == 0x9) {
            view->pings.push_back(payload);
        }
        at = mask_at + 4 + length;
    }
    view->parsed = at;
}

struct Rig {
    explicit Rig(Delivery delivery)
        : client(make_config(delivery), buffers(), connection, resolver, random, masks, &recorder) {
        CHECK_EQUAL(tether::Status::kOk, client.init());
    }
    ClientConfig make_config(Delivery delivery) {
        config.urls[0] = "ws://127.0.0.1:9000/telemetry";
        config.url_count = 1;
        config.reconnect.backoff.jitter = tether::JitterMode::kNone;
        config.reconnect.backoff.max_delay_ms = 2000;
        config.reconnect.heartbeat.interval_ms = 0;  // liveness is not what these tests are about
        config.ws.max_message_size = 4096;
        config.delivery = delivery;
        return config;
    }
    tether::ClientBuffers buffers() {
        return tether::ClientBuffers{outbox, sizeof outbox, rx, sizeof rx, tx, sizeof tx};
    }
    void service() { client.service(now); }
    // From waiting (or idle) to online on a fresh connection.
    void connect() {
        if (client.state() == LinkState::kIdle) {
            client.start(now);
        }
        for (int i = 0; i < 100 && client.state() != LinkState::kWsHandshake; ++i) {
            now += 500;
            service();
        }
        CHECK_EQUAL(LinkState::kWsHandshake, client.state());
        connection.stream().push_input(switching_response(connection.stream().output_string()));
        service();
        CHECK_EQUAL(LinkState::kOnline, client.state());
        view = ServerView{};
    }
    std::string output() { return connection.stream().output_string(); }
    // The server reads everything written so far and answers its pings
    // (`answer_all` false: only the latest, as RFC 6455 allows).
    void server_takes(std::size_t read_to, bool answer = true, bool answer_all = true) {
        server_read(output(), read_to, &view, &received);
        if (!answer || view.pings.empty()) {
            return;
        }
        std::string pongs;
        for (std::size_t i = answer_all ? 0 : view.pings.size() - 1; i < view.pings.size(); ++i) {
            pongs += tether::test::server_frame(0xA, view.pings[i]);
        }
        view.pings.clear();
        connection.stream().push_input(pongs);
    }
    void server_takes_all(bool answer = true) { server_takes(output().size(), answer); }
    void lose_link() {
        connection.stream().push_eof();
        service();
        CHECK(client.state() == LinkState::kWaitingToRetry);
    }
    void send(const std::string& text) {
        CHECK_EQUAL(
            tether::Status::kOk,
            client.send(now, reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
    }

    ClientConfig config;
    std::uint8_t outbox[256 * 1024];
    std::uint8_t rx[4096];
    std::uint8_t tx[16 * 1024];
    FakeConnection connection;
    FakeResolver resolver;
    tether::test::CountingRandom random;
    tether::test::FixedMasks masks;
    Recorder recorder;
    Client client;
    TimeMs now = 5000;
    ServerView view;
    std::vector<std::string> received;
};

std::size_t confirm_pings_in(const std::string& output) {
    std::size_t count = 0;
    for (const tether::test::ClientFrame& frame : tether::test::client_frames(output)) {
        if (frame.opcode == 0x9 && frame.payload.size() == 8 &&
            frame.payload.compare(0, 4, "tcfm") == 0) {
            ++count;
        }
    }
    return count;
}

}  // namespace

TEST_GROUP(ClientPlain){};

TEST(ClientPlain, DeliveryNamesRoundTrip) {
    Delivery delivery = Delivery::kAtMostOnce;
    CHECK_TRUE(tether::parse_delivery("at-least-once", &delivery));
    CHECK(delivery == Delivery::kAtLeastOnce);
    STRCMP_EQUAL("at-least-once", tether::to_string(delivery));
    CHECK_TRUE(tether::parse_delivery("at-most-once", &delivery));
    STRCMP_EQUAL("at-most-once", tether::to_string(delivery));
    CHECK_FALSE(tether::parse_delivery("exactly-once", &delivery));
    CHECK(delivery == Delivery::kAtMostOnce);
}

TEST(ClientPlain, AWriteWithDataIsFollowedByOneConfirmationPing) {
    Rig rig(Delivery::kAtLeastOnce);
    rig.connect();
    for (int i = 0; i < 5; ++i) {
        rig.send("m" + std::to_string(i));
    }
    rig.service();
    const std::vector<tether::test::ClientFrame> frames = tether::test::client_frames(rig.output());
    CHECK_EQUAL(6, frames.size());
    CHECK_EQUAL(0x9u, frames.back().opcode);  // after the data
    CHECK_EQUAL(1, confirm_pings_in(rig.output()));
    rig.service();  // nothing new: no further ping
    CHECK_EQUAL(1, confirm_pings_in(rig.output()));
}

TEST(ClientPlain, AtLeastOnceKeepsMessagesUntilAPongConfirmsThem) {
    Rig rig(Delivery::kAtLeastOnce);
    rig.connect();
    for (int i = 0; i < 3; ++i) {
        rig.send("m" + std::to_string(i));
    }
    rig.service();
    CHECK_EQUAL(3, rig.client.outbox().size());  // written, not confirmed
    CHECK_FALSE(rig.client.idle());
    rig.server_takes_all();
    rig.service();
    CHECK_EQUAL(0, rig.client.outbox().size());
    CHECK_TRUE(rig.client.idle());
    CHECK_EQUAL(1, rig.recorder.acked.size());
    CHECK_EQUAL(3, rig.recorder.acked[0]);
    CHECK_EQUAL(3, rig.client.counters().confirmed);
    CHECK_EQUAL(3, rig.client.counters().uplink_acked);
}

TEST(ClientPlain, AtLeastOnceSendsTheUnconfirmedAgainAfterAReconnectAndSaysSo) {
    Rig rig(Delivery::kAtLeastOnce);
    rig.connect();
    rig.send("a");
    rig.send("b");
    rig.service();
    rig.server_takes_all();  // a, b and their ping
    rig.service();
    rig.send("c");
    rig.send("d");
    rig.service();
    rig.server_takes_all(false);  // c and d arrive, the pong does not
    rig.lose_link();
    CHECK_EQUAL(1, rig.recorder.in_doubt.size());
    CHECK_EQUAL(3, rig.recorder.in_doubt[0].first);
    CHECK_EQUAL(4, rig.recorder.in_doubt[0].last);
    CHECK_EQUAL(2, rig.recorder.in_doubt[0].count);
    CHECK_TRUE(rig.recorder.in_doubt[0].resent);
    CHECK_EQUAL(2, rig.client.counters().in_doubt);
    rig.connect();
    rig.service();
    rig.server_takes_all();
    rig.service();
    const std::vector<std::string> expected = {"a", "b", "c", "d", "c", "d"};
    CHECK(expected == rig.received);
    CHECK_TRUE(rig.client.idle());
}

TEST(ClientPlain, AtMostOnceNeverSendsAgainWhatTheKernelTookAndCountsIt) {
    Rig rig(Delivery::kAtMostOnce);
    rig.connect();
    rig.send("a");
    rig.send("b");
    rig.service();
    CHECK_EQUAL(0, rig.client.outbox().size());  // freed once the kernel has them
    CHECK_EQUAL(1, rig.recorder.handed.size());
    CHECK_EQUAL(2, rig.recorder.handed[0]);
    rig.server_takes(rig.output().size(), false);  // no pong: a and b are in doubt
    rig.lose_link();
    CHECK_EQUAL(1, rig.recorder.in_doubt.size());
    CHECK_EQUAL(1, rig.recorder.in_doubt[0].first);
    CHECK_EQUAL(2, rig.recorder.in_doubt[0].last);
    CHECK_EQUAL(2, rig.recorder.in_doubt[0].count);
    CHECK_FALSE(rig.recorder.in_doubt[0].resent);
    rig.connect();
    rig.send("c");
    rig.service();
    rig.server_takes_all();
    rig.service();
    const std::vector<std::string> expected = {"a", "b", "c"};
    CHECK(expected == rig.received);
    CHECK_EQUAL(1, rig.recorder.in_doubt.size());
}

TEST(ClientPlain, AtMostOnceAConfirmedLinkLeavesNothingInDoubt) {
    Rig rig(Delivery::kAtMostOnce);
    rig.connect();
    rig.send("a");
    rig.service();
    rig.server_takes_all();
    rig.service();
    CHECK_EQUAL(1, rig.client.counters().confirmed);
    rig.lose_link();
    CHECK_EQUAL(0, rig.recorder.in_doubt.size());
    CHECK_EQUAL(0, rig.client.counters().in_doubt);
}

TEST(ClientPlain, AtMostOnceSendsAgainWhatTheKernelNeverGot) {
    Rig rig(Delivery::kAtMostOnce);
    rig.connect();
    rig.connection.stream().block_next_writes(1000);
    rig.send("kept-1");
    rig.send("kept-2");
    rig.service();
    rig.lose_link();
    CHECK_EQUAL(0, rig.recorder.in_doubt.size());
    rig.connect();
    rig.service();
    rig.server_takes_all();
    const std::vector<std::string> expected = {"kept-1", "kept-2"};
    CHECK(expected == rig.received);
}

TEST(ClientPlain, AtMostOnceAPartWrittenBatchSplitsAtTheFrameTheKernelStoppedIn) {
    Rig rig(Delivery::kAtMostOnce);
    rig.connect();
    rig.connection.stream().set_max_write_size(10);  // "m0".."m9": 8 bytes a frame
    for (int i = 0; i < 10; ++i) {
        rig.send("m" + std::to_string(i));
    }
    const std::size_t request = rig.output().size();
    rig.service();  // writes of 10 bytes: some frames whole, one begun
    rig.lose_link();
    const std::size_t body = rig.output().size() - request;
    CHECK(body > 0 && body % 8 != 0 && body < 80);
    const std::size_t begun = (body + 7) / 8;
    CHECK_EQUAL(1, rig.recorder.in_doubt.size());
    CHECK_EQUAL(1, rig.recorder.in_doubt[0].first);
    CHECK_EQUAL(begun, rig.recorder.in_doubt[0].last);
    CHECK_EQUAL(begun, rig.recorder.in_doubt[0].count);
    rig.connection.stream().set_max_write_size(0);
    rig.connect();
    rig.connection.stream().set_max_write_size(0);
    rig.service();
    rig.server_takes_all();
    CHECK_EQUAL(10 - begun, rig.received.size());
    STRCMP_EQUAL(("m" + std::to_string(begun)).c_str(), rig.received.front().c_str());
}

TEST(ClientPlain, ThePeersAnswerToOurCloseConfirmsEverything) {
    Rig rig(Delivery::kAtLeastOnce);
    rig.connect();
    rig.send("a");
    rig.service();
    rig.client.stop(rig.now);
    rig.server_takes(rig.output().size(), false);
    rig.connection.stream().push_input(std::string("\x88\x02\x03\xe8", 4));  // close 1000
    rig.service();
    CHECK_EQUAL(LinkState::kIdle, rig.client.state());
    CHECK_EQUAL(0, rig.recorder.in_doubt.size());
    CHECK_EQUAL(0, rig.client.outbox().size());
    CHECK_EQUAL(1, rig.client.counters().confirmed);
}

TEST(ClientPlain, APongWithAnotherPayloadConfirmsNothing) {
    Rig rig(Delivery::kAtLeastOnce);
    rig.connect();
    rig.send("a");
    rig.service();
    rig.connection.stream().push_input(
        tether::test::server_frame(0xA, std::string("tcfm\0\0\0\x09", 8)));
    rig.service();
    CHECK_EQUAL(1, rig.client.outbox().size());
    CHECK_EQUAL(0, rig.client.counters().confirmed);
}

TEST(ClientPlain, TheServersMessagesReachTheListener) {
    Rig rig(Delivery::kAtLeastOnce);
    rig.connect();
    rig.connection.stream().push_input(tether::test::server_frame(0x1, "down"));
    rig.service();
    CHECK_EQUAL(1, rig.recorder.downlink.size());
    STRCMP_EQUAL("down", rig.recorder.downlink[0].c_str());
}

namespace {

// A deterministic pseudo-random sequence for the model run.
struct Lcg {
    std::uint32_t state;
    std::uint32_t next(std::uint32_t bound) {
        state = state * 1664525u + 1013904223u;
        return (state >> 8) % bound;
    }
};

struct ModelResult {
    std::size_t sent = 0;
    std::map<std::string, int> arrivals;
    std::uint64_t in_doubt = 0;
    std::vector<InDoubt> reports;
};

// Sends messages in bursts while the link is lost at random points: after a
// write the kernel took whole, partly or not at all, with the server having
// read any prefix of it and answered all, the latest or none of its pings.
// Ends with a steady link until everything is settled.
ModelResult run_model(Delivery delivery, std::uint32_t seed) {
    Rig rig(delivery);
    Lcg lcg{seed};
    ModelResult result;
    rig.connect();
    for (int round = 0; round < 60; ++round) {
        const std::uint32_t burst = 1 + lcg.next(12);
        for (std::uint32_t i = 0; i < burst; ++i) {
            const std::string text = "m" + std::to_string(result.sent++);
            rig.send(text);
        }
        const std::uint32_t write_cap = lcg.next(3);
        rig.connection.stream().set_max_write_size(write_cap == 0 ? 0 : 1 + lcg.next(40));
        if (lcg.next(4) == 0) {
            rig.connection.stream().block_next_writes(1);
        }
        rig.service();
        const std::size_t out = rig.output().size();
        const std::size_t read_to =
            rig.view.parsed + lcg.next(static_cast<std::uint32_t>(out - rig.view.parsed + 1));
        const std::uint32_t answer = lcg.next(3);
        rig.server_takes(read_to > out ? out : read_to, answer != 0, answer == 1);
        rig.service();
        if (lcg.next(3) == 0) {
            // The link dies: what the server did not read is gone with it.
            rig.lose_link();
            rig.connect();
        }
    }
    rig.connection.stream().set_max_write_size(0);
    if (rig.client.state() != LinkState::kOnline) {
        rig.connect();
    }
    for (int i = 0; i < 20 && (i < 2 || !rig.client.idle()); ++i) {
        rig.service();
        rig.server_takes_all();
        rig.service();
    }
    CHECK_TRUE(rig.client.idle());
    for (const std::string& text : rig.received) {
        ++result.arrivals[text];
    }
    result.in_doubt = rig.client.counters().in_doubt;
    result.reports = rig.recorder.in_doubt;
    return result;
}

}  // namespace

TEST(ClientPlain, ModelAtMostOnceNeverTwiceAndEveryLossInsideAReport) {
    std::uint64_t lost_total = 0;
    std::uint64_t doubt_total = 0;
    for (std::uint32_t seed = 1; seed <= 40; ++seed) {
        const ModelResult result = run_model(Delivery::kAtMostOnce, seed);
        std::uint64_t lost = 0;
        for (std::size_t n = 0; n < result.sent; ++n) {
            const auto found = result.arrivals.find("m" + std::to_string(n));
            if (found == result.arrivals.end()) {
                ++lost;
                const std::uint64_t seq = n + 1;
                bool reported = false;
                for (const InDoubt& report : result.reports) {
                    reported = reported || (seq >= report.first && seq <= report.last);
                }
                if (!reported) {
                    std::string why = "seed " + std::to_string(seed) + ": m" + std::to_string(n) +
                                      " lost, reports:";
                    for (const InDoubt& report : result.reports) {
                        why +=
                            " " + std::to_string(report.first) + ".." + std::to_string(report.last);
                    }
                    why += " sent " + std::to_string(result.sent);
                    FAIL(why.c_str());
                }
            } else {
                CHECK_EQUAL(1, found->second);
            }
        }
        CHECK(lost <= result.in_doubt);
        lost_total += lost;
        doubt_total += result.in_doubt;
    }
    CHECK(lost_total > 0);  // the model does lose messages, so the checks above bite
    CHECK(doubt_total >= lost_total);
}

TEST(ClientPlain, ModelAtLeastOnceNeverLostAndDuplicatesCounted) {
    std::uint64_t duplicates_total = 0;
    for (std::uint32_t seed = 1; seed <= 40; ++seed) {
        const ModelResult result = run_model(Delivery::kAtLeastOnce, seed);
        std::uint64_t duplicates = 0;
        for (std::size_t n = 0; n < result.sent; ++n) {
            const auto found = result.arrivals.find("m" + std::to_string(n));
            CHECK_TRUE(found != result.arrivals.end());
            if (found != result.arrivals.end()) {
                duplicates += static_cast<std::uint64_t>(found->second - 1);
            }
        }
        CHECK(duplicates <= result.in_doubt);
        duplicates_total += duplicates;
    }
    CHECK(duplicates_total > 0);  // the model does resend, so the check above bites
}

TEST(ClientPlain, ConfirmationsStartAfreshOnEveryConnection) {
    for (int closes = 0; closes < 2; ++closes) {
        Rig rig(Delivery::kAtMostOnce);
        rig.connect();
        rig.send("a");
        rig.service();  // handed over; its ping is out, unanswered
        if (closes == 0) {
            rig.lose_link();
        } else {
            rig.connection.stream().push_input(std::string("\x88\x02\x03\xe9", 4));  // close 1001
            rig.service();
            for (int i = 0; i < 10 && rig.client.state() != LinkState::kWaitingToRetry; ++i) {
                rig.connection.stream().push_eof();
                rig.service();
            }
        }
        CHECK_EQUAL(1, rig.client.counters().in_doubt);
        rig.connect();
        for (int i = 0; i < 10; ++i) {
            rig.send("b" + std::to_string(i));
            rig.service();
            rig.server_takes_all();
            rig.service();
        }
        CHECK_EQUAL(10, rig.received.size());
        CHECK_EQUAL(11, rig.client.counters().uplink_acked);
        CHECK_EQUAL(10, rig.client.counters().confirmed);
    }
}

// SPDX-License-Identifier: MIT
// The client glue over fakes: resolution, connect, upgrade, frames, the
// outbox and the failure paths, with the reconnect machine deciding.
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
#include "support/alloc_counter.h"
#include "support/tether_strings.h"
#include "tether/client.h"
#include "tether/net/ws_handshake.h"

using tether::Client;
using tether::ClientConfig;
using tether::LinkState;
using tether::TimeMs;
using tether::test::FakeConnection;
using tether::test::FakeResolver;

namespace {

struct Recorder final : tether::ClientListener {
    void on_state(const tether::ClientEvent& event) override {
        states.push_back(event.state);
        last = event;
        reasons.push_back(event.reason);
    }
    void on_message(tether::net::WsOpcode type, const std::uint8_t* data,
                    std::size_t size) override {
        (void)type;
        ++message_count;
        if (keep_messages) {
            messages.emplace_back(reinterpret_cast<const char*>(data), size);
        }
    }
    bool keep_messages = true;
    std::size_t message_count = 0;
    std::vector<LinkState> states;
    std::vector<std::string> reasons;
    std::vector<std::string> messages;
    tether::ClientEvent last{};
};

struct Credentials final : tether::CredentialsProvider {
    bool authorization(char* out, std::size_t capacity) override {
        std::snprintf(out, capacity, "Bearer %s", token.c_str());
        return true;
    }
    void refresh() override {
        ++refreshes;
        token = "fresh";
    }
    std::string token = "stale";
    int refreshes = 0;
};

// The 101 answer to the upgrade request the client wrote.
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

std::string server_text(const std::string& text) {
    std::string frame;
    frame += static_cast<char>(0x81);
    frame += static_cast<char>(text.size());  // tests keep it under 126
    return frame + text;
}

// Unmasks every client frame in `bytes` (after the HTTP request) and returns
// the text payloads of data frames, and the close code of a close frame.
struct ClientFrames {
    std::vector<std::string> texts;
    int close_code = -1;
    int pings = 0;
};

ClientFrames decode_client_frames(const std::string& bytes) {
    ClientFrames frames;
    std::size_t at = bytes.find("\r\n\r\n");
    at = at == std::string::npos ? 0 : at + 4;
    while (at + 6 <= bytes.size()) {
        const auto b0 = static_cast<std::uint8_t>(bytes[at]);
        const auto b1 = static_cast<std::uint8_t>(bytes[at + 1]);
        CHECK((b1 & 0x80u) != 0);  // every client frame is masked
        std::size_t length = b1 & 0x7Fu;
        std::size_t header = 2;
        if (length == 126) {
            length = static_cast<std::size_t>(static_cast<std::uint8_t>(bytes[at + 2]) << 8 |
                                              static_cast<std::uint8_t>(bytes[at + 3]));
            header = 4;
        }
        const std::size_t mask_at = at + header;
        std::string payload = bytes.substr(mask_at + 4, length);
        for (std::size_t i = 0; i < payload.size(); ++i) {
            payload[i] = static_cast<char>(payload[i] ^ bytes[mask_at + (i % 4)]);
        }
        const unsigned opcode = b0 & 0x0Fu;
        if (opcode == 0x1 || opcode == 0x2) {
            frames.texts.push_back(payload);
        } else if (opcode == 0x8) {
            frames.close_code = payload.size() >= 2 ? (static_cast<std::uint8_t>(payload[0]) << 8 |
                                                       static_cast<std::uint8_t>(payload[1]))
                                                    : 0;
        } else if (opcode == 0x9) {
            ++frames.pings;
        }
        at = mask_at + 4 + length;
    }
    return frames;
}

struct Rig {
    explicit Rig(const char* url = "ws://127.0.0.1:9000/telemetry", bool with_state = false,
                 std::uint32_t rtt_probe_ms = 0)
        : client(make_config(url, rtt_probe_ms), buffers(), connection, resolver, random, masks,
                 &recorder, &credentials, with_state ? &record : nullptr,
                 with_state ? &state : nullptr) {
        CHECK_EQUAL(tether::Status::kOk, client.init());
    }

    ClientConfig make_config(const char* url, std::uint32_t rtt_probe_ms) {
        config.reconnect.heartbeat.rtt_probe_ms = rtt_probe_ms;
        config.urls[0] = url;
        config.url_count = 1;
        config.reconnect.backoff.jitter = tether::JitterMode::kNone;
        config.ws.max_message_size = 4096;
        return config;
    }
    tether::ClientBuffers buffers() {
        return tether::ClientBuffers{outbox, sizeof outbox, rx, sizeof rx, tx, sizeof tx};
    }

    void service() { client.service(now); }
    // Starts and completes the upgrade.
    void go_online() {
        client.start(now);
        service();
        CHECK_EQUAL(LinkState::kWsHandshake, client.state());
        connection.stream().push_input(switching_response(connection.stream().output_string()));
        service();
        CHECK_EQUAL(LinkState::kOnline, client.state());
    }

    ClientConfig config;
    std::uint8_t outbox[64 * 1024];
    std::uint8_t rx[4096];
    std::uint8_t tx[16 * 1024];
    FakeConnection connection;
    FakeResolver resolver;
    tether::test::CountingRandom random;
    tether::test::FixedMasks masks;
    Recorder recorder;
    Credentials credentials;
    tether::test::FakeStorage storage;
    tether::StateRecord record{storage};
    tether::PersistentState state;
    Client client;
    TimeMs now = 5000;
};

tether::Status send_text(Client& client, const std::string& text) {
    return client.send(0, reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
}

}  // namespace

TEST_GROUP(Client){};

TEST(Client, RejectsABadUrlWithAClearError) {
    ClientConfig config;
    config.urls[0] = "http://example.com/";
    config.url_count = 1;
    std::uint8_t outbox[1024], rx[1024], tx[1024];
    FakeConnection connection;
    FakeResolver resolver;
    tether::test::CountingRandom random;
    tether::test::FixedMasks masks;
    Client client(config,
                  tether::ClientBuffers{outbox, sizeof outbox, rx, sizeof rx, tx, sizeof tx},
                  connection, resolver, random, masks);
    CHECK_EQUAL(tether::Status::kInvalidArgument, client.init());
    STRCMP_EQUAL("url 1: bad_scheme", client.config_error());
}

TEST(Client, SendsAnUpgradeRequestForTheUrl) {
    Rig rig("ws://gateway.example:9000/telemetry?device=7");
    rig.client.start(rig.now);
    rig.service();
    CHECK_EQUAL(LinkState::kWsHandshake, rig.client.state());
    STRCMP_EQUAL("gateway.example", rig.resolver.hosts().at(0).c_str());
    CHECK_EQUAL(9000, rig.connection.opened().at(0).port);
    const std::string request = rig.connection.stream().output_string();
    CHECK(request.rfind("GET /telemetry?device=7 HTTP/1.1\r\n", 0) == 0);
    CHECK(request.find("Host: gateway.example:9000\r\n") != std::string::npos);
    CHECK(request.find("Sec-WebSocket-Version: 13\r\n") != std::string::npos);
    CHECK(request.find("Authorization: Bearer stale\r\n") != std::string::npos);
}

TEST(Client, MessagesQueuedWhileOfflineGoOutInOrderOnceOpen) {
    Rig rig;
    for (int i = 0; i < 100; ++i) {
        CHECK_EQUAL(tether::Status::kOk, send_text(rig.client, "m" + std::to_string(i)));
    }
    rig.go_online();
    rig.service();
    const ClientFrames frames = decode_client_frames(rig.connection.stream().output_string());
    CHECK_EQUAL(100, frames.texts.size());
    for (int i = 0; i < 100; ++i) {
        STRCMP_EQUAL(("m" + std::to_string(i)).c_str(),
                     frames.texts[static_cast<std::size_t>(i)].c_str());
    }
    CHECK_TRUE(rig.client.idle());
    // Coalesced: the upgrade, then every frame in a handful of writes.
    CHECK(rig.connection.stream().write_calls() + rig.connection.stream().writev_calls() <= 3);
}

TEST(Client, DeliversServerMessagesToTheListener) {
    Rig rig;
    rig.go_online();
    rig.connection.stream().push_input(server_text("hello") + server_text("world"));
    rig.service();
    CHECK_EQUAL(2, rig.recorder.messages.size());
    STRCMP_EQUAL("hello", rig.recorder.messages[0].c_str());
    STRCMP_EQUAL("world", rig.recorder.messages[1].c_str());
}

TEST(Client, EchoesAPeerCloseAndReconnectsAfterTheBackoff) {
    Rig rig;
    rig.go_online();
    rig.connection.stream().push_input(std::string("\x88\x02\x03\xe9", 4));  // close 1001
    rig.service();
    CHECK_EQUAL(1001, decode_client_frames(rig.connection.stream().output_string()).close_code);
    CHECK_EQUAL(LinkState::kWaitingToRetry, rig.client.state());
    STRCMP_EQUAL("close_going_away", rig.recorder.last.reason);
    UNSIGNED_LONGS_EQUAL(1000, rig.recorder.last.delay_ms);
    rig.now += 1000;
    rig.service();
    CHECK_EQUAL(LinkState::kWsHandshake, rig.client.state());
    CHECK_EQUAL(2, rig.connection.opened().size());
}

TEST(Client, UnsentMessagesSurviveALostLink) {
    Rig rig;
    rig.go_online();
    rig.connection.stream().block_next_writes(1000);
    CHECK_EQUAL(tether::Status::kOk, send_text(rig.client, "kept-1"));
    CHECK_EQUAL(tether::Status::kOk, send_text(rig.client, "kept-2"));
    rig.service();
    rig.connection.stream().push_eof();
    rig.service();
    CHECK_EQUAL(LinkState::kWaitingToRetry, rig.client.state());
    STRCMP_EQUAL("connection_lost", rig.recorder.last.reason);
    rig.now += 1000;
    rig.service();
    rig.connection.stream().push_input(switching_response(rig.connection.stream().output_string()));
    rig.service();
    rig.service();
    const ClientFrames frames = decode_client_frames(rig.connection.stream().output_string());
    CHECK_EQUAL(2, frames.texts.size());
    STRCMP_EQUAL("kept-1", frames.texts[0].c_str());
}

TEST(Client, ServiceUnavailableWaitsForRetryAfter) {
    Rig rig;
    rig.client.start(rig.now);
    rig.service();
    rig.connection.stream().push_input(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n");
    rig.service();
    CHECK_EQUAL(LinkState::kWaitingToRetry, rig.client.state());
    STRCMP_EQUAL("http_overloaded", rig.recorder.last.reason);
    UNSIGNED_LONGS_EQUAL(7000, rig.recorder.last.delay_ms);
    STRCMP_EQUAL("status=503 retry_after_s=7", rig.recorder.last.detail);
    rig.now += 6999;
    rig.service();
    CHECK_EQUAL(1, rig.connection.opened().size());
    rig.now += 1;
    rig.service();
    CHECK_EQUAL(2, rig.connection.opened().size());
}

TEST(Client, UnauthorizedRefreshesTheTokenAndRetriesAtOnce) {
    Rig rig;
    rig.client.start(rig.now);
    rig.service();
    rig.connection.stream().push_input("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
    rig.service();
    CHECK_EQUAL(1, rig.credentials.refreshes);
    rig.service();
    CHECK_EQUAL(LinkState::kWsHandshake, rig.client.state());
    CHECK(rig.connection.stream().output_string().find("Authorization: Bearer fresh\r\n") !=
          std::string::npos);
}

TEST(Client, ABadAcceptFailsTheHandshake) {
    Rig rig;
    rig.client.start(rig.now);
    rig.service();
    rig.connection.stream().push_input(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
    rig.service();
    CHECK_EQUAL(LinkState::kWaitingToRetry, rig.client.state());
    STRCMP_EQUAL("handshake_invalid", rig.recorder.last.reason);
    STRCMP_EQUAL("handshake=bad_accept", rig.recorder.last.detail);
}

TEST(Client, ARefusedAddressMovesOnToTheNextOne) {
    Rig rig;
    rig.resolver.push(FakeResolver::Outcome{
        tether::ResolveStatus::kDone,
        {tether::net::make_ipv4(10, 0, 0, 1), tether::net::make_ipv4(10, 0, 0, 2)},
        true});
    rig.connection.fail_next_open(tether::TransportError::kRefused);
    rig.client.start(rig.now);
    rig.service();
    CHECK_EQUAL(2, rig.connection.opened().size());
    CHECK_EQUAL(2, rig.connection.opened()[1].address.bytes[3]);
    CHECK_EQUAL(LinkState::kWsHandshake, rig.client.state());
}

TEST(Client, ARefusedLastAddressIsARetriedFailure) {
    Rig rig;
    rig.connection.fail_next_open(tether::TransportError::kRefused);
    rig.client.start(rig.now);
    rig.service();
    CHECK_EQUAL(LinkState::kWaitingToRetry, rig.client.state());
    STRCMP_EQUAL("tcp_refused", rig.recorder.last.reason);
}

TEST(Client, ANameThatDoesNotResolveIsRetried) {
    Rig rig("ws://nowhere.invalid/");
    rig.resolver.push(FakeResolver::Outcome{tether::ResolveStatus::kNameError, {}, false});
    rig.client.start(rig.now);
    rig.service();
    CHECK_EQUAL(LinkState::kWaitingToRetry, rig.client.state());
    STRCMP_EQUAL("dns_failure", rig.recorder.last.reason);
    STRCMP_EQUAL("resolve=name_error", rig.recorder.last.detail);
}

TEST(Client, ACertificateThatDoesNotVerifyIsRetriedSlowly) {
    Rig rig("wss://127.0.0.1:9443/");
    rig.connection.set_tls_delay(1);
    rig.client.start(rig.now);
    rig.service();
    CHECK_EQUAL(LinkState::kTlsHandshake, rig.client.state());
    rig.connection.fail_establish(tether::TransportError::kCertificateInvalid);
    rig.connection.set_certificate_problem(tether::CertificateProblem::kNameMismatch);
    rig.service();
    CHECK_EQUAL(LinkState::kWaitingToRetry, rig.client.state());
    STRCMP_EQUAL("tls_certificate_invalid", rig.recorder.last.reason);
    STRCMP_EQUAL("tls=certificate_invalid certificate=name_mismatch", rig.recorder.last.detail);
    UNSIGNED_LONGS_EQUAL(32000, rig.recorder.last.delay_ms);
}

TEST(Client, AProtocolErrorClosesWithItsCode) {
    Rig rig;
    rig.go_online();
    rig.connection.stream().push_input(std::string("\x83\x00", 2));  // opcode 3: reserved
    rig.service();
    CHECK_EQUAL(1002, decode_client_frames(rig.connection.stream().output_string()).close_code);
    STRCMP_EQUAL("protocol_error", rig.recorder.last.reason);
}

TEST(Client, SendsAHeartbeatPingWhenTheLinkIsQuiet) {
    Rig rig;
    rig.go_online();
    rig.now += 30000;
    rig.service();
    CHECK_EQUAL(1, decode_client_frames(rig.connection.stream().output_string()).pings);
    rig.now += 10000;
    rig.service();
    CHECK_EQUAL(LinkState::kWaitingToRetry, rig.client.state());
    STRCMP_EQUAL("dead_link", rig.recorder.last.reason);
}

TEST(Client, MeasuresTheRoundTripWhileDataFlowsWithProbes) {
    Rig rig("ws://127.0.0.1:9000/telemetry", false, 30000);
    rig.go_online();
    const TimeMs online_at = rig.now;
    while (tether::time_since(rig.now, online_at) < 30000u) {
        rig.now += 1000;
        rig.connection.stream().push_input(server_text("reading"));
        rig.service();
    }
    CHECK_EQUAL(1, decode_client_frames(rig.connection.stream().output_string()).pings);
    CHECK_FALSE(rig.client.machine().heartbeat().has_rtt());
    rig.now += 12;
    rig.connection.stream().push_input(std::string("\x8a\x04\x00\x00\x00\x01", 6));  // pong 1
    rig.service();
    CHECK_TRUE(rig.client.machine().heartbeat().has_rtt());
    UNSIGNED_LONGS_EQUAL(12, rig.client.machine().heartbeat().last_rtt_ms());
    CHECK_EQUAL(LinkState::kOnline, rig.client.state());
}

TEST(Client, FailsClosedWithoutEntropy) {
    Rig rig;
    rig.random.failing = true;
    rig.client.start(rig.now);
    rig.service();
    CHECK_EQUAL(LinkState::kWaitingToRetry, rig.client.state());
    CHECK(rig.connection.stream().output_string().find("GET ") == std::string::npos);
}

TEST(Client, PersistsTheAttemptCounterAsAttemptsStart) {
    Rig rig("ws://127.0.0.1:9000/", true);
    rig.connection.fail_next_open(tether::TransportError::kRefused);
    rig.client.start(rig.now);
    rig.service();
    tether::PersistentState loaded;
    tether::LoadSource source;
    tether::StateRecord reader(rig.storage);
    CHECK_EQUAL(tether::Status::kOk, reader.load(&loaded, &source));
    UNSIGNED_LONGS_EQUAL(1, loaded.reconnect_attempts);
}

TEST(Client, RestoresThePersistedAttemptCounter) {
    Rig rig("ws://127.0.0.1:9000/", true);
    rig.state.reconnect_attempts = 4;
    tether::ClientConfig config = rig.config;
    std::uint8_t outbox[1024], rx[4096], tx[8192];
    Client restarted(config,
                     tether::ClientBuffers{outbox, sizeof outbox, rx, sizeof rx, tx, sizeof tx},
                     rig.connection, rig.resolver, rig.random, rig.masks, &rig.recorder, nullptr,
                     &rig.record, &rig.state);
    CHECK_EQUAL(tether::Status::kOk, restarted.init());
    restarted.start(rig.now);
    CHECK_EQUAL(LinkState::kWaitingToRetry, restarted.state());
    UNSIGNED_LONGS_EQUAL(8000, rig.recorder.last.delay_ms);
}

TEST(Client, StopClosesCleanlyAndStaysDown) {
    Rig rig;
    rig.go_online();
    rig.client.stop(rig.now, 1000);
    CHECK_EQUAL(LinkState::kClosing, rig.client.state());
    CHECK_EQUAL(1000, decode_client_frames(rig.connection.stream().output_string()).close_code);
    rig.connection.stream().push_input(std::string("\x88\x02\x03\xe8", 4));
    rig.service();
    CHECK_EQUAL(LinkState::kIdle, rig.client.state());
}

TEST(Client, NoHeapAllocationPerMessageOnceOpen) {
    Rig rig;
    rig.go_online();
    rig.connection.stream().set_discard_output(true);
    const std::string frame = server_text("incoming-message");
    // 10,000 server messages, 100 per readiness, served without allocating.
    rig.connection.stream().repeat_input(std::vector<std::uint8_t>(frame.begin(), frame.end()),
                                         10000, 100);
    const std::uint8_t payload[100] = {'x'};
    rig.recorder.keep_messages = false;
    tether::test::AllocationCounter counter;
    for (int round = 0; round < 100; ++round) {
        for (int i = 0; i < 100; ++i) {
            CHECK(rig.client.send(rig.now, payload, sizeof payload) == tether::Status::kOk);
        }
        rig.service();
    }
    const std::size_t allocations = counter.count();
    UNSIGNED_LONGS_EQUAL(0, allocations);
    UNSIGNED_LONGS_EQUAL(10000, rig.client.counters().messages_sent);
    UNSIGNED_LONGS_EQUAL(10000, rig.client.counters().messages_received);
    UNSIGNED_LONGS_EQUAL(10000, rig.recorder.message_count);
}

// SPDX-License-Identifier: MIT
// The client through an HTTP CONNECT proxy, over fakes: TCP to the proxy,
// CONNECT for the endpoint, TLS and the upgrade through the tunnel, and each
// way the proxy can fail as its own failure reason.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <CppUTest/TestHarness.h>

#include "fakes/counting_random.h"
#include "fakes/fake_connection.h"
#include "fakes/fake_resolver.h"
#include "fakes/fixed_masks.h"
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
    }
    std::vector<LinkState> states;
    tether::ClientEvent last{};
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

const char kEstablished[] = "HTTP/1.1 200 Connection established\r\nProxy-agent: test\r\n\r\n";

struct ProxyRig {
    explicit ProxyRig(const char* url, const char* proxy_url = "http://user:s3cret@proxy.lan:3128",
                      const char* no_proxy = nullptr)
        : client(make_config(url, proxy_url, no_proxy), buffers(), connection, resolver, random,
                 masks, &recorder) {
        CHECK_EQUAL(tether::Status::kOk, client.init());
    }

    ClientConfig make_config(const char* url, const char* proxy_url, const char* no_proxy) {
        CHECK_EQUAL(tether::net::ProxyUrlStatus::kOk,
                    tether::net::parse_proxy_url(proxy_url, &proxy));
        config.urls[0] = url;
        config.url_count = 1;
        config.reconnect.backoff.jitter = tether::JitterMode::kNone;
        config.reconnect.proxy_timeout_ms = 3000;
        config.ws.max_message_size = 4096;
        config.proxy = &proxy;
        config.no_proxy = no_proxy;
        return config;
    }
    tether::ClientBuffers buffers() {
        return tether::ClientBuffers{outbox, sizeof outbox, rx, sizeof rx, tx, sizeof tx};
    }
    void service() { client.service(now); }
    // Starts: TCP to the proxy is up and CONNECT written.
    void start() {
        client.start(now);
        service();
        CHECK_EQUAL(LinkState::kProxyConnect, client.state());
    }
    // The proxy's answer in chunks of `chunk` bytes, one service() each.
    void answer(const std::string& text, std::size_t chunk = 1000) {
        for (std::size_t at = 0; at < text.size(); at += chunk) {
            connection.stream().push_input(text.substr(at, chunk));
            service();
        }
    }

    tether::net::ProxyUrl proxy;
    ClientConfig config;
    std::uint8_t outbox[16 * 1024];
    std::uint8_t rx[4096];
    std::uint8_t tx[8 * 1024];
    FakeConnection connection;
    FakeResolver resolver;
    tether::test::CountingRandom random;
    tether::test::FixedMasks masks;
    Recorder recorder;
    Client client;
    TimeMs now = 5000;
};

}  // namespace

TEST_GROUP(ClientProxy){};

TEST(ClientProxy, ConnectsToTheProxyAndAsksForTheEndpoint) {
    ProxyRig rig("ws://gateway.example:9000/telemetry");
    rig.start();
    STRCMP_EQUAL("proxy.lan", rig.resolver.hosts().at(0).c_str());
    CHECK_EQUAL(3128, rig.connection.opened().at(0).port);
    CHECK_FALSE(rig.connection.opened().at(0).tls);
    // user:s3cret
    STRCMP_EQUAL(
        "CONNECT gateway.example:9000 HTTP/1.1\r\nHost: gateway.example:9000\r\n"
        "Proxy-Authorization: Basic dXNlcjpzM2NyZXQ=\r\n\r\n",
        rig.connection.stream().output_string().c_str());
}

TEST(ClientProxy, PlainWebSocketThroughTheTunnelInOddChunks) {
    ProxyRig rig("ws://gateway.example:9000/telemetry");
    rig.start();
    const std::size_t connect_size = rig.connection.stream().output_string().size();
    rig.answer(kEstablished, 3);
    CHECK_EQUAL(LinkState::kWsHandshake, rig.client.state());
    const std::string upgrade = rig.connection.stream().output_string().substr(connect_size);
    CHECK(upgrade.rfind("GET /telemetry HTTP/1.1\r\n", 0) == 0);
    CHECK(upgrade.find("Host: gateway.example:9000\r\n") != std::string::npos);
    rig.answer(switching_response(upgrade), 7);
    CHECK_EQUAL(LinkState::kOnline, rig.client.state());
    CHECK(rig.connection.tls_started().empty());
}

TEST(ClientProxy, BytesAfterTheProxysAnswerReachTheUpgradeParser) {
    // The same randomness makes the same key: learn the 101 from a first run,
    // then deliver the proxy's 200 and the 101 in one chunk. The client must
    // not read past the 200's header block, or the 101 would be lost.
    std::string switching;
    {
        ProxyRig first("ws://gateway.example:9000/");
        first.start();
        const std::size_t connect_size = first.connection.stream().output_string().size();
        first.answer(kEstablished);
        switching =
            switching_response(first.connection.stream().output_string().substr(connect_size));
    }
    ProxyRig rig("ws://gateway.example:9000/");
    rig.start();
    rig.connection.stream().push_input(std::string(kEstablished) + switching);
    rig.service();
    rig.service();
    CHECK_EQUAL(LinkState::kOnline, rig.client.state());
}

TEST(ClientProxy, TlsStartsThroughTheTunnelWithTheEndpointsName) {
    ProxyRig rig("wss://gateway.example/");
    rig.start();
    CHECK(rig.connection.stream().output_string().rfind("CONNECT gateway.example:443 ", 0) == 0);
    rig.answer(kEstablished);
    CHECK_EQUAL(LinkState::kWsHandshake, rig.client.state());
    CHECK_EQUAL(1, rig.connection.tls_started().size());
    STRCMP_EQUAL("gateway.example", rig.connection.tls_started()[0].c_str());
}

TEST(ClientProxy, ACertificateFailureThroughTheTunnelIsACertificateFailure) {
    ProxyRig rig("wss://gateway.example/");
    rig.connection.set_tls_delay(1);
    rig.start();
    rig.answer(kEstablished);
    CHECK_EQUAL(LinkState::kTlsHandshake, rig.client.state());
    rig.connection.fail_establish(tether::TransportError::kCertificateInvalid);
    rig.connection.set_certificate_problem(tether::CertificateProblem::kUnknownCa);
    rig.service();
    CHECK_EQUAL(LinkState::kWaitingToRetry, rig.client.state());
    STRCMP_EQUAL("tls_certificate_invalid", rig.recorder.last.reason);
    STRCMP_EQUAL("tls=certificate_invalid certificate=unknown_ca", rig.recorder.last.detail);
}

TEST(ClientProxy, EachRefusalOfTheProxyHasItsOwnReason) {
    struct Case {
        const char* answer;
        const char* reason;
        const char* detail;
    };
    const Case cases[] = {
        {"HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic "
         "realm=\"x\"\r\n\r\n<html>",
         "proxy_auth_required", "proxy_status=407"},
        {"HTTP/1.0 403 Access violation\r\n\r\n", "proxy_forbidden", "proxy_status=403"},
        {"HTTP/1.0 502 Bad Gateway\r\n\r\n", "proxy_bad_gateway", "proxy_status=502"},
        {"HTTP/1.0 503 Service Unavailable\r\n\r\n", "proxy_bad_gateway", "proxy_status=503"},
        {"HTTP/1.0 504 Gateway Timeout\r\n\r\n", "proxy_bad_gateway", "proxy_status=504"},
        {"HTTP/1.1 500 Unable to connect\r\n\r\n", "proxy_bad_gateway", "proxy_status=500"},
        {"HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"Tinyproxy\"\r\n\r\n",
         "proxy_auth_required", "proxy_status=401"},
        {"HTTP/1.1 405 Method Not Allowed\r\n\r\n", "proxy_rejected", "proxy_status=405"},
        {"SSH-2.0-OpenSSH\r\n\r\n", "proxy_malformed", "proxy=malformed"},
    };
    for (const Case& c : cases) {
        ProxyRig rig("wss://gateway.example/");
        rig.start();
        rig.answer(c.answer, 5);
        CHECK_EQUAL_TEXT(LinkState::kWaitingToRetry, rig.client.state(), c.answer);
        STRCMP_EQUAL(c.reason, rig.recorder.last.reason);
        STRCMP_EQUAL(c.detail, rig.recorder.last.detail);
        CHECK(rig.connection.tls_started().empty());
    }
}

TEST(ClientProxy, AProxyThatClosesBeforeAnsweringIsMalformed) {
    ProxyRig rig("ws://gateway.example/");
    rig.start();
    rig.connection.stream().push_input("HTTP/1.1 200");
    rig.connection.stream().push_eof();
    rig.service();
    STRCMP_EQUAL("proxy_malformed", rig.recorder.last.reason);
    STRCMP_EQUAL("proxy=eof", rig.recorder.last.detail);
}

TEST(ClientProxy, AProxyThatNeverAnswersTimesOut) {
    ProxyRig rig("ws://gateway.example/");
    rig.start();
    rig.now += 2999;
    rig.service();
    CHECK_EQUAL(LinkState::kProxyConnect, rig.client.state());
    rig.now += 1;
    rig.service();
    CHECK_EQUAL(LinkState::kWaitingToRetry, rig.client.state());
    STRCMP_EQUAL("proxy_timeout", rig.recorder.last.reason);
}

TEST(ClientProxy, ARefusedProxyIsTheProxysFailure) {
    ProxyRig rig("ws://gateway.example/");
    rig.connection.fail_next_open(tether::TransportError::kRefused);
    rig.client.start(rig.now);
    rig.service();
    CHECK_EQUAL(LinkState::kWaitingToRetry, rig.client.state());
    STRCMP_EQUAL("proxy_refused", rig.recorder.last.reason);
    STRCMP_EQUAL("proxy_connect=refused", rig.recorder.last.detail);
}

TEST(ClientProxy, AProxyWhoseConnectTimesOutIsUnreachable) {
    ProxyRig rig("ws://gateway.example/");
    rig.connection.set_connect_delay(1000);
    rig.client.start(rig.now);
    rig.service();
    CHECK_EQUAL(LinkState::kTcpConnecting, rig.client.state());
    rig.now += rig.config.reconnect.connect_timeout_ms;
    rig.service();
    STRCMP_EQUAL("proxy_unreachable", rig.recorder.last.reason);
}

TEST(ClientProxy, NoProxyEndpointsConnectDirectly) {
    ProxyRig rig("wss://gateway.internal:8443/", "http://proxy.lan:3128", "localhost,.internal");
    rig.client.start(rig.now);
    rig.service();
    STRCMP_EQUAL("gateway.internal", rig.resolver.hosts().at(0).c_str());
    CHECK_EQUAL(8443, rig.connection.opened().at(0).port);
    CHECK_TRUE(rig.connection.opened().at(0).tls);
    CHECK_EQUAL(LinkState::kWsHandshake, rig.client.state());
}

TEST(ClientProxy, WithoutCredentialsNoAuthorizationIsSent) {
    ProxyRig rig("ws://gateway.example/", "proxy.lan:3128");
    rig.start();
    CHECK(rig.connection.stream().output_string().find("Proxy-Authorization") == std::string::npos);
    rig.answer("HTTP/1.0 407 Proxy Authentication Required\r\n\r\n");
    STRCMP_EQUAL("proxy_auth_required", rig.recorder.last.reason);
    STRCMP_EQUAL("proxy_status=407 credentials=none", rig.recorder.last.detail);
}

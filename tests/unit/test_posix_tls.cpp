// SPDX-License-Identifier: MIT
// TLS against `openssl s_server` on 127.0.0.1 with certificates made by the
// openssl command line (support/openssl_server.h).
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "support/openssl_server.h"
#include "support/tether_strings.h"
#include "support/transport_wait.h"
#include "tether/net/ip_address.h"
#include "tether/port/entropy.h"
#include "tether/port/posix_transport.h"

// CppUTest last: its operator-new macro breaks standard headers.
#include <CppUTest/TestHarness.h>

using tether::IoResult;
using tether::IoSlice;
using tether::IoStatus;
using tether::Status;
using tether::TransportError;
using tether::port::PosixTransport;
using tether::port::TlsContext;
using tether::port::TlsSettings;
using tether::test::OpenSslServer;
using tether::test::TestPki;

namespace {

constexpr int kTimeoutMs = 3000;

std::string read_file(const std::string& path) {
    std::ifstream stream(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(stream), std::istreambuf_iterator<char>());
}

TlsSettings trusting(const std::string& ca_file) {
    TlsSettings settings;
    settings.ca_file = ca_file.c_str();
    return settings;
}

}  // namespace

TEST_GROUP(PosixTls) {
    const TestPki& pki = TestPki::get();
    tether::port::Entropy entropy;
    TlsContext context;
    // A second context for OneTransportServesTwoContexts. Declared before the
    // transport so it outlives it, as posix_transport.h requires: the
    // transport's TLS session refers to it until the transport is destroyed.
    TlsContext second_context;
    PosixTransport transport;
    OpenSslServer server;

    void setup() override {
        CHECK_EQUAL(Status::kOk, entropy.init("tls-test"));
    }

    void start_server(const std::string& cert, const std::string& key,
                      std::vector<std::string> extra = {"-rev"}) {
        std::vector<std::string> args = {"-cert", cert, "-key", key, "-tls1_2"};
        args.insert(args.end(), extra.begin(), extra.end());
        CHECK_TRUE(server.start(args));
    }

    IoResult connect(const char* server_name) {
        TransportError error = TransportError::kNone;
        CHECK_EQUAL(Status::kOk, transport.open(tether::net::make_ipv4(127, 0, 0, 1), server.port(),
                                                &context, server_name, &error));
        return tether::test::establish_within(transport, kTimeoutMs);
    }

    void check_echo() {
        CHECK_TRUE(tether::test::write_all(transport, "hello tether\n", kTimeoutMs));
        STRCMP_EQUAL("rehtet olleh\n", tether::test::read_up_to(transport, 13, kTimeoutMs).c_str());
    }
};

TEST(PosixTls, HandshakesAndEchoesWithTheRightCa) {
    start_server(pki.server_cert, pki.server_key);
    CHECK_EQUAL(Status::kOk, context.init(trusting(pki.ca_cert), entropy));
    const IoResult result = connect("localhost");
    CHECK_EQUAL(IoStatus::kOk, result.status);
    CHECK_TRUE(transport.tcp_connected());
    CHECK_FALSE(transport.session_resumed());
    check_echo();
}

TEST(PosixTls, WrongHostnameIsCertificateInvalid) {
    start_server(pki.wrong_name_cert, pki.wrong_name_key);
    CHECK_EQUAL(Status::kOk, context.init(trusting(pki.ca_cert), entropy));
    const IoResult result = connect("localhost");
    CHECK_EQUAL(IoStatus::kError, result.status);
    CHECK_EQUAL(TransportError::kCertificateInvalid, result.error);
    STRCMP_CONTAINS("Common Name", transport.verify_error());
    CHECK_EQUAL(tether::CertificateProblem::kNameMismatch, transport.certificate_problem());
    // Failure is sticky until close().
    CHECK_EQUAL(TransportError::kCertificateInvalid, transport.establish().error);
}

TEST(PosixTls, UnknownCaIsCertificateInvalid) {
    start_server(pki.server_cert, pki.server_key);
    CHECK_EQUAL(Status::kOk, context.init(trusting(pki.unrelated_ca_cert), entropy));
    const IoResult result = connect("localhost");
    CHECK_EQUAL(TransportError::kCertificateInvalid, result.error);
    STRCMP_CONTAINS("not correctly signed", transport.verify_error());
    CHECK_EQUAL(tether::CertificateProblem::kUnknownCa, transport.certificate_problem());
}

TEST(PosixTls, InsecureModeAcceptsAnUnknownCa) {
    start_server(pki.server_cert, pki.server_key);
    TlsSettings settings = trusting(pki.unrelated_ca_cert);
    settings.insecure = true;
    CHECK_EQUAL(Status::kOk, context.init(settings, entropy));
    CHECK_EQUAL(IoStatus::kOk, connect("wrong.example").status);
    check_echo();
}

TEST(PosixTls, IpLiteralMatchesTheIpAddressSan) {
    start_server(pki.server_cert, pki.server_key);
    CHECK_EQUAL(Status::kOk, context.init(trusting(pki.ca_cert), entropy));
    CHECK_EQUAL(IoStatus::kOk, connect("127.0.0.1").status);
    check_echo();
}

TEST(PosixTls, IpLiteralNotInTheSansIsCertificateInvalid) {
    start_server(pki.server_cert, pki.server_key);
    CHECK_EQUAL(Status::kOk, context.init(trusting(pki.ca_cert), entropy));
    CHECK_EQUAL(TransportError::kCertificateInvalid, connect("127.0.0.2").error);
    CHECK_EQUAL(tether::CertificateProblem::kNameMismatch, transport.certificate_problem());
}

TEST(PosixTls, MatchingPinConnects) {
    start_server(pki.server_cert, pki.server_key);
    TlsSettings settings = trusting(pki.ca_cert);
    const std::string pin = read_file(pki.server_pin);
    CHECK_EQUAL(32u, pin.size());
    settings.has_pin = true;
    std::copy(pin.begin(), pin.end(), settings.pin_sha256);
    CHECK_EQUAL(Status::kOk, context.init(settings, entropy));
    CHECK_EQUAL(IoStatus::kOk, connect("localhost").status);
    check_echo();
}

TEST(PosixTls, MismatchedPinIsCertificateInvalid) {
    start_server(pki.server_cert, pki.server_key);
    TlsSettings settings = trusting(pki.ca_cert);
    const std::string pin = read_file(pki.server_pin);
    settings.has_pin = true;
    std::copy(pin.begin(), pin.end(), settings.pin_sha256);
    settings.pin_sha256[31] ^= 1;
    CHECK_EQUAL(Status::kOk, context.init(settings, entropy));
    const IoResult result = connect("localhost");
    CHECK_EQUAL(TransportError::kCertificateInvalid, result.error);
    STRCMP_CONTAINS("pin", transport.verify_error());
    CHECK_EQUAL(tether::CertificateProblem::kPinMismatch, transport.certificate_problem());
}

TEST(PosixTls, MutualTlsWithoutClientCertificateFails) {
    start_server(pki.server_cert, pki.server_key,
                 {"-rev", "-Verify", "1", "-CAfile", pki.client_ca_cert});
    CHECK_EQUAL(Status::kOk, context.init(trusting(pki.ca_cert), entropy));
    const IoResult result = connect("localhost");
    CHECK_EQUAL(IoStatus::kError, result.status);
    CHECK_EQUAL(TransportError::kTlsFailed, result.error);
}

TEST(PosixTls, MutualTlsWithClientCertificateSucceeds) {
    start_server(pki.server_cert, pki.server_key,
                 {"-rev", "-Verify", "1", "-CAfile", pki.client_ca_cert});
    TlsSettings settings = trusting(pki.ca_cert);
    settings.client_cert_file = pki.client_cert.c_str();
    settings.client_key_file = pki.client_key.c_str();
    CHECK_EQUAL(Status::kOk, context.init(settings, entropy));
    CHECK_EQUAL(IoStatus::kOk, connect("localhost").status);
    check_echo();
}

TEST(PosixTls, SecondConnectionResumesTheSession) {
    // -www answers each request with a page that says whether the server
    // itself saw a new or a reused session.
    start_server(pki.server_cert, pki.server_key, {"-www"});
    CHECK_EQUAL(Status::kOk, context.init(trusting(pki.ca_cert), entropy));
    const char* expected[] = {"New, TLSv1.2", "Reused, TLSv1.2", "Reused, TLSv1.2"};
    for (int round = 0; round < 3; ++round) {
        CHECK_EQUAL(IoStatus::kOk, connect("localhost").status);
        CHECK_EQUAL(round > 0, transport.session_resumed());
        CHECK_TRUE(tether::test::write_all(transport, "GET / HTTP/1.0\r\n\r\n", kTimeoutMs));
        const std::string page = tether::test::read_up_to(transport, 1 << 20, kTimeoutMs);
        STRCMP_CONTAINS(expected[round], page.c_str());
        transport.close();
    }
}

TEST(PosixTls, ResumptionCanBeTurnedOff) {
    start_server(pki.server_cert, pki.server_key, {"-www"});
    TlsSettings settings = trusting(pki.ca_cert);
    settings.session_resumption = false;
    CHECK_EQUAL(Status::kOk, context.init(settings, entropy));
    for (int round = 0; round < 2; ++round) {
        CHECK_EQUAL(IoStatus::kOk, connect("localhost").status);
        CHECK_FALSE(transport.session_resumed());
        CHECK_TRUE(tether::test::write_all(transport, "GET / HTTP/1.0\r\n\r\n", kTimeoutMs));
        STRCMP_CONTAINS("New, TLSv1.2",
                        tether::test::read_up_to(transport, 1 << 20, kTimeoutMs).c_str());
        transport.close();
    }
}

TEST(PosixTls, PendingPlaintextIsReadWithoutThePoll) {
    start_server(pki.server_cert, pki.server_key);
    CHECK_EQUAL(Status::kOk, context.init(trusting(pki.ca_cert), entropy));
    CHECK_EQUAL(IoStatus::kOk, connect("localhost").status);
    const std::string line(200, 'x');
    CHECK_TRUE(tether::test::write_all(transport, line + "\n", kTimeoutMs));
    CHECK_TRUE(tether::test::wait_ready(transport, true, false, kTimeoutMs));
    std::uint8_t first[3];
    IoResult result = IoResult::would_block();
    while (result.status == IoStatus::kWouldBlock) {
        result = transport.read(first, sizeof first);
        if (result.status == IoStatus::kWouldBlock) {
            CHECK_TRUE(tether::test::wait_ready(transport, true, false, kTimeoutMs));
        }
    }
    CHECK_EQUAL(IoStatus::kOk, result.status);
    CHECK_EQUAL(3u, result.bytes);
    // The rest of the record is decrypted already: read() hands it out
    // without the socket, and pending() says how much until it is drained.
    const std::size_t pending = transport.pending();
    CHECK_TRUE(pending > 0);
    std::vector<std::uint8_t> rest(pending + 10);
    result = transport.read(rest.data(), rest.size());
    CHECK_EQUAL(IoStatus::kOk, result.status);
    CHECK_EQUAL(pending, result.bytes);
    CHECK_EQUAL(0u, transport.pending());
}

TEST(PosixTls, BulkGatherWritesSurviveWouldBlock) {
    start_server(pki.server_cert, pki.server_key);
    CHECK_EQUAL(Status::kOk, context.init(trusting(pki.ca_cert), entropy));
    CHECK_EQUAL(IoStatus::kOk, connect("localhost").status);
    // 1 KiB lines, each sent as two slices, until writing has stalled three
    // times. The server echoes each line reversed, so when we stop reading it
    // stops reading too and our writes block with a record half sent; the
    // bytes must still arrive exactly once and in order. How much fits in
    // the socket buffers depends on the kernel, hence no fixed size.
    std::string sent_text;
    std::string expected;
    std::size_t sent = 0;
    std::string received;
    int blocked = 0;
    // Valgrind runs this about twenty times slower (make test-valgrind).
    const std::int64_t budget_ms =
        std::getenv("TETHER_UNIT_UNDER_VALGRIND") != nullptr ? 120000 : 10000;
    const std::int64_t deadline = tether::test::monotonic_ms() + budget_ms;
    while ((blocked < 3 || received.size() < expected.size()) &&
           tether::test::monotonic_ms() < deadline && sent_text.size() < (64u << 20)) {
        if (sent == sent_text.size() && blocked < 3) {
            for (int i = 0; i < 256; ++i) {
                std::string line = "line " + std::to_string(sent_text.size()) + " ";
                line.resize(1023, static_cast<char>('a' + i % 26));
                sent_text += line + "\n";
                expected += std::string(line.rbegin(), line.rend()) + "\n";
            }
        }
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(sent_text.data());
        IoResult written = IoResult::would_block();
        if (sent < sent_text.size()) {
            const std::size_t left = sent_text.size() - sent;
            const IoSlice slices[] = {{bytes + sent, left / 2},
                                      {bytes + sent + left / 2, left - left / 2}};
            written = transport.writev(slices, 2);
            CHECK_TRUE(written.status != IoStatus::kError);
            sent += written.bytes;
            blocked += written.status == IoStatus::kWouldBlock ? 1 : 0;
        }
        if (written.status == IoStatus::kOk) {
            continue;  // read only once writing stalls
        }
        std::uint8_t buffer[8192];
        const IoResult got = transport.read(buffer, sizeof buffer);
        CHECK_TRUE(got.status == IoStatus::kOk || got.status == IoStatus::kWouldBlock);
        received.append(reinterpret_cast<const char*>(buffer), got.bytes);
        if (got.status == IoStatus::kWouldBlock && transport.pending() == 0) {
            tether::test::wait_ready(transport, true, sent < sent_text.size(), 1000);
        }
    }
    CHECK_TRUE(blocked > 0);
    CHECK_EQUAL(expected.size(), received.size());
    CHECK_TRUE(expected == received);
}

TEST(PosixTls, RetryWithOtherBytesAfterWouldBlockFails) {
    start_server(pki.server_cert, pki.server_key);
    CHECK_EQUAL(Status::kOk, context.init(trusting(pki.ca_cert), entropy));
    CHECK_EQUAL(IoStatus::kOk, connect("localhost").status);
    // Never reading: the server blocks on its echo, then our writes block.
    const std::string line = std::string(4000, 'q') + "\n";
    IoResult result = IoResult::ok(0);
    for (int i = 0; i < 100000 && result.status == IoStatus::kOk; ++i) {
        result = transport.write(reinterpret_cast<const std::uint8_t*>(line.data()), line.size());
    }
    CHECK_EQUAL(IoStatus::kWouldBlock, result.status);
    CHECK_TRUE(transport.interest(false, true).write);
    // mbedTLS holds that record already encrypted; other bytes cannot replace it.
    const std::string other(line.size(), 'z');
    result = transport.write(reinterpret_cast<const std::uint8_t*>(other.data()), other.size());
    CHECK_EQUAL(IoStatus::kError, result.status);
    CHECK_EQUAL(TransportError::kOther, result.error);
}

TEST(PosixTls, ResumedSessionIsStillPinned) {
    start_server(pki.server_cert, pki.server_key, {"-www"});
    TlsSettings settings = trusting(pki.ca_cert);
    const std::string pin = read_file(pki.server_pin);
    settings.has_pin = true;
    std::copy(pin.begin(), pin.end(), settings.pin_sha256);
    CHECK_EQUAL(Status::kOk, context.init(settings, entropy));
    CHECK_EQUAL(IoStatus::kOk, connect("localhost").status);
    transport.close();
    CHECK_EQUAL(IoStatus::kOk, connect("localhost").status);
    CHECK_TRUE(transport.session_resumed());
}

TEST(PosixTls, ContextReportsBadFiles) {
    const std::string missing = "/nonexistent/ca.pem";
    TlsSettings settings = trusting(missing);
    CHECK_EQUAL(Status::kNotFound, context.init(settings, entropy));
    STRCMP_EQUAL("CA file /nonexistent/ca.pem: No such file or directory", context.error_text());

    settings = trusting(pki.server_pin);  // not a PEM
    CHECK_EQUAL(Status::kCorrupt, context.init(settings, entropy));

    settings = trusting(pki.ca_cert);
    settings.client_cert_file = pki.client_cert.c_str();
    CHECK_EQUAL(Status::kInvalidArgument, context.init(settings, entropy));

    settings.client_key_file = pki.server_key.c_str();  // not the client's key
    CHECK_EQUAL(Status::kCorrupt, context.init(settings, entropy));
    STRCMP_CONTAINS("does not match", context.error_text());

    settings.client_key_file = "/nonexistent/key.pem";
    CHECK_EQUAL(Status::kNotFound, context.init(settings, entropy));
    STRCMP_EQUAL("client key /nonexistent/key.pem: No such file or directory",
                 context.error_text());

    settings.client_cert_file = "/nonexistent/cert.pem";
    CHECK_EQUAL(Status::kNotFound, context.init(settings, entropy));
    STRCMP_EQUAL("client certificate /nonexistent/cert.pem: No such file or directory",
                 context.error_text());

    // A directory is not a file.
    const std::string directory = "/";
    settings = trusting(directory);
    CHECK_EQUAL(Status::kNotFound, context.init(settings, entropy));
    STRCMP_EQUAL("CA file /: Is a directory", context.error_text());

    // An unusable context cannot be used to open a connection.
    TransportError error = TransportError::kNone;
    CHECK_EQUAL(Status::kInvalidArgument, transport.open(tether::net::make_ipv4(127, 0, 0, 1), 443,
                                                         &context, "localhost", &error));
    CHECK_EQUAL(-1, transport.fd());
}

TEST(PosixTls, SystemBundleIsTheDefault) {
    CHECK_EQUAL(Status::kOk, context.init(TlsSettings{}, entropy));
    // Our test CA is not in it.
    start_server(pki.server_cert, pki.server_key);
    CHECK_EQUAL(TransportError::kCertificateInvalid, connect("localhost").error);
}

TEST(PosixTls, OneTransportServesTwoContexts) {
    start_server(pki.server_cert, pki.server_key);
    CHECK_EQUAL(Status::kOk, context.init(trusting(pki.ca_cert), entropy));
    CHECK_EQUAL(Status::kOk, second_context.init(trusting(pki.ca_cert), entropy));
    CHECK_EQUAL(IoStatus::kOk, connect("localhost").status);
    check_echo();
    TransportError error = TransportError::kNone;
    CHECK_EQUAL(Status::kOk, transport.open(tether::net::make_ipv4(127, 0, 0, 1), server.port(),
                                            &second_context, "localhost", &error));
    CHECK_EQUAL(IoStatus::kOk, tether::test::establish_within(transport, kTimeoutMs).status);
    check_echo();
}

// A proxy tunnel: TCP first, TLS later on the same connection, with the name
// given to start_tls() verified (not whatever the plain open was told).
TEST(PosixTls, StartTlsOverAnEstablishedPlainConnection) {
    start_server(pki.server_cert, pki.server_key);
    CHECK_EQUAL(Status::kOk, context.init(trusting(pki.ca_cert), entropy));
    PosixTransport tunnel(&context);
    TransportError error = TransportError::kNone;
    CHECK_EQUAL(Status::kInvalidArgument, tunnel.start_tls("localhost", &error));
    CHECK_EQUAL(Status::kOk, tunnel.open(tether::net::make_ipv4(127, 0, 0, 1), server.port(), false,
                                         nullptr, &error));
    CHECK_EQUAL(IoStatus::kOk, tether::test::establish_within(tunnel, kTimeoutMs).status);
    CHECK_EQUAL(Status::kOk, tunnel.start_tls("localhost", &error));
    // (One establish() call may or may not finish the handshake: under qemu
    // the server can answer before the client reads.)
    CHECK_EQUAL(IoStatus::kOk, tether::test::establish_within(tunnel, kTimeoutMs).status);
    CHECK_TRUE(tether::test::write_all(tunnel, "hello tether\n", kTimeoutMs));
    STRCMP_EQUAL("rehtet olleh\n", tether::test::read_up_to(tunnel, 13, kTimeoutMs).c_str());
    // Once TLS runs, it cannot be started again.
    CHECK_EQUAL(Status::kInvalidArgument, tunnel.start_tls("localhost", &error));
}

TEST(PosixTls, StartTlsVerifiesTheNameItIsGiven) {
    start_server(pki.server_cert, pki.server_key);
    CHECK_EQUAL(Status::kOk, context.init(trusting(pki.ca_cert), entropy));
    PosixTransport tunnel(&context);
    TransportError error = TransportError::kNone;
    CHECK_EQUAL(Status::kOk, tunnel.open(tether::net::make_ipv4(127, 0, 0, 1), server.port(), false,
                                         nullptr, &error));
    CHECK_EQUAL(IoStatus::kOk, tether::test::establish_within(tunnel, kTimeoutMs).status);
    CHECK_EQUAL(Status::kOk, tunnel.start_tls("proxy.invalid", &error));
    const IoResult result = tether::test::establish_within(tunnel, kTimeoutMs);
    CHECK_EQUAL(TransportError::kCertificateInvalid, result.error);
    CHECK_EQUAL(tether::CertificateProblem::kNameMismatch, tunnel.certificate_problem());
}

TEST(PosixTls, StartTlsWithoutAContextFails) {
    start_server(pki.server_cert, pki.server_key);
    PosixTransport plain;
    TransportError error = TransportError::kNone;
    CHECK_EQUAL(Status::kOk, plain.open(tether::net::make_ipv4(127, 0, 0, 1), server.port(), false,
                                        nullptr, &error));
    CHECK_EQUAL(IoStatus::kOk, tether::test::establish_within(plain, kTimeoutMs).status);
    CHECK_EQUAL(Status::kInvalidArgument, plain.start_tls("localhost", &error));
    CHECK_EQUAL(TransportError::kTlsFailed, error);
}

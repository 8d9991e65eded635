// SPDX-License-Identifier: MIT
// Plain TCP over 127.0.0.1 and ::1 against sockets the test itself listens on.
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "support/openssl_server.h"
#include "support/tether_strings.h"
#include "support/transport_wait.h"
#include "tether/net/ip_address.h"
#include "tether/port/posix_transport.h"

// CppUTest last: its operator-new macro breaks standard headers.
#include <CppUTest/TestHarness.h>

using tether::IoResult;
using tether::IoSlice;
using tether::IoStatus;
using tether::Status;
using tether::TransportError;
using tether::port::PosixTransport;

namespace {

constexpr int kTimeoutMs = 3000;

// A listening socket on the loopback of one family; fd < 0 when the host
// has no such loopback.
struct Listener {
    int fd = -1;
    std::uint16_t port = 0;

    explicit Listener(int family) {
        fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_storage storage = {};
        socklen_t length;
        if (family == AF_INET) {
            sockaddr_in* in4 = reinterpret_cast<sockaddr_in*>(&storage);
            in4->sin_family = AF_INET;
            in4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            length = sizeof *in4;
        } else {
            sockaddr_in6* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
            in6->sin6_family = AF_INET6;
            in6->sin6_addr = in6addr_loopback;
            length = sizeof *in6;
        }
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0 ||
            ::listen(fd, 16) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
            if (fd >= 0) {
                ::close(fd);
            }
            fd = -1;
            return;
        }
        port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&storage)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port);
    }
    ~Listener() {
        if (fd >= 0) {
            ::close(fd);
        }
    }

    int accept_within(int timeout_ms) const {
        pollfd entry = {fd, POLLIN, 0};
        if (::poll(&entry, 1, timeout_ms) != 1) {
            return -1;
        }
        return ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    }
};

struct Peer {
    int fd;
    explicit Peer(int descriptor) : fd(descriptor) {}
    ~Peer() { close(); }
    void close() {
        if (fd >= 0) {
            ::close(fd);
            fd = -1;
        }
    }
    std::string read_exactly(std::size_t size) {
        std::string data;
        while (data.size() < size) {
            pollfd entry = {fd, POLLIN, 0};
            if (::poll(&entry, 1, kTimeoutMs) != 1) {
                break;
            }
            char buffer[65536];
            const std::size_t want =
                size - data.size() < sizeof buffer ? size - data.size() : sizeof buffer;
            const ssize_t got = ::recv(fd, buffer, want, 0);
            if (got <= 0) {
                break;
            }
            data.append(buffer, static_cast<std::size_t>(got));
        }
        return data;
    }
};

std::size_t open_descriptors() {
    std::size_t count = 0;
    DIR* dir = ::opendir("/proc/self/fd");
    while (dir != nullptr && ::readdir(dir) != nullptr) {
        ++count;
    }
    if (dir != nullptr) {
        ::closedir(dir);
    }
    return count;
}

const tether::net::IpAddress kLoopback = tether::net::make_ipv4(127, 0, 0, 1);

}  // namespace

TEST_GROUP(PosixTcp) {
    PosixTransport transport;

    void open_to(const tether::net::IpAddress& address, std::uint16_t port) {
        TransportError error = TransportError::kNone;
        CHECK_EQUAL(Status::kOk, transport.open(address, port, nullptr, nullptr, &error));
        CHECK_EQUAL(TransportError::kNone, error);
    }

    void exchange_both_ways(Peer & peer) {
        CHECK_TRUE(tether::test::write_all(transport, "ping", kTimeoutMs));
        STRCMP_EQUAL("ping", peer.read_exactly(4).c_str());
        CHECK_EQUAL(5, ::send(peer.fd, "pong!", 5, MSG_NOSIGNAL));
        STRCMP_EQUAL("pong!", tether::test::read_up_to(transport, 5, kTimeoutMs).c_str());
    }
};

TEST(PosixTcp, ConnectsAndExchangesBytesBothWays) {
    Listener listener(AF_INET);
    open_to(kLoopback, listener.port);
    CHECK_TRUE(transport.fd() >= 0);
    // Nothing moves before the connection is established.
    std::uint8_t byte;
    const IoResult early = transport.read(&byte, 1);
    CHECK_TRUE(early.status == IoStatus::kWouldBlock || early.status == IoStatus::kOk);
    CHECK_EQUAL(IoStatus::kOk, tether::test::establish_within(transport, kTimeoutMs).status);
    CHECK_TRUE(transport.tcp_connected());
    CHECK_EQUAL(IoStatus::kOk, transport.establish().status);
    Peer peer(listener.accept_within(kTimeoutMs));
    CHECK_TRUE(peer.fd >= 0);
    exchange_both_ways(peer);
    CHECK_EQUAL(0u, transport.pending());
    const tether::PollInterest interest = transport.interest(true, false);
    CHECK_TRUE(interest.read);
    CHECK_FALSE(interest.write);
}

TEST(PosixTcp, ReadWouldBlockWithoutData) {
    Listener listener(AF_INET);
    open_to(kLoopback, listener.port);
    CHECK_EQUAL(IoStatus::kOk, tether::test::establish_within(transport, kTimeoutMs).status);
    std::uint8_t buffer[8];
    CHECK_EQUAL(IoStatus::kWouldBlock, transport.read(buffer, sizeof buffer).status);
    CHECK_EQUAL(IoStatus::kOk, transport.read(buffer, 0).status);
}

TEST(PosixTcp, LargeWritevIsPartialAndArrivesInOrder) {
    Listener listener(AF_INET);
    open_to(kLoopback, listener.port);
    CHECK_EQUAL(IoStatus::kOk, tether::test::establish_within(transport, kTimeoutMs).status);
    Peer peer(listener.accept_within(kTimeoutMs));
    // 8 MiB in 3 slices (with an empty one) cannot fit the socket buffers.
    std::string data(8u << 20, '\0');
    for (std::size_t i = 0; i < data.size(); ++i) {
        data[i] = static_cast<char>((i * 7u + i / 251u) & 0xFFu);
    }
    const std::uint8_t* bytes = reinterpret_cast<const std::uint8_t*>(data.data());
    const IoSlice slices[] = {{bytes, 3}, {bytes + 3, 0}, {bytes + 3, data.size() - 3}};
    const IoResult first = transport.writev(slices, 3);
    CHECK_EQUAL(IoStatus::kOk, first.status);
    CHECK_TRUE(first.bytes > 0 && first.bytes < data.size());
    const IoResult full = transport.writev(slices + 2, 0);
    CHECK_EQUAL(IoStatus::kOk, full.status);
    CHECK_EQUAL(0u, full.bytes);
    // One thread plays both ends: whenever the transport would block, the
    // peer drains what has arrived.
    std::size_t sent = first.bytes;
    std::string received;
    int blocked = 0;
    while (sent < data.size()) {
        const IoSlice rest = {bytes + sent, data.size() - sent};
        const IoResult result = transport.writev(&rest, 1);
        if (result.status == IoStatus::kOk) {
            sent += result.bytes;
            continue;
        }
        CHECK_EQUAL(IoStatus::kWouldBlock, result.status);
        ++blocked;
        received += peer.read_exactly(sent - received.size());
    }
    received += peer.read_exactly(data.size() - received.size());
    CHECK_TRUE(blocked > 0);
    CHECK_EQUAL(data.size(), received.size());
    CHECK_TRUE(data == received);
}

TEST(PosixTcp, PeerEofIsClosed) {
    Listener listener(AF_INET);
    open_to(kLoopback, listener.port);
    CHECK_EQUAL(IoStatus::kOk, tether::test::establish_within(transport, kTimeoutMs).status);
    Peer peer(listener.accept_within(kTimeoutMs));
    CHECK_EQUAL(3, ::send(peer.fd, "bye", 3, MSG_NOSIGNAL));
    peer.close();
    IoResult last;
    STRCMP_EQUAL("bye", tether::test::read_up_to(transport, 100, kTimeoutMs, &last).c_str());
    CHECK_EQUAL(IoStatus::kClosed, last.status);
}

TEST(PosixTcp, WriteAfterPeerResetIsResetWithoutSigpipe) {
    Listener listener(AF_INET);
    open_to(kLoopback, listener.port);
    CHECK_EQUAL(IoStatus::kOk, tether::test::establish_within(transport, kTimeoutMs).status);
    Peer peer(listener.accept_within(kTimeoutMs));
    // SO_LINGER 0 makes close() send a RST.
    const linger abort_on_close = {1, 0};
    ::setsockopt(peer.fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
    peer.close();
    CHECK_TRUE(tether::test::wait_ready(transport, true, false, kTimeoutMs));
    const std::uint8_t byte = 1;
    const IoResult result = transport.write(&byte, 1);
    CHECK_EQUAL(IoStatus::kError, result.status);
    CHECK_EQUAL(TransportError::kReset, result.error);
    // The failure sticks: reads report it too.
    std::uint8_t buffer[4];
    CHECK_EQUAL(TransportError::kReset, transport.read(buffer, sizeof buffer).error);
}

TEST(PosixTcp, ClosedPortIsRefused) {
    tether::test::ClosedPort closed;
    TransportError error = TransportError::kNone;
    const Status opened = transport.open(kLoopback, closed.port(), nullptr, nullptr, &error);
    if (opened == Status::kOk) {
        const IoResult result = tether::test::establish_within(transport, kTimeoutMs);
        CHECK_EQUAL(IoStatus::kError, result.status);
        error = result.error;
        CHECK_FALSE(transport.tcp_connected());
    }
    CHECK_EQUAL(TransportError::kRefused, error);
}

TEST(PosixTcp, Ipv6LoopbackWorksWhenPresent) {
    Listener listener(AF_INET6);
    if (listener.fd < 0) {
        UT_PRINT("no IPv6 loopback on this host; nothing to test");
        return;
    }
    tether::net::IpAddress loopback6 = {tether::net::kIpv6, {}};
    loopback6.bytes[15] = 1;
    open_to(loopback6, listener.port);
    CHECK_EQUAL(IoStatus::kOk, tether::test::establish_within(transport, kTimeoutMs).status);
    Peer peer(listener.accept_within(kTimeoutMs));
    exchange_both_ways(peer);
}

TEST(PosixTcp, UnknownFamilyIsRejected) {
    tether::net::IpAddress bogus = {9, {}};
    TransportError error = TransportError::kNone;
    CHECK_EQUAL(Status::kInvalidArgument, transport.open(bogus, 80, nullptr, nullptr, &error));
    CHECK_EQUAL(TransportError::kOther, error);
    CHECK_EQUAL(-1, transport.fd());
}

TEST(PosixTcp, CallsBeforeOpenFailAndCloseIsIdempotent) {
    std::uint8_t byte = 0;
    CHECK_EQUAL(TransportError::kOther, transport.establish().error);
    CHECK_EQUAL(TransportError::kOther, transport.read(&byte, 1).error);
    CHECK_EQUAL(TransportError::kOther, transport.write(&byte, 1).error);
    const tether::PollInterest interest = transport.interest(true, true);
    CHECK_FALSE(interest.read || interest.write);
    transport.close();
    transport.close();
    CHECK_EQUAL(-1, transport.fd());
}

TEST(PosixTcp, NoDescriptorLeaksOverAThousandRefusedConnects) {
    tether::test::ClosedPort closed;
    Listener listener(AF_INET);
    const std::size_t before = open_descriptors();
    for (int cycle = 0; cycle < 1000; ++cycle) {
        TransportError error = TransportError::kNone;
        if (transport.open(kLoopback, closed.port(), nullptr, nullptr, &error) == Status::kOk) {
            CHECK_EQUAL(TransportError::kRefused,
                        tether::test::establish_within(transport, kTimeoutMs).error);
        }
        transport.close();
    }
    // Reopening without close() releases the previous socket too.
    open_to(kLoopback, listener.port);
    open_to(kLoopback, listener.port);
    transport.close();
    CHECK_EQUAL(before, open_descriptors());
}

// SPDX-License-Identifier: MIT
// The standard headers come first: CppUTest's leak detector redefines `new`.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

// After the standard headers (see above).
#include <CppUTest/TestHarness.h>

#include "support/alloc_counter.h"
#include "support/dns_builder.h"
#include "support/temp_dir.h"
#include "support/tether_strings.h"
#include "tether/port/posix_resolver.h"

using tether::ResolveStatus;
using tether::TimeMs;
using tether::net::IpAddress;
using tether::port::PosixResolver;
using tether::port::PosixResolverConfig;
using tether::test::DecodedQuery;
using tether::test::DnsMessageBuilder;

namespace {

constexpr std::uint16_t kTypeA = 1;
constexpr std::uint16_t kTypeAaaa = 28;
constexpr std::uint16_t kRcodeNameError = 3;
// Loopback traffic is queued before sendto() returns; this bound only keeps
// a broken test from hanging.
constexpr int kWaitMs = 2000;

IpAddress ip(const char* text) {
    IpAddress address{};
    CHECK_TRUE_TEXT(tether::net::parse_ip_address(text, std::strlen(text), &address), text);
    return address;
}

std::string text_of(const IpAddress& address) {
    char buffer[tether::net::kIpAddressTextCapacity];
    tether::net::format_ip_address(address, buffer, sizeof buffer);
    return buffer;
}

std::string result_of(const PosixResolver& resolver, std::size_t max = 8) {
    IpAddress found[8];
    const std::size_t count = resolver.addresses(found, max);
    std::string joined;
    for (std::size_t i = 0; i < count; ++i) {
        joined += (i == 0 ? "" : " ") + text_of(found[i]);
    }
    return joined;
}

struct Peer {
    sockaddr_storage address{};
    socklen_t size = 0;
};

struct Received {
    DecodedQuery query;
    Peer from;
};

// A UDP socket on loopback that plays nameserver (or spoofer).
class UdpEndpoint {
  public:
    UdpEndpoint(const char* address, std::uint16_t port) {
        const IpAddress parsed = ip(address);
        sockaddr_storage storage{};
        socklen_t size = 0;
        if (parsed.family == tether::net::kIpv4) {
            auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
            v4->sin_family = AF_INET;
            v4->sin_port = htons(port);
            std::memcpy(&v4->sin_addr, parsed.bytes, 4);
            size = sizeof *v4;
        } else {
            auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
            v6->sin6_family = AF_INET6;
            v6->sin6_port = htons(port);
            std::memcpy(&v6->sin6_addr, parsed.bytes, 16);
            size = sizeof *v6;
        }
        fd_ = ::socket(storage.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        CHECK_TRUE(fd_ >= 0);
        bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&storage), size) == 0;
        size = sizeof storage;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&storage), &size);
        port_ = ntohs(storage.ss_family == AF_INET
                          ? reinterpret_cast<sockaddr_in*>(&storage)->sin_port
                          : reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port);
    }
    ~UdpEndpoint() { ::close(fd_); }
    UdpEndpoint(const UdpEndpoint&) = delete;
    UdpEndpoint& operator=(const UdpEndpoint&) = delete;

    bool bound() const { return bound_; }
    std::uint16_t port() const { return port_; }
    int fd() const { return fd_; }

    /// Waits up to `timeout_ms` for one query; false when none came.
    bool receive(Received* out, int timeout_ms = kWaitMs) {
        pollfd waiter{fd_, POLLIN, 0};
        if (::poll(&waiter, 1, timeout_ms) != 1) {
            return false;
        }
        std::uint8_t buffer[1024];
        out->from.size = sizeof out->from.address;
        const ssize_t got =
            ::recvfrom(fd_, buffer, sizeof buffer, 0,
                       reinterpret_cast<sockaddr*>(&out->from.address), &out->from.size);
        CHECK_TRUE(got > 0);
        out->query = tether::test::decode_query(buffer, static_cast<std::size_t>(got));
        CHECK_TRUE(out->query.valid);
        ++received_;
        return true;
    }

    /// Receives exactly `count` queries.
    std::vector<Received> receive_all(std::size_t count) {
        std::vector<Received> all(count);
        for (Received& one : all) {
            CHECK_TRUE_TEXT(receive(&one), "a query did not arrive");
        }
        return all;
    }

    /// True when no query is waiting.
    bool quiet() {
        Received unused;
        return !receive(&unused, 0);
    }

    void send(const std::vector<std::uint8_t>& bytes, const Peer& to) {
        const ssize_t sent = ::sendto(fd_, bytes.data(), bytes.size(), 0,
                                      reinterpret_cast<const sockaddr*>(&to.address), to.size);
        LONGS_EQUAL(static_cast<long>(bytes.size()), static_cast<long>(sent));
    }

    std::size_t received() const { return received_; }

  private:
    int fd_ = -1;
    bool bound_ = false;
    std::uint16_t port_ = 0;
    std::size_t received_ = 0;
};

// An answer to `query` holding those of `addresses` that fit its type.
std::vector<std::uint8_t> answer(const DecodedQuery& query,
                                 const std::vector<std::string>& addresses) {
    DnsMessageBuilder records;
    std::uint16_t count = 0;
    for (const std::string& text : addresses) {
        const IpAddress address = ip(text.c_str());
        if (query.type == kTypeA && address.family == tether::net::kIpv4) {
            records.a(query.name, 300, address.bytes[0], address.bytes[1], address.bytes[2],
                      address.bytes[3]);
            ++count;
        } else if (query.type == kTypeAaaa && address.family == tether::net::kIpv6) {
            std::uint8_t bytes[16];
            std::memcpy(bytes, address.bytes, 16);
            records.aaaa(query.name, 300, bytes);
            ++count;
        }
    }
    DnsMessageBuilder message;
    message.header(query.id, tether::test::kAnswerFlags, 1, count).question(query.name, query.type);
    std::vector<std::uint8_t> bytes = message.bytes();
    bytes.insert(bytes.end(), records.bytes().begin(), records.bytes().end());
    return bytes;
}

std::vector<std::uint8_t> name_error(const DecodedQuery& query) {
    DnsMessageBuilder message;
    message
        .header(query.id, static_cast<std::uint16_t>(tether::test::kAnswerFlags | kRcodeNameError),
                1, 0)
        .question(query.name, query.type);
    return message.bytes();
}

// Receives the AAAA and A queries of one try and answers both.
void serve(UdpEndpoint& server, const std::vector<std::string>& addresses) {
    for (const Received& one : server.receive_all(2)) {
        server.send(answer(one.query, addresses), one.from);
    }
}

// Waits until one of the resolver's sockets is readable, then polls it.
ResolveStatus poll_when_readable(PosixResolver& resolver, TimeMs now) {
    int fds[tether::NameResolver::kMaxFds];
    const std::size_t count = resolver.fds(fds, tether::NameResolver::kMaxFds);
    pollfd waiters[tether::NameResolver::kMaxFds];
    for (std::size_t i = 0; i < count; ++i) {
        waiters[i] = pollfd{fds[i], POLLIN, 0};
    }
    CHECK_TRUE_TEXT(::poll(waiters, count, kWaitMs) > 0, "no datagram for the resolver");
    return resolver.poll(now, 0x5eed5eedu);
}

std::size_t open_fd_count() {
    DIR* directory = ::opendir("/proc/self/fd");
    CHECK_TRUE(directory != nullptr);
    std::size_t count = 0;
    while (const dirent* entry = ::readdir(directory)) {
        count += entry->d_name[0] != '.' ? 1u : 0u;
    }
    ::closedir(directory);
    return count;
}

// The files and the fake nameserver on 127.0.0.1 that most tests use.
struct Setup {
    explicit Setup(const std::string& resolv_conf =
                       "nameserver 127.0.0.1\n"
                       "options timeout:1 attempts:1\n",
                   const std::string& hosts = "127.0.0.1 localhost\n")
        : server("127.0.0.1", 0),
          resolv_conf_path(dir.write_file("resolv.conf", resolv_conf)),
          hosts_path(dir.write_file("hosts", hosts)) {
        CHECK_TRUE(server.bound());
    }

    PosixResolverConfig config() const {
        PosixResolverConfig config;
        config.resolv_conf_path = resolv_conf_path.c_str();
        config.hosts_path = hosts_path.c_str();
        config.dns_port = server.port();
        return config;
    }

    tether::test::TempDir dir;
    UdpEndpoint server;
    std::string resolv_conf_path;
    std::string hosts_path;
};

}  // namespace

TEST_GROUP(PosixResolver){};

TEST(PosixResolver, NothingStartedIsNotPending) {
    Setup setup;
    PosixResolver resolver(setup.config());
    int fds[2];
    CHECK_EQUAL(ResolveStatus::kFailed, resolver.poll(0, 1));
    UNSIGNED_LONGS_EQUAL(0, resolver.fds(fds, 2));
    STRCMP_EQUAL("", result_of(resolver).c_str());
}

TEST(PosixResolver, LiteralsResolveAtOnceWithoutTraffic) {
    Setup setup;
    PosixResolver resolver(setup.config());
    int fds[2];
    CHECK_EQUAL(ResolveStatus::kDone, resolver.start("192.0.2.1", 0, 1));
    STRCMP_EQUAL("192.0.2.1", result_of(resolver).c_str());
    UNSIGNED_LONGS_EQUAL(0, resolver.fds(fds, 2));
    CHECK_EQUAL(ResolveStatus::kDone, resolver.poll(100000, 1));
    CHECK_EQUAL(ResolveStatus::kDone, resolver.start("2001:DB8::1", 0, 1));
    STRCMP_EQUAL("2001:db8::1", result_of(resolver).c_str());
    UNSIGNED_LONGS_EQUAL(0, resolver.fds(fds, 2));
    CHECK_TRUE(setup.server.quiet());
}

TEST(PosixResolver, HostsFileEntriesNeedNoDns) {
    Setup setup("nameserver 127.0.0.1\n",
                "# comment\n127.0.0.1 localhost\n::1 localhost ip6-localhost\n"
                "192.0.2.9 Gateway.lan gw\n");
    PosixResolver resolver(setup.config());
    int fds[2];
    CHECK_EQUAL(ResolveStatus::kDone, resolver.start("localhost", 0, 1));
    STRCMP_EQUAL("127.0.0.1 ::1", result_of(resolver).c_str());
    UNSIGNED_LONGS_EQUAL(0, resolver.fds(fds, 2));
    CHECK_EQUAL(ResolveStatus::kDone, resolver.start("GATEWAY.LAN.", 0, 1));
    STRCMP_EQUAL("192.0.2.9", result_of(resolver).c_str());
    CHECK_TRUE(setup.server.quiet());
}

TEST(PosixResolver, ReadsTheHostsFileAgainForEveryLookup) {
    Setup setup("nameserver 127.0.0.1\n", "192.0.2.9 gw\n");
    PosixResolver resolver(setup.config());
    CHECK_EQUAL(ResolveStatus::kDone, resolver.start("gw", 0, 1));
    STRCMP_EQUAL("192.0.2.9", result_of(resolver).c_str());
    setup.dir.write_file("hosts", "192.0.2.10 gw\n");
    CHECK_EQUAL(ResolveStatus::kDone, resolver.start("gw", 0, 1));
    STRCMP_EQUAL("192.0.2.10", result_of(resolver).c_str());
}

TEST(PosixResolver, ReadsAtMostSixteenKibibytesOfAFile) {
    // An entry that starts past the bound is not seen; one inside it is.
    std::string hosts = "192.0.2.1 early\n";
    hosts += std::string(PosixResolver::kMaxFileSize - hosts.size(), '#') + "\n";
    hosts += "192.0.2.2 late\n";
    Setup setup("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n", hosts);
    PosixResolver resolver(setup.config());
    CHECK_EQUAL(ResolveStatus::kDone, resolver.start("early", 0, 1));
    CHECK_EQUAL(ResolveStatus::kPending, resolver.start("late", 0, 1));
    setup.server.receive_all(2);
}

TEST(PosixResolver, ResolvesOverDnsIpv6FirstThenAlternating) {
    Setup setup;
    PosixResolver resolver(setup.config());
    CHECK_EQUAL(ResolveStatus::kPending, resolver.start("device.example", 1000, 0x11112222u));
    int fds[2];
    UNSIGNED_LONGS_EQUAL(1, resolver.fds(fds, 2));
    UNSIGNED_LONGS_EQUAL(2000, resolver.next_deadline());
    std::vector<Received> queries = setup.server.receive_all(2);
    STRCMP_EQUAL("device.example", queries[0].query.name.c_str());
    UNSIGNED_LONGS_EQUAL(0x1111, queries[0].query.id);  // AAAA: the high half
    UNSIGNED_LONGS_EQUAL(kTypeAaaa, queries[0].query.type);
    UNSIGNED_LONGS_EQUAL(0x2222, queries[1].query.id);
    UNSIGNED_LONGS_EQUAL(kTypeA, queries[1].query.type);
    const std::vector<std::string> zone = {"192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2"};
    setup.server.send(answer(queries[1].query, zone), queries[1].from);  // A first
    CHECK_EQUAL(ResolveStatus::kPending, poll_when_readable(resolver, 1001));
    setup.server.send(answer(queries[0].query, zone), queries[0].from);
    CHECK_EQUAL(ResolveStatus::kDone, poll_when_readable(resolver, 1002));
    STRCMP_EQUAL("2001:db8::1 192.0.2.1 2001:db8::2 192.0.2.2", result_of(resolver).c_str());
    STRCMP_EQUAL("2001:db8::1 192.0.2.1 2001:db8::2", result_of(resolver, 3).c_str());
    UNSIGNED_LONGS_EQUAL(0, resolver.fds(fds, 2));
    CHECK_EQUAL(ResolveStatus::kDone, resolver.poll(1003, 1));
}

TEST(PosixResolver, NxdomainIsANameError) {
    Setup setup;
    PosixResolver resolver(setup.config());
    CHECK_EQUAL(ResolveStatus::kPending, resolver.start("missing.example", 0, 7));
    const std::vector<Received> queries = setup.server.receive_all(2);
    setup.server.send(name_error(queries[0].query), queries[0].from);
    CHECK_EQUAL(ResolveStatus::kNameError, poll_when_readable(resolver, 1));
    int fds[2];
    UNSIGNED_LONGS_EQUAL(0, resolver.fds(fds, 2));
    STRCMP_EQUAL("", result_of(resolver).c_str());
}

TEST(PosixResolver, NoAnswerFailsAfterTimeoutTimesAttempts) {
    Setup setup("nameserver 127.0.0.1\noptions timeout:1 attempts:2\n");
    PosixResolver resolver(setup.config());
    CHECK_EQUAL(ResolveStatus::kPending, resolver.start("silent.example", 5000, 7));
    const std::vector<Received> first = setup.server.receive_all(2);
    UNSIGNED_LONGS_EQUAL(6000, resolver.next_deadline());
    CHECK_EQUAL(ResolveStatus::kPending, resolver.poll(5999, 7));
    CHECK_TRUE(setup.server.quiet());
    CHECK_EQUAL(ResolveStatus::kPending, resolver.poll(6000, 7));
    const std::vector<Received> second = setup.server.receive_all(2);
    UNSIGNED_LONGS_EQUAL(first[0].query.id, second[0].query.id);  // a retransmission
    UNSIGNED_LONGS_EQUAL(7000, resolver.next_deadline());
    CHECK_EQUAL(ResolveStatus::kFailed, resolver.poll(7000, 7));
    int fds[2];
    UNSIGNED_LONGS_EQUAL(0, resolver.fds(fds, 2));
    CHECK_TRUE(setup.server.quiet());
}

TEST(PosixResolver, IgnoresAnswersFromAnyOtherSource) {
    Setup setup;
    UdpEndpoint other_port("127.0.0.1", 0);
    UdpEndpoint other_address("127.0.0.2", setup.server.port());
    CHECK_TRUE(other_address.bound());
    PosixResolver resolver(setup.config());
    CHECK_EQUAL(ResolveStatus::kPending, resolver.start("device.example", 0, 0x01020304u));
    const std::vector<Received> queries = setup.server.receive_all(2);
    // Right ids and question: only the source gives them away.
    for (const Received& one : queries) {
        other_port.send(answer(one.query, {"198.51.100.66", "2001:db8::66"}), one.from);
        other_address.send(answer(one.query, {"198.51.100.67", "2001:db8::67"}), one.from);
    }
    CHECK_EQUAL(ResolveStatus::kPending, poll_when_readable(resolver, 1));
    for (const Received& one : queries) {
        setup.server.send(answer(one.query, {"192.0.2.1"}), one.from);
    }
    CHECK_EQUAL(ResolveStatus::kDone, poll_when_readable(resolver, 2));
    STRCMP_EQUAL("192.0.2.1", result_of(resolver).c_str());
}

TEST(PosixResolver, OnePollReadsABoundedNumberOfDatagrams) {
    Setup setup;
    UdpEndpoint flooder("127.0.0.1", 0);
    PosixResolver resolver(setup.config());
    CHECK_EQUAL(ResolveStatus::kPending, resolver.start("device.example", 0, 1));
    const std::vector<Received> queries = setup.server.receive_all(2);
    const std::vector<std::uint8_t> junk(12, 0xAA);
    for (std::size_t i = 0; i < PosixResolver::kMaxDatagramsPerPoll + 8; ++i) {
        flooder.send(junk, queries[0].from);
    }
    for (const Received& one : queries) {
        setup.server.send(answer(one.query, {"192.0.2.1"}), one.from);
    }
    CHECK_EQUAL(ResolveStatus::kPending, poll_when_readable(resolver, 1));
    CHECK_EQUAL(ResolveStatus::kDone, poll_when_readable(resolver, 2));
    STRCMP_EQUAL("192.0.2.1", result_of(resolver).c_str());
}

TEST(PosixResolver, PicksUpAChangedResolvConfOnTheNextLookup) {
    Setup setup;
    UdpEndpoint second("127.0.0.2", setup.server.port());
    CHECK_TRUE(second.bound());
    PosixResolver resolver(setup.config());
    CHECK_EQUAL(ResolveStatus::kPending, resolver.start("device.example", 0, 1));
    serve(setup.server, {"192.0.2.1"});
    CHECK_EQUAL(ResolveStatus::kDone, poll_when_readable(resolver, 1));

    setup.dir.write_file("resolv.conf", "nameserver 127.0.0.2\noptions timeout:3\n");
    CHECK_EQUAL(ResolveStatus::kPending, resolver.start("device.example", 100, 2));
    UNSIGNED_LONGS_EQUAL(3100, resolver.next_deadline());
    serve(second, {"192.0.2.2"});
    CHECK_EQUAL(ResolveStatus::kDone, poll_when_readable(resolver, 101));
    STRCMP_EQUAL("192.0.2.2", result_of(resolver).c_str());
    CHECK_TRUE(setup.server.quiet());
}

TEST(PosixResolver, MissingResolvConfMeansTheDefaults) {
    Setup setup;
    PosixResolverConfig config = setup.config();
    const std::string missing = setup.dir.path() + "/no-such-resolv.conf";
    config.resolv_conf_path = missing.c_str();
    PosixResolver resolver(config);
    CHECK_EQUAL(ResolveStatus::kPending, resolver.start("device.example", 0, 1));
    UNSIGNED_LONGS_EQUAL(5000, resolver.next_deadline());  // timeout 5
    UNSIGNED_LONGS_EQUAL(2, resolver.conf().attempts);
    serve(setup.server, {"192.0.2.1"});  // 127.0.0.1 on the configured port
    CHECK_EQUAL(ResolveStatus::kDone, poll_when_readable(resolver, 1));
    STRCMP_EQUAL("192.0.2.1", result_of(resolver).c_str());
}

TEST(PosixResolver, InvalidNamesFailAtOnce) {
    Setup setup;
    PosixResolver resolver(setup.config());
    CHECK_EQUAL(ResolveStatus::kFailed, resolver.start("bad..name", 0, 1));
    CHECK_EQUAL(ResolveStatus::kFailed, resolver.poll(1, 1));
    CHECK_TRUE(setup.server.quiet());
}

TEST(PosixResolver, OpensASocketPerFamilyOnlyWhenATryNeedsIt) {
    // Both fake servers on one port: the DNS port is shared by all servers.
    UdpEndpoint v6_server("::1", 0);
    CHECK_TRUE(v6_server.bound());
    Setup setup;
    UdpEndpoint v4_server("127.0.0.1", v6_server.port());
    CHECK_TRUE(v4_server.bound());
    setup.dir.write_file("resolv.conf",
                         "nameserver ::1\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
    PosixResolverConfig config = setup.config();
    config.dns_port = v6_server.port();
    PosixResolver resolver(config);
    CHECK_EQUAL(ResolveStatus::kPending, resolver.start("device.example", 0, 1));
    int fds[2];
    UNSIGNED_LONGS_EQUAL(1, resolver.fds(fds, 2));
    const std::vector<Received> late = v6_server.receive_all(2);
    CHECK_EQUAL(ResolveStatus::kPending, resolver.poll(1000, 1));  // the next try: IPv4
    UNSIGNED_LONGS_EQUAL(2, resolver.fds(fds, 2));
    UNSIGNED_LONGS_EQUAL(1, resolver.fds(fds, 1));
    v4_server.receive_all(2);
    // The first server answers late, over IPv6: still accepted.
    for (const Received& one : late) {
        v6_server.send(answer(one.query, {"2001:db8::1"}), one.from);
    }
    CHECK_EQUAL(ResolveStatus::kDone, poll_when_readable(resolver, 1001));
    STRCMP_EQUAL("2001:db8::1", result_of(resolver).c_str());
    UNSIGNED_LONGS_EQUAL(0, resolver.fds(fds, 2));
}

TEST(PosixResolver, ASendThatFailsOnlyLosesThatTry) {
    // Sending to the broadcast address fails at once (EACCES without
    // SO_BROADCAST), as ENETUNREACH does while the network is down.
    Setup setup(
        "nameserver 255.255.255.255\nnameserver 127.0.0.1\n"
        "options timeout:1 attempts:1\n");
    PosixResolver resolver(setup.config());
    CHECK_EQUAL(ResolveStatus::kPending, resolver.start("device.example", 0, 1));
    CHECK_TRUE(setup.server.quiet());
    CHECK_EQUAL(ResolveStatus::kPending, resolver.poll(1000, 1));
    serve(setup.server, {"192.0.2.1"});
    CHECK_EQUAL(ResolveStatus::kDone, poll_when_readable(resolver, 1001));
    STRCMP_EQUAL("192.0.2.1", result_of(resolver).c_str());
}

TEST(PosixResolver, WithoutDescriptorsTheLookupTimesOut) {
    Setup setup;
    PosixResolver resolver(setup.config());
    rlimit saved{};
    ::getrlimit(RLIMIT_NOFILE, &saved);
    rlimit none = saved;
    none.rlim_cur = 0;
    ::setrlimit(RLIMIT_NOFILE, &none);
    // Neither file can be opened (the defaults apply) nor a socket created.
    const ResolveStatus started = resolver.start("device.example", 0, 1);
    int fds[2];
    const std::size_t fd_count = resolver.fds(fds, 2);
    const TimeMs deadline = resolver.next_deadline();
    const ResolveStatus retried = resolver.poll(5000, 1);
    const ResolveStatus ended = resolver.poll(10000, 1);
    ::setrlimit(RLIMIT_NOFILE, &saved);
    CHECK_EQUAL(ResolveStatus::kPending, started);
    UNSIGNED_LONGS_EQUAL(0, fd_count);
    UNSIGNED_LONGS_EQUAL(5000, deadline);
    CHECK_EQUAL(ResolveStatus::kPending, retried);
    CHECK_EQUAL(ResolveStatus::kFailed, ended);
    CHECK_TRUE(setup.server.quiet());
}

TEST(PosixResolver, CancelClosesTheSocketsAndIgnoresLateAnswers) {
    Setup setup;
    PosixResolver resolver(setup.config());
    const std::size_t before = open_fd_count();
    CHECK_EQUAL(ResolveStatus::kPending, resolver.start("device.example", 0, 1));
    UNSIGNED_LONGS_EQUAL(before + 1, open_fd_count());
    const std::vector<Received> queries = setup.server.receive_all(2);
    resolver.cancel();
    UNSIGNED_LONGS_EQUAL(before, open_fd_count());
    int fds[2];
    UNSIGNED_LONGS_EQUAL(0, resolver.fds(fds, 2));
    CHECK_EQUAL(ResolveStatus::kFailed, resolver.poll(1, 1));
    STRCMP_EQUAL("", result_of(resolver).c_str());
}

TEST(PosixResolver, StartAbandonsTheLookupInProgress) {
    Setup setup;
    PosixResolver resolver(setup.config());
    const std::size_t before = open_fd_count();
    CHECK_EQUAL(ResolveStatus::kPending, resolver.start("first.example", 0, 0x00010002u));
    const std::vector<Received> old = setup.server.receive_all(2);
    CHECK_EQUAL(ResolveStatus::kPending, resolver.start("second.example", 0, 0x00030004u));
    UNSIGNED_LONGS_EQUAL(before + 1, open_fd_count());
    const std::vector<Received> current = setup.server.receive_all(2);
    STRCMP_EQUAL("second.example", current[0].query.name.c_str());
    for (const Received& one : current) {
        setup.server.send(answer(one.query, {"192.0.2.2"}), one.from);
    }
    CHECK_EQUAL(ResolveStatus::kDone, poll_when_readable(resolver, 1));
    STRCMP_EQUAL("192.0.2.2", result_of(resolver).c_str());
    UNSIGNED_LONGS_EQUAL(before, open_fd_count());
}

TEST(PosixResolver, ALookupAllocatesNothing) {
    Setup setup;
    PosixResolver resolver(setup.config());
    // The answers are built beforehand: a fixed random value gives fixed ids.
    DecodedQuery aaaa;
    aaaa.id = 0x0102;
    aaaa.name = "device.example";
    aaaa.type = kTypeAaaa;
    DecodedQuery a = aaaa;
    a.id = 0x0304;
    a.type = kTypeA;
    const std::vector<std::uint8_t> answers[] = {answer(aaaa, {"2001:db8::1"}),
                                                 answer(a, {"192.0.2.1"})};
    ResolveStatus status = ResolveStatus::kPending;
    tether::test::AllocationCounter counter;
    {
        status = resolver.start("device.example", 0, 0x01020304u);
        for (const std::vector<std::uint8_t>& bytes : answers) {
            std::uint8_t query[512];
            sockaddr_storage from{};
            socklen_t from_size = sizeof from;
            ::recvfrom(setup.server.fd(), query, sizeof query, MSG_DONTWAIT,
                       reinterpret_cast<sockaddr*>(&from), &from_size);
            ::sendto(setup.server.fd(), bytes.data(), bytes.size(), 0,
                     reinterpret_cast<sockaddr*>(&from), from_size);
        }
        if (status == ResolveStatus::kPending) {
            status = resolver.poll(1, 1);
        }
    }
    UNSIGNED_LONGS_EQUAL(0, counter.count());
    CHECK_EQUAL(ResolveStatus::kDone, status);
    STRCMP_EQUAL("2001:db8::1 192.0.2.1", result_of(resolver).c_str());
}

TEST(PosixResolver, AThousandLookupsLeakNoDescriptors) {
    Setup setup;
    const std::size_t before = open_fd_count();
    {
        PosixResolver resolver(setup.config());
        for (std::uint32_t lookup = 0; lookup < 1000; ++lookup) {
            const TimeMs now = lookup * 10000u;
            CHECK_EQUAL(ResolveStatus::kPending, resolver.start("device.example", now, lookup));
            switch (lookup % 4) {
                case 0:  // answered
                    serve(setup.server, {"192.0.2.1"});
                    CHECK_EQUAL(ResolveStatus::kDone, poll_when_readable(resolver, now + 1));
                    break;
                case 1:  // timed out
                    setup.server.receive_all(2);
                    CHECK_EQUAL(ResolveStatus::kFailed, resolver.poll(now + 1000, lookup));
                    break;
                case 2:  // cancelled
                    setup.server.receive_all(2);
                    resolver.cancel();
                    break;
                default:  // left pending for the next start() to abandon
                    setup.server.receive_all(2);
                    break;
            }
        }
        resolver.cancel();  // the last lookup was left pending
        UNSIGNED_LONGS_EQUAL(before, open_fd_count());
    }
    UNSIGNED_LONGS_EQUAL(before, open_fd_count());
}

// SPDX-License-Identifier: MIT
// The standard headers come first: CppUTest's leak detector redefines `new`.
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <CppUTest/TestHarness.h>

#include "support/alloc_counter.h"
#include "support/dns_builder.h"
#include "tether/net/dns_resolver.h"

using tether::TimeMs;
using tether::net::DnsResolver;
using tether::net::DnsResolverState;
using tether::net::DnsStatus;
using tether::net::IpAddress;
using tether::net::ResolvConf;
using tether::test::DnsMessageBuilder;

namespace {

constexpr std::uint16_t kTypeA = 1;
constexpr std::uint16_t kTypeAaaa = 28;
constexpr std::uint16_t kRcodeServerFailure = 2;
constexpr std::uint16_t kRcodeNameError = 3;
constexpr std::uint16_t kRcodeRefused = 5;

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

std::string lowercase(std::string text) {
    for (char& c : text) {
        c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    return text;
}

struct ZoneEntry {
    std::vector<std::string> v4;
    std::vector<std::string> v6;
    std::string cname;  // answered first, followed by the target's addresses
    std::uint32_t ttl = 300;
};

// How a fake server treats every query it gets.
enum class Behaviour { kAnswer, kSilent, kServerFailure, kRefused, kTruncatedEmpty, kFormErr };

struct SentQuery {
    std::size_t server;
    std::string name;
    std::uint16_t type;
    std::uint16_t id;
    TimeMs at;
};

// Answers the resolver's own query bytes from a small zone; names not in
// the zone get NXDOMAIN.
class FakeNameservers {
  public:
    std::map<std::string, ZoneEntry> zone;
    Behaviour behaviour[ResolvConf::kMaxNameservers] = {Behaviour::kAnswer, Behaviour::kAnswer,
                                                        Behaviour::kAnswer};
    std::vector<SentQuery> log;

    std::vector<std::uint8_t> respond(std::size_t server, const std::uint8_t* data,
                                      std::size_t size, TimeMs now) {
        const tether::test::DecodedQuery query = tether::test::decode_query(data, size);
        CHECK_TRUE(query.valid);
        log.push_back({server, query.name, query.type, query.id, now});
        switch (behaviour[server]) {
            case Behaviour::kSilent:
                return {};
            case Behaviour::kServerFailure:
                return error(query, kRcodeServerFailure, 0);
            case Behaviour::kRefused:
                return error(query, kRcodeRefused, 0);
            case Behaviour::kFormErr:
                return error(query, 1, 0);
            case Behaviour::kTruncatedEmpty:
                return error(query, 0, tether::test::kTruncatedFlag);
            case Behaviour::kAnswer:
                break;
        }
        const auto found = zone.find(lowercase(query.name));
        if (found == zone.end()) {
            return error(query, kRcodeNameError, 0);
        }
        DnsMessageBuilder records;
        std::uint16_t count = 0;
        const ZoneEntry* entry = &found->second;
        std::string owner = query.name;
        if (!entry->cname.empty()) {
            records.cname(owner, entry->ttl, entry->cname);
            ++count;
            owner = entry->cname;
            const auto target = zone.find(owner);
            entry = target == zone.end() ? nullptr : &target->second;
        }
        if (entry != nullptr) {
            for (const std::string& text : query.type == kTypeA ? entry->v4 : entry->v6) {
                const IpAddress address = ip(text.c_str());
                if (query.type == kTypeA) {
                    records.a(owner, entry->ttl, address.bytes[0], address.bytes[1],
                              address.bytes[2], address.bytes[3]);
                } else {
                    std::uint8_t bytes[16];
                    std::memcpy(bytes, address.bytes, 16);
                    records.aaaa(owner, entry->ttl, bytes);
                }
                ++count;
            }
        }
        DnsMessageBuilder message;
        message.header(query.id, tether::test::kAnswerFlags, 1, count)
            .question(query.name, query.type);
        std::vector<std::uint8_t> bytes = message.bytes();
        bytes.insert(bytes.end(), records.bytes().begin(), records.bytes().end());
        return bytes;
    }

    static std::vector<std::uint8_t> error(const tether::test::DecodedQuery& query,
                                           std::uint16_t rcode, std::uint16_t extra_flags) {
        DnsMessageBuilder message;
        message
            .header(query.id,
                    static_cast<std::uint16_t>(tether::test::kAnswerFlags | extra_flags | rcode), 1,
                    0)
            .question(query.name, query.type);
        return message.bytes();
    }
};

struct Outgoing {
    std::size_t server;
    std::vector<std::uint8_t> bytes;
};

class Harness {
  public:
    explicit Harness(const ResolvConf& conf) : resolver(conf) {}

    std::vector<Outgoing> drain() {
        std::vector<Outgoing> sent;
        tether::net::DnsDatagram datagram{};
        while (resolver.next_datagram(&datagram)) {
            CHECK(datagram.server < resolver.conf().nameserver_count);
            sent.push_back({datagram.server, std::vector<std::uint8_t>(
                                                 datagram.data, datagram.data + datagram.size)});
        }
        return sent;
    }

    // Sends what the resolver wants sent, delivers the fake servers' answers
    // at once, and repeats while the answers make it send more.
    void exchange() {
        for (int round = 0; round < 100; ++round) {
            const std::vector<Outgoing> sent = drain();
            if (sent.empty()) {
                return;
            }
            for (const Outgoing& out : sent) {
                const std::vector<std::uint8_t> reply =
                    servers.respond(out.server, out.bytes.data(), out.bytes.size(), now);
                if (!reply.empty()) {
                    resolver.on_datagram(out.server, reply.data(), reply.size(), now,
                                         next_random());
                }
            }
        }
        FAIL("the exchange does not settle");
    }

    // Runs the lookup to its end, jumping the clock to each deadline.
    void run() {
        for (int round = 0; round < 1000; ++round) {
            exchange();
            if (resolver.state() != DnsResolverState::kResolving) {
                return;
            }
            CHECK(resolver.next_deadline() != now);
            now = resolver.next_deadline();
            resolver.poll(now);
        }
        FAIL("the lookup does not end");
    }

    DnsStatus start(const char* name) { return resolver.start(name, now, next_random()); }

    std::uint32_t next_random() {
        random_ = random_ * 1664525u + 1013904223u;
        return random_;
    }

    std::string result() const {
        std::string joined;
        for (std::size_t i = 0; i < resolver.address_count(); ++i) {
            joined += (i == 0 ? "" : " ") + text_of(resolver.addresses()[i]);
        }
        return joined;
    }

    // "server:name/type" of every query the servers saw, in order.
    std::string queries() const {
        std::string joined;
        for (const SentQuery& query : servers.log) {
            joined += (joined.empty() ? "" : " ") + std::to_string(query.server) + ":" +
                      query.name + (query.type == kTypeA ? "/A" : "/AAAA");
        }
        return joined;
    }

    DnsResolver resolver;
    FakeNameservers servers;
    TimeMs now = 1000;

  private:
    std::uint32_t random_ = 12345;
};

ResolvConf conf_with_servers(std::size_t count) {
    ResolvConf conf;
    const char* const addresses[] = {"10.0.0.1", "10.0.0.2", "2001:db8::53"};
    for (std::size_t i = 0; i < count; ++i) {
        conf.nameservers[i] = ip(addresses[i]);
    }
    conf.nameserver_count = count;
    return conf;
}

void check_status(DnsStatus expected, DnsStatus actual) {
    STRCMP_EQUAL(tether::net::to_string(expected), tether::net::to_string(actual));
}

void check_state(DnsResolverState expected, DnsResolverState actual) {
    STRCMP_EQUAL(tether::net::to_string(expected), tether::net::to_string(actual));
}

std::vector<std::uint8_t> answer_for(const Outgoing& query, const FakeNameservers& zone_source) {
    FakeNameservers servers = zone_source;
    return servers.respond(query.server, query.bytes.data(), query.bytes.size(), 0);
}

}  // namespace

TEST_GROUP(DnsResolver){};

TEST(DnsResolver, StateNamesAreDistinct) {
    STRCMP_EQUAL("idle", tether::net::to_string(DnsResolverState::kIdle));
    STRCMP_EQUAL("resolving", tether::net::to_string(DnsResolverState::kResolving));
    STRCMP_EQUAL("done", tether::net::to_string(DnsResolverState::kDone));
    STRCMP_EQUAL("failed", tether::net::to_string(DnsResolverState::kFailed));
    STRCMP_EQUAL("unknown", tether::net::to_string(static_cast<DnsResolverState>(9)));
}

TEST(DnsResolver, NumericLiteralsFinishWithoutAnyQuery) {
    Harness h(conf_with_servers(1));
    check_state(DnsResolverState::kIdle, h.resolver.state());
    check_status(DnsStatus::kOk, h.start("192.0.2.7"));
    check_state(DnsResolverState::kDone, h.resolver.state());
    STRCMP_EQUAL("192.0.2.7", h.result().c_str());
    UNSIGNED_LONGS_EQUAL(DnsResolver::kLiteralTtl, h.resolver.ttl_s());
    STRCMP_EQUAL("192.0.2.7", h.resolver.query_name());
    CHECK_TRUE(h.drain().empty());

    check_status(DnsStatus::kOk, h.start("2001:DB8::7"));
    check_state(DnsResolverState::kDone, h.resolver.state());
    STRCMP_EQUAL("2001:db8::7", h.result().c_str());
    CHECK_TRUE(h.drain().empty());
}

TEST(DnsResolver, RejectsInvalidNames) {
    Harness h(conf_with_servers(1));
    const std::string too_long(300, 'a');
    for (const char* name : {"", "bad name", "a..b", "fe80::1%eth0", "[::1]", too_long.c_str()}) {
        check_status(DnsStatus::kInvalidName, h.start(name));
        check_state(DnsResolverState::kFailed, h.resolver.state());
        check_status(DnsStatus::kInvalidName, h.resolver.status());
        CHECK_TRUE(h.drain().empty());
    }
}

TEST(DnsResolver, SendsAaaaAndAQueriesWithIdsFromTheRandomValue) {
    Harness h(conf_with_servers(2));
    check_status(DnsStatus::kOk, h.resolver.start("example.com", 0, 0xAAAA5555u));
    check_state(DnsResolverState::kResolving, h.resolver.state());
    const std::vector<Outgoing> sent = h.drain();
    LONGS_EQUAL(2, sent.size());
    const auto aaaa = tether::test::decode_query(sent[0].bytes.data(), sent[0].bytes.size());
    const auto a = tether::test::decode_query(sent[1].bytes.data(), sent[1].bytes.size());
    UNSIGNED_LONGS_EQUAL(0, sent[0].server);
    UNSIGNED_LONGS_EQUAL(0, sent[1].server);
    UNSIGNED_LONGS_EQUAL(kTypeAaaa, aaaa.type);
    UNSIGNED_LONGS_EQUAL(0xAAAA, aaaa.id);
    UNSIGNED_LONGS_EQUAL(kTypeA, a.type);
    UNSIGNED_LONGS_EQUAL(0x5555, a.id);
    STRCMP_EQUAL("example.com", a.name.c_str());
    UNSIGNED_LONGS_EQUAL(5000, h.resolver.next_deadline());

    // Equal halves would make the answers indistinguishable: AAAA's id differs.
    check_status(DnsStatus::kOk, h.resolver.start("example.com", 0, 0x12341234u));
    const std::vector<Outgoing> again = h.drain();
    LONGS_EQUAL(2, again.size());
    UNSIGNED_LONGS_EQUAL(
        0x1235, tether::test::decode_query(again[0].bytes.data(), again[0].bytes.size()).id);
    UNSIGNED_LONGS_EQUAL(
        0x1234, tether::test::decode_query(again[1].bytes.data(), again[1].bytes.size()).id);
}

TEST(DnsResolver, ResolvesAndInterleavesIpv6First) {
    Harness h(conf_with_servers(1));
    ZoneEntry entry;
    entry.v4 = {"192.0.2.1", "192.0.2.2"};
    entry.v6 = {"2001:db8::1", "2001:db8::2", "2001:db8::3"};
    entry.ttl = 120;
    h.servers.zone["telemetry.example.com"] = entry;
    check_status(DnsStatus::kOk, h.start("telemetry.example.com"));
    h.run();
    check_state(DnsResolverState::kDone, h.resolver.state());
    check_status(DnsStatus::kOk, h.resolver.status());
    STRCMP_EQUAL("2001:db8::1 192.0.2.1 2001:db8::2 192.0.2.2 2001:db8::3", h.result().c_str());
    UNSIGNED_LONGS_EQUAL(120, h.resolver.ttl_s());
    STRCMP_EQUAL("telemetry.example.com", h.resolver.query_name());
    STRCMP_EQUAL("0:telemetry.example.com/AAAA 0:telemetry.example.com/A", h.queries().c_str());
}

TEST(DnsResolver, KeepsAtMostEightAddressesAndTheSmallestTtl) {
    Harness h(conf_with_servers(1));
    ZoneEntry entry;
    for (int i = 1; i <= 6; ++i) {
        entry.v4.push_back("10.0.0." + std::to_string(i));
        entry.v6.push_back("fd00::" + std::to_string(i));
    }
    h.servers.zone["many.example"] = entry;
    ZoneEntry alias;
    alias.cname = "many.example";
    alias.ttl = 30;
    h.servers.zone["alias.example"] = alias;
    check_status(DnsStatus::kOk, h.start("alias.example"));
    h.run();
    STRCMP_EQUAL("fd00::1 10.0.0.1 fd00::2 10.0.0.2 fd00::3 10.0.0.3 fd00::4 10.0.0.4",
                 h.result().c_str());
    UNSIGNED_LONGS_EQUAL(30, h.resolver.ttl_s());
}

TEST(DnsResolver, OneFamilyAloneIsAnAnswer) {
    Harness h(conf_with_servers(1));
    ZoneEntry entry;
    entry.v4 = {"192.0.2.1", "192.0.2.2"};
    h.servers.zone["v4only.example"] = entry;
    check_status(DnsStatus::kOk, h.start("v4only.example"));
    h.run();
    STRCMP_EQUAL("192.0.2.1 192.0.2.2", h.result().c_str());
    UNSIGNED_LONGS_EQUAL(1000, h.now);  // no waiting: the AAAA NODATA came first
}

TEST(DnsResolver, IgnoresDatagramsThatDoNotMatchAnOutstandingQuery) {
    Harness h(conf_with_servers(2));
    ZoneEntry entry;
    entry.v4 = {"192.0.2.1"};
    entry.v6 = {"2001:db8::1"};
    h.servers.zone["example.com"] = entry;
    check_status(DnsStatus::kOk, h.start("example.com"));
    const std::vector<Outgoing> sent = h.drain();
    std::vector<std::uint8_t> good = answer_for(sent[1], h.servers);

    std::vector<std::uint8_t> wrong_id = good;
    wrong_id[1] ^= 0x40;
    h.resolver.on_datagram(0, wrong_id.data(), wrong_id.size(), h.now, 1);
    // The right id for another name (the question does not echo ours).
    FakeNameservers other = h.servers;
    other.zone["example.org"] = entry;
    std::uint8_t query[tether::net::kMaxDnsQuerySize];
    std::size_t query_size = 0;
    const std::uint16_t a_id = static_cast<std::uint16_t>((good[0] << 8) | good[1]);
    check_status(DnsStatus::kOk,
                 tether::net::build_query(a_id, "example.org", tether::net::DnsType::kA, query,
                                          sizeof query, &query_size));
    const std::vector<std::uint8_t> wrong_question = other.respond(0, query, query_size, 0);
    h.resolver.on_datagram(0, wrong_question.data(), wrong_question.size(), h.now, 1);
    // Cut short, a single byte, and from a server index that is not configured.
    h.resolver.on_datagram(0, good.data(), good.size() - 1, h.now, 1);
    h.resolver.on_datagram(0, good.data(), 1, h.now, 1);
    h.resolver.on_datagram(2, good.data(), good.size(), h.now, 1);
    check_state(DnsResolverState::kResolving, h.resolver.state());
    CHECK_TRUE(h.drain().empty());

    h.resolver.on_datagram(0, good.data(), good.size(), h.now, 1);
    h.resolver.on_datagram(0, good.data(), good.size(), h.now, 1);  // a duplicate is harmless
    check_state(DnsResolverState::kResolving, h.resolver.state());
    const std::vector<std::uint8_t> v6 = answer_for(sent[0], h.servers);
    h.resolver.on_datagram(1, v6.data(), v6.size(), h.now, 1);  // any configured server counts
    check_state(DnsResolverState::kDone, h.resolver.state());
    STRCMP_EQUAL("2001:db8::1 192.0.2.1", h.result().c_str());
}

TEST(DnsResolver, RetriesEachServerPerTimeoutThenFails) {
    ResolvConf conf = conf_with_servers(2);
    conf.timeout_s = 3;
    conf.attempts = 2;
    Harness h(conf);
    h.servers.behaviour[0] = Behaviour::kSilent;
    h.servers.behaviour[1] = Behaviour::kSilent;
    check_status(DnsStatus::kOk, h.start("example.com"));
    h.exchange();
    UNSIGNED_LONGS_EQUAL(4000, h.resolver.next_deadline());
    h.resolver.poll(3999);
    CHECK_TRUE(h.drain().empty());
    h.run();
    check_state(DnsResolverState::kFailed, h.resolver.state());
    check_status(DnsStatus::kTimeout, h.resolver.status());
    UNSIGNED_LONGS_EQUAL(13000, h.now);
    STRCMP_EQUAL(
        "0:example.com/AAAA 0:example.com/A 1:example.com/AAAA 1:example.com/A "
        "0:example.com/AAAA 0:example.com/A 1:example.com/AAAA 1:example.com/A",
        h.queries().c_str());
    const TimeMs expected_times[] = {1000, 1000, 4000, 4000, 7000, 7000, 10000, 10000};
    for (std::size_t i = 0; i < h.servers.log.size(); ++i) {
        UNSIGNED_LONGS_EQUAL(expected_times[i], h.servers.log[i].at);
    }
    // Retransmissions keep the ids, so a late answer to any try still counts.
    UNSIGNED_LONGS_EQUAL(h.servers.log[0].id, h.servers.log[6].id);
    UNSIGNED_LONGS_EQUAL(h.servers.log[1].id, h.servers.log[7].id);
}

TEST(DnsResolver, AcceptsALateAnswerFromAnEarlierServer) {
    Harness h(conf_with_servers(2));
    ZoneEntry entry;
    entry.v4 = {"192.0.2.1"};
    entry.v6 = {"2001:db8::1"};
    h.servers.zone["example.com"] = entry;
    check_status(DnsStatus::kOk, h.start("example.com"));
    const std::vector<Outgoing> first = h.drain();
    h.now = h.resolver.next_deadline();
    h.resolver.poll(h.now);
    const std::vector<Outgoing> second = h.drain();
    LONGS_EQUAL(2, second.size());
    UNSIGNED_LONGS_EQUAL(1, second[0].server);
    for (const Outgoing& out : first) {
        const std::vector<std::uint8_t> reply = answer_for(out, h.servers);
        h.resolver.on_datagram(0, reply.data(), reply.size(), h.now + 10, 1);
    }
    check_state(DnsResolverState::kDone, h.resolver.state());
    STRCMP_EQUAL("2001:db8::1 192.0.2.1", h.result().c_str());
}

TEST(DnsResolver, ServerFailureMovesToTheNextServerAtOnce) {
    Harness h(conf_with_servers(2));
    ZoneEntry entry;
    entry.v4 = {"192.0.2.1"};
    h.servers.zone["example.com"] = entry;
    h.servers.behaviour[0] = Behaviour::kServerFailure;
    check_status(DnsStatus::kOk, h.start("example.com"));
    h.run();
    check_state(DnsResolverState::kDone, h.resolver.state());
    STRCMP_EQUAL("192.0.2.1", h.result().c_str());
    UNSIGNED_LONGS_EQUAL(1000, h.now);
    // The AAAA SERVFAIL moved both queries on to server 1; the A SERVFAIL
    // from server 0, arriving after that, did not skip server 1 as well.
    STRCMP_EQUAL("0:example.com/AAAA 0:example.com/A 1:example.com/AAAA 1:example.com/A",
                 h.queries().c_str());
}

TEST(DnsResolver, ErrorsFromEveryServerEndWithTheLastError) {
    const struct {
        Behaviour behaviour;
        DnsStatus status;
    } cases[] = {{Behaviour::kServerFailure, DnsStatus::kServerFailure},
                 {Behaviour::kRefused, DnsStatus::kRefused},
                 {Behaviour::kFormErr, DnsStatus::kUnexpectedRcode},
                 {Behaviour::kTruncatedEmpty, DnsStatus::kTruncated}};
    for (const auto& c : cases) {
        ResolvConf conf = conf_with_servers(3);
        conf.attempts = 2;
        Harness h(conf);
        for (Behaviour& b : h.servers.behaviour) {
            b = c.behaviour;
        }
        check_status(DnsStatus::kOk, h.start("example.com"));
        h.run();
        check_state(DnsResolverState::kFailed, h.resolver.state());
        check_status(c.status, h.resolver.status());
        UNSIGNED_LONGS_EQUAL(1000, h.now);  // errors never wait for a timeout
        UNSIGNED_LONGS_EQUAL(0, h.resolver.address_count());
    }
}

TEST(DnsResolver, ATimeoutAfterAServerErrorReportsTheError) {
    ResolvConf conf = conf_with_servers(2);
    conf.attempts = 1;
    Harness h(conf);
    h.servers.behaviour[0] = Behaviour::kRefused;
    h.servers.behaviour[1] = Behaviour::kSilent;
    check_status(DnsStatus::kOk, h.start("example.com"));
    h.run();
    check_status(DnsStatus::kRefused, h.resolver.status());
    UNSIGNED_LONGS_EQUAL(6000, h.now);
}

TEST(DnsResolver, UsesATruncatedAnswerThatHoldsAddresses) {
    Harness h(conf_with_servers(1));
    check_status(DnsStatus::kOk, h.start("big.example"));
    const std::vector<Outgoing> sent = h.drain();
    for (const Outgoing& out : sent) {
        const auto query = tether::test::decode_query(out.bytes.data(), out.bytes.size());
        DnsMessageBuilder reply;
        if (query.type == kTypeA) {
            reply.header(query.id, tether::test::kAnswerFlags | tether::test::kTruncatedFlag, 1, 9)
                .question(query.name, query.type)
                .a(query.name, 50, 198, 51, 100, 1)
                .a(query.name, 50, 198, 51, 100, 2)
                .u8(3);  // the rest was cut off
        } else {
            reply.header(query.id, tether::test::kAnswerFlags, 1, 0)
                .question(query.name, query.type);
        }
        h.resolver.on_datagram(0, reply.data(), reply.size(), h.now, 1);
    }
    check_state(DnsResolverState::kDone, h.resolver.state());
    STRCMP_EQUAL("198.51.100.1 198.51.100.2", h.result().c_str());
    UNSIGNED_LONGS_EQUAL(50, h.resolver.ttl_s());
}

TEST(DnsResolver, DoesNotWaitLongForTheSecondFamily) {
    ResolvConf conf = conf_with_servers(2);
    conf.timeout_s = 2;
    Harness h(conf);
    check_status(DnsStatus::kOk, h.start("example.com"));
    const std::vector<Outgoing> sent = h.drain();
    ZoneEntry entry;
    entry.v6 = {"2001:db8::1"};
    FakeNameservers zone;
    zone.zone["example.com"] = entry;
    const std::vector<std::uint8_t> v6 = answer_for(sent[0], zone);
    h.resolver.on_datagram(0, v6.data(), v6.size(), 1500, 1);
    check_state(DnsResolverState::kResolving, h.resolver.state());
    h.resolver.poll(2999);
    check_state(DnsResolverState::kResolving, h.resolver.state());
    h.resolver.poll(3000);  // the try's deadline: no retransmission of A
    check_state(DnsResolverState::kDone, h.resolver.state());
    CHECK_TRUE(h.drain().empty());
    STRCMP_EQUAL("2001:db8::1", h.result().c_str());
}

TEST(DnsResolver, AServerErrorForTheSecondFamilyFinishesWithTheFirst) {
    Harness h(conf_with_servers(2));
    check_status(DnsStatus::kOk, h.start("example.com"));
    const std::vector<Outgoing> sent = h.drain();
    ZoneEntry entry;
    entry.v4 = {"192.0.2.1"};
    FakeNameservers zone;
    zone.zone["example.com"] = entry;
    const std::vector<std::uint8_t> v4 = answer_for(sent[1], zone);
    h.resolver.on_datagram(0, v4.data(), v4.size(), h.now, 1);
    zone.behaviour[0] = Behaviour::kServerFailure;
    const std::vector<std::uint8_t> failure = answer_for(sent[0], zone);
    h.resolver.on_datagram(0, failure.data(), failure.size(), h.now, 1);
    check_state(DnsResolverState::kDone, h.resolver.state());
    STRCMP_EQUAL("192.0.2.1", h.result().c_str());
    CHECK_TRUE(h.drain().empty());
}

TEST(DnsResolver, RetransmitsOnlyTheQueryStillUnanswered) {
    ResolvConf conf = conf_with_servers(2);
    Harness h(conf);
    ZoneEntry entry;
    entry.v6 = {"2001:db8::1"};
    h.servers.zone["example.com"] = entry;
    check_status(DnsStatus::kOk, h.start("example.com"));
    const std::vector<Outgoing> sent = h.drain();
    const std::vector<std::uint8_t> nodata = answer_for(sent[1], h.servers);
    h.resolver.on_datagram(0, nodata.data(), nodata.size(), h.now, 1);
    h.now = h.resolver.next_deadline();
    h.resolver.poll(h.now);
    const std::vector<Outgoing> resent = h.drain();
    LONGS_EQUAL(1, resent.size());
    UNSIGNED_LONGS_EQUAL(1, resent[0].server);
    UNSIGNED_LONGS_EQUAL(
        kTypeAaaa, tether::test::decode_query(resent[0].bytes.data(), resent[0].bytes.size()).type);
    const std::vector<std::uint8_t> v6 = answer_for(resent[0], h.servers);
    h.resolver.on_datagram(1, v6.data(), v6.size(), h.now, 1);
    STRCMP_EQUAL("2001:db8::1", h.result().c_str());
}

TEST(DnsResolver, RotateSpreadsLookupsOverTheServers) {
    ResolvConf conf = conf_with_servers(3);
    conf.rotate = true;
    Harness h(conf);
    ZoneEntry entry;
    entry.v4 = {"192.0.2.1"};
    h.servers.zone["example.com"] = entry;
    for (int lookup = 0; lookup < 4; ++lookup) {
        check_status(DnsStatus::kOk, h.start("example.com"));
        h.run();
        check_state(DnsResolverState::kDone, h.resolver.state());
    }
    STRCMP_EQUAL(
        "0:example.com/AAAA 0:example.com/A 1:example.com/AAAA 1:example.com/A "
        "2:example.com/AAAA 2:example.com/A 0:example.com/AAAA 0:example.com/A",
        h.queries().c_str());
}

TEST(DnsResolver, ShortNamesTryTheSearchListFirst) {
    ResolvConf conf = conf_with_servers(1);
    std::strcpy(conf.search[0], "corp.example");
    std::strcpy(conf.search[1], "example.net");
    conf.search_count = 2;
    Harness h(conf);
    ZoneEntry entry;
    entry.v4 = {"192.0.2.9"};
    h.servers.zone["db.example.net"] = entry;
    check_status(DnsStatus::kOk, h.start("db"));
    h.run();
    STRCMP_EQUAL("192.0.2.9", h.result().c_str());
    STRCMP_EQUAL("db.example.net", h.resolver.query_name());
    STRCMP_EQUAL(
        "0:db.corp.example/AAAA 0:db.corp.example/A 0:db.example.net/AAAA 0:db.example.net/A",
        h.queries().c_str());
}

TEST(DnsResolver, NamesWithEnoughDotsAreTriedAsIsFirst) {
    ResolvConf conf = conf_with_servers(1);
    std::strcpy(conf.search[0], "corp.example");
    conf.search_count = 1;
    conf.ndots = 2;
    Harness h(conf);
    check_status(DnsStatus::kOk, h.start("a.b.c"));
    h.run();
    STRCMP_EQUAL("0:a.b.c/AAAA 0:a.b.c/A 0:a.b.c.corp.example/AAAA 0:a.b.c.corp.example/A",
                 h.queries().c_str());
    check_status(DnsStatus::kNameError, h.resolver.status());

    h.servers.log.clear();
    check_status(DnsStatus::kOk, h.start("a.b"));  // one dot < ndots 2
    h.run();
    STRCMP_EQUAL("0:a.b.corp.example/AAAA 0:a.b.corp.example/A 0:a.b/AAAA 0:a.b/A",
                 h.queries().c_str());
}

TEST(DnsResolver, AbsoluteNamesSkipTheSearchList) {
    ResolvConf conf = conf_with_servers(1);
    std::strcpy(conf.search[0], "corp.example");
    conf.search_count = 1;
    Harness h(conf);
    check_status(DnsStatus::kOk, h.start("printer."));
    h.run();
    STRCMP_EQUAL("0:printer/AAAA 0:printer/A", h.queries().c_str());
    check_status(DnsStatus::kNameError, h.resolver.status());
    check_state(DnsResolverState::kFailed, h.resolver.state());
}

TEST(DnsResolver, NameErrorForOneFamilyEndsTheCandidate) {
    ResolvConf conf = conf_with_servers(1);
    std::strcpy(conf.search[0], "lan");
    conf.search_count = 1;
    Harness h(conf);
    check_status(DnsStatus::kOk, h.start("db"));
    std::vector<Outgoing> sent = h.drain();
    // Only the AAAA query is answered (NXDOMAIN); the A answer never comes.
    const std::vector<std::uint8_t> nxdomain = answer_for(sent[0], h.servers);
    h.resolver.on_datagram(0, nxdomain.data(), nxdomain.size(), h.now, 0x00020001u);
    sent = h.drain();
    LONGS_EQUAL(2, sent.size());
    const auto next = tether::test::decode_query(sent[1].bytes.data(), sent[1].bytes.size());
    STRCMP_EQUAL("db", next.name.c_str());
    UNSIGNED_LONGS_EQUAL(0x0001, next.id);  // new ids from the new random value
}

TEST(DnsResolver, MixedNameErrorAndNoDataEndsAsNoAnswer) {
    ResolvConf conf = conf_with_servers(1);
    std::strcpy(conf.search[0], "lan");
    conf.search_count = 1;
    Harness h(conf);
    h.servers.zone["db"] = ZoneEntry{};  // exists, without addresses
    check_status(DnsStatus::kOk, h.start("db"));
    h.run();
    check_state(DnsResolverState::kFailed, h.resolver.state());
    check_status(DnsStatus::kNoAnswer, h.resolver.status());
    STRCMP_EQUAL("0:db.lan/AAAA 0:db.lan/A 0:db/AAAA 0:db/A", h.queries().c_str());
}

TEST(DnsResolver, ANameErrorAfterAddressesCountsAsNoData) {
    Harness h(conf_with_servers(1));
    check_status(DnsStatus::kOk, h.start("odd.example"));
    const std::vector<Outgoing> sent = h.drain();
    FakeNameservers zone;
    ZoneEntry entry;
    entry.v6 = {"2001:db8::5"};
    zone.zone["odd.example"] = entry;
    const std::vector<std::uint8_t> v6 = answer_for(sent[0], zone);
    h.resolver.on_datagram(0, v6.data(), v6.size(), h.now, 1);
    zone.zone.clear();
    const std::vector<std::uint8_t> nxdomain = answer_for(sent[1], zone);
    h.resolver.on_datagram(0, nxdomain.data(), nxdomain.size(), h.now, 1);
    check_state(DnsResolverState::kDone, h.resolver.state());
    STRCMP_EQUAL("2001:db8::5", h.result().c_str());
}

TEST(DnsResolver, SkipsCandidatesLongerThan253Characters) {
    ResolvConf conf = conf_with_servers(1);
    const std::string long_domain = std::string(63, 'd') + "." + std::string(63, 'd') + "." +
                                    std::string(63, 'd') + "." + std::string(40, 'd');
    std::strcpy(conf.search[0], long_domain.c_str());
    std::strcpy(conf.search[1], "lan");
    conf.search_count = 2;
    Harness h(conf);
    const std::string name(30, 'n');
    check_status(DnsStatus::kOk, h.start(name.c_str()));
    h.run();
    const std::string expected =
        "0:" + name + ".lan/AAAA 0:" + name + ".lan/A 0:" + name + "/AAAA 0:" + name + "/A";
    STRCMP_EQUAL(expected.c_str(), h.queries().c_str());
}

TEST(DnsResolver, CancelAndRestartAbandonTheLookup) {
    Harness h(conf_with_servers(1));
    ZoneEntry entry;
    entry.v4 = {"192.0.2.1"};
    h.servers.zone["example.com"] = entry;
    h.servers.zone["example.org"] = entry;
    check_status(DnsStatus::kOk, h.start("example.com"));
    const std::vector<Outgoing> sent = h.drain();
    h.resolver.cancel();
    check_state(DnsResolverState::kIdle, h.resolver.state());
    const std::vector<std::uint8_t> reply = answer_for(sent[1], h.servers);
    h.resolver.on_datagram(0, reply.data(), reply.size(), h.now, 1);
    h.resolver.poll(h.now + 100000);
    check_state(DnsResolverState::kIdle, h.resolver.state());
    CHECK_TRUE(h.drain().empty());

    check_status(DnsStatus::kOk, h.start("example.com"));
    h.drain();
    check_status(DnsStatus::kOk, h.start("example.org"));
    h.resolver.on_datagram(0, reply.data(), reply.size(), h.now, 1);  // for the old name
    check_state(DnsResolverState::kResolving, h.resolver.state());
    h.run();
    STRCMP_EQUAL("example.org", h.resolver.query_name());
    STRCMP_EQUAL("192.0.2.1", h.result().c_str());
}

TEST(DnsResolver, ClampsTheConfiguration) {
    ResolvConf conf;
    conf.nameserver_count = 0;
    conf.search_count = 40;
    conf.timeout_s = 0;
    conf.attempts = 100;
    conf.ndots = 99;
    std::memset(conf.search[0], 'x', sizeof conf.search[0]);  // no NUL
    const DnsResolver resolver(conf);
    UNSIGNED_LONGS_EQUAL(1, resolver.conf().nameserver_count);
    CHECK_TRUE(resolver.conf().nameservers[0] == tether::net::make_ipv4(127, 0, 0, 1));
    UNSIGNED_LONGS_EQUAL(ResolvConf::kMaxSearchDomains, resolver.conf().search_count);
    UNSIGNED_LONGS_EQUAL(253, std::strlen(resolver.conf().search[0]));
    UNSIGNED_LONGS_EQUAL(1, resolver.conf().timeout_s);
    UNSIGNED_LONGS_EQUAL(5, resolver.conf().attempts);
    UNSIGNED_LONGS_EQUAL(15, resolver.conf().ndots);
    conf.nameserver_count = 9;
    const DnsResolver many(conf);
    UNSIGNED_LONGS_EQUAL(3, many.conf().nameserver_count);
}

TEST(DnsResolver, ReconfigureAbandonsTheLookupAndAppliesTheNewConfiguration) {
    Harness h(conf_with_servers(1));
    ZoneEntry entry;
    entry.v4 = {"192.0.2.1"};
    h.servers.zone["example.com"] = entry;
    check_status(DnsStatus::kOk, h.start("example.com"));
    const std::vector<Outgoing> sent = h.drain();
    const std::vector<std::uint8_t> reply = answer_for(sent[1], h.servers);

    ResolvConf conf = conf_with_servers(2);
    conf.timeout_s = 0;  // clamped to 1, as by the constructor
    conf.attempts = 1;
    h.resolver.reconfigure(conf);
    check_state(DnsResolverState::kIdle, h.resolver.state());
    UNSIGNED_LONGS_EQUAL(2, h.resolver.conf().nameserver_count);
    CHECK_TRUE(h.resolver.conf().nameservers[1] == ip("10.0.0.2"));
    UNSIGNED_LONGS_EQUAL(1, h.resolver.conf().timeout_s);
    h.resolver.on_datagram(0, reply.data(), reply.size(), h.now, 1);  // to the abandoned lookup
    check_state(DnsResolverState::kIdle, h.resolver.state());
    CHECK_TRUE(h.drain().empty());

    h.servers.behaviour[0] = Behaviour::kSilent;
    h.servers.behaviour[1] = Behaviour::kSilent;
    h.servers.log.clear();
    check_status(DnsStatus::kOk, h.start("example.com"));
    h.run();
    check_status(DnsStatus::kTimeout, h.resolver.status());
    UNSIGNED_LONGS_EQUAL(1000 + 2 * 1000, h.now);
    STRCMP_EQUAL("0:example.com/AAAA 0:example.com/A 1:example.com/AAAA 1:example.com/A",
                 h.queries().c_str());
}

TEST(DnsResolver, ReconfigureKeepsTheRotatePosition) {
    ResolvConf conf = conf_with_servers(3);
    conf.rotate = true;
    Harness h(conf);
    ZoneEntry entry;
    entry.v4 = {"192.0.2.1"};
    h.servers.zone["example.com"] = entry;
    for (int lookup = 0; lookup < 2; ++lookup) {
        h.resolver.reconfigure(conf);  // as when the file is read again for each lookup
        check_status(DnsStatus::kOk, h.start("example.com"));
        h.run();
        check_state(DnsResolverState::kDone, h.resolver.state());
    }
    STRCMP_EQUAL("0:example.com/AAAA 0:example.com/A 1:example.com/AAAA 1:example.com/A",
                 h.queries().c_str());
}

TEST(DnsResolver, DeadlinesSurviveClockWrapAround) {
    Harness h(conf_with_servers(1));
    h.now = 0xFFFFF000u;
    h.servers.behaviour[0] = Behaviour::kSilent;
    check_status(DnsStatus::kOk, h.start("example.com"));
    h.exchange();
    UNSIGNED_LONGS_EQUAL(0xFFFFF000u + 5000u, h.resolver.next_deadline());
    h.resolver.poll(0xFFFFFFFFu);
    CHECK_TRUE(h.drain().empty());
    h.run();
    check_status(DnsStatus::kTimeout, h.resolver.status());
    UNSIGNED_LONGS_EQUAL(0xFFFFF000u + 10000u, h.now);
}

TEST(DnsResolver, ALookupAllocatesNothing) {
    Harness h(conf_with_servers(2));
    ZoneEntry entry;
    entry.v4 = {"192.0.2.1"};
    entry.v6 = {"2001:db8::1"};
    h.servers.zone["example.com"] = entry;
    // Prepare the answers first: the same random value gives the same ids.
    check_status(DnsStatus::kOk, h.resolver.start("example.com", 0, 0x00070009u));
    const std::vector<Outgoing> sent = h.drain();
    const std::vector<std::uint8_t> v6 = answer_for(sent[0], h.servers);
    const std::vector<std::uint8_t> v4 = answer_for(sent[1], h.servers);
    tether::test::AllocationCounter counter;
    {
        DnsResolver resolver(h.resolver.conf());
        check_status(DnsStatus::kOk, resolver.start("example.com", 0, 0x00070009u));
        tether::net::DnsDatagram datagram{};
        while (resolver.next_datagram(&datagram)) {
        }
        resolver.poll(5000);
        while (resolver.next_datagram(&datagram)) {
        }
        resolver.on_datagram(1, v6.data(), v6.size(), 5001, 1);
        resolver.on_datagram(1, v4.data(), v4.size(), 5001, 1);
        check_state(DnsResolverState::kDone, resolver.state());
    }
    UNSIGNED_LONGS_EQUAL(0, counter.count());
}

// SPDX-License-Identifier: MIT
#include <CppUTest/TestHarness.h>

#include <string>
#include <vector>

#include "tether/net/hosts_file.h"

using tether::net::IpAddress;

namespace {

const char kHosts[] =
    "# /etc/hosts\n"
    "127.0.0.1\tlocalhost\n"
    "127.0.1.1\tgateway-17.example.net gateway-17\n"
    "::1     localhost ip6-localhost ip6-loopback\n"
    "ff02::1 ip6-allnodes\n"
    "\n"
    "192.0.2.10  Telemetry.Example.COM telemetry tm   # the ingest\n"
    "2001:db8::10 telemetry.example.com\n"
    "# 192.0.2.99 telemetry.example.com\n"
    "192.0.2.10 telemetry.example.com\n"
    "not-an-ip   broken.example\n"
    "fe80::1%eth0 scoped.example\n"
    "192.0.2.11 # commented.example\n"
    "192.0.2.12 localhostx\n"
    "192.0.2.13\r\n"
    "192.0.2.14 crlf.example\r\n"
    "192.0.2.15 last.example";

std::vector<std::string> lookup(const char* name, std::size_t max = 8,
                                const std::string& text = kHosts) {
    IpAddress found[8];
    const std::size_t count = tether::net::lookup_hosts(text.data(), text.size(), name, found, max);
    std::vector<std::string> result;
    for (std::size_t i = 0; i < count; ++i) {
        char buffer[tether::net::kIpAddressTextCapacity];
        tether::net::format_ip_address(found[i], buffer, sizeof buffer);
        result.emplace_back(buffer);
    }
    return result;
}

std::string join(const std::vector<std::string>& parts) {
    std::string joined;
    for (const std::string& part : parts) {
        joined += (joined.empty() ? "" : " ") + part;
    }
    return joined;
}

}  // namespace

TEST_GROUP(HostsFile){};

TEST(HostsFile, FindsIpv4AndIpv6EntriesInFileOrder) {
    STRCMP_EQUAL("127.0.0.1 ::1", join(lookup("localhost")).c_str());
    STRCMP_EQUAL("::1", join(lookup("ip6-loopback")).c_str());
    STRCMP_EQUAL("ff02::1", join(lookup("ip6-allnodes")).c_str());
}

TEST(HostsFile, MatchesCanonicalNamesAndAliasesIgnoringCase) {
    STRCMP_EQUAL("192.0.2.10 2001:db8::10", join(lookup("telemetry.example.com")).c_str());
    STRCMP_EQUAL("192.0.2.10", join(lookup("TM")).c_str());
    STRCMP_EQUAL("192.0.2.10", join(lookup("Telemetry")).c_str());
    STRCMP_EQUAL("127.0.1.1", join(lookup("GATEWAY-17")).c_str());
    STRCMP_EQUAL("127.0.1.1", join(lookup("gateway-17.example.net.")).c_str());
}

TEST(HostsFile, ComparesWholeNamesOnly) {
    STRCMP_EQUAL("192.0.2.12", join(lookup("localhostx")).c_str());
    STRCMP_EQUAL("", join(lookup("localhos")).c_str());
    STRCMP_EQUAL("", join(lookup("gateway")).c_str());
    STRCMP_EQUAL("", join(lookup("example.com")).c_str());
}

TEST(HostsFile, SkipsCommentsAndLinesWithoutAUsableAddress) {
    STRCMP_EQUAL("", join(lookup("commented.example")).c_str());
    STRCMP_EQUAL("", join(lookup("broken.example")).c_str());
    STRCMP_EQUAL("", join(lookup("scoped.example")).c_str());
    STRCMP_EQUAL("", join(lookup("the")).c_str());
    STRCMP_EQUAL("", join(lookup("not-an-ip")).c_str());
    STRCMP_EQUAL("", join(lookup("192.0.2.13")).c_str());
    STRCMP_EQUAL("", join(lookup("")).c_str());
    STRCMP_EQUAL("", join(lookup(".")).c_str());
}

TEST(HostsFile, HandlesCrlfAndAMissingFinalNewline) {
    STRCMP_EQUAL("192.0.2.14", join(lookup("crlf.example")).c_str());
    STRCMP_EQUAL("192.0.2.15", join(lookup("last.example")).c_str());
}

TEST(HostsFile, ReturnsEachAddressOnceAndAtMostMax) {
    const std::string text =
        "10.0.0.1 multi\n10.0.0.2 multi\n10.0.0.1 multi\n::1 multi\n10.0.0.3 multi\n";
    STRCMP_EQUAL("10.0.0.1 10.0.0.2 ::1 10.0.0.3", join(lookup("multi", 8, text)).c_str());
    STRCMP_EQUAL("10.0.0.1 10.0.0.2", join(lookup("multi", 2, text)).c_str());
    STRCMP_EQUAL("", join(lookup("multi", 0, text)).c_str());
}

TEST(HostsFile, ReadsOnlyTheGivenBytes) {
    const char text[] = "10.0.0.1 first\n10.0.0.2 second\n";
    IpAddress found[2];
    UNSIGNED_LONGS_EQUAL(0, tether::net::lookup_hosts(text, 15, "second", found, 2));
    UNSIGNED_LONGS_EQUAL(1, tether::net::lookup_hosts(text, sizeof text - 1, "second", found, 2));
    UNSIGNED_LONGS_EQUAL(0, tether::net::lookup_hosts(text, 12, "first", found, 2));  // "first" cut
    UNSIGNED_LONGS_EQUAL(0, tether::net::lookup_hosts(nullptr, 0, "first", found, 2));
}

// SPDX-License-Identifier: MIT
// net::parse_answer: the input is a DNS response to the query for
// "example.com" with id 0x1234; the first byte picks A or AAAA and how many
// addresses the caller has room for.
#include <cstddef>
#include <cstdint>

#include "tether/net/dns_message.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tether::net;
    if (size < 1) {
        return 0;
    }
    const DnsType type = (data[0] & 1u) != 0 ? DnsType::kAaaa : DnsType::kA;
    const std::size_t max = (data[0] >> 1) % 9u;
    IpAddress found[8];
    std::size_t count = 99;
    std::uint32_t ttl = 0;
    const DnsStatus status = parse_answer(data + 1, size - 1, 0x1234, "example.com", type,
                                          max == 0 ? nullptr : found, max, &count, &ttl);
    if (count > max || (status == DnsStatus::kOk && count == 0)) {
        __builtin_trap();
    }
    for (std::size_t i = 0; i < count; ++i) {
        if (found[i].family != (type == DnsType::kA ? kIpv4 : kIpv6)) {
            __builtin_trap();
        }
    }
    return 0;
}

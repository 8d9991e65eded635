// SPDX-License-Identifier: MIT
// Builds DNS messages byte by byte for the resolver tests, and decodes the
// queries the resolver sends (as a fake nameserver would).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tether::test {

/// QR, RD and RA set, opcode 0, RCODE 0: a normal recursive answer.
inline constexpr std::uint16_t kAnswerFlags = 0x8180u;
inline constexpr std::uint16_t kTruncatedFlag = 0x0200u;

class DnsMessageBuilder {
  public:
    DnsMessageBuilder& header(std::uint16_t id, std::uint16_t flags, std::uint16_t questions,
                              std::uint16_t answers, std::uint16_t authority = 0,
                              std::uint16_t additional = 0);
    DnsMessageBuilder& u8(std::uint8_t value);
    DnsMessageBuilder& u16(std::uint16_t value);
    DnsMessageBuilder& u32(std::uint32_t value);
    /// Labels of `dotted` without the terminating zero (to end in a pointer).
    DnsMessageBuilder& labels(const std::string& dotted);
    /// An uncompressed name: labels and the zero byte.
    DnsMessageBuilder& name(const std::string& dotted);
    DnsMessageBuilder& pointer(std::size_t offset);
    DnsMessageBuilder& question(const std::string& name, std::uint16_t type);
    /// Type, class IN, TTL and rdata length: what follows an owner name.
    DnsMessageBuilder& fixed(std::uint16_t type, std::uint32_t ttl, std::uint16_t rdata_size,
                             std::uint16_t record_class = 1);
    DnsMessageBuilder& a(const std::string& owner, std::uint32_t ttl, std::uint8_t b0,
                         std::uint8_t b1, std::uint8_t b2, std::uint8_t b3);
    DnsMessageBuilder& aaaa(const std::string& owner, std::uint32_t ttl,
                            const std::uint8_t (&bytes)[16]);
    DnsMessageBuilder& cname(const std::string& owner, std::uint32_t ttl,
                             const std::string& target);
    /// Overwrites the big-endian word at `offset` (to patch counts or flags).
    DnsMessageBuilder& patch_u16(std::size_t offset, std::uint16_t value);

    std::size_t size() const { return bytes_.size(); }
    const std::uint8_t* data() const { return bytes_.data(); }
    const std::vector<std::uint8_t>& bytes() const { return bytes_; }

  private:
    std::vector<std::uint8_t> bytes_;
};

/// The id, name (dotted, as sent) and type of a query made by build_query().
struct DecodedQuery {
    bool valid = false;
    std::uint16_t id = 0;
    std::string name;
    std::uint16_t type = 0;
};

DecodedQuery decode_query(const std::uint8_t* data, std::size_t size);

}  // namespace tether::test

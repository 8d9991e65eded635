// SPDX-License-Identifier: MIT
#include "support/dns_builder.h"

namespace tether::test {

DnsMessageBuilder& DnsMessageBuilder::header(std::uint16_t id, std::uint16_t flags,
                                             std::uint16_t questions, std::uint16_t answers,
                                             std::uint16_t authority, std::uint16_t additional) {
    return u16(id).u16(flags).u16(questions).u16(answers).u16(authority).u16(additional);
}

DnsMessageBuilder& DnsMessageBuilder::u8(std::uint8_t value) {
    bytes_.push_back(value);
    return *this;
}

DnsMessageBuilder& DnsMessageBuilder::u16(std::uint16_t value) {
    return u8(static_cast<std::uint8_t>(value >> 8)).u8(static_cast<std::uint8_t>(value & 0xFF));
}

DnsMessageBuilder& DnsMessageBuilder::u32(std::uint32_t value) {
    return u16(static_cast<std::uint16_t>(value >> 16))
        .u16(static_cast<std::uint16_t>(value & 0xFFFF));
}

DnsMessageBuilder& DnsMessageBuilder::labels(const std::string& dotted) {
    std::size_t start = 0;
    while (start < dotted.size()) {
        std::size_t end = dotted.find('.', start);
        if (end == std::string::npos) {
            end = dotted.size();
        }
        u8(static_cast<std::uint8_t>(end - start));
        for (std::size_t i = start; i < end; ++i) {
            u8(static_cast<std::uint8_t>(dotted[i]));
        }
        start = end + 1;
    }
    return *this;
}

DnsMessageBuilder& DnsMessageBuilder::name(const std::string& dotted) {
    return labels(dotted).u8(0);
}

DnsMessageBuilder& DnsMessageBuilder::pointer(std::size_t offset) {
    return u16(static_cast<std::uint16_t>(0xC000u | offset));
}

DnsMessageBuilder& DnsMessageBuilder::question(const std::string& qname, std::uint16_t type) {
    return name(qname).u16(type).u16(1);
}

DnsMessageBuilder& DnsMessageBuilder::fixed(std::uint16_t type, std::uint32_t ttl,
                                            std::uint16_t rdata_size, std::uint16_t record_class) {
    return u16(type).u16(record_class).u32(ttl).u16(rdata_size);
}

DnsMessageBuilder& DnsMessageBuilder::a(const std::string& owner, std::uint32_t ttl,
                                        std::uint8_t b0, std::uint8_t b1, std::uint8_t b2,
                                        std::uint8_t b3) {
    return name(owner).fixed(1, ttl, 4).u8(b0).u8(b1).u8(b2).u8(b3);
}

DnsMessageBuilder& DnsMessageBuilder::aaaa(const std::string& owner, std::uint32_t ttl,
                                           const std::uint8_t (&bytes)[16]) {
    name(owner).fixed(28, ttl, 16);
    for (std::uint8_t byte : bytes) {
        u8(byte);
    }
    return *this;
}

DnsMessageBuilder& DnsMessageBuilder::cname(const std::string& owner, std::uint32_t ttl,
                                            const std::string& target) {
    DnsMessageBuilder rdata;
    rdata.name(target);
    name(owner).fixed(5, ttl, static_cast<std::uint16_t>(rdata.size()));
    bytes_.insert(bytes_.end(), rdata.bytes_.begin(), rdata.bytes_.end());
    return *this;
}

DnsMessageBuilder& DnsMessageBuilder::patch_u16(std::size_t offset, std::uint16_t value) {
    bytes_.at(offset) = static_cast<std::uint8_t>(value >> 8);
    bytes_.at(offset + 1) = static_cast<std::uint8_t>(value & 0xFF);
    return *this;
}

DecodedQuery decode_query(const std::uint8_t* data, std::size_t size) {
    DecodedQuery query;
    if (size < 12 + 1 + 4) {
        return query;
    }
    query.id = static_cast<std::uint16_t>((data[0] << 8) | data[1]);
    std::size_t pos = 12;
    while (pos < size && data[pos] != 0) {
        const std::size_t length = data[pos];
        if (pos + 1 + length >= size) {
            return query;
        }
        if (!query.name.empty()) {
            query.name += '.';
        }
        query.name.append(reinterpret_cast<const char*>(data + pos + 1), length);
        pos += 1 + length;
    }
    if (pos + 5 != size) {
        return query;
    }
    query.type = static_cast<std::uint16_t>((data[pos + 1] << 8) | data[pos + 2]);
    query.valid = true;
    return query;
}

}  // namespace tether::test

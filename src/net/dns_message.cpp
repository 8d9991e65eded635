// SPDX-License-Identifier: MIT
#include "tether/net/dns_message.h"

#include <cstring>

namespace tether::net {

namespace {

// Header layout (RFC 1035 4.1.1): id, flags, then the four section counts,
// each a big-endian 16-bit word.
constexpr std::size_t kHeaderSize = 12;
constexpr std::uint16_t kFlagResponse = 0x8000u;
constexpr std::uint16_t kOpcodeMask = 0x7800u;
constexpr std::uint16_t kFlagTruncated = 0x0200u;
constexpr std::uint16_t kFlagRecursionDesired = 0x0100u;
constexpr std::uint16_t kRcodeMask = 0x000Fu;
constexpr std::uint16_t kRcodeServerFailure = 2;
constexpr std::uint16_t kRcodeNameError = 3;
constexpr std::uint16_t kRcodeRefused = 5;
constexpr std::uint16_t kClassIn = 1;
// Type, class, TTL and rdata length follow each record's owner name.
constexpr std::size_t kRecordFixedSize = 10;
constexpr std::size_t kMaxWireName = 255;

// A name in uncompressed wire form (length-prefixed labels, then a zero
// byte), ASCII letters folded to lowercase, so equal names compare with memcmp.
struct WireName {
    std::uint8_t bytes[kMaxWireName];
    std::size_t size;
};

bool operator==(const WireName& a, const WireName& b) {
    return a.size == b.size && std::memcmp(a.bytes, b.bytes, a.size) == 0;
}

struct RecordView {
    WireName owner;
    std::uint16_t type;
    std::uint16_t record_class;
    std::uint32_t ttl;
    std::size_t rdata_offset;
    std::size_t rdata_size;
};

std::uint8_t ascii_lower(std::uint8_t c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<std::uint8_t>(c - 'A' + 'a') : c;
}

bool is_hostname_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

std::uint16_t read_u16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

std::uint32_t read_u32(const std::uint8_t* p) {
    return (static_cast<std::uint32_t>(p[0]) << 24) | (static_cast<std::uint32_t>(p[1]) << 16) |
           (static_cast<std::uint32_t>(p[2]) << 8) | p[3];
}

void write_u16(std::uint8_t* p, std::uint16_t value) {
    p[0] = static_cast<std::uint8_t>(value >> 8);
    p[1] = static_cast<std::uint8_t>(value & 0xFFu);
}

// Length of a NUL-terminated name, or kMaxWireName when it is at least that
// long (too long to be valid either way).
std::size_t bounded_length(const char* name) {
    std::size_t len = 0;
    while (len < kMaxWireName && name[len] != '\0') {
        ++len;
    }
    return len;
}

bool encode_name(const char* name, std::size_t len, bool fold_case, WireName* out) {
    if (len > 0 && name[len - 1] == '.') {
        --len;
    }
    if (len == 0 || len > kMaxDnsNameLength) {
        return false;
    }
    out->size = 0;
    std::size_t label_start = 0;
    for (std::size_t i = 0; i <= len; ++i) {
        if (i < len && name[i] != '.') {
            if (!is_hostname_char(name[i])) {
                return false;
            }
            continue;
        }
        const std::size_t label_length = i - label_start;
        if (label_length == 0 || label_length > kMaxDnsLabelLength) {
            return false;
        }
        out->bytes[out->size++] = static_cast<std::uint8_t>(label_length);
        for (std::size_t j = label_start; j < i; ++j) {
            const auto c = static_cast<std::uint8_t>(name[j]);
            out->bytes[out->size++] = fold_case ? ascii_lower(c) : c;
        }
        label_start = i + 1;
    }
    out->bytes[out->size++] = 0;  // len <= 253 keeps the total within 255
    return true;
}

// Reads the possibly compressed name at *offset into `name`, then moves
// *offset past the name's bytes at that position: past the terminating zero,
// or past the first compression pointer. A pointer must land after the
// header and before itself, and at most kMaxCompressionJumps are followed;
// together with the 255-byte limit on the decoded name this ends every loop.
bool read_name(const std::uint8_t* msg, std::size_t len, std::size_t* offset, WireName* name) {
    std::size_t pos = *offset;
    std::size_t resume = 0;
    std::size_t jumps = 0;
    name->size = 0;
    for (;;) {
        if (pos >= len) {
            return false;
        }
        const std::uint8_t length_byte = msg[pos];
        if ((length_byte & 0xC0u) == 0xC0u) {
            if (pos + 1 >= len) {
                return false;
            }
            const std::size_t target =
                (static_cast<std::size_t>(length_byte & 0x3Fu) << 8) | msg[pos + 1];
            if (target < kHeaderSize || target >= pos || ++jumps > kMaxCompressionJumps) {
                return false;
            }
            if (jumps == 1) {
                resume = pos + 2;
            }
            pos = target;
            continue;
        }
        if ((length_byte & 0xC0u) != 0) {
            return false;  // the obsolete extended label types 01 and 10
        }
        if (length_byte == 0) {
            break;
        }
        // The label, then room left for at least the terminating zero byte.
        if (pos + 1 + length_byte > len || name->size + 1 + length_byte + 1 > kMaxWireName) {
            return false;
        }
        name->bytes[name->size++] = length_byte;
        for (std::size_t i = 1; i <= length_byte; ++i) {
            name->bytes[name->size++] = ascii_lower(msg[pos + i]);
        }
        pos += 1 + length_byte;
    }
    name->bytes[name->size++] = 0;
    *offset = jumps > 0 ? resume : pos + 1;
    return true;
}

bool read_record(const std::uint8_t* msg, std::size_t len, std::size_t* offset,
                 RecordView* record) {
    std::size_t pos = *offset;
    if (!read_name(msg, len, &pos, &record->owner) || len - pos < kRecordFixedSize) {
        return false;
    }
    record->type = read_u16(msg + pos);
    record->record_class = read_u16(msg + pos + 2);
    record->ttl = read_u32(msg + pos + 4);
    record->rdata_size = read_u16(msg + pos + 8);
    record->rdata_offset = pos + kRecordFixedSize;
    if (len - record->rdata_offset < record->rdata_size) {
        return false;
    }
    *offset = record->rdata_offset + record->rdata_size;
    return true;
}

// RFC 2181 section 8: a TTL with the most significant bit set is treated as zero.
std::uint32_t effective_ttl(std::uint32_t ttl) {
    return (ttl & 0x80000000u) != 0 ? 0u : ttl;
}

DnsStatus status_of_rcode(std::uint16_t rcode) {
    switch (rcode) {
        case 0:
            return DnsStatus::kOk;
        case kRcodeServerFailure:
            return DnsStatus::kServerFailure;
        case kRcodeNameError:
            return DnsStatus::kNameError;
        case kRcodeRefused:
            return DnsStatus::kRefused;
        default:
            return DnsStatus::kUnexpectedRcode;
    }
}

// What one answer-section record does to the walk along the CNAME chain.
enum class RecordEffect : std::uint8_t { kNone, kFollowed, kCollected, kBad, kChainTooLong };

struct AnswerWalk {
    WireName current;
    std::size_t chain = 0;
    std::uint32_t min_ttl = 0xFFFFFFFFu;
    std::size_t found = 0;
};

RecordEffect apply_answer_record(const std::uint8_t* msg, std::size_t len, const RecordView& record,
                                 DnsType type, IpAddress* out, std::size_t max, AnswerWalk* walk) {
    if (record.record_class != kClassIn || !(record.owner == walk->current)) {
        return RecordEffect::kNone;
    }
    if (record.type == static_cast<std::uint16_t>(DnsType::kCname)) {
        if (++walk->chain > kMaxCnameChain) {
            return RecordEffect::kChainTooLong;
        }
        std::size_t target_end = record.rdata_offset;
        WireName target;
        if (!read_name(msg, len, &target_end, &target) ||
            target_end != record.rdata_offset + record.rdata_size) {
            return RecordEffect::kBad;
        }
        walk->current = target;
        const std::uint32_t ttl = effective_ttl(record.ttl);
        walk->min_ttl = ttl < walk->min_ttl ? ttl : walk->min_ttl;
        return RecordEffect::kFollowed;
    }
    if (record.type != static_cast<std::uint16_t>(type)) {
        return RecordEffect::kNone;
    }
    const std::size_t address_size = type == DnsType::kA ? 4u : 16u;
    if (record.rdata_size != address_size) {
        return RecordEffect::kBad;
    }
    if (walk->found == max) {
        return RecordEffect::kNone;
    }
    IpAddress& address = out[walk->found++];
    address = IpAddress{};
    address.family = type == DnsType::kA ? kIpv4 : kIpv6;
    std::memcpy(address.bytes, msg + record.rdata_offset, address_size);
    const std::uint32_t ttl = effective_ttl(record.ttl);
    walk->min_ttl = ttl < walk->min_ttl ? ttl : walk->min_ttl;
    return RecordEffect::kCollected;
}

}  // namespace

const char* to_string(DnsStatus status) {
    switch (status) {
        case DnsStatus::kOk:
            return "ok";
        case DnsStatus::kInvalidName:
            return "invalid_name";
        case DnsStatus::kBufferTooSmall:
            return "buffer_too_small";
        case DnsStatus::kMalformed:
            return "malformed";
        case DnsStatus::kIdMismatch:
            return "id_mismatch";
        case DnsStatus::kQuestionMismatch:
            return "question_mismatch";
        case DnsStatus::kNameError:
            return "name_error";
        case DnsStatus::kServerFailure:
            return "server_failure";
        case DnsStatus::kRefused:
            return "refused";
        case DnsStatus::kUnexpectedRcode:
            return "unexpected_rcode";
        case DnsStatus::kTruncated:
            return "truncated";
        case DnsStatus::kNoAnswer:
            return "no_answer";
        case DnsStatus::kTimeout:
            return "timeout";
    }
    return "unknown";
}

bool dns_name_is_valid(const char* name, std::size_t len) {
    WireName scratch;
    return name != nullptr && encode_name(name, len, false, &scratch);
}

DnsStatus build_query(std::uint16_t id, const char* name, DnsType type, std::uint8_t* out,
                      std::size_t cap, std::size_t* len) {
    WireName wire;
    if (name == nullptr || !encode_name(name, bounded_length(name), false, &wire)) {
        return DnsStatus::kInvalidName;
    }
    const std::size_t size = kHeaderSize + wire.size + 4;
    *len = size;
    if (size > cap) {
        return DnsStatus::kBufferTooSmall;
    }
    std::memset(out, 0, kHeaderSize);
    write_u16(out, id);
    write_u16(out + 2, kFlagRecursionDesired);
    write_u16(out + 4, 1);  // one question, no other records
    std::memcpy(out + kHeaderSize, wire.bytes, wire.size);
    write_u16(out + kHeaderSize + wire.size, static_cast<std::uint16_t>(type));
    write_u16(out + kHeaderSize + wire.size + 2, kClassIn);
    return DnsStatus::kOk;
}

DnsStatus parse_answer(const std::uint8_t* msg, std::size_t len, std::uint16_t expected_id,
                       const char* expected_name, DnsType type, IpAddress* out, std::size_t max,
                       std::size_t* count, std::uint32_t* min_ttl) {
    *count = 0;
    *min_ttl = 0;
    AnswerWalk walk;
    if (expected_name == nullptr ||
        !encode_name(expected_name, bounded_length(expected_name), true, &walk.current)) {
        return DnsStatus::kInvalidName;
    }
    if (len < kHeaderSize) {
        return DnsStatus::kMalformed;
    }
    if (read_u16(msg) != expected_id) {
        return DnsStatus::kIdMismatch;
    }
    const std::uint16_t flags = read_u16(msg + 2);
    if ((flags & kFlagResponse) == 0 || (flags & kOpcodeMask) != 0 || read_u16(msg + 4) != 1) {
        return DnsStatus::kMalformed;
    }
    std::size_t offset = kHeaderSize;
    WireName question;
    if (!read_name(msg, len, &offset, &question) || len - offset < 4) {
        return DnsStatus::kMalformed;
    }
    if (!(question == walk.current) || read_u16(msg + offset) != static_cast<std::uint16_t>(type) ||
        read_u16(msg + offset + 2) != kClassIn) {
        return DnsStatus::kQuestionMismatch;
    }
    offset += 4;
    const DnsStatus rcode_status = status_of_rcode(flags & kRcodeMask);
    if (rcode_status != DnsStatus::kOk) {
        return rcode_status;
    }
    const bool truncated = (flags & kFlagTruncated) != 0;
    const std::size_t answers = read_u16(msg + 6);
    const std::size_t records = answers + read_u16(msg + 8) + read_u16(msg + 10);
    for (std::size_t i = 0; i < records; ++i) {
        RecordView record;
        RecordEffect effect = RecordEffect::kNone;
        if (!read_record(msg, len, &offset, &record)) {
            effect = RecordEffect::kBad;
        } else if (i < answers) {
            effect = apply_answer_record(msg, len, record, type, out, max, &walk);
        }
        if (effect == RecordEffect::kChainTooLong) {
            return DnsStatus::kMalformed;
        }
        if (effect == RecordEffect::kBad) {
            if (!truncated) {
                return DnsStatus::kMalformed;
            }
            break;
        }
    }
    *count = walk.found;
    *min_ttl = walk.found > 0 ? walk.min_ttl : 0;
    if (truncated) {
        return DnsStatus::kTruncated;
    }
    return walk.found > 0 ? DnsStatus::kOk : DnsStatus::kNoAnswer;
}

}  // namespace tether::net

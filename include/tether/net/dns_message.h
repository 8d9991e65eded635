// SPDX-License-Identifier: MIT
// DNS messages (RFC 1035) for a stub resolver: build an A or AAAA query,
// check and parse the answer. Bytes in, bytes out; no sockets, no heap.
//
// Every read from a message is bounds-checked, compression pointers must
// point backwards (before the pointer itself, past the header) and a name
// may follow at most kMaxCompressionJumps of them, so hostile or truncated
// datagrams end in kMalformed, never in a read out of bounds or a loop.
//
// Example:
//   std::uint8_t query[tether::kMaxDnsQuerySize];
//   std::size_t query_size = 0;
//   if (tether::build_query(id, "example.com", tether::DnsType::kA, query, sizeof query,
//                           &query_size) == tether::DnsStatus::kOk) {
//       send(query, query_size);
//   }
//   ...
//   tether::IpAddress found[8];
//   std::size_t count = 0;
//   std::uint32_t ttl = 0;
//   tether::DnsStatus status = tether::parse_answer(reply, reply_size, id, "example.com",
//                                                   tether::DnsType::kA, found, 8, &count, &ttl);
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/net/ip_address.h"

namespace tether::net {

/// Results of the DNS codec and of the resolver (tether/net/dns_resolver.h).
enum class [[nodiscard]] DnsStatus{
    kOk = 0,
    kInvalidName,       ///< Not a hostname: empty, bad character, label or total too long.
    kBufferTooSmall,    ///< The output buffer cannot hold the message.
    kMalformed,         ///< The message breaks RFC 1035 framing, or is not a standard response.
    kIdMismatch,        ///< The response answers another query id (ignore it: may be spoofed).
    kQuestionMismatch,  ///< The response's question is not the one asked (ignore it too).
    kNameError,         ///< RCODE 3, NXDOMAIN: the name does not exist.
    kServerFailure,     ///< RCODE 2, SERVFAIL: the server could not answer; try another.
    kRefused,           ///< RCODE 5: the server will not answer us; try another.
    kUnexpectedRcode,   ///< Any other non-zero RCODE (FORMERR, NOTIMP, ...).
    kTruncated,         ///< TC bit set: the answer did not fit into the datagram.
    kNoAnswer,          ///< The name exists but has no address of the type asked (NODATA).
    kTimeout,           ///< Resolver only: no server answered within the configured tries.
};

/// A stable, human-readable name for logs ("ok", "name_error", ...).
const char* to_string(DnsStatus status);

/// Record types the stub resolver deals with.
enum class DnsType : std::uint16_t {
    kA = 1,
    kCname = 5,
    kAaaa = 28,
};

/// Longest hostname in text form, without a trailing dot (RFC 1035 2.3.4:
/// 255 bytes in wire form).
inline constexpr std::size_t kMaxDnsNameLength = 253;
/// Longest label.
inline constexpr std::size_t kMaxDnsLabelLength = 63;
/// Largest message build_query() produces: header, the longest name, type and class.
inline constexpr std::size_t kMaxDnsQuerySize = 12 + 255 + 4;
/// Largest DNS message over UDP without EDNS (RFC 1035 4.2.1); a receive
/// buffer of this size holds any answer to our queries.
inline constexpr std::size_t kMaxDnsUdpMessageSize = 512;
/// Compression pointers one name may follow before the message is rejected.
inline constexpr std::size_t kMaxCompressionJumps = 32;
/// CNAME records one answer may chain through before it is rejected.
inline constexpr std::size_t kMaxCnameChain = 8;

/// True when the first `len` bytes of `name` form a hostname we query:
/// labels of 1..63 letters, digits, '-' or '_' separated by single dots,
/// at most 253 characters plus an optional trailing dot. Empty names and
/// "." are not valid.
bool dns_name_is_valid(const char* name, std::size_t len);

/// Builds a standard query (opcode 0, RD set, no EDNS) for `name`
/// (NUL-terminated, see dns_name_is_valid(); case is kept) with one question
/// of `type` in class IN. On kOk, *len is the message size (at most
/// kMaxDnsQuerySize).
/// Returns kOk, kInvalidName (nothing written) or kBufferTooSmall (the
/// message needs more than `cap` bytes; *len is set to the size needed).
DnsStatus build_query(std::uint16_t id, const char* name, DnsType type, std::uint8_t* out,
                      std::size_t cap, std::size_t* len);

/// Checks that the `len` bytes at `msg` answer the query built with
/// (`expected_id`, `expected_name`, `type`) and collects the addresses.
///
/// Checks, in this order, each ending the parse with its status:
///  0. `expected_name` is valid (dns_name_is_valid())         -> kInvalidName
///  1. at least a full header                                  -> kMalformed
///  2. the id                                                  -> kIdMismatch
///  3. QR = 1 and opcode 0 (standard query response)           -> kMalformed
///  4. exactly one question that parses                        -> kMalformed /
///     equal to the name (ASCII case-insensitive, trailing        kQuestionMismatch
///     dot ignored), `type` and class IN
///  5. the RCODE: 3 -> kNameError, 2 -> kServerFailure, 5 -> kRefused,
///     any other non-zero -> kUnexpectedRcode
///  6. every record of the answer, authority and additional sections is
///     well formed and lies inside the message                 -> kMalformed
/// Then, reading the answer section in order starting from the question
/// name: a CNAME owned by the current name moves the current name to its
/// target (at most kMaxCnameChain of them, else kMalformed); an A or AAAA
/// record (as `type` asks) of class IN owned by the current name is
/// collected (rdata of the wrong size -> kMalformed). Records owned by other
/// names are ignored, so an unrelated record cannot inject an address.
///
/// Up to `max` addresses go to `out` in message order (`out` may be null
/// when max is 0); *count receives how many. *min_ttl receives the smallest
/// TTL, in seconds, of the CNAMEs followed and the addresses collected (a
/// TTL with the top bit set counts as 0, RFC 2181 section 8), or 0 when
/// nothing was collected.
///
/// Returns kOk (*count >= 1), kNoAnswer (a valid answer without addresses),
/// kTruncated (the TC bit is set: *count holds the addresses from the
/// complete records before the cut, possibly 0; a record that does not
/// parse ends the parse there instead of giving kMalformed, since servers
/// cut such answers anywhere), or one of the errors above. *count and
/// *min_ttl are always written.
DnsStatus parse_answer(const std::uint8_t* msg, std::size_t len, std::uint16_t expected_id,
                       const char* expected_name, DnsType type, IpAddress* out, std::size_t max,
                       std::size_t* count, std::uint32_t* min_ttl);

}  // namespace tether::net

// SPDX-License-Identifier: MIT
// A non-blocking stub resolver: a state machine with no I/O of its own.
//
// getaddrinfo() blocks the calling thread, and getaddrinfo_a() exists only
// in glibc (gateways run musl), so tether's single-threaded poll() loop
// resolves names with this class. The loop owns the UDP socket(s) and the
// clock; the resolver says which query bytes to send to which nameserver,
// takes the datagrams that come back, and keeps the deadlines. Randomness
// for query ids is passed in. All storage is inside the object (about 3.2 KB on x86-64).
//
// The caller looks the name up in /etc/hosts first (lookup_hosts() in
// tether/net/hosts_file.h) and starts the resolver only when that finds
// nothing; the resolver itself reads no files.
//
// What one lookup does:
//  - A numeric IPv4 or IPv6 literal finishes at once in start().
//  - Otherwise the candidate names come from the search list, as in
//    resolv.conf(5): a name with a trailing dot is tried only as is; a name
//    with at least `ndots` dots is tried as is first, then with each search
//    domain appended; a name with fewer dots is tried with each search
//    domain first, then as is. Candidates longer than 253 characters are skipped.
//  - For each candidate an AAAA and an A query go out together, with ids
//    taken from `random` (low 16 bits for A, high 16 bits for AAAA, made to
//    differ). Both queries keep their ids for every retransmission of that
//    candidate, and an answer is accepted from any configured server, so a
//    late answer to an earlier try still counts.
//  - Tries: the queries go to one server at a time and wait `timeout_s`;
//    then both (those still unanswered) go to the next server, for
//    `attempts` rounds over all servers (attempts x servers tries). The
//    first server is the first configured one, or with `rotate` the next one
//    round-robin per lookup. SERVFAIL, REFUSED, any other error RCODE, or a
//    truncated answer without addresses from the server of the current try
//    moves on to the next try at once.
//  - NXDOMAIN to either query ends the candidate (the name does not exist
//    for any type); so does NODATA to both. The lookup then moves on to the
//    next candidate.
//  - Once one query has addresses, the other is not retransmitted: the
//    lookup finishes when it answers or when the current try times out.
//  - Running out of tries ends the lookup, like the C libraries do: with
//    the addresses found, else with the last error a server returned for the
//    candidate, else kTimeout. Running out of candidates ends it with
//    kNameError when every candidate was NXDOMAIN, else kNoAnswer.
//  - Datagrams whose id, question or framing do not match an outstanding
//    query are ignored (spoof resistance), as are answers to a query already done.
//
// Result order: a simple Happy Eyeballs v2 (RFC 8305) ordering, IPv6 first,
// then alternating families (v6, v4, v6, v4, ...), each family in answer
// order; when one family runs out the rest of the other follows. At most
// kMaxAddresses. ttl_s() is the smallest TTL of the answers used.
//
// Example (one lookup in the poll loop):
//   tether::DnsResolver resolver(conf);
//   if (resolver.start("telemetry.example.com", now, random_u32()) != tether::DnsStatus::kOk) ...
//   while (resolver.state() == tether::DnsResolverState::kResolving) {
//       tether::DnsDatagram datagram;
//       while (resolver.next_datagram(&datagram)) {
//           send_udp(conf.nameservers[datagram.server], 53, datagram.data, datagram.size);
//       }
//       wait_readable(udp_socket, time_until(now, resolver.next_deadline()));
//       now = clock();
//       while (receive_udp(buffer, &size, &from)) {   // from a nameserver, port 53
//           resolver.on_datagram(index_of(from), buffer, size, now, random_u32());
//       }
//       resolver.poll(now);
//   }
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/net/dns_message.h"
#include "tether/net/ip_address.h"
#include "tether/net/resolv_conf.h"
#include "tether/time.h"

namespace tether::net {

enum class DnsResolverState : std::uint8_t {
    kIdle,       ///< constructed, or cancelled
    kResolving,  ///< queries to send or answers awaited
    kDone,       ///< addresses available
    kFailed,     ///< status() says why
};

const char* to_string(DnsResolverState state);

/// One query to send: the caller sends `size` bytes from `data` over UDP to
/// port 53 of nameservers[`server`] of the configuration. `data` stays valid
/// until the next non-const call on the resolver.
struct DnsDatagram {
    std::size_t server;
    const std::uint8_t* data;
    std::size_t size;
};

class DnsResolver {
  public:
    static constexpr std::size_t kMaxAddresses = 8;
    /// ttl_s() of a numeric literal: it never expires.
    static constexpr std::uint32_t kLiteralTtl = 0xFFFFFFFFu;

    /// Copies `conf`. Values outside the ranges documented in resolv_conf.h
    /// are clamped, and an empty server list means 127.0.0.1.
    explicit DnsResolver(const ResolvConf& conf);

    /// Replaces the configuration with `conf` (clamped as in the
    /// constructor) and abandons any lookup in progress: state() becomes
    /// kIdle. The rotate position is kept, so round-robin over the servers
    /// continues across a reload of an unchanged file. Lets one object
    /// (no heap) follow a resolv.conf that changes between lookups.
    void reconfigure(const ResolvConf& conf);

    /// Starts resolving `name` (NUL-terminated), abandoning any lookup in
    /// progress. `random` supplies the query ids.
    /// Returns kOk: state() is kDone already for a numeric literal, else
    /// kResolving; or kInvalidName: the name is neither a literal nor valid
    /// for dns_name_is_valid(), and state() is kFailed with that status.
    DnsStatus start(const char* name, TimeMs now, std::uint32_t random);

    /// Abandons the lookup in progress; state() becomes kIdle.
    void cancel();

    /// The next query to send, if any; each is handed out once per try.
    /// Call until it returns false after start(), on_datagram() and poll().
    bool next_datagram(DnsDatagram* out);

    /// A UDP datagram arrived from port 53 of nameservers[`server`] (the
    /// caller drops datagrams from any other source). `random` supplies new
    /// ids should the lookup move on to the next candidate name. Datagrams
    /// that match no outstanding query, and any datagram outside kResolving,
    /// are ignored.
    void on_datagram(std::size_t server, const std::uint8_t* data, std::size_t size, TimeMs now,
                     std::uint32_t random);

    /// Handles the try deadline: retransmission to the next server, the end
    /// of the tries. Call whenever next_deadline() has been reached; calling
    /// earlier is harmless.
    void poll(TimeMs now);

    /// When poll() next has something to do; meaningful only in kResolving.
    TimeMs next_deadline() const { return deadline_; }

    DnsResolverState state() const { return state_; }
    /// kOk in kDone (and while idle or resolving); the reason in kFailed:
    /// kInvalidName, kNameError, kNoAnswer, kServerFailure, kRefused,
    /// kUnexpectedRcode, kTruncated or kTimeout.
    DnsStatus status() const { return status_; }

    /// The addresses found (kDone only; empty otherwise), ordered as above.
    const IpAddress* addresses() const { return result_; }
    std::size_t address_count() const { return result_count_; }
    /// Seconds the result may be cached (kDone only).
    std::uint32_t ttl_s() const { return ttl_s_; }

    /// The candidate name being queried (kResolving), or that answered (kDone).
    const char* query_name() const { return query_name_; }
    /// The configuration in use, after clamping.
    const ResolvConf& conf() const { return conf_; }

  private:
    enum class QueryState : std::uint8_t { kUnsent, kSent, kDone };

    struct Query {
        DnsType type;
        std::uint16_t id;
        QueryState state;
        std::uint8_t packet[kMaxDnsQuerySize];
        std::size_t packet_size;
        IpAddress found[kMaxAddresses];
        std::size_t found_count;
        std::uint32_t ttl_s;
    };

    static constexpr std::size_t kQueries = 2;  // [0] AAAA, [1] A

    void apply_conf(const ResolvConf& conf);
    bool begin_candidate(std::size_t from, TimeMs now, std::uint32_t random);
    bool compose_candidate(std::size_t index);
    void begin_try(TimeMs now);
    void next_try(TimeMs now);
    void handle_server_error(std::size_t server, DnsStatus status, TimeMs now);
    void candidate_ended(bool name_error, TimeMs now, std::uint32_t random);
    void finish_with_addresses();
    void fail(DnsStatus status);
    bool any_addresses() const;
    std::size_t current_server() const;

    ResolvConf conf_;
    DnsResolverState state_ = DnsResolverState::kIdle;
    DnsStatus status_ = DnsStatus::kOk;
    char name_[kMaxDnsNameLength + 1] = {};  // as given, trailing dot removed
    bool absolute_ = false;
    bool as_is_first_ = false;
    std::size_t candidate_ = 0;  // index into the candidate sequence
    char query_name_[kMaxDnsNameLength + 1] = {};
    Query queries_[kQueries] = {};
    std::size_t try_ = 0;
    std::size_t first_server_ = 0;
    std::size_t rotation_ = 0;
    TimeMs deadline_ = 0;
    bool every_candidate_name_error_ = true;
    DnsStatus last_server_error_ = DnsStatus::kOk;
    IpAddress result_[kMaxAddresses] = {};
    std::size_t result_count_ = 0;
    std::uint32_t ttl_s_ = 0;
};

}  // namespace tether::net

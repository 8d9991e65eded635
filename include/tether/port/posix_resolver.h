// SPDX-License-Identifier: MIT
// The NameResolver of POSIX gateways: /etc/hosts, then DNS over UDP, with
// the stub resolver of tether/net/dns_resolver.h and non-blocking sockets.
//
// Every lookup reads /etc/hosts and /etc/resolv.conf again, so a gateway
// whose address, DHCP lease or DNS servers change picks the new ones up on
// its next reconnect without a restart. Each file is read up to
// kMaxFileSize bytes into one fixed buffer; anything beyond that is ignored
// (a hosts entry or resolv.conf line past the bound is not seen). A missing
// or unreadable resolv.conf means the defaults of an empty one (127.0.0.1,
// see resolv_conf.h); a missing hosts file means no hosts entries.
//
// No heap: the stub resolver, the read buffer and the receive buffer are
// members (about 20 KB in all, mostly the file buffer). A lookup opens at
// most one UDP socket per address family of the configured servers
// (SOCK_NONBLOCK | SOCK_CLOEXEC, unconnected: sendto and recvfrom), only
// when a query for that family is first sent, and closes them when the
// lookup ends, is cancelled or restarted, so each lookup gets fresh
// ephemeral source ports. Datagrams from any source other than a
// configured nameserver on the DNS port are dropped.
//
// Nothing waits: a send that fails (ENETUNREACH while the network is down,
// EAGAIN, no socket for the family because socket() failed) is not an
// error of its own; the try simply times out and the next one goes out.
//
// Example (in the poll loop):
//   tether::port::PosixResolver resolver;
//   tether::ResolveStatus status = resolver.start("telemetry.example.com", now, random_u32());
//   while (status == tether::ResolveStatus::kPending) {
//       int fds[tether::NameResolver::kMaxFds];
//       const std::size_t count = resolver.fds(fds, tether::NameResolver::kMaxFds);
//       wait_readable(fds, count, tether::time_until(now, resolver.next_deadline()));
//       now = clock_ms();
//       status = resolver.poll(now, random_u32());
//   }
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/net/dns_message.h"
#include "tether/net/dns_resolver.h"
#include "tether/net/ip_address.h"
#include "tether/resolver.h"
#include "tether/time.h"

namespace tether::port {

struct PosixResolverConfig {
    /// The files read at the start of every lookup; the strings must stay
    /// valid for the resolver's lifetime.
    const char* resolv_conf_path = "/etc/resolv.conf";
    const char* hosts_path = "/etc/hosts";
    /// The UDP port queries go to, and the only source port answers are
    /// accepted from. 53 except in tests (a fake server on 127.0.0.1).
    std::uint16_t dns_port = 53;
};

class PosixResolver final : public NameResolver {
  public:
    /// Bytes read from each file; the rest of a longer file is ignored.
    static constexpr std::size_t kMaxFileSize = 16 * 1024;
    /// Datagrams one poll() reads at most, so a flood of (spoofed) traffic
    /// cannot keep poll() from returning; the rest wait for the next call.
    static constexpr std::size_t kMaxDatagramsPerPoll = 32;

    explicit PosixResolver(const PosixResolverConfig& config = PosixResolverConfig());
    /// Closes the sockets of a lookup in progress.
    ~PosixResolver() override;
    PosixResolver(const PosixResolver&) = delete;
    PosixResolver& operator=(const PosixResolver&) = delete;

    /// Abandons any lookup in progress (closing its sockets), then:
    ///  - an IPv4 or IPv6 literal: kDone, with that one address;
    ///  - a name found in the hosts file (lookup_hosts(), case-insensitive,
    ///    one trailing dot ignored): kDone with its addresses in file order,
    ///    without any DNS traffic;
    ///  - otherwise reads resolv.conf, sends the first queries and returns
    ///    kPending; or kFailed at once when `host` is not a valid hostname
    ///    (dns_name_is_valid()).
    /// `random` supplies the DNS query ids.
    ResolveStatus start(const char* host, TimeMs now, std::uint32_t random) override;

    /// While a lookup is pending: reads the datagrams that arrived (at most
    /// kMaxDatagramsPerPoll), handles the try deadline at `now`, sends the
    /// queries of the next try or candidate name. Returns kPending; kDone;
    /// kNameError when every candidate name was NXDOMAIN; kFailed when no
    /// server answered within timeout x attempts x servers, or the answers
    /// were errors or had no addresses. The sockets are closed once the
    /// lookup has ended. After the end, and when no lookup was started or it
    /// was cancelled, returns the last result (kFailed after cancel() or
    /// before any start()).
    ResolveStatus poll(TimeMs now, std::uint32_t random) override;

    /// After kDone: copies up to `max` addresses (at most
    /// DnsResolver::kMaxAddresses), IPv6 and IPv4 interleaved as RFC 8305
    /// orders them for DNS answers, file order for hosts entries. Returns
    /// the count; 0 unless the last lookup ended with kDone.
    std::size_t addresses(net::IpAddress* out, std::size_t max) const override;

    /// Abandons the lookup and closes its sockets; poll() then returns kFailed.
    void cancel() override;

    /// The open UDP sockets (0, 1 or 2) while kPending; 0 otherwise.
    std::size_t fds(int* out, std::size_t max) const override;

    /// While kPending: the stub resolver's try deadline.
    TimeMs next_deadline() const override;

    /// The configuration used by the last DNS lookup (as parsed and clamped).
    const net::ResolvConf& conf() const { return dns_.conf(); }

  private:
    enum class Family : std::uint8_t { kV4 = 0, kV6 = 1 };
    static constexpr std::size_t kFamilies = 2;

    void close_sockets();
    std::size_t read_file(const char* path);
    void send_pending_datagrams();
    void send_datagram(const net::DnsDatagram& datagram);
    void receive_datagrams(TimeMs now, std::uint32_t random);
    bool server_index(const net::IpAddress& from, std::uint16_t port, std::size_t* index) const;
    ResolveStatus finish();
    void finish_with(const net::IpAddress* found, std::size_t count);

    PosixResolverConfig config_;
    net::DnsResolver dns_;
    ResolveStatus status_ = ResolveStatus::kFailed;
    int sockets_[kFamilies] = {-1, -1};
    net::IpAddress result_[net::DnsResolver::kMaxAddresses] = {};
    std::size_t result_count_ = 0;
    char file_buffer_[kMaxFileSize] = {};
    std::uint8_t receive_buffer_[net::kMaxDnsUdpMessageSize] = {};
};

}  // namespace tether::port

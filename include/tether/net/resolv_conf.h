// SPDX-License-Identifier: MIT
// The resolver configuration: /etc/resolv.conf as resolv.conf(5) describes it.
//
// The caller reads the file (port/posix) and passes its bytes in; parsing
// never fails, it only ignores what it does not understand, as the C
// libraries do. Storage is fixed-size (about 1.6 KB).
//
// Example:
//   tether::ResolvConf conf;
//   tether::parse_resolv_conf(file_bytes, file_size, &conf);
//   tether::DnsResolver resolver(conf);
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/net/dns_message.h"
#include "tether/net/ip_address.h"

namespace tether::net {

/// A default-constructed ResolvConf is the configuration of an empty file:
/// 127.0.0.1, no search domains, timeout 5, attempts 2, ndots 1.
struct ResolvConf {
    static constexpr std::size_t kMaxNameservers = 3;    ///< MAXNS in glibc and musl
    static constexpr std::size_t kMaxSearchDomains = 6;  ///< MAXDNSRCH in glibc
    static constexpr std::uint32_t kMaxTimeoutS = 30;    ///< RES_MAXRETRANS
    static constexpr std::uint32_t kMaxAttempts = 5;     ///< RES_MAXRETRY
    static constexpr std::uint32_t kMaxNdots = 15;       ///< RES_MAXNDOTS

    /// The servers in file order; never empty after parse_resolv_conf()
    /// (127.0.0.1 when the file names none that parse).
    IpAddress nameservers[kMaxNameservers] = {{kIpv4, {127, 0, 0, 1}}};
    std::size_t nameserver_count = 1;
    /// Search domains in order, NUL-terminated, without a trailing dot.
    char search[kMaxSearchDomains][kMaxDnsNameLength + 1] = {};
    std::size_t search_count = 0;
    std::uint32_t timeout_s = 5;  ///< wait per query try, 1..kMaxTimeoutS
    std::uint32_t attempts = 2;   ///< rounds over all servers, 1..kMaxAttempts
    std::uint32_t ndots = 1;      ///< dots before a name is tried as is first, 0..kMaxNdots
    bool rotate = false;          ///< spread lookups over the servers round-robin
};

/// Replaces *conf with the configuration in the `len` bytes of `text`
/// (which need not be NUL-terminated). Lines are separated by '\n'; '\r',
/// spaces and tabs separate words. Understood, each at the start of a line
/// (leading blanks allowed):
///  - `nameserver ADDR`: IPv4 or IPv6 text (ip_address.h); the first
///    kMaxNameservers that parse are kept. Addresses with a zone id
///    ("fe80::1%eth0") are skipped: there is no interface scope here.
///  - `search D1 D2 ...` and `domain D`: each replaces the whole search list
///    (the last such line wins, as resolv.conf(5) says); up to
///    kMaxSearchDomains domains that pass dns_name_is_valid() are kept,
///    without their trailing dot; others are skipped.
///  - `options` with `timeout:N` (0 counts as 1, more than 30 as 30),
///    `attempts:N` (0 counts as 1, more than 5 as 5), `ndots:N` (more than 15
///    as 15), `rotate`. Other options and malformed numbers are ignored.
/// '#' or ';' starts a comment anywhere on a line (neither can occur in an
/// address or a hostname). Unknown keywords are ignored. Without a usable
/// nameserver line the server is 127.0.0.1. Unlike glibc, no default search
/// domain is derived from the hostname when the file sets none.
void parse_resolv_conf(const char* text, std::size_t len, ResolvConf* conf);

}  // namespace tether::net

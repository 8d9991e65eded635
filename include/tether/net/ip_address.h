// SPDX-License-Identifier: MIT
// IPv4 and IPv6 addresses as plain values, with their text forms.
//
// Parsing and formatting are implemented here rather than with inet_pton and
// inet_ntop so that the rules are the same on glibc and musl, nothing depends
// on the locale, and every branch runs in the host tests.
//
// Example:
//   tether::IpAddress address;
//   if (tether::parse_ip_address("2001:db8::1", 11, &address)) {
//       char text[tether::kIpAddressTextCapacity];
//       tether::format_ip_address(address, text, sizeof text);  // "2001:db8::1"
//   }
#pragma once

#include <cstddef>
#include <cstdint>

namespace tether::net {

inline constexpr std::uint8_t kIpv4 = 4;
inline constexpr std::uint8_t kIpv6 = 6;

/// Buffer size that holds any formatted address and its NUL
/// ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" is 45 characters).
inline constexpr std::size_t kIpAddressTextCapacity = 46;

/// An address in network byte order. For IPv4 only bytes[0..3] are
/// significant; the rest are zero when made by this module.
struct IpAddress {
    std::uint8_t family;     ///< kIpv4 or kIpv6
    std::uint8_t bytes[16];  ///< network byte order
};

/// Same family and the same significant bytes (4 for IPv4, 16 for IPv6).
/// An IPv4 address never equals an IPv6 one, not even its ::ffff:a.b.c.d form.
bool operator==(const IpAddress& a, const IpAddress& b);
inline bool operator!=(const IpAddress& a, const IpAddress& b) {
    return !(a == b);
}

/// The IPv4 address a.b.c.d.
IpAddress make_ipv4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d);

/// Parses exactly `len` bytes of `text` (no NUL needed, none allowed inside):
///  - IPv4: dotted decimal with exactly four parts, each 0..255 written
///    without leading zeros ("0" itself is fine; "01", "1.2.3", "0x1" fail);
///  - IPv6: RFC 4291 section 2.2 text: eight groups of 1..4 hex digits, at
///    most one "::" standing for one or more zero groups, optionally ending
///    in a dotted IPv4 tail ("::ffff:192.0.2.1"). Zone ids ("fe80::1%eth0")
///    and brackets are rejected.
/// Returns true and fills *out on success; returns false and leaves *out
/// untouched otherwise. Surrounding whitespace is not accepted.
bool parse_ip_address(const char* text, std::size_t len, IpAddress* out);

/// Writes the text form and a NUL into `out`: dotted decimal for IPv4; the
/// RFC 5952 canonical form for IPv6 (lowercase, no leading zeros, the longest
/// run of two or more zero groups, the first if tied, as "::", and an
/// IPv4-mapped address as "::ffff:a.b.c.d"). Returns the length without the
/// NUL, or 0 (writing nothing but an empty string when cap >= 1) if `cap`
/// is too small or the family is neither kIpv4 nor kIpv6.
/// kIpAddressTextCapacity is always enough.
std::size_t format_ip_address(const IpAddress& address, char* out, std::size_t cap);

}  // namespace tether::net

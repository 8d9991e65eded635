// SPDX-License-Identifier: MIT
// Name lookup in the text of /etc/hosts (hosts(5)).
//
// The resolver does not read files: the caller looks the name up here first
// and only starts a DNS lookup (tether/net/dns_resolver.h) when this finds
// nothing, the order of "hosts: files dns" in nsswitch.conf.
#pragma once

#include <cstddef>

#include "tether/net/ip_address.h"

namespace tether::net {

/// Looks `name` (NUL-terminated; one trailing dot is ignored) up in the
/// `len` bytes of hosts-file `text`, which need not be NUL-terminated.
///
/// Each line is an address followed by a canonical name and any aliases,
/// separated by blanks; '#' starts a comment anywhere on a line. The name
/// matches the canonical name or any alias, ignoring ASCII case. Lines whose
/// address does not parse as IPv4 or IPv6 text (ip_address.h; zone ids are
/// not supported) are skipped. Every matching line contributes its address,
/// IPv4 and IPv6 alike, in file order; an address already found is not
/// repeated. At most `max` addresses are written to `out`.
///
/// Returns the number of addresses written: 0 when the name is not in the
/// file (or is empty).
std::size_t lookup_hosts(const char* text, std::size_t len, const char* name, IpAddress* out,
                         std::size_t max);

}  // namespace tether::net

// SPDX-License-Identifier: MIT
// Listening sockets for tether-server: non-blocking TCP on an IP literal.
#pragma once

#include <cstdint>
#include <string>

#include "options.h"
#include "tether/net/ip_address.h"

namespace tether::server {

/// Binds and listens on `address` (an IPv4 or IPv6 literal, or "localhost"
/// for 127.0.0.1) with SO_REUSEADDR, non-blocking and close-on-exec. Returns
/// the descriptor and sets *bound_port to the port actually bound; -1 with
/// *error set on failure.
int open_listener(const ListenAddress& address, std::uint16_t* bound_port, std::string* error);

/// Accepts one connection, non-blocking and close-on-exec. -1 when none is
/// waiting or accept failed for a reason that concerns only that peer
/// (*error 0), or for want of a process-wide resource: *error is then its
/// errno (EMFILE, ENFILE, ENOBUFS, ENOMEM), and the connection stays queued.
/// *peer (when not null) gets the connection's source address, *peer_port its port.
int accept_connection(int listener, net::IpAddress* peer, int* error,
                      std::uint16_t* peer_port = nullptr);

/// Makes `fd` non-blocking and close-on-exec.
void set_nonblocking(int fd);

}  // namespace tether::server

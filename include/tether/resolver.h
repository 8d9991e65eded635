// SPDX-License-Identifier: MIT
// Name resolution as the client sees it: started, polled, never waited on.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/net/ip_address.h"
#include "tether/time.h"

namespace tether {

enum class ResolveStatus : std::uint8_t {
    kPending,    ///< still under way: poll fd() for read, or call again at next_deadline()
    kDone,       ///< addresses() holds at least one address
    kNameError,  ///< the name does not exist (NXDOMAIN for every candidate)
    kFailed,     ///< no server answered, or answers were unusable
};

const char* to_string(ResolveStatus status);

class NameResolver {
  public:
    virtual ~NameResolver() = default;

    /// Starts resolving `host` (a name, or an IPv4/IPv6 literal which
    /// resolves at once). Abandons any lookup in progress. `host` must stay
    /// valid until the lookup ends.
    virtual ResolveStatus start(const char* host, TimeMs now, std::uint32_t random) = 0;

    /// Advances the lookup: reads replies that arrived, handles timeouts.
    virtual ResolveStatus poll(TimeMs now, std::uint32_t random) = 0;

    /// After kDone: copies up to `max` addresses, in the order to try them.
    virtual std::size_t addresses(net::IpAddress* out, std::size_t max) const = 0;

    /// Abandons the lookup and releases its sockets.
    virtual void cancel() = 0;

    /// Descriptors to poll for read while kPending (at most kMaxFds); returns the count.
    static constexpr std::size_t kMaxFds = 2;
    virtual std::size_t fds(int* out, std::size_t max) const = 0;

    /// While kPending: when poll() must be called even without a reply.
    virtual TimeMs next_deadline() const = 0;
};

}  // namespace tether

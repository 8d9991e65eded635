// SPDX-License-Identifier: MIT
// What a poll loop drives: anything that names the descriptors it waits on,
// its next deadline, and does all its work without blocking in service().
// tether::Client and tether::DurableLink are Pollables; port::PollLoop runs
// any number of them on one thread.
#pragma once

#include <cstddef>

#include "tether/resolver.h"
#include "tether/time.h"

namespace tether {

/// What the loop must poll one descriptor for.
struct PollRequest {
    int fd;
    bool read;
    bool write;
};

class Pollable {
  public:
    /// The most descriptors one Pollable asks for: a connection, a lookup's,
    /// and one helper (a credentials command's pipe).
    static constexpr std::size_t kMaxPollRequests = 2 + NameResolver::kMaxFds;

    virtual ~Pollable() = default;
    /// Writes the descriptors to poll into `out`; returns how many (<= max).
    virtual std::size_t poll_requests(PollRequest* out, std::size_t max) const = 0;
    /// When service() must run even if no descriptor is ready; false when never.
    virtual bool next_deadline(TimeMs* at) const = 0;
    /// Bytes already read (TLS plaintext): the loop must not block in poll() while true.
    virtual bool has_buffered_input() const = 0;
    /// Does every piece of work possible at `now` without blocking.
    virtual void service(TimeMs now) = 0;
};

}  // namespace tether

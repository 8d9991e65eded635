// SPDX-License-Identifier: MIT
// AcceptBackoff: how long tether-server stops accepting connections after
// accept() failed for want of a process-wide resource (EMFILE, ENFILE,
// ENOBUFS, ENOMEM).
//
// Such a failure leaves the connection in the listen queue, so the listener
// stays readable: polling it again at once spins the loop at 100% CPU and
// starves the connections already open. Instead the server stops polling its
// listeners for a delay that starts at `initial_ms` and doubles with each
// failure up to `max_ms`, and starts over once an accept succeeds. The waiting
// connections stay queued (the kernel's backlog) until descriptors are free.
//
// A run of failures without a success in between is one episode: the caller
// logs its start once (on_failure() returns true) and counts every pause.
// No clock: time comes in as `now` (tether::TimeMs, wrap-around safe).
//
// Example (the server loop):
//   if (!backoff.paused(now)) poll the listeners;
//   accept: ok -> backoff.on_success();
//           EMFILE -> if (backoff.on_failure(now)) log "accept_backoff";
//   poll timeout <= backoff.wait_ms(now)
#pragma once

#include <cstdint>

#include "tether/time.h"

namespace tether::server {

struct AcceptBackoffConfig {
    std::uint32_t initial_ms = 10;  ///< first pause of an episode, >= 1
    std::uint32_t max_ms = 1000;    ///< pauses never get longer, >= initial_ms
};

class AcceptBackoff {
  public:
    /// `config` out of its documented ranges is clamped into them.
    explicit AcceptBackoff(const AcceptBackoffConfig& config = AcceptBackoffConfig{});

    /// accept() failed for a process-wide reason at `now`: pause. Returns
    /// true when this failure starts an episode.
    bool on_failure(TimeMs now);

    /// accept() succeeded: the episode (if any) is over; the next one starts
    /// at initial_ms again.
    void on_success();

    /// True while the listeners must not be polled.
    bool paused(TimeMs now) const;

    /// Milliseconds until the pause ends (0 when not paused).
    std::uint32_t wait_ms(TimeMs now) const;

    /// True between the failure that started an episode and the next success.
    bool in_episode() const { return in_episode_; }
    /// The pause the last failure started (0 outside an episode).
    std::uint32_t last_pause_ms() const { return in_episode_ ? last_pause_ms_ : 0; }

  private:
    AcceptBackoffConfig config_;
    bool in_episode_ = false;
    bool pausing_ = false;
    std::uint32_t last_pause_ms_ = 0;
    TimeMs resume_at_ = 0;
};

}  // namespace tether::server

// An ordered list of endpoints with a circuit breaker each.
//
// Endpoints are tried in priority order, primary first. Each has a breaker:
// closed (usable); open after `failure_threshold` consecutive failures or one
// overload signal (503, 429, close 1012/1013), for a cool-down that grows with
// each re-opening and is never shorter than the server's Retry-After; then
// half-open, letting exactly one probe through. A successful connection
// closes the breaker. The pool holds indices and counters only; URLs live
// with the caller.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/status.h"
#include "tether/time.h"

namespace tether {

enum class BreakerState : std::uint8_t { kClosed, kOpen, kHalfOpen };

const char* to_string(BreakerState state);

struct EndpointPoolConfig {
    std::uint32_t failure_threshold = 3;     ///< consecutive failures that open the breaker; >= 1
    std::uint32_t cooldown_ms = 30000;       ///< first open period; >= 1
    std::uint32_t max_cooldown_ms = 300000;  ///< cool-down doubles on each re-open up to this
    /// While online on a lower-priority endpoint, how long before the client
    /// goes back to check a recovered higher-priority one. 0 = only on the next reconnect.
    std::uint32_t return_to_primary_after_ms = 300000;
};

Status validate(const EndpointPoolConfig& config);

/// The answer to "where should the next attempt go?".
struct EndpointSelection {
    bool available;       ///< false when every breaker is open
    std::uint8_t index;   ///< the endpoint to try, when available
    TimeMs available_at;  ///< when !available: the earliest time one will admit a probe
};

class EndpointPool {
  public:
    static constexpr std::size_t kMaxEndpoints = 8;

    /// `count` must be 1..kMaxEndpoints (clamped otherwise); `config` must pass validate().
    EndpointPool(const EndpointPoolConfig& config, std::size_t count);

    /// The highest-priority endpoint whose breaker admits an attempt at `now`.
    /// An open breaker whose cool-down has passed turns half-open and admits
    /// this one probe; a half-open endpoint with its probe out admits nothing.
    EndpointSelection select(TimeMs now);

    /// The attempt on `index` reached the open WebSocket (and resumed, in tether.v1 mode).
    void record_success(std::uint8_t index);

    /// The attempt on `index` failed. `open_now` opens the breaker whatever
    /// the count; `hold_ms` (a Retry-After) lengthens the cool-down to at least that.
    void record_failure(std::uint8_t index, TimeMs now, bool open_now, std::uint32_t hold_ms);

    /// The attempt on `index` was abandoned (stop requested): releases a half-open probe.
    void release(std::uint8_t index);

    /// True when an endpoint of higher priority than `current` would admit an attempt at `now`.
    bool higher_priority_available(std::uint8_t current, TimeMs now) const;

    std::size_t size() const { return count_; }
    BreakerState state(std::uint8_t index) const;
    std::uint32_t consecutive_failures(std::uint8_t index) const;
    const EndpointPoolConfig& config() const { return config_; }

  private:
    struct Endpoint {
        BreakerState state = BreakerState::kClosed;
        bool probe_out = false;
        std::uint32_t failures = 0;
        std::uint32_t opened_count = 0;  // consecutive openings, drives the growing cool-down
        TimeMs open_until = 0;
    };

    EndpointPoolConfig config_;
    std::size_t count_;
    Endpoint endpoints_[kMaxEndpoints];
};

}  // namespace tether

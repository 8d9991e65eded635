// SPDX-License-Identifier: MIT
// An ordered list of endpoints with a circuit breaker each.
//
// Endpoints are tried in priority order, primary first. Each has a breaker:
// closed (usable); open after `failure_threshold` consecutive failures or one
// overload signal (503, 429, close 1012/1013), for a cool-down that grows with
// each re-opening and is never shorter than the server's Retry-After; then
// half-open, letting exactly one probe through. A successful connection
// closes the breaker. The pool holds indices and counters only; URLs live
// with the caller.
//
// Every cool-down (including a Retry-After hold) is clamped to
// kMaxIntervalMs / 2, so a deadline never lies further ahead than the
// wrap-safe comparisons of tether/time.h can see. Indices >= size() are
// ignored by every mutating call and read as a closed breaker with no
// failures.
//
// Example:
//   tether::EndpointPool pool(tether::EndpointPoolConfig{}, url_count);
//   tether::EndpointSelection next = pool.select(now);
//   if (!next.available) { arm_timer(next.available_at); return; }
//   connect(urls[next.index]);
//   ... on open:    pool.record_success(next.index);
//   ... on failure: pool.record_failure(next.index, now, status == 503, retry_after_ms);
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/status.h"
#include "tether/time.h"

namespace tether {

enum class BreakerState : std::uint8_t { kClosed, kOpen, kHalfOpen };

/// "closed", "open", "half_open"; "unknown" for any other value.
const char* to_string(BreakerState state);

struct EndpointPoolConfig {
    std::uint32_t failure_threshold = 3;     ///< consecutive failures that open the breaker; >= 1
    std::uint32_t cooldown_ms = 30000;       ///< first open period; >= 1
    std::uint32_t max_cooldown_ms = 300000;  ///< cool-down doubles on each re-open up to this
    /// While online on a lower-priority endpoint, how long before the client
    /// goes back to check a recovered higher-priority one. 0 = only on the next reconnect.
    std::uint32_t return_to_primary_after_ms = 300000;
};

/// Upper bound of every configured duration in EndpointPoolConfig: one day.
inline constexpr std::uint32_t kMaxEndpointPoolDurationMs = 24u * 60u * 60u * 1000u;

/// kOk, or kInvalidArgument when failure_threshold or cooldown_ms is 0,
/// max_cooldown_ms < cooldown_ms, or any duration (cooldown_ms,
/// max_cooldown_ms, return_to_primary_after_ms) exceeds kMaxEndpointPoolDurationMs.
Status validate(const EndpointPoolConfig& config);

/// The answer to "where should the next attempt go?".
struct EndpointSelection {
    bool available;      ///< false when no breaker admits an attempt
    std::uint8_t index;  ///< the endpoint to try, when available (0 otherwise)
    /// When !available: the earliest time an endpoint will admit an attempt
    /// (the end of a cool-down, or of a Retry-After hold). A half-open breaker
    /// with its probe out has no deadline of its own (it waits for that
    /// probe's outcome), so when every breaker is in that state this is
    /// `now`: ask again once a probe reports. `now` when available.
    TimeMs available_at;
};

class EndpointPool {
  public:
    static constexpr std::size_t kMaxEndpoints = 8;

    /// `count` must be 1..kMaxEndpoints (clamped otherwise); `config` must
    /// pass validate(). An invalid config is clamped into the documented
    /// ranges (threshold and cool-down at least 1, durations at most one day,
    /// max_cooldown_ms at least cooldown_ms). Every breaker starts closed.
    EndpointPool(const EndpointPoolConfig& config, std::size_t count);

    /// The highest-priority endpoint whose breaker admits an attempt at `now`,
    /// walking from index 0. A closed breaker admits every attempt. An open
    /// breaker whose cool-down has passed turns half-open and admits this one
    /// probe; a half-open breaker whose probe was released admits the next
    /// one; a half-open breaker with its probe out admits nothing.
    /// An endpoint held by a Retry-After admits nothing until the hold ends.
    EndpointSelection select(TimeMs now);

    /// What to try when select() finds nothing. Breakers choose *where* the
    /// next attempt goes; the backoff chooses *when*. So the highest-priority
    /// endpoint that is not held by a Retry-After (and has no probe out) is
    /// chosen anyway, as a probe: a device with one endpoint, or with every
    /// endpoint failing, keeps the backoff's pace instead of the breakers'
    /// longer cool-downs. Only a server's Retry-After is a hard floor: when
    /// every endpoint is held, `available` is false and `available_at` is
    /// the end of the first hold.
    EndpointSelection select_fallback(TimeMs now);

    /// The attempt on `index` reached the open WebSocket (and resumed, in
    /// tether.v1 mode): the breaker closes, its failure count and its
    /// cool-down growth start again from zero.
    void record_success(std::uint8_t index);

    /// The attempt on `index` failed at `now`; counts one consecutive failure.
    /// - closed: opens when `open_now` (an overload signal) or when the count
    ///   reaches failure_threshold;
    /// - half-open: the probe failed, so the breaker opens again;
    /// - already open: stays open; a non-zero `hold_ms` pushes the end of
    ///   the cool-down to at least now + hold_ms.
    /// A non-zero `hold_ms` (the server's Retry-After) also holds the
    /// endpoint: select() will not choose it before now + hold_ms, whatever
    /// its breaker state.
    /// Each opening lasts max(hold_ms, cooldown_ms * 2^(openings - 1) capped at
    /// max_cooldown_ms), where `openings` counts openings since the last
    /// success, and at most kMaxIntervalMs / 2.
    void record_failure(std::uint8_t index, TimeMs now, bool open_now, std::uint32_t hold_ms);

    /// The attempt on `index` was abandoned (stop requested): releases a
    /// half-open probe without counting anything, so the breaker stays
    /// half-open and admits the next attempt. No effect in any other state.
    void release(std::uint8_t index);

    /// True when an endpoint of higher priority (lower index) than `current`
    /// would admit an attempt at `now`: it is not held by a Retry-After and
    /// is closed, open with its cool-down over, or half-open without a probe
    /// out. Changes nothing.
    bool higher_priority_available(std::uint8_t current, TimeMs now) const;

    /// Re-anchors every open breaker whose cool-down is over at `now`, and
    /// ends every hold that has passed, so it
    /// keeps reading as over however long the pool then goes untouched.
    /// Deadlines are 32-bit (tether/time.h): an expired cool-down that nothing
    /// looks at for more than kMaxIntervalMs (24.8 days) would otherwise read
    /// as pending again. Call it from a periodic housekeeping tick (once a day
    /// is plenty) while connected for long periods. Changes no state,
    /// counter or selection result.
    void refresh(TimeMs now);

    std::size_t size() const { return count_; }
    /// kClosed for an index >= size().
    BreakerState state(std::uint8_t index) const;
    /// True while a Retry-After holds `index` at `now`; false for an index >= size().
    bool held(std::uint8_t index, TimeMs now) const;
    /// 0 for an index >= size(). Saturates, never wraps.
    std::uint32_t consecutive_failures(std::uint8_t index) const;
    const EndpointPoolConfig& config() const { return config_; }

  private:
    bool admits(std::size_t index, TimeMs now) const;
    bool hold_passed(std::size_t index, TimeMs now) const;
    bool next_admission(std::size_t index, TimeMs now, TimeMs* at) const;
    EndpointSelection take(std::size_t index, TimeMs now);
    void open(std::size_t index, TimeMs now, std::uint32_t hold_ms);

    struct Endpoint {
        BreakerState state = BreakerState::kClosed;
        bool probe_out = false;
        std::uint32_t failures = 0;
        std::uint32_t opened_count = 0;  // consecutive openings, drives the growing cool-down
        TimeMs open_until = 0;
        bool held = false;  // a Retry-After: not to be chosen before hold_until
        TimeMs hold_until = 0;
    };

    EndpointPoolConfig config_;
    std::size_t count_;
    Endpoint endpoints_[kMaxEndpoints];
};

}  // namespace tether

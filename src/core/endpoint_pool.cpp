// SPDX-License-Identifier: MIT
#include "tether/endpoint_pool.h"

#include <cstdint>

namespace tether {
namespace {

// The longest a breaker stays open. Half the wrap-safe range, so an
// open_until set at `t` is never more than 2^30 ms ahead of `t` and a
// comparison against it stays correct for a long while after it expires.
constexpr std::uint32_t kMaxOpenMs = kMaxIntervalMs / 2u;

constexpr std::uint32_t clamp(std::uint32_t value, std::uint32_t low, std::uint32_t high) {
    return value < low ? low : (value > high ? high : value);
}

constexpr std::uint32_t saturating_increment(std::uint32_t value) {
    return value == UINT32_MAX ? value : value + 1u;
}

EndpointPoolConfig clamped(const EndpointPoolConfig& config) {
    EndpointPoolConfig out = config;
    if (out.failure_threshold == 0u) {
        out.failure_threshold = 1u;
    }
    out.cooldown_ms = clamp(out.cooldown_ms, 1u, kMaxEndpointPoolDurationMs);
    out.max_cooldown_ms = clamp(out.max_cooldown_ms, out.cooldown_ms, kMaxEndpointPoolDurationMs);
    out.return_to_primary_after_ms =
        clamp(out.return_to_primary_after_ms, 0u, kMaxEndpointPoolDurationMs);
    return out;
}

std::size_t clamped_count(std::size_t count) {
    if (count == 0u) {
        return 1u;
    }
    return count > EndpointPool::kMaxEndpoints ? EndpointPool::kMaxEndpoints : count;
}

// cooldown * 2^(openings - 1), capped; `openings` >= 1 because it counts the
// opening being computed. The shift is done in 64 bits and only for exponents
// that cannot overflow; anything larger is past the cap anyway (cooldown >= 1
// and the cap is below 2^32).
std::uint32_t grown_cooldown(const EndpointPoolConfig& config, std::uint32_t openings) {
    const std::uint32_t exponent = openings - 1u;
    if (exponent >= 32u) {
        return config.max_cooldown_ms;
    }
    const std::uint64_t grown = static_cast<std::uint64_t>(config.cooldown_ms) << exponent;
    return grown > config.max_cooldown_ms ? config.max_cooldown_ms
                                          : static_cast<std::uint32_t>(grown);
}

}  // namespace

const char* to_string(BreakerState state) {
    switch (state) {
        case BreakerState::kClosed:
            return "closed";
        case BreakerState::kOpen:
            return "open";
        case BreakerState::kHalfOpen:
            return "half_open";
    }
    return "unknown";
}

Status validate(const EndpointPoolConfig& config) {
    if (config.failure_threshold == 0u || config.cooldown_ms == 0u ||
        config.max_cooldown_ms < config.cooldown_ms ||
        config.max_cooldown_ms > kMaxEndpointPoolDurationMs ||
        config.return_to_primary_after_ms > kMaxEndpointPoolDurationMs) {
        return Status::kInvalidArgument;
    }
    return Status::kOk;
}

EndpointPool::EndpointPool(const EndpointPoolConfig& config, std::size_t count)
    : config_(clamped(config)), count_(clamped_count(count)) {}

// Whether endpoint `index` would take an attempt at `now`, without turning an
// expired open breaker half-open. Shared by select() and the const
// higher_priority_available() so the two can never disagree.
bool EndpointPool::admits(std::size_t index, TimeMs now) const {
    const Endpoint& endpoint = endpoints_[index];
    if (!hold_passed(index, now)) {
        return false;
    }
    if (endpoint.state == BreakerState::kOpen) {
        return time_reached(now, endpoint.open_until);
    }
    return endpoint.state == BreakerState::kClosed || !endpoint.probe_out;
}

bool EndpointPool::hold_passed(std::size_t index, TimeMs now) const {
    const Endpoint& endpoint = endpoints_[index];
    return !endpoint.held || time_reached(now, endpoint.hold_until);
}

bool EndpointPool::held(std::uint8_t index, TimeMs now) const {
    return index < count_ && !hold_passed(index, now);
}

EndpointSelection EndpointPool::take(std::size_t index, TimeMs now) {
    Endpoint& endpoint = endpoints_[index];
    if (endpoint.state != BreakerState::kClosed) {
        endpoint.state = BreakerState::kHalfOpen;
        endpoint.probe_out = true;
    }
    return EndpointSelection{true, static_cast<std::uint8_t>(index), now};
}

bool EndpointPool::next_admission(std::size_t index, TimeMs now, TimeMs* at) const {
    const Endpoint& endpoint = endpoints_[index];
    const bool held = !hold_passed(index, now);
    if (endpoint.state == BreakerState::kOpen) {
        *at = held && time_reached(endpoint.hold_until, endpoint.open_until) ? endpoint.hold_until
                                                                             : endpoint.open_until;
        return true;
    }
    if (held) {
        *at = endpoint.hold_until;
        return true;
    }
    return false;
}

EndpointSelection EndpointPool::select(TimeMs now) {
    bool any_known = false;
    TimeMs earliest = now;
    for (std::size_t i = 0; i < count_; ++i) {
        if (admits(i, now)) {
            return take(i, now);
        }
        TimeMs at = 0;
        if (next_admission(i, now, &at)) {
            earliest = any_known ? time_earliest(earliest, at) : at;
            any_known = true;
        }
    }
    return EndpointSelection{false, 0u, earliest};
}

EndpointSelection EndpointPool::select_fallback(TimeMs now) {
    bool any_held = false;
    TimeMs earliest = now;
    for (std::size_t i = 0; i < count_; ++i) {
        const Endpoint& endpoint = endpoints_[i];
        if (!hold_passed(i, now)) {
            earliest =
                any_held ? time_earliest(earliest, endpoint.hold_until) : endpoint.hold_until;
            any_held = true;
        } else if (endpoint.state == BreakerState::kClosed || !endpoint.probe_out) {
            return take(i, now);
        }
    }
    return EndpointSelection{false, 0u, earliest};
}

void EndpointPool::record_success(std::uint8_t index) {
    if (index >= count_) {
        return;
    }
    endpoints_[index] = Endpoint{};
}

void EndpointPool::open(std::size_t index, TimeMs now, std::uint32_t hold_ms) {
    Endpoint& endpoint = endpoints_[index];
    endpoint.opened_count = saturating_increment(endpoint.opened_count);
    const std::uint32_t grown = grown_cooldown(config_, endpoint.opened_count);
    const std::uint32_t period = clamp(hold_ms > grown ? hold_ms : grown, 0u, kMaxOpenMs);
    endpoint.state = BreakerState::kOpen;
    endpoint.probe_out = false;
    endpoint.open_until = now + period;
}

void EndpointPool::record_failure(std::uint8_t index, TimeMs now, bool open_now,
                                  std::uint32_t hold_ms) {
    if (index >= count_) {
        return;
    }
    Endpoint& endpoint = endpoints_[index];
    endpoint.failures = saturating_increment(endpoint.failures);
    if (hold_ms != 0u) {
        const TimeMs until = now + clamp(hold_ms, 1u, kMaxOpenMs);
        if (!endpoint.held || time_reached(until, endpoint.hold_until)) {
            endpoint.hold_until = until;
        }
        endpoint.held = true;
    }
    if (endpoint.state == BreakerState::kOpen) {
        // Attempts on an open breaker only count; a Retry-After still extends the hold.
        if (hold_ms != 0u) {
            const TimeMs held_until = now + clamp(hold_ms, 1u, kMaxOpenMs);
            if (time_reached(held_until, endpoint.open_until)) {
                endpoint.open_until = held_until;
            }
        }
        return;
    }
    // Half-open: the probe (or, after a release, the next attempt) failed.
    if (endpoint.state == BreakerState::kHalfOpen || open_now ||
        endpoint.failures >= config_.failure_threshold) {
        open(index, now, hold_ms);
    }
}

void EndpointPool::release(std::uint8_t index) {
    if (index >= count_ || endpoints_[index].state != BreakerState::kHalfOpen) {
        return;
    }
    endpoints_[index].probe_out = false;
}

bool EndpointPool::higher_priority_available(std::uint8_t current, TimeMs now) const {
    for (std::size_t i = 0; i < current && i < count_; ++i) {
        if (admits(i, now)) {
            return true;
        }
    }
    return false;
}

void EndpointPool::refresh(TimeMs now) {
    for (std::size_t i = 0; i < count_; ++i) {
        Endpoint& endpoint = endpoints_[i];
        if (endpoint.state == BreakerState::kOpen && time_reached(now, endpoint.open_until)) {
            endpoint.open_until = now;
        }
        if (endpoint.held && time_reached(now, endpoint.hold_until)) {
            endpoint.held = false;
        }
    }
}

BreakerState EndpointPool::state(std::uint8_t index) const {
    return index < count_ ? endpoints_[index].state : BreakerState::kClosed;
}

std::uint32_t EndpointPool::consecutive_failures(std::uint8_t index) const {
    return index < count_ ? endpoints_[index].failures : 0u;
}

}  // namespace tether

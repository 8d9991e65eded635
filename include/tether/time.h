// SPDX-License-Identifier: MIT
// Monotonic milliseconds as the core sees them.
//
// The core never reads a clock: every function that needs the time takes
// `now` as an argument. Time is a 32-bit unsigned millisecond counter that is
// allowed to wrap (every 49.7 days); deadlines are compared by signed
// difference, so wrap-around is harmless as long as no interval exceeds
// kMaxIntervalMs (about 24.8 days). Nothing here depends on wall-clock time,
// which a Raspberry Pi without a real-time clock does not have after a reboot.
#pragma once

#include <cstdint>

namespace tether {

using TimeMs = std::uint32_t;

/// The longest interval a deadline may lie ahead of `now`.
inline constexpr std::uint32_t kMaxIntervalMs = 0x7FFFFFFFu;

/// True when `deadline` is at or before `now`, across wrap-around.
constexpr bool time_reached(TimeMs now, TimeMs deadline) {
    return static_cast<std::int32_t>(now - deadline) >= 0;
}

/// Milliseconds from `now` until `deadline`; 0 once it has been reached.
constexpr std::uint32_t time_until(TimeMs now, TimeMs deadline) {
    return time_reached(now, deadline) ? 0u : deadline - now;
}

/// Milliseconds elapsed since `since` (which must not lie in the future).
constexpr std::uint32_t time_since(TimeMs now, TimeMs since) {
    return now - since;
}

/// The earlier of two deadlines, across wrap-around.
constexpr TimeMs time_earliest(TimeMs a, TimeMs b) {
    return time_reached(b, a) ? a : b;
}

}  // namespace tether

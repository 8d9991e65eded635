// SPDX-License-Identifier: MIT
// Write generations of the A/B-slot records (state record, device-state
// record, spool header): one counter rule for all of them.
#pragma once

#include <cstdint>

namespace tether {

/// True when generation `a` was written after `b`. The signed difference
/// keeps this right across the wrap from 0xFFFFFFFF (two slots are never more
/// than a few saves apart).
inline bool generation_is_newer(std::uint32_t a, std::uint32_t b) {
    return static_cast<std::int32_t>(a - b) > 0;
}

/// The generation after `generation`. 0 means "none", so the count wraps
/// from 0xFFFFFFFF to 1.
inline std::uint32_t next_generation(std::uint32_t generation) {
    return generation == 0xFFFFFFFFu ? 1u : generation + 1u;
}

}  // namespace tether

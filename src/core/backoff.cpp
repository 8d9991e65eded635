// SPDX-License-Identifier: MIT
#include "tether/backoff.h"

#include <cstring>

#include "tether/time.h"

namespace tether {
namespace {

constexpr std::uint32_t kPermille = 1000;
constexpr JitterMode kLastJitterMode = JitterMode::kDecorrelated;
static_assert(static_cast<std::size_t>(kLastJitterMode) + 1u == kJitterModeCount,
              "kJitterModeCount counts every mode");

bool is_known_jitter_mode(JitterMode mode) {
    return static_cast<std::uint8_t>(mode) <= static_cast<std::uint8_t>(kLastJitterMode);
}

// A value in [lo, hi] from a uniform 32-bit random value. Scaling by the
// span and keeping the high 32 bits avoids the bias of `random % span`; the
// span is at most 3 * kMaxBackoffDelayMs + 1, so the product fits in 64 bits.
std::uint32_t uniform(std::uint32_t lo, std::uint32_t hi, std::uint32_t random) {
    const std::uint64_t span = static_cast<std::uint64_t>(hi) - lo + 1u;
    return lo + static_cast<std::uint32_t>((static_cast<std::uint64_t>(random) * span) >> 32);
}

BackoffConfig clamp_into_range(const BackoffConfig& config) {
    BackoffConfig clamped = config;
    if (clamped.initial_delay_ms < 1u) {
        clamped.initial_delay_ms = 1u;
    }
    if (clamped.initial_delay_ms > kMaxBackoffDelayMs) {
        clamped.initial_delay_ms = kMaxBackoffDelayMs;
    }
    if (clamped.max_delay_ms < clamped.initial_delay_ms) {
        clamped.max_delay_ms = clamped.initial_delay_ms;
    }
    if (clamped.max_delay_ms > kMaxBackoffDelayMs) {
        clamped.max_delay_ms = kMaxBackoffDelayMs;
    }
    if (clamped.multiplier_permille < kPermille) {
        clamped.multiplier_permille = kPermille;
    }
    if (!is_known_jitter_mode(clamped.jitter)) {
        clamped.jitter = BackoffConfig{}.jitter;
    }
    if (clamped.healthy_after_ms > kMaxIntervalMs) {
        clamped.healthy_after_ms = kMaxIntervalMs;
    }
    return clamped;
}

}  // namespace

const char* to_string(JitterMode mode) {
    switch (mode) {
        case JitterMode::kNone:
            return "none";
        case JitterMode::kFull:
            return "full";
        case JitterMode::kEqual:
            return "equal";
        case JitterMode::kDecorrelated:
            return "decorrelated";
    }
    return "unknown";
}

bool parse_jitter_mode(const char* text, JitterMode* mode) {
    if (text == nullptr || mode == nullptr) {
        return false;
    }
    for (std::size_t i = 0; i < kJitterModeCount; ++i) {
        const auto candidate = static_cast<JitterMode>(i);
        if (std::strcmp(text, to_string(candidate)) == 0) {
            *mode = candidate;
            return true;
        }
    }
    return false;
}

Status validate(const BackoffConfig& config) {
    const bool valid = config.initial_delay_ms >= 1u && config.multiplier_permille >= kPermille &&
                       config.max_delay_ms >= config.initial_delay_ms &&
                       config.max_delay_ms <= kMaxBackoffDelayMs &&
                       is_known_jitter_mode(config.jitter) &&
                       config.healthy_after_ms <= kMaxIntervalMs;
    return valid ? Status::kOk : Status::kInvalidArgument;
}

Backoff::Backoff(const BackoffConfig& config)
    : config_(clamp_into_range(config)), previous_delay_ms_(config_.initial_delay_ms) {}

void Backoff::record_attempt() {
    if (attempts_ != UINT32_MAX) {
        ++attempts_;
    }
}

BackoffStep Backoff::next(std::uint32_t random) {
    if (config_.max_attempts != 0u && attempts_ >= config_.max_attempts) {
        return BackoffStep{true, 0u};
    }
    if (attempts_ == 0u) {
        return BackoffStep{false, 0u};
    }
    const std::uint32_t base = base_delay(attempts_);
    std::uint32_t delay = base;
    switch (config_.jitter) {
        case JitterMode::kNone:
            break;
        case JitterMode::kFull:
            delay = uniform(0u, base, random);
            break;
        case JitterMode::kEqual:
            delay = base / 2u + uniform(0u, base - base / 2u, random);
            break;
        case JitterMode::kDecorrelated: {
            // previous_delay_ms_ >= initial always holds, so the range is never
            // empty; 3 * previous fits easily because previous <= cap <= one day.
            const std::uint32_t drawn =
                uniform(config_.initial_delay_ms, 3u * previous_delay_ms_, random);
            delay = drawn < config_.max_delay_ms ? drawn : config_.max_delay_ms;
            previous_delay_ms_ = delay;
            break;
        }
    }
    return BackoffStep{false, delay};
}

// Grows the delay one attempt at a time, rounding each step down to whole
// milliseconds, and stops as soon as the cap is reached or a step no longer
// changes the value (a multiplier so close to 1.0 that the rounding absorbs
// it). With every multiplier > x1.0 that still grows, the value passes the
// one-day cap after at most about 12,000 steps (x1.001 from 1 s), so a huge
// attempt count never means a huge loop. The operands stay below the cap
// (< 2^27) and the multiplier (< 2^32), so the product fits in 64 bits.
std::uint32_t Backoff::base_delay(std::uint32_t attempts) const {
    if (attempts == 0u) {
        return 0u;
    }
    const std::uint64_t cap = config_.max_delay_ms;
    std::uint64_t delay = config_.initial_delay_ms;
    for (std::uint32_t step = 1u; step < attempts && delay < cap; ++step) {
        const std::uint64_t grown = delay * config_.multiplier_permille / kPermille;
        if (grown == delay) {
            break;
        }
        delay = grown;
    }
    return static_cast<std::uint32_t>(delay < cap ? delay : cap);
}

void Backoff::reset() {
    attempts_ = 0u;
    previous_delay_ms_ = config_.initial_delay_ms;
}

void Backoff::restore(std::uint32_t attempts) {
    attempts_ = attempts;
    // base_delay() >= initial for every attempts >= 1; attempts == 0 is a
    // fresh start, where decorrelated jitter remembers the initial delay.
    previous_delay_ms_ = attempts == 0u ? config_.initial_delay_ms : base_delay(attempts);
}

}  // namespace tether

// SPDX-License-Identifier: MIT
// Exponential backoff with jitter, free of clocks and randomness.
//
// The caller passes a uniformly distributed 32-bit random value into every
// call that needs one, so tests are exact and the port decides where entropy
// comes from (the mbedTLS DRBG). The attempt counter is plain data that the
// caller persists, so a device in a crash or reboot loop keeps backing off
// instead of starting again at the initial delay.
//
// Example:
//   tether::Backoff backoff(tether::BackoffConfig{});
//   backoff.record_attempt();                    // an attempt starts
//   tether::BackoffStep step = backoff.next(random_u32());
//   if (step.give_up) { report_given_up(); } else { arm_timer(now + step.delay_ms); }
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/status.h"

namespace tether {

/// How the exponential delay d is spread over time.
enum class JitterMode : std::uint8_t {
    kNone,          ///< exactly d
    kFull,          ///< uniform in [0, d]
    kEqual,         ///< d/2 + uniform in [0, d/2]
    kDecorrelated,  ///< min(cap, uniform in [initial, 3 * previous delay])  (the AWS variant)
};

/// How many modes there are: JitterMode values are 0..kJitterModeCount - 1, so
/// a caller can list every name with to_string(static_cast<JitterMode>(i)).
inline constexpr std::size_t kJitterModeCount = 4;

/// "none", "full", "equal", "decorrelated"; "unknown" for any other value.
const char* to_string(JitterMode mode);
/// Parses the names above; returns false (leaving *mode alone) for anything else.
bool parse_jitter_mode(const char* text, JitterMode* mode);

/// Upper bound of every backoff delay: one day, well inside the 24.8-day
/// deadline range of TimeMs.
inline constexpr std::uint32_t kMaxBackoffDelayMs = 24u * 60u * 60u * 1000u;

struct BackoffConfig {
    std::uint32_t initial_delay_ms = 1000;     ///< delay after the first failure; >= 1
    std::uint32_t multiplier_permille = 2000;  ///< growth per attempt, 2000 = x2.0; >= 1000
    std::uint32_t max_delay_ms = 32000;        ///< the cap; initial <= cap <= kMaxBackoffDelayMs
    JitterMode jitter = JitterMode::kFull;
    std::uint32_t max_attempts = 0;  ///< consecutive attempts before giving up; 0 = forever
    /// A connection up this long resets the attempts and ends the failure
    /// streak (its one immediate credential refresh); <= kMaxIntervalMs (a
    /// TimeMs deadline). 0 counts every opened link as healthy at once, so a
    /// server that closes each link right after opening it is then retried at
    /// the first delay forever: keep it above the time such a close takes.
    std::uint32_t healthy_after_ms = 10000;
};

/// kOk, or kInvalidArgument when a field is outside the range documented above.
Status validate(const BackoffConfig& config);

/// What to do before the next connection attempt.
struct BackoffStep {
    bool give_up;            ///< max_attempts consecutive attempts have failed
    std::uint32_t delay_ms;  ///< wait this long first (0 when give_up)
};

class Backoff {
  public:
    /// `config` must pass validate(); an invalid one is clamped into range
    /// (each field to its nearest bound, initial before the cap; an unknown
    /// jitter mode becomes kFull).
    explicit Backoff(const BackoffConfig& config);

    /// Counts one connection attempt that has started. Saturates, never wraps.
    void record_attempt();

    /// The delay before the next attempt, given the attempts counted so far:
    /// 0 when none has been counted, otherwise the exponential delay for the
    /// latest attempt with jitter drawn from `random`. Gives up once
    /// max_attempts (if non-zero) attempts have been counted.
    BackoffStep next(std::uint32_t random);

    /// The delay without jitter that follows `attempts` failed attempts:
    /// min(cap, initial * multiplier^(attempts - 1)); 0 for attempts == 0.
    /// Integer arithmetic: each multiplication by multiplier/1000 rounds down
    /// to whole milliseconds. Never overflows, whatever `attempts` is.
    std::uint32_t base_delay(std::uint32_t attempts) const;

    /// A connection stayed healthy for healthy_after_ms: start again at the
    /// initial delay (attempts 0; decorrelated jitter forgets its previous delay).
    void reset();

    /// Restores the counter persisted by an earlier run. Decorrelated jitter
    /// continues from base_delay(attempts) (the initial delay for 0).
    void restore(std::uint32_t attempts);

    std::uint32_t attempts() const { return attempts_; }
    const BackoffConfig& config() const { return config_; }

  private:
    BackoffConfig config_;
    std::uint32_t attempts_ = 0;
    std::uint32_t previous_delay_ms_ = 0;  // decorrelated jitter's memory
};

}  // namespace tether

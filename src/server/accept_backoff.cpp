// SPDX-License-Identifier: MIT
#include "tether/server/accept_backoff.h"

namespace tether::server {

AcceptBackoff::AcceptBackoff(const AcceptBackoffConfig& config) : config_(config) {
    constexpr std::uint32_t kOneDayMs = 24u * 60u * 60u * 1000u;
    const auto clamp = [](std::uint32_t value, std::uint32_t low, std::uint32_t high) {
        return value < low ? low : (value > high ? high : value);
    };
    config_.initial_ms = clamp(config_.initial_ms, 1, kOneDayMs);
    config_.max_ms = clamp(config_.max_ms, config_.initial_ms, kOneDayMs);
}

bool AcceptBackoff::on_failure(TimeMs now) {
    const bool starts = !in_episode_;
    if (starts) {
        last_pause_ms_ = config_.initial_ms;
    } else {
        last_pause_ms_ = last_pause_ms_ > config_.max_ms / 2 ? config_.max_ms : last_pause_ms_ * 2;
    }
    in_episode_ = true;
    pausing_ = true;
    resume_at_ = now + last_pause_ms_;
    return starts;
}

void AcceptBackoff::on_success() {
    in_episode_ = false;
    pausing_ = false;
    last_pause_ms_ = 0;
}

bool AcceptBackoff::paused(TimeMs now) const {
    return pausing_ && !time_reached(now, resume_at_);
}

std::uint32_t AcceptBackoff::wait_ms(TimeMs now) const {
    return pausing_ ? time_until(now, resume_at_) : 0;
}

}  // namespace tether::server

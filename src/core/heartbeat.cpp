// SPDX-License-Identifier: MIT
#include "tether/heartbeat.h"

#include <cstdint>

namespace tether {
namespace {

constexpr std::uint32_t clamp(std::uint32_t value, std::uint32_t low, std::uint32_t high) {
    return value < low ? low : (value > high ? high : value);
}

// Each field on its own stays within one day, so every deadline the heartbeat
// sets is far inside the wrap-safe range of tether/time.h.
HeartbeatConfig clamped(const HeartbeatConfig& config) {
    HeartbeatConfig out = config;
    out.interval_ms = clamp(out.interval_ms, 0u, kMaxHeartbeatDetectionMs);
    out.pong_timeout_ms = clamp(out.pong_timeout_ms, 1u, kMaxHeartbeatDetectionMs);
    out.rtt_probe_ms = clamp(out.rtt_probe_ms, 0u, kMaxHeartbeatDetectionMs);
    if (out.max_missed_pongs == 0u) {
        out.max_missed_pongs = 1u;
    }
    return out;
}

}  // namespace

Status validate(const HeartbeatConfig& config) {
    if (config.interval_ms == 0u) {
        return Status::kOk;
    }
    if (config.pong_timeout_ms == 0u || config.max_missed_pongs == 0u ||
        config.rtt_probe_ms > kMaxHeartbeatDetectionMs) {
        return Status::kInvalidArgument;
    }
    // 64 bits: the product of two 32-bit fields cannot overflow.
    const std::uint64_t detection =
        static_cast<std::uint64_t>(config.interval_ms) +
        static_cast<std::uint64_t>(config.max_missed_pongs) * config.pong_timeout_ms;
    return detection <= kMaxHeartbeatDetectionMs ? Status::kOk : Status::kInvalidArgument;
}

Heartbeat::Heartbeat(const HeartbeatConfig& config) : config_(clamped(config)) {}

void Heartbeat::start(TimeMs now) {
    last_received_ = now;
    probe_due_ = now + config_.rtt_probe_ms;
    awaiting_pong_ = false;
    ping_unanswered_ = false;
    dead_ = false;
    missed_ = 0;
    has_rtt_ = false;
    last_rtt_ms_ = 0;
}

void Heartbeat::on_frame_received(TimeMs now) {
    last_received_ = now;
    awaiting_pong_ = false;
    missed_ = 0;
}

bool Heartbeat::on_pong(TimeMs now, const std::uint8_t* payload, std::size_t size) {
    on_frame_received(now);
    if (!ping_unanswered_ || payload == nullptr || size != kPingPayloadSize) {
        return false;
    }
    const std::uint32_t number = (static_cast<std::uint32_t>(payload[0]) << 24u) |
                                 (static_cast<std::uint32_t>(payload[1]) << 16u) |
                                 (static_cast<std::uint32_t>(payload[2]) << 8u) |
                                 static_cast<std::uint32_t>(payload[3]);
    if (number != ping_number_) {
        return false;
    }
    ping_unanswered_ = false;
    has_rtt_ = true;
    last_rtt_ms_ = time_since(now, ping_sent_at_);
    return true;
}

HeartbeatAction Heartbeat::poll(TimeMs now) {
    if (!enabled()) {
        return HeartbeatAction::kNone;
    }
    if (dead_) {
        return HeartbeatAction::kDead;
    }
    if (awaiting_pong_) {
        if (!time_reached(now, pong_deadline_)) {
            return HeartbeatAction::kNone;
        }
        ++missed_;
        if (missed_ >= config_.max_missed_pongs) {
            dead_ = true;
            return HeartbeatAction::kDead;
        }
    } else if (!time_reached(now, last_received_ + config_.interval_ms)) {
        if (config_.rtt_probe_ms == 0u || !time_reached(now, probe_due_)) {
            return HeartbeatAction::kNone;
        }
        // A probe: the link is alive (frames arrive), only the RTT is wanted.
        new_ping(now);
        return HeartbeatAction::kSendPing;
    }
    new_ping(now);
    pong_deadline_ = now + config_.pong_timeout_ms;
    awaiting_pong_ = true;
    return HeartbeatAction::kSendPing;
}

void Heartbeat::new_ping(TimeMs now) {
    // Ping numbers start at 1 and wrap; only equality with the latest matters.
    ++ping_number_;
    ping_sent_at_ = now;
    probe_due_ = now + config_.rtt_probe_ms;
    ping_unanswered_ = true;
}

void Heartbeat::ping_payload(std::uint8_t out[kPingPayloadSize]) const {
    out[0] = static_cast<std::uint8_t>(ping_number_ >> 24u);
    out[1] = static_cast<std::uint8_t>(ping_number_ >> 16u);
    out[2] = static_cast<std::uint8_t>(ping_number_ >> 8u);
    out[3] = static_cast<std::uint8_t>(ping_number_);
}

TimeMs Heartbeat::next_deadline() const {
    if (awaiting_pong_ || dead_) {
        return pong_deadline_;
    }
    const TimeMs idle = last_received_ + config_.interval_ms;
    return config_.rtt_probe_ms == 0u ? idle : time_earliest(idle, probe_due_);
}

}  // namespace tether

// Liveness of an open connection: pings, pongs and the dead-link verdict.
//
// Any frame received counts as a sign of life, not only pongs: under heavy
// downlink traffic a pong can queue behind data, and a link that delivers
// data is alive. A ping goes out after `interval_ms` without receiving
// anything; if nothing arrives within `pong_timeout_ms` the ping is missed.
// After `max_missed_pongs` misses in a row (another ping is sent after each
// miss but the last) the link is dead. A link that dies is therefore
// detected at most interval + max_missed_pongs * pong_timeout after the last
// frame received: interval + timeout with the default of one miss.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/status.h"
#include "tether/time.h"

namespace tether {

struct HeartbeatConfig {
    std::uint32_t interval_ms = 30000;      ///< idle time before a ping; 0 disables the heartbeat
    std::uint32_t pong_timeout_ms = 10000;  ///< >= 1 when enabled
    std::uint32_t max_missed_pongs = 1;     ///< >= 1
};

Status validate(const HeartbeatConfig& config);

enum class HeartbeatAction : std::uint8_t {
    kNone,
    kSendPing,  ///< send a ping whose payload is ping_payload()
    kDead,      ///< declare the link dead
};

/// Size of the ping payload: a 32-bit big-endian ping number.
inline constexpr std::size_t kPingPayloadSize = 4;

class Heartbeat {
  public:
    explicit Heartbeat(const HeartbeatConfig& config);

    /// The WebSocket opened at `now`.
    void start(TimeMs now);

    /// Any frame (data, ping, pong, close) arrived at `now`.
    void on_frame_received(TimeMs now);

    /// A pong arrived. Counts as a frame received; when its payload matches
    /// the outstanding ping, records the round-trip time and returns true.
    bool on_pong(TimeMs now, const std::uint8_t* payload, std::size_t size);

    /// What to do at `now`. Call whenever next_deadline() has been reached
    /// (calling earlier is harmless and returns kNone).
    HeartbeatAction poll(TimeMs now);

    /// Payload for the ping poll() just asked for.
    void ping_payload(std::uint8_t out[kPingPayloadSize]) const;

    /// When poll() next has something to do. Meaningless when disabled.
    TimeMs next_deadline() const;

    bool enabled() const { return config_.interval_ms != 0; }
    bool has_rtt() const { return has_rtt_; }
    std::uint32_t last_rtt_ms() const { return last_rtt_ms_; }
    std::uint32_t missed_pongs() const { return missed_; }

  private:
    HeartbeatConfig config_;
    TimeMs last_received_ = 0;
    TimeMs ping_sent_at_ = 0;
    TimeMs pong_deadline_ = 0;
    bool awaiting_pong_ = false;
    std::uint32_t ping_number_ = 0;
    std::uint32_t missed_ = 0;
    bool has_rtt_ = false;
    std::uint32_t last_rtt_ms_ = 0;
};

}  // namespace tether

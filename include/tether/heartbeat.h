// SPDX-License-Identifier: MIT
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
//
// Under steady traffic no idle ping is ever due, so without more there is no
// round-trip time while data flows. With `rtt_probe_ms` set, a probe ping
// also goes out rtt_probe_ms after the previous ping (or the open) whatever
// arrives; its pong yields the round-trip time like any other. A probe is not
// a liveness check: it sets no pong deadline and counts no miss, so the
// dead-link bound above is unchanged.
//
// Example (inside the loop, after feeding received frames in):
//   switch (heartbeat.poll(now)) {
//       case tether::HeartbeatAction::kSendPing:
//           heartbeat.ping_payload(payload);
//           send_ping(payload, tether::kPingPayloadSize);
//           break;
//       case tether::HeartbeatAction::kDead: close_and_reconnect(); break;
//       case tether::HeartbeatAction::kNone: break;
//   }
//   arm_timer(heartbeat.next_deadline());
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
    /// Time between round-trip probes while frames keep arriving; 0: no
    /// probes (pings only after an idle interval). At most one day.
    std::uint32_t rtt_probe_ms = 0;
};

/// Upper bound of interval_ms + max_missed_pongs * pong_timeout_ms: one day.
inline constexpr std::uint32_t kMaxHeartbeatDetectionMs = 24u * 60u * 60u * 1000u;

/// kOk when interval_ms is 0 (disabled: the other fields are ignored), or when
/// pong_timeout_ms >= 1, max_missed_pongs >= 1 and
/// interval_ms + max_missed_pongs * pong_timeout_ms <= kMaxHeartbeatDetectionMs
/// and rtt_probe_ms <= kMaxHeartbeatDetectionMs. kInvalidArgument otherwise.
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
    /// `config` should pass validate(); an invalid one is clamped: interval_ms
    /// and pong_timeout_ms to at most kMaxHeartbeatDetectionMs, pong_timeout_ms
    /// and max_missed_pongs to at least 1.
    explicit Heartbeat(const HeartbeatConfig& config);

    /// The WebSocket opened at `now`: counts as a frame received, forgets any
    /// outstanding ping, missed pong, dead verdict and RTT of an earlier
    /// connection. Call before the first poll().
    void start(TimeMs now);

    /// Any frame (data, ping, pong, close) arrived at `now`: the link is
    /// alive, so the wait for a pong ends, the missed count returns to 0 and
    /// the next ping is due interval_ms after `now`.
    void on_frame_received(TimeMs now);

    /// A pong arrived. Counts as a frame received. When the payload is the
    /// 4-byte number of the latest ping and that ping has not been answered
    /// yet (a data frame received meanwhile does not answer it), records the
    /// round-trip time now - (time that ping was sent) and returns true.
    /// Any other payload (an older ping, an unsolicited pong, a wrong size)
    /// records nothing and returns false. `payload` may be null when size is 0.
    bool on_pong(TimeMs now, const std::uint8_t* payload, std::size_t size);

    /// What to do at `now`. Call whenever next_deadline() has been reached
    /// (calling earlier is harmless and returns kNone). Always kNone when
    /// disabled.
    /// - kSendPing: interval_ms passed without a frame, or a pong was missed
    ///   and fewer than max_missed_pongs have been missed in a row; the new
    ///   ping must be answered within pong_timeout_ms of `now`. Also (a
    ///   probe, with rtt_probe_ms set, no pong awaited): rtt_probe_ms passed
    ///   since the previous ping or the open; no pong deadline is set.
    /// - kDead: the max_missed_pongs-th pong in a row was missed. Every later
    ///   poll() returns kDead too, until start().
    HeartbeatAction poll(TimeMs now);

    /// Payload for the ping poll() just asked for: its number, big-endian.
    void ping_payload(std::uint8_t out[kPingPayloadSize]) const;

    /// When poll() next has something to do: the pong deadline while a ping
    /// is waiting for its answer (or the deadline that was missed, once dead),
    /// otherwise interval_ms after the last frame or, when earlier, the next
    /// probe. Meaningless when disabled.
    TimeMs next_deadline() const;

    bool enabled() const { return config_.interval_ms != 0; }
    /// True once a pong on this connection has yielded a round-trip time.
    bool has_rtt() const { return has_rtt_; }
    /// The latest round-trip time; 0 before the first.
    std::uint32_t last_rtt_ms() const { return last_rtt_ms_; }
    /// Pongs missed in a row since the last frame received.
    std::uint32_t missed_pongs() const { return missed_; }

  private:
    void new_ping(TimeMs now);

    HeartbeatConfig config_;
    TimeMs last_received_ = 0;
    TimeMs ping_sent_at_ = 0;
    TimeMs pong_deadline_ = 0;
    TimeMs probe_due_ = 0;          // when a probe ping is next due (rtt_probe_ms != 0)
    bool awaiting_pong_ = false;    // a ping is out and nothing has arrived since
    bool ping_unanswered_ = false;  // the latest ping's pong has not arrived (for the RTT)
    bool dead_ = false;
    std::uint32_t ping_number_ = 0;
    std::uint32_t missed_ = 0;
    bool has_rtt_ = false;
    std::uint32_t last_rtt_ms_ = 0;
};

}  // namespace tether

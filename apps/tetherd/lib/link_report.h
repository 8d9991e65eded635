// SPDX-License-Identifier: MIT
// What tetherd's status file and metrics say about the link: the history the
// daemon observes (state changes, reconnects, time offline, attempts by
// outcome) and the snapshots built from it and from the durable link.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "metrics.h"
#include "state_agent.h"
#include "status_file.h"
#include "tether/durable_link.h"

namespace tether::daemon {

class LinkHistory {
  public:
    explicit LinkHistory(TimeMs start)
        : offline_since_(start), started_at_(start), last_ack_at_(start) {}

    /// A state change at monotonic `now`, wall-clock `wall_ms` (for display only).
    void observe(const ClientEvent& event, TimeMs now, std::uint64_t wall_ms);

    LinkState state() const { return state_; }
    std::uint64_t since_wall_ms() const { return since_wall_ms_; }
    const std::string& reason() const { return reason_; }
    const std::string& detail() const { return detail_; }
    /// Times the link came back online after having been online.
    std::uint64_t reconnects() const { return reconnects_; }
    /// Attempts by outcome: "success", or the failure policy's reason.
    const std::map<std::string, std::uint64_t>& attempts_by_outcome() const { return outcomes_; }
    /// Time spent not online up to the last change.
    std::uint64_t offline_ms_total() const { return offline_ms_total_; }
    /// The same, including the current offline stretch up to `now`.
    std::uint64_t offline_ms_until(TimeMs now) const;

    /// The total of acknowledged messages at monotonic `now` (call often, e.g.
    /// every loop iteration): a total above the last one seen marks an ack.
    void observe_acked(std::uint64_t acked_total, TimeMs now);
    /// Time since the last ack observed, or since the start when none yet.
    /// Monotonic: right on a device whose wall clock is wrong (no RTC, no NTP yet).
    std::uint64_t last_ack_age_ms(TimeMs now) const { return time_since(now, last_ack_at_); }
    std::uint64_t uptime_ms(TimeMs now) const { return time_since(now, started_at_); }

  private:
    LinkState state_ = LinkState::kIdle;
    std::uint64_t since_wall_ms_ = 0;
    std::string reason_;
    std::string detail_;
    std::uint64_t reconnects_ = 0;
    std::map<std::string, std::uint64_t> outcomes_;
    bool offline_ = true;
    bool was_online_ = false;
    TimeMs offline_since_;
    std::uint64_t offline_ms_total_ = 0;
    TimeMs started_at_;
    TimeMs last_ack_at_;
    std::uint64_t acked_seen_ = 0;
};

/// The device-state part of status and metrics: the link's view, and the
/// agent's when there is one (null: state.enabled is off).
DeviceStateStatus device_state_of(const DurableLink& link, const StateAgent* agent);

/// What the status file shows, from the link and its history.
StatusSnapshot status_of(const DurableLink& link, const LinkHistory& history,
                         const std::string& endpoint, const char* session,
                         const std::string& storage_error);

/// What the metrics show; `downlink` adds the hand-over counters.
MetricsSnapshot metrics_of(const DurableLink& link, const LinkHistory& history, TimeMs now,
                           const DownlinkTotals& downlink);

}  // namespace tether::daemon

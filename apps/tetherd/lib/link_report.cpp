// SPDX-License-Identifier: MIT
#include "link_report.h"

#include <mbedtls/version.h>

#ifndef TETHER_VERSION
#define TETHER_VERSION "unknown"
#endif

namespace tether::daemon {

void LinkHistory::observe(const ClientEvent& event, TimeMs now, std::uint64_t wall_ms) {
    if (event.state == LinkState::kOnline) {
        ++outcomes_["success"];
        if (was_online_) {
            ++reconnects_;
        }
        was_online_ = true;
        if (offline_) {
            offline_ms_total_ += time_since(now, offline_since_);
            offline_ = false;
        }
    } else if (!offline_) {
        offline_ = true;
        offline_since_ = now;
    }
    if ((event.state == LinkState::kWaitingToRetry || event.state == LinkState::kGivenUp) &&
        event.reason[0] != '\0') {
        ++outcomes_[event.reason];
    }
    reason_ = event.reason;
    detail_ = event.detail;
    state_ = event.state;
    since_wall_ms_ = wall_ms;
}

std::uint64_t LinkHistory::offline_ms_until(TimeMs now) const {
    return offline_ms_total_ + (offline_ ? time_since(now, offline_since_) : 0);
}

void LinkHistory::observe_acked(std::uint64_t acked_total, TimeMs now) {
    if (acked_total > acked_seen_) {
        last_ack_at_ = now;
    }
    acked_seen_ = acked_total;
}

DeviceStateStatus device_state_of(const DurableLink& link, const StateAgent* agent) {
    DeviceStateStatus s;
    if (agent == nullptr) {
        return s;
    }
    const DeviceStateView view = link.device_state();
    s.enabled = view.enabled;
    s.negotiated = view.negotiated;
    s.desired_applied = view.desired_applied;
    s.desired_received = view.desired_received;
    s.reported_version = view.reported_version;
    s.report_pending = view.report_pending;
    s.in_sync = view.in_sync && !agent->failing() && agent->pending_version() == 0;
    s.apply_failing = agent->failing();
    s.apply_failures = agent->counters().apply_failures;
    s.reports_accepted = view.reports_accepted;
    s.reports_refused = view.reports_refused;
    s.report_failures = agent->counters().report_failures;
    s.desired_snapshots = view.desired_snapshots;
    s.desired_increments = view.desired_increments;
    return s;
}

StatusSnapshot status_of(const DurableLink& link, const LinkHistory& history,
                         const std::string& endpoint, const char* session,
                         const std::string& storage_error) {
    const Client& c = link.client();
    StatusSnapshot s;
    s.state = history.state();
    s.since_ms = history.since_wall_ms();
    s.endpoint = endpoint;
    s.attempt = c.machine().attempts();
    s.retry_in_ms = s.state == LinkState::kWaitingToRetry ? c.machine().retry_delay_ms() : 0;
    s.compression_negotiated = c.stream().deflate_enabled();
    s.compression_bytes_before = c.stream().counters().compress_bytes_in;
    s.compression_bytes_after = c.stream().counters().compress_bytes_out;
    s.reason = history.reason();
    s.detail = history.detail();
    s.session = session != nullptr ? session : "";
    s.version = link.persistent().session_version;
    s.queued = c.outbox().size();
    s.acked = c.counters().uplink_acked;
    s.dropped = c.outbox().counters().dropped_unsent;
    s.has_rtt = c.machine().heartbeat().has_rtt();
    s.rtt_ms = c.machine().heartbeat().last_rtt_ms();
    s.offline_ms_total = history.offline_ms_total();
    s.spool = to_string(link.spool_health());
    s.storage_error = storage_error;
    s.refused = link.counters().refused_too_large;
    s.memory_only = link.counters().memory_only;
    if (const Spool* spool = link.spool()) {
        s.spool_records = spool->highest_seq() > spool->acked_through()
                              ? spool->highest_seq() - spool->acked_through()
                              : 0;
        s.spool_bytes = spool->journal_bytes();
        s.spool_capacity_bytes = spool->region_size();
    }
    s.downlink_confirmed = c.downlink_confirmed();
    return s;
}

MetricsSnapshot metrics_of(const DurableLink& link, const LinkHistory& history, TimeMs now,
                           const DownlinkTotals& downlink) {
    const Client& c = link.client();
    const OutboxCounters& outbox = c.outbox().counters();
    MetricsSnapshot s;
    s.state = history.state();
    s.reconnects = history.reconnects();
    s.attempts_by_outcome = history.attempts_by_outcome();
    s.messages_queued = c.outbox().size();
    s.messages_sent = c.counters().messages_sent;
    s.messages_acked = outbox.acked;
    s.messages_dropped = outbox.dropped_unsent;
    s.messages_evicted_unacked = outbox.dropped - outbox.dropped_unsent;
    s.bytes_sent = c.stream().counters().bytes_written;
    s.compression_negotiated = c.stream().deflate_enabled();
    s.compression_bytes_before = c.stream().counters().compress_bytes_in;
    s.compression_bytes_after = c.stream().counters().compress_bytes_out;
    s.bytes_received = c.stream().counters().bytes_read;
    s.outbox_used_bytes = c.outbox().bytes_used();
    s.outbox_capacity_bytes = c.outbox().capacity();
    s.has_rtt = c.machine().heartbeat().has_rtt();
    s.rtt_ms = c.machine().heartbeat().last_rtt_ms();
    s.offline_ms_total = history.offline_ms_until(now);
    s.backoff_attempt = c.machine().attempts();
    s.downlink_delivered = downlink.delivered;
    s.downlink_duplicates = c.counters().downlink_duplicates;
    s.downlink_dead_lettered = downlink.dead_lettered;
    s.downlink_failures = downlink.failures;
    s.messages_refused = link.counters().refused_too_large + link.counters().refused_full;
    s.messages_memory_only = link.counters().memory_only;
    s.spool_degraded = link.spool_health() == SpoolHealth::kDegraded;
    s.storage_failures = link.counters().spool_failures + link.counters().state_failures;
    s.version = TETHER_VERSION;
    s.tls_library = "mbedtls " MBEDTLS_VERSION_STRING;
    s.uptime_ms = history.uptime_ms(now);
    s.last_ack_age_ms = history.last_ack_age_ms(now);
    if (const Spool* spool = link.spool()) {
        s.spool_enabled = true;
        s.spool_records = spool->highest_seq() > spool->acked_through()
                              ? spool->highest_seq() - spool->acked_through()
                              : 0;
        s.spool_bytes = spool->journal_bytes();
        s.spool_capacity_bytes = spool->region_size();
        s.spool_dropped = spool->counters().dropped;
    }
    s.intake.too_large = link.counters().refused_too_large;
    s.intake.outbox_full = link.counters().refused_full;
    return s;
}

}  // namespace tether::daemon

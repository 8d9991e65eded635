// SPDX-License-Identifier: MIT
// The daemon's counters for Prometheus, in the text exposition format
// (version 0.0.4), written atomically to a file that node_exporter's textfile
// collector reads (--collector.textfile.directory; the name must end in .prom).
//
// Metrics (each with # HELP and # TYPE lines, in this order; docs/METRICS.md
// lists every name, and a unit test compares that list with this output):
//   tether_build_info{version,tls}          gauge, always 1
//   tether_uptime_seconds                   gauge: monotonic time since start
//   tether_last_ack_age_seconds             gauge: since the last ack (or start)
//   tether_spool_records, _bytes, _capacity_bytes   gauges; tether_spool_dropped_total
//   tether_intake_dropped_total{reason}     counter: dropped before a seq was given
//   tether_connected                        gauge 0/1
//   tether_state{state="..."}               gauge, one-hot over every LinkState
//   tether_reconnects_total                 counter: times the link came back
//   tether_connection_attempts_total{outcome="..."}  counter: "success" or the
//                                           failure reason ("tcp_refused", ...)
//   tether_messages_queued                  gauge
//   tether_messages_sent_total, _acked_total, _dropped_total   counters
//   tether_bytes_sent_total, tether_bytes_received_total       counters
//   tether_outbox_fill_ratio                gauge 0..1
//   tether_rtt_seconds                      gauge (NaN before the first pong)
//   tether_offline_seconds_total            counter
//   tether_backoff_attempt                  gauge
//   tether_downlink_delivered_total, tether_downlink_duplicates_total  counters
//   ... (the spool, refusals and hand-over failures: see render_metrics)
//   tether_state_desired_applied_version, _desired_received_version,
//   _reported_version, tether_state_in_sync          gauges (device state)
//   tether_state_apply_failures_total, _reports_accepted_total,
//   _reports_refused_total, _report_failures_total,
//   _desired_snapshots_total, _desired_increments_total  counters
//   tether_link_info{protocol,delivery}     gauge 1
//   tether_messages_in_doubt_total, tether_messages_confirmed_total,
//   tether_downlink_lost_total              counters (plain WebSocket mode)
//
// Example:
//   tether::daemon::MetricsSnapshot snapshot;
//   snapshot.state = client.state();
//   snapshot.messages_sent = client.counters().messages_sent;
//   ++snapshot.attempts_by_outcome["tcp_refused"];
//   (void)tether::daemon::write_metrics("/var/lib/node_exporter/tetherd.prom", snapshot);
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "status_file.h"
#include "tether/reconnect.h"
#include "tether/status.h"

namespace tether::daemon {

/// The downlink output's hand-over counters, as the metrics show them.
struct DownlinkTotals {
    std::uint64_t delivered = 0;      ///< handed to the application
    std::uint64_t dead_lettered = 0;  ///< written to the dead-letter directory
    std::uint64_t failures = 0;       ///< failed attempts and writes
};

/// Messages dropped at intake, before they got a seq, by reason (every one is
/// written, 0 included, so rate() works from the first scrape).
struct IntakeDrops {
    std::uint64_t too_large = 0;           ///< larger than the link can deliver
    std::uint64_t outbox_full = 0;         ///< outbox full under reject_newest
    std::uint64_t line_too_long = 0;       ///< a standard input line longer than the buffer
    std::uint64_t datagram_too_large = 0;  ///< a socket datagram larger than the buffer
    std::uint64_t datagram_empty = 0;      ///< an empty socket datagram
    std::uint64_t not_utf8 = 0;            ///< plain WebSocket, text frames: not valid UTF-8
};

struct MetricsSnapshot {
    /// tether_build_info's labels: the program's version and mbedTLS's.
    std::string version;
    std::string tls_library;
    std::uint64_t uptime_ms = 0;  ///< monotonic time since the daemon started
    /// Monotonic time since the server last acknowledged a message, or since
    /// the daemon started when nothing was acknowledged yet.
    std::uint64_t last_ack_age_ms = 0;
    bool spool_enabled = false;       ///< false: the spool gauges are written as 0
    std::uint64_t spool_records = 0;  ///< messages above the spool's ACK/DROP watermark
    std::uint64_t spool_bytes = 0;    ///< bytes of the active journal (dead records included)
    std::uint64_t spool_capacity_bytes = 0;  ///< bytes of one region
    std::uint64_t spool_dropped = 0;  ///< live messages a compaction left out for lack of room
    IntakeDrops intake;
    LinkState state = LinkState::kIdle;
    std::uint64_t reconnects = 0;
    /// Connection attempts by outcome: "success", or the failure reason.
    /// Written in key order, so the output is stable.
    std::map<std::string, std::uint64_t> attempts_by_outcome;
    std::uint64_t messages_queued = 0;
    std::uint64_t messages_sent = 0;
    std::uint64_t messages_acked = 0;
    std::uint64_t messages_dropped = 0;
    std::uint64_t bytes_sent = 0;
    std::uint64_t bytes_received = 0;
    std::uint64_t outbox_used_bytes = 0;
    std::uint64_t outbox_capacity_bytes = 0;  ///< 0: the fill ratio is written as 0
    bool has_rtt = false;
    std::uint32_t rtt_ms = 0;  ///< when has_rtt
    std::uint64_t offline_ms_total = 0;
    std::uint32_t backoff_attempt = 0;
    std::uint64_t downlink_delivered = 0;
    std::uint64_t downlink_duplicates = 0;
    std::uint64_t messages_evicted_unacked = 0;  ///< evicted after being sent, before the ack
    std::uint64_t messages_refused = 0;  ///< too large to deliver, or outbox full (reject_newest)
    std::uint64_t messages_memory_only = 0;  ///< accepted while the spool was degraded
    bool spool_degraded = false;
    std::uint64_t storage_failures = 0;
    std::uint64_t downlink_dead_lettered = 0;
    std::uint64_t downlink_failures = 0;
    DeviceStateStatus device_state;  ///< all zero when not enabled
    /// tether_link_info's labels: what the link speaks and promises.
    std::string protocol = "tether.v1";
    std::string delivery = "acknowledged";
    std::uint64_t messages_in_doubt = 0;         ///< websocket: handed over, link died unconfirmed
    std::uint64_t messages_confirmed = 0;        ///< websocket: confirmed by a pong
    std::uint64_t downlink_lost = 0;             ///< websocket: server messages the output refused
    bool compression_negotiated = false;         ///< permessage-deflate on this connection
    std::uint64_t compression_bytes_before = 0;  ///< payload of messages sent compressed
    std::uint64_t compression_bytes_after = 0;   ///< what they compressed to
};

/// A label value escaped per the exposition format: backslash, double quote
/// and line feed become \\, \" and \n.
std::string escape_label_value(const std::string& value);

/// The exposition text of `snapshot` (ends with a newline). Durations are
/// written in seconds with millisecond precision ("0.023").
std::string render_metrics(const MetricsSnapshot& snapshot);

/// Replaces `path` with render_metrics(snapshot), mode 0644. kOk, or
/// kIoError (see write_file_atomically()).
Status write_metrics(const std::string& path, const MetricsSnapshot& snapshot);

}  // namespace tether::daemon

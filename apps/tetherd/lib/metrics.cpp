// SPDX-License-Identifier: MIT
#include "metrics.h"

#include <cinttypes>
#include <cstdio>
#include <utility>

#include "atomic_write.h"

namespace tether::daemon {
namespace {

void header(std::string& out, const char* name, const char* type, const char* help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

void sample(std::string& out, const char* name, const std::string& labels,
            const std::string& value) {
    out += name;
    out += labels;
    out += ' ';
    out += value;
    out += '\n';
}

std::string integer(std::uint64_t value) {
    char text[24];
    std::snprintf(text, sizeof text, "%" PRIu64, value);
    return text;
}

// Milliseconds as seconds with exactly three decimals: integer arithmetic,
// so the text never depends on float rounding or the locale.
std::string seconds(std::uint64_t ms) {
    char text[32];
    std::snprintf(text, sizeof text, "%" PRIu64 ".%03" PRIu64, ms / 1000u, ms % 1000u);
    return text;
}

std::string ratio(std::uint64_t part, std::uint64_t whole) {
    if (whole == 0) {
        return "0";
    }
    char text[32];
    std::snprintf(text, sizeof text, "%.6g",
                  static_cast<double>(part) / static_cast<double>(whole));
    return text;
}

void counter(std::string& out, const char* name, const char* help, const std::string& value) {
    header(out, name, "counter", help);
    sample(out, name, "", value);
}

void counter(std::string& out, const char* name, const char* help, std::uint64_t value) {
    counter(out, name, help, integer(value));
}

void gauge(std::string& out, const char* name, const char* help, const std::string& value) {
    header(out, name, "gauge", help);
    sample(out, name, "", value);
}

std::string label(const char* name, const std::string& value) {
    return std::string("{") + name + "=\"" + escape_label_value(value) + "\"}";
}

}  // namespace

std::string escape_label_value(const std::string& value) {
    std::string out;
    out.reserve(value.size());
    for (const char c : value) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

std::string render_metrics(const MetricsSnapshot& s) {
    std::string out;
    header(out, "tether_build_info", "gauge",
           "Always 1; the labels name the tetherd version and the TLS library.");
    sample(out, "tether_build_info",
           "{version=\"" + escape_label_value(s.version) + "\",tls=\"" +
               escape_label_value(s.tls_library) + "\"}",
           "1");
    gauge(out, "tether_uptime_seconds",
          "Time since tetherd started, from the monotonic clock (stops changing when the "
          "file goes stale).",
          seconds(s.uptime_ms));
    gauge(out, "tether_last_ack_age_seconds",
          "Time since the server last acknowledged a message (since the start when none yet), "
          "from the monotonic clock.",
          seconds(s.last_ack_age_ms));
    gauge(out, "tether_spool_records", "Messages held by the disk spool (0 without a spool).",
          integer(s.spool_enabled ? s.spool_records : 0));
    gauge(out, "tether_spool_bytes",
          "Bytes of the spool's active journal, dead records until the next compaction included.",
          integer(s.spool_enabled ? s.spool_bytes : 0));
    gauge(out, "tether_spool_capacity_bytes",
          "Bytes the spool's journal may use (one of its two regions; 0 without a spool).",
          integer(s.spool_enabled ? s.spool_capacity_bytes : 0));
    counter(out, "tether_spool_dropped_total",
            "Unacknowledged messages a spool compaction left out for lack of room.",
            s.spool_dropped);
    header(out, "tether_intake_dropped_total", "counter",
           "Messages dropped at intake, before they got a seq, by reason.");
    const std::pair<const char*, std::uint64_t> drops[] = {
        {"too_large", s.intake.too_large},
        {"outbox_full", s.intake.outbox_full},
        {"line_too_long", s.intake.line_too_long},
        {"datagram_too_large", s.intake.datagram_too_large},
        {"datagram_empty", s.intake.datagram_empty},
        {"not_utf8", s.intake.not_utf8},
    };
    for (const auto& drop : drops) {
        sample(out, "tether_intake_dropped_total", label("reason", drop.first),
               integer(drop.second));
    }
    gauge(out, "tether_connected", "1 while the link is online, else 0.",
          s.state == LinkState::kOnline ? "1" : "0");

    header(out, "tether_state", "gauge",
           "The link state: 1 for the current state, 0 for the others.");
    for (std::size_t i = 0; i < kLinkStateCount; ++i) {
        const auto state = static_cast<LinkState>(i);
        sample(out, "tether_state", label("state", to_string(state)), state == s.state ? "1" : "0");
    }

    counter(out, "tether_reconnects_total", "Times the link came back online after a drop.",
            s.reconnects);

    header(out, "tether_connection_attempts_total", "counter",
           "Connection attempts by outcome: success, or the failure reason.");
    for (const auto& entry : s.attempts_by_outcome) {
        sample(out, "tether_connection_attempts_total", label("outcome", entry.first),
               integer(entry.second));
    }

    gauge(out, "tether_messages_queued", "Messages waiting in the outbox.",
          integer(s.messages_queued));
    counter(out, "tether_messages_sent_total", "Messages handed to the WebSocket.",
            s.messages_sent);
    counter(out, "tether_messages_acked_total", "Messages the server acknowledged.",
            s.messages_acked);
    counter(out, "tether_messages_dropped_total",
            "Messages the outbox overflow policy evicted before they were ever sent (lost).",
            s.messages_dropped);
    counter(out, "tether_bytes_sent_total", "Bytes written to the connection.", s.bytes_sent);
    counter(out, "tether_bytes_received_total", "Bytes read from the connection.",
            s.bytes_received);
    gauge(out, "tether_compression_negotiated", "1 while the connection uses permessage-deflate.",
          std::string(s.compression_negotiated ? "1" : "0"));
    counter(out, "tether_compression_bytes_before_total",
            "Payload bytes of the messages sent compressed, before compression.",
            s.compression_bytes_before);
    counter(out, "tether_compression_bytes_after_total",
            "Payload bytes of the messages sent compressed, after compression.",
            s.compression_bytes_after);
    gauge(out, "tether_outbox_fill_ratio", "Fraction of the outbox storage in use.",
          ratio(s.outbox_used_bytes, s.outbox_capacity_bytes));
    gauge(out, "tether_rtt_seconds", "Round trip time of the last heartbeat ping.",
          s.has_rtt ? seconds(s.rtt_ms) : "NaN");
    counter(out, "tether_offline_seconds_total", "Time spent without an online link.",
            seconds(s.offline_ms_total));
    gauge(out, "tether_backoff_attempt", "Consecutive failed attempts in the current streak.",
          integer(s.backoff_attempt));
    counter(out, "tether_downlink_delivered_total", "Server messages delivered to the daemon.",
            s.downlink_delivered);
    counter(out, "tether_downlink_duplicates_total",
            "Server messages dropped as replays of ones already delivered.", s.downlink_duplicates);
    counter(out, "tether_messages_evicted_unacked_total",
            "Messages evicted after being sent, before the server's ack (it may hold them).",
            s.messages_evicted_unacked);
    counter(out, "tether_messages_refused_total",
            "Messages refused at intake: larger than the link can deliver, or the outbox full "
            "under reject_newest.",
            s.messages_refused);
    counter(out, "tether_messages_memory_only_total",
            "Messages accepted while the spool was degraded (kept in memory only).",
            s.messages_memory_only);
    gauge(out, "tether_spool_degraded",
          "1 while the spool's disk fails and messages are in memory only.",
          std::string(s.spool_degraded ? "1" : "0"));
    counter(out, "tether_storage_failures_total",
            "Failed writes or syncs of the spool and the state record.", s.storage_failures);
    counter(out, "tether_downlink_dead_lettered_total",
            "Downlink messages written to the dead-letter directory after failed hand-overs.",
            s.downlink_dead_lettered);
    counter(out, "tether_downlink_failures_total",
            "Failed attempts to hand a downlink message to the application.", s.downlink_failures);
    const DeviceStateStatus& state = s.device_state;
    gauge(out, "tether_state_desired_applied_version",
          "The desired state version the device has applied (0: none).",
          integer(state.desired_applied));
    gauge(out, "tether_state_desired_received_version",
          "The newest desired state version received from the server.",
          integer(state.desired_received));
    gauge(out, "tether_state_reported_version",
          "The server's version of the device's reported state.", integer(state.reported_version));
    gauge(out, "tether_state_in_sync",
          "1 when the newest desired state is applied and no report is pending.",
          std::string(state.in_sync ? "1" : "0"));
    counter(out, "tether_state_apply_failures_total",
            "Failed attempts to apply a desired state change (retried).", state.apply_failures);
    counter(out, "tether_state_reports_accepted_total", "Reports the server accepted.",
            state.reports_accepted);
    counter(out, "tether_state_reports_refused_total",
            "Reports the server refused (stale base version, too large, invalid).",
            state.reports_refused);
    counter(out, "tether_state_report_failures_total",
            "Report commands that failed or printed no valid JSON object.", state.report_failures);
    counter(out, "tether_state_desired_snapshots_total",
            "Desired state snapshots received (after a long outage or a trimmed history).",
            state.desired_snapshots);
    counter(out, "tether_state_desired_increments_total", "Desired state increments received.",
            state.desired_increments);
    header(out, "tether_link_info", "gauge",
           "Always 1; the labels name the link's protocol (tether.v1, websocket) and its "
           "delivery guarantee (acknowledged, at-most-once, at-least-once).");
    sample(out, "tether_link_info",
           "{protocol=\"" + escape_label_value(s.protocol) + "\",delivery=\"" +
               escape_label_value(s.delivery) + "\"}",
           "1");
    counter(out, "tether_messages_in_doubt_total",
            "Plain WebSocket: messages handed to the kernel on links that died before a pong "
            "confirmed them (at-most-once: possibly lost; at-least-once: sent again).",
            s.messages_in_doubt);
    counter(out, "tether_messages_confirmed_total",
            "Plain WebSocket: messages a pong confirmed the peer had read.", s.messages_confirmed);
    counter(out, "tether_downlink_lost_total",
            "Plain WebSocket: server messages the output could not take (never sent again).",
            s.downlink_lost);
    return out;
}

Status write_metrics(const std::string& path, const MetricsSnapshot& snapshot) {
    return write_file_atomically(path, render_metrics(snapshot));
}

}  // namespace tether::daemon

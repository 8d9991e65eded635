// SPDX-License-Identifier: MIT
#include "status_file.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <utility>

#include "atomic_write.h"

namespace tether::daemon {
namespace {

void append_json_string(std::string& out, const std::string& text) {
    out += '"';
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (byte < 0x20u) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(byte));
            out += escaped;
        } else {
            out += c;
        }
    }
    out += '"';
}

void append_number(std::string& out, std::uint64_t value) {
    char digits[24];
    std::snprintf(digits, sizeof digits, "%" PRIu64, value);
    out += digits;
}

void append_key(std::string& out, const char* key) {
    if (out.size() > 1) {
        out += ',';
    }
    out += '"';
    out += key;
    out += "\":";
}

void add_string(std::string& out, const char* key, const std::string& value) {
    append_key(out, key);
    append_json_string(out, value);
}

void add_number(std::string& out, const char* key, std::uint64_t value) {
    append_key(out, key);
    append_number(out, value);
}

void add_bool(std::string& out, const char* key, bool value) {
    append_key(out, key);
    out += value ? "true" : "false";
}

std::string tenths_of_seconds(std::uint32_t ms) {
    const std::uint64_t tenths = (static_cast<std::uint64_t>(ms) + 50u) / 100u;
    char text[32];
    std::snprintf(text, sizeof text, "%" PRIu64 ".%" PRIu64 " s", tenths / 10u, tenths % 10u);
    return text;
}

bool has_text(const char* text) {
    return text != nullptr && *text != '\0';
}

void append_reason(std::string& out, const ClientEvent& event) {
    if (has_text(event.reason)) {
        out += ": ";
        out += event.reason;
    }
    if (has_text(event.detail)) {
        out += " (";
        out += event.detail;
        out += ')';
    }
}

}  // namespace

std::string status_json(const StatusSnapshot& snapshot) {
    std::string out = "{";
    add_string(out, "state", to_string(snapshot.state));
    add_number(out, "since_ms", snapshot.since_ms);
    add_string(out, "endpoint", snapshot.endpoint);
    add_number(out, "attempt", snapshot.attempt);
    add_number(out, "retry_in_ms", snapshot.retry_in_ms);
    add_string(out, "reason", snapshot.reason);
    add_string(out, "detail", snapshot.detail);
    if (snapshot.session.empty()) {
        append_key(out, "session");
        out += "null";
    } else {
        add_string(out, "session", snapshot.session);
    }
    add_number(out, "version", snapshot.version);
    add_number(out, "queued", snapshot.queued);
    add_number(out, "acked", snapshot.acked);
    add_number(out, "dropped", snapshot.dropped);
    if (snapshot.has_rtt) {
        add_number(out, "rtt_ms", snapshot.rtt_ms);
    } else {
        append_key(out, "rtt_ms");
        out += "null";
    }
    add_number(out, "offline_ms_total", snapshot.offline_ms_total);
    add_string(out, "spool", snapshot.spool);
    if (snapshot.storage_error.empty()) {
        append_key(out, "storage_error");
        out += "null";
    } else {
        add_string(out, "storage_error", snapshot.storage_error);
    }
    add_number(out, "refused", snapshot.refused);
    add_number(out, "memory_only", snapshot.memory_only);
    add_number(out, "input_oversize", snapshot.input_oversize);
    for (const auto& text : {std::make_pair("credentials_error", &snapshot.credentials_error),
                             std::make_pair("metrics_error", &snapshot.metrics_error)}) {
        if (text.second->empty()) {
            append_key(out, text.first);
            out += "null";
        } else {
            add_string(out, text.first, *text.second);
        }
    }
    add_number(out, "status_errors", snapshot.status_errors);
    append_key(out, "device_state");
    const DeviceStateStatus& state = snapshot.device_state;
    if (!state.enabled) {
        out += "null";
    } else {
        std::string inner = "{";
        add_bool(inner, "negotiated", state.negotiated);
        add_number(inner, "desired_applied", state.desired_applied);
        add_number(inner, "desired_received", state.desired_received);
        add_number(inner, "reported_version", state.reported_version);
        add_bool(inner, "report_pending", state.report_pending);
        add_bool(inner, "in_sync", state.in_sync);
        add_bool(inner, "apply_failing", state.apply_failing);
        add_number(inner, "apply_failures", state.apply_failures);
        add_number(inner, "reports_refused", state.reports_refused);
        out += inner + "}";
    }
    append_key(out, "control");
    if (!snapshot.control.enabled) {
        out += "null";
    } else {
        std::string inner = "{";
        add_number(inner, "refused", snapshot.control.refused);
        add_number(inner, "flush_timeouts", snapshot.control.flush_timeouts);
        out += inner + "}";
    }
    add_number(out, "spool_records", snapshot.spool_records);
    add_number(out, "spool_bytes", snapshot.spool_bytes);
    add_number(out, "spool_capacity_bytes", snapshot.spool_capacity_bytes);
    {
        append_key(out, "downlink");
        std::string inner = "{";
        add_number(inner, "delivered", snapshot.downlink_delivered);
        add_number(inner, "dead_lettered", snapshot.downlink_dead_lettered);
        add_number(inner, "failures", snapshot.downlink_failures);
        add_number(inner, "confirmed", snapshot.downlink_confirmed);
        out += inner + "}";
    }
    add_string(out, "protocol", snapshot.protocol);
    add_string(out, "delivery", snapshot.delivery);
    add_number(out, "uplink_in_doubt", snapshot.in_doubt);
    add_number(out, "uplink_confirmed", snapshot.confirmed);
    add_number(out, "downlink_lost", snapshot.downlink_lost);
    {
        append_key(out, "compression");
        std::string inner = "{";
        add_bool(inner, "negotiated", snapshot.compression_negotiated);
        add_number(inner, "bytes_before", snapshot.compression_bytes_before);
        add_number(inner, "bytes_after", snapshot.compression_bytes_after);
        out += inner + "}";
    }
    out += "}\n";
    return out;
}

Status StatusFile::update(const StatusSnapshot& snapshot) {
    std::string text = status_json(snapshot);
    if (writes_ != 0 && text == last_written_) {
        return Status::kOk;
    }
    if (write_file_atomically(path_, text) != Status::kOk) {
        ++errors_;
        return Status::kIoError;
    }
    ++writes_;
    last_written_ = std::move(text);
    return Status::kOk;
}

std::string describe_state(const ClientEvent& event) {
    std::string out;
    switch (event.state) {
        case LinkState::kOnline:
            return "online";
        case LinkState::kWaitingToRetry:
            out = "reconnecting in " + tenths_of_seconds(event.delay_ms) + " (attempt ";
            append_number(out, event.attempt);
            out += ')';
            append_reason(out, event);
            return out;
        case LinkState::kGivenUp:
            if (has_text(event.reason) && std::strcmp(event.reason, "close_superseded") == 0) {
                return "superseded: another instance of this device took over the session";
            }
            out = "offline: gave up";
            if (has_text(event.reason)) {
                out += " (last failure: ";
                out += event.reason;
                out += ')';
            }
            return out;
        case LinkState::kIdle:
            return event.previous == LinkState::kIdle ? "idle" : "stopped";
        case LinkState::kResolving:
            return "connecting: resolving";
        case LinkState::kTcpConnecting:
            return "connecting: tcp";
        case LinkState::kProxyConnect:
            return "connecting: proxy tunnel";
        case LinkState::kTlsHandshake:
            return "connecting: tls handshake";
        case LinkState::kWsHandshake:
            return "connecting: websocket upgrade";
        case LinkState::kSessionResume:
            return "connecting: resuming session";
        case LinkState::kClosing:
            return "closing";
    }
    return std::string("unknown state ") + to_string(event.state);
}

}  // namespace tether::daemon

// SPDX-License-Identifier: MIT
// GET /metrics: tether-server's counters in the Prometheus text exposition
// format (version 0.0.4). Every name is listed in docs/METRICS.md; the
// integration test compares that list with a scrape and runs promtool on it.
#include <cinttypes>
#include <cstdio>
#include <string>

#include "server.h"

#ifndef TETHER_VERSION
#define TETHER_VERSION "unknown"
#endif

namespace tether::server {
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

std::string integer(std::uint64_t value) {
    char text[24];
    std::snprintf(text, sizeof text, "%" PRIu64, value);
    return text;
}

// Milliseconds as seconds with three decimals, in integer arithmetic.
std::string seconds(std::uint64_t ms) {
    char text[32];
    std::snprintf(text, sizeof text, "%" PRIu64 ".%03" PRIu64, ms / 1000u, ms % 1000u);
    return text;
}

void one(std::string& out, const char* name, const char* type, const char* help,
         std::uint64_t value) {
    header(out, name, type, help);
    out += name;
    out += ' ';
    out += integer(value);
    out += '\n';
}

}  // namespace

const char* to_string(UpgradeRejection why) {
    switch (why) {
        case UpgradeRejection::kMalformed:
            return "malformed";
        case UpgradeRejection::kBadSubprotocol:
            return "bad_subprotocol";
        case UpgradeRejection::kBadToken:
            return "bad_token";
        case UpgradeRejection::kThrottled:
            return "throttled";
        case UpgradeRejection::kTooMany:
            return "too_many";
        case UpgradeRejection::kStoreUnavailable:
            return "store_unavailable";
        case UpgradeRejection::kFaultInjected:
            return "fault_injected";
        case UpgradeRejection::kCount:
            break;
    }
    return "unknown";
}

void Server::observe_store_latency(std::uint32_t ms) {
    std::size_t bucket = 0;
    while (bucket < kStoreLatencyBuckets && ms > kStoreLatencyBucketsMs[bucket]) {
        ++bucket;
    }
    ++metrics_.store_latency[bucket];
    metrics_.store_latency_sum_ms += ms;
}

std::string Server::metrics_text() const {
    const EngineStats totals = engine_->stats();
    const MetricsCounters& m = metrics_;
    const char* engine = options_.store == Options::Store::kRedis ? "redis" : "file";
    std::string out;
    header(out, "tether_server_build_info", "gauge",
           "Always 1; the labels name the version and the store engine.");
    out += std::string("tether_server_build_info{version=\"") + TETHER_VERSION + "\",engine=\"" +
           engine + "\"} 1\n";
    one(out, "tether_server_connections", "gauge",
        "Client connections open now (any phase: TLS, upgrade, online, closing).", clients_.size());
    one(out, "tether_server_connections_accepted_total", "counter",
        "Client connections accepted, before any check.", m.connections_accepted);
    one(out, "tether_server_upgrades_total", "counter",
        "Upgrades answered 101 Switching Protocols.", m.upgrades_accepted);
    header(out, "tether_server_upgrades_rejected_total", "counter",
           "Connections refused before or at the upgrade, by reason.");
    for (std::size_t i = 0; i < static_cast<std::size_t>(UpgradeRejection::kCount); ++i) {
        out += std::string("tether_server_upgrades_rejected_total{reason=\"") +
               to_string(static_cast<UpgradeRejection>(i)) + "\"} " +
               integer(m.upgrades_rejected[i]) + "\n";
    }
    one(out, "tether_server_hellos_forbidden_total", "counter",
        "Hellos refused with 4003 (another user's session, or the wrong device).",
        counters_.hellos_forbidden);
    one(out, "tether_server_sessions", "gauge", "Sessions with a live connection now.",
        live_.size());
    one(out, "tether_server_sessions_started_total", "counter",
        "Hellos welcomed: a session (new or resumed) claimed by a connection.", m.hellos_accepted);
    one(out, "tether_server_store_sessions", "gauge",
        "Sessions the store knows (file: on disk; redis: served by this instance).",
        totals.sessions);
    one(out, "tether_server_messages_stored_total", "counter",
        "Uplink messages handed to the store and taken (duplicates not included).",
        m.messages_stored);
    one(out, "tether_server_messages_duplicate_total", "counter",
        "Uplink messages the store already had (a resend after a lost ACK).", totals.duplicates);
    one(out, "tether_server_acks_sent_total", "counter", "ACK messages queued to devices.",
        m.acks_sent);
    one(out, "tether_server_store_errors_total", "counter",
        "Failed store operations (file: write or sync; redis: a refused or lost command).",
        totals.store_errors);
    one(out, "tether_server_store_ready", "gauge",
        "1 while the store can answer hellos (redis: connected to a primary), else 0.",
        totals.ready ? 1u : 0u);
    header(out, "tether_server_store_seconds", "histogram",
           "Time from handing an uplink message to the store until the ACK that covers it "
           "(batching, write and sync, or the Redis round trip).");
    const std::string label = std::string("engine=\"") + engine + "\"";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= kStoreLatencyBuckets; ++i) {
        cumulative += m.store_latency[i];
        const std::string le =
            i < kStoreLatencyBuckets ? seconds(kStoreLatencyBucketsMs[i]) : std::string("+Inf");
        out += "tether_server_store_seconds_bucket{" + label + ",le=\"" + le + "\"} " +
               integer(cumulative) + "\n";
    }
    out +=
        "tether_server_store_seconds_sum{" + label + "} " + seconds(m.store_latency_sum_ms) + "\n";
    out += "tether_server_store_seconds_count{" + label + "} " + integer(cumulative) + "\n";
    return out;
}

}  // namespace tether::server

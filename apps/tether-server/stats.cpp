// SPDX-License-Identifier: MIT
// GET /stats: the store's ground truth per session plus what is live, as JSON (cJSON).
#include <cjson/cJSON.h>

#include <string>

#include "server.h"

namespace tether::server {

std::string Server::stats_json() const {
    cJSON* root = cJSON_CreateObject();
    const EngineStats totals = engine_->stats();
    cJSON* store = cJSON_AddObjectToObject(root, "store");
    cJSON_AddNumberToObject(store, "sessions", static_cast<double>(totals.sessions));
    cJSON_AddNumberToObject(store, "received", static_cast<double>(totals.received));
    cJSON_AddNumberToObject(store, "duplicates", static_cast<double>(totals.duplicates));
    cJSON_AddNumberToObject(store, "gap_count", static_cast<double>(totals.gap_count));
    cJSON_AddNumberToObject(store, "missing_seqs", static_cast<double>(totals.missing_seqs));
    cJSON_AddNumberToObject(store, "downlink_pushed", static_cast<double>(totals.downlink_pushed));
    cJSON_AddBoolToObject(store, "failed", totals.failed);
    cJSON_AddBoolToObject(store, "ready", totals.ready);
    cJSON_AddNumberToObject(store, "errors", static_cast<double>(totals.store_errors));
    cJSON_AddNumberToObject(store, "failed_sessions", static_cast<double>(totals.failed_sessions));
    cJSON_AddNumberToObject(store, "session_failures",
                            static_cast<double>(totals.session_failures));
    cJSON_AddNumberToObject(store, "open_sessions", static_cast<double>(totals.open_sessions));
    cJSON_AddNumberToObject(store, "reopens", static_cast<double>(totals.reopens));
    cJSON_AddNumberToObject(root, "connections", static_cast<double>(clients_.size()));
    cJSON_AddBoolToObject(root, "silenced", faults_.silenced);
    cJSON_AddBoolToObject(root, "rejecting", faults_.rejecting);
    cJSON_AddNumberToObject(root, "upgrades_unauthorized",
                            static_cast<double>(counters_.upgrades_unauthorized));
    cJSON_AddNumberToObject(root, "upgrades_throttled",
                            static_cast<double>(counters_.upgrades_throttled));
    cJSON_AddNumberToObject(root, "hellos_forbidden",
                            static_cast<double>(counters_.hellos_forbidden));
    cJSON_AddNumberToObject(root, "accept_backoffs",
                            static_cast<double>(counters_.accept_backoffs));
    cJSON_AddNumberToObject(root, "admin_unauthorized",
                            static_cast<double>(counters_.admin_unauthorized));
    cJSON_AddNumberToObject(root, "admin_timeouts", static_cast<double>(counters_.admin_timeouts));
    cJSON_AddNumberToObject(root, "admin_evicted", static_cast<double>(counters_.admin_evicted));
    cJSON_AddNumberToObject(root, "admin_refused", static_cast<double>(counters_.admin_refused));
    cJSON_AddNumberToObject(root, "desired_sent", static_cast<double>(counters_.desired_sent));
    cJSON_AddNumberToObject(root, "desired_set", static_cast<double>(counters_.desired_set));
    cJSON_AddNumberToObject(root, "reports_applied",
                            static_cast<double>(counters_.reports_applied));
    cJSON_AddNumberToObject(root, "reports_refused",
                            static_cast<double>(counters_.reports_refused));

    cJSON* sessions = cJSON_AddArrayToObject(root, "sessions");
    for (const std::string& id : engine_->sessions()) {
        SessionStats stats;
        if (!engine_->session_stats(id, &stats)) {
            continue;
        }
        cJSON* item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "session", stats.session.c_str());
        cJSON_AddStringToObject(item, "device", stats.device.c_str());
        if (stats.has_owner) {
            cJSON_AddStringToObject(item, "owner", stats.owner.c_str());
        } else {
            cJSON_AddNullToObject(item, "owner");
        }
        cJSON_AddNumberToObject(item, "version", stats.version);
        cJSON_AddBoolToObject(item, "failed", stats.failed);
        cJSON_AddNumberToObject(item, "received", static_cast<double>(stats.received));
        cJSON_AddNumberToObject(item, "highest_seq", static_cast<double>(stats.highest_seq));
        cJSON_AddNumberToObject(item, "next_expected", static_cast<double>(stats.next_expected));
        cJSON_AddNumberToObject(item, "acknowledgeable",
                                static_cast<double>(stats.acknowledgeable));
        cJSON_AddNumberToObject(item, "duplicates", static_cast<double>(stats.duplicates));
        cJSON_AddNumberToObject(item, "gap_count", static_cast<double>(stats.gap_count));
        cJSON_AddNumberToObject(item, "missing_seqs", static_cast<double>(stats.missing_seqs));
        cJSON_AddNumberToObject(item, "unreported_gaps",
                                static_cast<double>(stats.unreported_gaps));
        cJSON* gaps = cJSON_AddArrayToObject(item, "gaps");
        for (const GapRecord& gap : stats.gaps) {
            cJSON* entry = cJSON_CreateObject();
            cJSON_AddNumberToObject(entry, "first", static_cast<double>(gap.first));
            cJSON_AddNumberToObject(entry, "last", static_cast<double>(gap.last));
            cJSON_AddStringToObject(entry, "reason", gap.reason.c_str());
            cJSON_AddItemToArray(gaps, entry);
        }
        const auto live = live_.find(id);
        cJSON_AddNumberToObject(item, "live_connections", live != live_.end() ? 1 : 0);
        cJSON_AddNumberToObject(item, "downlink_next",
                                static_cast<double>(stats.downlink_last_seq + 1));
        cJSON_AddNumberToObject(item, "downlink_acked", static_cast<double>(stats.downlink_acked));
        cJSON_AddNumberToObject(item, "downlink_held", static_cast<double>(stats.downlink_held));
        cJSON_AddNumberToObject(
            item, "downlink_sent",
            live != live_.end() ? static_cast<double>(live->second->downlink_sent()) : 0.0);
        cJSON_AddNumberToObject(item, "desired_version",
                                static_cast<double>(stats.desired_version));
        cJSON_AddNumberToObject(item, "desired_applied",
                                static_cast<double>(stats.desired_applied));
        cJSON_AddNumberToObject(item, "reported_version",
                                static_cast<double>(stats.reported_version));
        cJSON_AddItemToArray(sessions, item);
    }
    char* text = cJSON_PrintUnformatted(root);
    std::string out = text != nullptr ? text : "{}";
    cJSON_free(text);
    cJSON_Delete(root);
    return out + "\n";
}

}  // namespace tether::server

// SPDX-License-Identifier: MIT
#include "link_log.h"

#include <dirent.h>
#include <sys/resource.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>

namespace tether::bench {

std::uint64_t monotonic_us() {
    struct timespec now {};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<std::uint64_t>(now.tv_sec) * 1000000u +
           static_cast<std::uint64_t>(now.tv_nsec) / 1000u;
}

double process_cpu_s() {
    struct timespec now {};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

void self_rusage(double* user_s, double* system_s) {
    struct rusage usage {};
    ::getrusage(RUSAGE_SELF, &usage);
    *user_s = static_cast<double>(usage.ru_utime.tv_sec) +
              static_cast<double>(usage.ru_utime.tv_usec) / 1e6;
    *system_s = static_cast<double>(usage.ru_stime.tv_sec) +
                static_cast<double>(usage.ru_stime.tv_usec) / 1e6;
}

double other_process_cpu_s(long pid) {
    // schedstat's first field is the task's time on a CPU in nanoseconds,
    // exact where /proc/PID/stat counts clock ticks.
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%ld/task", pid);
    DIR* tasks = ::opendir(path);
    if (tasks == nullptr) {
        return -1;
    }
    double total = 0;
    bool any = false;
    while (const struct dirent* entry = ::readdir(tasks)) {
        if (entry->d_name[0] == '.') {
            continue;
        }
        char file[300];
        std::snprintf(file, sizeof file, "/proc/%ld/task/%s/schedstat", pid, entry->d_name);
        FILE* stat = std::fopen(file, "r");
        if (stat == nullptr) {
            continue;
        }
        unsigned long long run_ns = 0;
        if (std::fscanf(stat, "%llu", &run_ns) == 1) {
            total += static_cast<double>(run_ns) / 1e9;
            any = true;
        }
        std::fclose(stat);
    }
    ::closedir(tasks);
    return any ? total : -1;
}

IoResult RecordingConnection::read(std::uint8_t* out, std::size_t size) {
    const IoResult result = inner_.read(out, size);
    if (log_reads_ && result.status == IoStatus::kOk && result.bytes > 0) {
        std::printf("t_us=%llu event=rx bytes=%zu\n",
                    static_cast<unsigned long long>(monotonic_us()), result.bytes);
        std::fflush(stdout);
    }
    return result;
}

void LinkLog::on_state(const ClientEvent& event) {
    const std::uint64_t now_us = monotonic_us();
    if (in_tls_ && event.state != LinkState::kTlsHandshake) {
        in_tls_ = false;
        tls_cpu_s_ += process_cpu_s() - tls_started_cpu_s_;
        tls_wall_s_ += static_cast<double>(now_us - tls_started_us_) / 1e6;
        if (event.state == LinkState::kWsHandshake) {
            ++tls_handshakes_;
            tls_resumed_ += transport_.session_resumed() ? 1u : 0u;
        }
    }
    if (event.state == LinkState::kTlsHandshake) {
        in_tls_ = true;
        tls_started_cpu_s_ = process_cpu_s();
        tls_started_us_ = now_us;
    }
    std::printf("t_us=%llu event=state state=%s previous=%s attempt=%u",
                static_cast<unsigned long long>(now_us), to_string(event.state),
                to_string(event.previous), static_cast<unsigned>(event.attempt));
    if (event.state == LinkState::kWaitingToRetry) {
        std::printf(" delay_ms=%u", static_cast<unsigned>(event.delay_ms));
    }
    if (event.reason[0] != '\0') {
        std::printf(" reason=%s", event.reason);
    }
    if (event.detail[0] != '\0') {
        std::printf(" detail=\"%s\"", event.detail);
    }
    if (event.state == LinkState::kWsHandshake && event.previous == LinkState::kTlsHandshake) {
        std::printf(" tls_resumed=%d", transport_.session_resumed() ? 1 : 0);
    }
    if (event.state == LinkState::kOnline && client_ != nullptr) {
        const std::uint64_t resumed = client_->counters().resumed;
        std::printf(" resumed=%d resumed_total=%llu connects=%llu", resumed > resumed_seen_ ? 1 : 0,
                    static_cast<unsigned long long>(resumed),
                    static_cast<unsigned long long>(client_->counters().connects));
    }
    std::fputc('\n', stdout);
    std::fflush(stdout);
    if (client_ != nullptr) {
        resumed_seen_ = client_->counters().resumed;
    }
}

void LinkLog::reset_tls_totals() {
    tls_handshakes_ = 0;
    tls_resumed_ = 0;
    tls_cpu_s_ = 0;
    tls_wall_s_ = 0;
}

}  // namespace tether::bench

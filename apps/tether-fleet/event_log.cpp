// SPDX-License-Identifier: MIT
#include "event_log.h"

#include <time.h>

namespace tether::fleet {

double monotonic_ms() {
    struct timespec now {};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<double>(now.tv_sec) * 1000.0 + static_cast<double>(now.tv_nsec) / 1e6;
}

EventLog::~EventLog() {
    close();
}

bool EventLog::open(const char* path) {
    close();
    file_ = std::fopen(path, "w");
    if (file_ == nullptr) {
        return false;
    }
    // A storm of 1,000 clients writes tens of thousands of lines in a few
    // seconds: a large buffer keeps that to a few writes per flush interval.
    (void)std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
    last_flush_ms_ = monotonic_ms();
    return true;
}

void EventLog::record(std::size_t client, const char* event, const char* fields) {
    if (file_ == nullptr) {
        return;
    }
    std::fprintf(file_, "%.3f %zu %s%s\n", monotonic_ms(), client, event,
                 fields != nullptr ? fields : "");
}

void EventLog::flush_if_due() {
    if (file_ != nullptr && monotonic_ms() - last_flush_ms_ >= kFlushIntervalMs) {
        flush();
    }
}

unsigned EventLog::next_flush_in_ms() const {
    if (file_ == nullptr) {
        return static_cast<unsigned>(kFlushIntervalMs);
    }
    const double left = kFlushIntervalMs - (monotonic_ms() - last_flush_ms_);
    return left <= 0 ? 0u : static_cast<unsigned>(left) + 1u;
}

void EventLog::flush() {
    if (file_ != nullptr) {
        (void)std::fflush(file_);
        last_flush_ms_ = monotonic_ms();
    }
}

void EventLog::close() {
    if (file_ != nullptr) {
        (void)std::fclose(file_);
        file_ = nullptr;
    }
}

}  // namespace tether::fleet

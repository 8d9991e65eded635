// SPDX-License-Identifier: MIT
// The --events file of tether-fleet: one line per client event,
//
//   MONOTONIC_MS CLIENT EVENT [key=value ...]
//
// MONOTONIC_MS is CLOCK_MONOTONIC in milliseconds with three decimals, the
// clock of Python's time.monotonic(), so a driver can put its own actions
// (killing the server, restarting it) on the same time line. Lines are
// buffered and written out at least every kFlushIntervalMs and at close.
#pragma once

#include <cstddef>
#include <cstdio>

namespace tether::fleet {

/// CLOCK_MONOTONIC in milliseconds, not truncated (unlike port::monotonic_now(),
/// which wraps at 2^32 ms for the core's arithmetic).
double monotonic_ms();

class EventLog {
  public:
    static constexpr double kFlushIntervalMs = 100.0;

    EventLog() = default;
    ~EventLog();
    EventLog(const EventLog&) = delete;
    EventLog& operator=(const EventLog&) = delete;

    /// Opens (truncates) `path`. False on failure (errno says why).
    bool open(const char* path);
    bool is_open() const { return file_ != nullptr; }

    /// Appends one line: the time now, `client`, `event` and `fields` (may be
    /// null; " key=value ..." text appended as is). Does nothing when not open.
    void record(std::size_t client, const char* event, const char* fields = nullptr);

    /// Writes buffered lines out when kFlushIntervalMs have passed since the last flush.
    void flush_if_due();
    /// How long until flush_if_due() has work, in whole ms (0: now).
    unsigned next_flush_in_ms() const;
    void flush();
    void close();

  private:
    std::FILE* file_ = nullptr;
    double last_flush_ms_ = 0;
};

}  // namespace tether::fleet

// SPDX-License-Identifier: MIT
#include "downlink_output.h"

#include <dirent.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

#include "atomic_write.h"

// The front of the queue is the only message being worked on. Its progress
// (attempts_, the wait before the next try, the running command, written_)
// is reset by hand_over(), the one place a message leaves the queue, which
// also advances confirmed_: a message is never removed without being handed
// over, so confirmed_ can only name a seq whose predecessors are all handed
// over too.

namespace tether::daemon {
namespace {

DownlinkFailure failure_of(CommandEnd end) {
    switch (end) {
        case CommandEnd::kRunning:
        case CommandEnd::kSucceeded:
            return DownlinkFailure::kNone;  // even if it finished as the kill went out
        case CommandEnd::kExited:
            return DownlinkFailure::kExited;
        case CommandEnd::kSignaled:
            return DownlinkFailure::kSignaled;
        case CommandEnd::kTimedOut:
            return DownlinkFailure::kTimedOut;
        case CommandEnd::kLost:
            return DownlinkFailure::kLost;  // reaped elsewhere: not known to be handed over
    }
    return DownlinkFailure::kLost;
}

// One tick() hands over at most this many messages, so one call stays short.
constexpr int kMaxStepsPerTick = 64;

BackoffConfig retry_backoff(const DownlinkOutputConfig& config) {
    BackoffConfig backoff;
    std::uint32_t initial = config.retry_delay_ms > 0 ? config.retry_delay_ms : 1;
    initial = initial < kMaxBackoffDelayMs ? initial : kMaxBackoffDelayMs;
    backoff.initial_delay_ms = initial;
    backoff.multiplier_permille = 2000;
    backoff.max_delay_ms =
        initial > DownlinkOutput::kMaxRetryDelayMs ? initial : DownlinkOutput::kMaxRetryDelayMs;
    backoff.jitter = JitterMode::kNone;
    return backoff;
}

std::string parent_of(const std::string& path) {
    const std::size_t slash = path.rfind('/');
    if (slash == std::string::npos) {
        return ".";
    }
    return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

const char* to_string(DownlinkEventKind kind) {
    switch (kind) {
        case DownlinkEventKind::kAttemptFailed:
            return "attempt_failed";
        case DownlinkEventKind::kDeadLettered:
            return "dead_lettered";
        case DownlinkEventKind::kDeadLetterFailed:
            return "dead_letter_failed";
        case DownlinkEventKind::kWriteFailed:
            return "write_failed";
        case DownlinkEventKind::kRecovered:
            return "recovered";
    }
    return "unknown";
}

const char* to_string(DownlinkFailure failure) {
    switch (failure) {
        case DownlinkFailure::kNone:
            return "none";
        case DownlinkFailure::kExited:
            return "exited";
        case DownlinkFailure::kSignaled:
            return "signaled";
        case DownlinkFailure::kTimedOut:
            return "timed_out";
        case DownlinkFailure::kSpawnFailed:
            return "spawn_failed";
        case DownlinkFailure::kLost:
            return "lost";
        case DownlinkFailure::kNotALine:
            return "not_a_line";
        case DownlinkFailure::kTooLarge:
            return "too_large";
    }
    return "unknown";
}

bool DownlinkOutput::ErrorsSeen::first(int error) {
    last_ = error;
    for (std::size_t i = 0; i < count_; ++i) {
        if (seen_[i] == error) {
            return false;
        }
    }
    if (count_ == sizeof seen_ / sizeof seen_[0]) {
        return false;  // that many kinds at once: the rest are only counted
    }
    seen_[count_++] = error;
    return true;
}

DownlinkOutput::DownlinkOutput(const DownlinkOutputConfig& config, char* queue,
                               std::size_t queue_capacity)
    : config_(config),
      retry_backoff_(retry_backoff(config)),
      queue_(queue),
      queue_capacity_(queue == nullptr ? 0 : queue_capacity) {
    config_.command_timeout_ms = config_.command_timeout_ms > 0 ? config_.command_timeout_ms : 1;
    config_.stall_retry_ms = config_.stall_retry_ms > 0 ? config_.stall_retry_ms : 1;
}

DownlinkOutput::~DownlinkOutput() = default;  // the command's own destructor kills it

bool DownlinkOutput::can_accept(std::size_t size) const {
    if (size > UINT32_MAX || size + kEntryOverhead > queue_capacity_) {
        return queue_count_ == 0;  // deliver() dead-letters it at once
    }
    return size + kEntryOverhead <= queue_capacity_ - queue_used_;
}

Status DownlinkOutput::deliver(std::uint64_t seq, const char* data, std::size_t size) {
    if (seq == 0 || (data == nullptr && size > 0)) {
        return Status::kInvalidArgument;
    }
    if (seq <= last_seq_) {
        ++counters_.duplicates;
        return Status::kOk;
    }
    if (refused_seq_ != 0 && seq > refused_seq_) {
        ++counters_.refused;
        return Status::kNoSpace;
    }
    if (size > UINT32_MAX || size + kEntryOverhead > queue_capacity_) {
        if (queue_count_ == 0 && dead_letter(seq, data, size, DownlinkFailure::kTooLarge)) {
            ++counters_.rejected;
            last_seq_ = seq;
            refused_seq_ = 0;
            confirmed_ = seq;
            return Status::kOk;
        }
        ++counters_.refused;
        refused_seq_ = seq;
        return Status::kTooLarge;
    }
    if (size + kEntryOverhead > queue_capacity_ - queue_used_) {
        ++counters_.refused;
        refused_seq_ = seq;
        return Status::kNoSpace;
    }
    const bool line_mode = config_.command == nullptr;
    if (line_mode && size > 0 && std::memchr(data, '\n', size) != nullptr) {
        ++counters_.rejected;
    }
    push(seq, data, size);
    last_seq_ = seq;
    refused_seq_ = 0;
    if (line_mode && queue_count_ == 1) {
        // Written at once; a command waits for tick(), which knows the time
        // its deadline counts from.
        (void)step(0, false);
    }
    return Status::kOk;
}

void DownlinkOutput::skip(std::uint64_t first, std::uint64_t last) {
    if (refused_seq_ != 0 && first <= refused_seq_ && refused_seq_ <= last) {
        refused_seq_ = 0;
    }
}

bool DownlinkOutput::next_deadline(TimeMs* at) const {
    bool any = false;
    TimeMs earliest = 0;
    any = command_.deadline(&earliest);
    if (waiting_ && !wait_unset_) {
        earliest = any ? time_earliest(earliest, resume_at_) : resume_at_;
        any = true;
    }
    if (any && at != nullptr) {
        *at = earliest;
    }
    return any;
}

void DownlinkOutput::tick(TimeMs now) {
    for (int i = 0; i < kMaxStepsPerTick && queue_count_ > 0; ++i) {
        if (!step(now, true)) {
            return;
        }
    }
}

std::size_t DownlinkOutput::front_size() const {
    std::uint32_t size = 0;
    std::memcpy(&size, queue_, sizeof size);
    return size;
}

std::uint64_t DownlinkOutput::front_seq() const {
    std::uint64_t seq = 0;
    std::memcpy(&seq, queue_ + 4, sizeof seq);
    return seq;
}

void DownlinkOutput::push(std::uint64_t seq, const char* data, std::size_t size) {
    const auto header = static_cast<std::uint32_t>(size);
    char* entry = queue_ + queue_used_;
    std::memcpy(entry, &header, sizeof header);
    std::memcpy(entry + 4, &seq, sizeof seq);
    if (size > 0) {
        std::memcpy(entry + kEntryOverhead, data, size);
    }
    queue_used_ += kEntryOverhead + size;
    ++queue_count_;
}

void DownlinkOutput::hand_over() {
    confirmed_ = front_seq();
    const std::size_t entry = kEntryOverhead + front_size();
    std::memmove(queue_, queue_ + entry, queue_used_ - entry);
    queue_used_ -= entry;
    --queue_count_;
    attempts_ = 0;
    waiting_ = false;
    wait_unset_ = false;
    written_ = 0;
}

void DownlinkOutput::wait_for(std::uint32_t delay_ms, TimeMs now, bool have_now) {
    waiting_ = true;
    wait_unset_ = !have_now;
    wait_ms_ = delay_ms;
    resume_at_ = now + delay_ms;
}

bool DownlinkOutput::ready(TimeMs now) {
    if (!waiting_) {
        return true;
    }
    if (wait_unset_) {
        resume_at_ = now + wait_ms_;
        wait_unset_ = false;
    }
    if (!time_reached(now, resume_at_)) {
        return false;
    }
    waiting_ = false;
    return true;
}

// One move for the front message. True when it was handed over (the next
// one may go on in the same tick).
bool DownlinkOutput::step(TimeMs now, bool have_now) {
    return config_.command == nullptr ? step_line(now, have_now) : step_command(now);
}

bool DownlinkOutput::step_line(TimeMs now, bool have_now) {
    if (waiting_ && (!have_now || !ready(now))) {
        return false;
    }
    const std::size_t size = front_size();
    const char* data = front_data();
    if (size > 0 && std::memchr(data, '\n', size) != nullptr) {
        if (dead_letter(front_seq(), data, size, DownlinkFailure::kNotALine)) {
            hand_over();
            return true;
        }
        wait_for(config_.stall_retry_ms, now, have_now);
        return false;
    }
    if (write_line()) {
        if (write_errors_seen_.any()) {
            report(DownlinkEventKind::kRecovered, front_seq(), DownlinkFailure::kNone,
                   write_errors_seen_.last());
            write_errors_seen_.clear();
        }
        ++counters_.delivered;
        hand_over();
        return true;
    }
    const int error = errno;
    ++counters_.write_errors;
    if (write_errors_seen_.first(error)) {
        report(DownlinkEventKind::kWriteFailed, front_seq(), DownlinkFailure::kNone, error);
    }
    wait_for(config_.stall_retry_ms, now, have_now);
    return false;
}

// Writes what is left of the front message's line, resuming after a failed
// write where it stopped so the reader never sees a byte twice.
bool DownlinkOutput::write_line() {
    const std::size_t size = front_size();
    char* message = queue_ + kEntryOverhead;
    char newline = '\n';
    while (written_ <= size) {
        iovec parts[2];
        int count = 0;
        if (written_ < size) {
            parts[count++] = {message + written_, size - written_};
        }
        parts[count++] = {&newline, 1};
        const ssize_t wrote = ::writev(config_.fd, parts, count);
        if (wrote >= 0) {
            written_ += static_cast<std::size_t>(wrote);
            continue;
        }
        if (errno == EINTR) {
            continue;
        }
        // A non-blocking descriptor that is full: wait briefly rather than
        // leave half a line behind.
        pollfd ready_fd{config_.fd, POLLOUT, 0};
        if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
            ::poll(&ready_fd, 1, config_.line_write_timeout_ms) > 0) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == 0) {
            errno = ETIMEDOUT;
        }
        return false;
    }
    return true;
}

bool DownlinkOutput::step_command(TimeMs now) {
    if (command_.running()) {
        // Feeds it, kills it at its deadline, reaps it (SIGKILL is not
        // instant: a killed command is reaped on a later tick).
        if (!command_.tick(now)) {
            return false;
        }
        last_status_ = command_.status();
        const DownlinkFailure failure = failure_of(command_.end());
        if (failure == DownlinkFailure::kNone) {
            ++counters_.delivered;
            hand_over();
            return true;
        }
        return after_failure(now, failure, 0);
    }
    if (!ready(now)) {
        return false;
    }
    if (attempts_ > 0) {
        ++counters_.retries;
    }
    ++attempts_;
    if (!command_.start(config_.command, front_data(), front_size(), true, nullptr, now,
                        config_.command_timeout_ms)) {
        const int error = errno;
        ++counters_.spawn_failures;
        return after_failure(now, DownlinkFailure::kSpawnFailed, error);
    }
    command_.feed();
    return false;
}

bool DownlinkOutput::after_failure(TimeMs now, DownlinkFailure failure, int error) {
    ++counters_.failed;
    if (failure == DownlinkFailure::kTimedOut) {
        ++counters_.timeouts;
    }
    report(DownlinkEventKind::kAttemptFailed, front_seq(), failure, error);
    if (attempts_ <= config_.retries) {
        wait_for(config_.retry_delay_ms == 0 ? 0 : retry_backoff_.base_delay(attempts_), now, true);
        return false;
    }
    if (dead_letter(front_seq(), front_data(), front_size(), failure)) {
        hand_over();
        return true;
    }
    // Retries spent and no dead letter: the next try, stall_retry_ms later,
    // runs the command once more and then tries the dead letter again.
    wait_for(config_.stall_retry_ms, now, true);
    return false;
}

std::uint64_t DownlinkOutput::highest_dead_letter_seq() const {
    if (config_.dead_letter_dir == nullptr) {
        return 0;
    }
    DIR* dir = ::opendir(config_.dead_letter_dir);
    if (dir == nullptr) {
        return 0;
    }
    std::uint64_t highest = 0;
    while (const struct dirent* entry = ::readdir(dir)) {
        // Only names dead_letter() writes: 20 digits and ".msg".
        const char* name = entry->d_name;
        if (std::strlen(name) != 24 || std::strcmp(name + 20, ".msg") != 0) {
            continue;
        }
        std::uint64_t seq = 0;
        bool digits = true;
        for (int i = 0; i < 20 && digits; ++i) {
            const char c = name[i];
            digits = c >= '0' && c <= '9' && seq <= (UINT64_MAX - 9u) / 10u;
            seq = seq * 10u + static_cast<std::uint64_t>(c - '0');
        }
        if (digits && seq > highest) {
            highest = seq;
        }
    }
    ::closedir(dir);
    return highest;
}

bool DownlinkOutput::dead_letter(std::uint64_t seq, const char* data, std::size_t size,
                                 DownlinkFailure why) {
    if (config_.dead_letter_dir == nullptr) {
        return false;
    }
    const std::string dir = config_.dead_letter_dir;
    char name[32];
    std::snprintf(name, sizeof name, "/%020" PRIu64 ".msg", seq);
    const std::string path = dir + name;
    bool ok = ::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST;
    // The directory's own entry must be durable too, once per run.
    if (ok && !dead_letter_dir_synced_) {
        ok = sync_directory(parent_of(dir)) == Status::kOk;
        dead_letter_dir_synced_ = ok;
    }
    ok = ok && write_file_durably(path, data, size, 0600) == Status::kOk;
    if (!ok) {
        const int error = errno;
        ++counters_.dead_letter_errors;
        if (dead_letter_errors_seen_.first(error)) {
            report(DownlinkEventKind::kDeadLetterFailed, seq, why, error);
        }
        return false;
    }
    ++counters_.dead_lettered;
    if (dead_letter_errors_seen_.any()) {
        report(DownlinkEventKind::kRecovered, seq, why, dead_letter_errors_seen_.last());
        dead_letter_errors_seen_.clear();
    }
    report(DownlinkEventKind::kDeadLettered, seq, why, 0, path.c_str());
    return true;
}

void DownlinkOutput::report(DownlinkEventKind kind, std::uint64_t seq, DownlinkFailure failure,
                            int error, const char* path) {
    if (config_.observer == nullptr) {
        return;
    }
    DownlinkEvent event;
    event.kind = kind;
    event.seq = seq;
    event.attempts = attempts_;
    event.failure = failure;
    event.status = failure == DownlinkFailure::kExited || failure == DownlinkFailure::kSignaled
                       ? last_status_
                       : -1;
    event.error = error;
    event.path = path;
    config_.observer->on_downlink_event(event);
}

}  // namespace tether::daemon

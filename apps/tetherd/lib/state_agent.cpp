// SPDX-License-Identifier: MIT
#include "state_agent.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "atomic_write.h"
#include "tether/net/json_document.h"
#include "tether/net/state_messages.h"

namespace tether::daemon {
namespace {

// The desired file's contents for `version` and `document` (compact JSON).
std::string desired_file_text(std::uint64_t version, const std::string& document) {
    return "{\"version\":" + std::to_string(version) + ",\"desired\":" + document + "}\n";
}

// What the file holds now ("" when it cannot be read), at most a little
// more than the largest text it can legitimately hold.
std::string read_small_file(const char* path) {
    std::string out;
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        return out;
    }
    char chunk[4096];
    constexpr std::size_t kLimit = net::v1::kMaxStateDocument + 64;
    while (out.size() <= kLimit) {
        const ssize_t got = ::read(fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            break;
        }
        out.append(chunk, static_cast<std::size_t>(got));
    }
    ::close(fd);
    return out;
}

// `text` as a compact object, or "" when it is not a valid one.
std::string compact(const std::string& text) {
    char out[net::v1::kMaxStateDocument];
    std::size_t length = 0;
    if (net::v1::compact_object(text.data(), text.size(), out, sizeof out, &length) !=
        net::v1::V1Status::kOk) {
        return std::string();
    }
    return std::string(out, length);
}

bool only_whitespace(const std::string& text) {
    for (char c : text) {
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            return false;
        }
    }
    return true;
}

}  // namespace

const char* to_string(StateEventKind kind) {
    switch (kind) {
        case StateEventKind::kApplied:
            return "applied";
        case StateEventKind::kApplyFailed:
            return "apply_failed";
        case StateEventKind::kApplyRecovered:
            return "apply_recovered";
        case StateEventKind::kReportFailed:
            return "report_failed";
        case StateEventKind::kReportRefused:
            return "report_refused";
        case StateEventKind::kReportAccepted:
            return "report_accepted";
    }
    return "unknown";
}

StateAgent::StateAgent(const StateAgentConfig& config, StateLink& link)
    : config_(config),
      link_(link),
      apply_(ShellCommand::kCaptureOutput, kMaxOutput),
      report_(ShellCommand::kCaptureOutput, kMaxOutput) {}

void StateAgent::on_desired(const DesiredChange& change) {
    has_pending_ = true;
    pending_version_ = change.version;
    pending_snapshot_ = change.snapshot;
    pending_document_.assign(change.document != nullptr ? change.document : "{}",
                             change.document != nullptr ? change.document_size : 2);
    pending_patch_.assign(change.patch != nullptr ? change.patch : "",
                          change.patch != nullptr ? change.patch_size : 0);
    retry_at_ = 0;  // a new change is tried at once, even during a failing episode
}

void StateAgent::on_report_answer(const ReportAnswer& answer) {
    StateEvent event;
    if (answer.accepted) {
        ++counters_.reports_accepted;
        event.kind = StateEventKind::kReportAccepted;
        event.version = answer.version;
        if (config_.observer != nullptr) {
            config_.observer->on_state_event(event);
        }
        return;
    }
    ++counters_.reports_refused;
    event.kind = StateEventKind::kReportRefused;
    event.version = answer.version;
    event.reason = answer.reason != nullptr ? answer.reason : "";
    if (config_.observer != nullptr) {
        config_.observer->on_state_event(event);
    }
    if (std::string(event.reason) == net::v1::kRefusedStale) {
        // The link now holds the server's version as its base: say the
        // device's whole state again on top of it.
        const std::string document = link_.reported_document();
        if (link_.report(document.data(), document.size(), true) == Status::kOk) {
            ++counters_.reports_made;
        }
    }
}

bool StateAgent::next_deadline(TimeMs* at) const {
    bool any = false;
    auto consider = [&](TimeMs when) {
        if (!any || when < *at) {
            *at = when;
            any = true;
        }
    };
    if (has_pending_ && !apply_.running()) {
        consider(retry_at_);
    }
    if (config_.report_command != nullptr && !report_.running() &&
        (!report_started_once_ || config_.report_interval_ms > 0)) {
        consider(report_due_);
    }
    return any;
}

void StateAgent::tick(TimeMs now) {
    if (apply_.running() && apply_.tick(now)) {
        finish_command(now);
    }
    if (has_pending_ && !apply_.running() && now >= retry_at_) {
        try_apply(now);
    }
    if (report_.running() && report_.tick(now)) {
        finish_report();
    }
    if (config_.report_command != nullptr && !report_.running() &&
        (!report_started_once_ || config_.report_interval_ms > 0) && now >= report_due_) {
        run_report(now);
    }
}

void StateAgent::try_apply(TimeMs now) {
    if (config_.desired_command != nullptr) {
        start_command(now);
        return;
    }
    if (write_file()) {
        applied();
    } else {
        failed(CommandEnd::kRunning, -1, errno, now);
    }
}

bool StateAgent::write_file() {
    const std::string text = desired_file_text(pending_version_, pending_document_);
    if (read_small_file(config_.desired_file) == text) {
        // Written before a restart that came before the confirmation was
        // saved: it is applied already, and writing it again would apply it
        // twice for anyone watching the file.
        ++counters_.already_applied;
        return true;
    }
    return write_file_durably(config_.desired_file, text.data(), text.size(), 0644) == Status::kOk;
}

void StateAgent::start_command(TimeMs now) {
    std::vector<std::string> environment;
    environment.push_back("TETHER_DESIRED_VERSION=" + std::to_string(pending_version_));
    environment.push_back(std::string("TETHER_DESIRED_SNAPSHOT=") +
                          (pending_snapshot_ ? "1" : "0"));
    if (!pending_snapshot_) {
        environment.push_back("TETHER_DESIRED_PATCH=" + pending_patch_);
    }
    // Its own copy: a newer change may replace pending_document_ while it runs.
    apply_input_ = pending_document_;
    apply_environment_ = std::move(environment);
    if (!apply_.start(config_.desired_command, apply_input_.data(), apply_input_.size(), true,
                      &apply_environment_, now, config_.command_timeout_ms)) {
        failed(CommandEnd::kRunning, -1, errno, now);
    }
}

void StateAgent::finish_command(TimeMs now) {
    if (apply_.end() != CommandEnd::kSucceeded) {
        failed(apply_.end(), apply_.status(), 0, now);
        return;
    }
    const std::string output = apply_.output();
    const bool overflowed = apply_.output_overflowed();
    applied();
    if (overflowed) {
        ++counters_.report_failures;
        emit(StateEventKind::kReportFailed, CommandEnd::kSucceeded, -1, 0,
             "desired_command printed more than 8192 bytes");
    } else if (!only_whitespace(output)) {
        hand_report(output, "desired_command");
    }
}

void StateAgent::applied() {
    const std::uint64_t version = pending_version_;
    has_pending_ = false;
    // kIoError: the link could not save the confirmation yet; it reports
    // that itself and keeps trying, and tells the server once it is saved.
    const Status confirmed = link_.desired_applied(version);
    if (confirmed == Status::kInvalidArgument) {
        // Not the version the link delivered: a newer change overtook this
        // one, which the link hands over next.
        ++counters_.confirm_refused;
    }
    ++counters_.applied;
    if (failing_) {
        failing_ = false;
        emit(StateEventKind::kApplyRecovered);
    }
    failures_in_row_ = 0;
    StateEvent event;
    event.kind = StateEventKind::kApplied;
    event.version = version;
    event.snapshot = pending_snapshot_;
    if (config_.observer != nullptr) {
        config_.observer->on_state_event(event);
    }
}

void StateAgent::failed(CommandEnd end, int status, int error, TimeMs now) {
    ++counters_.apply_failures;
    if (!failing_) {
        failing_ = true;
        emit(StateEventKind::kApplyFailed, end, status, error);
    }
    std::uint32_t delay = config_.retry_delay_ms;
    const std::uint32_t cap =
        config_.retry_delay_ms > kMaxRetryDelayMs ? config_.retry_delay_ms : kMaxRetryDelayMs;
    for (std::uint32_t i = 0; i < failures_in_row_ && delay < cap; ++i) {
        delay = delay > cap / 2 ? cap : delay * 2;
    }
    ++failures_in_row_;
    retry_at_ = now + delay;
}

void StateAgent::run_report(TimeMs now) {
    report_started_once_ = true;
    report_due_ = now + config_.report_interval_ms;
    if (!report_.start(config_.report_command, "", 0, false, nullptr, now,
                       config_.command_timeout_ms)) {
        ++counters_.report_failures;
        emit(StateEventKind::kReportFailed, CommandEnd::kRunning, -1, errno,
             "report_command could not be started");
    }
}

void StateAgent::finish_report() {
    if (report_.end() != CommandEnd::kSucceeded) {
        ++counters_.report_failures;
        emit(StateEventKind::kReportFailed, report_.end(), report_.status(), 0,
             "report_command failed");
        return;
    }
    if (report_.output_overflowed()) {
        ++counters_.report_failures;
        emit(StateEventKind::kReportFailed, CommandEnd::kSucceeded, -1, 0,
             "report_command printed more than 8192 bytes");
        return;
    }
    hand_report(report_.output(), "report_command");
}

void StateAgent::hand_report(const std::string& output, const char* source) {
    const std::string patch = compact(output);
    if (patch.empty()) {
        ++counters_.report_failures;
        emit(StateEventKind::kReportFailed, CommandEnd::kSucceeded, -1, 0,
             source[0] == 'd' ? "desired_command printed something that is not one JSON object"
                              : "report_command printed something that is not one JSON object");
        return;
    }
    const Status status = link_.report(patch.data(), patch.size(), false);
    if (status != Status::kOk) {
        ++counters_.report_failures;
        emit(StateEventKind::kReportFailed, CommandEnd::kSucceeded, -1, 0,
             status == Status::kTooLarge ? "the reported document would exceed 8192 bytes"
                                         : "the link refused the report");
        return;
    }
    ++counters_.reports_made;
}

void StateAgent::emit(StateEventKind kind, CommandEnd end, int status, int error,
                      const char* reason) {
    if (config_.observer == nullptr) {
        return;
    }
    StateEvent event;
    event.kind = kind;
    event.version = pending_version_;
    event.snapshot = pending_snapshot_;
    event.end = end;
    event.status = status;
    event.error = error;
    event.reason = reason;
    config_.observer->on_state_event(event);
}

}  // namespace tether::daemon

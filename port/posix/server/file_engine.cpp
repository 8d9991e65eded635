// SPDX-License-Identifier: MIT
#include "file_engine.h"

#include <utility>

namespace tether::server {

FileEngine::FileEngine(std::string directory, StoreOptions options)
    : directory_(std::move(directory)), store_(options) {}

FileEngine::Answer FileEngine::answer_of(Answer::Kind kind, std::uint64_t ticket,
                                         std::string_view session) {
    Answer answer;
    answer.kind = kind;
    answer.ticket = ticket;
    answer.session = std::string(session);
    return answer;
}

Status FileEngine::open(TimeMs now) {
    (void)now;
    const Status status = store_.open(directory_);
    opened_ = status == Status::kOk;
    return status;
}

void FileEngine::report_failure(const char* what, Status status) {
    ++store_errors_;
    if (!failure_reported_ && events_ != nullptr) {
        failure_reported_ = true;
        events_->on_store_error(what, status, directory_.c_str());
    }
}

Status FileEngine::hello(const HelloRequest& request, std::uint64_t ticket) {
    if (!opened_) {
        return Status::kUnavailable;
    }
    Answer answer = answer_of(Answer::Kind::kHello, ticket, std::string_view());
    answer.status = store_.hello(request, &answer.hello);
    if (answer.status == Status::kInvalidArgument) {
        return Status::kInvalidArgument;
    }
    if (answer.status == Status::kIoError) {
        report_failure("hello", answer.status);
    }
    answers_.push_back(std::move(answer));
    return Status::kOk;
}

UplinkResult FileEngine::uplink_data(std::string_view session, std::uint64_t seq,
                                     const std::uint8_t* payload, std::size_t size,
                                     const UplinkMeta& meta) {
    // The record logs keep the payload only; a backend that needs receive and
    // capture times uses the Redis engine (docs/PROTOCOL.md).
    (void)meta;
    const UplinkResult result = store_.uplink_data(session, seq, payload, size);
    if (result == UplinkResult::kIoError) {
        report_failure("uplink", Status::kIoError);
    }
    return result;
}

GapResult FileEngine::uplink_gap(std::string_view session, std::uint64_t first, std::uint64_t last,
                                 std::string_view reason) {
    const GapResult result = store_.uplink_gap(session, first, last, reason);
    if (result == GapResult::kIoError) {
        report_failure("gap", Status::kIoError);
    }
    return result;
}

void FileEngine::flush(TimeMs now) {
    (void)now;
    std::vector<AckUpdate> acks;
    std::vector<std::string> failed;
    // Failures are per session: the acks of the others are valid either way.
    if (store_.sync(&acks, &failed) == Status::kInvalidArgument) {
        report_failure("sync", Status::kInvalidArgument);
        return;
    }
    if (events_ == nullptr) {
        return;
    }
    for (const std::string& session : failed) {
        // Nothing of it may be acknowledged; its next hello reads it afresh.
        ++store_errors_;
        events_->on_session_failed(session, Status::kIoError);
    }
    for (const AckUpdate& ack : acks) {
        events_->on_acknowledgeable(ack.session, ack.last_uplink);
    }
}

Status FileEngine::downlink_acked(std::string_view session, std::uint64_t seq) {
    const Status status = store_.downlink_acked(session, seq);
    if (status == Status::kIoError) {
        report_failure("downlink_ack", status);
    }
    return status;
}

Status FileEngine::push_downlink(std::string_view session, const std::uint8_t* payload,
                                 std::size_t size, std::uint64_t ticket) {
    if (!opened_) {
        return Status::kUnavailable;
    }
    Answer answer = answer_of(Answer::Kind::kPushed, ticket, session);
    answer.status = store_.push_downlink(session, payload, size, &answer.seq);
    if (answer.status == Status::kTooLarge) {
        return Status::kTooLarge;
    }
    if (answer.status == Status::kOk) {
        // Durable before the answer says so, and before the device sees it.
        std::vector<AckUpdate> acks;
        std::vector<std::string> failed;
        // kIoError exactly when `failed` names sessions; they are handled below.
        if (store_.sync(&acks, &failed) == Status::kInvalidArgument) {
            report_failure("push", Status::kInvalidArgument);
            answer.status = Status::kIoError;
        }
        for (const std::string& session_failed : failed) {
            if (session_failed == answer.session) {
                answer.status = Status::kIoError;
            }
            if (events_ != nullptr) {
                events_->on_session_failed(session_failed, Status::kIoError);
            }
        }
        if (events_ != nullptr) {
            for (const AckUpdate& ack : acks) {
                events_->on_acknowledgeable(ack.session, ack.last_uplink);
            }
        }
    } else if (answer.status == Status::kIoError && events_ != nullptr) {
        events_->on_session_failed(answer.session, Status::kIoError);
    }
    if (answer.status == Status::kIoError) {
        ++store_errors_;
    }
    answers_.push_back(std::move(answer));
    return Status::kOk;
}

const DownlinkMessage* FileEngine::downlink_next(std::string_view session,
                                                 std::uint64_t after) const {
    return store_.downlink_next(session, after);
}

bool FileEngine::session_stats(std::string_view session, SessionStats* out) const {
    return store_.session_stats(session, out);
}

EngineStats FileEngine::stats() const {
    const StoreStats totals = store_.stats();
    EngineStats out;
    out.sessions = totals.sessions;
    out.received = totals.received;
    out.duplicates = totals.duplicates;
    out.gap_count = totals.gap_count;
    out.missing_seqs = totals.missing_seqs;
    out.downlink_pushed = totals.downlink_pushed;
    out.failed = totals.failed;
    out.ready = opened_;
    out.store_errors = store_errors_;
    out.failed_sessions = totals.failed_sessions;
    out.session_failures = totals.session_failures;
    out.open_sessions = totals.open_sessions;
    out.reopens = totals.reopens;
    return out;
}

void FileEngine::close() {
    if (!opened_) {
        return;
    }
    std::vector<AckUpdate> ignored;
    std::vector<std::string> failed;
    // kIoError exactly when `failed` names sessions, each reported below.
    if (store_.sync(&ignored, &failed) == Status::kInvalidArgument) {
        report_failure("sync", Status::kInvalidArgument);
    }
    for (const std::string& session : failed) {
        // The next start reads it from its files; say which now.
        ++store_errors_;
        if (events_ != nullptr) {
            events_->on_store_error("sync", Status::kIoError, session.c_str());
        }
    }
}

std::size_t FileEngine::poll_requests(PollRequest* out, std::size_t max) const {
    (void)out;
    (void)max;
    return 0;
}

bool FileEngine::next_deadline(TimeMs* at) const {
    (void)at;
    return false;  // has_buffered_input() keeps the loop from blocking instead
}

void FileEngine::service(TimeMs now) {
    (void)now;
    // Answers queued while an answer is delivered wait for the next round.
    std::size_t count = answers_.size();
    while (count-- > 0 && !answers_.empty()) {
        Answer answer = std::move(answers_.front());
        answers_.pop_front();
        if (events_ == nullptr) {
            continue;
        }
        deliver(answer);
    }
}

void FileEngine::deliver(Answer& answer) {
    switch (answer.kind) {
        case Answer::Kind::kHello:
            events_->on_hello(answer.ticket, answer.status, answer.hello);
            return;
        case Answer::Kind::kPushed:
            events_->on_pushed(answer.ticket, answer.status, answer.seq);
            if (answer.status == Status::kOk) {
                events_->on_downlink_ready(answer.session);
            }
            return;
        case Answer::Kind::kDesiredSince:
            events_->on_desired_since(answer.ticket, answer.status, answer.changes);
            return;
        case Answer::Kind::kDesiredSet:
            if (answer.status == Status::kOk) {
                // Durable already: the live connection sends the increment.
                events_->on_desired_changed(answer.session, answer.seq);
            } else if (answer.status == Status::kIoError) {
                events_->on_session_failed(answer.session, Status::kIoError);
            }
            events_->on_desired_set(answer.ticket, answer.status, answer.seq);
            return;
        case Answer::Kind::kReported:
            if (answer.status == Status::kIoError) {
                events_->on_session_failed(answer.session, Status::kIoError);
            }
            events_->on_reported(answer.ticket, answer.status, answer.report);
            return;
        case Answer::Kind::kStateRead:
            events_->on_state_read(answer.ticket, answer.status, answer.documents);
            return;
    }
}

// --- Device state: decided at once, answered from the next service() ----------

Status FileEngine::desired_since(std::string_view session, std::uint64_t applied,
                                 std::uint64_t ticket) {
    if (!opened_) {
        return Status::kUnavailable;
    }
    Answer answer = answer_of(Answer::Kind::kDesiredSince, ticket, session);
    answer.status = store_.desired_since(session, applied, &answer.changes);
    answers_.push_back(std::move(answer));
    return Status::kOk;
}

Status FileEngine::set_desired(std::string_view session, std::string_view patch, bool has_expected,
                               std::uint64_t expected, std::uint64_t ticket) {
    if (!opened_) {
        return Status::kUnavailable;
    }
    Answer answer = answer_of(Answer::Kind::kDesiredSet, ticket, session);
    answer.status = store_.set_desired(session, patch, has_expected, expected, &answer.seq);
    if (answer.status == Status::kIoError) {
        report_failure("desired", answer.status);
    }
    answers_.push_back(std::move(answer));
    return Status::kOk;
}

Status FileEngine::desired_applied(std::string_view session, std::uint64_t version) {
    const Status status = store_.desired_applied(session, version);
    if (status == Status::kIoError) {
        report_failure("applied", status);
    }
    return status;
}

Status FileEngine::report(const ReportRequest& request, std::uint64_t ticket) {
    if (!opened_) {
        return Status::kUnavailable;
    }
    Answer answer = answer_of(Answer::Kind::kReported, ticket, request.session);
    answer.status = store_.report(request, &answer.report);
    if (answer.status == Status::kIoError) {
        report_failure("report", answer.status);
    }
    answers_.push_back(std::move(answer));
    return Status::kOk;
}

Status FileEngine::read_state(std::string_view session, std::uint64_t ticket) {
    if (!opened_) {
        return Status::kUnavailable;
    }
    Answer answer = answer_of(Answer::Kind::kStateRead, ticket, session);
    answer.status = store_.read_state(session, &answer.documents);
    answers_.push_back(std::move(answer));
    return Status::kOk;
}

}  // namespace tether::server

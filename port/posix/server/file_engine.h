// SPDX-License-Identifier: MIT
// tether::server::FileEngine: the SessionEngine over a SessionStore (record
// logs under a data directory): the embedded default, one tether-server
// process, nothing else to run. Every decision is taken at once; answers are
// queued and handed to EngineEvents from the next service(), as the seam
// promises, so a connection sees the same order of events as with Redis.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "session_store.h"
#include "tether/server/session_engine.h"

namespace tether::server {

class FileEngine final : public SessionEngine {
  public:
    FileEngine(std::string directory, StoreOptions options);

    void set_events(EngineEvents* events) override { events_ = events; }
    Status open(TimeMs now) override;
    bool ready() const override { return opened_; }
    Status hello(const HelloRequest& request, std::uint64_t ticket) override;
    UplinkResult uplink_data(std::string_view session, std::uint64_t seq,
                             const std::uint8_t* payload, std::size_t size,
                             const UplinkMeta& meta) override;
    GapResult uplink_gap(std::string_view session, std::uint64_t first, std::uint64_t last,
                         std::string_view reason) override;
    void flush(TimeMs now) override;
    Status downlink_acked(std::string_view session, std::uint64_t seq) override;
    Status push_downlink(std::string_view session, const std::uint8_t* payload, std::size_t size,
                         std::uint64_t ticket) override;
    const DownlinkMessage* downlink_next(std::string_view session,
                                         std::uint64_t after) const override;
    Status desired_since(std::string_view session, std::uint64_t applied,
                         std::uint64_t ticket) override;
    Status set_desired(std::string_view session, std::string_view patch, bool has_expected,
                       std::uint64_t expected, std::uint64_t ticket) override;
    Status desired_applied(std::string_view session, std::uint64_t version) override;
    Status report(const ReportRequest& request, std::uint64_t ticket) override;
    Status read_state(std::string_view session, std::uint64_t ticket) override;
    void claim(std::string_view session) override { store_.set_live(session, true); }
    void release(std::string_view session) override { store_.set_live(session, false); }
    bool session_stats(std::string_view session, SessionStats* out) const override;
    EngineStats stats() const override;
    std::vector<std::string> sessions() const override { return store_.sessions(); }
    void close() override;

    // Pollable: no descriptors; queued answers make the loop come back at once.
    std::size_t poll_requests(PollRequest* out, std::size_t max) const override;
    bool next_deadline(TimeMs* at) const override;
    bool has_buffered_input() const override { return !answers_.empty(); }
    void service(TimeMs now) override;

    /// The store underneath, for tests.
    const SessionStore& store() const { return store_; }

  private:
    struct Answer {
        enum class Kind : std::uint8_t {
            kHello,
            kPushed,
            kDesiredSince,
            kDesiredSet,
            kReported,
            kStateRead,
        };
        Kind kind = Kind::kHello;
        std::uint64_t ticket = 0;
        Status status = Status::kOk;
        HelloResult hello;
        std::uint64_t seq = 0;  // kPushed: the seq; kDesiredSet: the version
        std::string session;    // kPushed: whose downlink is ready; state answers: whose
        std::vector<DesiredChange> changes;  // kDesiredSince
        ReportResult report;                 // kReported
        StateDocuments documents;            // kStateRead
    };

    static Answer answer_of(Answer::Kind kind, std::uint64_t ticket, std::string_view session);
    void deliver(Answer& answer);

    void report_failure(const char* what, Status status);

    std::string directory_;
    SessionStore store_;
    EngineEvents* events_ = nullptr;
    bool opened_ = false;
    bool failure_reported_ = false;
    std::uint64_t store_errors_ = 0;
    std::deque<Answer> answers_;
};

}  // namespace tether::server

// SPDX-License-Identifier: MIT
// One list of protocol cases (docs/PROTOCOL.md sections 3-5 and 9) that every
// SessionEngine must pass through the seam alone: the file engine in the unit
// suite, the Redis engine against a real redis-server in the integration
// suite. Each case gets a fresh, empty engine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tether/server/session_engine.h"

namespace tether::test {

/// Everything an engine told the server, in order of arrival.
class RecordedEvents final : public server::EngineEvents {
  public:
    struct HelloAnswer {
        std::uint64_t ticket;
        Status status;
        server::HelloResult result;
    };
    struct PushAnswer {
        std::uint64_t ticket;
        Status status;
        std::uint64_t seq;
    };

    void on_hello(std::uint64_t ticket, Status status, const server::HelloResult& result) override;
    void on_acknowledgeable(std::string_view session, std::uint64_t last_uplink) override;
    void on_downlink_ready(std::string_view session) override;
    void on_superseded(std::string_view session, std::uint32_t version) override;
    void on_session_failed(std::string_view session, Status status) override;
    void on_pushed(std::uint64_t ticket, Status status, std::uint64_t seq) override;
    void on_store_error(const char* what, Status status, const char* detail) override;
    void on_desired_changed(std::string_view session, std::uint64_t version) override;
    void on_desired_since(std::uint64_t ticket, Status status,
                          const std::vector<server::DesiredChange>& changes) override;
    void on_desired_set(std::uint64_t ticket, Status status, std::uint64_t version) override;
    void on_reported(std::uint64_t ticket, Status status,
                     const server::ReportResult& result) override;
    void on_state_read(std::uint64_t ticket, Status status,
                       const server::StateDocuments& documents) override;

    struct DesiredSinceAnswer {
        std::uint64_t ticket;
        Status status;
        std::vector<server::DesiredChange> changes;
    };
    struct DesiredSetAnswer {
        std::uint64_t ticket;
        Status status;
        std::uint64_t version;
    };
    struct ReportAnswer {
        std::uint64_t ticket;
        Status status;
        server::ReportResult result;
    };
    struct StateAnswer {
        std::uint64_t ticket;
        Status status;
        server::StateDocuments documents;
    };

    std::vector<HelloAnswer> hellos;
    std::vector<PushAnswer> pushes;
    std::map<std::string, std::uint64_t> acked;  ///< highest ACK per session
    std::map<std::string, std::size_t> downlink_ready;
    std::map<std::string, std::uint32_t> superseded;
    std::map<std::string, Status> failed;
    std::size_t store_errors = 0;
    std::map<std::string, std::uint64_t> desired_changed;  ///< highest version per session
    std::vector<DesiredSinceAnswer> desired_since;
    std::vector<DesiredSetAnswer> desired_set;
    std::vector<ReportAnswer> reports;
    std::vector<StateAnswer> states;
};

/// An engine to test, freshly opened on an empty store.
class EngineUnderTest {
  public:
    virtual ~EngineUnderTest() = default;
    virtual server::SessionEngine& engine() = 0;
    /// Drives the engine (its descriptors, if any) until nothing it was asked
    /// is still unanswered, or fails the test after a bound.
    virtual void settle() = 0;
    /// The engine's settings the cases rely on.
    virtual std::size_t replay_capacity() const = 0;
    virtual std::size_t max_payload() const = 0;
    /// Closes the engine and opens a new one on the same store, as a restart
    /// of the server would (events stay wired). False when the engine under
    /// test cannot: the cases that need it then check nothing more.
    virtual bool reopen() { return false; }
};

struct ContractCase {
    const char* name;
    void (*run)(EngineUnderTest& under_test, RecordedEvents& events);
};

/// Every case, in a fixed order.
const ContractCase* engine_contract_cases(std::size_t* count);

/// Runs every case on a fresh engine from `make` (events wired before open).
void run_engine_contract(std::unique_ptr<EngineUnderTest> (*make)(RecordedEvents* events));

}  // namespace tether::test

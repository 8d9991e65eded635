// One list of protocol cases (docs/PROTOCOL.md sections 3-5) that every
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

    std::vector<HelloAnswer> hellos;
    std::vector<PushAnswer> pushes;
    std::map<std::string, std::uint64_t> acked;  ///< highest ACK per session
    std::map<std::string, std::size_t> downlink_ready;
    std::map<std::string, std::uint32_t> superseded;
    std::map<std::string, Status> failed;
    std::size_t store_errors = 0;
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

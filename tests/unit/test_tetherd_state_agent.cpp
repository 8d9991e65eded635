// SPDX-License-Identifier: MIT
// StateAgent with real /bin/sh commands and real files, and a fake link.
// Time is the `now` the test passes to tick(); the commands themselves run in
// real time, and the tests wait for them with bounded polling loops.
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "state_agent.h"
#include "support/temp_dir.h"

// CppUTest last: its operator-new macro breaks standard headers.
#include <CppUTest/TestHarness.h>

using tether::DesiredChange;
using tether::ReportAnswer;
using tether::Status;
using tether::TimeMs;
using tether::daemon::StateAgent;
using tether::daemon::StateAgentConfig;
using tether::daemon::StateEvent;
using tether::daemon::StateEventKind;
using tether::daemon::StateLink;
using tether::daemon::StateObserver;

namespace {

struct Report {
    std::string json;
    bool whole;
};

class FakeLink final : public StateLink {
  public:
    Status desired_applied(std::uint64_t version) override {
        confirmed.push_back(version);
        return Status::kOk;
    }
    Status report(const char* json, std::size_t size, bool whole) override {
        reports.push_back({std::string(json, size), whole});
        return Status::kOk;
    }
    std::string reported_document() const override { return local; }

    std::vector<std::uint64_t> confirmed;
    std::vector<Report> reports;
    std::string local = "{\"rate\":5}";
};

class Events final : public StateObserver {
  public:
    void on_state_event(const StateEvent& event) override { kinds.push_back(event.kind); }
    std::size_t count(StateEventKind kind) const {
        std::size_t n = 0;
        for (StateEventKind k : kinds) {
            n += k == kind ? 1 : 0;
        }
        return n;
    }
    std::vector<StateEventKind> kinds;
};

std::string read_text(const std::string& path) {
    std::ifstream file(path);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
}

DesiredChange change(std::uint64_t version, const char* document, const char* patch = nullptr) {
    DesiredChange c;
    c.version = version;
    c.snapshot = patch == nullptr;
    c.document = document;
    c.document_size = std::strlen(document);
    c.patch = patch;
    c.patch_size = patch != nullptr ? std::strlen(patch) : 0;
    return c;
}

// Ticks (advancing `now` by 10 ms each time) until `done` or about 5 s of real time.
template <typename Done>
bool run_until(StateAgent& agent, TimeMs* now, Done done) {
    for (int i = 0; i < 1000; ++i) {
        agent.tick(*now);
        if (done()) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        *now += 10;
    }
    return false;
}

}  // namespace

TEST_GROUP(TetherdStateAgent) {
    tether::test::TempDir dir;
    FakeLink link;
    Events events;
    StateAgentConfig config;
    void setup() override {
        config.observer = &events;
    }
};

TEST(TetherdStateAgent, FileModeWritesTheWholeDocumentThenConfirms) {
    const std::string file = dir.file("desired.json");
    dir.file("desired.json.tmp");
    config.desired_file = file.c_str();
    StateAgent agent(config, link);
    agent.on_desired(change(7, "{\"rate\":10}", "{\"rate\":10}"));
    agent.tick(1);
    STRCMP_EQUAL("{\"version\":7,\"desired\":{\"rate\":10}}\n", read_text(file).c_str());
    CHECK_EQUAL(1u, link.confirmed.size());
    CHECK_EQUAL(7u, link.confirmed[0]);
    CHECK_EQUAL(1u, events.count(StateEventKind::kApplied));
}

TEST(TetherdStateAgent, FileModeDoesNotApplyTwiceWhatARestartDeliversAgain) {
    const std::string file = dir.write_file("desired.json", "{\"version\":7,\"desired\":{}}\n");
    dir.file("desired.json.tmp");
    config.desired_file = file.c_str();
    StateAgent agent(config, link);
    agent.on_desired(change(7, "{}"));
    agent.tick(1);
    CHECK_EQUAL(1u, agent.counters().already_applied);
    CHECK_EQUAL(1u, link.confirmed.size());
}

TEST(TetherdStateAgent, AFailedWriteIsRetriedWithADoublingDelayAndReportedOnce) {
    const std::string missing = dir.path() + "/no-such-dir/desired.json";
    config.desired_file = missing.c_str();
    config.retry_delay_ms = 100;
    StateAgent agent(config, link);
    agent.on_desired(change(1, "{}"));
    agent.tick(1000);
    CHECK(agent.failing());
    TimeMs at = 0;
    CHECK(agent.next_deadline(&at));
    CHECK_EQUAL(1100u, at);
    agent.tick(1100);
    CHECK(agent.next_deadline(&at));
    CHECK_EQUAL(1300u, at);  // 200 ms after the second failure
    CHECK_EQUAL(2u, agent.counters().apply_failures);
    CHECK_EQUAL(1u, events.count(StateEventKind::kApplyFailed));
    CHECK(link.confirmed.empty());
}

TEST(TetherdStateAgent, CommandModeGetsTheDocumentAndItsVersionAndReportsItsOutput) {
    const std::string seen = dir.file("seen");
    const std::string command = "cat > " + seen +
                                "; echo \"$TETHER_DESIRED_VERSION $TETHER_DESIRED_SNAPSHOT "
                                "$TETHER_DESIRED_PATCH\" >> " +
                                seen + "; echo '{\"rate\": 10}'";
    config.desired_command = command.c_str();
    StateAgent agent(config, link);
    agent.on_desired(change(3, "{\"rate\":10,\"mode\":\"eco\"}", "{\"rate\":10}"));
    TimeMs now = 1;
    CHECK(run_until(agent, &now, [&] { return !link.confirmed.empty(); }));
    STRCMP_EQUAL("{\"rate\":10,\"mode\":\"eco\"}\n3 0 {\"rate\":10}\n", read_text(seen).c_str());
    CHECK_EQUAL(3u, link.confirmed[0]);
    CHECK_EQUAL(1u, link.reports.size());
    STRCMP_EQUAL("{\"rate\":10}", link.reports[0].json.c_str());
    CHECK_FALSE(link.reports[0].whole);
}

TEST(TetherdStateAgent, AFailingCommandIsNotConfirmedAndANewerChangeIsTriedAtOnce) {
    config.desired_command = "exit 3";
    config.retry_delay_ms = 60000;
    StateAgent agent(config, link);
    agent.on_desired(change(1, "{}"));
    TimeMs now = 1;
    CHECK(run_until(agent, &now, [&] { return agent.failing(); }));
    CHECK(link.confirmed.empty());
    CHECK_EQUAL(1u, events.count(StateEventKind::kApplyFailed));
    agent.on_desired(change(2, "{\"a\":1}"));
    TimeMs at = 0;
    CHECK(agent.next_deadline(&at));
    CHECK_EQUAL(0u, at);
}

TEST(TetherdStateAgent, ACommandThatOutlivesItsTimeoutIsKilledAndCountsAsFailed) {
    config.desired_command = "sleep 30";
    config.command_timeout_ms = 100;
    StateAgent agent(config, link);
    agent.on_desired(change(1, "{}"));
    TimeMs now = 1;
    CHECK(run_until(agent, &now, [&] { return agent.failing(); }));
    CHECK(link.confirmed.empty());
}

TEST(TetherdStateAgent, OutputThatIsNotAnObjectIsCountedNotReported) {
    config.desired_command = "echo not-json";
    StateAgent agent(config, link);
    agent.on_desired(change(1, "{}"));
    TimeMs now = 1;
    CHECK(run_until(agent, &now, [&] { return !link.confirmed.empty(); }));
    CHECK(link.reports.empty());
    CHECK_EQUAL(1u, agent.counters().report_failures);
    CHECK_EQUAL(1u, events.count(StateEventKind::kReportFailed));
}

TEST(TetherdStateAgent, TheReportCommandRunsAtStartAndEveryInterval) {
    config.desired_command = "true";
    config.report_command = "echo '{\"uptime\": 1}'";
    config.report_interval_ms = 1000;
    StateAgent agent(config, link);
    TimeMs now = 1;
    CHECK(run_until(agent, &now, [&] { return link.reports.size() == 1; }));
    STRCMP_EQUAL("{\"uptime\":1}", link.reports[0].json.c_str());
    TimeMs at = 0;
    CHECK(agent.next_deadline(&at));
    CHECK_EQUAL(1001u, at);
    now = 1001;
    CHECK(run_until(agent, &now, [&] { return link.reports.size() == 2; }));
}

TEST(TetherdStateAgent, AStaleRefusalIsReportedAndTheWholeStateSaidAgain) {
    config.desired_command = "true";
    StateAgent agent(config, link);
    ReportAnswer refused;
    refused.accepted = false;
    refused.version = 9;
    refused.reason = "stale";
    agent.on_report_answer(refused);
    CHECK_EQUAL(1u, events.count(StateEventKind::kReportRefused));
    CHECK_EQUAL(1u, agent.counters().reports_refused);
    CHECK_EQUAL(1u, link.reports.size());
    CHECK(link.reports[0].whole);
    STRCMP_EQUAL("{\"rate\":5}", link.reports[0].json.c_str());

    refused.reason = "too_large";
    agent.on_report_answer(refused);
    CHECK_EQUAL(1u, link.reports.size());  // nothing to gain from sending it again
    CHECK_EQUAL(2u, events.count(StateEventKind::kReportRefused));
}

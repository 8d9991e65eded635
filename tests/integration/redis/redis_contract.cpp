// SPDX-License-Identifier: MIT
// tether-redis-contract: the engine contract (tests/support/engine_contract.h)
// run against RedisEngine over HiredisLink and a real redis-server, the same
// cases the file engine passes in the unit suite. Started by
// tests/integration/test_redis_store.py (Contract), which brings up the
// redis-server:
//   tether-redis-contract --redis HOST:PORT [--case NAME] [CppUTest options]
//   tether-redis-contract --list     (the case names, one a line)
//
// Every engine it makes gets a key prefix of its own, so each case starts on
// an empty store; a reopen() keeps the prefix, as a restarted server keeps
// its Redis.
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "hiredis_link.h"
#include "support/engine_contract.h"
#include "tether/server/redis_engine.h"

// CppUTest last: its operator-new macro breaks standard headers.
#include <CppUTest/CommandLineTestRunner.h>
#include <CppUTest/MemoryLeakWarningPlugin.h>
#include <CppUTest/TestHarness.h>

using tether::Status;
using tether::TimeMs;
using tether::test::EngineUnderTest;
using tether::test::RecordedEvents;

namespace {

tether::server::RedisAddress g_redis;
const char* g_case = nullptr;  // --case NAME: that case alone
unsigned g_engines = 0;

constexpr std::size_t kReplayCapacity = 4;
constexpr std::size_t kMaxPayload = 4096;
constexpr TimeMs kSettleBoundMs = 10000;

TimeMs monotonic_ms() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<TimeMs>(static_cast<std::uint64_t>(now.tv_sec) * 1000u +
                               static_cast<std::uint64_t>(now.tv_nsec) / 1000000u);
}

class RedisEngineUnderTest final : public EngineUnderTest {
  public:
    explicit RedisEngineUnderTest(RecordedEvents* events)
        : events_(events),
          prefix_("contract" + std::to_string(::getpid()) + "-" + std::to_string(++g_engines)) {
        start();
    }
    ~RedisEngineUnderTest() override { stop(); }

    tether::server::SessionEngine& engine() override { return *engine_; }

    // Until nothing the engine sent awaits its reply (and no answer waits
    // for service()), bounded.
    void settle() override {
        drive([this] { return engine_->idle(); });
    }

    std::size_t replay_capacity() const override { return kReplayCapacity; }
    std::size_t max_payload() const override { return kMaxPayload; }

    bool reopen() override {
        stop();
        start();
        return true;
    }

  private:
    template <typename Done>
    void drive(Done done) {
        const TimeMs deadline = monotonic_ms() + kSettleBoundMs;
        while (!done()) {
            CHECK_TEXT(static_cast<std::int32_t>(deadline - monotonic_ms()) > 0,
                       "the Redis engine did not settle");
            tether::PollRequest requests[tether::Pollable::kMaxPollRequests];
            pollfd fds[tether::Pollable::kMaxPollRequests];
            const std::size_t count =
                engine_->poll_requests(requests, tether::Pollable::kMaxPollRequests);
            for (std::size_t i = 0; i < count; ++i) {
                short wanted = 0;
                if (requests[i].read) {
                    wanted = static_cast<short>(wanted | POLLIN);
                }
                if (requests[i].write) {
                    wanted = static_cast<short>(wanted | POLLOUT);
                }
                fds[i] = pollfd{requests[i].fd, wanted, 0};
            }
            int timeout = 50;
            TimeMs at = 0;
            if (engine_->has_buffered_input()) {
                timeout = 0;
            } else if (engine_->next_deadline(&at)) {
                const TimeMs until = tether::time_until(monotonic_ms(), at);
                timeout = until < 50 ? static_cast<int>(until) : 50;
            }
            (void)::poll(fds, static_cast<nfds_t>(count), timeout);
            engine_->service(monotonic_ms());
        }
    }

    void start() {
        tether::server::HiredisLinkOptions link_options;
        link_options.primary = g_redis;
        link_ = std::make_unique<tether::server::HiredisLink>(link_options);
        tether::server::RedisEngineOptions options;
        options.prefix = prefix_;
        options.instance = "contract";
        options.replay_capacity = static_cast<std::uint32_t>(kReplayCapacity);
        options.max_payload_size = kMaxPayload;
        options.log = [](std::string_view line) {
            std::fprintf(stderr, "engine: %.*s\n", static_cast<int>(line.size()), line.data());
        };
        engine_ = std::make_unique<tether::server::RedisEngine>(*link_, options);
        engine_->set_events(events_);
        CHECK(Status::kOk == engine_->open(monotonic_ms()));
        drive([this] { return engine_->ready(); });
    }

    void stop() {
        if (engine_) {
            engine_->close();
        }
        engine_.reset();
        link_.reset();
    }

    RecordedEvents* events_;
    std::string prefix_;
    std::unique_ptr<tether::server::HiredisLink> link_;
    std::unique_ptr<tether::server::RedisEngine> engine_;
};

std::unique_ptr<EngineUnderTest> make_redis_engine(RecordedEvents* events) {
    return std::unique_ptr<EngineUnderTest>(new RedisEngineUnderTest(events));
}

}  // namespace

TEST_GROUP(RedisEngineContract){};

TEST(RedisEngineContract, PassesTheEngineContract) {
    if (g_case == nullptr) {
        tether::test::run_engine_contract(make_redis_engine);
        return;
    }
    std::size_t count = 0;
    const tether::test::ContractCase* cases = tether::test::engine_contract_cases(&count);
    for (std::size_t i = 0; i < count; ++i) {
        if (std::strcmp(cases[i].name, g_case) == 0) {
            RecordedEvents events;
            std::unique_ptr<EngineUnderTest> under_test = make_redis_engine(&events);
            cases[i].run(*under_test, events);
            CHECK_TEXT(events.failed.empty(), cases[i].name);
            return;
        }
    }
    FAIL("no such case");
}

int main(int argc, char** argv) {
    std::vector<char*> rest;
    rest.push_back(argv[0]);
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--list") == 0) {
            std::size_t count = 0;
            const tether::test::ContractCase* cases = tether::test::engine_contract_cases(&count);
            for (std::size_t c = 0; c < count; ++c) {
                std::printf("%s\n", cases[c].name);
            }
            return 0;
        }
        if (std::strcmp(argv[i], "--case") == 0 && i + 1 < argc) {
            g_case = argv[++i];
            continue;
        }
        if (std::strcmp(argv[i], "--redis") == 0 && i + 1 < argc) {
            std::string error;
            if (!tether::server::parse_redis_address(argv[++i], &g_redis, &error)) {
                std::fprintf(stderr, "tether-redis-contract: --redis: %s\n", error.c_str());
                return 2;
            }
            continue;
        }
        rest.push_back(argv[i]);
    }
    if (g_redis.port == 0) {
        std::fprintf(stderr, "usage: tether-redis-contract --redis HOST:PORT [CppUTest options]\n");
        return 2;
    }
    // hiredis allocates with malloc across cases: only the engine's own
    // leaks would show, and the unit suite checks those with the fake link.
    MemoryLeakWarningPlugin::turnOffNewDeleteOverloads();
    return CommandLineTestRunner::RunAllTests(static_cast<int>(rest.size()), rest.data());
}

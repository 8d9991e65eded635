// SPDX-License-Identifier: MIT
// FileEngine: the SessionEngine over the record-log store. The shared
// contract (tests/support/engine_contract.cpp) runs through the seam; the
// tests here cover what only the file engine does.
#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "file_engine.h"
#include "record_log.h"
#include "support/engine_contract.h"
#include "support/syscall_faults.h"

// CppUTest last: its operator-new macro breaks standard headers.
#include <CppUTest/TestHarness.h>

namespace {

using tether::Status;
using tether::server::FileEngine;
using tether::server::StoreOptions;
using tether::test::EngineUnderTest;
using tether::test::RecordedEvents;

void remove_tree(const std::string& path) {
    DIR* directory = ::opendir(path.c_str());
    if (directory != nullptr) {
        while (const dirent* entry = ::readdir(directory)) {
            const std::string name = entry->d_name;
            if (name != "." && name != "..") {
                remove_tree(path + "/" + name);
            }
        }
        ::closedir(directory);
        ::rmdir(path.c_str());
    } else {
        ::unlink(path.c_str());
    }
}

constexpr std::size_t kReplayCapacity = 4;
constexpr std::size_t kMaxPayload = 256;

StoreOptions small_store() {
    StoreOptions options;
    options.replay_capacity = kReplayCapacity;
    options.max_payload_size = kMaxPayload;
    return options;
}

class FileEngineUnderTest final : public EngineUnderTest {
  public:
    explicit FileEngineUnderTest(RecordedEvents* events) : events_(events) {
        char pattern[] = "/tmp/tether-file-engine-XXXXXX";
        const char* made = ::mkdtemp(pattern);
        CHECK(made != nullptr);
        root_ = made;
        engine_.reset(new FileEngine(root_ + "/store", small_store()));
        engine_->set_events(events);
        CHECK(Status::kOk == engine_->open(0));
    }
    ~FileEngineUnderTest() override {
        engine_.reset();
        remove_tree(root_);
    }
    tether::server::SessionEngine& engine() override { return *engine_; }
    void settle() override {
        for (int round = 0; round < 8 && engine_->has_buffered_input(); ++round) {
            engine_->service(0);
        }
        CHECK_FALSE(engine_->has_buffered_input());
    }
    std::size_t replay_capacity() const override { return kReplayCapacity; }
    std::size_t max_payload() const override { return kMaxPayload; }
    bool reopen() override {
        engine_->close();
        engine_.reset(new FileEngine(root_ + "/store", small_store()));
        engine_->set_events(events_);
        CHECK(Status::kOk == engine_->open(0));
        return true;
    }
    const std::string& root() const { return root_; }

  private:
    RecordedEvents* events_;
    std::string root_;
    std::unique_ptr<FileEngine> engine_;
};

std::unique_ptr<EngineUnderTest> make_file_engine(RecordedEvents* events) {
    return std::unique_ptr<EngineUnderTest>(new FileEngineUnderTest(events));
}

}  // namespace

TEST_GROUP(FileEngine){};

TEST(FileEngine, PassesTheEngineContract) {
    tether::test::run_engine_contract(make_file_engine);
}

TEST(FileEngine, AnswersComeFromTheNextServiceNotFromTheCall) {
    RecordedEvents events;
    FileEngineUnderTest under_test(&events);
    tether::server::HelloRequest request;
    request.session = "0a6c5b8e-1111-4222-8333-444455556666";
    request.version = 1;
    request.device = "pi-17";
    CHECK(Status::kOk == under_test.engine().hello(request, 42));
    CHECK(events.hellos.empty());
    CHECK(under_test.engine().has_buffered_input());
    under_test.engine().service(0);
    LONGS_EQUAL(1, events.hellos.size());
    UNSIGNED_LONGS_EQUAL(42, events.hellos[0].ticket);
}

TEST(FileEngine, IsNotReadyBeforeOpenAndRefusesHellos) {
    FileEngine engine("/nonexistent/never", small_store());
    CHECK_FALSE(engine.ready());
    tether::server::HelloRequest request;
    request.session = "0a6c5b8e-1111-4222-8333-444455556666";
    request.version = 1;
    request.device = "pi-17";
    CHECK(Status::kUnavailable == engine.hello(request, 1));
    const std::uint8_t byte = 1;
    CHECK(Status::kUnavailable == engine.push_downlink(request.session, &byte, 1, 2));
    CHECK_FALSE(engine.stats().ready);
    tether::PollRequest requests[4];
    LONGS_EQUAL(0, engine.poll_requests(requests, 4));
    tether::TimeMs at = 0;
    CHECK_FALSE(engine.next_deadline(&at));
}

TEST(FileEngine, AFailedSyncFailsItsSessionAndAcknowledgesNothing) {
    RecordedEvents events;
    FileEngineUnderTest under_test(&events);
    tether::server::HelloRequest request;
    request.session = "0a6c5b8e-1111-4222-8333-444455556666";
    request.version = 1;
    request.device = "pi-17";
    CHECK(Status::kOk == under_test.engine().hello(request, 1));
    under_test.settle();
    const std::uint8_t byte = 1;
    CHECK(tether::server::UplinkResult::kStored ==
          under_test.engine().uplink_data(request.session, 1, &byte, 1, {}));
    tether::test::SyscallFaults faults;
    faults.fail(tether::test::Syscall::kFsync, EIO, 100);
    under_test.engine().flush(0);
    under_test.engine().flush(0);
    CHECK(events.acked.empty());
    // Failures are per session: that session's connection is closed, once.
    LONGS_EQUAL(1, events.failed.size());
    CHECK(Status::kIoError == events.failed[std::string(request.session)]);
    CHECK(under_test.engine().stats().store_errors >= 1);
    CHECK(under_test.engine().stats().failed_sessions >= 1);
}

namespace {

constexpr const char* kStateSession = "0a6c5b8e-1111-4222-8333-444455556666";

void hello_state_session(FileEngineUnderTest& under_test) {
    tether::server::HelloRequest request;
    request.session = kStateSession;
    request.version = 1;
    request.device = "pi-17";
    CHECK(Status::kOk == under_test.engine().hello(request, 1));
    under_test.settle();
}

Status set_desired(FileEngineUnderTest& under_test, RecordedEvents& events,
                   const std::string& patch) {
    static std::uint64_t ticket = 1000;
    CHECK(Status::kOk == under_test.engine().set_desired(kStateSession, patch, false, 0, ++ticket));
    under_test.settle();
    CHECK(!events.desired_set.empty() && events.desired_set.back().ticket == ticket);
    return events.desired_set.back().status;
}

std::uint64_t state_log_records(const FileEngineUnderTest& under_test) {
    std::uint64_t records = 0;
    CHECK(Status::kOk == tether::server::RecordLog::read(
                             under_test.root() + "/store/sessions/" + kStateSession + "/state.log",
                             1u << 20, [&records](std::uint64_t, const std::uint8_t*, std::size_t) {
                                 ++records;
                                 return true;
                             }));
    return records;
}

}  // namespace

TEST(FileEngine, ADesiredChangeIsSyncedBeforeItIsAnswered) {
    RecordedEvents events;
    FileEngineUnderTest under_test(&events);
    hello_state_session(under_test);
    tether::test::SyscallFaults faults;
    const unsigned before = faults.calls(tether::test::Syscall::kFsync);
    CHECK(Status::kOk == set_desired(under_test, events, "{\"rate\":5}"));
    CHECK(faults.calls(tether::test::Syscall::kFsync) > before);
}

TEST(FileEngine, TheStateLogIsRewrittenOnceItIsLong) {
    RecordedEvents events;
    FileEngineUnderTest under_test(&events);
    hello_state_session(under_test);
    // A large document, so that a few small increments are smaller than it.
    CHECK(Status::kOk ==
          set_desired(under_test, events, "{\"name\":\"" + std::string(300, 'n') + "\"}"));
    for (int i = 2; i <= 500; ++i) {
        CHECK(Status::kOk == set_desired(under_test, events, "{\"n\":" + std::to_string(i) + "}"));
    }
    // Never more than the rewrite bound (2 * 64 + 64), and what it holds is whole.
    CHECK(state_log_records(under_test) <= 2 * tether::server::kDesiredHistory + 64);
    CHECK(under_test.reopen());
    hello_state_session(under_test);
    CHECK(Status::kOk == under_test.engine().desired_since(kStateSession, 497, 7));
    under_test.settle();
    LONGS_EQUAL(1, events.desired_since.size());
    LONGS_EQUAL(3, events.desired_since[0].changes.size());
    STRCMP_EQUAL("{\"n\":500}", events.desired_since[0].changes[2].document.c_str());
}

TEST(FileEngine, ATornStateLogTailIsCutOffAtTheLastWholeRecord) {
    RecordedEvents events;
    FileEngineUnderTest under_test(&events);
    hello_state_session(under_test);
    CHECK(Status::kOk == set_desired(under_test, events, "{\"a\":1}"));
    CHECK(Status::kOk == set_desired(under_test, events, "{\"b\":2}"));
    under_test.engine().close();
    const std::string path = under_test.root() + "/store/sessions/" + kStateSession + "/state.log";
    FILE* file = std::fopen(path.c_str(), "ab");
    CHECK(file != nullptr);
    std::fputs("\x01\x00\x00\x00\x00\x00\x00\x00\x40\x00torn", file);
    std::fclose(file);
    CHECK(under_test.reopen());
    CHECK(Status::kOk == under_test.engine().read_state(kStateSession, 9));
    under_test.settle();
    LONGS_EQUAL(1, events.states.size());
    UNSIGNED_LONGS_EQUAL(2, events.states[0].documents.desired_version);
    STRCMP_EQUAL("{\"a\":1,\"b\":2}", events.states[0].documents.desired.c_str());
}

TEST(FileEngine, AFailedStateWriteFailsOnlyThatSessionAndSaysSo) {
    RecordedEvents events;
    FileEngineUnderTest under_test(&events);
    hello_state_session(under_test);
    {
        tether::test::SyscallFaults faults;
        faults.fail(tether::test::Syscall::kPwrite, ENOSPC, 1);
        CHECK(Status::kIoError == set_desired(under_test, events, "{\"a\":1}"));
    }
    CHECK(Status::kIoError == events.failed[kStateSession]);
    CHECK(events.desired_changed.empty());
    LONGS_EQUAL(1, events.store_errors);  // logged once
    // The session refuses changes until its next hello reads it afresh.
    CHECK(Status::kIoError == set_desired(under_test, events, "{\"a\":2}"));
    LONGS_EQUAL(1, events.store_errors);
    hello_state_session(under_test);
    CHECK(Status::kOk == set_desired(under_test, events, "{\"a\":3}"));
    UNSIGNED_LONGS_EQUAL(1, events.desired_set.back().version);
}

TEST(FileEngine, AFailedReportIsAnsweredUnavailable) {
    RecordedEvents events;
    FileEngineUnderTest under_test(&events);
    hello_state_session(under_test);
    tether::server::ReportRequest request;
    request.session = kStateSession;
    request.id = "0123456789abcdef";
    request.document = "{\"t\":1}";
    {
        tether::test::SyscallFaults faults;
        faults.fail(tether::test::Syscall::kFsync, EIO, 1);
        CHECK(Status::kOk == under_test.engine().report(request, 5));
        under_test.settle();
    }
    LONGS_EQUAL(1, events.reports.size());
    CHECK(Status::kIoError == events.reports[0].status);
    CHECK(tether::server::ReportOutcome::kUnavailable == events.reports[0].result.outcome);
    CHECK(Status::kIoError == events.failed[kStateSession]);
}

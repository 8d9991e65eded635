// FileEngine: the SessionEngine over the record-log store. The shared
// contract (tests/support/engine_contract.cpp) runs through the seam; the
// tests here cover what only the file engine does.
#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "file_engine.h"
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
    explicit FileEngineUnderTest(RecordedEvents* events) {
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
    const std::string& root() const { return root_; }

  private:
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

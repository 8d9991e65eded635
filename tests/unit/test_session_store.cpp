// SPDX-License-Identifier: MIT
// SessionStore, RecordLog and TokenStore: the durable state of tether-server.
// Crashes are simulated by reopening the store from its files (a destructor
// writes nothing) after cutting the last record at every byte offset.
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "record_log.h"
#include "session_store.h"
#include "support/syscall_faults.h"
#include "support/temp_dir.h"
#include "tether/crc32.h"
#include "tether/server/tokens.h"
#include "token_file.h"

// CppUTest last: its operator-new macro breaks standard headers.
#include <CppUTest/TestHarness.h>

#include "support/tether_strings.h"

using tether::Status;
using tether::server::AckUpdate;
using tether::server::DownlinkMessage;
using tether::server::GapResult;
using tether::server::HelloDecision;
using tether::server::HelloRequest;
using tether::server::HelloResult;
using tether::server::RecordLog;
using tether::server::RecordView;
using tether::server::SessionStats;
using tether::server::SessionStore;
using tether::server::StoreOptions;
using tether::server::TokenCheck;
using tether::server::TokenStore;
using tether::server::UplinkResult;
using tether::test::Syscall;
using tether::test::SyscallFaults;
using tether::test::TempDir;

namespace {

constexpr const char* kSession = "0a6c1f3e-2b4d-5c6e-8f90-123456789abc";
constexpr const char* kOtherSession = "11111111-2222-5333-8444-555555555555";

void remove_tree(const std::string& path) {
    if (DIR* listing = ::opendir(path.c_str())) {
        while (const dirent* entry = ::readdir(listing)) {
            const std::string name = entry->d_name;
            if (name != "." && name != "..") {
                remove_tree(path + "/" + name);
            }
        }
        ::closedir(listing);
        ::rmdir(path.c_str());
    } else {
        ::unlink(path.c_str());
    }
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const std::string& contents) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << contents;
}

std::uint64_t file_size(const std::string& path) {
    struct stat info {};
    return ::stat(path.c_str(), &info) == 0 ? static_cast<std::uint64_t>(info.st_size) : 0;
}

// The size of a log the test also holds in memory (a cut position into that
// copy). File sizes are 64-bit while std::size_t is 32-bit on armhf; a file
// that fits in a std::string fits in a std::size_t.
std::size_t in_memory_file_size(const std::string& path) {
    return static_cast<std::size_t>(file_size(path));
}

// Copies a store directory (sessions/<id>/files: two levels) to `to`.
void copy_store(const std::string& from, const std::string& to) {
    ::mkdir(to.c_str(), 0755);
    ::mkdir((to + "/sessions").c_str(), 0755);
    DIR* sessions = ::opendir((from + "/sessions").c_str());
    while (const dirent* session = ::readdir(sessions)) {
        const std::string id = session->d_name;
        if (id == "." || id == "..") {
            continue;
        }
        ::mkdir((to + "/sessions/" + id).c_str(), 0755);
        DIR* files = ::opendir((from + "/sessions/" + id).c_str());
        while (const dirent* file = ::readdir(files)) {
            const std::string name = file->d_name;
            if (name != "." && name != "..") {
                write_file(to + "/sessions/" + id + "/" + name,
                           read_file(from + "/sessions/" + id + "/" + name));
            }
        }
        ::closedir(files);
    }
    ::closedir(sessions);
}

const std::uint8_t* bytes(const std::string& text) {
    return reinterpret_cast<const std::uint8_t*>(text.data());
}

const std::uint8_t* bytes(const char* text) {
    return reinterpret_cast<const std::uint8_t*>(text);
}

std::string text(const std::vector<std::uint8_t>& data) {
    return std::string(data.begin(), data.end());
}

HelloRequest hello_request(std::uint32_t version, std::uint64_t last_downlink = 0,
                           std::uint64_t oldest_uplink = 1, std::uint64_t next_uplink = 1,
                           const char* session = kSession, const char* user = "") {
    HelloRequest request;
    request.session = session;
    request.user = user;
    request.version = version;
    request.device = "pi-17";
    request.last_downlink = last_downlink;
    request.oldest_uplink = oldest_uplink;
    request.next_uplink = next_uplink;
    return request;
}

SessionStats stats_of(const SessionStore& store, const char* session = kSession) {
    SessionStats stats;
    CHECK_TRUE(store.session_stats(session, &stats));
    return stats;
}

UplinkResult send(SessionStore& store, std::uint64_t seq, const char* session = kSession) {
    const std::string payload = "m" + std::to_string(seq);
    return store.uplink_data(session, seq, bytes(payload), payload.size());
}

// The seqs of every held downlink message after `after`, as replay sends them.
std::vector<std::uint64_t> replay(const SessionStore& store, std::uint64_t after) {
    std::vector<std::uint64_t> seqs;
    while (const DownlinkMessage* message = store.downlink_next(kSession, after)) {
        seqs.push_back(message->seq);
        after = message->seq;
    }
    return seqs;
}

std::string session_file(const std::string& root, const char* name) {
    return root + "/sessions/" + kSession + "/" + name;
}

// The canonical id of test session number `n`.
std::string numbered_session(unsigned n) {
    char id[40];
    std::snprintf(id, sizeof id, "%08x-0000-5000-8000-000000000000", n);
    return id;
}

// Descriptors this process holds now.
unsigned open_descriptors() {
    unsigned count = 0;
    if (DIR* listing = ::opendir("/proc/self/fd")) {
        while (const dirent* entry = ::readdir(listing)) {
            count += entry->d_name[0] != '.' ? 1u : 0u;
        }
        ::closedir(listing);
        --count;  // the listing's own
    }
    return count;
}

// Takes every free descriptor below a limit a little above those in use
// (RLIMIT_NOFILE lowered for the test), then gives `spare` of them back: the
// process has exactly `spare` descriptors left until it goes away.
class DescriptorHog {
  public:
    explicit DescriptorHog(unsigned spare) {
        CHECK_EQUAL(0, ::getrlimit(RLIMIT_NOFILE, &saved_));
        rlimit lowered = saved_;
        lowered.rlim_cur = open_descriptors() + 64;
        CHECK_EQUAL(0, ::setrlimit(RLIMIT_NOFILE, &lowered));
        for (;;) {
            const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                CHECK_EQUAL(EMFILE, errno);
                break;
            }
            held_.push_back(fd);
        }
        for (unsigned i = 0; i < spare && !held_.empty(); ++i) {
            ::close(held_.back());
            held_.pop_back();
        }
    }
    ~DescriptorHog() {
        for (int fd : held_) {
            ::close(fd);
        }
        ::setrlimit(RLIMIT_NOFILE, &saved_);
    }
    DescriptorHog(const DescriptorHog&) = delete;
    DescriptorHog& operator=(const DescriptorHog&) = delete;

  private:
    rlimit saved_{};
    std::vector<int> held_;
};

}  // namespace

// --- RecordLog -----------------------------------------------------------------

TEST_GROUP(RecordLog) {
    TempDir temp;
    std::string path;
    std::vector<std::pair<std::uint64_t, std::string>> seen;

    void setup() override {
        path = temp.file("test.log");
    }
    void teardown() override {
        ::unlink((path + ".tmp").c_str());
    }

    tether::server::RecordVisitor collect() {
        seen.clear();
        return [this](std::uint64_t key, const std::uint8_t* body, std::size_t size) {
            seen.emplace_back(key, std::string(reinterpret_cast<const char*>(body), size));
            return true;
        };
    }

    void append_three() {
        RecordLog log;
        CHECK_EQUAL(Status::kOk, log.open(path, 64, collect()));
        CHECK_EQUAL(Status::kOk, log.append(1, bytes("one"), 3));
        CHECK_EQUAL(Status::kOk, log.append(2, bytes(""), 0));
        CHECK_EQUAL(Status::kOk, log.append(3, bytes("three"), 5));
        CHECK_EQUAL(Status::kOk, log.sync());
    }
};

TEST(RecordLog, AppendedRecordsReadBackInOrder) {
    append_three();
    RecordLog log;
    std::uint64_t truncated = 99;
    CHECK_EQUAL(Status::kOk, log.open(path, 64, collect(), &truncated));
    UNSIGNED_LONGS_EQUAL(0, truncated);
    UNSIGNED_LONGS_EQUAL(3, log.records());
    UNSIGNED_LONGS_EQUAL(3 * tether::server::kRecordOverhead + 8, log.size_bytes());
    UNSIGNED_LONGS_EQUAL(3, seen.size());
    UNSIGNED_LONGS_EQUAL(1, seen[0].first);
    STRCMP_EQUAL("one", seen[0].second.c_str());
    STRCMP_EQUAL("", seen[1].second.c_str());
    UNSIGNED_LONGS_EQUAL(3, seen[2].first);
    STRCMP_EQUAL("three", seen[2].second.c_str());
}

TEST(RecordLog, EncodingIsLittleEndianWithCrcOverHeaderAndBody) {
    std::vector<std::uint8_t> record;
    tether::server::encode_record(0x0102, bytes("ab"), 2, &record);
    const std::uint8_t header[] = {0x02, 0x01, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 'a', 'b'};
    UNSIGNED_LONGS_EQUAL(sizeof header + 4, record.size());
    MEMCMP_EQUAL(header, record.data(), sizeof header);
    UNSIGNED_LONGS_EQUAL(tether::crc32(header, sizeof header),
                         tether::server::get_u32(record.data() + sizeof header));
}

TEST(RecordLog, TornTailIsTruncatedAtEveryByteOffset) {
    append_three();
    const std::string full = read_file(path);
    const std::size_t two_records = 2 * tether::server::kRecordOverhead + 3;
    for (std::size_t cut = two_records; cut < full.size(); ++cut) {
        write_file(path, full.substr(0, cut));
        RecordLog log;
        std::uint64_t truncated = 0;
        CHECK_EQUAL(Status::kOk, log.open(path, 64, collect(), &truncated));
        UNSIGNED_LONGS_EQUAL(2, seen.size());
        UNSIGNED_LONGS_EQUAL(cut - two_records, truncated);
        UNSIGNED_LONGS_EQUAL(two_records, file_size(path));
        // The next append starts on the record boundary and reads back.
        CHECK_EQUAL(Status::kOk, log.append(9, bytes("nine"), 4));
        log.close();
        RecordLog again;
        CHECK_EQUAL(Status::kOk, again.open(path, 64, collect()));
        UNSIGNED_LONGS_EQUAL(3, seen.size());
        UNSIGNED_LONGS_EQUAL(9, seen[2].first);
    }
}

TEST(RecordLog, CrcMismatchEndsTheLogThere) {
    append_three();
    std::string contents = read_file(path);
    contents[tether::server::kRecordOverhead + 3 + 9] ^= 0x01;  // in record 2's length field
    write_file(path, contents);
    RecordLog log;
    CHECK_EQUAL(Status::kOk, log.open(path, 64, collect()));
    UNSIGNED_LONGS_EQUAL(1, seen.size());
    UNSIGNED_LONGS_EQUAL(tether::server::kRecordOverhead + 3, file_size(path));
}

TEST(RecordLog, LengthAboveTheLimitIsDamage) {
    append_three();
    RecordLog log;
    CHECK_EQUAL(Status::kOk, log.open(path, 4, collect()));  // "three" is 5 bytes
    UNSIGNED_LONGS_EQUAL(2, seen.size());
    CHECK_EQUAL(Status::kTooLarge, log.append(4, bytes("fives"), 5));
}

TEST(RecordLog, RecordTheVisitorRejectsEndsTheLog) {
    append_three();
    RecordLog log;
    CHECK_EQUAL(Status::kOk,
                log.open(path, 64, [](std::uint64_t key, const std::uint8_t*, std::size_t) {
                    return key < 2;
                }));
    UNSIGNED_LONGS_EQUAL(1, log.records());
}

TEST(RecordLog, ClosedOrDoublyOpenedLogRefuses) {
    RecordLog log;
    CHECK_EQUAL(Status::kInvalidArgument, log.append(1, bytes("x"), 1));
    CHECK_EQUAL(Status::kInvalidArgument, log.sync());
    CHECK_EQUAL(Status::kOk, log.open(path, 64, collect()));
    CHECK_EQUAL(Status::kInvalidArgument, log.open(path, 64, collect()));
    CHECK_EQUAL(Status::kIoError, RecordLog().open(temp.path() + "/no/such/dir", 64, collect()));
}

TEST(RecordLog, AClosedLogIsTakenUpAgainWithoutReadingIt) {
    RecordLog log;
    CHECK_EQUAL(Status::kInvalidArgument, log.reopen());  // never opened
    CHECK_EQUAL(Status::kOk, log.open(path, 64, collect()));
    log.set_write_buffer(1024);
    CHECK_EQUAL(Status::kOk, log.append(1, bytes("one"), 3));
    CHECK_EQUAL(Status::kInvalidArgument, log.reopen());  // open
    log.close();                                          // writes the buffered record
    CHECK_FALSE(log.is_open());
    CHECK_TRUE(log.dirty());  // still to be synced, by whoever reopens it
    SyscallFaults faults;
    CHECK_EQUAL(Status::kOk, log.reopen());
    UNSIGNED_LONGS_EQUAL(0, faults.calls(Syscall::kPread));
    UNSIGNED_LONGS_EQUAL(1, log.records());
    CHECK_EQUAL(Status::kOk, log.append(2, bytes("two"), 3));
    CHECK_EQUAL(Status::kOk, log.sync());
    CHECK_FALSE(log.dirty());
    log.close();
    CHECK_EQUAL(Status::kOk, RecordLog::read(path, 64, collect()));
    UNSIGNED_LONGS_EQUAL(2, seen.size());
    STRCMP_EQUAL("two", seen[1].second.c_str());
}

TEST(RecordLog, AReopenRefusesAFileThatChangedOrWentAway) {
    RecordLog log;
    CHECK_EQUAL(Status::kOk, log.open(path, 64, collect()));
    CHECK_EQUAL(Status::kOk, log.append(1, bytes("one"), 3));
    log.close();
    write_file(path, read_file(path) + "x");
    CHECK_EQUAL(Status::kCorrupt, log.reopen());
    ::unlink(path.c_str());
    CHECK_EQUAL(Status::kIoError, log.reopen());
    CHECK_FALSE(log.is_open());
}

TEST(RecordLog, MarkDurableClearsDirty) {
    RecordLog log;
    CHECK_EQUAL(Status::kOk, log.open(path, 64, collect()));
    CHECK_EQUAL(Status::kOk, log.append(1, bytes("one"), 3));
    CHECK_TRUE(log.dirty());
    log.mark_durable();
    CHECK_FALSE(log.dirty());
    SyscallFaults faults;
    CHECK_EQUAL(Status::kOk, log.sync());
    UNSIGNED_LONGS_EQUAL(0, faults.calls(Syscall::kFsync));
}

TEST(RecordLog, FailedAppendIsCutOffAndShortWritesComplete) {
    RecordLog log;
    CHECK_EQUAL(Status::kOk, log.open(path, 64, collect()));
    CHECK_EQUAL(Status::kOk, log.append(1, bytes("one"), 3));
    {
        SyscallFaults faults;
        faults.fail(Syscall::kPwrite, ENOSPC);
        CHECK_EQUAL(Status::kIoError, log.append(2, bytes("two"), 3));
        faults.limit_transfers(3);  // every record takes several writes
        CHECK_EQUAL(Status::kOk, log.append(2, bytes("two"), 3));
        faults.stall_next_write();
        CHECK_EQUAL(Status::kIoError, log.append(3, bytes("three"), 5));
    }
    CHECK_FALSE(log.broken());
    UNSIGNED_LONGS_EQUAL(2 * (tether::server::kRecordOverhead + 3), file_size(path));
    log.close();
    RecordLog again;
    std::uint64_t truncated = 1;
    CHECK_EQUAL(Status::kOk, again.open(path, 64, collect(), &truncated));
    UNSIGNED_LONGS_EQUAL(0, truncated);
    UNSIGNED_LONGS_EQUAL(2, seen.size());
}

TEST(RecordLog, BufferedAppendsReachTheFileAtTheThresholdFlushSyncAndClose) {
    const std::size_t record = tether::server::kRecordOverhead + 3;
    RecordLog log;
    CHECK_EQUAL(Status::kOk, log.open(path, 64, collect()));
    log.set_write_buffer(2 * record);
    CHECK_EQUAL(Status::kOk, log.append(1, bytes("one"), 3));
    UNSIGNED_LONGS_EQUAL(0, file_size(path));
    UNSIGNED_LONGS_EQUAL(record, log.size_bytes());
    CHECK_EQUAL(Status::kOk, log.append(2, bytes("two"), 3));  // the threshold: written
    UNSIGNED_LONGS_EQUAL(2 * record, file_size(path));
    CHECK_EQUAL(Status::kOk, log.append(3, bytes("tri"), 3));
    CHECK_EQUAL(Status::kOk, log.flush());
    UNSIGNED_LONGS_EQUAL(3 * record, file_size(path));
    CHECK_EQUAL(Status::kOk, log.append(4, bytes("for"), 3));
    CHECK_EQUAL(Status::kOk, log.sync());
    UNSIGNED_LONGS_EQUAL(4 * record, file_size(path));
    CHECK_FALSE(log.dirty());
    CHECK_EQUAL(Status::kOk, log.append(5, bytes("fiv"), 3));
    log.close();
    UNSIGNED_LONGS_EQUAL(5 * record, file_size(path));
    RecordLog again;
    CHECK_EQUAL(Status::kOk, again.open(path, 64, collect()));
    UNSIGNED_LONGS_EQUAL(5, seen.size());
    UNSIGNED_LONGS_EQUAL(5, seen[4].first);
}

TEST(RecordLog, FailedBatchWriteDropsTheBatchAndTheFileStaysWhole) {
    const std::size_t record = tether::server::kRecordOverhead + 3;
    RecordLog log;
    CHECK_EQUAL(Status::kOk, log.open(path, 64, collect()));
    log.set_write_buffer(1024);
    CHECK_EQUAL(Status::kOk, log.append(1, bytes("one"), 3));
    CHECK_EQUAL(Status::kOk, log.flush());
    CHECK_EQUAL(Status::kOk, log.append(2, bytes("two"), 3));
    CHECK_EQUAL(Status::kOk, log.append(3, bytes("tri"), 3));
    UNSIGNED_LONGS_EQUAL(3, log.records());
    {
        SyscallFaults faults;
        faults.fail(Syscall::kPwrite, ENOSPC);
        CHECK_EQUAL(Status::kIoError, log.sync());
    }
    CHECK_FALSE(log.broken());
    UNSIGNED_LONGS_EQUAL(1, log.records());
    UNSIGNED_LONGS_EQUAL(record, file_size(path));
    UNSIGNED_LONGS_EQUAL(record, log.size_bytes());
    CHECK_EQUAL(Status::kOk, log.append(2, bytes("two"), 3));
    CHECK_EQUAL(Status::kOk, log.sync());
    log.close();
    RecordLog again;
    CHECK_EQUAL(Status::kOk, again.open(path, 64, collect()));
    UNSIGNED_LONGS_EQUAL(2, seen.size());
}

TEST(RecordLog, FailedFsyncBreaksTheLog) {
    RecordLog log;
    CHECK_EQUAL(Status::kOk, log.open(path, 64, collect()));
    CHECK_EQUAL(Status::kOk, log.sync());  // nothing to sync: no fsync
    CHECK_EQUAL(Status::kOk, log.append(1, bytes("one"), 3));
    CHECK_TRUE(log.dirty());
    SyscallFaults faults;
    faults.fail(Syscall::kFsync, EIO);
    CHECK_EQUAL(Status::kIoError, log.sync());
    CHECK_TRUE(log.broken());
    CHECK_EQUAL(Status::kIoError, log.sync());
    CHECK_EQUAL(Status::kIoError, log.append(2, bytes("two"), 3));
}

// Found by tether-crash-points: after a killed process's appends (still in
// the page cache) were found by open(), sync() saw nothing appended and did
// not fsync, so a power cut could take back records the caller had synced.
TEST(RecordLog, SyncAfterOpenMakesTheRecordsFoundDurable) {
    {
        RecordLog writer;
        CHECK_EQUAL(Status::kOk, writer.open(path, 64, collect()));
        CHECK_EQUAL(Status::kOk, writer.append(1, bytes("one"), 3));
        writer.close();  // written, never synced
    }
    RecordLog log;
    CHECK_EQUAL(Status::kOk, log.open(path, 64, collect()));
    UNSIGNED_LONGS_EQUAL(1, seen.size());
    CHECK_TRUE(log.dirty());
    SyscallFaults faults;
    CHECK_EQUAL(Status::kOk, log.sync());
    UNSIGNED_LONGS_EQUAL(1, faults.calls(Syscall::kFsync));
    CHECK_EQUAL(Status::kOk, log.sync());
    UNSIGNED_LONGS_EQUAL(1, faults.calls(Syscall::kFsync));
}

TEST(RecordLog, InterruptedCallsAreRetried) {
    append_three();
    SyscallFaults faults;
    faults.fail(Syscall::kPread, EINTR, 2);
    RecordLog log;
    CHECK_EQUAL(Status::kOk, log.open(path, 64, collect()));
    UNSIGNED_LONGS_EQUAL(3, seen.size());
    faults.fail(Syscall::kPwrite, EINTR, 2);
    CHECK_EQUAL(Status::kOk, log.append(4, bytes("four"), 4));
    log.close();
    CHECK_EQUAL(Status::kOk, RecordLog::read(path, 64, collect()));
    UNSIGNED_LONGS_EQUAL(4, seen.size());
}

TEST(RecordLog, ReadErrorsAreReportedNotTakenForTheEnd) {
    append_three();
    {
        SyscallFaults faults;
        faults.fail(Syscall::kPread, EIO);
        RecordLog log;
        CHECK_EQUAL(Status::kIoError, log.open(path, 64, collect()));
        CHECK_FALSE(log.is_open());
        faults.fail(Syscall::kPread, EIO);
        CHECK_EQUAL(Status::kIoError, RecordLog::read(path, 64, collect()));
    }
    // A torn tail whose truncation cannot be made durable fails the open.
    const std::string full = read_file(path);
    write_file(path, full.substr(0, full.size() - 1));
    {
        SyscallFaults faults;
        faults.fail(Syscall::kFsync, EIO);
        RecordLog log;
        CHECK_EQUAL(Status::kIoError, log.open(path, 64, collect()));
    }
    UNSIGNED_LONGS_EQUAL(2 * tether::server::kRecordOverhead + 3,
                         file_size(path));  // the cut itself happened
    RecordLog log;
    CHECK_EQUAL(Status::kOk, log.open(path, 64, collect()));
    UNSIGNED_LONGS_EQUAL(2, seen.size());
}

TEST(RecordLog, ReplaceSwapsContentsAtomically) {
    append_three();
    const RecordView records[] = {{7, bytes("seven"), 5}, {8, bytes("eight"), 5}};
    CHECK_EQUAL(Status::kOk, RecordLog::replace(path, {records[0], records[1]}));
    CHECK_EQUAL(Status::kOk, RecordLog::read(path, 64, collect()));
    UNSIGNED_LONGS_EQUAL(2, seen.size());
    UNSIGNED_LONGS_EQUAL(7, seen[0].first);
    STRCMP_EQUAL("eight", seen[1].second.c_str());
    {
        SyscallFaults faults;
        faults.fail(Syscall::kFsync, EIO);
        CHECK_EQUAL(Status::kIoError, RecordLog::replace(path, {records[0]}));
    }
    CHECK_EQUAL(Status::kOk, RecordLog::read(path, 64, collect()));
    UNSIGNED_LONGS_EQUAL(2, seen.size());  // unchanged
    CHECK_EQUAL(-1, ::access((path + ".tmp").c_str(), F_OK));
    CHECK_EQUAL(Status::kNotFound, RecordLog::read(path + ".missing", 64, collect()));
    CHECK_EQUAL(Status::kIoError, RecordLog::replace(temp.path() + "/no/such/file", {records[0]}));
}

// --- SessionStore --------------------------------------------------------------

TEST_GROUP(SessionStore) {
    TempDir temp;
    std::string root;
    std::unique_ptr<SessionStore> store;
    StoreOptions options;

    void setup() override {
        root = temp.path() + "/store";
        reopen();
    }
    void teardown() override {
        store.reset();
        remove_tree(root);
    }

    // A restart: the old object is dropped (it flushes nothing) and a new one
    // loads the files.
    void reopen(const std::string& directory = "") {
        store.reset();
        store = std::make_unique<SessionStore>(options);
        CHECK_EQUAL(Status::kOk, store->open(directory.empty() ? root : directory));
    }

    HelloResult hello(std::uint32_t version, std::uint64_t last_downlink = 0,
                      std::uint64_t oldest_uplink = 1, const char* session = kSession) {
        HelloResult result;
        CHECK_EQUAL(Status::kOk, store->hello(hello_request(version, last_downlink, oldest_uplink,
                                                            oldest_uplink, session),
                                              &result));
        return result;
    }

    void sync() {
        CHECK_EQUAL(Status::kOk, store->sync(nullptr));
    }

    std::uint64_t push(const std::string& payload) {
        std::uint64_t seq = 0;
        CHECK_EQUAL(Status::kOk,
                    store->push_downlink(kSession, bytes(payload), payload.size(), &seq));
        return seq;
    }
};

TEST(SessionStore, NewSessionIsNotResumedAndResumesAfterRestart) {
    HelloResult first = hello(1);
    CHECK(first.decision == HelloDecision::kAccepted);
    CHECK_FALSE(first.resumed);
    UNSIGNED_LONGS_EQUAL(0, first.last_uplink);
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 1));
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 2));
    sync();
    reopen();
    const HelloResult second = hello(1);
    CHECK_TRUE(second.resumed);
    UNSIGNED_LONGS_EQUAL(2, second.last_uplink);
    const SessionStats stats = stats_of(*store);
    STRCMP_EQUAL(kSession, stats.session.c_str());
    STRCMP_EQUAL("pi-17", stats.device.c_str());
    UNSIGNED_LONGS_EQUAL(1, stats.version);
    UNSIGNED_LONGS_EQUAL(2, stats.received);
    UNSIGNED_LONGS_EQUAL(2, stats.highest_seq);
    UNSIGNED_LONGS_EQUAL(3, stats.next_expected);
    const std::vector<std::string> ids = store->sessions();
    UNSIGNED_LONGS_EQUAL(1, ids.size());
    STRCMP_EQUAL(kSession, ids[0].c_str());
}

TEST(SessionStore, DuplicatesAreDroppedAndCounted) {
    hello(1);
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 1));
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 2));
    CHECK_EQUAL(UplinkResult::kDuplicate, send(*store, 1));
    CHECK_EQUAL(UplinkResult::kDuplicate, send(*store, 2));
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 3));
    sync();
    reopen();
    const SessionStats stats = stats_of(*store);
    UNSIGNED_LONGS_EQUAL(3, stats.received);
    UNSIGNED_LONGS_EQUAL(2, stats.duplicates);
    UNSIGNED_LONGS_EQUAL(0, stats.gap_count);
}

TEST(SessionStore, DataAfterAHoleRecordsAnUnreportedGap) {
    hello(1);
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 1));
    CHECK_EQUAL(UplinkResult::kStoredAfterUnreportedGap, send(*store, 5));
    CHECK_EQUAL(UplinkResult::kDuplicate, send(*store, 3));  // inside the gap
    UNSIGNED_LONGS_EQUAL(6, store->next_expected(kSession));
    sync();
    reopen();
    const SessionStats stats = stats_of(*store);
    UNSIGNED_LONGS_EQUAL(2, stats.received);
    UNSIGNED_LONGS_EQUAL(1, stats.unreported_gaps);
    UNSIGNED_LONGS_EQUAL(3, stats.missing_seqs);
    UNSIGNED_LONGS_EQUAL(1, stats.gaps.size());
    UNSIGNED_LONGS_EQUAL(2, stats.gaps[0].first);
    UNSIGNED_LONGS_EQUAL(4, stats.gaps[0].last);
    STRCMP_EQUAL("unreported", stats.gaps[0].reason.c_str());
    UNSIGNED_LONGS_EQUAL(6, stats.next_expected);
}

TEST(SessionStore, GapMessagesFollowSection34) {
    hello(1);
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 1));
    // first <= next_expected (2) <= last + 1: [2, 10] recorded.
    CHECK_EQUAL(GapResult::kRecorded, store->uplink_gap(kSession, 2, 10, "overflow"));
    // Starts below next_expected (11): only [11, 12] is new.
    CHECK_EQUAL(GapResult::kRecorded, store->uplink_gap(kSession, 8, 12, ""));
    // Entirely below: nothing changes.
    CHECK_EQUAL(GapResult::kIgnored, store->uplink_gap(kSession, 3, 12, "late"));
    // Ends exactly at next_expected - 1 (12) is below too.
    CHECK_EQUAL(GapResult::kIgnored, store->uplink_gap(kSession, 12, 12, ""));
    // Beyond next_expected (13): the hole before it is unreported.
    CHECK_EQUAL(GapResult::kRecordedAfterUnreportedGap,
                store->uplink_gap(kSession, 15, 20, "restart"));
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 21));
    sync();
    reopen();
    const SessionStats stats = stats_of(*store);
    UNSIGNED_LONGS_EQUAL(4, stats.gap_count);
    UNSIGNED_LONGS_EQUAL(19, stats.missing_seqs);
    UNSIGNED_LONGS_EQUAL(22, stats.next_expected);
    const std::uint64_t expected[][2] = {{2, 10}, {11, 12}, {13, 14}, {15, 20}};
    const char* reasons[] = {"overflow", "", "unreported", "restart"};
    for (std::size_t i = 0; i < 4; ++i) {
        UNSIGNED_LONGS_EQUAL(expected[i][0], stats.gaps[i].first);
        UNSIGNED_LONGS_EQUAL(expected[i][1], stats.gaps[i].last);
        STRCMP_EQUAL(reasons[i], stats.gaps[i].reason.c_str());
    }
}

TEST(SessionStore, InvalidGapsAndSeqsAreRejected) {
    hello(1);
    CHECK_EQUAL(GapResult::kInvalidArgument, store->uplink_gap(kSession, 0, 3, ""));
    CHECK_EQUAL(GapResult::kInvalidArgument, store->uplink_gap(kSession, 5, 4, ""));
    CHECK_EQUAL(GapResult::kInvalidArgument,
                store->uplink_gap(kSession, 1, std::uint64_t{1} << 53, ""));
    CHECK_EQUAL(GapResult::kInvalidArgument,
                store->uplink_gap(kSession, 1, 2, std::string(65, 'r')));
    CHECK_EQUAL(UplinkResult::kInvalidArgument, send(*store, 0));
    CHECK_EQUAL(UplinkResult::kInvalidArgument, send(*store, std::uint64_t{1} << 53));
    CHECK_EQUAL(UplinkResult::kInvalidArgument, store->uplink_data(kSession, 1, nullptr, 1));
    UNSIGNED_LONGS_EQUAL(1, store->next_expected(kSession));
}

TEST(SessionStore, HelloHoleIsRecordedAsNotInOutbox) {
    hello(1);
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 1));
    sync();
    // The client's outbox starts at 118: 2..117 will never come.
    HelloResult result = hello(2, 0, 118);
    CHECK_TRUE(result.recorded_hole);
    UNSIGNED_LONGS_EQUAL(117, result.last_uplink);
    // Durable when hello returns: a restart without sync keeps it.
    reopen();
    SessionStats stats = stats_of(*store);
    UNSIGNED_LONGS_EQUAL(118, stats.next_expected);
    UNSIGNED_LONGS_EQUAL(117, stats.acknowledgeable);
    STRCMP_EQUAL("not_in_outbox", stats.gaps[0].reason.c_str());
    UNSIGNED_LONGS_EQUAL(2, stats.gaps[0].first);
    // oldest_uplink at or below next_expected reveals nothing.
    result = hello(2, 0, 118);
    CHECK_FALSE(result.recorded_hole);
    result = hello(2, 0, 50);
    CHECK_FALSE(result.recorded_hole);
    UNSIGNED_LONGS_EQUAL(117, result.last_uplink);
    UNSIGNED_LONGS_EQUAL(1, stats_of(*store).gap_count);
}

TEST(SessionStore, LowerVersionIsSupersededEqualOrHigherAccepted) {
    hello(5);
    CHECK(hello(5).decision == HelloDecision::kAccepted);
    const HelloResult lower = hello(4, 0, 40);
    CHECK(lower.decision == HelloDecision::kSuperseded);
    CHECK_TRUE(lower.resumed);
    CHECK_FALSE(lower.recorded_hole);  // a superseded hello records nothing
    UNSIGNED_LONGS_EQUAL(1, store->next_expected(kSession));
    CHECK(hello(6).decision == HelloDecision::kAccepted);
    reopen();
    CHECK(hello(5).decision == HelloDecision::kSuperseded);
    CHECK(hello(6).decision == HelloDecision::kAccepted);
    UNSIGNED_LONGS_EQUAL(6, stats_of(*store).version);
}

TEST(SessionStore, InvalidHellosAreRejected) {
    HelloResult result;
    HelloRequest request = hello_request(1);
    request.session = "../../../../etc/passwd-000000000000";
    CHECK_EQUAL(Status::kInvalidArgument, store->hello(request, &result));
    request.session = "0a6c1f3e-2b4d-5c6e-8f90-123456789ab";  // 35 chars
    CHECK_EQUAL(Status::kInvalidArgument, store->hello(request, &result));
    request.session = "0a6c1f3e-2b4d-5c6e-8f90-123456789abg";
    CHECK_EQUAL(Status::kInvalidArgument, store->hello(request, &result));
    request = hello_request(0);
    CHECK_EQUAL(Status::kInvalidArgument, store->hello(request, &result));
    request = hello_request(1);
    request.device = "";
    CHECK_EQUAL(Status::kInvalidArgument, store->hello(request, &result));
    const std::string long_device(129, 'd');
    request.device = long_device;
    CHECK_EQUAL(Status::kInvalidArgument, store->hello(request, &result));
    request = hello_request(1, std::uint64_t{1} << 53);
    CHECK_EQUAL(Status::kInvalidArgument, store->hello(request, &result));
    CHECK_EQUAL(Status::kInvalidArgument, store->hello(hello_request(1), nullptr));
    SessionStore closed;
    CHECK_EQUAL(Status::kInvalidArgument, closed.hello(hello_request(1), &result));
    UNSIGNED_LONGS_EQUAL(0, store->stats().sessions);
}

TEST(SessionStore, SessionIdsCompareCaseInsensitively) {
    hello(1, 0, 1, "0A6C1F3E-2B4D-5C6E-8F90-123456789ABC");
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 1, kSession));
    CHECK_EQUAL(UplinkResult::kDuplicate, send(*store, 1, "0a6c1f3e-2B4D-5c6e-8f90-123456789ABC"));
    reopen();
    STRCMP_EQUAL(kSession, store->sessions()[0].c_str());
    CHECK_TRUE(tether::server::is_canonical_uuid("0A6C1F3E-2b4d-5c6e-8f90-123456789abc"));
    CHECK_FALSE(tether::server::is_canonical_uuid("0a6c1f3e+2b4d-5c6e-8f90-123456789abc"));
}

TEST(SessionStore, UnknownSessionsAreRefused) {
    std::uint64_t seq = 0;
    CHECK_EQUAL(UplinkResult::kUnknownSession, send(*store, 1));
    CHECK_EQUAL(UplinkResult::kUnknownSession, send(*store, 1, "not-a-uuid"));
    CHECK_EQUAL(GapResult::kUnknownSession, store->uplink_gap(kSession, 1, 2, ""));
    CHECK_EQUAL(Status::kNotFound, store->push_downlink(kSession, bytes("x"), 1, &seq));
    CHECK_EQUAL(Status::kNotFound, store->downlink_acked(kSession, 1));
    POINTERS_EQUAL(nullptr, store->downlink_next(kSession, 0));
    SessionStats stats;
    CHECK_FALSE(store->session_stats(kSession, &stats));
    UNSIGNED_LONGS_EQUAL(1, store->next_expected(kSession));
}

TEST(SessionStore, SyncListsSessionsWithUplinkActivity) {
    hello(1);
    hello(1, 0, 1, kOtherSession);
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 1));
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 2));
    UNSIGNED_LONGS_EQUAL(0, stats_of(*store).acknowledgeable);  // not synced yet
    std::vector<AckUpdate> acks{AckUpdate{"stale", 9}};
    CHECK_EQUAL(Status::kOk, store->sync(&acks));
    UNSIGNED_LONGS_EQUAL(1, acks.size());
    STRCMP_EQUAL(kSession, acks[0].session.c_str());
    UNSIGNED_LONGS_EQUAL(2, acks[0].last_uplink);
    UNSIGNED_LONGS_EQUAL(2, stats_of(*store).acknowledgeable);
    // Nothing new: nothing to acknowledge.
    CHECK_EQUAL(Status::kOk, store->sync(&acks));
    UNSIGNED_LONGS_EQUAL(0, acks.size());
    // A duplicate means the sender missed an ACK: acknowledge again.
    CHECK_EQUAL(UplinkResult::kDuplicate, send(*store, 2));
    CHECK_EQUAL(GapResult::kRecorded, store->uplink_gap(kOtherSession, 1, 4, ""));
    CHECK_EQUAL(Status::kOk, store->sync(&acks));
    UNSIGNED_LONGS_EQUAL(2, acks.size());
    std::map<std::string, std::uint64_t> by_session;
    for (const AckUpdate& ack : acks) {
        by_session[ack.session] = ack.last_uplink;
    }
    UNSIGNED_LONGS_EQUAL(2, by_session[kSession]);
    UNSIGNED_LONGS_EQUAL(4, by_session[kOtherSession]);
    SessionStore closed;
    CHECK_EQUAL(Status::kInvalidArgument, closed.sync(&acks));
}

TEST(SessionStore, DownlinkIsNumberedFromOneAndReplayedAfterReconnect) {
    hello(1);
    UNSIGNED_LONGS_EQUAL(1, push("a"));
    UNSIGNED_LONGS_EQUAL(2, push("b"));
    UNSIGNED_LONGS_EQUAL(3, push(""));
    UNSIGNED_LONGS_EQUAL(4, push("d"));
    sync();
    reopen();
    const HelloResult result = hello(1, 2);
    CHECK_FALSE(result.has_downlink_gap);
    UNSIGNED_LONGS_EQUAL(2, result.replay_after);
    const std::vector<std::uint64_t> seqs = replay(*store, result.replay_after);
    UNSIGNED_LONGS_EQUAL(2, seqs.size());
    UNSIGNED_LONGS_EQUAL(3, seqs[0]);
    UNSIGNED_LONGS_EQUAL(4, seqs[1]);
    STRCMP_EQUAL("d", text(store->downlink_next(kSession, 3)->payload).c_str());
    STRCMP_EQUAL("a", text(store->downlink_next(kSession, 0)->payload).c_str());
    POINTERS_EQUAL(nullptr, store->downlink_next(kSession, 4));
    UNSIGNED_LONGS_EQUAL(5, push("e"));  // numbering continues after the restart
}

TEST(SessionStore, AckTrimsAndAnOlderClientGetsAnExpiredGap) {
    hello(1);
    for (int i = 0; i < 10; ++i) {
        push("m" + std::to_string(i + 1));
    }
    CHECK_EQUAL(Status::kOk, store->downlink_acked(kSession, 6));
    CHECK_EQUAL(Status::kOk, store->downlink_acked(kSession, 3));  // old ack: nothing
    CHECK_EQUAL(Status::kInvalidArgument, store->downlink_acked(kSession, 11));
    SessionStats stats = stats_of(*store);
    UNSIGNED_LONGS_EQUAL(4, stats.downlink_held);
    UNSIGNED_LONGS_EQUAL(7, stats.downlink_oldest_held);
    UNSIGNED_LONGS_EQUAL(6, stats.downlink_acked);
    UNSIGNED_LONGS_EQUAL(10, stats.downlink_last_seq);
    sync();
    reopen();
    const HelloResult result = hello(1, 3);
    CHECK_TRUE(result.has_downlink_gap);
    UNSIGNED_LONGS_EQUAL(4, result.downlink_gap.first);
    UNSIGNED_LONGS_EQUAL(6, result.downlink_gap.last);
    STRCMP_EQUAL("expired", result.downlink_gap.reason.c_str());
    UNSIGNED_LONGS_EQUAL(6, result.replay_after);
    const std::vector<std::uint64_t> seqs = replay(*store, result.replay_after);
    UNSIGNED_LONGS_EQUAL(4, seqs.size());
    UNSIGNED_LONGS_EQUAL(7, seqs[0]);
    // Everything acked: a client behind it gets a gap up to the last seq.
    CHECK_EQUAL(Status::kOk, store->downlink_acked(kSession, 10));
    const HelloResult behind = hello(1, 8);
    CHECK_TRUE(behind.has_downlink_gap);
    UNSIGNED_LONGS_EQUAL(9, behind.downlink_gap.first);
    UNSIGNED_LONGS_EQUAL(10, behind.downlink_gap.last);
    POINTERS_EQUAL(nullptr, store->downlink_next(kSession, behind.replay_after));
}

TEST(SessionStore, ReplayBufferHoldsAtMostItsCapacity) {
    options.replay_capacity = 4;
    reopen();
    hello(1);
    for (int i = 0; i < 10; ++i) {
        push("m");
    }
    SessionStats stats = stats_of(*store);
    UNSIGNED_LONGS_EQUAL(4, stats.downlink_held);
    UNSIGNED_LONGS_EQUAL(7, stats.downlink_oldest_held);
    sync();
    reopen();
    stats = stats_of(*store);
    UNSIGNED_LONGS_EQUAL(4, stats.downlink_held);
    const HelloResult result = hello(1, 0);
    CHECK_TRUE(result.has_downlink_gap);
    UNSIGNED_LONGS_EQUAL(1, result.downlink_gap.first);
    UNSIGNED_LONGS_EQUAL(6, result.downlink_gap.last);
    UNSIGNED_LONGS_EQUAL(4, replay(*store, result.replay_after).size());
}

TEST(SessionStore, CompactionBoundsTheDownlinkFileAndKeepsNumbering) {
    options.replay_capacity = 8;
    reopen();
    hello(1);
    for (std::uint64_t i = 1; i <= 500; ++i) {
        UNSIGNED_LONGS_EQUAL(i, push("payload"));
        if (i % 3 == 0) {
            CHECK_EQUAL(Status::kOk, store->downlink_acked(kSession, i - 1));
        }
        const SessionStats stats = stats_of(*store);
        CHECK(stats.downlink_file_records <= 2 * stats.downlink_held + 32);
    }
    CHECK_EQUAL(Status::kOk, store->downlink_acked(kSession, 500));
    // Everything acked: the next compaction leaves an empty file.
    for (int i = 0; i < 40; ++i) {
        CHECK_EQUAL(Status::kOk, store->downlink_acked(kSession, push("x")));
    }
    sync();
    reopen();
    const SessionStats stats = stats_of(*store);
    UNSIGNED_LONGS_EQUAL(540, stats.downlink_last_seq);
    UNSIGNED_LONGS_EQUAL(0, stats.downlink_held);
    CHECK(stats.downlink_file_records < 33);
    UNSIGNED_LONGS_EQUAL(541, push("next"));
}

TEST(SessionStore, LostMetaIsRebuiltAndHelloKeepsDownlinkNumberingAhead) {
    options.replay_capacity = 2;
    reopen();
    hello(3);
    for (int i = 0; i < 40; ++i) {
        CHECK_EQUAL(Status::kOk, store->downlink_acked(kSession, push("x")));
    }
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 1));
    sync();
    store.reset();
    write_file(session_file(root, "meta"), "garbage");
    reopen();
    SessionStats stats = stats_of(*store);
    UNSIGNED_LONGS_EQUAL(0, stats.version);
    UNSIGNED_LONGS_EQUAL(2, stats.next_expected);  // the logs still tell
    // The client saw up to 40: new messages are numbered above it.
    const HelloResult result = hello(1, 40);
    CHECK_FALSE(result.has_downlink_gap);
    UNSIGNED_LONGS_EQUAL(1, result.last_uplink);
    UNSIGNED_LONGS_EQUAL(41, push("after"));
    ::unlink(session_file(root, "meta").c_str());
    reopen();
    UNSIGNED_LONGS_EQUAL(41, stats_of(*store).downlink_last_seq);
}

TEST(SessionStore, KillDuringTheLastUplinkAppendNeverCorruptsOrInvents) {
    hello(1);
    for (std::uint64_t seq = 1; seq <= 5; ++seq) {
        CHECK_EQUAL(UplinkResult::kStored, send(*store, seq));
    }
    sync();
    const std::size_t synced_size = in_memory_file_size(session_file(root, "uplink.log"));
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 6));
    store.reset();  // SIGKILL: the destructor writes nothing
    const std::string uplink = read_file(session_file(root, "uplink.log"));
    for (std::size_t cut = synced_size; cut <= uplink.size(); ++cut) {
        const std::string copy = temp.path() + "/copy";
        copy_store(root, copy);
        write_file(session_file(copy, "uplink.log"), uplink.substr(0, cut));
        reopen(copy);
        const SessionStats stats = stats_of(*store);
        const bool complete = cut == uplink.size();
        UNSIGNED_LONGS_EQUAL(complete ? 6 : 5, stats.received);
        UNSIGNED_LONGS_EQUAL(complete ? 7 : 6, stats.next_expected);
        UNSIGNED_LONGS_EQUAL(0, stats.gap_count);
        UNSIGNED_LONGS_EQUAL(complete ? uplink.size() : synced_size,
                             file_size(session_file(copy, "uplink.log")));
        // The client retransmits what was not acknowledged.
        CHECK_EQUAL(complete ? UplinkResult::kDuplicate : UplinkResult::kStored, send(*store, 6));
        store.reset();
        remove_tree(copy);
    }
}

TEST(SessionStore, KillBetweenAGapRecordAndItsDataRepairsTheHole) {
    hello(1);
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 1));
    sync();
    const std::size_t synced_gaps = in_memory_file_size(session_file(root, "gaps.log"));
    CHECK_EQUAL(GapResult::kRecorded, store->uplink_gap(kSession, 2, 10, "overflow"));
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 11));
    store.reset();
    const std::string gaps = read_file(session_file(root, "gaps.log"));
    for (std::size_t cut = synced_gaps; cut <= gaps.size(); ++cut) {
        const std::string copy = temp.path() + "/copy";
        copy_store(root, copy);
        write_file(session_file(copy, "gaps.log"), gaps.substr(0, cut));
        reopen(copy);
        // The data reached the disk, the gap record did not (or only part of
        // it): the hole is accounted for as unreported, never left silent.
        const SessionStats stats = stats_of(*store);
        const bool complete = cut == gaps.size();
        UNSIGNED_LONGS_EQUAL(2, stats.received);
        UNSIGNED_LONGS_EQUAL(12, stats.next_expected);
        UNSIGNED_LONGS_EQUAL(1, stats.gap_count);
        UNSIGNED_LONGS_EQUAL(9, stats.missing_seqs);
        STRCMP_EQUAL(complete ? "overflow" : "unreported", stats.gaps[0].reason.c_str());
        // The repair is durable: a second restart finds the same.
        reopen(copy);
        UNSIGNED_LONGS_EQUAL(1, stats_of(*store).gap_count);
        store.reset();
        remove_tree(copy);
    }
}

TEST(SessionStore, KillDuringADownlinkAppendKeepsTheHeldMessages) {
    hello(1);
    push("one");
    push("two");
    sync();
    const std::size_t synced_size = in_memory_file_size(session_file(root, "downlink.log"));
    push("three");
    store.reset();
    const std::string downlink = read_file(session_file(root, "downlink.log"));
    for (std::size_t cut = synced_size; cut < downlink.size(); ++cut) {
        const std::string copy = temp.path() + "/copy";
        copy_store(root, copy);
        write_file(session_file(copy, "downlink.log"), downlink.substr(0, cut));
        reopen(copy);
        UNSIGNED_LONGS_EQUAL(2, stats_of(*store).downlink_held);
        UNSIGNED_LONGS_EQUAL(3, push("three again"));
        store.reset();
        remove_tree(copy);
    }
}

TEST(SessionStore, TenThousandUplinkMessagesRoundTripWithExactCounts) {
    hello(1);
    std::uint64_t duplicates = 0;
    for (std::uint64_t seq = 1; seq <= 10000; ++seq) {
        CHECK_EQUAL(UplinkResult::kStored, send(*store, seq));
        if (seq % 97 == 0) {
            CHECK_EQUAL(UplinkResult::kDuplicate, send(*store, seq - 3));
            ++duplicates;
        }
        if (seq % 64 == 0) {
            sync();
        }
    }
    sync();
    reopen();
    const SessionStats stats = stats_of(*store);
    UNSIGNED_LONGS_EQUAL(10000, stats.received);
    UNSIGNED_LONGS_EQUAL(duplicates, stats.duplicates);
    UNSIGNED_LONGS_EQUAL(10000, stats.highest_seq);
    UNSIGNED_LONGS_EQUAL(10001, stats.next_expected);
    UNSIGNED_LONGS_EQUAL(0, stats.gap_count);
    // The log holds each payload once, in order.
    std::uint64_t expected = 1;
    bool in_order = true;
    CHECK_EQUAL(Status::kOk,
                RecordLog::read(session_file(root, "uplink.log"), 1024,
                                [&](std::uint64_t seq, const std::uint8_t* body, std::size_t size) {
                                    const std::string payload = "m" + std::to_string(seq);
                                    in_order = in_order && seq == expected &&
                                               std::string(reinterpret_cast<const char*>(body),
                                                           size) == payload;
                                    ++expected;
                                    return true;
                                }));
    CHECK_TRUE(in_order);
    UNSIGNED_LONGS_EQUAL(10001, expected);
    const tether::server::StoreStats totals = store->stats();
    UNSIGNED_LONGS_EQUAL(1, totals.sessions);
    UNSIGNED_LONGS_EQUAL(10000, totals.received);
    UNSIGNED_LONGS_EQUAL(duplicates, totals.duplicates);
}

TEST(SessionStore, RandomTrafficMatchesASimpleModelAcrossRestarts) {
    std::mt19937_64 random(12345);
    hello(1);
    std::uint64_t next = 1;
    std::uint64_t received = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t missing = 0;
    std::set<std::uint64_t> stored;
    for (int step = 0; step < 3000; ++step) {
        const std::uint64_t action = random() % 100;
        if (action < 70) {
            // Mostly in order, sometimes a retransmission, sometimes a jump.
            const std::uint64_t kind = random() % 10;
            std::uint64_t seq = next;
            if (kind == 0 && next > 1) {
                seq = 1 + random() % (next - 1);
            } else if (kind == 1) {
                seq = next + 1 + random() % 5;
            }
            const UplinkResult result = send(*store, seq);
            if (seq < next) {
                CHECK_EQUAL(UplinkResult::kDuplicate, result);
                ++duplicates;
            } else {
                CHECK_EQUAL(
                    seq == next ? UplinkResult::kStored : UplinkResult::kStoredAfterUnreportedGap,
                    result);
                missing += seq - next;
                next = seq + 1;
                ++received;
                stored.insert(seq);
            }
        } else if (action < 85) {
            const std::uint64_t first = next > 3 ? next - 3 + random() % 6 : 1 + random() % 3;
            const std::uint64_t last = first + random() % 4;
            const GapResult result = store->uplink_gap(kSession, first, last, "model");
            if (last < next) {
                CHECK_EQUAL(GapResult::kIgnored, result);
            } else {
                missing += last + 1 - next;
                next = last + 1;
            }
        } else if (action < 95) {
            sync();
        } else {
            sync();
            reopen();
        }
        UNSIGNED_LONGS_EQUAL(next, store->next_expected(kSession));
    }
    sync();
    reopen();
    const SessionStats stats = stats_of(*store);
    UNSIGNED_LONGS_EQUAL(received, stats.received);
    UNSIGNED_LONGS_EQUAL(duplicates, stats.duplicates);
    UNSIGNED_LONGS_EQUAL(missing, stats.missing_seqs);
    UNSIGNED_LONGS_EQUAL(next - 1, received + missing);
    UNSIGNED_LONGS_EQUAL(*stored.rbegin(), stats.highest_seq);
}

TEST(SessionStore, AFailedFsyncFailsThatSessionOnlyUntilItsNextHello) {
    hello(1);
    hello(1, 0, 1, kOtherSession);
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 1));
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 1, kOtherSession));
    {
        SyscallFaults faults;
        faults.fail(Syscall::kFsync, EIO);  // the first session's uplink.log
        std::vector<AckUpdate> acks{AckUpdate{"stale", 1}};
        std::vector<std::string> failed{"stale"};
        CHECK_EQUAL(Status::kIoError, store->sync(&acks, &failed));
        // Nothing of the failed session may be acknowledged; the other's may.
        UNSIGNED_LONGS_EQUAL(1, acks.size());
        STRCMP_EQUAL(kOtherSession, acks[0].session.c_str());
        UNSIGNED_LONGS_EQUAL(1, acks[0].last_uplink);
        UNSIGNED_LONGS_EQUAL(1, failed.size());
        STRCMP_EQUAL(kSession, failed[0].c_str());
    }
    CHECK_TRUE(store->stats().failed);
    UNSIGNED_LONGS_EQUAL(1, store->stats().failed_sessions);
    CHECK_TRUE(stats_of(*store).failed);
    CHECK_FALSE(stats_of(*store, kOtherSession).failed);
    CHECK_EQUAL(Status::kOk, store->sync(nullptr));  // reported once, when it happened
    CHECK_EQUAL(UplinkResult::kIoError, send(*store, 2));
    CHECK_EQUAL(GapResult::kIoError, store->uplink_gap(kSession, 2, 3, ""));
    std::uint64_t seq = 0;
    CHECK_EQUAL(Status::kIoError, store->push_downlink(kSession, bytes("x"), 1, &seq));
    // The other session carries on.
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 2, kOtherSession));
    std::vector<AckUpdate> acks;
    CHECK_EQUAL(Status::kOk, store->sync(&acks));
    UNSIGNED_LONGS_EQUAL(1, acks.size());
    UNSIGNED_LONGS_EQUAL(2, acks[0].last_uplink);
    // Its next hello reads the failed session afresh, as a restart would.
    const HelloResult again = hello(1, 0, 2);
    CHECK_TRUE(again.resumed);
    UNSIGNED_LONGS_EQUAL(1, again.last_uplink);  // it did reach the file
    CHECK_FALSE(store->stats().failed);
    UNSIGNED_LONGS_EQUAL(1, store->stats().session_failures);
    CHECK_EQUAL(UplinkResult::kDuplicate, send(*store, 1));
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 2));
    sync();
    reopen();
    UNSIGNED_LONGS_EQUAL(2, stats_of(*store).received);
    UNSIGNED_LONGS_EQUAL(2, stats_of(*store, kOtherSession).received);
}

TEST(SessionStore, FailedWritesAreReportedAndNothingIsAcknowledged) {
    hello(1);
    push("one");
    {
        SyscallFaults faults;
        faults.fail(Syscall::kPwrite, ENOSPC);
        // Uplink records are written in batches: the failure comes with the
        // sync the ACK waits for, so nothing is acknowledged either way.
        CHECK_EQUAL(UplinkResult::kStored, send(*store, 1));
        std::vector<tether::server::AckUpdate> acks;
        CHECK_EQUAL(Status::kIoError, store->sync(&acks));
        CHECK_TRUE(acks.empty());
    }
    CHECK_EQUAL(Status::kIoError, store->downlink_acked(kSession, 1));
    reopen();
    UNSIGNED_LONGS_EQUAL(0, stats_of(*store).received);
    {
        SyscallFaults faults;
        faults.fail(Syscall::kPwrite, ENOSPC);
        CHECK_EQUAL(GapResult::kIoError, store->uplink_gap(kSession, 1, 3, ""));
    }
    reopen();
    {
        SyscallFaults faults;
        faults.fail(Syscall::kPwrite, ENOSPC);
        CHECK_EQUAL(UplinkResult::kIoError, send(*store, 4));  // the unreported gap fails
    }
    reopen();
    {
        SyscallFaults faults;
        faults.fail(Syscall::kPwrite, ENOSPC);
        HelloResult result;
        CHECK_EQUAL(Status::kIoError, store->hello(hello_request(1, 0, 9, 9), &result));
    }
    reopen();
    {
        SyscallFaults faults;
        faults.fail(Syscall::kPwrite, ENOSPC);
        std::uint64_t seq = 0;
        CHECK_EQUAL(Status::kIoError, store->push_downlink(kSession, bytes("x"), 1, &seq));
    }
    reopen();
    {
        SyscallFaults faults;
        faults.fail(Syscall::kFsync, EIO);
        HelloResult result;
        CHECK_EQUAL(Status::kIoError, store->hello(hello_request(1), &result));
    }
    reopen();
    UNSIGNED_LONGS_EQUAL(1, store->next_expected(kSession));
    UNSIGNED_LONGS_EQUAL(1, stats_of(*store).downlink_last_seq);
}

TEST(SessionStore, ManySessionsKeepAtMostTheBoundOfFilesOpen) {
    options.max_open_sessions = 4;
    reopen();
    const unsigned before = open_descriptors();
    for (unsigned n = 0; n < 60; ++n) {
        const std::string id = numbered_session(n);
        hello(1, 0, 1, id.c_str());
        CHECK_EQUAL(UplinkResult::kStored, send(*store, 1, id.c_str()));
        CHECK_EQUAL(UplinkResult::kStored, send(*store, 2, id.c_str()));
        std::uint64_t seq = 0;
        CHECK_EQUAL(Status::kOk, store->push_downlink(id.c_str(), bytes("down"), 4, &seq));
        sync();
        CHECK(store->stats().open_sessions <= 4);
        CHECK(open_descriptors() <= before + 4 * 4);
    }
    // Every session is whole, the closed ones reopened on demand.
    for (unsigned n = 0; n < 60; n += 7) {
        const std::string id = numbered_session(n);
        const HelloResult result = hello(1, 0, 3, id.c_str());
        CHECK_TRUE(result.resumed);
        UNSIGNED_LONGS_EQUAL(2, result.last_uplink);
        CHECK_EQUAL(Status::kOk, store->downlink_acked(id.c_str(), 1));
        CHECK_EQUAL(UplinkResult::kStored, send(*store, 3, id.c_str()));
        sync();
    }
    CHECK(store->stats().reopens > 0);
    CHECK(open_descriptors() <= before + 4 * 4);
    reopen();
    UNSIGNED_LONGS_EQUAL(0, store->stats().open_sessions);  // a restart opens none
    UNSIGNED_LONGS_EQUAL(60, store->stats().sessions);
    UNSIGNED_LONGS_EQUAL(60 * 2 + 9, store->stats().received);
    UNSIGNED_LONGS_EQUAL(0, stats_of(*store, numbered_session(7).c_str()).downlink_held);
    UNSIGNED_LONGS_EQUAL(1, stats_of(*store, numbered_session(8).c_str()).downlink_held);
}

TEST(SessionStore, SessionsWaitingForASyncStayOpenUntilIt) {
    options.max_open_sessions = 2;
    reopen();
    for (unsigned n = 0; n < 5; ++n) {
        hello(1, 0, 1, numbered_session(n).c_str());
    }
    UNSIGNED_LONGS_EQUAL(2, store->stats().open_sessions);
    for (unsigned n = 0; n < 5; ++n) {
        CHECK_EQUAL(UplinkResult::kStored, send(*store, 1, numbered_session(n).c_str()));
    }
    UNSIGNED_LONGS_EQUAL(5, store->stats().open_sessions);  // none may be closed unsynced
    std::vector<AckUpdate> acks;
    CHECK_EQUAL(Status::kOk, store->sync(&acks));
    UNSIGNED_LONGS_EQUAL(5, acks.size());
    UNSIGNED_LONGS_EQUAL(2, store->stats().open_sessions);
}

TEST(SessionStore, SessionsWithALiveConnectionStayOpenBeforeIdleOnes) {
    options.max_open_sessions = 2;
    reopen();
    const std::string live = numbered_session(1);
    const std::string idle = numbered_session(2);
    hello(1, 0, 1, live.c_str());
    store->set_live(live, true);
    hello(1, 0, 1, idle.c_str());
    hello(1, 0, 1, numbered_session(3).c_str());  // the least recently used is `live`
    CHECK_TRUE(stats_of(*store, live.c_str()).files_open);
    CHECK_FALSE(stats_of(*store, idle.c_str()).files_open);
    store->set_live(live, false);
    hello(1, 0, 1, numbered_session(4).c_str());
    CHECK_FALSE(stats_of(*store, live.c_str()).files_open);
    store->set_live("not-a-session", true);  // ignored
}

TEST(SessionStore, OutOfDescriptorsWithNothingToCloseFailsOnlyTheSessionThatNeededThem) {
    const std::string healthy = numbered_session(1);
    const std::string starved = numbered_session(2);
    const std::string newcomer = numbered_session(3);
    hello(1, 0, 1, healthy.c_str());
    hello(1, 0, 1, starved.c_str());
    reopen();  // every session closed: none can give descriptors back
    {
        DescriptorHog hog(2);  // fewer than the four logs of a session
        CHECK_EQUAL(UplinkResult::kIoError, send(*store, 1, starved.c_str()));
        HelloResult result;
        CHECK_EQUAL(Status::kIoError,
                    store->hello(hello_request(1, 0, 1, 1, newcomer.c_str()), &result));
        std::vector<std::string> failed;
        CHECK_EQUAL(Status::kOk, store->sync(nullptr, &failed));  // reported by the calls
        CHECK_TRUE(failed.empty());
    }
    CHECK_TRUE(stats_of(*store, starved.c_str()).failed);
    CHECK_FALSE(stats_of(*store, healthy.c_str()).failed);
    UNSIGNED_LONGS_EQUAL(1, store->stats().failed_sessions);
    UNSIGNED_LONGS_EQUAL(2, store->stats().sessions);  // the newcomer was not made
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 1, healthy.c_str()));
    const HelloResult again = hello(1, 0, 1, starved.c_str());
    CHECK_TRUE(again.resumed);
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 1, starved.c_str()));
    sync();
    UNSIGNED_LONGS_EQUAL(0, store->stats().failed_sessions);
}

TEST(SessionStore, OutOfDescriptorsASessionWaitingForASyncIsMadeDurableEarlyToMakeRoom) {
    const std::string healthy = numbered_session(1);
    const std::string starved = numbered_session(2);
    hello(1, 0, 1, healthy.c_str());
    hello(1, 0, 1, starved.c_str());
    reopen();
    hello(1, 0, 1, healthy.c_str());
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 1, healthy.c_str()));  // waits for a sync
    {
        DescriptorHog hog(2);
        SyscallFaults faults;
        CHECK_EQUAL(UplinkResult::kStored, send(*store, 1, starved.c_str()));
        CHECK(faults.calls(Syscall::kFsync) >= 1);  // healthy's log, before it was closed
        CHECK_FALSE(stats_of(*store, healthy.c_str()).files_open);
        std::vector<AckUpdate> acks;
        std::vector<std::string> failed;
        CHECK_EQUAL(Status::kOk, store->sync(&acks, &failed));
        UNSIGNED_LONGS_EQUAL(2, acks.size());  // both durable
        CHECK_TRUE(failed.empty());
        // And back: healthy takes the descriptors of starved, clean now.
        CHECK_EQUAL(UplinkResult::kStored, send(*store, 2, healthy.c_str()));
        CHECK_FALSE(stats_of(*store, starved.c_str()).files_open);
        sync();
    }
    UNSIGNED_LONGS_EQUAL(0, store->stats().failed_sessions);
    reopen();
    UNSIGNED_LONGS_EQUAL(2, stats_of(*store, healthy.c_str()).received);
    UNSIGNED_LONGS_EQUAL(1, stats_of(*store, starved.c_str()).received);
}

TEST(SessionStore, ASessionThatFailsWhileMakingRoomIsReportedBySync) {
    const std::string healthy = numbered_session(1);
    const std::string starved = numbered_session(2);
    hello(1, 0, 1, healthy.c_str());
    hello(1, 0, 1, starved.c_str());
    reopen();
    hello(1, 0, 1, healthy.c_str());
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 1, healthy.c_str()));
    {
        DescriptorHog hog(2);
        SyscallFaults faults;
        faults.fail(Syscall::kFsync, EIO);  // healthy's, made durable early
        CHECK_EQUAL(UplinkResult::kStored, send(*store, 1, starved.c_str()));
        std::vector<AckUpdate> acks;
        std::vector<std::string> failed;
        CHECK_EQUAL(Status::kIoError, store->sync(&acks, &failed));
        UNSIGNED_LONGS_EQUAL(1, failed.size());
        STRCMP_EQUAL(healthy.c_str(), failed[0].c_str());
        UNSIGNED_LONGS_EQUAL(1, acks.size());
        STRCMP_EQUAL(starved.c_str(), acks[0].session.c_str());
        CHECK_EQUAL(Status::kOk, store->sync(nullptr, &failed));  // reported once
        CHECK_TRUE(failed.empty());
    }
    CHECK_TRUE(stats_of(*store, healthy.c_str()).failed);
    CHECK_TRUE(hello(1, 0, 2, healthy.c_str()).resumed);  // read afresh
    CHECK_FALSE(stats_of(*store, healthy.c_str()).failed);
}

TEST(SessionStore, ASessionUnreadableAtOpenFailsAloneAndIsReadByItsNextHello) {
    hello(1);
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 1));
    hello(1, 0, 1, kOtherSession);
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 1, kOtherSession));
    sync();
    store.reset();
    store = std::make_unique<SessionStore>(options);
    {
        SyscallFaults faults;
        faults.fail(Syscall::kPread, EIO);  // the first session read (in id order)
        CHECK_EQUAL(Status::kOk, store->open(root));
    }
    CHECK_TRUE(stats_of(*store).failed);
    CHECK_FALSE(stats_of(*store, kOtherSession).failed);
    CHECK_EQUAL(UplinkResult::kIoError, send(*store, 2));
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 2, kOtherSession));
    const HelloResult result = hello(1, 0, 2);
    CHECK_TRUE(result.resumed);
    UNSIGNED_LONGS_EQUAL(1, result.last_uplink);
    CHECK_FALSE(stats_of(*store).failed);
}

TEST(SessionStore, FailedCompactionIsReported) {
    options.replay_capacity = 1;
    reopen();
    hello(1);
    for (int i = 0; i < 32; ++i) {
        push("x");
    }
    SyscallFaults faults;
    faults.fail(Syscall::kFsync, EIO);
    std::uint64_t seq = 0;
    CHECK_EQUAL(Status::kIoError, store->push_downlink(kSession, bytes("x"), 1, &seq));
}

TEST(SessionStore, LimitsAreEnforced) {
    options.max_sessions = 1;
    options.max_payload_size = 4;
    reopen();
    hello(1);
    HelloResult result;
    CHECK_EQUAL(Status::kNoSpace, store->hello(hello_request(1, 0, 1, 1, kOtherSession), &result));
    CHECK_EQUAL(UplinkResult::kTooLarge, store->uplink_data(kSession, 1, bytes("12345"), 5));
    std::uint64_t seq = 0;
    CHECK_EQUAL(Status::kTooLarge, store->push_downlink(kSession, bytes("12345"), 5, &seq));
    CHECK_EQUAL(Status::kInvalidArgument, store->push_downlink(kSession, nullptr, 1, &seq));
    CHECK_EQUAL(Status::kInvalidArgument, store->push_downlink(kSession, bytes("1"), 1, nullptr));
    UNSIGNED_LONGS_EQUAL(1, store->next_expected(kSession));
}

TEST(SessionStore, OpenRefusesBadOptionsTwiceOpenAndUnusableDirectories) {
    CHECK_EQUAL(Status::kInvalidArgument, store->open(root));
    StoreOptions zero;
    zero.replay_capacity = 0;
    CHECK_EQUAL(Status::kInvalidArgument, SessionStore(zero).open(root));
    const std::string blocker = temp.write_file("blocker", "a file, not a directory");
    CHECK_EQUAL(Status::kIoError, SessionStore().open(blocker));
    CHECK_EQUAL(Status::kIoError, SessionStore().open(blocker + "/store"));
    // Names that are not session ids are ignored.
    ::mkdir((root + "/sessions/lost+found").c_str(), 0755);
    hello(1);
    reopen();
    UNSIGNED_LONGS_EQUAL(1, store->stats().sessions);
    ::rmdir((root + "/sessions/lost+found").c_str());
}

TEST(SessionStore, AnotherUsersHelloIsForbiddenAndChangesNothing) {
    HelloResult result;
    CHECK_EQUAL(Status::kOk, store->hello(hello_request(1, 0, 1, 1, kSession, "alice"), &result));
    CHECK(result.decision == HelloDecision::kAccepted);
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 1));
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 2));
    push("for alice");
    sync();
    const SessionStats before = stats_of(*store);
    STRCMP_EQUAL("alice", before.owner.c_str());
    CHECK_TRUE(before.has_owner);

    // bob knows the session id (it is a UUID of public names): a higher
    // version, a hole that would wipe the accounting, another device.
    HelloRequest bob = hello_request(99, 0, 1000000, 1000000, kSession, "bob");
    bob.device = "evil";
    result.replay_after = 77;
    CHECK_EQUAL(Status::kOk, store->hello(bob, &result));
    CHECK(result.decision == HelloDecision::kForbidden);
    CHECK_FALSE(result.resumed);
    UNSIGNED_LONGS_EQUAL(0, result.last_uplink);
    UNSIGNED_LONGS_EQUAL(0, result.replay_after);
    const SessionStats after = stats_of(*store);
    UNSIGNED_LONGS_EQUAL(before.version, after.version);
    STRCMP_EQUAL(before.device.c_str(), after.device.c_str());
    UNSIGNED_LONGS_EQUAL(before.received, after.received);
    UNSIGNED_LONGS_EQUAL(before.gap_count, after.gap_count);
    UNSIGNED_LONGS_EQUAL(before.next_expected, after.next_expected);
    UNSIGNED_LONGS_EQUAL(before.downlink_last_seq, after.downlink_last_seq);
    UNSIGNED_LONGS_EQUAL(before.downlink_held, after.downlink_held);

    // The owner survives a restart (it is a file of its own, not the meta cache).
    ::unlink(session_file(root, "meta").c_str());
    reopen();
    CHECK_EQUAL(Status::kOk, store->hello(bob, &result));
    CHECK(result.decision == HelloDecision::kForbidden);
    CHECK_EQUAL(Status::kOk, store->hello(hello_request(1, 0, 3, 3, kSession, "alice"), &result));
    CHECK(result.decision == HelloDecision::kAccepted);
    UNSIGNED_LONGS_EQUAL(2, result.last_uplink);
    STRCMP_EQUAL("alice", stats_of(*store).owner.c_str());
}

TEST(SessionStore, TheOwnerIsOnDiskWhenTheFirstHelloReturns) {
    HelloResult result;
    CHECK_EQUAL(Status::kOk, store->hello(hello_request(1, 0, 1, 1, kSession, "alice"), &result));
    std::vector<std::string> users;
    CHECK_EQUAL(Status::kOk,
                RecordLog::read(session_file(root, "owner"), 512,
                                [&](std::uint64_t key, const std::uint8_t* body, std::size_t size) {
                                    UNSIGNED_LONGS_EQUAL(1, key);
                                    users.emplace_back(reinterpret_cast<const char*>(body), size);
                                    return true;
                                }));
    UNSIGNED_LONGS_EQUAL(1, users.size());
    STRCMP_EQUAL("alice", users[0].c_str());
}

TEST(SessionStore, TokensWithoutAUserOwnTheirSessionsAsTheEmptyUser) {
    hello(1);  // user ""
    CHECK_TRUE(stats_of(*store).has_owner);
    STRCMP_EQUAL("", stats_of(*store).owner.c_str());
    HelloResult result;
    CHECK_EQUAL(Status::kOk, store->hello(hello_request(2, 0, 1, 1, kSession, "alice"), &result));
    CHECK(result.decision == HelloDecision::kForbidden);
    CHECK(hello(2).decision == HelloDecision::kAccepted);
}

TEST(SessionStore, ASessionWithoutAnOwnerIsClaimedByItsNextAcceptedHello) {
    hello(3);
    CHECK_EQUAL(UplinkResult::kStored, send(*store, 1));
    sync();
    ::unlink(session_file(root, "owner").c_str());  // as a store from before owners
    reopen();
    CHECK_FALSE(stats_of(*store).has_owner);
    HelloResult result;
    // A superseded hello claims nothing.
    CHECK_EQUAL(Status::kOk, store->hello(hello_request(2, 0, 1, 1, kSession, "bob"), &result));
    CHECK(result.decision == HelloDecision::kSuperseded);
    CHECK_FALSE(stats_of(*store).has_owner);
    CHECK_EQUAL(Status::kOk, store->hello(hello_request(3, 0, 2, 2, kSession, "bob"), &result));
    CHECK(result.decision == HelloDecision::kAccepted);
    CHECK_TRUE(result.resumed);
    UNSIGNED_LONGS_EQUAL(1, result.last_uplink);
    STRCMP_EQUAL("bob", stats_of(*store).owner.c_str());
    reopen();
    CHECK_EQUAL(Status::kOk, store->hello(hello_request(4, 0, 2, 2, kSession, "alice"), &result));
    CHECK(result.decision == HelloDecision::kForbidden);
    CHECK_EQUAL(Status::kOk, store->hello(hello_request(4, 0, 2, 2, kSession, "bob"), &result));
    CHECK(result.decision == HelloDecision::kAccepted);
}

TEST(SessionStore, ADamagedOwnerFileRefusesEveryHello) {
    HelloResult result;
    CHECK_EQUAL(Status::kOk, store->hello(hello_request(1, 0, 1, 1, kSession, "alice"), &result));
    std::string owner = read_file(session_file(root, "owner"));
    owner[owner.size() - 1] = static_cast<char>(owner[owner.size() - 1] ^ 0x01);
    write_file(session_file(root, "owner"), owner);
    reopen();
    CHECK_FALSE(stats_of(*store).has_owner);
    for (const char* user : {"alice", "bob", ""}) {
        CHECK_EQUAL(Status::kOk, store->hello(hello_request(2, 0, 1, 1, kSession, user), &result));
        CHECK(result.decision == HelloDecision::kForbidden);
    }
    UNSIGNED_LONGS_EQUAL(1, stats_of(*store).version);
}

TEST(SessionStore, UsersLongerThanTheTokenLimitAreRejected) {
    const std::string long_user(513, 'u');
    HelloResult result;
    CHECK_EQUAL(Status::kInvalidArgument,
                store->hello(hello_request(1, 0, 1, 1, kSession, long_user.c_str()), &result));
    const std::string longest(512, 'u');
    CHECK_EQUAL(Status::kOk,
                store->hello(hello_request(1, 0, 1, 1, kSession, longest.c_str()), &result));
    CHECK(result.decision == HelloDecision::kAccepted);
}

TEST(SessionStore, StatusNamesAreDistinct) {
    const UplinkResult uplink[] = {UplinkResult::kStored,
                                   UplinkResult::kDuplicate,
                                   UplinkResult::kStoredAfterUnreportedGap,
                                   UplinkResult::kUnknownSession,
                                   UplinkResult::kInvalidArgument,
                                   UplinkResult::kTooLarge,
                                   UplinkResult::kIoError};
    std::set<std::string> names;
    for (UplinkResult result : uplink) {
        names.insert(tether::server::to_string(result));
    }
    UNSIGNED_LONGS_EQUAL(7, names.size());
    const GapResult gap[] = {GapResult::kRecorded,        GapResult::kRecordedAfterUnreportedGap,
                             GapResult::kIgnored,         GapResult::kUnknownSession,
                             GapResult::kInvalidArgument, GapResult::kIoError};
    names.clear();
    for (GapResult result : gap) {
        names.insert(tether::server::to_string(result));
    }
    UNSIGNED_LONGS_EQUAL(6, names.size());
    STRCMP_EQUAL("unknown", tether::server::to_string(static_cast<UplinkResult>(99)));
    STRCMP_EQUAL("unknown", tether::server::to_string(static_cast<GapResult>(99)));
}

// --- TokenStore ----------------------------------------------------------------

TEST_GROUP(TokenStore) {
    TokenStore tokens;
};

TEST(TokenStore, LoadsTokensUsersAndSkipsComments) {
    CHECK_EQUAL(Status::kOk, tokens.load_text("# tokens\n"
                                              "t0k3n\n"
                                              "\n"
                                              "   # indented comment\n"
                                              "\tt0k3n-2   alice\r\n"
                                              "last bob"));
    UNSIGNED_LONGS_EQUAL(3, tokens.size());
    CHECK_EQUAL(TokenCheck::kValid, tokens.check("t0k3n"));
    CHECK_EQUAL(TokenCheck::kValid, tokens.check("t0k3n-2"));
    CHECK_EQUAL(TokenCheck::kValid, tokens.check("last"));
    CHECK_EQUAL(TokenCheck::kUnknown, tokens.check("t0k3"));
    CHECK_EQUAL(TokenCheck::kUnknown, tokens.check(""));
    CHECK_EQUAL(TokenCheck::kUnknown, tokens.check("#"));
    STRCMP_EQUAL("alice", tokens.user("t0k3n-2").c_str());
    STRCMP_EQUAL("", tokens.user("t0k3n").c_str());
    STRCMP_EQUAL("", tokens.user("nobody").c_str());
}

TEST(TokenStore, ATokenMayNameTheOneDeviceThatUsesIt) {
    CHECK_EQUAL(Status::kOk, tokens.load_text("tA alice pi-17\n"
                                              "tB\tbob\n"
                                              "tC\n"));
    STRCMP_EQUAL("alice", tokens.user("tA").c_str());
    STRCMP_EQUAL("pi-17", tokens.device("tA").c_str());
    STRCMP_EQUAL("", tokens.device("tB").c_str());
    STRCMP_EQUAL("", tokens.device("nobody").c_str());
    CHECK_TRUE(tokens.allows_device("tA", "pi-17"));
    CHECK_FALSE(tokens.allows_device("tA", "pi-18"));
    CHECK_FALSE(tokens.allows_device("tA", "PI-17"));
    CHECK_FALSE(tokens.allows_device("tA", ""));
    CHECK_TRUE(tokens.allows_device("tB", "anything"));
    CHECK_TRUE(tokens.allows_device("tC", "anything"));
    CHECK_FALSE(tokens.allows_device("nobody", "pi-17"));
    // An expired token keeps its binding (its connections close 4001 anyway).
    CHECK_TRUE(tokens.expire("tA"));
    CHECK_FALSE(tokens.allows_device("tA", "pi-18"));
}

TEST(TokenStore, MalformedLinesAreRejectedWithTheirNumber) {
    CHECK_EQUAL(Status::kOk, tokens.load_text("keep\n"));
    std::size_t line = 0;
    CHECK_EQUAL(Status::kCorrupt, tokens.load_text("a\nb c d e\n", &line));
    UNSIGNED_LONGS_EQUAL(2, line);
    CHECK_EQUAL(Status::kCorrupt, tokens.load_text("ok\n\nbad\x01token\n", &line));
    UNSIGNED_LONGS_EQUAL(3, line);
    CHECK_EQUAL(Status::kCorrupt, tokens.load_text(std::string(513, 't'), &line));
    UNSIGNED_LONGS_EQUAL(1, line);
    CHECK_EQUAL(Status::kCorrupt, tokens.load_text("bad\x01token"));
    // Nothing changed.
    UNSIGNED_LONGS_EQUAL(1, tokens.size());
    CHECK_EQUAL(TokenCheck::kValid, tokens.check("keep"));
    CHECK_EQUAL(Status::kOk, tokens.load_text(std::string(512, 't')));
}

TEST(TokenStore, ExpireOneOrAllAtRuntime) {
    CHECK_EQUAL(Status::kOk, tokens.load_text("a\nb\nc\n"));
    CHECK_TRUE(tokens.expire("b"));
    CHECK_FALSE(tokens.expire("zzz"));
    CHECK_EQUAL(TokenCheck::kValid, tokens.check("a"));
    CHECK_EQUAL(TokenCheck::kExpired, tokens.check("b"));
    tokens.expire_all();
    CHECK_EQUAL(TokenCheck::kExpired, tokens.check("a"));
    CHECK_EQUAL(TokenCheck::kExpired, tokens.check("c"));
    CHECK_EQUAL(TokenCheck::kUnknown, tokens.check("d"));
    // A reload starts over.
    CHECK_EQUAL(Status::kOk, tokens.load_text("a\n"));
    CHECK_EQUAL(TokenCheck::kValid, tokens.check("a"));
    CHECK_EQUAL(TokenCheck::kUnknown, tokens.check("b"));
    STRCMP_EQUAL("valid", tether::server::to_string(TokenCheck::kValid));
    STRCMP_EQUAL("unknown", tether::server::to_string(TokenCheck::kUnknown));
    STRCMP_EQUAL("expired", tether::server::to_string(TokenCheck::kExpired));
    STRCMP_EQUAL("unknown_check", tether::server::to_string(static_cast<TokenCheck>(9)));
}

TEST(TokenStore, LoadsFiles) {
    TempDir temp;
    const std::string path = temp.write_file("tokens", "# demo\nt0k3n demo-user\n");
    CHECK_EQUAL(Status::kOk, tether::port::load_token_file(&tokens, path));
    CHECK_EQUAL(TokenCheck::kValid, tokens.check("t0k3n"));
    CHECK_EQUAL(Status::kNotFound,
                tether::port::load_token_file(&tokens, temp.path() + "/missing"));
    CHECK_EQUAL(Status::kIoError,
                tether::port::load_token_file(&tokens, temp.path()));  // a directory
    const std::string big = temp.write_file("big", std::string(4096 * 3 + 5, 'x') + "\n");
    std::size_t line = 0;
    CHECK_EQUAL(Status::kCorrupt, tether::port::load_token_file(&tokens, big, &line));
    UNSIGNED_LONGS_EQUAL(1, line);
    CHECK_EQUAL(TokenCheck::kValid, tokens.check("t0k3n"));
}

// SPDX-License-Identifier: MIT
// tetherd's plumbing: sd_notify against a fake notify socket, the watchdogs,
// the status file, the log line, the status LED on a fake sysfs tree and the
// Prometheus textfile.
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "atomic_write.h"
#include "metrics.h"
#include "sd_notify.h"
#include "status_file.h"
#include "status_led.h"
#include "support/temp_dir.h"
#include "support/tether_strings.h"
#include "tether/reconnect.h"

// CppUTest last: its operator-new macros break standard headers.
#include <CppUTest/TestHarness.h>

using tether::LinkState;
using tether::Status;
using tether::daemon::HardwareWatchdog;
using tether::daemon::LedPattern;
using tether::daemon::Notifier;
using tether::daemon::StatusLed;
using tether::daemon::WatchdogPolicy;

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

bool file_exists(const std::string& path) {
    return ::access(path.c_str(), F_OK) == 0;
}

// A datagram socket standing in for systemd's notify socket.
class FakeNotifySocket {
  public:
    // `name` is a path, or "@name" for the abstract namespace.
    explicit FakeNotifySocket(const std::string& name) : name_(name) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::memcpy(address.sun_path, name.data(), name.size());
        const bool abstract = name[0] == '@';
        if (abstract) {
            address.sun_path[0] = '\0';
        }
        const auto size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() +
                                                 (abstract ? 0u : 1u));
        bound_ = ::bind(fd_, reinterpret_cast<const sockaddr*>(&address), size) == 0;
    }
    ~FakeNotifySocket() {
        ::close(fd_);
        if (name_[0] == '/') {
            ::unlink(name_.c_str());
        }
    }
    bool bound() const { return bound_; }
    // The next datagram, or "<none>".
    std::string receive() {
        char buffer[512];
        const ssize_t got = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
        return got < 0 ? std::string("<none>") : std::string(buffer, static_cast<std::size_t>(got));
    }

  private:
    std::string name_;
    int fd_ = -1;
    bool bound_ = false;
};

// Sets an environment variable for one test and restores it afterwards.
class ScopedEnv {
  public:
    ScopedEnv(const char* name, const char* value) : name_(name) {
        const char* old = std::getenv(name);
        had_ = old != nullptr;
        if (had_) {
            old_ = old;
        }
        if (value != nullptr) {
            ::setenv(name, value, 1);
        } else {
            ::unsetenv(name);
        }
    }
    ~ScopedEnv() {
        if (had_) {
            ::setenv(name_.c_str(), old_.c_str(), 1);
        } else {
            ::unsetenv(name_.c_str());
        }
    }

  private:
    std::string name_;
    std::string old_;
    bool had_ = false;
};

}  // namespace

TEST_GROUP(SdNotify){};

TEST(SdNotify, SendsEachMessageAsOneDatagramToThePathInNotifySocket) {
    tether::test::TempDir dir;
    const std::string path = dir.path() + "/notify";
    FakeNotifySocket systemd(path);
    CHECK_TRUE(systemd.bound());
    ScopedEnv env("NOTIFY_SOCKET", path.c_str());

    Notifier notifier;
    CHECK_EQUAL(Status::kOk, notifier.open_from_environment());
    CHECK_TRUE(notifier.is_open());
    CHECK_EQUAL(Status::kOk, notifier.ready());
    CHECK_EQUAL(Status::kOk, notifier.status("reconnecting in 8.2 s (attempt 4)"));
    CHECK_EQUAL(Status::kOk, notifier.watchdog());
    CHECK_EQUAL(Status::kOk, notifier.reloading());
    CHECK_EQUAL(Status::kOk, notifier.stopping());
    CHECK_EQUAL(Status::kOk, notifier.send("READY=1\nSTATUS=x"));

    STRCMP_EQUAL("READY=1", systemd.receive().c_str());
    STRCMP_EQUAL("STATUS=reconnecting in 8.2 s (attempt 4)", systemd.receive().c_str());
    STRCMP_EQUAL("WATCHDOG=1", systemd.receive().c_str());
    STRCMP_EQUAL("RELOADING=1", systemd.receive().c_str());
    STRCMP_EQUAL("STOPPING=1", systemd.receive().c_str());
    STRCMP_EQUAL("READY=1\nSTATUS=x", systemd.receive().c_str());
    STRCMP_EQUAL("<none>", systemd.receive().c_str());
    UNSIGNED_LONGS_EQUAL(6, notifier.sent());
    UNSIGNED_LONGS_EQUAL(0, notifier.errors());
}

TEST(SdNotify, ReachesAnAbstractSocketNamedWithAt) {
    const std::string name = "@tether-test-notify-" + std::to_string(::getpid());
    FakeNotifySocket systemd(name);
    CHECK_TRUE(systemd.bound());
    ScopedEnv env("NOTIFY_SOCKET", name.c_str());

    Notifier notifier;
    CHECK_EQUAL(Status::kOk, notifier.open_from_environment());
    CHECK_EQUAL(Status::kOk, notifier.ready());
    STRCMP_EQUAL("READY=1", systemd.receive().c_str());
}

TEST(SdNotify, StatusTextStopsAtANewlineAndAt255Bytes) {
    tether::test::TempDir dir;
    const std::string path = dir.path() + "/notify";
    FakeNotifySocket systemd(path);
    Notifier notifier;
    CHECK_EQUAL(Status::kOk, notifier.open(path.c_str()));
    CHECK_EQUAL(Status::kOk, notifier.status("online\nREADY=1"));
    STRCMP_EQUAL("STATUS=online", systemd.receive().c_str());
    const std::string long_text(300, 'x');
    CHECK_EQUAL(Status::kOk, notifier.status(long_text.c_str()));
    STRCMP_EQUAL(("STATUS=" + std::string(255, 'x')).c_str(), systemd.receive().c_str());
}

TEST(SdNotify, WithoutNotifySocketNothingIsSentAndNothingCounted) {
    ScopedEnv env("NOTIFY_SOCKET", nullptr);
    Notifier notifier;
    CHECK_EQUAL(Status::kNotFound, notifier.open_from_environment());
    CHECK_FALSE(notifier.is_open());
    CHECK_EQUAL(Status::kUnavailable, notifier.ready());
    CHECK_EQUAL(Status::kNotFound, notifier.open(""));
    UNSIGNED_LONGS_EQUAL(0, notifier.sent());
    UNSIGNED_LONGS_EQUAL(0, notifier.errors());
}

TEST(SdNotify, RejectsAddressesThatAreNeitherAbsolutePathsNorAbstractNames) {
    Notifier notifier;
    CHECK_EQUAL(Status::kInvalidArgument, notifier.open("run/notify"));
    CHECK_EQUAL(Status::kInvalidArgument, notifier.open("vsock:2:1234"));
    CHECK_EQUAL(Status::kInvalidArgument, notifier.open("@"));
    const std::string too_long = "/" + std::string(sizeof(sockaddr_un{}.sun_path), 'a');
    CHECK_EQUAL(Status::kInvalidArgument, notifier.open(too_long.c_str()));
    CHECK_FALSE(notifier.is_open());
}

TEST(SdNotify, AFailedSendIsCountedAndNotFatal) {
    tether::test::TempDir dir;
    const std::string path = dir.path() + "/nobody-listens";
    Notifier notifier;
    CHECK_EQUAL(Status::kOk, notifier.open(path.c_str()));
    CHECK_EQUAL(Status::kIoError, notifier.watchdog());
    CHECK_EQUAL(Status::kIoError, notifier.watchdog());
    UNSIGNED_LONGS_EQUAL(2, notifier.errors());
    UNSIGNED_LONGS_EQUAL(0, notifier.sent());

    // The socket appears later (systemd re-executed): the next send finds it.
    FakeNotifySocket systemd(path);
    CHECK_EQUAL(Status::kOk, notifier.watchdog());
    STRCMP_EQUAL("WATCHDOG=1", systemd.receive().c_str());
}

TEST_GROUP(WatchdogInterval){};

TEST(WatchdogInterval, ConvertsMicrosecondsToMilliseconds) {
    std::uint32_t ms = 99;
    CHECK_EQUAL(Status::kOk, tether::daemon::parse_watchdog_interval("30000000", nullptr, 42, &ms));
    UNSIGNED_LONGS_EQUAL(30000, ms);
    CHECK_EQUAL(Status::kOk, tether::daemon::parse_watchdog_interval("1999", "", 42, &ms));
    UNSIGNED_LONGS_EQUAL(1, ms);
    CHECK_EQUAL(Status::kOk, tether::daemon::parse_watchdog_interval("500", nullptr, 42, &ms));
    UNSIGNED_LONGS_EQUAL(1, ms);
    CHECK_EQUAL(Status::kOk,
                tether::daemon::parse_watchdog_interval("18446744073709551615", nullptr, 42, &ms));
    UNSIGNED_LONGS_EQUAL(tether::daemon::kMaxWatchdogIntervalMs, ms);
}

TEST(WatchdogInterval, AppliesOnlyWhenWatchdogPidIsThisProcess) {
    std::uint32_t ms = 99;
    CHECK_EQUAL(Status::kOk, tether::daemon::parse_watchdog_interval("20000000", "42", 42, &ms));
    UNSIGNED_LONGS_EQUAL(20000, ms);
    CHECK_EQUAL(Status::kNotFound,
                tether::daemon::parse_watchdog_interval("20000000", "43", 42, &ms));
    UNSIGNED_LONGS_EQUAL(0, ms);
}

TEST(WatchdogInterval, UnsetIsNotFoundAndGarbageIsInvalid) {
    std::uint32_t ms = 99;
    CHECK_EQUAL(Status::kNotFound, tether::daemon::parse_watchdog_interval(nullptr, "1", 1, &ms));
    CHECK_EQUAL(Status::kNotFound, tether::daemon::parse_watchdog_interval("", nullptr, 1, &ms));
    UNSIGNED_LONGS_EQUAL(0, ms);
    const char* bad[] = {"0", "-5", "30s", " 30", "18446744073709551616"};
    for (const char* text : bad) {
        CHECK_EQUAL(Status::kInvalidArgument,
                    tether::daemon::parse_watchdog_interval(text, nullptr, 1, &ms));
    }
    CHECK_EQUAL(Status::kInvalidArgument,
                tether::daemon::parse_watchdog_interval("1000000", "12x", 1, &ms));
}

TEST(WatchdogInterval, ReadsTheEnvironment) {
    const std::string pid = std::to_string(::getpid());
    ScopedEnv usec("WATCHDOG_USEC", "30000000");
    ScopedEnv owner("WATCHDOG_PID", pid.c_str());
    std::uint32_t ms = 0;
    CHECK_EQUAL(Status::kOk, tether::daemon::watchdog_interval_from_environment(&ms));
    UNSIGNED_LONGS_EQUAL(30000, ms);
    ScopedEnv other("WATCHDOG_PID", "1");
    CHECK_EQUAL(Status::kNotFound, tether::daemon::watchdog_interval_from_environment(&ms));
}

TEST_GROUP(WatchdogPolicy){};

TEST(WatchdogPolicy, PingsAtOnceThenEveryHalfInterval) {
    WatchdogPolicy policy(30000);
    CHECK_TRUE(policy.enabled());
    UNSIGNED_LONGS_EQUAL(15000, policy.ping_every_ms());
    tether::TimeMs due = 0;
    CHECK_TRUE(policy.next_due(1000, &due));
    UNSIGNED_LONGS_EQUAL(1000, due);
    CHECK_TRUE(policy.should_ping(1000, 1000));
    policy.pinged(1000);
    CHECK_TRUE(policy.next_due(2000, &due));
    UNSIGNED_LONGS_EQUAL(16000, due);
    CHECK_FALSE(policy.should_ping(15999, 15999));
    CHECK_TRUE(policy.should_ping(16000, 16000));
}

TEST(WatchdogPolicy, AStalledLoopStopsPinging) {
    WatchdogPolicy policy(30000);
    policy.pinged(0);
    // The last iteration completed 15 s ago: still within the limit.
    CHECK_TRUE(policy.should_ping(20000, 5000));
    // 15.001 s ago: the loop is stuck, systemd must see the silence.
    CHECK_FALSE(policy.should_ping(20001, 5000));
    // A completion stamped in the future is treated as unhealthy.
    CHECK_FALSE(policy.should_ping(20000, 20001));
}

TEST(WatchdogPolicy, HonoursAnExplicitStallLimitAndWrapAround) {
    WatchdogPolicy policy(10000, 2000);
    UNSIGNED_LONGS_EQUAL(2000, policy.stall_limit_ms());
    const tether::TimeMs near_wrap = 0xFFFFF000u;
    policy.pinged(near_wrap);
    const tether::TimeMs later = near_wrap + 5000u;  // wrapped past zero
    CHECK_TRUE(policy.should_ping(later, later - 2000u));
    CHECK_FALSE(policy.should_ping(later, later - 2001u));
    CHECK_FALSE(policy.should_ping(later - 1u, later - 1u));
}

TEST(WatchdogPolicy, DisabledNeverPings) {
    WatchdogPolicy policy(0);
    CHECK_FALSE(policy.enabled());
    CHECK_FALSE(policy.should_ping(100000, 100000));
    tether::TimeMs due = 7;
    CHECK_FALSE(policy.next_due(0, &due));
    UNSIGNED_LONGS_EQUAL(7, due);
}

TEST_GROUP(HardwareWatchdog){};

TEST(HardwareWatchdog, KeepAliveWritesAByteAndCleanCloseWritesMagicV) {
    tether::test::TempDir dir;
    const std::string device = dir.write_file("watchdog", "");
    HardwareWatchdog watchdog;
    CHECK_EQUAL(Status::kOk, watchdog.open(device.c_str()));
    CHECK_TRUE(watchdog.is_open());
    CHECK_EQUAL(Status::kOk, watchdog.keep_alive());
    CHECK_EQUAL(Status::kOk, watchdog.keep_alive());
    CHECK_EQUAL(Status::kOk, watchdog.close_cleanly());
    CHECK_FALSE(watchdog.is_open());
    STRCMP_EQUAL("..V", read_file(device).c_str());
    CHECK_EQUAL(Status::kUnavailable, watchdog.keep_alive());
    CHECK_EQUAL(Status::kUnavailable, watchdog.close_cleanly());
}

TEST(HardwareWatchdog, DestructionWithoutCleanCloseLeavesOutTheMagicV) {
    tether::test::TempDir dir;
    const std::string device = dir.write_file("watchdog", "");
    {
        HardwareWatchdog watchdog;
        CHECK_EQUAL(Status::kOk, watchdog.open(device.c_str()));
        CHECK_EQUAL(Status::kOk, watchdog.keep_alive());
        // Reopening closes the first descriptor without 'V' too.
        CHECK_EQUAL(Status::kOk, watchdog.open(device.c_str()));
    }
    STRCMP_EQUAL(".", read_file(device).c_str());
}

TEST(HardwareWatchdog, ReportsOpenAndWriteFailures) {
    tether::test::TempDir dir;
    HardwareWatchdog watchdog;
    CHECK_EQUAL(Status::kInvalidArgument, watchdog.open(""));
    CHECK_EQUAL(Status::kInvalidArgument, watchdog.open(nullptr));
    CHECK_EQUAL(Status::kIoError, watchdog.open((dir.path() + "/missing").c_str()));
    CHECK_FALSE(watchdog.is_open());
    // /dev/full fails every write with ENOSPC.
    if (::access("/dev/full", W_OK) == 0) {
        CHECK_EQUAL(Status::kOk, watchdog.open("/dev/full"));
        CHECK_EQUAL(Status::kIoError, watchdog.keep_alive());
        CHECK_EQUAL(Status::kIoError, watchdog.close_cleanly());
        UNSIGNED_LONGS_EQUAL(2, watchdog.errors());
    }
}

TEST_GROUP(AtomicWrite){};

TEST(AtomicWrite, ReplacesTheFileAsAWholeWithTheRequestedMode) {
    tether::test::TempDir dir;
    const std::string path = dir.write_file("status.json", "old");
    dir.file("status.json.tmp");
    // A reader holding the old file keeps seeing the old contents: the new
    // text arrives under a new inode, never written into the old one.
    std::ifstream reader(path, std::ios::binary);
    CHECK_EQUAL(Status::kOk, tether::daemon::write_file_atomically(path, "new contents", 0640));
    std::stringstream old_text;
    old_text << reader.rdbuf();
    STRCMP_EQUAL("old", old_text.str().c_str());
    STRCMP_EQUAL("new contents", read_file(path).c_str());
    CHECK_FALSE(file_exists(path + ".tmp"));
    struct stat info {};
    CHECK_EQUAL(0, ::stat(path.c_str(), &info));
    UNSIGNED_LONGS_EQUAL(0640, info.st_mode & 0777);
}

TEST(AtomicWrite, FailsWithoutTouchingAnythingWhenTheDirectoryIsMissing) {
    tether::test::TempDir dir;
    CHECK_EQUAL(Status::kIoError,
                tether::daemon::write_file_atomically(dir.path() + "/no/such/file", "x"));
}

TEST(AtomicWrite, RemovesTheTemporaryWhenTheRenameFails) {
    tether::test::TempDir dir;
    // The target is a non-empty directory: rename() refuses to replace it.
    const std::string target = dir.path() + "/target";
    CHECK_EQUAL(0, ::mkdir(target.c_str(), 0700));
    const std::string inside = dir.write_file("target/keep", "k");
    CHECK_EQUAL(Status::kIoError, tether::daemon::write_file_atomically(target, "x"));
    CHECK_FALSE(file_exists(target + ".tmp"));
    ::unlink(inside.c_str());
    ::rmdir(target.c_str());
}

TEST(AtomicWrite, AShortOrFailedWriteLeavesTheOldFileInPlace) {
    tether::test::TempDir dir;
    const std::string path = dir.write_file("tetherd.prom", "old");
    dir.file("tetherd.prom.tmp");
    // A file size limit of 4 bytes: the first write is cut short, the next
    // fails with EFBIG (SIGXFSZ ignored), as on a full disk.
    rlimit saved{};
    CHECK_EQUAL(0, ::getrlimit(RLIMIT_FSIZE, &saved));
    rlimit tiny = saved;
    tiny.rlim_cur = 4;
    const auto previous = std::signal(SIGXFSZ, SIG_IGN);
    CHECK_EQUAL(0, ::setrlimit(RLIMIT_FSIZE, &tiny));
    const Status status = tether::daemon::write_file_atomically(path, "0123456789");
    ::setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, previous);
    CHECK_EQUAL(Status::kIoError, status);
    STRCMP_EQUAL("old", read_file(path).c_str());
    CHECK_FALSE(file_exists(path + ".tmp"));
}

TEST(AtomicWrite, DurableWritesSyncTheDirectoryAndSayWhatFailed) {
    tether::test::TempDir dir;
    const std::string path = dir.file("00000000000000000042.msg");
    const char bytes[] = {'a', '\0', 'b'};
    CHECK_EQUAL(Status::kOk, tether::daemon::write_file_durably(path, bytes, sizeof bytes));
    CHECK(std::string(bytes, sizeof bytes) == read_file(path));
    CHECK_FALSE(file_exists(path + ".tmp"));
    struct stat info {};
    CHECK_EQUAL(0, ::stat(path.c_str(), &info));
    UNSIGNED_LONGS_EQUAL(0600, info.st_mode & 0777);
    errno = 0;
    CHECK_EQUAL(Status::kIoError,
                tether::daemon::write_file_durably(dir.path() + "/no/such/file", "x", 1));
    LONGS_EQUAL(ENOENT, errno);
    CHECK_EQUAL(Status::kOk, tether::daemon::sync_directory(dir.path()));
    CHECK_EQUAL(Status::kIoError, tether::daemon::sync_directory(dir.path() + "/missing"));
    LONGS_EQUAL(ENOENT, errno);
    CHECK_EQUAL(Status::kIoError, tether::daemon::sync_directory(path));  // not a directory
    LONGS_EQUAL(ENOTDIR, errno);
}

TEST_GROUP(StatusFile){};

namespace {

tether::daemon::StatusSnapshot waiting_snapshot() {
    tether::daemon::StatusSnapshot s;
    s.state = LinkState::kWaitingToRetry;
    s.since_ms = 1732500000123u;
    s.endpoint = "wss://t.example.net/v1";
    s.attempt = 4;
    s.retry_in_ms = 8200;
    s.reason = "tcp_refused";
    s.detail = "connect=refused";
    s.session = "0a6c2f4e-1b2c-5d3e-8f90-123456789abc";
    s.version = 3;
    s.queued = 12;
    s.acked = 1200;
    s.dropped = 0;
    s.has_rtt = true;
    s.rtt_ms = 23;
    s.offline_ms_total = 61000;
    s.spool = "degraded";
    s.storage_error = "spool: No space left on device";
    s.refused = 2;
    s.memory_only = 70;
    s.input_oversize = 5;
    s.credentials_error = "missing (No such file or directory)";
    s.status_errors = 1;
    s.device_state.enabled = true;
    s.device_state.negotiated = true;
    s.device_state.desired_applied = 7;
    s.device_state.desired_received = 8;
    s.device_state.reported_version = 3;
    s.device_state.report_pending = true;
    s.device_state.apply_failing = true;
    s.device_state.apply_failures = 2;
    s.device_state.reports_refused = 1;
    return s;
}

}  // namespace

TEST(StatusFile, RendersEveryKeyInOrder) {
    STRCMP_EQUAL(
        "{\"state\":\"waiting_to_retry\",\"since_ms\":1732500000123,"
        "\"endpoint\":\"wss://t.example.net/v1\",\"attempt\":4,\"retry_in_ms\":8200,"
        "\"reason\":\"tcp_refused\",\"detail\":\"connect=refused\","
        "\"session\":\"0a6c2f4e-1b2c-5d3e-8f90-123456789abc\",\"version\":3,\"queued\":12,"
        "\"acked\":1200,\"dropped\":0,\"rtt_ms\":23,\"offline_ms_total\":61000,"
        "\"spool\":\"degraded\",\"storage_error\":\"spool: No space left on device\","
        "\"refused\":2,\"memory_only\":70,\"input_oversize\":5,"
        "\"credentials_error\":\"missing (No such file or directory)\",\"metrics_error\":null,"
        "\"status_errors\":1,\"device_state\":{\"negotiated\":true,"
        "\"desired_applied\":7,\"desired_received\":8,\"reported_version\":3,"
        "\"report_pending\":true,\"in_sync\":false,\"apply_failing\":true,"
        "\"apply_failures\":2,\"reports_refused\":1},\"control\":null,"
        "\"spool_records\":0,\"spool_bytes\":0,\"spool_capacity_bytes\":0,\"downlink\":{"
        "\"delivered\":0,\"dead_lettered\":0,\"failures\":0,\"confirmed\":0},"
        "\"protocol\":\"tether.v1\",\"delivery\":\"acknowledged\",\"uplink_in_doubt\":0,"
        "\"uplink_confirmed\":0,\"downlink_lost\":0,"
        "\"compression\":{\"negotiated\":false,\"bytes_before\":0,\"bytes_after\":0}}\n",
        tether::daemon::status_json(waiting_snapshot()).c_str());
}

TEST(StatusFile, WritesNullForAMissingSessionAndRttAndEscapesStrings) {
    tether::daemon::StatusSnapshot s;
    s.endpoint = "ws://a\"b\\c\n\t\r\x01/";
    STRCMP_EQUAL(
        "{\"state\":\"idle\",\"since_ms\":0,\"endpoint\":\"ws://a\\\"b\\\\c\\n\\t\\r\\u0001/\","
        "\"attempt\":0,\"retry_in_ms\":0,\"reason\":\"\",\"detail\":\"\",\"session\":null,"
        "\"version\":0,\"queued\":0,\"acked\":0,\"dropped\":0,\"rtt_ms\":null,"
        "\"offline_ms_total\":0,\"spool\":\"off\",\"storage_error\":null,\"refused\":0,"
        "\"memory_only\":0,\"input_oversize\":0,\"credentials_error\":null,"
        "\"metrics_error\":null,\"status_errors\":0,\"device_state\":null,\"control\":null,"
        "\"spool_records\":0,\"spool_bytes\":0,\"spool_capacity_bytes\":0,\"downlink\":{"
        "\"delivered\":0,\"dead_lettered\":0,\"failures\":0,\"confirmed\":0},"
        "\"protocol\":\"tether.v1\",\"delivery\":\"acknowledged\",\"uplink_in_doubt\":0,"
        "\"uplink_confirmed\":0,\"downlink_lost\":0,"
        "\"compression\":{\"negotiated\":false,\"bytes_before\":0,\"bytes_after\":0}}\n",
        tether::daemon::status_json(s).c_str());
}

TEST(StatusFile, ShowsTheControlSocketWhenItListens) {
    tether::daemon::StatusSnapshot s;
    s.control.enabled = true;
    s.control.refused = 2;
    s.control.flush_timeouts = 1;
    const std::string json = tether::daemon::status_json(s);
    CHECK(json.find(",\"control\":{\"refused\":2,\"flush_timeouts\":1},\"spool_records\"") !=
          std::string::npos);
}

TEST(StatusFile, ReplacesTheFileOnlyWhenTheContentChanges) {
    tether::test::TempDir dir;
    const std::string path = dir.file("status.json");
    dir.file("status.json.tmp");
    tether::daemon::StatusFile file(path);
    STRCMP_EQUAL(path.c_str(), file.path().c_str());
    tether::daemon::StatusSnapshot s = waiting_snapshot();
    CHECK_EQUAL(Status::kOk, file.update(s));
    STRCMP_EQUAL(tether::daemon::status_json(s).c_str(), read_file(path).c_str());
    UNSIGNED_LONGS_EQUAL(1, file.writes());

    // Unchanged: the file is left alone (an outside edit survives).
    std::ofstream(path) << "touched";
    CHECK_EQUAL(Status::kOk, file.update(s));
    UNSIGNED_LONGS_EQUAL(1, file.writes());
    STRCMP_EQUAL("touched", read_file(path).c_str());

    s.state = LinkState::kOnline;
    s.retry_in_ms = 0;
    CHECK_EQUAL(Status::kOk, file.update(s));
    UNSIGNED_LONGS_EQUAL(2, file.writes());
    STRCMP_CONTAINS("{\"state\":\"online\",", read_file(path).c_str());
}

TEST(StatusFile, AFailedWriteIsCountedAndRetriedOnTheNextUpdate) {
    tether::test::TempDir dir;
    const std::string sub = dir.path() + "/run";
    tether::daemon::StatusFile file(sub + "/status.json");
    const tether::daemon::StatusSnapshot s = waiting_snapshot();
    CHECK_EQUAL(Status::kIoError, file.update(s));
    UNSIGNED_LONGS_EQUAL(1, file.errors());
    CHECK_EQUAL(0, ::mkdir(sub.c_str(), 0700));
    CHECK_EQUAL(Status::kOk, file.update(s));
    UNSIGNED_LONGS_EQUAL(1, file.writes());
    ::unlink((sub + "/status.json").c_str());
    ::rmdir(sub.c_str());
}

TEST_GROUP(DescribeState){};

namespace {

tether::ClientEvent event_of(LinkState state, LinkState previous = LinkState::kIdle) {
    tether::ClientEvent event{};
    event.state = state;
    event.previous = previous;
    event.reason = "";
    event.detail = "";
    return event;
}

}  // namespace

TEST(DescribeState, NamesEveryState) {
    using tether::daemon::describe_state;
    STRCMP_EQUAL("online", describe_state(event_of(LinkState::kOnline)).c_str());
    STRCMP_EQUAL("idle", describe_state(event_of(LinkState::kIdle)).c_str());
    STRCMP_EQUAL("stopped",
                 describe_state(event_of(LinkState::kIdle, LinkState::kClosing)).c_str());
    STRCMP_EQUAL("connecting: resolving", describe_state(event_of(LinkState::kResolving)).c_str());
    STRCMP_EQUAL("connecting: tcp", describe_state(event_of(LinkState::kTcpConnecting)).c_str());
    STRCMP_EQUAL("connecting: tls handshake",
                 describe_state(event_of(LinkState::kTlsHandshake)).c_str());
    STRCMP_EQUAL("connecting: websocket upgrade",
                 describe_state(event_of(LinkState::kWsHandshake)).c_str());
    STRCMP_EQUAL("connecting: resuming session",
                 describe_state(event_of(LinkState::kSessionResume)).c_str());
    STRCMP_EQUAL("closing", describe_state(event_of(LinkState::kClosing)).c_str());
    STRCMP_EQUAL("unknown state unknown",
                 describe_state(event_of(static_cast<LinkState>(77))).c_str());
}

TEST(DescribeState, ReconnectingGivesTheDelayInTenthsTheAttemptAndTheReason) {
    tether::ClientEvent event = event_of(LinkState::kWaitingToRetry, LinkState::kTcpConnecting);
    event.delay_ms = 8200;
    event.attempt = 4;
    STRCMP_EQUAL("reconnecting in 8.2 s (attempt 4)",
                 tether::daemon::describe_state(event).c_str());
    event.delay_ms = 8250;
    event.reason = "tcp_refused";
    STRCMP_EQUAL("reconnecting in 8.3 s (attempt 4): tcp_refused",
                 tether::daemon::describe_state(event).c_str());
    event.delay_ms = 49;
    event.attempt = 1;
    event.detail = "connect=refused";
    STRCMP_EQUAL("reconnecting in 0.0 s (attempt 1): tcp_refused (connect=refused)",
                 tether::daemon::describe_state(event).c_str());
    event.reason = nullptr;
    event.detail = nullptr;
    event.delay_ms = 4294967295u;
    STRCMP_EQUAL("reconnecting in 4294967.3 s (attempt 1)",
                 tether::daemon::describe_state(event).c_str());
}

TEST(DescribeState, GivingUpSaysWhy) {
    tether::ClientEvent event = event_of(LinkState::kGivenUp, LinkState::kOnline);
    STRCMP_EQUAL("offline: gave up", tether::daemon::describe_state(event).c_str());
    event.reason = "tcp_timeout";
    STRCMP_EQUAL("offline: gave up (last failure: tcp_timeout)",
                 tether::daemon::describe_state(event).c_str());
    event.reason = "close_superseded";
    STRCMP_EQUAL("superseded: another instance of this device took over the session",
                 tether::daemon::describe_state(event).c_str());
}

TEST_GROUP(StatusLed){};

namespace {

// A fake /sys/class/leds/NAME: the temporary directory is the LED, its
// parent the root.
struct FakeLed {
    tether::test::TempDir dir;
    std::string root;
    std::string name;

    explicit FakeLed(const std::string& triggers, const char* max_brightness = "255") {
        const std::string& path = dir.path();
        const std::size_t slash = path.rfind('/');
        root = path.substr(0, slash);
        name = path.substr(slash + 1);
        dir.write_file("trigger", triggers);
        dir.write_file("brightness", "0");
        if (max_brightness != nullptr) {
            dir.write_file("max_brightness", max_brightness);
        }
        dir.write_file("delay_on", "500");
        dir.write_file("delay_off", "500");
    }
    std::string read(const char* file) const { return read_file(dir.path() + "/" + file); }
    StatusLed led(std::uint32_t on_ms = 100, std::uint32_t off_ms = 300) const {
        tether::daemon::StatusLedConfig config;
        config.root = root;
        config.name = name;
        config.blink_on_ms = on_ms;
        config.blink_off_ms = off_ms;
        return StatusLed(config);
    }
};

}  // namespace

TEST(StatusLed, MapsLinkStatesToPatterns) {
    CHECK_EQUAL(LedPattern::kSolid, tether::daemon::led_pattern_for(LinkState::kOnline));
    CHECK_EQUAL(LedPattern::kOff, tether::daemon::led_pattern_for(LinkState::kGivenUp));
    CHECK_EQUAL(LedPattern::kOff, tether::daemon::led_pattern_for(LinkState::kIdle));
    const LinkState blinking[] = {LinkState::kResolving,     LinkState::kTcpConnecting,
                                  LinkState::kTlsHandshake,  LinkState::kWsHandshake,
                                  LinkState::kSessionResume, LinkState::kClosing,
                                  LinkState::kWaitingToRetry};
    for (LinkState state : blinking) {
        CHECK_EQUAL(LedPattern::kBlinking, tether::daemon::led_pattern_for(state));
    }
    STRCMP_EQUAL("off", to_string(LedPattern::kOff));
    STRCMP_EQUAL("solid", to_string(LedPattern::kSolid));
    STRCMP_EQUAL("blinking", to_string(LedPattern::kBlinking));
    STRCMP_EQUAL("unknown", to_string(static_cast<LedPattern>(9)));
}

TEST(StatusLed, UsesTheKernelTimerTriggerWhenOffered) {
    FakeLed fake("none rc-feedback [mmc0] timer heartbeat\n");
    StatusLed led = fake.led();
    CHECK_EQUAL(Status::kOk, led.open());
    CHECK_TRUE(led.hardware_blink());
    UNSIGNED_LONGS_EQUAL(255, led.max_brightness());

    CHECK_EQUAL(Status::kOk, led.show_state(LinkState::kResolving, 0));
    STRCMP_EQUAL("timer", fake.read("trigger").c_str());
    STRCMP_EQUAL("100", fake.read("delay_on").c_str());
    STRCMP_EQUAL("300", fake.read("delay_off").c_str());
    tether::TimeMs at = 0;
    CHECK_FALSE(led.next_deadline(&at));

    CHECK_EQUAL(Status::kOk, led.show_state(LinkState::kOnline, 10));
    CHECK_EQUAL(LedPattern::kSolid, led.pattern());
    STRCMP_EQUAL("none", fake.read("trigger").c_str());
    STRCMP_EQUAL("255", fake.read("brightness").c_str());

    CHECK_EQUAL(Status::kOk, led.show_state(LinkState::kGivenUp, 20));
    STRCMP_EQUAL("none", fake.read("trigger").c_str());
    STRCMP_EQUAL("0", fake.read("brightness").c_str());
    UNSIGNED_LONGS_EQUAL(0, led.errors());
}

TEST(StatusLed, TogglesBrightnessFromTickWithoutTheTimerTrigger) {
    FakeLed fake("[none] heartbeat", nullptr);
    StatusLed led = fake.led(100, 300);
    CHECK_EQUAL(Status::kOk, led.open());
    CHECK_FALSE(led.hardware_blink());
    UNSIGNED_LONGS_EQUAL(1, led.max_brightness());

    CHECK_EQUAL(Status::kOk, led.show(LedPattern::kBlinking, 1000));
    STRCMP_EQUAL("none", fake.read("trigger").c_str());
    STRCMP_EQUAL("1", fake.read("brightness").c_str());
    tether::TimeMs at = 0;
    CHECK_TRUE(led.next_deadline(&at));
    UNSIGNED_LONGS_EQUAL(1100, at);

    CHECK_EQUAL(Status::kOk, led.tick(1099));
    STRCMP_EQUAL("1", fake.read("brightness").c_str());
    CHECK_EQUAL(Status::kOk, led.tick(1100));
    STRCMP_EQUAL("0", fake.read("brightness").c_str());
    CHECK_TRUE(led.next_deadline(&at));
    UNSIGNED_LONGS_EQUAL(1400, at);
    CHECK_EQUAL(Status::kOk, led.tick(1400));
    STRCMP_EQUAL("1", fake.read("brightness").c_str());
    CHECK_TRUE(led.next_deadline(&at));
    UNSIGNED_LONGS_EQUAL(1500, at);

    // Showing the same pattern again does not restart the blink.
    CHECK_EQUAL(Status::kOk, led.show(LedPattern::kBlinking, 1450));
    CHECK_TRUE(led.next_deadline(&at));
    UNSIGNED_LONGS_EQUAL(1500, at);

    CHECK_EQUAL(Status::kOk, led.show(LedPattern::kOff, 1460));
    STRCMP_EQUAL("0", fake.read("brightness").c_str());
    CHECK_FALSE(led.next_deadline(&at));
    CHECK_EQUAL(Status::kOk, led.tick(5000));
    STRCMP_EQUAL("0", fake.read("brightness").c_str());
}

TEST(StatusLed, FallsBackToSoftwareBlinkWhenTheTimerTriggerIsRefused) {
    FakeLed fake("none timer");
    // No delay files and a read-only trigger: the kernel said no.
    ::unlink((fake.dir.path() + "/delay_on").c_str());
    StatusLed led = fake.led();
    CHECK_EQUAL(Status::kOk, led.open());
    CHECK_TRUE(led.hardware_blink());
    CHECK_EQUAL(Status::kOk, led.show(LedPattern::kBlinking, 0));
    CHECK_FALSE(led.hardware_blink());
    UNSIGNED_LONGS_EQUAL(1, led.errors());
    STRCMP_EQUAL("none", fake.read("trigger").c_str());
    STRCMP_EQUAL("255", fake.read("brightness").c_str());
    tether::TimeMs at = 0;
    CHECK_TRUE(led.next_deadline(&at));
}

TEST(StatusLed, ReadsTheTriggerListAndMaxBrightnessDefensively) {
    {
        FakeLed fake("[timer] none\n", "0");
        StatusLed led = fake.led();
        CHECK_EQUAL(Status::kOk, led.open());
        CHECK_TRUE(led.hardware_blink());
        UNSIGNED_LONGS_EQUAL(1, led.max_brightness());
    }
    {
        FakeLed fake("none [timer heartbeat [] timerx", "garbage");
        StatusLed led = fake.led();
        CHECK_EQUAL(Status::kOk, led.open());
        CHECK_FALSE(led.hardware_blink());
        UNSIGNED_LONGS_EQUAL(1, led.max_brightness());
    }
    {
        FakeLed fake("none timer", "99999999999");
        ::unlink((fake.dir.path() + "/trigger").c_str());
        StatusLed led = fake.led();
        CHECK_EQUAL(Status::kOk, led.open());
        CHECK_FALSE(led.hardware_blink());
        UNSIGNED_LONGS_EQUAL(1, led.max_brightness());
        CHECK_EQUAL(Status::kOk, led.tick(0));
    }
    {
        // An unreadable max_brightness (here a directory) counts as 1.
        FakeLed fake("none", nullptr);
        const std::string max = fake.dir.path() + "/max_brightness";
        CHECK_EQUAL(0, ::mkdir(max.c_str(), 0700));
        StatusLed led = fake.led();
        CHECK_EQUAL(Status::kOk, led.open());
        UNSIGNED_LONGS_EQUAL(1, led.max_brightness());
        ::rmdir(max.c_str());
    }
}

TEST(StatusLed, FallsBackWhenOnlyTheSecondDelayFileIsMissing) {
    FakeLed fake("none timer");
    ::unlink((fake.dir.path() + "/delay_off").c_str());
    StatusLed led = fake.led();
    CHECK_EQUAL(Status::kOk, led.open());
    CHECK_EQUAL(Status::kOk, led.show(LedPattern::kBlinking, 0));
    CHECK_FALSE(led.hardware_blink());
    STRCMP_EQUAL("none", fake.read("trigger").c_str());
    CHECK_EQUAL(Status::kOk, led.tick(0));
}

TEST(StatusLed, ReportsAMissingLedAndFailedWrites) {
    FakeLed fake("none");
    tether::daemon::StatusLedConfig config;
    config.root = fake.root;
    config.name = "";
    CHECK_EQUAL(Status::kInvalidArgument, StatusLed(config).open());
    config.name = "../etc";
    CHECK_EQUAL(Status::kInvalidArgument, StatusLed(config).open());
    config.name = fake.name + "-missing";
    StatusLed missing(config);
    CHECK_EQUAL(Status::kNotFound, missing.open());
    CHECK_FALSE(missing.is_open());
    CHECK_EQUAL(Status::kUnavailable, missing.show(LedPattern::kSolid, 0));
    tether::TimeMs at = 0;
    CHECK_FALSE(missing.next_deadline(&at));

    StatusLed led = fake.led(100, 100);
    CHECK_EQUAL(Status::kOk, led.open());
    CHECK_TRUE(led.is_open());
    CHECK_EQUAL(Status::kOk, led.show(LedPattern::kBlinking, 0));
    // The trigger file vanishes: every write of a new pattern fails, and a
    // failed pattern is tried again on the next show().
    ::unlink((fake.dir.path() + "/trigger").c_str());
    CHECK_EQUAL(Status::kIoError, led.show(LedPattern::kSolid, 10));
    CHECK_EQUAL(Status::kIoError, led.show(LedPattern::kSolid, 20));
    UNSIGNED_LONGS_EQUAL(2, led.errors());
    fake.dir.write_file("trigger", "none");
    CHECK_EQUAL(Status::kOk, led.show(LedPattern::kSolid, 30));
    STRCMP_EQUAL("255", fake.read("brightness").c_str());

    // A brightness that can no longer be written fails the blink's ticks.
    CHECK_EQUAL(Status::kOk, led.show(LedPattern::kBlinking, 40));
    ::unlink((fake.dir.path() + "/brightness").c_str());
    CHECK_EQUAL(0, ::mkdir((fake.dir.path() + "/brightness").c_str(), 0700));
    CHECK_EQUAL(Status::kIoError, led.tick(140));
    UNSIGNED_LONGS_EQUAL(3, led.errors());
    ::rmdir((fake.dir.path() + "/brightness").c_str());
}

TEST_GROUP(Metrics){};

namespace {

const char* const kGoldenMetrics =
    "# HELP tether_build_info Always 1; the labels name the tetherd version and the TLS library.\n"
    "# TYPE tether_build_info gauge\n"
    "tether_build_info{version=\"1.2.3\",tls=\"mbedtls 2.28.3\"} 1\n"
    "# HELP tether_uptime_seconds Time since tetherd started, from the monotonic clock (stops "
    "changing when the file goes stale).\n"
    "# TYPE tether_uptime_seconds gauge\n"
    "tether_uptime_seconds 3600.250\n"
    "# HELP tether_last_ack_age_seconds Time since the server last acknowledged a message (since "
    "the start when none yet), from the monotonic clock.\n"
    "# TYPE tether_last_ack_age_seconds gauge\n"
    "tether_last_ack_age_seconds 1.500\n"
    "# HELP tether_spool_records Messages held by the disk spool (0 without a spool).\n"
    "# TYPE tether_spool_records gauge\n"
    "tether_spool_records 50\n"
    "# HELP tether_spool_bytes Bytes of the spool's active journal, dead records until the next "
    "compaction included.\n"
    "# TYPE tether_spool_bytes gauge\n"
    "tether_spool_bytes 65536\n"
    "# HELP tether_spool_capacity_bytes Bytes the spool's journal may use (one of its two regions; "
    "0 without a spool).\n"
    "# TYPE tether_spool_capacity_bytes gauge\n"
    "tether_spool_capacity_bytes 4194240\n"
    "# HELP tether_spool_dropped_total Unacknowledged messages a spool compaction left out for "
    "lack of room.\n"
    "# TYPE tether_spool_dropped_total counter\n"
    "tether_spool_dropped_total 2\n"
    "# HELP tether_intake_dropped_total Messages dropped at intake, before they got a seq, by "
    "reason.\n"
    "# TYPE tether_intake_dropped_total counter\n"
    "tether_intake_dropped_total{reason=\"too_large\"} 1\n"
    "tether_intake_dropped_total{reason=\"outbox_full\"} 3\n"
    "tether_intake_dropped_total{reason=\"line_too_long\"} 0\n"
    "tether_intake_dropped_total{reason=\"datagram_too_large\"} 5\n"
    "tether_intake_dropped_total{reason=\"datagram_empty\"} 6\n"
    "tether_intake_dropped_total{reason=\"not_utf8\"} 0\n"
    "# HELP tether_connected 1 while the link is online, else 0.\n"
    "# TYPE tether_connected gauge\n"
    "tether_connected 1\n"
    "# HELP tether_state The link state: 1 for the current state, 0 for the others.\n"
    "# TYPE tether_state gauge\n"
    "tether_state{state=\"idle\"} 0\n"
    "tether_state{state=\"resolving\"} 0\n"
    "tether_state{state=\"tcp_connecting\"} 0\n"
    "tether_state{state=\"proxy_connect\"} 0\n"
    "tether_state{state=\"tls_handshake\"} 0\n"
    "tether_state{state=\"ws_handshake\"} 0\n"
    "tether_state{state=\"session_resume\"} 0\n"
    "tether_state{state=\"online\"} 1\n"
    "tether_state{state=\"closing\"} 0\n"
    "tether_state{state=\"waiting_to_retry\"} 0\n"
    "tether_state{state=\"given_up\"} 0\n"
    "# HELP tether_reconnects_total Times the link came back online after a drop.\n"
    "# TYPE tether_reconnects_total counter\n"
    "tether_reconnects_total 3\n"
    "# HELP tether_connection_attempts_total Connection attempts by outcome: success, or the "
    "failure reason.\n"
    "# TYPE tether_connection_attempts_total counter\n"
    "tether_connection_attempts_total{outcome=\"dns_failure\"} 2\n"
    "tether_connection_attempts_total{outcome=\"success\"} 4\n"
    "tether_connection_attempts_total{outcome=\"tcp_refused\"} 7\n"
    "# HELP tether_messages_queued Messages waiting in the outbox.\n"
    "# TYPE tether_messages_queued gauge\n"
    "tether_messages_queued 12\n"
    "# HELP tether_messages_sent_total Messages handed to the WebSocket.\n"
    "# TYPE tether_messages_sent_total counter\n"
    "tether_messages_sent_total 1250\n"
    "# HELP tether_messages_acked_total Messages the server acknowledged.\n"
    "# TYPE tether_messages_acked_total counter\n"
    "tether_messages_acked_total 1200\n"
    "# HELP tether_messages_dropped_total Messages the outbox overflow policy evicted before they "
    "were ever sent (lost).\n"
    "# TYPE tether_messages_dropped_total counter\n"
    "tether_messages_dropped_total 5\n"
    "# HELP tether_bytes_sent_total Bytes written to the connection.\n"
    "# TYPE tether_bytes_sent_total counter\n"
    "tether_bytes_sent_total 18446744073709551615\n"
    "# HELP tether_bytes_received_total Bytes read from the connection.\n"
    "# TYPE tether_bytes_received_total counter\n"
    "tether_bytes_received_total 4096\n"
    "# HELP tether_compression_negotiated 1 while the connection uses permessage-deflate.\n"
    "# TYPE tether_compression_negotiated gauge\n"
    "tether_compression_negotiated 0\n"
    "# HELP tether_compression_bytes_before_total Payload bytes of the messages sent compressed, "
    "before compression.\n"
    "# TYPE tether_compression_bytes_before_total counter\n"
    "tether_compression_bytes_before_total 0\n"
    "# HELP tether_compression_bytes_after_total Payload bytes of the messages sent compressed, "
    "after compression.\n"
    "# TYPE tether_compression_bytes_after_total counter\n"
    "tether_compression_bytes_after_total 0\n"
    "# HELP tether_outbox_fill_ratio Fraction of the outbox storage in use.\n"
    "# TYPE tether_outbox_fill_ratio gauge\n"
    "tether_outbox_fill_ratio 0.25\n"
    "# HELP tether_rtt_seconds Round trip time of the last heartbeat ping.\n"
    "# TYPE tether_rtt_seconds gauge\n"
    "tether_rtt_seconds 0.023\n"
    "# HELP tether_offline_seconds_total Time spent without an online link.\n"
    "# TYPE tether_offline_seconds_total counter\n"
    "tether_offline_seconds_total 61.005\n"
    "# HELP tether_backoff_attempt Consecutive failed attempts in the current streak.\n"
    "# TYPE tether_backoff_attempt gauge\n"
    "tether_backoff_attempt 0\n"
    "# HELP tether_downlink_delivered_total Server messages delivered to the daemon.\n"
    "# TYPE tether_downlink_delivered_total counter\n"
    "tether_downlink_delivered_total 40\n"
    "# HELP tether_downlink_duplicates_total Server messages dropped as replays of ones already "
    "delivered.\n"
    "# TYPE tether_downlink_duplicates_total counter\n"
    "tether_downlink_duplicates_total 2\n"
    "# HELP tether_messages_evicted_unacked_total Messages evicted after being sent, before the "
    "server's ack (it may hold them).\n"
    "# TYPE tether_messages_evicted_unacked_total counter\n"
    "tether_messages_evicted_unacked_total 3\n"
    "# HELP tether_messages_refused_total Messages refused at intake: larger than the link can "
    "deliver, or the outbox full under reject_newest.\n"
    "# TYPE tether_messages_refused_total counter\n"
    "tether_messages_refused_total 4\n"
    "# HELP tether_messages_memory_only_total Messages accepted while the spool was degraded (kept "
    "in memory only).\n"
    "# TYPE tether_messages_memory_only_total counter\n"
    "tether_messages_memory_only_total 6\n"
    "# HELP tether_spool_degraded 1 while the spool's disk fails and messages are in memory only.\n"
    "# TYPE tether_spool_degraded gauge\n"
    "tether_spool_degraded 1\n"
    "# HELP tether_storage_failures_total Failed writes or syncs of the spool and the state "
    "record.\n"
    "# TYPE tether_storage_failures_total counter\n"
    "tether_storage_failures_total 7\n"
    "# HELP tether_downlink_dead_lettered_total Downlink messages written to the dead-letter "
    "directory after failed hand-overs.\n"
    "# TYPE tether_downlink_dead_lettered_total counter\n"
    "tether_downlink_dead_lettered_total 8\n"
    "# HELP tether_downlink_failures_total Failed attempts to hand a downlink message to the "
    "application.\n"
    "# TYPE tether_downlink_failures_total counter\n"
    "tether_downlink_failures_total 9\n"
    "# HELP tether_state_desired_applied_version The desired state version the device has "
    "applied (0: none).\n"
    "# TYPE tether_state_desired_applied_version gauge\n"
    "tether_state_desired_applied_version 41\n"
    "# HELP tether_state_desired_received_version The newest desired state version received "
    "from the server.\n"
    "# TYPE tether_state_desired_received_version gauge\n"
    "tether_state_desired_received_version 42\n"
    "# HELP tether_state_reported_version The server's version of the device's reported "
    "state.\n"
    "# TYPE tether_state_reported_version gauge\n"
    "tether_state_reported_version 5\n"
    "# HELP tether_state_in_sync 1 when the newest desired state is applied and no report is "
    "pending.\n"
    "# TYPE tether_state_in_sync gauge\n"
    "tether_state_in_sync 0\n"
    "# HELP tether_state_apply_failures_total Failed attempts to apply a desired state change "
    "(retried).\n"
    "# TYPE tether_state_apply_failures_total counter\n"
    "tether_state_apply_failures_total 2\n"
    "# HELP tether_state_reports_accepted_total Reports the server accepted.\n"
    "# TYPE tether_state_reports_accepted_total counter\n"
    "tether_state_reports_accepted_total 5\n"
    "# HELP tether_state_reports_refused_total Reports the server refused (stale base version, "
    "too large, invalid).\n"
    "# TYPE tether_state_reports_refused_total counter\n"
    "tether_state_reports_refused_total 1\n"
    "# HELP tether_state_report_failures_total Report commands that failed or printed no valid "
    "JSON object.\n"
    "# TYPE tether_state_report_failures_total counter\n"
    "tether_state_report_failures_total 3\n"
    "# HELP tether_state_desired_snapshots_total Desired state snapshots received (after a long "
    "outage or a trimmed history).\n"
    "# TYPE tether_state_desired_snapshots_total counter\n"
    "tether_state_desired_snapshots_total 1\n"
    "# HELP tether_state_desired_increments_total Desired state increments received.\n"
    "# TYPE tether_state_desired_increments_total counter\n"
    "tether_state_desired_increments_total 41\n"
    "# HELP tether_link_info Always 1; the labels name the link's protocol (tether.v1, websocket) "
    "and its delivery guarantee (acknowledged, at-most-once, at-least-once).\n"
    "# TYPE tether_link_info gauge\n"
    "tether_link_info{protocol=\"tether.v1\",delivery=\"acknowledged\"} 1\n"
    "# HELP tether_messages_in_doubt_total Plain WebSocket: messages handed to the kernel on links "
    "that died before a pong confirmed them (at-most-once: possibly lost; at-least-once: sent "
    "again).\n"
    "# TYPE tether_messages_in_doubt_total counter\n"
    "tether_messages_in_doubt_total 0\n"
    "# HELP tether_messages_confirmed_total Plain WebSocket: messages a pong confirmed the peer "
    "had "
    "read.\n"
    "# TYPE tether_messages_confirmed_total counter\n"
    "tether_messages_confirmed_total 0\n"
    "# HELP tether_downlink_lost_total Plain WebSocket: server messages the output could not take "
    "(never sent again).\n"
    "# TYPE tether_downlink_lost_total counter\n"
    "tether_downlink_lost_total 0\n";

tether::daemon::MetricsSnapshot online_metrics() {
    tether::daemon::MetricsSnapshot s;
    s.version = "1.2.3";
    s.tls_library = "mbedtls 2.28.3";
    s.uptime_ms = 3600250;
    s.last_ack_age_ms = 1500;
    s.spool_enabled = true;
    s.spool_records = 50;
    s.spool_bytes = 65536;
    s.spool_capacity_bytes = 4194240;
    s.spool_dropped = 2;
    s.intake.too_large = 1;
    s.intake.outbox_full = 3;
    s.intake.datagram_too_large = 5;
    s.intake.datagram_empty = 6;
    s.state = LinkState::kOnline;
    s.messages_evicted_unacked = 3;
    s.messages_refused = 4;
    s.messages_memory_only = 6;
    s.spool_degraded = true;
    s.storage_failures = 7;
    s.downlink_dead_lettered = 8;
    s.downlink_failures = 9;
    s.reconnects = 3;
    s.attempts_by_outcome["tcp_refused"] = 7;
    s.attempts_by_outcome["success"] = 4;
    s.attempts_by_outcome["dns_failure"] = 2;
    s.messages_queued = 12;
    s.messages_sent = 1250;
    s.messages_acked = 1200;
    s.messages_dropped = 5;
    s.bytes_sent = 18446744073709551615u;
    s.bytes_received = 4096;
    s.outbox_used_bytes = 16384;
    s.outbox_capacity_bytes = 65536;
    s.has_rtt = true;
    s.rtt_ms = 23;
    s.offline_ms_total = 61005;
    s.backoff_attempt = 0;
    s.downlink_delivered = 40;
    s.downlink_duplicates = 2;
    s.device_state.enabled = true;
    s.device_state.desired_applied = 41;
    s.device_state.desired_received = 42;
    s.device_state.reported_version = 5;
    s.device_state.apply_failures = 2;
    s.device_state.reports_accepted = 5;
    s.device_state.reports_refused = 1;
    s.device_state.report_failures = 3;
    s.device_state.desired_snapshots = 1;
    s.device_state.desired_increments = 41;
    return s;
}

}  // namespace

TEST(Metrics, RendersTheExpositionFormatExactly) {
    STRCMP_EQUAL(kGoldenMetrics, tether::daemon::render_metrics(online_metrics()).c_str());
}

TEST(Metrics, OfflineSnapshotWithoutRttOrOutbox) {
    tether::daemon::MetricsSnapshot s;
    s.state = LinkState::kWaitingToRetry;
    s.backoff_attempt = 4;
    const std::string text = tether::daemon::render_metrics(s);
    STRCMP_CONTAINS("\ntether_connected 0\n", text.c_str());
    STRCMP_CONTAINS("\ntether_state{state=\"waiting_to_retry\"} 1\n", text.c_str());
    STRCMP_CONTAINS("\ntether_state{state=\"online\"} 0\n", text.c_str());
    STRCMP_CONTAINS("\ntether_rtt_seconds NaN\n", text.c_str());
    STRCMP_CONTAINS("\ntether_outbox_fill_ratio 0\n", text.c_str());
    STRCMP_CONTAINS("\ntether_offline_seconds_total 0.000\n", text.c_str());
    STRCMP_CONTAINS("\ntether_backoff_attempt 4\n", text.c_str());
    // No outcome yet: the family is announced with no samples.
    STRCMP_CONTAINS(
        "# TYPE tether_connection_attempts_total counter\n# HELP tether_messages_queued",
        text.c_str());
}

// docs/METRICS.md lists tetherd's metrics between <!-- tetherd-metrics:begin/end -->
// (one `name` in the first column per row); the rules and the dashboard are
// checked against that list, so it must be exactly what render_metrics() writes.
TEST(Metrics, DocumentedNamesAreExactlyTheRenderedOnes) {
    const std::string doc = read_file(std::string(TETHER_SOURCE_DIR) + "/docs/METRICS.md");
    const std::size_t begin = doc.find("<!-- tetherd-metrics:begin -->");
    const std::size_t end = doc.find("<!-- tetherd-metrics:end -->");
    CHECK(begin != std::string::npos && end != std::string::npos && begin < end);
    std::set<std::string> documented;
    for (std::size_t at = doc.find("\n| `", begin); at != std::string::npos && at < end;
         at = doc.find("\n| `", at + 1)) {
        const std::size_t name_end = doc.find('`', at + 4);
        documented.insert(doc.substr(at + 4, name_end - (at + 4)));
    }
    std::set<std::string> rendered;
    const std::string text = tether::daemon::render_metrics(online_metrics());
    for (std::size_t at = text.find("# TYPE "); at != std::string::npos;
         at = text.find("# TYPE ", at + 1)) {
        const std::size_t name_end = text.find(' ', at + 7);
        rendered.insert(text.substr(at + 7, name_end - (at + 7)));
    }
    CHECK(rendered.size() > 40u);
    std::string missing;
    for (const std::string& name : rendered) {
        if (documented.count(name) == 0) {
            missing += " " + name;
        }
    }
    std::string stale;
    for (const std::string& name : documented) {
        if (rendered.count(name) == 0) {
            stale += " " + name;
        }
    }
    STRCMP_EQUAL("", missing.c_str());  // rendered, not in docs/METRICS.md
    STRCMP_EQUAL("", stale.c_str());    // in docs/METRICS.md, not rendered
}

TEST(Metrics, EscapesBackslashQuoteAndNewlineInLabelValues) {
    STRCMP_EQUAL("plain_reason", tether::daemon::escape_label_value("plain_reason").c_str());
    STRCMP_EQUAL("a\\\\b\\\"c\\nd\te", tether::daemon::escape_label_value("a\\b\"c\nd\te").c_str());
    tether::daemon::MetricsSnapshot s;
    s.attempts_by_outcome["http \"503\"\n"] = 1;
    STRCMP_CONTAINS("\ntether_connection_attempts_total{outcome=\"http \\\"503\\\"\\n\"} 1\n",
                    tether::daemon::render_metrics(s).c_str());
}

TEST(Metrics, WritesTheTextfileAtomically) {
    tether::test::TempDir dir;
    const std::string path = dir.file("tetherd.prom");
    dir.file("tetherd.prom.tmp");
    CHECK_EQUAL(Status::kOk, tether::daemon::write_metrics(path, online_metrics()));
    STRCMP_EQUAL(kGoldenMetrics, read_file(path).c_str());
    CHECK_FALSE(file_exists(path + ".tmp"));
    struct stat info {};
    CHECK_EQUAL(0, ::stat(path.c_str(), &info));
    UNSIGNED_LONGS_EQUAL(0644, info.st_mode & 0777);
    CHECK_EQUAL(Status::kIoError,
                tether::daemon::write_metrics(dir.path() + "/no/dir.prom", online_metrics()));
}

TEST_GROUP(SystemdUnit){};

TEST(SystemdUnit, DeclaresNotifyWatchdogRestartAndHardening) {
    const std::string unit =
        read_file(std::string(TETHER_SOURCE_DIR) + "/packaging/systemd/tetherd.service");
    const char* required[] = {
        "\n[Service]\n",
        "\nType=notify\n",
        "\nWatchdogSec=30\n",
        "\nRestart=on-failure\n",
        "\nRestartSec=2\n",
        "\nDynamicUser=yes\n",
        "\nStateDirectory=tether\n",
        "\nStateDirectoryMode=0700\n",
        "\nRuntimeDirectory=tether\n",
        "\nConfigurationDirectory=tether\n",
        "\nExecStart=/usr/bin/tetherd --config /etc/tether/tetherd.json\n",
        "\nNoNewPrivileges=yes\n",
        "\nProtectSystem=strict\n",
        "\nProtectHome=yes\n",
        "\nPrivateTmp=yes\n",
        "\nProtectKernelTunables=yes\n",
        "\nProtectControlGroups=yes\n",
        "\nRestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK\n",
        "\nLockPersonality=yes\n",
        "\nMemoryDenyWriteExecute=yes\n",
        "\nSystemCallFilter=@system-service\n",
        "\nPrivateDevices=no\n",
        "\n#   ReadWritePaths=/sys/class/leds\n",
        "\n[Install]\nWantedBy=multi-user.target\n",
    };
    for (const char* line : required) {
        STRCMP_CONTAINS(line, unit.c_str());
    }
}

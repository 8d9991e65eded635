// SPDX-License-Identifier: MIT
// DownlinkOutput with real /bin/sh commands, pipes and files. Time is the
// `now` the test passes to tick(); only the commands themselves run in real
// time, and the tests wait for them with bounded polling loops.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <functional>
#include <list>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "downlink_output.h"
#include "support/temp_dir.h"
#include "tether/port/poll_loop.h"
#include "tether/status.h"

// CppUTest last: its operator-new macro breaks standard headers.
#include <CppUTest/TestHarness.h>

using tether::Status;
using tether::TimeMs;
using tether::daemon::DownlinkEvent;
using tether::daemon::DownlinkEventKind;
using tether::daemon::DownlinkFailure;
using tether::daemon::DownlinkObserver;
using tether::daemon::DownlinkOutput;
using tether::daemon::DownlinkOutputConfig;

namespace {

struct Pipe {
    int read_end = -1;
    int write_end = -1;
    Pipe() {
        int fds[2];
        LONGS_EQUAL(0, ::pipe2(fds, O_CLOEXEC));
        read_end = fds[0];
        write_end = fds[1];
    }
    ~Pipe() {
        close_read();
        if (write_end >= 0) {
            ::close(write_end);
        }
    }
    void close_read() {
        if (read_end >= 0) {
            ::close(read_end);
        }
        read_end = -1;
    }
    std::string take() {
        char chunk[4096];
        const ssize_t got = ::read(read_end, chunk, sizeof chunk);
        return got > 0 ? std::string(chunk, static_cast<std::size_t>(got)) : std::string();
    }
};

struct Recorded {
    DownlinkEvent event;
    std::string path;
};

class Recorder : public DownlinkObserver {
  public:
    void on_downlink_event(const DownlinkEvent& event) override {
        events.push_back({event, event.path != nullptr ? event.path : ""});
    }
    std::size_t count(DownlinkEventKind kind) const {
        std::size_t n = 0;
        for (const Recorded& r : events) {
            n += r.event.kind == kind ? 1 : 0;
        }
        return n;
    }
    const Recorded* first(DownlinkEventKind kind) const {
        for (const Recorded& r : events) {
            if (r.event.kind == kind) {
                return &r;
            }
        }
        return nullptr;
    }
    std::vector<Recorded> events;
};

std::string file_contents(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    std::ostringstream contents;
    contents << file.rdbuf();
    return contents.str();
}

std::size_t line_count(const std::string& path) {
    const std::string text = file_contents(path);
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

bool exists(const std::string& path) {
    struct stat info {};
    return ::lstat(path.c_str(), &info) == 0;
}

std::vector<std::string> names_in(const std::string& dir) {
    std::vector<std::string> names;
    if (DIR* stream = ::opendir(dir.c_str())) {
        while (const dirent* entry = ::readdir(stream)) {
            const std::string name = entry->d_name;
            if (name != "." && name != "..") {
                names.push_back(name);
            }
        }
        ::closedir(stream);
    }
    std::set<std::string> sorted(names.begin(), names.end());
    return {sorted.begin(), sorted.end()};
}

void remove_tree(const std::string& path) {
    struct stat info {};
    if (::lstat(path.c_str(), &info) != 0) {
        return;
    }
    if (S_ISDIR(info.st_mode)) {
        for (const std::string& name : names_in(path)) {
            remove_tree(path + "/" + name);
        }
        ::rmdir(path.c_str());
    } else {
        ::unlink(path.c_str());
    }
}

// The process `pid` has exited (it is gone, or a zombie nobody reaped yet).
bool process_ended(const std::string& pid) {
    const std::string stat = file_contents("/proc/" + pid + "/stat");
    const std::size_t paren = stat.rfind(')');
    return stat.empty() || (paren != std::string::npos && stat.compare(paren, 4, ") Z ") == 0);
}

}  // namespace

TEST_GROUP(TetherdDownlinkOutput) {
    tether::test::TempDir temp;
    std::string dead;  // the dead-letter directory (not created in advance)
    Recorder recorder;
    char queue[256] = {};
    TimeMs now = 1000;

    void setup() override {
        dead = temp.path() + "/dead-letter";
    }
    void teardown() override {
        for (const std::string& name : names_in(temp.path())) {
            remove_tree(temp.path() + "/" + name);
        }
    }

    std::list<std::string> commands;  // a config keeps its command by pointer

    DownlinkOutputConfig command(const std::string& text) {
        commands.push_back(text);
        DownlinkOutputConfig config;
        config.command = commands.back().c_str();
        config.command_timeout_ms = 5000;
        config.retries = 0;
        config.retry_delay_ms = 10;
        config.stall_retry_ms = 100;
        config.dead_letter_dir = dead.c_str();
        config.observer = &recorder;
        return config;
    }
    DownlinkOutputConfig line(int fd) {
        DownlinkOutputConfig config;
        config.fd = fd;
        config.line_write_timeout_ms = 0;
        config.stall_retry_ms = 100;
        config.dead_letter_dir = dead.c_str();
        config.observer = &recorder;
        return config;
    }
    std::string dead_letter(const char* name) {
        return dead + "/" + name;
    }

    // Ticks at `now`, advancing it by `step` after each call and pausing 2 ms,
    // until `done`; gives up after about ten seconds.
    bool run_until(DownlinkOutput & output, const std::function<bool()>& done, TimeMs step = 0) {
        for (int i = 0; i < 5000; ++i) {
            output.tick(now);
            if (done()) {
                return true;
            }
            ::poll(nullptr, 0, 2);
            now += step;
        }
        return false;
    }
    bool run_until_idle(DownlinkOutput & output, TimeMs step = 0) {
        return run_until(
            output, [&] { return !output.busy(); }, step);
    }
};

TEST(TetherdDownlinkOutput, WritesOneLinePerMessageInLineMode) {
    Pipe pipe;
    DownlinkOutput output(line(pipe.write_end), queue, sizeof queue);
    CHECK(output.deliver(1, "{\"cmd\":\"reboot\"}", 16) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(1u, output.confirmed_through());
    CHECK(output.deliver(2, "", 0) == Status::kOk);
    CHECK(output.deliver(3, "two\nlines", 9) == Status::kOk);  // not a line: dead-lettered
    CHECK(output.deliver(4, "last", 4) == Status::kOk);
    output.tick(now);
    CHECK_FALSE(output.busy());
    UNSIGNED_LONGS_EQUAL(4u, output.confirmed_through());
    STRCMP_EQUAL("{\"cmd\":\"reboot\"}\n\nlast\n", pipe.take().c_str());
    STRCMP_EQUAL("two\nlines", file_contents(dead_letter("00000000000000000003.msg")).c_str());
    UNSIGNED_LONGS_EQUAL(3u, output.counters().delivered);
    UNSIGNED_LONGS_EQUAL(1u, output.counters().rejected);
    UNSIGNED_LONGS_EQUAL(1u, output.counters().dead_lettered);
    const Recorded* dead_event = recorder.first(DownlinkEventKind::kDeadLettered);
    CHECK(dead_event != nullptr);
    CHECK(dead_event->event.failure == DownlinkFailure::kNotALine);
    UNSIGNED_LONGS_EQUAL(3u, dead_event->event.seq);
}

TEST(TetherdDownlinkOutput, LineModeWaitsForASlowReaderAndWritesWholeLines) {
    Pipe pipe;
    LONGS_EQUAL(0, ::fcntl(pipe.write_end, F_SETFL, O_NONBLOCK));
    DownlinkOutputConfig config = line(pipe.write_end);
    config.line_write_timeout_ms = 1000;
    std::vector<char> storage(400000);
    DownlinkOutput output(config, storage.data(), storage.size());
    const std::string big(300000, 'b');
    std::string received;
    std::thread reader([&] {
        while (received.size() < big.size() + 1) {
            const std::string chunk = pipe.take();
            if (chunk.empty()) {
                break;
            }
            received += chunk;
        }
    });
    CHECK(output.deliver(1, big.data(), big.size()) == Status::kOk);
    reader.join();
    CHECK(big + "\n" == received);
    UNSIGNED_LONGS_EQUAL(1u, output.confirmed_through());
}

TEST(TetherdDownlinkOutput, LineModeResumesAPartlyWrittenLineWhereItStopped) {
    Pipe pipe;
    LONGS_EQUAL(0, ::fcntl(pipe.write_end, F_SETFL, O_NONBLOCK));
    std::vector<char> storage(400000);
    DownlinkOutput output(line(pipe.write_end), storage.data(), storage.size());
    const std::string big(300000, 'b');
    // Nobody reads: the pipe fills, the write times out (after 0 ms).
    CHECK(output.deliver(1, big.data(), big.size()) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(0u, output.confirmed_through());
    UNSIGNED_LONGS_EQUAL(1u, output.counters().write_errors);
    UNSIGNED_LONGS_EQUAL(1u, recorder.count(DownlinkEventKind::kWriteFailed));
    LONGS_EQUAL(ETIMEDOUT, recorder.first(DownlinkEventKind::kWriteFailed)->event.error);
    CHECK(output.deliver(2, "after", 5) == Status::kOk);
    std::string received;
    while (received.size() < 4096) {
        received += pipe.take();
    }
    // Before stall_retry_ms nothing is tried again.
    output.tick(now);
    output.tick(now + 99);
    UNSIGNED_LONGS_EQUAL(1u, output.counters().write_errors);
    std::thread reader([&] {
        while (received.size() < big.size() + 7) {
            const std::string chunk = pipe.take();
            if (chunk.empty()) {
                break;
            }
            received += chunk;
        }
    });
    now += 100;
    CHECK_TRUE(run_until(
        output, [&] { return output.confirmed_through() == 2; }, 100));
    reader.join();
    CHECK(big + "\nafter\n" == received);                                       // no byte twice
    UNSIGNED_LONGS_EQUAL(1u, recorder.count(DownlinkEventKind::kWriteFailed));  // once per errno
    UNSIGNED_LONGS_EQUAL(1u, recorder.count(DownlinkEventKind::kRecovered));
    UNSIGNED_LONGS_EQUAL(2u, output.counters().delivered);
}

TEST(TetherdDownlinkOutput, LineModeKeepsAMessageWhoseReaderWentAway) {
    Pipe pipe;
    pipe.close_read();
    const auto previous = std::signal(SIGPIPE, SIG_IGN);  // as tetherd runs
    DownlinkOutput output(line(pipe.write_end), queue, sizeof queue);
    CHECK(output.deliver(1, "a", 1) == Status::kOk);
    CHECK(output.deliver(2, "b", 1) == Status::kOk);
    // The first tick() starts the stall_retry_ms wait, which deliver() could
    // not time; the second writes again, in vain.
    output.tick(now);
    output.tick(now + 99);
    UNSIGNED_LONGS_EQUAL(1u, output.counters().write_errors);
    output.tick(now + 100);
    UNSIGNED_LONGS_EQUAL(0u, output.confirmed_through());
    UNSIGNED_LONGS_EQUAL(2u, output.queued());
    UNSIGNED_LONGS_EQUAL(2u, output.counters().write_errors);
    UNSIGNED_LONGS_EQUAL(1u, recorder.count(DownlinkEventKind::kWriteFailed));
    LONGS_EQUAL(EPIPE, recorder.first(DownlinkEventKind::kWriteFailed)->event.error);
    UNSIGNED_LONGS_EQUAL(1u, recorder.first(DownlinkEventKind::kWriteFailed)->event.seq);
    // A new reader on the same descriptor: both lines arrive, in order.
    Pipe fresh;
    LONGS_EQUAL(pipe.write_end, ::dup3(fresh.write_end, pipe.write_end, O_CLOEXEC));
    output.tick(now + 200);
    std::signal(SIGPIPE, previous);
    UNSIGNED_LONGS_EQUAL(2u, output.confirmed_through());
    STRCMP_EQUAL("a\nb\n", fresh.take().c_str());
    UNSIGNED_LONGS_EQUAL(1u, recorder.count(DownlinkEventKind::kRecovered));
    LONGS_EQUAL(EPIPE, recorder.first(DownlinkEventKind::kRecovered)->event.error);
}

TEST(TetherdDownlinkOutput, RunsTheCommandPerMessageInOrder) {
    const std::string out = temp.file("out.txt");
    DownlinkOutput output(command("cat >> '" + out + "'"), queue, sizeof queue);
    const char* messages[] = {"first", "{\"n\":2}", "third", "4", "five"};
    std::uint64_t seq = 0;
    for (const char* message : messages) {
        CHECK(output.deliver(++seq, message, std::strlen(message)) == Status::kOk);
    }
    CHECK_TRUE(output.busy());
    UNSIGNED_LONGS_EQUAL(0u, output.confirmed_through());
    CHECK_TRUE(run_until_idle(output));
    STRCMP_EQUAL("first\n{\"n\":2}\nthird\n4\nfive\n", file_contents(out).c_str());
    UNSIGNED_LONGS_EQUAL(5u, output.confirmed_through());
    UNSIGNED_LONGS_EQUAL(5u, output.counters().delivered);
    UNSIGNED_LONGS_EQUAL(0u, output.counters().failed);
    LONGS_EQUAL(0, output.last_status());
    UNSIGNED_LONGS_EQUAL(0u, output.queued());
    CHECK_FALSE(exists(dead));
    CHECK(recorder.events.empty());
}

TEST(TetherdDownlinkOutput, AFailingCommandIsRetriedThenDeadLettered) {
    DownlinkOutputConfig config = command("cat > /dev/null; exit 1");
    config.retries = 2;
    DownlinkOutput output(config, queue, sizeof queue);
    const std::string message = "{\"cmd\":\"open valve\"}";
    CHECK(output.deliver(42, message.data(), message.size()) == Status::kOk);
    CHECK_TRUE(run_until_idle(output, 10));
    UNSIGNED_LONGS_EQUAL(42u, output.confirmed_through());
    UNSIGNED_LONGS_EQUAL(3u, output.counters().failed);
    UNSIGNED_LONGS_EQUAL(2u, output.counters().retries);
    UNSIGNED_LONGS_EQUAL(1u, output.counters().dead_lettered);
    UNSIGNED_LONGS_EQUAL(0u, output.counters().delivered);
    const std::string file = dead_letter("00000000000000000042.msg");
    CHECK(message == file_contents(file));
    std::vector<std::string> names = names_in(dead);
    LONGS_EQUAL(1, names.size());  // no temporary left behind
    struct stat info {};
    LONGS_EQUAL(0, ::stat(dead.c_str(), &info));
    UNSIGNED_LONGS_EQUAL(0700, info.st_mode & 0777);
    LONGS_EQUAL(0, ::stat(file.c_str(), &info));
    UNSIGNED_LONGS_EQUAL(0600, info.st_mode & 0777);

    LONGS_EQUAL(4, recorder.events.size());
    for (int i = 0; i < 3; ++i) {
        const DownlinkEvent& failed = recorder.events[static_cast<std::size_t>(i)].event;
        CHECK(failed.kind == DownlinkEventKind::kAttemptFailed);
        CHECK(failed.failure == DownlinkFailure::kExited);
        LONGS_EQUAL(1, WEXITSTATUS(failed.status));
        UNSIGNED_LONGS_EQUAL(static_cast<unsigned>(i + 1), failed.attempts);
    }
    const Recorded& last = recorder.events[3];
    CHECK(last.event.kind == DownlinkEventKind::kDeadLettered);
    UNSIGNED_LONGS_EQUAL(42u, last.event.seq);
    UNSIGNED_LONGS_EQUAL(3u, last.event.attempts);
    CHECK(last.event.failure == DownlinkFailure::kExited);
    STRCMP_EQUAL(file.c_str(), last.path.c_str());
}

TEST(TetherdDownlinkOutput, RetriesWaitRetryDelayDoublingEachTime) {
    DownlinkOutputConfig config = command("exit 3");
    config.retries = 2;
    config.retry_delay_ms = 50;
    DownlinkOutput output(config, queue, sizeof queue);
    CHECK(output.deliver(1, "m", 1) == Status::kOk);
    CHECK_TRUE(run_until(output, [&] { return output.counters().failed == 1; }));
    TimeMs at = 0;
    CHECK_TRUE(output.next_deadline(&at));
    UNSIGNED_LONGS_EQUAL(now + 50, at);
    const TimeMs failed_at = now;
    output.tick(failed_at + 49);
    UNSIGNED_LONGS_EQUAL(0u, output.counters().retries);
    now = failed_at + 50;
    CHECK_TRUE(run_until(output, [&] { return output.counters().failed == 2; }));
    UNSIGNED_LONGS_EQUAL(1u, output.counters().retries);
    const TimeMs again_at = now;
    output.tick(again_at + 99);
    UNSIGNED_LONGS_EQUAL(1u, output.counters().retries);
    now = again_at + 100;
    CHECK_TRUE(run_until(output, [&] { return !output.busy(); }));
    UNSIGNED_LONGS_EQUAL(2u, output.counters().retries);
    UNSIGNED_LONGS_EQUAL(1u, output.counters().dead_lettered);
    CHECK(WIFEXITED(output.last_status()));
    LONGS_EQUAL(3, WEXITSTATUS(output.last_status()));
}

TEST(TetherdDownlinkOutput, ACommandThatOutlivesItsTimeoutIsKilledWithItsGroup) {
    const std::string pids = temp.file("pids");
    // The shell waits for a sleep it started: only a kill of the whole
    // process group ends both.
    DownlinkOutputConfig config = command("sleep 60 & echo $! >> '" + pids + "'; wait");
    config.command_timeout_ms = 100;
    config.retries = 1;
    config.retry_delay_ms = 0;
    DownlinkOutput output(config, queue, sizeof queue);
    CHECK(output.deliver(7, "slow", 4) == Status::kOk);
    output.tick(now);
    TimeMs at = 0;
    CHECK_TRUE(output.next_deadline(&at));
    UNSIGNED_LONGS_EQUAL(now + 100, at);
    CHECK_TRUE(run_until(output, [&] { return !file_contents(pids).empty(); }));
    output.tick(at - 1);
    UNSIGNED_LONGS_EQUAL(0u, output.counters().timeouts);
    now = at;
    CHECK_TRUE(run_until(output, [&] { return output.counters().timeouts == 1; }));
    // The retry starts at once (retry_delay_ms 0), times out as well, and the
    // message is dead-lettered.
    CHECK_TRUE(run_until(output, [&] { return line_count(pids) == 2; }));
    now += 100;
    CHECK_TRUE(run_until_idle(output));
    UNSIGNED_LONGS_EQUAL(2u, output.counters().timeouts);
    UNSIGNED_LONGS_EQUAL(2u, output.counters().failed);
    UNSIGNED_LONGS_EQUAL(1u, output.counters().retries);
    UNSIGNED_LONGS_EQUAL(7u, output.confirmed_through());
    STRCMP_EQUAL("slow", file_contents(dead_letter("00000000000000000007.msg")).c_str());
    CHECK(recorder.first(DownlinkEventKind::kAttemptFailed)->event.failure ==
          DownlinkFailure::kTimedOut);
    CHECK(WIFSIGNALED(output.last_status()));
    std::istringstream started(file_contents(pids));
    std::string pid;
    int sleepers = 0;
    while (started >> pid) {
        ++sleepers;
        CHECK_TRUE(run_until(output, [&] { return process_ended(pid); }));
    }
    LONGS_EQUAL(2, sleepers);
}

TEST(TetherdDownlinkOutput, ACommandThatDoesNotExistIsDeadLettered) {
    DownlinkOutputConfig config = command("exec 2>/dev/null; /nonexistent/handle-downlink");
    config.retries = 1;
    DownlinkOutput output(config, queue, sizeof queue);
    CHECK(output.deliver(5, "x", 1) == Status::kOk);
    CHECK_TRUE(run_until_idle(output, 10));
    UNSIGNED_LONGS_EQUAL(5u, output.confirmed_through());
    UNSIGNED_LONGS_EQUAL(2u, output.counters().failed);
    UNSIGNED_LONGS_EQUAL(1u, output.counters().dead_lettered);
    const Recorded* failed = recorder.first(DownlinkEventKind::kAttemptFailed);
    CHECK(failed->event.failure == DownlinkFailure::kExited);
    LONGS_EQUAL(127, WEXITSTATUS(failed->event.status));
    STRCMP_EQUAL("x", file_contents(dead_letter("00000000000000000005.msg")).c_str());
}

TEST(TetherdDownlinkOutput, ACommandThatCannotStartCountsAsAFailedAttempt) {
    DownlinkOutputConfig config = command("cat > /dev/null");
    config.retries = 1;
    config.retry_delay_ms = 0;
    DownlinkOutput output(config, queue, sizeof queue);
    CHECK(output.deliver(1, "m", 1) == Status::kOk);
    // No descriptor can be opened: the input socket cannot be made.
    rlimit saved{};
    LONGS_EQUAL(0, ::getrlimit(RLIMIT_NOFILE, &saved));
    rlimit none = saved;
    none.rlim_cur = 0;
    LONGS_EQUAL(0, ::setrlimit(RLIMIT_NOFILE, &none));
    output.tick(now);
    ::setrlimit(RLIMIT_NOFILE, &saved);
    UNSIGNED_LONGS_EQUAL(1u, output.counters().spawn_failures);
    UNSIGNED_LONGS_EQUAL(1u, output.counters().failed);
    const Recorded* failed = recorder.first(DownlinkEventKind::kAttemptFailed);
    CHECK(failed->event.failure == DownlinkFailure::kSpawnFailed);
    LONGS_EQUAL(EMFILE, failed->event.error);
    UNSIGNED_LONGS_EQUAL(0u, output.confirmed_through());
    CHECK_TRUE(run_until_idle(output));
    UNSIGNED_LONGS_EQUAL(1u, output.confirmed_through());
    UNSIGNED_LONGS_EQUAL(1u, output.counters().delivered);
}

TEST(TetherdDownlinkOutput, AFailedDeadLetterWriteKeepsTheMessageAndEverythingBehindIt) {
    // The dead-letter path cannot be made: first a regular file where its
    // parent should be (ENOTDIR), then no parent at all (ENOENT). Root may
    // write into read-only directories, so permissions would prove nothing.
    const std::string blocker = temp.path() + "/blocked";
    dead = blocker + "/dead-letter";
    temp.write_file("blocked", "a file");
    const std::string out = temp.file("out.txt");
    DownlinkOutputConfig config =
        command("read m; [ \"$m\" != bad ] && echo \"$m\" >> '" + out + "'");
    DownlinkOutput output(config, queue, sizeof queue);
    CHECK(output.deliver(1, "bad", 3) == Status::kOk);
    CHECK(output.deliver(2, "good", 4) == Status::kOk);
    CHECK_TRUE(run_until(output, [&] { return output.counters().dead_letter_errors == 1; }));
    UNSIGNED_LONGS_EQUAL(0u, output.confirmed_through());
    UNSIGNED_LONGS_EQUAL(2u, output.queued());
    const Recorded* failed = recorder.first(DownlinkEventKind::kDeadLetterFailed);
    CHECK(failed != nullptr);
    LONGS_EQUAL(ENOTDIR, failed->event.error);
    UNSIGNED_LONGS_EQUAL(1u, failed->event.seq);

    // Each stall_retry_ms: the command once more, then the dead letter again;
    // the same errno is not reported again.
    for (int round = 2; round <= 3; ++round) {
        now += 100;
        CHECK_TRUE(run_until(output, [&] {
            return output.counters().dead_letter_errors == static_cast<unsigned>(round);
        }));
    }
    UNSIGNED_LONGS_EQUAL(3u, output.counters().failed);
    UNSIGNED_LONGS_EQUAL(1u, recorder.count(DownlinkEventKind::kDeadLetterFailed));
    ::unlink(blocker.c_str());
    now += 100;
    CHECK_TRUE(run_until(output, [&] { return output.counters().dead_letter_errors == 4; }));
    LONGS_EQUAL(2, recorder.count(DownlinkEventKind::kDeadLetterFailed));  // a new errno
    UNSIGNED_LONGS_EQUAL(0u, output.confirmed_through());
    CHECK_FALSE(exists(out));  // "good" never ran ahead of "bad"

    LONGS_EQUAL(0, ::mkdir(blocker.c_str(), 0700));
    now += 100;
    CHECK_TRUE(run_until_idle(output));
    UNSIGNED_LONGS_EQUAL(2u, output.confirmed_through());
    STRCMP_EQUAL("bad", file_contents(dead_letter("00000000000000000001.msg")).c_str());
    STRCMP_EQUAL("good\n", file_contents(out).c_str());
    UNSIGNED_LONGS_EQUAL(1u, recorder.count(DownlinkEventKind::kRecovered));
    UNSIGNED_LONGS_EQUAL(1u, recorder.count(DownlinkEventKind::kDeadLettered));
}

TEST(TetherdDownlinkOutput, WithoutADeadLetterDirectoryAMessageIsRetriedUntilItWorks) {
    const std::string flag = temp.file("works");
    DownlinkOutputConfig config = command("cat > /dev/null; [ -e '" + flag + "' ]");
    config.dead_letter_dir = nullptr;
    DownlinkOutput output(config, queue, sizeof queue);
    CHECK(output.deliver(1, "m", 1) == Status::kOk);
    for (unsigned round = 1; round <= 3; ++round) {
        CHECK_TRUE(run_until(output, [&] { return output.counters().failed == round; }));
        now += 100;
    }
    UNSIGNED_LONGS_EQUAL(0u, output.confirmed_through());
    UNSIGNED_LONGS_EQUAL(0u, output.counters().dead_letter_errors);
    temp.write_file("works", "");
    CHECK_TRUE(run_until_idle(output, 100));
    UNSIGNED_LONGS_EQUAL(1u, output.confirmed_through());
}

TEST(TetherdDownlinkOutput, ConfirmedThroughCoversOnlyHandedOverMessages) {
    // Odd-numbered payloads fail and are dead-lettered; the rest are
    // appended to `out`. After every tick, every seq up to
    // confirmed_through() must be in one place or the other.
    const std::string out = temp.file("out.txt");
    DownlinkOutputConfig config =
        command("read m; case $m in odd*) exit 1;; esac; echo \"$m\" >> '" + out + "'");
    config.retries = 1;
    config.retry_delay_ms = 5;
    std::vector<char> storage(4096);
    DownlinkOutput output(config, storage.data(), storage.size());
    // Seqs with gaps (the server expired 4 and 9), and one seq given twice.
    const std::uint64_t seqs[] = {1, 2, 3, 5, 6, 7, 8, 10, 11, 12};
    for (std::uint64_t seq : seqs) {
        const std::string message = (seq % 2 == 1 ? "odd-" : "even-") + std::to_string(seq);
        CHECK(output.deliver(seq, message.data(), message.size()) == Status::kOk);
    }
    CHECK(output.deliver(6, "even-6", 6) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(1u, output.counters().duplicates);
    std::uint64_t previous = 0;
    bool idle = false;
    for (int i = 0; i < 5000 && !idle; ++i) {
        output.tick(now);
        idle = !output.busy();
        const std::uint64_t confirmed = output.confirmed_through();
        CHECK(confirmed >= previous);
        previous = confirmed;
        const std::string lines = file_contents(out);
        for (std::uint64_t seq : seqs) {
            if (seq > confirmed) {
                break;
            }
            if (seq % 2 == 1) {
                char name[32];
                std::snprintf(name, sizeof name, "%020llu.msg",
                              static_cast<unsigned long long>(seq));
                CHECK("odd-" + std::to_string(seq) == file_contents(dead_letter(name)));
            } else {
                CHECK(lines.find("even-" + std::to_string(seq) + "\n") != std::string::npos);
            }
        }
        ::poll(nullptr, 0, 1);
        now += 5;
    }
    CHECK_TRUE(idle);
    UNSIGNED_LONGS_EQUAL(12u, output.confirmed_through());
    STRCMP_EQUAL("even-2\neven-6\neven-8\neven-10\neven-12\n", file_contents(out).c_str());
    UNSIGNED_LONGS_EQUAL(5u, output.counters().dead_lettered);
    UNSIGNED_LONGS_EQUAL(5u, output.counters().delivered);
}

TEST(TetherdDownlinkOutput, CanAcceptIsFalseWhileTheQueueIsFull) {
    // 28 bytes hold two 2-byte messages with their 12-byte entries.
    DownlinkOutput output(command("sleep 30"), queue, 28);
    CHECK_TRUE(output.can_accept(2));
    CHECK(output.deliver(1, "m1", 2) == Status::kOk);
    CHECK(output.deliver(2, "m2", 2) == Status::kOk);
    output.tick(now);
    CHECK_FALSE(output.can_accept(2));
    CHECK_FALSE(output.can_accept(0));
    CHECK(output.deliver(3, "m3", 2) == Status::kNoSpace);
    // Nothing after a refused seq is taken before it, even if it would fit.
    CHECK(output.deliver(4, "", 0) == Status::kNoSpace);
    UNSIGNED_LONGS_EQUAL(2u, output.counters().refused);
    UNSIGNED_LONGS_EQUAL(2u, output.queued());
    CHECK_FALSE(output.can_accept(100));  // never fits, but messages wait
    CHECK(output.deliver(100, "", 0) == Status::kNoSpace);
    // The server expired seq 3: seq 4 may come after all, once there is room.
    output.skip(3, 3);
    CHECK(output.deliver(4, "", 0) == Status::kNoSpace);  // still full, now refused itself
    UNSIGNED_LONGS_EQUAL(0u, output.confirmed_through());
    CHECK(output.deliver(0, "", 0) == Status::kInvalidArgument);
    CHECK(output.deliver(5, nullptr, 1) == Status::kInvalidArgument);
    CHECK(output.pending_fd() == -1);
    // The destructor kills the sleeping command rather than waiting for it.
}

TEST(TetherdDownlinkOutput, ARefusedMessageIsTakenWhenOfferedAgain) {
    const std::string out = temp.file("out.txt");
    DownlinkOutput output(command("cat >> '" + out + "'"), queue, 28);
    CHECK(output.deliver(1, "m1", 2) == Status::kOk);
    CHECK(output.deliver(2, "m2", 2) == Status::kOk);
    CHECK(output.deliver(3, "m3", 2) == Status::kNoSpace);
    CHECK_TRUE(run_until(output, [&] { return output.can_accept(2); }));
    CHECK(output.deliver(4, "m4", 2) == Status::kNoSpace);
    CHECK(output.deliver(3, "m3", 2) == Status::kOk);
    CHECK_TRUE(run_until(output, [&] { return output.can_accept(2); }));
    CHECK(output.deliver(4, "m4", 2) == Status::kOk);
    CHECK_TRUE(run_until_idle(output));
    STRCMP_EQUAL("m1\nm2\nm3\nm4\n", file_contents(out).c_str());
    UNSIGNED_LONGS_EQUAL(4u, output.confirmed_through());
}

TEST(TetherdDownlinkOutput, AMessageThatNeverFitsIsDeadLetteredWhenNothingWaits) {
    DownlinkOutput output(command("cat > /dev/null"), queue, 28);
    const std::string big(100, 'x');
    CHECK_TRUE(output.can_accept(big.size()));
    CHECK(output.deliver(9, big.data(), big.size()) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(9u, output.confirmed_through());
    CHECK(big == file_contents(dead_letter("00000000000000000009.msg")));
    CHECK(recorder.first(DownlinkEventKind::kDeadLettered)->event.failure ==
          DownlinkFailure::kTooLarge);
    UNSIGNED_LONGS_EQUAL(1u, output.counters().rejected);
    // Not when it could not be written.
    DownlinkOutputConfig nowhere = command("cat > /dev/null");
    nowhere.dead_letter_dir = nullptr;
    DownlinkOutput refusing(nowhere, queue, 28);
    CHECK(refusing.deliver(9, big.data(), big.size()) == Status::kTooLarge);
    UNSIGNED_LONGS_EQUAL(0u, refusing.confirmed_through());
    UNSIGNED_LONGS_EQUAL(1u, refusing.counters().refused);
}

TEST(TetherdDownlinkOutput, CountsFailedCommandsAndTheirStatus) {
    DownlinkOutput killed(command("kill -9 $$"), queue, sizeof queue);
    CHECK(killed.deliver(1, "m", 1) == Status::kOk);
    CHECK_TRUE(run_until_idle(killed));
    UNSIGNED_LONGS_EQUAL(1u, killed.counters().failed);
    CHECK(WIFSIGNALED(killed.last_status()));
    CHECK(recorder.first(DownlinkEventKind::kAttemptFailed)->event.failure ==
          DownlinkFailure::kSignaled);
    UNSIGNED_LONGS_EQUAL(0u, killed.counters().delivered);
    UNSIGNED_LONGS_EQUAL(1u, killed.counters().dead_lettered);
}

TEST(TetherdDownlinkOutput, ACommandThatIgnoresItsInputStillCompletes) {
    std::vector<char> storage(3u << 20);
    // It exits without reading, after tick() has filled the socket buffer.
    DownlinkOutput output(command("sleep 0.2"), storage.data(), storage.size());
    const std::string big(2u << 20, 'x');
    CHECK(output.deliver(1, big.data(), big.size()) == Status::kOk);
    output.tick(now);
    CHECK(output.pending_fd() >= 0);
    CHECK_TRUE(run_until_idle(output));
    LONGS_EQUAL(-1, output.pending_fd());
    UNSIGNED_LONGS_EQUAL(1u, output.counters().delivered);
    UNSIGNED_LONGS_EQUAL(1u, output.confirmed_through());
}

TEST(TetherdDownlinkOutput, FeedsALargeMessageAcrossTicks) {
    std::vector<char> storage(3u << 20);
    const std::string out = temp.file("big.txt");
    DownlinkOutput output(command("cat > '" + out + "'"), storage.data(), storage.size());
    const std::string big(2u << 20, 'y');
    CHECK(output.deliver(1, big.data(), big.size()) == Status::kOk);
    CHECK(output.deliver(2, "after", 5) == Status::kOk);
    CHECK_TRUE(run_until_idle(output));
    CHECK(file_contents(out) == "after\n");  // the second command replaced the file
    UNSIGNED_LONGS_EQUAL(2u, output.counters().delivered);
}

TEST(TetherdDownlinkOutput, WorksWithOnlyItsModeSetAndTheMonotonicClock) {
    // The defaults (timeouts, retries, no dead-letter directory, no
    // observer) and the loop's own clock rather than the fixture's `now`.
    Pipe pipe;
    DownlinkOutputConfig line_only;
    line_only.fd = pipe.write_end;
    DownlinkOutput lines(line_only, queue, sizeof queue);
    CHECK(lines.deliver(1, "a", 1) == Status::kOk);
    CHECK(lines.deliver(2, "b", 1) == Status::kOk);
    lines.tick(tether::port::monotonic_now());
    UNSIGNED_LONGS_EQUAL(2u, lines.confirmed_through());
    STRCMP_EQUAL("a\nb\n", pipe.take().c_str());

    const std::string out = temp.file("out.txt");
    const std::string text = "cat >> '" + out + "'";
    DownlinkOutputConfig command_only;
    command_only.command = text.c_str();
    DownlinkOutput runs(command_only, queue, sizeof queue);
    CHECK(runs.deliver(1, "c", 1) == Status::kOk);
    for (int i = 0; i < 5000 && runs.busy(); ++i) {
        runs.tick(tether::port::monotonic_now());
        ::poll(nullptr, 0, 2);
    }
    UNSIGNED_LONGS_EQUAL(1u, runs.confirmed_through());
    STRCMP_EQUAL("c\n", file_contents(out).c_str());
}

TEST(TetherdDownlinkOutput, NamesItsEventsAndFailures) {
    STRCMP_EQUAL("attempt_failed", to_string(DownlinkEventKind::kAttemptFailed));
    STRCMP_EQUAL("dead_lettered", to_string(DownlinkEventKind::kDeadLettered));
    STRCMP_EQUAL("dead_letter_failed", to_string(DownlinkEventKind::kDeadLetterFailed));
    STRCMP_EQUAL("write_failed", to_string(DownlinkEventKind::kWriteFailed));
    STRCMP_EQUAL("recovered", to_string(DownlinkEventKind::kRecovered));
    STRCMP_EQUAL("unknown", to_string(static_cast<DownlinkEventKind>(99)));
    const DownlinkFailure failures[] = {DownlinkFailure::kNone,        DownlinkFailure::kExited,
                                        DownlinkFailure::kSignaled,    DownlinkFailure::kTimedOut,
                                        DownlinkFailure::kSpawnFailed, DownlinkFailure::kLost,
                                        DownlinkFailure::kNotALine,    DownlinkFailure::kTooLarge};
    const char* names[] = {"none",         "exited", "signaled",   "timed_out",
                           "spawn_failed", "lost",   "not_a_line", "too_large"};
    for (std::size_t i = 0; i < sizeof names / sizeof names[0]; ++i) {
        STRCMP_EQUAL(names[i], to_string(failures[i]));
    }
    STRCMP_EQUAL("unknown", to_string(static_cast<DownlinkFailure>(99)));
}

TEST(TetherdDownlinkOutput, FindsTheHighestDeadLetterKeptSoANewNumberingStartsAboveIt) {
    DownlinkOutputConfig config = line(-1);
    {
        DownlinkOutput output(config, queue, sizeof queue);
        CHECK(output.highest_dead_letter_seq() == 0u);  // no directory yet
    }
    CHECK_EQUAL(0, ::mkdir(dead.c_str(), 0700));
    for (const char* name :
         {"00000000000000000007.msg", "00000000000001234567.msg", "00000000000099999999.tmp",
          "99999999999999999999", "x.msg", "0000000000000000000123.msg"}) {
        std::ofstream(dead_letter(name)) << "m";
    }
    DownlinkOutput output(config, queue, sizeof queue);
    CHECK(output.highest_dead_letter_seq() == 1234567u);

    config.dead_letter_dir = nullptr;
    DownlinkOutput nowhere(config, queue, sizeof queue);
    CHECK(nowhere.highest_dead_letter_seq() == 0u);
}

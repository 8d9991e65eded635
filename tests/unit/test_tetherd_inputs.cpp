#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "datagram_input.h"
#include "downlink_output.h"
#include "line_input.h"
#include "support/temp_dir.h"
#include "tether/status.h"

// CppUTest last: its operator-new macro breaks standard headers.
#include <CppUTest/TestHarness.h>

using tether::Status;
using tether::daemon::DatagramInput;
using tether::daemon::DownlinkOutput;
using tether::daemon::LineInput;

namespace {

class Sender {
  public:
    Sender() : fd_(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {}
    ~Sender() { ::close(fd_); }
    void send(const std::string& path, const std::string& message) {
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strcpy(address.sun_path, path.c_str());
        LONGS_EQUAL(static_cast<long>(message.size()),
                    ::sendto(fd_, message.data(), message.size(), 0,
                             reinterpret_cast<const sockaddr*>(&address), sizeof address));
    }

  private:
    int fd_;
};

std::vector<std::string> drain(DatagramInput& input, std::size_t limit = SIZE_MAX) {
    std::vector<std::string> messages;
    input.drain([&](const char* data, std::size_t size) { messages.emplace_back(data, size); },
                limit);
    return messages;
}

std::string joined(const std::vector<std::string>& parts) {
    std::string all;
    for (const std::string& part : parts) {
        all += "[" + part + "]";
    }
    return all;
}

}  // namespace

TEST_GROUP(TetherdDatagramInput) {
    tether::test::TempDir temp;
    std::string path;
    char buffer[8] = {};
    void setup() override {
        path = temp.file("input.sock");
    }
};

TEST(TetherdDatagramInput, PassesMessagesInArrivalOrder) {
    DatagramInput input(buffer, sizeof buffer);
    CHECK(input.bind(path.c_str()) == Status::kOk);
    CHECK(input.fd() >= 0);
    Sender sender;
    sender.send(path, "{\"t\":1}");
    sender.send(path, "two");
    sender.send(path, "3");
    STRCMP_EQUAL("[{\"t\":1}][two][3]", joined(drain(input)).c_str());
    UNSIGNED_LONGS_EQUAL(3u, input.received());
    std::size_t size = 0;
    CHECK(input.receive(&size) == DatagramInput::Receive::kWouldBlock);
}

TEST(TetherdDatagramInput, DropsAndCountsDatagramsLargerThanTheBuffer) {
    DatagramInput input(buffer, sizeof buffer);
    CHECK(input.bind(path.c_str()) == Status::kOk);
    Sender sender;
    sender.send(path, "12345678");
    sender.send(path, "123456789");
    sender.send(path, std::string(5000, 'x'));
    sender.send(path, "");
    sender.send(path, "ok");
    STRCMP_EQUAL("[12345678][ok]", joined(drain(input)).c_str());
    UNSIGNED_LONGS_EQUAL(2u, input.oversize());
    UNSIGNED_LONGS_EQUAL(1u, input.empty());
    UNSIGNED_LONGS_EQUAL(2u, input.received());
}

TEST(TetherdDatagramInput, DrainStopsAtItsLimit) {
    DatagramInput input(buffer, sizeof buffer);
    CHECK(input.bind(path.c_str()) == Status::kOk);
    Sender sender;
    sender.send(path, "a");
    sender.send(path, "b");
    sender.send(path, "c");
    STRCMP_EQUAL("[a][b]", joined(drain(input, 2)).c_str());
    STRCMP_EQUAL("[c]", joined(drain(input, 2)).c_str());
}

TEST(TetherdDatagramInput, ReplacesAStaleSocketAndRemovesItsOwnOnDestruction) {
    {
        DatagramInput earlier(buffer, sizeof buffer);
        CHECK(earlier.bind(path.c_str()) == Status::kOk);
        // A crashed run leaves its socket file behind.
        const int stale = ::socket(AF_UNIX, SOCK_DGRAM, 0);
        ::close(::dup(stale));
        ::close(stale);
    }
    LONGS_EQUAL(-1, ::access(path.c_str(), F_OK));

    const int stale = ::socket(AF_UNIX, SOCK_DGRAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strcpy(address.sun_path, path.c_str());
    LONGS_EQUAL(0, ::bind(stale, reinterpret_cast<const sockaddr*>(&address), sizeof address));
    ::close(stale);
    LONGS_EQUAL(0, ::access(path.c_str(), F_OK));

    DatagramInput input(buffer, sizeof buffer);
    CHECK(input.bind(path.c_str(), 0600) == Status::kOk);
    struct stat info {};
    LONGS_EQUAL(0, ::stat(path.c_str(), &info));
    CHECK(S_ISSOCK(info.st_mode));
    LONGS_EQUAL(0600, info.st_mode & 0777);
    Sender sender;
    sender.send(path, "fresh");
    STRCMP_EQUAL("[fresh]", joined(drain(input)).c_str());
}

TEST(TetherdDatagramInput, AppliesTheDefaultMode) {
    DatagramInput input(buffer, sizeof buffer);
    CHECK(input.bind(path.c_str()) == Status::kOk);
    struct stat info {};
    LONGS_EQUAL(0, ::stat(path.c_str(), &info));
    LONGS_EQUAL(0660, info.st_mode & 0777);
    CHECK(input.bind(path.c_str()) == Status::kUnavailable);
}

TEST(TetherdDatagramInput, LeavesAnythingButASocketAlone) {
    temp.write_file("input.sock", "precious");
    DatagramInput input(buffer, sizeof buffer);
    CHECK(input.bind(path.c_str()) == Status::kInvalidArgument);
    LONGS_EQUAL(-1, input.fd());
    std::ifstream file(path);
    std::string contents;
    std::getline(file, contents);
    STRCMP_EQUAL("precious", contents.c_str());
}

TEST(TetherdDatagramInput, RefusesBadPaths) {
    DatagramInput input(buffer, sizeof buffer);
    CHECK(input.bind("") == Status::kInvalidArgument);
    CHECK(input.bind(nullptr) == Status::kInvalidArgument);
    CHECK(input.bind(std::string(200, 'p').c_str()) == Status::kInvalidArgument);
    CHECK(input.bind((temp.path() + "/missing/input.sock").c_str()) == Status::kIoError);
    LONGS_EQUAL(ENOENT, errno);
    std::size_t size = 0;
    CHECK(input.receive(&size) == DatagramInput::Receive::kError);
    UNSIGNED_LONGS_EQUAL(0u, drain(input).size());
}

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
        close_write();
    }
    void close_read() {
        if (read_end >= 0) {
            ::close(read_end);
        }
        read_end = -1;
    }
    void close_write() {
        if (write_end >= 0) {
            ::close(write_end);
        }
        write_end = -1;
    }
    void put(const std::string& bytes) {
        LONGS_EQUAL(static_cast<long>(bytes.size()),
                    ::write(write_end, bytes.data(), bytes.size()));
    }
    std::string take() {
        char chunk[4096];
        const ssize_t got = ::read(read_end, chunk, sizeof chunk);
        return got > 0 ? std::string(chunk, static_cast<std::size_t>(got)) : std::string();
    }
};

struct Lines {
    std::vector<std::string> seen;
    LineInput::Read read(LineInput& input) {
        return input.read(
            [&](const char* text, std::size_t size) { seen.emplace_back(text, size); });
    }
};

}  // namespace

TEST_GROUP(TetherdLineInput) {
    Pipe pipe;
    char buffer[4] = {};
    Lines lines;
};

TEST(TetherdLineInput, JoinsOddChunksIntoLines) {
    char wide[64];
    LineInput input(pipe.read_end, wide, sizeof wide);
    const char* chunks[] = {"ab", "c\nde", "f\r\n", "\n", "\r\n", "g\nh", "i\n"};
    for (const char* chunk : chunks) {
        pipe.put(chunk);
        CHECK(lines.read(input) == LineInput::Read::kData);
    }
    STRCMP_EQUAL("[abc][def][g][hi]", joined(lines.seen).c_str());
    UNSIGNED_LONGS_EQUAL(4u, input.lines());
}

TEST(TetherdLineInput, GivesTheSameLinesWhateverTheChunking) {
    const std::string script = "one\r\ntwo\n\nthree has spaces\nx\rmid\n{\"t\":1}\n";
    const std::string expected = "[one][two][three has spaces][x\rmid][{\"t\":1}]";
    for (std::size_t step = 1; step <= script.size(); ++step) {
        Pipe chunked;
        char wide[32];
        LineInput input(chunked.read_end, wide, sizeof wide);
        Lines seen;
        for (std::size_t at = 0; at < script.size(); at += step) {
            chunked.put(script.substr(at, step));
            CHECK(seen.read(input) == LineInput::Read::kData);
        }
        STRCMP_EQUAL(expected.c_str(), joined(seen.seen).c_str());
    }
}

TEST(TetherdLineInput, DropsLinesLongerThanTheBufferWhole) {
    LineInput input(pipe.read_end, buffer, sizeof buffer);
    pipe.put("abcd\nabcde\nabcd\r\nabcd\rx\nabcd\r\r\nxy\nlonger than four\nz\n");
    CHECK(lines.read(input) == LineInput::Read::kData);
    STRCMP_EQUAL("[abcd][abcd][xy][z]", joined(lines.seen).c_str());
    UNSIGNED_LONGS_EQUAL(4u, input.overlong());
    UNSIGNED_LONGS_EQUAL(4u, input.lines());
}

TEST(TetherdLineInput, DeliversAnUnterminatedLastLineAtEndOfFile) {
    LineInput input(pipe.read_end, buffer, sizeof buffer);
    pipe.put("a\ntail\r");
    pipe.close_write();
    CHECK(lines.read(input) == LineInput::Read::kData);
    STRCMP_EQUAL("[a]", joined(lines.seen).c_str());
    CHECK_FALSE(input.eof());
    CHECK(lines.read(input) == LineInput::Read::kEof);
    STRCMP_EQUAL("[a][tail]", joined(lines.seen).c_str());
    CHECK_TRUE(input.eof());
    CHECK(lines.read(input) == LineInput::Read::kEof);
    UNSIGNED_LONGS_EQUAL(2u, lines.seen.size());
}

TEST(TetherdLineInput, CountsAnOverlongLastLineAtEndOfFile) {
    const char* endings[] = {"abcdef", "abcd\rx", "ab\nabcde"};
    for (const char* ending : endings) {
        Pipe last;
        LineInput input(last.read_end, buffer, sizeof buffer);
        last.put(ending);
        last.close_write();
        Lines seen;
        CHECK(seen.read(input) == LineInput::Read::kData);
        CHECK(seen.read(input) == LineInput::Read::kEof);
        UNSIGNED_LONGS_EQUAL_TEXT(1u, input.overlong(), ending);
    }
}

TEST(TetherdLineInput, EndOfFileWithNothingPendingDeliversNothing) {
    LineInput input(pipe.read_end, buffer, sizeof buffer);
    pipe.put("ab\n");
    pipe.close_write();
    CHECK(lines.read(input) == LineInput::Read::kData);
    CHECK(lines.read(input) == LineInput::Read::kEof);
    STRCMP_EQUAL("[ab]", joined(lines.seen).c_str());
}

TEST(TetherdLineInput, TakesAFinalCarriageReturnAfterAFullBufferForAnEnding) {
    LineInput input(pipe.read_end, buffer, sizeof buffer);
    pipe.put("abcd\r");
    pipe.close_write();
    CHECK(lines.read(input) == LineInput::Read::kData);
    CHECK(lines.read(input) == LineInput::Read::kEof);
    STRCMP_EQUAL("[abcd]", joined(lines.seen).c_str());
    UNSIGNED_LONGS_EQUAL(0u, input.overlong());
}

TEST(TetherdLineInput, ReadsLinesLongerThanOneChunk) {
    std::vector<char> big(2000);
    LineInput input(pipe.read_end, big.data(), big.size());
    const std::string line(1500, 'q');
    pipe.put(line + "\n");
    for (int i = 0; i < 10 && lines.seen.empty(); ++i) {
        CHECK(lines.read(input) == LineInput::Read::kData);
    }
    UNSIGNED_LONGS_EQUAL(1u, lines.seen.size());
    CHECK(line == lines.seen[0]);
}

TEST(TetherdLineInput, ReportsWouldBlockAndErrors) {
    LONGS_EQUAL(0, ::fcntl(pipe.read_end, F_SETFL, O_NONBLOCK));
    LineInput input(pipe.read_end, buffer, sizeof buffer);
    CHECK(lines.read(input) == LineInput::Read::kWouldBlock);
    LineInput broken(-1, buffer, sizeof buffer);
    CHECK(lines.read(broken) == LineInput::Read::kError);
    LONGS_EQUAL(EBADF, errno);
    CHECK_FALSE(broken.eof());
}

namespace {

// Calls tick() until the output is idle, pausing 2 ms between calls; gives
// up after about ten seconds.
bool run_until_idle(DownlinkOutput& output) {
    for (int i = 0; i < 5000; ++i) {
        output.tick();
        if (!output.busy()) {
            return true;
        }
        ::poll(nullptr, 0, 2);
    }
    return false;
}

std::string file_contents(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    std::ostringstream contents;
    contents << file.rdbuf();
    return contents.str();
}

}  // namespace

TEST_GROUP(TetherdDownlinkOutput) {
    tether::test::TempDir temp;
    char queue[64] = {};
};

TEST(TetherdDownlinkOutput, WritesOneLinePerMessageInLineMode) {
    Pipe pipe;
    DownlinkOutput output(pipe.write_end);
    CHECK(output.deliver("{\"cmd\":\"reboot\"}", 16) == Status::kOk);
    CHECK(output.deliver("", 0) == Status::kOk);
    CHECK(output.deliver("two\nlines", 9) == Status::kInvalidArgument);
    CHECK(output.deliver("last", 4) == Status::kOk);
    output.tick();
    CHECK_FALSE(output.busy());
    STRCMP_EQUAL("{\"cmd\":\"reboot\"}\n\nlast\n", pipe.take().c_str());
    UNSIGNED_LONGS_EQUAL(3u, output.delivered());
    UNSIGNED_LONGS_EQUAL(1u, output.rejected());
}

TEST(TetherdDownlinkOutput, LineModeWaitsForASlowReaderAndWritesWholeLines) {
    Pipe pipe;
    LONGS_EQUAL(0, ::fcntl(pipe.write_end, F_SETFL, O_NONBLOCK));
    DownlinkOutput output(pipe.write_end);
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
    CHECK(output.deliver(big.data(), big.size()) == Status::kOk);
    reader.join();
    CHECK(big + "\n" == received);
}

TEST(TetherdDownlinkOutput, LineModeReportsAFullOrBrokenDescriptor) {
    Pipe pipe;
    LONGS_EQUAL(0, ::fcntl(pipe.write_end, F_SETFL, O_NONBLOCK));
    DownlinkOutput output(pipe.write_end, 0);
    const std::string big(300000, 'b');
    CHECK(output.deliver(big.data(), big.size()) == Status::kIoError);
    LONGS_EQUAL(ETIMEDOUT, errno);
    DownlinkOutput closed(-1);
    CHECK(closed.deliver("x", 1) == Status::kIoError);
    LONGS_EQUAL(EBADF, errno);
    UNSIGNED_LONGS_EQUAL(0u, closed.delivered());
}

TEST(TetherdDownlinkOutput, RunsTheCommandPerMessageInOrder) {
    const std::string out = temp.file("out.txt");
    const std::string command = "cat >> '" + out + "'";
    DownlinkOutput output(command.c_str(), queue, sizeof queue);
    const char* messages[] = {"first", "{\"n\":2}", "third", "4", "five"};
    for (const char* message : messages) {
        CHECK(output.deliver(message, std::strlen(message)) == Status::kOk);
    }
    CHECK_TRUE(output.busy());
    CHECK_TRUE(run_until_idle(output));
    STRCMP_EQUAL("first\n{\"n\":2}\nthird\n4\nfive\n", file_contents(out).c_str());
    UNSIGNED_LONGS_EQUAL(5u, output.delivered());
    UNSIGNED_LONGS_EQUAL(0u, output.failed());
    LONGS_EQUAL(0, output.last_status());
    UNSIGNED_LONGS_EQUAL(0u, output.queued());
}

TEST(TetherdDownlinkOutput, CountsFailedCommandsAndTheirStatus) {
    DownlinkOutput exits(": ; exit 3", queue, sizeof queue);
    CHECK(exits.deliver("m", 1) == Status::kOk);
    CHECK_TRUE(run_until_idle(exits));
    UNSIGNED_LONGS_EQUAL(1u, exits.failed());
    CHECK(WIFEXITED(exits.last_status()));
    LONGS_EQUAL(3, WEXITSTATUS(exits.last_status()));

    DownlinkOutput killed("kill -9 $$", queue, sizeof queue);
    CHECK(killed.deliver("m", 1) == Status::kOk);
    CHECK_TRUE(run_until_idle(killed));
    UNSIGNED_LONGS_EQUAL(1u, killed.failed());
    CHECK(WIFSIGNALED(killed.last_status()));
    UNSIGNED_LONGS_EQUAL(0u, killed.delivered());
}

TEST(TetherdDownlinkOutput, QueuesWhileACommandRunsAndDropsWhenFull) {
    // 12 bytes hold two 2-byte messages with their 4-byte headers.
    DownlinkOutput output("sleep 30", queue, 12);
    CHECK(output.deliver("m1", 2) == Status::kOk);  // starts at once
    CHECK(output.deliver("m2", 2) == Status::kOk);
    CHECK(output.deliver("m3", 2) == Status::kOk);
    CHECK(output.deliver("m4", 2) == Status::kNoSpace);
    CHECK(output.deliver("too large", 9) == Status::kTooLarge);
    output.tick();
    UNSIGNED_LONGS_EQUAL(2u, output.queued());
    UNSIGNED_LONGS_EQUAL(2u, output.dropped());
    CHECK_TRUE(output.busy());
    LONGS_EQUAL(-1, output.pending_fd());
    // The destructor kills the sleeping command rather than waiting for it.
}

TEST(TetherdDownlinkOutput, ACommandThatIgnoresItsInputStillCompletes) {
    std::vector<char> storage(3u << 20);
    // It exits without reading, after deliver() has filled the socket buffer.
    DownlinkOutput output("sleep 0.2", storage.data(), storage.size());
    const std::string big(2u << 20, 'x');
    CHECK(output.deliver(big.data(), big.size()) == Status::kOk);
    CHECK(output.pending_fd() >= 0);
    CHECK_TRUE(run_until_idle(output));
    LONGS_EQUAL(-1, output.pending_fd());
    UNSIGNED_LONGS_EQUAL(1u, output.delivered());
    UNSIGNED_LONGS_EQUAL(0u, output.queued());
}

TEST(TetherdDownlinkOutput, FeedsALargeMessageAcrossTicks) {
    std::vector<char> storage(3u << 20);
    const std::string out = temp.file("big.txt");
    const std::string command = "cat > '" + out + "'";
    DownlinkOutput output(command.c_str(), storage.data(), storage.size());
    const std::string big(2u << 20, 'y');
    CHECK(output.deliver(big.data(), big.size()) == Status::kOk);
    CHECK(output.deliver("after", 5) == Status::kOk);
    CHECK_TRUE(run_until_idle(output));
    CHECK(file_contents(out) == "after\n");  // the second command replaced the file
    UNSIGNED_LONGS_EQUAL(2u, output.delivered());
}

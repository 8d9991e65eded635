// SPDX-License-Identifier: MIT
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "datagram_input.h"
#include "line_input.h"
#include "support/temp_dir.h"
#include "tether/status.h"

// CppUTest last: its operator-new macro breaks standard headers.
#include <CppUTest/TestHarness.h>

using tether::Status;
using tether::daemon::DatagramInput;
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
    UNSIGNED_LONGS_EQUAL(5000u, input.last_oversize_size());  // its real length, for the log
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

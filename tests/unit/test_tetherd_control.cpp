// SPDX-License-Identifier: MIT
// tetherd's control socket: request parsing, and the limits on what a local
// client can make the daemon hold (line length, clients at once, time).
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <CppUTest/TestHarness.h>

#include "control_socket.h"

using tether::daemon::ControlProblem;
using tether::daemon::ControlRequest;
using tether::daemon::ControlSocket;
using tether::daemon::parse_control_request;

namespace {

ControlRequest parse(const char* line) {
    return parse_control_request(line, std::strlen(line));
}

struct FakeHandler final : tether::daemon::ControlHandler {
    std::string control_status() override { return "{\"state\":\"online\"}\n"; }
    std::string control_reconnect() override {
        ++reconnects;
        return "ok reconnecting\n";
    }
    std::uint64_t control_flush_begin() override { return flush_seq; }
    bool control_flushed(std::uint64_t seq, std::uint64_t* out) override {
        *out = acked;
        return acked >= seq;
    }
    void control_problem(ControlProblem problem, const char*) override {
        last_problem = problem;
        ++problems;
    }
    int reconnects = 0;
    int problems = 0;
    ControlProblem last_problem = ControlProblem::kIoError;
    std::uint64_t flush_seq = 0;
    std::uint64_t acked = 0;
};

std::string socket_path() {
    return "/tmp/tether-control-test-" + std::to_string(::getpid()) + ".sock";
}

int connect_to(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

void send_text(int fd, const std::string& text) {
    CHECK_EQUAL(static_cast<ssize_t>(text.size()), ::send(fd, text.data(), text.size(), 0));
}

// Whatever the daemon has written so far (up to its close), without waiting.
std::string received(int fd) {
    std::string text;
    char buffer[256];
    for (;;) {
        const ssize_t got = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
        if (got <= 0) {
            return text;
        }
        text.append(buffer, static_cast<std::size_t>(got));
    }
}

}  // namespace

TEST_GROUP(ControlRequest){};

TEST(ControlRequest, KnowsTheThreeRequests) {
    CHECK(parse("status").type == ControlRequest::Type::kStatus);
    CHECK(parse(" status \r").type == ControlRequest::Type::kStatus);
    CHECK(parse("reconnect").type == ControlRequest::Type::kReconnect);
    const ControlRequest flush = parse("flush");
    CHECK(flush.type == ControlRequest::Type::kFlush);
    UNSIGNED_LONGS_EQUAL(tether::daemon::kDefaultFlushTimeoutMs, flush.timeout_ms);
    const ControlRequest timed = parse("flush 2500");
    CHECK(timed.type == ControlRequest::Type::kFlush);
    UNSIGNED_LONGS_EQUAL(2500, timed.timeout_ms);
    UNSIGNED_LONGS_EQUAL(600000, parse("flush 600000").timeout_ms);
}

TEST(ControlRequest, RefusesEverythingElse) {
    const char* bad[] = {"",        "statu",        "statusx",  "status now", "reconnect 1",
                         "flush 0", "flush 600001", "flush -1", "flush 1e3",  "flush 99999999",
                         "STATUS",  "flush 10 20"};
    for (const char* line : bad) {
        CHECK_TEXT(parse(line).type == ControlRequest::Type::kInvalid, line);
    }
}

TEST_GROUP(ControlSocket) {
    std::string path = socket_path();
    void teardown() override {
        ::unlink(path.c_str());
    }
};

TEST(ControlSocket, AnswersStatusThenCloses) {
    FakeHandler handler;
    ControlSocket control(&handler);
    CHECK(control.bind(path.c_str()) == tether::Status::kOk);
    struct stat info {};
    CHECK_EQUAL(0, ::stat(path.c_str(), &info));
    UNSIGNED_LONGS_EQUAL(0660u, info.st_mode & 0777u);
    const int fd = connect_to(path);
    CHECK(fd >= 0);
    send_text(fd, "status\n");
    control.on_ready(control.fd(), true, false, 0);
    control.tick(1);
    STRCMP_EQUAL("{\"state\":\"online\"}\n", received(fd).c_str());
    UNSIGNED_LONGS_EQUAL(0, control.clients());
    UNSIGNED_LONGS_EQUAL(1, control.counters().requests);
    ::close(fd);
}

TEST(ControlSocket, ABadRequestIsAnsweredAndCounted) {
    FakeHandler handler;
    ControlSocket control(&handler);
    CHECK(control.bind(path.c_str()) == tether::Status::kOk);
    const int fd = connect_to(path);
    send_text(fd, "shutdown\n");
    control.on_ready(control.fd(), true, false, 0);
    control.tick(1);
    STRCMP_EQUAL("error bad_request\n", received(fd).c_str());
    UNSIGNED_LONGS_EQUAL(1, control.counters().bad_requests);
    CHECK(handler.last_problem == ControlProblem::kBadRequest);
    ::close(fd);
}

TEST(ControlSocket, ALineOverTheLimitIsRefused) {
    FakeHandler handler;
    ControlSocket control(&handler);
    CHECK(control.bind(path.c_str()) == tether::Status::kOk);
    const int fd = connect_to(path);
    send_text(fd, std::string(3 * ControlSocket::kMaxRequest, 's'));
    control.on_ready(control.fd(), true, false, 0);
    control.tick(1);
    STRCMP_EQUAL("error too_long\n", received(fd).c_str());
    UNSIGNED_LONGS_EQUAL(1, control.counters().too_long);
    ::close(fd);
}

TEST(ControlSocket, AClientThatSendsNothingIsClosedAfterTheTimeout) {
    FakeHandler handler;
    ControlSocket control(&handler);
    CHECK(control.bind(path.c_str()) == tether::Status::kOk);
    const int fd = connect_to(path);
    send_text(fd, "stat");
    control.on_ready(control.fd(), true, false, 100);
    control.tick(100 + ControlSocket::kRequestTimeoutMs - 1);
    UNSIGNED_LONGS_EQUAL(1, control.clients());
    tether::TimeMs at = 0;
    CHECK(control.next_deadline(&at));
    UNSIGNED_LONGS_EQUAL(100 + ControlSocket::kRequestTimeoutMs, at);
    control.tick(100 + ControlSocket::kRequestTimeoutMs);
    UNSIGNED_LONGS_EQUAL(0, control.clients());
    UNSIGNED_LONGS_EQUAL(1, control.counters().timeouts);
    ::close(fd);
}

TEST(ControlSocket, TooManyClientsAtOnceAreTurnedAway) {
    FakeHandler handler;
    ControlSocket control(&handler);
    CHECK(control.bind(path.c_str()) == tether::Status::kOk);
    int fds[ControlSocket::kMaxClients + 1];
    for (int& fd : fds) {
        fd = connect_to(path);
        CHECK(fd >= 0);
    }
    control.on_ready(control.fd(), true, false, 0);
    UNSIGNED_LONGS_EQUAL(ControlSocket::kMaxClients, control.clients());
    UNSIGNED_LONGS_EQUAL(1, control.counters().busy);
    STRCMP_EQUAL("error busy\n", received(fds[ControlSocket::kMaxClients]).c_str());
    for (int fd : fds) {
        ::close(fd);
    }
}

TEST(ControlSocket, FlushAnswersOnceAckedOrAtItsTimeout) {
    FakeHandler handler;
    ControlSocket control(&handler);
    CHECK(control.bind(path.c_str()) == tether::Status::kOk);
    handler.flush_seq = 7;
    handler.acked = 5;
    const int fd = connect_to(path);
    send_text(fd, "flush 1000\n");
    control.on_ready(control.fd(), true, false, 0);
    control.tick(10);
    STRCMP_EQUAL("", received(fd).c_str());
    handler.acked = 7;
    control.tick(20);
    STRCMP_EQUAL("ok flushed seq=7 acked=7\n", received(fd).c_str());
    ::close(fd);

    handler.flush_seq = 9;
    const int late = connect_to(path);
    send_text(late, "flush 1000\n");
    control.on_ready(control.fd(), true, false, 100);
    control.tick(1099);
    STRCMP_EQUAL("", received(late).c_str());
    control.tick(1100);
    STRCMP_EQUAL("error flush_timeout seq=9 acked=7\n", received(late).c_str());
    UNSIGNED_LONGS_EQUAL(1, control.counters().flush_timeouts);
    ::close(late);
}

TEST(ControlSocket, AStaleSocketIsReplacedAndALiveOneIsNot) {
    FakeHandler handler;
    {
        ControlSocket first(&handler);
        CHECK(first.bind(path.c_str()) == tether::Status::kOk);
        ControlSocket second(&handler);
        CHECK(second.bind(path.c_str()) == tether::Status::kUnavailable);
        ::close(first.fd());  // a crash: the file stays, nobody listens
        CHECK_EQUAL(0, ::access(path.c_str(), F_OK));
        ControlSocket third(&handler);
        CHECK(third.bind(path.c_str()) == tether::Status::kOk);
    }
}

TEST(ControlSocket, RefusesAPathLongerThanSunPath) {
    FakeHandler handler;
    ControlSocket control(&handler);
    const std::string long_path = "/tmp/" + std::string(120, 'x') + "/control.sock";
    CHECK(control.bind(long_path.c_str()) == tether::Status::kInvalidArgument);
    CHECK_EQUAL(ENAMETOOLONG, errno);
}

// SPDX-License-Identifier: MIT
#include "control_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <utility>

namespace tether::daemon {
namespace {

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r';
}

bool word_is(const char* begin, const char* end, const char* word) {
    const std::size_t length = std::strlen(word);
    return static_cast<std::size_t>(end - begin) == length && std::memcmp(begin, word, length) == 0;
}

// A decimal number of 1..kMaxFlushTimeoutMs; false for anything else.
bool parse_timeout(const char* begin, const char* end, std::uint32_t* out) {
    if (begin == end || end - begin > 7) {
        return false;
    }
    std::uint32_t value = 0;
    for (const char* p = begin; p != end; ++p) {
        if (*p < '0' || *p > '9') {
            return false;
        }
        value = value * 10u + static_cast<std::uint32_t>(*p - '0');
    }
    if (value == 0 || value > kMaxFlushTimeoutMs) {
        return false;
    }
    *out = value;
    return true;
}

}  // namespace

ControlRequest parse_control_request(const char* line, std::size_t size) {
    ControlRequest request;
    const char* p = line;
    const char* end = line + size;
    while (end != p && is_space(end[-1])) {
        --end;
    }
    while (p != end && is_space(*p)) {
        ++p;
    }
    const char* word_end = p;
    while (word_end != end && !is_space(*word_end)) {
        ++word_end;
    }
    const char* argument = word_end;
    while (argument != end && is_space(*argument)) {
        ++argument;
    }
    const bool no_argument = argument == end;
    if (word_is(p, word_end, "status") && no_argument) {
        request.type = ControlRequest::Type::kStatus;
    } else if (word_is(p, word_end, "reconnect") && no_argument) {
        request.type = ControlRequest::Type::kReconnect;
    } else if (word_is(p, word_end, "flush")) {
        request.timeout_ms = kDefaultFlushTimeoutMs;
        if (no_argument || parse_timeout(argument, end, &request.timeout_ms)) {
            request.type = ControlRequest::Type::kFlush;
        }
    }
    return request;
}

const char* to_string(ControlProblem problem) {
    switch (problem) {
        case ControlProblem::kBadRequest:
            return "bad_request";
        case ControlProblem::kTooLong:
            return "too_long";
        case ControlProblem::kBusy:
            return "busy";
        case ControlProblem::kTimeout:
            return "timeout";
        case ControlProblem::kIoError:
            return "io_error";
        case ControlProblem::kFlushTimeout:
            return "flush_timeout";
    }
    return "unknown";
}

ControlSocket::~ControlSocket() {
    for (Client& client : clients_) {
        close_client(client);
    }
    if (fd_ >= 0) {
        if (loop_ != nullptr) {
            loop_->unwatch(fd_);
        }
        ::close(fd_);
        ::unlink(path_);
    }
}

Status ControlSocket::bind(const char* path, mode_t mode) {
    if (fd_ >= 0) {
        return Status::kUnavailable;
    }
    sockaddr_un address{};
    const std::size_t length = path == nullptr ? 0 : std::strlen(path);
    static_assert(sizeof address.sun_path <= sizeof path_, "path_ holds any socket path");
    if (length == 0 || length >= sizeof address.sun_path) {
        errno = ENAMETOOLONG;
        return Status::kInvalidArgument;
    }
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path, length + 1);

    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return Status::kIoError;
    }
    // A socket file at the path: left by a crashed run (nobody answers: it is
    // replaced) or in use by another daemon (it answers: refused). Anything
    // other than a socket is a configuration mistake and is not deleted.
    struct stat existing {};
    if (::lstat(path, &existing) == 0) {
        if (!S_ISSOCK(existing.st_mode)) {
            ::close(fd);
            errno = EEXIST;
            return Status::kInvalidArgument;
        }
        const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const bool answered =
            probe >= 0 &&
            ::connect(probe, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
        if (probe >= 0) {
            ::close(probe);
        }
        if (answered) {
            ::close(fd);
            errno = EADDRINUSE;
            return Status::kUnavailable;
        }
        ::unlink(path);
    }
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(fd, static_cast<int>(kMaxClients)) != 0) {
        const int saved = errno;
        ::close(fd);
        errno = saved;
        return Status::kIoError;
    }
    // The mode applies to the path (fchmod on a socket does not), so it is set
    // after bind; in between the path has what the umask allows.
    if (::chmod(path, mode) != 0) {
        const int saved = errno;
        ::close(fd);
        ::unlink(path);
        errno = saved;
        return Status::kIoError;
    }
    std::memcpy(path_, path, length + 1);
    fd_ = fd;
    return Status::kOk;
}

void ControlSocket::attach(port::PollLoop* loop) {
    loop_ = loop;
    if (fd_ >= 0) {
        loop_->watch(fd_, true, false, this);
    }
}

std::size_t ControlSocket::clients() const {
    std::size_t count = 0;
    for (const Client& client : clients_) {
        count += client.fd >= 0 ? 1u : 0u;
    }
    return count;
}

void ControlSocket::problem(ControlProblem kind, const char* detail) {
    switch (kind) {
        case ControlProblem::kBadRequest:
            ++counters_.bad_requests;
            break;
        case ControlProblem::kTooLong:
            ++counters_.too_long;
            break;
        case ControlProblem::kBusy:
            ++counters_.busy;
            break;
        case ControlProblem::kTimeout:
            ++counters_.timeouts;
            break;
        case ControlProblem::kIoError:
            ++counters_.io_errors;
            break;
        case ControlProblem::kFlushTimeout:
            ++counters_.flush_timeouts;
            break;
    }
    if (handler_ != nullptr) {
        handler_->control_problem(kind, detail);
    }
}

void ControlSocket::close_client(Client& client) {
    if (client.fd >= 0) {
        if (loop_ != nullptr) {
            loop_->unwatch(client.fd);
        }
        // Closing with unread bytes resets the connection, and the client
        // would lose its answer ("error too_long"): what it sent beyond the
        // request is taken first, a few kilobytes at most.
        char sink[512];
        for (int i = 0; i < 8 && ::recv(client.fd, sink, sizeof sink, MSG_DONTWAIT) > 0; ++i) {
        }
        ::close(client.fd);
    }
    client.fd = -1;
    client.phase = Phase::kFree;
    client.length = 0;
    client.answer.clear();
    client.written = 0;
}

void ControlSocket::on_ready(int fd, bool readable, bool writable, TimeMs now) {
    if (fd == fd_) {
        if (readable) {
            accept_all(now);
        }
        return;
    }
    for (Client& client : clients_) {
        if (client.fd != fd) {
            continue;
        }
        if (client.phase == Phase::kReading && readable) {
            read_request(client, now);
        } else if (client.phase == Phase::kWriting && writable) {
            write_answer(client, now);
        } else if (client.phase == Phase::kFlushing && readable) {
            // The client hung up (or sent more): nobody waits for the answer.
            char ignored[16];
            const ssize_t got = ::recv(client.fd, ignored, sizeof ignored, MSG_DONTWAIT);
            if (got == 0) {
                client.phase = Phase::kDone;
            }
        }
        return;
    }
}

void ControlSocket::accept_all(TimeMs now) {
    for (;;) {
        const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                problem(ControlProblem::kIoError, std::strerror(errno));
            }
            return;
        }
        Client* slot = nullptr;
        for (Client& client : clients_) {
            if (client.phase == Phase::kFree) {
                slot = &client;
                break;
            }
        }
        if (slot == nullptr) {
            static const char kBusy[] = "error busy\n";
            (void)!::send(fd, kBusy, sizeof kBusy - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
            char sink[kMaxRequest];
            (void)!::recv(fd, sink, sizeof sink, MSG_DONTWAIT);  // unread bytes would reset it
            ::close(fd);
            problem(ControlProblem::kBusy, "too many control clients at once");
            continue;
        }
        slot->fd = fd;
        slot->phase = Phase::kReading;
        slot->length = 0;
        slot->deadline = now + kRequestTimeoutMs;
        if (loop_ != nullptr && !loop_->watch(fd, true, false, this)) {
            problem(ControlProblem::kIoError, "the poll loop has no room for another descriptor");
            close_client(*slot);
            continue;
        }
        read_request(*slot, now);  // the request is usually there already
    }
}

void ControlSocket::read_request(Client& client, TimeMs now) {
    for (;;) {
        const std::size_t room = kMaxRequest - client.length;
        const ssize_t got = ::recv(client.fd, client.request + client.length, room, MSG_DONTWAIT);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                problem(ControlProblem::kIoError, std::strerror(errno));
                client.phase = Phase::kDone;
            }
            return;
        }
        if (got == 0) {
            client.phase = Phase::kDone;  // gone before a request: nothing to answer
            return;
        }
        const std::size_t before = client.length;
        client.length += static_cast<std::size_t>(got);
        const void* newline = std::memchr(client.request + before, '\n', client.length - before);
        if (newline != nullptr) {
            const auto size =
                static_cast<std::size_t>(static_cast<const char*>(newline) - client.request);
            handle(client, parse_control_request(client.request, size), now);
            return;
        }
        if (client.length == kMaxRequest) {
            problem(ControlProblem::kTooLong, "a request line longer than 64 bytes");
            answer(client, "error too_long\n", now);
            return;
        }
    }
}

void ControlSocket::handle(Client& client, const ControlRequest& request, TimeMs now) {
    switch (request.type) {
        case ControlRequest::Type::kInvalid:
            problem(ControlProblem::kBadRequest, "not status, reconnect or flush [MS]");
            answer(client, "error bad_request\n", now);
            return;
        case ControlRequest::Type::kStatus:
            ++counters_.requests;
            answer(client, handler_->control_status(), now);
            return;
        case ControlRequest::Type::kReconnect:
            ++counters_.requests;
            answer(client, handler_->control_reconnect(), now);
            return;
        case ControlRequest::Type::kFlush:
            ++counters_.requests;
            client.flush_seq = handler_->control_flush_begin();
            client.phase = Phase::kFlushing;
            client.deadline = now + request.timeout_ms;
            tick(now);  // already acknowledged: answered at once
            return;
    }
}

void ControlSocket::answer(Client& client, std::string text, TimeMs now) {
    client.answer = std::move(text);
    client.written = 0;
    client.phase = Phase::kWriting;
    client.deadline = now + kWriteTimeoutMs;
    if (loop_ != nullptr) {
        loop_->watch(client.fd, false, true, this);
    }
    write_answer(client, now);
}

void ControlSocket::write_answer(Client& client, TimeMs now) {
    (void)now;
    while (client.written < client.answer.size()) {
        const ssize_t sent =
            ::send(client.fd, client.answer.data() + client.written,
                   client.answer.size() - client.written, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                problem(ControlProblem::kIoError, std::strerror(errno));
                client.phase = Phase::kDone;
            }
            return;  // writable again later
        }
        client.written += static_cast<std::size_t>(sent);
    }
    ::shutdown(client.fd, SHUT_WR);
    client.phase = Phase::kDone;
}

void ControlSocket::tick(TimeMs now) {
    for (Client& client : clients_) {
        if (client.phase == Phase::kFlushing) {
            std::uint64_t acked = 0;
            const bool done = handler_->control_flushed(client.flush_seq, &acked);
            if (done || time_reached(now, client.deadline)) {
                char text[96];
                std::snprintf(text, sizeof text, "%s seq=%" PRIu64 " acked=%" PRIu64 "\n",
                              done ? "ok flushed" : "error flush_timeout", client.flush_seq, acked);
                if (!done) {
                    problem(ControlProblem::kFlushTimeout,
                            "not every message was acknowledged within the flush timeout");
                }
                answer(client, text, now);
            }
        } else if ((client.phase == Phase::kReading || client.phase == Phase::kWriting) &&
                   time_reached(now, client.deadline)) {
            problem(ControlProblem::kTimeout, client.phase == Phase::kReading
                                                  ? "a client sent no request line in time"
                                                  : "a client did not read its answer in time");
            client.phase = Phase::kDone;
        }
        if (client.phase == Phase::kDone) {
            close_client(client);
        }
    }
}

bool ControlSocket::next_deadline(TimeMs* at) const {
    bool any = false;
    for (const Client& client : clients_) {
        if (client.phase == Phase::kFree || client.phase == Phase::kDone) {
            continue;
        }
        // A flush is also re-checked on every tick: an acknowledgement wakes
        // the loop through the link's descriptor.
        *at = any ? time_earliest(*at, client.deadline) : client.deadline;
        any = true;
    }
    return any;
}

}  // namespace tether::daemon

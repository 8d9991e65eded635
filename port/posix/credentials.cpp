// SPDX-License-Identifier: MIT
#include "tether/port/credentials.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

extern char** environ;

namespace tether::port {
namespace {

// The length of the first line of `text`, without its line ending.
std::size_t first_line(const char* text, std::size_t size) {
    std::size_t length = 0;
    while (length < size && text[length] != '\n' && text[length] != '\r') {
        ++length;
    }
    return length;
}

bool bearer(const char* token, std::size_t length, char* out, std::size_t capacity) {
    if (length == 0 || length + 8 > capacity) {
        return false;
    }
    std::memcpy(out, "Bearer ", 7);
    std::memcpy(out + 7, token, length);
    out[7 + length] = '\0';
    return true;
}

}  // namespace

const char* to_string(TokenFileProblem problem) {
    switch (problem) {
        case TokenFileProblem::kNone:
            return "none";
        case TokenFileProblem::kMissing:
            return "missing";
        case TokenFileProblem::kUnreadable:
            return "unreadable";
        case TokenFileProblem::kEmpty:
            return "empty";
        case TokenFileProblem::kTooLong:
            return "too_long";
    }
    return "unknown";
}

// Records what this read found; returns whether it was a token. `detail` is
// the errno for kMissing and kUnreadable, the length limit for kTooLong. The
// text is rebuilt, and the generation moves, only when the finding changed,
// so the loop can log each distinct problem once.
bool TokenFileCredentials::report(TokenFileProblem problem, int detail) {
    if (problem != TokenFileProblem::kNone) {
        ++failures_;
    }
    if (problem == problem_ && detail == problem_detail_) {
        return problem == TokenFileProblem::kNone;
    }
    problem_ = problem;
    problem_detail_ = detail;
    ++generation_;
    switch (problem) {
        case TokenFileProblem::kNone:
            problem_text_[0] = '\0';
            break;
        case TokenFileProblem::kMissing:
        case TokenFileProblem::kUnreadable:
            std::snprintf(problem_text_, sizeof problem_text_, "%s (%s)", to_string(problem),
                          std::strerror(detail));
            break;
        case TokenFileProblem::kEmpty:
            std::snprintf(problem_text_, sizeof problem_text_,
                          "empty (no token on the first line)");
            break;
        case TokenFileProblem::kTooLong:
            std::snprintf(problem_text_, sizeof problem_text_,
                          "too long (the first line exceeds %zu bytes)",
                          detail != 0 ? static_cast<std::size_t>(detail) : kMaxToken);
            break;
    }
    return problem == TokenFileProblem::kNone;
}

bool TokenFileCredentials::authorization(char* out, std::size_t capacity) {
    const int fd = ::open(path_, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        const int error_number = errno;
        const bool missing = error_number == ENOENT || error_number == ENOTDIR;
        return report(missing ? TokenFileProblem::kMissing : TokenFileProblem::kUnreadable,
                      error_number);
    }
    // One byte more than the longest token: a line that fills it is too long.
    char token[kMaxToken + 1];
    ssize_t got = ::read(fd, token, sizeof token);
    while (got < 0 && errno == EINTR) {
        got = ::read(fd, token, sizeof token);
    }
    const int read_errno = errno;
    ::close(fd);
    bool ok = false;
    if (got < 0) {
        ok = report(TokenFileProblem::kUnreadable, read_errno);
    } else {
        const std::size_t length = first_line(token, static_cast<std::size_t>(got));
        // "Bearer " + token + NUL must fit the caller's buffer.
        const std::size_t room = capacity > 8 ? capacity - 8 : 0;
        if (length == 0) {
            ok = report(TokenFileProblem::kEmpty, 0);
        } else if (length > kMaxToken || length > room) {
            // The limit that was hit is the detail: another limit is another problem.
            ok = report(TokenFileProblem::kTooLong,
                        static_cast<int>(room < kMaxToken ? room : kMaxToken));
        } else {
            ok = report(TokenFileProblem::kNone, 0) && bearer(token, length, out, capacity);
        }
    }
    std::memset(token, 0, sizeof token);
    return ok;
}

TokenCommandCredentials::~TokenCommandCredentials() {
    if (child_ > 0) {
        kill_command();
        ::waitpid(child_, nullptr, 0);
    }
    if (fd_ >= 0) {
        ::close(fd_);
    }
    std::memset(token_, 0, sizeof token_);
    std::memset(output_, 0, sizeof output_);
}

// The command's whole process group; the child alone when the group does not
// exist yet (ESRCH): a posix_spawn without vfork semantics (qemu-user's
// emulation) can return before the child's setpgid, and the kill must not
// then be lost.
void TokenCommandCredentials::kill_command() {
    if (::kill(-child_, SIGKILL) != 0) {
        ::kill(child_, SIGKILL);
    }
}

bool TokenCommandCredentials::start() {
    int pipe_fds[2];
    if (::pipe(pipe_fds) != 0) {
        return false;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
    posix_spawn_file_actions_addclose(&actions, pipe_fds[1]);
    char shell[] = "/bin/sh";
    char flag[] = "-c";
    char* argv[] = {shell, flag, const_cast<char*>(command_), nullptr};
    // Its own process group, so a timeout kills whatever the shell started too
    // (and the pipe they hold closes).
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attributes, 0);
    pid_t pid = -1;
    const int result = ::posix_spawn(&pid, shell, &actions, &attributes, argv, environ);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    ::close(pipe_fds[1]);
    if (result != 0) {
        ::close(pipe_fds[0]);
        return false;
    }
    ::fcntl(pipe_fds[0], F_SETFL, ::fcntl(pipe_fds[0], F_GETFL, 0) | O_NONBLOCK);
    ::fcntl(pipe_fds[0], F_SETFD, FD_CLOEXEC);
    child_ = pid;
    fd_ = pipe_fds[0];
    output_length_ = 0;
    return true;
}

void TokenCommandCredentials::refresh() {
    if (child_ <= 0 && !start()) {
        ++failures_;
    }
}

void TokenCommandCredentials::on_readable() {
    if (fd_ < 0) {
        return;
    }
    for (;;) {
        char chunk[256];
        const ssize_t got = ::read(fd_, chunk, sizeof chunk);
        if (got > 0) {
            // Output beyond the bound is read and discarded: the token is the first line.
            const std::size_t room = sizeof output_ - 1 - output_length_;
            const std::size_t take =
                static_cast<std::size_t>(got) < room ? static_cast<std::size_t>(got) : room;
            std::memcpy(output_ + output_length_, chunk, take);
            output_length_ += take;
            std::memset(chunk, 0, sizeof chunk);
            continue;
        }
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        finish();  // EOF or error: the command is done
        return;
    }
}

void TokenCommandCredentials::finish() {
    ::close(fd_);
    fd_ = -1;
    int status = 0;
    const bool exited = ::waitpid(child_, &status, 0) == child_;
    child_ = -1;
    const std::size_t length = first_line(output_, output_length_);
    if (exited && WIFEXITED(status) && WEXITSTATUS(status) == 0 && length > 0) {
        std::memcpy(token_, output_, length);
        token_[length] = '\0';
        token_length_ = length;
    } else {
        ++failures_;
    }
    std::memset(output_, 0, sizeof output_);
    output_length_ = 0;
}

Status TokenCommandCredentials::fetch_now(int timeout_ms) {
    if (child_ <= 0 && !start()) {
        ++failures_;
        return Status::kIoError;
    }
    const std::size_t failures_before = failures_;
    while (fd_ >= 0) {
        struct pollfd pfd {
            fd_, POLLIN, 0
        };
        if (::poll(&pfd, 1, timeout_ms) == 0) {
            // Too slow: kill it; its pipe then ends and finish() counts the failure.
            kill_command();
        }
        on_readable();
    }
    return failures_ == failures_before && has_token() ? Status::kOk : Status::kUnavailable;
}

bool TokenCommandCredentials::authorization(char* out, std::size_t capacity) {
    return bearer(token_, token_length_, out, capacity);
}

}  // namespace tether::port

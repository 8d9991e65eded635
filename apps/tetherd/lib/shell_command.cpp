// SPDX-License-Identifier: MIT
#include "shell_command.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace tether::daemon {

const char* to_string(CommandEnd end) {
    switch (end) {
        case CommandEnd::kRunning:
            return "running";
        case CommandEnd::kSucceeded:
            return "succeeded";
        case CommandEnd::kExited:
            return "exited";
        case CommandEnd::kSignaled:
            return "signaled";
        case CommandEnd::kTimedOut:
            return "timed_out";
        case CommandEnd::kLost:
            return "lost";
    }
    return "unknown";
}

ShellCommand::ShellCommand(Output output, std::size_t output_limit)
    : output_mode_(output), output_limit_(output == kCaptureOutput ? output_limit : 0) {}

ShellCommand::~ShellCommand() {
    if (child_ > 0) {
        kill_group();
        ::waitpid(child_, nullptr, 0);
    }
    close_fds();
}

bool ShellCommand::start(const char* command, const char* input, std::size_t input_size,
                         bool add_newline, const std::vector<std::string>* environment, TimeMs now,
                         std::uint32_t timeout_ms) {
    if (child_ > 0) {
        errno = EBUSY;
        return false;
    }
    // A socket rather than a pipe for its input: send(MSG_NOSIGNAL) reports
    // a command that exits without reading as EPIPE instead of raising SIGPIPE.
    int in[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0) {
        return false;
    }
    int out[2] = {-1, -1};
    if (output_mode_ == kCaptureOutput && ::pipe2(out, O_CLOEXEC) != 0) {
        const int error = errno;
        ::close(in[0]);
        ::close(in[1]);
        errno = error;
        return false;
    }
    // The daemon's environment as it is, plus the command's own variables.
    std::vector<char*> added;
    char** envp = environ;
    if (environment != nullptr && !environment->empty()) {
        for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
            added.push_back(*entry);
        }
        for (const std::string& variable : *environment) {
            added.push_back(const_cast<char*>(variable.c_str()));
        }
        added.push_back(nullptr);
        envp = added.data();
    }

    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
    posix_spawn_file_actions_adddup2(&actions, in[1], STDIN_FILENO);
    if (out[1] >= 0) {
        posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    }
    // Its own process group, so a timeout can stop whatever the shell started.
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attributes, 0);
    char shell[] = "/bin/sh";
    char flag[] = "-c";
    char* argv[] = {shell, flag, const_cast<char*>(command), nullptr};
    pid_t pid = -1;
    const int failed = ::posix_spawn(&pid, shell, &actions, &attributes, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    ::close(in[1]);
    if (out[1] >= 0) {
        ::close(out[1]);
    }
    if (failed != 0) {
        ::close(in[0]);
        if (out[0] >= 0) {
            ::close(out[0]);
        }
        errno = failed;
        return false;
    }
    if (out[0] >= 0) {
        const int flags = ::fcntl(out[0], F_GETFL);
        if (flags >= 0) {
            // Without O_NONBLOCK a read would wait for the command: only then.
            (void)::fcntl(out[0], F_SETFL, flags | O_NONBLOCK);
        }
    }
    child_ = pid;
    stdin_fd_ = in[0];
    stdout_fd_ = out[0];
    input_ = input;
    input_size_ = input_size;
    add_newline_ = add_newline;
    written_ = 0;
    output_.clear();
    overflowed_ = false;
    killed_ = false;
    deadline_ = now + timeout_ms;
    end_ = CommandEnd::kRunning;
    status_ = -1;
    return true;
}

bool ShellCommand::deadline(TimeMs* at) const {
    if (child_ <= 0 || killed_) {
        return false;
    }
    *at = deadline_;
    return true;
}

void ShellCommand::kill() {
    if (child_ > 0 && !killed_) {
        kill_group();
        killed_ = true;
    }
}

bool ShellCommand::tick(TimeMs now) {
    if (child_ <= 0) {
        return end_ != CommandEnd::kRunning;
    }
    feed();
    collect();
    if (!killed_ && time_reached(now, deadline_)) {
        kill();
    }
    if (!reap()) {
        return false;
    }
    collect();  // what it wrote just before it ended
    close_fds();
    return true;
}

void ShellCommand::feed() {
    const std::size_t total = input_size_ + (add_newline_ ? 1 : 0);
    while (stdin_fd_ >= 0 && written_ < total) {
        // The input, then its newline.
        const char* from = written_ < input_size_ ? input_ + written_ : "\n";
        const std::size_t length = written_ < input_size_ ? input_size_ - written_ : 1;
        const ssize_t sent = ::send(stdin_fd_, from, length, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent < 0 && errno == EINTR) {
            continue;
        }
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (sent < 0) {
            break;  // it stopped reading: its exit status decides
        }
        written_ += static_cast<std::size_t>(sent);
    }
    if (stdin_fd_ >= 0) {
        ::close(stdin_fd_);
        stdin_fd_ = -1;
    }
}

void ShellCommand::collect() {
    char chunk[4096];
    // Read to the end even past output_limit_: a command blocked on a full
    // pipe would otherwise never exit.
    while (stdout_fd_ >= 0) {
        const ssize_t got = ::read(stdout_fd_, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            if (got == 0) {
                ::close(stdout_fd_);
                stdout_fd_ = -1;
            }
            return;  // EAGAIN: nothing more now
        }
        const auto size = static_cast<std::size_t>(got);
        const std::size_t room = output_limit_ - output_.size();
        if (size > room) {
            overflowed_ = true;
        }
        output_.append(chunk, size < room ? size : room);
    }
}

bool ShellCommand::reap() {
    int status = 0;
    pid_t done = -1;
    do {
        done = ::waitpid(child_, &status, WNOHANG);
    } while (done < 0 && errno == EINTR);
    if (done == 0) {
        return false;
    }
    child_ = -1;
    if (done < 0) {
        end_ = CommandEnd::kLost;
        return true;
    }
    status_ = status;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        end_ = CommandEnd::kSucceeded;
    } else if (killed_) {
        end_ = CommandEnd::kTimedOut;
    } else {
        end_ = WIFEXITED(status) ? CommandEnd::kExited : CommandEnd::kSignaled;
    }
    return true;
}

void ShellCommand::kill_group() {
    // ESRCH for the group means the child has not joined it yet (a
    // posix_spawn without vfork semantics, as under qemu-user): kill the
    // child itself then.
    if (::kill(-child_, SIGKILL) != 0) {
        ::kill(child_, SIGKILL);
    }
}

void ShellCommand::close_fds() {
    if (stdin_fd_ >= 0) {
        ::close(stdin_fd_);
        stdin_fd_ = -1;
    }
    if (stdout_fd_ >= 0) {
        ::close(stdout_fd_);
        stdout_fd_ = -1;
    }
}

}  // namespace tether::daemon

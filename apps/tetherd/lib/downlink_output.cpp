#include "downlink_output.h"

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace tether::daemon {

DownlinkOutput::~DownlinkOutput() {
    if (stdin_fd_ >= 0) {
        ::close(stdin_fd_);
    }
    if (child_ > 0) {
        // The group is gone (ESRCH) only if the child has not joined it yet:
        // a posix_spawn without vfork semantics (qemu-user's emulation) can
        // return before the child's setpgid. Kill the child itself then, or
        // the waitpid below lasts as long as the command.
        if (::kill(-child_, SIGKILL) != 0) {
            ::kill(child_, SIGKILL);
        }
        ::waitpid(child_, nullptr, 0);
    }
}

Status DownlinkOutput::deliver(const char* data, std::size_t size) {
    if (command_ == nullptr) {
        if (std::memchr(data, '\n', size) != nullptr) {
            ++rejected_;
            return Status::kInvalidArgument;
        }
        return write_line(data, size);
    }
    if (size > UINT32_MAX || size + kHeader > queue_capacity_) {
        ++dropped_;
        return Status::kTooLarge;
    }
    if (size + kHeader > queue_capacity_ - queue_used_) {
        ++dropped_;
        return Status::kNoSpace;
    }
    const auto header = static_cast<std::uint32_t>(size);
    std::memcpy(queue_ + queue_used_, &header, kHeader);
    std::memcpy(queue_ + queue_used_ + kHeader, data, size);
    queue_used_ += kHeader + size;
    ++queue_count_;
    tick();
    return Status::kOk;
}

Status DownlinkOutput::write_line(const char* data, std::size_t size) {
    char newline = '\n';
    iovec parts[2] = {{const_cast<char*>(data), size}, {&newline, 1}};
    iovec* part = parts;
    int part_count = 2;
    while (part_count > 0) {
        const ssize_t wrote = ::writev(line_fd_, part, part_count);
        if (wrote < 0) {
            if (errno == EINTR) {
                continue;
            }
            // A non-blocking descriptor that is full: wait briefly rather
            // than leave half a line behind.
            pollfd ready{line_fd_, POLLOUT, 0};
            if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
                ::poll(&ready, 1, write_timeout_ms_) > 0) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == 0) {
                errno = ETIMEDOUT;
            }
            return Status::kIoError;
        }
        auto rest = static_cast<std::size_t>(wrote);
        while (part_count > 0 && rest >= part->iov_len) {
            rest -= part->iov_len;
            ++part;
            --part_count;
        }
        if (part_count > 0) {
            part->iov_base = static_cast<char*>(part->iov_base) + rest;
            part->iov_len -= rest;
        }
    }
    ++delivered_;
    return Status::kOk;
}

std::size_t DownlinkOutput::front_size() const {
    std::uint32_t size = 0;
    std::memcpy(&size, queue_, kHeader);
    return size;
}

void DownlinkOutput::pop_front() {
    const std::size_t entry = kHeader + front_size();
    std::memmove(queue_, queue_ + entry, queue_used_ - entry);
    queue_used_ -= entry;
    --queue_count_;
    written_ = 0;
}

bool DownlinkOutput::start_front() {
    // A socket rather than a pipe: send(MSG_NOSIGNAL) reports a command that
    // exits without reading its input as EPIPE instead of raising SIGPIPE.
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) {
        return false;
    }
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
    posix_spawn_file_actions_adddup2(&actions, ends[1], STDIN_FILENO);
    // Its own process group, so the destructor can stop what the shell started.
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attributes, 0);
    char shell[] = "/bin/sh";
    char flag[] = "-c";
    char* argv[] = {shell, flag, const_cast<char*>(command_), nullptr};
    pid_t pid = -1;
    const int failed = ::posix_spawn(&pid, shell, &actions, &attributes, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    ::close(ends[1]);
    if (failed != 0) {
        ::close(ends[0]);
        errno = failed;
        return false;
    }
    child_ = pid;
    stdin_fd_ = ends[0];
    written_ = 0;
    return true;
}

void DownlinkOutput::feed() {
    const std::size_t size = front_size();
    const char* message = queue_ + kHeader;
    while (written_ <= size) {
        // The message, then its newline.
        const char* from = written_ < size ? message + written_ : "\n";
        const std::size_t length = written_ < size ? size - written_ : 1;
        const ssize_t sent = ::send(stdin_fd_, from, length, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent < 0 && errno == EINTR) {
            continue;
        }
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (sent < 0) {
            break;  // the command stopped reading; it gets what it took
        }
        written_ += static_cast<std::size_t>(sent);
    }
    ::close(stdin_fd_);
    stdin_fd_ = -1;
    pop_front();
}

void DownlinkOutput::reap() {
    int status = 0;
    pid_t done = -1;
    do {
        done = ::waitpid(child_, &status, WNOHANG);
    } while (done < 0 && errno == EINTR);
    if (done == 0) {
        return;
    }
    if (done < 0) {
        status = -1;  // reaped elsewhere (a SIGCHLD handler): outcome unknown
    }
    child_ = -1;
    last_status_ = status;
    if (done > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        ++delivered_;
    } else {
        ++failed_;
    }
    if (stdin_fd_ >= 0) {
        // It exited before reading all of its input.
        ::close(stdin_fd_);
        stdin_fd_ = -1;
        pop_front();
    }
}

void DownlinkOutput::tick() {
    if (command_ == nullptr) {
        return;
    }
    for (;;) {
        if (stdin_fd_ >= 0) {
            feed();
        }
        if (child_ > 0) {
            reap();
        }
        if (child_ > 0 || queue_count_ == 0) {
            return;
        }
        if (!start_front()) {
            ++spawn_failures_;
            pop_front();
        }
    }
}

}  // namespace tether::daemon

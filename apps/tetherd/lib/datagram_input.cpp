// SPDX-License-Identifier: MIT
#include "datagram_input.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tether::daemon {

DatagramInput::~DatagramInput() {
    if (fd_ >= 0) {
        ::close(fd_);
        ::unlink(path_);
    }
}

Status DatagramInput::bind(const char* path, mode_t mode) {
    if (fd_ >= 0) {
        return Status::kUnavailable;
    }
    sockaddr_un address{};
    const std::size_t length = path == nullptr ? 0 : std::strlen(path);
    static_assert(sizeof address.sun_path <= sizeof path_, "path_ holds any socket path");
    if (length == 0 || length >= sizeof address.sun_path) {
        return Status::kInvalidArgument;
    }
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path, length + 1);

    // Only a socket is taken for a stale one; a regular file at the path is a
    // configuration mistake and is not deleted.
    struct stat existing {};
    if (::lstat(path, &existing) == 0) {
        if (!S_ISSOCK(existing.st_mode)) {
            return Status::kInvalidArgument;
        }
        ::unlink(path);
    }
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return Status::kIoError;
    }
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        const int saved = errno;
        ::close(fd);
        errno = saved;
        return Status::kIoError;
    }
    // The mode applies to the path (fchmod on a socket does not), so it is
    // set after bind; in between the path has the permissions the umask allows.
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

DatagramInput::Receive DatagramInput::receive(std::size_t* size) {
    if (fd_ < 0) {
        errno = EBADF;
        return Receive::kError;
    }
    for (;;) {
        iovec vector{buffer_, capacity_};
        msghdr message{};
        message.msg_iov = &vector;
        message.msg_iovlen = 1;
        // MSG_TRUNC makes Linux return the datagram's real length, so an
        // oversize one is recognised even when it fills the buffer exactly.
        const ssize_t got = ::recvmsg(fd_, &message, MSG_TRUNC | MSG_DONTWAIT);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno == EAGAIN || errno == EWOULDBLOCK ? Receive::kWouldBlock : Receive::kError;
        }
        const auto length = static_cast<std::size_t>(got);
        if (length > capacity_ || (message.msg_flags & MSG_TRUNC) != 0) {
            ++oversize_;
            last_oversize_size_ = length;
            return Receive::kOversize;
        }
        if (length == 0) {
            ++empty_;
            return Receive::kEmpty;
        }
        ++received_;
        *size = length;
        return Receive::kMessage;
    }
}

}  // namespace tether::daemon

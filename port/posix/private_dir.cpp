// SPDX-License-Identifier: MIT
#include "tether/port/private_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace tether::port {
namespace {

constexpr mode_t kPrivateMode = 0700;

// Writes the message (cut to fit) and returns `status`, keeping errno as the
// failing call left it.
Status say(Status status, char* message, std::size_t size, const char* format, ...)
    __attribute__((format(printf, 4, 5)));

Status say(Status status, char* message, std::size_t size, const char* format, ...) {
    const int saved_errno = errno;
    if (message != nullptr && size > 0) {
        va_list arguments;
        va_start(arguments, format);
        std::vsnprintf(message, size, format, arguments);
        va_end(arguments);
    }
    errno = saved_errno;
    return status;
}

}  // namespace

Status prepare_private_dir(const char* path, char* message, std::size_t message_size) {
    if (message != nullptr && message_size > 0) {
        message[0] = '\0';
    }
    if (path == nullptr || path[0] == '\0') {
        errno = EINVAL;
        return say(Status::kInvalidArgument, message, message_size,
                   "no private directory named (empty path)");
    }
    const bool created = ::mkdir(path, kPrivateMode) == 0;
    if (!created && errno != EEXIST) {
        return say(Status::kIoError, message, message_size, "cannot create %s: %s", path,
                   std::strerror(errno));
    }
    // lstat only words the refusal well; the descriptor below is what counts.
    struct stat named {};
    if (::lstat(path, &named) == 0 && S_ISLNK(named.st_mode)) {
        errno = ELOOP;
        return say(Status::kUnavailable, message, message_size,
                   "%s is a symbolic link (a private directory must not be one)", path);
    }
    const int fd = ::open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOTDIR) {
            return say(Status::kUnavailable, message, message_size, "%s is not a directory", path);
        }
        if (errno == ELOOP) {
            return say(Status::kUnavailable, message, message_size,
                       "%s is a symbolic link (a private directory must not be one)", path);
        }
        return say(Status::kIoError, message, message_size, "cannot open %s: %s", path,
                   std::strerror(errno));
    }
    struct stat info {};
    Status status = Status::kOk;
    if (::fstat(fd, &info) != 0) {
        status = say(Status::kIoError, message, message_size, "cannot open %s: %s", path,
                     std::strerror(errno));
    } else if (!S_ISDIR(info.st_mode)) {
        errno = ENOTDIR;
        status = say(Status::kUnavailable, message, message_size, "%s is not a directory", path);
    } else if (info.st_uid != ::geteuid()) {
        errno = EPERM;
        status = say(Status::kUnavailable, message, message_size,
                     "%s is owned by uid %u, not by this process (uid %u)", path,
                     static_cast<unsigned>(info.st_uid), static_cast<unsigned>(::geteuid()));
    } else if ((info.st_mode & 07777) != kPrivateMode) {
        // On the descriptor: the directory checked is the one changed. A
        // directory just made only lost bits to the umask: nothing to report.
        if (::fchmod(fd, kPrivateMode) != 0) {
            status = say(Status::kIoError, message, message_size, "cannot set the mode of %s: %s",
                         path, std::strerror(errno));
        } else if (!created) {
            status = say(Status::kOk, message, message_size, "%s was mode %04o; now 0700", path,
                         static_cast<unsigned>(info.st_mode & 07777));
        }
    }
    const int saved_errno = errno;
    ::close(fd);
    errno = saved_errno;
    return status;
}

}  // namespace tether::port

// SPDX-License-Identifier: MIT
#include "atomic_write.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace tether::daemon {
namespace {

bool write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t written = ::write(fd, data, size);
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        data += written;
        size -= static_cast<std::size_t>(written);
    }
    return true;
}

Status replace(const std::string& path, const char* data, std::size_t size, mode_t mode) {
    const std::string temporary = path + ".tmp";
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        return Status::kIoError;
    }
    // fchmod because open() applied the umask, and a reader such as
    // node_exporter runs as another user.
    bool ok = ::fchmod(fd, mode) == 0 && write_all(fd, data, size) && ::fsync(fd) == 0;
    int error = ok ? 0 : errno;
    if (::close(fd) != 0 && ok) {
        ok = false;
        error = errno;
    }
    if (ok && std::rename(temporary.c_str(), path.c_str()) == 0) {
        return Status::kOk;
    }
    error = ok ? errno : error;
    ::unlink(temporary.c_str());
    errno = error;
    return Status::kIoError;
}

}  // namespace

Status write_file_atomically(const std::string& path, const std::string& contents, mode_t mode) {
    return replace(path, contents.data(), contents.size(), mode);
}

Status write_file_durably(const std::string& path, const char* data, std::size_t size,
                          mode_t mode) {
    if (replace(path, data, size, mode) != Status::kOk) {
        return Status::kIoError;
    }
    const std::size_t slash = path.rfind('/');
    return sync_directory(slash == std::string::npos ? std::string(".")
                          : slash == 0               ? std::string("/")
                                                     : path.substr(0, slash));
}

Status sync_directory(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return Status::kIoError;
    }
    const bool ok = ::fsync(fd) == 0;
    const int error = errno;
    ::close(fd);
    if (!ok) {
        errno = error;
        return Status::kIoError;
    }
    return Status::kOk;
}

}  // namespace tether::daemon

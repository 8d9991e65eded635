// SPDX-License-Identifier: MIT
#include "state_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace tether::cat {
namespace {

bool write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t wrote = ::write(fd, data, size);
        if (wrote < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        data += wrote;
        size -= static_cast<std::size_t>(wrote);
    }
    return true;
}

bool sync_directory_of(const char* path) {
    char directory[4096];
    const char* slash = std::strrchr(path, '/');
    if (slash == nullptr) {
        std::snprintf(directory, sizeof directory, ".");
    } else if (slash == path) {
        std::snprintf(directory, sizeof directory, "/");
    } else {
        std::snprintf(directory, sizeof directory, "%.*s", static_cast<int>(slash - path), path);
    }
    const int fd = ::open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    const bool synced = ::fsync(fd) == 0;
    const int saved = errno;
    ::close(fd);
    errno = saved;
    return synced;
}

bool stat_of(const char* path, struct stat* out) {
    return ::stat(path, out) == 0;
}

}  // namespace

bool write_desired_file(const char* path, std::uint64_t version, const char* document,
                        std::size_t size) {
    char temporary[4096];
    if (std::snprintf(temporary, sizeof temporary, "%s.tmp", path) >=
        static_cast<int>(sizeof temporary)) {
        errno = ENAMETOOLONG;
        return false;
    }
    const int fd = ::open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return false;
    }
    char head[64];
    const int head_size =
        std::snprintf(head, sizeof head, "{\"version\":%" PRIu64 ",\"desired\":", version);
    bool ok = head_size > 0 && write_all(fd, head, static_cast<std::size_t>(head_size)) &&
              write_all(fd, document, size) && write_all(fd, "}\n", 2) && ::fsync(fd) == 0;
    int saved = errno;
    ok = ::close(fd) == 0 && ok;
    if (ok && ::rename(temporary, path) != 0) {
        ok = false;
        saved = errno;
    }
    if (!ok) {
        ::unlink(temporary);
        errno = saved;
        return false;
    }
    return sync_directory_of(path);
}

bool WatchedFile::changed() const {
    struct stat now {};
    if (!stat_of(path_, &now)) {
        return false;  // absent: nothing new to report (the last report stands)
    }
    return !seen_ || now.st_dev != device_ || now.st_ino != inode_ || now.st_size != size_ ||
           now.st_mtim.tv_sec != mtime_s_ || now.st_mtim.tv_nsec != mtime_ns_;
}

long WatchedFile::read(char* out, std::size_t capacity) {
    const int fd = ::open(path_, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    struct stat before {};
    if (::fstat(fd, &before) != 0) {
        const int saved = errno;
        ::close(fd);
        errno = saved;
        return -1;
    }
    // Remembered even when the read fails below: a bad file is reported
    // once per change, not once per poll.
    seen_ = true;
    device_ = before.st_dev;
    inode_ = before.st_ino;
    size_ = before.st_size;
    mtime_s_ = before.st_mtim.tv_sec;
    mtime_ns_ = before.st_mtim.tv_nsec;
    std::size_t total = 0;
    for (;;) {
        if (total == capacity) {
            char extra = 0;
            const ssize_t more = ::read(fd, &extra, 1);
            ::close(fd);
            if (more > 0) {
                errno = EFBIG;
                return -1;
            }
            return static_cast<long>(total);
        }
        const ssize_t got = ::read(fd, out + total, capacity - total);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            const int saved = errno;
            ::close(fd);
            errno = saved;
            return -1;
        }
        if (got == 0) {
            ::close(fd);
            return static_cast<long>(total);
        }
        total += static_cast<std::size_t>(got);
    }
}

}  // namespace tether::cat

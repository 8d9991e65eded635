// SPDX-License-Identifier: MIT
#include "tether/port/file_storage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

namespace tether::port {
namespace {

constexpr mode_t kFileMode = 0600;  // the record may name a user's session

// Runs fsync again when a signal interrupted it.
bool fsync_uninterrupted(int fd) {
    int result = ::fsync(fd);
    while (result != 0 && errno == EINTR) {
        result = ::fsync(fd);
    }
    return result == 0;
}

// fsync of the directory holding the file, so a newly created name is durable
// and not just the file's contents. `path` is a private copy of the file's
// path, cut down in place to its directory: no heap, and no dirname().
bool sync_parent_directory(char* path) {
    char* const slash = std::strrchr(path, '/');
    const char* directory = ".";
    if (slash != nullptr) {
        // Keep the slash itself when it is the root.
        slash[slash == path ? 1 : 0] = '\0';
        directory = path;
    }
    const int fd = ::open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    const bool synced = fsync_uninterrupted(fd);
    const int saved_errno = errno;
    ::close(fd);
    errno = saved_errno;
    return synced;
}

// Never through a symbolic link (ELOOP), never a controlling terminal, and
// non-blocking so that opening a FIFO returns at once (open() then refuses
// it; a regular file ignores the flag, which is cleared all the same).
constexpr int kOpenFlags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK;

// Opens an existing file, or creates it exclusively; *created tells which, so
// the directory is synced exactly when a new name appeared. A dangling
// symbolic link fails the first open with ENOENT and the exclusive create
// with EEXIST; O_NOFOLLOW turns the next round's ENOENT into ELOOP, so the
// loop ends.
int open_or_create(const char* path, bool* created) {
    *created = false;
    for (;;) {
        int fd = ::open(path, kOpenFlags);
        if (fd >= 0 || errno != ENOENT) {
            return fd;
        }
        fd = ::open(path, kOpenFlags | O_CREAT | O_EXCL, kFileMode);
        if (fd >= 0) {
            *created = true;
            return fd;
        }
        if (errno != EEXIST) {
            return -1;
        }
        // Another process created it between the two calls: open that one.
    }
}

bool is_symbolic_link(const char* path) {
    struct stat info {};
    return ::lstat(path, &info) == 0 && S_ISLNK(info.st_mode);
}

// Why an opened descriptor is not ours to write: nullptr when it is a regular
// file owned by the effective user; otherwise the refusal, with *error_number.
const char* refusal_of(int fd, int* error_number) {
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
        *error_number = errno;
        return nullptr;
    }
    if (!S_ISREG(info.st_mode)) {
        *error_number = S_ISDIR(info.st_mode) ? EISDIR : EINVAL;
        return "is not a regular file";
    }
    if (info.st_uid != ::geteuid()) {
        *error_number = EPERM;
        return "is owned by another user";
    }
    *error_number = 0;
    return nullptr;
}

}  // namespace

FileStorage::~FileStorage() {
    close();
}

Status FileStorage::fail_open(int error_number, const char* refusal) {
    open_errno_ = error_number != 0 ? error_number : EIO;
    open_refusal_ = refusal != nullptr ? refusal : "";
    errno = open_errno_;
    return Status::kIoError;
}

const char* FileStorage::open_error() const {
    if (open_errno_ == 0) {
        return "";
    }
    return open_refusal_[0] != '\0' ? open_refusal_ : std::strerror(open_errno_);
}

Status FileStorage::open(const char* path) {
    close();
    if (path == nullptr) {
        return fail_open(EINVAL, nullptr);
    }
    // Checked before anything is created, so a name too long to sync the
    // directory of never leaves a file behind.
    char path_copy[PATH_MAX];
    const std::size_t length = std::strlen(path);
    if (length >= sizeof path_copy) {
        return fail_open(ENAMETOOLONG, nullptr);
    }
    std::memcpy(path_copy, path, length + 1);
    bool created = false;
    const int fd = open_or_create(path, &created);
    if (fd < 0) {
        const int saved_errno = errno;
        return fail_open(saved_errno, saved_errno == ELOOP && is_symbolic_link(path)
                                          ? "is a symbolic link"
                                          : nullptr);
    }
    int error_number = 0;
    const char* refusal = refusal_of(fd, &error_number);
    if (error_number == 0) {
        const int flags = ::fcntl(fd, F_GETFL);
        if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
            error_number = errno;
        }
    }
    // The umask may have removed bits from kFileMode; set it exactly.
    if (error_number == 0 && created &&
        (::fchmod(fd, kFileMode) != 0 || !sync_parent_directory(path_copy))) {
        error_number = errno;
    }
    if (error_number != 0) {
        ::close(fd);
        return fail_open(error_number, refusal);
    }
    open_errno_ = 0;
    open_refusal_ = "";
    fd_ = fd;
    return Status::kOk;
}

void FileStorage::close() {
    if (fd_ >= 0) {
        // Not retried on EINTR: on Linux the descriptor is gone either way.
        ::close(fd_);
        fd_ = -1;
    }
}

Status FileStorage::read_file(std::uint32_t offset, std::uint8_t* out, std::size_t size,
                              std::size_t* read_size) {
    *read_size = 0;
    if (fd_ < 0) {
        errno = EBADF;
        return Status::kIoError;
    }
    std::size_t done = 0;
    while (done < size) {
        const ssize_t got = ::pread(fd_, out + done, size - done,
                                    static_cast<off_t>(offset) + static_cast<off_t>(done));
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            return Status::kIoError;
        }
        if (got == 0) {
            break;  // end of file
        }
        done += static_cast<std::size_t>(got);
        *read_size = done;
    }
    return Status::kOk;
}

Status FileStorage::write_file(std::uint32_t offset, const std::uint8_t* data, std::size_t size) {
    if (fd_ < 0) {
        errno = EBADF;
        return Status::kIoError;
    }
    std::size_t done = 0;
    while (done < size) {
        const ssize_t put = ::pwrite(fd_, data + done, size - done,
                                     static_cast<off_t>(offset) + static_cast<off_t>(done));
        if (put < 0) {
            if (errno == EINTR) {
                continue;
            }
            return Status::kIoError;
        }
        if (put == 0) {
            // No progress and no error: retrying would spin forever.
            errno = EIO;
            return Status::kIoError;
        }
        done += static_cast<std::size_t>(put);
    }
    return Status::kOk;
}

Status FileStorage::sync_file() {
    if (fd_ < 0) {
        errno = EBADF;
        return Status::kIoError;
    }
    // fsync rather than fdatasync, which not every libc offers; the file is
    // tiny, so flushing its metadata too costs nothing measurable.
    return fsync_uninterrupted(fd_) ? Status::kOk : Status::kIoError;
}

// Each call remembers errno when it fails, for last_error().
Status FileStorage::read(std::uint32_t offset, std::uint8_t* out, std::size_t size,
                         std::size_t* read_size) {
    return remember(read_file(offset, out, size, read_size));
}

Status FileStorage::write(std::uint32_t offset, const std::uint8_t* data, std::size_t size) {
    return remember(write_file(offset, data, size));
}

Status FileStorage::sync() {
    return remember(sync_file());
}

Status FileStorage::remember(Status status) {
    if (status != Status::kOk) {
        last_error_ = errno;
    }
    return status;
}

}  // namespace tether::port

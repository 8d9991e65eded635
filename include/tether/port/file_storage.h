// SPDX-License-Identifier: MIT
// A Storage backed by one file, for the persistent state record and the spool.
//
// The file lives in a directory the daemon owns (port/private_dir.h), but
// open() does not trust that: it never follows a symbolic link, opens only a
// regular file, and only one owned by the effective user, so a link or file
// planted by another user cannot redirect the writes.
#pragma once

#include "tether/storage.h"

namespace tether::port {

class FileStorage final : public Storage {
  public:
    FileStorage() = default;
    ~FileStorage() override;
    FileStorage(const FileStorage&) = delete;
    FileStorage& operator=(const FileStorage&) = delete;

    /// Opens (creating with mode 0600 if absent) the file at `path`. When the
    /// file is created, its directory is fsynced too, so the new name survives
    /// a power cut. A file already open is closed first. Refused, with
    /// kIoError, when the last component of `path` is a symbolic link (errno
    /// ELOOP, even a dangling one), when it is not a regular file (EISDIR for
    /// a directory, EINVAL for a FIFO, device or socket; opened non-blocking,
    /// so a FIFO cannot stall the caller) and when it belongs to another user
    /// than the effective one (EPERM). Returns kOk, or kIoError with errno set
    /// (EINVAL for a null path) and open_error() saying why in words.
    Status open(const char* path);
    /// Why the last open() failed, for the log: "" after a success, "is a
    /// symbolic link", "is not a regular file", "is owned by another user",
    /// or the strerror() text of the failing system call.
    const char* open_error() const;
    /// Closes the file, if open. Further read/write/sync return kIoError.
    void close();
    bool is_open() const { return fd_ >= 0; }

    // The Storage contract; each returns kIoError (errno EBADF) while closed.
    // read() and write() loop over short transfers and EINTR; sync() is fsync.
    Status read(std::uint32_t offset, std::uint8_t* out, std::size_t size,
                std::size_t* read_size) override;
    Status write(std::uint32_t offset, const std::uint8_t* data, std::size_t size) override;
    Status sync() override;
    /// errno of the last failed read, write or sync (ENOSPC, EROFS, EIO...).
    int last_error() const override { return last_error_; }

  private:
    Status fail_open(int error_number, const char* refusal);
    Status read_file(std::uint32_t offset, std::uint8_t* out, std::size_t size,
                     std::size_t* read_size);
    Status write_file(std::uint32_t offset, const std::uint8_t* data, std::size_t size);
    Status sync_file();
    Status remember(Status status);

    int fd_ = -1;
    int last_error_ = 0;
    int open_errno_ = 0;             // 0 after a successful open()
    const char* open_refusal_ = "";  // set when open() refused the file itself
};

}  // namespace tether::port

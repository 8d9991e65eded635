// A Storage backed by one file, for the persistent state record.
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
    /// a power cut. A file already open is closed first. Returns kOk, or
    /// kIoError (errno is left for the caller's log; EINVAL for a null path).
    Status open(const char* path);
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
    Status read_file(std::uint32_t offset, std::uint8_t* out, std::size_t size,
                     std::size_t* read_size);
    Status write_file(std::uint32_t offset, const std::uint8_t* data, std::size_t size);
    Status sync_file();
    Status remember(Status status);

    int fd_ = -1;
    int last_error_ = 0;
};

}  // namespace tether::port

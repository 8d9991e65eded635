// SPDX-License-Identifier: MIT
// tether-cat's device-state files (--desired-out, --report-file): the desired
// document written atomically for a shell user to read, and a file whose
// JSON object is the device's reported state.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace tether::cat {

/// Replaces `path` with `{"version":N,"desired":<document>}` and a newline so
/// that a reader sees the old file or the new one, never a mix, and the new
/// one survives a power cut once this returns true: written to "<path>.tmp"
/// (mode 0600), fsynced, renamed over `path`, then the directory fsynced.
/// False with errno set (the temporary removed) when any step failed.
bool write_desired_file(const char* path, std::uint64_t version, const char* document,
                        std::size_t size);

/// Watches one file by polling: changed() is true when its identity, size or
/// modification time differ from the last read() (and at the first call while
/// it exists).
class WatchedFile {
  public:
    explicit WatchedFile(const char* path) : path_(path) {}
    bool changed() const;
    /// Reads the whole file into `out` (at most `capacity` bytes) and
    /// remembers what changed() compares. Returns the size, or -1 with errno
    /// (EFBIG when it holds more than `capacity` bytes).
    long read(char* out, std::size_t capacity);
    const char* path() const { return path_; }

  private:
    const char* path_;
    bool seen_ = false;
    dev_t device_ = 0;
    ino_t inode_ = 0;
    off_t size_ = 0;
    long long mtime_s_ = 0;
    long long mtime_ns_ = 0;
};

}  // namespace tether::cat

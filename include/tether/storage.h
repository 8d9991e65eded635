// SPDX-License-Identifier: MIT
// The byte store behind the persistent state record (and later the spool).
//
// Implemented by port/posix (a file written with pwrite and fsync) and by a
// fake in tests that simulates torn writes and bit flips. Offsets are bytes
// from the start of the store.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/status.h"

namespace tether {

class Storage {
  public:
    virtual ~Storage() = default;

    /// Reads up to `size` bytes at `offset` into `out`; *read_size receives how
    /// many were read (fewer at the end of the store, 0 beyond it).
    /// Returns kOk or kIoError.
    virtual Status read(std::uint32_t offset, std::uint8_t* out, std::size_t size,
                        std::size_t* read_size) = 0;

    /// Writes `size` bytes at `offset`, growing the store as needed. Not durable
    /// until sync() returns kOk. Returns kOk or kIoError.
    virtual Status write(std::uint32_t offset, const std::uint8_t* data, std::size_t size) = 0;

    /// Makes every write so far durable (fsync). Returns kOk or kIoError.
    virtual Status sync() = 0;

    /// Why the last call that returned kIoError failed: the operating
    /// system's error number (ENOSPC, EROFS, EIO...) where there is one, so a
    /// caller can say so once; 0 when unknown.
    virtual int last_error() const { return 0; }
};

}  // namespace tether

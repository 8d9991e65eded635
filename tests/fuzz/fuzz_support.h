// SPDX-License-Identifier: MIT
// Helpers shared by the libFuzzer targets: a chunking schedule drawn from the
// input itself, so one corpus entry also explores how its bytes are split,
// and an in-memory Storage over the input bytes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tether/crc32.h"
#include "tether/storage.h"

namespace tether::fuzz {

/// Chunk sizes 1..limit from a small xorshift generator; the seed is taken
/// from the front of the input so the fuzzer controls the split.
class Chunker {
  public:
    Chunker(std::uint32_t seed, std::size_t limit) : state_(seed | 1u), limit_(limit) {}
    std::size_t next() {
        state_ ^= state_ << 13;
        state_ ^= state_ >> 17;
        state_ ^= state_ << 5;
        return 1 + state_ % limit_;
    }

  private:
    std::uint32_t state_;
    std::size_t limit_;
};

/// Takes the first four bytes as a seed (0 when the input is shorter).
inline std::uint32_t take_seed(const std::uint8_t** data, std::size_t* size) {
    std::uint32_t seed = 0;
    const std::size_t n = std::min<std::size_t>(*size, 4);
    for (std::size_t i = 0; i < n; ++i) {
        seed = (seed << 8) | (*data)[i];
    }
    *data += n;
    *size -= n;
    return seed;
}

/// Little-endian helpers for the CRC repair below.
inline std::uint32_t load_u32(const std::uint8_t* p) {
    return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
           static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}
inline void store_u32(std::uint8_t* p, std::uint32_t value) {
    for (int i = 0; i < 4; ++i) {
        p[i] = static_cast<std::uint8_t>(value >> (8 * i));
    }
}

/// Rewrites the CRC-32 at `crc_offset` of a `size`-byte block to cover bytes
/// [0, crc_offset), when the block lies wholly inside `bytes`. Random mutations
/// almost never keep a CRC valid; repairing it lets them reach the checks
/// behind it.
inline void repair_block_crc(std::vector<std::uint8_t>* bytes, std::size_t at, std::size_t size,
                             std::size_t crc_offset) {
    if (bytes->size() >= at + size) {
        store_u32(bytes->data() + at + crc_offset, crc32(bytes->data() + at, crc_offset));
    }
}

/// A store holding the fuzz input, growing on writes up to `limit` bytes.
class MemoryStorage final : public Storage {
  public:
    MemoryStorage(const std::uint8_t* data, std::size_t size, std::size_t limit)
        : bytes_(data, data + std::min(size, limit)), limit_(limit) {}

    Status read(std::uint32_t offset, std::uint8_t* out, std::size_t size,
                std::size_t* read_size) override {
        std::size_t n = 0;
        if (offset < bytes_.size()) {
            n = std::min(size, bytes_.size() - offset);
            std::memcpy(out, bytes_.data() + offset, n);
        }
        *read_size = n;
        return Status::kOk;
    }
    Status write(std::uint32_t offset, const std::uint8_t* data, std::size_t size) override {
        if (offset > limit_ || size > limit_ - offset) {
            return Status::kIoError;
        }
        if (bytes_.size() < offset + size) {
            bytes_.resize(offset + size);
        }
        std::memcpy(bytes_.data() + offset, data, size);
        return Status::kOk;
    }
    Status sync() override { return Status::kOk; }
    std::vector<std::uint8_t>* bytes() { return &bytes_; }

  private:
    std::vector<std::uint8_t> bytes_;
    std::size_t limit_;
};

}  // namespace tether::fuzz

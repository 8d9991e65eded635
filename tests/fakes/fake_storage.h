// An in-memory Storage that can misbehave on cue: failed calls, writes torn
// by a power cut, bit rot, truncation, and crashes that lose unsynced writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tether/storage.h"

namespace tether::test {

class FakeStorage final : public Storage {
  public:
    Status read(std::uint32_t offset, std::uint8_t* out, std::size_t size,
                std::size_t* read_size) override;
    Status write(std::uint32_t offset, const std::uint8_t* data, std::size_t size) override;
    Status sync() override;

    /// The next call of that kind returns kIoError and changes nothing.
    void fail_next_read() { fail_next_read_ = true; }
    void fail_next_write() { fail_next_write_ = true; }
    void fail_next_sync() { fail_next_sync_ = true; }

    /// The next write lands only its first `landed_bytes` bytes, then returns
    /// `reported` (kIoError, or kOk for a device that lied). Like any write,
    /// the landed bytes are lost by crash() unless synced.
    void tear_next_write(std::size_t landed_bytes, Status reported);

    /// Flips bit `bit` (0 = least significant) of byte `offset`, in both the
    /// current and the durable contents: damage already on the medium.
    void flip_bit(std::size_t offset, unsigned bit);

    /// Cuts (or zero-extends) the current and durable contents to `length`.
    void truncate(std::size_t length);

    /// Power loss: everything written since the last successful sync is gone.
    void crash() { current_ = durable_; }

    /// Replaces the contents outright, as if synced.
    void set_contents(const std::vector<std::uint8_t>& bytes);

    const std::vector<std::uint8_t>& contents() const { return current_; }
    const std::vector<std::uint8_t>& durable_contents() const { return durable_; }

    std::size_t sync_count() const { return sync_count_; }    ///< successful syncs
    std::size_t write_count() const { return write_count_; }  ///< write calls, failed too
    std::size_t read_count() const { return read_count_; }    ///< read calls, failed too

  private:
    std::vector<std::uint8_t> current_;
    std::vector<std::uint8_t> durable_;
    bool fail_next_read_ = false;
    bool fail_next_write_ = false;
    bool fail_next_sync_ = false;
    bool tear_next_write_ = false;
    std::size_t tear_landed_bytes_ = 0;
    Status tear_reported_ = Status::kOk;
    std::size_t sync_count_ = 0;
    std::size_t write_count_ = 0;
    std::size_t read_count_ = 0;
};

}  // namespace tether::test

// SPDX-License-Identifier: MIT
// An in-memory Storage that can misbehave on cue: failed calls, writes torn
// by a power cut, bit rot, truncation, and crashes that lose or tear any
// write not yet synced.
//
// The crash model. The fake keeps the durable contents (what the medium held
// at the last successful sync) and the list of writes made since, in order,
// as they landed. A power cut keeps any subset of those writes and may tear
// any kept one to a prefix: the medium then holds the durable contents with
// the kept writes applied in their order. That covers a page cache that
// writes pages back in any order and a device that stops in the middle of a
// write; it does not model a sector that lands inside a write's span while an
// earlier sector of it is lost (a torn write here is always a prefix).
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

    /// Cuts (or zero-extends) the current and durable contents to `length`
    /// and forgets the unsynced writes: a crash() then leaves the durable
    /// contents, cut the same way.
    void truncate(std::size_t length);

    /// A write made since the last successful sync, as it landed.
    struct Write {
        std::uint32_t offset;
        std::vector<std::uint8_t> data;
    };
    /// What a power cut leaves of the unsynced writes.
    struct CrashPattern {
        static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
        std::vector<bool> kept;      ///< one per unsynced write; absent entries are lost
        std::size_t torn = kNone;    ///< index of a kept write that lands only a prefix
        std::size_t torn_bytes = 0;  ///< bytes of that prefix
    };

    /// The writes since the last successful sync (or set_contents()), in order.
    const std::vector<Write>& unsynced_writes() const { return unsynced_; }

    /// Listing the unsynced writes allocates; a test that counts allocations
    /// turns it off, and a crash then loses every unsynced write.
    void list_unsynced_writes(bool enabled) { list_unsynced_ = enabled; }

    /// Power loss: everything written since the last successful sync is gone.
    void crash() { crash(CrashPattern()); }

    /// Power loss keeping the writes `pattern` names (see the file comment).
    /// Afterwards the contents are what the medium holds: durable, nothing
    /// unsynced. A kept write that lands beyond the end of the store grows it,
    /// zero-filling what lost writes would have covered.
    void crash(const CrashPattern& pattern);

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
    std::vector<Write> unsynced_;
    bool list_unsynced_ = true;
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

// SPDX-License-Identifier: MIT
#include "fakes/fake_storage.h"

#include <algorithm>
#include <utility>

namespace tether::test {

Status FakeStorage::read(std::uint32_t offset, std::uint8_t* out, std::size_t size,
                         std::size_t* read_size) {
    ++read_count_;
    *read_size = 0;
    if (fail_next_read_) {
        fail_next_read_ = false;
        return Status::kIoError;
    }
    if (offset >= current_.size()) {
        return Status::kOk;
    }
    const std::size_t available = std::min(size, current_.size() - offset);
    std::copy_n(current_.begin() + static_cast<std::ptrdiff_t>(offset), available, out);
    *read_size = available;
    return Status::kOk;
}

Status FakeStorage::write(std::uint32_t offset, const std::uint8_t* data, std::size_t size) {
    ++write_count_;
    if (fail_next_write_) {
        fail_next_write_ = false;
        return Status::kIoError;
    }
    std::size_t landed = size;
    Status reported = Status::kOk;
    if (tear_next_write_) {
        tear_next_write_ = false;
        landed = std::min(size, tear_landed_bytes_);
        reported = tear_reported_;
    }
    if (landed > 0 && current_.size() < offset + landed) {
        current_.resize(offset + landed, 0);
    }
    std::copy_n(data, landed, current_.begin() + static_cast<std::ptrdiff_t>(offset));
    if (landed > 0 && list_unsynced_) {
        unsynced_.push_back(Write{offset, std::vector<std::uint8_t>(data, data + landed)});
    }
    return reported;
}

Status FakeStorage::sync() {
    if (fail_next_sync_) {
        fail_next_sync_ = false;
        return Status::kIoError;
    }
    durable_ = current_;
    unsynced_.clear();
    ++sync_count_;
    return Status::kOk;
}

void FakeStorage::tear_next_write(std::size_t landed_bytes, Status reported) {
    tear_next_write_ = true;
    tear_landed_bytes_ = landed_bytes;
    tear_reported_ = reported;
}

void FakeStorage::flip_bit(std::size_t offset, unsigned bit) {
    const auto mask = static_cast<std::uint8_t>(1u << bit);
    if (offset < current_.size()) {
        current_[offset] ^= mask;
    }
    if (offset < durable_.size()) {
        durable_[offset] ^= mask;
    }
}

void FakeStorage::truncate(std::size_t length) {
    current_.resize(length, 0);
    durable_.resize(length, 0);
    unsynced_.clear();
}

void FakeStorage::set_contents(const std::vector<std::uint8_t>& bytes) {
    current_ = bytes;
    durable_ = bytes;
    unsynced_.clear();
}

void FakeStorage::crash(const CrashPattern& pattern) {
    std::vector<std::uint8_t> medium = durable_;
    for (std::size_t i = 0; i < unsynced_.size() && i < pattern.kept.size(); ++i) {
        if (!pattern.kept[i]) {
            continue;
        }
        const Write& write = unsynced_[i];
        const std::size_t landed =
            i == pattern.torn ? std::min(pattern.torn_bytes, write.data.size()) : write.data.size();
        if (landed == 0) {
            continue;
        }
        if (medium.size() < write.offset + landed) {
            medium.resize(write.offset + landed, 0);
        }
        std::copy_n(write.data.begin(), landed,
                    medium.begin() + static_cast<std::ptrdiff_t>(write.offset));
    }
    current_ = medium;
    durable_ = std::move(medium);
    unsynced_.clear();
}

}  // namespace tether::test

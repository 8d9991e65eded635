// SPDX-License-Identifier: MIT
// Spool::recover over an in-memory store holding the input (a 4 KiB spool:
// header block and two regions), then an append, an ack and a flush on what
// was recovered, and a second recovery that must find no damage. When the
// first byte is odd, it is dropped and the CRCs of both header slots and of
// every record in both regions are repaired (layout: include/tether/spool.h),
// so mutated fields get past the checksums.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_support.h"
#include "tether/spool.h"

namespace {

constexpr std::uint32_t kMaxBytes = 4096;
constexpr std::size_t kRegionSize = (kMaxBytes - tether::Spool::kHeaderBlockSize) / 2;

void repair_crcs(std::vector<std::uint8_t>* bytes) {
    for (std::size_t slot = 0; slot < 2; ++slot) {
        tether::fuzz::repair_block_crc(bytes, slot * 64, 64, 60);
    }
    for (std::size_t region = 0; region < 2; ++region) {
        const std::size_t begin = tether::Spool::kHeaderBlockSize + region * kRegionSize;
        const std::size_t end = std::min(begin + kRegionSize, bytes->size());
        std::size_t at = begin;
        while (at + tether::Spool::kRecordOverhead <= end && (*bytes)[at] != 0) {
            const std::size_t length = tether::fuzz::load_u32(bytes->data() + at + 4);
            if (length > end - at - tether::Spool::kRecordOverhead) {
                break;
            }
            std::uint8_t* record = bytes->data() + at;
            const std::uint32_t crc = tether::crc32(record + tether::Spool::kRecordOverhead, length,
                                                    tether::crc32(record, 16));
            tether::fuzz::store_u32(record + 16, crc);
            at += tether::Spool::kRecordOverhead + length;
        }
    }
}

struct Replay {
    std::size_t messages = 0;
    std::uint64_t last_seq = 0;
    std::size_t bytes = 0;
};

void visit(void* ctx, std::uint64_t seq, const std::uint8_t* data, std::size_t size) {
    auto* replay = static_cast<Replay*>(ctx);
    if (size > 0) {
        (void)data[0];
        (void)data[size - 1];
    }
    if (seq <= replay->last_seq && replay->messages > 0) {
        __builtin_trap();  // replay is in seq order
    }
    replay->messages += 1;
    replay->last_seq = seq;
    replay->bytes += size;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tether;
    if (size == 0) {
        return 0;
    }
    const bool repair = (data[0] & 1u) != 0;
    fuzz::MemoryStorage storage(data + 1, size - 1, kMaxBytes);
    if (repair) {
        repair_crcs(storage.bytes());
    }
    static std::uint8_t buffer[512];
    SpoolConfig config;
    config.max_bytes = kMaxBytes;
    config.min_compact_bytes = 256;
    SpoolRecovery report;
    Replay replay;
    {
        Spool spool(storage, buffer, sizeof buffer, config);
        const Status status = spool.recover(visit, &replay, &report);
        if (status != Status::kOk) {
            return 0;  // e.g. a record larger than the buffer, or a migration past 4 KiB
        }
        if (replay.messages != report.messages) {
            __builtin_trap();
        }
        const std::uint8_t payload[] = {'f', 'u', 'z', 'z'};
        const std::uint64_t seq = report.highest_seq + 1;
        if (seq != 0 && spool.append(seq, payload, sizeof payload) == Status::kOk) {
            (void)spool.ack(report.acked_through);
            if (spool.flush(0) != Status::kOk || spool.sync() != Status::kOk) {
                __builtin_trap();
            }
        }
    }
    Spool again(storage, buffer, sizeof buffer, config);
    SpoolRecovery second;
    Replay replay2;
    if (again.recover(visit, &replay2, &second) != Status::kOk || second.damaged) {
        __builtin_trap();  // what the spool wrote itself must read back intact
    }
    return 0;
}

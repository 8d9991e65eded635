// SPDX-License-Identifier: MIT
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "fakes/fake_storage.h"
#include "support/alloc_counter.h"
#include "support/temp_dir.h"
#include "support/tether_strings.h"
#include "tether/crc32.h"
#include "tether/outbox.h"
#include "tether/port/file_storage.h"
#include "tether/spool.h"

// After the standard headers: its operator-new macro breaks some of them.
#include <CppUTest/TestHarness.h>

using tether::Spool;
using tether::SpoolConfig;
using tether::SpoolRecovery;
using tether::Status;
using tether::Storage;
using tether::test::FakeStorage;
using Bytes = std::vector<std::uint8_t>;

namespace {

constexpr std::size_t kBufferSize = 512;

struct Replayed {
    std::vector<std::uint64_t> seqs;
    std::vector<Bytes> payloads;
};

void collect(void* ctx, std::uint64_t seq, const std::uint8_t* data, std::size_t size) {
    auto* replayed = static_cast<Replayed*>(ctx);
    replayed->seqs.push_back(seq);
    replayed->payloads.emplace_back(data, data + size);
}

Bytes payload_for(std::uint64_t seq, std::size_t size) {
    Bytes bytes(size);
    for (std::size_t i = 0; i < size; ++i) {
        bytes[i] = static_cast<std::uint8_t>(seq * 31u + i * 7u + 1u);
    }
    return bytes;
}

std::size_t size_for(std::uint64_t seq) {
    return static_cast<std::size_t>(10u + seq % 40u);
}

SpoolConfig small_config(std::uint32_t max_bytes = 16384) {
    SpoolConfig config;
    config.max_bytes = max_bytes;
    config.min_compact_bytes = 256;
    return config;
}

// One spool over a store, with its own buffer, as after a restart.
struct Opened {
    Opened(Storage& storage, const SpoolConfig& config, std::size_t buffer_size = kBufferSize)
        : buffer(buffer_size), spool(storage, buffer.data(), buffer.size(), config) {}
    Status recover() { return spool.recover(collect, &replayed, &report); }
    Status append(std::uint64_t seq) {
        const Bytes data = payload_for(seq, size_for(seq));
        return spool.append(seq, data.data(), data.size());
    }
    Bytes buffer;
    Spool spool;
    Replayed replayed;
    SpoolRecovery report;
};

void check_replayed(const Replayed& replayed, std::uint64_t first, std::uint64_t last) {
    UNSIGNED_LONGS_EQUAL(last + 1 - first, replayed.seqs.size());
    for (std::size_t i = 0; i < replayed.seqs.size(); ++i) {
        const std::uint64_t seq = first + i;
        UNSIGNED_LONGS_EQUAL(seq, replayed.seqs[i]);
        CHECK(payload_for(seq, size_for(seq)) == replayed.payloads[i]);
    }
}

// Fills a store with messages 1..count, acks through `acked`, and syncs.
void prepare(FakeStorage& storage, const SpoolConfig& config, std::uint64_t count,
             std::uint64_t acked) {
    Opened opened(storage, config);
    CHECK_EQUAL(Status::kOk, opened.recover());
    for (std::uint64_t seq = 1; seq <= count; ++seq) {
        CHECK_EQUAL(Status::kOk, opened.append(seq));
    }
    CHECK_EQUAL(Status::kOk, opened.spool.ack(acked));
    CHECK_EQUAL(Status::kOk, opened.spool.sync());
}

// Forwards to a FakeStorage; the write numbered `tear_at` lands only
// `landed` bytes and fails, and every call after it fails: the power is gone.
class PowerCut final : public Storage {
  public:
    PowerCut(FakeStorage& inner, std::size_t tear_at, std::size_t landed)
        : inner_(inner), tear_at_(tear_at), landed_(landed) {}
    Status read(std::uint32_t offset, std::uint8_t* out, std::size_t size,
                std::size_t* read_size) override {
        return inner_.read(offset, out, size, read_size);
    }
    Status write(std::uint32_t offset, const std::uint8_t* data, std::size_t size) override {
        const std::size_t index = writes_++;
        if (dead_) {
            return Status::kIoError;
        }
        if (index == tear_at_) {
            dead_ = true;
            largest_ = size;
            inner_.tear_next_write(landed_, Status::kIoError);
            return inner_.write(offset, data, size);
        }
        return inner_.write(offset, data, size);
    }
    Status sync() override { return dead_ ? Status::kIoError : inner_.sync(); }
    std::size_t writes() const { return writes_; }
    std::size_t torn_write_size() const { return largest_; }

  private:
    FakeStorage& inner_;
    std::size_t tear_at_;
    std::size_t landed_;
    std::size_t writes_ = 0;
    std::size_t largest_ = 0;
    bool dead_ = false;
};

// Forwards to a FakeStorage, failing only the sync numbered `fail_at`.
class FailingSync final : public Storage {
  public:
    FailingSync(FakeStorage& inner, std::size_t fail_at) : inner_(inner), fail_at_(fail_at) {}
    Status read(std::uint32_t offset, std::uint8_t* out, std::size_t size,
                std::size_t* read_size) override {
        return inner_.read(offset, out, size, read_size);
    }
    Status write(std::uint32_t offset, const std::uint8_t* data, std::size_t size) override {
        return inner_.write(offset, data, size);
    }
    Status sync() override { return syncs_++ == fail_at_ ? Status::kIoError : inner_.sync(); }

  private:
    FakeStorage& inner_;
    std::size_t fail_at_;
    std::size_t syncs_ = 0;
};

}  // namespace

TEST_GROUP(Spool) {
    FakeStorage storage;
};

TEST(Spool, RecoversUnackedMessagesAfterReopen) {
    prepare(storage, small_config(), 10, 4);
    Opened reopened(storage, small_config());
    CHECK_EQUAL(Status::kOk, reopened.recover());
    check_replayed(reopened.replayed, 5, 10);
    UNSIGNED_LONGS_EQUAL(6, reopened.report.messages);
    UNSIGNED_LONGS_EQUAL(5, reopened.report.first_seq);
    UNSIGNED_LONGS_EQUAL(10, reopened.report.last_seq);
    UNSIGNED_LONGS_EQUAL(10, reopened.report.highest_seq);
    UNSIGNED_LONGS_EQUAL(4, reopened.report.acked_through);
    UNSIGNED_LONGS_EQUAL(0, reopened.report.seq_gaps);
    UNSIGNED_LONGS_EQUAL(0, reopened.report.truncated_bytes);
    CHECK_FALSE(reopened.report.damaged);
    CHECK_FALSE(reopened.report.fresh);
    UNSIGNED_LONGS_EQUAL(1, reopened.report.generation);
}

TEST(Spool, FreshStoreIsInitialisedAndSynced) {
    Opened opened(storage, small_config());
    CHECK_EQUAL(Status::kOk, opened.recover());
    CHECK(opened.report.fresh);
    UNSIGNED_LONGS_EQUAL(0, opened.report.messages);
    UNSIGNED_LONGS_EQUAL(1, storage.sync_count());
    // Slot 0, an unused slot 1, and the terminator that starts region 0's journal.
    const Bytes& bytes = storage.durable_contents();
    UNSIGNED_LONGS_EQUAL(Spool::kHeaderBlockSize + Spool::kRecordOverhead, bytes.size());
    CHECK(Bytes(bytes.begin(), bytes.begin() + 4) == Bytes({'T', 'S', 'P', 'L'}));
    CHECK(Bytes(bytes.begin() + 64, bytes.end()) == Bytes(bytes.size() - 64, 0));
}

TEST(Spool, JournalIsLittleEndianRecordsAfterTheHeaderBlock) {
    Opened opened(storage, small_config());
    CHECK_EQUAL(Status::kOk, opened.recover());
    const std::uint8_t data[3] = {0xAA, 0xBB, 0xCC};
    CHECK_EQUAL(Status::kOk, opened.spool.append(0x0102030405060708ull, data, 3));
    CHECK_EQUAL(Status::kOk, opened.spool.sync());
    const Bytes& bytes = storage.durable_contents();
    const std::size_t at = Spool::kHeaderBlockSize;
    const Bytes expected_header = {'M', 1, 1, 0, 3, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1};
    CHECK(Bytes(bytes.begin() + at, bytes.begin() + at + 16) == expected_header);
    const std::uint32_t crc = tether::crc32(data, 3, tether::crc32(&bytes[at], 16));
    UNSIGNED_LONGS_EQUAL(crc, static_cast<std::uint32_t>(bytes[at + 16]) |
                                  static_cast<std::uint32_t>(bytes[at + 17]) << 8 |
                                  static_cast<std::uint32_t>(bytes[at + 18]) << 16 |
                                  static_cast<std::uint32_t>(bytes[at + 19]) << 24);
    CHECK(Bytes(bytes.begin() + at + 20, bytes.begin() + at + 23) == Bytes(data, data + 3));
    CHECK(Bytes(bytes.begin() + at + 23, bytes.end()) == Bytes(Spool::kRecordOverhead, 0));
}

TEST(Spool, CrashLosesOnlyUnsyncedAppends) {
    Opened opened(storage, small_config());
    CHECK_EQUAL(Status::kOk, opened.recover());
    for (std::uint64_t seq = 1; seq <= 30; ++seq) {
        CHECK_EQUAL(Status::kOk, opened.append(seq));
    }
    CHECK_EQUAL(Status::kOk, opened.spool.sync());
    // Enough to overflow the buffer once: some are written, none synced.
    for (std::uint64_t seq = 31; seq <= 60; ++seq) {
        CHECK_EQUAL(Status::kOk, opened.append(seq));
    }
    CHECK(storage.contents().size() > storage.durable_contents().size());
    storage.crash();
    Opened reopened(storage, small_config());
    CHECK_EQUAL(Status::kOk, reopened.recover());
    check_replayed(reopened.replayed, 1, 30);
    CHECK_FALSE(reopened.report.damaged);
    // Appending resumes after the recovered seqs.
    CHECK_EQUAL(Status::kOk, reopened.append(31));
}

// Found by tether-crash-points: a killed process leaves its unsynced writes in
// the kernel; recovery replayed them (and the client sends what is replayed as
// durable) without syncing, so a power cut next took them back and their seqs
// were handed out again to other messages.
TEST(Spool, WhatRecoveryReplaysSurvivesAPowerCutAfterAKill) {
    {
        Opened opened(storage, small_config());
        CHECK_EQUAL(Status::kOk, opened.recover());
        for (std::uint64_t seq = 1; seq <= 10; ++seq) {
            CHECK_EQUAL(Status::kOk, opened.append(seq));
        }
        CHECK_EQUAL(Status::kOk, opened.spool.flush(0));  // the first flush syncs
        for (std::uint64_t seq = 11; seq <= 20; ++seq) {
            CHECK_EQUAL(Status::kOk, opened.append(seq));
        }
        CHECK_EQUAL(Status::kOk, opened.spool.flush(10));  // written, not synced
        CHECK(opened.spool.has_unsynced());
    }  // killed: nothing more reaches the store
    Opened restarted(storage, small_config());
    CHECK_EQUAL(Status::kOk, restarted.recover());
    check_replayed(restarted.replayed, 1, 20);
    storage.crash();
    Opened after_power_cut(storage, small_config());
    CHECK_EQUAL(Status::kOk, after_power_cut.recover());
    check_replayed(after_power_cut.replayed, 1, 20);
    UNSIGNED_LONGS_EQUAL(20, after_power_cut.report.highest_seq);
}

TEST(Spool, TornLastRecordAtEveryOffsetKeepsEverythingBefore) {
    prepare(storage, small_config(), 8, 0);
    const Bytes before = storage.durable_contents();
    const std::size_t span = Spool::kRecordOverhead + size_for(9);
    for (std::size_t landed = 0; landed < span; ++landed) {
        FakeStorage copy;
        copy.set_contents(before);
        {
            Opened opened(copy, small_config());
            CHECK_EQUAL(Status::kOk, opened.recover());
            CHECK_EQUAL(Status::kOk, opened.append(9));
            copy.tear_next_write(landed, Status::kIoError);
            CHECK_EQUAL(Status::kIoError, opened.spool.sync());
            CHECK_EQUAL(Status::kOk, copy.sync());  // the torn bytes reach the medium
        }
        Opened reopened(copy, small_config());
        CHECK_EQUAL(Status::kOk, reopened.recover());
        check_replayed(reopened.replayed, 1, 8);
        CHECK_EQUAL(landed > 0, reopened.report.damaged);
        // The damaged record as far as its header tells: landed bytes, or the
        // span its intact length field claims.
        CHECK(reopened.report.truncated_bytes >= (landed > 0 ? 1u : 0u));
        CHECK(reopened.report.truncated_bytes <= (landed > 0 ? span : 0u));
        UNSIGNED_LONGS_EQUAL(8, reopened.report.highest_seq);
        // After the damage a new generation holds exactly the same messages.
        Opened again(copy, small_config());
        CHECK_EQUAL(Status::kOk, again.recover());
        check_replayed(again.replayed, 1, 8);
        CHECK_FALSE(again.report.damaged);
    }
}

TEST(Spool, BitFlipStopsRecoveryAtThatRecord) {
    prepare(storage, small_config(), 10, 0);
    const Bytes before = storage.durable_contents();
    std::size_t start = Spool::kHeaderBlockSize;  // record 6 of the journal
    for (std::uint64_t seq = 1; seq < 6; ++seq) {
        start += Spool::kRecordOverhead + size_for(seq);
    }
    const std::size_t span = Spool::kRecordOverhead + size_for(6);
    for (std::size_t offset = start; offset < start + span; ++offset) {
        for (unsigned bit = 0; bit < 8; bit += 3) {
            FakeStorage copy;
            copy.set_contents(before);
            copy.flip_bit(offset, bit);
            Opened reopened(copy, small_config());
            CHECK_EQUAL(Status::kOk, reopened.recover());
            check_replayed(reopened.replayed, 1, 5);
            // Later appends never bring back the records behind the damage.
            CHECK_EQUAL(Status::kOk, reopened.append(11));
            CHECK_EQUAL(Status::kOk, reopened.spool.sync());
            Opened again(copy, small_config());
            CHECK_EQUAL(Status::kOk, again.recover());
            UNSIGNED_LONGS_EQUAL(6, again.replayed.seqs.size());
            UNSIGNED_LONGS_EQUAL(11, again.replayed.seqs.back());
        }
    }
}

TEST(Spool, CompactionKeepsExactlyTheUnackedMessages) {
    Opened opened(storage, small_config());
    CHECK_EQUAL(Status::kOk, opened.recover());
    for (std::uint64_t seq = 1; seq <= 100; ++seq) {
        CHECK_EQUAL(Status::kOk, opened.append(seq));
    }
    CHECK_EQUAL(Status::kOk, opened.spool.ack(60));
    CHECK_EQUAL(Status::kOk, opened.spool.compact());
    UNSIGNED_LONGS_EQUAL(2, opened.spool.generation());
    UNSIGNED_LONGS_EQUAL(1, opened.spool.counters().compactions);
    Opened reopened(storage, small_config());
    CHECK_EQUAL(Status::kOk, reopened.recover());
    check_replayed(reopened.replayed, 61, 100);
    UNSIGNED_LONGS_EQUAL(60, reopened.report.acked_through);
    UNSIGNED_LONGS_EQUAL(100, reopened.report.highest_seq);
    UNSIGNED_LONGS_EQUAL(2, reopened.report.generation);
}

TEST(Spool, EmptyCompactionKeepsTheHighestSeq) {
    prepare(storage, small_config(), 20, 20);
    {
        Opened opened(storage, small_config());
        CHECK_EQUAL(Status::kOk, opened.recover());
        CHECK_EQUAL(Status::kOk, opened.spool.compact());
    }
    Opened reopened(storage, small_config());
    CHECK_EQUAL(Status::kOk, reopened.recover());
    UNSIGNED_LONGS_EQUAL(0, reopened.report.messages);
    UNSIGNED_LONGS_EQUAL(20, reopened.report.highest_seq);
    CHECK_EQUAL(Status::kInvalidArgument, reopened.append(20));
}

TEST(Spool, CompactionSurvivesAPowerCutAtEveryWrite) {
    const SpoolConfig config = small_config();
    prepare(storage, config, 50, 20);
    const Bytes before = storage.durable_contents();
    std::size_t write_count = 0;
    {
        FakeStorage copy;
        copy.set_contents(before);
        PowerCut never(copy, static_cast<std::size_t>(-1), 0);
        Opened opened(never, config);
        CHECK_EQUAL(Status::kOk, opened.recover());
        CHECK_EQUAL(Status::kOk, opened.spool.compact());
        write_count = never.writes();
    }
    CHECK(write_count >= 3);  // several chunks and the header slot
    for (std::size_t index = 0; index < write_count; ++index) {
        for (std::size_t landed = 0;; ++landed) {
            FakeStorage copy;
            copy.set_contents(before);
            PowerCut cut(copy, index, landed);
            {
                Opened opened(cut, config);
                CHECK_EQUAL(Status::kOk, opened.recover());
                CHECK_EQUAL(Status::kIoError, opened.spool.compact());
            }
            copy.crash();
            Opened reopened(copy, config);
            CHECK_EQUAL(Status::kOk, reopened.recover());
            check_replayed(reopened.replayed, 21, 50);
            if (landed >= cut.torn_write_size()) {
                break;
            }
        }
    }
    // And after a completed compaction too.
    FakeStorage copy;
    copy.set_contents(before);
    {
        Opened opened(copy, config);
        CHECK_EQUAL(Status::kOk, opened.recover());
        CHECK_EQUAL(Status::kOk, opened.spool.compact());
    }
    copy.crash();
    Opened reopened(copy, config);
    CHECK_EQUAL(Status::kOk, reopened.recover());
    check_replayed(reopened.replayed, 21, 50);
    UNSIGNED_LONGS_EQUAL(2, reopened.report.generation);
}

TEST(Spool, StoreNeverGrowsBeyondMaxBytesAndKeepsTheNewest) {
    const SpoolConfig config = small_config(2048);
    Opened opened(storage, config);
    CHECK_EQUAL(Status::kOk, opened.recover());
    for (std::uint64_t seq = 1; seq <= 500; ++seq) {
        CHECK_EQUAL(Status::kOk, opened.append(seq));
        CHECK(storage.contents().size() <= config.max_bytes);
    }
    CHECK_EQUAL(Status::kOk, opened.spool.sync());
    CHECK(opened.spool.counters().dropped > 0);
    CHECK(opened.spool.journal_bytes() <= opened.spool.region_size());
    Opened reopened(storage, config);
    CHECK_EQUAL(Status::kOk, reopened.recover());
    CHECK(reopened.report.messages > 10);
    UNSIGNED_LONGS_EQUAL(500, reopened.report.last_seq);
    check_replayed(reopened.replayed, reopened.report.first_seq, 500);
    UNSIGNED_LONGS_EQUAL(500, reopened.report.highest_seq);
}

TEST(Spool, FlushCompactsWhenDeadRecordsDominate) {
    SpoolConfig config = small_config();
    config.min_compact_bytes = 1000;
    Opened opened(storage, config);
    CHECK_EQUAL(Status::kOk, opened.recover());
    for (std::uint64_t seq = 1; seq <= 40; ++seq) {
        CHECK_EQUAL(Status::kOk, opened.append(seq));
    }
    CHECK_EQUAL(Status::kOk, opened.spool.ack(10));
    CHECK_EQUAL(Status::kOk, opened.spool.flush(0));
    UNSIGNED_LONGS_EQUAL(0, opened.spool.counters().compactions);  // dead < live
    CHECK_EQUAL(Status::kOk, opened.spool.ack(35));
    // No sync is due yet, but the records are written out, so the buffer is
    // free to compact with, and the dead ones now dominate.
    CHECK_EQUAL(Status::kOk, opened.spool.flush(500));
    UNSIGNED_LONGS_EQUAL(1, opened.spool.counters().compactions);
    CHECK_EQUAL(Status::kOk, opened.spool.flush(1000));
    UNSIGNED_LONGS_EQUAL(1, opened.spool.counters().compactions);
    UNSIGNED_LONGS_EQUAL(5 * Spool::kRecordOverhead + 36 + 37 + 38 + 39 + 40 + 10,
                         opened.spool.journal_bytes());
    Opened reopened(storage, config);
    CHECK_EQUAL(Status::kOk, reopened.recover());
    check_replayed(reopened.replayed, 36, 40);
}

TEST(Spool, FlushSyncsAtMostOncePerInterval) {
    Opened opened(storage, small_config());
    CHECK_EQUAL(Status::kOk, opened.recover());
    const std::size_t initial = storage.sync_count();
    CHECK_EQUAL(Status::kOk, opened.spool.flush(100));  // nothing to sync
    UNSIGNED_LONGS_EQUAL(initial, storage.sync_count());
    CHECK_EQUAL(Status::kOk, opened.append(1));
    CHECK_EQUAL(Status::kOk, opened.spool.flush(100));  // the first sync is due at once
    UNSIGNED_LONGS_EQUAL(initial + 1, storage.sync_count());
    CHECK_EQUAL(Status::kOk, opened.append(2));
    CHECK_EQUAL(Status::kOk, opened.spool.flush(1099));
    UNSIGNED_LONGS_EQUAL(initial + 1, storage.sync_count());
    CHECK_EQUAL(Status::kOk, opened.spool.flush(1100));
    UNSIGNED_LONGS_EQUAL(initial + 2, storage.sync_count());
    CHECK_FALSE(opened.spool.has_unsynced());
}

TEST(Spool, AppendsMakeSyncsPerFlushNotPerMessage) {
    // Default settings: 1 MiB store, 1000 ms interval; 100,000 100-byte
    // messages at one per millisecond, acknowledged 50 behind.
    FakeStorage store;
    Bytes buffer(4096);
    Spool spool(store, buffer.data(), buffer.size());
    CHECK_EQUAL(Status::kOk, spool.recover(nullptr, nullptr, nullptr));
    const Bytes data = payload_for(1, 100);
    for (std::uint32_t seq = 1; seq <= 100000; ++seq) {
        CHECK_EQUAL(Status::kOk, spool.append(seq, data.data(), data.size()));
        if (seq % 10 == 0 && seq > 50) {
            CHECK_EQUAL(Status::kOk, spool.ack(seq - 50));
        }
        CHECK_EQUAL(Status::kOk, spool.flush(seq));
    }
    const std::uint64_t compactions = spool.counters().compactions;
    // One sync per interval (101 with the first), two per compaction, one at creation.
    UNSIGNED_LONGS_EQUAL(1 + 100 + 2 * compactions, store.sync_count());
    // Compactions need 256 KiB of dead records, checked at each flush: at most
    // (100,000 x 120 + 10,000 x 20 journal bytes) / 256 KiB of them.
    CHECK(compactions >= 1 && compactions <= 47);
    // Journal bytes per 100-byte message: 120, plus the ACKs, the copies compaction
    // made and the 20-byte terminator each flush writes after what it hands to the kernel.
    CHECK(spool.counters().bytes_written < 100000u * 145u);
    UNSIGNED_LONGS_EQUAL(0, spool.counters().dropped);
}

TEST(Spool, MatchesADequeModelOverTenThousandMessages) {
    const SpoolConfig config = small_config(32768);
    std::mt19937 random(20240611u);
    std::deque<std::uint64_t> model;
    std::uint64_t next_seq = 1;
    std::uint32_t now = 0;
    auto opened = std::make_unique<Opened>(storage, config);
    CHECK_EQUAL(Status::kOk, opened->recover());
    std::size_t reopens = 0;
    while (next_seq <= 10000) {
        const std::uint32_t action = static_cast<std::uint32_t>(random() % 100u);
        now += static_cast<std::uint32_t>(random() % 50u);
        if (action < 70 || model.empty()) {
            CHECK_EQUAL(Status::kOk, opened->append(next_seq));
            model.push_back(next_seq++);
        } else if (action < 90) {
            const std::uint64_t through =
                model.front() + static_cast<std::uint64_t>(random() % model.size());
            if (action < 85) {
                CHECK_EQUAL(Status::kOk, opened->spool.ack(through));
            } else {
                CHECK_EQUAL(Status::kOk, opened->spool.drop_through(through));
            }
            while (!model.empty() && model.front() <= through) {
                model.pop_front();
            }
        } else if (action < 99) {
            CHECK_EQUAL(Status::kOk, opened->spool.flush(now));
        } else {
            CHECK_EQUAL(Status::kOk, opened->spool.sync());
            opened = std::make_unique<Opened>(storage, config);
            CHECK_EQUAL(Status::kOk, opened->recover());
            CHECK(std::deque<std::uint64_t>(opened->replayed.seqs.begin(),
                                            opened->replayed.seqs.end()) == model);
            for (std::size_t i = 0; i < model.size(); ++i) {
                CHECK(payload_for(model[i], size_for(model[i])) == opened->replayed.payloads[i]);
            }
            ++reopens;
        }
        CHECK(storage.contents().size() <= config.max_bytes);
    }
    CHECK(reopens > 10);
    CHECK(opened->spool.counters().compactions > 0);
    UNSIGNED_LONGS_EQUAL(0, opened->spool.counters().dropped);
}

TEST(Spool, ReplayRefillsAnOutboxWithTheSameSeqs) {
    prepare(storage, small_config(), 12, 5);
    Opened reopened(storage, small_config());
    CHECK_EQUAL(Status::kOk, reopened.recover());
    std::uint8_t memory[2048];
    tether::Outbox outbox(memory, sizeof memory, tether::OverflowPolicy::kDropOldest,
                          reopened.report.first_seq);
    for (std::size_t i = 0; i < reopened.replayed.seqs.size(); ++i) {
        std::uint64_t seq = 0;
        CHECK_EQUAL(Status::kOk, outbox.push(reopened.replayed.payloads[i].data(),
                                             reopened.replayed.payloads[i].size(), &seq));
        UNSIGNED_LONGS_EQUAL(reopened.replayed.seqs[i], seq);
    }
    UNSIGNED_LONGS_EQUAL(reopened.report.highest_seq + 1, outbox.next_seq());
}

TEST(Spool, CountsGapsInReplayedSeqs) {
    Opened opened(storage, small_config());
    CHECK_EQUAL(Status::kOk, opened.recover());
    CHECK_EQUAL(Status::kOk, opened.append(3));
    CHECK_EQUAL(Status::kOk, opened.append(4));
    CHECK_EQUAL(Status::kOk, opened.append(9));
    CHECK_EQUAL(Status::kOk, opened.spool.sync());
    Opened reopened(storage, small_config());
    CHECK_EQUAL(Status::kOk, reopened.recover());
    UNSIGNED_LONGS_EQUAL(3, reopened.report.messages);
    UNSIGNED_LONGS_EQUAL(1, reopened.report.seq_gaps);
}

TEST(Spool, MakesNoHeapAllocations) {
    const SpoolConfig config = small_config(8192);
    storage.set_contents(Bytes(config.max_bytes, 0));  // the fake itself must not grow
    storage.list_unsynced_writes(false);
    std::uint8_t buffer[kBufferSize];
    std::uint8_t data[40] = {};
    std::size_t allocations = 0;
    {
        tether::test::AllocationCounter counter;
        Spool spool(storage, buffer, sizeof buffer, config);
        CHECK_EQUAL(Status::kOk, spool.recover(nullptr, nullptr, nullptr));
        for (std::uint64_t seq = 1; seq <= 1000; ++seq) {
            CHECK_EQUAL(Status::kOk, spool.append(seq, data, sizeof data));
            if (seq % 7 == 0) {
                CHECK_EQUAL(Status::kOk, spool.ack(seq - 3));
            }
            CHECK_EQUAL(Status::kOk, spool.flush(static_cast<std::uint32_t>(seq * 100)));
        }
        CHECK_EQUAL(Status::kOk, spool.compact());
        Spool again(storage, buffer, sizeof buffer, config);
        CHECK_EQUAL(Status::kOk, again.recover(nullptr, nullptr, nullptr));
        allocations = counter.count();
    }
    UNSIGNED_LONGS_EQUAL(0, allocations);
}

TEST(Spool, RejectsInvalidUse) {
    std::uint8_t buffer[kBufferSize];
    Spool spool(storage, buffer, sizeof buffer, small_config());
    const std::uint8_t data[4] = {};
    CHECK_EQUAL(Status::kInvalidArgument, spool.append(1, data, 4));
    CHECK_EQUAL(Status::kInvalidArgument, spool.ack(1));
    CHECK_EQUAL(Status::kInvalidArgument, spool.drop_through(1));
    CHECK_EQUAL(Status::kInvalidArgument, spool.flush(0));
    CHECK_EQUAL(Status::kInvalidArgument, spool.sync());
    CHECK_EQUAL(Status::kInvalidArgument, spool.compact());
    CHECK_EQUAL(Status::kOk, spool.recover(nullptr, nullptr, nullptr));
    CHECK_EQUAL(Status::kInvalidArgument, spool.append(0, data, 4));
    CHECK_EQUAL(Status::kInvalidArgument, spool.append(1, nullptr, 4));
    CHECK_EQUAL(Status::kOk, spool.append(1, nullptr, 0));
    CHECK_EQUAL(Status::kInvalidArgument, spool.append(1, data, 4));
    std::uint8_t big[kBufferSize] = {};
    const std::size_t largest = kBufferSize - 2 * Spool::kRecordOverhead;
    CHECK_EQUAL(Status::kTooLarge, spool.append(2, big, largest + 1));
    CHECK_EQUAL(Status::kOk, spool.append(2, big, largest));
    CHECK_EQUAL(Status::kOk, spool.ack(0));    // below the watermark: no record
    CHECK_EQUAL(Status::kOk, spool.ack(100));  // clamped to 2
    UNSIGNED_LONGS_EQUAL(2, spool.acked_through());
    CHECK_EQUAL(Status::kOk, spool.append(3, data, 4));
}

TEST(Spool, RecoverRejectsBadConfigurationAndSaysWhy) {
    std::uint8_t buffer[kBufferSize];
    Spool null_buffer(storage, nullptr, 0, small_config());
    CHECK_EQUAL(Status::kInvalidArgument, null_buffer.recover(nullptr, nullptr, nullptr));
    STRCMP_EQUAL("no buffer", null_buffer.error());
    Spool small_buffer(storage, buffer, Spool::kMinBufferSize - 1, small_config());
    CHECK_EQUAL(Status::kInvalidArgument, small_buffer.recover(nullptr, nullptr, nullptr));
    STRCMP_EQUAL("buffer smaller than Spool::kMinBufferSize", small_buffer.error());
    Spool tiny_store(storage, buffer, sizeof buffer, small_config(255));
    CHECK_EQUAL(Status::kInvalidArgument, tiny_store.recover(nullptr, nullptr, nullptr));
    STRCMP_EQUAL("max_bytes below 256", tiny_store.error());
    UNSIGNED_LONGS_EQUAL(0, storage.write_count());
}

TEST(Spool, ErrorNamesWhatTheLastFailedCallGotWrong) {
    Opened opened(storage, small_config());
    STRCMP_EQUAL("", opened.spool.error());
    CHECK_EQUAL(Status::kInvalidArgument, opened.append(1));
    STRCMP_EQUAL("recover() has not succeeded", opened.spool.error());
    CHECK_EQUAL(Status::kInvalidArgument, opened.spool.flush(0));
    CHECK_EQUAL(Status::kOk, opened.recover());
    CHECK_EQUAL(Status::kOk, opened.append(5));
    CHECK_EQUAL(Status::kInvalidArgument, opened.append(5));
    STRCMP_EQUAL("seq not above every seq appended or acknowledged", opened.spool.error());
    CHECK_EQUAL(Status::kInvalidArgument, opened.spool.append(6, nullptr, 1));
    STRCMP_EQUAL("null data with a nonzero size", opened.spool.error());
    std::uint8_t big[kBufferSize] = {};
    CHECK_EQUAL(Status::kTooLarge, opened.spool.append(6, big, sizeof big));
    STRCMP_EQUAL("record larger than the buffer or a region allows", opened.spool.error());
    storage.fail_next_sync();
    CHECK_EQUAL(Status::kIoError, opened.spool.sync());
    STRCMP_EQUAL("a read, write or sync of the store failed", opened.spool.error());
    CHECK_EQUAL(Status::kOk, opened.spool.sync());
}

// Recovery with a buffer smaller than the writer's used to stop at the large
// record as if it were damage and compact without it: a smaller buffer in the
// configuration silently lost messages. It now refuses, writing nothing.
TEST(Spool, RecordLargerThanTheReadersBufferIsRefusedNotDiscarded) {
    Opened writer(storage, small_config(), 512);
    CHECK_EQUAL(Status::kOk, writer.recover());
    CHECK_EQUAL(Status::kOk, writer.append(1));
    std::uint8_t big[300] = {};
    CHECK_EQUAL(Status::kOk, writer.spool.append(2, big, sizeof big));
    CHECK_EQUAL(Status::kOk, writer.append(3));
    CHECK_EQUAL(Status::kOk, writer.spool.sync());
    const Bytes before = storage.contents();
    const std::size_t writes = storage.write_count();
    Opened reader(storage, small_config(), 128);
    CHECK_EQUAL(Status::kInvalidArgument, reader.recover());
    STRCMP_EQUAL("buffer smaller than the spool's largest record", reader.spool.error());
    UNSIGNED_LONGS_EQUAL(writes, storage.write_count());
    CHECK(before == storage.contents());
    CHECK_EQUAL(Status::kInvalidArgument, reader.append(4));
    Opened larger(storage, small_config(), 512);
    CHECK_EQUAL(Status::kOk, larger.recover());
    UNSIGNED_LONGS_EQUAL(3, larger.replayed.seqs.size());
    UNSIGNED_LONGS_EQUAL(300, larger.replayed.payloads[1].size());
}

TEST(Spool, DamagedRecordLargerThanTheBufferIsStillDamage) {
    Opened writer(storage, small_config(), 512);
    CHECK_EQUAL(Status::kOk, writer.recover());
    CHECK_EQUAL(Status::kOk, writer.append(1));
    std::uint8_t big[300] = {};
    CHECK_EQUAL(Status::kOk, writer.spool.append(2, big, sizeof big));
    CHECK_EQUAL(Status::kOk, writer.spool.sync());
    const std::size_t second = Spool::kHeaderBlockSize + Spool::kRecordOverhead + size_for(1);
    const Bytes before = storage.contents();
    // A bit of its payload flipped; its length grown past the store's end
    // (300 = 0x12C becomes 0x32C); the store ending inside it.
    const std::pair<std::size_t, unsigned> damages[3] = {
        {second + Spool::kRecordOverhead + 250, 0}, {second + 5, 1}, {0, 0}};
    for (const auto& damage : damages) {
        storage.set_contents(before);
        if (damage.first == 0) {
            storage.truncate(second + 200);
        } else {
            storage.flip_bit(damage.first, damage.second);
        }
        Opened reader(storage, small_config(), 128);
        CHECK_EQUAL(Status::kOk, reader.recover());
        check_replayed(reader.replayed, 1, 1);
        CHECK(reader.report.damaged);
        UNSIGNED_LONGS_EQUAL(128, reader.report.truncated_bytes);
    }
}

namespace {

// A store of messages 1..count acked through `acked`, written with max_bytes
// `from`, its journal in region `region` (one compaction moves it to 1).
void prepare_in_region(FakeStorage& storage, std::uint32_t from, std::uint64_t count,
                       std::uint64_t acked, int region) {
    prepare(storage, small_config(from), count, acked);
    if (region == 1) {
        Opened opened(storage, small_config(from));
        CHECK_EQUAL(Status::kOk, opened.recover());
        CHECK_EQUAL(Status::kOk, opened.spool.compact());
    }
}

struct Resize {
    std::uint32_t from;
    std::uint32_t to;
    int region;
};

// Growing with region 1 active and shrinking below the journal with region 0
// active need a compaction in the old layout first; the others do not.
constexpr Resize kResizes[] = {
    {16384, 32768, 0}, {16384, 32768, 1}, {16384, 8192, 0},
    {16384, 8192, 1},  {16384, 2048, 0},  {16384, 2048, 1},
};

}  // namespace

// Issue 12: changing spool.max_bytes between runs failed recovery with
// kInvalidArgument and no reason. The store is now recovered in the layout it
// records and migrated into the configured one.
TEST(Spool, ChangedMaxBytesRecoversInTheRecordedLayoutAndMigrates) {
    for (const Resize& resize : kResizes) {
        FakeStorage store;
        prepare_in_region(store, resize.from, 40, 25, resize.region);
        Opened opened(store, small_config(resize.to));
        CHECK_EQUAL(Status::kOk, opened.recover());
        CHECK(opened.report.resized);
        UNSIGNED_LONGS_EQUAL(resize.from, opened.report.recorded_max_bytes);
        UNSIGNED_LONGS_EQUAL((resize.to - Spool::kHeaderBlockSize) / 2, opened.spool.region_size());
        check_replayed(opened.replayed, 26, 40);
        UNSIGNED_LONGS_EQUAL(0, opened.report.dropped_first);
        UNSIGNED_LONGS_EQUAL(0, opened.report.dropped_last);
        UNSIGNED_LONGS_EQUAL(25, opened.report.acked_through);
        UNSIGNED_LONGS_EQUAL(40, opened.report.highest_seq);
        CHECK_EQUAL(Status::kOk, opened.append(41));
        CHECK_EQUAL(Status::kOk, opened.spool.sync());
        Opened again(store, small_config(resize.to));
        CHECK_EQUAL(Status::kOk, again.recover());
        CHECK_FALSE(again.report.resized);
        UNSIGNED_LONGS_EQUAL(resize.to, again.report.recorded_max_bytes);
        check_replayed(again.replayed, 26, 41);
    }
}

TEST(Spool, MaxBytesRoundingToTheSameLayoutIsNoResize) {
    prepare(storage, small_config(16384), 5, 0);
    Opened opened(storage, small_config(16385));  // the same 8128-byte regions
    CHECK_EQUAL(Status::kOk, opened.recover());
    CHECK_FALSE(opened.report.resized);
    UNSIGNED_LONGS_EQUAL(16384, opened.report.recorded_max_bytes);
    UNSIGNED_LONGS_EQUAL(1, opened.report.generation);
}

TEST(Spool, ShrinkingBelowTheLiveMessagesKeepsTheNewestAndNamesTheRest) {
    prepare(storage, small_config(16384), 100, 10);
    Opened opened(storage, small_config(1024));  // 448-byte regions
    CHECK_EQUAL(Status::kOk, opened.recover());
    CHECK(opened.report.resized);
    const std::uint64_t last = opened.report.dropped_last;
    UNSIGNED_LONGS_EQUAL(11, opened.report.dropped_first);
    CHECK(last > 11 && last < 100);
    UNSIGNED_LONGS_EQUAL(last, opened.report.acked_through);
    UNSIGNED_LONGS_EQUAL(last - 10, opened.spool.counters().dropped);
    check_replayed(opened.replayed, last + 1, 100);
    // Only as many left out as needed: one more would not have fitted.
    std::size_t kept = 0;
    for (std::uint64_t seq = last + 1; seq <= 100; ++seq) {
        kept += Spool::kRecordOverhead + size_for(seq);
    }
    CHECK(kept <= opened.spool.region_size());
    CHECK(kept + Spool::kRecordOverhead + size_for(last) > opened.spool.region_size());
    Opened again(storage, small_config(1024));
    CHECK_EQUAL(Status::kOk, again.recover());
    CHECK_FALSE(again.report.resized);
    UNSIGNED_LONGS_EQUAL(last, again.report.acked_through);
    check_replayed(again.replayed, last + 1, 100);
}

TEST(Spool, MigrationSurvivesAPowerCutAtEveryWrite) {
    for (const Resize& resize : kResizes) {
        FakeStorage reference;
        prepare_in_region(reference, resize.from, 60, 20, resize.region);
        const Bytes before = reference.durable_contents();
        std::size_t write_count = 0;
        Replayed expected;
        {
            PowerCut never(reference, static_cast<std::size_t>(-1), 0);
            Opened opened(never, small_config(resize.to));
            CHECK_EQUAL(Status::kOk, opened.recover());
            write_count = never.writes();
            expected = opened.replayed;
        }
        CHECK(write_count >= 3);  // the copy, its terminator, the header slot
        for (std::size_t index = 0; index < write_count; ++index) {
            for (std::size_t landed = 0;; landed += 7) {
                FakeStorage copy;
                copy.set_contents(before);
                PowerCut cut(copy, index, landed);
                {
                    Opened opened(cut, small_config(resize.to));
                    CHECK_EQUAL(Status::kIoError, opened.recover());
                }
                copy.crash();
                Opened reopened(copy, small_config(resize.to));
                CHECK_EQUAL(Status::kOk, reopened.recover());
                CHECK(expected.seqs == reopened.replayed.seqs);
                CHECK(expected.payloads == reopened.replayed.payloads);
                if (landed >= cut.torn_write_size()) {
                    break;
                }
            }
        }
    }
}

TEST(Spool, FallsBackToTheOlderHeaderSlot) {
    prepare(storage, small_config(), 10, 3);
    {
        Opened opened(storage, small_config());
        CHECK_EQUAL(Status::kOk, opened.recover());
        CHECK_EQUAL(Status::kOk, opened.spool.compact());  // generation 2 in slot 1
    }
    storage.flip_bit(Spool::kHeaderBlockSize / 2 + 20, 0);  // damage slot 1
    Opened reopened(storage, small_config());
    CHECK_EQUAL(Status::kOk, reopened.recover());
    // Generation 1's region was untouched by the compaction into region 1.
    UNSIGNED_LONGS_EQUAL(1, reopened.report.generation);
    check_replayed(reopened.replayed, 4, 10);
}

TEST(Spool, StorageFailuresAreReportedAndRetried) {
    Opened opened(storage, small_config());
    storage.fail_next_read();
    CHECK_EQUAL(Status::kIoError, opened.recover());
    storage.fail_next_sync();
    CHECK_EQUAL(Status::kIoError, opened.recover());
    CHECK_EQUAL(Status::kOk, opened.recover());
    for (std::uint64_t seq = 1; seq <= 5; ++seq) {
        CHECK_EQUAL(Status::kOk, opened.append(seq));
    }
    storage.fail_next_write();
    CHECK_EQUAL(Status::kIoError, opened.spool.sync());
    storage.fail_next_sync();
    CHECK_EQUAL(Status::kIoError, opened.spool.flush(0));
    CHECK(opened.spool.has_unsynced());
    CHECK_EQUAL(Status::kOk, opened.spool.flush(0));
    CHECK_EQUAL(Status::kOk, opened.spool.ack(2));
    storage.fail_next_write();
    CHECK_EQUAL(Status::kIoError, opened.spool.compact());
    CHECK_EQUAL(Status::kOk, opened.spool.compact());
    storage.fail_next_read();
    CHECK_EQUAL(Status::kIoError, opened.spool.compact());
    Opened reopened(storage, small_config());
    CHECK_EQUAL(Status::kOk, reopened.recover());
    check_replayed(reopened.replayed, 3, 5);
}

TEST_GROUP(SpoolFile) {
    tether::test::TempDir dir;
};

TEST(SpoolFile, ReopenedFileRecoversTheUnackedMessages) {
    const std::string path = dir.file("spool");
    {
        tether::port::FileStorage file;
        CHECK_EQUAL(Status::kOk, file.open(path.c_str()));
        Opened opened(file, small_config());
        CHECK_EQUAL(Status::kOk, opened.recover());
        CHECK(opened.report.fresh);
        for (std::uint64_t seq = 1; seq <= 200; ++seq) {
            CHECK_EQUAL(Status::kOk, opened.append(seq));
        }
        CHECK_EQUAL(Status::kOk, opened.spool.ack(120));
        CHECK_EQUAL(Status::kOk, opened.spool.sync());
    }
    tether::port::FileStorage file;
    CHECK_EQUAL(Status::kOk, file.open(path.c_str()));
    Opened reopened(file, small_config());
    CHECK_EQUAL(Status::kOk, reopened.recover());
    CHECK_FALSE(reopened.report.fresh);
    check_replayed(reopened.replayed, 121, 200);
}

TEST(Spool, FailedHeaderSyncIsCommittedBeforeAnythingElse) {
    prepare(storage, small_config(), 30, 10);
    const Bytes before = storage.durable_contents();
    for (int outcome = 0; outcome < 3; ++outcome) {
        FakeStorage copy;
        copy.set_contents(before);
        // Recovery's sync, then compaction's: region data, then the header slot.
        FailingSync failing(copy, 2);
        {
            Opened opened(failing, small_config());
            CHECK_EQUAL(Status::kOk, opened.recover());
            CHECK_EQUAL(Status::kIoError, opened.spool.compact());
            UNSIGNED_LONGS_EQUAL(2, opened.spool.generation());
            CHECK(opened.spool.has_unsynced());
            if (outcome >= 1) {
                CHECK_EQUAL(Status::kOk, opened.append(31));
                CHECK_EQUAL(Status::kOk, opened.spool.flush(0));
                UNSIGNED_LONGS_EQUAL(2, opened.spool.generation());
                CHECK_FALSE(opened.spool.has_unsynced());
            }
            if (outcome == 2) {
                CHECK_EQUAL(Status::kOk, opened.spool.ack(11));
                UNSIGNED_LONGS_EQUAL(2, opened.spool.generation());
                CHECK_EQUAL(Status::kOk, opened.spool.compact());
                UNSIGNED_LONGS_EQUAL(3, opened.spool.generation());
            }
        }
        copy.crash();
        Opened reopened(copy, small_config());
        CHECK_EQUAL(Status::kOk, reopened.recover());
        const std::uint32_t generations[3] = {1, 2, 3};
        UNSIGNED_LONGS_EQUAL(generations[outcome], reopened.report.generation);
        check_replayed(reopened.replayed, outcome == 2 ? 12 : 11, outcome == 0 ? 30 : 31);
    }
}

namespace {

void put_le32(Bytes* bytes, std::size_t at, std::uint32_t value) {
    for (std::size_t i = 0; i < 4; ++i) {
        (*bytes)[at + i] = static_cast<std::uint8_t>(value >> (8 * i));
    }
}

// Rewrites a store whose active generation lives in header slot 0 and region
// 0 as if it were generation `generation`: the slot's field and CRC, and every
// record's tag and CRC (layout: include/tether/spool.h).
void restamp_generation(Bytes* bytes, std::uint32_t generation) {
    put_le32(bytes, 8, generation);
    put_le32(bytes, 60, tether::crc32(bytes->data(), 60));
    std::size_t at = Spool::kHeaderBlockSize;
    while (at + Spool::kRecordOverhead <= bytes->size() && (*bytes)[at] != 0) {
        const std::size_t length = static_cast<std::size_t>((*bytes)[at + 4]) |
                                   static_cast<std::size_t>((*bytes)[at + 5]) << 8;
        (*bytes)[at + 2] = static_cast<std::uint8_t>(generation);
        (*bytes)[at + 3] = static_cast<std::uint8_t>(generation >> 8);
        std::uint8_t* record = bytes->data() + at;
        put_le32(bytes, at + 16,
                 tether::crc32(record + Spool::kRecordOverhead, length, tether::crc32(record, 16)));
        at += Spool::kRecordOverhead + length;
    }
}

}  // namespace

// Found by fuzz_spool_recover: compacting out of generation 0xFFFFFFFF wrote
// generation 0, which marks a header slot invalid, so after a restart the
// spool fell back to the older slot and lost what the new region held.
TEST(Spool, GenerationWrapsFromMaximumToOneAndKeepsTheMessages) {
    const SpoolConfig config = small_config();
    prepare(storage, config, 5, 2);
    Bytes bytes = storage.contents();
    restamp_generation(&bytes, 0xFFFFFFFFu);
    storage.set_contents(bytes);
    {
        Opened opened(storage, config);
        CHECK_EQUAL(Status::kOk, opened.recover());
        CHECK_FALSE(opened.report.damaged);
        UNSIGNED_LONGS_EQUAL(0xFFFFFFFFu, opened.report.generation);
        check_replayed(opened.replayed, 3, 5);
        CHECK_EQUAL(Status::kOk, opened.spool.compact());
        CHECK_EQUAL(Status::kOk, opened.append(6));
        CHECK_EQUAL(Status::kOk, opened.spool.sync());
    }
    Opened reopened(storage, config);
    CHECK_EQUAL(Status::kOk, reopened.recover());
    CHECK_FALSE(reopened.report.damaged);
    CHECK_FALSE(reopened.report.fresh);
    UNSIGNED_LONGS_EQUAL(1, reopened.report.generation);
    check_replayed(reopened.replayed, 3, 6);
}

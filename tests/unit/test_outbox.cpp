// SPDX-License-Identifier: MIT
#include <CppUTest/TestHarness.h>

#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "support/alloc_counter.h"
#include "tether/outbox.h"

using tether::Outbox;
using tether::OutboxEntry;
using tether::OverflowPolicy;
using tether::SeqRange;
using tether::Status;

namespace {

// A payload whose bytes depend on `tag`, so a misplaced or overwritten message shows.
std::vector<std::uint8_t> payload_for(std::uint64_t tag, std::size_t size) {
    std::vector<std::uint8_t> bytes(size);
    for (std::size_t i = 0; i < size; ++i) {
        bytes[i] = static_cast<std::uint8_t>((tag * 31u + i * 7u) & 0xFFu);
    }
    return bytes;
}

// Pushes a payload tagged with the seq it is expected to get.
Status push_tagged(Outbox& outbox, std::size_t size) {
    const std::vector<std::uint8_t> bytes = payload_for(outbox.next_seq(), size);
    return outbox.push(bytes.data(), bytes.size());
}

bool payload_matches(const OutboxEntry& entry) {
    const std::vector<std::uint8_t> expected = payload_for(entry.seq, entry.size);
    return entry.size == 0 || std::memcmp(entry.data, expected.data(), entry.size) == 0;
}

// "1,2,3": the seqs an iterator walks, in order.
std::string seqs_of(Outbox::Iterator it) {
    std::string text;
    OutboxEntry entry;
    while (it.next(&entry)) {
        if (!text.empty()) {
            text += ",";
        }
        text += std::to_string(entry.seq);
    }
    return text;
}

std::string range_text(const SeqRange& range) {
    return std::to_string(range.first) + "-" + std::to_string(range.last);
}

// Every pending dropped range, taken: "1-3,6-6".
std::string take_all_ranges(Outbox& outbox) {
    std::string text;
    SeqRange range;
    while (outbox.take_dropped_range(&range)) {
        if (!text.empty()) {
            text += ",";
        }
        text += range_text(range);
    }
    return text;
}

constexpr std::size_t kStorageSize = 1024;

}  // namespace

TEST_GROUP(Outbox) {
    alignas(8) std::uint8_t storage[kStorageSize] = {};
};

TEST(Outbox, SequenceNumbersStartAtFirstSeqAndIncrease) {
    Outbox outbox(storage, sizeof storage, OverflowPolicy::kDropOldest, 41);
    UNSIGNED_LONGS_EQUAL(41, outbox.next_seq());
    UNSIGNED_LONGS_EQUAL(41, outbox.oldest_seq());
    CHECK_TRUE(outbox.empty());

    const std::uint8_t byte = 7;
    for (std::uint64_t expected = 41; expected < 44; ++expected) {
        std::uint64_t seq = 0;
        CHECK(outbox.push(&byte, 1, &seq) == Status::kOk);
        UNSIGNED_LONGS_EQUAL(expected, seq);
    }
    UNSIGNED_LONGS_EQUAL(44, outbox.next_seq());
    UNSIGNED_LONGS_EQUAL(41, outbox.oldest_seq());
    UNSIGNED_LONGS_EQUAL(3, outbox.size());
    UNSIGNED_LONGS_EQUAL(3, outbox.unsent_count());
    UNSIGNED_LONGS_EQUAL(3, outbox.counters().pushed);
    STRCMP_EQUAL("41,42,43", seqs_of(outbox.unacked()).c_str());
    STRCMP_EQUAL("41,42,43", seqs_of(outbox.unsent()).c_str());
}

TEST(Outbox, FirstSeqZeroIsTakenAsOne) {
    Outbox outbox(storage, sizeof storage, OverflowPolicy::kDropOldest, 0);
    UNSIGNED_LONGS_EQUAL(1, outbox.next_seq());
    std::uint64_t seq = 0;
    CHECK(outbox.push(nullptr, 0, &seq) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(1, seq);
}

TEST(Outbox, AckFreesCumulativelyAndIsIdempotent) {
    Outbox outbox(storage, sizeof storage, OverflowPolicy::kDropOldest, 1);
    for (int i = 0; i < 5; ++i) {
        CHECK(push_tagged(outbox, 10) == Status::kOk);
    }
    outbox.mark_sent(5);

    UNSIGNED_LONGS_EQUAL(3, outbox.ack(3));
    UNSIGNED_LONGS_EQUAL(2, outbox.size());
    UNSIGNED_LONGS_EQUAL(4, outbox.oldest_seq());
    UNSIGNED_LONGS_EQUAL(2 * 32, outbox.bytes_used());
    STRCMP_EQUAL("4,5", seqs_of(outbox.unacked()).c_str());

    UNSIGNED_LONGS_EQUAL(0, outbox.ack(3));
    UNSIGNED_LONGS_EQUAL(0, outbox.ack(1));
    UNSIGNED_LONGS_EQUAL(2, outbox.size());
    UNSIGNED_LONGS_EQUAL(3, outbox.counters().acked);

    UNSIGNED_LONGS_EQUAL(2, outbox.ack(5));
    CHECK_TRUE(outbox.empty());
    UNSIGNED_LONGS_EQUAL(0, outbox.bytes_used());
    UNSIGNED_LONGS_EQUAL(6, outbox.oldest_seq());
    UNSIGNED_LONGS_EQUAL(5, outbox.counters().acked);
    UNSIGNED_LONGS_EQUAL(0, outbox.ack(5));
}

TEST(Outbox, AckBeyondNewestFreesEverythingWithoutSkippingSeqs) {
    Outbox outbox(storage, sizeof storage, OverflowPolicy::kDropOldest, 1);
    for (int i = 0; i < 3; ++i) {
        CHECK(push_tagged(outbox, 10) == Status::kOk);
    }
    UNSIGNED_LONGS_EQUAL(3, outbox.ack(1000));
    CHECK_TRUE(outbox.empty());
    UNSIGNED_LONGS_EQUAL(0, outbox.unsent_count());
    UNSIGNED_LONGS_EQUAL(4, outbox.next_seq());
    UNSIGNED_LONGS_EQUAL(0, outbox.ack(UINT64_MAX));
}

TEST(Outbox, RewindResendsFromOldestUnacked) {
    Outbox outbox(storage, sizeof storage, OverflowPolicy::kDropOldest, 1);
    for (int i = 0; i < 4; ++i) {
        CHECK(push_tagged(outbox, 20) == Status::kOk);
    }
    outbox.mark_sent(3);
    UNSIGNED_LONGS_EQUAL(1, outbox.ack(1));
    STRCMP_EQUAL("4", seqs_of(outbox.unsent()).c_str());

    outbox.rewind();
    UNSIGNED_LONGS_EQUAL(3, outbox.unsent_count());
    STRCMP_EQUAL("2,3,4", seqs_of(outbox.unsent()).c_str());
    STRCMP_EQUAL("2,3,4", seqs_of(outbox.unacked()).c_str());
    OutboxEntry entry;
    auto it = outbox.unsent();
    while (it.next(&entry)) {
        CHECK_TRUE(payload_matches(entry));
    }
}

TEST(Outbox, MarkSentAdvancesAndClampsToWhatIsUnsent) {
    Outbox outbox(storage, sizeof storage, OverflowPolicy::kDropOldest, 1);
    outbox.mark_sent(3);  // nothing to mark
    UNSIGNED_LONGS_EQUAL(0, outbox.unsent_count());
    for (int i = 0; i < 4; ++i) {
        CHECK(push_tagged(outbox, 5) == Status::kOk);
    }
    outbox.mark_sent();
    STRCMP_EQUAL("2,3,4", seqs_of(outbox.unsent()).c_str());
    outbox.mark_sent(0);
    UNSIGNED_LONGS_EQUAL(3, outbox.unsent_count());
    outbox.mark_sent(2);
    STRCMP_EQUAL("4", seqs_of(outbox.unsent()).c_str());
    outbox.mark_sent(100);
    UNSIGNED_LONGS_EQUAL(0, outbox.unsent_count());
    STRCMP_EQUAL("", seqs_of(outbox.unsent()).c_str());
    STRCMP_EQUAL("1,2,3,4", seqs_of(outbox.unacked()).c_str());

    CHECK(push_tagged(outbox, 5) == Status::kOk);
    STRCMP_EQUAL("5", seqs_of(outbox.unsent()).c_str());
}

TEST(Outbox, DropOldestEvictsAndRecordsExactDroppedRange) {
    Outbox outbox(storage, sizeof storage, OverflowPolicy::kDropOldest, 1);
    // 100-byte payloads take 120 bytes: eight fill 960 of the 1024.
    for (int i = 0; i < 8; ++i) {
        CHECK(push_tagged(outbox, 100) == Status::kOk);
    }
    UNSIGNED_LONGS_EQUAL(960, outbox.bytes_used());
    outbox.mark_sent(2);  // eviction takes sent and unsent entries alike

    for (int i = 0; i < 3; ++i) {
        CHECK(push_tagged(outbox, 100) == Status::kOk);
    }
    UNSIGNED_LONGS_EQUAL(3, outbox.counters().dropped);
    UNSIGNED_LONGS_EQUAL(0, outbox.counters().rejected);
    UNSIGNED_LONGS_EQUAL(8, outbox.size());
    UNSIGNED_LONGS_EQUAL(8, outbox.unsent_count());
    // Entries 4..8, the 64 unused bytes before the wrap, then 9..11.
    UNSIGNED_LONGS_EQUAL(1024, outbox.bytes_used());
    STRCMP_EQUAL("4,5,6,7,8,9,10,11", seqs_of(outbox.unacked()).c_str());
    UNSIGNED_LONGS_EQUAL(1, outbox.pending_dropped_ranges());

    // 4 and 5 arrive; 6 is evicted next, which is not contiguous with 1-3.
    UNSIGNED_LONGS_EQUAL(2, outbox.ack(5));
    CHECK(push_tagged(outbox, 100) == Status::kOk);
    CHECK(push_tagged(outbox, 100) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(3, outbox.counters().dropped);
    CHECK(push_tagged(outbox, 100) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(4, outbox.counters().dropped);
    UNSIGNED_LONGS_EQUAL(2, outbox.pending_dropped_ranges());

    CHECK_FALSE(outbox.take_dropped_range(nullptr));  // takes nothing
    UNSIGNED_LONGS_EQUAL(2, outbox.pending_dropped_ranges());
    STRCMP_EQUAL("1-3,6-6", take_all_ranges(outbox).c_str());
    UNSIGNED_LONGS_EQUAL(0, outbox.pending_dropped_ranges());
    SeqRange untouched{77, 78};
    CHECK_FALSE(outbox.take_dropped_range(&untouched));
    UNSIGNED_LONGS_EQUAL(77, untouched.first);
    CHECK_FALSE(outbox.take_dropped_range(nullptr));

    OutboxEntry entry;
    auto it = outbox.unacked();
    while (it.next(&entry)) {
        CHECK_TRUE(payload_matches(entry));
    }
}

TEST(Outbox, RejectNewestRefusesAndCounts) {
    Outbox outbox(storage, sizeof storage, OverflowPolicy::kRejectNewest, 1);
    for (int i = 0; i < 8; ++i) {
        CHECK(push_tagged(outbox, 100) == Status::kOk);
    }
    std::uint64_t seq = 12345;
    const std::vector<std::uint8_t> bytes = payload_for(9, 100);
    CHECK(outbox.push(bytes.data(), bytes.size(), &seq) == Status::kNoSpace);
    UNSIGNED_LONGS_EQUAL(12345, seq);
    UNSIGNED_LONGS_EQUAL(1, outbox.counters().rejected);
    UNSIGNED_LONGS_EQUAL(8, outbox.counters().pushed);
    UNSIGNED_LONGS_EQUAL(0, outbox.counters().dropped);
    UNSIGNED_LONGS_EQUAL(8, outbox.size());
    UNSIGNED_LONGS_EQUAL(9, outbox.next_seq());
    UNSIGNED_LONGS_EQUAL(0, outbox.pending_dropped_ranges());

    UNSIGNED_LONGS_EQUAL(1, outbox.ack(1));
    CHECK(outbox.push(bytes.data(), bytes.size(), &seq) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(9, seq);
    CHECK(outbox.policy() == OverflowPolicy::kRejectNewest);
}

TEST(Outbox, TryPushNeverEvictsEvenUnderDropOldest) {
    Outbox outbox(storage, sizeof storage, OverflowPolicy::kDropOldest, 1);
    for (int i = 0; i < 8; ++i) {
        CHECK(push_tagged(outbox, 100) == Status::kOk);
    }
    const std::vector<std::uint8_t> bytes = payload_for(9, 100);
    CHECK(outbox.try_push(bytes.data(), bytes.size()) == Status::kNoSpace);
    UNSIGNED_LONGS_EQUAL(8, outbox.size());
    UNSIGNED_LONGS_EQUAL(0, outbox.counters().dropped);
    UNSIGNED_LONGS_EQUAL(1, outbox.counters().rejected);
    CHECK(outbox.try_push(bytes.data(), 48) == Status::kOk);  // 64 bytes: exactly what is left
}

TEST(Outbox, PushOverwriteEvictsEvenUnderRejectNewest) {
    Outbox outbox(storage, sizeof storage, OverflowPolicy::kRejectNewest, 1);
    for (int i = 0; i < 8; ++i) {
        CHECK(push_tagged(outbox, 100) == Status::kOk);
    }
    const std::vector<std::uint8_t> bytes = payload_for(9, 100);
    std::uint64_t seq = 0;
    CHECK(outbox.push_overwrite(bytes.data(), bytes.size(), &seq) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(9, seq);
    UNSIGNED_LONGS_EQUAL(1, outbox.counters().dropped);
    STRCMP_EQUAL("1-1", take_all_ranges(outbox).c_str());
}

TEST(Outbox, TooLargeIsRejectedWithoutEvicting) {
    Outbox outbox(storage, sizeof storage, OverflowPolicy::kDropOldest, 1);
    for (int i = 0; i < 3; ++i) {
        CHECK(push_tagged(outbox, 100) == Status::kOk);
    }
    UNSIGNED_LONGS_EQUAL(1008, outbox.max_message_size());
    const std::vector<std::uint8_t> big(1009, 0xAB);
    CHECK(outbox.push(big.data(), big.size()) == Status::kTooLarge);
    CHECK(outbox.push_overwrite(big.data(), big.size()) == Status::kTooLarge);
    CHECK(outbox.try_push(big.data(), big.size()) == Status::kTooLarge);
    UNSIGNED_LONGS_EQUAL(3, outbox.counters().rejected);
    UNSIGNED_LONGS_EQUAL(0, outbox.counters().dropped);
    UNSIGNED_LONGS_EQUAL(3, outbox.size());
    UNSIGNED_LONGS_EQUAL(4, outbox.next_seq());
    UNSIGNED_LONGS_EQUAL(0, outbox.pending_dropped_ranges());
    STRCMP_EQUAL("1,2,3", seqs_of(outbox.unacked()).c_str());
}

TEST(Outbox, MaxMessageSizeFillsAnEmptyOutboxExactly) {
    Outbox outbox(storage, sizeof storage, OverflowPolicy::kDropOldest, 1);
    for (int i = 0; i < 3; ++i) {
        CHECK(push_tagged(outbox, 100) == Status::kOk);
    }
    CHECK(push_tagged(outbox, outbox.max_message_size()) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(3, outbox.counters().dropped);
    UNSIGNED_LONGS_EQUAL(1, outbox.size());
    UNSIGNED_LONGS_EQUAL(1024, outbox.bytes_used());
    OutboxEntry entry;
    auto it = outbox.unacked();
    CHECK_TRUE(it.next(&entry));
    POINTERS_EQUAL(storage + Outbox::kEntryOverhead, entry.data);
    UNSIGNED_LONGS_EQUAL(1008, entry.size);
    CHECK_TRUE(payload_matches(entry));
    CHECK_FALSE(it.next(&entry));
}

TEST(Outbox, AHundredByteMessageUsesAHundredAndTwentyBytes) {
    alignas(8) static std::uint8_t large[4096];
    Outbox outbox(large, sizeof large, OverflowPolicy::kDropOldest, 1);
    UNSIGNED_LONGS_EQUAL(4096 - Outbox::kEntryOverhead, outbox.max_message_size());
    CHECK(push_tagged(outbox, 100) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(120, outbox.bytes_used());
    CHECK(push_tagged(outbox, 1) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(120 + 24, outbox.bytes_used());
    UNSIGNED_LONGS_EQUAL(4096, outbox.capacity());
}

TEST(Outbox, ZeroLengthMessagesTakeOnlyTheHeader) {
    Outbox outbox(storage, sizeof storage, OverflowPolicy::kRejectNewest, 1);
    std::uint64_t seq = 0;
    CHECK(outbox.push(nullptr, 0, &seq) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(1, seq);
    UNSIGNED_LONGS_EQUAL(Outbox::kEntryOverhead, outbox.bytes_used());
    OutboxEntry entry;
    auto it = outbox.unsent();
    CHECK_TRUE(it.next(&entry));
    UNSIGNED_LONGS_EQUAL(1, entry.seq);
    UNSIGNED_LONGS_EQUAL(0, entry.size);
    POINTERS_EQUAL(storage + Outbox::kEntryOverhead, entry.data);

    const std::uint8_t byte = 1;
    for (int i = 1; i < 64; ++i) {
        CHECK(outbox.push(&byte, 0) == Status::kOk);
    }
    UNSIGNED_LONGS_EQUAL(1024, outbox.bytes_used());
    CHECK(outbox.push(nullptr, 0) == Status::kNoSpace);
    UNSIGNED_LONGS_EQUAL(64, outbox.size());
    UNSIGNED_LONGS_EQUAL(64, outbox.ack(64));
}

TEST(Outbox, NullDataWithNonZeroSizeIsInvalid) {
    Outbox outbox(storage, sizeof storage, OverflowPolicy::kDropOldest, 1);
    CHECK(outbox.push(nullptr, 1) == Status::kInvalidArgument);
    CHECK(outbox.try_push(nullptr, 5000) == Status::kInvalidArgument);
    CHECK_TRUE(outbox.empty());
    UNSIGNED_LONGS_EQUAL(0, outbox.counters().rejected);
    UNSIGNED_LONGS_EQUAL(1, outbox.next_seq());
}

TEST(Outbox, WrapAroundKeepsPayloadsContiguous) {
    Outbox outbox(storage, sizeof storage, OverflowPolicy::kRejectNewest, 1);
    for (int i = 0; i < 8; ++i) {
        CHECK(push_tagged(outbox, 100) == Status::kOk);  // 120 bytes each, up to 960
    }
    outbox.mark_sent(8);
    UNSIGNED_LONGS_EQUAL(2, outbox.ack(2));
    // 216 bytes do not fit in the 64 left before the end: they go to the start.
    CHECK(push_tagged(outbox, 200) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(1024 - 240 + 216, outbox.bytes_used());

    OutboxEntry entry;
    auto unsent = outbox.unsent();
    CHECK_TRUE(unsent.next(&entry));
    UNSIGNED_LONGS_EQUAL(9, entry.seq);
    UNSIGNED_LONGS_EQUAL(200, entry.size);
    POINTERS_EQUAL(storage + Outbox::kEntryOverhead, entry.data);
    CHECK_TRUE(payload_matches(entry));
    CHECK_FALSE(unsent.next(&entry));

    STRCMP_EQUAL("3,4,5,6,7,8,9", seqs_of(outbox.unacked()).c_str());
    auto all = outbox.unacked();
    while (all.next(&entry)) {
        CHECK(entry.data >= storage);
        CHECK(entry.data + entry.size <= storage + sizeof storage);
        CHECK_TRUE(payload_matches(entry));
    }

    // Freeing the entry before the padding frees the padding too.
    UNSIGNED_LONGS_EQUAL(6, outbox.ack(8));
    UNSIGNED_LONGS_EQUAL(216, outbox.bytes_used());
    outbox.rewind();
    STRCMP_EQUAL("9", seqs_of(outbox.unsent()).c_str());
}

TEST(Outbox, WrapWithTooLittleRoomForAPaddingHeader) {
    Outbox outbox(storage, sizeof storage, OverflowPolicy::kRejectNewest, 1);
    CHECK(push_tagged(outbox, 100) == Status::kOk);  // [0, 120)
    CHECK(push_tagged(outbox, 880) == Status::kOk);  // [120, 1016): 8 bytes stay at the end
    UNSIGNED_LONGS_EQUAL(1, outbox.ack(1));
    CHECK(push_tagged(outbox, 50) == Status::kOk);  // 72 bytes at the start
    UNSIGNED_LONGS_EQUAL(896 + 8 + 72, outbox.bytes_used());

    OutboxEntry entry;
    auto it = outbox.unsent();
    CHECK_TRUE(it.next(&entry));
    UNSIGNED_LONGS_EQUAL(2, entry.seq);
    POINTERS_EQUAL(storage + 120 + Outbox::kEntryOverhead, entry.data);
    CHECK_TRUE(payload_matches(entry));
    CHECK_TRUE(it.next(&entry));
    UNSIGNED_LONGS_EQUAL(3, entry.seq);
    POINTERS_EQUAL(storage + Outbox::kEntryOverhead, entry.data);
    CHECK_TRUE(payload_matches(entry));
    CHECK_FALSE(it.next(&entry));

    outbox.mark_sent(1);
    STRCMP_EQUAL("3", seqs_of(outbox.unsent()).c_str());
    UNSIGNED_LONGS_EQUAL(1, outbox.ack(2));
    UNSIGNED_LONGS_EQUAL(72, outbox.bytes_used());
    STRCMP_EQUAL("3", seqs_of(outbox.unacked()).c_str());
}

TEST(Outbox, EntryExactlyFillingTheRemainingSpace) {
    Outbox outbox(storage, sizeof storage, OverflowPolicy::kRejectNewest, 1);
    CHECK(push_tagged(outbox, 100) == Status::kOk);
    CHECK(push_tagged(outbox, 100) == Status::kOk);
    // 240 used; 768 + 16 = 784 ends exactly at the end of storage.
    CHECK(push_tagged(outbox, 768) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(1024, outbox.bytes_used());
    CHECK(outbox.push(nullptr, 0) == Status::kNoSpace);

    UNSIGNED_LONGS_EQUAL(1, outbox.ack(1));
    // The freed 120 bytes at the start take a 104-byte payload exactly.
    CHECK(push_tagged(outbox, 105) == Status::kNoSpace);
    CHECK(push_tagged(outbox, 104) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(1024, outbox.bytes_used());
    CHECK(outbox.push(nullptr, 0) == Status::kNoSpace);

    // And a gap between the newest and the oldest entry filled exactly.
    UNSIGNED_LONGS_EQUAL(1, outbox.ack(2));
    CHECK(push_tagged(outbox, 104) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(1024, outbox.bytes_used());
    STRCMP_EQUAL("3,4,5", seqs_of(outbox.unacked()).c_str());
    OutboxEntry entry;
    auto it = outbox.unacked();
    while (it.next(&entry)) {
        CHECK_TRUE(payload_matches(entry));
    }
}

TEST(Outbox, AckOfUnsentEntriesMovesTheUnsentCursor) {
    Outbox outbox(storage, sizeof storage, OverflowPolicy::kDropOldest, 1);
    for (int i = 0; i < 5; ++i) {
        CHECK(push_tagged(outbox, 30) == Status::kOk);
    }
    outbox.mark_sent(2);
    UNSIGNED_LONGS_EQUAL(3, outbox.ack(3));
    UNSIGNED_LONGS_EQUAL(2, outbox.unsent_count());
    STRCMP_EQUAL("4,5", seqs_of(outbox.unsent()).c_str());

    UNSIGNED_LONGS_EQUAL(1, outbox.ack(4));
    STRCMP_EQUAL("5", seqs_of(outbox.unsent()).c_str());
    UNSIGNED_LONGS_EQUAL(1, outbox.ack(5));
    UNSIGNED_LONGS_EQUAL(0, outbox.unsent_count());
    CHECK(push_tagged(outbox, 30) == Status::kOk);
    STRCMP_EQUAL("6", seqs_of(outbox.unsent()).c_str());
}

TEST(Outbox, GapRangesMergeBeyondMaxPending) {
    alignas(8) std::uint8_t small[64];
    Outbox outbox(small, sizeof small, OverflowPolicy::kDropOldest, 1);
    for (int i = 0; i < 4; ++i) {  // four empty messages fill 64 bytes
        CHECK(outbox.push(nullptr, 0) == Status::kOk);
    }
    // Each round: one oldest is acknowledged, then two pushes evict one: drops 1, 3, 5, ...
    CHECK(outbox.push(nullptr, 0) == Status::kOk);
    for (int round = 0; round < 9; ++round) {
        UNSIGNED_LONGS_EQUAL(1, outbox.ack(outbox.oldest_seq()));
        CHECK(outbox.push(nullptr, 0) == Status::kOk);
        CHECK(outbox.push(nullptr, 0) == Status::kOk);
    }
    UNSIGNED_LONGS_EQUAL(10, outbox.counters().dropped);
    UNSIGNED_LONGS_EQUAL(Outbox::kMaxPendingGaps, outbox.pending_dropped_ranges());
    // The last range swallowed 17 and 19 and, with them, the acknowledged 16 and 18.
    STRCMP_EQUAL("1-1,3-3,5-5,7-7,9-9,11-11,13-13,15-19", take_all_ranges(outbox).c_str());

    // A range once taken is not extended: the next drop starts afresh.
    CHECK(outbox.push(nullptr, 0) == Status::kOk);
    STRCMP_EQUAL("20-20", take_all_ranges(outbox).c_str());
}

TEST(Outbox, StorageBelowSixtyFourBytesRefusesEveryPush) {
    alignas(8) std::uint8_t small[64];
    Outbox too_small(small, 63, OverflowPolicy::kDropOldest, 1);
    UNSIGNED_LONGS_EQUAL(0, too_small.max_message_size());
    CHECK(too_small.push(nullptr, 0) == Status::kTooLarge);
    CHECK(too_small.push_overwrite(small, 1) == Status::kTooLarge);
    UNSIGNED_LONGS_EQUAL(2, too_small.counters().rejected);
    CHECK_TRUE(too_small.empty());
    UNSIGNED_LONGS_EQUAL(0, too_small.bytes_used());
    STRCMP_EQUAL("", seqs_of(too_small.unacked()).c_str());

    Outbox null_storage(nullptr, 4096, OverflowPolicy::kDropOldest, 1);
    CHECK(null_storage.push(nullptr, 0) == Status::kTooLarge);

    // The payload is its own array: pushing bytes from inside the storage
    // would copy between overlapping ranges.
    const std::uint8_t payload[48] = {};
    Outbox smallest(small, 64, OverflowPolicy::kDropOldest, 1);
    UNSIGNED_LONGS_EQUAL(48, smallest.max_message_size());
    CHECK(smallest.push(payload, 48) == Status::kOk);
}

TEST(Outbox, MaxMessageSizeIsCappedByTheTwentyEightBitSizeField) {
    // Only the size is consulted; nothing is stored, so the small buffer is never overrun.
    const std::size_t claimed = std::size_t{0x0FFFFFFFu} + 4096u;
    Outbox outbox(storage, claimed, OverflowPolicy::kDropOldest, 1);
    UNSIGNED_LONGS_EQUAL(0x0FFFFFFFu, outbox.max_message_size());
    UNSIGNED_LONGS_EQUAL(Outbox::kMaxPayload, outbox.max_message_size());
    // A payload one byte past the field is refused before anything is read.
    CHECK(outbox.push(storage, Outbox::kMaxPayload + 1) == Status::kTooLarge);
    // Exactly at the field's limit nothing is capped.
    const Outbox exact(storage, Outbox::kMaxPayload + Outbox::kEntryOverhead + 1,
                       OverflowPolicy::kDropOldest, 1);
    UNSIGNED_LONGS_EQUAL(Outbox::kMaxPayload, exact.max_message_size());
}

TEST(Outbox, EachEntryKeepsItsKindAndPushTimeAtNoCost) {
    alignas(8) std::uint8_t memory[1024];
    Outbox outbox(memory, sizeof memory, OverflowPolicy::kDropOldest, 1);
    const std::uint8_t payload[] = {1, 2, 3};
    const tether::TimeMs times[] = {0, 1, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFFu};
    std::uint8_t kind = 0;
    for (const tether::TimeMs at : times) {
        CHECK(outbox.push(payload, sizeof payload, nullptr, kind, at) == Status::kOk);
        kind = static_cast<std::uint8_t>((kind + 7) & Outbox::kMaxKind);
    }
    // Each 3-byte message still takes 16 + 8 bytes.
    UNSIGNED_LONGS_EQUAL(5 * 24, outbox.bytes_used());
    OutboxEntry entry;
    kind = 0;
    auto it = outbox.unacked();
    for (const tether::TimeMs at : times) {
        CHECK_TRUE(it.next(&entry));
        UNSIGNED_LONGS_EQUAL(at, entry.pushed_at);
        UNSIGNED_LONGS_EQUAL(kind, entry.kind);
        UNSIGNED_LONGS_EQUAL(sizeof payload, entry.size);
        kind = static_cast<std::uint8_t>((kind + 7) & Outbox::kMaxKind);
    }
    CHECK_FALSE(it.next(&entry));
}

TEST(Outbox, AKindAboveFourBitsIsRefused) {
    alignas(8) std::uint8_t memory[256];
    Outbox outbox(memory, sizeof memory, OverflowPolicy::kDropOldest, 1);
    const std::uint8_t payload[] = {9};
    CHECK(outbox.push(payload, 1, nullptr, Outbox::kMaxKind + 1) == Status::kInvalidArgument);
    CHECK(outbox.try_push(payload, 1, nullptr, 0xFF) == Status::kInvalidArgument);
    CHECK(outbox.push_overwrite(payload, 1, nullptr, 0x80) == Status::kInvalidArgument);
    CHECK_TRUE(outbox.empty());
    UNSIGNED_LONGS_EQUAL(1, outbox.next_seq());
    UNSIGNED_LONGS_EQUAL(0, outbox.counters().rejected);
    CHECK(outbox.push(payload, 1, nullptr, Outbox::kMaxKind) == Status::kOk);
}

TEST(Outbox, NoPushTimeOrPayloadLooksLikeWrapPadding) {
    // The wrap point is kept in the outbox, not in storage: whatever the
    // payloads hold, the walk across it yields the same entries.
    alignas(8) std::uint8_t memory[256];
    for (const std::uint8_t fill : {std::uint8_t{0x00}, std::uint8_t{0xFF}, std::uint8_t{0x54}}) {
        std::memset(memory, fill, sizeof memory);
        Outbox outbox(memory, sizeof memory, OverflowPolicy::kDropOldest, 1);
        std::vector<std::uint8_t> payload(80, fill);
        for (int i = 0; i < 2; ++i) {
            CHECK(outbox.push(payload.data(), payload.size(), nullptr, 0, 0x44415054u) ==
                  Status::kOk);  // [0, 96), [96, 192)
        }
        UNSIGNED_LONGS_EQUAL(1, outbox.ack(1));
        CHECK(outbox.push(payload.data(), payload.size()) == Status::kOk);  // to 0: 64 padding
        STRCMP_EQUAL("2,3", seqs_of(outbox.unacked()).c_str());
        UNSIGNED_LONGS_EQUAL(96 + 64 + 96, outbox.bytes_used());
        UNSIGNED_LONGS_EQUAL(1, outbox.ack(2));
        STRCMP_EQUAL("3", seqs_of(outbox.unacked()).c_str());
        UNSIGNED_LONGS_EQUAL(96, outbox.bytes_used());
        CHECK(outbox.push(payload.data(), payload.size()) == Status::kOk);  // [96, 192)
        STRCMP_EQUAL("3,4", seqs_of(outbox.unacked()).c_str());
    }
}

TEST(Outbox, MaxMessageSizeIsKnownBeforeTheOutboxIsBuilt) {
    alignas(8) static std::uint8_t aligned[4200];
    for (std::size_t capacity = 0; capacity <= sizeof aligned; ++capacity) {
        const Outbox outbox(aligned, capacity, OverflowPolicy::kDropOldest, 1);
        UNSIGNED_LONGS_EQUAL(outbox.max_message_size(), Outbox::max_message_size_for(capacity));
    }
    static_assert(Outbox::max_message_size_for(Outbox::kMinCapacity - 1) == 0, "");
    static_assert(Outbox::max_message_size_for(4103) == 4096 - Outbox::kEntryOverhead, "");
    if (sizeof(std::size_t) > 4) {
        UNSIGNED_LONGS_EQUAL(Outbox::kMaxPayload,
                             Outbox::max_message_size_for(std::size_t{0xFFFFFFFFu} + 4096u));
    }
}

TEST(Outbox, UnalignedStorageKeepsEntriesAligned) {
    // Starts 1 byte past an 8-byte boundary: 7 bytes skipped, 93 -> 88 usable.
    Outbox outbox(storage + 1, 100, OverflowPolicy::kDropOldest, 1);
    UNSIGNED_LONGS_EQUAL(88 - Outbox::kEntryOverhead, outbox.max_message_size());
    CHECK(push_tagged(outbox, 3) == Status::kOk);
    OutboxEntry entry;
    auto it = outbox.unsent();
    CHECK_TRUE(it.next(&entry));
    POINTERS_EQUAL(storage + 8 + Outbox::kEntryOverhead, entry.data);
    CHECK_TRUE(payload_matches(entry));
}

TEST(Outbox, PolicyNamesRoundTrip) {
    STRCMP_EQUAL("drop_oldest", tether::to_string(OverflowPolicy::kDropOldest));
    STRCMP_EQUAL("reject_newest", tether::to_string(OverflowPolicy::kRejectNewest));
    STRCMP_EQUAL("unknown", tether::to_string(static_cast<OverflowPolicy>(7)));

    OverflowPolicy policy = OverflowPolicy::kRejectNewest;
    CHECK_TRUE(tether::parse_overflow_policy("drop_oldest", &policy));
    CHECK(policy == OverflowPolicy::kDropOldest);
    CHECK_TRUE(tether::parse_overflow_policy("reject_newest", &policy));
    CHECK(policy == OverflowPolicy::kRejectNewest);

    CHECK_FALSE(tether::parse_overflow_policy("drop-oldest", &policy));
    CHECK_FALSE(tether::parse_overflow_policy("", &policy));
    CHECK_FALSE(tether::parse_overflow_policy(nullptr, &policy));
    CHECK_FALSE(tether::parse_overflow_policy("drop_oldest", nullptr));
    CHECK(policy == OverflowPolicy::kRejectNewest);
}

TEST(Outbox, ThePolicyCountCoversEveryNamedPolicy) {
    for (std::size_t i = 0; i < tether::kOverflowPolicyCount; ++i) {
        const auto policy = static_cast<OverflowPolicy>(i);
        OverflowPolicy parsed = static_cast<OverflowPolicy>(9);
        CHECK_TRUE(tether::parse_overflow_policy(tether::to_string(policy), &parsed));
        CHECK(parsed == policy);
    }
    STRCMP_EQUAL("unknown",
                 tether::to_string(static_cast<OverflowPolicy>(tether::kOverflowPolicyCount)));
}

TEST(Outbox, DrainCyclesNeverAllocate) {
    alignas(8) static std::uint8_t large[4096];
    static std::uint8_t payload[200];
    for (std::size_t i = 0; i < sizeof payload; ++i) {
        payload[i] = static_cast<std::uint8_t>(i);
    }
    Outbox outbox(large, sizeof large, OverflowPolicy::kDropOldest, 1);
    std::size_t failures = 0;
    std::uint64_t bytes_drained = 0;
    std::size_t allocations = 0;
    {
        tether::test::AllocationCounter counter;
        for (std::size_t cycle = 0; cycle < 10000; ++cycle) {
            if (outbox.push(payload, cycle % sizeof payload) != Status::kOk) {
                ++failures;
            }
            std::size_t drained = 0;
            OutboxEntry entry;
            for (auto it = outbox.unsent(); it.next(&entry);) {
                bytes_drained += entry.size;
                ++drained;
            }
            outbox.mark_sent(drained);
            if (cycle % 4 == 3) {
                (void)outbox.ack(outbox.next_seq() - 2);  // leave one in flight
            }
        }
        allocations = counter.count();
    }
    UNSIGNED_LONGS_EQUAL(0, allocations);
    UNSIGNED_LONGS_EQUAL(0, failures);
    // Every message was drained exactly once: sizes 0..199 repeated 50 times.
    UNSIGNED_LONGS_EQUAL(50u * (199u * 200u / 2u), bytes_drained);
    UNSIGNED_LONGS_EQUAL(10000, outbox.counters().pushed);
    UNSIGNED_LONGS_EQUAL(0, outbox.counters().dropped);
}

// ---------------------------------------------------------------------------
// Model-based test: random operations against a std::deque model.

namespace {

// Deterministic pseudo-random numbers (Knuth's MMIX LCG), high bits used.
class Lcg {
  public:
    explicit Lcg(std::uint64_t seed) : state_(seed) {}
    std::uint32_t next() {
        state_ = state_ * 6364136223846793005ull + 1442695040888963407ull;
        return static_cast<std::uint32_t>(state_ >> 33);
    }
    std::size_t below(std::size_t bound) { return next() % bound; }

  private:
    std::uint64_t state_;
};

struct ModelEntry {
    std::uint64_t seq;
    std::vector<std::uint8_t> payload;
    std::uint8_t kind;
    tether::TimeMs pushed_at;
    bool sent;
    std::size_t offset;         // where its header sits in storage
    std::size_t span;           // header + payload rounded up to 8
    std::size_t padding_after;  // unused bytes up to the end of storage when the next wrapped
};

// What the outbox should do, written from its documentation: entries in seq
// order, each placed right after the newest one if it fits before the end of
// storage, otherwise at the start if that does not overlap a held entry.
class OutboxModel {
  public:
    OutboxModel(std::size_t usable, std::uint64_t first_seq)
        : usable_(usable), next_seq_(first_seq) {}

    std::size_t max_message_size() const { return usable_ - Outbox::kEntryOverhead; }

    Status push(const std::vector<std::uint8_t>& payload, bool may_evict, std::uint64_t* seq,
                std::uint8_t kind = 0, tether::TimeMs pushed_at = 0) {
        if (payload.size() > max_message_size()) {
            ++counters.rejected;
            return Status::kTooLarge;
        }
        const std::size_t span = Outbox::kEntryOverhead + (payload.size() + 7) / 8 * 8;
        std::size_t offset = 0;
        while (!place(span, &offset)) {
            if (!may_evict) {
                ++counters.rejected;
                return Status::kNoSpace;
            }
            record_drop(entries.front().seq);
            entries.pop_front();
            ++counters.dropped;
        }
        if (!entries.empty() && offset == 0) {
            ModelEntry& newest = entries.back();
            newest.padding_after = usable_ - (newest.offset + newest.span);
            ++wraps;
        }
        entries.push_back(ModelEntry{next_seq_, payload, kind, pushed_at, false, offset, span, 0});
        *seq = next_seq_++;
        ++counters.pushed;
        return Status::kOk;
    }

    std::size_t ack(std::uint64_t seq) {
        std::size_t freed = 0;
        while (!entries.empty() && entries.front().seq <= seq) {
            entries.pop_front();
            ++freed;
        }
        counters.acked += freed;
        return freed;
    }

    void mark_sent(std::size_t count) {
        for (ModelEntry& entry : entries) {
            if (count == 0) {
                break;
            }
            if (!entry.sent) {
                entry.sent = true;
                --count;
            }
        }
    }

    void rewind() {
        for (ModelEntry& entry : entries) {
            entry.sent = false;
        }
    }

    bool take_dropped_range(SeqRange* range) {
        if (ranges.empty()) {
            return false;
        }
        *range = ranges.front();
        ranges.pop_front();
        return true;
    }

    std::uint64_t next_seq() const { return next_seq_; }
    std::uint64_t oldest_seq() const { return entries.empty() ? next_seq_ : entries.front().seq; }
    std::size_t bytes_used() const {
        std::size_t used = 0;
        for (const ModelEntry& entry : entries) {
            used += entry.span + entry.padding_after;
        }
        return used;
    }

    std::deque<ModelEntry> entries;
    std::deque<SeqRange> ranges;
    tether::OutboxCounters counters;
    std::size_t wraps = 0;

  private:
    bool overlaps_held(std::size_t offset, std::size_t span) const {
        for (const ModelEntry& entry : entries) {
            const std::size_t end = entry.offset + entry.span + entry.padding_after;
            if (offset < end && entry.offset < offset + span) {
                return true;
            }
        }
        return false;
    }

    bool place(std::size_t span, std::size_t* offset) const {
        if (!entries.empty()) {
            const std::size_t after_newest = entries.back().offset + entries.back().span;
            if (after_newest + span <= usable_ && !overlaps_held(after_newest, span)) {
                *offset = after_newest;
                return true;
            }
        }
        *offset = 0;
        return span <= usable_ && !overlaps_held(0, span);
    }

    void record_drop(std::uint64_t seq) {
        if (!ranges.empty() && ranges.back().last + 1 == seq) {
            ranges.back().last = seq;
        } else if (ranges.size() == Outbox::kMaxPendingGaps) {
            ranges.back().last = seq;  // documented merge: may cover acknowledged seqs
        } else {
            ranges.push_back(SeqRange{seq, seq});
        }
    }

    std::size_t usable_;
    std::uint64_t next_seq_;
};

// Compares one iterator walk with the model entries it should yield; "" when equal.
std::string compare_walk(Outbox::Iterator it, const OutboxModel& model, bool unsent_only,
                         const std::uint8_t* storage, std::size_t capacity) {
    OutboxEntry entry;
    for (const ModelEntry& expected : model.entries) {
        if (unsent_only && expected.sent) {
            continue;
        }
        const std::string where = " at seq " + std::to_string(expected.seq);
        if (!it.next(&entry)) {
            return "walk ended early" + where;
        }
        if (entry.seq != expected.seq) {
            return "seq " + std::to_string(entry.seq) + where;
        }
        if (entry.size != expected.payload.size()) {
            return "size " + std::to_string(entry.size) + where;
        }
        if (entry.kind != expected.kind) {
            return "kind " + std::to_string(entry.kind) + where;
        }
        if (entry.pushed_at != expected.pushed_at) {
            return "pushed_at " + std::to_string(entry.pushed_at) + where;
        }
        if (entry.data != storage + expected.offset + Outbox::kEntryOverhead) {
            return "data pointer" + where;
        }
        if (entry.data + entry.size > storage + capacity) {
            return "payload runs past storage" + where;
        }
        if (entry.size > 0 && std::memcmp(entry.data, expected.payload.data(), entry.size) != 0) {
            return "payload bytes" + where;
        }
    }
    if (it.next(&entry)) {
        return "walk yields extra seq " + std::to_string(entry.seq);
    }
    return "";
}

std::string compare(const Outbox& outbox, const OutboxModel& model, const std::uint8_t* storage,
                    std::size_t capacity) {
    std::size_t model_unsent = 0;
    for (const ModelEntry& entry : model.entries) {
        model_unsent += entry.sent ? 0 : 1;
    }
    const tether::OutboxCounters& c = outbox.counters();
    const tether::OutboxCounters& m = model.counters;
    if (outbox.size() != model.entries.size()) {
        return "size";
    }
    if (outbox.empty() != model.entries.empty()) {
        return "empty";
    }
    if (outbox.unsent_count() != model_unsent) {
        return "unsent_count";
    }
    if (outbox.bytes_used() != model.bytes_used()) {
        return "bytes_used " + std::to_string(outbox.bytes_used()) + " vs " +
               std::to_string(model.bytes_used());
    }
    if (outbox.oldest_seq() != model.oldest_seq() || outbox.next_seq() != model.next_seq()) {
        return "oldest_seq or next_seq";
    }
    if (c.pushed != m.pushed || c.dropped != m.dropped || c.rejected != m.rejected ||
        c.acked != m.acked) {
        return "counters";
    }
    if (outbox.pending_dropped_ranges() != model.ranges.size()) {
        return "pending_dropped_ranges";
    }
    const std::string unacked = compare_walk(outbox.unacked(), model, false, storage, capacity);
    if (!unacked.empty()) {
        return "unacked(): " + unacked;
    }
    const std::string unsent = compare_walk(outbox.unsent(), model, true, storage, capacity);
    if (!unsent.empty()) {
        return "unsent(): " + unsent;
    }
    return "";
}

struct ModelRunStats {
    std::size_t wraps;
    std::uint64_t dropped;
    std::uint64_t rejected;
};

// Runs `steps` random operations on both and returns the first difference ("" if none).
std::string run_against_model(std::size_t capacity, OverflowPolicy policy, std::uint64_t seed,
                              std::size_t steps, ModelRunStats* stats) {
    alignas(8) static std::uint8_t storage[4096];
    std::memset(storage, 0xEE, sizeof storage);
    Lcg random(seed);
    const std::uint64_t first_seq = 1 + random.below(1000);
    Outbox outbox(storage, capacity, policy, first_seq);
    OutboxModel model(capacity, first_seq);
    const bool drop_oldest = policy == OverflowPolicy::kDropOldest;

    for (std::size_t step = 0; step < steps; ++step) {
        const std::string at = " (step " + std::to_string(step) + ")";
        const std::size_t roll = random.below(100);
        if (roll < 45) {
            std::size_t size = random.below(301);
            if (random.below(50) == 0) {
                size = model.max_message_size() + random.below(2);  // at and past the limit
            }
            std::vector<std::uint8_t> payload(size);
            for (std::uint8_t& byte : payload) {
                byte = static_cast<std::uint8_t>(random.next());
            }
            const std::size_t variant = random.below(3);
            // Kinds and times over their whole range, so the packed header
            // keeps size, kind and time apart.
            const auto kind = static_cast<std::uint8_t>(random.below(Outbox::kMaxKind + 1u));
            const tether::TimeMs pushed_at =
                random.below(8) == 0 ? 0xFFFFFFFFu : random.next() * 3u;
            std::uint64_t got_seq = 0;
            std::uint64_t want_seq = 0;
            Status got;
            Status want;
            if (variant == 0) {
                got = outbox.push(payload.data(), size, &got_seq, kind, pushed_at);
                want = model.push(payload, drop_oldest, &want_seq, kind, pushed_at);
            } else if (variant == 1) {
                got = outbox.push_overwrite(payload.data(), size, &got_seq, kind, pushed_at);
                want = model.push(payload, true, &want_seq, kind, pushed_at);
            } else {
                got = outbox.try_push(payload.data(), size, &got_seq, kind, pushed_at);
                want = model.push(payload, false, &want_seq, kind, pushed_at);
            }
            if (got != want) {
                return std::string("push status ") + tether::to_string(got) + " vs " +
                       tether::to_string(want) + at;
            }
            if (got_seq != want_seq) {
                return "push seq" + at;
            }
        } else if (roll < 60) {
            const std::uint64_t low = model.oldest_seq() > 2 ? model.oldest_seq() - 2 : 0;
            const std::uint64_t seq =
                low + random.below(static_cast<std::size_t>(model.next_seq() + 2 - low));
            if (outbox.ack(seq) != model.ack(seq)) {
                return "ack " + std::to_string(seq) + at;
            }
        } else if (roll < 75) {
            const std::size_t count = random.below(10) == 0 ? 1000 : random.below(4);
            outbox.mark_sent(count);
            model.mark_sent(count);
        } else if (roll < 80) {
            outbox.rewind();
            model.rewind();
        } else if (roll < 90) {
            SeqRange got{0, 0};
            SeqRange want{0, 0};
            const bool got_any = outbox.take_dropped_range(&got);
            if (got_any != model.take_dropped_range(&want)) {
                return "take_dropped_range result" + at;
            }
            if (got_any && (got.first != want.first || got.last != want.last)) {
                return "dropped range " + range_text(got) + " vs " + range_text(want) + at;
            }
        } else {
            // The network layer's drain: write what the iterator yields, then mark it sent.
            const std::size_t limit = random.below(6);
            std::size_t written = 0;
            OutboxEntry entry;
            for (auto it = outbox.unsent(); written < limit && it.next(&entry);) {
                ++written;
            }
            outbox.mark_sent(written);
            model.mark_sent(written);
        }
        const std::string difference = compare(outbox, model, storage, capacity);
        if (!difference.empty()) {
            return difference + at;
        }
    }
    stats->wraps += model.wraps;
    stats->dropped += model.counters.dropped;
    stats->rejected += model.counters.rejected;
    return "";
}

}  // namespace

TEST_GROUP(OutboxModel){};

TEST(OutboxModel, RandomOperationsMatchTheModel) {
    const std::uint64_t seeds[] = {1, 2, 3, 0xBEEF, 20240611};
    const std::size_t capacities[] = {1024, 4096};
    const OverflowPolicy policies[] = {OverflowPolicy::kDropOldest, OverflowPolicy::kRejectNewest};
    ModelRunStats stats{0, 0, 0};
    for (std::size_t capacity : capacities) {
        for (OverflowPolicy policy : policies) {
            for (std::uint64_t seed : seeds) {
                const std::string result = run_against_model(capacity, policy, seed, 4000, &stats);
                const std::string label = std::to_string(capacity) + " " +
                                          tether::to_string(policy) + " seed " +
                                          std::to_string(seed) + ": ";
                STRCMP_EQUAL(label.c_str(), (label + result).c_str());
            }
        }
    }
    // The runs must actually reach the interesting paths.
    CHECK(stats.wraps > 1000);
    CHECK(stats.dropped > 1000);
    CHECK(stats.rejected > 1000);
}

TEST(OutboxModel, ModelCatchesAWrongPayload) {
    // The comparison itself must notice corruption, or the model test proves nothing.
    alignas(8) std::uint8_t storage[kStorageSize];
    Outbox outbox(storage, sizeof storage, OverflowPolicy::kDropOldest, 1);
    OutboxModel model(sizeof storage, 1);
    const std::vector<std::uint8_t> payload = payload_for(1, 40);
    std::uint64_t seq = 0;
    CHECK(outbox.push(payload.data(), payload.size()) == Status::kOk);
    CHECK(model.push(payload, true, &seq) == Status::kOk);
    STRCMP_EQUAL("", compare(outbox, model, storage, sizeof storage).c_str());
    storage[Outbox::kEntryOverhead + 5] ^= 0x01;
    STRCMP_CONTAINS("payload bytes", compare(outbox, model, storage, sizeof storage).c_str());
}

TEST(Outbox, RenumberGivesHeldEntriesNewConsecutiveSeqs) {
    std::uint8_t memory[1024];
    tether::Outbox outbox(memory, sizeof memory, tether::OverflowPolicy::kDropOldest, 7);
    const std::uint8_t a[] = {'a'};
    const std::uint8_t b[] = {'b'};
    CHECK(outbox.push(a, 1) == tether::Status::kOk);
    CHECK(outbox.push(b, 1) == tether::Status::kOk);
    outbox.mark_sent(1);
    outbox.renumber(100);
    UNSIGNED_LONGS_EQUAL(100, outbox.oldest_seq());
    UNSIGNED_LONGS_EQUAL(102, outbox.next_seq());
    tether::OutboxEntry entry;
    tether::Outbox::Iterator it = outbox.unacked();
    CHECK(it.next(&entry));
    UNSIGNED_LONGS_EQUAL(100, entry.seq);
    CHECK_EQUAL('a', entry.data[0]);
    CHECK(it.next(&entry));
    UNSIGNED_LONGS_EQUAL(101, entry.seq);
    CHECK_EQUAL(1, outbox.unsent_count());  // sent state kept
    std::uint64_t seq = 0;
    CHECK(outbox.push(a, 1, &seq) == tether::Status::kOk);
    UNSIGNED_LONGS_EQUAL(102, seq);
    tether::Outbox empty(memory, sizeof memory, tether::OverflowPolicy::kDropOldest, 1);
    empty.renumber(0);
    UNSIGNED_LONGS_EQUAL(1, empty.next_seq());
    empty.renumber(50);
    UNSIGNED_LONGS_EQUAL(50, empty.next_seq());
}

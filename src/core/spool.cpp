// SPDX-License-Identifier: MIT
// Spool layout and invariants (the format itself is in include/tether/spool.h).
//
// Store offsets. The header block occupies [0, 128): slot s at s * 64. Region
// r starts at 128 + r * region_size_. Everything the spool tracks about the
// journal is a region offset of the active region.
//
// Journal state, in region offsets of the active generation:
//
//   0 ...... live_offset_ ............ written_end_ ......... + pending_
//   [ dead records ][ live and dead records ][ records in buffer_ ]
//
// Records before live_offset_ are all dead (ACK/DROP records, or messages at
// or below acked_through_); written_end_ is where the next buffered record
// will land in storage. buffer_[0, pending_) holds records not written yet;
// buffer_ is only used as scan scratch (recovery, compaction, advancing
// live_offset_) while pending_ == 0.
//
// Scanning (next_record) reads the region in chunks of up to buffer_size_
// bytes, so a journal of small records costs one read per chunk, not one per
// record. A record never exceeds buffer_size_, so a record that does not fit
// the rest of the chunk is re-read from its start. During compaction the live
// records are moved to the front of the same buffer (they only move towards
// its start, behind the scan position) with their tag and CRC rewritten for the
// new generation, and the front is written to the new region before each
// refill.
//
// End of the journal. Every write of records (and every compaction, and the
// creation of a fresh store) is followed by kRecordOverhead zero bytes, the
// terminator, which the next write overwrites; so the journal ends at a
// header of zeros, whatever an older generation left further on. Anything
// else that fails a check (type, version, generation tag, length, CRC, seq
// order) is damage: a torn write (possibly one that lost only its terminator)
// or bit rot.
#include "tether/spool.h"

#include "generation.h"
#include "little_endian.h"

#include <cstring>

#include "tether/crc32.h"

namespace tether {
namespace {

constexpr std::size_t kSlotSize = 64;
constexpr std::uint8_t kSlotMagic[4] = {'T', 'S', 'P', 'L'};
constexpr std::uint16_t kFormatVersion = 1;
constexpr std::size_t kSlotGenerationOffset = 8;
constexpr std::size_t kSlotRegionSizeOffset = 12;
constexpr std::size_t kSlotActiveRegionOffset = 16;
constexpr std::size_t kSlotHighestSeqOffset = 24;
constexpr std::size_t kSlotAckedOffset = 32;
constexpr std::size_t kSlotCrcOffset = 60;
constexpr std::uint32_t kMinMaxBytes = 256;
constexpr std::uint32_t kMinRegionSize = (kMinMaxBytes - Spool::kHeaderBlockSize) / 2;
constexpr std::uint32_t kMaxRegionSize = (0xFFFFFFFFu - Spool::kHeaderBlockSize) / 2;

// What error() says about each refusal and failure.
constexpr const char* kNoBuffer = "no buffer";
constexpr const char* kSmallBuffer = "buffer smaller than Spool::kMinBufferSize";
constexpr const char* kSmallStore = "max_bytes below 256";
constexpr const char* kRecordBeyondBuffer = "buffer smaller than the spool's largest record";
constexpr const char* kNotRecovered = "recover() has not succeeded";
constexpr const char* kSeqNotIncreasing = "seq not above every seq appended or acknowledged";
constexpr const char* kNullData = "null data with a nonzero size";
constexpr const char* kRecordTooLarge = "record larger than the buffer or a region allows";
constexpr const char* kStorageFailed = "a read, write or sync of the store failed";

constexpr std::uint8_t kTypeMessage = 'M';
constexpr std::uint8_t kTypeAck = 'A';
constexpr std::uint8_t kTypeDrop = 'D';
constexpr std::size_t kRecordVersionOffset = 1;
constexpr std::size_t kRecordTagOffset = 2;
constexpr std::size_t kRecordLengthOffset = 4;
constexpr std::size_t kRecordSeqOffset = 8;
constexpr std::size_t kRecordCrcOffset = 16;

static_assert(Spool::kHeaderBlockSize == 2 * kSlotSize, "two slots make the header block");
static_assert(Spool::kRecordOverhead == kRecordCrcOffset + 4, "the CRC ends the record header");

std::uint16_t tag_of(std::uint32_t generation) {
    return static_cast<std::uint16_t>(generation & 0xFFFFu);
}

std::uint32_t base_of(std::uint8_t region, std::uint32_t region_size) {
    return static_cast<std::uint32_t>(Spool::kHeaderBlockSize) + region * region_size;
}

bool all_zero(const std::uint8_t* data, std::size_t size) {
    for (std::size_t i = 0; i < size; ++i) {
        if (data[i] != 0) {
            return false;
        }
    }
    return true;
}

// CRC of the record header before the CRC field, then the payload.
std::uint32_t record_crc(const std::uint8_t* header, const std::uint8_t* payload,
                         std::size_t length) {
    const std::uint32_t crc = crc32(header, kRecordCrcOffset);
    return length == 0 ? crc : crc32(payload, length, crc);
}

struct SlotContents {
    std::uint32_t generation;
    std::uint32_t region_size;
    std::uint8_t region;
    std::uint64_t highest_seq;
    std::uint64_t acked_through;
};

bool decode_slot(const std::uint8_t* slot, std::size_t available, SlotContents* out) {
    if (available < kSlotSize || std::memcmp(slot, kSlotMagic, 4) != 0 ||
        get_le(slot + 4, 2) != kFormatVersion ||
        get_le32(slot + kSlotCrcOffset) != crc32(slot, kSlotCrcOffset)) {
        return false;
    }
    out->generation = get_le32(slot + kSlotGenerationOffset);
    out->region_size = get_le32(slot + kSlotRegionSizeOffset);
    out->region = slot[kSlotActiveRegionOffset];
    out->highest_seq = get_le(slot + kSlotHighestSeqOffset, 8);
    out->acked_through = get_le(slot + kSlotAckedOffset, 8);
    // A region size no max_bytes from kMinMaxBytes to 4 GiB gives is damage.
    return out->region <= 1 && out->generation != 0 && out->region_size >= kMinRegionSize &&
           out->region_size <= kMaxRegionSize;
}

}  // namespace

// A scan position in one region, plus the compaction output when compacting.
struct Spool::Cursor {
    std::uint32_t base = 0;         // store offset of the region scanned
    std::uint32_t pos = 0;          // region offset of the next record
    std::uint32_t limit = 0;        // region offset where the scan ends
    std::uint32_t chunk_start = 0;  // region offset of buffer_[0]
    std::size_t chunk_len = 0;
    bool loaded = false;
    std::uint16_t tag = 0;
    std::uint64_t previous_message_seq = 0;
    std::size_t truncated = 0;  // set with Scan::kDamaged
    bool compacting = false;
    std::uint32_t out_base = 0;  // store offset of the region written
    std::uint32_t out_pos = 0;   // region offset where buffer_[0, out_len) goes
    std::size_t out_len = 0;
};

struct Spool::Record {
    std::uint8_t type;
    std::uint64_t seq;
    std::size_t span;
    std::uint8_t* header;  // in buffer_, valid until the next scan step
};

// kTooLarge: an intact record (its CRC checked in pieces) that the buffer
// cannot hold, so it cannot be replayed.
enum class Spool::Scan : std::uint8_t { kRecord, kEnd, kDamaged, kTooLarge };

Spool::Spool(Storage& storage, std::uint8_t* buffer, std::size_t buffer_size,
             const SpoolConfig& config)
    : storage_(storage),
      buffer_(buffer),
      buffer_size_(buffer_size),
      config_(config),
      configured_region_size_(
          config.max_bytes >= kMinMaxBytes
              ? (config.max_bytes - static_cast<std::uint32_t>(kHeaderBlockSize)) / 2
              : 0),
      region_size_(configured_region_size_) {}

std::uint32_t Spool::region_base(std::uint8_t region) const {
    return base_of(region, region_size_);
}

Status Spool::fail(Status status, const char* why) {
    error_ = why;
    return status;
}

Status Spool::read_header(bool* found) {
    std::uint8_t block[kHeaderBlockSize];
    std::size_t got = 0;
    if (storage_.read(0, block, sizeof block, &got) != Status::kOk) {
        return Status::kIoError;
    }
    *found = false;
    SlotContents best{};
    for (std::uint8_t slot = 0; slot < 2; ++slot) {
        const std::size_t start = slot * kSlotSize;
        SlotContents contents{};
        if (!decode_slot(block + start, got > start ? got - start : 0, &contents)) {
            continue;
        }
        if (!*found || generation_is_newer(contents.generation, best.generation)) {
            best = contents;
            newest_slot_ = slot;
            *found = true;
        }
    }
    if (!*found) {
        return Status::kOk;
    }
    region_size_ = best.region_size;  // the layout it was written with
    generation_ = best.generation;
    active_region_ = best.region;
    highest_seq_ = best.highest_seq;
    acked_through_ = best.acked_through;
    return Status::kOk;
}

// Writes the slot not holding the newest generation, then syncs: the commit
// point of a new generation (in a layout of `region_size`-byte regions).
Status Spool::write_header(std::uint32_t generation, std::uint8_t region, std::uint32_t region_size,
                           bool* slot_written) {
    std::uint8_t slot[kSlotSize] = {};
    std::memcpy(slot, kSlotMagic, 4);
    put_le(slot + 4, kFormatVersion, 2);
    put_le(slot + kSlotGenerationOffset, generation, 4);
    put_le(slot + kSlotRegionSizeOffset, region_size, 4);
    slot[kSlotActiveRegionOffset] = region;
    put_le(slot + kSlotHighestSeqOffset, highest_seq_, 8);
    put_le(slot + kSlotAckedOffset, acked_through_, 8);
    put_le(slot + kSlotCrcOffset, crc32(slot, kSlotCrcOffset), 4);
    const auto target = static_cast<std::uint8_t>(1 - newest_slot_);
    if (storage_.write(static_cast<std::uint32_t>(target * kSlotSize), slot, sizeof slot) !=
        Status::kOk) {
        return Status::kIoError;
    }
    counters_.bytes_written += sizeof slot;
    *slot_written = true;
    if (sync_storage() != Status::kOk) {
        return Status::kIoError;
    }
    newest_slot_ = target;
    return Status::kOk;
}

// Every check of a record header but its CRC.
bool Spool::plausible_header(const std::uint8_t* header, const Cursor& cursor) {
    const std::uint8_t type = header[0];
    const std::uint32_t length = get_le32(header + kRecordLengthOffset);
    const std::uint64_t seq = get_le(header + kRecordSeqOffset, 8);
    const bool known_type = type == kTypeMessage || type == kTypeAck || type == kTypeDrop;
    return known_type && header[kRecordVersionOffset] == kFormatVersion &&
           get_le(header + kRecordTagOffset, 2) == cursor.tag &&
           (type == kTypeMessage || length == 0) && seq != 0 &&
           (type != kTypeMessage || seq > cursor.previous_message_seq);
}

// The record at cursor->pos does not fit buffer_: checks its CRC a buffer at a
// time. buffer_ is clobbered, so the cursor reloads afterwards.
Status Spool::check_large_record(Cursor* cursor, bool* intact) {
    std::uint8_t header[kRecordOverhead];
    std::memcpy(header, buffer_ + (cursor->pos - cursor->chunk_start), kRecordOverhead);
    cursor->loaded = false;
    *intact = false;
    if (!plausible_header(header, *cursor)) {
        return Status::kOk;
    }
    std::uint32_t crc = crc32(header, kRecordCrcOffset);
    std::uint32_t at = cursor->pos + static_cast<std::uint32_t>(kRecordOverhead);
    std::size_t left = get_le32(header + kRecordLengthOffset);
    while (left > 0) {
        std::size_t got = 0;
        const std::size_t want = left < buffer_size_ ? left : buffer_size_;
        if (storage_.read(cursor->base + at, buffer_, want, &got) != Status::kOk) {
            return Status::kIoError;
        }
        if (got < want) {
            return Status::kOk;  // the store ends inside it
        }
        crc = crc32(buffer_, got, crc);
        at += static_cast<std::uint32_t>(got);
        left -= got;
    }
    *intact = crc == get_le32(header + kRecordCrcOffset);
    return Status::kOk;
}

Status Spool::next_record(Cursor* cursor, Record* record, Scan* scan) {
    *scan = Scan::kEnd;
    if (cursor->pos >= cursor->limit) {
        return Status::kOk;
    }
    for (;;) {
        const std::size_t offset = cursor->pos - cursor->chunk_start;
        const std::size_t available = cursor->loaded ? cursor->chunk_len - offset : 0;
        const std::uint8_t* header = buffer_ + offset;
        // 64-bit: a corrupt length must not wrap on a 32-bit size_t.
        std::uint64_t wanted = kRecordOverhead;
        if (available >= kRecordOverhead) {
            wanted += get_le32(header + kRecordLengthOffset);
        }
        if (available >= wanted && wanted <= buffer_size_) {
            break;  // the whole record is in the chunk
        }
        if (!cursor->loaded || offset > 0) {
            // Refill from the record's start; compaction output goes out first.
            if (cursor->compacting && cursor->out_len > 0) {
                if (storage_.write(cursor->out_base + cursor->out_pos, buffer_, cursor->out_len) !=
                    Status::kOk) {
                    return Status::kIoError;
                }
                counters_.bytes_written += cursor->out_len;
                cursor->out_pos += static_cast<std::uint32_t>(cursor->out_len);
                cursor->out_len = 0;
            }
            const std::size_t room = cursor->limit - cursor->pos;
            std::size_t got = 0;
            if (storage_.read(cursor->base + cursor->pos, buffer_,
                              room < buffer_size_ ? room : buffer_size_, &got) != Status::kOk) {
                return Status::kIoError;
            }
            cursor->chunk_start = cursor->pos;
            cursor->chunk_len = got;
            cursor->loaded = true;
            continue;
        }
        // The chunk starts at the record and still cannot hold it: the store or
        // the region ends inside it, its length is beyond any record, or it is
        // intact but larger than this buffer (written with a larger one).
        const std::size_t present = available < kRecordOverhead ? available : kRecordOverhead;
        if (all_zero(header, present)) {
            return Status::kOk;  // never written
        }
        if (available >= kRecordOverhead && cursor->pos + wanted <= cursor->limit &&
            !cursor->compacting) {
            bool intact = false;
            if (check_large_record(cursor, &intact) != Status::kOk) {
                return Status::kIoError;
            }
            if (intact) {
                *scan = Scan::kTooLarge;
                return Status::kOk;
            }
        }
        *scan = Scan::kDamaged;
        cursor->truncated = available;
        return Status::kOk;
    }

    std::uint8_t* header = buffer_ + (cursor->pos - cursor->chunk_start);
    const std::uint8_t type = header[0];
    const std::uint32_t length = get_le32(header + kRecordLengthOffset);
    const std::uint64_t seq = get_le(header + kRecordSeqOffset, 8);
    const std::size_t span = kRecordOverhead + length;
    if (all_zero(header, kRecordOverhead)) {
        return Status::kOk;
    }
    const bool intact =
        plausible_header(header, *cursor) &&
        get_le32(header + kRecordCrcOffset) == record_crc(header, header + kRecordOverhead, length);
    if (!intact) {
        *scan = Scan::kDamaged;
        cursor->truncated = span;
        return Status::kOk;
    }
    if (type == kTypeMessage) {
        cursor->previous_message_seq = seq;
    }
    record->type = type;
    record->seq = seq;
    record->span = span;
    record->header = header;
    cursor->pos += static_cast<std::uint32_t>(span);
    *scan = Scan::kRecord;
    return Status::kOk;
}

Status Spool::recover(Visitor visit, void* ctx, SpoolRecovery* report) {
    SpoolRecovery local;
    SpoolRecovery& out = report != nullptr ? *report : local;
    out = SpoolRecovery();
    recovered_ = false;
    if (buffer_ == nullptr) {
        return fail(Status::kInvalidArgument, kNoBuffer);
    }
    if (buffer_size_ < kMinBufferSize) {
        return fail(Status::kInvalidArgument, kSmallBuffer);
    }
    if (configured_region_size_ == 0) {
        return fail(Status::kInvalidArgument, kSmallStore);
    }
    const std::uint64_t syncs_before = counters_.syncs;
    region_size_ = configured_region_size_;
    generation_ = 1;
    active_region_ = 0;
    newest_slot_ = 1;
    highest_seq_ = 0;
    acked_through_ = 0;
    written_end_ = 0;
    pending_ = 0;
    unsynced_written_ = false;
    header_uncommitted_ = false;
    bool found = false;
    if (read_header(&found) != Status::kOk) {
        return fail(Status::kIoError, kStorageFailed);
    }
    if (!found) {
        out.fresh = true;
        bool slot_written = false;
        if (write_terminator(region_base(active_region_), 0, region_size_) != Status::kOk ||
            write_header(generation_, active_region_, region_size_, &slot_written) != Status::kOk) {
            return fail(Status::kIoError, kStorageFailed);
        }
    }
    out.recorded_max_bytes = static_cast<std::uint32_t>(kHeaderBlockSize) + 2 * region_size_;
    out.resized = region_size_ != configured_region_size_;

    // Pass 1: where the journal ends and which watermark applies.
    Cursor cursor;
    cursor.base = region_base(active_region_);
    cursor.limit = region_size_;
    cursor.tag = tag_of(generation_);
    Record record{};
    Scan scan = Scan::kRecord;
    for (;;) {
        if (next_record(&cursor, &record, &scan) != Status::kOk) {
            return fail(Status::kIoError, kStorageFailed);
        }
        if (scan != Scan::kRecord) {
            break;
        }
        if (record.type == kTypeMessage) {
            highest_seq_ = record.seq > highest_seq_ ? record.seq : highest_seq_;
        } else if (record.seq > acked_through_) {
            acked_through_ = record.seq;
        }
    }
    if (scan == Scan::kTooLarge) {
        // Giving it up as damage would lose it for good; a larger buffer can
        // replay it. Nothing has been written.
        return fail(Status::kInvalidArgument, kRecordBeyondBuffer);
    }
    if (scan == Scan::kDamaged) {
        out.damaged = true;
        out.truncated_bytes = cursor.truncated;
    }
    written_end_ = cursor.pos;
    live_offset_ = 0;
    live_offset_acked_ = 0;
    synced_once_ = false;
    recovered_ = true;

    // Into the configured layout, or past the damage into a fresh generation.
    Status status = Status::kOk;
    if (out.resized) {
        status = migrate(&out);
    } else if (out.damaged) {
        status = compact_for(0);
    }
    // A killed process leaves its unsynced writes in the kernel, where the
    // scan found them: make them durable before the caller sends what is
    // replayed, or a power cut now would take back what recovery reported.
    if (status == Status::kOk && counters_.syncs == syncs_before) {
        status = sync_storage();
    }
    if (status != Status::kOk) {
        recovered_ = false;
        return fail(Status::kIoError, kStorageFailed);
    }

    // Pass 2: replay what no watermark covers, from the journal as it now is.
    Cursor replay;
    replay.base = region_base(active_region_);
    replay.limit = written_end_;
    replay.tag = tag_of(generation_);
    std::uint64_t previous = 0;
    for (;;) {
        if (next_record(&replay, &record, &scan) != Status::kOk) {
            recovered_ = false;
            return fail(Status::kIoError, kStorageFailed);
        }
        if (scan != Scan::kRecord) {
            break;
        }
        if (record.type != kTypeMessage || record.seq <= acked_through_) {
            continue;
        }
        if (out.messages == 0) {
            out.first_seq = record.seq;
        } else if (record.seq != previous + 1) {
            ++out.seq_gaps;
        }
        previous = record.seq;
        out.last_seq = record.seq;
        ++out.messages;
        if (visit != nullptr) {
            visit(ctx, record.seq, record.header + kRecordOverhead, record.span - kRecordOverhead);
        }
    }
    out.highest_seq = highest_seq_;
    out.acked_through = acked_through_;
    out.generation = generation_;
    return Status::kOk;
}

// Moves the live messages from the layout the store was written with into the
// configured one. Until the new header slot is synced, a crash recovers the
// old active journal, so the new region must not overlap it (nor its
// terminator). The region after the active one in the new layout clears it
// unless the store grows while region 1 is active, or shrinks below the
// journal while region 0 is; one compaction in the old layout then moves the
// journal to the other region, which the new layout's other region clears.
Status Spool::migrate(SpoolRecovery* out) {
    const std::uint32_t journal = written_end_ + static_cast<std::uint32_t>(kRecordOverhead);
    const std::uint32_t old_begin = region_base(active_region_);
    const std::uint32_t old_end = old_begin + (journal < region_size_ ? journal : region_size_);
    const auto target = static_cast<std::uint8_t>(1 - active_region_);
    const std::uint32_t new_begin = base_of(target, configured_region_size_);
    if (new_begin < old_end && old_begin < new_begin + configured_region_size_ &&
        compact_for(0) != Status::kOk) {
        return Status::kIoError;
    }
    const Status status =
        compact_into(static_cast<std::uint8_t>(1 - active_region_), configured_region_size_, 0);
    if (status == Status::kOk) {
        out->dropped_first = dropped_first_;
        out->dropped_last = dropped_last_;
    }
    return status;
}

Status Spool::buffer_record(std::uint8_t type, std::uint64_t seq, const std::uint8_t* data,
                            std::size_t size) {
    const std::size_t span = kRecordOverhead + size;
    if (span > buffer_size_ - kRecordOverhead || span > region_size_) {
        return fail(Status::kTooLarge, kRecordTooLarge);
    }
    if (written_end_ + pending_ + span > region_size_ && compact_for(span) != Status::kOk) {
        return fail(Status::kIoError, kStorageFailed);
    }
    if (pending_ + span > buffer_size_ - kRecordOverhead && write_pending() != Status::kOk) {
        return fail(Status::kIoError, kStorageFailed);
    }
    std::uint8_t* header = buffer_ + pending_;
    header[0] = type;
    header[kRecordVersionOffset] = kFormatVersion;
    put_le(header + kRecordTagOffset, tag_of(generation_), 2);
    put_le(header + kRecordLengthOffset, size, 4);
    put_le(header + kRecordSeqOffset, seq, 8);
    if (size > 0) {
        std::memcpy(header + kRecordOverhead, data, size);
    }
    put_le(header + kRecordCrcOffset, record_crc(header, header + kRecordOverhead, size), 4);
    pending_ += span;
    return Status::kOk;
}

Status Spool::append(std::uint64_t seq, const std::uint8_t* data, std::size_t size) {
    if (!recovered_) {
        return fail(Status::kInvalidArgument, kNotRecovered);
    }
    if (seq <= highest_seq_) {
        return fail(Status::kInvalidArgument, kSeqNotIncreasing);
    }
    if (data == nullptr && size > 0) {
        return fail(Status::kInvalidArgument, kNullData);
    }
    if (size > 0xFFFFFFFFu) {
        return fail(Status::kTooLarge, kRecordTooLarge);
    }
    const Status status = buffer_record(kTypeMessage, seq, data, size);
    if (status == Status::kOk) {
        highest_seq_ = seq;
        ++counters_.appended;
    }
    return status;
}

Status Spool::watermark(std::uint8_t type, std::uint64_t seq) {
    if (!recovered_) {
        return fail(Status::kInvalidArgument, kNotRecovered);
    }
    if (seq > highest_seq_) {
        seq = highest_seq_;
    }
    if (seq <= acked_through_) {
        return Status::kOk;
    }
    const Status status = buffer_record(type, seq, nullptr, 0);
    if (status == Status::kOk) {
        acked_through_ = seq;
    }
    return status;
}

Status Spool::ack(std::uint64_t seq) {
    return watermark(kTypeAck, seq);
}

Status Spool::drop_through(std::uint64_t seq) {
    return watermark(kTypeDrop, seq);
}

Status Spool::write_pending() {
    if (pending_ == 0) {
        return Status::kOk;
    }
    // The terminator goes out in the same write (buffer_ keeps room for it).
    const std::size_t room = region_size_ - written_end_ - pending_;
    const std::size_t terminator = room < kRecordOverhead ? room : kRecordOverhead;
    std::memset(buffer_ + pending_, 0, terminator);
    if (storage_.write(region_base(active_region_) + written_end_, buffer_,
                       pending_ + terminator) != Status::kOk) {
        return Status::kIoError;
    }
    counters_.bytes_written += pending_ + terminator;
    written_end_ += static_cast<std::uint32_t>(pending_);
    pending_ = 0;
    unsynced_written_ = true;
    return Status::kOk;
}

// Zeros where the next record will go in a region of `region_size` bytes, so
// a scan ends cleanly there instead of running into the remains of an older
// generation.
Status Spool::write_terminator(std::uint32_t base, std::uint32_t offset,
                               std::uint32_t region_size) {
    static constexpr std::uint8_t kZeros[kRecordOverhead] = {};
    const std::size_t room = region_size - offset;
    const std::size_t size = room < kRecordOverhead ? room : kRecordOverhead;
    if (size == 0) {
        return Status::kOk;
    }
    if (storage_.write(base + offset, kZeros, size) != Status::kOk) {
        return Status::kIoError;
    }
    counters_.bytes_written += size;
    return Status::kOk;
}

Status Spool::sync_storage() {
    if (storage_.sync() != Status::kOk) {
        return Status::kIoError;
    }
    ++counters_.syncs;
    unsynced_written_ = false;
    return Status::kOk;
}

Status Spool::sync() {
    if (!recovered_) {
        return fail(Status::kInvalidArgument, kNotRecovered);
    }
    if (write_pending() != Status::kOk || commit_header() != Status::kOk ||
        sync_storage() != Status::kOk) {
        return fail(Status::kIoError, kStorageFailed);
    }
    return Status::kOk;
}

Status Spool::flush(TimeMs now) {
    if (!recovered_) {
        return fail(Status::kInvalidArgument, kNotRecovered);
    }
    if (has_unsynced() &&
        (!synced_once_ || time_since(now, last_sync_) >= config_.fsync_interval_ms)) {
        const Status status = sync();
        if (status != Status::kOk) {
            return status;
        }
        synced_once_ = true;
        last_sync_ = now;
    }
    // Between syncs, hand what is buffered to the kernel anyway: it then
    // survives the process being killed (not a power cut, which the sync
    // interval bounds).
    if (pending_ > 0 && write_pending() != Status::kOk) {
        return fail(Status::kIoError, kStorageFailed);
    }
    if (live_offset_acked_ != acked_through_ && advance_live_offset() != Status::kOk) {
        return fail(Status::kIoError, kStorageFailed);
    }
    const std::uint32_t dead = live_offset_;
    const std::uint32_t live = written_end_ - live_offset_;
    if (dead > live && dead >= config_.min_compact_bytes && compact_for(0) != Status::kOk) {
        return fail(Status::kIoError, kStorageFailed);
    }
    return Status::kOk;
}

// Moves live_offset_ past the dead records at the front of the live part.
Status Spool::advance_live_offset() {
    Cursor cursor;
    cursor.base = region_base(active_region_);
    cursor.pos = live_offset_;
    cursor.chunk_start = live_offset_;
    cursor.limit = written_end_;
    cursor.tag = tag_of(generation_);
    Record record{};
    Scan scan = Scan::kRecord;
    for (;;) {
        const std::uint32_t before = cursor.pos;
        if (next_record(&cursor, &record, &scan) != Status::kOk) {
            return Status::kIoError;
        }
        if (scan != Scan::kRecord || (record.type == kTypeMessage && record.seq > acked_through_)) {
            live_offset_ = before;
            break;
        }
    }
    live_offset_acked_ = acked_through_;
    return Status::kOk;
}

Status Spool::compact() {
    if (!recovered_) {
        return fail(Status::kInvalidArgument, kNotRecovered);
    }
    return compact_for(0) == Status::kOk ? Status::kOk : fail(Status::kIoError, kStorageFailed);
}

Status Spool::compact_for(std::size_t reserve) {
    return compact_into(static_cast<std::uint8_t>(1 - active_region_), region_size_, reserve);
}

// Copies the live messages into `new_region` of a layout of `new_size`-byte
// regions (the current one, except when migrating) as generation + 1, leaving
// out the oldest while they and `reserve` bytes would not fit; commits by
// writing the header slot last. No state changes unless it succeeds.
Status Spool::compact_into(std::uint8_t new_region, std::uint32_t new_size, std::size_t reserve) {
    // The slot first: this compaction overwrites the region it may still name.
    if (commit_header() != Status::kOk || write_pending() != Status::kOk) {
        return Status::kIoError;
    }
    // Pass 1: how many live bytes there are (and where a damaged journal stops).
    Cursor cursor;
    cursor.base = region_base(active_region_);
    cursor.pos = live_offset_;
    cursor.chunk_start = live_offset_;
    cursor.limit = written_end_;
    cursor.tag = tag_of(generation_);
    Record record{};
    Scan scan = Scan::kRecord;
    std::uint64_t live = 0;
    for (;;) {
        if (next_record(&cursor, &record, &scan) != Status::kOk) {
            return Status::kIoError;
        }
        if (scan != Scan::kRecord) {
            break;
        }
        if (record.type == kTypeMessage && record.seq > acked_through_) {
            live += record.span;
        }
    }

    // Pass 2: copy, resealing each record for the new generation.
    const std::uint32_t new_generation = next_generation(generation_);
    const std::uint16_t new_tag = tag_of(new_generation);
    Cursor copy;
    copy.base = cursor.base;
    copy.pos = live_offset_;
    copy.chunk_start = live_offset_;
    copy.limit = cursor.pos;
    copy.tag = cursor.tag;
    copy.compacting = true;
    copy.out_base = base_of(new_region, new_size);
    std::uint64_t new_acked = acked_through_;
    std::uint64_t dropped = 0;
    std::uint64_t dropped_first = 0;
    for (;;) {
        if (next_record(&copy, &record, &scan) != Status::kOk) {
            return Status::kIoError;
        }
        if (scan != Scan::kRecord) {
            break;
        }
        if (record.type != kTypeMessage || record.seq <= acked_through_) {
            continue;
        }
        if (live + reserve > new_size) {
            live -= record.span;
            dropped_first = dropped == 0 ? record.seq : dropped_first;
            new_acked = record.seq;
            ++dropped;
            continue;
        }
        std::uint8_t* moved = buffer_ + copy.out_len;
        std::memmove(moved, record.header, record.span);
        put_le(moved + kRecordTagOffset, new_tag, 2);
        put_le(moved + kRecordCrcOffset,
               record_crc(moved, moved + kRecordOverhead, record.span - kRecordOverhead), 4);
        copy.out_len += record.span;
    }
    if (copy.out_len > 0) {
        if (storage_.write(copy.out_base + copy.out_pos, buffer_, copy.out_len) != Status::kOk) {
            return Status::kIoError;
        }
        counters_.bytes_written += copy.out_len;
        copy.out_pos += static_cast<std::uint32_t>(copy.out_len);
    }
    if (write_terminator(copy.out_base, copy.out_pos, new_size) != Status::kOk ||
        sync_storage() != Status::kOk) {
        return Status::kIoError;
    }
    dropped_first_ = dropped_first;
    dropped_last_ = dropped > 0 ? new_acked : 0;
    const std::uint64_t old_acked = acked_through_;
    acked_through_ = new_acked;
    bool slot_written = false;
    if (write_header(new_generation, new_region, new_size, &slot_written) != Status::kOk) {
        if (!slot_written) {
            acked_through_ = old_acked;  // nothing changed on the medium
            return Status::kIoError;
        }
        // The slot was written but not synced: whether it reaches the medium
        // is unknown, so neither region may be written until it is known to
        // name the new one. Continue in the new generation, whose records are
        // synced, and commit its slot again before any later sync or
        // compaction succeeds.
        header_uncommitted_ = true;
        adopt_generation(new_generation, new_region, new_size, copy.out_pos, dropped);
        return Status::kIoError;
    }
    adopt_generation(new_generation, new_region, new_size, copy.out_pos, dropped);
    return Status::kOk;
}

void Spool::adopt_generation(std::uint32_t generation, std::uint8_t region,
                             std::uint32_t region_size, std::uint32_t journal_end,
                             std::uint64_t dropped) {
    generation_ = generation;
    active_region_ = region;
    region_size_ = region_size;
    written_end_ = journal_end;
    live_offset_ = 0;
    live_offset_acked_ = acked_through_;
    counters_.dropped += dropped;
    ++counters_.compactions;
}

// Retries the slot of a generation adopted after a failed commit: the same
// slot, since newest_slot_ only moves on success.
Status Spool::commit_header() {
    if (!header_uncommitted_) {
        return Status::kOk;
    }
    bool slot_written = false;
    if (write_header(generation_, active_region_, region_size_, &slot_written) != Status::kOk) {
        return Status::kIoError;
    }
    header_uncommitted_ = false;
    return Status::kOk;
}

}  // namespace tether

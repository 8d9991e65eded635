// SPDX-License-Identifier: MIT
// Outbox layout and invariants.
//
// Storage. base_ is the caller's storage rounded up to 8-byte alignment and
// usable_ its length rounded down to a multiple of 8 (0 when the storage is
// below 64 bytes: then nothing is ever stored). Every offset below is relative
// to base_ and a multiple of 8, so each header is 8-byte aligned in memory.
// Headers are still read and written with memcpy, which costs nothing on x86
// and keeps ARM safe if that ever changes.
//
// Entry. A 16-byte header followed by the payload, padded to a multiple of 8:
//
//   offset  0  u64  seq        (host byte order; the storage never leaves the process)
//   offset  8  u32  size|kind  payload length in the low 28 bits, the kind in the top 4
//   offset 12  u32  pushed_at  the caller's time at push (TimeMs), never interpreted here
//   offset 16  size bytes of payload, then 0..7 bytes of alignment padding
//
// The time costs no space: it sits where a padding marker used to be, and
// wrap padding is remembered in wrap_at_ instead (below). Sharing the size
// word caps a payload at 256 MiB - 1 (kMaxPayload) and a kind at 15.
//
// An entry's span is 16 + round_up(size, 8). Entries never straddle the end of
// usable_, so a payload is one contiguous run of bytes a caller can hand to
// write() or writev() directly.
//
// Ring. Entries run from head_ (the oldest) to tail_ (just past the newest),
// wrapping once at usable_. Seqs of the entries held increase strictly from
// head_ to tail_ and are all below next_seq_: pushes take next_seq_ and both
// ack and eviction remove from the oldest end, so no seq is stored twice.
// They are consecutive except where skip_to() left a hole, so the oldest seq
// is read from the head entry rather than derived from next_seq_.
//
//   not wrapped:  [ free | head_ ... entries ... tail_ | free ]
//   wrapped:      [ entries ... tail_ | free | head_ ... entries | wrap padding ]
//
// Empty vs full. head_ == tail_ holds both when empty and when completely
// full; entry_count_ tells them apart. Whenever entry_count_ drops to 0 the
// cursors are reset to 0, which gives the next entry the whole storage.
// tail_ == usable_ is stored as 0.
//
// Wrap padding. When the newest entry does not fit between tail_ and usable_
// but fits between 0 and head_, it goes to offset 0 and the bytes from tail_ to
// usable_ become padding: wrap_at_ = tail_. There is never more than one run
// of padding: no entry goes to offset 0 again until head_ has wrapped too, and
// when head_ steps past the padding wrap_at_ goes back to usable_ (as it is
// whenever the ring is not wrapped). Stepping from an entry that ends at
// wrap_at_ (or at usable_) leads to offset 0. Padding stays counted in
// bytes_used() until head_ moves past it, which happens as soon as the entry
// before it is freed: head_ and unsent_offset_ always point at a real entry
// header while their region is non-empty.
//
// Unsent cursor. Entries are in seq order: the first (entry_count_ -
// unsent_count_) are sent and await an ack, the rest are unsent and start at
// unsent_offset_. Freeing from the oldest end eats sent entries first; once
// unsent_count_ == entry_count_, the oldest entry is unsent and
// unsent_offset_ == head_. Walking entries (iterators, mark_sent, ack) reads one
// header per entry, so draining is O(1) per entry; mark_sent of everything and
// ack of everything are O(1).
//
// Dropped ranges. Evicted seqs always increase (they are the oldest held), so a
// drop either extends gaps_[gap_count_ - 1] by one or starts a new range; with
// kMaxPendingGaps pending, the last range stretches over the seqs in between
// (they were acknowledged, so the receiver already has them).
#include "tether/outbox.h"

#include <cstring>

namespace tether {

namespace {

constexpr std::size_t kSeqField = 0;
constexpr std::size_t kSizeKindField = 8;
constexpr std::size_t kPushedAtField = 12;
constexpr std::uint32_t kSizeMask = 0x0FFFFFFFu;
constexpr unsigned kKindShift = 28;

static_assert(Outbox::kMaxPayload == kSizeMask, "the size field holds every payload size");
static_assert(Outbox::kMaxKind == (0xFFFFFFFFu >> kKindShift), "the kind fills the rest");

static_assert(Outbox::kEntryOverhead == 16, "the header layout above is 16 bytes");
static_assert(Outbox::kEntryOverhead % Outbox::kAlignment == 0,
              "headers must keep entries aligned");

constexpr std::size_t align_up(std::size_t size) {
    return (size + (Outbox::kAlignment - 1)) & ~(Outbox::kAlignment - 1);
}

constexpr std::size_t span_of(std::size_t payload_size) {
    return Outbox::kEntryOverhead + align_up(payload_size);
}

void write_u32(std::uint8_t* at, std::uint32_t value) {
    std::memcpy(at, &value, sizeof value);
}

std::uint32_t read_u32(const std::uint8_t* at) {
    std::uint32_t value;
    std::memcpy(&value, at, sizeof value);
    return value;
}

void write_u64(std::uint8_t* at, std::uint64_t value) {
    std::memcpy(at, &value, sizeof value);
}

std::uint64_t read_u64(const std::uint8_t* at) {
    std::uint64_t value;
    std::memcpy(&value, at, sizeof value);
    return value;
}

}  // namespace

const char* to_string(OverflowPolicy policy) {
    switch (policy) {
        case OverflowPolicy::kDropOldest:
            return "drop_oldest";
        case OverflowPolicy::kRejectNewest:
            return "reject_newest";
    }
    return "unknown";
}

bool parse_overflow_policy(const char* text, OverflowPolicy* policy) {
    if (text == nullptr || policy == nullptr) {
        return false;
    }
    if (std::strcmp(text, "drop_oldest") == 0) {
        *policy = OverflowPolicy::kDropOldest;
        return true;
    }
    if (std::strcmp(text, "reject_newest") == 0) {
        *policy = OverflowPolicy::kRejectNewest;
        return true;
    }
    return false;
}

Outbox::Outbox(std::uint8_t* storage, std::size_t capacity, OverflowPolicy policy,
               std::uint64_t first_seq)
    : base_(nullptr),
      usable_(0),
      capacity_(capacity),
      policy_(policy),
      next_seq_(first_seq == 0 ? 1 : first_seq) {
    if (storage == nullptr || capacity < kMinCapacity) {
        return;
    }
    const auto address = reinterpret_cast<std::uintptr_t>(storage);
    const std::size_t misalignment = static_cast<std::size_t>(address % kAlignment);
    const std::size_t skip = misalignment == 0 ? 0 : kAlignment - misalignment;
    base_ = storage + skip;
    usable_ = (capacity - skip) & ~(kAlignment - 1);
    wrap_at_ = usable_;
}

std::size_t Outbox::max_message_size() const {
    if (usable_ == 0) {
        return 0;
    }
    const std::size_t room = usable_ - kEntryOverhead;
    return room < kMaxPayload ? room : kMaxPayload;
}

std::size_t Outbox::bytes_used() const {
    if (entry_count_ == 0) {
        return 0;
    }
    return tail_ > head_ ? tail_ - head_ : usable_ - head_ + tail_;
}

Status Outbox::push(const std::uint8_t* data, std::size_t size, std::uint64_t* seq,
                    std::uint8_t kind, TimeMs pushed_at) {
    return append(data, size, seq, policy_ == OverflowPolicy::kDropOldest, kind, pushed_at);
}

Status Outbox::push_overwrite(const std::uint8_t* data, std::size_t size, std::uint64_t* seq,
                              std::uint8_t kind, TimeMs pushed_at) {
    return append(data, size, seq, true, kind, pushed_at);
}

Status Outbox::try_push(const std::uint8_t* data, std::size_t size, std::uint64_t* seq,
                        std::uint8_t kind, TimeMs pushed_at) {
    return append(data, size, seq, false, kind, pushed_at);
}

std::uint64_t Outbox::seq_at(std::size_t offset) const {
    return read_u64(base_ + offset + kSeqField);
}

std::uint64_t Outbox::oldest_seq() const {
    return entry_count_ == 0 ? next_seq_ : seq_at(head_);
}

void Outbox::skip_to(std::uint64_t seq) {
    if (seq > next_seq_) {
        next_seq_ = seq;
    }
}

bool Outbox::rebase(std::uint64_t seq) {
    if (counters_.pushed != 0 || seq == 0) {
        return false;
    }
    next_seq_ = seq;
    return true;
}

Status Outbox::append(const std::uint8_t* data, std::size_t size, std::uint64_t* seq,
                      bool may_evict, std::uint8_t kind, TimeMs pushed_at) {
    if ((data == nullptr && size > 0) || kind > kMaxKind) {
        return Status::kInvalidArgument;
    }
    if (usable_ == 0 || size > max_message_size()) {
        ++counters_.rejected;
        return Status::kTooLarge;
    }
    const std::size_t span = span_of(size);
    std::size_t offset = 0;
    while (!find_space(span, &offset)) {
        if (!may_evict) {
            ++counters_.rejected;
            return Status::kNoSpace;
        }
        // Terminates: an empty outbox fits any span up to usable_, checked above.
        const std::uint64_t evicted = oldest_seq();
        if (unsent_count_ == entry_count_) {
            ++counters_.dropped_unsent;  // the oldest entry was never sent
        }
        free_oldest();
        ++counters_.dropped;
        record_drop(evicted);
    }

    if (offset != tail_) {
        wrap_at_ = tail_;  // the bytes from the old tail to the end are padding now
    }
    std::uint8_t* header = base_ + offset;
    const std::uint64_t assigned = next_seq_;
    const auto size32 = static_cast<std::uint32_t>(size);
    std::memcpy(header + kSeqField, &assigned, sizeof assigned);
    write_u32(header + kSizeKindField, size32 | static_cast<std::uint32_t>(kind) << kKindShift);
    write_u32(header + kPushedAtField, pushed_at);
    if (size > 0) {
        std::memcpy(header + kEntryOverhead, data, size);
    }

    tail_ = offset + span;
    if (tail_ == usable_) {
        tail_ = 0;
    }
    if (unsent_count_ == 0) {
        unsent_offset_ = offset;
    }
    ++unsent_count_;
    ++entry_count_;
    ++next_seq_;
    ++counters_.pushed;
    if (seq != nullptr) {
        *seq = assigned;
    }
    return Status::kOk;
}

// Where a new entry of `span` bytes would go without evicting anything.
bool Outbox::find_space(std::size_t span, std::size_t* offset) const {
    if (entry_count_ == 0) {
        *offset = 0;  // cursors were reset to 0 when the outbox emptied
        return span <= usable_;
    }
    if (tail_ > head_) {
        if (span <= usable_ - tail_) {
            *offset = tail_;
            return true;
        }
        *offset = 0;
        return span <= head_;
    }
    *offset = tail_;
    return span <= head_ - tail_;
}

void Outbox::free_oldest() {
    if (entry_count_ == 1) {
        clear_entries();
        return;
    }
    head_ = following(head_);
    if (head_ == 0) {
        wrap_at_ = usable_;  // head_ is past the padding (if any): the ring is not wrapped
    }
    --entry_count_;
    if (unsent_count_ > entry_count_) {
        // The freed entry was unsent: the unsent region now starts at the new oldest.
        unsent_count_ = entry_count_;
        unsent_offset_ = head_;
    }
}

void Outbox::clear_entries() {
    head_ = 0;
    tail_ = 0;
    wrap_at_ = usable_;
    unsent_offset_ = 0;
    entry_count_ = 0;
    unsent_count_ = 0;
}

void Outbox::record_drop(std::uint64_t seq) {
    if (gap_count_ > 0) {
        SeqRange& last = gaps_[gap_count_ - 1];
        if (last.last + 1 == seq || gap_count_ == kMaxPendingGaps) {
            last.last = seq;
            return;
        }
    }
    gaps_[gap_count_] = SeqRange{seq, seq};
    ++gap_count_;
}

bool Outbox::take_dropped_range(SeqRange* range) {
    if (gap_count_ == 0 || range == nullptr) {
        return false;
    }
    *range = gaps_[0];
    for (std::size_t i = 1; i < gap_count_; ++i) {
        gaps_[i - 1] = gaps_[i];
    }
    --gap_count_;
    return true;
}

std::size_t Outbox::ack(std::uint64_t seq) {
    if (entry_count_ == 0 || seq < oldest_seq()) {
        return 0;
    }
    std::size_t freed = entry_count_;
    if (seq + 1 >= next_seq_) {
        clear_entries();  // everything held is covered: O(1)
    } else {
        freed = 0;
        while (entry_count_ > 0 && seq_at(head_) <= seq) {
            free_oldest();
            ++freed;
        }
    }
    counters_.acked += freed;
    return freed;
}

void Outbox::mark_sent(std::size_t count) {
    if (count >= unsent_count_) {
        unsent_count_ = 0;
        unsent_offset_ = tail_;
        return;
    }
    for (std::size_t i = 0; i < count; ++i) {
        unsent_offset_ = following(unsent_offset_);
    }
    unsent_count_ -= count;
}

void Outbox::renumber(std::uint64_t first_seq) {
    if (first_seq == 0) {
        first_seq = 1;
    }
    // Held entries always carry consecutive seqs, so renumbering keeps that.
    std::size_t offset = head_;
    for (std::size_t i = 0; i < entry_count_; ++i) {
        write_u64(base_ + offset + kSeqField, first_seq + i);
        // Step only towards an entry that exists: past the newest one lies
        // storage never written.
        if (i + 1 < entry_count_) {
            offset = following(offset);
        }
    }
    next_seq_ = first_seq + entry_count_;
    gap_count_ = 0;  // dropped ranges named the old seqs
}

std::size_t Outbox::renumber_after(std::uint64_t after, std::uint64_t first_seq) {
    std::size_t renumbered = 0;
    std::size_t offset = head_;
    for (std::size_t i = 0; i < entry_count_; ++i) {
        if (seq_at(offset) > after) {
            write_u64(base_ + offset + kSeqField, first_seq + renumbered);
            ++renumbered;
        }
        if (i + 1 < entry_count_) {
            offset = following(offset);
        }
    }
    if (renumbered > 0 || first_seq > next_seq_) {
        next_seq_ = first_seq + renumbered;
        gap_count_ = 0;  // dropped ranges named the old seqs
    }
    return renumbered;
}

void Outbox::rewind() {
    unsent_offset_ = head_;
    unsent_count_ = entry_count_;
}

Outbox::Iterator Outbox::unacked() const {
    return Iterator(this, head_, entry_count_);
}

Outbox::Iterator Outbox::unsent() const {
    return Iterator(this, unsent_offset_, unsent_count_);
}

bool Outbox::Iterator::next(OutboxEntry* entry) {
    if (remaining_ == 0) {
        return false;
    }
    const std::uint8_t* header = outbox_->base_ + offset_;
    entry->seq = read_u64(header + kSeqField);
    const std::uint32_t size_kind = read_u32(header + kSizeKindField);
    entry->size = size_kind & kSizeMask;
    entry->kind = static_cast<std::uint8_t>(size_kind >> kKindShift);
    entry->pushed_at = read_u32(header + kPushedAtField);
    entry->data = header + kEntryOverhead;
    --remaining_;
    // Only step (and read what lies beyond) while another entry is known to exist.
    if (remaining_ > 0) {
        offset_ = outbox_->following(offset_);
    }
    return true;
}

std::uint32_t Outbox::payload_size_at(std::size_t offset) const {
    return read_u32(base_ + offset + kSizeKindField) & kSizeMask;
}

// The header of the entry after the one at `offset`, which must exist: right
// after it, or at 0 when it ends where the padding (or the storage) does.
std::size_t Outbox::following(std::size_t offset) const {
    const std::size_t next = offset + span_of(payload_size_at(offset));
    return next >= wrap_at_ ? 0 : next;
}

}  // namespace tether

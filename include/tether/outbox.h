// SPDX-License-Identifier: MIT
// The outbox: a ring buffer of unsent and unacknowledged uplink messages in
// caller-owned memory.
//
// Every message pushed gets the next 64-bit sequence number (monotonic; the
// first one is given at construction, from the persistent state record, so it
// survives restarts). Seqs only grow: skip_to() may leave a hole (seqs a
// crashed run may have used), never a step back. Entries are variable-length and stored
// contiguously, so a payload can be handed to the socket without copying. Three regions, in
// sequence order: acknowledged entries are freed at once; sent but not yet
// acknowledged entries stay for retransmission; unsent entries wait.
//
//   oldest unacked ............ first unsent ............ newest
//   [ sent, awaiting ack      ][ not sent yet                   ]
//
// When a push does not fit, the overflow policy decides: drop the oldest
// entries (telemetry's default: fresh data matters more) or reject the new
// one. Dropped sequence numbers are recorded as ranges so the server can be
// told exactly which messages will never arrive.
//
// No heap allocation, ever. Not thread-safe: one poll loop owns it.
//
// Each entry also keeps the time it was pushed (the caller's TimeMs, which
// the outbox never interprets) and a 4-bit kind, inside the same header.
//
// Space: each entry takes kEntryOverhead (16) bytes plus its payload rounded
// up to a multiple of 8 (a 100-byte message uses 120 bytes). Entries never
// straddle the end of the storage; when the newest does not fit before the
// end, the bytes left there stay unused (and count in bytes_used()) until the
// entries before them are freed.
//
// Example:
//   static std::uint8_t storage[64 * 1024];
//   tether::Outbox outbox(storage, sizeof storage, tether::OverflowPolicy::kDropOldest, 1);
//   std::uint64_t seq;
//   if (outbox.push(data, size, &seq, 0, now) != tether::Status::kOk) { ... }
//   tether::OutboxEntry entry;
//   for (auto it = outbox.unsent(); it.next(&entry);) { write(entry.data, entry.size); }
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/status.h"
#include "tether/time.h"

namespace tether {

enum class OverflowPolicy : std::uint8_t {
    kDropOldest,    ///< evict the oldest entries (sent or not) to make room
    kRejectNewest,  ///< refuse the new message with Status::kNoSpace
};

/// How many policies there are: OverflowPolicy values are
/// 0..kOverflowPolicyCount - 1, so a caller can list every name with to_string().
inline constexpr std::size_t kOverflowPolicyCount = 2;

/// "drop_oldest", "reject_newest"; "unknown" for any other value.
const char* to_string(OverflowPolicy policy);
/// Parses the names above; returns false (leaving *policy alone) for anything
/// else, or when either pointer is null.
bool parse_overflow_policy(const char* text, OverflowPolicy* policy);

struct OutboxEntry {
    std::uint64_t seq;
    const std::uint8_t* data;  ///< valid until the next call that modifies the outbox
    std::uint32_t size;
    std::uint8_t kind;  ///< what the caller pushed it with (e.g. the frame type); 0 by default
    TimeMs pushed_at;   ///< what the caller pushed it with (its clock at the time); 0 by default
};

/// An inclusive range of sequence numbers that were dropped.
struct SeqRange {
    std::uint64_t first;
    std::uint64_t last;
};

struct OutboxCounters {
    std::uint64_t pushed = 0;   ///< messages accepted
    std::uint64_t dropped = 0;  ///< accepted, then evicted by kDropOldest before being acked
    /// Of `dropped`, those never sent since the last rewind(): certainly lost.
    /// The rest were sent and awaited their ack: the receiver may well hold them.
    std::uint64_t dropped_unsent = 0;
    std::uint64_t rejected = 0;  ///< refused by kRejectNewest or because too large
    std::uint64_t acked = 0;     ///< freed by acknowledgements
};

class Outbox {
  public:
    /// Bytes of bookkeeping stored with each entry besides its payload.
    static constexpr std::size_t kEntryOverhead = 16;
    /// Entries start on multiples of this; payloads are padded up to it.
    static constexpr std::size_t kAlignment = 8;
    /// Smaller storage holds nothing at all.
    static constexpr std::size_t kMinCapacity = 64;
    /// The largest payload any outbox stores (256 MiB - 1: an entry's size
    /// field is 28 bits, sharing its word with the kind).
    static constexpr std::size_t kMaxPayload = 0x0FFFFFFFu;
    /// The largest kind (4 bits: a WebSocket opcode fits).
    static constexpr std::uint8_t kMaxKind = 0x0F;

    /// max_message_size() of an outbox over `capacity` bytes of storage that
    /// starts kAlignment-aligned (as heap memory does), known before it is
    /// built: (capacity & ~7) - kEntryOverhead, at most kMaxPayload; 0 below
    /// kMinCapacity. Unaligned storage may hold up to 7 bytes less.
    static constexpr std::size_t max_message_size_for(std::size_t capacity) {
        if (capacity < kMinCapacity) {
            return 0;
        }
        const std::size_t room = (capacity & ~(kAlignment - 1)) - kEntryOverhead;
        return room < kMaxPayload ? room : kMaxPayload;
    }
    /// Dropped ranges kept until taken; a further disjoint range merges into the last.
    static constexpr std::size_t kMaxPendingGaps = 8;

    /// `storage` must stay valid for the outbox's life and be at least 64 bytes
    /// (smaller storage, or a null pointer, makes every push fail with kTooLarge).
    /// Entries are kept 8-byte aligned: up to 7 leading bytes of an unaligned
    /// `storage` and the last `capacity % 8` bytes go unused. `first_seq` >= 1;
    /// 0 is not a valid sequence number (the receiver's "nothing yet") and is
    /// taken as 1.
    Outbox(std::uint8_t* storage, std::size_t capacity, OverflowPolicy policy,
           std::uint64_t first_seq);

    /// Appends a message under the configured policy (push_overwrite for
    /// kDropOldest, try_push for kRejectNewest). Returns:
    ///  - kOk: stored; *seq (if not null) receives its sequence number.
    ///  - kNoSpace: kRejectNewest and the message does not fit now; nothing changed
    ///    except counters().rejected.
    ///  - kTooLarge: size > max_message_size(), so it can never fit; counted as
    ///    rejected, nothing is evicted.
    ///  - kInvalidArgument: `data` is null while `size` > 0, or `kind` is
    ///    above kMaxKind; nothing changed.
    /// A zero-length message is allowed (`data` may then be null).
    /// `kind` and `pushed_at` are stored with the entry and handed back in
    /// OutboxEntry (the client keeps the frame type and the time it was
    /// given the message there); neither costs any space.
    Status push(const std::uint8_t* data, std::size_t size, std::uint64_t* seq = nullptr,
                std::uint8_t kind = 0, TimeMs pushed_at = 0);
    /// Appends, evicting the oldest entries (sent or unsent) until it fits, whatever
    /// the configured policy. Each evicted entry counts in counters().dropped and its
    /// seq is recorded in the dropped ranges (see take_dropped_range()). Returns kOk,
    /// kTooLarge or kInvalidArgument as push() does; never kNoSpace.
    Status push_overwrite(const std::uint8_t* data, std::size_t size, std::uint64_t* seq = nullptr,
                          std::uint8_t kind = 0, TimeMs pushed_at = 0);
    /// Appends only if it fits without evicting anything. Returns kOk, kNoSpace
    /// (counted as rejected), kTooLarge or kInvalidArgument as push() does.
    Status try_push(const std::uint8_t* data, std::size_t size, std::uint64_t* seq = nullptr,
                    std::uint8_t kind = 0, TimeMs pushed_at = 0);

    /// Cumulative acknowledgement: frees every entry with seq <= `seq`, sent or
    /// not (the receiver has them; unsent ones leave the unsent region too).
    /// Returns how many were freed, also added to counters().acked. An ack below
    /// what is already freed is a no-op; an ack beyond the newest frees everything
    /// and does not change next_seq().
    std::size_t ack(std::uint64_t seq);

    /// Marks the oldest `count` unsent entries as sent (clamped to what is unsent).
    void mark_sent(std::size_t count = 1);
    /// Gives the held entries new consecutive seqs from `first_seq` (0 is taken
    /// as 1), in order, and continues next_seq() after them; pending dropped
    /// ranges are discarded. For a peer that already holds the old seqs from
    /// another sender of the same session (a device whose state was lost or
    /// copied): the entries then arrive as the new messages they are.
    void renumber(std::uint64_t first_seq);
    /// Renumbers only the entries with seq > `after`, consecutively from
    /// `first_seq` (which must exceed every seq held at or below `after`);
    /// returns how many were renumbered. Entries at or below `after` keep
    /// their seqs, so a receiver that may hold them never sees them twice.
    std::size_t renumber_after(std::uint64_t after, std::uint64_t first_seq);
    /// The next push gets `seq` (no-op unless it is above next_seq()): the
    /// seqs skipped are never used, and the entries held keep theirs. For a
    /// restart after a crash, where seqs up to a persisted reservation may
    /// already have been given to messages that were lost.
    void skip_to(std::uint64_t seq);
    /// Only while nothing was ever pushed: the first push gets `seq` (>= 1),
    /// even below next_seq(). For a restart that puts back messages recovered
    /// from disk under their old seqs, below the persisted reservation.
    /// Returns false (nothing changed) once anything was pushed.
    bool rebase(std::uint64_t seq);
    /// After a reconnect: every unacknowledged entry becomes unsent again, to be retransmitted in
    /// order.
    void rewind();

    /// Walks entries in sequence order. Invalidated by any modifying call.
    class Iterator {
      public:
        /// Fills *entry with the next entry and returns true, or returns false at the end.
        bool next(OutboxEntry* entry);

      private:
        friend class Outbox;
        Iterator(const Outbox* outbox, std::size_t offset, std::size_t remaining)
            : outbox_(outbox), offset_(offset), remaining_(remaining) {}
        const Outbox* outbox_;
        std::size_t offset_;
        std::size_t remaining_;
    };

    Iterator unacked() const;  ///< from the oldest unacknowledged entry
    Iterator unsent() const;   ///< from the oldest unsent entry

    /// Takes the oldest dropped range not yet taken into *range; false (and
    /// *range untouched) when there is none.
    ///
    /// An eviction of the seq right after the last pending range extends that
    /// range; any other starts a new one. When kMaxPendingGaps ranges are already
    /// pending, the last one is extended up to the new seq instead: it may then
    /// also cover seqs that were delivered and acknowledged in between. That is
    /// harmless because the receiver ignores gap reports for seqs it already has.
    /// A range that was taken is never extended again.
    bool take_dropped_range(SeqRange* range);
    /// How many dropped ranges are pending (not yet taken).
    std::size_t pending_dropped_ranges() const { return gap_count_; }

    std::size_t size() const { return entry_count_; }  ///< entries held (sent or not)
    std::size_t unsent_count() const { return unsent_count_; }
    bool empty() const { return entry_count_ == 0; }
    /// Storage bytes occupied, including entry overhead, alignment and wrap padding.
    std::size_t bytes_used() const;
    std::size_t capacity() const { return capacity_; }
    std::uint64_t next_seq() const { return next_seq_; }  ///< what the next push gets
    /// Sequence number of the oldest entry held, or next_seq() when empty.
    std::uint64_t oldest_seq() const;
    /// The largest payload that fits in an empty outbox: the usable storage (8-byte
    /// aligned start, length rounded down to 8) minus kEntryOverhead; for aligned
    /// storage, (capacity & ~7) - 16. 0 when the storage is below 64 bytes, where
    /// even an empty message is refused.
    std::size_t max_message_size() const;
    const OutboxCounters& counters() const { return counters_; }
    OverflowPolicy policy() const { return policy_; }

  private:
    // Layout and invariants are described in src/core/outbox.cpp.
    Status append(const std::uint8_t* data, std::size_t size, std::uint64_t* seq, bool may_evict,
                  std::uint8_t kind, TimeMs pushed_at);
    std::uint64_t seq_at(std::size_t offset) const;
    bool find_space(std::size_t span, std::size_t* offset) const;
    void free_oldest();
    void record_drop(std::uint64_t seq);
    void clear_entries();
    std::size_t following(std::size_t offset) const;
    std::uint32_t payload_size_at(std::size_t offset) const;

    std::uint8_t* base_;    // storage rounded up to 8-byte alignment (null if unusable)
    std::size_t usable_;    // bytes from base_ used for entries: a multiple of 8, 0 or >= 56
    std::size_t capacity_;  // as given to the constructor
    OverflowPolicy policy_;
    std::uint64_t next_seq_;
    std::size_t head_ = 0;           // offset of the oldest entry's header
    std::size_t tail_ = 0;           // offset just past the newest entry, in [0, usable_)
    std::size_t wrap_at_ = 0;        // where the wrap padding starts; usable_ when there is none
    std::size_t unsent_offset_ = 0;  // offset of the oldest unsent entry's header
    std::size_t entry_count_ = 0;
    std::size_t unsent_count_ = 0;
    OutboxCounters counters_;
    SeqRange gaps_[kMaxPendingGaps] = {};
    std::size_t gap_count_ = 0;
};

}  // namespace tether

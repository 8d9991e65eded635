// The outbox: a ring buffer of unsent and unacknowledged uplink messages in
// caller-owned memory.
//
// Every message pushed gets the next 64-bit sequence number (monotonic; the
// first one is given at construction, from the persistent state record, so it
// survives restarts). Entries are variable-length and stored contiguously, so
// a payload can be handed to the socket without copying. Three regions, in
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
// Example:
//   static std::uint8_t storage[64 * 1024];
//   tether::Outbox outbox(storage, sizeof storage, tether::OverflowPolicy::kDropOldest, 1);
//   std::uint64_t seq;
//   if (outbox.push(data, size, &seq) != tether::Status::kOk) { ... }
//   tether::OutboxEntry entry;
//   for (auto it = outbox.unsent(); it.next(&entry);) { write(entry.data, entry.size); }
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/status.h"

namespace tether {

enum class OverflowPolicy : std::uint8_t {
    kDropOldest,    ///< evict the oldest entries (sent or not) to make room
    kRejectNewest,  ///< refuse the new message with Status::kNoSpace
};

const char* to_string(OverflowPolicy policy);
bool parse_overflow_policy(const char* text,
                           OverflowPolicy* policy);  // "drop_oldest", "reject_newest"

struct OutboxEntry {
    std::uint64_t seq;
    const std::uint8_t* data;  ///< valid until the next call that modifies the outbox
    std::uint32_t size;
};

/// An inclusive range of sequence numbers that were dropped.
struct SeqRange {
    std::uint64_t first;
    std::uint64_t last;
};

struct OutboxCounters {
    std::uint64_t pushed = 0;    ///< messages accepted
    std::uint64_t dropped = 0;   ///< accepted, then evicted by kDropOldest before being acked
    std::uint64_t rejected = 0;  ///< refused by kRejectNewest or because too large
    std::uint64_t acked = 0;     ///< freed by acknowledgements
};

class Outbox {
  public:
    /// Bytes of bookkeeping stored with each entry besides its payload.
    static constexpr std::size_t kEntryOverhead = 16;
    /// Dropped ranges kept until taken; a further disjoint range merges into the last.
    static constexpr std::size_t kMaxPendingGaps = 8;

    /// `storage` must stay valid for the outbox's life and be at least 64 bytes
    /// (smaller storage makes every push fail with kTooLarge). `first_seq` >= 1.
    Outbox(std::uint8_t* storage, std::size_t capacity, OverflowPolicy policy,
           std::uint64_t first_seq);

    /// Appends a message under the configured policy. Returns kOk, kNoSpace
    /// (kRejectNewest and full) or kTooLarge (can never fit). On kOk, *seq (if
    /// not null) receives its sequence number. A zero-length message is allowed.
    Status push(const std::uint8_t* data, std::size_t size, std::uint64_t* seq = nullptr);
    /// Appends, evicting the oldest entries as needed, whatever the configured policy.
    Status push_overwrite(const std::uint8_t* data, std::size_t size, std::uint64_t* seq = nullptr);
    /// Appends only if it fits without evicting anything.
    Status try_push(const std::uint8_t* data, std::size_t size, std::uint64_t* seq = nullptr);

    /// Cumulative acknowledgement: frees every entry with seq <= `seq`.
    /// Returns how many were freed. An ack below what is already freed is a no-op.
    std::size_t ack(std::uint64_t seq);

    /// Marks the oldest `count` unsent entries as sent (clamped to what is unsent).
    void mark_sent(std::size_t count = 1);
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

    /// Takes the oldest dropped range not yet taken; false when there is none.
    bool take_dropped_range(SeqRange* range);
    /// The dropped ranges not yet taken, oldest first, without taking them.
    std::size_t pending_dropped_ranges() const { return gap_count_; }

    std::size_t size() const { return entry_count_; }  ///< entries held (sent or not)
    std::size_t unsent_count() const { return unsent_count_; }
    bool empty() const { return entry_count_ == 0; }
    std::size_t bytes_used() const { return used_bytes_; }  ///< including overhead and wrap padding
    std::size_t capacity() const { return capacity_; }
    std::uint64_t next_seq() const { return next_seq_; }  ///< what the next push gets
    /// Sequence number of the oldest entry held, or next_seq() when empty.
    std::uint64_t oldest_seq() const;
    /// The largest payload that could ever fit.
    std::size_t max_message_size() const;
    const OutboxCounters& counters() const { return counters_; }
    OverflowPolicy policy() const { return policy_; }

  private:
    // Layout and invariants are described in src/core/outbox.cpp.
    std::uint8_t* storage_;
    std::size_t capacity_;
    OverflowPolicy policy_;
    std::uint64_t next_seq_;
    std::size_t head_ = 0;  // offset of the oldest entry
    std::size_t tail_ = 0;  // offset where the next entry goes
    std::size_t unsent_offset_ = 0;
    std::size_t entry_count_ = 0;
    std::size_t unsent_count_ = 0;
    std::size_t used_bytes_ = 0;
    OutboxCounters counters_;
    SeqRange gaps_[kMaxPendingGaps] = {};
    std::size_t gap_count_ = 0;
};

}  // namespace tether

// SPDX-License-Identifier: MIT
// The persistent state record: what must survive watchdog resets and power cuts.
//
// Two fixed-size slots, each with a write counter and a CRC-32. A save writes
// the slot that does not hold the newest record, then syncs; so a power cut
// during a save tears at most the slot being written, and the other still
// holds the previous record. A load takes the intact slot with the highest
// counter; a torn, truncated or corrupted store falls back to the other slot,
// or to defaults, and never fails hard. Only counters are stored, never
// timestamps: a Raspberry Pi has no real-time clock across reboots.
//
// The on-disk layout (little-endian, per slot) is described in
// src/core/state_record.cpp and docs/ARCHITECTURE.md.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/status.h"
#include "tether/storage.h"

namespace tether {

struct PersistentState {
    std::uint32_t reconnect_attempts = 0;  ///< consecutive attempts not yet healthy
    std::uint32_t session_version = 0;     ///< bumped each time a new session starts
    std::uint64_t last_delivered_downlink_seq =
        0;                              ///< highest downlink seq handed to the application
    std::uint64_t next_uplink_seq = 1;  ///< the seq the next uplink message will get
    /// Plain WebSocket at-most-once with a spool: every uplink seq up to it
    /// was confirmed by a pong or already reported as in doubt; what the
    /// spool marks handed over above it is what a crash left in doubt
    /// (saved at most once a second while it moves, and at shutdown).
    std::uint64_t uplink_settled_seq = 0;
};

bool operator==(const PersistentState& a, const PersistentState& b);
inline bool operator!=(const PersistentState& a, const PersistentState& b) {
    return !(a == b);
}

/// How load() came by its answer.
enum class LoadSource : std::uint8_t {
    kNewestSlot,  ///< both slots intact, or only one ever written: the normal case
    kOlderSlot,   ///< the other slot was damaged (typically a save torn by a power
                  ///< cut), so the record used may predate the last save
    kDefaults,    ///< no intact slot (a fresh device, or both damaged)
};

const char* to_string(LoadSource source);

class StateRecord {
  public:
    /// Bytes one slot occupies in the store; the store holds two.
    static constexpr std::size_t kSlotSize = 64;

    explicit StateRecord(Storage& storage) : storage_(storage) {}

    /// Reads the newest intact record into *state (defaults when none) and
    /// remembers its slot, so the next save() writes the other one. A slot that
    /// is short, has the wrong magic, version or length, or fails its CRC is
    /// damaged; one that is absent or all zero was never written. *source is
    /// kNewestSlot when the record came from a slot and the other slot is
    /// intact or never written, kOlderSlot when the other slot is damaged, and
    /// kDefaults when no slot is intact. Both pointers must not be null.
    /// A record found is synced before load() returns, so a power cut after
    /// it cannot bring back an older one (the slot may hold a save whose
    /// process was killed before its sync). Returns kOk whenever *state is
    /// usable, even from defaults (see *source); kIoError when the storage
    /// failed to read, in which case *state holds defaults, *source is
    /// kDefaults, and the slot the next save() writes is left as it was; and
    /// kIoError when that sync failed, in which case *state, *source and the
    /// slot choice are as loaded but a power cut may still undo the record.
    Status load(PersistentState* state, LoadSource* source);

    /// Writes `state` with generation() + 1 into the slot not holding the
    /// newest record, then syncs. Returns kOk, or kIoError when the write or
    /// the sync failed: the previous record is still intact, and generation()
    /// and the target slot are unchanged, so a retry overwrites the same slot.
    Status save(const PersistentState& state);

    /// The counter of the newest record written or loaded (0 before any; it
    /// wraps from 0xFFFFFFFF to 1, never to 0).
    std::uint32_t generation() const { return generation_; }

  private:
    Storage& storage_;
    std::uint32_t generation_ = 0;
    std::uint8_t newest_slot_ = 1;  // so the first save goes to slot 0
};

}  // namespace tether

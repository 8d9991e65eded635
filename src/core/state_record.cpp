// SPDX-License-Identifier: MIT
#include "tether/state_record.h"

#include "generation.h"
#include "little_endian.h"

#include "tether/crc32.h"

namespace tether {
namespace {

// On-disk layout of one slot (kSlotSize = 64 bytes). Slot 0 starts at byte 0 of
// the store, slot 1 at byte 64. Every integer is little-endian and written byte
// by byte, never by copying a struct, so a file written on an ARM gateway reads
// the same on an x86 host and no padding or alignment leaks into the format.
//
//   offset  size  field
//   ------  ----  ---------------------------------------------------------
//        0     4  magic "TTHR" (0x54 0x54 0x48 0x52)
//        4     2  format version, 1
//        6     2  payload length: bytes 8..35, always 28 in version 1
//        8     4  generation: +1 per save, wraps past 0xFFFFFFFF to 1; compared
//                 by signed difference so the wrap is harmless
//       12     4  reconnect_attempts
//       16     4  session_version
//       20     8  last_delivered_downlink_seq
//       28     8  next_uplink_seq
//       36     8  uplink_settled_seq (plain WebSocket at-most-once; 0 otherwise).
//                 In what version 1 called reserved: outside the payload
//                 length, so a reader that predates it ignores it
//       44    16  reserved, written as zero (covered by the CRC)
//       60     4  CRC-32 (IEEE) of bytes 0..59
//
// A slot is intact only when magic, version, payload length and CRC all match.
// The generation lets load() tell the newer of two intact slots apart; it is a
// counter, not a timestamp, because a Raspberry Pi has no clock across reboots.
constexpr std::size_t kSlotCount = 2;
constexpr std::uint8_t kMagic[4] = {'T', 'T', 'H', 'R'};
constexpr std::uint16_t kFormatVersion = 1;
constexpr std::size_t kMagicOffset = 0;
constexpr std::size_t kVersionOffset = 4;
constexpr std::size_t kPayloadLengthOffset = 6;
constexpr std::size_t kPayloadOffset = 8;
constexpr std::size_t kGenerationOffset = 8;
constexpr std::size_t kReconnectAttemptsOffset = 12;
constexpr std::size_t kSessionVersionOffset = 16;
constexpr std::size_t kLastDeliveredOffset = 20;
constexpr std::size_t kNextUplinkOffset = 28;
constexpr std::size_t kPayloadEnd = 36;
constexpr std::size_t kSettledOffset = 36;
constexpr std::uint16_t kPayloadLength = kPayloadEnd - kPayloadOffset;
constexpr std::size_t kCrcOffset = 60;

static_assert(kCrcOffset + 4 == StateRecord::kSlotSize, "the CRC ends the slot");
static_assert(kPayloadEnd <= kCrcOffset, "the payload must not overlap the CRC");

using Slot = std::uint8_t[StateRecord::kSlotSize];

void encode(const PersistentState& state, std::uint32_t generation, Slot out) {
    for (std::size_t i = 0; i < StateRecord::kSlotSize; ++i) {
        out[i] = 0;
    }
    for (std::size_t i = 0; i < sizeof kMagic; ++i) {
        out[kMagicOffset + i] = kMagic[i];
    }
    put_le(out + kVersionOffset, kFormatVersion, 2);
    put_le(out + kPayloadLengthOffset, kPayloadLength, 2);
    put_le(out + kGenerationOffset, generation, 4);
    put_le(out + kReconnectAttemptsOffset, state.reconnect_attempts, 4);
    put_le(out + kSessionVersionOffset, state.session_version, 4);
    put_le(out + kLastDeliveredOffset, state.last_delivered_downlink_seq, 8);
    put_le(out + kNextUplinkOffset, state.next_uplink_seq, 8);
    put_le(out + kSettledOffset, state.uplink_settled_seq, 8);
    put_le(out + kCrcOffset, crc32(out, kCrcOffset), 4);
}

// What one slot held when it was read.
enum class SlotCondition : std::uint8_t {
    kIntact,
    kEmpty,    // never written: nothing there, or only zero bytes
    kDamaged,  // something was written but it does not check out
};

SlotCondition decode(const Slot in, std::size_t read_size, PersistentState* state,
                     std::uint32_t* generation) {
    bool all_zero = true;
    for (std::size_t i = 0; i < read_size; ++i) {
        all_zero = all_zero && in[i] == 0;
    }
    if (all_zero) {
        return SlotCondition::kEmpty;
    }
    if (read_size < StateRecord::kSlotSize) {
        return SlotCondition::kDamaged;
    }
    bool magic_matches = true;
    for (std::size_t i = 0; i < sizeof kMagic; ++i) {
        magic_matches = magic_matches && in[kMagicOffset + i] == kMagic[i];
    }
    if (!magic_matches || get_le(in + kVersionOffset, 2) != kFormatVersion ||
        get_le(in + kPayloadLengthOffset, 2) != kPayloadLength ||
        get_le32(in + kCrcOffset) != crc32(in, kCrcOffset)) {
        return SlotCondition::kDamaged;
    }
    *generation = get_le32(in + kGenerationOffset);
    state->reconnect_attempts = get_le32(in + kReconnectAttemptsOffset);
    state->session_version = get_le32(in + kSessionVersionOffset);
    state->last_delivered_downlink_seq = get_le(in + kLastDeliveredOffset, 8);
    state->next_uplink_seq = get_le(in + kNextUplinkOffset, 8);
    state->uplink_settled_seq = get_le(in + kSettledOffset, 8);
    return SlotCondition::kIntact;
}

std::uint32_t slot_offset(std::size_t slot) {
    return static_cast<std::uint32_t>(slot * StateRecord::kSlotSize);
}

}  // namespace

bool operator==(const PersistentState& a, const PersistentState& b) {
    return a.reconnect_attempts == b.reconnect_attempts && a.session_version == b.session_version &&
           a.last_delivered_downlink_seq == b.last_delivered_downlink_seq &&
           a.next_uplink_seq == b.next_uplink_seq && a.uplink_settled_seq == b.uplink_settled_seq;
}

const char* to_string(LoadSource source) {
    switch (source) {
        case LoadSource::kNewestSlot:
            return "newest_slot";
        case LoadSource::kOlderSlot:
            return "older_slot";
        case LoadSource::kDefaults:
            return "defaults";
    }
    return "unknown";
}

Status StateRecord::load(PersistentState* state, LoadSource* source) {
    *state = PersistentState{};
    *source = LoadSource::kDefaults;

    PersistentState decoded[kSlotCount];
    std::uint32_t generations[kSlotCount] = {0, 0};
    SlotCondition conditions[kSlotCount];
    for (std::size_t slot = 0; slot < kSlotCount; ++slot) {
        Slot bytes = {};
        std::size_t read_size = 0;
        if (storage_.read(slot_offset(slot), bytes, kSlotSize, &read_size) != Status::kOk) {
            // The slot choice is left as it was: with nothing known about the
            // store, no save should be steered onto what may be the only good slot.
            return Status::kIoError;
        }
        conditions[slot] = decode(bytes, read_size, &decoded[slot], &generations[slot]);
    }

    const bool intact0 = conditions[0] == SlotCondition::kIntact;
    const bool intact1 = conditions[1] == SlotCondition::kIntact;
    if (!intact0 && !intact1) {
        // Nothing to keep: the next save may take slot 0, whatever lies there.
        generation_ = 0;
        newest_slot_ = 1;
        return Status::kOk;
    }
    std::uint8_t chosen = intact0 ? 0 : 1;
    if (intact0 && intact1 && generation_is_newer(generations[1], generations[0])) {
        chosen = 1;
    }
    const std::uint8_t other = chosen == 0 ? 1 : 0;
    *state = decoded[chosen];
    *source = conditions[other] == SlotCondition::kDamaged ? LoadSource::kOlderSlot
                                                           : LoadSource::kNewestSlot;
    generation_ = generations[chosen];
    newest_slot_ = chosen;
    // The slot may be a save that a killed process wrote but never synced:
    // make it durable before the caller acts on it, or a power cut now would
    // bring back an older record and the counters would go backwards.
    return storage_.sync() == Status::kOk ? Status::kOk : Status::kIoError;
}

Status StateRecord::save(const PersistentState& state) {
    // 0 is skipped on wrap-around, so generation() == 0 keeps meaning "none yet".
    const std::uint32_t generation = next_generation(generation_);
    const std::uint8_t target = newest_slot_ == 0 ? 1 : 0;
    Slot bytes;
    encode(state, generation, bytes);
    // The slot holding the newest record is never touched, so whatever a
    // failure or power cut does to `target`, load() still finds that record.
    // Only after the sync does the written slot become the newest one.
    if (storage_.write(slot_offset(target), bytes, kSlotSize) != Status::kOk ||
        storage_.sync() != Status::kOk) {
        return Status::kIoError;
    }
    generation_ = generation;
    newest_slot_ = target;
    return Status::kOk;
}

}  // namespace tether

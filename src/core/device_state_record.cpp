// SPDX-License-Identifier: MIT
#include "tether/device_state_record.h"

#include "generation.h"
#include "little_endian.h"

#include "tether/crc32.h"

namespace tether {
namespace {

// On-disk layout of one slot. Slot 0 starts at byte 0 of the store, slot 1 at
// slot_size(max_document). Integers are little-endian, written byte by byte.
//
//   offset  size  field
//   ------  ----  ---------------------------------------------------------
//        0     4  magic "TTDS"
//        4     2  format version, 1
//        6     2  flags: bit 0 report in flight, bit 1 it is whole ("state"),
//                 bit 2 a report is wanted beyond it; other bits zero
//        8     4  generation: +1 per save, wraps past 0xFFFFFFFF to 1
//       12     4  used length: header + documents + CRC, in bytes
//       16     8  desired version applied
//       24     8  reported version (the server's)
//       32     8  in-flight report's base
//       40    16  in-flight report's id (16 lowercase hex, or zeros)
//       56     4  length of the desired document (D)
//       60     4  length of the acknowledged reported document (R)
//       64     4  length of the local reported document (L)
//       68     4  length of the in-flight report's body (B)
//       72     D  desired document, then R, L and B bytes of the others
//  72+D+R+L+B  4  CRC-32 (IEEE) of every byte before it
//
// A slot is intact when magic, version and flags match, the lengths add up
// to the used length and fit the slot, and the CRC matches. Only the used
// length is ever written: what lies after it in the slot is left over from
// earlier saves and covered by nothing.
constexpr std::uint8_t kMagic[4] = {'T', 'T', 'D', 'S'};
constexpr std::uint16_t kFormatVersion = 1;
constexpr std::uint16_t kFlagInFlight = 0x1;
constexpr std::uint16_t kFlagWhole = 0x2;
constexpr std::uint16_t kFlagWanted = 0x4;
constexpr std::uint16_t kKnownFlags = kFlagInFlight | kFlagWhole | kFlagWanted;
constexpr std::size_t kVersionOffset = 4;
constexpr std::size_t kFlagsOffset = 6;
constexpr std::size_t kGenerationOffset = 8;
constexpr std::size_t kUsedOffset = 12;
constexpr std::size_t kDesiredVersionOffset = 16;
constexpr std::size_t kReportedVersionOffset = 24;
constexpr std::size_t kBaseOffset = 32;
constexpr std::size_t kIdOffset = 40;
constexpr std::size_t kLengthsOffset = 56;
constexpr std::size_t kDocumentCount = 4;
static_assert(kLengthsOffset + 4 * kDocumentCount == DeviceStateRecord::kHeaderSize,
              "the documents follow the header");
static_assert(kIdOffset + DeviceStateData::kReportIdLength == kLengthsOffset, "id field size");

using Header = std::uint8_t[DeviceStateRecord::kHeaderSize];

enum class SlotCondition : std::uint8_t { kIntact, kEmpty, kDamaged };

// What a slot's header says, before its documents are read and checked.
struct SlotHeader {
    SlotCondition condition = SlotCondition::kEmpty;
    std::uint32_t generation = 0;
    std::size_t lengths[kDocumentCount] = {};
    std::size_t used = 0;
};

SlotHeader parse_header(const Header bytes, std::size_t read_size, std::size_t max_document) {
    SlotHeader header;
    bool all_zero = true;
    for (std::size_t i = 0; i < read_size; ++i) {
        all_zero = all_zero && bytes[i] == 0;
    }
    if (all_zero) {
        return header;  // never written
    }
    header.condition = SlotCondition::kDamaged;
    if (read_size < DeviceStateRecord::kHeaderSize) {
        return header;
    }
    for (std::size_t i = 0; i < sizeof kMagic; ++i) {
        if (bytes[i] != kMagic[i]) {
            return header;
        }
    }
    const std::uint64_t flags = get_le(bytes + kFlagsOffset, 2);
    if (get_le(bytes + kVersionOffset, 2) != kFormatVersion ||
        (flags & ~std::uint64_t{kKnownFlags}) != 0) {
        return header;
    }
    std::size_t used = DeviceStateRecord::kHeaderSize + DeviceStateRecord::kCrcSize;
    for (std::size_t i = 0; i < kDocumentCount; ++i) {
        const std::uint32_t length = get_le32(bytes + kLengthsOffset + 4 * i);
        if (length > max_document) {
            return header;
        }
        header.lengths[i] = length;
        used += length;
    }
    if (get_le32(bytes + kUsedOffset) != used) {
        return header;
    }
    header.used = used;
    header.generation = get_le32(bytes + kGenerationOffset);
    header.condition = SlotCondition::kIntact;  // so far: the CRC is checked with the documents
    return header;
}

StoredDocument* document_of(DeviceStateData* data, std::size_t index) {
    StoredDocument* documents[kDocumentCount] = {&data->desired, &data->reported, &data->local,
                                                 &data->in_flight_body};
    return documents[index];
}

const StoredDocument& document_of(const DeviceStateData& data, std::size_t index) {
    const StoredDocument* documents[kDocumentCount] = {&data.desired, &data.reported, &data.local,
                                                       &data.in_flight_body};
    return *documents[index];
}

void reset_fields(DeviceStateData* data) {
    data->desired_version = 0;
    data->reported_version = 0;
    data->report_wanted = false;
    data->in_flight = false;
    data->in_flight_whole = false;
    data->in_flight_base = 0;
    for (char& c : data->in_flight_id) {
        c = '\0';
    }
    for (std::size_t i = 0; i < kDocumentCount; ++i) {
        document_of(data, i)->size = 0;
    }
}

void decode_fields(const std::uint8_t* h, DeviceStateData* data) {
    const std::uint64_t flags = get_le(h + kFlagsOffset, 2);
    data->desired_version = get_le(h + kDesiredVersionOffset, 8);
    data->reported_version = get_le(h + kReportedVersionOffset, 8);
    data->in_flight = (flags & kFlagInFlight) != 0;
    data->in_flight_whole = (flags & kFlagWhole) != 0;
    data->report_wanted = (flags & kFlagWanted) != 0;
    data->in_flight_base = get_le(h + kBaseOffset, 8);
    for (std::size_t i = 0; i < DeviceStateData::kReportIdLength; ++i) {
        data->in_flight_id[i] = static_cast<char>(h[kIdOffset + i]);
    }
    data->in_flight_id[DeviceStateData::kReportIdLength] = '\0';
}

// The header of a save of `data`; false when `data` breaks the bounds.
bool encode_header(const DeviceStateData& data, std::uint32_t generation, std::size_t max_document,
                   Header out) {
    std::size_t used = DeviceStateRecord::kHeaderSize + DeviceStateRecord::kCrcSize;
    for (std::size_t d = 0; d < kDocumentCount; ++d) {
        const StoredDocument& document = document_of(data, d);
        if (document.size > max_document || (document.size > 0 && document.data == nullptr)) {
            return false;
        }
        put_le(out + kLengthsOffset + 4 * d, document.size, 4);
        used += document.size;
    }
    std::uint16_t flags = data.report_wanted ? kFlagWanted : 0;
    if (data.in_flight) {
        for (std::size_t i = 0; i < DeviceStateData::kReportIdLength; ++i) {
            if (data.in_flight_id[i] == '\0') {
                return false;
            }
            out[kIdOffset + i] = static_cast<std::uint8_t>(data.in_flight_id[i]);
        }
        flags = static_cast<std::uint16_t>(flags | kFlagInFlight |
                                           (data.in_flight_whole ? kFlagWhole : 0));
        put_le(out + kBaseOffset, data.in_flight_base, 8);
    }
    for (std::size_t i = 0; i < sizeof kMagic; ++i) {
        out[i] = kMagic[i];
    }
    put_le(out + kVersionOffset, kFormatVersion, 2);
    put_le(out + kFlagsOffset, flags, 2);
    put_le(out + kGenerationOffset, generation, 4);
    put_le(out + kUsedOffset, used, 4);
    put_le(out + kDesiredVersionOffset, data.desired_version, 8);
    put_le(out + kReportedVersionOffset, data.reported_version, 8);
    return true;
}

}  // namespace

// Reads a slot's documents into *data and checks its CRC: kOk and *intact,
// or kIoError when the store failed.
Status DeviceStateRecord::read_documents(std::size_t index, const std::uint8_t* header_bytes,
                                         const std::size_t* lengths, DeviceStateData* data,
                                         bool* intact) {
    std::uint32_t crc = crc32(header_bytes, kHeaderSize);
    std::uint32_t offset =
        static_cast<std::uint32_t>(index * slot_size(max_document_) + kHeaderSize);
    *intact = false;
    for (std::size_t d = 0; d < kDocumentCount; ++d) {
        StoredDocument* document = document_of(data, d);
        std::size_t read_size = 0;
        if (storage_.read(offset, reinterpret_cast<std::uint8_t*>(document->data), lengths[d],
                          &read_size) != Status::kOk) {
            return Status::kIoError;
        }
        document->size = read_size;
        if (read_size != lengths[d]) {
            return Status::kOk;  // the store ends inside the slot: torn
        }
        crc = crc32(reinterpret_cast<const std::uint8_t*>(document->data), read_size, crc);
        offset += static_cast<std::uint32_t>(lengths[d]);
    }
    std::uint8_t stored_crc[kCrcSize] = {};
    std::size_t read_size = 0;
    if (storage_.read(offset, stored_crc, kCrcSize, &read_size) != Status::kOk) {
        return Status::kIoError;
    }
    *intact = read_size == kCrcSize && get_le32(stored_crc) == crc;
    return Status::kOk;
}

Status DeviceStateRecord::load(DeviceStateData* data, LoadSource* source) {
    reset_fields(data);
    *source = LoadSource::kDefaults;
    known_ = false;
    const std::size_t slot = slot_size(max_document_);
    Header headers[2] = {};
    SlotHeader parsed[2];
    for (std::size_t i = 0; i < 2; ++i) {
        std::size_t read_size = 0;
        if (storage_.read(static_cast<std::uint32_t>(i * slot), headers[i], kHeaderSize,
                          &read_size) != Status::kOk) {
            return Status::kIoError;
        }
        parsed[i] = parse_header(headers[i], read_size, max_document_);
    }
    // The newer intact-looking slot first; its documents decide (the CRC).
    const bool both = parsed[0].condition == SlotCondition::kIntact &&
                      parsed[1].condition == SlotCondition::kIntact;
    const bool second_first = both ? generation_is_newer(parsed[1].generation, parsed[0].generation)
                                   : parsed[0].condition != SlotCondition::kIntact;
    for (std::size_t n = 0; n < 2; ++n) {
        const std::size_t index = second_first ? 1 - n : n;
        if (parsed[index].condition != SlotCondition::kIntact) {
            continue;
        }
        bool intact = false;
        if (read_documents(index, headers[index], parsed[index].lengths, data, &intact) !=
            Status::kOk) {
            reset_fields(data);
            return Status::kIoError;
        }
        if (!intact) {
            parsed[index].condition = SlotCondition::kDamaged;
            continue;
        }
        decode_fields(headers[index], data);
        const std::size_t other = index == 0 ? 1 : 0;
        *source = parsed[other].condition == SlotCondition::kDamaged ? LoadSource::kOlderSlot
                                                                     : LoadSource::kNewestSlot;
        generation_ = parsed[index].generation;
        newest_slot_ = static_cast<std::uint8_t>(index);
        known_ = true;
        // As in StateRecord: the slot may hold a save a killed process never
        // synced; make it durable before anyone acts on it.
        return storage_.sync() == Status::kOk ? Status::kOk : Status::kIoError;
    }
    reset_fields(data);
    generation_ = 0;
    newest_slot_ = 1;
    known_ = true;
    return Status::kOk;
}

// After a load that could not read the store, nothing is known about the
// slots: before the first save, their headers are read again so that the
// save neither lands on the slot with the newest generation nor writes a
// generation below one already on disk (which a later load would take as
// older than a stale record).
Status DeviceStateRecord::probe_slots() {
    const std::size_t slot = slot_size(max_document_);
    bool any = false;
    std::uint32_t newest = 0;
    std::uint8_t newest_slot = 1;
    for (std::size_t i = 0; i < 2; ++i) {
        Header header = {};
        std::size_t read_size = 0;
        if (storage_.read(static_cast<std::uint32_t>(i * slot), header, kHeaderSize, &read_size) !=
            Status::kOk) {
            return Status::kIoError;
        }
        const SlotHeader parsed = parse_header(header, read_size, max_document_);
        if (parsed.condition == SlotCondition::kIntact &&
            (!any || generation_is_newer(parsed.generation, newest))) {
            any = true;
            newest = parsed.generation;
            newest_slot = static_cast<std::uint8_t>(i);
        }
    }
    generation_ = newest;
    newest_slot_ = newest_slot;
    known_ = true;
    return Status::kOk;
}

Status DeviceStateRecord::save(const DeviceStateData& data) {
    std::uint32_t generation = next_generation(generation_);
    Header header = {};
    if (!encode_header(data, generation, max_document_, header)) {
        return Status::kInvalidArgument;
    }
    if (!known_) {
        if (probe_slots() != Status::kOk) {
            return Status::kIoError;
        }
        generation = next_generation(generation_);
        put_le(header + kGenerationOffset, generation, 4);
    }
    // The slot holding the newest record is never touched; only after the
    // sync does the written one become the newest.
    const std::uint8_t target = newest_slot_ == 0 ? 1 : 0;
    std::uint32_t offset = static_cast<std::uint32_t>(target * slot_size(max_document_));
    if (storage_.write(offset, header, kHeaderSize) != Status::kOk) {
        return Status::kIoError;
    }
    std::uint32_t crc = crc32(header, kHeaderSize);
    offset += static_cast<std::uint32_t>(kHeaderSize);
    for (std::size_t d = 0; d < kDocumentCount; ++d) {
        const StoredDocument& document = document_of(data, d);
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(document.data);
        if (document.size > 0 && storage_.write(offset, bytes, document.size) != Status::kOk) {
            return Status::kIoError;
        }
        crc = document.size > 0 ? crc32(bytes, document.size, crc) : crc;
        offset += static_cast<std::uint32_t>(document.size);
    }
    std::uint8_t crc_bytes[kCrcSize];
    put_le(crc_bytes, crc, kCrcSize);
    if (storage_.write(offset, crc_bytes, kCrcSize) != Status::kOk ||
        storage_.sync() != Status::kOk) {
        return Status::kIoError;
    }
    generation_ = generation;
    newest_slot_ = target;
    known_ = true;
    return Status::kOk;
}

}  // namespace tether

// SPDX-License-Identifier: MIT
// The device-state record: what the device-state extension (docs/PROTOCOL.md
// section 9) must keep across watchdog resets and power cuts.
//
// Like the state record (state_record.h) it has two slots, each with a
// generation counter and a CRC-32; a save writes the slot that does not hold
// the newest record and syncs, so a power cut tears at most the slot being
// written and load() falls back to the other one. Unlike the state record
// the slots carry documents, so a slot's CRC covers only its used length
// (the header names it), and only that much is written. Nothing in it is a
// timestamp: the generation orders the slots.
//
// The documents live in caller buffers (DeviceStateData's pointers), each at
// least `max_document` bytes; the record itself holds no memory.
//
// The on-disk layout (little-endian, per slot) is described in
// src/core/device_state_record.cpp and docs/ARCHITECTURE.md.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/state_record.h"
#include "tether/status.h"
#include "tether/storage.h"

namespace tether {

/// One document in a caller buffer: `data` holds `size` bytes of compact JSON
/// (0 bytes means "never set", read as "{}").
struct StoredDocument {
    char* data = nullptr;
    std::size_t size = 0;
};

/// Everything the device-state record keeps.
struct DeviceStateData {
    static constexpr std::size_t kReportIdLength = 16;

    /// Desired: the version the application applied (0: none) and its document.
    std::uint64_t desired_version = 0;
    StoredDocument desired;
    /// Reported: the server's version of the reported document (0: none) and
    /// the document the server acknowledged at that version.
    std::uint64_t reported_version = 0;
    StoredDocument reported;
    /// The device's own reported document (what it has reported locally,
    /// acknowledged or not).
    StoredDocument local;
    /// A report the application made that is not in flight yet (it goes out
    /// once the one in flight is answered).
    bool report_wanted = false;
    /// The report in flight: sent (or about to be), not yet answered.
    bool in_flight = false;
    bool in_flight_whole = false;  ///< "state" (whole document) rather than "patch"
    std::uint64_t in_flight_base = 0;
    char in_flight_id[kReportIdLength + 1] = {};
    StoredDocument in_flight_body;
};

class DeviceStateRecord {
  public:
    /// Bytes of one slot's fixed header and trailing CRC.
    static constexpr std::size_t kHeaderSize = 72;
    static constexpr std::size_t kCrcSize = 4;
    /// Bytes one slot occupies in the store for documents of at most
    /// `max_document` bytes; the store holds two, slot 1 right after slot 0.
    static constexpr std::size_t slot_size(std::size_t max_document) {
        return kHeaderSize + 4 * max_document + kCrcSize;
    }

    DeviceStateRecord(Storage& storage, std::size_t max_document)
        : storage_(storage), max_document_(max_document) {}

    /// Reads the newest intact record into *data, whose four document
    /// pointers must each hold max_document bytes (the sizes are set; the
    /// other fields take the record's values, or defaults when no slot is
    /// intact). *source says which slot (as StateRecord::load). A record found
    /// is synced before load() returns. Returns kOk whenever *data is usable
    /// (defaults included); kIoError when the storage failed to read (*data
    /// holds defaults, *source is kDefaults; the next save() reads the slot
    /// headers again first, so it never writes over or below the newest
    /// generation on disk) or the sync failed (*data as loaded).
    Status load(DeviceStateData* data, LoadSource* source);

    /// Writes `data` with generation() + 1 into the slot not holding the
    /// newest record, then syncs. kOk; kInvalidArgument when a document is
    /// larger than max_document or an in-flight id is not kReportIdLength
    /// characters; kIoError when a write or the sync failed (the previous
    /// record is intact and a retry writes the same slot again).
    Status save(const DeviceStateData& data);

    /// The counter of the newest record written or loaded (0 before any;
    /// wraps from 0xFFFFFFFF to 1).
    std::uint32_t generation() const { return generation_; }
    std::size_t max_document() const { return max_document_; }

  private:
    Status probe_slots();
    Status read_documents(std::size_t index, const std::uint8_t* header_bytes,
                          const std::size_t* lengths, DeviceStateData* data, bool* intact);

    Storage& storage_;
    std::size_t max_document_;
    std::uint32_t generation_ = 0;
    std::uint8_t newest_slot_ = 1;  // so the first save goes to slot 0
    bool known_ = false;            // generation_ and newest_slot_ reflect the store
};

}  // namespace tether

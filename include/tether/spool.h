// SPDX-License-Identifier: MIT
// The spool: a crash-safe disk copy of the outbox, so telemetry accepted but
// not yet acknowledged survives a reboot or a power cut.
//
// Usage: the spool mirrors the outbox. After outbox.push() succeeds, call
// spool.append() with the same seq; when the outbox evicts (its dropped
// ranges), call spool.drop_through(); on each server ack, spool.ack(). Call
// spool.flush(now) from every loop iteration and spool.sync() on SIGTERM. At
// start-up, spool.recover() replays the unacknowledged messages in seq order,
// to be pushed into a fresh Outbox constructed with first_seq = the first
// replayed seq: with the mirroring above the replayed seqs are consecutive, so
// each push gets back its old seq (SpoolRecovery::seq_gaps counts the places
// where they are not, for a caller that spools only some messages).
//
// On-disk format (every integer little-endian, written byte by byte):
//
//   [ header block: 2 slots x 64 bytes ][ region 0 ][ region 1 ]
//
// Each region is region_size() = (max_bytes - 128) / 2 bytes; the header
// slot records that size. One region holds the active generation: an
// append-only journal of records.
//
//   header slot (64 bytes)            record (20-byte header + payload)
//    0  4  magic "TSPL"                0  1  type: 'M' message, 'A' ack, 'D' drop
//    4  2  format version, 1           1  1  format version, 1
//    6  2  reserved, 0                 2  2  generation tag (low 16 bits)
//    8  4  generation (>= 1)           4  4  payload length (0 for 'A' and 'D')
//   12  4  region size                 8  8  seq
//   16  1  active region (0 or 1)     16  4  CRC-32 of bytes 0..15 and the payload
//   17  7  reserved, 0                20  .  payload
//   24  8  highest seq seen
//   32  8  acked-through seq
//   40 20  reserved, 0
//   60  4  CRC-32 of bytes 0..59
//
// A MESSAGE carries one outbox entry; ACK and DROP records carry a cumulative
// watermark: every message with seq <= it is gone (acknowledged, or evicted by
// the outbox). Replay = the messages above the highest watermark.
//
// The journal ends at 20 zero bytes (written after every batch of records),
// so a scan never runs into the remains of an older generation.
//
// Writes. append(), ack() and drop_through() only fill the caller's buffer;
// when it is full, it is written (pwrite) but not synced. flush(now) writes
// what is buffered at every call (so a killed process loses nothing it had
// accepted: the kernel has it) and syncs at most once per fsync_interval_ms;
// sync() syncs at once. So fsyncs come in batches, one per interval, never
// per message, and only a power cut can lose what the last interval appended.
//
// Compaction. When an append would overflow the active region, or at a flush
// when dead records (acknowledged or dropped) exceed both the live ones and
// min_compact_bytes, the live messages are copied into the other region under
// generation + 1, synced, and only then is the header slot not holding the
// newest generation rewritten to name the new region, and synced. A crash
// before that last sync leaves the old header naming the untouched old region;
// a torn slot fails its CRC and the other slot still names a complete
// generation. Each record carries its generation's tag, covered by the CRC, so
// a slot that falls back to an older generation never accepts a newer one's
// records written over its region. If the
// live messages plus the new record still do not fit, the oldest live messages
// are left out (counters().dropped): the spool, like the default outbox
// policy, keeps the newest. Size each region to hold the outbox's contents
// (region_size() >= outbox capacity x 1.3 for 100-byte messages) to avoid it.
//
// Changing max_bytes. A store written with another max_bytes is recovered in
// the layout its header slot records and then migrated: its live messages are
// compacted into the configured layout's region after the active one, which
// must not overlap the old active journal (when it would, one compaction in
// the old layout first moves the journal), so a crash during the migration
// recovers the old layout intact. If
// the new regions are too small for them, the oldest are left out and
// SpoolRecovery names their seqs. Storage cannot shrink a file: after a
// shrink the bytes beyond the new max_bytes stay, unused.
//
// Crash guarantees.
//  - A power cut loses at most the records appended since the last successful
//    sync: with flush(now) called every loop iteration, at most
//    fsync_interval_ms (default 1000 ms) plus one loop period of appends.
//    Records written before a sync are never lost, whatever happens during or
//    after later writes or compactions.
//  - A lost ACK only means a message is replayed again (the server discards
//    seqs it has); a lost DROP record likewise.
//  - Recovery stops at the first torn or corrupt record and never returns data
//    that did not pass its CRC; records after a damaged one are given up, and
//    recovery then compacts into a fresh generation so they cannot resurface.
//  - What recovery reports is durable when it returns: it ends with a sync
//    (unless it already made one), since a killed process leaves its unsynced
//    writes in the kernel, where recovery reads them, and a power cut right
//    after would otherwise take back messages the caller has already sent.
//
// No heap allocation. Not thread-safe: one poll loop owns it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/status.h"
#include "tether/storage.h"
#include "tether/time.h"

namespace tether {

struct SpoolConfig {
    /// The whole store: header block plus two regions. At least 256.
    std::uint32_t max_bytes = 1024u * 1024u;
    /// Minimum time between two syncs made by flush().
    std::uint32_t fsync_interval_ms = 1000;
    /// Dead bytes needed, besides outweighing the live ones, before flush() compacts.
    std::uint32_t min_compact_bytes = 256u * 1024u;
};

/// What recover() found.
struct SpoolRecovery {
    std::size_t messages = 0;         ///< messages replayed through the visitor
    std::uint64_t first_seq = 0;      ///< seq of the first replayed message, 0 if none
    std::uint64_t last_seq = 0;       ///< seq of the last replayed message, 0 if none
    std::uint64_t highest_seq = 0;    ///< highest seq ever recorded (messages and acks);
                                      ///< reserve seqs above it so they never go backwards
    std::uint64_t acked_through = 0;  ///< highest ACK or DROP watermark found
    std::size_t seq_gaps = 0;         ///< places where a replayed seq is not previous + 1
    std::size_t truncated_bytes = 0;  ///< bytes of the damaged record recovery stopped at
                                      ///< (as far as the store holds it); 0 at a clean end
    bool damaged = false;             ///< stopped at a torn or corrupt record
    bool fresh = false;               ///< no intact header slot: a new (or wiped) spool
    std::uint32_t generation = 0;     ///< the active generation after recovery

    /// The size the store was laid out for: header block plus two regions
    /// (max_bytes rounded down to that); when fresh, the configured one.
    std::uint32_t recorded_max_bytes = 0;
    /// recorded_max_bytes is not the configured layout: the live messages
    /// were moved into the configured one.
    bool resized = false;
    /// When resized into too little room, the oldest live messages were left
    /// out: seqs dropped_first through dropped_last (both 0 when none). They
    /// are not replayed, and acked_through covers them.
    std::uint64_t dropped_first = 0;
    std::uint64_t dropped_last = 0;
};

struct SpoolCounters {
    std::uint64_t appended = 0;     ///< messages appended
    std::uint64_t dropped = 0;      ///< live messages left out by compaction for lack of room
    std::uint64_t compactions = 0;  ///< generations written
    std::uint64_t syncs = 0;        ///< successful Storage::sync() calls
    std::uint64_t bytes_written = 0;
};

class Spool {
  public:
    static constexpr std::size_t kHeaderBlockSize = 128;
    /// Bytes each record takes in the journal besides its payload.
    static constexpr std::size_t kRecordOverhead = 20;
    static constexpr std::size_t kMinBufferSize = 64;

    using Visitor = void (*)(void* ctx, std::uint64_t seq, const std::uint8_t* data,
                             std::size_t size);

    /// `buffer` (caller-owned, valid for the spool's life) batches appends and
    /// serves as scratch for recovery and compaction. The largest payload is
    /// buffer_size - 2 * kRecordOverhead (a record, and the zero terminator
    /// written after the journal's end); recovery refuses a store holding a
    /// record its buffer cannot (see recover()). Nothing is read or written
    /// until recover().
    Spool(Storage& storage, std::uint8_t* buffer, std::size_t buffer_size,
          const SpoolConfig& config = SpoolConfig());

    /// Opens the spool; must precede every other call. Reads the header slots
    /// and scans the active generation, stopping at the first torn, corrupt or
    /// unwritten record; then calls `visit` (may be null) for every MESSAGE
    /// above the highest ACK/DROP watermark, in journal (= seq) order. `data`
    /// points into the buffer and is valid only during the call. `report` may
    /// be null. A store without an intact header slot is initialised empty
    /// (generation 1, region 0; synced). After damage, the messages kept are
    /// compacted into a new generation; a store laid out for another
    /// max_bytes is migrated into the configured one (see "Changing
    /// max_bytes"; report->resized, dropped_first, dropped_last). The visitor
    /// then sees what the spool holds afterwards. Either way the store is
    /// synced before recover() returns kOk, so what it replayed stays.
    /// Returns:
    ///  - kOk: recovered; the spool accepts appends after the highest seq.
    ///  - kInvalidArgument, nothing written, error() saying which: null buffer
    ///    ("no buffer"), one below kMinBufferSize ("buffer smaller than
    ///    Spool::kMinBufferSize"), max_bytes below 256 ("max_bytes below
    ///    256"), or an intact record larger than the buffer, written with a
    ///    larger one ("buffer smaller than the spool's largest record"):
    ///    recover again with a larger buffer.
    ///  - kIoError: a read, write or sync failed; call recover() again (a
    ///    migration that failed is started over; the old layout is intact).
    ///
    /// Example:
    ///
    ///     SpoolRecovery report;
    ///     if (spool.recover(push_into_outbox, &outbox, &report) != Status::kOk) {
    ///         log("spool recovery failed: %s", spool.error());
    ///     } else if (report.resized && report.dropped_last != 0) {
    ///         log("spool shrunk: seqs %llu..%llu left out", ...);
    ///     }
    Status recover(Visitor visit, void* ctx, SpoolRecovery* report);

    /// Buffers a MESSAGE record. `seq` must exceed every seq appended or acked
    /// before. May write the buffer out (no sync) when it is full, and compacts
    /// first (syncing twice) when the active region cannot take the record.
    /// Returns kOk; kInvalidArgument (not recovered, seq not increasing, or
    /// null data with size > 0; nothing changed); kTooLarge (the record does
    /// not fit the buffer or a region; nothing changed); kIoError (a write or
    /// the compaction failed; the message is not appended, what was buffered
    /// before stays buffered or written).
    Status append(std::uint64_t seq, const std::uint8_t* data, std::size_t size);

    /// The server acknowledged every seq <= `seq`: buffers an ACK record
    /// (clamped to the highest seq appended). A watermark at or below the
    /// current one is a no-op. Returns kOk, kInvalidArgument (not recovered)
    /// or kIoError as append() does.
    Status ack(std::uint64_t seq);

    /// The outbox evicted every seq <= `seq` (its dropped ranges end there):
    /// buffers a DROP record, otherwise as ack().
    Status drop_through(std::uint64_t seq);

    /// From every loop iteration: when records are buffered or written but not
    /// synced and fsync_interval_ms has passed since the previous sync made
    /// here (or none was made yet), writes them and syncs; then compacts if
    /// dead records dominate (see the file comment). Returns kOk (also when
    /// nothing was due), kInvalidArgument (not recovered) or kIoError (nothing
    /// lost from memory; the next call retries).
    Status flush(TimeMs now);

    /// Writes what is buffered and syncs now (shutdown, SIGTERM). Returns kOk,
    /// kInvalidArgument (not recovered) or kIoError.
    Status sync();

    /// Copies the live messages into a new generation now (see the file
    /// comment). Returns kOk, kInvalidArgument (not recovered) or kIoError:
    /// either nothing changed (the previous generation stays active and
    /// complete), or the header slot was written but its sync failed, so it
    /// may or may not be on the medium: the spool then continues in the new
    /// generation and rewrites that slot before the next sync() or compaction
    /// can succeed. Either way a power cut recovers what was last synced.
    Status compact();

    /// Why the most recent call that did not return kOk failed: a static
    /// string for logs (see recover() for its kInvalidArgument reasons; the
    /// others are "recover() has not succeeded", "seq not above every seq
    /// appended or acknowledged", "null data with a nonzero size", "record
    /// larger than the buffer or a region allows" and "a read, write or sync
    /// of the store failed"). "" while nothing has failed.
    const char* error() const { return error_; }

    /// Bytes per region: of the configured max_bytes, and after recover() of
    /// the layout in use (the configured one once a migration succeeded).
    std::uint32_t region_size() const { return region_size_; }
    std::uint32_t generation() const { return generation_; }
    /// Bytes of the active region in use, buffered records included.
    std::uint32_t journal_bytes() const {
        return written_end_ + static_cast<std::uint32_t>(pending_);
    }
    std::size_t buffered_bytes() const { return pending_; }
    std::uint64_t highest_seq() const { return highest_seq_; }
    std::uint64_t acked_through() const { return acked_through_; }
    /// True while records (or a new generation's header slot) await a sync.
    bool has_unsynced() const { return pending_ > 0 || unsynced_written_ || header_uncommitted_; }
    const SpoolCounters& counters() const { return counters_; }

  private:
    // The scan, compaction and layout details are in src/core/spool.cpp.
    struct Cursor;
    struct Record;
    enum class Scan : std::uint8_t;

    Status fail(Status status, const char* why);
    Status buffer_record(std::uint8_t type, std::uint64_t seq, const std::uint8_t* data,
                         std::size_t size);
    Status watermark(std::uint8_t type, std::uint64_t seq);
    Status write_pending();
    Status write_terminator(std::uint32_t base, std::uint32_t offset, std::uint32_t region_size);
    Status sync_storage();
    Status compact_for(std::size_t reserve);
    Status compact_into(std::uint8_t new_region, std::uint32_t new_size, std::size_t reserve);
    Status migrate(SpoolRecovery* out);
    Status write_header(std::uint32_t generation, std::uint8_t region, std::uint32_t region_size,
                        bool* slot_written);
    Status commit_header();
    void adopt_generation(std::uint32_t generation, std::uint8_t region, std::uint32_t region_size,
                          std::uint32_t journal_end, std::uint64_t dropped);
    Status read_header(bool* found);
    static bool plausible_header(const std::uint8_t* header, const Cursor& cursor);
    Status check_large_record(Cursor* cursor, bool* intact);
    Status next_record(Cursor* cursor, Record* record, Scan* scan);
    Status advance_live_offset();
    std::uint32_t region_base(std::uint8_t region) const;

    Storage& storage_;
    std::uint8_t* buffer_;
    std::size_t buffer_size_;
    SpoolConfig config_;
    std::uint32_t configured_region_size_;  // 0 when max_bytes is too small
    std::uint32_t region_size_;             // of the layout in use (the store's until migrated)
    const char* error_ = "";
    bool recovered_ = false;
    std::uint32_t generation_ = 0;
    std::uint8_t active_region_ = 0;
    std::uint8_t newest_slot_ = 1;
    std::uint32_t written_end_ = 0;  // journal bytes written to storage (synced or not)
    std::size_t pending_ = 0;        // journal bytes buffered after written_end_
    bool unsynced_written_ = false;
    bool header_uncommitted_ = false;  // the active generation's slot may not be durable
    bool synced_once_ = false;
    TimeMs last_sync_ = 0;
    std::uint64_t highest_seq_ = 0;
    std::uint64_t acked_through_ = 0;
    std::uint32_t live_offset_ = 0;        // every record before it is dead
    std::uint64_t live_offset_acked_ = 0;  // acked_through_ when live_offset_ was advanced
    std::uint64_t dropped_first_ = 0;      // seqs the last compaction left out, 0 if none
    std::uint64_t dropped_last_ = 0;
    SpoolCounters counters_;
};

}  // namespace tether

// SPDX-License-Identifier: MIT
// RecordLog: an append-only file of CRC-protected records, the storage unit of
// the tether-server session store.
//
// Record framing (little-endian):
//
//   key u64 | length u32 | body (length bytes) | crc32 u32
//
// The CRC (tether::crc32) covers key, length and body. A file is valid up to
// its first record that is short, longer than the caller's limit, or fails its
// CRC; open() truncates the file there (a crash in the middle of an append
// leaves exactly such a tail) and never reads past it.
//
// Appends reach the file at once (or, with a write buffer, at the latest at
// the next flush(), sync() or close()) but are durable only after sync(). A
// failed write is cut back off the file so a later append never follows a
// partial record; if even that fails the log is marked broken and refuses
// appends.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tether/status.h"

namespace tether::server {

inline constexpr std::size_t kRecordOverhead = 8 + 4 + 4;

/// Called for each valid record while a log is read, in file order. Return
/// false to declare the record invalid: the log ends before it.
using RecordVisitor =
    std::function<bool(std::uint64_t key, const std::uint8_t* body, std::size_t size)>;

/// One record to write (body borrowed from the caller).
struct RecordView {
    std::uint64_t key = 0;
    const std::uint8_t* body = nullptr;
    std::size_t size = 0;
};

class RecordLog {
  public:
    RecordLog() = default;
    ~RecordLog();
    RecordLog(const RecordLog&) = delete;
    RecordLog& operator=(const RecordLog&) = delete;

    /// Opens `path` for appending, creating it when missing, and passes every
    /// valid record to `visitor`. A damaged tail (or the first record the
    /// visitor rejects) and everything after it is truncated away and the
    /// truncation synced; *truncated_bytes (when not null) says how much.
    /// The records found may be appends a killed process never synced: until
    /// the truncation's fsync or the next sync() (which then fsyncs even with
    /// nothing appended) a power cut can still take them back.
    /// kOk; kInvalidArgument when already open; kIoError when the file cannot
    /// be opened, read, truncated or synced.
    Status open(const std::string& path, std::size_t max_body, const RecordVisitor& visitor,
                std::uint64_t* truncated_bytes = nullptr);

    /// Collect appends in memory and write them in one pwrite() once `bytes`
    /// are pending (and at flush(), sync() and close()): one system call per
    /// batch instead of one per record, for the uplink log that takes every
    /// message. 0 (the default) writes each record at once.
    void set_write_buffer(std::size_t bytes);

    /// Appends one record. kOk; kInvalidArgument when not open; kTooLarge when
    /// the body is above max_body; kIoError when the write failed (the
    /// partial record is removed; if that fails too the log refuses appends).
    /// With a write buffer, a failed write of the batch drops every record
    /// of that batch (none of them was synced, so none was acknowledged).
    Status append(std::uint64_t key, const std::uint8_t* body, std::size_t size);

    /// Writes the buffered records. kOk, kIoError as for append().
    Status flush();

    /// Writes the buffered records and fsyncs when something was appended
    /// since the last sync, or open() found records it did not sync. kOk,
    /// kIoError (the log then refuses appends: what reached the disk is
    /// unknown).
    Status sync();

    /// Writes the buffered records and closes the file (without syncing).
    /// The log remembers its path, size, record count and whether appends
    /// wait for a sync, so reopen() can take it up again.
    void close();

    /// Opens the file of a log closed by close() again, without reading it:
    /// its size must still be what this log wrote. The store closes idle
    /// logs to bound its descriptors and takes them up again on demand.
    /// kOk; kInvalidArgument when open or never opened; kCorrupt when the
    /// file changed size behind the log's back (nothing is trusted: the
    /// caller reads the file afresh with open()); kIoError when the file
    /// cannot be opened (EMFILE, ENFILE, a missing file, ...).
    Status reopen();

    /// Declares what was appended durable without an fsync of this log: for
    /// a caller that made it durable another way (syncfs of its file system,
    /// which succeeded after the appends). Clears dirty().
    void mark_durable() { dirty_ = false; }

    bool is_open() const { return fd_ >= 0; }
    bool broken() const { return broken_; }
    bool dirty() const { return dirty_; }
    /// Bytes in the log, buffered records included.
    std::uint64_t size_bytes() const { return end_ + pending_.size(); }
    std::uint64_t records() const { return records_; }
    const std::string& path() const { return path_; }

    /// Reads `path` without changing it: every valid record up to the first
    /// damaged one goes to `visitor`. kOk (also for a damaged tail), kNotFound
    /// when the file does not exist, kIoError.
    static Status read(const std::string& path, std::size_t max_body, const RecordVisitor& visitor);

    /// Replaces `path` atomically with a file holding `records`: writes
    /// `path`.tmp, fsyncs it, renames it over `path` and fsyncs the directory.
    /// Afterwards `path` holds either its old or its new contents, never a mix.
    /// kOk, kIoError (the temp file is removed; `path` is unchanged).
    static Status replace(const std::string& path, const std::vector<RecordView>& records);

  private:
    Status write_pending();

    int fd_ = -1;
    std::string path_;
    std::size_t max_body_ = 0;
    std::uint64_t end_ = 0;  // of the file: where pending_ goes
    std::uint64_t records_ = 0;
    std::vector<std::uint8_t> pending_;  // encoded records not yet written
    std::size_t write_buffer_ = 0;
    bool dirty_ = false;
    bool broken_ = false;
};

/// Encodes one record (framing above) at the end of `out`.
void encode_record(std::uint64_t key, const std::uint8_t* body, std::size_t size,
                   std::vector<std::uint8_t>* out);

/// Writes all of `size` bytes at `offset`, retrying short writes and EINTR.
bool write_all_at(int fd, const std::uint8_t* data, std::size_t size, std::uint64_t offset);

/// fsync of a directory (makes a create, rename or unlink in it durable).
bool sync_directory(const std::string& directory);

/// Little-endian helpers for record bodies.
void put_u32(std::vector<std::uint8_t>* out, std::uint32_t value);
void put_u64(std::vector<std::uint8_t>* out, std::uint64_t value);
std::uint32_t get_u32(const std::uint8_t* in);
std::uint64_t get_u64(const std::uint8_t* in);

}  // namespace tether::server

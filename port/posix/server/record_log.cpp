// SPDX-License-Identifier: MIT
#include "record_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "tether/crc32.h"

namespace tether::server {
namespace {

constexpr std::size_t kHeaderBytes = 12;  // key u64 + length u32
constexpr std::size_t kCrcBytes = 4;

std::uint32_t record_crc(const std::uint8_t* header, const std::uint8_t* body, std::size_t size) {
    return tether::crc32(body, size, tether::crc32(header, kHeaderBytes));
}

// Reads up to `size` bytes at `offset`; fewer only at end of file.
// Returns the count, or -1 on an I/O error.
long long read_at(int fd, std::uint8_t* data, std::size_t size, std::uint64_t offset) {
    std::size_t done = 0;
    while (done < size) {
        const ssize_t got =
            ::pread(fd, data + done, size - done, static_cast<off_t>(offset + done));
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (got == 0) {
            break;
        }
        done += static_cast<std::size_t>(got);
    }
    return static_cast<long long>(done);
}

// Walks the records of `fd` from offset 0. *valid_end is set to the offset
// just after the last valid record. False on an I/O error.
bool scan(int fd, std::size_t max_body, const RecordVisitor& visitor, std::uint64_t* valid_end,
          std::uint64_t* records) {
    std::uint64_t offset = 0;
    std::uint64_t count = 0;
    std::vector<std::uint8_t> body;
    for (;;) {
        std::uint8_t header[kHeaderBytes];
        const long long got = read_at(fd, header, kHeaderBytes, offset);
        if (got < 0) {
            return false;
        }
        if (static_cast<std::size_t>(got) < kHeaderBytes) {
            break;  // end of file, or a torn header
        }
        const std::uint32_t length = get_u32(header + 8);
        if (length > max_body) {
            break;  // damage: no writer produces it
        }
        body.resize(std::size_t{length} + kCrcBytes);
        const long long body_got = read_at(fd, body.data(), body.size(), offset + kHeaderBytes);
        if (body_got < 0) {
            return false;
        }
        if (static_cast<std::size_t>(body_got) < body.size()) {
            break;  // torn body
        }
        if (get_u32(body.data() + length) != record_crc(header, body.data(), length)) {
            break;
        }
        if (!visitor(get_u64(header), body.data(), length)) {
            break;
        }
        offset += kHeaderBytes + length + kCrcBytes;
        ++count;
    }
    *valid_end = offset;
    *records = count;
    return true;
}

std::string parent_directory(const std::string& path) {
    const std::size_t slash = path.rfind('/');
    if (slash == std::string::npos) {
        return ".";
    }
    return slash == 0 ? "/" : path.substr(0, slash);
}

int open_retrying(const char* path, int flags, mode_t mode) {
    for (;;) {
        const int fd = ::open(path, flags, mode);
        if (fd >= 0 || errno != EINTR) {
            return fd;
        }
    }
}

}  // namespace

void put_u32(std::vector<std::uint8_t>* out, std::uint32_t value) {
    for (int shift = 0; shift < 32; shift += 8) {
        out->push_back(static_cast<std::uint8_t>(value >> shift));
    }
}

void put_u64(std::vector<std::uint8_t>* out, std::uint64_t value) {
    for (int shift = 0; shift < 64; shift += 8) {
        out->push_back(static_cast<std::uint8_t>(value >> shift));
    }
}

std::uint32_t get_u32(const std::uint8_t* in) {
    std::uint32_t value = 0;
    for (int i = 3; i >= 0; --i) {
        value = (value << 8) | in[i];
    }
    return value;
}

std::uint64_t get_u64(const std::uint8_t* in) {
    std::uint64_t value = 0;
    for (int i = 7; i >= 0; --i) {
        value = (value << 8) | in[i];
    }
    return value;
}

void encode_record(std::uint64_t key, const std::uint8_t* body, std::size_t size,
                   std::vector<std::uint8_t>* out) {
    const std::size_t start = out->size();
    put_u64(out, key);
    put_u32(out, static_cast<std::uint32_t>(size));
    out->insert(out->end(), body, body + size);
    put_u32(out, record_crc(out->data() + start, body, size));
}

// Records in a buffer of whole encoded records.
static std::uint64_t count_records(const std::vector<std::uint8_t>& encoded) {
    std::uint64_t count = 0;
    for (std::size_t at = 0; at + kRecordOverhead <= encoded.size(); ++count) {
        at += kRecordOverhead + get_u32(encoded.data() + at + 8);
    }
    return count;
}

bool write_all_at(int fd, const std::uint8_t* data, std::size_t size, std::uint64_t offset) {
    std::size_t done = 0;
    while (done < size) {
        const ssize_t put =
            ::pwrite(fd, data + done, size - done, static_cast<off_t>(offset + done));
        if (put < 0 && errno == EINTR) {
            continue;
        }
        if (put <= 0) {
            return false;  // an error, or no progress (a full device may report 0)
        }
        done += static_cast<std::size_t>(put);
    }
    return true;
}

bool sync_directory(const std::string& directory) {
    const int fd = open_retrying(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    const bool ok = ::fsync(fd) == 0;
    ::close(fd);
    return ok;
}

RecordLog::~RecordLog() {
    close();
}

Status RecordLog::open(const std::string& path, std::size_t max_body, const RecordVisitor& visitor,
                       std::uint64_t* truncated_bytes) {
    if (fd_ >= 0) {
        return Status::kInvalidArgument;
    }
    const int fd = open_retrying(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        return Status::kIoError;
    }
    struct stat info {};
    std::uint64_t valid_end = 0;
    std::uint64_t count = 0;
    if (::fstat(fd, &info) != 0 || !scan(fd, max_body, visitor, &valid_end, &count)) {
        ::close(fd);
        return Status::kIoError;
    }
    const std::uint64_t file_size = static_cast<std::uint64_t>(info.st_size);
    const bool cut = valid_end < file_size;
    if (cut) {
        // The tail was never acknowledged as durable (or is damage): drop it
        // so the next append starts on a record boundary.
        if (::ftruncate(fd, static_cast<off_t>(valid_end)) != 0 || ::fsync(fd) != 0) {
            ::close(fd);
            return Status::kIoError;
        }
    }
    if (truncated_bytes != nullptr) {
        *truncated_bytes = file_size > valid_end ? file_size - valid_end : 0;
    }
    fd_ = fd;
    path_ = path;
    max_body_ = max_body;
    end_ = valid_end;
    records_ = count;
    // What was found may be appends a killed process never synced (they sat
    // in the page cache): the next sync() makes them durable, unless the cut
    // above already did.
    dirty_ = valid_end > 0 && !cut;
    broken_ = false;
    return Status::kOk;
}

void RecordLog::set_write_buffer(std::size_t bytes) {
    write_buffer_ = bytes;  // pending_ grows to it on first use and keeps its capacity
}

Status RecordLog::append(std::uint64_t key, const std::uint8_t* body, std::size_t size) {
    if (fd_ < 0) {
        return Status::kInvalidArgument;
    }
    if (size > max_body_) {
        return Status::kTooLarge;
    }
    if (broken_) {
        return Status::kIoError;
    }
    encode_record(key, body, size, &pending_);
    ++records_;
    dirty_ = true;
    return pending_.size() >= write_buffer_ ? write_pending() : Status::kOk;
}

Status RecordLog::flush() {
    if (fd_ < 0) {
        return Status::kInvalidArgument;
    }
    if (broken_) {
        return Status::kIoError;
    }
    return write_pending();
}

Status RecordLog::write_pending() {
    if (pending_.empty()) {
        return Status::kOk;
    }
    const bool written = write_all_at(fd_, pending_.data(), pending_.size(), end_);
    if (!written) {
        // Cut the partial batch off; a later append must start at end_.
        records_ -= count_records(pending_);
        pending_.clear();
        if (::ftruncate(fd_, static_cast<off_t>(end_)) != 0) {
            broken_ = true;
        }
        return Status::kIoError;
    }
    end_ += pending_.size();
    pending_.clear();
    return Status::kOk;
}

Status RecordLog::sync() {
    if (fd_ < 0) {
        return Status::kInvalidArgument;
    }
    if (broken_) {
        return Status::kIoError;
    }
    if (!dirty_) {
        return Status::kOk;
    }
    if (write_pending() != Status::kOk) {
        return Status::kIoError;
    }
    if (::fsync(fd_) != 0) {
        // After a failed fsync the page cache may already have dropped the
        // dirty pages: retrying would report success for lost data.
        broken_ = true;
        return Status::kIoError;
    }
    dirty_ = false;
    return Status::kOk;
}

void RecordLog::close() {
    if (fd_ >= 0) {
        if (!broken_) {
            (void)write_pending();  // as a write-through log would have had them
        }
        ::close(fd_);
        fd_ = -1;
    }
}

Status RecordLog::reopen() {
    if (fd_ >= 0 || path_.empty()) {
        return Status::kInvalidArgument;
    }
    const int fd = open_retrying(path_.c_str(), O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) {
        return Status::kIoError;
    }
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
        ::close(fd);
        return Status::kIoError;
    }
    if (static_cast<std::uint64_t>(info.st_size) != end_) {
        ::close(fd);
        return Status::kCorrupt;
    }
    fd_ = fd;
    return Status::kOk;
}

Status RecordLog::read(const std::string& path, std::size_t max_body,
                       const RecordVisitor& visitor) {
    const int fd = open_retrying(path.c_str(), O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) {
        return errno == ENOENT ? Status::kNotFound : Status::kIoError;
    }
    std::uint64_t valid_end = 0;
    std::uint64_t count = 0;
    const bool ok = scan(fd, max_body, visitor, &valid_end, &count);
    ::close(fd);
    return ok ? Status::kOk : Status::kIoError;
}

Status RecordLog::replace(const std::string& path, const std::vector<RecordView>& records) {
    std::vector<std::uint8_t> contents;
    for (const RecordView& record : records) {
        encode_record(record.key, record.body, record.size, &contents);
    }
    const std::string temp = path + ".tmp";
    const int fd = open_retrying(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return Status::kIoError;
    }
    const bool written = write_all_at(fd, contents.data(), contents.size(), 0) && ::fsync(fd) == 0;
    ::close(fd);
    if (!written || ::rename(temp.c_str(), path.c_str()) != 0) {
        ::unlink(temp.c_str());
        return Status::kIoError;
    }
    return sync_directory(parent_directory(path)) ? Status::kOk : Status::kIoError;
}

}  // namespace tether::server

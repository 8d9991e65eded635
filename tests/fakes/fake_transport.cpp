// SPDX-License-Identifier: MIT
#include "fakes/fake_transport.h"

#include <cstring>

namespace tether::test {

void FakeTransport::push_input(const std::uint8_t* data, std::size_t size) {
    input_.push_back(
        Chunk{Kind::kData, std::vector<std::uint8_t>(data, data + size), 0, TransportError::kNone});
}

void FakeTransport::push_input(const std::vector<std::uint8_t>& bytes) {
    push_input(bytes.data(), bytes.size());
}

void FakeTransport::push_input(const std::string& bytes) {
    push_input(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}

void FakeTransport::push_input_split(const std::uint8_t* data, std::size_t size,
                                     std::size_t chunk_size) {
    if (chunk_size == 0) {
        chunk_size = size == 0 ? 1 : size;
    }
    for (std::size_t offset = 0; offset < size; offset += chunk_size) {
        const std::size_t length = size - offset < chunk_size ? size - offset : chunk_size;
        push_input(data + offset, length);
    }
}

void FakeTransport::push_input_split(const std::vector<std::uint8_t>& bytes,
                                     std::size_t chunk_size) {
    push_input_split(bytes.data(), bytes.size(), chunk_size);
}

void FakeTransport::push_eof() {
    input_.push_back(Chunk{Kind::kEof, {}, 0, TransportError::kNone});
}

void FakeTransport::push_error(TransportError why) {
    input_.push_back(Chunk{Kind::kError, {}, 0, why});
}

std::size_t FakeTransport::input_remaining() const {
    std::size_t total = 0;
    for (const Chunk& chunk : input_) {
        total += chunk.bytes.size() - chunk.offset;
    }
    return total;
}

void FakeTransport::repeat_input(const std::vector<std::uint8_t>& pattern, std::size_t times,
                                 std::size_t per_read) {
    repeat_pattern_ = pattern;
    repeat_left_ = pattern.empty() ? 0 : times;
    repeat_offset_ = 0;
    repeat_per_read_ = per_read;
}

IoResult FakeTransport::read_repeated(std::uint8_t* out, std::size_t size) {
    // Serves the pattern `repeat_left_` more times without touching the heap,
    // at most repeat_per_read_ patterns per call (then would-block), like a
    // socket that has that much data per readiness.
    std::size_t moved = 0;
    std::size_t patterns = 0;
    while (moved < size && repeat_left_ > 0 &&
           (repeat_per_read_ == 0 || patterns < repeat_per_read_)) {
        std::size_t length = repeat_pattern_.size() - repeat_offset_;
        if (length > size - moved) {
            length = size - moved;
        }
        std::memcpy(out + moved, repeat_pattern_.data() + repeat_offset_, length);
        moved += length;
        repeat_offset_ += length;
        if (repeat_offset_ == repeat_pattern_.size()) {
            repeat_offset_ = 0;
            --repeat_left_;
            ++patterns;
        }
    }
    if (moved == 0) {
        return IoResult::would_block();
    }
    return IoResult::ok(moved);
}

IoResult FakeTransport::read(std::uint8_t* out, std::size_t size) {
    ++read_calls_;
    if (input_.empty() && repeat_left_ > 0) {
        return read_repeated(out, size);
    }
    if (input_.empty()) {
        return IoResult::would_block();
    }
    Chunk& chunk = input_.front();
    if (chunk.kind == Kind::kEof) {
        return IoResult::closed();
    }
    if (chunk.kind == Kind::kError) {
        return IoResult::failed(chunk.error);
    }
    std::size_t length = chunk.bytes.size() - chunk.offset;
    if (size < length) {
        length = size;
    }
    if (max_read_size_ != 0 && max_read_size_ < length) {
        length = max_read_size_;
    }
    if (length != 0) {
        std::memcpy(out, chunk.bytes.data() + chunk.offset, length);
    }
    chunk.offset += length;
    if (chunk.offset == chunk.bytes.size()) {
        input_.pop_front();
    }
    return IoResult::ok(length);
}

bool FakeTransport::write_refused(IoResult* result) {
    if (writes_fail_) {
        *result = write_error_ == TransportError::kNone ? IoResult::closed()
                                                        : IoResult::failed(write_error_);
        return true;
    }
    if (blocked_writes_ != 0) {
        --blocked_writes_;
        *result = IoResult::would_block();
        return true;
    }
    return false;
}

std::size_t FakeTransport::write_limit(std::size_t size) const {
    return max_write_size_ != 0 && max_write_size_ < size ? max_write_size_ : size;
}

void FakeTransport::capture(const std::uint8_t* data, std::size_t size) {
    bytes_written_ += size;
    if (!discard_output_) {
        output_.insert(output_.end(), data, data + size);
    }
}

IoResult FakeTransport::write(const std::uint8_t* data, std::size_t size) {
    ++write_calls_;
    IoResult refused{IoStatus::kOk};
    if (write_refused(&refused)) {
        return refused;
    }
    const std::size_t length = write_limit(size);
    capture(data, length);
    return IoResult::ok(length);
}

IoResult FakeTransport::writev(const IoSlice* slices, std::size_t count) {
    ++writev_calls_;
    IoResult refused{IoStatus::kOk};
    if (write_refused(&refused)) {
        return refused;
    }
    std::size_t total = 0;
    for (std::size_t i = 0; i < count; ++i) {
        total += slices[i].size;
    }
    std::size_t left = write_limit(total);
    const std::size_t moved = left;
    for (std::size_t i = 0; i < count && left != 0; ++i) {
        const std::size_t length = slices[i].size < left ? slices[i].size : left;
        capture(slices[i].data, length);
        left -= length;
    }
    return IoResult::ok(moved);
}

std::size_t FakeTransport::pending() const {
    return pending_tracks_input_ ? input_remaining() : pending_;
}

PollInterest FakeTransport::interest(bool want_read, bool want_write) const {
    PollInterest interest;
    interest.read = want_read;
    interest.write = want_write;
    return interest;
}

}  // namespace tether::test

// SPDX-License-Identifier: MIT
// A scripted Transport for tests: reads return queued input chunks (never
// crossing a chunk boundary, so each chunk is one "segment"), then would-block,
// or EOF / an error once scripted; writes are captured, optionally cut short
// or refused, and every call is counted.
//
// Example:
//   tether::test::FakeTransport transport;
//   transport.push_input("\x81\x05Hello");          // one chunk
//   transport.push_input_split(bytes, size, 3);      // the same bytes in 3-byte chunks
//   transport.set_max_write_size(10);                // each write moves at most 10 bytes
//   ... code under test ...
//   transport.output();                              // everything written, in order
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "tether/transport.h"

namespace tether::test {

class FakeTransport final : public Transport {
  public:
    // --- Input script -----------------------------------------------------------

    /// Queues one chunk; a read returns at most its remaining bytes.
    void push_input(const std::uint8_t* data, std::size_t size);
    void push_input(const std::vector<std::uint8_t>& bytes);
    void push_input(const std::string& bytes);
    /// Queues `size` bytes as consecutive chunks of `chunk_size` bytes (the last may be shorter).
    void push_input_split(const std::uint8_t* data, std::size_t size, std::size_t chunk_size);
    void push_input_split(const std::vector<std::uint8_t>& bytes, std::size_t chunk_size);
    /// After the queued chunks, serves `pattern` `times` times over, at most
    /// `per_read` patterns per read call (0: as many as fit), without
    /// allocating: for allocation and throughput tests.
    void repeat_input(const std::vector<std::uint8_t>& pattern, std::size_t times,
                      std::size_t per_read = 0);
    /// After the queued chunks, every read returns kClosed.
    void push_eof();
    /// After the queued chunks, every read returns kError with `why`.
    void push_error(TransportError why);
    /// Caps every read at `size` bytes (0: no cap beyond the chunk and the request).
    void set_max_read_size(std::size_t size) { max_read_size_ = size; }
    /// Input bytes not read yet.
    std::size_t input_remaining() const;

    /// What pending() reports: a fixed value (default 0), or, when
    /// `track_input` is set, input_remaining() (like TLS holding decrypted records).
    void set_pending(std::size_t bytes) { pending_ = bytes; }
    void set_pending_tracks_input(bool track_input) { pending_tracks_input_ = track_input; }

    // --- Output script ----------------------------------------------------------

    /// Every byte written so far (not kept in discard mode).
    const std::vector<std::uint8_t>& output() const { return output_; }
    std::string output_string() const { return std::string(output_.begin(), output_.end()); }
    void clear_output() { output_.clear(); }
    /// Counts written bytes without storing them (a sink for benchmarks and
    /// allocation tests: nothing is allocated per write).
    void set_discard_output(bool discard) { discard_output_ = discard; }
    std::uint64_t bytes_written() const { return bytes_written_; }
    /// Caps the bytes moved per write()/writev() call (0: no cap).
    void set_max_write_size(std::size_t size) { max_write_size_ = size; }
    /// The next `count` write()/writev() calls return kWouldBlock.
    void block_next_writes(std::size_t count) { blocked_writes_ = count; }
    /// From now on every write()/writev() returns kClosed (`why` == kNone) or kError(`why`).
    void fail_writes(TransportError why) {
        writes_fail_ = true;
        write_error_ = why;
    }

    // --- Observations -----------------------------------------------------------

    std::size_t read_calls() const { return read_calls_; }
    std::size_t write_calls() const { return write_calls_; }
    std::size_t writev_calls() const { return writev_calls_; }
    std::size_t close_calls() const { return close_calls_; }

    // --- Transport --------------------------------------------------------------

    IoResult establish() override { return IoResult::ok(0); }
    IoResult read(std::uint8_t* out, std::size_t size) override;
    IoResult write(const std::uint8_t* data, std::size_t size) override;
    IoResult writev(const IoSlice* slices, std::size_t count) override;
    std::size_t pending() const override;
    PollInterest interest(bool want_read, bool want_write) const override;
    int fd() const override { return -1; }
    void close() override { ++close_calls_; }

  private:
    enum class Kind : std::uint8_t { kData, kEof, kError };
    struct Chunk {
        Kind kind;
        std::vector<std::uint8_t> bytes;
        std::size_t offset;
        TransportError error;
    };

    bool write_refused(IoResult* result);
    IoResult read_repeated(std::uint8_t* out, std::size_t size);
    std::size_t write_limit(std::size_t size) const;
    void capture(const std::uint8_t* data, std::size_t size);

    std::deque<Chunk> input_;
    std::size_t max_read_size_ = 0;
    std::vector<std::uint8_t> repeat_pattern_;
    std::size_t repeat_left_ = 0;
    std::size_t repeat_offset_ = 0;
    std::size_t repeat_per_read_ = 0;
    std::size_t pending_ = 0;
    bool pending_tracks_input_ = false;

    std::vector<std::uint8_t> output_;
    bool discard_output_ = false;
    std::uint64_t bytes_written_ = 0;
    std::size_t max_write_size_ = 0;
    std::size_t blocked_writes_ = 0;
    bool writes_fail_ = false;
    TransportError write_error_ = TransportError::kNone;

    std::size_t read_calls_ = 0;
    std::size_t write_calls_ = 0;
    std::size_t writev_calls_ = 0;
    std::size_t close_calls_ = 0;
};

}  // namespace tether::test

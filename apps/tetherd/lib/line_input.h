// SPDX-License-Identifier: MIT
// Splits what arrives on a descriptor (standard input, a pipe) into lines,
// one message per line. Lines end with "\n" or "\r\n" (the ending is not part
// of the message); a line longer than the buffer is dropped whole and
// counted, never split into several messages. An unterminated last line is
// delivered at end of file (a final "\r" counts as its ending); blank lines
// are skipped.
//
//   char line[4096];
//   LineInput input(STDIN_FILENO, line, sizeof line);
//   ... when poll() reports the descriptor readable:
//   if (input.read([&](const char* text, std::size_t size) { enqueue(text, size); }) ==
//       LineInput::Read::kEof) { loop.unwatch(STDIN_FILENO); }
#pragma once

#include <cstddef>
#include <cstdint>

namespace tether::daemon {

class LineInput {
  public:
    /// Lines of up to `capacity` bytes (without their ending) are collected
    /// in `buffer`, which must outlive the input. The descriptor stays the
    /// caller's and is not made non-blocking: read() performs one read()
    /// system call, which does not block once poll() reported it readable.
    LineInput(int fd, char* buffer, std::size_t capacity)
        : fd_(fd), buffer_(buffer), capacity_(capacity) {}

    enum class Read {
        kData,        ///< bytes were read (zero or more lines handled)
        kWouldBlock,  ///< nothing to read on a non-blocking descriptor
        kEof,         ///< end of file: the last line (if any) was handled
        kError,       ///< read() failed; errno tells why
    };

    /// Reads once and passes each completed line, in order, to
    /// `handler(const char* text, std::size_t size)`; the text is valid only
    /// during the call. After kEof, every later call returns kEof at once.
    template <typename Handler>
    Read read(Handler&& handler) {
        if (eof_) {
            return Read::kEof;
        }
        std::size_t size = 0;
        const Read result = read_chunk(&size);
        if (result == Read::kData) {
            for (std::size_t i = 0; i < size; ++i) {
                if (take(chunk_[i])) {
                    handler(static_cast<const char*>(buffer_), line_size_);
                    line_size_ = 0;
                }
            }
        } else if (result == Read::kEof && finish()) {
            handler(static_cast<const char*>(buffer_), line_size_);
            line_size_ = 0;
        }
        return result;
    }

    bool eof() const { return eof_; }
    /// Lines delivered so far.
    std::uint64_t lines() const { return lines_; }
    /// Lines dropped for being longer than the buffer.
    std::uint64_t overlong() const { return overlong_; }

  private:
    static constexpr std::size_t kChunk = 512;

    Read read_chunk(std::size_t* size);
    /// Adds one byte; true when it completed a line of line_size_ bytes.
    bool take(char byte);
    /// At end of file: true when an unterminated line is left to deliver.
    bool finish();

    int fd_;
    char* buffer_;
    std::size_t capacity_;
    std::size_t line_size_ = 0;
    // A '\r' that arrived with the buffer full: the line still fits if '\n'
    // follows, and is overlong otherwise.
    bool pending_cr_ = false;
    bool discarding_ = false;
    bool eof_ = false;
    std::uint64_t lines_ = 0;
    std::uint64_t overlong_ = 0;
    char chunk_[kChunk] = {};
};

}  // namespace tether::daemon

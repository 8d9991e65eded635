// SPDX-License-Identifier: MIT
// UTF-8 validation for WebSocket text messages (RFC 6455 section 8.1, RFC 3629).
//
// A text message may arrive in several frames and each frame in several
// reads, so the validator keeps the state of a code point split across
// calls. It fails on the first byte after which no continuation could make the
// input valid, so a connection can be failed as early as the RFC asks.
// No heap, no tables: 4 bytes of state.
//
// Example:
//   tether::net::Utf8Validator validator;
//   for each fragment of a text message:
//       if (!validator.feed(payload, size)) { close_with(1007); }  // invalid payload data
//   at the final fragment:
//       if (!validator.complete()) { close_with(1007); }
//       validator.reset();
#pragma once

#include <cstddef>
#include <cstdint>

namespace tether::net {

/// Incremental strict UTF-8 validator. Rejects overlong encodings, UTF-16
/// surrogates (U+D800..U+DFFF), code points above U+10FFFF, the bytes C0, C1
/// and F5..FF, continuation bytes without a lead byte and lead bytes cut short
/// by a non-continuation byte. Accepts U+0000 and noncharacters such as U+FFFE.
class Utf8Validator {
  public:
    Utf8Validator() = default;

    /// Validates the next `size` bytes of the message. Returns false as soon as
    /// the bytes fed since the last reset() cannot be the start of valid UTF-8,
    /// and from then on until reset(), whatever is fed. `data` may be nullptr
    /// when `size` is 0; a null `data` with a non-zero size fails the validator.
    bool feed(const std::uint8_t* data, std::size_t size);

    /// True when everything fed so far is valid and ends on a code point
    /// boundary: call at the end of a message (a truncated sequence is invalid).
    bool complete() const { return !failed_ && pending_ == 0; }

    /// True once feed() has returned false.
    bool failed() const { return failed_; }

    /// Forgets all input: the next byte starts a new message.
    void reset();

  private:
    bool start_sequence(std::uint8_t lead);
    bool continue_sequence(std::uint8_t byte);

    std::uint8_t pending_ = 0;        // continuation bytes still expected
    std::uint8_t next_lower_ = 0x80;  // allowed range of the next continuation byte;
    std::uint8_t next_upper_ = 0xBF;  // narrower than 80..BF only right after a lead byte
    bool failed_ = false;
};

/// True when data[0, size) is complete, valid UTF-8 (same rules as Utf8Validator).
/// `data` may be nullptr when `size` is 0.
bool is_valid_utf8(const std::uint8_t* data, std::size_t size);

}  // namespace tether::net

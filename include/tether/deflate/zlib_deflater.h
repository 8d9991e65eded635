// SPDX-License-Identifier: MIT
// permessage-deflate with zlib (library tether::deflate, CMake option
// TETHER_DEFLATE): a MessageDeflater whose zlib state lives in a fixed arena
// inside the object, handed to zlib through zalloc/zfree, so nothing is taken
// from the heap after construction and nothing per message.
//
// Memory per connection (one ZlibDeflater per link), for the largest window
// bits w it is built for (9..15) and memLevel m = w - 7 (8 at 15, 2 at 9),
// zlib's own formulas (zconf.h):
//   deflate  2^(w+2) + 2^(m+9) bytes
//   inflate  2^w bytes
//   deflate_state + inflate_state: ~13 KiB, reserved as 16 KiB
// arena_size(w) = 2^(w+2) + 2^(m+9) + 2^w + 16 KiB, allocated once by the
// constructor: 304 KiB at w = 15, 160 at 14, 88 at 13, 52 at 12, 34 at 11,
// 25 at 10, 20.5 KiB at w = 9.
// start() rewinds the arena for each connection; nothing is freed to the heap
// until destruction.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/net/ws_deflate.h"

namespace tether::deflate {

class ZlibDeflater final : public net::MessageDeflater {
  public:
    /// The arena bytes a deflater for window bits `window_bits` (9..15) needs.
    static std::size_t arena_size(std::uint8_t window_bits);
    /// memLevel used for `window_bits`: window_bits - 7 (15 → 8, 9 → 2).
    static int mem_level(std::uint8_t window_bits);

    /// `max_window_bits` (9..15) bounds both directions; the arena of
    /// arena_size(max_window_bits) bytes is allocated here, once.
    explicit ZlibDeflater(std::uint8_t max_window_bits = 15);
    ~ZlibDeflater() override;
    ZlibDeflater(const ZlibDeflater&) = delete;
    ZlibDeflater& operator=(const ZlibDeflater&) = delete;

    /// False also when the constructor's allocation failed.
    bool start(const net::DeflateAgreement& agreement) override;
    bool compress(const std::uint8_t* prefix, std::size_t prefix_size, const std::uint8_t* data,
                  std::size_t size, std::uint8_t* out, std::size_t capacity,
                  std::size_t* written) override;
    net::InflateStatus inflate(const std::uint8_t* in, std::size_t size, bool final,
                               std::uint8_t* out, std::size_t capacity,
                               std::size_t* produced) override;

    std::size_t arena_bytes() const { return arena_size_; }

  private:
    struct State;
    State* state_;
    std::size_t arena_size_;
    std::uint8_t max_window_bits_;
};

}  // namespace tether::deflate

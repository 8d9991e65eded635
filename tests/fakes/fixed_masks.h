// SPDX-License-Identifier: MIT
// A MaskSource with fixed, repeating mask keys, so that masked frames are
// literal bytes in tests (RFC 6455 section 5.7 uses 0x37fa213d; a zero key
// leaves payloads readable). It can be told to fail, to check that the
// stream fails closed. Test-only: never link it into a release build.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/net/ws_stream.h"

namespace tether::test {

class FixedMasks final : public net::MaskSource {
  public:
    /// Every mask key is `key`, most significant byte first on the wire.
    explicit FixedMasks(std::uint32_t key = 0) : key_(key) {}

    bool fill_masks(std::uint8_t* out, std::size_t size) override {
        ++calls_;
        if (failing_) {
            return false;
        }
        for (std::size_t i = 0; i < size; ++i) {
            out[i] = static_cast<std::uint8_t>(key_ >> (8u * (3u - (i % 4u))));
        }
        bytes_ += size;
        return true;
    }

    /// While set, fill_masks() returns false and writes nothing.
    void set_failing(bool failing) { failing_ = failing; }
    void set_key(std::uint32_t key) { key_ = key; }
    /// fill_masks() calls, failed ones included, and bytes supplied.
    std::size_t calls() const { return calls_; }
    std::size_t bytes() const { return bytes_; }

  private:
    std::uint32_t key_;
    bool failing_ = false;
    std::size_t calls_ = 0;
    std::size_t bytes_ = 0;
};

}  // namespace tether::test

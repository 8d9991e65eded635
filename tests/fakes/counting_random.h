// SPDX-License-Identifier: MIT
// A RandomSource with predictable bytes (a counter), for exact tests; it can
// be told to fail, to check that the client fails closed.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/transport.h"

namespace tether::test {

class CountingRandom final : public RandomSource {
  public:
    bool fill_random(std::uint8_t* out, std::size_t size) override {
        if (failing) {
            return false;
        }
        for (std::size_t i = 0; i < size; ++i) {
            out[i] = next++;
        }
        return true;
    }
    std::uint8_t next = 1;
    bool failing = false;
};

}  // namespace tether::test

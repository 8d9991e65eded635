// SPDX-License-Identifier: MIT
// Counts heap allocations made by anything in the process (our code, wslay,
// mbedTLS, libstdc++) while a scope is alive. The test binary interposes
// malloc and friends, so nothing can allocate behind the counter's back.
// Under TETHER_SANITIZE the sanitizer allocator's hook counts instead.
#pragma once

#include <cstddef>

namespace tether::test {

class AllocationCounter {
  public:
    AllocationCounter();
    ~AllocationCounter();
    AllocationCounter(const AllocationCounter&) = delete;
    AllocationCounter& operator=(const AllocationCounter&) = delete;

    /// malloc, calloc, realloc and aligned allocations since construction.
    std::size_t count() const;

  private:
    std::size_t start_;
};

}  // namespace tether::test

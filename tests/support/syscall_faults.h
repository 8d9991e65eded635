// SPDX-License-Identifier: MIT
// Faults injected into the POSIX calls behind FileStorage. The test binary
// defines pread, pwrite, fsync, fchmod and geteuid itself (like malloc in
// alloc_counter.cpp) and forwards to the C library unless a fault is armed,
// so interrupted calls, short transfers and device errors can be produced on
// demand. Test-only and glibc-specific (dlsym with RTLD_NEXT).
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace tether::test {

enum class Syscall : unsigned { kPread, kPwrite, kFsync, kFchmod };

/// Arms faults while alive; every fault is cleared when it goes away, so a
/// failing test cannot leak faults into the next one.
class SyscallFaults {
  public:
    SyscallFaults();
    ~SyscallFaults();
    SyscallFaults(const SyscallFaults&) = delete;
    SyscallFaults& operator=(const SyscallFaults&) = delete;

    /// The next `times` calls of `call` return -1 with `error_number`, doing nothing.
    void fail(Syscall call, int error_number, unsigned times = 1);

    /// The next pwrite returns 0: no progress and no error.
    void stall_next_write();

    /// Each pread and pwrite moves at most `max_bytes` (0: no limit).
    void limit_transfers(std::size_t max_bytes);

    /// geteuid() returns `uid` (instead of the real effective uid) while alive,
    /// so a test can meet a file or directory "owned by another user"
    /// without being root.
    void pretend_euid(uid_t uid);

    /// Every later fsync returns 0 without reaching the kernel (still counted):
    /// for a test that models durability itself and only needs to see the calls.
    void pretend_fsync();

    /// Calls of `call` made since construction, including failed ones.
    unsigned calls(Syscall call) const;
};

}  // namespace tether::test

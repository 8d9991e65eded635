// SPDX-License-Identifier: MIT
// Drives a non-blocking transport from a test with poll() and a deadline
// instead of sleeps: the same way the client loop does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "tether/transport.h"

namespace tether::test {

/// Polls the transport's descriptor for what interest(want_read, want_write)
/// asks; false when nothing happened within `timeout_ms`.
bool wait_ready(const Transport& transport, bool want_read, bool want_write, int timeout_ms);

/// Calls establish() until it stops answering kWouldBlock; a timeout is
/// reported as kError with kTimedOut.
IoResult establish_within(Transport& transport, int timeout_ms);

/// Writes all of `data`; false on an error or timeout.
bool write_all(Transport& transport, const std::string& data, int timeout_ms);

/// Reads until `size` bytes arrived, the stream ended or the time ran out;
/// the last status is left in *last.
std::string read_up_to(Transport& transport, std::size_t size, int timeout_ms,
                       IoResult* last = nullptr);

}  // namespace tether::test

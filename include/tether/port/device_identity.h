// SPDX-License-Identifier: MIT
// Where the device fingerprint comes from on a POSIX system.
#pragma once

#include <cstddef>

#include "tether/status.h"

namespace tether::port {

/// Reads the machine id from `path` (default /etc/machine-id, falling back to
/// /var/lib/dbus/machine-id when `path` is null), trims whitespace and writes
/// it NUL-terminated into `out`. Returns kOk; kNotFound when no file could be
/// read or it is empty; kTooLarge when it does not fit in `capacity`.
Status read_machine_id(const char* path, char* out, std::size_t capacity);

}  // namespace tether::port

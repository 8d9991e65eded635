// SPDX-License-Identifier: MIT
// A directory only the effective user can use: where the state record, the
// spool and other private files live.
//
// Example (daemon start-up):
//   char message[256];
//   if (tether::port::prepare_private_dir(state_dir, message, sizeof message) !=
//       tether::Status::kOk) {
//       die(message);                      // "/var/lib/tether is a symbolic link ..."
//   } else if (message[0] != '\0') {
//       warn(message);                     // "/var/lib/tether was mode 0755; now 0700"
//   }
#pragma once

#include <cstddef>

#include "tether/status.h"

namespace tether::port {

/// Makes `path` a private directory, or says why it cannot be one.
///
/// Creates it with mode 0700 when it does not exist (its parent must). An
/// existing one is checked with lstat and then opened with O_NOFOLLOW and
/// O_DIRECTORY, and the checks that matter are made on that descriptor, so the
/// name cannot be swapped between check and use. Refused: a symbolic link as
/// the last component (links higher up the path, such as /var/run -> /run,
/// are followed), anything that is not a directory, and a directory owned by
/// another user than the effective one. A directory whose mode is not exactly
/// 0700 (group or other bits, or missing owner bits) is set to 0700.
///
/// `message` (may be null when `message_size` is 0) always receives a
/// NUL-terminated text, cut to fit: on kOk, "" or what was repaired
/// ("<path> was mode 0755; now 0700"), for a warning; on failure, why.
///
/// Returns:
///  - kOk: `path` exists, is a directory owned by the effective user, mode 0700.
///  - kInvalidArgument: `path` is null or empty.
///  - kUnavailable: refused ("<path> is a symbolic link", "<path> is not a
///    directory", "<path> is owned by uid U, not by this process (uid E)").
///  - kIoError: a system call failed ("cannot create <path>: <strerror>",
///    "cannot open <path>: ...", "cannot set the mode of <path>: ..."); errno
///    is left as that call set it.
Status prepare_private_dir(const char* path, char* message, std::size_t message_size);

}  // namespace tether::port

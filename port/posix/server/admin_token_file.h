// SPDX-License-Identifier: MIT
// tether-server's admin token on disk (format and rules:
// tether/server/admin_policy.h; what the server does with it: docs/PROTOCOL.md).
#pragma once

#include <string>

#include "tether/status.h"
#include "tether/transport.h"

namespace tether::port {

/// Reads an admin token an operator wrote: the file's first line, blanks and
/// the line end trimmed. kOk; kNotFound (no such file); kIoError (unreadable);
/// kCorrupt (not a valid token, see server::is_valid_admin_token).
Status read_admin_token_file(const std::string& path, std::string* token);

/// The server's own admin token at `path` (<data-dir>/admin.token): read when
/// the file exists, which must then be a regular file (not a link) owned by
/// this user and closed to group and others; otherwise created from 32 bytes
/// of `random`, mode 0600, without following links, and synced with its
/// directory before this returns. *created says which.
/// kOk; kUnavailable (`random` failed: no weak fallback); kInvalidArgument
/// (the file is a link, not a regular file, another user's, or open to group
/// or others: remove it, or fix it, and start again); kCorrupt (its contents
/// are not a token); kIoError.
Status load_or_create_admin_token(const std::string& path, RandomSource& random, std::string* token,
                                  bool* created);

}  // namespace tether::port

// A directory only this process's user may use: the state record and the
// spool live in one.
#pragma once

#include <cstddef>

#include "tether/status.h"

namespace tether::port {

/// Creates `path` with mode 0700 if absent; refuses a symlink, a non-directory
/// or a directory owned by another user; tightens a looser mode to 0700.
/// Returns kOk, or kIoError with the reason written to `error`.
Status prepare_private_dir(const char* path, char* error, std::size_t error_size);

}  // namespace tether::port

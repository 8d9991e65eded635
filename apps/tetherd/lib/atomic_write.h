// Replacing a small file so that readers see either the old contents or the
// new, never a torn mix: the status file, the metrics textfile.
//
// The new contents go to "<path>.tmp" in the same directory (so the rename
// never crosses a file system), are fsync'ed, and the temporary is renamed
// over `path`. The temporary name is fixed rather than random so that a crash
// between write and rename leaves at most one stale file, which the next
// write reuses; node_exporter's textfile collector ignores it (it reads only
// *.prom). Only one process may write a given path.
#pragma once

#include <sys/types.h>

#include <string>

#include "tether/status.h"

namespace tether::daemon {

/// Replaces `path` with `contents`, readable per `mode` (umask is not applied).
/// kOk, or kIoError when the temporary cannot be created, written, synced or
/// renamed (the directory is missing or read-only, the disk is full); on
/// error the temporary is removed and `path` is left as it was.
Status write_file_atomically(const std::string& path, const std::string& contents,
                             mode_t mode = 0644);

}  // namespace tether::daemon

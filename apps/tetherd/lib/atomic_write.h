// SPDX-License-Identifier: MIT
// Replacing a small file so that readers see either the old contents or the
// new, never a torn mix: the status file, the metrics textfile, dead letters.
//
// The new contents go to "<path>.tmp" in the same directory (so the rename
// never crosses a file system), are fsync'ed, and the temporary is renamed
// over `path`. The temporary name is fixed rather than random so that a crash
// between write and rename leaves at most one stale file, which the next
// write reuses; node_exporter's textfile collector ignores it (it reads only
// *.prom). Only one process may write a given path.
//
// write_file_atomically() leaves the rename itself to the file system's next
// commit: after a power cut the old file may be back, which is fine for
// status and metrics. write_file_durably() also syncs the directory, for a
// file whose existence is a promise (a dead letter).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>

#include "tether/status.h"

namespace tether::daemon {

/// Replaces `path` with `contents`, readable per `mode` (umask is not applied).
/// kOk, or kIoError when the temporary cannot be created, written, synced or
/// renamed (the directory is missing or read-only, the disk is full); on
/// error the temporary is removed, `path` is left as it was and errno says
/// what failed.
Status write_file_atomically(const std::string& path, const std::string& contents,
                             mode_t mode = 0644);

/// As write_file_atomically() with `size` bytes at `data`, then fsyncs the
/// directory holding `path`, so the new file survives a power cut once this
/// returns kOk. kIoError (errno set) also when the directory sync fails; the
/// file may then have been replaced or not.
Status write_file_durably(const std::string& path, const char* data, std::size_t size,
                          mode_t mode = 0600);

/// fsyncs the directory `path` (its entries: files created, renamed,
/// removed). kOk, or kIoError with errno.
Status sync_directory(const std::string& path);

}  // namespace tether::daemon

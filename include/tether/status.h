// SPDX-License-Identifier: MIT
// Status codes of the core layer.
#pragma once

namespace tether {

/// Result of a core operation. Every function that can fail returns one; the
/// compiler rejects callers that ignore it.
enum class [[nodiscard]] Status{
    kOk = 0,
    kInvalidArgument,  ///< A parameter is out of its documented range.
    kNoSpace,          ///< The buffer or store is full and the policy refuses to make room.
    kTooLarge,         ///< The item can never fit, whatever is freed.
    kEmpty,            ///< Nothing to read.
    kNotFound,         ///< No valid record (for example no intact state slot).
    kCorrupt,          ///< Data failed its integrity check.
    kIoError,          ///< The storage or OS call failed.
    kUnavailable,      ///< A required resource (entropy, a file) cannot be had.
    kConflict,         ///< A versioned change named a version that is no longer current.
};

/// A stable, human-readable name for logs ("ok", "no_space", ...).
const char* to_string(Status status);

}  // namespace tether

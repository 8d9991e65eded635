// SPDX-License-Identifier: MIT
// JSON documents of the device-state extension (docs/PROTOCOL.md section 9):
// validation, RFC 7396 merge patches and the desired-reported delta.
//
// Every function takes and writes compact JSON text (no whitespace outside
// strings) in caller buffers, so a document's bytes are the same wherever it
// is stored or compared. The work is done with cJSON, which allocates inside
// libcjson: this is the control path (a few documents per connection), never
// the per-message one.
#pragma once

#include <cstddef>

#include "tether/net/tether_v1.h"

namespace tether::net::v1 {

/// Largest document or patch, in compact form (section 9).
inline constexpr std::size_t kMaxStateDocument = 8192;
/// Deepest nesting of objects and arrays accepted in a document or patch.
inline constexpr int kMaxStateDepth = 32;

/// Checks that `text` is exactly one JSON object (whitespace around it
/// allowed), without a duplicate key in any object, nested at most
/// kMaxStateDepth deep, and writes its compact form into `out`. kNotJson (not
/// one JSON value), kBadField (not an object, a duplicate key, too deep),
/// kBufferTooSmall (the compact form does not fit `capacity`).
V1Status compact_object(const char* text, std::size_t size, char* out, std::size_t capacity,
                        std::size_t* length);

/// Applies the merge patch `patch` to `document` (both compact or not; an
/// empty `document`, size 0, is "{}") and writes the compact result. Errors
/// as compact_object, for either input; kBufferTooSmall when the result does
/// not fit. `out` must not overlap the inputs.
V1Status apply_merge_patch(const char* document, std::size_t document_size, const char* patch,
                           std::size_t patch_size, char* out, std::size_t capacity,
                           std::size_t* length);

/// The part of `desired` that `reported` does not match yet: every key of
/// `desired` whose value differs from `reported`'s (objects compared key by
/// key, recursively), as one compact object ("{}" when they agree). Keys only
/// in `reported` are not part of it. Errors as apply_merge_patch.
V1Status state_delta(const char* desired, std::size_t desired_size, const char* reported,
                     std::size_t reported_size, char* out, std::size_t capacity,
                     std::size_t* length);

}  // namespace tether::net::v1

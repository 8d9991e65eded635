// SPDX-License-Identifier: MIT
// Session identity: a name-based UUID (RFC 4122 version 5, SHA-1) of the
// user id and the device fingerprint, so the same device always resumes the
// same session and two devices never share one.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/state_record.h"
#include "tether/status.h"

namespace tether {

struct Uuid {
    std::uint8_t bytes[16];
};

bool operator==(const Uuid& a, const Uuid& b);

/// Length of the canonical text form, without the terminating NUL.
inline constexpr std::size_t kUuidTextLength = 36;

/// The namespace all tether session ids are derived in:
/// 7ada0a06-5620-4a46-80ff-248e31991504 (random, fixed forever).
extern const Uuid kTetherSessionNamespace;

/// RFC 4122 version 5 UUID of `name` in namespace `ns`. `name` may be null
/// only when `name_size` is 0. Returns kOk; kInvalidArgument when `out` is
/// null or `name` is null with a non-zero size; kUnavailable if the SHA-1
/// implementation fails.
Status uuid_v5(const Uuid& ns, const std::uint8_t* name, std::size_t name_size, Uuid* out);

/// The session id of `user_id` on the device with `device_fingerprint`
/// (for example the contents of /etc/machine-id): uuid_v5 in
/// kTetherSessionNamespace of the name "<user_id>\n<fingerprint>".
/// Returns kOk; kInvalidArgument when either string is null or empty, when
/// `user_id` contains a newline (the name would be ambiguous) or `out` is
/// null; kUnavailable if SHA-1 fails.
Status session_id_for(const char* user_id, const char* device_fingerprint, Uuid* out);

/// Writes the lowercase canonical form ("xxxxxxxx-xxxx-...") and a NUL into `out`.
void format_uuid(const Uuid& uuid, char out[kUuidTextLength + 1]);

/// Parses the canonical form (either case), exactly 36 characters with dashes
/// at 8, 13, 18 and 23. Returns true and sets *out; false (with *out
/// untouched) for anything else, including a null argument.
bool parse_uuid(const char* text, Uuid* out);

/// Starts a new session: bumps state->session_version (never to 0, wrapping
/// past the maximum to 1) and returns the new version. The caller persists it
/// before connecting, so a newer process always outranks an older one.
/// `state` must not be null.
std::uint32_t begin_new_session(PersistentState* state);

}  // namespace tether

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

/// The namespace all tether session ids are derived in.
extern const Uuid kTetherSessionNamespace;

/// RFC 4122 version 5 UUID of `name` in namespace `ns`.
/// Returns kOk, or kUnavailable if the SHA-1 implementation fails.
Status uuid_v5(const Uuid& ns, const std::uint8_t* name, std::size_t name_size, Uuid* out);

/// The session id of `user_id` on the device with `device_fingerprint`
/// (for example the contents of /etc/machine-id). Both must be non-empty
/// (kInvalidArgument otherwise). The name hashed is "<user_id>\n<fingerprint>".
Status session_id_for(const char* user_id, const char* device_fingerprint, Uuid* out);

/// Writes the lowercase canonical form ("xxxxxxxx-xxxx-...") and a NUL into `out`.
void format_uuid(const Uuid& uuid, char out[kUuidTextLength + 1]);

/// Parses the canonical form (either case). Returns false for anything else.
bool parse_uuid(const char* text, Uuid* out);

/// Starts a new session: bumps state->session_version (never to 0, wrapping
/// past the maximum to 1) and returns the new version. The caller persists it
/// before connecting, so a newer process always outranks an older one.
std::uint32_t begin_new_session(PersistentState* state);

}  // namespace tether

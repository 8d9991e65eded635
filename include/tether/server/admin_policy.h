// SPDX-License-Identifier: MIT
// tether-server's admin interface rules that need no socket (docs/PROTOCOL.md,
// "tether-server admin interface"): the token every POST must carry, and which
// connection gives way when too many are open.
//
// The token is 64 lowercase hex digits made from 32 random bytes (the caller
// draws them from its entropy source; randomness is an argument), or whatever
// an operator put in --admin-token-file (16..512 visible ASCII characters). A
// request carries it as `Authorization: Bearer <token>`; the comparison takes
// the same time wherever the first difference is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tether/time.h"

namespace tether::server {

inline constexpr std::size_t kAdminTokenRandomBytes = 32;
inline constexpr std::size_t kGeneratedAdminTokenLength = 2 * kAdminTokenRandomBytes;
inline constexpr std::size_t kMinAdminTokenLength = 16;
inline constexpr std::size_t kMaxAdminTokenLength = 512;

/// Writes the hex form of `random` and a NUL into `out`.
void format_admin_token(const std::uint8_t random[kAdminTokenRandomBytes],
                        char out[kGeneratedAdminTokenLength + 1]);

/// True when `token` may be an admin token: kMinAdminTokenLength ..
/// kMaxAdminTokenLength characters, each visible ASCII (no blank, no control).
bool is_valid_admin_token(std::string_view token);

/// True when the request's header block (everything before the blank line,
/// request line included) has an Authorization header (name in any case)
/// whose value is `Bearer <token>` (scheme in any case, one or more blanks).
/// False for an empty `token`, a missing or repeated Authorization header, or
/// another value.
bool admin_request_authorized(std::string_view header_block, std::string_view token);

/// One open admin connection, as the eviction rule sees it.
struct AdminSlot {
    TimeMs opened_at = 0;
    bool idle = true;  ///< its request is not complete yet (nothing is being answered)
};

inline constexpr std::size_t kNoAdminVictim = static_cast<std::size_t>(-1);

/// Which of `count` open admin connections a new one replaces: the idle one
/// open longest (so connections that send nothing cannot lock the interface
/// out), or kNoAdminVictim when none is idle (the new one is then refused).
std::size_t admin_victim(const AdminSlot* slots, std::size_t count, TimeMs now);

}  // namespace tether::server

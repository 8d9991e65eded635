// SPDX-License-Identifier: MIT
// TokenStore: the bearer tokens tether-server accepts (PROTOCOL.md section 1:
// 401 for a missing, unknown or expired token; close 4001 when a live
// connection's token expires).
//
// Tokens file format, one entry per line: `token [user [device]]`
//
//   # a comment (first non-blank character '#'); blank lines are ignored
//   t0k3n                       a token (of no user: its sessions are owned by "")
//   t0k3n-2   alice             a token and the user it belongs to
//   t0k3n-3   alice   pi-17     ... and the one device that may use it
//
// Tokens, users and devices are 1..512 visible ASCII characters (no blanks,
// no '#' at the start of a token); fields are separated by spaces or tabs.
// A token with no user field has the user "" (a user of its own, distinct from
// every named user); a device can only be named after a user.
//
// What the server makes of them (docs/PROTOCOL.md section 5): the user of the
// token that created a session owns it, and a hello of another user's token is
// refused with 4003; a hello whose `device` differs from its token's device is
// refused with 4003 too.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

#include "tether/status.h"

namespace tether::server {

enum class TokenCheck : unsigned char {
    kValid,    ///< known and not expired
    kUnknown,  ///< never loaded (or empty)
    kExpired,  ///< loaded, then expired at runtime
};
const char* to_string(TokenCheck check);

inline constexpr std::size_t kMaxTokenLength = 512;
inline constexpr std::size_t kMaxTokens = 100000;
/// Largest tokens file read: kMaxTokens lines of three maximal fields.
inline constexpr std::size_t kMaxTokenFileBytes = kMaxTokens * (3 * kMaxTokenLength + 3);

class TokenStore {
  public:
    /// Replaces every token (and every expiry) with the tokens in `text` (the
    /// file format above; port::load_token_file reads it from a file). kOk;
    /// kCorrupt (a malformed line: more than three fields, a field too long or
    /// with a control character; *bad_line, when not null, gets its 1-based
    /// number); kNoSpace (more than kMaxTokens). On error nothing changes.
    Status load_text(std::string_view text, std::size_t* bad_line = nullptr);

    /// kValid, kUnknown or kExpired.
    TokenCheck check(std::string_view token) const;

    /// The user named for a known token ("" when the line had none or the
    /// token is unknown).
    std::string user(std::string_view token) const;

    /// The device named for a known token ("" when the line named none or the
    /// token is unknown).
    std::string device(std::string_view token) const;

    /// True when a hello naming `device` may use `token`: the token is known
    /// and names no device, or exactly this one (compared byte for byte).
    /// False for an unknown token.
    bool allows_device(std::string_view token, std::string_view device) const;

    /// Expires one token: later checks say kExpired. False when unknown.
    bool expire(std::string_view token);

    /// Expires every loaded token.
    void expire_all();

    /// Tokens loaded (valid or expired).
    std::size_t size() const { return tokens_.size(); }

  private:
    struct Entry {
        std::string user;
        std::string device;  ///< "" when any device may use the token
        bool expired = false;
    };
    std::map<std::string, Entry, std::less<>> tokens_;
};

}  // namespace tether::server

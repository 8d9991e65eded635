// TokenStore: the bearer tokens tether-server accepts (PROTOCOL.md section 1:
// 401 for a missing, unknown or expired token; close 4001 when a live
// connection's token expires).
//
// Tokens file format, one entry per line:
//
//   # a comment (first non-blank character '#'); blank lines are ignored
//   t0k3n                 a token
//   t0k3n-2   alice       a token and the user it belongs to
//
// Tokens and users are 1..512 visible ASCII characters (no blanks, no '#' at
// the start of a token); fields are separated by spaces or tabs.
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
/// Largest tokens file read: kMaxTokens lines of two maximal fields.
inline constexpr std::size_t kMaxTokenFileBytes = kMaxTokens * (2 * kMaxTokenLength + 2);

class TokenStore {
  public:
    /// Replaces every token (and every expiry) with the tokens in `text` (the
    /// file format above; port::load_token_file reads it from a file). kOk;
    /// kCorrupt (a malformed line: more than two fields, a field too long or
    /// with a control character; *bad_line, when not null, gets its 1-based
    /// number); kNoSpace (more than kMaxTokens). On error nothing changes.
    Status load_text(std::string_view text, std::size_t* bad_line = nullptr);

    /// kValid, kUnknown or kExpired.
    TokenCheck check(std::string_view token) const;

    /// The user named for a known token ("" when the line had none or the
    /// token is unknown).
    std::string user(std::string_view token) const;

    /// Expires one token: later checks say kExpired. False when unknown.
    bool expire(std::string_view token);

    /// Expires every loaded token.
    void expire_all();

    /// Tokens loaded (valid or expired).
    std::size_t size() const { return tokens_.size(); }

  private:
    struct Entry {
        std::string user;
        bool expired = false;
    };
    std::map<std::string, Entry, std::less<>> tokens_;
};

}  // namespace tether::server

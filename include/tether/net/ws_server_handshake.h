// SPDX-License-Identifier: MIT
// The server side of the WebSocket opening handshake (RFC 6455 section 4.2),
// without sockets: an incremental parser of the client's upgrade request and
// builders for the answers (101, or an HTTP error that ends the connection).
// Nothing here allocates; the parser keeps the request in a fixed 8 KiB
// buffer of its own (about 8.3 KiB: give it a long-lived owner).
//
// Example (one accepted connection):
//   tether::net::UpgradeRequestParser parser;
//   // for every chunk received:
//   std::size_t used = 0;
//   RequestStatus status = parser.feed(chunk, size, &used);
//   // kNeedMore: read again. kOk: check parser.offers_subprotocol("tether.v1"),
//   // parser.bearer_token(), ... then:
//   tether::net::AcceptResponse accept;
//   accept.key = parser.key();
//   accept.subprotocol = "tether.v1";
//   (void)build_accept_response(accept, out, sizeof out, &length);
//   // Any other status: send build_error_response(status_for(status), ...) and close.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/net/ws_handshake.h"

namespace tether::net {

/// The largest request header block (request line through the empty line).
inline constexpr std::size_t kMaxRequestSize = 8192;
/// Sec-WebSocket-Protocol header lines remembered (offers beyond are ignored).
inline constexpr std::size_t kMaxProtocolHeaders = 4;

enum class [[nodiscard]] RequestStatus : std::uint8_t{
    kOk = 0,
    kNeedMore,           ///< the header block is not complete: feed more bytes
    kTooLarge,           ///< the header block exceeds kMaxRequestSize
    kMalformed,          ///< broken HTTP/1.1 syntax (see UpgradeRequestParser)
    kNotGet,             ///< a method other than GET
    kNotHttp11,          ///< a version other than HTTP/1.1
    kBadTarget,          ///< a request target that is not an absolute path (+ query)
    kMissingHost,        ///< no Host, or more than one
    kMissingUpgrade,     ///< no Upgrade header listing "websocket"
    kMissingConnection,  ///< no Connection header listing "upgrade"
    kBadVersion,         ///< Sec-WebSocket-Version missing, repeated or not 13
    kBadKey,             ///< Sec-WebSocket-Key missing, repeated or not base64 of 16 bytes
    kInvalidArgument,    ///< `consumed` null, or null data with a size
};

/// A stable name for logs ("ok", "need_more", "bad_key", ...); "unknown" otherwise.
const char* to_string(RequestStatus status);

/// The HTTP status to answer a rejected request with: 426 for kMissingUpgrade
/// and kBadVersion (RFC 6455 4.2.2 and 4.4), 400 for every other failure, 0
/// for kOk and kNeedMore.
std::uint16_t status_for(RequestStatus status);

/// Reads one upgrade request incrementally, in whatever chunks it arrives.
///
/// Syntax checked (kMalformed otherwise): lines end in CRLF (a bare CR or LF
/// fails at once, as does a NUL byte); the request line is "METHOD SP target
/// SP version"; header lines are "name: value" with a token name directly
/// followed by ":", no obs-fold, no control characters but HTAB in values;
/// Authorization at most once.
///
/// Then, in this order (the first failure is returned): the method is GET
/// (kNotGet), the version HTTP/1.1 (kNotHttp11), the target starts with "/"
/// and is visible ASCII without "#" (kBadTarget), exactly one Host
/// (kMissingHost), an Upgrade header listing "websocket" (kMissingUpgrade), a
/// Connection header listing "upgrade" (kMissingConnection; both
/// case-insensitive), exactly one Sec-WebSocket-Version equal to 13
/// (kBadVersion), exactly one Sec-WebSocket-Key of 22 base64 characters and
/// "==" (kBadKey). Subprotocol lists, the bearer token and traceparent are
/// recorded, not required: the application decides.
///
/// Accessors return NUL-terminated strings inside the parser, valid until the
/// next reset() or feed() call; they are null (or false) until kOk.
class UpgradeRequestParser {
  public:
    UpgradeRequestParser() { reset(); }
    void reset();

    /// Consumes request bytes. *consumed: everything on kNeedMore; up to and
    /// including the empty line on kOk and on a failure found after it (later
    /// bytes belong to the WebSocket); up to and including the offending byte
    /// for an early kMalformed; the bytes before the one over the limit for
    /// kTooLarge. After a result other than kNeedMore, every call returns it
    /// again with *consumed = 0.
    RequestStatus feed(const std::uint8_t* data, std::size_t size, std::size_t* consumed);

    /// The request target (path and query).
    const char* target() const { return target_; }
    /// The Host header value.
    const char* host() const { return host_; }
    /// The Sec-WebSocket-Key (24 characters), for build_accept_response().
    const char* key() const { return key_; }
    /// True when some Sec-WebSocket-Protocol header lists `name` (exact match).
    bool offers_subprotocol(const char* name) const;
    /// True when any Sec-WebSocket-Protocol header was sent.
    bool has_subprotocols() const { return protocol_count_ != 0; }
    /// The token of "Authorization: Bearer <token>" (scheme case-insensitive,
    /// token68 characters); null when absent or another scheme.
    const char* bearer_token() const { return bearer_; }
    /// The traceparent header when it has the W3C form
    /// "2hex-32hex-16hex-2hex" (lowercase); null otherwise.
    const char* traceparent() const { return traceparent_; }

  private:
    RequestStatus finish(RequestStatus status);
    RequestStatus evaluate();

    RequestStatus result_;
    std::size_t used_;
    bool saw_cr_;
    const char* target_;
    const char* host_;
    const char* key_;
    const char* bearer_;
    const char* traceparent_;
    const char* protocols_[kMaxProtocolHeaders];
    std::size_t protocol_count_;
    char buffer_[kMaxRequestSize + 1];
};

/// What the 101 answer carries.
struct AcceptResponse {
    /// The client's Sec-WebSocket-Key (24 characters).
    const char* key = nullptr;
    /// The selected subprotocol (a token); null for none.
    const char* subprotocol = nullptr;
};

/// Writes "HTTP/1.1 101 Switching Protocols" with Upgrade, Connection,
/// Sec-WebSocket-Accept (compute_accept of the key) and, when given,
/// Sec-WebSocket-Protocol; not NUL-terminated.
/// kOk; kBufferTooSmall (*length is the size needed); kInvalidArgument for a
/// null `length`, a null `out` with a capacity, a key not 24 characters, or
/// a subprotocol that is not a token.
HandshakeStatus build_accept_response(const AcceptResponse& response, char* out,
                                      std::size_t capacity, std::size_t* length);

/// What an error answer carries.
struct ErrorResponse {
    /// One of 400, 401, 403, 404, 426, 429, 500, 503.
    std::uint16_t status = 400;
    /// Retry-After in seconds (at most kMaxRetryAfterSeconds); only when set.
    bool has_retry_after = false;
    std::uint32_t retry_after_seconds = 0;
};

/// Writes a complete error response: status line, "Connection: close",
/// Content-Type text/plain, Content-Length and a one-line body (the reason
/// phrase); 401 adds "WWW-Authenticate: Bearer", 426 adds "Upgrade:
/// websocket" and "Sec-WebSocket-Version: 13", Retry-After when set. The
/// caller sends it and closes the connection.
/// kOk; kBufferTooSmall (*length is the size needed); kInvalidArgument for an
/// unknown status, a Retry-After above the limit, null `length`, null `out`
/// with a capacity.
HandshakeStatus build_error_response(const ErrorResponse& response, char* out, std::size_t capacity,
                                     std::size_t* length);

}  // namespace tether::net

// SPDX-License-Identifier: MIT
// The client side of the WebSocket opening handshake (RFC 6455 section 4),
// without sockets: it builds the HTTP upgrade request into a caller buffer and
// checks the server's response as bytes arrive, in whatever chunks the
// transport delivers them. Nothing here allocates from the heap; the response
// parser keeps the header block in a fixed 8 KiB buffer of its own.
//
// Example (one connection attempt):
//   char key[25];
//   char accept[29];
//   (void)tether::net::make_websocket_key(random16, key);   // 16 bytes from the DRBG
//   (void)tether::net::compute_accept(key, accept);
//   tether::net::UpgradeRequest request;
//   request.host = "telemetry.example.com";
//   request.port = 443;
//   request.tls = true;
//   request.path = "/v1/stream?device=42";
//   request.key = key;
//   size_t length = 0;
//   if (build_upgrade_request(request, out, sizeof out, &length) != HandshakeStatus::kOk) { ... }
//   send(out, length);
//   // About 8.3 KiB: give it static storage or a long-lived owner rather than the stack.
//   tether::net::UpgradeResponseParser parser(accept, nullptr, 0, false);
//   // for every chunk received:
//   size_t used = 0;
//   HandshakeStatus status = parser.feed(chunk, chunk_size, &used);
//   // kNeedMore: read again. kOk: chunk[used..] are the first WebSocket bytes.
//   // kNotSwitching: parser.status_code(), parser.retry_after_seconds(). Else: fail.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/net/ws_deflate.h"

namespace tether::net {

/// Result of a handshake operation. Every function that can fail returns one.
enum class [[nodiscard]] HandshakeStatus{
    kOk = 0,
    kNeedMore,             ///< The response header block is not complete yet: feed more bytes.
    kBufferTooSmall,       ///< The request does not fit the caller's buffer.
    kResponseTooLarge,     ///< The response header block exceeds kMaxResponseSize bytes.
    kMalformed,            ///< The response breaks HTTP/1.1 syntax (see UpgradeResponseParser).
    kNotSwitching,         ///< A well-formed response whose status is not 101 (see status_code()).
    kMissingUpgrade,       ///< 101 without "Upgrade: websocket".
    kMissingConnection,    ///< 101 without the "upgrade" token in Connection.
    kBadAccept,            ///< 101 with Sec-WebSocket-Accept missing, repeated or wrong.
    kUnexpectedExtension,  ///< 101 with Sec-WebSocket-Extensions we did not offer, or an invalid
                           ///< answer to our permessage-deflate offer (see parse_deflate_answer).
    kUnexpectedSubprotocol,  ///< 101 selecting a subprotocol we did not offer, or several.
    kMissingSubprotocol,     ///< 101 selecting no subprotocol although one was required.
    kInvalidArgument,        ///< A parameter breaks its documented contract.
};

/// A stable, human-readable name for logs ("ok", "need_more", "bad_accept", ...);
/// "unknown" for a value outside the enum.
const char* to_string(HandshakeStatus status);

/// The largest response header block (status line through the empty line,
/// interim 1xx responses included) the parser accepts.
inline constexpr std::size_t kMaxResponseSize = 8192;

/// Length of a Sec-WebSocket-Key value (base64 of 16 bytes), without the NUL.
inline constexpr std::size_t kWebSocketKeyLength = 24;
/// Length of a Sec-WebSocket-Accept value (base64 of a SHA-1), without the NUL.
inline constexpr std::size_t kWebSocketAcceptLength = 28;

/// Writes the Sec-WebSocket-Key for 16 random bytes: their base64 encoding,
/// 24 characters plus a NUL terminator.
/// Returns kOk, or kInvalidArgument when a pointer is null.
HandshakeStatus make_websocket_key(const std::uint8_t random16[16],
                                   char out[kWebSocketKeyLength + 1]);

/// Writes the Sec-WebSocket-Accept value a server must answer to `key`:
/// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), 28 characters
/// plus a NUL terminator. RFC 6455 example: "dGhlIHNhbXBsZSBub25jZQ==" gives
/// "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".
/// Returns kOk, or kInvalidArgument when a pointer is null or `key` is not
/// exactly kWebSocketKeyLength characters long.
HandshakeStatus compute_accept(const char* key, char out[kWebSocketAcceptLength + 1]);

/// What goes into the upgrade request. Every string is NUL-terminated and
/// only read during build_upgrade_request().
struct UpgradeRequest {
    /// Host name, IPv4 literal or IPv6 literal (with or without brackets; IPv6
    /// literals are bracketed in the Host header). Characters allowed: letters,
    /// digits, "-._~!$&'()*+,;=%:" and, around an IPv6 literal, "[" "]".
    const char* host = nullptr;
    /// TCP port; 0 means the scheme's default. The Host header carries the
    /// port only when it differs from 80 (ws) or 443 (wss).
    std::uint16_t port = 0;
    bool tls = false;  ///< wss: the default port is 443 instead of 80.
    /// Request target: absolute path plus optional query, starting with "/";
    /// visible ASCII only (percent-encode the rest), no "#". nullptr means "/".
    const char* path = "/";
    /// The Sec-WebSocket-Key from make_websocket_key(): 22 base64 characters and "==".
    const char* key = nullptr;
    /// Subprotocols to offer, in order of preference; each a non-empty HTTP token.
    const char* const* subprotocols = nullptr;
    std::size_t subprotocol_count = 0;
    /// Full Authorization header value ("Bearer ..."); nullptr or "" for none.
    const char* authorization = nullptr;
    /// Further header lines, each "Name: value" without CRLF. The name must be
    /// an HTTP token and must not be one the handshake writes itself (Host,
    /// Upgrade, Connection, Sec-WebSocket-*, Content-Length, Transfer-Encoding,
    /// and Authorization when `authorization` is given).
    const char* const* extra_headers = nullptr;
    std::size_t extra_header_count = 0;
    /// permessage-deflate offer (RFC 7692) written as Sec-WebSocket-Extensions;
    /// nullptr offers no extension. Must pass valid_deflate_offer().
    const DeflateOffer* deflate = nullptr;
};

/// Writes the HTTP/1.1 upgrade request for `request` into out[0, capacity):
///   GET <path> HTTP/1.1
///   Host: <host>[:<port>]
///   Upgrade: websocket
///   Connection: Upgrade
///   Sec-WebSocket-Key: <key>
///   Sec-WebSocket-Version: 13
///   Sec-WebSocket-Protocol: <p1>, <p2>   (only when subprotocols are given)
///   Sec-WebSocket-Extensions: <offer>    (only when `deflate` is given)
///   Authorization: <value>               (only when given)
///   <extra headers, in order>
///   <empty line>
/// each line ending in CRLF. The output is not NUL-terminated.
/// `out` may be nullptr when `capacity` is 0 (to query the size).
/// Returns:
///   kOk               the request is in out[0, *length).
///   kBufferTooSmall   it needs *length bytes, more than `capacity`; out's content is unspecified.
///   kInvalidArgument  `length` is null, `out` is null with a non-zero capacity, or a field
///                     breaks its contract above: a value with CR, LF or another control
///                     character other than HTAB (header injection), a header name or
///                     subprotocol that is not a token, a missing host or malformed key.
///                     *length is 0 (when `length` is not null).
HandshakeStatus build_upgrade_request(const UpgradeRequest& request, char* out,
                                      std::size_t capacity, std::size_t* length);

/// Parses an HTTP-date (RFC 9110 section 5.6.7) into seconds since
/// 1970-01-01T00:00:00Z: the preferred IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"),
/// RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT"; a two-digit year yy means 19yy when
/// yy >= 70, otherwise 20yy) and asctime ("Sun Nov  6 08:49:37 1994"). The text is
/// exactly `size` bytes, without surrounding whitespace. Day names are checked for
/// spelling only; the day of month must exist; second 60 (a leap second) is accepted;
/// years before 1900 are rejected. Uses no libc time functions.
/// Returns false (leaving *seconds alone) when the text is none of these forms.
bool parse_http_date(const char* text, std::size_t size, std::int64_t* seconds);

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1..12, day 1..31),
/// for year >= 1. No range check beyond that.
std::int64_t days_from_civil(std::int32_t year, std::uint32_t month, std::uint32_t day);

/// The longest Retry-After the parser reports: one day, in seconds.
inline constexpr std::uint32_t kMaxRetryAfterSeconds = 24u * 60u * 60u;

/// Reads the server's answer to the upgrade request incrementally.
///
/// Bytes are accumulated in an internal kMaxResponseSize buffer until the
/// empty line ending the header block. Interim 1xx responses other than 101
/// are skipped (their bytes count against the size limit). Body bytes of a
/// non-101 response are not read: the caller closes the connection.
///
/// Syntax checked (kMalformed otherwise): lines end in CRLF (a bare CR or LF
/// fails at once, as does a NUL byte); status line "HTTP/1.0" or "HTTP/1.1",
/// SP, three digits 100..599, then nothing or SP and a reason phrase without
/// control characters; header lines "name: value" where the name is a token
/// directly followed by ":", no obs-fold (a line starting with SP or HTAB) and
/// no control characters other than HTAB in the value. A 101 must be HTTP/1.1.
///
/// Checks of a 101, in this order (the first failing one is returned): every
/// Upgrade header equals "websocket" (ASCII case-insensitive) and there is at
/// least one (kMissingUpgrade); some Connection header lists the token
/// "upgrade" (case-insensitive; kMissingConnection); exactly one
/// Sec-WebSocket-Accept, equal to the expected value (case-sensitive;
/// kBadAccept); no Sec-WebSocket-Extensions unless a permessage-deflate offer
/// was set, and then at most one, accepted by parse_deflate_answer()
/// (kUnexpectedExtension); at most one
/// Sec-WebSocket-Protocol, equal (case-sensitive) to one of the offered
/// subprotocols (kUnexpectedSubprotocol); one present when required
/// (kMissingSubprotocol). Header names are case-insensitive and optional
/// whitespace around values is ignored.
///
/// Retry-After (read for every final response): delta-seconds, or an HTTP-date
/// converted into seconds after the response's own Date header (the device has
/// no trustworthy clock), negative differences giving 0. Clamped to
/// kMaxRetryAfterSeconds. Absent when missing, repeated, unparsable, or an
/// HTTP-date without exactly one parsable Date header.
class UpgradeResponseParser {
  public:
    /// `expected_accept`: the compute_accept() value for the key sent; copied.
    /// `subprotocols`: the subprotocols offered in the request (may be nullptr when
    /// `subprotocol_count` is 0); the array and strings must outlive the parser, because
    /// selected_subprotocol() points into them. `require_subprotocol`: a 101 without
    /// Sec-WebSocket-Protocol fails. Invalid arguments (a null or wrongly sized accept,
    /// a null list with a non-zero count, a requirement with nothing offered) make every
    /// feed() return kInvalidArgument.
    UpgradeResponseParser(const char* expected_accept, const char* const* subprotocols,
                          std::size_t subprotocol_count, bool require_subprotocol);

    /// Starts over for a new attempt, with the same meaning as the constructor.
    void reset(const char* expected_accept, const char* const* subprotocols,
               std::size_t subprotocol_count, bool require_subprotocol);

    /// Consumes response bytes. *consumed is set to how many of data[0, size) belong to
    /// the response: everything on kNeedMore, up to and including the empty line on
    /// completion (later bytes are WebSocket frames, left to the caller), up to and
    /// including the offending byte on an early kMalformed, the bytes before the one that
    /// would exceed the limit on kResponseTooLarge. Once a result other than kNeedMore
    /// has been returned, every further call returns it again with *consumed = 0.
    /// Returns:
    ///   kNeedMore          the header block is incomplete.
    ///   kOk                a valid 101: the connection speaks WebSocket now.
    ///   kNotSwitching      a well-formed final response with another status.
    ///   kResponseTooLarge, kMalformed, kMissingUpgrade, kMissingConnection, kBadAccept,
    ///   kUnexpectedExtension, kUnexpectedSubprotocol, kMissingSubprotocol: see above.
    ///   kInvalidArgument   `consumed` is null, `data` is null with a non-zero size, or the
    ///                      constructor arguments were invalid.
    HandshakeStatus feed(const std::uint8_t* data, std::size_t size, std::size_t* consumed);

    /// The final response's status code; 0 until one has been parsed.
    std::uint16_t status_code() const { return status_code_; }
    /// True when the final response carried a usable Retry-After (see above).
    bool has_retry_after() const { return has_retry_after_; }
    /// Seconds to wait before retrying, 0..kMaxRetryAfterSeconds; 0 when absent.
    std::uint32_t retry_after_seconds() const { return retry_after_seconds_; }
    /// The offered subprotocol the server selected (a pointer into the constructor's
    /// list), or nullptr when none was selected or no valid 101 has been parsed.
    const char* selected_subprotocol() const { return selected_subprotocol_; }

    /// The permessage-deflate offer sent with the request (copied), or nullptr for
    /// none (the default). Kept across reset(); set it before the first feed().
    void set_deflate_offer(const DeflateOffer* offer);
    /// What the server agreed to; inactive when it declined, no offer was made,
    /// or no valid 101 has been parsed.
    const DeflateAgreement& deflate() const { return deflate_; }

  private:
    HandshakeStatus finish(HandshakeStatus status);
    HandshakeStatus evaluate(bool* interim);

    char expected_accept_[kWebSocketAcceptLength + 1];
    const char* const* subprotocols_;
    std::size_t subprotocol_count_;
    bool require_subprotocol_;
    bool arguments_valid_;

    HandshakeStatus result_;
    std::size_t used_;   // bytes of the current header block in buffer_
    std::size_t total_;  // bytes consumed over all blocks, interim ones included
    std::uint16_t status_code_;
    bool has_retry_after_;
    std::uint32_t retry_after_seconds_;
    const char* selected_subprotocol_;
    bool deflate_offered_ = false;
    DeflateOffer deflate_offer_{};
    DeflateAgreement deflate_{};
    std::uint8_t buffer_[kMaxResponseSize];
};

}  // namespace tether::net

// SPDX-License-Identifier: MIT
// HTTP CONNECT proxies (RFC 9110 section 9.3.6), without I/O: the proxy URL,
// the no_proxy list, the CONNECT request and the proxy's response.
//
// The client opens TCP to the proxy, writes build_connect_request()'s bytes,
// feeds what the proxy answers to ConnectResponseParser until it returns a
// result, and on kEstablished runs TLS (wss://) or the upgrade (ws://) to the
// origin through the tunnel. Nothing here allocates; credentials are copied
// into caller buffers only and never into an error text.
//
// Example:
//   tether::net::ProxyUrl proxy;
//   if (tether::net::parse_proxy_url("http://user:pw@proxy:3128", &proxy) != kOk) ...
//   tether::net::ConnectRequest request{"origin.example", 443, proxy.username,
//                                       proxy.has_credentials ? proxy.password : nullptr};
//   char bytes[tether::net::kMaxConnectRequest];
//   std::size_t length = 0;
//   build_connect_request(request, bytes, sizeof bytes, &length);
//   ConnectResponseParser parser;
//   // read at most parser.bytes_wanted() bytes at a time, then feed() them
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/net/url.h"

namespace tether::net {

inline constexpr std::size_t kMaxProxyUsername = 128;
inline constexpr std::size_t kMaxProxyPassword = 256;
/// The largest CONNECT request build_connect_request() writes (host of 253
/// characters, the longest credentials in base64, and the fixed lines).
inline constexpr std::size_t kMaxConnectRequest = 1280;
/// The largest response header block ConnectResponseParser accepts.
inline constexpr std::size_t kMaxConnectResponse = 4096;

/// An http:// proxy: "http://[user[:password]@]host[:port][/]", or the same
/// without the scheme ("proxy:3128", as the environment variables often
/// hold). User and password are percent-decoded.
struct ProxyUrl {
    char host[kMaxHostLength + 1] = {};  ///< a name or an address literal, without brackets
    bool host_is_ipv6 = false;
    std::uint16_t port = 0;  ///< explicit, or 80
    bool has_credentials = false;
    char username[kMaxProxyUsername + 1] = {};
    char password[kMaxProxyPassword + 1] = {};
};

enum class [[nodiscard]] ProxyUrlStatus{
    kOk,
    kBadScheme,       ///< a scheme other than http:// (https:// proxies are not supported)
    kBadHost,         ///< empty, too long, bad characters
    kBadPort,         ///< not 1..65535
    kBadPath,         ///< anything after the authority but "/"
    kBadCredentials,  ///< bad percent-encoding, a control character, ':' in the
                      ///< user name, or too long
};

/// "ok", "bad_scheme", ... (never the URL itself: it may hold a password).
const char* to_string(ProxyUrlStatus status);

/// Parses `text` (NUL-terminated). On kOk fills *out; otherwise *out is
/// cleared (no partial credentials are left behind).
ProxyUrlStatus parse_proxy_url(const char* text, ProxyUrl* out);

/// Whether `host` (a name or an address literal without brackets) on `port`
/// bypasses the proxy under `list`, the no_proxy syntax that curl uses:
/// entries separated by commas (and spaces); "*" matches every host; an
/// entry matches the host itself and every name below it ("example.com" and
/// ".example.com" both match example.com and a.example.com, never
/// notexample.com); an address literal matches only that address ("::1" or
/// "[::1]"); "entry:port" matches only that port. Names compare without
/// case and without a trailing dot. A null or empty list matches nothing.
bool no_proxy_matches(const char* list, const char* host, std::uint16_t port);

struct ConnectRequest {
    const char* host;  ///< the origin: a name or an address literal, without brackets
    std::uint16_t port;
    /// Basic credentials (RFC 7617): both null for none; a null password with
    /// a user name is an empty password.
    const char* username = nullptr;
    const char* password = nullptr;
};

enum class [[nodiscard]] ConnectBuildStatus{
    kOk,
    kBadHost,         ///< empty, or a byte that is no host character (CR, LF, space, ...)
    kBadCredentials,  ///< a control character, ':' in the user name, or too long
    kNoSpace,         ///< the request does not fit `capacity`
};

const char* to_string(ConnectBuildStatus status);

/// Writes "CONNECT host:port HTTP/1.1", "Host: host:port" and, with
/// credentials, "Proxy-Authorization: Basic base64(user:password)", then the
/// blank line, into `out` (no NUL). An IPv6 literal is written in brackets.
/// *length gets the size on kOk. On any other status nothing usable is left
/// in `out` (it is cleared: it may have held part of a password).
ConnectBuildStatus build_connect_request(const ConnectRequest& request, char* out,
                                         std::size_t capacity, std::size_t* length);

/// What the proxy answered.
enum class [[nodiscard]] ConnectResult{
    kNeedMore,        ///< the header block is not complete yet
    kEstablished,     ///< 2xx: the tunnel is up; bytes after the header block are the origin's
    kAuthRequired,    ///< 407, or 401: credentials missing or wrong (tinyproxy 1.11 answers
                      ///< wrong ones with 401); has_proxy_authenticate() tells whether
                      ///< the proxy named a scheme
    kForbidden,       ///< 403: the proxy's policy refuses this origin or port
    kBadGateway,      ///< 502: the proxy could not reach the origin
    kUnavailable,     ///< 503
    kGatewayTimeout,  ///< 504: the origin did not answer the proxy in time
    kRejected,        ///< any other status (status_code() says which)
    kMalformed,       ///< not an HTTP/1.x response, a bare LF, a bad header line
    kTooLarge,        ///< the header block is longer than kMaxConnectResponse
};

const char* to_string(ConnectResult result);

/// Parses the proxy's response to CONNECT incrementally: the status line and
/// header fields up to the blank line, in chunks of any size. A final result
/// is sticky: later feed() calls return it again and consume nothing.
class ConnectResponseParser {
  public:
    ConnectResponseParser() = default;
    void reset() { *this = ConnectResponseParser{}; }

    /// Consumes bytes of `data` up to the end of the header block; *consumed
    /// gets how many. With kEstablished, data[*consumed..size) belongs to the
    /// origin and must be handed on, not dropped. With kNeedMore every byte
    /// was consumed.
    ConnectResult feed(const std::uint8_t* data, std::size_t size, std::size_t* consumed);

    /// The most bytes the next feed() can take without reading past the end
    /// of the header block (1..4; 0 once a result is final). A caller that
    /// never reads more than this from the socket never over-reads, so no
    /// origin byte is ever taken off the stream early.
    std::size_t bytes_wanted() const;

    /// The status code, once the status line has been read (0 before).
    std::uint16_t status_code() const { return status_code_; }
    /// Whether a Proxy-Authenticate field was present, and whether one named Basic.
    bool has_proxy_authenticate() const { return proxy_authenticate_; }
    bool offers_basic() const { return offers_basic_; }

  private:
    ConnectResult finish_line();
    ConnectResult parse_status_line();
    ConnectResult parse_field_line();
    ConnectResult result_for_status() const;

    ConnectResult result_ = ConnectResult::kNeedMore;
    std::size_t total_ = 0;  // header bytes consumed so far
    char line_[256] = {};    // the current line (longer field lines are skipped, not stored)
    std::size_t line_length_ = 0;
    bool line_truncated_ = false;
    bool saw_cr_ = false;
    bool status_line_done_ = false;
    std::uint16_t status_code_ = 0;
    bool proxy_authenticate_ = false;
    bool offers_basic_ = false;
};

}  // namespace tether::net

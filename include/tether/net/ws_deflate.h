// SPDX-License-Identifier: MIT
// permessage-deflate (RFC 7692) negotiation, without zlib: the offer a client
// writes into Sec-WebSocket-Extensions, and the check of the server's answer.
// Pure text in, parameters out; nothing here allocates.
//
// Window sizes: zlib's deflate cannot compress with a 256-byte window
// (windowBits 8 silently becomes 9), so our own compressor never agrees to
// client_max_window_bits=8: an offer asks 9 at least and an answer of 8 fails
// the handshake. The peer's compressor may be held to 8; we inflate with
// max(8, 9) = 9 bits then, which reads any stream with a smaller window.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tether::net {

/// The smallest and largest LZ77 window (log2 bytes) we compress or inflate with.
inline constexpr std::uint8_t kDeflateMinWindowBits = 9;
inline constexpr std::uint8_t kDeflateMaxWindowBits = 15;

/// What the client offers. One offer only (no fallback list).
struct DeflateOffer {
    /// Ask the server to reset its compressor after every message
    /// (server_no_context_takeover): our inflater then keeps no history between messages.
    bool server_no_context_takeover = false;
    /// Promise to reset our compressor after every message (client_no_context_takeover).
    bool client_no_context_takeover = false;
    /// The window of the server's compressor we ask for, 9..15; 15 offers no
    /// server_max_window_bits parameter (the RFC default). Bounds our inflater's memory.
    std::uint8_t server_max_window_bits = kDeflateMaxWindowBits;
    /// The largest window our compressor uses, 9..15. The offer always carries
    /// client_max_window_bits (without a value when 15) so the server may lower it.
    std::uint8_t client_max_window_bits = kDeflateMaxWindowBits;
};

/// The parameters both sides agreed on, from the client's point of view.
struct DeflateAgreement {
    bool active = false;  ///< The server accepted permessage-deflate.
    /// The server resets its compressor per message: reset our inflater per message.
    bool server_no_context_takeover = false;
    /// We must reset our compressor per message.
    bool client_no_context_takeover = false;
    /// Window of the server's compressor, 8..15 (inflate with at least 9).
    std::uint8_t server_max_window_bits = kDeflateMaxWindowBits;
    /// Window our compressor uses, 9..15.
    std::uint8_t client_max_window_bits = kDeflateMaxWindowBits;
};

/// True when every field of `offer` is in range (window bits 9..15).
bool valid_deflate_offer(const DeflateOffer& offer);

/// The longest offer text write_deflate_offer() produces, without the NUL.
inline constexpr std::size_t kMaxDeflateOfferLength = 128;

/// Writes the Sec-WebSocket-Extensions value for `offer`, NUL-terminated, e.g.
///   "permessage-deflate; client_max_window_bits"
///   "permessage-deflate; server_no_context_takeover; client_no_context_takeover;
///    server_max_window_bits=10; client_max_window_bits=10"
/// Returns the length, or 0 when the offer is invalid or capacity is too small.
std::size_t write_deflate_offer(const DeflateOffer& offer, char* out, std::size_t capacity);

/// Checks the server's Sec-WebSocket-Extensions value (all its headers joined
/// with ", ", optional whitespace allowed) against `offer`. Accepted: exactly one
/// element, "permessage-deflate" (case-insensitive), with parameters (each at most
/// once; values a token or a quoted string):
///   server_no_context_takeover, client_no_context_takeover   no value;
///   server_max_window_bits=N   8..15, and <= the offered value when one was offered;
///                              required when we offered a value below 15;
///   client_max_window_bits=N   9..offered (8 fails: zlib cannot compress with it).
/// Anything else (another extension, several elements, an unknown, duplicate or
/// malformed parameter, a value out of range) returns false and leaves *agreement
/// inactive: the handshake fails.
bool parse_deflate_answer(const char* value, std::size_t size, const DeflateOffer& offer,
                          DeflateAgreement* agreement);

/// Result of MessageDeflater::inflate().
enum class InflateStatus : std::uint8_t {
    kOk,       ///< all input consumed; the output so far is in out[0, *produced)
    kTooBig,   ///< the message inflates past the output capacity: close with 1009
    kCorrupt,  ///< not a valid DEFLATE stream: close with 1007 (or 1002)
};

/// The permessage-deflate codec a WsStream calls (the zlib one lives in
/// src/deflate, outside libtether's core, see tether/deflate/zlib_deflater.h).
/// An implementation holds its compressor and inflater state for one
/// connection at a time; it allocates at construction only, never per message.
class MessageDeflater {
  public:
    virtual ~MessageDeflater() = default;
    /// Prepares both directions for a new connection with `agreement` (state from
    /// an earlier connection is forgotten). False when this deflater cannot honour
    /// the windows (they exceed what it was built for): fail the connection.
    virtual bool start(const DeflateAgreement& agreement) = 0;
    /// Compresses one whole message, prefix[0, prefix_size) then data[0, size), into
    /// out[0, capacity) as RFC 7692 section 7.2.1 describes (sync flush, the final
    /// 00 00 ff ff removed), resetting the window afterwards when the agreement says
    /// client_no_context_takeover. Returns false when the result does not fit
    /// (nothing usable in `out`; the compressor state is then reset, so the next
    /// message starts from an empty window on both sides only with no context
    /// takeover: callers send an uncompressed message after a false and must
    /// treat it as fatal with context takeover).
    virtual bool compress(const std::uint8_t* prefix, std::size_t prefix_size,
                          const std::uint8_t* data, std::size_t size, std::uint8_t* out,
                          std::size_t capacity, std::size_t* written) = 0;
    /// Inflates the next chunk of a compressed message into out[0, capacity), adding
    /// the RFC 7692 trailer when `final` (the last chunk of the message's last frame).
    /// *produced is what was written. The inflater never writes past `capacity`.
    virtual InflateStatus inflate(const std::uint8_t* in, std::size_t size, bool final,
                                  std::uint8_t* out, std::size_t capacity,
                                  std::size_t* produced) = 0;
};

}  // namespace tether::net

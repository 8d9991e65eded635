// WebSocket frames over a Transport, for a client (RFC 6455), through wslay's
// frame API.
//
// The stream owns no memory of its own beyond one wslay frame context (made
// once, on the first attach): the caller hands it a receive buffer, which
// holds one reassembled message, and a transmit buffer, into which frames are
// encoded back to back so that one write() carries many of them. Nothing is
// allocated per message.
//
// Sending: queue_*() encode a complete, masked frame into the transmit buffer
// or refuse (return false, nothing queued) when it lacks room; flush() hands
// as much of the buffer to the transport as it takes in one call. Mask keys
// come from a MaskSource in bulk, never one system call per frame.
//
// Receiving: read_frames() reads until the transport would block (draining
// bytes TLS has already decrypted), checks every rule RFC 6455 sets for what
// a server may send, reassembles fragmented messages with control frames
// interleaved, validates text as UTF-8 as it arrives, answers pings with
// pongs carrying the same payload, and reports messages, pongs and the
// peer's close to a WsHandler. A violation ends the read with the close code
// the client must send: 1002 (protocol error), 1007 (invalid UTF-8) or 1009
// (message too big).
//
// Example:
//   static std::uint8_t rx[64 * 1024], tx[64 * 1024 + 64];
//   tether::net::WsStream stream(tether::net::WsStreamConfig{}, rx, sizeof rx, tx, sizeof tx,
//   masks); stream.attach(&transport);                  // after the TCP/TLS connection is up
//   stream.queue_raw(request, request_size);    // the HTTP upgrade
//   ... stream.read_handshake(&parser, &status) until status != kNeedMore ...
//   stream.queue_message(tether::net::WsOpcode::kText, data, size);
//   stream.flush();
//   stream.read_frames(handler);
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/net/utf8.h"
#include "tether/net/ws_handshake.h"
#include "tether/transport.h"

namespace tether::net {

enum class WsOpcode : std::uint8_t {
    kContinuation = 0x0,
    kText = 0x1,
    kBinary = 0x2,
    kClose = 0x8,
    kPing = 0x9,
    kPong = 0xA,
};

/// Close code reported to the handler when a close frame carries no code.
inline constexpr std::uint16_t kCloseNoStatus = 1005;
/// Largest control frame payload (RFC 6455 section 5.5).
inline constexpr std::size_t kMaxControlPayload = 125;
/// Largest frame header a client writes: 2 + 8 (length) + 4 (mask).
inline constexpr std::size_t kMaxClientFrameHeader = 14;

struct WsStreamConfig {
    /// Largest message accepted from the peer, after reassembly; larger
    /// ends the read with close code 1009. Must not exceed the receive buffer.
    std::size_t max_message_size = 64 * 1024;
    /// Validate text messages and close reasons as UTF-8 (1007 when invalid).
    bool validate_utf8 = true;
};

/// Where mask keys come from: the port's DRBG, or fixed bytes in tests.
class MaskSource {
  public:
    virtual ~MaskSource() = default;
    /// Fills `size` random bytes. Returns false when entropy is unavailable:
    /// the stream then fails closed (kEntropyFailure) and never sends an
    /// unmasked or predictably masked frame.
    virtual bool fill_masks(std::uint8_t* out, std::size_t size) = 0;
};

/// What the peer sent, reported by read_frames().
class WsHandler {
  public:
    virtual ~WsHandler() = default;
    /// A complete text or binary message. `data` is valid until the handler returns.
    virtual void on_message(WsOpcode type, const std::uint8_t* data, std::size_t size) = 0;
    /// A pong (a ping is answered by the stream itself and also reported via on_frame()).
    virtual void on_pong(const std::uint8_t* payload, std::size_t size) = 0;
    /// The peer's close frame: its code (kCloseNoStatus when none) and reason.
    /// The stream reads nothing after it; the caller echoes the close (queue_close).
    virtual void on_close(std::uint16_t code, const std::uint8_t* reason, std::size_t size) = 0;
    /// Any complete frame arrived (liveness for the heartbeat).
    virtual void on_frame() {}
};

enum class WsStatus : std::uint8_t {
    kOk,              ///< done for now: the transport would block (or nothing was to do)
    kClosed,          ///< the transport reached EOF
    kTransportError,  ///< the transport failed; WsResult::transport_error says how
    kProtocolError,   ///< the peer broke RFC 6455; WsResult::close_code is what to send
    kEntropyFailure,  ///< the MaskSource failed: the connection must be dropped
    kNotAttached,     ///< no transport attached
};

const char* to_string(WsStatus status);

struct WsResult {
    WsStatus status = WsStatus::kOk;
    std::uint16_t close_code = 0;  ///< for kProtocolError: 1002, 1007 or 1009
    TransportError transport_error = TransportError::kNone;
};

/// Counters since construction, for metrics and benchmarks.
struct WsCounters {
    std::uint64_t frames_sent = 0;
    std::uint64_t frames_received = 0;
    std::uint64_t messages_received = 0;
    std::uint64_t bytes_written = 0;  ///< to the transport
    std::uint64_t bytes_read = 0;     ///< from the transport
    std::uint64_t write_calls = 0;    ///< transport write/writev calls that moved bytes
    std::uint64_t pings_answered = 0;
};

class WsStream {
  public:
    /// `rx` must hold max_message_size bytes (it is clamped to rx_capacity).
    /// `tx` should hold at least a whole message plus kMaxClientFrameHeader,
    /// or larger messages can never be queued.
    WsStream(const WsStreamConfig& config, std::uint8_t* rx, std::size_t rx_capacity,
             std::uint8_t* tx, std::size_t tx_capacity, MaskSource& masks);
    ~WsStream();
    WsStream(const WsStream&) = delete;
    WsStream& operator=(const WsStream&) = delete;

    /// Binds the stream to a freshly established transport and forgets every
    /// byte, frame and partial message of the previous one. The first call
    /// creates the wslay frame context (the only allocation the stream makes);
    /// returns false if that fails.
    bool attach(Transport* transport);
    /// Unbinds (the caller closes the transport); queued bytes are dropped.
    void detach();
    bool attached() const { return transport_ != nullptr; }

    // --- The opening handshake -------------------------------------------------

    /// Queues raw bytes (the HTTP upgrade request). False when they do not fit.
    bool queue_raw(const std::uint8_t* data, std::size_t size);

    /// Reads from the transport into `parser` until it completes or the
    /// transport would block; *status gets the parser's last answer (kNeedMore
    /// while incomplete). Bytes after the response stay buffered for
    /// read_frames(). Transport EOF or errors are returned as the WsResult.
    WsResult read_handshake(UpgradeResponseParser* parser, HandshakeStatus* status);

    // --- Frames ----------------------------------------------------------------

    /// Queues one complete masked data frame (FIN set). `type` is kText or
    /// kBinary. False, with nothing queued, when the transmit buffer lacks
    /// room (flush and retry) or entropy failed (see last_error()).
    bool queue_message(WsOpcode type, const std::uint8_t* data, std::size_t size);
    /// Queues a ping; payload at most kMaxControlPayload bytes.
    bool queue_ping(const std::uint8_t* payload, std::size_t size);
    /// Queues a close frame with `code` (0: a close frame without a code and reason).
    bool queue_close(std::uint16_t code, const char* reason = nullptr);

    /// Writes queued bytes: one transport call per flush, as much as it takes.
    /// kOk whether or not everything went (see queued_bytes()).
    WsResult flush();
    std::size_t queued_bytes() const { return tx_end_ - tx_begin_; }
    /// Room left for frames right now (after compacting what was flushed).
    std::size_t tx_space() const;

    /// Reads and handles every frame available now; see the class comment.
    WsResult read_frames(WsHandler& handler);

    /// True once the peer's close frame has been read.
    bool close_received() const { return close_received_; }
    /// Why the last queue_* call refused, when it was not lack of room.
    WsStatus last_error() const { return last_error_; }
    const WsCounters& counters() const { return counters_; }

  private:
    // Layout and wslay callback plumbing are described in src/net/ws_stream.cpp.
    WsStreamConfig config_;
    std::uint8_t* rx_;
    std::size_t rx_capacity_;
    std::uint8_t* tx_;
    std::size_t tx_capacity_;
    std::size_t tx_begin_ = 0;  // first byte not yet written to the transport
    std::size_t tx_end_ = 0;    // end of queued bytes
    MaskSource& masks_;
    Transport* transport_ = nullptr;
    void* frame_context_ = nullptr;  // wslay_frame_context_ptr
    bool close_received_ = false;
    WsStatus last_error_ = WsStatus::kOk;
    WsCounters counters_;
};

}  // namespace tether::net

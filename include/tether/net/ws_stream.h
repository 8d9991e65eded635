// SPDX-License-Identifier: MIT
// WebSocket frames over a Transport, for a client or (WsStreamConfig::server)
// a server (RFC 6455), through wslay's frame API.
//
// The stream allocates nothing beyond one wslay frame context (made on the
// first attach): the caller hands it a receive buffer, which holds one
// reassembled message, and a transmit buffer, into which frames are encoded
// back to back so that one write() carries many of them. The object itself
// holds a kWsStagingSize input staging array (transport reads land there, so
// one read serves many frames), which makes it about 17 KiB: give it static
// storage or a long-lived owner. Nothing is allocated per message.
//
// Sending: queue_*() encode a complete frame (masked by a client, unmasked by
// a server) into the transmit buffer
// or refuse (return false, nothing queued) when it lacks room; flush() hands
// as much of the buffer to the transport as it takes in one call. Mask keys
// come from a MaskSource in bulk, never one system call per frame.
//
// Receiving: read_frames() reads until the transport would block (draining
// bytes TLS has already decrypted), checks every rule RFC 6455 sets for what
// the peer may send, reassembles fragmented messages with control frames
// interleaved, validates text as UTF-8 as it arrives, answers pings with
// pongs carrying the same payload, and reports messages, pongs and the
// peer's close to a WsHandler. A violation ends the read with the close code
// to send: 1002 (protocol error), 1007 (invalid UTF-8) or 1009
// (message too big).
//
// Example:
//   static std::uint8_t rx[64 * 1024], tx[64 * 1024 + 64];
//   static tether::net::WsStream stream(tether::net::WsStreamConfig{}, rx, sizeof rx,
//                                       tx, sizeof tx, masks);
//   stream.attach(&transport);                  // after the TCP/TLS connection is up
//   stream.queue_raw(request, request_size);    // the HTTP upgrade
//   ... stream.read_handshake(&parser, &status) until status != kNeedMore ...
//   stream.queue_message(tether::net::WsOpcode::kText, data, size);
//   stream.flush();
//   stream.read_frames(handler);
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/net/utf8.h"
#include "tether/net/ws_deflate.h"
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
/// Largest frame header a client writes: 2 + 8 (length) + 4 (mask); a server writes 4 fewer.
inline constexpr std::size_t kMaxClientFrameHeader = 14;
/// Size of the input staging array inside WsStream: the most one transport read asks for.
inline constexpr std::size_t kWsStagingSize = 16 * 1024;
/// Mask bytes fetched from the MaskSource per fill_masks() call (64 frames' worth).
inline constexpr std::size_t kWsMaskPoolSize = 256;

struct WsStreamConfig {
    /// Largest message accepted from the peer, after reassembly; larger
    /// ends the read with close code 1009. Must not exceed the receive buffer.
    std::size_t max_message_size = 64 * 1024;
    /// Validate text messages and close reasons as UTF-8 (1007 when invalid).
    bool validate_utf8 = true;
    /// The role. false (a client): frames are sent masked and a masked
    /// received frame is 1002. true (a server): frames are sent unmasked (the
    /// MaskSource is never called) and every received frame must be masked
    /// (an unmasked one is 1002). Everything else is the same.
    bool server = false;
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
    /// permessage-deflate: messages sent compressed, their payload bytes before and
    /// after compression (frame headers excluded), and compressed messages received.
    std::uint64_t messages_compressed = 0;
    std::uint64_t compress_bytes_in = 0;
    std::uint64_t compress_bytes_out = 0;
    std::uint64_t messages_inflated = 0;
    std::uint64_t inflate_bytes_in = 0;   ///< compressed payload bytes received
    std::uint64_t inflate_bytes_out = 0;  ///< what they inflated to
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
    /// returns false if that fails. wslay cannot reset a context, so a later
    /// attach re-creates it only when the previous connection left input
    /// inside it (it ended mid-frame, after a protocol error, or with bytes
    /// following the peer's close); a connection that ended between frames
    /// reuses it. Mask bytes already fetched are kept.
    bool attach(Transport* transport);
    /// Unbinds (the caller closes the transport); queued bytes are dropped.
    void detach();
    bool attached() const { return transport_ != nullptr; }

    // --- The opening handshake -------------------------------------------------

    /// Queues raw bytes (the HTTP upgrade request). False when they do not fit
    /// (last_error() kOk) or no transport is attached (last_error() kNotAttached).
    bool queue_raw(const std::uint8_t* data, std::size_t size);

    /// Reads from the transport into `parser` until it completes or the
    /// transport would block; *status gets the parser's last answer (kNeedMore
    /// while incomplete). Bytes after the response stay buffered for
    /// read_frames(). Returns kOk (also when the transport would block),
    /// kClosed on EOF, kTransportError, or kNotAttached. A null `parser` or
    /// `status` reads nothing and sets *status (when not null) to kInvalidArgument.
    WsResult read_handshake(UpgradeResponseParser* parser, HandshakeStatus* status);

    // --- permessage-deflate (RFC 7692) -----------------------------------------
    /// Turns compression on for the current connection (call after a handshake
    /// whose parser reported an active agreement; attach() turns it off again).
    /// `deflater` must outlive the connection; start() is called on it here
    /// (false: it cannot honour the agreement, compression stays off and the
    /// connection should be failed; also false for a server-role stream, which
    /// does not speak permessage-deflate yet). Data messages of at least `threshold` bytes
    /// are then sent compressed (RSV1), straight into the transmit buffer; smaller
    /// ones, and any that would not fit compressed, are sent as they are. A
    /// received message with RSV1 on its first frame is inflated into the receive
    /// buffer, bounded by max_message_size (1009 past it, without inflating
    /// further; 1007 for a corrupt stream). Without compression, RSV1 is 1002.
    bool enable_deflate(MessageDeflater* deflater, const DeflateAgreement& agreement,
                        std::size_t threshold);
    bool deflate_enabled() const { return deflater_ != nullptr; }

    // --- Frames ----------------------------------------------------------------

    /// Queues one complete masked data frame (FIN set). `type` is kText or
    /// kBinary. False, with nothing queued, when the transmit buffer lacks
    /// room (flush and retry; last_error() kOk) or for the reason in
    /// last_error(): kEntropyFailure (drop the connection), kNotAttached, or
    /// kProtocolError for a misuse (another opcode, null data with a size).
    /// The text is sent as given: the caller vouches that it is UTF-8.
    bool queue_message(WsOpcode type, const std::uint8_t* data, std::size_t size);
    /// Queues one data frame whose payload is prefix[0, prefix_size) followed
    /// by data[0, size) (a tether.v1 DATA header and its payload, without the
    /// caller copying them together). Same refusals and the same
    /// all-or-nothing rule as queue_message(); a null pointer with a non-zero
    /// size is kProtocolError.
    bool queue_message_parts(WsOpcode type, const std::uint8_t* prefix, std::size_t prefix_size,
                             const std::uint8_t* data, std::size_t size);
    /// Queues a ping; payload at most kMaxControlPayload bytes (else false,
    /// last_error() kProtocolError). Same refusals as queue_message().
    bool queue_ping(const std::uint8_t* payload, std::size_t size);
    /// Queues a close frame with `code` (0: a close frame without a code and
    /// reason) and the NUL-terminated `reason` (nullptr: none). The code plus
    /// reason must fit kMaxControlPayload bytes (else false, kProtocolError).
    /// Same refusals as queue_message().
    bool queue_close(std::uint16_t code, const char* reason = nullptr);

    /// Writes queued bytes: one transport call per flush (none when nothing
    /// is queued), as much as it takes. kOk whether or not everything went
    /// (see queued_bytes()); kClosed, kTransportError, kNotAttached. A pong
    /// still owed because the buffer was full is queued first when it fits.
    WsResult flush();
    std::size_t queued_bytes() const { return tx_end_ - tx_begin_; }
    /// Room left for frames right now (after compacting what was flushed).
    std::size_t tx_space() const;
    /// The transmit buffer's size: the largest run of frames queued at once.
    std::size_t tx_capacity() const { return tx_capacity_; }
    std::size_t rx_capacity() const { return rx_capacity_; }

    /// Reads and handles every frame available now; see the class comment.
    /// Returns kOk when the transport would block or the peer's close was
    /// read (nothing is read after it); kClosed on EOF (between frames or in
    /// the middle of one); kTransportError; kProtocolError with the close
    /// code, returned again by every later call until the next attach;
    /// kEntropyFailure when a pong could not be masked; kNotAttached.
    /// The handler may queue frames but must not attach or detach the stream.
    WsResult read_frames(WsHandler& handler);

    /// True once the peer's close frame has been read.
    bool close_received() const { return close_received_; }
    /// Why the last queue_* call refused, when it was not lack of room.
    WsStatus last_error() const { return last_error_; }
    const WsCounters& counters() const { return counters_; }

  private:
    // Layout and wslay callback plumbing are described in src/net/ws_stream.cpp.
    friend struct WsStreamCallbacks;

    bool ensure_context();
    bool check_queue_preconditions();
    bool make_room(std::size_t size);
    bool queue_frame(WsOpcode opcode, const std::uint8_t* payload, std::size_t size,
                     const std::uint8_t* tail = nullptr, std::size_t tail_size = 0);
    bool queue_compressed(WsOpcode opcode, const std::uint8_t* prefix, std::size_t prefix_size,
                          const std::uint8_t* data, std::size_t size);
    bool ensure_mask();
    bool send_pending_pong();
    WsResult fail(std::uint16_t close_code);
    WsResult begin_frame(bool fin, std::uint8_t rsv, std::uint8_t opcode, bool masked,
                         std::uint64_t payload_length);
    WsResult end_frame(WsHandler& handler, const std::uint8_t* payload, std::size_t size);
    WsResult handle_data(WsHandler& handler, const std::uint8_t* data, std::size_t size);
    WsResult handle_close(WsHandler& handler, const std::uint8_t* payload, std::size_t size);

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

    // Input: transport reads land in stage_[stage_begin_, stage_end_).
    std::size_t stage_begin_ = 0;
    std::size_t stage_end_ = 0;
    IoResult last_read_ = IoResult::would_block();
    // Bytes handed to wslay, and bytes of the frames it has finished: equal
    // when the context holds no input (see attach()).
    std::uint64_t context_fed_ = 0;
    std::uint64_t context_consumed_ = 0;
    bool context_dirty_ = false;
    WsResult rx_failure_;  // sticky protocol error (status kOk: none)

    // The frame being read.
    bool in_frame_ = false;
    bool frame_fin_ = false;
    std::uint8_t frame_opcode_ = 0;
    bool frame_direct_ = false;   // whole payload in one chunk: no copy
    bool input_blocked_ = false;  // the last recv callback found the transport empty
    std::uint64_t frame_length_ = 0;
    std::uint64_t frame_received_ = 0;

    // The data message being reassembled in rx_.
    bool in_message_ = false;
    std::uint8_t message_opcode_ = 0;
    std::size_t message_size_ = 0;
    bool message_compressed_ = false;
    MessageDeflater* deflater_ = nullptr;
    std::size_t deflate_threshold_ = 0;
    Utf8Validator text_validator_;

    std::size_t mask_next_ = kWsMaskPoolSize;  // pool exhausted: filled on first use
    bool pong_owed_ = false;
    std::size_t pong_size_ = 0;

    std::uint8_t control_[kMaxControlPayload];
    std::uint8_t pong_payload_[kMaxControlPayload];
    std::uint8_t mask_pool_[kWsMaskPoolSize];
    std::uint8_t stage_[kWsStagingSize];
};

}  // namespace tether::net

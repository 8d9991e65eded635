// SPDX-License-Identifier: MIT
// WebSocket frames over a Transport, for either role: a client masks what it
// sends and refuses masked input, a server the reverse. wslay's frame API
// decodes (and unmasks) what arrives; frames sent are encoded here.
//
// Output: tx_[tx_begin_, tx_end_) holds encoded frames not yet written.
// queue_frame() computes the whole frame size first, makes room for it
// (compacting the written prefix away only when the tail lacks room) and
// writes header and masked payload in place, so a frame is either queued
// whole or not at all. Mask keys come from mask_pool_, refilled
// kWsMaskPoolSize bytes at a time before anything is written, so an entropy
// failure leaves nothing queued.
//
// Input: transport -> stage_ (one read of up to kWsStagingSize bytes, also
// used by read_handshake so bytes after the 101 response stay there) ->
// wslay's own 4 KiB input buffer (through the recv callback) -> the frame
// chunks wslay_frame_recv() returns. A data frame whose whole payload comes
// back in one chunk, and is a complete message, is delivered straight from
// wslay's buffer; everything else is reassembled in rx_ (data) or control_
// (control frames, at most 125 bytes).
//
// wslay_frame_recv() turns every recv callback result <= 0 into
// WSLAY_ERR_WANT_READ, and also answers WANT_READ after a callback that
// delivered too few bytes to finish a header. The callback therefore records
// whether the transport itself had nothing (input_blocked_ via last_read_),
// and read_frames() calls wslay again while the callback keeps producing.
//
// wslay has no way to reset a frame context, so the stream counts bytes fed
// into the context and bytes of frames it has finished (header + payload):
// when they differ at attach(), the context still holds old input and is
// re-created.
#include "tether/net/ws_stream.h"

#include <wslay/wslay.h>

#include <cstring>

namespace tether::net {

const char* to_string(WsStatus status) {
    switch (status) {
        case WsStatus::kOk:
            return "ok";
        case WsStatus::kClosed:
            return "closed";
        case WsStatus::kTransportError:
            return "transport_error";
        case WsStatus::kProtocolError:
            return "protocol_error";
        case WsStatus::kEntropyFailure:
            return "entropy_failure";
        case WsStatus::kNotAttached:
            return "not_attached";
    }
    return "unknown";
}

namespace {

constexpr std::uint16_t kCloseProtocolError = 1002;
constexpr std::uint16_t kCloseInvalidData = 1007;
constexpr std::uint16_t kCloseTooBig = 1009;
constexpr std::size_t kMaskSize = 4;

wslay_frame_context_ptr context_of(void* context) {
    return static_cast<wslay_frame_context_ptr>(context);
}

// RFC 6455 section 5.2: 7-bit, 16-bit or 64-bit length, then the mask key.
// wslay rejects non-minimal lengths, so this is exact for received frames.
std::size_t header_size(std::uint64_t payload_length, bool masked) {
    std::size_t size = 2;
    if (payload_length >= 65536u) {
        size += 8;
    } else if (payload_length >= 126u) {
        size += 2;
    }
    return masked ? size + kMaskSize : size;
}

// out[i] = in[i] ^ key[(phase + i) % 4], a 64-bit word at a time (the key
// repeated over a word through memcpy is byte-order independent). A tail of
// under eight bytes is covered by one more word ending at the last byte,
// recomputed from `in`, so it may overlap what is already written: `out`
// and `in` must not overlap.
void mask_payload(std::uint8_t* out, const std::uint8_t* in, std::size_t size,
                  const std::uint8_t* key, std::size_t phase) {
    // key[(phase + i) % 4] for i in 0..7 is keys[phase % 4 + i].
    std::uint8_t keys[3 * kMaskSize];
    std::memcpy(keys, key, kMaskSize);
    std::memcpy(keys + kMaskSize, key, kMaskSize);
    std::memcpy(keys + 2 * kMaskSize, key, kMaskSize);
    const std::uint8_t* pattern = keys + phase % kMaskSize;
    if (size < 8) {
        for (std::size_t i = 0; i < size; ++i) {
            out[i] = static_cast<std::uint8_t>(in[i] ^ pattern[i]);
        }
        return;
    }
    std::uint64_t word_key = 0;
    std::memcpy(&word_key, pattern, sizeof word_key);
    const auto mask_word = [out, in](std::size_t at, std::uint64_t with) {
        std::uint64_t word = 0;
        std::memcpy(&word, in + at, sizeof word);
        word ^= with;
        std::memcpy(out + at, &word, sizeof word);
    };
    std::size_t i = 0;
#if defined(__GNUC__)
    // Sixteen bytes per step where the target has vector registers (SSE2,
    // NEON); elsewhere the compiler splits the vector into words.
    using Block = std::uint8_t __attribute__((vector_size(16)));
    Block block_key;
    std::memcpy(&block_key, pattern, 8);
    std::memcpy(reinterpret_cast<std::uint8_t*>(&block_key) + 8, pattern, 8);
    const auto mask_block = [out, in, &block_key](std::size_t at) {
        Block block;
        std::memcpy(&block, in + at, sizeof block);
        block ^= block_key;
        std::memcpy(out + at, &block, sizeof block);
    };
    for (; i + 32 <= size; i += 32) {
        mask_block(i);
        mask_block(i + 16);
    }
    if (i + 16 <= size) {
        mask_block(i);
        i += 16;
    }
#else
    for (; i + 16 <= size; i += 16) {
        mask_word(i, word_key);
        mask_word(i + 8, word_key);
    }
#endif
    if (i + 8 <= size) {
        mask_word(i, word_key);
        i += 8;
    }
    if (i < size) {
        const std::size_t last = size - 8;
        std::uint64_t last_key = 0;
        std::memcpy(&last_key, keys + (phase + last) % kMaskSize, sizeof last_key);
        mask_word(last, last_key);
    }
}

bool is_control(std::uint8_t opcode) {
    return (opcode & 0x8u) != 0;
}

// Codes a peer may put on the wire (RFC 6455 section 7.4 and the IANA
// registry): 1004-1006 and 1015 are reserved, 1016-2999 unassigned.
bool close_code_allowed(std::uint16_t code) {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

}  // namespace

struct WsStreamCallbacks {
    static ssize_t recv(std::uint8_t* out, std::size_t size, int /*flags*/, void* user) {
        WsStream& stream = *static_cast<WsStream*>(user);
        if (stream.stage_begin_ == stream.stage_end_) {
            stream.stage_begin_ = 0;
            stream.stage_end_ = 0;
            const IoResult read = stream.transport_->read(stream.stage_, kWsStagingSize);
            if (read.status != IoStatus::kOk || read.bytes == 0) {
                stream.last_read_ = read;
                stream.input_blocked_ = true;
                return -1;  // wslay: WSLAY_ERR_WANT_READ
            }
            stream.stage_end_ = read.bytes < kWsStagingSize ? read.bytes : kWsStagingSize;
            stream.counters_.bytes_read += stream.stage_end_;
        }
        std::size_t available = stream.stage_end_ - stream.stage_begin_;
        std::size_t taken = available < size ? available : size;
        std::memcpy(out, stream.stage_ + stream.stage_begin_, taken);
        stream.stage_begin_ += taken;
        stream.context_fed_ += taken;
        return static_cast<ssize_t>(taken);
    }
};

WsStream::WsStream(const WsStreamConfig& config, std::uint8_t* rx, std::size_t rx_capacity,
                   std::uint8_t* tx, std::size_t tx_capacity, MaskSource& masks)
    : config_(config),
      rx_(rx),
      rx_capacity_(rx == nullptr ? 0 : rx_capacity),
      tx_(tx),
      tx_capacity_(tx == nullptr ? 0 : tx_capacity),
      masks_(masks) {
    if (config_.max_message_size > rx_capacity_) {
        config_.max_message_size = rx_capacity_;
    }
}

WsStream::~WsStream() {
    if (frame_context_ != nullptr) {
        wslay_frame_context_free(context_of(frame_context_));
    }
}

bool WsStream::ensure_context() {
    if (frame_context_ != nullptr && (context_dirty_ || context_fed_ != context_consumed_)) {
        wslay_frame_context_free(context_of(frame_context_));
        frame_context_ = nullptr;
    }
    if (frame_context_ == nullptr) {
        // Only decoding goes through wslay: without wslay_frame_send() it
        // never calls send or genmask.
        const wslay_frame_callbacks callbacks = {nullptr, WsStreamCallbacks::recv, nullptr};
        wslay_frame_context_ptr context = nullptr;
        if (wslay_frame_context_init(&context, &callbacks, this) != 0) {
            return false;
        }
        frame_context_ = context;
        context_fed_ = 0;
        context_consumed_ = 0;
        context_dirty_ = false;
    }
    return true;
}

bool WsStream::attach(Transport* transport) {
    if (transport == nullptr || !ensure_context()) {
        return false;
    }
    transport_ = transport;
    tx_begin_ = 0;
    tx_end_ = 0;
    close_received_ = false;
    last_error_ = WsStatus::kOk;
    stage_begin_ = 0;
    stage_end_ = 0;
    last_read_ = IoResult::would_block();
    rx_failure_ = WsResult{};
    in_frame_ = false;
    in_message_ = false;
    message_size_ = 0;
    message_compressed_ = false;
    deflater_ = nullptr;
    text_validator_.reset();
    pong_owed_ = false;
    return true;
}

bool WsStream::enable_deflate(MessageDeflater* deflater, const DeflateAgreement& agreement,
                              std::size_t threshold) {
    deflater_ = nullptr;
    // DeflateAgreement is the client's view (client_* is our side): no server role yet.
    if (config_.server || deflater == nullptr || !agreement.active || !deflater->start(agreement)) {
        return false;
    }
    deflater_ = deflater;
    deflate_threshold_ = threshold;
    return true;
}

void WsStream::detach() {
    transport_ = nullptr;
    tx_begin_ = 0;
    tx_end_ = 0;
    pong_owed_ = false;
}

std::size_t WsStream::tx_space() const {
    return tx_capacity_ - (tx_end_ - tx_begin_);
}

bool WsStream::make_room(std::size_t size) {
    if (tx_capacity_ - tx_end_ >= size) {
        return true;
    }
    const std::size_t queued = tx_end_ - tx_begin_;
    if (tx_capacity_ - queued < size) {
        return false;
    }
    std::memmove(tx_, tx_ + tx_begin_, queued);
    tx_begin_ = 0;
    tx_end_ = queued;
    return true;
}

bool WsStream::ensure_mask() {
    if (kWsMaskPoolSize - mask_next_ >= kMaskSize) {
        return true;
    }
    if (!masks_.fill_masks(mask_pool_, kWsMaskPoolSize)) {
        return false;
    }
    mask_next_ = 0;
    return true;
}

bool WsStream::check_queue_preconditions() {
    if (transport_ == nullptr) {
        last_error_ = WsStatus::kNotAttached;
        return false;
    }
    return true;
}

// Frames are encoded here rather than by wslay_frame_send(), which masks a
// byte at a time (about 11 instructions a byte, three quarters of the cost
// of a 100-byte message). The header and the masked payload are written
// straight into tx_; a payload given in two pieces (a protocol header and the
// application's bytes) is masked piece by piece, continuing the key's phase,
// so neither piece is copied anywhere but into tx_.
bool WsStream::queue_frame(WsOpcode opcode, const std::uint8_t* payload, std::size_t size,
                           const std::uint8_t* tail, std::size_t tail_size) {
    const bool masked = !config_.server;
    const std::size_t total = size + tail_size;
    const std::size_t header = header_size(total, masked);
    if (!make_room(header + total)) {
        last_error_ = WsStatus::kOk;
        return false;
    }
    if (masked && !ensure_mask()) {
        last_error_ = WsStatus::kEntropyFailure;
        return false;
    }
    std::uint8_t* out = tx_ + tx_end_;
    out[0] = static_cast<std::uint8_t>(0x80u | static_cast<std::uint8_t>(opcode));
    const std::uint8_t mask_bit = masked ? 0x80u : 0x00u;
    std::size_t at = 2;
    if (total < 126u) {
        out[1] = static_cast<std::uint8_t>(mask_bit | total);
    } else if (total < 65536u) {
        out[1] = static_cast<std::uint8_t>(mask_bit | 126u);
        out[2] = static_cast<std::uint8_t>(total >> 8);
        out[3] = static_cast<std::uint8_t>(total);
        at = 4;
    } else {
        out[1] = static_cast<std::uint8_t>(mask_bit | 127u);
        const std::uint64_t length = total;
        for (std::size_t i = 0; i < 8; ++i) {
            out[2 + i] = static_cast<std::uint8_t>(length >> (56 - 8 * i));
        }
        at = 10;
    }
    if (masked) {
        const std::uint8_t* key = mask_pool_ + mask_next_;
        mask_next_ += kMaskSize;
        std::memcpy(out + at, key, kMaskSize);
        at += kMaskSize;
        mask_payload(out + at, payload, size, key, 0);
        if (tail_size != 0) {
            mask_payload(out + at + size, tail, tail_size, key, size);
        }
    } else {
        if (size != 0) {
            std::memcpy(out + at, payload, size);
        }
        if (tail_size != 0) {
            std::memcpy(out + at + size, tail, tail_size);
        }
    }
    tx_end_ += at + total;
    ++counters_.frames_sent;
    last_error_ = WsStatus::kOk;
    return true;
}

bool WsStream::queue_raw(const std::uint8_t* data, std::size_t size) {
    if (!check_queue_preconditions()) {
        return false;
    }
    if (data == nullptr && size != 0) {
        last_error_ = WsStatus::kProtocolError;
        return false;
    }
    if (!make_room(size)) {
        last_error_ = WsStatus::kOk;
        return false;
    }
    if (size != 0) {
        std::memcpy(tx_ + tx_end_, data, size);
    }
    tx_end_ += size;
    last_error_ = WsStatus::kOk;
    return true;
}

bool WsStream::queue_compressed(WsOpcode opcode, const std::uint8_t* prefix,
                                std::size_t prefix_size, const std::uint8_t* data,
                                std::size_t size) {
    const bool masked = !config_.server;
    const std::size_t total = prefix_size + size;
    // DEFLATE's worst case for incompressible input: 5 bytes per stored block
    // of up to 16 KiB, plus the sync flush; with a little margin.
    const std::size_t worst = kMaxClientFrameHeader + total + total / 1024 + 32;
    if (!make_room(worst)) {
        return false;  // the caller sends it uncompressed if that fits
    }
    if (masked && !ensure_mask()) {
        last_error_ = WsStatus::kEntropyFailure;
        return false;
    }
    std::uint8_t* out = tx_ + tx_end_;
    std::size_t length = 0;
    if (!deflater_->compress(prefix, prefix_size, data, size, out + kMaxClientFrameHeader,
                             tx_capacity_ - tx_end_ - kMaxClientFrameHeader, &length)) {
        return false;  // the compressor has reset itself: plain frames stay correct
    }
    const std::size_t header = header_size(length, masked);
    if (header != kMaxClientFrameHeader) {
        std::memmove(out + header, out + kMaxClientFrameHeader, length);
    }
    out[0] = static_cast<std::uint8_t>(0x80u | 0x40u | static_cast<std::uint8_t>(opcode));
    const std::uint8_t mask_bit = masked ? 0x80u : 0x00u;
    std::size_t at = 2;
    if (length < 126u) {
        out[1] = static_cast<std::uint8_t>(mask_bit | length);
    } else if (length < 65536u) {
        out[1] = static_cast<std::uint8_t>(mask_bit | 126u);
        out[2] = static_cast<std::uint8_t>(length >> 8);
        out[3] = static_cast<std::uint8_t>(length);
        at = 4;
    } else {
        out[1] = static_cast<std::uint8_t>(mask_bit | 127u);
        const std::uint64_t wide = length;
        for (std::size_t i = 0; i < 8; ++i) {
            out[2 + i] = static_cast<std::uint8_t>(wide >> (56 - 8 * i));
        }
        at = 10;
    }
    if (masked) {
        const std::uint8_t* key = mask_pool_ + mask_next_;
        mask_next_ += kMaskSize;
        std::memcpy(out + at, key, kMaskSize);
        at += kMaskSize;
        // In place: mask_payload() masks a ragged tail with an overlapping
        // word, which would mask those bytes twice here, so whole words only.
        const std::size_t words = length / 8 * 8;
        mask_payload(out + at, out + at, words, key, 0);
        for (std::size_t i = words; i < length; ++i) {
            out[at + i] = static_cast<std::uint8_t>(out[at + i] ^ key[i % kMaskSize]);
        }
    }
    tx_end_ += at + length;
    ++counters_.frames_sent;
    ++counters_.messages_compressed;
    counters_.compress_bytes_in += total;
    counters_.compress_bytes_out += length;
    last_error_ = WsStatus::kOk;
    return true;
}

bool WsStream::queue_message(WsOpcode type, const std::uint8_t* data, std::size_t size) {
    if (!check_queue_preconditions()) {
        return false;
    }
    if ((type != WsOpcode::kText && type != WsOpcode::kBinary) || (data == nullptr && size != 0)) {
        last_error_ = WsStatus::kProtocolError;
        return false;
    }
    if (deflater_ != nullptr && size >= deflate_threshold_) {
        if (queue_compressed(type, nullptr, 0, data, size) ||
            last_error_ == WsStatus::kEntropyFailure) {
            return last_error_ == WsStatus::kOk;
        }
    }
    return queue_frame(type, data, size);
}

bool WsStream::queue_message_parts(WsOpcode type, const std::uint8_t* prefix,
                                   std::size_t prefix_size, const std::uint8_t* data,
                                   std::size_t size) {
    if (!check_queue_preconditions()) {
        return false;
    }
    if ((type != WsOpcode::kText && type != WsOpcode::kBinary) ||
        (prefix == nullptr && prefix_size != 0) || (data == nullptr && size != 0)) {
        last_error_ = WsStatus::kProtocolError;
        return false;
    }
    if (deflater_ != nullptr && prefix_size + size >= deflate_threshold_) {
        if (queue_compressed(type, prefix, prefix_size, data, size) ||
            last_error_ == WsStatus::kEntropyFailure) {
            return last_error_ == WsStatus::kOk;
        }
    }
    if (prefix_size == 0) {
        return queue_frame(type, data, size);
    }
    return queue_frame(type, prefix, prefix_size, data, size);
}

bool WsStream::queue_ping(const std::uint8_t* payload, std::size_t size) {
    if (!check_queue_preconditions()) {
        return false;
    }
    if (size > kMaxControlPayload || (payload == nullptr && size != 0)) {
        last_error_ = WsStatus::kProtocolError;
        return false;
    }
    return queue_frame(WsOpcode::kPing, payload, size);
}

bool WsStream::queue_close(std::uint16_t code, const char* reason) {
    if (!check_queue_preconditions()) {
        return false;
    }
    if (code == 0) {
        return queue_frame(WsOpcode::kClose, nullptr, 0);
    }
    const std::size_t reason_size = reason == nullptr ? 0 : std::strlen(reason);
    if (reason_size > kMaxControlPayload - 2) {
        last_error_ = WsStatus::kProtocolError;
        return false;
    }
    std::uint8_t payload[kMaxControlPayload];
    payload[0] = static_cast<std::uint8_t>(code >> 8);
    payload[1] = static_cast<std::uint8_t>(code & 0xFFu);
    if (reason_size != 0) {
        std::memcpy(payload + 2, reason, reason_size);
    }
    return queue_frame(WsOpcode::kClose, payload, reason_size + 2);
}

// A pong is owed only for the latest ping (RFC 6455 section 5.5.3). Queuing
// it must not disturb what last_error() says about the caller's own calls,
// except for an entropy failure, which ends the connection anyway.
bool WsStream::send_pending_pong() {
    if (!pong_owed_) {
        return true;
    }
    const WsStatus caller_error = last_error_;
    if (!queue_frame(WsOpcode::kPong, pong_payload_, pong_size_)) {
        if (last_error_ != WsStatus::kEntropyFailure) {
            last_error_ = caller_error;
        }
        return false;
    }
    last_error_ = caller_error;
    pong_owed_ = false;
    ++counters_.pings_answered;
    return true;
}

WsResult WsStream::flush() {
    if (transport_ == nullptr) {
        return WsResult{WsStatus::kNotAttached};
    }
    if (!send_pending_pong() && last_error_ == WsStatus::kEntropyFailure) {
        return WsResult{WsStatus::kEntropyFailure};
    }
    const std::size_t queued = tx_end_ - tx_begin_;
    if (queued == 0) {
        return WsResult{};
    }
    const IoResult written = transport_->write(tx_ + tx_begin_, queued);
    switch (written.status) {
        case IoStatus::kOk: {
            const std::size_t moved = written.bytes < queued ? written.bytes : queued;
            if (moved != 0) {
                ++counters_.write_calls;
                counters_.bytes_written += moved;
            }
            tx_begin_ += moved;
            if (tx_begin_ == tx_end_) {
                tx_begin_ = 0;
                tx_end_ = 0;
            }
            break;
        }
        case IoStatus::kWouldBlock:
            break;
        case IoStatus::kClosed:
            return WsResult{WsStatus::kClosed};
        case IoStatus::kError:
            return WsResult{WsStatus::kTransportError, 0, written.error};
    }
    if (!send_pending_pong() && last_error_ == WsStatus::kEntropyFailure) {
        return WsResult{WsStatus::kEntropyFailure};
    }
    return WsResult{};
}

WsResult WsStream::read_handshake(UpgradeResponseParser* parser, HandshakeStatus* status) {
    if (parser == nullptr || status == nullptr) {
        if (status != nullptr) {
            *status = HandshakeStatus::kInvalidArgument;
        }
        return WsResult{};
    }
    *status = HandshakeStatus::kNeedMore;
    if (transport_ == nullptr) {
        return WsResult{WsStatus::kNotAttached};
    }
    for (;;) {
        if (stage_begin_ == stage_end_) {
            stage_begin_ = 0;
            stage_end_ = 0;
            const IoResult read = transport_->read(stage_, kWsStagingSize);
            if (read.status == IoStatus::kClosed) {
                return WsResult{WsStatus::kClosed};
            }
            if (read.status == IoStatus::kError) {
                return WsResult{WsStatus::kTransportError, 0, read.error};
            }
            if (read.status != IoStatus::kOk || read.bytes == 0) {
                return WsResult{};
            }
            stage_end_ = read.bytes < kWsStagingSize ? read.bytes : kWsStagingSize;
            counters_.bytes_read += stage_end_;
        }
        std::size_t used = 0;
        *status = parser->feed(stage_ + stage_begin_, stage_end_ - stage_begin_, &used);
        stage_begin_ += used;
        if (*status != HandshakeStatus::kNeedMore) {
            return WsResult{};
        }
    }
}

WsResult WsStream::fail(std::uint16_t close_code) {
    rx_failure_ = WsResult{WsStatus::kProtocolError, close_code};
    context_dirty_ = true;
    return rx_failure_;
}

// Checks a frame's header, known with its first payload chunk, before any of
// its payload is stored.
WsResult WsStream::begin_frame(bool fin, std::uint8_t rsv, std::uint8_t opcode, bool masked,
                               std::uint64_t payload_length) {
    // A client must mask every frame and a server none (RFC 6455 section 5.1).
    // RSV1 (wslay's bit 2) marks a compressed message (RFC 7692): allowed only
    // when negotiated, and only on the first frame of a data message.
    const bool rsv1 = rsv == 0x4u;
    if (masked != config_.server || (rsv != 0 && !rsv1) || (rsv1 && deflater_ == nullptr)) {
        return fail(kCloseProtocolError);
    }
    if (rsv1 && opcode != static_cast<std::uint8_t>(WsOpcode::kText) &&
        opcode != static_cast<std::uint8_t>(WsOpcode::kBinary)) {
        return fail(kCloseProtocolError);
    }
    switch (static_cast<WsOpcode>(opcode)) {
        case WsOpcode::kClose:
        case WsOpcode::kPing:
        case WsOpcode::kPong:
            break;  // wslay has checked FIN and the 125-byte limit
        case WsOpcode::kContinuation:
            if (!in_message_) {
                return fail(kCloseProtocolError);
            }
            break;
        case WsOpcode::kText:
        case WsOpcode::kBinary:
            if (in_message_) {
                return fail(kCloseProtocolError);
            }
            in_message_ = true;
            message_opcode_ = opcode;
            message_size_ = 0;
            message_compressed_ = rsv1;
            text_validator_.reset();
            break;
        default:
            return fail(kCloseProtocolError);
    }
    if (!is_control(opcode) && !message_compressed_ &&
        payload_length > config_.max_message_size - message_size_) {
        return fail(kCloseTooBig);
    }
    in_frame_ = true;
    frame_fin_ = fin;
    frame_opcode_ = opcode;
    frame_length_ = payload_length;
    frame_received_ = 0;
    return WsResult{};
}

WsResult WsStream::handle_data(WsHandler& handler, const std::uint8_t* data, std::size_t size) {
    if (message_compressed_) {
        // Inflate straight into rx_, never past max_message_size.
        const bool last = frame_fin_ && frame_received_ + size == frame_length_;
        std::size_t produced = 0;
        const std::size_t room = config_.max_message_size - message_size_;
        const InflateStatus inflated =
            deflater_->inflate(data, size, last, rx_ + message_size_, room, &produced);
        if (inflated == InflateStatus::kTooBig) {
            return fail(kCloseTooBig);
        }
        if (inflated != InflateStatus::kOk) {
            return fail(kCloseInvalidData);
        }
        counters_.inflate_bytes_in += size;
        counters_.inflate_bytes_out += produced;
        if (message_opcode_ == static_cast<std::uint8_t>(WsOpcode::kText) &&
            config_.validate_utf8 && !text_validator_.feed(rx_ + message_size_, produced)) {
            return fail(kCloseInvalidData);
        }
        message_size_ += produced;
        frame_received_ += size;
        if (frame_received_ != frame_length_) {
            return WsResult{};
        }
        const WsResult ended = end_frame(handler, nullptr, 0);
        if (ended.status != WsStatus::kOk || !frame_fin_) {
            return ended;
        }
        if (message_opcode_ == static_cast<std::uint8_t>(WsOpcode::kText) &&
            config_.validate_utf8 && !text_validator_.complete()) {
            return fail(kCloseInvalidData);
        }
        in_message_ = false;
        message_compressed_ = false;
        const std::size_t message_size = message_size_;
        message_size_ = 0;
        ++counters_.messages_received;
        ++counters_.messages_inflated;
        handler.on_frame();
        handler.on_message(static_cast<WsOpcode>(message_opcode_), rx_, message_size);
        return WsResult{};
    }
    if (message_opcode_ == static_cast<std::uint8_t>(WsOpcode::kText) && config_.validate_utf8 &&
        !text_validator_.feed(data, size)) {
        return fail(kCloseInvalidData);
    }
    const bool direct = frame_direct_ && frame_fin_ && message_size_ == 0;
    if (!direct && size != 0) {
        std::memcpy(rx_ + message_size_, data, size);
        message_size_ += size;
    }
    frame_received_ += size;
    if (frame_received_ != frame_length_) {
        return WsResult{};
    }
    const WsResult ended = end_frame(handler, nullptr, 0);
    if (ended.status != WsStatus::kOk || !frame_fin_) {
        return ended;
    }
    if (message_opcode_ == static_cast<std::uint8_t>(WsOpcode::kText) && config_.validate_utf8 &&
        !text_validator_.complete()) {
        return fail(kCloseInvalidData);
    }
    in_message_ = false;
    const std::size_t message_size = direct ? size : message_size_;
    message_size_ = 0;
    ++counters_.messages_received;
    handler.on_frame();
    handler.on_message(static_cast<WsOpcode>(message_opcode_), direct ? data : rx_, message_size);
    return WsResult{};
}

// Frame bookkeeping common to every frame once its payload is complete. For a
// data frame (payload == nullptr) the handler is told by handle_data().
WsResult WsStream::end_frame(WsHandler& handler, const std::uint8_t* payload, std::size_t size) {
    in_frame_ = false;
    context_consumed_ += header_size(frame_length_, config_.server) + frame_length_;
    ++counters_.frames_received;
    switch (static_cast<WsOpcode>(frame_opcode_)) {
        case WsOpcode::kPing:
            if (size != 0) {
                std::memcpy(pong_payload_, payload, size);
            }
            pong_size_ = size;
            pong_owed_ = true;
            handler.on_frame();
            if (!send_pending_pong() && last_error_ == WsStatus::kEntropyFailure) {
                return WsResult{WsStatus::kEntropyFailure};
            }
            return WsResult{};
        case WsOpcode::kPong:
            handler.on_frame();
            handler.on_pong(payload, size);
            return WsResult{};
        case WsOpcode::kClose:
            return handle_close(handler, payload, size);
        default:
            if (!frame_fin_) {
                handler.on_frame();
            }
            return WsResult{};
    }
}

WsResult WsStream::handle_close(WsHandler& handler, const std::uint8_t* payload, std::size_t size) {
    std::uint16_t code = kCloseNoStatus;
    const std::uint8_t* reason = nullptr;
    std::size_t reason_size = 0;
    if (size == 1) {
        return fail(kCloseProtocolError);
    }
    if (size >= 2) {
        code = static_cast<std::uint16_t>((payload[0] << 8) | payload[1]);
        if (!close_code_allowed(code)) {
            return fail(kCloseProtocolError);
        }
        reason = payload + 2;
        reason_size = size - 2;
        if (config_.validate_utf8 && !is_valid_utf8(reason, reason_size)) {
            return fail(kCloseInvalidData);
        }
    }
    close_received_ = true;
    handler.on_frame();
    handler.on_close(code, reason, reason_size);
    return WsResult{};
}

WsResult WsStream::read_frames(WsHandler& handler) {
    if (transport_ == nullptr) {
        return WsResult{WsStatus::kNotAttached};
    }
    if (rx_failure_.status != WsStatus::kOk) {
        return rx_failure_;
    }
    if (!send_pending_pong() && last_error_ == WsStatus::kEntropyFailure) {
        return WsResult{WsStatus::kEntropyFailure};
    }
    while (!close_received_) {
        wslay_frame_iocb chunk{};
        input_blocked_ = false;
        const ssize_t got = wslay_frame_recv(context_of(frame_context_), &chunk);
        if (got == WSLAY_ERR_WANT_READ) {
            if (!input_blocked_) {
                continue;  // the callback delivered bytes, just not a whole header yet
            }
            if (last_read_.status == IoStatus::kClosed) {
                return WsResult{WsStatus::kClosed};
            }
            if (last_read_.status == IoStatus::kError) {
                return WsResult{WsStatus::kTransportError, 0, last_read_.error};
            }
            return WsResult{};
        }
        if (got < 0) {
            // WSLAY_ERR_PROTO: a fragmented or oversized control frame, or a
            // length not encoded in the fewest bytes.
            return fail(kCloseProtocolError);
        }
        if (!in_frame_) {
            const WsResult begun = begin_frame(chunk.fin != 0, chunk.rsv, chunk.opcode,
                                               chunk.mask != 0, chunk.payload_length);
            if (begun.status != WsStatus::kOk) {
                return begun;
            }
            frame_direct_ = chunk.data_length == chunk.payload_length;
        }
        WsResult handled;
        if (is_control(frame_opcode_)) {
            if (frame_direct_) {
                frame_received_ = chunk.data_length;
                handled = end_frame(handler, chunk.data, chunk.data_length);
            } else {
                std::memcpy(control_ + static_cast<std::size_t>(frame_received_), chunk.data,
                            chunk.data_length);
                frame_received_ += chunk.data_length;
                if (frame_received_ == frame_length_) {
                    handled = end_frame(handler, control_, static_cast<std::size_t>(frame_length_));
                }
            }
        } else {
            handled = handle_data(handler, chunk.data, chunk.data_length);
        }
        if (handled.status != WsStatus::kOk) {
            return handled;
        }
    }
    return WsResult{};
}

}  // namespace tether::net

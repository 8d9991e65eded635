// SPDX-License-Identifier: MIT
// Drives net::WsStream::read_frames with the fuzz input as the peer's bytes,
// for the fuzz_ws_stream_client and fuzz_ws_stream_server targets. The
// transport is scripted here (not the CppUTest fakes): reads hand out the
// input in chunks chosen by the input's seed, with would-block pauses in
// between, then EOF; writes take everything, so pongs and echoes go through.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fuzz_support.h"
#include "tether/net/ws_stream.h"

namespace tether::fuzz {

class ScriptedTransport final : public Transport {
  public:
    ScriptedTransport(const std::uint8_t* data, std::size_t size, std::uint32_t seed)
        : data_(data), size_(size), chunker_(seed, 300) {}

    IoResult establish() override { return IoResult::ok(0); }
    IoResult read(std::uint8_t* out, std::size_t size) override {
        if (offset_ == size_) {
            return IoResult::closed();
        }
        const std::size_t chunk = chunker_.next();
        if (chunk % 7 == 0 && !paused_) {  // a pause: the loop must come back
            paused_ = true;
            return IoResult::would_block();
        }
        paused_ = false;
        const std::size_t n = std::min({chunk, size, size_ - offset_});
        std::memcpy(out, data_ + offset_, n);
        offset_ += n;
        return IoResult::ok(n);
    }
    IoResult write(const std::uint8_t*, std::size_t size) override { return IoResult::ok(size); }
    IoResult writev(const IoSlice* slices, std::size_t count) override {
        std::size_t total = 0;
        for (std::size_t i = 0; i < count; ++i) {
            total += slices[i].size;
        }
        return IoResult::ok(total);
    }
    std::size_t pending() const override { return 0; }
    PollInterest interest(bool want_read, bool want_write) const override {
        return PollInterest{want_read, want_write};
    }
    int fd() const override { return -1; }
    void close() override {}
    bool exhausted() const { return offset_ == size_; }

  private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t offset_ = 0;
    bool paused_ = false;
    Chunker chunker_;
};

class CountingMasks final : public net::MaskSource {
  public:
    bool fill_masks(std::uint8_t* out, std::size_t size) override {
        for (std::size_t i = 0; i < size; ++i) {
            out[i] = static_cast<std::uint8_t>(next_++);
        }
        return true;
    }

  private:
    std::uint8_t next_ = 1;
};

/// Echoes every message (queue_message) so the handler-side sending path runs
/// between reads, and checks what the stream promises about sizes.
class EchoHandler final : public net::WsHandler {
  public:
    explicit EchoHandler(std::size_t max_message) : max_message_(max_message) {}
    void attach(net::WsStream* stream) { stream_ = stream; }
    void on_message(net::WsOpcode type, const std::uint8_t* data, std::size_t size) override {
        if (size > max_message_ ||
            (type != net::WsOpcode::kText && type != net::WsOpcode::kBinary)) {
            __builtin_trap();
        }
        if (size > 0) {
            (void)data[0];
            (void)data[size - 1];
        }
        (void)stream_->queue_message(type, data, size);
    }
    void on_pong(const std::uint8_t* payload, std::size_t size) override {
        if (size > net::kMaxControlPayload) {
            __builtin_trap();
        }
        if (size > 0) {
            (void)payload[size - 1];
        }
    }
    void on_close(std::uint16_t code, const std::uint8_t* reason, std::size_t size) override {
        (void)code;
        if (size > net::kMaxControlPayload) {
            __builtin_trap();
        }
        if (size > 0) {
            (void)reason[size - 1];
        }
        (void)stream_->queue_close(code == net::kCloseNoStatus ? 1000 : code);
    }

  private:
    std::size_t max_message_;
    net::WsStream* stream_ = nullptr;
};

inline int run_ws_stream(const std::uint8_t* data, std::size_t size, bool server) {
    const std::uint32_t seed = take_seed(&data, &size);
    static std::uint8_t rx[4096];
    static std::uint8_t tx[4096 + 64];
    static CountingMasks masks;
    net::WsStreamConfig config;
    config.server = server;
    config.max_message_size = 1000 + (seed >> 20);  // 1000..5095, clamped to rx
    config.validate_utf8 = (seed & 0x100u) == 0;
    net::WsStream stream(config, rx, sizeof rx, tx, sizeof tx, masks);
    ScriptedTransport transport(data, size, seed);
    if (!stream.attach(&transport)) {
        return 0;
    }
    EchoHandler handler(std::min(config.max_message_size, sizeof rx));
    handler.attach(&stream);
    // Each would-block pause ends one read_frames call; the loop comes back
    // like the poll loop does. The input runs out after at most size + 1 reads.
    for (std::size_t round = 0; round <= size + 1; ++round) {
        const net::WsResult result = stream.read_frames(handler);
        (void)stream.flush();
        if (result.status != net::WsStatus::kOk || stream.close_received()) {
            if (result.status == net::WsStatus::kProtocolError && result.close_code != 1002 &&
                result.close_code != 1007 && result.close_code != 1009) {
                __builtin_trap();
            }
            break;
        }
    }
    stream.detach();
    return 0;
}

}  // namespace tether::fuzz

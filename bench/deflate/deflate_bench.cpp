// SPDX-License-Identifier: MIT
// tether-bench-deflate [--messages=N]: N (default 20000) JSON telemetry
// messages of about 100 bytes with varying values, queued through a client
// WsStream into a counting transport, three ways: uncompressed, permessage-
// deflate with context takeover, and without (client_no_context_takeover).
// Prints one line per mode: wire bytes per message (frame headers and masks
// included) and process CPU nanoseconds per message (compression and framing
// only), then the ratios to the uncompressed mode. Window bits 15 and 12.
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "tether/deflate/zlib_deflater.h"
#include "tether/net/ws_stream.h"
#include "tether/transport.h"

namespace {

class CountingTransport final : public tether::Transport {
  public:
    tether::IoResult establish() override { return tether::IoResult::ok(0); }
    tether::IoResult writev(const tether::IoSlice* slices, std::size_t count) override {
        std::size_t total = 0;
        for (std::size_t i = 0; i < count; ++i) {
            total += slices[i].size;
        }
        return write(nullptr, total);
    }
    std::size_t pending() const override { return 0; }
    tether::PollInterest interest(bool, bool) const override { return tether::PollInterest{}; }
    int fd() const override { return -1; }
    void close() override {}
    tether::IoResult read(std::uint8_t*, std::size_t) override {
        return tether::IoResult::would_block();
    }
    tether::IoResult write(const std::uint8_t*, std::size_t size) override {
        bytes += size;
        return tether::IoResult::ok(size);
    }
    std::uint64_t bytes = 0;
};

class Masks final : public tether::net::MaskSource {
  public:
    bool fill_masks(std::uint8_t* out, std::size_t size) override {
        for (std::size_t i = 0; i < size; ++i) {
            state_ = state_ * 6364136223846793005ull + 1442695040888963407ull;
            out[i] = static_cast<std::uint8_t>(state_ >> 56);
        }
        return true;
    }

  private:
    std::uint64_t state_ = 1;
};

double cpu_ns() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_nsec);
}

std::size_t telemetry(char* out, std::size_t capacity, unsigned i) {
    // Values that drift like a sensor's: a counter, a timestamp, readings.
    const unsigned temp = 2150u + (i * 7u) % 300u;
    const unsigned hum = 40u + (i * 13u) % 30u;
    const int n = std::snprintf(out, capacity,
                                "{\"device\":\"gw-0042\",\"seq\":%u,\"ts\":%u,\"temp\":%u.%02u,"
                                "\"hum\":%u,\"volt\":%u.%03u,\"ok\":true}",
                                i, 1733500000u + i * 5u, temp / 100u, temp % 100u, hum,
                                11u + i % 2u, (i * 37u) % 1000u);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
}

struct Figures {
    double bytes_per_message;
    double ns_per_message;
};

Figures run(unsigned messages, bool compress, bool no_context_takeover, std::uint8_t bits) {
    static std::uint8_t rx[70000];
    static std::uint8_t tx[70000];
    Masks masks;
    CountingTransport transport;
    tether::net::WsStream stream(tether::net::WsStreamConfig{}, rx, sizeof rx, tx, sizeof tx,
                                 masks);
    tether::deflate::ZlibDeflater deflater(bits);
    (void)stream.attach(&transport);
    if (compress) {
        tether::net::DeflateAgreement agreement;
        agreement.active = true;
        agreement.client_no_context_takeover = no_context_takeover;
        agreement.server_no_context_takeover = no_context_takeover;
        agreement.client_max_window_bits = bits;
        agreement.server_max_window_bits = bits;
        if (!stream.enable_deflate(&deflater, agreement, 0)) {
            std::fprintf(stderr, "tether-bench-deflate: deflater refused\n");
            std::exit(1);
        }
    }
    char message[256];
    std::uint64_t payload = 0;
    const double start = cpu_ns();
    for (unsigned i = 0; i < messages; ++i) {
        const std::size_t size = telemetry(message, sizeof message, i);
        payload += size;
        if (!stream.queue_message(tether::net::WsOpcode::kText,
                                  reinterpret_cast<const std::uint8_t*>(message), size)) {
            std::fprintf(stderr, "tether-bench-deflate: queue refused\n");
            std::exit(1);
        }
        (void)stream.flush();  // one message per write, as a telemetry link sends them
    }
    const double elapsed = cpu_ns() - start;
    if (!compress) {
        std::printf("payload_bytes_per_message=%.1f\n", static_cast<double>(payload) / messages);
    }
    return Figures{static_cast<double>(transport.bytes) / messages, elapsed / messages};
}

}  // namespace

int main(int argc, char** argv) {
    unsigned messages = 20000;
    for (int i = 1; i < argc; ++i) {
        if (std::strncmp(argv[i], "--messages=", 11) == 0) {
            messages = static_cast<unsigned>(std::strtoul(argv[i] + 11, nullptr, 10));
        }
    }
    if (messages == 0) {
        std::fprintf(stderr, "usage: tether-bench-deflate [--messages=N]\n");
        return 2;
    }
    char sample[256];
    const std::size_t sample_size = telemetry(sample, sizeof sample, 12345);
    std::printf("messages=%u sample_payload_bytes=%zu\n", messages, sample_size);
    const Figures plain = run(messages, false, false, 15);
    std::printf("mode=plain window_bits=- bytes_per_message=%.1f cpu_ns_per_message=%.0f\n",
                plain.bytes_per_message, plain.ns_per_message);
    for (std::uint8_t bits : {std::uint8_t{15}, std::uint8_t{12}}) {
        for (bool nct : {false, true}) {
            const Figures f = run(messages, true, nct, bits);
            std::printf(
                "mode=%s window_bits=%u arena_bytes=%zu bytes_per_message=%.1f "
                "cpu_ns_per_message=%.0f bytes_ratio=%.3f cpu_ratio=%.1f\n",
                nct ? "deflate_no_context_takeover" : "deflate_context_takeover",
                static_cast<unsigned>(bits), tether::deflate::ZlibDeflater::arena_size(bits),
                f.bytes_per_message, f.ns_per_message,
                f.bytes_per_message / plain.bytes_per_message,
                f.ns_per_message / plain.ns_per_message);
        }
    }
    return 0;
}

// SPDX-License-Identifier: MIT
// The random source of a device: the mbedTLS CTR-DRBG seeded from the
// operating system (getrandom, through mbedTLS's platform entropy).
//
// Everything random in tether comes from here: backoff jitter, WebSocket
// mask keys, Sec-WebSocket-Key, DNS query ids, TLS. If seeding or a reseed
// fails, every call fails and the caller fails the connection: there is no
// weaker fallback. Test doubles live in tests/fakes and are never linked into
// a release build.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/net/ws_stream.h"
#include "tether/status.h"
#include "tether/transport.h"

namespace tether::port {

class Entropy final : public net::MaskSource, public RandomSource {
  public:
    Entropy();
    ~Entropy() override;
    Entropy(const Entropy&) = delete;
    Entropy& operator=(const Entropy&) = delete;

    /// Seeds the DRBG from the OS with `personalization` mixed in (may be null).
    /// Returns kOk, kInvalidArgument when `personalization` is longer than
    /// kMaxPersonalization bytes, or kUnavailable when the OS gives no entropy.
    /// Calling it again reseeds from scratch (and recovers from a failure).
    Status init(const char* personalization = nullptr);

    /// Where seed material comes from when it is not the OS: fills `size`
    /// bytes and returns 0, or returns non-zero when it has none.
    using SeedSource = int (*)(void* context, unsigned char* out, std::size_t size);

    /// Seeds the DRBG from `source` alone (a hardware RNG, or a test source
    /// that fails on purpose); the OS is not consulted, neither now nor on
    /// reseeds. It is a replacement chosen by the caller, never a fallback:
    /// init() does not call it. kOk, kInvalidArgument (null source, or
    /// personalization too long), or
    /// kUnavailable when the source fails.
    Status init_with_seed_source(SeedSource source, void* context,
                                 const char* personalization = nullptr);

    /// Mixes fresh seed material in now (the DRBG also reseeds by itself every
    /// 10,000 requests). kOk, or kUnavailable: the source failed and from
    /// then on every call fails until init() succeeds again.
    Status reseed();

    bool ready() const { return ready_; }

    /// Fills `size` bytes. kOk, or kUnavailable (not initialised, or the DRBG failed).
    Status fill(std::uint8_t* out, std::size_t size);

    /// A uniformly distributed 32-bit value from a bulk pool (refilled
    /// kPoolSize bytes at a time). *ok is false when entropy failed; the value
    /// is then 0 and must not be used.
    std::uint32_t next_u32(bool* ok);

    /// MaskSource: mask keys from the same bulk pool.
    bool fill_masks(std::uint8_t* out, std::size_t size) override;
    /// RandomSource: bytes from the same bulk pool.
    bool fill_random(std::uint8_t* out, std::size_t size) override;

    /// The mbedTLS RNG callback and its context, for mbedtls_ssl_conf_rng.
    static int rng_callback(void* context, unsigned char* out, std::size_t size);
    void* rng_context() { return this; }

    static constexpr std::size_t kPoolSize = 4096;
    static constexpr std::size_t kMaxPersonalization = 128;

  private:
    bool refill();
    Status seed(SeedSource source, void* context, const char* personalization);
    void fail_closed();
    struct State;             // mbedTLS contexts, kept out of the header
    State* state_ = nullptr;  // allocated once by init()
    bool ready_ = false;
    std::uint8_t pool_[kPoolSize];
    std::size_t pool_used_ = kPoolSize;
};

}  // namespace tether::port

// SPDX-License-Identifier: MIT
#include "tether/port/entropy.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/platform_util.h>

#include <cstring>
#include <new>

namespace tether::port {

// The DRBG and the entropy pool it seeds from. The entropy context is only
// used when seeding from the OS; a caller-chosen SeedSource replaces it.
struct Entropy::State {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
};

Entropy::Entropy() = default;

Entropy::~Entropy() {
    if (state_ != nullptr) {
        mbedtls_ctr_drbg_free(&state_->drbg);
        mbedtls_entropy_free(&state_->entropy);
        delete state_;
    }
    mbedtls_platform_zeroize(pool_, sizeof pool_);
}

Status Entropy::init(const char* personalization) {
    return seed(nullptr, nullptr, personalization);
}

Status Entropy::init_with_seed_source(SeedSource source, void* context,
                                      const char* personalization) {
    if (source == nullptr) {
        return Status::kInvalidArgument;
    }
    return seed(source, context, personalization);
}

Status Entropy::seed(SeedSource source, void* context, const char* personalization) {
    const std::size_t personalization_size =
        personalization == nullptr ? 0 : std::strlen(personalization);
    if (personalization_size > kMaxPersonalization) {
        return Status::kInvalidArgument;
    }
    fail_closed();
    if (state_ == nullptr) {
        state_ = new (std::nothrow) State;
        if (state_ == nullptr) {
            return Status::kUnavailable;
        }
    } else {
        mbedtls_ctr_drbg_free(&state_->drbg);
        mbedtls_entropy_free(&state_->entropy);
    }
    mbedtls_entropy_init(&state_->entropy);
    mbedtls_ctr_drbg_init(&state_->drbg);
    if (source == nullptr) {
        source = mbedtls_entropy_func;
        context = &state_->entropy;
    }
    const int result = mbedtls_ctr_drbg_seed(
        &state_->drbg, source, context, reinterpret_cast<const unsigned char*>(personalization),
        personalization_size);
    if (result != 0) {
        return Status::kUnavailable;
    }
    ready_ = true;
    return Status::kOk;
}

Status Entropy::reseed() {
    if (!ready_) {
        return Status::kUnavailable;
    }
    if (mbedtls_ctr_drbg_reseed(&state_->drbg, nullptr, 0) != 0) {
        fail_closed();
        return Status::kUnavailable;
    }
    return Status::kOk;
}

// Once anything failed, no byte produced before or after may be handed out:
// the pool is wiped and every call reports failure until a new init().
void Entropy::fail_closed() {
    ready_ = false;
    mbedtls_platform_zeroize(pool_, sizeof pool_);
    pool_used_ = kPoolSize;
}

Status Entropy::fill(std::uint8_t* out, std::size_t size) {
    if (!ready_) {
        return Status::kUnavailable;
    }
    while (size > 0) {
        const std::size_t chunk =
            size < MBEDTLS_CTR_DRBG_MAX_REQUEST ? size : MBEDTLS_CTR_DRBG_MAX_REQUEST;
        if (mbedtls_ctr_drbg_random(&state_->drbg, out, chunk) != 0) {
            fail_closed();
            return Status::kUnavailable;
        }
        out += chunk;
        size -= chunk;
    }
    return Status::kOk;
}

bool Entropy::refill() {
    if (fill(pool_, kPoolSize) != Status::kOk) {
        return false;
    }
    pool_used_ = 0;
    return true;
}

// Bytes leave the pool once: each is wiped as it is handed out, so the pool
// never holds a value that was already used.
bool Entropy::fill_random(std::uint8_t* out, std::size_t size) {
    if (!ready_) {
        return false;
    }
    while (size > 0) {
        if (pool_used_ == kPoolSize && !refill()) {
            return false;
        }
        const std::size_t left = kPoolSize - pool_used_;
        const std::size_t chunk = size < left ? size : left;
        std::memcpy(out, pool_ + pool_used_, chunk);
        mbedtls_platform_zeroize(pool_ + pool_used_, chunk);
        pool_used_ += chunk;
        out += chunk;
        size -= chunk;
    }
    return true;
}

bool Entropy::fill_masks(std::uint8_t* out, std::size_t size) {
    return fill_random(out, size);
}

std::uint32_t Entropy::next_u32(bool* ok) {
    std::uint8_t bytes[4];
    const bool filled = fill_random(bytes, sizeof bytes);
    if (ok != nullptr) {
        *ok = filled;
    }
    if (!filled) {
        return 0;
    }
    return static_cast<std::uint32_t>(bytes[0]) | static_cast<std::uint32_t>(bytes[1]) << 8 |
           static_cast<std::uint32_t>(bytes[2]) << 16 | static_cast<std::uint32_t>(bytes[3]) << 24;
}

int Entropy::rng_callback(void* context, unsigned char* out, std::size_t size) {
    Entropy* self = static_cast<Entropy*>(context);
    if (self == nullptr || self->fill(out, size) != Status::kOk) {
        return MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
    }
    return 0;
}

}  // namespace tether::port

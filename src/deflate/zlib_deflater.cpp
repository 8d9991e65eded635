// SPDX-License-Identifier: MIT
#include "tether/deflate/zlib_deflater.h"

#include <zlib.h>

#include <cstdlib>
#include <cstring>
#include <new>

namespace tether::deflate {

namespace {

constexpr std::size_t kAlign = 16;
// deflate_state and inflate_state and zlib's alignment: generous, measured
// below 13 KiB together on zlib 1.2.13 and 1.3.
constexpr std::size_t kStateSlack = 16 * 1024;
const std::uint8_t kTrailer[4] = {0x00, 0x00, 0xff, 0xff};

// A bump allocator over one block. zfree releases nothing; start() rewinds.
struct Arena {
    std::uint8_t* base = nullptr;
    std::size_t size = 0;
    std::size_t used = 0;
};

voidpf arena_alloc(voidpf opaque, uInt items, uInt size) {
    auto* arena = static_cast<Arena*>(opaque);
    const std::size_t bytes = static_cast<std::size_t>(items) * size;
    const std::size_t start = (arena->used + kAlign - 1) / kAlign * kAlign;
    if (start > arena->size || bytes > arena->size - start) {
        return Z_NULL;
    }
    arena->used = start + bytes;
    return arena->base + start;
}

void arena_free(voidpf, voidpf) {}

}  // namespace

struct ZlibDeflater::State {
    Arena arena;
    z_stream deflater;
    z_stream inflater;
    bool deflater_ready = false;
    bool inflater_ready = false;
    bool reset_deflater = false;  // client_no_context_takeover
    bool reset_inflater = false;  // server_no_context_takeover
};

int ZlibDeflater::mem_level(std::uint8_t window_bits) {
    return window_bits >= 15 ? 8 : (window_bits < 9 ? 2 : window_bits - 7);
}

std::size_t ZlibDeflater::arena_size(std::uint8_t window_bits) {
    if (window_bits < net::kDeflateMinWindowBits || window_bits > net::kDeflateMaxWindowBits) {
        return 0;
    }
    const std::size_t deflate_bytes =
        (std::size_t{1} << (window_bits + 2)) + (std::size_t{1} << (mem_level(window_bits) + 9));
    const std::size_t inflate_bytes = std::size_t{1} << window_bits;
    return deflate_bytes + inflate_bytes + kStateSlack;
}

ZlibDeflater::ZlibDeflater(std::uint8_t max_window_bits)
    : state_(nullptr), arena_size_(arena_size(max_window_bits)), max_window_bits_(max_window_bits) {
    if (arena_size_ == 0) {
        return;
    }
    auto* block = static_cast<std::uint8_t*>(std::malloc(arena_size_));
    state_ = block == nullptr ? nullptr : new (std::nothrow) State{};
    if (state_ == nullptr) {
        std::free(block);
        arena_size_ = 0;
        return;
    }
    state_->arena.base = block;
    state_->arena.size = arena_size_;
}

ZlibDeflater::~ZlibDeflater() {
    if (state_ != nullptr) {
        std::free(state_->arena.base);
        delete state_;
    }
}

bool ZlibDeflater::start(const net::DeflateAgreement& agreement) {
    if (state_ == nullptr) {
        return false;
    }
    State& s = *state_;
    // Nothing is freed into the arena, so forget both streams and rewind it.
    s.deflater_ready = false;
    s.inflater_ready = false;
    s.arena.used = 0;
    const int deflate_bits = agreement.client_max_window_bits;
    const int inflate_bits =
        agreement.server_max_window_bits < 9 ? 9 : agreement.server_max_window_bits;
    if (deflate_bits < 9 || deflate_bits > max_window_bits_ || inflate_bits > max_window_bits_) {
        return false;
    }
    std::memset(&s.deflater, 0, sizeof s.deflater);
    std::memset(&s.inflater, 0, sizeof s.inflater);
    s.deflater.zalloc = arena_alloc;
    s.deflater.zfree = arena_free;
    s.deflater.opaque = &s.arena;
    s.inflater.zalloc = arena_alloc;
    s.inflater.zfree = arena_free;
    s.inflater.opaque = &s.arena;
    // The arena was sized for the max window's memLevel: use the same one.
    if (deflateInit2(&s.deflater, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -deflate_bits,
                     mem_level(max_window_bits_), Z_DEFAULT_STRATEGY) != Z_OK) {
        return false;
    }
    s.deflater_ready = true;
    if (inflateInit2(&s.inflater, -inflate_bits) != Z_OK) {
        return false;
    }
    s.inflater_ready = true;
    s.reset_deflater = agreement.client_no_context_takeover;
    s.reset_inflater = agreement.server_no_context_takeover;
    return true;
}

bool ZlibDeflater::compress(const std::uint8_t* prefix, std::size_t prefix_size,
                            const std::uint8_t* data, std::size_t size, std::uint8_t* out,
                            std::size_t capacity, std::size_t* written) {
    *written = 0;
    if (state_ == nullptr || !state_->deflater_ready) {
        return false;
    }
    z_stream& z = state_->deflater;
    z.next_out = out;
    z.avail_out = static_cast<uInt>(capacity);
    const std::uint8_t* parts[2] = {prefix, data};
    const std::size_t sizes[2] = {prefix_size, size};
    bool ok = true;
    for (int i = 0; i < 2 && ok; ++i) {
        z.next_in = const_cast<Bytef*>(parts[i]);
        z.avail_in = static_cast<uInt>(sizes[i]);
        const int flush = i == 1 ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        if (sizes[i] == 0 && flush == Z_NO_FLUSH) {
            continue;
        }
        const int rc = ::deflate(&z, flush);
        ok = (rc == Z_OK || rc == Z_BUF_ERROR) && z.avail_in == 0 &&
             (flush == Z_NO_FLUSH || z.avail_out != 0);
    }
    const std::size_t length = capacity - z.avail_out;
    if (!ok || length < 4 || std::memcmp(out + length - 4, kTrailer, 4) != 0) {
        (void)deflateReset(&z);
        return false;
    }
    *written = length - 4;
    if (state_->reset_deflater) {
        (void)deflateReset(&z);
    }
    return true;
}

net::InflateStatus ZlibDeflater::inflate(const std::uint8_t* in, std::size_t size, bool final,
                                         std::uint8_t* out, std::size_t capacity,
                                         std::size_t* produced) {
    *produced = 0;
    if (state_ == nullptr || !state_->inflater_ready) {
        return net::InflateStatus::kCorrupt;
    }
    z_stream& z = state_->inflater;
    z.next_out = out;
    z.avail_out = static_cast<uInt>(capacity);
    // With the output full, one probe byte tells whether more would come out
    // (a decompression bomb) or zlib only consumed input (headers, an empty
    // block, the trailer).
    const auto full_and_more = [&z]() {
        std::uint8_t probe = 0;
        Bytef* saved = z.next_out;
        z.next_out = &probe;
        z.avail_out = 1;
        (void)::inflate(&z, Z_SYNC_FLUSH);
        const bool more = z.avail_out == 0;
        z.next_out = saved;
        z.avail_out = 0;
        return more;
    };
    const std::uint8_t* parts[2] = {in, kTrailer};
    const std::size_t sizes[2] = {size, final ? sizeof kTrailer : 0};
    for (int i = 0; i < 2; ++i) {
        z.next_in = const_cast<Bytef*>(parts[i]);
        z.avail_in = static_cast<uInt>(sizes[i]);
        while (z.avail_in > 0) {
            if (z.avail_out == 0) {
                const uInt before = z.avail_in;
                if (full_and_more()) {
                    *produced = capacity;
                    return net::InflateStatus::kTooBig;
                }
                if (z.avail_in == before) {
                    break;
                }
                continue;
            }
            const int rc = ::inflate(&z, Z_SYNC_FLUSH);
            if (rc == Z_STREAM_END) {
                // A block with BFINAL set (RFC 7692 section 7.2.3.4 allows it): the
                // next bytes, if any, start a new DEFLATE stream.
                (void)inflateReset(&z);
                continue;
            }
            if (rc != Z_OK && rc != Z_BUF_ERROR) {
                *produced = capacity - z.avail_out;
                (void)inflateReset(&z);
                return net::InflateStatus::kCorrupt;
            }
            if (rc == Z_BUF_ERROR && z.avail_out != 0) {
                break;  // no progress possible
            }
        }
    }
    if (final && z.avail_out == 0 && full_and_more()) {
        *produced = capacity;
        return net::InflateStatus::kTooBig;
    }
    *produced = capacity - z.avail_out;
    if (final && state_->reset_inflater) {
        (void)inflateReset(&z);
    }
    return net::InflateStatus::kOk;
}

}  // namespace tether::deflate

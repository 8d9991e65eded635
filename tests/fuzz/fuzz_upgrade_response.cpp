// SPDX-License-Identifier: MIT
// net::UpgradeResponseParser::feed over the input in random chunkings, with
// the accept value of the RFC 6455 example key and two offered subprotocols.
#include <cstddef>
#include <cstdint>

#include "fuzz_support.h"
#include "tether/net/ws_handshake.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tether::net;
    const std::uint32_t seed = tether::fuzz::take_seed(&data, &size);
    static const char* const kProtocols[] = {"tether.v1", "chat"};
    UpgradeResponseParser parser("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", kProtocols, 2, (seed & 1u) != 0);
    tether::fuzz::Chunker chunker(seed, 97);
    std::size_t offset = 0;
    HandshakeStatus status = HandshakeStatus::kNeedMore;
    while (offset < size && status == HandshakeStatus::kNeedMore) {
        const std::size_t chunk = std::min(chunker.next(), size - offset);
        std::size_t consumed = 0;
        status = parser.feed(data + offset, chunk, &consumed);
        if (consumed > chunk) {
            __builtin_trap();
        }
        offset += consumed;
        if (status == HandshakeStatus::kNeedMore && consumed != chunk) {
            __builtin_trap();
        }
    }
    std::size_t consumed = 1;
    if (status != HandshakeStatus::kNeedMore &&
        (parser.feed(data, size, &consumed) != status || consumed != 0)) {
        __builtin_trap();  // a final result must be sticky
    }
    if (parser.retry_after_seconds() > kMaxRetryAfterSeconds) {
        __builtin_trap();
    }
    return 0;
}

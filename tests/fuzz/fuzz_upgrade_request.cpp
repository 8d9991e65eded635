// SPDX-License-Identifier: MIT
// net::UpgradeRequestParser::feed (the server side of the handshake) over the
// input in random chunkings, then every accessor of a parsed request.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fuzz_support.h"
#include "tether/net/ws_server_handshake.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tether::net;
    const std::uint32_t seed = tether::fuzz::take_seed(&data, &size);
    static UpgradeRequestParser parser;  // 8 KiB: not on the stack of every run
    parser.reset();
    tether::fuzz::Chunker chunker(seed, 131);
    std::size_t offset = 0;
    RequestStatus status = RequestStatus::kNeedMore;
    while (offset < size && status == RequestStatus::kNeedMore) {
        const std::size_t chunk = std::min(chunker.next(), size - offset);
        std::size_t consumed = 0;
        status = parser.feed(data + offset, chunk, &consumed);
        if (consumed > chunk) {
            __builtin_trap();
        }
        offset += consumed;
    }
    if (status == RequestStatus::kOk) {
        if (parser.target() == nullptr || parser.host() == nullptr ||
            std::strlen(parser.key()) != 24) {
            __builtin_trap();
        }
        (void)parser.offers_subprotocol("tether.v1");
        (void)parser.has_subprotocols();
        if (parser.bearer_token() != nullptr) {
            (void)std::strlen(parser.bearer_token());
        }
        if (parser.traceparent() != nullptr && std::strlen(parser.traceparent()) != 55) {
            __builtin_trap();
        }
    }
    (void)status_for(status);
    (void)to_string(status);
    return 0;
}

// SPDX-License-Identifier: MIT
// net::ConnectResponseParser::feed over the input in random chunkings, and
// net::no_proxy_matches over the same bytes as a list.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "tether/net/http_proxy.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tether::net;
    const std::uint32_t seed = tether::fuzz::take_seed(&data, &size);
    ConnectResponseParser parser;
    tether::fuzz::Chunker chunker(seed, 97);
    std::size_t offset = 0;
    ConnectResult result = ConnectResult::kNeedMore;
    const bool respect_wanted = (seed & 1u) != 0;
    while (offset < size && result == ConnectResult::kNeedMore) {
        std::size_t chunk = std::min(chunker.next(), size - offset);
        const std::size_t wanted = parser.bytes_wanted();
        if (wanted < 1 || wanted > 4) {
            __builtin_trap();
        }
        if (respect_wanted && chunk > wanted) {
            chunk = wanted;
        }
        std::size_t consumed = 0;
        result = parser.feed(data + offset, chunk, &consumed);
        if (consumed > chunk || (result == ConnectResult::kNeedMore && consumed != chunk)) {
            __builtin_trap();
        }
        if (respect_wanted && result != ConnectResult::kNeedMore && consumed != chunk &&
            result == ConnectResult::kEstablished) {
            __builtin_trap();  // reading bytes_wanted() never passes the block
        }
        offset += consumed;
    }
    if (offset > kMaxConnectResponse + 1) {
        __builtin_trap();
    }
    std::size_t consumed = 1;
    if (result != ConnectResult::kNeedMore && (parser.feed(data, size, &consumed) != result ||
                                               consumed != 0 || parser.bytes_wanted() != 0)) {
        __builtin_trap();  // a final result must be sticky
    }
    const std::string list(reinterpret_cast<const char*>(data), size);
    (void)no_proxy_matches(list.c_str(), "gw.example.com", 443);
    (void)no_proxy_matches(list.c_str(), "::1", 443);
    return 0;
}

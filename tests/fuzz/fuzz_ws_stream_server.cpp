// SPDX-License-Identifier: MIT
// net::WsStream::read_frames as a server: the input is what a client sends.
#include <cstddef>
#include <cstdint>

#include "ws_stream_driver.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return tether::fuzz::run_ws_stream(data, size, true);
}

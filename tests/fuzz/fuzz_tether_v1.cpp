// SPDX-License-Identifier: MIT
// tether.v1 messages: the input as a control message (JSON text), as a binary
// DATA/ACK message, and as a close reason carrying retry-after.
#include <cstddef>
#include <cstdint>

#include "tether/net/tether_v1.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tether::net::v1;
    Control control{};
    if (parse_control(data, size, &control) == V1Status::kOk) {
        char out[1024];
        std::size_t length = 0;
        if (control.type == ControlType::kHello) {
            (void)write_hello(control.hello, out, sizeof out, &length);
        } else if (control.type == ControlType::kWelcome) {
            (void)write_welcome(control.welcome, out, sizeof out, &length);
        } else if (control.type == ControlType::kGap) {
            (void)write_gap(control.gap, out, sizeof out, &length);
        } else if (control.type == ControlType::kError) {
            (void)write_error(control.error, out, sizeof out, &length);
        }
        if (length > sizeof out) {
            __builtin_trap();
        }
    }
    BinaryMessage message{};
    (void)decode_binary(data, size, &message);
    // As an uplink receiver that negotiated "age": the 14-byte header path.
    if (decode_binary(data, size, &message, kFeatureAge) == V1Status::kOk &&
        message.payload != nullptr && message.payload + message.payload_size != data + size) {
        __builtin_trap();
    }
    std::uint32_t seconds = 0;
    (void)parse_retry_after_reason(data, size, &seconds);
    return 0;
}

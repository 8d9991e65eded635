// SPDX-License-Identifier: MIT
#include "support/client_frames.h"

#include <CppUTest/TestHarness.h>

namespace tether::test {

std::vector<ClientFrame> client_frames(const std::string& bytes) {
    std::vector<ClientFrame> frames;
    std::size_t at = bytes.find("\r\n\r\n");
    at = at == std::string::npos ? 0 : at + 4;
    while (at + 6 <= bytes.size()) {
        const auto b0 = static_cast<std::uint8_t>(bytes[at]);
        const auto b1 = static_cast<std::uint8_t>(bytes[at + 1]);
        CHECK_TEXT((b1 & 0x80u) != 0, "client frame not masked");
        std::size_t length = b1 & 0x7Fu;
        std::size_t header = 2;
        if (length == 126) {
            length = static_cast<std::size_t>(static_cast<std::uint8_t>(bytes[at + 2]) << 8 |
                                              static_cast<std::uint8_t>(bytes[at + 3]));
            header = 4;
        } else if (length == 127) {
            length = 0;
            for (int i = 0; i < 8; ++i) {
                length = length << 8 |
                         static_cast<std::uint8_t>(bytes[at + 2 + static_cast<std::size_t>(i)]);
            }
            header = 10;
        }
        const std::size_t mask_at = at + header;
        if (mask_at + 4 + length > bytes.size()) {
            break;
        }
        std::string payload = bytes.substr(mask_at + 4, length);
        for (std::size_t i = 0; i < payload.size(); ++i) {
            payload[i] = static_cast<char>(payload[i] ^ bytes[mask_at + (i % 4)]);
        }
        frames.push_back(ClientFrame{b0 & 0x0Fu, payload});
        at = mask_at + 4 + length;
    }
    return frames;
}

std::string server_frame(unsigned opcode, const std::string& payload) {
    std::string frame;
    frame += static_cast<char>(0x80u | opcode);
    if (payload.size() < 126) {
        frame += static_cast<char>(payload.size());
    } else {
        frame += static_cast<char>(126);
        frame += static_cast<char>((payload.size() >> 8) & 0xFF);
        frame += static_cast<char>(payload.size() & 0xFF);
    }
    return frame + payload;
}

}  // namespace tether::test

// SPDX-License-Identifier: MIT
// Decodes what a client wrote to a fake transport: the HTTP request, then
// masked frames (checked to be masked), for assertions on exact payloads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tether::test {

struct ClientFrame {
    unsigned opcode;
    std::string payload;  ///< unmasked
};

/// Frames after the first "\r\n\r\n" (or from the start when there is none).
/// Fails the current test when a frame is not masked.
std::vector<ClientFrame> client_frames(const std::string& bytes);

/// An unmasked server frame with FIN set.
std::string server_frame(unsigned opcode, const std::string& payload);

}  // namespace tether::test

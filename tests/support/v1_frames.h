// SPDX-License-Identifier: MIT
// A scripted tether.v1 server's side of a test: the 101's accept value, the
// welcome, DATA and ACK frames it sends, and the seq of a DATA the client sent.
#pragma once

#include <cstdint>
#include <string>

namespace tether::test {

/// Sec-WebSocket-Accept for the key in the client's upgrade `request`; ""
/// when the request has no key.
std::string accept_for(const std::string& request);

/// The whole 101 response for the client's upgrade `request`, selecting tether.v1.
std::string v1_upgrade_response(const std::string& request);

/// A welcome for `session` naming `last_uplink` (and, with `age`, accepting
/// the "age" extension: "features":["age"]).
std::string welcome_frame(const char* session, std::uint64_t last_uplink, bool resumed = true,
                          bool age = false);

/// A server DATA frame (downlink `seq`) and an ACK frame (uplink `seq`).
std::string data_frame(std::uint64_t seq, const std::string& payload);
std::string ack_frame(std::uint64_t seq);

/// The seq in a binary DATA or ACK payload (bytes 2..9, big-endian).
std::uint64_t seq_of(const std::string& payload);

/// A DATA the client sent, decoded as a server that accepted "age" does.
struct UplinkData {
    bool valid = false;  ///< decode_binary said kOk and it is a DATA
    std::uint64_t seq = 0;
    bool has_age = false;
    std::uint32_t age_ms = 0;
    std::string payload;
};
UplinkData uplink_data_of(const std::string& binary_payload);

}  // namespace tether::test

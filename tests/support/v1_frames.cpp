// SPDX-License-Identifier: MIT
#include "support/v1_frames.h"

#include "support/client_frames.h"
#include "tether/net/tether_v1.h"
#include "tether/net/ws_handshake.h"

namespace tether::test {

std::string accept_for(const std::string& request) {
    const std::string marker = "Sec-WebSocket-Key: ";
    const std::size_t at = request.find(marker);
    char accept[net::kWebSocketAcceptLength + 1] = {};
    if (at == std::string::npos ||
        net::compute_accept(request.substr(at + marker.size(), 24).c_str(), accept) !=
            net::HandshakeStatus::kOk) {
        return "";
    }
    return accept;
}

std::string v1_upgrade_response(const std::string& request) {
    return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Protocol: tether.v1\r\nSec-WebSocket-Accept: " +
           accept_for(request) + "\r\n\r\n";
}

std::string welcome_frame(const char* session, std::uint64_t last_uplink, bool resumed, bool age) {
    return server_frame(0x1, std::string("{\"type\":\"welcome\",\"session\":\"") + session +
                                 "\",\"resumed\":" + (resumed ? "true" : "false") +
                                 ",\"last_uplink\":" + std::to_string(last_uplink) +
                                 ",\"ack_every\":64,\"ack_interval_ms\":200" +
                                 (age ? ",\"features\":[\"age\"]" : "") + "}");
}

std::string data_frame(std::uint64_t seq, const std::string& payload) {
    std::uint8_t header[net::v1::kHeaderSize];
    net::v1::write_data_header(seq, header);
    return server_frame(0x2, std::string(reinterpret_cast<char*>(header), sizeof header) + payload);
}

std::string ack_frame(std::uint64_t seq) {
    std::uint8_t ack[net::v1::kHeaderSize];
    net::v1::write_ack(seq, ack);
    return server_frame(0x2, std::string(reinterpret_cast<char*>(ack), sizeof ack));
}

std::uint64_t seq_of(const std::string& payload) {
    std::uint64_t seq = 0;
    for (std::size_t i = 2; i < 10 && i < payload.size(); ++i) {
        seq = seq << 8 | static_cast<std::uint8_t>(payload[i]);
    }
    return seq;
}

UplinkData uplink_data_of(const std::string& binary_payload) {
    UplinkData out;
    net::v1::BinaryMessage message{};
    if (net::v1::decode_binary(reinterpret_cast<const std::uint8_t*>(binary_payload.data()),
                               binary_payload.size(), &message,
                               net::v1::kFeatureAge) != net::v1::V1Status::kOk ||
        message.kind != net::v1::Kind::kData) {
        return out;
    }
    out.valid = true;
    out.seq = message.seq;
    out.has_age = message.has_age;
    out.age_ms = message.age_ms;
    out.payload.assign(reinterpret_cast<const char*>(message.payload), message.payload_size);
    return out;
}

}  // namespace tether::test

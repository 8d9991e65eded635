// SPDX-License-Identifier: MIT
// A program built against an installed libtether-dev: an outbox (tether_core),
// a tether.v1 control parse (tether_net, cJSON), and a durable link opened by
// its POSIX owner (tether_client, tether_port_posix, mbedTLS): tether::tether
// alone must bring them all.
#include <cstdint>
#include <cstdio>
#include <cstring>

#include <tether/client.h>
#include <tether/net/tether_v1.h>
#include <tether/outbox.h>
#include <tether/port/posix_link.h>

int main() {
    static std::uint8_t storage[4096];
    tether::Outbox outbox(storage, sizeof storage, tether::OverflowPolicy::kDropOldest, 1);
    const std::uint8_t message[] = {'h', 'i'};
    std::uint64_t seq = 0;
    if (outbox.push(message, sizeof message, &seq) != tether::Status::kOk || seq != 1 ||
        outbox.size() != 1) {
        std::puts("outbox: unexpected");
        return 1;
    }
    const char json[] = "{\"type\":\"bogus\"}";
    tether::net::v1::Control control{};
    const tether::net::v1::V1Status parsed = tether::net::v1::parse_control(
        reinterpret_cast<const std::uint8_t*>(json), std::strlen(json), &control);
    tether::port::PosixLinkSettings settings;
    settings.link.client.urls[0] = "wss://127.0.0.1:9/";
    settings.link.client.url_count = 1;
    tether::port::PosixLink link(settings, nullptr);
    if (link.open() != tether::Status::kOk) {
        std::printf("link: %s\n", link.error());
        return 1;
    }
    std::printf("consumer ok: seq %llu, control %s\n", static_cast<unsigned long long>(seq),
                tether::net::v1::to_string(parsed));
    return 0;
}

// SPDX-License-Identifier: MIT
// Connect, send, reconnect forever, lose nothing: a device sending COUNT
// readings, 100 a second, over tether.v1, through any outage or restart of the server or of
// itself (the spool and the state record live in STATE_DIR). Exits once the
// server has acknowledged every reading.
//
//   forever ws://127.0.0.1:8080/v1 /var/lib/forever TOKEN_FILE 1000
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tether/port/poll_loop.h"
#include "tether/port/posix_link.h"

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: forever URL STATE_DIR TOKEN_FILE COUNT\n");
        return 2;
    }
    tether::port::PosixLinkSettings settings;
    settings.link.client.urls[0] = argv[1];
    settings.link.client.url_count = 1;
    settings.link.client.reconnect.resume_protocol = true;  // seqs, acks, resume
    settings.link.spool = true;                             // and across restarts
    settings.state_dir = argv[2];
    settings.token_file = argv[3];
    settings.device_id = "forever-example";
    tether::port::PosixLink link(settings, nullptr);
    if (link.open() != tether::Status::kOk) {
        std::fprintf(stderr, "forever: %s\n", link.error());
        return 1;
    }
    tether::port::FixedPollLoop<1> loop(&link);
    tether::TimeMs next_at = tether::port::monotonic_now();
    link.start(next_at);
    const long count = std::atol(argv[4]);
    for (long sent = 0; sent < count || !link.link().idle();) {
        if (sent < count && tether::time_reached(tether::port::monotonic_now(), next_at)) {
            const std::string reading = "reading " + std::to_string(++sent);
            (void)link.send(reinterpret_cast<const std::uint8_t*>(reading.data()), reading.size());
            next_at += 10;
        }
        loop.run_once(10);
    }
    return link.link().shutdown() == tether::Status::kOk ? 0 : 1;
}

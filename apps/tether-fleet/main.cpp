// tether-fleet: many clients on one poll loop in one thread, each sending
// numbered messages to an echo server and counting what comes back. For
// load, reconnect-storm and soak tests.
//
//   tether-fleet --clients N --messages M [--timeout-ms T] URL
//
// Prints one logfmt summary line on standard output and exits 0 when every
// client got every echo back, 1 otherwise.
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "tether/client.h"
#include "tether/port/entropy.h"
#include "tether/port/poll_loop.h"
#include "tether/port/posix_resolver.h"
#include "tether/port/posix_transport.h"

namespace {

struct Member final : tether::ClientListener {
    std::size_t received = 0;
    std::size_t connects = 0;
    void on_state(const tether::ClientEvent& event) override {
        if (event.state == tether::LinkState::kOnline) {
            ++connects;
        }
    }
    void on_message(tether::net::WsOpcode, const std::uint8_t*, std::size_t) override {
        ++received;
    }
};

// One client with its own buffers and OS resources.
struct Slot {
    Slot(const tether::ClientConfig& config, tether::port::Entropy& entropy)
        : outbox(64 * 1024),
          rx(16 * 1024),
          tx(80 * 1024),
          client(config,
                 tether::ClientBuffers{outbox.data(), outbox.size(), rx.data(), rx.size(),
                                       tx.data(), tx.size()},
                 transport, resolver, entropy, entropy, &member) {}
    std::vector<std::uint8_t> outbox, rx, tx;
    tether::port::PosixTransport transport;
    tether::port::PosixResolver resolver;
    Member member;
    tether::Client client;
};

unsigned long number(const char* text) {
    return std::strtoul(text, nullptr, 10);
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t clients = 10;
    std::size_t messages = 10;
    unsigned long timeout_ms = 30000;
    const char* url = nullptr;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--clients") == 0 && i + 1 < argc) {
            clients = number(argv[++i]);
        } else if (std::strcmp(argv[i], "--messages") == 0 && i + 1 < argc) {
            messages = number(argv[++i]);
        } else if (std::strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc) {
            timeout_ms = number(argv[++i]);
        } else if (argv[i][0] != '-' && url == nullptr) {
            url = argv[i];
        } else {
            std::fprintf(stderr,
                         "usage: tether-fleet --clients N --messages M [--timeout-ms T] URL\n");
            return 2;
        }
    }
    if (url == nullptr || clients == 0) {
        std::fprintf(stderr, "usage: tether-fleet --clients N --messages M [--timeout-ms T] URL\n");
        return 2;
    }
    // Each client holds one socket (and a DNS socket while resolving).
    struct rlimit limit {};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }

    tether::port::Entropy entropy;
    if (entropy.init("tether-fleet") != tether::Status::kOk) {
        std::fprintf(stderr, "tether-fleet: no entropy\n");
        return 1;
    }
    tether::ClientConfig config;
    config.urls[0] = url;
    config.url_count = 1;
    config.ws.max_message_size = 16 * 1024;

    std::vector<std::unique_ptr<Slot>> slots;
    std::vector<tether::Client*> pointers(clients);
    std::vector<struct pollfd> fds(clients * tether::Client::kMaxPollRequests +
                                   tether::port::PollLoop::kMaxWatches);
    tether::port::PollLoop loop(pointers.data(), clients, fds.data(), fds.size());
    const tether::TimeMs start = tether::port::monotonic_now();
    for (std::size_t i = 0; i < clients; ++i) {
        slots.push_back(std::make_unique<Slot>(config, entropy));
        if (slots.back()->client.init() != tether::Status::kOk) {
            std::fprintf(stderr, "tether-fleet: %s\n", slots.back()->client.config_error());
            return 2;
        }
        for (std::size_t m = 0; m < messages; ++m) {
            char text[64];
            const int length = std::snprintf(text, sizeof text, "client-%zu-message-%zu", i, m);
            (void)slots.back()->client.send(reinterpret_cast<const std::uint8_t*>(text),
                                            static_cast<std::size_t>(length));
        }
        loop.add(&slots.back()->client);
        slots.back()->client.start(start);
    }

    auto complete = [&] {
        for (const auto& slot : slots) {
            if (slot->member.received < messages) {
                return false;
            }
        }
        return true;
    };
    while (!complete() && tether::time_since(tether::port::monotonic_now(), start) < timeout_ms) {
        loop.run_once(100);
    }
    std::size_t received = 0;
    std::size_t connects = 0;
    std::size_t online = 0;
    for (const auto& slot : slots) {
        received += slot->member.received;
        connects += slot->member.connects;
        online += slot->client.state() == tether::LinkState::kOnline ? 1u : 0u;
    }
    std::printf(
        "clients=%zu online=%zu connects=%zu sent=%zu received=%zu elapsed_ms=%u polls=%llu\n",
        clients, online, connects, clients * messages, received,
        static_cast<unsigned>(tether::time_since(tether::port::monotonic_now(), start)),
        static_cast<unsigned long long>(loop.polls()));
    return received == clients * messages ? 0 : 1;
}

// SPDX-License-Identifier: MIT
// tether-bench-tether: the make bench workload through libtether. Connects,
// sends --count text messages of --size bytes as fast as the library takes
// them, closes with 1000, waits for the server's close reply and exits.
//
//   tether-bench-tether --host H --port P --count N [--size 100]
//       [--outbox-kib K] [--tether-v1 --token T [--device D]]
//
// The application loop is the one a gateway runs: offer messages to the
// outbox until it is full (reject-newest), then let the poll loop drain it.
// In tether.v1 mode an outbox entry is freed only by the server's ACK, so the
// run ends when every message is acknowledged.
//
// Prints `sent=N elapsed_us=T polls=P` (T from the link coming online to the
// close reply) and exits 0, or 1 when anything failed.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "tether/client.h"
#include "tether/port/entropy.h"
#include "tether/port/poll_loop.h"
#include "tether/port/posix_resolver.h"
#include "tether/port/posix_transport.h"
#include "tether/session_id.h"

namespace {

struct Options {
    const char* host = "127.0.0.1";
    unsigned long port = 0;
    unsigned long count = 0;
    unsigned long size = 100;
    unsigned long outbox_kib = 256;
    bool tether_v1 = false;
    const char* token = nullptr;
    const char* device = "bench-device";
};

const char* const kUsage =
    "usage: tether-bench-tether --host H --port P --count N [--size 100] [--outbox-kib K]\n"
    "                           [--tether-v1 --token T [--device D]]\n";

bool parse(int argc, char** argv, Options* options) {
    for (int i = 1; i < argc; ++i) {
        const char* name = argv[i];
        const bool has_value = i + 1 < argc;
        if (std::strcmp(name, "--tether-v1") == 0) {
            options->tether_v1 = true;
        } else if (!has_value) {
            return false;
        } else if (std::strcmp(name, "--host") == 0) {
            options->host = argv[++i];
        } else if (std::strcmp(name, "--port") == 0) {
            options->port = std::strtoul(argv[++i], nullptr, 10);
        } else if (std::strcmp(name, "--count") == 0) {
            options->count = std::strtoul(argv[++i], nullptr, 10);
        } else if (std::strcmp(name, "--size") == 0) {
            options->size = std::strtoul(argv[++i], nullptr, 10);
        } else if (std::strcmp(name, "--outbox-kib") == 0) {
            options->outbox_kib = std::strtoul(argv[++i], nullptr, 10);
        } else if (std::strcmp(name, "--token") == 0) {
            options->token = argv[++i];
        } else if (std::strcmp(name, "--device") == 0) {
            options->device = argv[++i];
        } else {
            return false;
        }
    }
    return options->port != 0 && options->port <= 65535 && options->size != 0 &&
           options->outbox_kib != 0 && (!options->tether_v1 || options->token != nullptr);
}

std::uint64_t monotonic_us() {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<std::uint64_t>(now.tv_sec) * 1000000u +
           static_cast<std::uint64_t>(now.tv_nsec) / 1000u;
}

class BearerToken final : public tether::CredentialsProvider {
  public:
    explicit BearerToken(const char* token) : token_(token) {}
    bool authorization(char* out, std::size_t capacity) override {
        const int written = std::snprintf(out, capacity, "Bearer %s", token_);
        return written > 0 && static_cast<std::size_t>(written) < capacity;
    }
    void refresh() override {}

  private:
    const char* token_;
};

// Notes when the link opened and whether it ever failed: a benchmark must
// not hide a reconnect, so the first failure ends the run.
class Watcher final : public tether::ClientListener {
  public:
    void on_state(const tether::ClientEvent& event) override {
        if (event.state == tether::LinkState::kOnline && online_at_us == 0) {
            online_at_us = monotonic_us();
        }
        if (event.state == tether::LinkState::kWaitingToRetry ||
            event.state == tether::LinkState::kGivenUp) {
            std::fprintf(stderr, "tether-bench-tether: link failed: %s %s\n", event.reason,
                         event.detail);
            failed = true;
        }
    }
    std::uint64_t online_at_us = 0;
    bool failed = false;
};

// Where the resident memory is, for the benchmark's notes: anonymous pages
// are this process's own, file pages are shared libraries' code and data.
void print_memory() {
    std::FILE* rollup = std::fopen("/proc/self/smaps_rollup", "r");
    if (rollup == nullptr) {
        return;
    }
    char line[256];
    unsigned long rss = 0;
    unsigned long anonymous = 0;
    while (std::fgets(line, sizeof line, rollup) != nullptr) {
        std::sscanf(line, "Rss: %lu kB", &rss);
        std::sscanf(line, "Anonymous: %lu kB", &anonymous);
    }
    std::fclose(rollup);
    std::printf("rss_kib=%lu anonymous_kib=%lu\n", rss, anonymous);
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    if (!parse(argc, argv, &options)) {
        std::fputs(kUsage, stderr);
        return 2;
    }
    char url[300];
    std::snprintf(url, sizeof url, "ws://%s:%lu/", options.host, options.port);

    tether::port::Entropy entropy;
    if (entropy.init("tether-bench") != tether::Status::kOk) {
        std::fprintf(stderr, "tether-bench-tether: no entropy\n");
        return 1;
    }
    tether::ClientConfig config;
    config.urls[0] = url;
    config.url_count = 1;
    config.overflow = tether::OverflowPolicy::kRejectNewest;

    BearerToken token(options.token);
    char session_text[tether::kUuidTextLength + 1] = {};
    if (options.tether_v1) {
        tether::Uuid session{};
        if (tether::session_id_for("bench", options.device, &session) != tether::Status::kOk) {
            return 1;
        }
        tether::format_uuid(session, session_text);
        config.reconnect.resume_protocol = true;
        config.session_id = session_text;
        config.device_id = options.device;
    }

    std::vector<std::uint8_t> outbox(options.outbox_kib * 1024);
    std::vector<std::uint8_t> rx(config.ws.max_message_size);
    std::vector<std::uint8_t> tx(64 * 1024 + options.size + 14);
    std::vector<std::uint8_t> payload(options.size, 'x');

    tether::port::PosixTransport transport;
    tether::port::PosixResolver resolver;
    Watcher watcher;
    tether::Client client(config,
                          tether::ClientBuffers{outbox.data(), outbox.size(), rx.data(), rx.size(),
                                                tx.data(), tx.size()},
                          transport, resolver, entropy, entropy, &watcher,
                          options.tether_v1 ? &token : nullptr);
    if (client.init() != tether::Status::kOk) {
        std::fprintf(stderr, "tether-bench-tether: %s\n", client.config_error());
        return 2;
    }
    tether::Pollable* clients[1] = {&client};
    struct pollfd fds[tether::Client::kMaxPollRequests + tether::port::PollLoop::kMaxWatches];
    tether::port::PollLoop loop(clients, 1, fds, sizeof fds / sizeof fds[0]);
    loop.add(&client);
    client.start(tether::port::monotonic_now());

    unsigned long sent = 0;
    while (!watcher.failed && (sent < options.count || !client.idle())) {
        while (sent < options.count && client.send(tether::port::monotonic_now(), payload.data(),
                                                   payload.size()) == tether::Status::kOk) {
            ++sent;
        }
        loop.run_once(1000);
    }
    client.stop(tether::port::monotonic_now(), 1000);
    while (!watcher.failed && client.state() != tether::LinkState::kIdle) {
        loop.run_once(1000);
    }
    const std::uint64_t finished_us = monotonic_us();
    if (watcher.failed || watcher.online_at_us == 0) {
        return 1;
    }
    std::printf("sent=%lu elapsed_us=%llu polls=%llu\n", sent,
                static_cast<unsigned long long>(finished_us - watcher.online_at_us),
                static_cast<unsigned long long>(loop.polls()));
    print_memory();
    return 0;
}

// SPDX-License-Identifier: MIT
// tether-fleet: many clients on one poll loop in one thread, each sending
// numbered messages to a server and counting what comes back. For load,
// reconnect-storm and soak tests. Usage: tether-fleet --help (options.cpp).
//
// Plain mode: the server echoes, a client is done when every echo came back.
// tether.v1 mode: the server is tether-server, a client is done when every
// message is acknowledged. With --hold the fleet keeps its links up (and
// reconnects them) until SIGTERM or SIGINT, for the reconnect-storm
// benchmark (bench/storm.py), which reads the --events file.
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "cli.h"
#include "event_log.h"
#include "options.h"
#include "tether/client.h"
#include "tether/port/entropy.h"
#include "tether/port/poll_loop.h"
#include "tether/port/posix_resolver.h"
#include "tether/port/posix_transport.h"
#include "tether/session_id.h"

namespace {

using tether::LinkState;
using tether::fleet::EventLog;

volatile std::sig_atomic_t g_stop_requested = 0;

void on_stop_signal(int) {
    g_stop_requested = 1;
}

void install_stop_signals() {
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: poll() returns at once with EINTR
    (void)::sigaction(SIGTERM, &action, nullptr);
    (void)::sigaction(SIGINT, &action, nullptr);
}

class StaticToken final : public tether::CredentialsProvider {
  public:
    explicit StaticToken(const char* token) : token_(token) {}
    bool authorization(char* out, std::size_t capacity) override {
        const int length = std::snprintf(out, capacity, "Bearer %s", token_);
        return length > 0 && static_cast<std::size_t>(length) < capacity;
    }
    void refresh() override {}

  private:
    const char* token_;
};

// What the whole fleet knows: the event log and how many links are open.
struct FleetState {
    EventLog events;
    std::size_t clients = 0;
    std::size_t online = 0;
    std::size_t all_online_reports = 0;
};

struct Member final : tether::ClientListener {
    Member(std::size_t member_index, FleetState& fleet_state)
        : index(member_index), fleet(fleet_state) {}

    void on_state(const tether::ClientEvent& event) override {
        char fields[192];
        if (event.state == LinkState::kTcpConnecting) {
            // One per attempt at the server: kResolving is entered at the same
            // moment for a literal address, but also for attempts that never
            // get past the name lookup.
            fleet.events.record(index, "attempt");
        } else if (event.state == LinkState::kOnline) {
            ++connects;
            // counters().resumed has already counted this welcome.
            const std::uint64_t resumed_now = client->counters().resumed;
            std::snprintf(fields, sizeof fields, " resumed=%d", resumed_now != resumed ? 1 : 0);
            resumed = resumed_now;
            fleet.events.record(index, "online", fields);
            if (++fleet.online == fleet.clients) {
                ++fleet.all_online_reports;
                std::printf("all_online n=%zu t_ms=%.3f\n", fleet.clients,
                            tether::fleet::monotonic_ms());
                std::fflush(stdout);
            }
        } else if (event.state == LinkState::kWaitingToRetry) {
            std::snprintf(fields, sizeof fields, " delay_ms=%u reason=%s detail=%s",
                          static_cast<unsigned>(event.delay_ms),
                          event.reason[0] != '\0' ? event.reason : "-",
                          event.detail[0] != '\0' ? event.detail : "-");
            fleet.events.record(index, "retry", fields);
        } else if (event.state == LinkState::kGivenUp) {
            fleet.events.record(index, "given_up");
        }
        if (event.previous == LinkState::kOnline && event.state != LinkState::kOnline) {
            --fleet.online;
            fleet.events.record(index, "down");
        }
    }
    void on_message(tether::net::WsOpcode, const std::uint8_t*, std::size_t) override {
        ++received;
    }

    std::size_t index;
    FleetState& fleet;
    const tether::Client* client = nullptr;
    std::size_t received = 0;
    std::size_t connects = 0;
    std::uint64_t resumed = 0;
    std::uint64_t last_seq = 0;  // of the last message queued
};

// One client with its own identity, buffers and OS resources.
struct Slot {
    Slot(std::size_t index, FleetState& fleet, std::size_t outbox_bytes)
        : outbox(outbox_bytes), member(index, fleet) {}

    bool init(const tether::ClientConfig& base, tether::port::Entropy& entropy,
              tether::CredentialsProvider* credentials) {
        tether::ClientConfig config = base;
        if (config.reconnect.resume_protocol) {
            std::snprintf(device_id, sizeof device_id, "fleet-%zu", member.index);
            tether::Uuid session{};
            if (tether::session_id_for("tether", device_id, &session) != tether::Status::kOk) {
                return false;
            }
            tether::format_uuid(session, session_id);
            config.session_id = session_id;
            config.device_id = device_id;
        }
        client = std::make_unique<tether::Client>(
            config,
            tether::ClientBuffers{outbox.data(), outbox.size(), rx.data(), rx.size(), tx.data(),
                                  tx.size()},
            transport, resolver, entropy, entropy, &member, credentials, nullptr,
            config.reconnect.resume_protocol ? &persisted : nullptr);
        member.client = client.get();
        return client->init() == tether::Status::kOk;
    }

    bool done(bool tether_v1, std::size_t messages) const {
        return tether_v1 ? client->counters().uplink_acked >= member.last_seq
                         : member.received >= messages;
    }

    std::vector<std::uint8_t> outbox;
    std::vector<std::uint8_t> rx = std::vector<std::uint8_t>(16 * 1024);
    std::vector<std::uint8_t> tx = std::vector<std::uint8_t>(80 * 1024);
    tether::port::PosixTransport transport;
    tether::port::PosixResolver resolver;
    tether::PersistentState persisted;
    char device_id[32] = {};
    char session_id[tether::kUuidTextLength + 1] = {};
    Member member;
    std::unique_ptr<tether::Client> client;
};

void raise_descriptor_limit() {
    // Each client holds one socket (and a DNS socket while resolving).
    struct rlimit limit {};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        (void)::setrlimit(RLIMIT_NOFILE, &limit);
    }
}

tether::ClientConfig client_config(const tether::fleet::Options& options) {
    tether::ClientConfig config;
    config.urls[0] = options.url;
    config.url_count = 1;
    config.ws.max_message_size = 16 * 1024;
    config.reconnect.resume_protocol = options.tether_v1;
    tether::BackoffConfig& backoff = config.reconnect.backoff;
    if (options.jitter_given) {
        backoff.jitter = options.jitter;
    }
    if (options.backoff_initial_ms != 0) {
        backoff.initial_delay_ms = options.backoff_initial_ms;
    }
    if (options.backoff_max_ms != 0) {
        backoff.max_delay_ms = options.backoff_max_ms;
    }
    if (options.healthy_after_ms != 0) {
        backoff.healthy_after_ms = options.healthy_after_ms;
    }
    return config;
}

// Closes every link with 1000 and services the loop until all are down (at
// most two seconds: a server that never answers the close is not waited for).
void stop_all(std::vector<std::unique_ptr<Slot>>& slots, tether::port::PollLoop& loop) {
    const tether::TimeMs began = tether::port::monotonic_now();
    for (auto& slot : slots) {
        slot->client->stop(tether::port::monotonic_now(), 1000);
    }
    auto all_idle = [&] {
        for (const auto& slot : slots) {
            if (slot->client->state() != LinkState::kIdle) {
                return false;
            }
        }
        return true;
    };
    while (!all_idle() && tether::time_since(tether::port::monotonic_now(), began) < 2000) {
        loop.run_once(50);
    }
}

}  // namespace

int main(int argc, char** argv) {
    tether::fleet::Options options;
    char error[256];
    if (!tether::fleet::parse_options(argc, argv, &options, error, sizeof error)) {
        std::fprintf(stderr, "tether-fleet: %s\n", error);
        return tether::cli::kExitUsage;
    }
    if (options.help) {
        std::fputs(tether::fleet::usage_text(), stdout);
        return 0;
    }
    if (options.version) {
        return tether::cli::print_version("tether-fleet");
    }
    raise_descriptor_limit();
    install_stop_signals();

    FleetState fleet;
    fleet.clients = options.clients;
    if (options.events_path != nullptr && !fleet.events.open(options.events_path)) {
        std::fprintf(stderr, "tether-fleet: cannot open %s: %s\n", options.events_path,
                     std::strerror(errno));
        return 2;
    }
    tether::port::Entropy entropy;
    if (entropy.init("tether-fleet") != tether::Status::kOk) {
        std::fprintf(stderr, "tether-fleet: no entropy\n");
        return 1;
    }
    StaticToken token(options.token != nullptr ? options.token : "");
    const tether::ClientConfig config = client_config(options);

    std::vector<std::unique_ptr<Slot>> slots;
    std::vector<tether::Pollable*> pointers(options.clients);
    std::vector<struct pollfd> fds(options.clients * tether::Client::kMaxPollRequests +
                                   tether::port::PollLoop::kMaxWatches);
    tether::port::PollLoop loop(pointers.data(), options.clients, fds.data(), fds.size());
    const tether::TimeMs start = tether::port::monotonic_now();
    for (std::size_t i = 0; i < options.clients; ++i) {
        // Room for every message up front (each under 64 bytes with its entry header).
        const std::size_t outbox_bytes = std::max<std::size_t>(64 * 1024, options.messages * 64);
        slots.push_back(std::make_unique<Slot>(i, fleet, outbox_bytes));
        Slot& slot = *slots.back();
        if (!slot.init(config, entropy, options.token != nullptr ? &token : nullptr)) {
            std::fprintf(stderr, "tether-fleet: %s\n", slot.client->config_error());
            return 2;
        }
        for (std::size_t m = 0; m < options.messages; ++m) {
            char text[64];
            const int length = std::snprintf(text, sizeof text, "client-%zu-message-%zu", i, m);
            const tether::Status sent =
                slot.client->send(start, reinterpret_cast<const std::uint8_t*>(text),
                                  static_cast<std::size_t>(length), &slot.member.last_seq);
            if (sent != tether::Status::kOk) {
                // A message not in the outbox would never be waited for: the
                // run would report done with fewer messages than asked.
                std::fprintf(stderr, "tether-fleet: client %zu message %zu not queued: %s\n", i, m,
                             tether::to_string(sent));
                return 2;
            }
        }
        loop.add(slot.client.get());
        slot.client->start(start);
    }

    auto complete = [&] {
        for (const auto& slot : slots) {
            if (!slot->done(options.tether_v1, options.messages)) {
                return false;
            }
        }
        return true;
    };
    auto keep_running = [&] {
        if (options.hold) {
            return g_stop_requested == 0;
        }
        return g_stop_requested == 0 && !complete() &&
               tether::time_since(tether::port::monotonic_now(), start) < options.timeout_ms;
    };
    while (keep_running()) {
        loop.run_once(fleet.events.next_flush_in_ms());
        fleet.events.flush_if_due();
    }
    const bool all_done = complete();
    if (options.hold) {
        stop_all(slots, loop);
    }

    std::size_t received = 0;
    std::size_t connects = 0;
    std::size_t online = 0;
    std::uint64_t resumed = 0;
    for (const auto& slot : slots) {
        received += slot->member.received;
        connects += slot->member.connects;
        resumed += slot->client->counters().resumed;
        online += slot->client->state() == LinkState::kOnline ? 1u : 0u;
    }
    fleet.events.close();
    std::printf(
        "clients=%zu online=%zu connects=%zu resumed=%llu sent=%zu received=%zu elapsed_ms=%u "
        "polls=%llu\n",
        options.clients, online, connects, static_cast<unsigned long long>(resumed),
        options.clients * options.messages, received,
        static_cast<unsigned>(tether::time_since(tether::port::monotonic_now(), start)),
        static_cast<unsigned long long>(loop.polls()));
    return all_done ? 0 : 1;
}

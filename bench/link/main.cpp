// SPDX-License-Identifier: MIT
// tether-bench-link: one tether.v1 client on libtether for the link figures
// of make bench (bench/link.py).
//
//   tether-bench-link hold [options] URL
//       connect and stay connected until SIGTERM/SIGINT, logging every state
//       change (and with --log-rx every read) with its CLOCK_MONOTONIC time
//   tether-bench-link tls-reconnects --count K --resumption on|off [options] wss://...
//       connect, then K times: close, reconnect, wait for online; print the
//       CPU spent over the K reconnects and how many TLS sessions resumed
//
// Output on stdout, one logfmt line per event (see link_log.h); the summary
// line of tls-reconnects starts with "event=summary".
#include <signal.h>

#include <csignal>
#include <cstdio>
#include <vector>

#include "link_log.h"
#include "options.h"
#include "tether/port/credentials.h"
#include "tether/port/entropy.h"
#include "tether/port/poll_loop.h"
#include "tether/port/posix_resolver.h"
#include "tether/session_id.h"

namespace tether::bench {
namespace {

volatile std::sig_atomic_t g_stop = 0;

extern "C" void on_signal(int) {
    g_stop = 1;
}

// Runs the loop until `done` holds, a signal arrives or `timeout_ms` passes.
template <typename Predicate>
bool run_until(port::PollLoop& loop, Predicate done, std::uint32_t timeout_ms) {
    const TimeMs start = port::monotonic_now();
    while (!done()) {
        if (g_stop != 0 || time_since(port::monotonic_now(), start) >= timeout_ms) {
            return false;
        }
        loop.run_once(50);
    }
    return true;
}

int hold(Client& client, port::PollLoop& loop) {
    client.start(port::monotonic_now());
    while (g_stop == 0) {
        loop.run_once(1000);
    }
    std::printf("t_us=%llu event=exit\n", static_cast<unsigned long long>(monotonic_us()));
    return 0;
}

int tls_reconnects(const Options& options, Client& client, port::PollLoop& loop, LinkLog& log) {
    constexpr std::uint32_t kStepTimeoutMs = 20000;
    // Online and healthy: with --healthy-after 0 the attempt counter resets at
    // once, so the next start() connects without a backoff delay.
    auto online = [&] {
        return client.state() == LinkState::kOnline && client.machine().attempts() == 0;
    };
    auto idle = [&] { return client.state() == LinkState::kIdle; };
    client.start(port::monotonic_now());
    if (!run_until(loop, online, kStepTimeoutMs)) {
        std::fprintf(stderr, "tether-bench-link: never came online\n");
        return 1;
    }
    log.reset_tls_totals();
    double user_before = 0;
    double system_before = 0;
    self_rusage(&user_before, &system_before);
    const double server_before =
        options.server_pid > 0 ? other_process_cpu_s(options.server_pid) : -1;
    const std::uint64_t started_us = monotonic_us();
    for (std::uint32_t i = 0; i < options.count; ++i) {
        client.stop(port::monotonic_now(), 1000);
        if (!run_until(loop, idle, kStepTimeoutMs)) {
            std::fprintf(stderr, "tether-bench-link: close %u did not finish\n", i + 1);
            return 1;
        }
        client.start(port::monotonic_now());
        if (!run_until(loop, online, kStepTimeoutMs)) {
            std::fprintf(stderr, "tether-bench-link: reconnect %u never came online\n", i + 1);
            return 1;
        }
    }
    const std::uint64_t ended_us = monotonic_us();
    double user_after = 0;
    double system_after = 0;
    self_rusage(&user_after, &system_after);
    const double server_after =
        options.server_pid > 0 ? other_process_cpu_s(options.server_pid) : -1;
    const bool server_known = server_before >= 0 && server_after >= 0;
    std::printf(
        "event=summary count=%u resumption=%s handshakes=%u resumed=%u user_s=%.6f "
        "system_s=%.6f cpu_s=%.6f tls_cpu_s=%.6f tls_wall_s=%.6f wall_s=%.6f server_cpu_s=%.6f\n",
        options.count, options.tls.session_resumption ? "on" : "off", log.tls_handshakes(),
        log.tls_resumed(), user_after - user_before, system_after - system_before,
        (user_after - user_before) + (system_after - system_before), log.tls_cpu_s(),
        log.tls_wall_s(), static_cast<double>(ended_us - started_us) / 1e6,
        server_known ? server_after - server_before : -1.0);
    client.stop(port::monotonic_now(), 1000);
    (void)run_until(loop, idle, 2000);
    return log.tls_handshakes() == options.count ? 0 : 1;
}

int run(int argc, char** argv) {
    static Options options;
    if (!parse_options(argc, argv, &options)) {
        return 2;
    }
    struct sigaction action {};
    action.sa_handler = on_signal;
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    static port::Entropy entropy;
    if (entropy.init("tether-bench-link") != Status::kOk) {
        std::fprintf(stderr, "tether-bench-link: no entropy\n");
        return 1;
    }
    static port::TlsContext tls;
    if (tls.init(options.tls, entropy) != Status::kOk) {
        std::fprintf(stderr, "tether-bench-link: TLS setup: %s\n", tls.error_text());
        return 2;
    }
    Uuid session{};
    if (session_id_for(options.user, options.device_id, &session) != Status::kOk) {
        std::fprintf(stderr, "tether-bench-link: cannot derive the session id\n");
        return 2;
    }
    static char session_text[kUuidTextLength + 1];
    format_uuid(session, session_text);
    options.client.session_id = session_text;
    options.client.device_id = options.device_id;
    options.client.ws.max_message_size = 16 * 1024;

    std::vector<std::uint8_t> outbox(64 * 1024), rx(16 * 1024), tx(80 * 1024);
    static port::PosixTransport transport(&tls);
    static RecordingConnection connection(transport, options.log_rx);
    static port::PosixResolver resolver;
    static port::TokenFileCredentials credentials(options.token_file);
    static PersistentState persisted;
    static LinkLog log(transport);
    static Client client(
        options.client,
        ClientBuffers{outbox.data(), outbox.size(), rx.data(), rx.size(), tx.data(), tx.size()},
        connection, resolver, entropy, entropy, &log,
        options.token_file != nullptr ? &credentials : nullptr, nullptr, &persisted);
    if (client.init() != Status::kOk) {
        std::fprintf(stderr, "tether-bench-link: %s\n", client.config_error());
        return 2;
    }
    log.attach(&client);
    Pollable* clients[1];
    struct pollfd fds[Client::kMaxPollRequests + port::PollLoop::kMaxWatches];
    port::PollLoop loop(clients, 1, fds, sizeof fds / sizeof fds[0]);
    loop.add(&client);
    std::printf("t_us=%llu event=start session=%s\n",
                static_cast<unsigned long long>(monotonic_us()), session_text);
    std::fflush(stdout);
    return options.mode == Mode::kHold ? hold(client, loop)
                                       : tls_reconnects(options, client, loop, log);
}

}  // namespace
}  // namespace tether::bench

int main(int argc, char** argv) {
    return tether::bench::run(argc, argv);
}

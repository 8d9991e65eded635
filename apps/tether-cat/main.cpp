// tether-cat: standard input to a WebSocket server and back, reconnecting
// through every fault. See --help.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "options.h"
#include "tether/client.h"
#include "tether/port/credentials.h"
#include "tether/port/device_identity.h"
#include "tether/port/entropy.h"
#include "tether/port/file_storage.h"
#include "tether/port/poll_loop.h"
#include "tether/port/posix_resolver.h"
#include "tether/port/posix_transport.h"
#include "tether/session_id.h"

namespace tether::cat {
namespace {

int g_signal_pipe[2] = {-1, -1};

extern "C" void on_signal(int) {
    const int saved = errno;
    const char byte = 1;
    (void)::write(g_signal_pipe[1], &byte, 1);
    errno = saved;
}

bool set_nonblocking(int fd) {
    const int flags = ::fcntl(fd, F_GETFL, 0);
    return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

// Seconds since start, for log lines: monotonic, so it means something on a
// device without a real-time clock.
double seconds_since(TimeMs start) {
    return static_cast<double>(time_since(port::monotonic_now(), start)) / 1000.0;
}

class Cat final : public ClientListener, public port::FdWatcher {
  public:
    Cat(const Options& options, TimeMs start, std::uint8_t* line)
        : options_(options), start_(start), line_(line) {}

    void attach(Client* client, port::PollLoop* loop, port::TokenCommandCredentials* command) {
        client_ = client;
        loop_ = loop;
        command_ = command;
    }

    void on_state(const ClientEvent& e) override {
        if (e.state == LinkState::kOnline) {
            was_online_ = true;
        }
        if (e.state == LinkState::kTlsHandshake && options_.tls.insecure && !options_.quiet) {
            std::fprintf(stderr,
                         "t=%.3f level=warn event=insecure msg=\"TLS verification is off: "
                         "the server is not authenticated\"\n",
                         seconds_since(start_));
        }
        const bool phase =
            e.state == LinkState::kTcpConnecting || e.state == LinkState::kTlsHandshake ||
            e.state == LinkState::kWsHandshake || e.state == LinkState::kSessionResume;
        const bool problem =
            e.state == LinkState::kWaitingToRetry || e.state == LinkState::kGivenUp;
        if (options_.quiet && e.state != LinkState::kGivenUp) {
            return;
        }
        if (phase && !options_.verbose) {
            return;
        }
        std::fprintf(stderr, "t=%.3f level=%s event=state state=%s previous=%s url=%s attempt=%u",
                     seconds_since(start_),
                     e.state == LinkState::kGivenUp ? "error" : (problem ? "warn" : "info"),
                     to_string(e.state), to_string(e.previous), options_.client.urls[e.endpoint],
                     static_cast<unsigned>(e.attempt));
        if (e.state == LinkState::kWaitingToRetry) {
            std::fprintf(stderr, " delay_ms=%u", static_cast<unsigned>(e.delay_ms));
        }
        if (problem && e.reason[0] != '\0') {
            std::fprintf(stderr, " reason=%s", e.reason);
        }
        if (problem && e.detail[0] != '\0') {
            std::fprintf(stderr, " detail=\"%s\"", e.detail);
        }
        std::fputc('\n', stderr);
    }

    void on_message(net::WsOpcode type, const std::uint8_t* data, std::size_t size) override {
        (void)type;
        last_message_at_ = port::monotonic_now();
        std::fwrite(data, 1, size, stdout);
        std::fputc('\n', stdout);
        std::fflush(stdout);
        if (options_.echo) {
            (void)client_->send(data, size);
        }
    }

    void on_gap(bool downlink, std::uint64_t first, std::uint64_t last) override {
        std::fprintf(stderr, "t=%.3f level=warn event=gap direction=%s first=%llu last=%llu\n",
                     seconds_since(start_), downlink ? "downlink" : "uplink",
                     static_cast<unsigned long long>(first), static_cast<unsigned long long>(last));
    }

    void on_ready(int fd, bool readable, bool writable, TimeMs now) override {
        (void)writable;
        if (command_ != nullptr && fd == command_->fd()) {
            command_->on_readable();
            return;
        }
        if (fd == g_signal_pipe[0]) {
            char drain[16];
            while (::read(fd, drain, sizeof drain) > 0) {
            }
            if (stopping_) {
                std::exit(kExitOk);  // a second signal: leave without waiting
            }
            stopping_ = true;
            client_->stop(now, 1001);
            return;
        }
        if (readable) {
            read_input(now);
        }
    }

    // Reads what standard input has, while the outbox has room for a whole
    // line: a slow link slows the reader instead of dropping lines.
    void read_input(TimeMs now) {
        (void)now;
        for (;;) {
            if (!has_room()) {
                loop_->unwatch(STDIN_FILENO);
                input_paused_ = true;
                return;
            }
            char chunk[4096];
            const ssize_t got = ::read(STDIN_FILENO, chunk, sizeof chunk);
            if (got == 0) {
                end_of_input();
                return;
            }
            if (got < 0) {
                if (errno == EINTR) {
                    continue;
                }
                if (errno != EAGAIN && errno != EWOULDBLOCK) {
                    end_of_input();
                }
                return;
            }
            for (ssize_t i = 0; i < got; ++i) {
                take(chunk[i]);
            }
        }
    }

    // Called once per loop iteration: resume input, decide whether to leave.
    bool finished(int* exit_code, TimeMs now) {
        // A token command refreshing in the background is watched while it runs.
        const int command_fd = command_ != nullptr ? command_->fd() : -1;
        if (command_fd != watched_command_fd_) {
            if (watched_command_fd_ >= 0) {
                loop_->unwatch(watched_command_fd_);
            }
            if (command_fd >= 0) {
                loop_->watch(command_fd, true, false, this);
            }
            watched_command_fd_ = command_fd;
        }
        if (input_paused_ && has_room()) {
            input_paused_ = false;
            loop_->watch(STDIN_FILENO, true, false, this);
        }
        const LinkState state = client_->state();
        if (state == LinkState::kGivenUp) {
            *exit_code = give_up_code();
            return true;
        }
        const bool input_done = input_ended_ && !options_.echo && !options_.keep_open;
        const bool lingering =
            !stopping_ && options_.linger_ms != 0 &&
            time_since(now, last_message_at_ == 0 ? input_ended_at_ : last_message_at_) <
                options_.linger_ms;
        if ((input_done || stopping_) && !stop_sent_ && client_->idle() && !lingering &&
            state != LinkState::kClosing) {
            stop_sent_ = true;
            client_->stop(now, stopping_ ? 1001 : 1000);
        }
        if ((stop_sent_ || stopping_) && client_->state() == LinkState::kIdle) {
            *exit_code = kExitOk;
            return true;
        }
        return false;
    }

    // How long the loop may wait before finished() must look again.
    std::uint32_t wait_hint_ms(TimeMs now) const {
        if (!input_ended_ || options_.linger_ms == 0) {
            return 1000;
        }
        const TimeMs since = last_message_at_ == 0 ? input_ended_at_ : last_message_at_;
        const std::uint32_t waited = time_since(now, since);
        return waited >= options_.linger_ms ? 0 : options_.linger_ms - waited;
    }

  private:
    bool has_room() const {
        if (options_.overflow_given) {
            return true;  // the overflow policy decides, not the reader
        }
        const Outbox& outbox = client_->outbox();
        return outbox.capacity() - outbox.bytes_used() >=
               options_.client.ws.max_message_size + 2 * Outbox::kEntryOverhead + 8;
    }

    void take(char c) {
        if (c == '\n') {
            emit();
            return;
        }
        if (line_length_ == options_.client.ws.max_message_size) {
            if (!line_too_long_) {
                std::fprintf(stderr,
                             "t=%.3f level=error event=input msg=\"line longer than "
                             "--max-message-size: dropped\"\n",
                             seconds_since(start_));
            }
            line_too_long_ = true;
            return;
        }
        line_[line_length_++] = static_cast<std::uint8_t>(c);
    }

    void emit() {
        if (!line_too_long_) {
            std::size_t length = line_length_;
            if (length > 0 && line_[length - 1] == '\r') {
                --length;
            }
            if (client_->send(line_, length) != Status::kOk) {
                std::fprintf(stderr, "t=%.3f level=error event=input msg=\"message refused\"\n",
                             seconds_since(start_));
            }
        }
        line_length_ = 0;
        line_too_long_ = false;
    }

    void end_of_input() {
        if (line_length_ > 0) {
            emit();
        }
        input_ended_ = true;
        input_ended_at_ = port::monotonic_now();
        loop_->unwatch(STDIN_FILENO);
    }

    int give_up_code() const {
        const char* reason = client_->machine().last_failure_reason();
        if (std::strcmp(reason, "tls_certificate_invalid") == 0) {
            return kExitTlsVerify;
        }
        if (options_.once) {
            const bool clean = std::strcmp(reason, "close_normal") == 0 ||
                               std::strcmp(reason, "close_going_away") == 0;
            return was_online_ && clean ? kExitOk : kExitConnectFailed;
        }
        return kExitGaveUp;
    }

    const Options& options_;
    TimeMs start_;
    Client* client_ = nullptr;
    port::PollLoop* loop_ = nullptr;
    port::TokenCommandCredentials* command_ = nullptr;
    int watched_command_fd_ = -1;
    std::uint8_t* line_;  // one input line: max_message_size bytes
    std::size_t line_length_ = 0;
    bool line_too_long_ = false;
    bool input_ended_ = false;
    bool input_paused_ = false;
    bool stopping_ = false;
    bool stop_sent_ = false;
    bool was_online_ = false;
    TimeMs input_ended_at_ = 0;
    TimeMs last_message_at_ = 0;
};

int run(int argc, char** argv) {
    static Options options;
    char error[256];
    if (!parse_options(argc, argv, &options, error, sizeof error)) {
        std::fprintf(stderr, "tether-cat: %s\n", error);
        return kExitUsage;
    }
    if (options.help) {
        std::fputs(usage_text(), stdout);
        return kExitOk;
    }

    if (::pipe(g_signal_pipe) != 0 || !set_nonblocking(g_signal_pipe[0]) ||
        !set_nonblocking(g_signal_pipe[1]) || !set_nonblocking(STDIN_FILENO)) {
        std::fprintf(stderr, "tether-cat: cannot set up signals and input: %s\n",
                     std::strerror(errno));
        return kExitRuntime;
    }
    struct sigaction action {};
    action.sa_handler = on_signal;
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    static port::Entropy entropy;
    if (entropy.init("tether-cat") != Status::kOk) {
        std::fprintf(stderr, "tether-cat: no entropy from the operating system\n");
        return kExitRuntime;
    }
    static port::TlsContext tls;
    bool any_tls = false;
    for (std::size_t i = 0; i < options.client.url_count; ++i) {
        any_tls = any_tls || std::strncmp(options.client.urls[i], "wss:", 4) == 0 ||
                  std::strncmp(options.client.urls[i], "WSS:", 4) == 0;
    }
    if (any_tls && tls.init(options.tls, entropy) != Status::kOk) {
        std::fprintf(stderr, "tether-cat: TLS setup: %s\n", tls.error_text());
        return kExitUsage;
    }

    // Buffers are sized once, here, from the options; nothing is allocated later.
    const std::size_t rx_size = options.client.ws.max_message_size;
    const std::size_t tx_size = options.client.ws.max_message_size + 64 * 1024;
    auto* rx = static_cast<std::uint8_t*>(std::malloc(rx_size));
    auto* tx = static_cast<std::uint8_t*>(std::malloc(tx_size));
    auto* outbox = static_cast<std::uint8_t*>(std::malloc(options.outbox_bytes));
    auto* line = static_cast<std::uint8_t*>(std::malloc(rx_size));
    if (rx == nullptr || tx == nullptr || outbox == nullptr || line == nullptr) {
        std::fprintf(stderr, "tether-cat: out of memory\n");
        return kExitRuntime;
    }
    const ClientBuffers buffers{outbox, options.outbox_bytes, rx, rx_size, tx, tx_size};

    const TimeMs start = port::monotonic_now();
    static port::PosixTransport transport(&tls);
    static port::PosixResolver resolver;
    static Cat cat(options, start, line);
    static port::TokenFileCredentials token_file(options.token_file);
    static port::TokenCommandCredentials token_command(options.token_command);
    CredentialsProvider* credentials = nullptr;
    if (options.token_command != nullptr) {
        if (token_command.fetch_now(5000) != Status::kOk) {
            std::fprintf(stderr,
                         "t=0.000 level=warn event=credentials msg=\"--token-command gave no "
                         "token; connecting without one\"\n");
        }
        credentials = &token_command;
    } else if (options.token_file != nullptr) {
        credentials = &token_file;
    }

    // tether.v1: the session identity and the persisted counters.
    static char device_id[256];
    static char session_text[kUuidTextLength + 1];
    static port::FileStorage state_file;
    static StateRecord record(state_file);
    static PersistentState persisted;
    StateRecord* record_used = nullptr;
    PersistentState* state_used = nullptr;
    if (options.tether_v1) {
        if (options.device_id != nullptr) {
            std::snprintf(device_id, sizeof device_id, "%s", options.device_id);
        } else if (port::read_machine_id(nullptr, device_id, sizeof device_id) != Status::kOk) {
            std::fprintf(stderr, "tether-cat: no /etc/machine-id: give --device-id\n");
            return kExitUsage;
        }
        Uuid session{};
        if (session_id_for(options.user, device_id, &session) != Status::kOk) {
            std::fprintf(stderr, "tether-cat: cannot derive the session id\n");
            return kExitUsage;
        }
        format_uuid(session, session_text);
        options.client.session_id = session_text;
        options.client.device_id = device_id;
        if (options.state_dir != nullptr) {
            char path[4096];
            ::mkdir(options.state_dir, 0700);
            std::snprintf(path, sizeof path, "%s/state", options.state_dir);
            if (state_file.open(path) != Status::kOk) {
                std::fprintf(stderr, "tether-cat: cannot open %s: %s\n", path,
                             std::strerror(errno));
                return kExitRuntime;
            }
            LoadSource source = LoadSource::kDefaults;
            (void)record.load(&persisted, &source);
            record_used = &record;
        }
        state_used = &persisted;
    }
    static Client client(options.client, buffers, transport, resolver, entropy, entropy, &cat,
                         credentials, record_used, state_used);
    if (client.init() != Status::kOk) {
        std::fprintf(stderr, "tether-cat: %s\n", client.config_error());
        return kExitUsage;
    }

    Client* clients[1];
    struct pollfd fds[Client::kMaxPollRequests + port::PollLoop::kMaxWatches];
    port::PollLoop loop(clients, 1, fds, sizeof fds / sizeof fds[0]);
    loop.add(&client);
    loop.watch(g_signal_pipe[0], true, false, &cat);
    loop.watch(STDIN_FILENO, true, false, &cat);
    cat.attach(&client, &loop, options.token_command != nullptr ? &token_command : nullptr);

    client.start(port::monotonic_now());
    int exit_code = kExitOk;
    while (!cat.finished(&exit_code, port::monotonic_now())) {
        loop.run_once(cat.wait_hint_ms(port::monotonic_now()));
    }
    std::fflush(stdout);
    return exit_code;
}

}  // namespace
}  // namespace tether::cat

int main(int argc, char** argv) {
    return tether::cat::run(argc, argv);
}

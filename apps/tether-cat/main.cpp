// SPDX-License-Identifier: MIT
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

#include <mbedtls/base64.h>

#include "cli.h"
#include "options.h"
#include "state_files.h"
#include "tether/net/json_document.h"
#if defined(TETHER_HAVE_DEFLATE)
#include "tether/deflate/zlib_deflater.h"
#endif
#include "tether/port/poll_loop.h"
#include "tether/port/posix_link.h"

namespace tether::cat {
namespace {

int g_signal_pipe[2] = {-1, -1};

extern "C" void on_signal(int) {
    const int saved = errno;
    const char byte = 1;
    // A full pipe (EAGAIN) already holds a wake-up; nothing else can fail
    // here, and a signal handler may not log.
    const ssize_t written = ::write(g_signal_pipe[1], &byte, 1);
    (void)written;
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

class Cat final : public DurableLinkListener, public port::FdWatcher {
  public:
    Cat(const Options& options, TimeMs start)
        : options_(options),
          start_(start),
          report_file_(options.report_file != nullptr ? options.report_file : "") {}

    // Buffers sized once from the link's limits; nothing is allocated later.
    bool attach(port::PosixLink* link, port::PollLoop* loop) {
        link_ = link;
        client_ = &link->link().client();
        loop_ = loop;
        max_line_ = link->link().max_payload();
        line_ = static_cast<std::uint8_t*>(std::malloc(max_line_ + 1));
        const std::size_t largest_in = options_.client.ws.max_message_size;
        encoded_size_ = 4 * ((largest_in + 2) / 3) + 1;
        encoded_ = static_cast<unsigned char*>(std::malloc(encoded_size_));
        desired_ = static_cast<char*>(std::malloc(net::v1::kMaxStateDocument));
        report_ = static_cast<char*>(std::malloc(kReportFileBytes));
        return line_ != nullptr && encoded_ != nullptr && desired_ != nullptr && report_ != nullptr;
    }

    // --desired-out: the change is applied by writing the file; the link is
    // told (and the server with it) only once the file is durable.
    void on_desired(const DesiredChange& change) override {
        if (options_.desired_out == nullptr) {
            return;  // only reporting: the change stays unapplied
        }
        std::memcpy(desired_, change.document, change.document_size);
        desired_size_ = change.document_size;
        desired_version_ = change.version;
        desired_pending_ = true;
        apply_desired();
    }

    void on_report_answer(const ReportAnswer& answer) override {
        if (answer.accepted) {
            stale_retried_ = false;
            if (refusals_ > 0) {
                std::fprintf(stderr,
                             "t=%.3f level=info event=report accepted=1 version=%llu "
                             "refused_before=%llu\n",
                             seconds_since(start_), static_cast<unsigned long long>(answer.version),
                             static_cast<unsigned long long>(refusals_));
                refusals_ = 0;
            } else if (options_.verbose) {
                std::fprintf(stderr, "t=%.3f level=info event=report accepted=1 version=%llu\n",
                             seconds_since(start_),
                             static_cast<unsigned long long>(answer.version));
            }
            return;
        }
        if (refusals_++ == 0) {
            std::fprintf(stderr,
                         "t=%.3f level=error event=report accepted=0 reason=%s version=%llu "
                         "msg=\"the server refused the report (later refusals are counted)\"\n",
                         seconds_since(start_), answer.reason,
                         static_cast<unsigned long long>(answer.version));
        }
        // The file is this device's truth: after another writer was first,
        // report it again once, on the version the server now has.
        if (std::strcmp(answer.reason, "stale") == 0 && !stale_retried_ &&
            options_.report_file != nullptr) {
            stale_retried_ = true;
            report_changed_ = true;  // read and reported at the next poll
        }
    }

    void on_state(const ClientEvent& e) override {
        if (e.state == LinkState::kOnline) {
            was_online_ = true;
            if (options_.compress && !options_.quiet) {
                std::fprintf(stderr, "t=%.3f level=info event=compression negotiated=%s\n",
                             seconds_since(start_),
                             client_->stream().deflate_enabled() ? "yes" : "no");
            }
        }
        if (e.state == LinkState::kTlsHandshake && options_.tls.insecure && !options_.quiet) {
            std::fprintf(stderr,
                         "t=%.3f level=warn event=insecure msg=\"TLS verification is off: "
                         "the server is not authenticated\"\n",
                         seconds_since(start_));
        }
        const bool phase =
            e.state == LinkState::kTcpConnecting || e.state == LinkState::kProxyConnect ||
            e.state == LinkState::kTlsHandshake || e.state == LinkState::kWsHandshake ||
            e.state == LinkState::kSessionResume;
        const bool problem =
            e.state == LinkState::kWaitingToRetry || e.state == LinkState::kGivenUp;
        if (options_.quiet && e.state != LinkState::kGivenUp) {
            return;
        }
        if (phase && !options_.verbose) {
            return;
        }
        std::fprintf(stderr,
                     "t=%.3f level=%s event=state state=%s previous=%s endpoint=%s attempt=%u",
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
        last_message_at_ = port::monotonic_now();
        std::size_t written = 0;
        if (type == net::WsOpcode::kBinary && options_.binary_output == BinaryOutput::kBase64 &&
            mbedtls_base64_encode(encoded_, encoded_size_, &written, data, size) == 0) {
            std::fwrite(encoded_, 1, written, stdout);
        } else {
            std::fwrite(data, 1, size, stdout);
        }
        std::fputc('\n', stdout);
        std::fflush(stdout);
        if (options_.echo) {
            // The same frame type back: a binary message is no text (RFC 6455 8.1).
            // tether.v1 carries every message as binary DATA anyway.
            if (link_->send(data, size, nullptr, type) != Status::kOk) {
                report_unsendable(size);
            }
        }
    }

    void on_refused(std::size_t size, std::size_t limit) override {
        std::fprintf(stderr,
                     "t=%.3f level=error event=input msg=\"message refused: larger than the "
                     "link can deliver\" size=%zu limit=%zu\n",
                     seconds_since(start_), size, limit);
    }

    void on_storage(const StorageEvent& event) override {
        std::fprintf(stderr, "t=%.3f level=%s event=storage what=%s error=\"%s\" msg=\"%s\"\n",
                     seconds_since(start_), event.failed ? "error" : "info",
                     event.what == StorageEvent::What::kSpool         ? "spool"
                     : event.what == StorageEvent::What::kDeviceState ? "device_state"
                                                                      : "state_record",
                     event.failed && event.error != 0 ? std::strerror(event.error) : "none",
                     event.action);
    }

    void on_gap(bool downlink, std::uint64_t first, std::uint64_t last) override {
        std::fprintf(stderr, "t=%.3f level=warn event=gap direction=%s first=%llu last=%llu\n",
                     seconds_since(start_), downlink ? "downlink" : "uplink",
                     static_cast<unsigned long long>(first), static_cast<unsigned long long>(last));
    }

    void on_ready(int fd, bool readable, bool writable, TimeMs now) override {
        (void)writable;
        if (fd == g_signal_pipe[0]) {
            char drain[16];
            while (::read(fd, drain, sizeof drain) > 0) {
            }
            if (stopping_) {
                std::exit(kExitOk);  // a second signal: leave without waiting
            }
            stopping_ = true;
            link_->link().stop(now, 1001);
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
        poll_state_files(now);
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
        const DeviceStateView device = link_->link().device_state();
        const bool report_unanswered = device.negotiated && device.report_pending;
        if ((input_done || stopping_) && !stop_sent_ && client_->idle() && !lingering &&
            (stopping_ || !report_unanswered) && state != LinkState::kClosing) {
            stop_sent_ = true;
            link_->link().stop(now, stopping_ ? 1001 : 1000);
        }
        if ((stop_sent_ || stopping_) && client_->state() == LinkState::kIdle) {
            *exit_code = refused_ > 0 ? kExitRefused : kExitOk;
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
    static constexpr std::size_t kReportFileBytes = 64 * 1024;
    static constexpr std::uint32_t kStatePollMs = 1000;

    void apply_desired() {
        if (!write_desired_file(options_.desired_out, desired_version_, desired_, desired_size_)) {
            if (!desired_failed_) {
                desired_failed_ = true;
                std::fprintf(stderr,
                             "t=%.3f level=error event=desired version=%llu file=%s error=\"%s\" "
                             "msg=\"cannot write the desired document; tried again every "
                             "second\"\n",
                             seconds_since(start_),
                             static_cast<unsigned long long>(desired_version_),
                             options_.desired_out, std::strerror(errno));
            }
            return;
        }
        if (desired_failed_) {
            desired_failed_ = false;
            std::fprintf(stderr, "t=%.3f level=info event=desired file=%s msg=\"written again\"\n",
                         seconds_since(start_), options_.desired_out);
        }
        desired_pending_ = false;
        // kIoError: the link's own record failed; it says so (on_storage)
        // and tells the server once it is saved.
        (void)link_->link().desired_applied(desired_version_);
        if (options_.verbose) {
            std::fprintf(stderr, "t=%.3f level=info event=desired version=%llu file=%s\n",
                         seconds_since(start_), static_cast<unsigned long long>(desired_version_),
                         options_.desired_out);
        }
    }

    void poll_state_files(TimeMs now) {
        if (polled_ && time_since(now, polled_at_) < kStatePollMs) {
            return;
        }
        polled_ = true;
        polled_at_ = now;
        if (desired_pending_) {
            apply_desired();
        }
        if (options_.report_file == nullptr || (!report_changed_ && !report_file_.changed())) {
            return;
        }
        report_changed_ = false;
        const long size = report_file_.read(report_, kReportFileBytes);
        const char* problem = nullptr;
        if (size < 0) {
            problem = std::strerror(errno);
        } else {
            // kIoError: accepted, and kept and retried by the link (on_storage says so).
            const Status status =
                link_->link().report(report_, static_cast<std::size_t>(size), true);
            if (status == Status::kTooLarge) {
                problem = "too large";
            } else if (status == Status::kInvalidArgument) {
                problem = "not one JSON object";
            }
        }
        if (problem == nullptr) {
            report_problem_ = false;
        } else if (!report_problem_) {
            report_problem_ = true;  // logged once until the file is good again
            std::fprintf(stderr,
                         "t=%.3f level=error event=report file=%s error=\"%s\" msg=\"not "
                         "reported: the file must hold one JSON object of at most %zu bytes "
                         "in compact form\"\n",
                         seconds_since(start_), options_.report_file, problem,
                         net::v1::kMaxStateDocument);
        }
    }

    bool has_room() const {
        if (options_.overflow_given) {
            return true;  // the overflow policy decides, not the reader
        }
        const Outbox& outbox = client_->outbox();
        return outbox.capacity() - outbox.bytes_used() >=
               max_line_ + 2 * Outbox::kEntryOverhead + 8;
    }

    void take(char c) {
        if (c == '\n') {
            emit();
            return;
        }
        if (line_length_ == max_line_ + 1) {
            // One byte past the limit (a trailing CR may still come off):
            // the rest of the line is not kept, and the line is refused.
            line_too_long_ = true;
            ++line_overflow_;
            return;
        }
        line_[line_length_++] = static_cast<std::uint8_t>(c);
    }

    void emit() {
        std::size_t length = line_length_ + line_overflow_;
        if (!line_too_long_ && length > 0 && line_[length - 1] == '\r') {
            --length;
        }
        const Status status = line_too_long_ ? Status::kTooLarge : link_->send(line_, length);
        if (status == Status::kTooLarge) {
            ++refused_;
            if (line_too_long_) {
                on_refused(length, max_line_);
            }
        } else if (status != Status::kOk) {
            report_unsendable(length);
        }
        line_length_ = 0;
        line_overflow_ = 0;
        line_too_long_ = false;
    }

    void report_unsendable(std::size_t size) {
        std::fprintf(stderr,
                     "t=%.3f level=error event=input msg=\"message refused: the outbox is "
                     "full\" size=%zu\n",
                     seconds_since(start_), size);
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
    port::PosixLink* link_ = nullptr;
    const Client* client_ = nullptr;
    port::PollLoop* loop_ = nullptr;
    std::uint8_t* line_ = nullptr;  // one input line: max_payload() + 1 bytes
    std::size_t max_line_ = 0;
    unsigned char* encoded_ = nullptr;  // one incoming message in base64
    std::size_t encoded_size_ = 0;
    std::size_t line_length_ = 0;
    std::size_t line_overflow_ = 0;  // bytes of an overlong line not kept
    bool line_too_long_ = false;
    std::uint64_t refused_ = 0;
    bool input_ended_ = false;
    bool input_paused_ = false;
    bool stopping_ = false;
    bool stop_sent_ = false;
    bool was_online_ = false;
    TimeMs input_ended_at_ = 0;
    TimeMs last_message_at_ = 0;
    // Device state.
    WatchedFile report_file_;
    char* report_ = nullptr;   // the report file's contents
    char* desired_ = nullptr;  // the desired document not yet written to --desired-out
    std::size_t desired_size_ = 0;
    std::uint64_t desired_version_ = 0;
    bool desired_pending_ = false;
    bool desired_failed_ = false;
    bool report_changed_ = false;
    bool report_problem_ = false;
    bool stale_retried_ = false;
    std::uint64_t refusals_ = 0;
    bool polled_ = false;
    TimeMs polled_at_ = 0;
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
    if (options.version) {
        return cli::print_version("tether-cat");
    }
    if (!resolve_proxy(
            &options, [](const char* name) -> const char* { return std::getenv(name); }, error,
            sizeof error)) {
        std::fprintf(stderr, "tether-cat: %s\n", error);
        return kExitUsage;
    }
    if (options.client.proxy != nullptr && !options.quiet) {
        // Where the proxy came from and whether it gets credentials; never them.
        const net::ProxyUrl& proxy = *options.client.proxy;
        std::fprintf(stderr,
                     "t=0.000 level=info event=proxy proxy=%s%s%s:%u source=%s credentials=%s "
                     "no_proxy=\"%s\"\n",
                     proxy.host_is_ipv6 ? "[" : "", proxy.host, proxy.host_is_ipv6 ? "]" : "",
                     static_cast<unsigned>(proxy.port), options.proxy_source,
                     proxy.has_credentials ? "yes" : "no",
                     options.client.no_proxy != nullptr ? options.client.no_proxy : "");
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

#if defined(TETHER_HAVE_DEFLATE)
    // One connection at a time: one deflater, its zlib arena allocated here once.
    static deflate::ZlibDeflater deflater(options.window_bits);
    if (options.compress) {
        if (deflater.arena_bytes() == 0) {
            std::fprintf(stderr, "tether-cat: out of memory\n");
            return kExitRuntime;
        }
        options.client.deflater = &deflater;
    }
#else
    if (options.compress) {
        std::fprintf(stderr, "tether-cat: --compress: built without permessage-deflate\n");
        return kExitUsage;
    }
#endif
    port::PosixLinkSettings settings;
    settings.link.client = options.client;
    settings.link.outbox_bytes = options.outbox_bytes;
    settings.tls = options.tls;
    settings.token_file = options.token_file;
    settings.token_command = options.token_command;
    settings.entropy_label = "tether-cat";
    settings.link.device_state.enabled =
        options.desired_out != nullptr || options.report_file != nullptr;
    if (options.tether_v1) {
        settings.state_dir = options.state_dir;
        settings.device_id = options.device_id;
        settings.user = options.user;
    }
    const TimeMs start = port::monotonic_now();
    static Cat cat(options, start);
    static port::PosixLink link(settings, &cat);
    const Status opened = link.open();
    if (opened != Status::kOk) {
        std::fprintf(stderr, "tether-cat: %s\n", link.error());
        return opened == Status::kInvalidArgument ? kExitUsage : kExitRuntime;
    }

    Pollable* pollables[1];
    struct pollfd fds[Pollable::kMaxPollRequests + port::PollLoop::kMaxWatches];
    port::PollLoop loop(pollables, 1, fds, sizeof fds / sizeof fds[0]);
    loop.add(&link);
    loop.watch(g_signal_pipe[0], true, false, &cat);
    loop.watch(STDIN_FILENO, true, false, &cat);
    if (!cat.attach(&link, &loop)) {
        std::fprintf(stderr, "tether-cat: out of memory\n");
        return kExitRuntime;
    }

    link.start(port::monotonic_now());
    int exit_code = kExitOk;
    while (!cat.finished(&exit_code, port::monotonic_now())) {
        loop.run_once(cat.wait_hint_ms(port::monotonic_now()));
    }
    std::fflush(stdout);
    if (options.compress && !options.quiet) {
        const net::WsCounters& ws = link.link().client().stream().counters();
        std::fprintf(stderr,
                     "t=%.3f level=info event=compression_totals sent_compressed=%llu "
                     "bytes_before=%llu bytes_after=%llu received_compressed=%llu "
                     "received_bytes_before=%llu received_bytes_after=%llu\n",
                     seconds_since(start), static_cast<unsigned long long>(ws.messages_compressed),
                     static_cast<unsigned long long>(ws.compress_bytes_in),
                     static_cast<unsigned long long>(ws.compress_bytes_out),
                     static_cast<unsigned long long>(ws.messages_inflated),
                     static_cast<unsigned long long>(ws.inflate_bytes_out),
                     static_cast<unsigned long long>(ws.inflate_bytes_in));
    }
    return exit_code;
}

}  // namespace
}  // namespace tether::cat

int main(int argc, char** argv) {
    return tether::cat::run(argc, argv);
}

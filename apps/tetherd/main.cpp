// SPDX-License-Identifier: MIT
// tetherd: the device daemon. Telemetry from local producers and from the
// device itself goes up one tether.v1 link that survives every fault;
// downlink messages come back to the device once, in order. See --help,
// docs/CONFIG.md and packaging/systemd/tetherd.service.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli.h"
#include "config.h"
#include "control_socket.h"
#include "datagram_input.h"
#include "downlink_output.h"
#include "health.h"
#include "line_input.h"
#include "link_report.h"
#include "metrics.h"
#include "sd_notify.h"
#include "status_file.h"
#include "status_led.h"
#include "tether/port/poll_loop.h"
#include "tether/port/posix_link.h"
#if defined(TETHER_HAVE_DEFLATE)
#include "tether/deflate/zlib_deflater.h"
#endif

namespace tether::daemon {
namespace {

// The downlink queue holds this many largest messages while a command runs.
constexpr std::size_t kDownlinkQueueMessages = 4;

int g_signal_pipe[2] = {-1, -1};
volatile sig_atomic_t g_last_signal = 0;

extern "C" void on_signal(int signal_number) {
    const int saved = errno;
    g_last_signal = signal_number;
    const char byte = static_cast<char>(signal_number);
    // A full pipe (EAGAIN) already holds a wake-up; nothing else can fail
    // here, and a signal handler may not log.
    const ssize_t written = ::write(g_signal_pipe[1], &byte, 1);
    (void)written;
    errno = saved;
}

std::uint64_t wall_ms() {
    struct timespec now {};
    ::clock_gettime(CLOCK_REALTIME, &now);
    return static_cast<std::uint64_t>(now.tv_sec) * 1000u +
           static_cast<std::uint64_t>(now.tv_nsec) / 1000000u;
}

// logfmt on standard error (journald keeps it), filtered by level.
class Log {
  public:
    Log(LogLevel level, TimeMs start) : level_(level), start_(start) {}
    void line(LogLevel level, const char* format, ...) __attribute__((format(printf, 3, 4))) {
        if (static_cast<int>(level) < static_cast<int>(level_)) {
            return;
        }
        std::fprintf(stderr, "t=%.3f level=%s ",
                     static_cast<double>(time_since(port::monotonic_now(), start_)) / 1000.0,
                     to_string(level));
        va_list args;
        va_start(args, format);
        std::vfprintf(stderr, format, args);
        va_end(args);
        std::fputc('\n', stderr);
    }
    void set_level(LogLevel level) { level_ = level; }

  private:
    LogLevel level_;
    TimeMs start_;
};

const char* kUsage =
    "usage: tetherd --config FILE [overrides]\n"
    "       tetherd --check-config FILE\n"
    "\n"
    "Keeps a tether.v1 link (docs/PROTOCOL.md) from this device to its server alive through\n"
    "every network fault: telemetry from standard input, a local datagram socket and the\n"
    "device's own health goes up without loss or duplication; downlink messages are handed\n"
    "to standard output or a command, once, in order. With \"protocol\": \"websocket\" it\n"
    "speaks plain WebSocket to any server instead, at-least-once or at-most-once\n"
    "(plain.delivery; docs/CONFIG.md, Plain WebSocket mode). Every option is a field of the\n"
    "JSON configuration file (docs/CONFIG.md); the common ones can be overridden here:\n\n";

// The agent's view of the durable link.
class LinkForState final : public StateLink {
  public:
    explicit LinkForState(port::PosixLink& link) : link_(link) {}
    Status desired_applied(std::uint64_t version) override {
        return link_.link().desired_applied(version);
    }
    Status report(const char* json, std::size_t size, bool whole) override {
        return link_.link().report(json, size, whole);
    }
    std::string reported_document() const override {
        std::size_t size = 0;
        const char* document = link_.link().reported_document(&size);
        return document != nullptr ? std::string(document, size) : std::string("{}");
    }

  private:
    port::PosixLink& link_;
};

class Daemon final : public DurableLinkListener,
                     public port::FdWatcher,
                     private DownlinkObserver,
                     private StateObserver,
                     private ControlHandler {
  public:
    Daemon(DaemonConfig& config, Log& log) : config_(config), log_(log) {}

    int run();

  private:
    bool setup();
    void log_recovery(const RecoveryReport& report);
    void new_trace_id();
    void on_state(const ClientEvent& event) override;
    void on_message(net::WsOpcode type, const std::uint8_t* data, std::size_t size) override;
    void on_downlink_seq(std::uint64_t seq) override;
    void on_gap(bool downlink, std::uint64_t first, std::uint64_t last) override;
    void on_in_doubt(std::uint64_t first, std::uint64_t last, std::uint64_t count,
                     bool resent) override;
    bool plain() const { return config_.protocol == LinkProtocol::kWebSocket; }
    void plain_status(StatusSnapshot* snapshot) const;
    void on_storage(const StorageEvent& event) override;
    void on_refused(std::size_t size, std::size_t limit) override;
    bool downlink_can_accept(std::size_t size) override;
    void on_downlink_event(const DownlinkEvent& event) override;
    void on_desired(const DesiredChange& change) override;
    void on_report_answer(const ReportAnswer& answer) override;
    void on_state_event(const StateEvent& event) override;
    void on_ready(int fd, bool readable, bool writable, TimeMs now) override;
    void accept_input(const char* data, std::size_t size);
    void note_oversize();
    void tick(TimeMs now);
    void update_status();
    StatusSnapshot status_now() const;
    std::string control_status() override;
    std::string control_reconnect() override;
    std::uint64_t control_flush_begin() override;
    bool control_flushed(std::uint64_t seq, std::uint64_t* acked) override;
    void control_problem(ControlProblem problem, const char* detail) override;
    void write_metrics();
    bool shutting_down(TimeMs now);
    std::uint32_t wait_ms(TimeMs now);
    const Client& client() const { return link_->link().client(); }

    DaemonConfig& config_;
    Log& log_;
    port::PosixLinkSettings settings_;
#if defined(TETHER_HAVE_DEFLATE)
    // compression.mode "on": the link's zlib state, one arena allocated at setup.
    std::unique_ptr<deflate::ZlibDeflater> deflater_;
#endif
    std::unique_ptr<port::PosixLink> link_;
    char traceparent_[96] = {};
    const char* headers_[1] = {traceparent_};
    std::string storage_error_;

    std::vector<char> input_buffer_;
    std::unique_ptr<DatagramInput> socket_input_;
    std::vector<char> line_buffer_;
    std::unique_ptr<LineInput> stdin_input_;
    std::vector<const char*> interface_names_;
    std::unique_ptr<HealthCollector> health_;
    TimeMs health_due_ = 0;
    std::uint64_t health_samples_ = 0;
    std::vector<char> downlink_queue_;
    std::string dead_letter_dir_;
    std::unique_ptr<DownlinkOutput> downlink_;
    std::uint64_t downlink_seq_ = 0;  // of the message on_message() is about to get
    // Plain WebSocket: the server's messages have no seqs; the output (and
    // its dead-letter file names) numbers them from the start time in ms
    // times 1000, or above the highest dead letter kept when that is higher.
    std::uint64_t plain_downlink_seq_ = 0;
    std::uint64_t downlink_lost_ = 0;
    std::uint64_t invalid_text_ = 0;
    std::uint64_t restart_in_doubt_ = 0;  // what an earlier run's crash left in doubt
    std::unique_ptr<LinkForState> state_link_;
    std::unique_ptr<StateAgent> state_agent_;

    std::unique_ptr<ControlSocket> control_;
    unsigned control_problems_logged_ = 0;  // bit per ControlProblem: each is logged once
    std::unique_ptr<StatusFile> status_file_;
    std::unique_ptr<StatusLed> led_;
    Notifier notifier_;
    std::unique_ptr<WatchdogPolicy> watchdog_;
    HardwareWatchdog hardware_watchdog_;
    bool hardware_watchdog_open_ = false;
    TimeMs iteration_done_ = 0;
    TimeMs metrics_due_ = 0;
    int watched_downlink_fd_ = -1;
    bool status_failed_ = false;
    std::uint32_t token_problem_generation_ = 0;
    bool metrics_failed_ = false;
    std::string metrics_error_;        // why the metrics file cannot be written, "" when fine
    std::string credentials_error_;    // why the token file gives no token, "" when fine
    std::uint64_t oversize_seen_ = 0;  // datagrams and lines dropped as too large, logged once

    LinkHistory history_{port::monotonic_now()};  // what the status file and metrics show
    bool refusing_full_ = false;

    bool stopping_ = false;
    TimeMs stop_started_ = 0;
    bool close_sent_ = false;
    port::PollLoop* loop_ = nullptr;
};

void Daemon::log_recovery(const RecoveryReport& r) {
    log_.line(LogLevel::kInfo,
              "event=state_record source=%s%s attempts=%u session_version=%u next_uplink=%llu "
              "last_downlink=%llu",
              to_string(r.state_source), r.state_read_failed ? " read_failed=yes" : "",
              r.state.reconnect_attempts, r.state.session_version,
              static_cast<unsigned long long>(r.state.next_uplink_seq),
              static_cast<unsigned long long>(r.state.last_delivered_downlink_seq));
    if (r.spool_used) {
        log_.line(
            r.spool.damaged || r.too_large > 0 || r.evicted > 0 ? LogLevel::kWarn : LogLevel::kInfo,
            "event=spool recovered=%zu first_seq=%llu last_seq=%llu damaged=%s "
            "truncated_bytes=%zu too_large=%zu evicted=%zu",
            r.restored, static_cast<unsigned long long>(r.first_restored),
            static_cast<unsigned long long>(r.last_restored), r.spool.damaged ? "yes" : "no",
            r.spool.truncated_bytes, r.too_large, r.evicted);
    }
    if (r.unrecovered.last != 0) {
        log_.line(LogLevel::kWarn,
                  "event=recovery msg=\"seqs a previous run may have used are not on disk; the "
                  "server is told they will not arrive\" first=%llu last=%llu",
                  static_cast<unsigned long long>(r.unrecovered.first),
                  static_cast<unsigned long long>(r.unrecovered.last));
    }
    if (plain() && config_.plain.delivery == Delivery::kAtLeastOnce && r.restored > 0) {
        // No pong confirmed these before the previous run ended, yet some may
        // have reached the server: sending them again may duplicate them.
        restart_in_doubt_ = r.restored;
        log_.line(LogLevel::kWarn,
                  "event=in_doubt delivery=at-least-once first=%llu last=%llu count=%llu "
                  "msg=\"restored from the spool, unconfirmed when the previous run ended: sent "
                  "again, so the server may get some of them twice\"",
                  static_cast<unsigned long long>(r.first_restored),
                  static_cast<unsigned long long>(r.last_restored),
                  static_cast<unsigned long long>(r.restored));
    }
    if (r.in_doubt.last != 0) {
        // Plain at-most-once: counted with the in-doubt messages of this run.
        restart_in_doubt_ = r.in_doubt.last - r.in_doubt.first + 1;
        log_.line(LogLevel::kWarn,
                  "event=in_doubt delivery=at-most-once first=%llu last=%llu count=%llu "
                  "msg=\"the previous run did not stop cleanly: of the messages it had handed to "
                  "the kernel, those no pong had confirmed may be lost (at most this many); "
                  "they are not sent again\"",
                  static_cast<unsigned long long>(r.in_doubt.first),
                  static_cast<unsigned long long>(r.in_doubt.last),
                  static_cast<unsigned long long>(restart_in_doubt_));
    }
}

// A W3C traceparent for the next attempt: "00-<32 hex trace id>-<16 hex span id>-01".
void Daemon::new_trace_id() {
    std::uint8_t bytes[24];
    if (!link_->random().fill_random(bytes, sizeof bytes)) {
        return;  // the attempt fails closed without entropy anyway; the old id stays
    }
    static const char kHex[] = "0123456789abcdef";
    std::string header = "traceparent: 00-";
    for (int i = 0; i < 24; ++i) {
        if (i == 16) {
            header += '-';
        }
        header += kHex[bytes[i] >> 4];
        header += kHex[bytes[i] & 0xF];
    }
    header += "-01";
    std::snprintf(traceparent_, sizeof traceparent_, "%s", header.c_str());
}

bool Daemon::setup() {
    if (::mkdir(config_.run_dir.c_str(), 0755) != 0 && errno != EEXIST) {
        log_.line(LogLevel::kError, "event=setup error=\"cannot create %s: %s\"",
                  config_.run_dir.c_str(), std::strerror(errno));
        return false;
    }
    to_link_settings(config_, &settings_);
    // A well-formed placeholder until the entropy source exists; replaced
    // before the first attempt.
    std::snprintf(traceparent_, sizeof traceparent_,
                  "traceparent: 00-00000000000000000000000000000001-0000000000000001-00");
    settings_.link.client.extra_headers = headers_;
    settings_.link.client.extra_header_count = 1;
    if (config_.compression.enabled) {
#if defined(TETHER_HAVE_DEFLATE)
        const std::uint32_t bits =
            config_.compression.client_max_window_bits > config_.compression.server_max_window_bits
                ? config_.compression.client_max_window_bits
                : config_.compression.server_max_window_bits;
        deflater_ = std::make_unique<deflate::ZlibDeflater>(static_cast<std::uint8_t>(bits));
        if (deflater_->arena_bytes() == 0) {
            log_.line(LogLevel::kError, "event=setup error=\"compression: out of memory\"");
            return false;
        }
        settings_.link.client.deflater = deflater_.get();
        log_.line(LogLevel::kInfo, "event=setup compression=on deflate_arena_bytes=%zu",
                  deflater_->arena_bytes());
#else
        log_.line(LogLevel::kError,
                  "event=setup error=\"compression.mode on: built without permessage-deflate\"");
        return false;
#endif
    }
    link_ = std::make_unique<port::PosixLink>(settings_, this);
    RecoveryReport report;
    if (link_->open(&report) != Status::kOk) {
        log_.line(LogLevel::kError, "event=setup error=\"%s\"", link_->error());
        return false;
    }
    if (link_->note()[0] != '\0') {
        log_.line(LogLevel::kWarn, "event=setup msg=\"%s\"", link_->note());
    }
    log_recovery(report);
    new_trace_id();

    const std::size_t max_message = config_.outbox.max_message_size;
    input_buffer_.resize(max_message);
    if (!config_.inputs.socket.empty()) {
        socket_input_ = std::make_unique<DatagramInput>(input_buffer_.data(), input_buffer_.size());
        const Status bound = socket_input_->bind(config_.inputs.socket.c_str(),
                                                 static_cast<mode_t>(config_.inputs.socket_mode));
        if (bound != Status::kOk) {
            // kInvalidArgument: something that is not a socket is at the path
            // (the length was checked with the configuration).
            log_.line(LogLevel::kError, "event=setup error=\"cannot bind %s: %s\"",
                      config_.inputs.socket.c_str(),
                      bound == Status::kInvalidArgument ? "a file that is not a socket is there"
                                                        : std::strerror(errno));
            return false;
        }
    }
    if (config_.inputs.stdin_lines) {
        line_buffer_.resize(max_message);
        stdin_input_ =
            std::make_unique<LineInput>(STDIN_FILENO, line_buffer_.data(), line_buffer_.size());
    }
    if (config_.inputs.health.enabled) {
        for (const std::string& name : config_.inputs.health.interfaces) {
            interface_names_.push_back(name.c_str());
        }
        const char* root =
            config_.inputs.health.root == "/" ? "" : config_.inputs.health.root.c_str();
        health_ = std::make_unique<HealthCollector>(root, interface_names_.data(),
                                                    interface_names_.size());
    }
    // Downlink is acknowledged to the server only once the output has handed
    // it over (settings_.link.client.confirm_downlink).
    DownlinkOutputConfig output;
    if (config_.downlink.output == DownlinkMode::kCommand) {
        output.command = config_.downlink.command.c_str();
    } else {
        output.fd = STDOUT_FILENO;
    }
    output.command_timeout_ms = config_.downlink.command_timeout_ms;
    output.retries = config_.downlink.retries;
    output.retry_delay_ms = config_.downlink.retry_delay_ms;
    dead_letter_dir_ = dead_letter_dir(config_);
    output.dead_letter_dir = dead_letter_dir_.c_str();
    if (output.fd == STDOUT_FILENO) {
        // The output waits for a slow reader at most line_write_timeout_ms;
        // a blocking descriptor would stall the whole loop instead.
        const int flags = ::fcntl(STDOUT_FILENO, F_GETFL, 0);
        if (flags < 0 || ::fcntl(STDOUT_FILENO, F_SETFL, flags | O_NONBLOCK) != 0) {
            log_.line(LogLevel::kError, "event=setup error=\"stdout: %s\"", std::strerror(errno));
            return false;
        }
    }
    output.observer = this;
    downlink_queue_.resize(kDownlinkQueueMessages * max_message + 4096);
    downlink_ =
        std::make_unique<DownlinkOutput>(output, downlink_queue_.data(), downlink_queue_.size());

    if (config_.state.enabled) {
        StateAgentConfig agent;
        agent.desired_file =
            config_.state.desired_file.empty() ? nullptr : config_.state.desired_file.c_str();
        agent.desired_command =
            config_.state.desired_command.empty() ? nullptr : config_.state.desired_command.c_str();
        agent.report_command =
            config_.state.report_command.empty() ? nullptr : config_.state.report_command.c_str();
        agent.command_timeout_ms = config_.state.command_timeout_ms;
        agent.retry_delay_ms = config_.state.retry_delay_ms;
        agent.report_interval_ms = config_.state.report_interval_ms;
        agent.observer = this;
        state_link_ = std::make_unique<LinkForState>(*link_);
        state_agent_ = std::make_unique<StateAgent>(agent, *state_link_);
    }

    // The control socket (tetherctl) is for operators: without it the link
    // still runs, so a failure is logged and the daemon goes on.
    const std::string control_path = config_.run_dir + "/control.sock";
    control_ = std::make_unique<ControlSocket>(static_cast<ControlHandler*>(this));
    const Status control_bound = control_->bind(control_path.c_str());
    if (control_bound != Status::kOk) {
        log_.line(LogLevel::kError, "event=control error=\"cannot listen on %s: %s\"%s",
                  control_path.c_str(),
                  control_bound == Status::kUnavailable ? "another tetherd is listening there"
                  : control_bound == Status::kInvalidArgument && errno == ENAMETOOLONG
                      ? "path longer than a UNIX socket address holds (107 bytes)"
                  : control_bound == Status::kInvalidArgument
                      ? "something other than a socket is there (left alone)"
                      : std::strerror(errno),
                  " msg=\"tetherctl cannot reach this daemon\"");
        control_.reset();
    }
    status_file_ = std::make_unique<StatusFile>(config_.status.file);
    if (!config_.status.led.empty()) {
        StatusLedConfig led_config;
        led_config.root = config_.status.led_root;
        led_config.name = config_.status.led;
        led_ = std::make_unique<StatusLed>(led_config);
        if (led_->open() != Status::kOk) {
            log_.line(LogLevel::kWarn, "event=led msg=\"LED %s not usable\"",
                      config_.status.led.c_str());
            led_.reset();
        }
    }
    (void)notifier_.open_from_environment();
    std::uint32_t watchdog_ms = 0;
    (void)watchdog_interval_from_environment(&watchdog_ms);
    watchdog_ = std::make_unique<WatchdogPolicy>(watchdog_ms);
    if (!config_.watchdog.device.empty()) {
        hardware_watchdog_open_ =
            hardware_watchdog_.open(config_.watchdog.device.c_str()) == Status::kOk;
        if (!hardware_watchdog_open_) {
            log_.line(LogLevel::kWarn, "event=watchdog msg=\"cannot open %s\"",
                      config_.watchdog.device.c_str());
        }
    }
    return true;
}

void Daemon::on_state(const ClientEvent& event) {
    const TimeMs now = port::monotonic_now();
    if (event.state == LinkState::kResolving) {
        new_trace_id();  // each attempt is one trace, joined with the server's logs
        log_.line(LogLevel::kInfo, "event=attempt endpoint=%s attempt=%u trace_id=%.32s",
                  config_.endpoints[event.endpoint].c_str(), event.attempt, traceparent_ + 16);
    }
    history_.observe(event, now, wall_ms());
    const bool visible = event.state == LinkState::kOnline ||
                         event.state == LinkState::kWaitingToRetry ||
                         event.state == LinkState::kGivenUp || event.state == LinkState::kIdle;
    const std::string text = describe_state(event);
    // Online, and idle after a stop this process asked for, are how it should be;
    // waiting to retry and giving up are trouble an operator filters for.
    const bool expected =
        event.state == LinkState::kOnline || (event.state == LinkState::kIdle && stopping_);
    log_.line(visible ? (expected ? LogLevel::kInfo : LogLevel::kWarn) : LogLevel::kDebug,
              "event=state state=%s msg=\"%s\" endpoint=%s attempt=%u reason=%s",
              to_string(event.state), text.c_str(), config_.endpoints[event.endpoint].c_str(),
              event.attempt, event.reason[0] != '\0' ? event.reason : "none");
    if (visible) {
        (void)notifier_.status(text.c_str());
    }
    if (led_) {
        (void)led_->show_state(event.state, now);
    }
    update_status();
}

void Daemon::on_downlink_seq(std::uint64_t seq) {
    downlink_seq_ = seq;
}

void Daemon::on_message(net::WsOpcode type, const std::uint8_t* data, std::size_t size) {
    (void)type;
    if (plain()) {
        if (plain_downlink_seq_ == 0) {
            // Above the wall clock (names sort by arrival) and above every
            // dead letter kept: a Pi without a real-time clock may start in
            // 1970, and a reused number would overwrite an earlier letter.
            const std::uint64_t kept = downlink_->highest_dead_letter_seq();
            plain_downlink_seq_ = std::max(wall_ms() * 1000u, kept);
        }
        const std::uint64_t seq = ++plain_downlink_seq_;
        const Status status = downlink_->deliver(seq, reinterpret_cast<const char*>(data), size);
        if (status != Status::kOk) {
            downlink_->skip(seq, seq);  // nothing can send it again: later ones go on
            if (downlink_lost_++ == 0) {
                log_.line(LogLevel::kWarn,
                          "event=downlink msg=\"the output did not take a server message; a "
                          "plain WebSocket server does not send it again: lost (later ones are "
                          "counted in status.json downlink_lost)\" status=%s",
                          to_string(status));
            }
        }
        return;
    }
    // The client asked downlink_can_accept() first, so a refusal here means
    // the output's state changed in between: not acknowledged, so the server
    // sends it again after the link is re-established.
    const Status status =
        downlink_->deliver(downlink_seq_, reinterpret_cast<const char*>(data), size);
    if (status != Status::kOk) {
        link_->link().refuse_downlink();  // not delivered: a resume fetches it again
        log_.line(LogLevel::kWarn,
                  "event=downlink msg=\"the output did not take the message; the server sends it "
                  "again\" seq=%llu status=%s",
                  static_cast<unsigned long long>(downlink_seq_), to_string(status));
    }
}

bool Daemon::downlink_can_accept(std::size_t size) {
    return downlink_->can_accept(size);
}

void Daemon::on_downlink_event(const DownlinkEvent& event) {
    const LogLevel level = event.kind == DownlinkEventKind::kAttemptFailed ? LogLevel::kWarn
                           : event.kind == DownlinkEventKind::kRecovered   ? LogLevel::kInfo
                                                                           : LogLevel::kError;
    log_.line(level,
              "event=downlink what=%s seq=%llu attempts=%u failure=%s status=%d error=\"%s\"%s%s",
              to_string(event.kind), static_cast<unsigned long long>(event.seq), event.attempts,
              to_string(event.failure), event.status,
              event.error != 0 ? std::strerror(event.error) : "none",
              event.path != nullptr ? " path=" : "", event.path != nullptr ? event.path : "");
}

void Daemon::on_desired(const DesiredChange& change) {
    log_.line(LogLevel::kInfo, "event=desired version=%llu kind=%s size=%zu",
              static_cast<unsigned long long>(change.version),
              change.snapshot ? "snapshot" : "increment", change.document_size);
    if (state_agent_) {
        state_agent_->on_desired(change);
    }
}

void Daemon::on_report_answer(const ReportAnswer& answer) {
    if (state_agent_) {
        state_agent_->on_report_answer(answer);
    }
}

void Daemon::on_state_event(const StateEvent& event) {
    switch (event.kind) {
        case StateEventKind::kApplied:
            log_.line(LogLevel::kInfo, "event=desired what=applied version=%llu",
                      static_cast<unsigned long long>(event.version));
            break;
        case StateEventKind::kApplyFailed:
            log_.line(LogLevel::kError,
                      "event=desired what=apply_failed version=%llu end=%s status=%d error=\"%s\" "
                      "msg=\"retried with a doubling delay; later failures are counted in "
                      "tether_state_apply_failures_total\"",
                      static_cast<unsigned long long>(event.version), to_string(event.end),
                      event.status, event.error != 0 ? std::strerror(event.error) : "none");
            break;
        case StateEventKind::kApplyRecovered:
            log_.line(LogLevel::kInfo, "event=desired what=apply_recovered version=%llu",
                      static_cast<unsigned long long>(event.version));
            break;
        case StateEventKind::kReportFailed:
            log_.line(LogLevel::kError, "event=report what=failed end=%s status=%d msg=\"%s\"",
                      to_string(event.end), event.status, event.reason);
            break;
        case StateEventKind::kReportRefused:
            log_.line(LogLevel::kError,
                      "event=report what=refused reason=%s server_version=%llu msg=\"%s\"",
                      event.reason, static_cast<unsigned long long>(event.version),
                      std::strcmp(event.reason, "stale") == 0
                          ? "another instance or an older copy of this device reported "
                            "meanwhile; reporting this device's whole state again on top of it"
                          : "the server did not take the report");
            break;
        case StateEventKind::kReportAccepted:
            log_.line(LogLevel::kDebug, "event=report what=accepted version=%llu",
                      static_cast<unsigned long long>(event.version));
            break;
    }
    update_status();
}

void Daemon::on_gap(bool downlink, std::uint64_t first, std::uint64_t last) {
    if (downlink) {
        downlink_->skip(first, last);  // never coming: nothing waits for them
    }
    log_.line(LogLevel::kWarn, "event=gap direction=%s first=%llu last=%llu count=%llu",
              downlink ? "downlink" : "uplink", static_cast<unsigned long long>(first),
              static_cast<unsigned long long>(last),
              static_cast<unsigned long long>(last - first + 1));
}

// Plain WebSocket: the link died with messages the kernel had taken but no
// pong had confirmed. Each such loss is its own line: it is rare, and the
// seqs say which input lines (or datagrams) it concerns.
void Daemon::on_in_doubt(std::uint64_t first, std::uint64_t last, std::uint64_t count,
                         bool resent) {
    log_.line(LogLevel::kWarn,
              "event=in_doubt delivery=%s first=%llu last=%llu count=%llu msg=\"%s\"",
              tether::to_string(config_.plain.delivery), static_cast<unsigned long long>(first),
              static_cast<unsigned long long>(last), static_cast<unsigned long long>(count),
              resent ? "the link died before a pong confirmed them: sent again, the server may "
                       "get them twice"
                     : "the link died before a pong confirmed them: not sent again, the server "
                       "may not have them");
    update_status();
}

void Daemon::on_storage(const StorageEvent& event) {
    const char* what = event.what == StorageEvent::What::kSpool         ? "spool"
                       : event.what == StorageEvent::What::kDeviceState ? "device_state"
                                                                        : "state_record";
    if (event.failed) {
        storage_error_ = std::string(what) + ": " +
                         (event.error != 0 ? std::strerror(event.error) : "I/O error");
        log_.line(LogLevel::kError, "event=storage what=%s error=\"%s\" errno=%d msg=\"%s\"", what,
                  event.error != 0 ? std::strerror(event.error) : "I/O error", event.error,
                  event.action);
    } else {
        storage_error_.clear();
        log_.line(LogLevel::kInfo, "event=storage what=%s msg=\"%s\"", what, event.action);
    }
    update_status();
}

void Daemon::on_refused(std::size_t size, std::size_t limit) {
    log_.line(LogLevel::kError,
              "event=input msg=\"message refused: larger than the link can deliver; later "
              "ones are counted in tether_messages_refused_total\" size=%zu limit=%zu",
              size, limit);
}

void Daemon::accept_input(const char* data, std::size_t size) {
    if (stopping_) {
        return;
    }
    // Too large: counted and reported by the link (on_refused). Full under
    // reject_newest: said once per stretch of refusals, counted in metrics.
    const Status status = link_->send(reinterpret_cast<const std::uint8_t*>(data), size);
    if (status == Status::kInvalidArgument && plain() && invalid_text_++ == 0) {
        log_.line(LogLevel::kError,
                  "event=input msg=\"message dropped: not valid UTF-8, so it cannot go as a "
                  "text frame (plain.message_type \\\"binary\\\" sends any bytes); later ones "
                  "are counted in tether_intake_dropped_total{reason=\\\"not_utf8\\\"}\"");
    }
    if (status == Status::kNoSpace && !refusing_full_) {
        log_.line(LogLevel::kWarn,
                  "event=input msg=\"the outbox is full (reject_newest): new messages are "
                  "refused until it drains; counted in tether_messages_refused_total\"");
    }
    refusing_full_ = status == Status::kNoSpace;
}

// Datagrams and lines larger than the input buffer (outbox.max_message_size)
// never become messages: the first is logged with its size, all are counted
// in status.json's input_oversize.
void Daemon::note_oversize() {
    const std::uint64_t datagrams = socket_input_ ? socket_input_->oversize() : 0;
    const std::uint64_t lines = stdin_input_ ? stdin_input_->overlong() : 0;
    const std::uint64_t total = datagrams + lines;
    if (total == oversize_seen_) {
        return;
    }
    if (oversize_seen_ == 0) {
        if (datagrams > 0) {
            log_.line(LogLevel::kError,
                      "event=input source=socket msg=\"datagram dropped: larger than "
                      "outbox.max_message_size; later ones are counted in status.json "
                      "input_oversize\" size=%zu limit=%zu",
                      socket_input_->last_oversize_size(), input_buffer_.size());
        } else {
            log_.line(LogLevel::kError,
                      "event=input source=stdin msg=\"line dropped: longer than "
                      "outbox.max_message_size; later ones are counted in status.json "
                      "input_oversize\" limit=%zu",
                      line_buffer_.size());
        }
    }
    oversize_seen_ = total;
    update_status();
}

void Daemon::on_ready(int fd, bool readable, bool writable, TimeMs now) {
    (void)writable;
    if (fd == g_signal_pipe[0]) {
        char drained[16];
        while (::read(fd, drained, sizeof drained) > 0) {
        }
        if (g_last_signal == SIGHUP) {
            log_.line(LogLevel::kInfo, "event=reload msg=\"credentials refreshed\"");
            link_->refresh_credentials();
            return;
        }
        if (!stopping_) {
            log_.line(LogLevel::kInfo, "event=stopping msg=\"flushing before exit\"");
            (void)notifier_.send("STOPPING=1");
            if (socket_input_) {
                // Datagrams the kernel already took from producers are
                // taken in too; then the socket is closed and its path
                // removed, so a producer sending later gets an error instead
                // of a message that would vanish with this process.
                loop_->unwatch(socket_input_->fd());
                const std::size_t taken = socket_input_->drain(
                    [this](const char* data, std::size_t size) { accept_input(data, size); });
                link_->link().commit();
                socket_input_.reset();
                log_.line(LogLevel::kInfo, "event=input msg=\"socket closed\" drained=%zu", taken);
            }
            stopping_ = true;
            stop_started_ = now;
            if (stdin_input_) {
                loop_->unwatch(STDIN_FILENO);
            }
        }
        return;
    }
    if (socket_input_ && fd == socket_input_->fd() && readable) {
        // Each datagram reaches the spool's file before the next is taken
        // from the socket: a kill loses at most the one in hand.
        socket_input_->drain(
            [this](const char* data, std::size_t size) {
                accept_input(data, size);
                link_->link().commit();
            },
            1024);
        note_oversize();
        return;
    }
    if (stdin_input_ && fd == STDIN_FILENO && readable) {
        const LineInput::Read result = stdin_input_->read(
            [this](const char* data, std::size_t size) { accept_input(data, size); });
        link_->link().commit();  // the lines of this read, before the next read
        note_oversize();
        if (result == LineInput::Read::kEof || result == LineInput::Read::kError) {
            loop_->unwatch(STDIN_FILENO);
        }
        return;
    }
    if (downlink_ && fd == downlink_->pending_fd()) {
        downlink_->tick(now);
        link_->link().confirm_downlink(downlink_->confirmed_through());
    }
}

StatusSnapshot Daemon::status_now() const {
    const DurableLink& link = link_->link();
    StatusSnapshot snapshot =
        status_of(link, history_, config_.endpoints[link.client().machine().endpoint()],
                  link_->session_id(), storage_error_);
    snapshot.device_state = device_state_of(link, state_agent_.get());
    snapshot.input_oversize = oversize_seen_;
    snapshot.credentials_error = credentials_error_;
    snapshot.metrics_error = metrics_error_;
    snapshot.status_errors = status_file_->errors();
    if (control_) {
        snapshot.control.enabled = true;
        snapshot.control.refused = control_->counters().refused();
        snapshot.control.flush_timeouts = control_->counters().flush_timeouts;
    }
    if (downlink_) {
        const DownlinkCounters& counters = downlink_->counters();
        snapshot.downlink_delivered = counters.delivered;
        snapshot.downlink_dead_lettered = counters.dead_lettered;
        snapshot.downlink_failures = counters.failed + counters.write_errors;
    }
    plain_status(&snapshot);
    return snapshot;
}

void Daemon::plain_status(StatusSnapshot* snapshot) const {
    snapshot->protocol = to_string(config_.protocol);
    if (!plain()) {
        return;
    }
    snapshot->delivery = tether::to_string(config_.plain.delivery);
    snapshot->in_doubt = client().counters().in_doubt + restart_in_doubt_;
    snapshot->confirmed = client().counters().confirmed;
    snapshot->downlink_lost = downlink_lost_;
}

std::string Daemon::control_status() {
    StatusSnapshot snapshot = status_now();
    if (snapshot.state == LinkState::kWaitingToRetry) {
        // The file says the delay chosen; the socket can say what is left of it.
        const Client& c = client();
        if (c.machine().has_deadline()) {
            snapshot.retry_in_ms = time_until(port::monotonic_now(), c.machine().next_deadline());
        }
    }
    return status_json(snapshot);
}

std::string Daemon::control_reconnect() {
    const LinkState before = client().state();
    if (stopping_ || !link_->link().connect_now(port::monotonic_now())) {
        return std::string("ok nothing to do: ") + (stopping_ ? "stopping" : to_string(before)) +
               "\n";
    }
    log_.line(LogLevel::kInfo,
              "event=control request=reconnect msg=\"backoff wait skipped\" "
              "from=%s",
              to_string(before));
    return "ok reconnecting\n";
}

std::uint64_t Daemon::control_flush_begin() {
    (void)link_->link().sync_spool();  // a failure is reported through on_storage
    const std::uint64_t next = client().outbox().next_seq();
    return next > 0 ? next - 1 : 0;
}

bool Daemon::control_flushed(std::uint64_t seq, std::uint64_t* acked) {
    *acked = client().counters().uplink_acked;
    return seq == 0 || *acked >= seq || client().idle();
}

void Daemon::control_problem(ControlProblem problem, const char* detail) {
    const unsigned bit = 1u << static_cast<unsigned>(problem);
    if ((control_problems_logged_ & bit) != 0) {
        return;
    }
    control_problems_logged_ |= bit;
    log_.line(LogLevel::kWarn,
              "event=control problem=%s msg=\"%s; later ones are only counted (the status "
              "file's control object)\"",
              to_string(problem), detail);
}

void Daemon::update_status() {
    if (!status_file_) {
        return;  // a storage event while the link opens: the first update follows setup
    }
    const StatusSnapshot snapshot = status_now();
    const bool failed = status_file_->update(snapshot) != Status::kOk;
    const int error = errno;
    // Logged once per stretch of failures; every failed write is counted in
    // status_errors, which the file shows once a write works again.
    if (failed && !status_failed_) {
        log_.line(LogLevel::kError,
                  "event=status error=\"cannot write %s: %s\" msg=\"retried on every change; "
                  "failures are counted in status_errors\"",
                  config_.status.file.c_str(), std::strerror(error));
    } else if (!failed && status_failed_) {
        log_.line(LogLevel::kInfo, "event=status msg=\"written again\" path=%s failures=%llu",
                  config_.status.file.c_str(),
                  static_cast<unsigned long long>(status_file_->errors()));
    }
    status_failed_ = failed;
}

void Daemon::write_metrics() {
    if (config_.metrics.file.empty()) {
        return;
    }
    DownlinkTotals downlink;
    downlink.delivered = downlink_->counters().delivered;
    downlink.dead_lettered = downlink_->counters().dead_lettered;
    downlink.failures = downlink_->counters().failed + downlink_->counters().write_errors;
    MetricsSnapshot snapshot = metrics_of(link_->link(), history_, port::monotonic_now(), downlink);
    if (stdin_input_) {
        snapshot.intake.line_too_long = stdin_input_->overlong();
    }
    if (socket_input_) {
        snapshot.intake.datagram_too_large = socket_input_->oversize();
        snapshot.intake.datagram_empty = socket_input_->empty();
    }
    snapshot.device_state = device_state_of(link_->link(), state_agent_.get());
    StatusSnapshot plain_view;
    plain_status(&plain_view);
    snapshot.protocol = plain_view.protocol;
    snapshot.delivery = plain_view.delivery;
    snapshot.messages_in_doubt = plain_view.in_doubt;
    snapshot.messages_confirmed = plain_view.confirmed;
    snapshot.downlink_lost = plain_view.downlink_lost;
    snapshot.intake.not_utf8 = invalid_text_;
    const bool failed = daemon::write_metrics(config_.metrics.file, snapshot) != Status::kOk;
    const int error = errno;
    if (failed && !metrics_failed_) {
        metrics_error_ = "cannot write " + config_.metrics.file + ": " + std::strerror(error);
        log_.line(LogLevel::kError,
                  "event=metrics error=\"%s\" msg=\"retried every metrics.interval_ms; shown "
                  "in status.json metrics_error\"",
                  metrics_error_.c_str());
    } else if (!failed && metrics_failed_) {
        metrics_error_.clear();
        log_.line(LogLevel::kInfo, "event=metrics msg=\"written again\" path=%s",
                  config_.metrics.file.c_str());
    }
    metrics_failed_ = failed;
}

void Daemon::tick(TimeMs now) {
    history_.observe_acked(client().outbox().counters().acked, now);
    if (health_ && !stopping_ && time_reached(now, health_due_)) {
        HealthSample sample;
        char json[2048];
        if (health_->sample(&sample)) {
            const std::size_t length = format_json(sample, ++health_samples_, json, sizeof json);
            if (length > 0) {
                accept_input(json, length);
            }
        }
        health_due_ = next_sample_at(health_due_, config_.inputs.health.period_ms, now);
    }
    if (time_reached(now, metrics_due_)) {
        write_metrics();
        update_status();
        metrics_due_ = now + config_.metrics.interval_ms;
    }
    if (led_) {
        (void)led_->tick(now);
    }
    downlink_->tick(now);
    link_->link().confirm_downlink(downlink_->confirmed_through());
    if (state_agent_) {
        state_agent_->tick(now);
    }
    const int downlink_fd = downlink_->pending_fd();
    if (downlink_fd != watched_downlink_fd_) {
        if (watched_downlink_fd_ >= 0) {
            loop_->unwatch(watched_downlink_fd_);
        }
        if (downlink_fd >= 0) {
            loop_->watch(downlink_fd, false, true, this);
        }
        watched_downlink_fd_ = downlink_fd;
    }
    const char* problem = nullptr;
    if (link_->credentials_problem(&token_problem_generation_, &problem)) {
        const bool fixed = problem[0] == '\0';
        log_.line(fixed ? LogLevel::kInfo : LogLevel::kError,
                  "event=credentials token_file=%s problem=\"%s\"",
                  config_.credentials.token_file.c_str(), fixed ? "none: a token again" : problem);
        credentials_error_ = fixed ? "" : problem;
        update_status();
    }
    if (control_) {
        control_->tick(now);
    }
    iteration_done_ = now;
    if (watchdog_->should_ping(now, iteration_done_)) {
        (void)notifier_.send("WATCHDOG=1");
        watchdog_->pinged(now);
    }
    if (hardware_watchdog_open_) {
        (void)hardware_watchdog_.keep_alive();
    }
}

// SIGTERM: stop taking input, try to get everything acknowledged for a
// bounded time, close with 1001, persist, exit.
bool Daemon::shutting_down(TimeMs now) {
    if (!stopping_) {
        return false;
    }
    const bool drained = client().idle() || client().state() != LinkState::kOnline;
    const bool timed_out = time_since(now, stop_started_) >= 5000;
    if (!close_sent_ && (drained || timed_out)) {
        close_sent_ = true;
        link_->link().stop(now, 1001);
    }
    const LinkState state = client().state();
    return close_sent_ && (state == LinkState::kIdle || state == LinkState::kGivenUp ||
                           time_since(now, stop_started_) >= 8000);
}

std::uint32_t Daemon::wait_ms(TimeMs now) {
    std::uint32_t wait = 1000;
    auto consider = [&](TimeMs at) {
        const std::uint32_t until = time_until(now, at);
        wait = until < wait ? until : wait;
    };
    if (health_) {
        consider(health_due_);
    }
    consider(metrics_due_);
    TimeMs at = 0;
    if (led_ && led_->next_deadline(&at)) {
        consider(at);
    }
    if (watchdog_->next_due(now, &at)) {
        consider(at);
    }
    if (downlink_->next_deadline(&at)) {
        consider(at);
    }
    if (downlink_->busy()) {
        wait = wait < 20 ? wait : 20;
    }
    if (state_agent_) {
        if (state_agent_->next_deadline(&at)) {
            consider(at);
        }
        if (state_agent_->busy()) {
            wait = wait < 20 ? wait : 20;
        }
    }
    if (control_ && control_->next_deadline(&at)) {
        consider(at);
    }
    if (stopping_) {
        wait = wait < 50 ? wait : 50;
    }
    return wait;
}

int Daemon::run() {
    if (!setup()) {
        return 1;
    }
    log_.line(LogLevel::kInfo, "event=start session=%s device=\"%s\" version=%u max_payload=%zu %s",
              plain() ? "none" : link_->session_id(), plain() ? "none" : link_->device_id(),
              link_->link().persistent().session_version, link_->link().max_payload(),
              describe(config_).c_str());
    for (const std::string& endpoint : config_.endpoints) {
        // Allowed (a lab, a TLS-terminating proxy on the same host), but never quietly.
        if (endpoint.compare(0, 5, "ws://") == 0) {
            log_.line(LogLevel::kWarn,
                      "event=insecure_endpoint endpoint=%s msg=\"ws:// is not encrypted: the "
                      "token and the telemetry cross the network in clear; use wss://\"",
                      endpoint.c_str());
        }
    }
    Pollable* pollables[1];
    struct pollfd fds[Pollable::kMaxPollRequests + port::PollLoop::kMaxWatches];
    port::PollLoop loop(pollables, 1, fds, sizeof fds / sizeof fds[0]);
    loop_ = &loop;
    loop.add(link_.get());
    loop.watch(g_signal_pipe[0], true, false, this);
    if (socket_input_) {
        loop.watch(socket_input_->fd(), true, false, this);
    }
    if (stdin_input_) {
        loop.watch(STDIN_FILENO, true, false, this);
    }
    if (control_) {
        control_->attach(&loop);
    }
    const TimeMs start = port::monotonic_now();
    health_due_ = start;
    metrics_due_ = start;
    history_ = LinkHistory(start);
    link_->start(start);
    (void)notifier_.send("READY=1");
    for (;;) {
        const TimeMs now = port::monotonic_now();
        tick(now);
        if (shutting_down(now)) {
            break;
        }
        loop.run_once(wait_ms(port::monotonic_now()));
    }
    const bool persisted = link_->link().shutdown() == Status::kOk;
    write_metrics();
    update_status();
    if (hardware_watchdog_open_) {
        (void)hardware_watchdog_.close_cleanly();
    }
    control_.reset();  // closes its clients and removes the path while `loop` still exists
    log_.line(persisted ? LogLevel::kInfo : LogLevel::kError, "event=stopped queued=%zu%s",
              client().outbox().size(),
              persisted ? "" : " error=\"the spool or state record could not be saved\"");
    return persisted ? 0 : 1;
}

int run(int argc, char** argv) {
    static DaemonConfig config;
    const char* config_path = nullptr;
    bool check_only = false;
    std::vector<std::pair<std::string, const char*>> overrides;
    cli::ArgReader args(argc, argv);
    while (args.next()) {
        if (args.is("help")) {
            std::fputs(kUsage, stdout);
            print_override_help(stdout);
            std::fputs(
                "\n  --config FILE           the configuration (JSON; docs/CONFIG.md)\n"
                "  --check-config FILE     validate FILE and exit (0: valid, 2: not)\n"
                "  -h, --help              this text\n"
                "  --version               print \"tetherd VERSION\" and exit\n"
                "Every option that takes a value accepts --option VALUE and --option=VALUE.\n"
                "\nSignals: SIGTERM/SIGINT flush (at most 5 s), close with 1001, exit 0;\n"
                "SIGHUP refreshes credentials. Exit codes: 0 clean stop, 1 setup failed,\n"
                "2 bad configuration or usage.\n",
                stdout);
            return 0;
        }
        if (args.is("version")) {
            return cli::print_version("tetherd");
        }
        if (args.is("config") || args.is("check-config")) {
            check_only = args.is("check-config");
            const std::string name = args.name();
            config_path = args.value();
            if (config_path == nullptr) {
                return cli::needs_value("tetherd", name.c_str());
            }
            continue;
        }
        if (!args.is_option()) {
            return cli::unexpected_argument("tetherd", args.text());
        }
        const OverrideSpec* spec = args.name()[0] != '\0' ? find_override(args.name()) : nullptr;
        if (spec == nullptr) {
            return cli::unknown_option("tetherd", args.text());
        }
        const std::string name = args.name();
        // A flag (no metavar) takes an optional "=true"/"=false" only.
        const char* value =
            spec->metavar != nullptr || args.has_inline_value() ? args.value() : nullptr;
        if (spec->metavar != nullptr && value == nullptr) {
            return cli::needs_value("tetherd", name.c_str());
        }
        overrides.emplace_back(name, value);
    }
    if (config_path == nullptr) {
        std::fprintf(stderr, "tetherd: --config FILE is required (see --help)\n");
        return 2;
    }
    std::string error;
    if (!load_config_file(config_path, &config, &error)) {
        std::fprintf(stderr, "tetherd: %s\n", error.c_str());
        return 2;
    }
    for (const auto& entry : overrides) {
        if (!apply_override(&config, entry.first.c_str(), entry.second, &error)) {
            std::fprintf(stderr, "tetherd: %s\n", error.c_str());
            return 2;
        }
    }
    // The directories and credentials systemd hands the service
    // (docs/CONFIG.md, "Paths and secrets under systemd").
    ServiceEnvironment environment;
    for (const auto& variable :
         {std::make_pair("STATE_DIRECTORY", &environment.state_directory),
          std::make_pair("RUNTIME_DIRECTORY", &environment.runtime_directory),
          std::make_pair("CREDENTIALS_DIRECTORY", &environment.credentials_directory)}) {
        const char* value = std::getenv(variable.first);
        *variable.second = value != nullptr ? value : "";
    }
    // Under DynamicUser=yes, systemd hands over /var/lib/tether as its own
    // symlink to private/tether. The private-directory check refuses symlinks
    // (a planted link is how state gets redirected), so the link the service
    // manager made is resolved here, and only that one: a configured state_dir
    // is still taken as written.
    const std::string handed =
        environment.state_directory.substr(0, environment.state_directory.find(':'));
    if (!handed.empty()) {
        if (char* resolved = ::realpath(handed.c_str(), nullptr)) {
            environment.state_directory = resolved;
            std::free(resolved);
        }
    }
    if (!resolve_paths(&config, environment, !check_only, &error)) {
        std::fprintf(stderr, "tetherd: %s: %s\n", config_path, error.c_str());
        return 2;
    }
    if (check_only) {
        std::printf("%s: valid: %s\n", config_path, describe(config).c_str());
        return 0;
    }
    // A configuration that parses but cannot work (the shipped placeholder
    // URL, no token yet): one line naming all of it, before anything starts.
    const std::string missing = missing_for_start(config, config_path);
    if (!missing.empty()) {
        std::fprintf(stderr, "tetherd: not started: %s\n", missing.c_str());
        return 2;
    }

    if (::pipe(g_signal_pipe) != 0) {
        std::fprintf(stderr, "tetherd: cannot create the signal pipe\n");
        return 1;
    }
    for (int fd : g_signal_pipe) {
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    struct sigaction action {};
    action.sa_handler = on_signal;
    ::sigaction(SIGTERM, &action, nullptr);
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGHUP, &action, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    static Log log(config.log_level, port::monotonic_now());
    static Daemon daemon(config, log);
    return daemon.run();
}

}  // namespace
}  // namespace tether::daemon

int main(int argc, char** argv) {
    return tether::daemon::run(argc, argv);
}

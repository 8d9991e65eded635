// SPDX-License-Identifier: MIT
// tetherctl: talks to a running tetherd over its control socket
// (<run_dir>/control.sock; the protocol is in apps/tetherd/lib/control_socket.h).
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include <cjson/cJSON.h>

#ifndef TETHERCTL_VERSION
#define TETHERCTL_VERSION "0.0.0"
#endif

namespace {

// Exit codes (documented in --help).
constexpr int kExitOnline = 0;
constexpr int kExitNotOnline = 1;
constexpr int kExitUsage = 2;
constexpr int kExitGivenUp = 3;
constexpr int kExitUnreachable = 4;
constexpr int kExitFlushTimeout = 5;

const char kHelp[] =
    "tetherctl - watch and steer a running tetherd\n"
    "\n"
    "Usage: tetherctl [--run-dir=DIR] status [--json] [--watch [--interval=MS]]\n"
    "       tetherctl [--run-dir=DIR] reconnect\n"
    "       tetherctl [--run-dir=DIR] flush [--timeout=MS]\n"
    "       tetherctl --version | --help\n"
    "\n"
    "tetherctl talks to tetherd over the UNIX socket control.sock in the daemon's run\n"
    "directory (mode 0660: the daemon's user and group may use it).\n"
    "\n"
    "Commands:\n"
    "  status             the link's state, endpoint, retry countdown, round-trip time,\n"
    "                     outbox and spool depth, last error, acknowledged seq,\n"
    "                     downlink counts and device-state versions\n"
    "  reconnect          connect now: a backoff wait (or a give-up) ends at once\n"
    "  flush              sync the spool and wait until every message accepted so far\n"
    "                     is acknowledged by the server\n"
    "\n"
    "Options:\n"
    "  --run-dir=DIR      tetherd's run directory (default: $TETHER_RUN_DIR, else\n"
    "                     /run/tether)\n"
    "  --json             status: print the daemon's status JSON as it is\n"
    "  --watch            status: redraw in place every interval until Ctrl-C or q\n"
    "  --interval=MS      status --watch: redraw period (default 1000, 100..60000)\n"
    "  --timeout=MS       flush: how long to wait (default 10000, 1..600000)\n"
    "  -h, --help         print this help and exit\n"
    "  --version          print the version and exit\n"
    "Every option that takes a value accepts --option VALUE and --option=VALUE.\n"
    "\n"
    "Exit status:\n"
    "  0  status: online; reconnect, flush: done (status --watch: ended by the user)\n"
    "  1  status: not online (connecting, waiting to retry, stopped)\n"
    "  2  usage error\n"
    "  3  status: given up (max_attempts reached, or superseded)\n"
    "  4  tetherd not reachable: no socket, refused, permission denied (why on stderr)\n"
    "  5  flush: not every message was acknowledged within the timeout\n";

volatile sig_atomic_t g_interrupted = 0;

extern "C" void on_interrupt(int) {
    g_interrupted = 1;
}

std::uint64_t monotonic_ms() {
    struct timespec now {};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<std::uint64_t>(now.tv_sec) * 1000u +
           static_cast<std::uint64_t>(now.tv_nsec) / 1000000u;
}

int usage_unknown(const char* arg) {
    std::fprintf(stderr, "tetherctl: unknown option '%s' (see --help)\n", arg);
    return kExitUsage;
}

int usage_needs_value(const char* name) {
    std::fprintf(stderr, "tetherctl: option '--%s' needs a value (see --help)\n", name);
    return kExitUsage;
}

// One "--name" / "--name=value" / "--name value" option.
struct Args {
    int argc;
    char** argv;
    int index = 1;
};

enum class Match { kNo, kYes, kMissingValue };

Match take_value(Args& args, const char* name, const char** value) {
    const char* arg = args.argv[args.index];
    const std::size_t length = std::strlen(name);
    if (std::strncmp(arg, "--", 2) != 0 || std::strncmp(arg + 2, name, length) != 0) {
        return Match::kNo;
    }
    const char* rest = arg + 2 + length;
    if (*rest == '=') {
        *value = rest + 1;
        return Match::kYes;
    }
    if (*rest != '\0') {
        return Match::kNo;
    }
    if (args.index + 1 >= args.argc) {
        return Match::kMissingValue;
    }
    *value = args.argv[++args.index];
    return Match::kYes;
}

bool parse_ms(const char* text, std::uint32_t low, std::uint32_t high, std::uint32_t* out) {
    char* end = nullptr;
    errno = 0;
    const unsigned long value = std::strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || value < low ||
        value > high) {
        return false;
    }
    *out = static_cast<std::uint32_t>(value);
    return true;
}

// ---- the socket -------------------------------------------------------------

struct Reply {
    int exit_code = 0;  // kExitUnreachable, or 0 with text
    std::string text;
    std::string error;
};

// Sends `request` and reads the answer until the daemon closes, for at most
// `timeout_ms`.
Reply ask(const std::string& path, const char* request, std::uint32_t timeout_ms) {
    Reply reply;
    sockaddr_un address{};
    if (path.size() >= sizeof address.sun_path) {
        reply.exit_code = kExitUnreachable;
        reply.error = "the socket path is longer than a UNIX socket address holds";
        return reply;
    }
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        const int error = errno;
        if (fd >= 0) {
            ::close(fd);
        }
        reply.exit_code = kExitUnreachable;
        reply.error = std::strerror(error);
        if (error == ENOENT) {
            reply.error += " (is tetherd running? is --run-dir right?)";
        } else if (error == ECONNREFUSED) {
            reply.error += " (a stale socket: tetherd is not running)";
        } else if (error == EACCES || error == EPERM) {
            reply.error += " (run as tetherd's user or group, or with sudo)";
        }
        return reply;
    }
    std::string line = std::string(request) + "\n";
    if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
        reply.exit_code = kExitUnreachable;
        reply.error = std::string("cannot send the request: ") + std::strerror(errno);
        ::close(fd);
        return reply;
    }
    const std::uint64_t deadline = monotonic_ms() + timeout_ms;
    for (;;) {
        const std::uint64_t now = monotonic_ms();
        if (now >= deadline) {
            reply.exit_code = kExitUnreachable;
            reply.error = "no answer from tetherd in time";
            break;
        }
        struct pollfd poll_fd {
            fd, POLLIN, 0
        };
        const int ready = ::poll(&poll_fd, 1, static_cast<int>(deadline - now));
        if (ready < 0 && errno == EINTR) {
            if (g_interrupted) {
                reply.exit_code = kExitUnreachable;
                reply.error = "interrupted";
                break;
            }
            continue;
        }
        if (ready <= 0) {
            continue;
        }
        char buffer[4096];
        const ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            reply.exit_code = kExitUnreachable;
            reply.error = std::string("reading the answer: ") + std::strerror(errno);
            break;
        }
        if (got == 0) {
            if (reply.text.empty()) {
                reply.exit_code = kExitUnreachable;
                reply.error = "tetherd closed the connection without an answer";
            }
            break;
        }
        reply.text.append(buffer, static_cast<std::size_t>(got));
    }
    ::close(fd);
    return reply;
}

// ---- status -----------------------------------------------------------------

const cJSON* field(const cJSON* object, const char* name) {
    return cJSON_GetObjectItemCaseSensitive(object, name);
}

std::string text_of(const cJSON* object, const char* name) {
    const cJSON* item = field(object, name);
    return cJSON_IsString(item) ? item->valuestring : "";
}

bool number_of(const cJSON* object, const char* name, double* out) {
    const cJSON* item = field(object, name);
    if (!cJSON_IsNumber(item)) {
        return false;
    }
    *out = item->valuedouble;
    return true;
}

std::uint64_t count_of(const cJSON* object, const char* name) {
    double value = 0;
    return number_of(object, name, &value) && value > 0 ? static_cast<std::uint64_t>(value) : 0;
}

std::string seconds_text(double ms) {
    char text[32];
    if (ms < 60000) {
        std::snprintf(text, sizeof text, "%.1f s", ms / 1000.0);
    } else if (ms < 3600000) {
        const auto seconds = static_cast<std::uint64_t>(ms / 1000.0);
        std::snprintf(text, sizeof text, "%" PRIu64 " min %" PRIu64 " s", seconds / 60,
                      seconds % 60);
    } else {
        std::snprintf(text, sizeof text, "%.1f h", ms / 3600000.0);
    }
    return text;
}

std::string wall_text(double unix_ms) {
    const auto seconds = static_cast<time_t>(unix_ms / 1000.0);
    struct tm parts {};
    ::gmtime_r(&seconds, &parts);
    char text[40];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &parts);
    return text;
}

int exit_code_for(const std::string& state) {
    if (state == "online") {
        return kExitOnline;
    }
    return state == "given_up" ? kExitGivenUp : kExitNotOnline;
}

// The human summary: one "label  value" line each.
std::string summary(const cJSON* status) {
    std::string out;
    char line[512];
    auto add = [&](const char* label, const std::string& value) {
        std::snprintf(line, sizeof line, "%-12s %s\n", label, value.c_str());
        out += line;
    };
    const std::string state = text_of(status, "state");
    double since = 0;
    std::string state_text = state;
    if (number_of(status, "since_ms", &since) && since > 0) {
        struct timespec now {};
        ::clock_gettime(CLOCK_REALTIME, &now);
        const double now_ms =
            static_cast<double>(now.tv_sec) * 1000.0 + static_cast<double>(now.tv_nsec) / 1e6;
        state_text += " since " + wall_text(since) + " (" +
                      seconds_text(now_ms > since ? now_ms - since : 0) + ")";
    }
    add("state", state_text);
    add("endpoint", text_of(status, "endpoint"));
    double retry = 0;
    const std::uint64_t attempt = count_of(status, "attempt");
    if (state == "waiting_to_retry" && number_of(status, "retry_in_ms", &retry)) {
        add("retry", "in " + seconds_text(retry) + " (attempt " + std::to_string(attempt) +
                         "; tetherctl reconnect skips the wait)");
    } else if (state == "given_up") {
        add("retry", "none: gave up after attempt " + std::to_string(attempt) +
                         " (tetherctl reconnect tries again)");
    } else {
        add("retry", "-");
    }
    double rtt = 0;
    std::string rtt_text = "-";
    if (number_of(status, "rtt_ms", &rtt)) {
        rtt_text = std::to_string(static_cast<long long>(rtt)) + " ms";
        if (state != "online") {
            rtt_text += " (last, while online)";
        }
    }
    add("rtt", rtt_text);
    add("outbox", std::to_string(count_of(status, "queued")) + " queued, " +
                      std::to_string(count_of(status, "dropped")) + " dropped, " +
                      std::to_string(count_of(status, "refused")) + " refused");
    const std::string spool = text_of(status, "spool");
    std::string spool_text = spool;
    if (spool != "off") {
        spool_text += ", " + std::to_string(count_of(status, "spool_records")) + " records, " +
                      std::to_string(count_of(status, "spool_bytes")) + " of " +
                      std::to_string(count_of(status, "spool_capacity_bytes")) + " bytes";
    }
    const std::string storage_error = text_of(status, "storage_error");
    if (!storage_error.empty()) {
        spool_text += " (" + storage_error + ")";
    }
    add("spool", spool_text);
    const std::string reason = text_of(status, "reason");
    const std::string detail = text_of(status, "detail");
    add("last error", reason.empty() ? "-" : reason + (detail.empty() ? "" : " (" + detail + ")"));
    add("acked", "seq " + std::to_string(count_of(status, "acked")));
    const cJSON* downlink = field(status, "downlink");
    if (cJSON_IsObject(downlink)) {
        add("downlink", std::to_string(count_of(downlink, "delivered")) + " delivered, " +
                            std::to_string(count_of(downlink, "dead_lettered")) +
                            " dead-lettered, " + std::to_string(count_of(downlink, "failures")) +
                            " failures, confirmed seq " +
                            std::to_string(count_of(downlink, "confirmed")));
    }
    if (text_of(status, "protocol") == "websocket") {
        // Plain WebSocket: what is promised, and what a dying link left in doubt.
        add("protocol", "websocket, " + text_of(status, "delivery") + ": " +
                            std::to_string(count_of(status, "uplink_confirmed")) +
                            " confirmed by pong, " +
                            std::to_string(count_of(status, "uplink_in_doubt")) + " in doubt");
    }
    const std::string session = text_of(status, "session");
    add("session", session.empty() ? "-"
                                   : session + " (version " +
                                         std::to_string(count_of(status, "version")) + ")");
    const cJSON* device = field(status, "device_state");
    if (cJSON_IsObject(device)) {
        const bool in_sync = cJSON_IsTrue(field(device, "in_sync"));
        const bool failing = cJSON_IsTrue(field(device, "apply_failing"));
        add("desired", "received " + std::to_string(count_of(device, "desired_received")) +
                           ", applied " + std::to_string(count_of(device, "desired_applied")) +
                           (failing ? " (apply failing)" : ""));
        add("reported",
            "version " + std::to_string(count_of(device, "reported_version")) +
                (cJSON_IsTrue(field(device, "report_pending")) ? ", report pending" : "") +
                (in_sync ? ", in sync" : ", not in sync"));
    }
    return out;
}

int print_status(const Reply& reply, bool json) {
    if (json) {
        std::fputs(reply.text.c_str(), stdout);
    }
    cJSON* status = cJSON_Parse(reply.text.c_str());
    if (status == nullptr || !cJSON_IsObject(status)) {
        cJSON_Delete(status);
        std::fprintf(stderr, "tetherctl: tetherd answered something that is not status: %.200s\n",
                     reply.text.c_str());
        return kExitUnreachable;
    }
    const int code = exit_code_for(text_of(status, "state"));
    if (!json) {
        std::fputs(summary(status).c_str(), stdout);
    }
    cJSON_Delete(status);
    return code;
}

// --watch: one screen, redrawn from the top (cursor home, each line cleared
// to its end, the rest of the screen cleared), so nothing scrolls.
int watch(const std::string& path, std::uint32_t interval_ms) {
    struct sigaction action {};
    action.sa_handler = on_interrupt;
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);
    const bool tty_in = ::isatty(STDIN_FILENO) != 0;
    struct termios saved {};
    if (tty_in && ::tcgetattr(STDIN_FILENO, &saved) == 0) {
        struct termios raw = saved;
        raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        ::tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }
    std::fputs("\x1b[?25l\x1b[H\x1b[2J", stdout);  // hide the cursor, clear once
    while (!g_interrupted) {
        const Reply reply = ask(path, "status", 3000);
        std::string screen;
        if (reply.exit_code != 0) {
            screen = "tetherd not reachable at " + path + ": " + reply.error + "\n";
        } else {
            cJSON* status = cJSON_Parse(reply.text.c_str());
            screen = status != nullptr ? summary(status) : "tetherd answered: " + reply.text;
            cJSON_Delete(status);
        }
        screen += "\n(every " + std::to_string(interval_ms) + " ms; q or Ctrl-C ends)\n";
        std::string frame = "\x1b[H";
        std::size_t start = 0;
        while (start < screen.size()) {
            const std::size_t end = screen.find('\n', start);
            frame += screen.substr(start, end - start) + "\x1b[K\r\n";
            start = end == std::string::npos ? screen.size() : end + 1;
        }
        frame += "\x1b[J";
        std::fputs(frame.c_str(), stdout);
        std::fflush(stdout);
        const std::uint64_t until = monotonic_ms() + interval_ms;
        while (!g_interrupted) {
            const std::uint64_t now = monotonic_ms();
            if (now >= until) {
                break;
            }
            struct pollfd input {
                STDIN_FILENO, POLLIN, 0
            };
            const int ready = ::poll(&input, tty_in ? 1 : 0, static_cast<int>(until - now));
            if (ready > 0) {
                char key = 0;
                if (::read(STDIN_FILENO, &key, 1) == 1 && (key == 'q' || key == 'Q')) {
                    g_interrupted = 1;
                }
            }
        }
    }
    if (tty_in) {
        ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    }
    std::fputs("\x1b[?25h\n", stdout);  // the cursor back
    std::fflush(stdout);
    return kExitOnline;
}

}  // namespace

int main(int argc, char** argv) {
    Args args{argc, argv};
    std::string run_dir;
    if (const char* env = std::getenv("TETHER_RUN_DIR"); env != nullptr && *env != '\0') {
        run_dir = env;
    } else {
        run_dir = "/run/tether";
    }
    std::string command;
    bool json = false;
    bool watching = false;
    bool interval_given = false;
    bool timeout_given = false;
    std::uint32_t interval_ms = 1000;
    std::uint32_t timeout_ms = 10000;
    for (; args.index < argc; ++args.index) {
        const char* arg = argv[args.index];
        const char* value = nullptr;
        if (std::strcmp(arg, "-h") == 0 || std::strcmp(arg, "--help") == 0) {
            std::fputs(kHelp, stdout);
            return 0;
        }
        if (std::strcmp(arg, "--version") == 0) {
            std::printf("tetherctl %s\n", TETHERCTL_VERSION);
            return 0;
        }
        if (std::strcmp(arg, "--json") == 0) {
            json = true;
            continue;
        }
        if (std::strcmp(arg, "--watch") == 0) {
            watching = true;
            continue;
        }
        Match match = take_value(args, "run-dir", &value);
        if (match == Match::kMissingValue) {
            return usage_needs_value("run-dir");
        }
        if (match == Match::kYes) {
            if (*value == '\0') {
                return usage_needs_value("run-dir");
            }
            run_dir = value;
            continue;
        }
        match = take_value(args, "interval", &value);
        if (match == Match::kMissingValue) {
            return usage_needs_value("interval");
        }
        if (match == Match::kYes) {
            if (!parse_ms(value, 100, 60000, &interval_ms)) {
                std::fprintf(stderr,
                             "tetherctl: --interval=%s: not a number of ms in 100..60000 (see "
                             "--help)\n",
                             value);
                return kExitUsage;
            }
            interval_given = true;
            continue;
        }
        match = take_value(args, "timeout", &value);
        if (match == Match::kMissingValue) {
            return usage_needs_value("timeout");
        }
        if (match == Match::kYes) {
            if (!parse_ms(value, 1, 600000, &timeout_ms)) {
                std::fprintf(stderr,
                             "tetherctl: --timeout=%s: not a number of ms in 1..600000 (see "
                             "--help)\n",
                             value);
                return kExitUsage;
            }
            timeout_given = true;
            continue;
        }
        if (arg[0] == '-') {
            return usage_unknown(arg);
        }
        if (!command.empty()) {
            std::fprintf(stderr, "tetherctl: unexpected argument '%s' (see --help)\n", arg);
            return kExitUsage;
        }
        command = arg;
        if (command != "status" && command != "reconnect" && command != "flush") {
            std::fprintf(stderr, "tetherctl: unknown command '%s' (see --help)\n", arg);
            return kExitUsage;
        }
    }
    if (command.empty()) {
        std::fprintf(stderr,
                     "tetherctl: a command is needed: status, reconnect or flush (see "
                     "--help)\n");
        return kExitUsage;
    }
    const bool status = command == "status";
    if ((!status && (json || watching || interval_given)) || (interval_given && !watching) ||
        (json && watching) || (timeout_given && command != "flush")) {
        std::fprintf(stderr,
                     "tetherctl: an option given does not apply to '%s' (--json, --watch and "
                     "--interval are for status, --interval needs --watch, --timeout is for "
                     "flush; see --help)\n",
                     command.c_str());
        return kExitUsage;
    }
    ::signal(SIGPIPE, SIG_IGN);
    const std::string path = run_dir + "/control.sock";
    if (status && watching) {
        return watch(path, interval_ms);
    }
    const std::string request =
        command == "flush" ? "flush " + std::to_string(timeout_ms) : command;
    const Reply reply = ask(path, request.c_str(), command == "flush" ? timeout_ms + 5000 : 5000);
    if (reply.exit_code != 0) {
        std::fprintf(stderr, "tetherctl: cannot reach tetherd at %s: %s\n", path.c_str(),
                     reply.error.c_str());
        return reply.exit_code;
    }
    if (status) {
        return print_status(reply, json);
    }
    std::fputs(reply.text.c_str(), stdout);
    if (reply.text.compare(0, 3, "ok ") == 0) {
        return 0;
    }
    if (reply.text.compare(0, 19, "error flush_timeout") == 0) {
        return kExitFlushTimeout;
    }
    std::fprintf(stderr, "tetherctl: tetherd refused the request: %s", reply.text.c_str());
    return kExitUnreachable;
}

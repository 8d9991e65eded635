// SPDX-License-Identifier: MIT
// tether-redis-driver: RedisEngine over HiredisLink in one poll() loop,
// steered line by line on stdin, reporting every engine event on stdout, so
// tests/integration/test_redis_store.py can run the real engine against a real
// redis-server and read the result with redis-py.
//
// Usage: tether-redis-driver (--redis HOST:PORT | --sentinel HOST:PORT[,...] --master NAME)
//          [--prefix P] [--instance I] [--durability reply|replicas:N]
//          [--maxlen N] [--capacity N] [--timeout-ms N]
//
// Commands (one per line; payloads in hex, "-" for empty):
//   hello TICKET SESSION VERSION DEVICE LAST_DOWNLINK OLDEST_UPLINK USER
//   data SESSION SEQ HEX [AGE_MS]     -> "uplink result=..." (queued or why not)
//   gap SESSION FIRST LAST REASON     -> "gap result=..."
//   flush
//   ack SESSION SEQ                   -> "acked status=..."
//   push TICKET SESSION HEX           -> "push status=..."
//   next SESSION AFTER                -> "next seq=N payload=HEX" or "next seq=0"
//   stats SESSION                     -> "stats found=1 received=... ..."
//   release SESSION
//   since TICKET SESSION APPLIED      -> "event=desired_since ..."
//   set TICKET SESSION HEX [EXPECTED] -> "event=desired_set ..."
//   applied SESSION VERSION           -> "applied status=..."
//   report TICKET SESSION ID BASE whole|patch HEX -> "event=reported ..."
//   read TICKET SESSION               -> "event=state ..."
//   ping                              -> "pong" (every earlier line is done)
// Events: "event=ready", "event=hello ...", "event=ack ...", "event=downlink",
// "event=superseded", "event=failed", "event=pushed", "event=desired_changed",
// "event=desired_since" (changes=VERSION:s|p:HEX,...), "event=desired_set",
// "event=reported", "event=state"; "event=log line=...". JSON documents are
// printed in hex (they may hold spaces). A state call the engine refuses at
// once prints its event with that status.
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "hiredis_link.h"
#include "tether/server/redis_engine.h"

using tether::Status;
using tether::TimeMs;
using namespace tether::server;

namespace {

TimeMs monotonic_ms() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<TimeMs>(static_cast<std::uint64_t>(now.tv_sec) * 1000u +
                               static_cast<std::uint64_t>(now.tv_nsec) / 1000000u);
}

std::uint64_t unix_ms() {
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    return static_cast<std::uint64_t>(now.tv_sec) * 1000u +
           static_cast<std::uint64_t>(now.tv_nsec) / 1000000u;
}

std::string hex(const std::vector<std::uint8_t>& bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string text;
    for (const std::uint8_t b : bytes) {
        text += digits[b >> 4];
        text += digits[b & 15];
    }
    return text.empty() ? "-" : text;
}

std::string hex(std::string_view text) {
    return hex(std::vector<std::uint8_t>(text.begin(), text.end()));
}

std::vector<std::uint8_t> unhex(const std::string& text) {
    std::vector<std::uint8_t> bytes;
    if (text == "-") {
        return bytes;
    }
    for (std::size_t i = 0; i + 1 < text.size(); i += 2) {
        bytes.push_back(static_cast<std::uint8_t>(std::stoul(text.substr(i, 2), nullptr, 16)));
    }
    return bytes;
}

void say(const std::string& line) {
    std::fputs(line.c_str(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

const char* decision_name(HelloDecision decision) {
    switch (decision) {
        case HelloDecision::kAccepted:
            return "accepted";
        case HelloDecision::kSuperseded:
            return "superseded";
        case HelloDecision::kForbidden:
            return "forbidden";
    }
    return "?";
}

class Printer final : public EngineEvents {
  public:
    void on_hello(std::uint64_t ticket, Status status, const HelloResult& r) override {
        std::ostringstream out;
        out << "event=hello ticket=" << ticket << " status=" << tether::to_string(status);
        if (status == Status::kOk) {
            out << " decision=" << decision_name(r.decision) << " resumed=" << r.resumed
                << " last_uplink=" << r.last_uplink << " recorded_hole=" << r.recorded_hole
                << " has_downlink_gap=" << r.has_downlink_gap
                << " gap_first=" << r.downlink_gap.first << " gap_last=" << r.downlink_gap.last
                << " replay_after=" << r.replay_after;
        }
        say(out.str());
    }
    void on_acknowledgeable(std::string_view session, std::uint64_t last) override {
        say("event=ack session=" + std::string(session) + " last_uplink=" + std::to_string(last));
    }
    void on_downlink_ready(std::string_view session) override {
        say("event=downlink session=" + std::string(session));
    }
    void on_superseded(std::string_view session, std::uint32_t version) override {
        say("event=superseded session=" + std::string(session) +
            " version=" + std::to_string(version));
    }
    void on_session_failed(std::string_view session, Status status) override {
        say("event=failed session=" + std::string(session) +
            " status=" + tether::to_string(status));
    }
    void on_pushed(std::uint64_t ticket, Status status, std::uint64_t seq) override {
        say("event=pushed ticket=" + std::to_string(ticket) +
            " status=" + tether::to_string(status) + " seq=" + std::to_string(seq));
    }
    void on_desired_changed(std::string_view session, std::uint64_t version) override {
        say("event=desired_changed session=" + std::string(session) +
            " version=" + std::to_string(version));
    }
    void on_desired_since(std::uint64_t ticket, Status status,
                          const std::vector<DesiredChange>& changes) override {
        std::string list;
        for (const DesiredChange& change : changes) {
            list += (list.empty() ? "" : ",") + std::to_string(change.version) +
                    (change.snapshot ? ":s:" : ":p:") + hex(change.document);
        }
        say("event=desired_since ticket=" + std::to_string(ticket) +
            " status=" + tether::to_string(status) + " changes=" + (list.empty() ? "-" : list));
    }
    void on_desired_set(std::uint64_t ticket, Status status, std::uint64_t version) override {
        say("event=desired_set ticket=" + std::to_string(ticket) +
            " status=" + tether::to_string(status) + " version=" + std::to_string(version));
    }
    void on_reported(std::uint64_t ticket, Status status, const ReportResult& r) override {
        static const char* const outcomes[] = {"applied", "repeated", "stale", "too_large",
                                               "unavailable"};
        say("event=reported ticket=" + std::to_string(ticket) + " status=" +
            tether::to_string(status) + " outcome=" + outcomes[static_cast<int>(r.outcome)] +
            " version=" + std::to_string(r.version) + " document=" + hex(r.document));
    }
    void on_state_read(std::uint64_t ticket, Status status, const StateDocuments& d) override {
        say("event=state ticket=" + std::to_string(ticket) + " status=" +
            tether::to_string(status) + " desired_version=" + std::to_string(d.desired_version) +
            " desired=" + hex(d.desired) + " desired_applied=" + std::to_string(d.desired_applied) +
            " reported_version=" + std::to_string(d.reported_version) + " reported=" +
            hex(d.reported) + " report_id=" + (d.report_id.empty() ? "-" : d.report_id));
    }
};

// A state call refused at once: its event, with the refusal.
void refused(const char* event, std::uint64_t ticket, Status status) {
    if (status != Status::kOk) {
        say(std::string("event=") + event + " ticket=" + std::to_string(ticket) +
            " status=" + tether::to_string(status));
    }
}

int usage(const char* why) {
    std::fprintf(stderr, "tether-redis-driver: %s\n", why);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    HiredisLinkOptions link_options;
    RedisEngineOptions options;
    options.instance = "driver";
    options.unix_time_ms = unix_ms;
    bool have_address = false;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        const std::string value = argv[i + 1];
        std::string error;
        if (flag == "--redis") {
            if (!parse_redis_address(value, &link_options.primary, &error)) {
                return usage(error.c_str());
            }
            have_address = true;
        } else if (flag == "--sentinel") {
            std::stringstream list(value);
            std::string item;
            while (std::getline(list, item, ',')) {
                RedisAddress address;
                if (!parse_redis_address(item, &address, &error)) {
                    return usage(error.c_str());
                }
                link_options.sentinels.push_back(address);
            }
            have_address = true;
        } else if (flag == "--master") {
            link_options.master_name = value;
        } else if (flag == "--prefix") {
            options.prefix = value;
        } else if (flag == "--instance") {
            options.instance = value;
        } else if (flag == "--durability") {
            if (!parse_redis_durability(value, &options)) {
                return usage("bad --durability");
            }
        } else if (flag == "--maxlen") {
            options.uplink_maxlen = std::strtoull(value.c_str(), nullptr, 10);
        } else if (flag == "--capacity") {
            options.replay_capacity = static_cast<std::uint32_t>(std::stoul(value));
        } else if (flag == "--timeout-ms") {
            link_options.command_timeout_ms = static_cast<std::uint32_t>(std::stoul(value));
        } else {
            return usage("unknown option");
        }
    }
    if (!have_address) {
        return usage("--redis or --sentinel is required");
    }
    link_options.log = [](std::string_view line) { say("event=log line=" + std::string(line)); };
    options.log = link_options.log;
    HiredisLink link(link_options);
    RedisEngine engine(link, options);
    Printer printer;
    engine.set_events(&printer);
    if (engine.open(monotonic_ms()) != Status::kOk) {
        return usage("the engine refused its options");
    }

    std::string input;
    bool was_ready = false;
    bool input_open = true;
    while (input_open || !input.empty()) {
        pollfd fds[1 + tether::Pollable::kMaxPollRequests];
        tether::PollRequest requests[tether::Pollable::kMaxPollRequests];
        const std::size_t count =
            engine.poll_requests(requests, tether::Pollable::kMaxPollRequests);
        fds[0] = pollfd{STDIN_FILENO, POLLIN, 0};
        for (std::size_t i = 0; i < count; ++i) {
            short events = 0;
            if (requests[i].read) {
                events = static_cast<short>(events | POLLIN);
            }
            if (requests[i].write) {
                events = static_cast<short>(events | POLLOUT);
            }
            fds[i + 1] = pollfd{requests[i].fd, events, 0};
        }
        int timeout = 1000;
        TimeMs at = 0;
        if (engine.next_deadline(&at)) {
            timeout = static_cast<int>(tether::time_until(monotonic_ms(), at));
        }
        ::poll(fds, static_cast<nfds_t>(count + 1), timeout);
        engine.service(monotonic_ms());
        if (engine.ready() != was_ready) {
            was_ready = engine.ready();
            say(was_ready ? "event=ready" : "event=not_ready");
        }
        if ((fds[0].revents & (POLLIN | POLLHUP)) != 0) {
            char buffer[65536];
            const ssize_t got = ::read(STDIN_FILENO, buffer, sizeof buffer);
            if (got <= 0) {
                input_open = false;
            } else {
                input.append(buffer, static_cast<std::size_t>(got));
            }
        }
        std::size_t newline;
        while ((newline = input.find('\n')) != std::string::npos) {
            std::istringstream line(input.substr(0, newline));
            input.erase(0, newline + 1);
            std::string verb;
            line >> verb;
            if (verb == "hello") {
                std::uint64_t ticket = 0;
                std::string session, device, user;
                HelloRequest request;
                line >> ticket >> session >> request.version >> device >> request.last_downlink >>
                    request.oldest_uplink >> user;
                request.session = session;
                request.device = device;
                if (user == "-") {
                    user.clear();  // "-": a token without a user
                }
                request.user = user;  // a view: `user` outlives the call
                request.next_uplink = request.oldest_uplink;
                const Status status = engine.hello(request, ticket);
                if (status != Status::kOk) {
                    say("event=hello ticket=" + std::to_string(ticket) +
                        " status=" + tether::to_string(status));
                }
            } else if (verb == "data") {
                std::string session, payload;
                std::uint64_t seq = 0;
                long age = -1;
                line >> session >> seq >> payload >> age;
                UplinkMeta meta;
                meta.received_unix_ms = unix_ms();
                if (age >= 0) {
                    meta.has_age = true;
                    meta.age_ms = static_cast<std::uint32_t>(age);
                }
                const std::vector<std::uint8_t> bytes = unhex(payload);
                say(std::string("uplink result=") +
                    to_string(engine.uplink_data(session, seq, bytes.data(), bytes.size(), meta)));
            } else if (verb == "gap") {
                std::string session, reason;
                std::uint64_t first = 0, last = 0;
                line >> session >> first >> last >> reason;
                say(std::string("gap result=") +
                    to_string(engine.uplink_gap(session, first, last, reason)));
            } else if (verb == "flush") {
                engine.flush(monotonic_ms());
            } else if (verb == "ack") {
                std::string session;
                std::uint64_t seq = 0;
                line >> session >> seq;
                say(std::string("acked status=") +
                    tether::to_string(engine.downlink_acked(session, seq)));
            } else if (verb == "push") {
                std::uint64_t ticket = 0;
                std::string session, payload;
                line >> ticket >> session >> payload;
                const std::vector<std::uint8_t> bytes = unhex(payload);
                say(std::string("push status=") +
                    tether::to_string(
                        engine.push_downlink(session, bytes.data(), bytes.size(), ticket)));
            } else if (verb == "next") {
                std::string session;
                std::uint64_t after = 0;
                line >> session >> after;
                const DownlinkMessage* message = engine.downlink_next(session, after);
                say(message == nullptr ? std::string("next seq=0")
                                       : "next seq=" + std::to_string(message->seq) +
                                             " payload=" + hex(message->payload));
            } else if (verb == "stats") {
                std::string session;
                line >> session;
                SessionStats s;
                if (!engine.session_stats(session, &s)) {
                    say("stats found=0");
                } else {
                    std::ostringstream out;
                    out << "stats found=1 received=" << s.received << " duplicates=" << s.duplicates
                        << " next_expected=" << s.next_expected
                        << " acknowledgeable=" << s.acknowledgeable << " gap_count=" << s.gap_count
                        << " downlink_last_seq=" << s.downlink_last_seq
                        << " downlink_held=" << s.downlink_held << " owner=" << s.owner
                        << " version=" << s.version;
                    say(out.str());
                }
            } else if (verb == "release") {
                std::string session;
                line >> session;
                engine.release(session);
            } else if (verb == "since") {
                std::uint64_t ticket = 0, applied = 0;
                std::string session;
                line >> ticket >> session >> applied;
                refused("desired_since", ticket, engine.desired_since(session, applied, ticket));
            } else if (verb == "set") {
                std::uint64_t ticket = 0, expected = 0;
                std::string session, patch;
                line >> ticket >> session >> patch;
                const bool has_expected = static_cast<bool>(line >> expected);
                const std::vector<std::uint8_t> bytes = unhex(patch);
                const std::string text(bytes.begin(), bytes.end());
                refused("desired_set", ticket,
                        engine.set_desired(session, text, has_expected, expected, ticket));
            } else if (verb == "applied") {
                std::string session;
                std::uint64_t version = 0;
                line >> session >> version;
                say(std::string("applied status=") +
                    tether::to_string(engine.desired_applied(session, version)));
            } else if (verb == "report") {
                std::uint64_t ticket = 0;
                std::string session, id, kind, document;
                ReportRequest request;
                line >> ticket >> session >> id >> request.base >> kind >> document;
                const std::vector<std::uint8_t> bytes = unhex(document);
                const std::string text(bytes.begin(), bytes.end());
                request.session = session;
                request.id = id;
                request.whole = kind == "whole";
                request.document = text;
                refused("reported", ticket, engine.report(request, ticket));
            } else if (verb == "read") {
                std::uint64_t ticket = 0;
                std::string session;
                line >> ticket >> session;
                refused("state", ticket, engine.read_state(session, ticket));
            } else if (verb == "ping") {
                say("pong");
            } else if (!verb.empty()) {
                say("error unknown command " + verb);
            }
        }
    }
    engine.close();
    return 0;
}

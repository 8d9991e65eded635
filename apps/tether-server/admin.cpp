// SPDX-License-Identifier: MIT
// The admin interface. Requests are small and come from tests and
// operators on the same host: a request is read whole (at most 8 KiB of
// header plus the body its Content-Length announces, up to the message
// limit), answered, and the connection closed.
#include "admin.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "server.h"
#include "tether/net/json_document.h"
#include "tether/net/tether_v1.h"

namespace tether::server {
namespace {

constexpr std::size_t kMaxHeader = 8192;

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

std::string percent_decode(const std::string& text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '+') {
            out += ' ';
        } else if (text[i] == '%' && i + 2 < text.size() + 0 && hex_value(text[i + 1]) >= 0 &&
                   hex_value(text[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
            i += 2;
        } else {
            out += text[i];
        }
    }
    return out;
}

bool parse_uint(const std::string& text, std::uint64_t max, std::uint64_t* out) {
    if (text.empty() || text.size() > 16) {
        return false;
    }
    std::uint64_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') {
            return false;
        }
        value = value * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (value > max) {
        return false;
    }
    *out = value;
    return true;
}

const char* reason_of(int status) {
    switch (status) {
        case 200:
            return "OK";
        case 400:
            return "Bad Request";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 401:
            return "Unauthorized";
        case 409:
            return "Conflict";
        case 413:
            return "Content Too Large";
        default:
            return "Internal Server Error";
    }
}

std::string json_ok(const std::string& extra = std::string()) {
    return "{\"ok\":true" + extra + "}\n";
}

std::string json_error(const std::string& message) {
    return "{\"ok\":false,\"error\":\"" + message + "\"}\n";
}

}  // namespace

bool query_value(const std::string& query, const char* name, std::string* value) {
    const std::string key = std::string(name) + "=";
    std::size_t start = 0;
    while (start <= query.size()) {
        std::size_t end = query.find('&', start);
        if (end == std::string::npos) {
            end = query.size();
        }
        if (query.compare(start, key.size(), key) == 0) {
            *value = percent_decode(query.substr(start + key.size(), end - start - key.size()));
            return true;
        }
        start = end + 1;
    }
    return false;
}

AdminConnection::AdminConnection(Server& server, int fd, TimeMs now)
    : server_(server), fd_(fd), opened_at_(now) {}

bool AdminConnection::expire(TimeMs now, std::uint32_t timeout_ms, std::uint32_t* wait_ms) {
    const std::uint32_t age = time_since(now, opened_at_);
    if (age < timeout_ms) {
        *wait_ms = timeout_ms - age;
        return false;
    }
    finish();
    return true;
}

AdminConnection::~AdminConnection() {
    finish();
}

void AdminConnection::finish() {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

short AdminConnection::poll_events() const {
    if (waiting_) {
        return 0;
    }
    return responded_ ? POLLOUT : POLLIN;
}

void AdminConnection::finish_push(Status status, std::uint64_t seq) {
    waiting_ = false;
    if (status == Status::kNotFound) {
        respond(404, "application/json", json_error("unknown session"));
    } else if (status == Status::kTooLarge) {
        respond(413, "application/json", json_error("too large"));
    } else if (status != Status::kOk) {
        respond(500, "application/json", json_error(to_string(status)));
    } else {
        respond(200, "application/json", json_ok(",\"seq\":" + std::to_string(seq)));
    }
}

void AdminConnection::finish_desired(Status status, std::uint64_t version) {
    waiting_ = false;
    const std::string at = ",\"version\":" + std::to_string(version);
    switch (status) {
        case Status::kOk:
            respond(200, "application/json", json_ok(at));
            return;
        case Status::kNotFound:
            respond(404, "application/json", json_error("unknown session"));
            return;
        case Status::kInvalidArgument:
            respond(400, "application/json", json_error("not one JSON object"));
            return;
        case Status::kConflict:
            respond(409, "application/json", "{\"ok\":false,\"error\":\"conflict\"" + at + "}\n");
            return;
        case Status::kTooLarge:
            respond(413, "application/json", json_error("too large"));
            return;
        case Status::kUnavailable:
            // The store is not reachable yet (or any more): try again shortly.
            respond(503, "application/json", json_error("store unavailable"), "Retry-After: 1\r\n");
            return;
        default:
            respond(500, "application/json", json_error(to_string(status)));
            return;
    }
}

void AdminConnection::finish_state(Status status, const StateDocuments& documents) {
    waiting_ = false;
    if (status == Status::kNotFound) {
        respond(404, "application/json", json_error("unknown session"));
        return;
    }
    if (status == Status::kUnavailable) {
        respond(503, "application/json", json_error("store unavailable"), "Retry-After: 1\r\n");
        return;
    }
    if (status != Status::kOk) {
        respond(500, "application/json", json_error(to_string(status)));
        return;
    }
    // The documents are compact JSON objects: embedded as they are.
    char delta[net::v1::kMaxStateDocument];
    std::size_t delta_size = 0;
    if (net::v1::state_delta(documents.desired.data(), documents.desired.size(),
                             documents.reported.data(), documents.reported.size(), delta,
                             sizeof delta, &delta_size) != net::v1::V1Status::kOk) {
        respond(500, "application/json", json_error("delta"));
        return;
    }
    respond(200, "application/json",
            json_ok(",\"desired_version\":" + std::to_string(documents.desired_version) +
                    ",\"desired\":" + documents.desired +
                    ",\"desired_applied\":" + std::to_string(documents.desired_applied) +
                    ",\"reported_version\":" + std::to_string(documents.reported_version) +
                    ",\"reported\":" + documents.reported +
                    ",\"delta\":" + std::string(delta, delta_size)));
}

void AdminConnection::service(TimeMs now) {
    if (waiting_) {
        return;
    }
    if (responded_) {
        write_out();
        return;
    }
    char buffer[4096];
    for (;;) {
        const ssize_t got = ::recv(fd_, buffer, sizeof buffer, 0);
        if (got > 0) {
            in_.append(buffer, static_cast<std::size_t>(got));
            if (in_.size() > kMaxHeader + std::max(server_.options().max_message_size,
                                                   2 * net::v1::kMaxStateDocument)) {
                respond(413, "application/json", json_error("too large"));
                return;
            }
            continue;
        }
        if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            finish();
            return;
        }
        if (errno == EINTR) {
            continue;
        }
        break;
    }
    const std::size_t header_end = in_.find("\r\n\r\n");
    if (header_end == std::string::npos) {
        if (in_.size() > kMaxHeader) {
            respond(413, "application/json", json_error("header too large"));
        }
        return;
    }
    std::size_t content_length = 0;
    std::string lower = in_.substr(0, header_end);
    for (char& c : lower) {
        c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    const std::size_t length_at = lower.find("\r\ncontent-length:");
    if (length_at != std::string::npos) {
        content_length =
            static_cast<std::size_t>(std::strtoul(lower.c_str() + length_at + 17, nullptr, 10));
    }
    if (in_.size() < header_end + 4 + content_length) {
        return;
    }
    handle(now);
}

void AdminConnection::handle(TimeMs now) {
    const std::size_t header_end = in_.find("\r\n\r\n");
    const std::string body = in_.substr(header_end + 4);
    const std::size_t line_end = in_.find("\r\n");
    const std::string line = in_.substr(0, line_end);
    const std::size_t space1 = line.find(' ');
    const std::size_t space2 = line.find(' ', space1 + 1);
    if (space1 == std::string::npos || space2 == std::string::npos) {
        respond(400, "application/json", json_error("bad request line"));
        return;
    }
    const std::string method = line.substr(0, space1);
    const std::string target = line.substr(space1 + 1, space2 - space1 - 1);
    const std::size_t question = target.find('?');
    const std::string path = target.substr(0, question);
    const std::string query = question == std::string::npos ? "" : target.substr(question + 1);
    std::string value;
    std::uint64_t number = 0;

    if (path == "/stats") {
        if (method != "GET") {
            respond(405, "application/json", json_error("GET only"));
            return;
        }
        respond(200, "application/json", server_.stats_json());
        return;
    }
    if (path == "/metrics") {
        // Read-only, like /stats: no admin token (docs/METRICS.md).
        if (method != "GET") {
            respond(405, "application/json", json_error("GET only"));
            return;
        }
        respond(200, "text/plain; version=0.0.4; charset=utf-8", server_.metrics_text());
        return;
    }
    const bool session_path = path.rfind("/sessions/", 0) == 0;
    if (session_path && method == "GET" && path.size() == 10 + kSessionIdLength + 6 &&
        path.compare(path.size() - 6, 6, "/state") == 0) {
        // Read-only, like /stats: no token needed.
        const Status asked = server_.read_state(path.substr(10, kSessionIdLength), this);
        if (asked == Status::kOk) {
            waiting_ = true;  // finish_state() answers
        } else {
            finish_state(asked, StateDocuments{});
        }
        return;
    }
    if (method == "POST" && !server_.admin_authorized(in_.substr(0, header_end), path)) {
        respond(401, "application/json", json_error("admin token required"),
                "WWW-Authenticate: Bearer realm=\"tether-server admin\"\r\n");
        return;
    }
    if (method != "POST") {
        respond(path.rfind("/faults/", 0) == 0 || path == "/quit" ||
                        path.rfind("/tokens/", 0) == 0 || path.rfind("/sessions/", 0) == 0
                    ? 405
                    : 404,
                "application/json", json_error("not found"));
        return;
    }
    if (path == "/faults/reset") {
        server_.fault_reset();
        respond(200, "application/json", json_ok());
    } else if (path == "/faults/close") {
        if (!query_value(query, "code", &value) || !parse_uint(value, 4999, &number) ||
            number < 1000) {
            respond(400, "application/json", json_error("code=1000..4999 required"));
            return;
        }
        std::string reason;
        (void)query_value(query, "reason", &reason);
        if (reason.size() > 120) {
            respond(400, "application/json", json_error("reason too long"));
            return;
        }
        server_.fault_close(static_cast<std::uint16_t>(number), reason, now);
        respond(200, "application/json", json_ok());
    } else if (path == "/faults/silence") {
        if (!query_value(query, "ms", &value) || !parse_uint(value, 86400000, &number)) {
            respond(400, "application/json", json_error("ms required"));
            return;
        }
        server_.fault_silence(static_cast<std::uint32_t>(number), now);
        respond(200, "application/json", json_ok());
    } else if (path == "/faults/reject") {
        std::uint64_t status = 503;
        std::uint64_t ms = 0;
        std::uint64_t retry_after = 0;
        bool has_retry_after = false;
        if (query_value(query, "status", &value) &&
            (!parse_uint(value, 599, &status) ||
             (status != 400 && status != 401 && status != 403 && status != 404 && status != 426 &&
              status != 429 && status != 500 && status != 503))) {
            respond(400, "application/json", json_error("status: 400 401 403 404 426 429 500 503"));
            return;
        }
        if (!query_value(query, "ms", &value) || !parse_uint(value, 86400000, &ms)) {
            respond(400, "application/json", json_error("ms required"));
            return;
        }
        if (query_value(query, "retry_after", &value)) {
            if (!parse_uint(value, 86400, &retry_after)) {
                respond(400, "application/json", json_error("bad retry_after"));
                return;
            }
            has_retry_after = true;
        }
        server_.fault_reject(static_cast<std::uint16_t>(status), has_retry_after,
                             static_cast<std::uint32_t>(retry_after),
                             static_cast<std::uint32_t>(ms), now);
        respond(200, "application/json", json_ok());
    } else if (path == "/tokens/expire") {
        const bool all = query_value(query, "all", &value) && value == "1";
        std::string token;
        if (!all && !query_value(query, "token", &token)) {
            respond(400, "application/json", json_error("token=X or all=1 required"));
            return;
        }
        const std::size_t result = server_.expire_tokens(token, all, now);
        if (result == 0) {
            respond(404, "application/json", json_error("unknown token"));
            return;
        }
        respond(200, "application/json", json_ok(",\"closed\":" + std::to_string(result - 1)));
    } else if (path.rfind("/sessions/", 0) == 0 && path.size() > 15 &&
               path.compare(path.size() - 5, 5, "/push") == 0) {
        const std::string session = path.substr(10, path.size() - 15);
        const Status pushed = server_.push_downlink(session, body, this);
        if (pushed == Status::kOk) {
            waiting_ = true;  // finish_push() answers
        } else {
            finish_push(pushed, 0);
        }
    } else if (session_path && path.size() > 18 &&
               path.compare(path.size() - 8, 8, "/desired") == 0) {
        const std::string session = path.substr(10, path.size() - 18);
        std::uint64_t expected = 0;
        const bool has_expected = query_value(query, "expect", &value);
        if (has_expected && !parse_uint(value, kMaxSeq, &expected)) {
            respond(400, "application/json", json_error("expect=VERSION"));
            return;
        }
        const Status asked = server_.set_desired(session, body, has_expected, expected, this);
        if (asked == Status::kOk) {
            waiting_ = true;  // finish_desired() answers
        } else {
            finish_desired(asked, 0);
        }
    } else if (path == "/quit") {
        server_.request_quit();
        respond(200, "application/json", json_ok());
    } else {
        respond(404, "application/json", json_error("not found"));
    }
}

void AdminConnection::respond(int status, const std::string& content_type, const std::string& body,
                              const char* extra_headers) {
    out_ = "HTTP/1.1 " + std::to_string(status) + " " + reason_of(status) +
           "\r\nContent-Type: " + content_type +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra_headers +
           "Connection: close\r\n\r\n" + body;
    responded_ = true;
    write_out();
}

void AdminConnection::write_out() {
    while (written_ < out_.size()) {
        const ssize_t sent =
            ::send(fd_, out_.data() + written_, out_.size() - written_, MSG_NOSIGNAL);
        if (sent > 0) {
            written_ += static_cast<std::size_t>(sent);
            continue;
        }
        if (sent < 0 && errno == EINTR) {
            continue;
        }
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        break;
    }
    finish();
}

}  // namespace tether::server

// SPDX-License-Identifier: MIT
// tether-bench-sink: the WebSocket server every sender of make bench talks to.
//
// It must never be the bottleneck, so it does as little per byte as a correct
// server can: one thread, level-triggered epoll, a 512 KiB read buffer drained
// until the socket is empty, and a frame parser that steps over data payloads
// without unmasking or copying them. Only control frames (ping, close) are
// gathered and unmasked, since their payload is needed for the reply.
//
// Output (stdout, one flushed line each):
//   listen=PORT
//   conn id=K messages=N bytes=B close_code=C elapsed_us=T [error=WHAT]
// N counts complete data messages (a fragmented one once), B their payload
// bytes, C the code of the client's close frame (1005 if it carried none,
// 1006 if none arrived), T the microseconds from the 101 being written to the
// client's close frame arriving (to the teardown when no close frame came).
//
// The client's close frame is answered with a close carrying the same code
// (an empty one for an empty one), then a FIN; the socket is closed once the
// client has closed its side, or 2 s later. A protocol error (unmasked
// frame, reserved bits, unknown opcode, bad fragmentation, oversized or
// fragmented control frame, invalid close code) is answered with close 1002
// and reported with error="...". Pings are answered with pongs.
//
// Text payloads are not checked for UTF-8: that would mean reading every byte.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <mbedtls/base64.h>
#include <mbedtls/sha1.h>

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kReadBufferSize = 512 * 1024;
constexpr size_t kMaxRequestSize = 8192;
constexpr auto kLingerAfterClose = std::chrono::seconds(2);
constexpr auto kHandshakeTimeout = std::chrono::seconds(10);

constexpr uint8_t kOpContinuation = 0x0;
constexpr uint8_t kOpText = 0x1;
constexpr uint8_t kOpBinary = 0x2;
constexpr uint8_t kOpClose = 0x8;
constexpr uint8_t kOpPing = 0x9;
constexpr uint8_t kOpPong = 0xA;

constexpr uint16_t kCloseNoStatus = 1005;
constexpr uint16_t kCloseAbnormal = 1006;
constexpr uint16_t kCloseProtocolError = 1002;

enum class Phase { kHandshake, kOpen, kClosing };

struct Connection {
    int fd = -1;
    uint64_t id = 0;
    Phase phase = Phase::kHandshake;
    std::string request;  // the HTTP upgrade request, until its blank line
    std::string out;      // bytes the kernel did not take yet
    bool want_write = false;
    Clock::time_point deadline{};
    Clock::time_point opened{};  // the 101 fully written
    Clock::time_point close_arrived{};
    bool upgraded_flushed = false;

    // Frame parser. A header is parsed straight from the read buffer when it
    // is whole there; otherwise its bytes collect in `header` (at most 14).
    uint8_t header[14] = {};
    size_t header_have = 0;
    uint64_t skip = 0;       // data payload bytes still to step over
    bool frame_fin = false;  // of the data frame being skipped
    uint8_t control_op = 0;  // nonzero while gathering a control payload
    uint8_t control_mask[4] = {};
    uint8_t control[125] = {};
    size_t control_len = 0;
    size_t control_have = 0;
    bool in_message = false;  // a fragmented data message awaits continuation

    uint64_t messages = 0;
    uint64_t bytes = 0;
    uint16_t close_code = kCloseAbnormal;
    const char* error = nullptr;
    bool shutdown_pending = false;  // a FIN to send once `out` is flushed
    bool finished = false;
};

std::string websocket_accept(const std::string& key) {
    static const char kGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    std::string joined = key + kGuid;
    unsigned char digest[20];
    mbedtls_sha1_ret(reinterpret_cast<const unsigned char*>(joined.data()), joined.size(), digest);
    unsigned char encoded[64];
    size_t written = 0;
    mbedtls_base64_encode(encoded, sizeof encoded, &written, digest, sizeof digest);
    return std::string(reinterpret_cast<char*>(encoded), written);
}

std::string lower(std::string text) {
    for (char& c : text) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return text;
}

std::string trim(const std::string& text) {
    size_t begin = text.find_first_not_of(" \t");
    if (begin == std::string::npos) {
        return std::string();
    }
    size_t end = text.find_last_not_of(" \t");
    return text.substr(begin, end - begin + 1);
}

bool header_has_token(const std::string& value, const std::string& token) {
    std::string lowered = lower(value);
    size_t start = 0;
    while (start <= lowered.size()) {
        size_t comma = lowered.find(',', start);
        if (comma == std::string::npos) {
            comma = lowered.size();
        }
        if (trim(lowered.substr(start, comma - start)) == token) {
            return true;
        }
        start = comma + 1;
    }
    return false;
}

class Sink {
  public:
    bool listen_on(const char* host, uint16_t port);
    int run();

  private:
    void accept_all();
    void on_readable(Connection& c);
    void on_writable(Connection& c);
    void handle_request(Connection& c, size_t header_end);
    void parse_frames(Connection& c, const uint8_t* p, const uint8_t* end);
    bool start_frame(Connection& c, const uint8_t* h, size_t header_size);
    void finish_control(Connection& c);
    void send_bytes(Connection& c, const void* data, size_t size);
    void send_frame(Connection& c, uint8_t opcode, const uint8_t* payload, size_t size);
    void fail(Connection& c, const char* what);
    void start_closing(Connection& c);
    void flush_shutdown(Connection& c);
    void finish(Connection& c);
    void update_interest(Connection& c);
    void report(const Connection& c);
    Connection* timed_connection(const std::pair<int, uint64_t>& entry);
    int next_timeout_ms();
    void expire(Clock::time_point now);

    int listen_fd_ = -1;
    int epoll_fd_ = -1;
    int signal_fd_ = -1;
    uint64_t next_id_ = 1;
    std::unordered_map<int, std::unique_ptr<Connection>> connections_;
    std::vector<int> finished_;  // torn down at the end of the loop iteration
    // Connections with a deadline (handshaking or closing), by fd and id so
    // that an entry never names a later connection that reused the fd.
    std::vector<std::pair<int, uint64_t>> timed_;
    std::vector<uint8_t> buffer_ = std::vector<uint8_t>(kReadBufferSize);
};

bool Sink::listen_on(const char* host, uint16_t port) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) {
        perror("socket");
        return false;
    }
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &address.sin_addr) != 1) {
        std::fprintf(stderr, "tether-bench-sink: bad IPv4 address %s\n", host);
        return false;
    }
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        listen(listen_fd_, 512) != 0) {
        perror("bind/listen");
        return false;
    }
    socklen_t length = sizeof address;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);

    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
    signal_fd_ = signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC);
    signal(SIGPIPE, SIG_IGN);

    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.ptr = nullptr;  // the listening socket
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &event);
    event.data.ptr = &signal_fd_;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, signal_fd_, &event);

    std::printf("listen=%u\n", ntohs(address.sin_port));
    std::fflush(stdout);
    return true;
}

int Sink::run() {
    epoll_event events[64];
    for (;;) {
        int ready = epoll_wait(epoll_fd_, events, 64, next_timeout_ms());
        if (ready < 0 && errno != EINTR) {
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < ready; ++i) {
            void* tag = events[i].data.ptr;
            if (tag == nullptr) {
                accept_all();
                continue;
            }
            if (tag == &signal_fd_) {
                return 0;
            }
            auto* c = static_cast<Connection*>(tag);
            if (c->finished) {
                continue;
            }
            if (events[i].events & EPOLLOUT) {
                on_writable(*c);
            }
            if (!c->finished && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                on_readable(*c);
            }
        }
        expire(Clock::now());
        // Teardown after the events are handled: a later event in this batch
        // may still name a connection finished earlier in it.
        for (int fd : finished_) {
            auto it = connections_.find(fd);
            report(*it->second);
            close(fd);
            connections_.erase(it);
        }
        finished_.clear();
    }
}

void Sink::accept_all() {
    for (;;) {
        int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return;  // EAGAIN, or a transient error the next wakeup retries
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        auto c = std::make_unique<Connection>();
        c->fd = fd;
        c->id = next_id_++;
        c->deadline = Clock::now() + kHandshakeTimeout;
        timed_.emplace_back(fd, c->id);
        epoll_event event{};
        event.events = EPOLLIN;
        event.data.ptr = c.get();
        epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event);
        connections_[fd] = std::move(c);
    }
}

void Sink::on_readable(Connection& c) {
    for (;;) {
        ssize_t n = read(c.fd, buffer_.data(), buffer_.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                if (c.phase == Phase::kOpen) {
                    c.error = "read";
                }
                finish(c);
            }
            return;
        }
        if (n == 0) {
            // The client closed its side: the normal end after our close
            // reply, an abnormal one before it.
            if (c.phase != Phase::kClosing) {
                c.error = "eof";
            }
            finish(c);
            return;
        }
        size_t got = static_cast<size_t>(n);
        if (c.phase == Phase::kHandshake) {
            size_t old = c.request.size();
            c.request.append(reinterpret_cast<char*>(buffer_.data()), got);
            size_t blank = c.request.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
            if (blank == std::string::npos) {
                if (c.request.size() > kMaxRequestSize) {
                    fail(c, "request too large");
                    return;
                }
            } else {
                size_t header_end = blank + 4;
                size_t extra = c.request.size() - header_end;
                handle_request(c, header_end);
                if (c.finished || c.phase != Phase::kOpen) {
                    return;
                }
                // Frames sent right behind the request, in the same read.
                parse_frames(c, buffer_.data() + (got - extra), buffer_.data() + got);
            }
        } else if (c.phase == Phase::kOpen) {
            parse_frames(c, buffer_.data(), buffer_.data() + got);
        }
        // In kClosing whatever still arrives is discarded.
        if (c.finished) {
            return;
        }
        if (got < buffer_.size()) {
            return;  // drained; level-triggered epoll wakes us for more
        }
    }
}

void Sink::handle_request(Connection& c, size_t header_end) {
    std::string head = c.request.substr(0, header_end);
    c.request.clear();
    c.request.shrink_to_fit();
    if (head.compare(0, 4, "GET ") != 0) {
        send_bytes(c, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n", 54);
        c.error = "not GET";
        start_closing(c);
        return;
    }
    std::string key, upgrade, connection, version;
    size_t line_start = head.find("\r\n") + 2;
    while (line_start < head.size()) {
        size_t line_end = head.find("\r\n", line_start);
        if (line_end == std::string::npos || line_end == line_start) {
            break;
        }
        std::string line = head.substr(line_start, line_end - line_start);
        size_t colon = line.find(':');
        if (colon != std::string::npos) {
            std::string name = lower(trim(line.substr(0, colon)));
            std::string value = trim(line.substr(colon + 1));
            if (name == "sec-websocket-key") {
                key = value;
            } else if (name == "upgrade") {
                upgrade = value;
            } else if (name == "connection") {
                connection = value;
            } else if (name == "sec-websocket-version") {
                version = value;
            }
        }
        line_start = line_end + 2;
    }
    if (key.empty() || !header_has_token(upgrade, "websocket") ||
        !header_has_token(connection, "upgrade") || version != "13") {
        static const char kBad[] =
            "HTTP/1.1 400 Bad Request\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n";
        send_bytes(c, kBad, sizeof kBad - 1);
        c.error = "bad upgrade request";
        start_closing(c);
        return;
    }
    // No Sec-WebSocket-Extensions in the answer: permessage-deflate is never
    // agreed, whatever the client offers.
    std::string response =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " +
        websocket_accept(key) + "\r\n\r\n";
    c.phase = Phase::kOpen;
    send_bytes(c, response.data(), response.size());
    if (c.out.empty()) {
        c.opened = Clock::now();
        c.upgraded_flushed = true;
    }
}

// Frame layout (RFC 6455 5.2): byte 0 FIN|RSV1-3|opcode, byte 1 MASK|len7,
// then 0, 2 or 8 bytes of extended length, then the 4-byte mask key.
size_t header_size_for(const uint8_t* h) {
    uint8_t len7 = h[1] & 0x7F;
    size_t extended = len7 == 126 ? 2 : (len7 == 127 ? 8 : 0);
    return 2 + extended + ((h[1] & 0x80) ? 4 : 0);
}

void Sink::parse_frames(Connection& c, const uint8_t* p, const uint8_t* end) {
    while (p < end && !c.finished && c.phase == Phase::kOpen) {
        size_t available = static_cast<size_t>(end - p);
        if (c.skip > 0) {
            size_t step = c.skip < available ? static_cast<size_t>(c.skip) : available;
            p += step;
            c.skip -= step;
            if (c.skip == 0 && c.frame_fin) {
                ++c.messages;
            }
            continue;
        }
        if (c.control_op != 0) {
            size_t step = std::min(c.control_len - c.control_have, available);
            std::memcpy(c.control + c.control_have, p, step);
            c.control_have += step;
            p += step;
            if (c.control_have == c.control_len) {
                finish_control(c);
            }
            continue;
        }
        if (c.header_have == 0 && available >= 2) {
            size_t size = header_size_for(p);
            if (available >= size) {
                p += size;
                start_frame(c, p - size, size);
                continue;
            }
        }
        // The header is split across reads: gather it byte by byte.
        c.header[c.header_have++] = *p++;
        if (c.header_have >= 2 && c.header_have == header_size_for(c.header)) {
            c.header_have = 0;
            start_frame(c, c.header, header_size_for(c.header));
        }
    }
}

bool Sink::start_frame(Connection& c, const uint8_t* h, size_t header_size) {
    bool fin = (h[0] & 0x80) != 0;
    uint8_t opcode = h[0] & 0x0F;
    if ((h[0] & 0x70) != 0) {
        fail(c, "reserved bits set");
        return false;
    }
    if ((h[1] & 0x80) == 0) {
        fail(c, "unmasked client frame");
        return false;
    }
    uint64_t length = h[1] & 0x7F;
    if (length == 126) {
        length = (uint64_t{h[2]} << 8) | h[3];
    } else if (length == 127) {
        length = 0;
        for (int i = 0; i < 8; ++i) {
            length = (length << 8) | h[2 + i];
        }
        if (length >> 63) {
            fail(c, "64-bit length with the top bit set");
            return false;
        }
    }
    const uint8_t* mask = h + header_size - 4;
    switch (opcode) {
        case kOpText:
        case kOpBinary:
        case kOpContinuation:
            if ((opcode == kOpContinuation) != c.in_message) {
                fail(c, opcode == kOpContinuation ? "continuation without a message"
                                                  : "new message inside a fragmented one");
                return false;
            }
            c.in_message = !fin;
            c.bytes += length;
            c.frame_fin = fin;
            if (length == 0) {
                if (fin) {
                    ++c.messages;
                }
            } else {
                c.skip = length;
            }
            return true;
        case kOpClose:
        case kOpPing:
        case kOpPong:
            if (!fin || length > 125) {
                fail(c, "fragmented or oversized control frame");
                return false;
            }
            c.control_op = opcode;
            c.control_len = static_cast<size_t>(length);
            c.control_have = 0;
            std::memcpy(c.control_mask, mask, 4);
            if (length == 0) {
                finish_control(c);
            }
            return true;
        default:
            fail(c, "unknown opcode");
            return false;
    }
}

bool valid_close_code(uint16_t code) {
    if (code >= 3000 && code <= 4999) {
        return true;
    }
    return code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006;
}

void Sink::finish_control(Connection& c) {
    uint8_t opcode = c.control_op;
    c.control_op = 0;
    for (size_t i = 0; i < c.control_len; ++i) {
        c.control[i] ^= c.control_mask[i & 3];
    }
    if (opcode == kOpPing) {
        send_frame(c, kOpPong, c.control, c.control_len);
        return;
    }
    if (opcode == kOpPong) {
        return;
    }
    c.close_arrived = Clock::now();
    if (c.control_len == 0) {
        c.close_code = kCloseNoStatus;
        send_frame(c, kOpClose, nullptr, 0);
    } else if (c.control_len == 1) {
        fail(c, "one-byte close payload");
        return;
    } else {
        auto code = static_cast<uint16_t>((c.control[0] << 8) | c.control[1]);
        if (!valid_close_code(code)) {
            fail(c, "invalid close code");
            return;
        }
        c.close_code = code;
        uint8_t echo[2] = {c.control[0], c.control[1]};
        send_frame(c, kOpClose, echo, 2);
    }
    start_closing(c);
}

void Sink::send_frame(Connection& c, uint8_t opcode, const uint8_t* payload, size_t size) {
    uint8_t frame[2 + 125];
    frame[0] = static_cast<uint8_t>(0x80 | opcode);
    frame[1] = static_cast<uint8_t>(size);
    if (size > 0) {
        std::memcpy(frame + 2, payload, size);
    }
    send_bytes(c, frame, 2 + size);
}

void Sink::send_bytes(Connection& c, const void* data, size_t size) {
    const char* bytes = static_cast<const char*>(data);
    if (c.out.empty()) {
        ssize_t n = send(c.fd, bytes, size, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            if (c.error == nullptr) {
                c.error = "write";
            }
            finish(c);
            return;
        }
        size_t sent = n > 0 ? static_cast<size_t>(n) : 0;
        bytes += sent;
        size -= sent;
    }
    c.out.append(bytes, size);
    update_interest(c);
}

void Sink::on_writable(Connection& c) {
    while (!c.out.empty()) {
        ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                finish(c);
            }
            break;
        }
        c.out.erase(0, static_cast<size_t>(n));
    }
    if (c.out.empty() && c.phase != Phase::kHandshake && !c.upgraded_flushed) {
        c.opened = Clock::now();
        c.upgraded_flushed = true;
    }
    flush_shutdown(c);
    update_interest(c);
}

void Sink::update_interest(Connection& c) {
    bool want = !c.out.empty();
    if (want == c.want_write || c.finished) {
        return;
    }
    c.want_write = want;
    epoll_event event{};
    event.events = EPOLLIN | (want ? EPOLLOUT : 0u);
    event.data.ptr = &c;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &event);
}

void Sink::fail(Connection& c, const char* what) {
    c.error = what;
    c.close_arrived = Clock::now();
    uint8_t code[2] = {kCloseProtocolError >> 8, kCloseProtocolError & 0xFF};
    send_frame(c, kOpClose, code, 2);
    start_closing(c);
}

// Our close frame is followed by a FIN (shutdown of the writing side): some
// clients (Python websockets) wait for the server to end the TCP connection
// first, as RFC 6455 7.1.1 asks of servers. The socket itself stays open and
// read until the client's EOF (or the linger timeout): closing it with
// unread bytes would send an RST, which may destroy the close frame before
// the client has read it.
void Sink::start_closing(Connection& c) {
    if (c.finished) {
        return;
    }
    c.shutdown_pending = true;
    flush_shutdown(c);
    if (c.phase == Phase::kOpen) {
        timed_.emplace_back(c.fd, c.id);
    }
    c.phase = Phase::kClosing;
    c.deadline = Clock::now() + kLingerAfterClose;
}

void Sink::flush_shutdown(Connection& c) {
    if (c.shutdown_pending && c.out.empty() && !c.finished) {
        shutdown(c.fd, SHUT_WR);
        c.shutdown_pending = false;
    }
}

void Sink::finish(Connection& c) {
    if (c.finished) {
        return;
    }
    if (c.close_arrived == Clock::time_point{}) {
        c.close_arrived = Clock::now();
    }
    c.finished = true;
    finished_.push_back(c.fd);
}

void Sink::report(const Connection& c) {
    if (c.phase == Phase::kHandshake && c.error == nullptr) {
        return;  // a probe that never asked for an upgrade
    }
    long long elapsed = 0;
    if (c.upgraded_flushed) {
        elapsed = std::chrono::duration_cast<std::chrono::microseconds>(c.close_arrived - c.opened)
                      .count();
    }
    std::printf("conn id=%llu messages=%llu bytes=%llu close_code=%u elapsed_us=%lld",
                static_cast<unsigned long long>(c.id), static_cast<unsigned long long>(c.messages),
                static_cast<unsigned long long>(c.bytes), static_cast<unsigned>(c.close_code),
                elapsed);
    if (c.error != nullptr) {
        std::printf(" error=\"%s\"", c.error);
    }
    std::printf("\n");
    std::fflush(stdout);
}

Connection* Sink::timed_connection(const std::pair<int, uint64_t>& entry) {
    auto it = connections_.find(entry.first);
    if (it == connections_.end() || it->second->id != entry.second || it->second->finished ||
        it->second->phase == Phase::kOpen) {
        return nullptr;
    }
    return it->second.get();
}

int Sink::next_timeout_ms() {
    Clock::time_point earliest = Clock::time_point::max();
    for (const auto& entry : timed_) {
        if (Connection* c = timed_connection(entry)) {
            earliest = std::min(earliest, c->deadline);
        }
    }
    if (earliest == Clock::time_point::max()) {
        return -1;
    }
    Clock::time_point now = Clock::now();
    if (earliest <= now) {
        return 0;
    }
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(earliest - now).count() + 1;
    return static_cast<int>(std::min<long long>(ms, 60000));
}

// Drops the entries that no longer need a deadline and finishes the expired.
void Sink::expire(Clock::time_point now) {
    std::vector<std::pair<int, uint64_t>> still;
    for (const auto& entry : timed_) {
        Connection* c = timed_connection(entry);
        if (c == nullptr) {
            continue;
        }
        if (c->deadline <= now) {
            if (c->phase == Phase::kHandshake) {
                c->error = "handshake timeout";
            }
            finish(*c);
        } else {
            still.push_back(entry);
        }
    }
    timed_.swap(still);
}

void usage() {
    std::fprintf(stderr, "usage: tether-bench-sink [--host 127.0.0.1] [--port 0]\n");
}

}  // namespace

int main(int argc, char** argv) {
    const char* host = "127.0.0.1";
    long port = 0;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--host" && i + 1 < argc) {
            host = argv[++i];
        } else if (arg == "--port" && i + 1 < argc) {
            char* end = nullptr;
            port = std::strtol(argv[++i], &end, 10);
            if (*end != '\0' || port < 0 || port > 65535) {
                usage();
                return 2;
            }
        } else {
            usage();
            return 2;
        }
    }
    Sink sink;
    if (!sink.listen_on(host, static_cast<uint16_t>(port))) {
        return 1;
    }
    return sink.run();
}

// SPDX-License-Identifier: MIT
#include "hiredis_link.h"

#include <arpa/inet.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <poll.h>

#include <algorithm>
#include <utility>

// hiredis's async context calls back into this file only from inside
// redisAsyncHandleRead/Write (service()) and redisAsyncFree (close_conn()):
//   - ev.addRead/delRead/addWrite/delWrite record the poll interest;
//   - ev.cleanup runs as hiredis frees a context (on its own after an I/O
//     error, or from close_conn()): the Conn forgets the pointer there, so no
//     freed context is touched again;
//   - a reply callback with a null reply means the context is going away
//     with that command unanswered: ignored (on_disconnected says so).
// Failures seen inside a callback are only recorded (failure_,
// sentinel_failed_); settle() acts on them once hiredis has returned.

namespace tether::server {
namespace {

using Conn = HiredisLink::Conn;

void add_read(void* data) {
    static_cast<Conn*>(data)->want_read = true;
}
void del_read(void* data) {
    static_cast<Conn*>(data)->want_read = false;
}
void add_write(void* data) {
    static_cast<Conn*>(data)->want_write = true;
}
void del_write(void* data) {
    static_cast<Conn*>(data)->want_write = false;
}
void cleanup(void* data) {
    Conn* conn = static_cast<Conn*>(data);
    conn->context = nullptr;
    conn->want_read = false;
    conn->want_write = false;
    conn->connected = false;
}

RedisValue convert(const redisReply* reply) {
    switch (reply->type) {
        case REDIS_REPLY_INTEGER:
            return RedisValue::of_integer(reply->integer);
        case REDIS_REPLY_STRING:
            return RedisValue::of_string(std::string_view(reply->str, reply->len));
        case REDIS_REPLY_STATUS:
            return RedisValue::of_status(std::string_view(reply->str, reply->len));
        case REDIS_REPLY_ERROR:
            return RedisValue::of_error(std::string_view(reply->str, reply->len));
        case REDIS_REPLY_ARRAY: {
            std::vector<RedisValue> elements;
            elements.reserve(reply->elements);
            for (std::size_t i = 0; i < reply->elements; ++i) {
                elements.push_back(convert(reply->element[i]));
            }
            return RedisValue::of_array(std::move(elements));
        }
        default:
            return RedisValue::nil();
    }
}

void on_connect(const redisAsyncContext* context, int status) {
    Conn* conn = static_cast<Conn*>(context->data);
    if (status != REDIS_OK) {
        conn->owner->on_conn_failed(*conn, std::string("connect: ") + context->errstr);
        return;
    }
    conn->connected = true;
}

void on_disconnect(const redisAsyncContext* context, int status) {
    Conn* conn = static_cast<Conn*>(context->data);
    conn->owner->on_conn_failed(
        *conn, status == REDIS_OK ? std::string("closed") : std::string(context->errstr));
}

void on_reply(redisAsyncContext*, void* reply, void* data) {
    if (reply == nullptr) {
        return;
    }
    Conn* conn = static_cast<Conn*>(data);
    conn->owner->on_conn_reply(*conn, convert(static_cast<const redisReply*>(reply)));
}

bool wrong_server(const RedisValue& reply) {
    if (!reply.is_error()) {
        return false;
    }
    for (const char* prefix : {"READONLY", "MASTERDOWN", "LOADING"}) {
        if (reply.text.rfind(prefix, 0) == 0) {
            return true;
        }
    }
    return false;
}

std::string address_text(const RedisAddress& address) {
    const bool v6 = address.host.find(':') != std::string::npos;
    return (v6 ? "[" + address.host + "]" : address.host) + ":" + std::to_string(address.port);
}

}  // namespace

bool parse_redis_address(std::string_view text, RedisAddress* out, std::string* error) {
    const auto refuse = [error](const char* why) {
        if (error != nullptr) {
            *error = why;
        }
        return false;
    };
    if (out == nullptr) {
        return refuse("no output");
    }
    std::string host;
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            return refuse("expected [IPV6]:PORT");
        }
        host.assign(text.substr(1, close - 1));
        port_text = text.substr(close + 2);
    } else {
        const std::size_t colon = text.rfind(':');
        if (colon == std::string_view::npos || colon == 0) {
            return refuse("expected HOST:PORT");
        }
        host.assign(text.substr(0, colon));
        port_text = text.substr(colon + 1);
    }
    unsigned char buffer[16];
    const bool v6 = text.front() == '[';
    if (::inet_pton(v6 ? AF_INET6 : AF_INET, host.c_str(), buffer) != 1) {
        return refuse("the host must be a numeric address (names would be resolved blocking)");
    }
    unsigned long port = 0;
    if (port_text.empty() || port_text.size() > 5) {
        return refuse("bad port");
    }
    for (const char c : port_text) {
        if (c < '0' || c > '9') {
            return refuse("bad port");
        }
        port = port * 10 + static_cast<unsigned long>(c - '0');
    }
    if (port == 0 || port > 65535) {
        return refuse("bad port");
    }
    out->host = host;
    out->port = static_cast<std::uint16_t>(port);
    return true;
}

HiredisLink::HiredisLink(HiredisLinkOptions options) : options_(std::move(options)) {
    command_.owner = this;
    command_.kind = Conn::Kind::kCommand;
    subscriber_.owner = this;
    subscriber_.kind = Conn::Kind::kSubscriber;
    sentinel_.owner = this;
    sentinel_.kind = Conn::Kind::kSentinel;
}

HiredisLink::~HiredisLink() {
    stop();
}

void HiredisLink::set_events(RedisLinkEvents* events) {
    events_ = events;
}

void HiredisLink::subscribe(const std::vector<std::string>& channels) {
    channels_ = channels;
}

void HiredisLink::log(const std::string& line) {
    if (options_.log) {
        options_.log(line);
    }
}

void HiredisLink::start(TimeMs now) {
    now_ = now;
    attempts_ = 0;
    begin(now);
}

void HiredisLink::begin(TimeMs now) {
    failure_.clear();
    role_ok_ = false;
    subscribed_ = 0;
    if (options_.sentinels.empty()) {
        connect_primary(options_.primary, now);
        return;
    }
    phase_ = Phase::kDiscovering;
    sentinel_index_ = 0;
    ask_next_sentinel(now);
}

void HiredisLink::ask_next_sentinel(TimeMs now) {
    close_conn(sentinel_);
    sentinel_answered_ = false;
    sentinel_failed_ = false;
    while (sentinel_index_ < options_.sentinels.size()) {
        const RedisAddress& address = options_.sentinels[sentinel_index_++];
        if (!open_conn(sentinel_, address, now)) {
            continue;
        }
        const char* argv[] = {"SENTINEL", "get-master-addr-by-name", options_.master_name.c_str()};
        const std::size_t lengths[] = {8, 23, options_.master_name.size()};
        if (redisAsyncCommandArgv(sentinel_.context, on_reply, &sentinel_, 3, argv, lengths) ==
            REDIS_OK) {
            sentinel_.waiting.push_back(Conn::Waiting{0, true, now});
            return;
        }
        close_conn(sentinel_);
    }
    go_down(now, "no sentinel named the primary of " + options_.master_name);
}

void HiredisLink::connect_primary(const RedisAddress& address, TimeMs now) {
    phase_ = Phase::kConnecting;
    primary_text_ = address_text(address);
    role_ok_ = false;
    subscribed_ = 0;
    if (!open_conn(command_, address, now) || !open_conn(subscriber_, address, now)) {
        go_down(now, "cannot connect to " + primary_text_);
        return;
    }
    const char* role[] = {"ROLE"};
    const std::size_t role_length[] = {4};
    bool queued = redisAsyncCommandArgv(command_.context, on_reply, &command_, 1, role,
                                        role_length) == REDIS_OK;
    command_.waiting.push_back(Conn::Waiting{0, true, now});
    if (!channels_.empty()) {
        std::vector<const char*> argv = {"SUBSCRIBE"};
        std::vector<std::size_t> lengths = {9};
        for (const std::string& channel : channels_) {
            argv.push_back(channel.c_str());
            lengths.push_back(channel.size());
        }
        queued = queued && redisAsyncCommandArgv(subscriber_.context, on_reply, &subscriber_,
                                                 static_cast<int>(argv.size()), argv.data(),
                                                 lengths.data()) == REDIS_OK;
        subscriber_.waiting.push_back(Conn::Waiting{0, true, now});
    }
    if (!queued) {
        go_down(now, "cannot queue ROLE/SUBSCRIBE on " + primary_text_);
    }
}

bool HiredisLink::open_conn(Conn& conn, const RedisAddress& address, TimeMs now) {
    close_conn(conn);
    redisAsyncContext* context = redisAsyncConnect(address.host.c_str(), address.port);
    if (context == nullptr) {
        log("event=redis_connect_failed address=" + address_text(address) + " error=oom");
        return false;
    }
    if (context->err != 0) {
        log("event=redis_connect_failed address=" + address_text(address) +
            " error=" + context->errstr);
        redisAsyncFree(context);
        return false;
    }
    conn.context = context;
    conn.connected = false;
    conn.dead = false;
    conn.started = now;
    conn.waiting.clear();
    context->data = &conn;
    context->ev.data = &conn;
    context->ev.addRead = add_read;
    context->ev.delRead = del_read;
    context->ev.addWrite = add_write;
    context->ev.delWrite = del_write;
    context->ev.cleanup = cleanup;
    redisAsyncSetConnectCallback(context, on_connect);  // asks for write readiness
    redisAsyncSetDisconnectCallback(context, on_disconnect);
    return true;
}

void HiredisLink::close_conn(Conn& conn) {
    if (conn.context != nullptr) {
        // Runs every pending callback with a null reply, then cleanup (which
        // forgets the context) and on_disconnect (ignored while tearing down).
        tearing_down_ = true;
        redisAsyncFree(conn.context);
        tearing_down_ = false;
    }
    conn.context = nullptr;
    conn.want_read = false;
    conn.want_write = false;
    conn.connected = false;
    conn.dead = false;
    conn.waiting.clear();
}

void HiredisLink::on_conn_failed(Conn& conn, std::string reason) {
    if (tearing_down_ || conn.dead) {
        return;
    }
    conn.dead = true;
    if (conn.kind == Conn::Kind::kSentinel) {
        sentinel_failed_ = true;
        log("event=redis_sentinel_failed error=" + reason);
        return;
    }
    if (failure_.empty()) {
        failure_ = std::move(reason);
    }
}

void HiredisLink::on_conn_reply(Conn& conn, const RedisValue& reply) {
    if (conn.dead) {
        return;
    }
    if (conn.kind == Conn::Kind::kSubscriber) {
        // ["subscribe", channel, count] confirms; ["message", channel, payload].
        if (reply.type != RedisValue::Type::kArray || reply.elements.size() != 3) {
            on_conn_failed(conn, "unexpected reply on the subscriber connection");
            return;
        }
        const RedisValue& kind = reply.elements[0];
        if (kind.is_text("subscribe")) {
            if (++subscribed_ >= channels_.size()) {
                conn.waiting.clear();
            }
        } else if (kind.is_text("message") && phase_ == Phase::kUp && failure_.empty() &&
                   events_ != nullptr) {
            events_->on_message(reply.elements[1].text, reply.elements[2].text);
        }
        return;
    }
    if (conn.waiting.empty()) {
        on_conn_failed(conn, "a reply nothing asked for");
        return;
    }
    const Conn::Waiting waiting = conn.waiting.front();
    conn.waiting.pop_front();
    if (conn.kind == Conn::Kind::kSentinel) {
        // ["ip", "port"], or nil when the sentinel does not know the name.
        RedisAddress address;
        std::string error;
        if (reply.type == RedisValue::Type::kArray && reply.elements.size() == 2 &&
            parse_redis_address(reply.elements[0].text + ":" + reply.elements[1].text, &address,
                                &error)) {
            sentinel_answer_ = address;
            sentinel_answered_ = true;
        } else {
            conn.dead = true;
            sentinel_failed_ = true;
            log("event=redis_sentinel_failed error=no usable answer for " + options_.master_name);
        }
        return;
    }
    if (wrong_server(reply)) {
        on_conn_failed(conn, reply.text);
        return;
    }
    if (waiting.internal) {
        // ROLE: ["master", offset, replicas] on the primary.
        if (reply.type == RedisValue::Type::kArray && !reply.elements.empty() &&
            reply.elements[0].is_text("master")) {
            role_ok_ = true;
        } else {
            on_conn_failed(conn,
                           "not a primary: ROLE is " +
                               (reply.elements.empty() ? reply.text : reply.elements[0].text));
        }
        return;
    }
    if (phase_ == Phase::kUp && failure_.empty() && events_ != nullptr) {
        events_->on_reply(waiting.tag, reply);
    }
}

bool HiredisLink::command(const std::string_view* args, std::size_t count, std::uint64_t tag) {
    if (!connected() || command_.context == nullptr || count == 0) {
        return false;
    }
    std::vector<const char*> argv(count);
    std::vector<std::size_t> lengths(count);
    for (std::size_t i = 0; i < count; ++i) {
        argv[i] = args[i].data() == nullptr ? "" : args[i].data();
        lengths[i] = args[i].size();
    }
    if (redisAsyncCommandArgv(command_.context, on_reply, &command_, static_cast<int>(count),
                              argv.data(), lengths.data()) != REDIS_OK) {
        return false;
    }
    command_.waiting.push_back(Conn::Waiting{tag, false, now_});
    return true;
}

bool HiredisLink::connected() const {
    return phase_ == Phase::kUp && failure_.empty();
}

void HiredisLink::stop() {
    close_conn(sentinel_);
    close_conn(command_);
    close_conn(subscriber_);
    phase_ = Phase::kIdle;
    failure_.clear();
}

std::size_t HiredisLink::poll_requests(PollRequest* out, std::size_t max) const {
    std::size_t count = 0;
    for (const Conn* conn : {&command_, &subscriber_, &sentinel_}) {
        if (conn->context != nullptr && count < max) {
            out[count++] = PollRequest{conn->context->c.fd, conn->want_read,
                                       conn->want_write || !conn->connected};
        }
    }
    return count;
}

bool HiredisLink::next_deadline(TimeMs* at) const {
    bool any = false;
    TimeMs earliest = 0;
    const auto consider = [&](TimeMs deadline) {
        earliest = any ? time_earliest(earliest, deadline) : deadline;
        any = true;
    };
    if (phase_ == Phase::kWaiting) {
        consider(retry_at_);
    }
    if (!failure_.empty() || sentinel_failed_ || sentinel_answered_) {
        consider(now_);  // settle() has work
    }
    for (const Conn* conn : {&command_, &subscriber_, &sentinel_}) {
        if (conn->context == nullptr) {
            continue;
        }
        if (!conn->connected) {
            consider(conn->started + options_.command_timeout_ms);
        }
        if (!conn->waiting.empty()) {
            consider(conn->waiting.front().sent + options_.command_timeout_ms);
        }
    }
    if (any && at != nullptr) {
        *at = earliest;
    }
    return any;
}

void HiredisLink::pump(Conn& conn) {
    // Bounded: a peer that keeps the socket readable cannot hold the loop.
    for (int round = 0; round < 16 && conn.context != nullptr; ++round) {
        pollfd fd{conn.context->c.fd, 0, 0};
        if (conn.want_read) {
            fd.events = static_cast<short>(fd.events | POLLIN);
        }
        if (conn.want_write || !conn.connected) {
            fd.events = static_cast<short>(fd.events | POLLOUT);
        }
        if (::poll(&fd, 1, 0) <= 0 || fd.revents == 0) {
            return;
        }
        if ((fd.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            redisAsyncHandleRead(conn.context);
        }
        if (conn.context != nullptr && (fd.revents & POLLOUT) != 0) {
            redisAsyncHandleWrite(conn.context);
        }
    }
}

void HiredisLink::check_timeouts(TimeMs now) {
    for (Conn* conn : {&command_, &subscriber_, &sentinel_}) {
        if (conn->context == nullptr || conn->dead) {
            continue;
        }
        if (!conn->connected && time_reached(now, conn->started + options_.command_timeout_ms)) {
            on_conn_failed(*conn, "connect timed out");
        } else if (!conn->waiting.empty() &&
                   time_reached(now, conn->waiting.front().sent + options_.command_timeout_ms)) {
            on_conn_failed(
                *conn, "no reply within " + std::to_string(options_.command_timeout_ms) + " ms");
        }
    }
}

void HiredisLink::go_down(TimeMs now, const std::string& reason) {
    const bool was_up = phase_ == Phase::kUp;
    close_conn(sentinel_);
    close_conn(command_);
    close_conn(subscriber_);
    failure_.clear();
    sentinel_answered_ = false;
    sentinel_failed_ = false;
    std::uint32_t delay = options_.backoff_initial_ms;
    for (std::uint32_t i = 0; i < attempts_ && delay < options_.backoff_max_ms; ++i) {
        delay *= 2;
    }
    delay = std::min(delay, options_.backoff_max_ms);
    if (attempts_ < 32) {
        ++attempts_;
    }
    phase_ = Phase::kWaiting;
    retry_at_ = now + delay;
    log("event=redis_link_down reason=" + reason + " retry_ms=" + std::to_string(delay));
    if (was_up && events_ != nullptr) {
        events_->on_disconnected(reason);
    }
}

void HiredisLink::settle(TimeMs now) {
    if (phase_ == Phase::kDiscovering) {
        if (sentinel_answered_) {
            sentinel_answered_ = false;
            close_conn(sentinel_);
            connect_primary(sentinel_answer_, now);
        } else if (sentinel_failed_) {
            ask_next_sentinel(now);
        }
        return;
    }
    if (phase_ != Phase::kConnecting && phase_ != Phase::kUp) {
        return;
    }
    if (!failure_.empty()) {
        go_down(now, failure_);
        return;
    }
    if (phase_ == Phase::kConnecting && role_ok_ && subscribed_ >= channels_.size() &&
        command_.connected && subscriber_.connected) {
        phase_ = Phase::kUp;
        attempts_ = 0;
        ++connects_;
        log("event=redis_link_up primary=" + primary_text_);
        if (events_ != nullptr) {
            events_->on_connected();
        }
    }
}

void HiredisLink::service(TimeMs now) {
    now_ = now;
    if (phase_ == Phase::kWaiting && time_reached(now, retry_at_)) {
        begin(now);
    }
    pump(sentinel_);
    pump(command_);
    pump(subscriber_);
    check_timeouts(now);
    // Twice: a sentinel's answer starts the primary's connects, whose
    // failure (a refused connect seen at once) then settles in this call.
    settle(now);
    settle(now);
}

}  // namespace tether::server

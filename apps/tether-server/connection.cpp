// SPDX-License-Identifier: MIT
// One client connection of tether-server: the TLS handshake, the HTTP
// upgrade, then tether.v1 over the WebSocket stream (docs/PROTOCOL.md).
#include <cjson/cJSON.h>
#include <sys/socket.h>

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string>

#include "server.h"
#include "tether/net/state_messages.h"
#include "tether/net/tether_v1.h"
#include "tether/port/poll_loop.h"

namespace tether::server {
namespace {

namespace v1 = net::v1;

// The tether.v1 DATA header rides in front of a payload of up to the message
// limit; the stream's buffers hold one message plus a frame header.
constexpr std::size_t kFrameSlack = 64;
// State messages written but not yet in the transmit buffer: one desired
// answer (at most kDesiredHistory increments) and a few report answers.
constexpr std::size_t kMaxStatePending = kDesiredHistory + 16;

const char* refusal_reason(Status status, ReportOutcome outcome) {
    if (status == Status::kInvalidArgument) {
        return v1::kRefusedInvalid;
    }
    if (status != Status::kOk) {
        return v1::kRefusedUnavailable;
    }
    switch (outcome) {
        case ReportOutcome::kStale:
            return v1::kRefusedStale;
        case ReportOutcome::kTooLarge:
            return v1::kRefusedTooLarge;
        default:
            return v1::kRefusedUnavailable;
    }
}

// A report that parse_state_message refused for its document alone (not an
// object, a duplicate key, too deep, too large) is answered, not closed
// (PROTOCOL.md 9.3.4): its fields are read here and the document goes to the
// engine as sent, which refuses it as invalid or too large. False when the
// message is not such a report (the caller closes 4002).
bool salvage_report(const std::uint8_t* data, std::size_t size, std::string* id,
                    std::uint64_t* base, bool* whole, std::string* document) {
    cJSON* root = cJSON_ParseWithLength(reinterpret_cast<const char*>(data), size);
    bool ok = false;
    const cJSON* type = cJSON_GetObjectItemCaseSensitive(root, "type");
    const cJSON* id_item = cJSON_GetObjectItemCaseSensitive(root, "id");
    const cJSON* base_item = cJSON_GetObjectItemCaseSensitive(root, "base");
    const cJSON* patch = cJSON_GetObjectItemCaseSensitive(root, "patch");
    const cJSON* state = cJSON_GetObjectItemCaseSensitive(root, "state");
    if (cJSON_IsString(type) && std::strcmp(type->valuestring, "report") == 0 &&
        cJSON_IsString(id_item) &&
        v1::is_report_id(id_item->valuestring, std::strlen(id_item->valuestring)) &&
        cJSON_IsNumber(base_item) && base_item->valuedouble >= 0 &&
        base_item->valuedouble <= static_cast<double>(v1::kMaxJsonSeq) &&
        std::floor(base_item->valuedouble) == base_item->valuedouble &&
        (patch == nullptr) != (state == nullptr)) {
        char* text = cJSON_PrintUnformatted(patch != nullptr ? patch : state);
        if (text != nullptr) {
            *id = id_item->valuestring;
            *base = static_cast<std::uint64_t>(base_item->valuedouble);
            *whole = state != nullptr;
            *document = text;
            cJSON_free(text);
            ok = true;
        }
    }
    cJSON_Delete(root);
    return ok;
}

}  // namespace

ClientConnection::ClientConnection(Server& server, std::uint64_t id, port::TlsServerContext* tls,
                                   TimeMs now)
    : server_(server), id_(id), transport_(tls), opened_at_(now), last_rx_(now) {}

ClientConnection::~ClientConnection() {
    drop();
}

bool ClientConnection::adopt(int fd, const net::IpAddress& peer, std::uint16_t peer_port) {
    peer_ = peer;
    char address[48] = {};
    (void)net::format_ip_address(peer, address, sizeof address);
    std::snprintf(endpoint_, sizeof endpoint_, peer.family == net::kIpv6 ? "[%s]:%u" : "%s:%u",
                  address, static_cast<unsigned>(peer_port));
    if (transport_.adopt(fd) != Status::kOk) {
        dead_ = true;
        return false;
    }
    log(LogLevel::kInfo, "event=accept conn=%llu tls=%d", static_cast<unsigned long long>(id_),
        transport_.tls() ? 1 : 0);
    phase_ = transport_.tls() ? Phase::kTls : Phase::kUpgrade;
    parser_.reset(new net::UpgradeRequestParser());
    return true;
}

short ClientConnection::poll_events(bool silenced) const {
    if (dead_ || transport_.fd() < 0) {
        return 0;
    }
    const bool want_write = stream_ != nullptr && stream_->queued_bytes() != 0;
    const bool want_read =
        !(silenced && (phase_ == Phase::kAwaitHello || phase_ == Phase::kHelloPending ||
                       phase_ == Phase::kOnline || phase_ == Phase::kClosing)) &&
        phase_ != Phase::kHttpReply;
    const PollInterest interest = transport_.interest(want_read, want_write);
    short events = 0;
    if (interest.read) {
        events = static_cast<short>(events | POLLIN);
    }
    if (interest.write) {
        events = static_cast<short>(events | POLLOUT);
    }
    return events;
}

void ClientConnection::log(LogLevel level, const char* format, ...) {
    char line[512];
    va_list arguments;
    va_start(arguments, format);
    std::vsnprintf(line, sizeof line, format, arguments);
    va_end(arguments);
    server_.log(level, "%s endpoint=%s%s%s", line, endpoint_,
                trace_id_[0] != '\0' ? " trace_id=" : "", trace_id_);
}

void ClientConnection::drop() {
    if (!dead_ && endpoint_[0] != '\0') {
        log(LogLevel::kInfo, "event=disconnect conn=%llu session=%s",
            static_cast<unsigned long long>(id_), session_.empty() ? "none" : session_.c_str());
    }
    if (!session_.empty()) {
        server_.release_session(session_, this);
    }
    if (stream_ != nullptr) {
        stream_->detach();
    }
    transport_.close();
    dead_ = true;
}

void ClientConnection::reset() {
    if (!session_.empty()) {
        server_.release_session(session_, this);
    }
    if (stream_ != nullptr) {
        stream_->detach();
    }
    transport_.reset();
    dead_ = true;
}

void ClientConnection::flush() {
    if (stream_ == nullptr || dead_) {
        return;
    }
    const net::WsResult result = stream_->flush();
    if (result.status != net::WsStatus::kOk) {
        drop();
        return;
    }
    if (close_after_flush_ && stream_->queued_bytes() == 0) {
        drop();
    }
}

void ClientConnection::service(TimeMs now, bool silenced) {
    now_ = now;
    if (dead_) {
        return;
    }
    if (phase_ == Phase::kTls) {
        const IoResult result = transport_.establish();
        if (result.status == IoStatus::kWouldBlock) {
            return;
        }
        if (result.status != IoStatus::kOk) {
            drop();
            return;
        }
        phase_ = Phase::kUpgrade;
    }
    if (phase_ == Phase::kUpgrade) {
        read_upgrade(now);
    }
    if (dead_) {
        return;
    }
    if (!silenced &&
        (phase_ == Phase::kAwaitHello || phase_ == Phase::kOnline || phase_ == Phase::kClosing)) {
        const net::WsResult result = stream_->read_frames(*this);
        if (result.status == net::WsStatus::kProtocolError && phase_ != Phase::kClosing) {
            close_with(result.close_code, nullptr, now);
        } else if (result.status != net::WsStatus::kOk &&
                   result.status != net::WsStatus::kProtocolError) {
            drop();
            return;
        } else if (result.status == net::WsStatus::kProtocolError) {
            drop();
            return;
        }
    }
    if (!dead_) {
        pump(now);
    }
}

void ClientConnection::read_upgrade(TimeMs now) {
    std::uint8_t chunk[2048];
    for (;;) {
        const IoResult read = transport_.read(chunk, sizeof chunk);
        if (read.status == IoStatus::kWouldBlock) {
            return;
        }
        if (read.status != IoStatus::kOk || read.bytes == 0) {
            drop();
            return;
        }
        std::size_t used = 0;
        const net::RequestStatus status = parser_->feed(chunk, read.bytes, &used);
        if (status == net::RequestStatus::kNeedMore) {
            continue;
        }
        if (status != net::RequestStatus::kOk) {
            log(LogLevel::kWarn, "event=upgrade_rejected conn=%llu why=%s",
                static_cast<unsigned long long>(id_), net::to_string(status));
            server_.upgrade_rejected(UpgradeRejection::kMalformed);
            reply_http(net::status_for(status), 0);
            return;
        }
        if (used != read.bytes) {
            // A client sends nothing before the 101 (RFC 6455 section 4.1).
            server_.upgrade_rejected(UpgradeRejection::kMalformed);
            reply_http(400, 0);
            return;
        }
        finish_upgrade(now);
        return;
    }
}

void ClientConnection::reply_http(std::uint16_t status, std::uint32_t retry_after) {
    net::ErrorResponse response;
    response.status = status;
    response.has_retry_after = retry_after != 0;
    response.retry_after_seconds = retry_after;
    char out[512];
    std::size_t length = 0;
    if (net::build_error_response(response, out, sizeof out, &length) !=
        net::HandshakeStatus::kOk) {
        drop();
        return;
    }
    // A small stream just to carry the reply with the transport's write rules.
    if (stream_ == nullptr) {
        rx_.reset(new std::uint8_t[1024]);
        tx_.reset(new std::uint8_t[1024]);
        stream_.reset(
            new net::WsStream(net::WsStreamConfig{}, rx_.get(), 1024, tx_.get(), 1024, masks_));
    }
    if (!stream_->attach(&transport_) ||
        !stream_->queue_raw(reinterpret_cast<const std::uint8_t*>(out), length)) {
        drop();
        return;
    }
    parser_.reset();
    phase_ = Phase::kHttpReply;
    close_after_flush_ = true;
    flush();
}

void ClientConnection::finish_upgrade(TimeMs now) {
    // "00-<32 hex trace id>-<16 hex span id>-<flags>", checked by the parser:
    // every later line of this connection carries the device's trace id.
    const char* traceparent = parser_->traceparent();
    if (traceparent != nullptr && std::strlen(traceparent) >= 35) {
        std::memcpy(trace_id_, traceparent + 3, 32);
        trace_id_[32] = '\0';
    }
    const Faults& faults = server_.faults();
    if (faults.rejecting) {
        server_.upgrade_rejected(UpgradeRejection::kFaultInjected);
        reply_http(faults.reject_status,
                   faults.reject_has_retry_after ? faults.reject_retry_after : 0);
        return;
    }
    if (!server_.engine().ready()) {
        // The store cannot answer a hello now (Redis unreachable): come back later.
        log(LogLevel::kWarn, "event=upgrade_rejected conn=%llu why=store_unavailable",
            static_cast<unsigned long long>(id_));
        server_.upgrade_rejected(UpgradeRejection::kStoreUnavailable);
        reply_http(503, 5);
        return;
    }
    std::uint32_t retry_after_s = 0;
    if (server_.upgrade_throttled(peer_, now, &retry_after_s)) {
        server_.upgrade_rejected(UpgradeRejection::kThrottled);
        reply_http(429, retry_after_s);  // the token is not looked at
        return;
    }
    if (!parser_->offers_subprotocol(v1::kSubprotocol)) {
        log(LogLevel::kWarn, "event=upgrade_rejected conn=%llu why=no_subprotocol",
            static_cast<unsigned long long>(id_));
        server_.upgrade_rejected(UpgradeRejection::kBadSubprotocol);
        reply_http(400, 0);
        return;
    }
    const char* token = parser_->bearer_token();
    const TokenCheck check =
        token == nullptr ? TokenCheck::kUnknown : server_.tokens().check(token);
    if (check != TokenCheck::kValid) {
        log(LogLevel::kWarn, "event=upgrade_rejected conn=%llu why=token_%s",
            static_cast<unsigned long long>(id_), token == nullptr ? "missing" : to_string(check));
        server_.upgrade_unauthorized(peer_, now);
        server_.upgrade_rejected(UpgradeRejection::kBadToken);
        reply_http(401, 0);
        return;
    }
    token_ = token;
    user_ = server_.tokens().user(token);
    net::AcceptResponse accept;
    accept.key = parser_->key();
    accept.subprotocol = v1::kSubprotocol;
    char out[256];
    std::size_t length = 0;
    if (net::build_accept_response(accept, out, sizeof out, &length) != net::HandshakeStatus::kOk) {
        server_.upgrade_rejected(UpgradeRejection::kMalformed);
        reply_http(400, 0);
        return;
    }
    // A state message (up to kMaxStateMessage) must fit either way, even when
    // --max-message-size is smaller; binary messages keep that limit
    // (on_message checks it).
    std::size_t message_size = server_.options().max_message_size;
    if (server_.options().state && message_size < v1::kMaxStateMessage) {
        message_size = v1::kMaxStateMessage;
    }
    const std::size_t tx_size = message_size + kFrameSlack;
    rx_.reset(new std::uint8_t[message_size]);
    tx_.reset(new std::uint8_t[tx_size]);
    net::WsStreamConfig config;
    config.server = true;
    config.max_message_size = message_size;
    stream_.reset(new net::WsStream(config, rx_.get(), message_size, tx_.get(), tx_size, masks_));
    if (!stream_->attach(&transport_) ||
        !stream_->queue_raw(reinterpret_cast<const std::uint8_t*>(out), length)) {
        drop();
        return;
    }
    parser_.reset();
    phase_ = Phase::kAwaitHello;
    last_rx_ = now;
    log(LogLevel::kInfo, "event=upgraded conn=%llu", static_cast<unsigned long long>(id_));
    ++server_.metrics().upgrades_accepted;
    flush();
}

bool ClientConnection::queue_json(const char* json, std::size_t size) {
    return stream_->queue_message(net::WsOpcode::kText, reinterpret_cast<const std::uint8_t*>(json),
                                  size);
}

void ClientConnection::close_with(std::uint16_t code, const char* reason, TimeMs now) {
    if (dead_) {
        return;
    }
    if (stream_ == nullptr || phase_ == Phase::kTls || phase_ == Phase::kUpgrade ||
        phase_ == Phase::kHttpReply) {
        drop();
        return;
    }
    if (phase_ == Phase::kClosing) {
        return;
    }
    log(LogLevel::kInfo, "event=close conn=%llu code=%u session=%s by=server",
        static_cast<unsigned long long>(id_), code, session_.c_str());
    stop_processing_ = true;
    if (!session_.empty()) {
        server_.release_session(session_, this);
    }
    if (!stream_->queue_close(code, reason)) {
        drop();
        return;
    }
    phase_ = Phase::kClosing;
    closing_since_ = now;
    flush();
}

void ClientConnection::violation(const char* why) {
    log(LogLevel::kWarn, "event=violation conn=%llu why=%s", static_cast<unsigned long long>(id_),
        why);
    close_with(v1::kCloseViolation, why, now_);
}

void ClientConnection::store_failed(const char* op, const char* status) {
    // Only this session failed: its next hello reads it afresh from disk.
    log(LogLevel::kError, "event=store_error conn=%llu op=%s session=%s status=%s",
        static_cast<unsigned long long>(id_), op, session_.c_str(), status);
    close_with(1011, "store", now_);
}

void ClientConnection::forbid(const char* session, const char* why) {
    ++server_.counters().hellos_forbidden;
    log(LogLevel::kWarn, "event=forbidden conn=%llu session=%s why=%s",
        static_cast<unsigned long long>(id_), session, why);
    close_with(v1::kCloseForbidden, "forbidden", now_);
}

void ClientConnection::on_frame() {
    last_rx_ = now_;
    ping_outstanding_ = false;
}

void ClientConnection::on_pong(const std::uint8_t*, std::size_t) {}

void ClientConnection::on_close(std::uint16_t code, const std::uint8_t*, std::size_t) {
    if (phase_ == Phase::kClosing) {
        // Our close was answered: the server closes the TCP connection first.
        close_after_flush_ = true;
        return;
    }
    log(LogLevel::kInfo, "event=close conn=%llu code=%u session=%s by=device",
        static_cast<unsigned long long>(id_), static_cast<unsigned>(code),
        session_.empty() ? "none" : session_.c_str());
    stop_processing_ = true;
    if (!session_.empty()) {
        server_.release_session(session_, this);
    }
    (void)stream_->queue_close(code == net::kCloseNoStatus ? 0 : code);
    phase_ = Phase::kClosing;
    closing_since_ = now_;
    close_after_flush_ = true;
}

void ClientConnection::on_message(net::WsOpcode type, const std::uint8_t* data, std::size_t size) {
    if (stop_processing_ || dead_) {
        return;
    }
    if (phase_ == Phase::kAwaitHello) {
        if (type != net::WsOpcode::kText) {
            violation("expected_hello");
            return;
        }
        handle_hello(data, size);
        return;
    }
    if (phase_ == Phase::kHelloPending) {
        violation("message_before_welcome");
        return;
    }
    if (phase_ != Phase::kOnline) {
        return;
    }
    if (type == net::WsOpcode::kText) {
        if (!state_ || !handle_state(data, size)) {
            handle_control(data, size);
        }
    } else if (size > server_.options().max_message_size) {
        // The buffers are larger for state messages; binary keeps the limit.
        log(LogLevel::kWarn, "event=violation conn=%llu why=message_too_big",
            static_cast<unsigned long long>(id_));
        close_with(1009, "too_big", now_);
    } else {
        handle_binary(data, size);
    }
}

void ClientConnection::handle_hello(const std::uint8_t* data, std::size_t size) {
    v1::Control control;
    if (v1::parse_control(data, size, &control) != v1::V1Status::kOk ||
        control.type != v1::ControlType::kHello) {
        violation("expected_hello");
        return;
    }
    const v1::Hello& hello = control.hello;
    if (!server_.tokens().allows_device(token_, hello.device)) {
        forbid(hello.session, "device");
        return;
    }
    HelloRequest request;
    request.session = hello.session;
    request.version = hello.version;
    request.device = hello.device;
    request.last_downlink = hello.last_downlink;
    request.oldest_uplink = hello.oldest_uplink;
    request.next_uplink = hello.next_uplink;
    request.user = user_;
    const Status asked = server_.engine().hello(request, id_);
    if (asked == Status::kInvalidArgument) {
        violation("bad_hello");
        return;
    }
    if (asked != Status::kOk) {
        log(LogLevel::kError, "event=store_error conn=%llu op=hello status=%s",
            static_cast<unsigned long long>(id_), to_string(asked));
        close_with(1011, "store", now_);
        return;
    }
    // The engine answers from a later round of the loop (on_hello_answer).
    phase_ = Phase::kHelloPending;
    hello_asked_at_ = now_;
    pending_session_ = hello.session;
    pending_age_ = (hello.features & v1::kFeatureAge) != 0;
    pending_state_ = (hello.features & v1::kFeatureState) != 0;
    pending_desired_version_ = hello.desired_version;
    version_ = hello.version;
}

void ClientConnection::on_hello_answer(Status status, const HelloResult& result) {
    if (dead_ || stop_processing_ || phase_ != Phase::kHelloPending) {
        return;
    }
    if (status == Status::kInvalidArgument) {
        violation("bad_hello");
        return;
    }
    if (status != Status::kOk) {
        log(LogLevel::kError, "event=store_error conn=%llu op=hello status=%s",
            static_cast<unsigned long long>(id_), to_string(status));
        close_with(1011, "store", now_);
        return;
    }
    if (result.decision == HelloDecision::kForbidden) {
        forbid(pending_session_.c_str(), "owner");
        return;
    }
    if (result.decision == HelloDecision::kSuperseded) {
        log(LogLevel::kInfo, "event=superseded conn=%llu session=%s version=%u",
            static_cast<unsigned long long>(id_), pending_session_.c_str(), version_);
        close_with(v1::kCloseSuperseded, "superseded", now_);
        return;
    }
    session_ = pending_session_;
    server_.claim_session(session_, this, now_);
    phase_ = Phase::kOnline;
    // tether-server takes ages (PROTOCOL.md 3.6) from a client that offers them.
    age_ = pending_age_;
    // ... and keeps device state for one that offers it (section 9).
    state_ = pending_state_ && server_.options().state;
    if (state_ && state_out_ == nullptr) {
        state_out_.reset(new char[v1::kMaxStateMessage]);
        state_document_.reset(new char[v1::kMaxStateDocument]);
    }
    desired_sent_ = pending_desired_version_;

    v1::Welcome welcome;
    std::snprintf(welcome.session, sizeof welcome.session, "%s", session_.c_str());
    welcome.resumed = result.resumed;
    welcome.last_uplink = result.last_uplink;
    welcome.ack_every = server_.options().ack_every;
    welcome.ack_interval_ms = server_.options().ack_interval_ms;
    welcome.features = (age_ ? v1::kFeatureAge : 0) | (state_ ? v1::kFeatureState : 0);
    char json[v1::kMaxControlSize];
    std::size_t length = 0;
    if (v1::write_welcome(welcome, json, sizeof json, &length) != v1::V1Status::kOk ||
        !queue_json(json, length)) {
        close_with(1011, "welcome", now_);
        return;
    }
    downlink_sent_ = result.replay_after;
    if (result.has_downlink_gap) {
        v1::Gap gap;
        gap.first = result.downlink_gap.first;
        gap.last = result.downlink_gap.last;
        std::strncpy(gap.reason, result.downlink_gap.reason.c_str(), v1::kMaxReasonLength);
        if (v1::write_gap(gap, json, sizeof json, &length) != v1::V1Status::kOk ||
            !queue_json(json, length)) {
            close_with(1011, "gap", now_);
            return;
        }
        if (downlink_sent_ < gap.last) {
            downlink_sent_ = gap.last;
        }
    }
    downlink_dirty_ = true;
    log(LogLevel::kInfo,
        "event=welcome conn=%llu session=%s version=%u resumed=%d last_uplink=%llu",
        static_cast<unsigned long long>(id_), session_.c_str(), version_, result.resumed ? 1 : 0,
        static_cast<unsigned long long>(result.last_uplink));
    if (state_) {
        // What changed while the device was away: the increments or one snapshot.
        ask_desired();
    }
}

// --- Device state (docs/PROTOCOL.md 9) -------------------------------------------

void ClientConnection::ask_desired() {
    if (desired_in_flight_) {
        desired_again_ = true;  // asked again once this answer is in
        return;
    }
    desired_again_ = false;
    const Status asked = server_.ask_desired_since(this, desired_sent_);
    if (asked != Status::kOk) {
        store_failed("desired", to_string(asked));
        return;
    }
    desired_in_flight_ = true;
}

void ClientConnection::desired_changed(std::uint64_t version) {
    if (dead_ || phase_ != Phase::kOnline || !state_) {
        return;
    }
    if (desired_in_flight_) {
        // The answer on its way may predate this change (or, for a device
        // newer than the store, desired_sent_ is about to go down): ask again.
        desired_again_ = true;
        return;
    }
    if (version > desired_sent_) {
        ask_desired();
    }
}

void ClientConnection::queue_state_message(std::size_t length) {
    // In order, ahead of downlink, as the transmit buffer takes them (pump()).
    state_pending_.emplace_back(state_out_.get(), length);
    if (state_pending_.size() > kMaxStatePending) {
        // More than one answer's worth waits: the device sends reports
        // without reading their answers (it may have one in flight).
        violation("state_backlog");
    }
}

void ClientConnection::on_desired_answer(Status status, const std::vector<DesiredChange>& changes) {
    desired_in_flight_ = false;
    if (dead_ || stop_processing_ || phase_ != Phase::kOnline) {
        return;
    }
    if (status != Status::kOk) {
        store_failed("desired", to_string(status));
        return;
    }
    for (const DesiredChange& change : changes) {
        if (change.version <= desired_sent_ && !change.snapshot) {
            continue;  // sent already (an answer to an earlier question)
        }
        std::size_t length = 0;
        if (v1::write_desired(change.version, change.snapshot, change.document.data(),
                              change.document.size(), state_out_.get(), v1::kMaxStateMessage,
                              &length) != v1::V1Status::kOk) {
            close_with(1011, "desired", now_);
            return;
        }
        queue_state_message(length);
        if (dead_ || phase_ != Phase::kOnline) {
            return;
        }
        desired_sent_ = change.version;
        ++server_.counters().desired_sent;
    }
    if (desired_again_) {
        ask_desired();
    }
}

bool ClientConnection::handle_state(const std::uint8_t* data, std::size_t size) {
    v1::StateMessage message;
    const v1::V1Status parsed =
        v1::parse_state_message(data, size, &message, state_document_.get(), v1::kMaxStateDocument);
    if (parsed == v1::V1Status::kUnknownType) {
        return false;  // hello, gap, ...: parse_control decides
    }
    ReportRequest request;
    request.session = session_;
    if (parsed == v1::V1Status::kBadField) {
        std::string id;
        std::string document;
        if (!salvage_report(data, size, &id, &request.base, &request.whole, &document)) {
            violation("bad_state");
            return true;
        }
        request.id = id;
        request.document = document;
        const Status asked = server_.ask_report(this, request);
        if (asked != Status::kOk) {
            on_report_answer(id, asked, ReportResult{});
        }
        return true;
    }
    if (parsed != v1::V1Status::kOk) {
        violation("bad_state");
        return true;
    }
    if (message.type == v1::StateType::kApplied) {
        const Status status = server_.engine().desired_applied(session_, message.version);
        if (status == Status::kOk) {
            server_.note_uplink(false);  // durable with the next batched sync
        } else if (status == Status::kInvalidArgument) {
            violation("applied_beyond_desired");
        } else {
            store_failed("applied", to_string(status));
        }
        return true;
    }
    if (message.type != v1::StateType::kReport) {
        violation("unexpected_state");  // desired, report_ok, report_refused: server to client only
        return true;
    }
    request.id = std::string_view(message.id, v1::kReportIdLength);
    request.base = message.base;
    request.whole = message.whole;
    request.document = std::string_view(state_document_.get(), message.document_size);
    const Status asked = server_.ask_report(this, request);
    if (asked != Status::kOk) {
        // Not asked: the device may resend the same report later.
        on_report_answer(std::string(message.id, v1::kReportIdLength), asked, ReportResult{});
    }
    return true;
}

void ClientConnection::on_report_answer(const std::string& id, Status status,
                                        const ReportResult& result) {
    if (dead_ || stop_processing_ || phase_ != Phase::kOnline) {
        return;
    }
    std::size_t length = 0;
    v1::V1Status written = v1::V1Status::kOk;
    const bool ok = status == Status::kOk && (result.outcome == ReportOutcome::kApplied ||
                                              result.outcome == ReportOutcome::kRepeated);
    if (ok) {
        written = v1::write_report_ok(id.c_str(), result.version, state_out_.get(),
                                      v1::kMaxStateMessage, &length);
        ++server_.counters().reports_applied;
    } else {
        const char* reason = refusal_reason(status, result.outcome);
        const bool stale = reason == v1::kRefusedStale;
        written = v1::write_report_refused(
            id.c_str(), reason, result.version, stale ? result.document.data() : nullptr,
            stale ? result.document.size() : 0, state_out_.get(), v1::kMaxStateMessage, &length);
        ++server_.counters().reports_refused;
        if (!refusal_logged_) {
            // Once per connection: a device that keeps sending stale reports
            // is counted (reports_refused), not logged each time.
            refusal_logged_ = true;
            log(LogLevel::kInfo, "event=report_refused conn=%llu session=%s reason=%s version=%llu",
                static_cast<unsigned long long>(id_), session_.c_str(), reason,
                static_cast<unsigned long long>(result.version));
        }
    }
    if (written != v1::V1Status::kOk) {
        close_with(1011, "report", now_);
        return;
    }
    queue_state_message(length);
}

void ClientConnection::handle_control(const std::uint8_t* data, std::size_t size) {
    v1::Control control;
    if (v1::parse_control(data, size, &control) != v1::V1Status::kOk ||
        control.type != v1::ControlType::kGap) {
        violation("unexpected_control");
        return;
    }
    const GapResult result = server_.engine().uplink_gap(session_, control.gap.first,
                                                         control.gap.last, control.gap.reason);
    switch (result) {
        case GapResult::kRecorded:
        case GapResult::kRecordedAfterUnreportedGap:
        case GapResult::kIgnored:
        case GapResult::kQueued:
            server_.note_uplink(true);
            return;
        case GapResult::kInvalidArgument:
            violation("bad_gap");
            return;
        default:
            store_failed("gap", to_string(result));
            return;
    }
}

void ClientConnection::handle_binary(const std::uint8_t* data, std::size_t size) {
    v1::BinaryMessage message;
    if (v1::decode_binary(data, size, &message, age_ ? v1::kFeatureAge : 0) != v1::V1Status::kOk) {
        violation("bad_binary");
        return;
    }
    if (message.kind == v1::Kind::kAck) {
        const Status status = server_.engine().downlink_acked(session_, message.seq);
        if (status == Status::kInvalidArgument) {
            violation("ack_beyond_sent");
        } else if (status != Status::kOk) {
            store_failed("ack", to_string(status));
        }
        return;
    }
    UplinkMeta meta;
    meta.has_age = message.has_age;
    meta.age_ms = message.age_ms;
    meta.received_unix_ms = server_.wall_clock_ms();
    if (meta.has_age && !age_logged_) {
        // Once per connection: the first aged DATA says how long the backlog waited.
        age_logged_ = true;
        log(LogLevel::kInfo,
            "event=uplink_age conn=%llu session=%s seq=%llu age_ms=%u captured_ms=%llu",
            static_cast<unsigned long long>(id_), session_.c_str(),
            static_cast<unsigned long long>(message.seq), meta.age_ms,
            static_cast<unsigned long long>(
                meta.received_unix_ms > meta.age_ms ? meta.received_unix_ms - meta.age_ms : 0));
    }
    const UplinkResult result = server_.engine().uplink_data(session_, message.seq, message.payload,
                                                             message.payload_size, meta);
    switch (result) {
        case UplinkResult::kStored:
        case UplinkResult::kStoredAfterUnreportedGap:
        case UplinkResult::kQueued:
            ++server_.metrics().messages_stored;
            if (!store_timing_) {
                store_timing_ = true;
                store_timed_seq_ = message.seq;
                store_timed_at_ = port::monotonic_now();
            }
            server_.note_uplink(false);
            return;
        case UplinkResult::kDuplicate:
            server_.note_uplink(false);
            return;
        case UplinkResult::kInvalidArgument:
        case UplinkResult::kTooLarge:
            violation("bad_data");
            return;
        default:
            store_failed("uplink", to_string(result));
            return;
    }
}

void ClientConnection::send_ack(std::uint64_t seq) {
    if (dead_ || phase_ != Phase::kOnline) {
        return;
    }
    if (store_timing_ && seq >= store_timed_seq_) {
        store_timing_ = false;
        server_.observe_store_latency(time_since(port::monotonic_now(), store_timed_at_));
    }
    std::uint8_t ack[v1::kHeaderSize];
    v1::write_ack(seq, ack);
    bool queued = stream_->queue_message(net::WsOpcode::kBinary, ack, sizeof ack);
    if (!queued) {
        // The transmit buffer is full of downlink: flush and try once more;
        // a later ACK covers this one anyway (they are cumulative).
        flush();
        queued = !dead_ && stream_->queue_message(net::WsOpcode::kBinary, ack, sizeof ack);
    }
    if (queued) {
        ++server_.metrics().acks_sent;
    }
}

void ClientConnection::pump(TimeMs now) {
    now_ = now;
    if (dead_) {
        return;
    }
    while (phase_ == Phase::kOnline && !state_pending_.empty()) {
        const std::string& message = state_pending_.front();
        if (!queue_json(message.data(), message.size())) {
            break;  // no room: continue once the buffer drains
        }
        state_pending_.pop_front();
    }
    if (phase_ == Phase::kOnline && downlink_dirty_ && state_pending_.empty()) {
        downlink_dirty_ = false;
        for (;;) {
            const DownlinkMessage* message =
                server_.engine().downlink_next(session_, downlink_sent_);
            if (message == nullptr) {
                break;
            }
            std::uint8_t header[v1::kHeaderSize];
            v1::write_data_header(message->seq, header);
            if (!stream_->queue_message_parts(net::WsOpcode::kBinary, header, sizeof header,
                                              message->payload.data(), message->payload.size())) {
                downlink_dirty_ = true;  // no room: continue once the buffer drains
                break;
            }
            downlink_sent_ = message->seq;
        }
    }
    flush();
}

std::uint32_t ClientConnection::tick(TimeMs now, bool silenced) {
    now_ = now;
    if (dead_) {
        return kMaxIntervalMs;
    }
    const Options& options = server_.options();
    if (phase_ == Phase::kTls || phase_ == Phase::kUpgrade || phase_ == Phase::kHttpReply) {
        // Handshakes get the ping timeout to finish.
        const TimeMs deadline = opened_at_ + options.ping_timeout_ms;
        if (time_reached(now, deadline)) {
            drop();
            return kMaxIntervalMs;
        }
        return time_until(now, deadline);
    }
    if (phase_ == Phase::kHelloPending) {
        // The engine answers or fails every hello; this bounds a store that does neither.
        const TimeMs deadline = hello_asked_at_ + options.ping_timeout_ms;
        if (time_reached(now, deadline)) {
            log(LogLevel::kError, "event=store_error conn=%llu op=hello status=timeout",
                static_cast<unsigned long long>(id_));
            close_with(1011, "store", now);
            return kMaxIntervalMs;
        }
        return time_until(now, deadline);
    }
    if (phase_ == Phase::kClosing) {
        const TimeMs deadline = closing_since_ + options.close_timeout_ms;
        if (time_reached(now, deadline)) {
            drop();
            return kMaxIntervalMs;
        }
        return time_until(now, deadline);
    }
    if (silenced) {
        return kMaxIntervalMs;  // no pings while silent: the client must notice
    }
    if (ping_outstanding_) {
        const TimeMs deadline = ping_sent_at_ + options.ping_timeout_ms;
        if (time_reached(now, deadline)) {
            log(LogLevel::kWarn, "event=dead_link conn=%llu session=%s",
                static_cast<unsigned long long>(id_), session_.c_str());
            drop();
            return kMaxIntervalMs;
        }
        return time_until(now, deadline);
    }
    const TimeMs ping_at = last_rx_ + options.ping_interval_ms;
    if (time_reached(now, ping_at)) {
        const std::uint8_t payload[4] = {
            static_cast<std::uint8_t>(now >> 24), static_cast<std::uint8_t>(now >> 16),
            static_cast<std::uint8_t>(now >> 8), static_cast<std::uint8_t>(now)};
        if (stream_->queue_ping(payload, sizeof payload)) {
            ping_outstanding_ = true;
            ping_sent_at_ = now;
            flush();
        }
        return options.ping_timeout_ms;
    }
    return time_until(now, ping_at);
}

}  // namespace tether::server

// SPDX-License-Identifier: MIT
#include "tether/client.h"

#include <cstdio>
#include <cstring>

#include "tether/net/tether_v1.h"
#include "tether/net/utf8.h"

namespace tether {
namespace {

FailureKind failure_kind(TransportError error, bool tls_phase) {
    switch (error) {
        case TransportError::kRefused:
            return FailureKind::kTcpRefused;
        case TransportError::kTimedOut:
            return FailureKind::kTcpTimeout;
        case TransportError::kUnreachable:
            return FailureKind::kNetworkUnreachable;
        case TransportError::kTlsFailed:
            return FailureKind::kTlsFailed;
        case TransportError::kCertificateInvalid:
            return FailureKind::kTlsCertificateInvalid;
        case TransportError::kReset:
        case TransportError::kNone:
        case TransportError::kOther:
            break;
    }
    return tls_phase ? FailureKind::kTlsFailed : FailureKind::kTcpReset;
}

// TCP to the proxy failed: the proxy's kinds, except a local network that is down.
FailureKind proxy_failure_kind(TransportError error) {
    switch (error) {
        case TransportError::kRefused:
            return FailureKind::kProxyRefused;
        case TransportError::kUnreachable:
            return FailureKind::kNetworkUnreachable;
        default:
            return FailureKind::kProxyUnreachable;
    }
}

// The link is open (online or closing): the transport failing now is a lost connection.
bool link_open(LinkState state) {
    return state == LinkState::kOnline || state == LinkState::kClosing ||
           state == LinkState::kSessionResume;
}

}  // namespace

Client::Client(const ClientConfig& config, const ClientBuffers& buffers, Connection& connection,
               NameResolver& resolver, RandomSource& random, net::MaskSource& masks,
               ClientListener* listener, CredentialsProvider* credentials, StateRecord* record,
               PersistentState* state)
    : config_(config),
      connection_(connection),
      resolver_(resolver),
      random_(random),
      listener_(listener),
      credentials_(credentials),
      record_(record),
      state_(state),
      machine_(config.reconnect),
      outbox_(buffers.outbox, buffers.outbox_size, config.overflow,
              state != nullptr ? state->next_uplink_seq : 1),
      stream_(config.ws, buffers.rx, buffers.rx_size, buffers.tx, buffers.tx_size, masks),
      parser_("AAAAAAAAAAAAAAAAAAAAAAAAAAA=", nullptr, 0, false),
      state_document_(buffers.state_document),
      state_document_size_(buffers.state_document_size),
      numbering_floor_(outbox_.next_seq()) {}

Client::~Client() {
    stream_.detach();
    connection_.close();
    resolver_.cancel();
}

Status Client::init() {
    if (config_.url_count == 0 || config_.url_count > EndpointPool::kMaxEndpoints) {
        std::snprintf(config_error_, sizeof config_error_, "between 1 and %u URLs are needed",
                      static_cast<unsigned>(EndpointPool::kMaxEndpoints));
        return Status::kInvalidArgument;
    }
    ReconnectConfig reconnect = config_.reconnect;
    reconnect.endpoint_count = static_cast<std::uint8_t>(config_.url_count);
    reconnect.tls_endpoints = 0;
    for (std::size_t i = 0; i < config_.url_count; ++i) {
        const net::UrlStatus status = net::parse_ws_url(config_.urls[i], &urls_[i]);
        if (status != net::UrlStatus::kOk) {
            std::snprintf(config_error_, sizeof config_error_, "url %u: %s",
                          static_cast<unsigned>(i + 1), net::to_string(status));
            return Status::kInvalidArgument;
        }
        if (urls_[i].tls) {
            reconnect.tls_endpoints =
                static_cast<std::uint8_t>(reconnect.tls_endpoints | (1u << i));
        }
        if (config_.proxy != nullptr && config_.proxy->host[0] != '\0' &&
            !net::no_proxy_matches(config_.no_proxy, urls_[i].host, urls_[i].port)) {
            reconnect.proxied_endpoints =
                static_cast<std::uint8_t>(reconnect.proxied_endpoints | (1u << i));
        }
    }
    if (config_.proxy != nullptr && config_.proxy->host[0] != '\0' &&
        (config_.proxy->port == 0 ||
         (config_.proxy->has_credentials && config_.proxy->username[0] == '\0' &&
          config_.proxy->password[0] != '\0'))) {
        std::snprintf(config_error_, sizeof config_error_,
                      "proxy: no port, or a password without a user name");
        return Status::kInvalidArgument;
    }
    if (validate(reconnect) != Status::kOk) {
        std::snprintf(config_error_, sizeof config_error_, "reconnect settings out of range");
        return Status::kInvalidArgument;
    }
    config_.reconnect = reconnect;
    machine_ = ReconnectMachine(reconnect);
    if (state_ != nullptr) {
        machine_.restore_attempts(state_->reconnect_attempts);
    }
    // Every limit a message meets on its way, so that what send() accepts can
    // always be framed, buffered and taken by a peer with the same limit.
    // With the age extension offered, any DATA may need the longer header.
    const std::size_t framing = !resume_mode()        ? 0
                                : config_.message_age ? net::v1::kAgedDataHeaderSize
                                                      : net::v1::kHeaderSize;
    std::size_t limit =
        config_.ws.max_message_size > framing ? config_.ws.max_message_size - framing : 0;
    const std::size_t tx_room = stream_.tx_capacity() > net::kMaxClientFrameHeader + framing
                                    ? stream_.tx_capacity() - net::kMaxClientFrameHeader - framing
                                    : 0;
    limit = limit < tx_room ? limit : tx_room;
    limit = limit < outbox_.max_message_size() ? limit : outbox_.max_message_size();
    max_payload_ = limit;
    if (max_payload_ == 0) {
        std::snprintf(config_error_, sizeof config_error_,
                      "buffers too small for any message (outbox, transmit buffer or "
                      "max_message_size)");
        return Status::kInvalidArgument;
    }
    return resume_mode() ? init_resume() : Status::kOk;
}

std::uint32_t Client::random_u32() {
    std::uint8_t bytes[4] = {};
    if (!random_.fill_random(bytes, sizeof bytes)) {
        // Jitter without entropy would be predictable, not unsafe; the
        // attempt that follows needs entropy for its key and fails closed.
        return 0;
    }
    return static_cast<std::uint32_t>(bytes[0]) | static_cast<std::uint32_t>(bytes[1]) << 8 |
           static_cast<std::uint32_t>(bytes[2]) << 16 | static_cast<std::uint32_t>(bytes[3]) << 24;
}

void Client::start(TimeMs now) {
    apply_numbering_floor();
    feed(Event::start(), now);
}

void Client::apply_numbering_floor() {
    if (outbox_.next_seq() >= numbering_floor_) {
        return;
    }
    outbox_.skip_to(numbering_floor_);
}

bool Client::connect_now(TimeMs now) {
    const LinkState before = machine_.state();
    if (before != LinkState::kWaitingToRetry && before != LinkState::kGivenUp) {
        return false;
    }
    apply_numbering_floor();
    feed(Event::connect_now(), now);
    return true;
}

void Client::stop(TimeMs now, std::uint16_t code) {
    if (resume_mode() && downlink_ack_pending_ && machine_.state() == LinkState::kOnline) {
        // What the application has must not come again after the restart.
        send_downlink_ack(now);
    }
    feed(Event::stop(code), now);
    flush(now);
}

Status Client::send(TimeMs now, const std::uint8_t* data, std::size_t size, std::uint64_t* seq,
                    net::WsOpcode type) {
    if (size > max_payload_) {
        ++counters_.rejected_too_large;
        return Status::kTooLarge;
    }
    if (!resume_mode() && data != nullptr &&
        (type == net::WsOpcode::kText ||
         (type == net::WsOpcode::kContinuation && config_.message_type == net::WsOpcode::kText))) {
        // A peer must fail the connection over invalid text (1007): queued,
        // it would come back after every reconnect.
        net::Utf8Validator validator;
        if (!validator.feed(data, size) || !validator.complete()) {
            ++counters_.rejected_invalid_text;
            return Status::kInvalidArgument;
        }
    }
    apply_numbering_floor();
    std::uint64_t assigned = 0;
    const Status status = outbox_.push(data, size, &assigned, static_cast<std::uint8_t>(type), now);
    if (seq != nullptr) {
        *seq = assigned;
    }
    if (status == Status::kOk && resume_mode()) {
        reserve_uplink_seqs();
    }
    return status;
}

Status Client::restore(std::uint64_t seq, const std::uint8_t* data, std::size_t size) {
    if (data == nullptr && size > 0) {
        return Status::kInvalidArgument;
    }
    if (!outbox_.rebase(seq) && seq < outbox_.next_seq()) {
        return Status::kInvalidArgument;
    }
    if (size > max_payload_) {
        return Status::kTooLarge;
    }
    outbox_.skip_to(seq);
    const Status status = outbox_.push_overwrite(data, size);
    if (status == Status::kOk && seq > maybe_held_through_) {
        maybe_held_through_ = seq;
    }
    if (status == Status::kOk) {
        // Every later message gets a higher seq, and renumbering never
        // touches one that may be at the server: the seq tells them apart.
        restored_through_ = seq;
    }
    return status;
}

void Client::continue_numbering_at(std::uint64_t seq, const char* reason) {
    if (seq > numbering_floor_) {
        numbering_floor_ = seq;
    }
    skipped_reason_ = reason != nullptr ? reason : "unrecovered";
}

void Client::confirm_downlink(std::uint64_t seq) {
    if (seq > last_delivered_) {
        seq = last_delivered_;
    }
    // Seqs after the newest message the application got are gaps the server
    // announced: once it has everything before them, they are done too.
    if (seq >= last_message_seq_) {
        seq = last_delivered_;
    }
    if (seq > last_confirmed_) {
        last_confirmed_ = seq;
        downlink_ack_pending_ = true;
    }
}

bool Client::idle() const {
    return outbox_.empty() && stream_.queued_bytes() == 0;
}

void Client::post(const Event& event) {
    if (posted_count_ < kMaxPosted) {
        posted_[posted_count_++] = event;
    }
}

void Client::feed(const Event& event, TimeMs now) {
    perform(machine_.step(event, now, random_u32()), now);
    // Events raised by the actions just performed, in order. Each step may
    // post at most one more (a connect that fails at once), so this ends.
    while (posted_count_ > 0) {
        const Event next = posted_[0];
        for (std::size_t i = 1; i < posted_count_; ++i) {
            posted_[i - 1] = posted_[i];
        }
        --posted_count_;
        perform(machine_.step(next, now, random_u32()), now);
    }
}

void Client::fail(const Failure& failure, TimeMs now, bool more_addresses) {
    feed(Event::failed(failure, more_addresses), now);
}

void Client::perform(const Actions& actions, TimeMs now) {
    for (std::size_t i = 0; i < actions.count; ++i) {
        perform_one(actions.items[i], now);
    }
}

void Client::perform_one(const Action& action, TimeMs now) {
    switch (action.type) {
        case ActionType::kResolve: {
            detail_[0] = '\0';
            const bool via_proxy =
                ((static_cast<unsigned>(config_.reconnect.proxied_endpoints) >> action.endpoint) &
                 1u) != 0;
            const ResolveStatus status = resolver_.start(
                via_proxy ? config_.proxy->host : urls_[action.endpoint].host, now, random_u32());
            if (status == ResolveStatus::kDone) {
                address_count_ = resolver_.addresses(addresses_, 8);
                next_address_ = 0;
                post(Event::of(EventType::kResolved));
            } else if (status != ResolveStatus::kPending) {
                std::snprintf(detail_, sizeof detail_, "%s=%s",
                              via_proxy ? "proxy_resolve" : "resolve", to_string(status));
                post(Event::failed(Failure{FailureKind::kDnsFailure}));
            }
            return;
        }
        case ActionType::kConnect:
            connect_next(now);
            return;
        case ActionType::kStartTls:
            // Direct, establish() goes on from TCP into TLS; through a
            // proxy, TLS starts over the tunnel.
            if (proxied()) {
                start_tunnel_tls();
            }
            return;
        case ActionType::kSendProxyConnect:
            send_proxy_connect(now);
            return;
        case ActionType::kSendUpgrade:
            send_upgrade(now);
            return;
        case ActionType::kSendHello:
            send_hello(now);
            return;
        case ActionType::kSendPing:
            (void)stream_.queue_ping(action.ping_payload, kPingPayloadSize);
            flush(now);
            return;
        case ActionType::kSendClose:
            (void)stream_.queue_close(action.close_code);
            flush(now);
            return;
        case ActionType::kCloseTransport:
            // Frames still in the stream die with it; their entries stay in
            // the outbox and go out again after the next open (rewind).
            if (!resume_mode()) {
                plain_link_closed(plain_clean_close_);
            }
            plain_clean_close_ = false;
            stream_.detach();
            connection_.close();
            resolver_.cancel();
            transport_open_ = false;
            std::memset(request_, 0, sizeof request_);
            proxy_request_length_ = 0;
            proxy_request_sent_ = 0;
            queued_unacked_ = false;
            welcome_seen_ = false;
            violation_ = false;
            state_on_link_ = false;
            downlink_ack_armed_ = false;
            return;
        case ActionType::kRefreshCredentials:
            if (credentials_ != nullptr) {
                credentials_->refresh();
            }
            return;
        case ActionType::kPersist:
            persist();
            return;
        case ActionType::kNotifyState:
            if (machine_.state() == LinkState::kOnline) {
                // Everything not yet acknowledged goes out again, in order.
                outbox_.rewind();
                queued_unacked_ = false;
                ++counters_.connects;
            }
            notify();
            return;
    }
}

void Client::notify() {
    if (listener_ == nullptr) {
        return;
    }
    ClientEvent event{};
    event.state = machine_.state();
    event.previous = machine_.previous_state();
    event.endpoint = machine_.endpoint();
    event.attempt = machine_.attempts();
    event.delay_ms = machine_.retry_delay_ms();
    event.reason = machine_.last_failure_reason();
    event.detail = detail_;
    listener_->on_state(event);
}

void Client::connect_next(TimeMs now) {
    (void)now;
    if (next_address_ >= address_count_) {
        post(Event::failed(Failure{FailureKind::kTcpRefused}));
        return;
    }
    const net::WsUrl& url = urls_[machine_.endpoint()];
    TransportError error = TransportError::kNone;
    const net::IpAddress& address = addresses_[next_address_++];
    const bool via_proxy = proxied();
    const Status opened =
        via_proxy ? connection_.open(address, config_.proxy->port, false, nullptr, &error)
                  : connection_.open(address, url.port, url.tls, url.host, &error);
    if (opened != Status::kOk) {
        std::snprintf(detail_, sizeof detail_, "%s=%s", via_proxy ? "proxy_connect" : "connect",
                      to_string(error));
        post(Event::failed(
            Failure{via_proxy ? proxy_failure_kind(error) : failure_kind(error, false)},
            next_address_ < address_count_));
        return;
    }
    transport_open_ = true;
}

void Client::send_proxy_connect(TimeMs now) {
    const net::WsUrl& url = urls_[machine_.endpoint()];
    const net::ProxyUrl& proxy = *config_.proxy;
    net::ConnectRequest request{url.host, url.port};
    if (proxy.has_credentials) {
        request.username = proxy.username;
        request.password = proxy.password;
    }
    proxy_parser_.reset();
    proxy_request_sent_ = 0;
    const net::ConnectBuildStatus built =
        net::build_connect_request(request, request_, sizeof request_, &proxy_request_length_);
    if (built != net::ConnectBuildStatus::kOk) {
        std::snprintf(detail_, sizeof detail_, "proxy_request=%s", net::to_string(built));
        post(Event::failed(Failure{FailureKind::kProxyInvalid}));
        return;
    }
    (void)now;  // written by service_proxy(), which the loop runs next
}

void Client::fail_proxy(FailureKind kind, std::uint16_t code, TimeMs now) {
    std::memset(request_, 0, sizeof request_);
    proxy_request_length_ = 0;
    fail(Failure{kind, code}, now);
}

bool Client::service_proxy(TimeMs now) {
    if (!transport_open_) {
        return false;
    }
    // The request first (it may hold credentials: wiped once sent).
    while (proxy_request_sent_ < proxy_request_length_) {
        const IoResult wrote =
            connection_.write(reinterpret_cast<const std::uint8_t*>(request_) + proxy_request_sent_,
                              proxy_request_length_ - proxy_request_sent_);
        if (wrote.status == IoStatus::kWouldBlock) {
            return false;
        }
        if (wrote.status != IoStatus::kOk) {
            std::snprintf(detail_, sizeof detail_, "proxy=%s", to_string(wrote.error));
            fail_proxy(FailureKind::kProxyInvalid, 0, now);
            return true;
        }
        proxy_request_sent_ += wrote.bytes;
        if (proxy_request_sent_ == proxy_request_length_) {
            std::memset(request_, 0, proxy_request_length_);
        }
    }
    // Then the answer, never more than the parser wants: the bytes after the
    // header block are the endpoint's and stay in the socket for TLS or the
    // upgrade parser.
    net::ConnectResult result = net::ConnectResult::kNeedMore;
    while (result == net::ConnectResult::kNeedMore) {
        std::uint8_t bytes[4];
        const std::size_t wanted = proxy_parser_.bytes_wanted();
        const IoResult got = connection_.read(bytes, wanted < sizeof bytes ? wanted : sizeof bytes);
        if (got.status == IoStatus::kWouldBlock) {
            return false;
        }
        if (got.status != IoStatus::kOk) {
            std::snprintf(detail_, sizeof detail_, "proxy=%s",
                          got.status == IoStatus::kClosed ? "eof" : to_string(got.error));
            fail_proxy(FailureKind::kProxyInvalid, 0, now);
            return true;
        }
        std::size_t consumed = 0;
        result = proxy_parser_.feed(bytes, got.bytes, &consumed);
    }
    const unsigned code = proxy_parser_.status_code();
    switch (result) {
        case net::ConnectResult::kEstablished:
            feed(Event::of(EventType::kTunnelEstablished), now);
            return true;
        case net::ConnectResult::kMalformed:
        case net::ConnectResult::kTooLarge:
            std::snprintf(detail_, sizeof detail_, "proxy=%s", net::to_string(result));
            fail_proxy(FailureKind::kProxyInvalid, 0, now);
            return true;
        default:
            std::snprintf(detail_, sizeof detail_, "proxy_status=%u%s", code,
                          result == net::ConnectResult::kAuthRequired && config_.proxy != nullptr &&
                                  !config_.proxy->has_credentials
                              ? " credentials=none"
                              : "");
            // Every refusal of the credentials is one policy row (407),
            // whichever code the proxy used; the detail keeps the real one.
            fail_proxy(FailureKind::kProxyStatus,
                       result == net::ConnectResult::kAuthRequired
                           ? std::uint16_t{407}
                           : static_cast<std::uint16_t>(code),
                       now);
            return true;
    }
}

void Client::start_tunnel_tls() {
    TransportError error = TransportError::kNone;
    if (connection_.start_tls(urls_[machine_.endpoint()].host, &error) != Status::kOk) {
        std::snprintf(detail_, sizeof detail_, "tls=%s", to_string(error));
        post(Event::failed(Failure{FailureKind::kTlsFailed}));
    }
}

void Client::send_upgrade(TimeMs now) {
    std::uint8_t nonce[16];
    char key[net::kWebSocketKeyLength + 1];
    char accept[net::kWebSocketAcceptLength + 1];
    if (!random_.fill_random(nonce, sizeof nonce) ||
        net::make_websocket_key(nonce, key) != net::HandshakeStatus::kOk ||
        net::compute_accept(key, accept) != net::HandshakeStatus::kOk) {
        std::snprintf(detail_, sizeof detail_, "entropy=unavailable");
        post(Event::failed(Failure{FailureKind::kTlsFailed}));
        return;
    }
    char authorization[1024];
    const bool has_authorization =
        credentials_ != nullptr && credentials_->authorization(authorization, sizeof authorization);

    const net::WsUrl& url = urls_[machine_.endpoint()];
    net::UpgradeRequest request;
    request.host = url.host;
    request.port = url.port;
    request.tls = url.tls;
    request.path = url.path;
    request.key = key;
    request.subprotocols = config_.subprotocols;
    request.subprotocol_count = config_.subprotocol_count;
    request.authorization = has_authorization ? authorization : nullptr;
    request.extra_headers = config_.extra_headers;
    request.extra_header_count = config_.extra_header_count;
    request.deflate = config_.deflater != nullptr ? &config_.deflate_offer : nullptr;
    std::size_t length = 0;
    const net::HandshakeStatus built =
        net::build_upgrade_request(request, request_, sizeof request_, &length);
    // The token is no longer needed; do not leave it on the stack.
    std::memset(authorization, 0, sizeof authorization);
    if (built != net::HandshakeStatus::kOk || !stream_.attach(&connection_) ||
        !stream_.queue_raw(reinterpret_cast<const std::uint8_t*>(request_), length)) {
        std::snprintf(detail_, sizeof detail_, "request=%s", net::to_string(built));
        post(Event::failed(Failure{FailureKind::kHandshakeInvalid}));
        return;
    }
    std::memset(request_, 0, length);
    parser_.reset(accept, config_.subprotocols, config_.subprotocol_count,
                  config_.require_subprotocol);
    parser_.set_deflate_offer(request.deflate);
    flush(now);
}

void Client::flush(TimeMs now) {
    if (!stream_.attached() || stream_.queued_bytes() == 0) {
        return;
    }
    if (!resume_mode()) {
        plain_before_write();
    }
    const net::WsResult result = stream_.flush();
    if (result.status != net::WsStatus::kOk) {
        handle_read_result(result, now);
        return;
    }
    if (!resume_mode()) {
        plain_after_write();
    }
}

// Tells the application which messages the outbox dropped. Contiguous drops
// merge while they wait, so a long outage is one report, made when the link
// comes back and the loss starts to matter.
void Client::report_dropped() {
    SeqRange range{};
    while (outbox_.take_dropped_range(&range)) {
        if (listener_ != nullptr) {
            listener_->on_gap(false, range.first, range.last);
        }
    }
}

void Client::drain_outbox() {
    report_dropped();
    plain_queue_confirm();
    if (batch_count_ == kMaxBatches) {
        return;  // the kernel has not taken the earlier writes yet
    }
    const std::uint64_t start = written_offset() + stream_.queued_bytes();
    std::uint64_t first = 0;
    OutboxEntry entry;
    std::size_t queued = 0;
    for (Outbox::Iterator it = outbox_.unsent(); it.next(&entry);) {
        const net::WsOpcode type =
            entry.kind != 0 ? static_cast<net::WsOpcode>(entry.kind) : config_.message_type;
        if (!stream_.queue_message(type, entry.data, entry.size)) {
            break;
        }
        if (queued == 0) {
            first = entry.seq;
        }
        last_queued_seq_ = entry.seq;
        queued_unacked_ = true;
        ++queued;
    }
    if (queued > 0) {
        outbox_.mark_sent(queued);
        counters_.messages_sent += queued;
        plain_queued(first, last_queued_seq_, queued, start);
        plain_queue_confirm();
    }
}

void Client::handle_read_result(const net::WsResult& result, TimeMs now) {
    switch (result.status) {
        case net::WsStatus::kOk:
        case net::WsStatus::kNotAttached:
            return;
        case net::WsStatus::kProtocolError:
            std::snprintf(detail_, sizeof detail_, "close=%u",
                          static_cast<unsigned>(result.close_code));
            fail(Failure{FailureKind::kProtocolError, result.close_code}, now);
            return;
        case net::WsStatus::kClosed:
            if (machine_.state() == LinkState::kClosing) {
                feed(Event::of(EventType::kTransportClosed), now);
                return;
            }
            std::snprintf(detail_, sizeof detail_, "eof");
            fail(Failure{link_open(machine_.state()) ? FailureKind::kConnectionLost
                                                     : FailureKind::kTcpReset},
                 now);
            return;
        case net::WsStatus::kTransportError:
            std::snprintf(detail_, sizeof detail_, "transport=%s",
                          to_string(result.transport_error));
            if (link_open(machine_.state())) {
                fail(Failure{FailureKind::kConnectionLost}, now);
            } else {
                fail(Failure{failure_kind(result.transport_error,
                                          machine_.state() == LinkState::kTlsHandshake)},
                     now);
            }
            return;
        case net::WsStatus::kEntropyFailure:
            std::snprintf(detail_, sizeof detail_, "entropy=unavailable");
            fail(Failure{FailureKind::kConnectionLost}, now);
            return;
    }
}

void Client::service(TimeMs now) {
    // Each round either moves the machine on or stops; a bound keeps one
    // call short even if a peer makes every step succeed at once.
    cap_ages(now);
    for (int round = 0; round < 8; ++round) {
        const LinkState before = machine_.state();
        bool more = false;
        switch (before) {
            case LinkState::kResolving:
                more = service_resolving(now);
                break;
            case LinkState::kTcpConnecting:
            case LinkState::kTlsHandshake:
                more = service_establishing(now);
                break;
            case LinkState::kProxyConnect:
                more = service_proxy(now);
                break;
            case LinkState::kWsHandshake:
                more = service_upgrade(now);
                break;
            case LinkState::kSessionResume:
            case LinkState::kOnline:
            case LinkState::kClosing:
                more = service_open(now);
                break;
            default:
                break;
        }
        if (machine_.has_deadline() && time_reached(now, machine_.next_deadline())) {
            feed(Event::timer(), now);
        }
        if (downlink_ack_armed_ && machine_.state() == LinkState::kOnline &&
            time_reached(now, downlink_ack_due_)) {
            send_downlink_ack(now);
        }
        if (!more && machine_.state() == before) {
            return;
        }
    }
}

bool Client::service_resolving(TimeMs now) {
    const ResolveStatus status = resolver_.poll(now, random_u32());
    if (status == ResolveStatus::kPending) {
        return false;
    }
    if (status == ResolveStatus::kDone) {
        address_count_ = resolver_.addresses(addresses_, 8);
        next_address_ = 0;
        feed(Event::of(EventType::kResolved), now);
    } else {
        std::snprintf(detail_, sizeof detail_, "resolve=%s", to_string(status));
        fail(Failure{FailureKind::kDnsFailure}, now);
    }
    return true;
}

bool Client::service_establishing(TimeMs now) {
    if (!transport_open_) {
        return false;
    }
    const LinkState phase = machine_.state();
    const IoResult result = connection_.establish();
    if (result.status == IoStatus::kError || result.status == IoStatus::kClosed) {
        const bool tls_phase = phase == LinkState::kTlsHandshake;
        // One establish() may finish the TCP connect and fail the handshake.
        const bool tls_error = result.error == TransportError::kTlsFailed ||
                               result.error == TransportError::kCertificateInvalid;
        const bool via_proxy = proxied() && !tls_phase && !tls_error;
        std::snprintf(detail_, sizeof detail_, "%s=%s",
                      tls_phase || tls_error ? "tls"
                      : via_proxy            ? "proxy_connect"
                                             : "connect",
                      to_string(result.error));
        if (result.error == TransportError::kCertificateInvalid) {
            const std::size_t used = std::strlen(detail_);
            std::snprintf(detail_ + used, sizeof detail_ - used, " certificate=%s",
                          to_string(connection_.certificate_problem()));
        }
        const bool more = !tls_phase && next_address_ < address_count_;
        fail(Failure{via_proxy ? proxy_failure_kind(result.error)
                               : failure_kind(result.error, tls_phase)},
             now, more);
        return true;
    }
    if (phase == LinkState::kTcpConnecting && connection_.tcp_connected()) {
        feed(Event::of(EventType::kTcpConnected), now);
        return true;
    }
    if (phase == LinkState::kTlsHandshake && result.status == IoStatus::kOk) {
        feed(Event::of(EventType::kTlsEstablished), now);
        return true;
    }
    return false;
}

bool Client::service_upgrade(TimeMs now) {
    flush(now);
    if (machine_.state() != LinkState::kWsHandshake) {
        return true;
    }
    net::HandshakeStatus status = net::HandshakeStatus::kNeedMore;
    const net::WsResult result = stream_.read_handshake(&parser_, &status);
    switch (status) {
        case net::HandshakeStatus::kNeedMore:
            if (result.status != net::WsStatus::kOk) {
                handle_read_result(result, now);
                return true;
            }
            return false;
        case net::HandshakeStatus::kOk:
            if (parser_.deflate().active &&
                !stream_.enable_deflate(config_.deflater, parser_.deflate(),
                                        config_.deflate_threshold)) {
                std::snprintf(detail_, sizeof detail_, "deflate=unsupported_window");
                fail(Failure{FailureKind::kHandshakeInvalid}, now);
                return true;
            }
            feed(Event::of(EventType::kUpgraded), now);
            return true;
        case net::HandshakeStatus::kNotSwitching: {
            Failure failure{FailureKind::kHttpStatus, parser_.status_code()};
            failure.has_retry_after = parser_.has_retry_after();
            failure.retry_after_ms = parser_.retry_after_seconds() * 1000u;
            std::snprintf(detail_, sizeof detail_, "status=%u retry_after_s=%u",
                          static_cast<unsigned>(parser_.status_code()),
                          static_cast<unsigned>(parser_.retry_after_seconds()));
            fail(failure, now);
            return true;
        }
        default:
            std::snprintf(detail_, sizeof detail_, "handshake=%s", net::to_string(status));
            fail(Failure{FailureKind::kHandshakeInvalid}, now);
            return true;
    }
}

bool Client::service_open(TimeMs now) {
    const LinkState phase = machine_.state();
    if (phase == LinkState::kOnline) {
        resume_mode() ? drain_outbox_v1(now) : drain_outbox();
    }
    flush(now);
    if (machine_.state() != phase) {
        return true;
    }

    frame_seen_ = false;
    pong_seen_ = false;
    close_seen_ = false;
    const net::WsResult result = stream_.read_frames(*this);
    // The stream has returned: now the machine may act, and tear it down.
    if (confirm_seen_) {
        confirm_seen_ = false;
        plain_confirmed(confirm_pong_id_);
    }
    if (resume_mode()) {
        after_resume_read(now);
        if (machine_.state() != phase) {
            return true;
        }
    }
    if (pong_seen_) {
        feed(Event::pong(pong_payload_, pong_size_), now);
    } else if (frame_seen_) {
        feed(Event::of(EventType::kFrameReceived), now);
    }
    if (close_seen_) {
        // The answer to our own close: the peer read everything before it.
        plain_clean_close_ = phase == LinkState::kClosing;
        std::snprintf(detail_, sizeof detail_, "close=%u", static_cast<unsigned>(close_code_));
        Failure failure{FailureKind::kPeerClosed, close_code_};
        std::uint32_t seconds = 0;
        if (net::v1::parse_retry_after_reason(reinterpret_cast<const std::uint8_t*>(close_reason_),
                                              close_reason_size_, &seconds)) {
            failure.has_retry_after = true;
            failure.retry_after_ms = seconds * 1000u;
        }
        fail(failure, now);
        return true;
    }
    if (result.status != net::WsStatus::kOk) {
        handle_read_result(result, now);
        return true;
    }
    if (machine_.state() == LinkState::kOnline && outbox_.unsent_count() > 0 &&
        stream_.tx_space() > 0) {
        resume_mode() ? drain_outbox_v1(now) : drain_outbox();
        flush(now);
    }
    return machine_.state() != phase;
}

void Client::on_message(net::WsOpcode type, const std::uint8_t* data, std::size_t size) {
    ++counters_.messages_received;
    if (resume_mode()) {
        on_resume_message(type, data, size);
        return;
    }
    if (listener_ != nullptr) {
        listener_->on_message(type, data, size);
    }
}

void Client::on_pong(const std::uint8_t* payload, std::size_t size) {
    if (!resume_mode() && is_confirm_payload(payload, size)) {
        confirm_seen_ = true;
        confirm_pong_id_ = confirm_id_of(payload);
        frame_seen_ = true;
        return;
    }
    pong_seen_ = true;
    pong_size_ = size < sizeof pong_payload_ ? size : sizeof pong_payload_;
    std::memcpy(pong_payload_, payload, pong_size_);
}

void Client::on_close(std::uint16_t code, const std::uint8_t* reason, std::size_t size) {
    close_seen_ = true;
    close_code_ = code;
    close_reason_size_ = size < sizeof close_reason_ ? size : sizeof close_reason_;
    std::memcpy(close_reason_, reason, close_reason_size_);
}

void Client::on_frame() {
    frame_seen_ = true;
}

std::size_t Client::poll_requests(PollRequest* out, std::size_t max) const {
    std::size_t count = 0;
    const LinkState state = machine_.state();
    if (state == LinkState::kResolving) {
        int fds[NameResolver::kMaxFds];
        const std::size_t n = resolver_.fds(fds, NameResolver::kMaxFds);
        for (std::size_t i = 0; i < n && count < max; ++i) {
            out[count++] = PollRequest{fds[i], true, false};
        }
        return count;
    }
    if (!transport_open_ || connection_.fd() < 0 || count >= max) {
        return count;
    }
    bool want_read = true;
    bool want_write = false;
    if (state == LinkState::kTcpConnecting) {
        want_read = false;
        want_write = true;
    } else if (state == LinkState::kProxyConnect) {
        want_write = proxy_request_sent_ < proxy_request_length_;
    } else if (state == LinkState::kTlsHandshake) {
        want_read = false;  // interest() reports what the handshake waits for
    } else {
        want_write = stream_.queued_bytes() > 0 ||
                     (state == LinkState::kOnline && outbox_.unsent_count() > 0);
    }
    const PollInterest interest = connection_.interest(want_read, want_write);
    out[count++] = PollRequest{connection_.fd(), interest.read, interest.write};
    return count;
}

bool Client::next_deadline(TimeMs* at) const {
    bool any = false;
    if (machine_.has_deadline()) {
        *at = machine_.next_deadline();
        any = true;
    }
    if (machine_.state() == LinkState::kResolving) {
        const TimeMs resolver_at = resolver_.next_deadline();
        *at = any ? time_earliest(*at, resolver_at) : resolver_at;
        any = true;
    }
    if (downlink_ack_armed_ && machine_.state() == LinkState::kOnline) {
        *at = any ? time_earliest(*at, downlink_ack_due_) : downlink_ack_due_;
        any = true;
    }
    return any;
}

bool Client::has_buffered_input() const {
    return transport_open_ && connection_.pending() > 0;
}

}  // namespace tether

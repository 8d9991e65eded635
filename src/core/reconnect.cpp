// SPDX-License-Identifier: MIT
#include "tether/reconnect.h"

namespace tether {
namespace {

constexpr std::uint16_t bit(LinkState state) {
    return static_cast<std::uint16_t>(1u << static_cast<unsigned>(state));
}

// The states in which a connection attempt is under way, before it is open.
constexpr std::uint16_t kConnecting =
    bit(LinkState::kResolving) | bit(LinkState::kTcpConnecting) | bit(LinkState::kProxyConnect) |
    bit(LinkState::kTlsHandshake) | bit(LinkState::kWsHandshake) | bit(LinkState::kSessionResume);
constexpr std::uint16_t kActive = kConnecting | bit(LinkState::kOnline);

// Every transition the machine may take. docs/ARCHITECTURE.md shows this
// table verbatim (tests/unit/test_reconnect_table.cpp compares them), and the
// tests check that no step takes a transition missing from it.
constexpr TransitionRow kTransitions[] = {
    {bit(LinkState::kIdle) | bit(LinkState::kGivenUp), EventType::kStart,
     "attempts exhausted (max_attempts)", LinkState::kGivenUp, "notify"},
    {bit(LinkState::kIdle) | bit(LinkState::kGivenUp), EventType::kStart,
     "attempt counter restored > 0", LinkState::kWaitingToRetry,
     "notify; wait the backoff delay for that count"},
    {bit(LinkState::kIdle) | bit(LinkState::kGivenUp), EventType::kStart,
     "an endpoint admits an attempt", LinkState::kResolving,
     "count attempt; persist; notify; resolve"},
    {bit(LinkState::kIdle) | bit(LinkState::kGivenUp), EventType::kStart,
     "every endpoint held by Retry-After", LinkState::kWaitingToRetry,
     "notify; wait for the first hold to end"},
    {bit(LinkState::kResolving), EventType::kResolved, "", LinkState::kTcpConnecting,
     "notify; connect"},
    {bit(LinkState::kTcpConnecting), EventType::kFailed, "another address remains",
     LinkState::kTcpConnecting, "close transport; connect to the next address"},
    {bit(LinkState::kTcpConnecting), EventType::kTcpConnected, "through an HTTP proxy",
     LinkState::kProxyConnect, "notify; send CONNECT"},
    {bit(LinkState::kTcpConnecting), EventType::kTcpConnected, "wss://, direct",
     LinkState::kTlsHandshake, "notify; start TLS"},
    {bit(LinkState::kTcpConnecting), EventType::kTcpConnected, "ws://, direct",
     LinkState::kWsHandshake, "notify; send upgrade"},
    {bit(LinkState::kProxyConnect), EventType::kTunnelEstablished, "wss://",
     LinkState::kTlsHandshake, "notify; start TLS to the endpoint's name"},
    {bit(LinkState::kProxyConnect), EventType::kTunnelEstablished, "ws://", LinkState::kWsHandshake,
     "notify; send upgrade"},
    {bit(LinkState::kTlsHandshake), EventType::kTlsEstablished, "", LinkState::kWsHandshake,
     "notify; send upgrade"},
    {bit(LinkState::kWsHandshake), EventType::kUpgraded, "tether.v1", LinkState::kSessionResume,
     "notify; send hello"},
    {bit(LinkState::kWsHandshake), EventType::kUpgraded, "plain WebSocket", LinkState::kOnline,
     "breaker closes; heartbeat starts; notify"},
    {bit(LinkState::kSessionResume), EventType::kSessionResumed, "", LinkState::kOnline,
     "breaker closes; heartbeat starts; notify"},
    {kActive, EventType::kFailed, "policy: retry, refresh or fail over", LinkState::kWaitingToRetry,
     "close (echo or protocol code) if open; close transport; breaker counts; notify"},
    {kActive, EventType::kFailed, "policy: give up, or attempts exhausted", LinkState::kGivenUp,
     "close if open; close transport; notify"},
    {kConnecting, EventType::kTimer, "phase timeout, retry", LinkState::kWaitingToRetry,
     "close transport; breaker counts; notify"},
    {kConnecting, EventType::kTimer, "phase timeout, attempts exhausted", LinkState::kGivenUp,
     "close transport; notify"},
    {bit(LinkState::kOnline), EventType::kTimer, "ping due", LinkState::kOnline, "send ping"},
    {bit(LinkState::kOnline), EventType::kTimer, "up for healthy_after_ms", LinkState::kOnline,
     "end the failure streak (attempts, credential refresh); persist"},
    {bit(LinkState::kOnline), EventType::kTimer, "pongs missed (dead link)",
     LinkState::kWaitingToRetry, "close transport; notify"},
    {bit(LinkState::kOnline), EventType::kTimer, "pongs missed, attempts exhausted",
     LinkState::kGivenUp, "close transport; notify"},
    {bit(LinkState::kOnline), EventType::kTimer, "a higher-priority endpoint recovered",
     LinkState::kClosing, "send close 1000; notify"},
    {bit(LinkState::kOnline), EventType::kFrameReceived, "", LinkState::kOnline,
     "heartbeat sees life"},
    {bit(LinkState::kOnline), EventType::kPongReceived, "", LinkState::kOnline,
     "heartbeat sees life; round-trip time"},
    {bit(LinkState::kOnline), EventType::kStop, "", LinkState::kClosing,
     "send close (1000 or 1001); notify"},
    {kConnecting | bit(LinkState::kWaitingToRetry) | bit(LinkState::kGivenUp), EventType::kStop, "",
     LinkState::kIdle, "close transport; notify"},
    {bit(LinkState::kClosing), EventType::kTransportClosed, "stopping", LinkState::kIdle,
     "close transport; notify"},
    {bit(LinkState::kClosing), EventType::kFailed, "stopping", LinkState::kIdle,
     "close transport; notify"},
    {bit(LinkState::kClosing), EventType::kTimer, "stopping (close timeout)", LinkState::kIdle,
     "close transport; notify"},
    {bit(LinkState::kClosing), EventType::kTransportClosed, "switching endpoint",
     LinkState::kResolving, "close transport; count attempt; persist; notify; resolve"},
    {bit(LinkState::kClosing), EventType::kFailed, "switching endpoint", LinkState::kResolving,
     "close transport; count attempt; persist; notify; resolve"},
    {bit(LinkState::kClosing), EventType::kTimer, "switching endpoint (close timeout)",
     LinkState::kResolving, "close transport; count attempt; persist; notify; resolve"},
    {bit(LinkState::kWaitingToRetry), EventType::kTimer, "an endpoint admits an attempt",
     LinkState::kResolving, "count attempt; persist; notify; resolve"},
    {bit(LinkState::kWaitingToRetry), EventType::kTimer, "every endpoint held by Retry-After",
     LinkState::kWaitingToRetry, "notify; wait for the first hold to end"},
    {bit(LinkState::kWaitingToRetry) | bit(LinkState::kGivenUp), EventType::kConnectNow,
     "an endpoint admits an attempt", LinkState::kResolving,
     "given_up: attempt counter reset; count attempt; persist; notify; resolve"},
    {bit(LinkState::kWaitingToRetry) | bit(LinkState::kGivenUp), EventType::kConnectNow,
     "every endpoint held by Retry-After", LinkState::kWaitingToRetry,
     "given_up: attempt counter reset; notify; wait for the first hold to end"},
};

}  // namespace

const TransitionRow* transition_table(std::size_t* row_count) {
    *row_count = sizeof kTransitions / sizeof kTransitions[0];
    return kTransitions;
}

bool transition_declared(LinkState from, EventType event, LinkState to) {
    for (const TransitionRow& row : kTransitions) {
        if ((row.from & bit(from)) != 0 && row.event == event && row.to == to) {
            return true;
        }
    }
    return false;
}

const char* to_string(LinkState state) {
    switch (state) {
        case LinkState::kIdle:
            return "idle";
        case LinkState::kResolving:
            return "resolving";
        case LinkState::kTcpConnecting:
            return "tcp_connecting";
        case LinkState::kProxyConnect:
            return "proxy_connect";
        case LinkState::kTlsHandshake:
            return "tls_handshake";
        case LinkState::kWsHandshake:
            return "ws_handshake";
        case LinkState::kSessionResume:
            return "session_resume";
        case LinkState::kOnline:
            return "online";
        case LinkState::kClosing:
            return "closing";
        case LinkState::kWaitingToRetry:
            return "waiting_to_retry";
        case LinkState::kGivenUp:
            return "given_up";
    }
    return "unknown";
}

const char* to_string(EventType type) {
    switch (type) {
        case EventType::kStart:
            return "start";
        case EventType::kStop:
            return "stop";
        case EventType::kTimer:
            return "timer";
        case EventType::kResolved:
            return "resolved";
        case EventType::kTcpConnected:
            return "tcp_connected";
        case EventType::kTunnelEstablished:
            return "tunnel_established";
        case EventType::kTlsEstablished:
            return "tls_established";
        case EventType::kUpgraded:
            return "upgraded";
        case EventType::kSessionResumed:
            return "session_resumed";
        case EventType::kFrameReceived:
            return "frame_received";
        case EventType::kPongReceived:
            return "pong_received";
        case EventType::kFailed:
            return "failed";
        case EventType::kTransportClosed:
            return "transport_closed";
        case EventType::kConnectNow:
            return "connect_now";
    }
    return "unknown";
}

const char* to_string(ActionType type) {
    switch (type) {
        case ActionType::kResolve:
            return "resolve";
        case ActionType::kConnect:
            return "connect";
        case ActionType::kStartTls:
            return "start_tls";
        case ActionType::kSendProxyConnect:
            return "send_proxy_connect";
        case ActionType::kSendUpgrade:
            return "send_upgrade";
        case ActionType::kSendHello:
            return "send_hello";
        case ActionType::kSendPing:
            return "send_ping";
        case ActionType::kSendClose:
            return "send_close";
        case ActionType::kCloseTransport:
            return "close_transport";
        case ActionType::kRefreshCredentials:
            return "refresh_credentials";
        case ActionType::kPersist:
            return "persist";
        case ActionType::kNotifyState:
            return "notify_state";
    }
    return "unknown";
}

bool Actions::contains(ActionType type) const {
    return find(type) != nullptr;
}

const Action* Actions::find(ActionType type) const {
    for (std::size_t i = 0; i < count; ++i) {
        if (items[i].type == type) {
            return &items[i];
        }
    }
    return nullptr;
}

namespace {

// Appends an action. The capacity covers the longest path through step()
// (five actions); a full list drops nothing silently because the longest
// path is fixed at compile time.
Action& push(Actions& out, ActionType type) {
    Action& action = out.items[out.count < Actions::kCapacity ? out.count++ : out.count - 1];
    action = Action{type};
    return action;
}

bool timeout_valid(std::uint32_t value) {
    return value >= 1 && value <= kMaxTimeoutMs;
}

}  // namespace

Status validate(const ReconnectConfig& config) {
    if (validate(config.backoff) != Status::kOk || validate(config.heartbeat) != Status::kOk ||
        validate(config.pool) != Status::kOk) {
        return Status::kInvalidArgument;
    }
    if (config.endpoint_count < 1 || config.endpoint_count > EndpointPool::kMaxEndpoints) {
        return Status::kInvalidArgument;
    }
    const std::uint32_t timeouts[] = {config.resolve_timeout_ms, config.connect_timeout_ms,
                                      config.tls_timeout_ms,     config.handshake_timeout_ms,
                                      config.resume_timeout_ms,  config.close_timeout_ms,
                                      config.proxy_timeout_ms};
    for (std::uint32_t timeout : timeouts) {
        if (!timeout_valid(timeout)) {
            return Status::kInvalidArgument;
        }
    }
    return Status::kOk;
}

namespace {

ReconnectConfig clamped(ReconnectConfig config) {
    if (config.endpoint_count < 1) {
        config.endpoint_count = 1;
    }
    if (config.endpoint_count > EndpointPool::kMaxEndpoints) {
        config.endpoint_count = static_cast<std::uint8_t>(EndpointPool::kMaxEndpoints);
    }
    std::uint32_t* const timeouts[] = {&config.resolve_timeout_ms, &config.connect_timeout_ms,
                                       &config.tls_timeout_ms,     &config.handshake_timeout_ms,
                                       &config.resume_timeout_ms,  &config.close_timeout_ms,
                                       &config.proxy_timeout_ms};
    for (std::uint32_t* timeout : timeouts) {
        if (*timeout < 1) {
            *timeout = 1;
        }
        if (*timeout > kMaxTimeoutMs) {
            *timeout = kMaxTimeoutMs;
        }
    }
    return config;
}

}  // namespace

ReconnectMachine::ReconnectMachine(const ReconnectConfig& config)
    : config_(clamped(config)),
      backoff_(config_.backoff),
      heartbeat_(config_.heartbeat),
      pool_(config_.pool, config_.endpoint_count) {}

void ReconnectMachine::restore_attempts(std::uint32_t attempts) {
    backoff_.restore(attempts);
}

bool ReconnectMachine::endpoint_uses_tls() const {
    return ((config_.tls_endpoints >> endpoint_) & 1u) != 0;
}

bool ReconnectMachine::endpoint_uses_proxy() const {
    return ((static_cast<unsigned>(config_.proxied_endpoints) >> endpoint_) & 1u) != 0;
}

bool ReconnectMachine::has_deadline() const {
    switch (state_) {
        case LinkState::kIdle:
        case LinkState::kGivenUp:
            return false;
        case LinkState::kOnline:
            return heartbeat_.enabled() || !healthy_ ||
                   (endpoint_ != 0 && config_.pool.return_to_primary_after_ms != 0);
        default:
            return true;
    }
}

TimeMs ReconnectMachine::next_deadline() const {
    if (state_ != LinkState::kOnline) {
        return deadline_;
    }
    // Online has up to three independent deadlines; the loop only needs the
    // nearest, and on_online_timer() sorts out which ones were reached.
    bool any = false;
    TimeMs nearest = 0;
    auto consider = [&](bool active, TimeMs deadline) {
        if (active) {
            nearest = any ? time_earliest(nearest, deadline) : deadline;
            any = true;
        }
    };
    consider(heartbeat_.enabled(), heartbeat_.next_deadline());
    consider(!healthy_, healthy_at_);
    consider(endpoint_ != 0 && config_.pool.return_to_primary_after_ms != 0, return_check_at_);
    return nearest;
}

Actions ReconnectMachine::step(const Event& event, TimeMs now, std::uint32_t random) {
    Actions out;
    switch (event.type) {
        case EventType::kStart:
            if (state_ == LinkState::kIdle || state_ == LinkState::kGivenUp) {
                on_start(out, now, random);
            }
            break;
        case EventType::kStop:
            on_stop(event, out, now);
            break;
        case EventType::kTimer:
            on_timer(out, now, random);
            break;
        case EventType::kConnectNow:
            on_connect_now(out, now);
            break;
        case EventType::kFailed:
            on_failure(event.failure, event.more_addresses, out, now, random);
            break;
        case EventType::kTransportClosed:
            if (state_ == LinkState::kClosing) {
                on_closed(out, now);
            }
            break;
        case EventType::kFrameReceived:
            if (state_ == LinkState::kOnline) {
                heartbeat_.on_frame_received(now);
            }
            break;
        case EventType::kPongReceived:
            if (state_ == LinkState::kOnline) {
                heartbeat_.on_pong(now, event.payload, event.payload_size);
            }
            break;
        default:
            on_progress(event.type, out, now);
            break;
    }
    return out;
}

void ReconnectMachine::on_start(Actions& out, TimeMs now, std::uint32_t random) {
    give_up_reason_ = "";
    credentials_refreshed_ = false;
    if (backoff_.attempts() == 0) {
        begin_attempt(out, now);
        return;
    }
    // A restored counter means the previous run was failing: keep backing off.
    const BackoffStep next = backoff_.next(random);
    if (next.give_up) {
        give_up("max_attempts", out);
        return;
    }
    wait_for_retry(next.delay_ms, out, now);
}

void ReconnectMachine::on_stop(const Event& event, Actions& out, TimeMs now) {
    switch (state_) {
        case LinkState::kIdle:
            return;
        case LinkState::kClosing:
            // Already closing to switch endpoints: stay down once closed.
            close_intent_ = CloseIntent::kStop;
            return;
        case LinkState::kOnline:
            push(out, ActionType::kSendClose).close_code = event.close_code;
            close_intent_ = CloseIntent::kStop;
            arm(now, config_.close_timeout_ms);
            enter(LinkState::kClosing, out);
            return;
        default:
            if ((kConnecting & bit(state_)) != 0) {
                pool_.release(endpoint_);
                push(out, ActionType::kCloseTransport);
            }
            enter(LinkState::kIdle, out);
            return;
    }
}

void ReconnectMachine::on_timer(Actions& out, TimeMs now, std::uint32_t random) {
    if (state_ == LinkState::kOnline) {
        on_online_timer(out, now, random);
        return;
    }
    if (!has_deadline() || !time_reached(now, deadline_)) {
        return;
    }
    switch (state_) {
        case LinkState::kWaitingToRetry:
            begin_attempt(out, now);
            return;
        case LinkState::kClosing:
            on_closed(out, now);
            return;
        case LinkState::kResolving:
            on_failure(Failure{FailureKind::kDnsFailure}, false, out, now, random);
            return;
        case LinkState::kTcpConnecting:
            // Through a proxy, the TCP connect that timed out was the proxy's.
            on_failure(Failure{endpoint_uses_proxy() ? FailureKind::kProxyUnreachable
                                                     : FailureKind::kTcpTimeout},
                       false, out, now, random);
            return;
        case LinkState::kProxyConnect:
            on_failure(Failure{FailureKind::kProxyTimeout}, false, out, now, random);
            return;
        default:
            on_failure(Failure{FailureKind::kHandshakeTimeout}, false, out, now, random);
            return;
    }
}

void ReconnectMachine::on_connect_now(Actions& out, TimeMs now) {
    if (state_ == LinkState::kGivenUp) {
        // The operator's way out of a give-up: a fresh failure streak.
        give_up_reason_ = "";
        credentials_refreshed_ = false;
        backoff_.reset();
    } else if (state_ != LinkState::kWaitingToRetry) {
        return;  // connecting, online, closing or stopped: nothing to hurry
    }
    begin_attempt(out, now);
}

void ReconnectMachine::on_online_timer(Actions& out, TimeMs now, std::uint32_t random) {
    if (!healthy_ && time_reached(now, healthy_at_)) {
        // The failure streak ends: the attempts start again from the first
        // delay, and the next auth failure may refresh the credentials at once.
        healthy_ = true;
        credentials_refreshed_ = false;
        if (backoff_.attempts() != 0) {
            backoff_.reset();
            push(out, ActionType::kPersist);
        }
    }
    switch (heartbeat_.enabled() ? heartbeat_.poll(now) : HeartbeatAction::kNone) {
        case HeartbeatAction::kDead:
            on_failure(Failure{FailureKind::kDeadLink}, false, out, now, random);
            return;
        case HeartbeatAction::kSendPing:
            heartbeat_.ping_payload(push(out, ActionType::kSendPing).ping_payload);
            break;
        case HeartbeatAction::kNone:
            break;
    }
    if (endpoint_ != 0 && config_.pool.return_to_primary_after_ms != 0 &&
        time_reached(now, return_check_at_)) {
        if (pool_.higher_priority_available(endpoint_, now)) {
            push(out, ActionType::kSendClose).close_code = 1000;
            close_intent_ = CloseIntent::kSwitchEndpoint;
            arm(now, config_.close_timeout_ms);
            enter(LinkState::kClosing, out);
            return;
        }
        return_check_at_ = now + config_.pool.return_to_primary_after_ms;
    }
}

void ReconnectMachine::on_progress(EventType type, Actions& out, TimeMs now) {
    switch (state_) {
        case LinkState::kResolving:
            if (type == EventType::kResolved) {
                arm(now, config_.connect_timeout_ms);
                enter(LinkState::kTcpConnecting, out);
                push(out, ActionType::kConnect).endpoint = endpoint_;
            }
            return;
        case LinkState::kTcpConnecting:
            if (type != EventType::kTcpConnected) {
                return;
            }
            if (endpoint_uses_proxy()) {
                arm(now, config_.proxy_timeout_ms);
                enter(LinkState::kProxyConnect, out);
                push(out, ActionType::kSendProxyConnect).endpoint = endpoint_;
            } else if (endpoint_uses_tls()) {
                arm(now, config_.tls_timeout_ms);
                enter(LinkState::kTlsHandshake, out);
                push(out, ActionType::kStartTls);
            } else {
                arm(now, config_.handshake_timeout_ms);
                enter(LinkState::kWsHandshake, out);
                push(out, ActionType::kSendUpgrade);
            }
            return;
        case LinkState::kProxyConnect:
            if (type != EventType::kTunnelEstablished) {
                return;
            }
            if (endpoint_uses_tls()) {
                arm(now, config_.tls_timeout_ms);
                enter(LinkState::kTlsHandshake, out);
                push(out, ActionType::kStartTls);
            } else {
                arm(now, config_.handshake_timeout_ms);
                enter(LinkState::kWsHandshake, out);
                push(out, ActionType::kSendUpgrade);
            }
            return;
        case LinkState::kTlsHandshake:
            if (type == EventType::kTlsEstablished) {
                arm(now, config_.handshake_timeout_ms);
                enter(LinkState::kWsHandshake, out);
                push(out, ActionType::kSendUpgrade);
            }
            return;
        case LinkState::kWsHandshake:
            if (type != EventType::kUpgraded) {
                return;
            }
            if (config_.resume_protocol) {
                arm(now, config_.resume_timeout_ms);
                enter(LinkState::kSessionResume, out);
                push(out, ActionType::kSendHello);
            } else {
                go_online(out, now);
            }
            return;
        case LinkState::kSessionResume:
            if (type == EventType::kSessionResumed) {
                go_online(out, now);
            }
            return;
        default:
            return;
    }
}

void ReconnectMachine::go_online(Actions& out, TimeMs now) {
    pool_.record_success(endpoint_);
    heartbeat_.start(now);
    healthy_ = false;
    healthy_at_ = now + config_.backoff.healthy_after_ms;
    // Opening is no proof that the credentials work: a server that accepts the
    // upgrade and then closes 4001 at once must meet the backoff, not another
    // immediate refresh. Only staying up for healthy_after_ms ends the failure
    // streak (on_online_timer()).
    return_check_at_ = now + config_.pool.return_to_primary_after_ms;
    enter(LinkState::kOnline, out);
}

void ReconnectMachine::on_failure(const Failure& failure, bool more_addresses, Actions& out,
                                  TimeMs now, std::uint32_t random) {
    if (state_ == LinkState::kClosing) {
        on_closed(out, now);
        return;
    }
    if ((kActive & bit(state_)) == 0) {
        return;
    }
    if (more_addresses && state_ == LinkState::kTcpConnecting) {
        push(out, ActionType::kCloseTransport);
        arm(now, config_.connect_timeout_ms);
        push(out, ActionType::kConnect).endpoint = endpoint_;
        return;
    }

    const FailureDecision decision = decide(failure);
    last_reason_ = decision.reason;
    if (state_ == LinkState::kOnline || state_ == LinkState::kSessionResume) {
        // An open WebSocket is closed politely where the peer can still hear:
        // echo the peer's close code, or send the code of the protocol error
        // we detected. A dead or reset link gets no close frame.
        if (failure.kind == FailureKind::kPeerClosed) {
            push(out, ActionType::kSendClose).close_code = failure.code;
        } else if (failure.kind == FailureKind::kProtocolError) {
            push(out, ActionType::kSendClose).close_code = failure.code;
        }
    }
    push(out, ActionType::kCloseTransport);

    const bool fail_over = decision.action == RecoveryAction::kFailOver;
    if (decision.open_breaker || decision.counts_for_breaker || fail_over) {
        const std::uint32_t hold =
            decision.honour_retry_after && failure.has_retry_after ? failure.retry_after_ms : 0;
        pool_.record_failure(endpoint_, now, decision.open_breaker || fail_over, hold);
    } else {
        // The failure says nothing about the endpoint (the local network is
        // down, the peer closed normally): hand back a half-open probe so the
        // breaker admits the next attempt.
        pool_.release(endpoint_);
    }

    if (decision.action == RecoveryAction::kGiveUp) {
        give_up(decision.reason, out);
        return;
    }
    if (decision.action == RecoveryAction::kRefreshCredentialsThenRetry &&
        !credentials_refreshed_) {
        credentials_refreshed_ = true;
        push(out, ActionType::kRefreshCredentials);
        wait_for_retry(0, out, now);
        return;
    }
    BackoffStep next = backoff_.next(random);
    if (backoff_.attempts() == 0) {
        // A link that had been healthy dropped. Reconnect within the first
        // jittered delay rather than at once, so that a fleet dropped together
        // by one server restart spreads its reconnects over the jitter window.
        Backoff first = backoff_;
        first.restore(1);
        next = first.next(random);
    }
    if (next.give_up) {
        give_up("max_attempts", out);
        return;
    }
    std::uint32_t delay = next.delay_ms;
    if (decision.slow_retry && delay < config_.backoff.max_delay_ms) {
        delay = config_.backoff.max_delay_ms;
    }
    if (decision.honour_retry_after && failure.has_retry_after && delay < failure.retry_after_ms) {
        delay = failure.retry_after_ms < kMaxBackoffDelayMs ? failure.retry_after_ms
                                                            : kMaxBackoffDelayMs;
    }
    wait_for_retry(delay, out, now);
}

void ReconnectMachine::on_closed(Actions& out, TimeMs now) {
    push(out, ActionType::kCloseTransport);
    if (close_intent_ == CloseIntent::kSwitchEndpoint) {
        begin_attempt(out, now);
        return;
    }
    enter(LinkState::kIdle, out);
}

void ReconnectMachine::begin_attempt(Actions& out, TimeMs now) {
    EndpointSelection selection = pool_.select(now);
    if (!selection.available) {
        selection = pool_.select_fallback(now);
    }
    if (!selection.available) {
        // Every endpoint is held by a Retry-After: wait for the first hold to
        // end, and say so (the status shows the new delay).
        retry_delay_ms_ = time_until(now, selection.available_at);
        deadline_ = selection.available_at;
        enter(LinkState::kWaitingToRetry, out);
        return;
    }
    endpoint_ = selection.index;
    backoff_.record_attempt();
    push(out, ActionType::kPersist);
    arm(now, config_.resolve_timeout_ms);
    enter(LinkState::kResolving, out);
    push(out, ActionType::kResolve).endpoint = endpoint_;
}

void ReconnectMachine::wait_for_retry(std::uint32_t delay_ms, Actions& out, TimeMs now) {
    retry_delay_ms_ = delay_ms;
    arm(now, delay_ms);
    enter(LinkState::kWaitingToRetry, out);
}

void ReconnectMachine::give_up(const char* reason, Actions& out) {
    give_up_reason_ = reason;
    enter(LinkState::kGivenUp, out);
}

void ReconnectMachine::enter(LinkState next, Actions& out) {
    previous_state_ = state_;
    state_ = next;
    push(out, ActionType::kNotifyState);
}

}  // namespace tether

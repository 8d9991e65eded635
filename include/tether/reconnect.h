// SPDX-License-Identifier: MIT
// The reconnect state machine: the connection's life as a pure function.
//
//   Actions step(const Event& event, TimeMs now, std::uint32_t random);
//
// The poll loop reports what happened (an event) and performs the actions the
// machine returns: resolve a name, open a socket, start TLS, send the upgrade
// or the resume hello, send a ping or a close, drop the transport, refresh
// credentials, persist the counters, announce a state change. The machine
// reads no clock, touches no socket and draws no randomness of its own: `now`
// and `random` come in with every event, so every transition runs on the host
// under test. Timeouts are deadlines compared with `now`: the loop calls
// step() with a kTimer event once next_deadline() is reached.
//
// The states, events and transitions are listed in one table
// (transition_table()), shown in docs/ARCHITECTURE.md; a unit test keeps the
// two identical and checks that the machine never takes a transition the table
// does not declare. Events that do not apply to the current state (a late
// "TCP connected" for a socket already torn down, say) are ignored.
//
// kConnectNow is the operator's "reconnect now" (tetherctl reconnect): in
// waiting_to_retry the remaining backoff delay is skipped, in given_up the
// attempt counter starts again from 0; a Retry-After hold the server asked for
// is still honoured. In every other state it does nothing.
//
// Example (inside the poll loop):
//   tether::ReconnectMachine machine(config);
//   machine.restore_attempts(persisted.reconnect_attempts);
//   perform(machine.step(tether::Event::start(), now, random_u32()));
//   ...
//   if (machine.has_deadline() && tether::time_reached(now, machine.next_deadline()))
//       perform(machine.step(tether::Event::timer(), now, random_u32()));
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/backoff.h"
#include "tether/endpoint_pool.h"
#include "tether/failure_policy.h"
#include "tether/heartbeat.h"
#include "tether/status.h"
#include "tether/time.h"

namespace tether {

enum class LinkState : std::uint8_t {
    kIdle,            ///< not started, or stopped
    kResolving,       ///< looking up the endpoint's host name
    kTcpConnecting,   ///< non-blocking connect to one of its addresses (or the proxy's)
    kProxyConnect,    ///< through an HTTP proxy: CONNECT sent, waiting for the proxy's 2xx
    kTlsHandshake,    ///< wss:// only
    kWsHandshake,     ///< HTTP upgrade sent, waiting for 101
    kSessionResume,   ///< tether.v1 only: hello sent, waiting for welcome
    kOnline,          ///< open; heartbeat running
    kClosing,         ///< close frame sent, waiting for the peer's
    kWaitingToRetry,  ///< backoff delay (or every endpoint's breaker open)
    kGivenUp,         ///< stopped reconnecting: superseded, or max attempts reached
};
inline constexpr std::size_t kLinkStateCount = 11;

enum class EventType : std::uint8_t {
    kStart,     ///< connect, and stay connected
    kStop,      ///< close (with close_code) and stay down
    kTimer,     ///< next_deadline() has been reached
    kResolved,  ///< the endpoint's addresses are known
    kTcpConnected,
    kTunnelEstablished,  ///< the proxy answered CONNECT with 2xx
    kTlsEstablished,
    kUpgraded,         ///< a valid 101 response arrived
    kSessionResumed,   ///< tether.v1 welcome arrived
    kFrameReceived,    ///< any frame arrived (liveness)
    kPongReceived,     ///< a pong arrived; payload carries its bytes
    kFailed,           ///< something failed; failure says what
    kTransportClosed,  ///< the socket is closed (after a close handshake, or EOF while closing)
    kConnectNow,  ///< the operator asks for an attempt now: the backoff wait (or a give-up) ends
};
inline constexpr std::size_t kEventTypeCount = 14;

const char* to_string(LinkState state);
const char* to_string(EventType type);

struct Event {
    EventType type;
    Failure failure{FailureKind::kConnectionLost};  ///< for kFailed
    bool more_addresses = false;      ///< kFailed while connecting: another address remains to try
    std::uint16_t close_code = 1000;  ///< for kStop: the code to close with (1000 or 1001)
    const std::uint8_t* payload = nullptr;  ///< for kPongReceived
    std::size_t payload_size = 0;

    static Event start() { return Event{EventType::kStart}; }
    static Event stop(std::uint16_t code = 1000) {
        Event event{EventType::kStop};
        event.close_code = code;
        return event;
    }
    static Event timer() { return Event{EventType::kTimer}; }
    static Event connect_now() { return Event{EventType::kConnectNow}; }
    static Event of(EventType type) { return Event{type}; }
    static Event failed(const Failure& failure, bool more_addresses = false) {
        Event event{EventType::kFailed};
        event.failure = failure;
        event.more_addresses = more_addresses;
        return event;
    }
    static Event pong(const std::uint8_t* payload, std::size_t size) {
        Event event{EventType::kPongReceived};
        event.payload = payload;
        event.payload_size = size;
        return event;
    }
};

enum class ActionType : std::uint8_t {
    kResolve,           ///< start resolving endpoint's host (cancel any previous lookup)
    kConnect,           ///< connect to the next untried address of endpoint
    kStartTls,          ///< begin the TLS handshake on the connected socket (or tunnel)
    kSendProxyConnect,  ///< send the HTTP CONNECT request for the endpoint to the proxy
    kSendUpgrade,       ///< send the HTTP upgrade request
    kSendHello,         ///< tether.v1: send the resume hello
    kSendPing,          ///< send a ping; payload in ping_payload
    kSendClose,         ///< send a close frame with close_code (0: a close frame without a code)
    kCloseTransport,  ///< release the socket, TLS and resolver state (after flushing a close frame)
    kRefreshCredentials,  ///< fetch a fresh token before the next upgrade
    kPersist,             ///< the attempt counter changed: save the persistent state record
    kNotifyState,         ///< state() changed: log it, update status
};
inline constexpr std::size_t kActionTypeCount = 12;

const char* to_string(ActionType type);

struct Action {
    ActionType type;
    std::uint8_t endpoint = 0;                         ///< for kResolve, kConnect
    std::uint16_t close_code = 0;                      ///< for kSendClose
    std::uint8_t ping_payload[kPingPayloadSize] = {};  ///< for kSendPing
};

/// What one step asks the loop to do, in order.
struct Actions {
    static constexpr std::size_t kCapacity = 8;
    Action items[kCapacity];
    std::size_t count = 0;

    bool contains(ActionType type) const;
    const Action* find(ActionType type) const;
};

/// Upper bound of every phase timeout in ReconnectConfig (resolve, connect,
/// proxy, TLS, handshake, resume, close): one day.
inline constexpr std::uint32_t kMaxTimeoutMs = 24u * 60u * 60u * 1000u;

struct ReconnectConfig {
    BackoffConfig backoff;
    HeartbeatConfig heartbeat;
    EndpointPoolConfig pool;
    std::uint8_t endpoint_count = 1;  ///< 1..EndpointPool::kMaxEndpoints
    std::uint8_t tls_endpoints = 0;   ///< bit i set: endpoint i is wss://
    /// bit i set: endpoint i is reached through an HTTP CONNECT proxy (TCP
    /// goes to the proxy; the tunnel to the endpoint comes before TLS).
    std::uint8_t proxied_endpoints = 0;
    bool resume_protocol = false;  ///< speak tether.v1 (hello/welcome) after the upgrade
    std::uint32_t resolve_timeout_ms = 10000;
    std::uint32_t connect_timeout_ms = 10000;  ///< per address
    std::uint32_t tls_timeout_ms = 15000;
    std::uint32_t handshake_timeout_ms = 10000;  ///< upgrade request to 101
    std::uint32_t resume_timeout_ms = 10000;     ///< hello to welcome
    std::uint32_t close_timeout_ms = 5000;       ///< our close frame to the peer's
    std::uint32_t proxy_timeout_ms = 10000;      ///< CONNECT sent to the proxy's answer
};

/// kOk, or kInvalidArgument when a timeout is 0 or above kMaxTimeoutMs, the endpoint
/// count is out of range, or a nested config is invalid.
Status validate(const ReconnectConfig& config);

/// One row of the transition table.
struct TransitionRow {
    std::uint16_t from;  ///< bit set of LinkState values this row applies to
    EventType event;
    const char* guard;  ///< the condition, in words ("" when none)
    LinkState to;
    const char* actions;  ///< the actions taken, in words
};

/// The declared transitions, in documentation order.
const TransitionRow* transition_table(std::size_t* row_count);
/// True when some row allows `from` --event--> `to`.
bool transition_declared(LinkState from, EventType event, LinkState to);

class ReconnectMachine {
  public:
    /// `config` must pass validate(); out-of-range values are clamped.
    explicit ReconnectMachine(const ReconnectConfig& config);

    /// Restores the attempt counter from the persistent state record, before
    /// the first kStart: a device in a crash loop resumes its backoff instead
    /// of hammering the server at the initial delay. Also the operator's way
    /// out of kGivenUp after max attempts: restore_attempts(0), then kStart.
    void restore_attempts(std::uint32_t attempts);

    /// Feeds one event; returns the actions to perform, in order.
    Actions step(const Event& event, TimeMs now, std::uint32_t random);

    LinkState state() const { return state_; }
    bool has_deadline() const;
    /// When the loop must call step(Event::timer()). Meaningful when has_deadline().
    TimeMs next_deadline() const;

    std::uint8_t endpoint() const { return endpoint_; }  ///< of the current or last attempt
    std::uint32_t attempts() const { return backoff_.attempts(); }
    /// In kWaitingToRetry: the delay chosen when the wait began.
    std::uint32_t retry_delay_ms() const { return retry_delay_ms_; }
    /// The last failure and the policy's reason for it ("" before any).
    const char* last_failure_reason() const { return last_reason_; }
    /// In kGivenUp: "superseded", "max_attempts", ...
    const char* give_up_reason() const { return give_up_reason_; }
    /// The state before the last transition (for logs).
    LinkState previous_state() const { return previous_state_; }

    const Backoff& backoff() const { return backoff_; }
    const Heartbeat& heartbeat() const { return heartbeat_; }
    const EndpointPool& pool() const { return pool_; }

  private:
    enum class CloseIntent : std::uint8_t { kStop, kSwitchEndpoint };

    void on_start(Actions& out, TimeMs now, std::uint32_t random);
    void on_stop(const Event& event, Actions& out, TimeMs now);
    void on_timer(Actions& out, TimeMs now, std::uint32_t random);
    void on_connect_now(Actions& out, TimeMs now);
    void on_online_timer(Actions& out, TimeMs now, std::uint32_t random);
    void on_failure(const Failure& failure, bool more_addresses, Actions& out, TimeMs now,
                    std::uint32_t random);
    void on_closed(Actions& out, TimeMs now);
    void on_progress(EventType type, Actions& out, TimeMs now);
    void begin_attempt(Actions& out, TimeMs now);
    void wait_for_retry(std::uint32_t delay_ms, Actions& out, TimeMs now);
    void give_up(const char* reason, Actions& out);
    void go_online(Actions& out, TimeMs now);
    void enter(LinkState next, Actions& out);
    void arm(TimeMs now, std::uint32_t timeout_ms) { deadline_ = now + timeout_ms; }
    bool endpoint_uses_tls() const;
    bool endpoint_uses_proxy() const;

    ReconnectConfig config_;
    Backoff backoff_;
    Heartbeat heartbeat_;
    EndpointPool pool_;
    LinkState state_ = LinkState::kIdle;
    LinkState previous_state_ = LinkState::kIdle;
    std::uint8_t endpoint_ = 0;
    TimeMs deadline_ = 0;    // the phase deadline of connecting states, closing and waiting
    TimeMs healthy_at_ = 0;  // online: when the backoff resets
    bool healthy_ = false;
    TimeMs return_check_at_ = 0;  // online on a secondary endpoint: when to look at the primary
    bool credentials_refreshed_ = false;  // one refresh per failure streak (ends when healthy)
    CloseIntent close_intent_ = CloseIntent::kStop;
    std::uint32_t retry_delay_ms_ = 0;
    const char* last_reason_ = "";
    const char* give_up_reason_ = "";
};

}  // namespace tether

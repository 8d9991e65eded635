// SPDX-License-Identifier: MIT
// tether-server's loop: listeners, connections, the store, the admin
// interface and the fault switches, all on one thread around one poll().
//
// A connection goes through: TLS handshake (wss only) -> HTTP upgrade ->
// waiting for hello -> online -> closing -> gone. Decisions to close are
// recorded on the connection and carried out after the stream has returned
// (teardown is deferred to the end of the iteration).
#pragma once

#include <poll.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "options.h"
#include "tether/net/ip_address.h"
#include "tether/net/ws_server_handshake.h"
#include "tether/net/ws_stream.h"
#include "tether/port/entropy.h"
#include "tether/port/tls_server.h"
#include "tether/server/accept_backoff.h"
#include "tether/server/auth_throttle.h"
#include "tether/server/session_engine.h"
#include "tether/server/tokens.h"
#include "tether/time.h"
#include "token_file.h"

namespace tether::server {

class Server;
class AdminConnection;

/// The level= of a log line (the same words as tetherd's).
enum class LogLevel : std::uint8_t { kDebug, kInfo, kWarn, kError };
const char* to_string(LogLevel level);

/// The stream's role is server: it never asks for mask bytes.
class NoMasks final : public net::MaskSource {
  public:
    bool fill_masks(std::uint8_t*, std::size_t) override { return false; }
};

class ClientConnection final : public net::WsHandler {
  public:
    enum class Phase : std::uint8_t {
        kTls,
        kUpgrade,
        kHttpReply,
        kAwaitHello,
        kHelloPending,  ///< hello handed to the engine, waiting for its answer
        kOnline,
        kClosing,
    };

    ClientConnection(Server& server, std::uint64_t id, port::TlsServerContext* tls, TimeMs now);
    ~ClientConnection() override;

    /// Takes the accepted socket `fd` from `peer` (the address the upgrade
    /// throttle counts 401s against).
    bool adopt(int fd, const net::IpAddress& peer, std::uint16_t peer_port);
    int fd() const { return transport_.fd(); }
    std::uint64_t id() const { return id_; }
    Phase phase() const { return phase_; }
    bool dead() const { return dead_; }
    const std::string& session() const { return session_; }
    const std::string& token() const { return token_; }
    bool online() const { return phase_ == Phase::kOnline; }
    /// The version of the hello this connection sent (0 before).
    std::uint32_t version() const { return version_; }
    /// The engine's answer to this connection's hello.
    void on_hello_answer(Status status, const HelloResult& result);

    /// What to poll for (read interest off while `silenced`).
    short poll_events(bool silenced) const;
    /// True while decrypted bytes wait that poll() cannot see.
    bool has_buffered_input() const { return transport_.pending() != 0; }
    /// Reads, processes and writes as far as possible.
    void service(TimeMs now, bool silenced);
    /// Timers: ping, dead link, close timeout. Returns the next deadline in
    /// ms from now (or a large value).
    std::uint32_t tick(TimeMs now, bool silenced);

    /// Starts a close with a code (and reason) as the server.
    void close_with(std::uint16_t code, const char* reason, TimeMs now);
    /// TCP reset at once.
    void reset();
    /// Drops the connection at once (no close frame).
    void drop();
    /// Queues ACK `seq` (the store synced it).
    void send_ack(std::uint64_t seq);
    /// New downlink messages may be waiting in the store.
    void downlink_ready() { downlink_dirty_ = true; }
    /// Sends what fits; call after service.
    void pump(TimeMs now);
    /// Server::log() with this connection's endpoint= (the peer) and, once
    /// the upgrade request carried one, the device's trace_id= appended.
    void log(LogLevel level, const char* format, ...) __attribute__((format(printf, 3, 4)));

    std::uint64_t downlink_sent() const { return downlink_sent_; }

    // Device state (docs/PROTOCOL.md 9), on a connection whose welcome named "state".
    bool state() const { return state_; }
    /// The desired document of this session reached `version`: send what is new.
    void desired_changed(std::uint64_t version);
    /// The engine's answer to this connection's desired_since().
    void on_desired_answer(Status status, const std::vector<DesiredChange>& changes);
    /// The engine's answer to this connection's report with `id`.
    void on_report_answer(const std::string& id, Status status, const ReportResult& result);

    // net::WsHandler
    void on_message(net::WsOpcode type, const std::uint8_t* data, std::size_t size) override;
    void on_pong(const std::uint8_t* payload, std::size_t size) override;
    void on_close(std::uint16_t code, const std::uint8_t* reason, std::size_t size) override;
    void on_frame() override;

  private:
    void read_upgrade(TimeMs now);
    void finish_upgrade(TimeMs now);
    void reply_http(std::uint16_t status, std::uint32_t retry_after);
    void handle_hello(const std::uint8_t* data, std::size_t size);
    void handle_control(const std::uint8_t* data, std::size_t size);
    void handle_binary(const std::uint8_t* data, std::size_t size);
    /// A state message (true), or not one (false: the caller tries parse_control).
    bool handle_state(const std::uint8_t* data, std::size_t size);
    void ask_desired();
    void queue_state_message(std::size_t length);
    void violation(const char* why);
    void forbid(const char* session, const char* why);
    void store_failed(const char* op, const char* status);
    bool queue_json(const char* json, std::size_t size);
    void flush();

    Server& server_;
    std::uint64_t id_;
    port::AcceptedTransport transport_;
    NoMasks masks_;
    std::unique_ptr<std::uint8_t[]> rx_;
    std::unique_ptr<std::uint8_t[]> tx_;
    std::unique_ptr<net::WsStream> stream_;
    std::unique_ptr<net::UpgradeRequestParser> parser_;
    Phase phase_ = Phase::kTls;
    bool dead_ = false;
    std::string session_;
    std::string token_;
    std::string user_;             // the token's user: the owner of sessions it creates
    std::string pending_session_;  // the hello's session while its answer is pending
    std::uint32_t version_ = 0;
    TimeMs hello_asked_at_ = 0;
    net::IpAddress peer_{};
    char endpoint_[56] = {};  // "203.0.113.9:50412", "[2001:db8::1]:50412"
    char trace_id_[33] = {};  // the traceparent's trace id, or ""
    TimeMs now_ = 0;
    TimeMs opened_at_;
    TimeMs last_rx_;
    bool ping_outstanding_ = false;
    TimeMs ping_sent_at_ = 0;
    TimeMs closing_since_ = 0;
    bool close_after_flush_ = false;  // HTTP replies and echoed closes
    std::uint64_t downlink_sent_ = 0;
    bool downlink_dirty_ = false;
    bool stop_processing_ = false;
    bool pending_age_ = false;    // the pending hello offered "age"
    bool age_ = false;            // the hello offered "age" and the welcome accepted it
    bool age_logged_ = false;     // the first aged DATA was logged
    bool pending_state_ = false;  // the pending hello offered "state"
    std::uint64_t pending_desired_version_ = 0;
    bool state_ = false;  // the hello offered "state" and the welcome accepted it
    // The desired version the device has or was sent (desired_since() asks
    // from here); one desired_since() in flight, another asked after it when
    // a change arrived meanwhile (or the transmit buffer was full).
    std::uint64_t desired_sent_ = 0;
    bool desired_in_flight_ = false;
    bool desired_again_ = false;
    bool refusal_logged_ = false;             // the first report_refused was logged
    bool store_timing_ = false;               // a store latency sample is under way
    std::uint64_t store_timed_seq_ = 0;       // ... for this seq
    TimeMs store_timed_at_ = 0;               // ... handed to the store then
    std::unique_ptr<char[]> state_out_;       // kMaxStateMessage: messages written
    std::unique_ptr<char[]> state_document_;  // kMaxStateDocument: a parsed document
    std::deque<std::string> state_pending_;   // written, waiting for room (pump())
};

/// What the server refused or protected itself from, for GET /stats (each
/// member is one JSON member of the same name). Each refusal is also logged
/// once; a throttle penalty and an accept backoff once when they start.
struct Counters {
    std::uint64_t upgrades_unauthorized = 0;  ///< 401: token missing, unknown or expired
    std::uint64_t upgrades_throttled = 0;     ///< 429: too many 401s from that address
    std::uint64_t hellos_forbidden = 0;       ///< 4003: another user's session, or wrong device
    std::uint64_t accept_backoffs = 0;  ///< pauses of accepting (EMFILE, ENFILE, ENOBUFS, ENOMEM)
    std::uint64_t admin_unauthorized = 0;  ///< admin POSTs without the admin token: 401
    std::uint64_t admin_timeouts = 0;      ///< admin connections closed by --admin-timeout-ms
    std::uint64_t admin_evicted = 0;       ///< idle admin connections a newcomer replaced
    std::uint64_t admin_refused = 0;       ///< newcomers closed: every admin connection busy
    std::uint64_t desired_sent = 0;        ///< desired messages sent (increments and snapshots)
    std::uint64_t desired_set = 0;         ///< desired changes made through the admin interface
    std::uint64_t reports_applied = 0;     ///< reports answered report_ok (repeats too)
    std::uint64_t reports_refused = 0;     ///< reports answered report_refused (any reason)
};

/// Why an upgrade (or a connection before it) was refused, for
/// tether_server_upgrades_rejected_total{reason} (docs/METRICS.md).
enum class UpgradeRejection : std::uint8_t {
    kMalformed,         ///< 400: not a valid upgrade request, or bytes before the 101
    kBadSubprotocol,    ///< 400: tether.v1 not offered
    kBadToken,          ///< 401: token missing, unknown or expired
    kThrottled,         ///< 429: too many 401s from that address
    kTooMany,           ///< 503 at accept: --max-connections reached, or shutting down
    kStoreUnavailable,  ///< 503: the store cannot answer a hello now
    kFaultInjected,     ///< POST /faults/reject
    kCount,
};
const char* to_string(UpgradeRejection why);

/// Upper bounds (ms) of tether_server_store_seconds' buckets; +Inf follows.
inline constexpr std::uint32_t kStoreLatencyBucketsMs[] = {1,   2,   5,    10,   25,   50,   100,
                                                           250, 500, 1000, 2500, 5000, 10000};
inline constexpr std::size_t kStoreLatencyBuckets =
    sizeof kStoreLatencyBucketsMs / sizeof kStoreLatencyBucketsMs[0];

/// What GET /metrics adds to the engine's and the Counters' totals.
struct MetricsCounters {
    std::uint64_t connections_accepted = 0;  ///< client sockets accepted (before any check)
    std::uint64_t upgrades_accepted = 0;     ///< 101 Switching Protocols sent
    std::uint64_t upgrades_rejected[static_cast<std::size_t>(UpgradeRejection::kCount)] = {};
    std::uint64_t hellos_accepted = 0;  ///< sessions claimed by a welcomed hello
    std::uint64_t messages_stored = 0;  ///< uplink DATA the store took (not duplicates)
    std::uint64_t acks_sent = 0;        ///< ACK messages queued to devices
    /// Store latency: a message's hand-over to the store until the ACK that
    /// covers it (batching, write, sync or Redis round trip), one sample per
    /// connection and ack round. Per bucket (not cumulative), +Inf last.
    std::uint64_t store_latency[kStoreLatencyBuckets + 1] = {};
    std::uint64_t store_latency_sum_ms = 0;
};

/// Fault switches set through the admin interface.
struct Faults {
    TimeMs silence_until = 0;
    bool silenced = false;
    TimeMs reject_until = 0;
    bool rejecting = false;
    std::uint16_t reject_status = 503;
    bool reject_has_retry_after = false;
    std::uint32_t reject_retry_after = 0;
};

class Server final : private EngineEvents {
  public:
    explicit Server(const Options& options);
    ~Server();

    /// Opens the store, loads tokens, TLS, listeners; prints the port line.
    /// False (reported on stderr) when something failed.
    bool start();
    /// Runs until SIGTERM/SIGINT or POST /quit; returns the exit code.
    int run();
    /// Asks run() to stop (async-signal-safe: writes the wake pipe).
    static void request_stop_from_signal();

    // For connections.
    const Options& options() const { return options_; }
    SessionEngine& engine() { return *engine_; }
    /// Wall-clock time in ms since the Unix epoch (the receive time backends see).
    std::uint64_t wall_clock_ms() const;
    TokenStore& tokens() { return tokens_; }
    const Faults& faults() const { return faults_; }
    Counters& counters() { return counters_; }
    MetricsCounters& metrics() { return metrics_; }
    void upgrade_rejected(UpgradeRejection why) {
        ++metrics_.upgrades_rejected[static_cast<std::size_t>(why)];
    }
    /// One store latency sample (MetricsCounters::store_latency).
    void observe_store_latency(std::uint32_t ms);
    void note_uplink(bool sync_now);
    /// Before an upgrade's token is looked at: true (and *retry_after_s set)
    /// when `peer` is penalised for failed upgrades; counts the 429.
    bool upgrade_throttled(const net::IpAddress& peer, TimeMs now, std::uint32_t* retry_after_s);
    /// An upgrade from `peer` is answered 401: counted, and held against it.
    void upgrade_unauthorized(const net::IpAddress& peer, TimeMs now);
    /// A hello was accepted for `session` on `connection`: other live
    /// connections of it are closed with 4009.
    void claim_session(const std::string& session, ClientConnection* connection, TimeMs now);
    void release_session(const std::string& session, ClientConnection* connection);
    /// The store failed `session` during `op`: logged, and its live
    /// connection (if any) closed with 1011; the others carry on.
    void session_failed(const std::string& session, const char* op, TimeMs now);
    /// One line on standard error: "t=SECONDS level=LEVEL " and the text.
    void log(LogLevel level, const char* format, ...) __attribute__((format(printf, 3, 4)));

    // For the admin interface.
    /// True when a POST's header block carries the admin token; otherwise
    /// logged (event=admin_unauthorized) and counted.
    bool admin_authorized(const std::string& header_block, const std::string& path);
    std::string stats_json() const;
    /// GET /metrics: the Prometheus text exposition (version 0.0.4).
    std::string metrics_text() const;
    void fault_reset();
    void fault_close(std::uint16_t code, const std::string& reason, TimeMs now);
    void fault_silence(std::uint32_t ms, TimeMs now);
    void fault_reject(std::uint16_t status, bool has_retry_after, std::uint32_t retry_after,
                      std::uint32_t ms, TimeMs now);
    std::size_t expire_tokens(const std::string& token, bool all, TimeMs now);
    /// Hands a downlink message to the engine; the answer reaches
    /// admin->finish_push() from a later round of the loop. kOk (asked),
    /// kTooLarge, kUnavailable.
    Status push_downlink(const std::string& session, const std::string& body,
                         AdminConnection* admin);
    void request_quit() { quit_requested_ = true; }
    /// A backend's desired change (POST /sessions/ID/desired); the answer
    /// reaches admin->finish_desired() later. kOk (asked), kUnavailable.
    Status set_desired(const std::string& session, const std::string& patch, bool has_expected,
                       std::uint64_t expected, AdminConnection* admin);
    /// GET /sessions/ID/state; the answer reaches admin->finish_state() later.
    Status read_state(const std::string& session, AdminConnection* admin);

    // For connections (device state): each asks with a ticket from here, so
    // the answer finds its connection (and a report's id) again.
    Status ask_desired_since(ClientConnection* connection, std::uint64_t applied);
    Status ask_report(ClientConnection* connection, const ReportRequest& request);

  private:
    // EngineEvents
    void on_hello(std::uint64_t ticket, Status status, const HelloResult& result) override;
    void on_acknowledgeable(std::string_view session, std::uint64_t last_uplink) override;
    void on_downlink_ready(std::string_view session) override;
    void on_superseded(std::string_view session, std::uint32_t version) override;
    void on_session_failed(std::string_view session, Status status) override;
    void on_pushed(std::uint64_t ticket, Status status, std::uint64_t seq) override;
    void on_store_error(const char* what, Status status, const char* detail) override;
    void on_desired_changed(std::string_view session, std::uint64_t version) override;
    void on_desired_since(std::uint64_t ticket, Status status,
                          const std::vector<DesiredChange>& changes) override;
    void on_desired_set(std::uint64_t ticket, Status status, std::uint64_t version) override;
    void on_reported(std::uint64_t ticket, Status status, const ReportResult& result) override;
    void on_state_read(std::uint64_t ticket, Status status,
                       const StateDocuments& documents) override;
    AdminConnection* take_admin(std::uint64_t ticket);

    ClientConnection* live_connection(std::string_view session);
    bool make_engine();
    void accept_clients(int listener, port::TlsServerContext* tls, TimeMs now);
    void accept_admin(TimeMs now);
    /// accept() failed with `error` (process-wide): pause every listener.
    void accept_failed(int error, TimeMs now);
    void sync_store(TimeMs now);
    void begin_shutdown(TimeMs now);
    int poll_timeout(TimeMs now);
    void reap();
    void reap_admins();
    bool load_admin_token();

    Options options_;
    TimeMs log_start_ = 0;  // t= of the log lines counts from here (the constructor)
    std::unique_ptr<Pollable> redis_link_;  // outlives engine_, which drives it
    std::unique_ptr<SessionEngine> engine_;
    TokenStore tokens_;
    AuthThrottle throttle_;
    AcceptBackoff accept_backoff_;
    port::Entropy entropy_;
    std::unique_ptr<port::TlsServerContext> tls_;
    std::string admin_token_;
    int listen_fd_ = -1;
    int tls_listen_fd_ = -1;
    int admin_fd_ = -1;
    std::uint64_t next_id_ = 1;
    std::vector<std::unique_ptr<ClientConnection>> clients_;
    std::vector<std::unique_ptr<AdminConnection>> admins_;
    std::map<std::string, ClientConnection*, std::less<>> live_;
    std::map<std::uint64_t, ClientConnection*> by_id_;  // hello answers find their connection
    // Admin requests waiting for the engine (push, desired, state), by ticket.
    std::map<std::uint64_t, AdminConnection*> pushes_;
    std::uint64_t next_push_ticket_ = 1;
    // Connections' state requests waiting for the engine: whose, and a report's id.
    struct StateTicket {
        std::uint64_t connection = 0;
        std::string report_id;
    };
    std::map<std::uint64_t, StateTicket> state_tickets_;
    std::uint64_t next_state_ticket_ = 1;
    std::vector<struct pollfd> fds_;
    Faults faults_;
    Counters counters_;
    MetricsCounters metrics_;
    std::uint64_t unsynced_ = 0;
    bool sync_now_ = false;
    TimeMs first_unsynced_at_ = 0;
    bool quit_requested_ = false;
    bool stopping_ = false;
    TimeMs stop_deadline_ = 0;
};

}  // namespace tether::server

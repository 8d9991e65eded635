// SPDX-License-Identifier: MIT
// tether::server::RedisEngine: a SessionEngine whose sessions live in Redis 7
// (docs/PROTOCOL.md, "tether-server's Redis store"), shared by any number of
// tether-server instances. It owns no socket: it sends commands through a
// RedisLink (port/posix/server/hiredis_link.h in the server, a scripted fake
// in the tests) and decides from the replies. Time comes in as arguments.
//
// What it sends:
//   - on every (re)connect, first: FUNCTION LOAD REPLACE <the tether library>
//     (include/tether/server/redis_functions.h); ready() turns true when it is loaded;
//   - hello(): FCALL tether_hello, then XRANGE P:{S}:down (the replay buffer),
//     pipelined; after an accepted hello SADD P:sessions S. on_hello follows
//     the XRANGE reply (reply durability) or the WAIT after it (replicas:N);
//   - uplink_data() / uplink_gap(): queued per session; flush() sends each
//     session's DATA as FCALL tether_uplink batches (at most
//     max_batch_messages / max_batch_bytes each) and each gap as FCALL
//     tether_gap, in the order they came, pipelined across sessions;
//     on_acknowledgeable follows the replies (or the WAIT);
//   - downlink_acked(): FCALL tether_ack_downlink at once;
//   - push_downlink(): FCALL tether_push at once; on_pushed follows its reply
//     (and, for a session served here, an XRANGE P:{S}:down at once);
//   - a P:downlink message for a session served here: XRANGE P:{S}:down from
//     the last held seq; on_downlink_ready follows when it brought new ones.
//   - device state (docs/PROTOCOL.md section 9; documents merged here, in
//     C++, the library only compares versions and stores texts):
//       desired_since(): HMGET P:{S}:state and XRANGE P:{S}:desired from
//         the applied version, pipelined; desired_sync() picks the messages;
//       set_desired(): HMGET, the merge, then FCALL tether_desired_put with
//         the version read (a compare-and-set); when another writer came
//         first and no expected version was given, read and merge again, up
//         to kRedisDesiredAttempts reads, then answer kUnavailable;
//       desired_applied(): FCALL tether_desired_applied at once (no answer);
//       report(): HMGET, then (the id new, the base current) the merge and
//         FCALL tether_report with the connection's epoch; a base that moved
//         meanwhile is answered stale, never retried;
//       read_state(): HMGET;
//     a P:desired message ("S version") for a session served here reports
//     on_desired_changed, for a change made by any instance or backend (a
//     change made here is reported with its answer; each version once).
//   - with replicas:N, after the writes of a flush (and after a hello):
//     WAIT N wait_timeout_ms. Acknowledgements (uplink ACKs, hello answers,
//     the answers of set_desired() and of an applied report: a WAIT
//     follows each of those writes) wait for a WAIT that confirmed N
//     replicas; on a shortfall nothing is acknowledged, the next flush sends
//     WAIT again, and the shortfall is counted (wait_shortfalls()) and
//     logged once per streak.
//
// Per served session (a hello accepted here) it caches the hello's version
// (every write carries it: Redis refuses a write from a superseded version,
// and the engine reports on_superseded), the held downlink messages, the
// acknowledgeable seq, and the state hash of the last answer (SessionStats).
// A P:supersede message from another instance with a version at or above the
// cached one reports on_superseded (and forgets the session when above).
//
// A lost connection fails every served session (on_session_failed,
// kUnavailable: the server closes them with 1011, the devices reconnect and
// resend; Redis drops the duplicates), every pending hello (on_hello with
// kUnavailable), push (on_pushed with kUnavailable) and state operation (its
// answer with kUnavailable); ready() is false until
// the link is back and the library is reloaded.
//
// Example (the server's loop owns both objects):
//   tether::server::HiredisLink link(link_options);
//   tether::server::RedisEngine engine(link, engine_options);
//   engine.set_events(&server);
//   if (engine.open(now) != tether::Status::kOk) { ... }
//   // the loop polls engine.poll_requests() and calls engine.service(now);
//   // after each batch of reads: engine.flush(now).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tether/server/redis_link.h"
#include "tether/server/session_engine.h"

namespace tether::server {

/// When an uplink ACK (and a hello's answer) may be sent.
enum class RedisDurability : std::uint8_t {
    kReply,     ///< after the primary replied (durable as its AOF policy says)
    kReplicas,  ///< after WAIT confirmed `replicas` replicas have the writes
};

struct RedisEngineOptions {
    std::string prefix = "tether";  ///< P: every key and channel starts with "P:"
    std::string instance;           ///< this server's name, recorded in `instance`
    RedisDurability durability = RedisDurability::kReply;
    std::uint32_t replicas = 0;             ///< kReplicas: how many must confirm (>= 1)
    std::uint32_t wait_timeout_ms = 1000;   ///< kReplicas: WAIT's timeout (>= 1)
    std::uint32_t replay_capacity = 1024;   ///< downlink messages held per session
    std::uint64_t uplink_maxlen = 1000000;  ///< uplink entries kept per stream; 0: all
    std::size_t max_payload_size = 1u << 20;
    std::size_t max_batch_messages = 64;     ///< DATA per FCALL tether_uplink
    std::size_t max_batch_bytes = 1u << 20;  ///< payload bytes per batch (one DATA at least)
    /// The wall clock (ms since the Unix epoch) for a pushed message's
    /// queued_ms; empty: 0. (Uplink times come with each DATA's UplinkMeta.)
    std::function<std::uint64_t()> unix_time_ms;
    /// Where the engine's few log lines go (one line, no newline); may be empty.
    std::function<void(std::string_view line)> log;
};

/// State operations (desired_since, set_desired, report, read_state) in
/// flight at once; beyond, they are refused with kUnavailable.
inline constexpr std::size_t kRedisMaxStateOperations = 1024;
/// Reads set_desired() makes before it gives up on a document that other
/// writers keep changing (then on_desired_set answers kUnavailable).
inline constexpr unsigned kRedisDesiredAttempts = 8;

/// Parses "reply" or "replicas:N" (N 1..1000) into options->durability and
/// options->replicas. False (options untouched) for anything else.
bool parse_redis_durability(std::string_view text, RedisEngineOptions* options);

class RedisEngine final : public SessionEngine, private RedisLinkEvents {
  public:
    /// `link` must outlive the engine; the engine sets itself as its events.
    RedisEngine(RedisLink& link, RedisEngineOptions options);
    ~RedisEngine() override;
    RedisEngine(const RedisEngine&) = delete;
    RedisEngine& operator=(const RedisEngine&) = delete;

    void set_events(EngineEvents* events) override;
    /// Starts the link. kOk; kInvalidArgument when the options are out of
    /// range (empty prefix or one holding '{' or '}', replicas 0 with
    /// kReplicas, zero capacity, batch or payload limits) or no events are set.
    Status open(TimeMs now) override;
    bool ready() const override;
    /// kOk, kInvalidArgument (as SessionEngine::hello, and last_downlink or
    /// oldest_uplink above kMaxSeq), kUnavailable (not ready).
    Status hello(const HelloRequest& request, std::uint64_t ticket) override;
    /// kQueued, kInvalidArgument, kUnknownSession (no hello accepted here),
    /// kTooLarge, kIoError (not connected).
    UplinkResult uplink_data(std::string_view session, std::uint64_t seq,
                             const std::uint8_t* payload, std::size_t size,
                             const UplinkMeta& meta) override;
    /// kQueued, kInvalidArgument, kUnknownSession, kIoError (not connected).
    GapResult uplink_gap(std::string_view session, std::uint64_t first, std::uint64_t last,
                         std::string_view reason) override;
    void flush(TimeMs now) override;
    /// kOk (sent; the held messages up to `seq` are dropped at once),
    /// kNotFound (not served here), kInvalidArgument (beyond the last seq
    /// this engine knows of), kIoError (not connected).
    Status downlink_acked(std::string_view session, std::uint64_t seq) override;
    /// kOk (sent), kInvalidArgument (not a canonical session id), kTooLarge,
    /// kUnavailable (not ready). Any session, served here or not.
    Status push_downlink(std::string_view session, const std::uint8_t* payload, std::size_t size,
                         std::uint64_t ticket) override;
    const DownlinkMessage* downlink_next(std::string_view session,
                                         std::uint64_t after) const override;
    void release(std::string_view session) override;

    /// kOk (asked; a session id that is not canonical is answered
    /// kNotFound), kUnavailable (not ready, or kRedisMaxStateOperations in
    /// flight). Any session, served here or not.
    Status desired_since(std::string_view session, std::uint64_t applied,
                         std::uint64_t ticket) override;
    /// kOk (asked; a bad patch is answered kInvalidArgument or kTooLarge, a
    /// session id that is not canonical kNotFound), kUnavailable (as
    /// desired_since). Any session.
    Status set_desired(std::string_view session, std::string_view patch, bool has_expected,
                       std::uint64_t expected, std::uint64_t ticket) override;
    /// kOk (sent, or not higher than what was sent), kNotFound (not served
    /// here), kInvalidArgument (beyond the highest desired version this
    /// instance knows of: the hello's, a read's, a change's), kIoError (not
    /// connected). Redis checks again against desired_version; one beyond
    /// it fails the session (on_session_failed, kInvalidArgument).
    Status desired_applied(std::string_view session, std::uint64_t version) override;
    /// kOk (asked), kUnavailable (as desired_since). Answered kNotFound for
    /// a session not served here, kInvalidArgument (outcome kUnavailable,
    /// the current version) for an id that is not 16 lowercase hex digits,
    /// a base at or above kMaxSeq, or a document or patch that is not one
    /// JSON object (checked after the repeated id and the stale base).
    Status report(const ReportRequest& request, std::uint64_t ticket) override;
    /// kOk (asked; a session id that is not canonical is answered
    /// kNotFound), kUnavailable (as desired_since). Any session.
    Status read_state(std::string_view session, std::uint64_t ticket) override;

    /// The served session as of its last answer from Redis (gaps not listed:
    /// they are in P:{S}:gaps).
    bool session_stats(std::string_view session, SessionStats* out) const override;
    /// This instance's traffic: sessions served, DATA stored, duplicates,
    /// gaps, pushes through it; ready; store_errors (error replies, lost
    /// connections, WAIT shortfalls).
    EngineStats stats() const override;
    std::vector<std::string> sessions() const override;
    /// Sends what is queued (as flush) and stops the link.
    void close() override;

    // Pollable: the link's descriptors and deadline; while answers decided
    // without Redis wait for service(), a deadline of now and buffered input.
    std::size_t poll_requests(PollRequest* out, std::size_t max) const override;
    bool next_deadline(TimeMs* at) const override;
    bool has_buffered_input() const override;
    void service(TimeMs now) override;

    /// True when no command awaits its reply and no answer waits for
    /// service() (pub/sub messages from other instances may still come).
    bool idle() const { return pending_.empty() && deferred_.empty(); }

    /// WAITs that confirmed fewer than `replicas` replicas.
    std::uint64_t wait_shortfalls() const { return wait_shortfalls_; }

  private:
    struct Served;
    struct Pending;
    struct AwaitingWait;
    struct StateOp;

    void on_connected() override;
    void on_disconnected(std::string_view reason) override;
    void on_reply(std::uint64_t tag, const RedisValue& reply) override;
    void on_message(std::string_view channel, std::string_view payload) override;

    Served* find(std::string_view session);
    const Served* find(std::string_view session) const;
    std::string key(std::string_view session, std::string_view suffix) const;
    bool send(const std::vector<std::string_view>& args, Pending pending);
    void send_batches(Served& served);
    void fetch_downlink(Served& served);
    void send_wait();
    void release_acknowledgement(AwaitingWait item);
    void log_once(bool* flag, std::string_view line);
    void fail_session(const std::string& session, Status status);
    void handle_hello(Pending& pending, const RedisValue& reply);
    void handle_hello_range(Pending& pending, const RedisValue& reply);
    void handle_register(const Pending& pending, const RedisValue& reply);
    /// Answers hello `hello_id` (still in flight) with `status`, or with its
    /// result once the session is served here.
    void welcome(std::uint64_t hello_id, const std::string& session, Status status);
    void handle_write(Pending& pending, const RedisValue& reply);
    void handle_downlink_range(Pending& pending, const RedisValue& reply);
    void handle_wait(Pending& pending, const RedisValue& reply);

    StateOp* start_state_op(std::uint64_t ticket, std::string_view session, std::uint64_t* id);
    void defer(std::uint64_t id, Status status);
    void answer_deferred();
    void finish_state_op(std::uint64_t id, Status status, std::uint64_t version);
    bool send_state_read(std::uint64_t id, const StateOp& op);
    void state_store_error(std::uint64_t id, const Pending& pending, const RedisValue& reply);
    void handle_state_read(Pending& pending, const RedisValue& reply);
    void continue_set(std::uint64_t id, StateOp& op);
    void continue_report(std::uint64_t id, StateOp& op);
    void handle_since_range(Pending& pending, const RedisValue& reply);
    void handle_desired_put(Pending& pending, const RedisValue& reply);
    void handle_report(Pending& pending, const RedisValue& reply);
    void hold_for_wait(const Pending& pending);
    void desired_changed(std::string_view session, std::uint64_t version);

    RedisLink& link_;
    RedisEngineOptions options_;
    EngineEvents* events_ = nullptr;
    TimeMs now_ = 0;
    bool opened_ = false;
    bool library_loaded_ = false;
    std::uint64_t next_tag_ = 1;
    std::deque<Pending> pending_;  ///< sent commands, in order, awaiting replies
    std::map<std::string, std::unique_ptr<Served>, std::less<>> served_;
    /// Hello answers decided, waiting for the held downlink to arrive.
    struct HelloInFlight;
    std::map<std::uint64_t, std::unique_ptr<HelloInFlight>> hellos_;
    std::uint64_t next_hello_id_ = 1;
    std::map<std::uint64_t, std::unique_ptr<StateOp>> state_ops_;
    std::uint64_t next_state_op_ = 1;
    /// State operations decided without Redis, answered at the next service().
    std::vector<std::uint64_t> deferred_;
    std::vector<AwaitingWait> awaiting_wait_;  ///< replicas: acknowledgements held for WAIT
    std::uint64_t writes_sent_ = 0;            ///< write commands sent since connecting
    std::uint64_t last_wait_covers_ = 0;       ///< writes_sent_ when the last WAIT went out
    std::size_t waits_in_flight_ = 0;
    bool shortfall_logged_ = false;
    bool load_error_logged_ = false;

    std::uint64_t received_ = 0;
    std::uint64_t duplicates_ = 0;
    std::uint64_t gap_count_ = 0;
    std::uint64_t missing_seqs_ = 0;
    std::uint64_t downlink_pushed_ = 0;
    std::uint64_t store_errors_ = 0;
    std::uint64_t wait_shortfalls_ = 0;
};

}  // namespace tether::server

// SPDX-License-Identifier: MIT
// One WebSocket client link: the reconnect state machine, the outbox and the
// WebSocket stream, driven over a Connection and a NameResolver.
//
// The client never waits. The poll loop asks it what to poll for
// (poll_requests(), next_deadline(), has_buffered_input()), then calls
// service(now), which does every piece of work that is possible at once:
// advances the lookup and the connect, reads frames, drains the outbox into
// the socket in coalesced writes, and feeds the state machine its events and
// timers. Everything the client needs from the operating system comes in
// through interfaces (Connection, NameResolver, RandomSource, MaskSource), so
// the whole of it runs on the host under test with fakes.
//
// Delivery in plain WebSocket mode (no resume protocol; ClientConfig::delivery,
// docs/ARCHITECTURE.md "Plain WebSocket delivery"): messages wait in the
// outbox while the link is down and go out in order once it is open. After
// each write that carried data the client queues a confirmation ping (an
// 8-byte payload, "tcfm" and a number, unlike the heartbeat's 4 bytes); the
// peer answers pings in order, so its pong proves that the peer's WebSocket
// endpoint has read every frame before that ping (not that the application
// behind it kept them). At most kMaxConfirmPings are outstanding; a later one
// covers everything sent before it.
//  - Delivery::kAtMostOnce: an entry is freed once the first byte of its
//    frame has been handed to the kernel (a frame never handed over at all
//    is sent again after a reconnect). Nothing is ever sent twice. When a
//    link dies, the messages handed over since the last confirmation are in
//    doubt: counted (ClientCounters::in_doubt) and reported through
//    ClientListener::on_in_doubt(). The reply to our own close confirms
//    everything before it.
//  - Delivery::kAtLeastOnce: an entry is freed only when a pong confirms it
//    (ClientListener::on_uplink_acked(), as a tether.v1 ack would be).
//    After a reconnect every unconfirmed entry is sent again, in order: the
//    ones the kernel had taken may arrive twice (counted in
//    ClientCounters::in_doubt and reported through on_in_doubt()).
// Neither is exactly-once: only tether.v1 (acknowledged seqs the server
// deduplicates) gives that.
//
// Memory: the caller provides the outbox storage and the receive and
// transmit buffers; nothing is allocated per message.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/net/http_proxy.h"
#include "tether/net/state_messages.h"
#include "tether/net/url.h"
#include "tether/net/ws_handshake.h"
#include "tether/net/ws_stream.h"
#include "tether/outbox.h"
#include "tether/pollable.h"
#include "tether/reconnect.h"
#include "tether/resolver.h"
#include "tether/state_record.h"
#include "tether/transport.h"

namespace tether {

/// Supplies the Authorization header: a bearer token from a file re-read
/// when needed, or from a command. Tokens never appear in logs.
class CredentialsProvider {
  public:
    virtual ~CredentialsProvider() = default;
    /// Writes the full header value ("Bearer ...") and a NUL into `out`.
    /// Returns false when there is none (no header is sent).
    virtual bool authorization(char* out, std::size_t capacity) = 0;
    /// The server rejected the credentials: fetch fresh ones before the next attempt.
    virtual void refresh() = 0;
};

/// What changed, for logs, status and metrics.
struct ClientEvent {
    LinkState state;
    LinkState previous;
    std::uint8_t endpoint;   ///< index into ClientConfig::urls
    std::uint32_t attempt;   ///< consecutive attempts so far (the persisted counter)
    std::uint32_t delay_ms;  ///< kWaitingToRetry: the wait before the next attempt
    const char* reason;      ///< the failure policy's reason for the last failure, or ""
    const char* detail;      ///< more about the failure ("status=503", "close=4009"), or ""
};

class ClientListener {
  public:
    virtual ~ClientListener() = default;
    virtual void on_state(const ClientEvent& event) { (void)event; }
    /// A complete message from the server; `data` is valid until the call returns.
    virtual void on_message(net::WsOpcode type, const std::uint8_t* data, std::size_t size) {
        (void)type;
        (void)data;
        (void)size;
    }
    /// tether.v1: the downlink seq of the message about to be passed to
    /// on_message() (called just before it), for applications that confirm
    /// hand-over (ClientConfig::confirm_downlink) or drop re-deliveries.
    virtual void on_downlink_seq(std::uint64_t seq) { (void)seq; }
    /// downlink: the server will never send downlink seqs first..last (it no
    /// longer held them; tether.v1). Uplink (downlink false): the outbox
    /// dropped seqs first..last under drop_oldest; reported once the link is
    /// back (in tether.v1 the server records the same range as a gap).
    virtual void on_gap(bool downlink, std::uint64_t first, std::uint64_t last) {
        (void)downlink;
        (void)first;
        (void)last;
    }
    /// tether.v1: the server has stored every uplink seq <= `seq`.
    virtual void on_uplink_acked(std::uint64_t seq) { (void)seq; }
    /// tether.v1 with ClientConfig::confirm_downlink: whether the application
    /// can take a downlink message of `size` bytes now. A message it cannot
    /// take is not delivered (nor acknowledged), and neither is any after it;
    /// the link stays up meanwhile, and once the application has room for a
    /// largest message again the session is resumed once, so the server
    /// sends them again.
    virtual bool downlink_can_accept(std::size_t size) {
        (void)size;
        return true;
    }
    /// Plain mode: the link died with `count` messages (seqs first..last)
    /// handed to the kernel and not confirmed by a pong. `resent` false
    /// (Delivery::kAtMostOnce): they are not sent again and may be lost;
    /// true (kAtLeastOnce): they are sent again and may arrive twice.
    virtual void on_in_doubt(std::uint64_t first, std::uint64_t last, std::uint64_t count,
                             bool resent) {
        (void)first;
        (void)last;
        (void)count;
        (void)resent;
    }
    /// Plain mode with Delivery::kAtMostOnce: the messages up to `seq` are
    /// about to be handed to the kernel (called before the write): a disk
    /// copy must record that they are gone, so that a restart never sends
    /// them again.
    virtual void on_uplink_handover(std::uint64_t seq) { (void)seq; }
    /// The state record could not be saved (`status` kIoError), or was saved
    /// again after failing (kOk). Called on each change, not on every save.
    virtual void on_persist(Status status) { (void)status; }
    /// tether.v1: messages that never left this process were renumbered above
    /// the server's last_uplink (see adopt_welcome); called before the
    /// welcome's acknowledgement is reported, so a disk copy can follow.
    virtual void on_renumbered() {}
    /// tether.v1 with ClientConfig::device_state, on a connection whose
    /// welcome named "state": a device-state message from the server (its
    /// document, when it has one, compact in `document`; valid during the
    /// call only). Runs inside the stream's read, like on_message(): record
    /// what it says, act later. Returns false when the message breaks the
    /// protocol (an increment that skips a version, a type the server must
    /// not send): the client closes with 4002. The default refuses every one.
    virtual bool on_state_message(const net::v1::StateMessage& message, const char* document,
                                  std::size_t document_size) {
        (void)message;
        (void)document;
        (void)document_size;
        return false;
    }
};

/// What plain WebSocket mode promises (see the file comment).
enum class Delivery : std::uint8_t {
    kAtMostOnce,   ///< never sent twice; what a dying link may have lost is counted
    kAtLeastOnce,  ///< never lost while running; resent after a reconnect until confirmed
};
/// "at-most-once", "at-least-once"; "unknown" for any other value.
const char* to_string(Delivery delivery);
/// Parses the names above; false (leaving *delivery alone) for anything else.
bool parse_delivery(const char* text, Delivery* delivery);

struct ClientConfig {
    /// Timeouts, backoff, heartbeat, breakers. endpoint_count and
    /// tls_endpoints are set from `urls`.
    ReconnectConfig reconnect;
    /// Endpoints in priority order (ws:// or wss://), primary first.
    const char* urls[EndpointPool::kMaxEndpoints] = {};
    std::size_t url_count = 0;
    net::WsStreamConfig ws;
    /// Subprotocols to offer; with require_subprotocol a 101 must select one.
    const char* const* subprotocols = nullptr;
    std::size_t subprotocol_count = 0;
    bool require_subprotocol = false;
    /// Extra request header lines ("Name: value").
    const char* const* extra_headers = nullptr;
    std::size_t extra_header_count = 0;
    /// permessage-deflate (RFC 7692): with a deflater (for example a
    /// tether::deflate::ZlibDeflater built for the offer's largest window, owned
    /// by the application and outliving the client) every upgrade offers
    /// `deflate_offer`; when the server accepts, data messages of at least
    /// `deflate_threshold` bytes are sent compressed. nullptr: no offer.
    net::MessageDeflater* deflater = nullptr;
    net::DeflateOffer deflate_offer;
    std::size_t deflate_threshold = 0;
    /// The frame type outbox messages are sent as.
    net::WsOpcode message_type = net::WsOpcode::kText;
    OverflowPolicy overflow = OverflowPolicy::kDropOldest;
    /// Plain WebSocket mode only (ignored with tether.v1, which acknowledges).
    Delivery delivery = Delivery::kAtMostOnce;

    /// tether.v1 (docs/PROTOCOL.md): set reconnect.resume_protocol. The
    /// subprotocol is then offered and required, messages travel as DATA with
    /// seqs, and the session resumes after every reconnect. `session_id` is
    /// the UUID text (session_id_for()), `device_id` a printable name.
    const char* session_id = nullptr;
    const char* device_id = nullptr;
    /// Downlink acknowledgement batching.
    std::uint32_t ack_every = 64;
    std::uint32_t ack_interval_ms = 200;
    /// Uplink seqs are reserved on disk this many at a time, so a restart
    /// never reuses a seq the server may already hold.
    std::uint32_t seq_reservation = 1024;
    /// tether.v1: acknowledge (and persist) a downlink message only once the
    /// application confirms it has it (confirm_downlink()), instead of as soon
    /// as on_message() returns.
    bool confirm_downlink = false;
    /// tether.v1: offer the "age" extension (docs/PROTOCOL.md 3.6). Where the
    /// server's welcome accepts it, each DATA carries the milliseconds since
    /// send() took the message, measured when that DATA is written (a
    /// retransmission carries the larger age), so the server can date it
    /// without a clock on the device. Costs no outbox space, but the DATA
    /// header is 14 bytes instead of 10, so max_payload() is 4 bytes smaller.
    bool message_age = true;
    /// tether.v1: offer the "state" extension (docs/PROTOCOL.md section 9):
    /// the hello lists it with the desired version set_desired_version()
    /// gave; where the welcome accepts it, the server's state messages go to
    /// ClientListener::on_state_message() and queue_state_message() sends the
    /// device's. Needs ClientBuffers::state_document, and ws.max_message_size
    /// (and the receive buffer) of at least net::v1::kMaxStateMessage.
    bool device_state = false;

    /// An HTTP CONNECT proxy (net/http_proxy.h), or null for none: the
    /// client resolves and connects to the proxy, asks it for a tunnel to the
    /// endpoint's host:port (with Basic credentials when the proxy URL has
    /// them), and runs TLS (SNI and verification against the endpoint's
    /// name) and the upgrade through it. reconnect.proxy_timeout_ms bounds
    /// the wait for the proxy's answer. Must outlive the client.
    const net::ProxyUrl* proxy = nullptr;
    /// Endpoints whose host and port match this no_proxy list
    /// (net::no_proxy_matches) are reached directly; null for none.
    const char* no_proxy = nullptr;
};

/// Caller-owned memory for one client.
struct ClientBuffers {
    std::uint8_t* outbox;
    std::size_t outbox_size;
    std::uint8_t* rx;  ///< one reassembled incoming message: >= ws.max_message_size
    std::size_t rx_size;
    std::uint8_t* tx;  ///< coalesced outgoing frames: >= largest message + 14
    std::size_t tx_size;
    /// ClientConfig::device_state only: where a state message's document is
    /// parsed into (>= net::v1::kMaxStateDocument bytes).
    char* state_document = nullptr;
    std::size_t state_document_size = 0;
};

struct ClientCounters {
    std::uint64_t messages_sent = 0;  ///< frames handed to the stream
    std::uint64_t messages_received = 0;
    std::uint64_t connects = 0;      ///< times the link came online
    std::uint64_t uplink_acked = 0;  ///< tether.v1: highest uplink seq the server acknowledged
    std::uint64_t downlink_duplicates = 0;  ///< tether.v1: replays dropped
    std::uint64_t gaps_reported = 0;        ///< tether.v1: uplink gap messages sent
    std::uint64_t resumed = 0;              ///< tether.v1: welcomes that resumed the session
    std::uint64_t renumbered = 0;  ///< tether.v1: messages renumbered past seqs the server held
    std::uint64_t rejected_too_large = 0;  ///< send() refused: above max_payload()
    std::uint64_t downlink_overruns = 0;   ///< messages the application could not take
    std::uint64_t sent_with_age = 0;       ///< tether.v1: DATA that carried its age
    /// Plain mode: confirmation pings sent, and the messages their pongs confirmed.
    std::uint64_t confirm_pings = 0;
    std::uint64_t confirmed = 0;
    /// Plain mode: messages handed to the kernel on links that died before a
    /// pong confirmed them: possibly lost (at-most-once) or sent again and
    /// possibly duplicated (at-least-once).
    std::uint64_t in_doubt = 0;
    /// Plain mode: send() refused a text message that is not valid UTF-8.
    std::uint64_t rejected_invalid_text = 0;
};

class Client final : public Pollable, private net::WsHandler {
  public:
    /// Plain mode: confirmation pings outstanding at once.
    static constexpr std::size_t kMaxConfirmPings = 4;
    /// Plain mode: writes of data tracked until the kernel has them whole.
    static constexpr std::size_t kMaxBatches = 32;
    /// The least time between dropping downlink messages the application
    /// could not take and the resume that fetches them again.
    static constexpr std::uint32_t kDownlinkReplayMs = 1000;

    /// Everything passed by reference must outlive the client. `state` (may
    /// be null, with `record`) holds the persisted counters: the attempt
    /// counter is restored from it and saved through `record` whenever it changes.
    Client(const ClientConfig& config, const ClientBuffers& buffers, Connection& connection,
           NameResolver& resolver, RandomSource& random, net::MaskSource& masks,
           ClientListener* listener = nullptr, CredentialsProvider* credentials = nullptr,
           StateRecord* record = nullptr, PersistentState* state = nullptr);
    ~Client() override;
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    /// kOk, or kInvalidArgument naming the first bad URL (config_error()) or
    /// a configuration out of range. Call once, before start().
    Status init();
    const char* config_error() const { return config_error_; }

    /// Connects, and keeps reconnecting until stop().
    void start(TimeMs now);
    /// Closes with `code` (1000 normal, 1001 going away) and stays down.
    void stop(TimeMs now, std::uint16_t code = 1000);
    /// The operator's "reconnect now": waiting to retry, the remaining backoff
    /// delay is skipped; given up, the attempt counter starts again. A
    /// Retry-After hold is still honoured. Returns true when that happened
    /// (the state changed, see on_state), false when there was nothing to hurry
    /// (connecting, online, closing or stopped).
    bool connect_now(TimeMs now);

    /// Queues a message for the server under the overflow policy. kOk,
    /// kNoSpace (reject_newest and full), kTooLarge (above max_payload():
    /// it could never be delivered, so it is not queued) or kInvalidArgument
    /// (`data` null with a size, a `type` that is no WebSocket opcode, or in
    /// plain mode a text message that is not valid UTF-8: a peer would close
    /// over it, and it would come back after every reconnect).
    /// `now` is when the application handed the message over: with the age
    /// extension (ClientConfig::message_age) each DATA says how long ago that
    /// was, exact up to net::v1::kMaxAgeMs (24.8 days) and capped there,
    /// provided service() runs at least once in that time (the link's timers
    /// see to it while it is started). *seq gets its number. `type` (plain
    /// WebSocket mode only) overrides ClientConfig::message_type for this
    /// message.
    Status send(TimeMs now, const std::uint8_t* data, std::size_t size,
                std::uint64_t* seq = nullptr, net::WsOpcode type = net::WsOpcode::kContinuation);

    /// The largest message send() accepts: what fits the outbox, the
    /// transmit buffer and ws.max_message_size once framed (tether.v1 adds
    /// its header: 14 bytes with message_age, which the server may or may
    /// not accept later, else 10), so that anything accepted can reach a peer
    /// that applies the same limit. Valid after init().
    std::size_t max_payload() const { return max_payload_; }

    /// Puts back a message recovered from disk, with its old seq, after
    /// init() and before the first send(). Seqs must increase from one call
    /// to the next and may lie below the persisted reservation; a hole is
    /// allowed (seqs the disk lost). kInvalidArgument otherwise, kTooLarge
    /// above max_payload(), or what Outbox::push_overwrite returns (the
    /// oldest restored messages are evicted, and reported as dropped, when
    /// the outbox is smaller than what was recovered). A restored seq keeps
    /// its number forever: the server may already hold it. Its age is not
    /// known (the monotonic clock restarted with the process), so it is sent
    /// without one even where the age extension is in use.
    Status restore(std::uint64_t seq, const std::uint8_t* data, std::size_t size);
    /// New messages are never numbered below the reservation the state record
    /// held at construction (PersistentState::next_uplink_seq), nor below
    /// `seq`: the seqs between the last restored message and the first new
    /// one stay unused, and drain reports them to the server as one gap with
    /// `reason` (e.g. "unrecovered": a crashed run may have used them).
    void continue_numbering_at(std::uint64_t seq, const char* reason);

    /// tether.v1 with confirm_downlink: the application has every downlink
    /// message up to `seq` (the seqs passed to on_downlink_seq()); they are
    /// persisted and acknowledged from now on.
    void confirm_downlink(std::uint64_t seq);
    /// tether.v1 with confirm_downlink, from inside on_message() only: the
    /// application could not take the message after all. It is not counted as
    /// delivered, and it and what follows come again after one resume.
    void refuse_downlink() { downlink_refused_ = true; }
    /// Saves the persisted counters again now (a retry after a failed save).
    void save_state() { persist(); }
    /// tether.v1: the downlink seq the application has everything up to (what
    /// is persisted and acknowledged).
    std::uint64_t downlink_confirmed() const { return downlink_ack_target(); }

    /// ClientConfig::device_state: the desired version the next hello names
    /// (what the application has applied and the caller has persisted).
    void set_desired_version(std::uint64_t version) { desired_version_ = version; }
    std::uint64_t desired_version() const { return desired_version_; }
    /// True while online on a connection whose welcome accepted "state".
    bool state_negotiated() const {
        return state_on_link_ && machine_.state() == LinkState::kOnline;
    }
    /// Queues one device-state message (compact JSON written with the
    /// net/state_messages.h writers) as a text frame and flushes. False when
    /// state is not negotiated on the current connection, or the transmit
    /// buffer has no room for it now (try again on a later service()).
    bool queue_state_message(TimeMs now, const char* json, std::size_t size);

    /// Pollable: does all work possible at `now` without blocking.
    void service(TimeMs now) override;
    /// Pollable: the descriptors to poll (at most kMaxPollRequests).
    std::size_t poll_requests(PollRequest* out, std::size_t max) const override;
    /// Pollable: when service() must run even if no descriptor is ready.
    bool next_deadline(TimeMs* at) const override;
    /// Pollable: bytes TLS already decrypted; the loop must not block in poll() while true.
    bool has_buffered_input() const override;

    LinkState state() const { return machine_.state(); }
    const ReconnectMachine& machine() const { return machine_; }
    const Outbox& outbox() const { return outbox_; }
    const net::WsStream& stream() const { return stream_; }
    const ClientCounters& counters() const { return counters_; }
    const net::WsUrl& url(std::size_t index) const { return urls_[index]; }
    /// True when nothing waits to be sent: the outbox is empty and the stream flushed.
    /// (Plain at-least-once: and every message sent is confirmed.)
    bool idle() const;
    /// Plain at-most-once: the newest seq on_uplink_handover() named.
    std::uint64_t handed_over_seq() const { return announced_seq_; }

  private:
    void perform(const Actions& actions, TimeMs now);
    void perform_one(const Action& action, TimeMs now);
    void feed(const Event& event, TimeMs now);
    void post(const Event& event);
    void fail(const Failure& failure, TimeMs now, bool more_addresses = false);
    bool service_resolving(TimeMs now);
    bool service_establishing(TimeMs now);
    bool service_upgrade(TimeMs now);
    bool service_proxy(TimeMs now);
    void send_proxy_connect(TimeMs now);
    void start_tunnel_tls();
    bool proxied() const {
        return ((static_cast<unsigned>(config_.reconnect.proxied_endpoints) >>
                 machine_.endpoint()) &
                1u) != 0;
    }
    void fail_proxy(FailureKind kind, std::uint16_t code, TimeMs now);
    bool service_open(TimeMs now);
    void send_upgrade(TimeMs now);
    void connect_next(TimeMs now);
    void drain_outbox();
    void report_dropped();
    void flush(TimeMs now);
    void handle_read_result(const net::WsResult& result, TimeMs now);
    void notify();
    std::uint32_t random_u32();

    // Plain mode (client_plain.cpp).
    void plain_queued(std::uint64_t first_seq, std::uint64_t last_seq, std::size_t count,
                      std::uint64_t start_offset);
    void plain_before_write();
    void plain_after_write();
    void plain_queue_confirm();
    void plain_confirmed(std::uint32_t id);
    void plain_link_closed(bool clean);
    void plain_reset();
    bool at_least_once() const { return config_.delivery == Delivery::kAtLeastOnce; }
    std::uint64_t written_offset() const { return stream_.counters().bytes_written; }
    struct Batch {
        std::uint64_t first_seq;
        std::uint64_t last_seq;
        std::uint64_t start;  // stream byte offsets of its frames
        std::uint64_t end;
        std::uint64_t messages_through;  // messages queued on this connection up to it
    };
    struct ConfirmPing {
        std::uint32_t id;
        std::uint64_t last_seq;
        std::uint64_t messages_through;
    };
    Batch batches_[kMaxBatches] = {};
    std::size_t batch_head_ = 0;
    std::size_t batch_count_ = 0;
    ConfirmPing confirms_[kMaxConfirmPings] = {};
    std::size_t confirm_head_ = 0;
    std::size_t confirm_count_ = 0;
    std::uint32_t next_confirm_id_ = 1;
    bool confirm_owed_ = false;          // data queued after the newest confirmation ping
    std::uint64_t queued_messages_ = 0;  // on this connection
    std::uint64_t handed_messages_ = 0;  // of those, with bytes at the kernel
    std::uint64_t handed_seq_ = 0;       // the newest of them
    std::uint64_t confirmed_messages_ = 0;
    std::uint64_t confirmed_seq_ = 0;
    std::uint64_t announced_seq_ = 0;  // the newest seq on_uplink_handover() named
    std::uint64_t first_seq_on_link_ = 0;
    bool confirm_seen_ = false;
    std::uint32_t confirm_pong_id_ = 0;
    bool plain_clean_close_ = false;
    static bool is_confirm_payload(const std::uint8_t* payload, std::size_t size);
    static std::uint32_t confirm_id_of(const std::uint8_t* payload);

    // tether.v1 (client_resume.cpp).
    bool resume_mode() const { return config_.reconnect.resume_protocol; }
    Status init_resume();
    void send_hello(TimeMs now);
    void on_resume_message(net::WsOpcode type, const std::uint8_t* data, std::size_t size);
    void on_downlink_data(std::uint64_t seq, const std::uint8_t* payload, std::size_t size);
    void after_resume_read(TimeMs now);
    void drain_outbox_v1(TimeMs now);
    void cap_ages(TimeMs now);
    std::uint32_t age_of(const OutboxEntry& entry, TimeMs now) const;
    bool queue_gap(std::uint64_t first, std::uint64_t last);
    void send_downlink_ack(TimeMs now);
    void reserve_uplink_seqs();
    void persist();
    void adopt_welcome();
    std::uint64_t downlink_ack_target() const;
    bool downlink_replay_due(TimeMs now);

    // WsHandler: callbacks run inside the stream, so they only record what
    // happened; service_open() feeds the machine once the stream has returned.
    void on_message(net::WsOpcode type, const std::uint8_t* data, std::size_t size) override;
    void on_pong(const std::uint8_t* payload, std::size_t size) override;
    void on_close(std::uint16_t code, const std::uint8_t* reason, std::size_t size) override;
    void on_frame() override;

    ClientConfig config_;
    Connection& connection_;
    NameResolver& resolver_;
    RandomSource& random_;
    ClientListener* listener_;
    CredentialsProvider* credentials_;
    StateRecord* record_;
    PersistentState* state_;
    ReconnectMachine machine_;
    Outbox outbox_;
    net::WsStream stream_;
    net::UpgradeResponseParser parser_;
    net::ConnectResponseParser proxy_parser_;
    std::size_t proxy_request_length_ = 0;  // the CONNECT request in request_
    std::size_t proxy_request_sent_ = 0;
    net::WsUrl urls_[EndpointPool::kMaxEndpoints];

    net::IpAddress addresses_[8] = {};
    std::size_t address_count_ = 0;
    std::size_t next_address_ = 0;
    bool transport_open_ = false;

    // Events raised while actions run (a connect refused at once, a literal
    // resolved at once) wait here so that the machine is never re-entered.
    static constexpr std::size_t kMaxPosted = 4;
    Event posted_[kMaxPosted];
    std::size_t posted_count_ = 0;

    // What the stream's callbacks saw during one read.
    bool frame_seen_ = false;
    bool pong_seen_ = false;
    std::uint8_t pong_payload_[kPingPayloadSize] = {};
    std::size_t pong_size_ = 0;
    bool close_seen_ = false;
    std::uint16_t close_code_ = 0;

    // tether.v1 state of the current connection.
    static constexpr const char* kV1Protocols[1] = {"tether.v1"};
    bool welcome_seen_ = false;
    bool violation_ = false;
    bool age_on_link_ = false;    // this connection's welcome accepted "age"
    bool state_on_link_ = false;  // this connection's welcome accepted "state"
    std::uint64_t desired_version_ = 0;
    char* state_document_ = nullptr;
    std::size_t state_document_size_ = 0;
    bool on_state_text(const std::uint8_t* data, std::size_t size);
    void on_control_text(const std::uint8_t* data, std::size_t size);
    // Ages (PROTOCOL.md 3.6): messages up to restored_through_ came from disk
    // and have none; those up to capped_through_ waited kMaxAgeMs or more,
    // which the wrapping clock alone could no longer tell.
    std::uint64_t restored_through_ = 0;
    std::uint64_t capped_through_ = 0;
    TimeMs next_age_check_ = 0;
    bool age_check_armed_ = false;
    std::uint64_t welcome_last_uplink_ = 0;
    std::uint64_t last_sent_uplink_ = 0;  // newest uplink seq handed to the stream
    std::uint64_t last_delivered_ = 0;    // newest downlink seq delivered
    std::uint64_t last_acked_downlink_ = 0;
    std::uint32_t unacked_downlink_ = 0;
    TimeMs downlink_ack_due_ = 0;
    bool downlink_ack_pending_ = false;
    bool downlink_ack_armed_ = false;
    std::uint32_t session_version_ = 1;
    char close_reason_[128] = {};
    std::size_t close_reason_size_ = 0;

    // Seqs that may have reached the server (restored from disk, or sent on
    // any connection of this run) keep their numbers forever.
    std::uint64_t maybe_held_through_ = 0;
    // No new message is numbered below this (the persisted reservation).
    std::uint64_t numbering_floor_ = 1;
    void apply_numbering_floor();
    // The gap reason for seqs below the numbering floor (continue_numbering_at).
    const char* skipped_reason_ = "unrecovered";
    // Downlink with confirm_downlink: the application's hand-over watermark.
    std::uint64_t last_confirmed_ = 0;
    std::uint64_t last_message_seq_ = 0;  // newest downlink seq passed to on_message()
    bool downlink_overrun_ = false;
    bool downlink_refused_ = false;
    bool downlink_overrun_noted_ = false;
    TimeMs downlink_overrun_at_ = 0;
    bool persist_failed_ = false;
    std::size_t max_payload_ = 0;

    std::uint64_t last_queued_seq_ = 0;  // newest outbox entry handed to the stream
    bool queued_unacked_ = false;
    ClientCounters counters_;
    char detail_[96] = {};
    char config_error_[160] = {};
    char request_[4096] = {};
};

}  // namespace tether

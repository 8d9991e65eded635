// SPDX-License-Identifier: MIT
// A durable link: the one owner of everything that makes "nothing lost,
// nothing duplicated" hold for a device's uplink and downlink.
//
// It owns the tether.v1 client (reconnect machine, outbox, WebSocket stream),
// the persistent state record and the optional disk spool, and it is the only
// place where they meet. Applications give it bytes to send and get messages
// back; they never touch seqs, the spool or the state record.
//
// The recovery rule (open()), in one place:
//  1. The state record holds the uplink seq reservation R: no run ever gave a
//     message a seq at or above R, because the reservation is saved (and
//     synced) before a seq below it is used.
//  2. The spool's messages above its ACK/DROP watermark are put back under
//     their own seqs (they may already be at the server, which drops what it
//     has). A seq that may have reached the server is never renumbered.
//  3. New messages are numbered from max(R, highest seq the spool knows + 1):
//     never a seq an earlier run may have used. The seqs between the last
//     message recovered and the first new one are reported to the server as
//     one gap, with the reason (a crash lost what they held, or they were
//     never used), so the server's record says exactly which seqs it will
//     never get.
//  4. Anything recovered that cannot be sent (larger than today's limit, or
//     more than today's outbox holds) is counted, reported in RecoveryReport,
//     and becomes part of a gap; nothing is silently left out.
//
// Plain WebSocket (client.reconnect.resume_protocol off; docs/ARCHITECTURE.md
// "Plain WebSocket delivery"): no seqs reach the wire and no server
// acknowledges, so the spool's ACK watermark moves at the client's own
// confirmation point: with Delivery::kAtLeastOnce when a pong confirms the
// messages (a restart sends again everything not confirmed), with
// kAtMostOnce just before they are handed to the kernel (written to the
// spool's file first, so a killed process never sends them again). Device
// state needs tether.v1 and is refused by open().
//
// Storage failures (a full disk, a read-only or failing medium) are states,
// not crashes: the spool goes "degraded", the failure is reported once through
// DurableLinkListener::on_storage(), and messages keep flowing from memory;
// every kSpoolRetryMs the spool is tried again and, once it works, the
// messages accepted meanwhile are written to it. Sending never waits for the
// spool: a message goes out as soon as the link is up, and its spool record is
// handed to the kernel by commit() after each read of input, and by every
// loop iteration anyway (so a killed process loses at most the read in hand,
// inside the gap the next run reports), and synced within
// SpoolConfig::fsync_interval_ms (so a power cut loses at most that much, and
// what it loses lies inside a gap the server is told about).
//
// Device state (DeviceStateConfig, docs/PROTOCOL.md section 9): the link
// keeps the desired document the application applied, the reported document
// the server acknowledged, the device's own reported document and the report
// in flight in a DeviceStateRecord on its own Storage
// (set_device_state_storage()). The application gets one desired change at a
// time (on_desired) and confirms it with desired_applied(), the commit point:
// saved, then "applied" is sent and the next hello names that version. It
// reports with report(); one report is in flight, resent with the same id and
// base after every reconnect or restart until the server answers
// (on_report_answer). Nothing of it is sent before it is saved.
//
// Memory: every buffer is the caller's, sized by DurableLinkSizes; nothing is
// allocated per message. Not thread-safe: one poll loop drives it (it is a
// Pollable).
//
// Example (see examples/forever.cpp for the POSIX owner, port::PosixLink):
//   tether::DurableLink link(config, buffers, connection, resolver, random,
//                            &state_storage, &spool_storage, nullptr, &listener);
//   link.set_device_state_storage(&device_state_storage);  // with device state
//   tether::RecoveryReport report;
//   if (link.open(&report) != tether::Status::kOk) { ... link.error() ... }
//   link.start(now);
//   loop.add(&link);
//   link.send(now, data, size);     // kOk, kTooLarge (never deliverable), kNoSpace
//   ... loop.run_once(...) ...
//   link.stop(now, 1001); ... run the loop until link.state() is kIdle ...
//   link.shutdown();                // sync the spool, persist the exact numbering
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "tether/client.h"
#include "tether/device_state_record.h"
#include "tether/pollable.h"
#include "tether/spool.h"
#include "tether/state_record.h"
#include "tether/storage.h"

namespace tether {

/// The device-state extension (docs/PROTOCOL.md section 9): desired
/// documents from the server, reported documents to it.
struct DeviceStateConfig {
    /// Offer "state" in the hello. Needs the device-state Storage
    /// (DurableLink::set_device_state_storage(): the documents and versions
    /// persist there, crash-safe like the state record), the tether.v1 resume
    /// protocol, the DurableLinkBuffers::device_state bucket, and
    /// client.ws.max_message_size >= net::v1::kMaxStateMessage (8,448).
    bool enabled = false;
};

struct DurableLinkConfig {
    /// URLs, reconnect and heartbeat settings, the tether.v1 identity.
    /// client.ws.max_message_size is the largest WebSocket message on the
    /// wire (the server's limit); the largest payload send() takes is that
    /// minus the tether.v1 DATA header, 14 bytes with client.message_age and
    /// 10 without (DurableLink::max_payload()).
    ClientConfig client;
    /// The outbox: unsent and unacknowledged messages, in memory.
    std::size_t outbox_bytes = 256 * 1024;
    /// Keep a crash-safe disk copy of the outbox (needs a spool Storage).
    bool spool = false;
    SpoolConfig spool_config;
    DeviceStateConfig device_state;
};

/// The buffers one link needs, derived from its configuration.
struct DurableLinkSizes {
    /// Room in the transmit buffer beyond one largest frame, for coalescing
    /// many small frames into one write.
    static constexpr std::size_t kCoalescingRoom = 64 * 1024;
    /// Spool scratch beyond one largest record: appends batch into it.
    static constexpr std::size_t kSpoolBatchRoom = 64 * 1024;

    std::size_t outbox = 0;
    std::size_t rx = 0;
    std::size_t tx = 0;
    std::size_t spool = 0;  ///< 0 without a spool
    /// The device-state documents and message scratch (about 90 KiB); 0
    /// without DeviceStateConfig::enabled.
    std::size_t device_state = 0;

    static DurableLinkSizes for_config(const DurableLinkConfig& config);
    std::size_t total() const { return outbox + rx + tx + spool + device_state; }
};

/// Caller-owned memory, at least DurableLinkSizes::for_config() of each.
struct DurableLinkBuffers {
    std::uint8_t* outbox;
    std::uint8_t* rx;
    std::uint8_t* tx;
    std::uint8_t* spool;                   ///< may be null without a spool
    std::uint8_t* device_state = nullptr;  ///< may be null without device state
};

/// What open() found and did.
struct RecoveryReport {
    LoadSource state_source = LoadSource::kDefaults;
    bool state_read_failed = false;  ///< the state record could not be read at all
    PersistentState state;           ///< as loaded (before this run's bump)
    bool spool_used = false;
    bool spool_failed = false;  ///< recovery failed: this run starts memory-only
    SpoolRecovery spool;
    std::size_t restored = 0;          ///< messages put back into the outbox
    std::uint64_t first_restored = 0;  ///< their seqs, 0 when none
    std::uint64_t last_restored = 0;
    std::size_t too_large = 0;      ///< recovered but above today's max_payload()
    std::size_t evicted = 0;        ///< recovered but more than the outbox holds
    std::uint64_t continue_at = 0;  ///< the seq the first new message gets
    SeqRange unrecovered{0, 0};     ///< seqs reported as a gap; {0, 0} when none
    /// Plain WebSocket at-most-once with a spool: seqs an earlier run handed
    /// to the kernel (the spool's mark) above what it had settled
    /// (PersistentState::uplink_settled_seq): the ones not confirmed when it
    /// ended may be lost. An upper bound: settled is saved at most once a
    /// second, and overflow evictions move the mark too. {0, 0} when none.
    SeqRange in_doubt{0, 0};
};

/// A desired change for the application (DurableLinkListener::on_desired).
/// Pointers are valid during the call only.
struct DesiredChange {
    std::uint64_t version = 0;  ///< the desired version this change brings the device to
    /// true: `document` replaces whatever the application had (a snapshot, or
    /// several increments folded while the application was busy); false:
    /// exactly one increment from the applied version, `patch` holds it.
    bool snapshot = false;
    const char* patch =
        nullptr;  ///< the increment's merge patch (compact JSON); null for a snapshot
    std::size_t patch_size = 0;
    const char* document = nullptr;  ///< the whole desired document at `version` (compact JSON)
    std::size_t document_size = 0;
};

/// The server's answer to a report (DurableLinkListener::on_report_answer).
struct ReportAnswer {
    bool accepted = false;      ///< report_ok
    std::uint64_t version = 0;  ///< accepted: the new reported version; refused: the current one
    const char* reason = "";    ///< refused: "stale", "too_large", "invalid", "unavailable"
    /// refused as stale: the current reported document on the server (else null).
    const char* document = nullptr;
    std::size_t document_size = 0;
};

/// The device-state extension as the link knows it, for status and metrics.
struct DeviceStateView {
    bool enabled = false;
    bool negotiated = false;             ///< the current connection's welcome named "state"
    std::uint64_t desired_applied = 0;   ///< persisted: the version the application applied
    std::uint64_t desired_received = 0;  ///< highest version received (>= applied)
    std::uint64_t reported_version = 0;  ///< the server's version of the reported document
    bool report_pending = false;         ///< a report waits to be sent or answered
    bool in_sync = false;                ///< applied == received and no report pending
    std::uint64_t reports_accepted = 0;
    std::uint64_t reports_refused = 0;
    std::uint64_t desired_snapshots = 0;   ///< snapshots received
    std::uint64_t desired_increments = 0;  ///< increments received
    std::uint64_t state_failures = 0;      ///< device-state saves that failed
};

/// A storage failure or its end, reported once per change.
struct StorageEvent {
    enum class What : std::uint8_t { kSpool, kStateRecord, kDeviceState };
    What what;
    bool failed;         ///< true: it started failing; false: it works again
    int error;           ///< Storage::last_error() (errno) when known, else 0
    const char* action;  ///< what the link does about it, for the log
};

class DurableLinkListener : public ClientListener {
  public:
    virtual void on_storage(const StorageEvent& event) { (void)event; }
    /// send() refused a message that could never be delivered (larger than
    /// max_payload()). Called for the first refusal only; later ones are
    /// counted in DurableLinkCounters::refused_too_large.
    virtual void on_refused(std::size_t size, std::size_t limit) {
        (void)size;
        (void)limit;
    }
    /// A desired change to apply (with DeviceStateConfig::enabled). The
    /// application applies it and then calls DurableLink::desired_applied()
    /// with its version, in this call or later; until then further changes
    /// are folded, and the next call after it is a snapshot of the newest.
    /// A change delivered but not confirmed before a crash is delivered again
    /// after the restart (the confirmation is the commit point). Called from
    /// DurableLink::service(), never inside a read.
    virtual void on_desired(const DesiredChange& change) { (void)change; }
    /// The answer to the report in flight (called from DurableLink::service(),
    /// never inside a read: any link call is allowed here). An answer to a
    /// report that is not the one in flight is ignored.
    virtual void on_report_answer(const ReportAnswer& answer) { (void)answer; }
};

/// The spool's condition, for status and metrics.
enum class SpoolHealth : std::uint8_t {
    kOff,       ///< no spool configured
    kOk,        ///< every accepted message is being written to disk
    kDegraded,  ///< the disk failed: messages are kept in memory only
};
const char* to_string(SpoolHealth health);

struct DurableLinkCounters {
    std::uint64_t refused_too_large = 0;  ///< send(): never deliverable
    std::uint64_t refused_full = 0;       ///< send(): reject_newest and full
    std::uint64_t spool_failures = 0;     ///< spool calls that failed
    std::uint64_t spool_recoveries = 0;   ///< times a degraded spool worked again
    std::uint64_t memory_only = 0;        ///< messages accepted while the spool was degraded
    std::uint64_t state_failures = 0;     ///< state record saves that failed
    /// Messages of an earlier run found in a spool that could only be read
    /// after new messages were numbered: reported, not sent.
    std::uint64_t not_replayed = 0;
};

class DurableLink final : public Pollable, private DurableLinkListener {
  public:
    /// How long a degraded spool waits before it is tried again.
    static constexpr std::uint32_t kSpoolRetryMs = 5000;
    /// Plain at-most-once: the least time between two saves of the settled seq.
    static constexpr std::uint32_t kSettledSaveMs = 1000;
    /// Uplink drops are reported to the listener at most this often, merged.
    static constexpr std::uint32_t kDropReportMs = 1000;

    /// Everything passed by reference or pointer must outlive the link.
    /// `state_storage` (may be null: nothing persists) holds the state
    /// record; `spool_storage` the spool (needed when config.spool).
    DurableLink(const DurableLinkConfig& config, const DurableLinkBuffers& buffers,
                Connection& connection, NameResolver& resolver, RandomSource& random,
                Storage* state_storage, Storage* spool_storage, CredentialsProvider* credentials,
                DurableLinkListener* listener);
    ~DurableLink() override;
    DurableLink(const DurableLink&) = delete;
    DurableLink& operator=(const DurableLink&) = delete;

    /// The Storage of the device-state record (DeviceStateConfig::enabled;
    /// its own store, e.g. the file <state-dir>/device-state). Call before
    /// open(); it must outlive the link.
    void set_device_state_storage(Storage* storage) { device_state_storage_ = storage; }
    /// Bytes of DurableLinkSizes::device_state (the documents and one message).
    static std::size_t device_state_bytes();

    /// Loads the state record, recovers the spool and applies the recovery
    /// rule (see the file comment); `report` (may be null) says what was
    /// found. Call once, before start(). Returns kOk (also when storage
    /// failed: the link then runs memory-only and says so through
    /// on_storage()), or kInvalidArgument for a configuration the client
    /// refuses (error() names it).
    Status open(RecoveryReport* report);
    const char* error() const { return error_; }

    void start(TimeMs now);
    /// Closes with `code` and stays down; keep running the loop until state()
    /// is kIdle (or a deadline), then call shutdown().
    void stop(TimeMs now, std::uint16_t code = 1000);
    /// Syncs the spool and persists the exact numbering, so that the next run
    /// continues without a gap. Returns kOk or kIoError (reported as well).
    /// After stop() this is a clean shutdown: the persisted reconnect attempts
    /// are cleared, so the next run connects at once instead of waiting out
    /// the backoff of this one. A run that ends any other way (killed, a
    /// crash, a watchdog reset, shutdown() without stop()) leaves the counter
    /// the client last persisted, and the next run keeps backing off.
    Status shutdown();

    /// Accepts a message at `now` (the time its age is counted from, see
    /// Client::send()): kOk (queued, and written to the spool), kTooLarge
    /// (above max_payload(): it could never be delivered, so it is refused),
    /// kNoSpace (reject_newest and the outbox is full). *seq gets its seq.
    /// Messages put back from the spool after a restart are sent without an
    /// age: the monotonic clock they were counted on is gone.
    Status send(TimeMs now, const std::uint8_t* data, std::size_t size,
                std::uint64_t* seq = nullptr, net::WsOpcode type = net::WsOpcode::kContinuation);
    std::size_t max_payload() const;
    /// Hands what send() accepted to the spool's file now (no sync; service()
    /// does it too, once per loop iteration). For a caller that takes input
    /// in batches: committing after each read means a kill loses at most the
    /// read in hand, not the whole batch.
    void commit();
    /// Hands what send() accepted to the spool's file and syncs it now
    /// (tetherctl flush). kOk when the spool holds everything accepted, synced
    /// (or there is no spool); kIoError when it does not: the write or sync
    /// failed now (reported once through on_storage(), the spool degrades) or
    /// the spool was degraded already (memory only; reported when it began).
    Status sync_spool();
    /// See Client::connect_now().
    bool connect_now(TimeMs now) { return own_client().connect_now(now); }

    /// Device state (DeviceStateConfig::enabled). The application has applied
    /// the desired document at `version` (the one of its last on_desired):
    /// persisted, then "applied" goes to the server. kOk, kInvalidArgument (not
    /// the version delivered), kIoError (the save failed: reported through
    /// on_storage, retried; the server is told once it is saved).
    Status desired_applied(std::uint64_t version);
    /// The desired document the application has applied (compact JSON, "{}"
    /// before any), persisted across restarts.
    const char* desired_document(std::size_t* size) const;
    /// Reports the device's state: `json` is a JSON object, a merge patch
    /// onto the reported document, or with `whole` the whole document. It is
    /// merged into the link's local reported document at once (persisted) and
    /// sent when no report is in flight; reports made meanwhile go together as
    /// one (a single patch as that patch, several or a whole one as the whole
    /// local document). After a refusal as stale nothing is resent on its own:
    /// the next report() goes out based on the server's version. A report
    /// that leaves the document as the server has it (or is about to have
    /// it, with the report in flight) sends nothing. kOk,
    /// kInvalidArgument (not a valid object, or the feature is off), kTooLarge
    /// (the document would exceed net::v1::kMaxStateDocument), kIoError (taken,
    /// but the save failed: reported through on_storage, retried every 5 s;
    /// nothing is sent until it is saved).
    Status report(const char* json, std::size_t size, bool whole = false);
    /// The device's reported document as the link holds it (compact JSON).
    const char* reported_document(std::size_t* size) const;
    DeviceStateView device_state() const;

    /// Downlink hand-over (ClientConfig::confirm_downlink): see Client.
    void confirm_downlink(std::uint64_t seq);
    void refuse_downlink() { own_client().refuse_downlink(); }

    // Pollable: the client's descriptors and deadlines, plus the spool's.
    std::size_t poll_requests(PollRequest* out, std::size_t max) const override;
    bool next_deadline(TimeMs* at) const override;
    bool has_buffered_input() const override;
    void service(TimeMs now) override;

    LinkState state() const { return client().state(); }
    const Client& client() const { return *client_; }
    const PersistentState& persistent() const { return state_; }
    SpoolHealth spool_health() const { return spool_health_; }
    /// errno of the storage failure behind kDegraded (or the state record's), else 0.
    int storage_error() const { return storage_error_; }
    const Spool* spool() const { return spool_ ? &*spool_ : nullptr; }
    const DurableLinkCounters& counters() const { return counters_; }
    /// True when nothing waits to be sent or acknowledged.
    bool idle() const { return client().idle(); }

  private:
    // DurableLinkListener, as the client's listener: the link's own work on
    // each event, then the application's listener.
    void on_state(const ClientEvent& event) override;
    void on_message(net::WsOpcode type, const std::uint8_t* data, std::size_t size) override;
    void on_downlink_seq(std::uint64_t seq) override;
    void on_gap(bool downlink, std::uint64_t first, std::uint64_t last) override;
    void on_uplink_acked(std::uint64_t seq) override;
    void on_uplink_handover(std::uint64_t seq) override;
    void on_in_doubt(std::uint64_t first, std::uint64_t last, std::uint64_t count,
                     bool resent) override;
    bool downlink_can_accept(std::size_t size) override;
    void on_persist(Status status) override;
    void on_renumbered() override;
    bool append_unspooled();

    static void restore_visit(void* context, std::uint64_t seq, const std::uint8_t* data,
                              std::size_t size);
    static void count_late(void* context, std::uint64_t seq, const std::uint8_t* data,
                           std::size_t size);
    void recover_spool(RecoveryReport* report);
    void spool_work(TimeMs now);
    void spool_failed(Status status, const char* action);
    void try_spool_again(TimeMs now);
    void report_drops(TimeMs now, bool force);
    Client& own_client() { return *client_; }

    // Device state (durable_link_state.cpp).
    static constexpr std::size_t kStateDocuments = 10;
    bool on_state_message(const net::v1::StateMessage& message, const char* document,
                          std::size_t document_size) override;
    Status open_device_state();
    void state_work(TimeMs now);
    bool state_save();
    void state_deliver();
    void state_send(TimeMs now);
    bool state_build_report();
    bool on_desired_message(const net::v1::StateMessage& message, const char* document,
                            std::size_t size);
    bool on_report_answer_message(const net::v1::StateMessage& message, const char* document,
                                  std::size_t size);
    bool state_local_matches_acked() const;

    DurableLinkConfig config_;
    DurableLinkBuffers buffers_;
    DurableLinkSizes sizes_;
    Connection& connection_;
    NameResolver& resolver_;
    RandomSource& random_;
    Storage* state_storage_;
    Storage* spool_storage_;
    CredentialsProvider* credentials_;
    DurableLinkListener* listener_;

    // Mask keys for the stream, from the one random source.
    class MasksFrom final : public net::MaskSource {
      public:
        explicit MasksFrom(RandomSource& random) : random_(random) {}
        bool fill_masks(std::uint8_t* out, std::size_t size) override;

      private:
        RandomSource& random_;
    };
    MasksFrom masks_;

    // The client reads the persisted counters at construction, so it is
    // built in open(), once the state record is loaded.
    std::optional<StateRecord> record_;
    PersistentState state_;
    std::optional<Spool> spool_;
    std::optional<Client> client_;

    SpoolHealth spool_health_ = SpoolHealth::kOff;
    int storage_error_ = 0;
    TimeMs spool_retry_at_ = 0;
    bool spool_retry_armed_ = false;
    bool spool_recovered_ = false;
    bool state_retry_armed_ = false;
    TimeMs state_retry_at_ = 0;
    std::uint64_t syncs_seen_ = 0;
    SeqRange late_found_{0, 0};
    std::uint64_t late_count_ = 0;
    TimeMs synced_at_ = 0;
    std::uint64_t restore_errors_ = 0;
    RecoveryReport* recovering_ = nullptr;
    std::uint64_t dropped_seen_ = 0;  // outbox evictions already mirrored into the spool

    SeqRange pending_drop_{0, 0};
    std::uint64_t pending_drop_count_ = 0;
    TimeMs drop_report_due_ = 0;
    TimeMs last_now_ = 0;
    bool refused_reported_ = false;
    bool stop_requested_ = false;  // stop() was called: shutdown() is a clean one
    // Plain at-most-once with a spool: confirmed or reported in doubt up to here.
    bool tracks_settled() const;
    void save_settled(TimeMs now);
    std::uint64_t settled_ = 0;
    TimeMs settled_save_at_ = 0;
    bool settled_save_armed_ = false;

    // Device state. data_'s documents, and the buffers below, are carved
    // from DurableLinkBuffers::device_state (see durable_link_state.cpp).
    Storage* device_state_storage_ = nullptr;
    std::optional<DeviceStateRecord> state_record_;
    DeviceStateData data_;
    StoredDocument received_;  // the newest desired document received
    std::uint64_t received_version_ = 0;
    StoredDocument delivered_;  // the document of the change the application holds
    std::uint64_t delivered_version_ = 0;
    bool awaiting_applied_ = false;  // on_desired() called, desired_applied() not yet
    StoredDocument increment_;       // the increment from the applied version, when it is one
    bool increment_valid_ = false;
    StoredDocument pending_patch_;  // the single report made while one is in flight
    bool pending_patch_valid_ = false;
    bool local_in_step_ = false;  // local == what is acknowledged once the in-flight lands
    char* merge_ = nullptr;       // scratch for merge results
    char* message_ = nullptr;     // scratch for outgoing state messages (kMaxStateMessage)
    char* parse_ = nullptr;       // the client parses state documents into this
    bool state_dirty_ = false;    // data_ differs from what the record holds
    bool state_failed_ = false;   // the last save failed (reported once)
    TimeMs state_save_retry_at_ = 0;
    bool applied_unsent_ = false;  // "applied" for data_.desired_version not queued yet
    bool in_flight_sent_ = false;  // the report in flight went out on this connection
    bool resend_armed_ = false;    // "unavailable": resend the in-flight at resend_at_
    TimeMs resend_at_ = 0;
    bool state_kick_ = false;  // work waits that no descriptor will wake service() for
    bool answer_pending_ = false;
    ReportAnswer answer_;
    char answer_reason_[net::v1::kMaxReasonLength + 1] = {};
    DeviceStateView state_view_;

    DurableLinkCounters counters_;
    char error_[160] = {};
    char recovery_problem_[160] = {};
};

}  // namespace tether

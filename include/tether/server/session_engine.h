// SPDX-License-Identifier: MIT
// tether::server::SessionEngine: the seam between tether-server's network side
// (listeners, connections, the admin interface) and the place a session's
// durable state lives. Two engines implement it:
//
//   - the file engine (port/posix/server/file_engine.h): record logs under a
//     data directory, one process; the embedded default;
//   - the Redis engine (include/tether/server/redis_engine.h): Redis 7 streams
//     and hashes shared by any number of tether-server instances.
//
// The seam is asynchronous because a shared store answers over a network:
// every decision (a hello's answer, an uplink seq becoming durable, a downlink
// message arriving, another instance taking a session over) reaches the server
// through EngineEvents, from inside service() or flush(), never from inside the
// call that caused it. What the protocol decides is the same for both engines
// (docs/PROTOCOL.md sections 3-5); tests/unit/test_session_engine_contract.cpp
// runs one list of cases against each.
//
// Not thread-safe: the server's loop owns the engine and drives it as a
// Pollable (its descriptors are those of its store connections, if any).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tether/pollable.h"
#include "tether/status.h"
#include "tether/time.h"

namespace tether::server {

/// Highest seq either direction may use (JSON numbers stay exact below 2^53).
inline constexpr std::uint64_t kMaxSeq = (std::uint64_t{1} << 53) - 1;
inline constexpr std::size_t kSessionIdLength = 36;
inline constexpr std::size_t kMaxDeviceLength = 128;
inline constexpr std::size_t kMaxGapReasonLength = 64;

/// A range of uplink seqs the server will never receive.
struct GapRecord {
    std::uint64_t first = 0;
    std::uint64_t last = 0;
    std::string reason;  ///< "unreported", "not_in_outbox", or the client's reason (may be empty)
};

inline constexpr const char* kReasonUnreported = "unreported";
inline constexpr const char* kReasonNotInOutbox = "not_in_outbox";
inline constexpr const char* kReasonExpired = "expired";

/// The hello fields an engine needs (net::v1::Hello, already validated), and
/// who sent it.
struct HelloRequest {
    std::string_view session;   ///< canonical UUID text, 36 chars
    std::uint32_t version = 0;  ///< >= 1
    std::string_view device;
    std::uint64_t last_downlink = 0;
    std::uint64_t oldest_uplink = 0;
    std::uint64_t next_uplink = 0;
    /// The user of the bearer token that opened the connection ("" for a token
    /// without one). A session belongs to the user whose hello created it.
    std::string_view user;
};

enum class HelloDecision : std::uint8_t {
    /// Version equal to or higher than the highest seen: recorded. The caller
    /// closes any OTHER live connection of this session with 4009, then sends
    /// welcome, the downlink gap (if any) and the replay.
    kAccepted,
    /// Version lower than the highest seen: the caller closes THIS connection
    /// with 4009. Nothing was recorded.
    kSuperseded,
    /// The session belongs to another user: the caller closes THIS connection
    /// with 4003. Nothing was recorded.
    kForbidden,
};

struct HelloResult {
    HelloDecision decision = HelloDecision::kAccepted;
    /// welcome.resumed: the session existed before this hello.
    bool resumed = false;
    /// welcome.last_uplink: next_expected - 1 after the hello's hole (if any)
    /// was recorded as a "not_in_outbox" gap. Durable when the answer arrives.
    std::uint64_t last_uplink = 0;
    /// True when the hello revealed a hole that was recorded as a gap.
    bool recorded_hole = false;
    /// When true, send `downlink_gap` (reason "expired") before the replay:
    /// last_downlink + 1 is no longer held.
    bool has_downlink_gap = false;
    GapRecord downlink_gap;
    /// Replay starts with the first held message whose seq is greater than
    /// this (see SessionEngine::downlink_next()).
    std::uint64_t replay_after = 0;
};

enum class [[nodiscard]] UplinkResult : std::uint8_t{
    kStored,                    ///< seq == next_expected: appended; next_expected += 1
    kDuplicate,                 ///< seq < next_expected: dropped and counted
    kStoredAfterUnreportedGap,  ///< seq > next_expected: [next_expected, seq-1] recorded
                                ///< as gap "unreported", then stored
    /// Handed to a store that decides later (the Redis engine): one of the
    /// three above happens, or the session fails (EngineEvents::on_session_failed).
    kQueued,
    kUnknownSession,   ///< no hello was accepted for this session
    kInvalidArgument,  ///< seq 0, or seq above kMaxSeq
    kTooLarge,         ///< payload above the engine's max payload; nothing recorded
    kIoError,  ///< the session's store failed: nothing recorded; the connection is closed 1011
};
const char* to_string(UplinkResult result);

enum class [[nodiscard]] GapResult : std::uint8_t{
    kRecorded,  ///< first <= next_expected <= last + 1: [next_expected, last] recorded
    /// first > next_expected: [next_expected, first - 1] recorded as "unreported",
    /// then [first, last] with the given reason.
    kRecordedAfterUnreportedGap,
    kIgnored,          ///< last < next_expected: entirely below, nothing changes
    kQueued,           ///< handed to a store that decides later (as UplinkResult::kQueued)
    kUnknownSession,   ///< no hello was accepted for this session
    kInvalidArgument,  ///< first 0, last < first, last above kMaxSeq, reason > 64 bytes
    kIoError,          ///< as UplinkResult::kIoError
};
const char* to_string(GapResult result);

/// One held downlink message, for replay and live sending.
struct DownlinkMessage {
    std::uint64_t seq = 0;
    std::vector<std::uint8_t> payload;
};

/// Optional facts about an uplink DATA that a backend needs besides its bytes.
struct UplinkMeta {
    /// How long the message waited on the device before this send (device's
    /// monotonic clock, PROTOCOL.md 3.6); valid only when has_age.
    bool has_age = false;
    std::uint32_t age_ms = 0;
    /// The server's wall-clock receive time (ms since the Unix epoch; 0: unknown).
    std::uint64_t received_unix_ms = 0;
};

/// Ground truth of one session as this engine knows it, for tests and the
/// admin interface (every field maps to one JSON member of the same name).
struct SessionStats {
    std::string session;
    std::string device;
    std::string owner;                        ///< the user the session belongs to (see has_owner)
    bool has_owner = false;                   ///< false: not recorded yet (an old session)
    bool failed = false;                      ///< file engine: refuses changes until its next hello
    bool files_open = false;                  ///< file engine: its logs hold descriptors now
    std::uint32_t version = 0;                ///< highest version seen
    std::uint64_t received = 0;               ///< distinct uplink messages stored
    std::uint64_t duplicates = 0;             ///< uplink DATA dropped as duplicates
    std::uint64_t highest_seq = 0;            ///< highest uplink seq stored (0: none)
    std::uint64_t next_expected = 1;          ///< every uplink seq below is stored or a gap
    std::uint64_t acknowledgeable = 0;        ///< next_expected - 1 as last made durable
    std::uint64_t gap_count = 0;              ///< uplink gaps recorded
    std::uint64_t missing_seqs = 0;           ///< seqs covered by those gaps
    std::uint64_t unreported_gaps = 0;        ///< gaps with reason "unreported"
    std::vector<GapRecord> gaps;              ///< the first gaps listed, in seq order
    std::uint64_t downlink_last_seq = 0;      ///< highest downlink seq assigned (0: none)
    std::uint64_t downlink_acked = 0;         ///< highest downlink seq the client acked
    std::uint64_t downlink_held = 0;          ///< messages in the replay buffer
    std::uint64_t downlink_oldest_held = 0;   ///< 0 when none is held
    std::uint64_t downlink_file_records = 0;  ///< file engine: records in downlink.log
    std::uint64_t desired_version = 0;        ///< device state: the desired document's version
    std::uint64_t desired_applied = 0;        ///< ... the highest version the device applied
    std::uint64_t reported_version = 0;       ///< ... the reported document's version
};

// --- Device state (docs/PROTOCOL.md section 9) -------------------------------

/// Desired increments held per session; an older one is answered with a snapshot.
inline constexpr std::size_t kDesiredHistory = 64;

/// One desired message to send: an increment (its merge patch, from
/// version - 1 to version) or a snapshot (the whole document at version).
/// `document` is compact JSON (net/json_document.h).
struct DesiredChange {
    std::uint64_t version = 0;
    bool snapshot = false;
    std::string document;
};

/// A session's documents as stored (compact JSON; "{}" before the first change).
struct StateDocuments {
    std::uint64_t desired_version = 0;  ///< 0: no desired document yet
    std::string desired = "{}";
    std::uint64_t desired_applied = 0;  ///< the highest version the device said it applied
    std::uint64_t reported_version = 0;
    std::string reported = "{}";
    std::string report_id;  ///< the id of the last report applied ("" before any)
};

/// A device's report (section 9.3), already parsed: `document` is compact.
struct ReportRequest {
    std::string_view session;
    std::string_view id;  ///< 16 lowercase hex digits
    std::uint64_t base = 0;
    bool whole = false;  ///< true: replaces the document; false: a merge patch
    std::string_view document;
};

enum class ReportOutcome : std::uint8_t {
    kApplied,      ///< base matched: the document is now at `version`
    kRepeated,     ///< the id of the last applied report: nothing changed, `version` is its result
    kStale,        ///< base is not the current version: refused; `version`, `document` are current
    kTooLarge,     ///< the result would exceed kMaxStateDocument: refused
    kUnavailable,  ///< the store failed: refused, the device may resend
};

struct ReportResult {
    ReportOutcome outcome = ReportOutcome::kApplied;
    std::uint64_t version = 0;
    std::string document;  ///< kStale: the current reported document
};

/// The desired messages a device that has applied `applied` must get, given
/// the current version and document and the increments still held (sorted
/// by version, each a patch from version - 1): section 9.2's rule, shared by
/// every engine. Empty when there is nothing newer (or no document at all).
/// Increments go when the device has applied some version (applied > 0),
/// every one from applied + 1 is held, and together they take fewer bytes on
/// the wire (each desired message in its WebSocket frame) than the snapshot;
/// otherwise the snapshot goes alone.
std::vector<DesiredChange> desired_sync(std::uint64_t applied, std::uint64_t current_version,
                                        const std::string& current_document,
                                        const std::vector<DesiredChange>& increments);

/// Totals over what this engine knows (the file engine: every session; the
/// Redis engine: this instance's own traffic, the ground truth is in Redis).
struct EngineStats {
    std::uint64_t sessions = 0;
    std::uint64_t received = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t gap_count = 0;
    std::uint64_t missing_seqs = 0;
    std::uint64_t downlink_pushed = 0;
    bool failed = false;             ///< the store refuses changes (file engine: a write failed)
    bool ready = true;               ///< the store can take hellos now (Redis engine: connected)
    std::uint64_t store_errors = 0;  ///< failed store operations since start
    // File engine: sessions that failed (each refuses changes until its next
    // hello), how often one failed, logs open now, and reopens of closed logs.
    std::uint64_t failed_sessions = 0;
    std::uint64_t session_failures = 0;
    std::uint64_t open_sessions = 0;
    std::uint64_t reopens = 0;
};

/// What the engine tells the server. Called only from SessionEngine::service()
/// and SessionEngine::flush(), never re-entrantly from the call that caused it.
class EngineEvents {
  public:
    virtual ~EngineEvents() = default;
    /// The answer to hello(..., ticket). status kOk: see result.decision;
    /// kInvalidArgument: a bad hello (close 4002); anything else: the store
    /// failed (close 1011).
    virtual void on_hello(std::uint64_t ticket, Status status, const HelloResult& result) = 0;
    /// Every uplink seq of `session` up to `last_uplink` is durable at the
    /// configured level: send ACK last_uplink on its live connection.
    virtual void on_acknowledgeable(std::string_view session, std::uint64_t last_uplink) = 0;
    /// New downlink messages of `session` are held: its live connection pumps.
    virtual void on_downlink_ready(std::string_view session) = 0;
    /// A hello with `version` was accepted for `session` elsewhere (another
    /// instance, or a version fence refused this instance's write): a local live
    /// connection of it with a lower version closes with 4009.
    virtual void on_superseded(std::string_view session, std::uint32_t version) = 0;
    /// The store refused a change for `session` (I/O error, lost store
    /// connection): its live connection closes with 1011, so the device resends
    /// whatever was not acknowledged.
    virtual void on_session_failed(std::string_view session, Status status) = 0;
    /// The answer to push_downlink(..., ticket): kOk with the assigned seq,
    /// kNotFound (unknown session), kTooLarge, or a store failure.
    virtual void on_pushed(std::uint64_t ticket, Status status, std::uint64_t seq) = 0;
    /// A store operation failed (`what`: "sync", "connect", ...): for the log.
    /// An engine reports an episode once, not every retry.
    virtual void on_store_error(const char* what, Status status, const char* detail) {
        (void)what;
        (void)status;
        (void)detail;
    }

    // --- Device state (section 9). Defaults do nothing, so a server without
    // state support compiles against an engine that has it.

    /// The desired document of `session` reached `version` (set here or on
    /// another instance): its live connection asks desired_since().
    virtual void on_desired_changed(std::string_view session, std::uint64_t version) {
        (void)session;
        (void)version;
    }
    /// The answer to desired_since(..., ticket): kOk with the messages to send
    /// (possibly none), kNotFound, or a store failure.
    virtual void on_desired_since(std::uint64_t ticket, Status status,
                                  const std::vector<DesiredChange>& changes) {
        (void)ticket;
        (void)status;
        (void)changes;
    }
    /// The answer to set_desired(..., ticket): kOk with the new version;
    /// kNotFound; kInvalidArgument (the patch is not a valid object);
    /// kTooLarge (the result would exceed kMaxStateDocument); kConflict (an
    /// expected version was given and the document is at another: `version`
    /// is the current one); or a store failure.
    virtual void on_desired_set(std::uint64_t ticket, Status status, std::uint64_t version) {
        (void)ticket;
        (void)status;
        (void)version;
    }
    /// The answer to report(..., ticket): kOk with the outcome, or a store
    /// failure (then result.outcome is kUnavailable).
    virtual void on_reported(std::uint64_t ticket, Status status, const ReportResult& result) {
        (void)ticket;
        (void)status;
        (void)result;
    }
    /// The answer to read_state(..., ticket): kOk, kNotFound, or a store failure.
    virtual void on_state_read(std::uint64_t ticket, Status status,
                               const StateDocuments& documents) {
        (void)ticket;
        (void)status;
        (void)documents;
    }
};

class SessionEngine : public Pollable {
  public:
    ~SessionEngine() override = default;

    /// Where answers go; set once before the first call.
    virtual void set_events(EngineEvents* events) = 0;

    /// Opens the store (file engine: loads the directory; Redis engine: starts
    /// connecting, ready() turns true later). kOk, or why it cannot start.
    virtual Status open(TimeMs now) = 0;

    /// True while hellos can be answered (the server answers upgrades with 503
    /// while false).
    virtual bool ready() const = 0;

    /// Asks for a hello's answer (PROTOCOL.md 3.5, 4.2, 5); it arrives through
    /// on_hello(ticket). kOk (asked), kInvalidArgument (session not a canonical
    /// UUID, version 0, device empty or longer than 128 bytes: no answer
    /// follows), kUnavailable (not ready: no answer follows).
    virtual Status hello(const HelloRequest& request, std::uint64_t ticket) = 0;

    /// One uplink DATA of a session whose hello was accepted on this instance.
    virtual UplinkResult uplink_data(std::string_view session, std::uint64_t seq,
                                     const std::uint8_t* payload, std::size_t size,
                                     const UplinkMeta& meta) = 0;

    /// One uplink gap message (PROTOCOL.md 3.4).
    virtual GapResult uplink_gap(std::string_view session, std::uint64_t first, std::uint64_t last,
                                 std::string_view reason) = 0;

    /// Makes every change since the last flush durable at the configured level;
    /// on_acknowledgeable follows (from here for the file engine, from a later
    /// service() for the Redis engine).
    virtual void flush(TimeMs now) = 0;

    /// The client acknowledged downlink seqs up to `seq` (PROTOCOL.md 4.4).
    /// kOk (also for an old ack), kNotFound (unknown session), kInvalidArgument
    /// (seq beyond the last assigned seq), kIoError.
    virtual Status downlink_acked(std::string_view session, std::uint64_t seq) = 0;

    /// Appends a downlink message to the session's replay buffer; the seq comes
    /// through on_pushed(ticket). kOk (asked), kTooLarge, kUnavailable.
    virtual Status push_downlink(std::string_view session, const std::uint8_t* payload,
                                 std::size_t size, std::uint64_t ticket) = 0;

    /// The first held downlink message with seq > `after`, or null (none held
    /// yet, or the session is not served here). Valid until the next non-const
    /// call.
    virtual const DownlinkMessage* downlink_next(std::string_view session,
                                                 std::uint64_t after) const = 0;

    /// A connection of `session` went online here (the file engine keeps its
    /// logs open while it is live).
    virtual void claim(std::string_view session) { (void)session; }

    /// The last live connection of `session` on this instance is gone: the
    /// engine may forget what it cached for it.
    virtual void release(std::string_view session) = 0;

    // --- Device state (section 9). Every answer comes through EngineEvents,
    // from a later service() or flush(), never from inside the call.

    /// The desired messages for a device of `session` that has applied
    /// `applied` (see desired_sync()): answered by on_desired_since(ticket).
    /// kOk (asked), kUnavailable (not ready: no answer follows).
    virtual Status desired_since(std::string_view session, std::uint64_t applied,
                                 std::uint64_t ticket) = 0;

    /// A backend's change: merges `patch` (any JSON object text, validated
    /// here) into the desired document, as the next version, kept among the
    /// last kDesiredHistory increments; with `has_expected`, only when the
    /// document is at `expected` now. on_desired_changed follows for every
    /// instance serving the session. Answered by on_desired_set(ticket).
    /// kOk (asked), kUnavailable.
    virtual Status set_desired(std::string_view session, std::string_view patch, bool has_expected,
                               std::uint64_t expected, std::uint64_t ticket) = 0;

    /// The device applied desired up to `version` (an "applied" message).
    /// Recorded when higher than what was recorded; no answer. kOk,
    /// kNotFound, kInvalidArgument (beyond the current version), kIoError.
    virtual Status desired_applied(std::string_view session, std::uint64_t version) = 0;

    /// A device's report: answered by on_reported(ticket). kOk (asked),
    /// kUnavailable.
    virtual Status report(const ReportRequest& request, std::uint64_t ticket) = 0;

    /// Both documents of `session`: answered by on_state_read(ticket). kOk
    /// (asked), kUnavailable.
    virtual Status read_state(std::string_view session, std::uint64_t ticket) = 0;

    /// Ground truth as this engine knows it. False when the session is unknown
    /// here.
    virtual bool session_stats(std::string_view session, SessionStats* out) const = 0;
    virtual EngineStats stats() const = 0;
    /// Every session this engine knows, sorted.
    virtual std::vector<std::string> sessions() const = 0;

    /// Before exit: waits for nothing, but pushes every pending change out
    /// (the file engine syncs; the Redis engine sends what is queued).
    virtual void close() = 0;
};

/// True when `text` is a UUID in text form: 36 chars, 8-4-4-4-12 hex digits
/// separated by '-'. Engines compare session ids case-insensitively and name
/// them in lowercase.
bool is_canonical_uuid(std::string_view text);

/// Writes the lowercase form of a canonical UUID into `out` (37 bytes with the
/// terminator). False when `text` is not canonical.
bool session_key(std::string_view text, char out[kSessionIdLength + 1]);

}  // namespace tether::server

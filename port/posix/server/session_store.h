// SPDX-License-Identifier: MIT
// tether::server::SessionStore: the durable per-session state of the
// tether.v1 reference server (docs/PROTOCOL.md sections 3-5). It takes
// already-decoded protocol values (net::v1::Hello fields, DATA seqs, gap
// ranges) and decides what the protocol says: store or drop a DATA, record
// gaps, answer a hello, number and replay downlink messages. It owns no
// sockets and no timers; the network side calls it and sends what it returns.
//
// On-disk layout (every integer little-endian; see record_log.h for framing):
//
//   <directory>/sessions/<session-uuid>/
//     uplink.log    append-only; one record per stored uplink DATA:
//                   key = seq, body = payload. Ground truth for the uplink.
//     gaps.log      append-only; one record per recorded uplink gap:
//                   key = first, body = last (u64) + reason (0..64 bytes).
//     downlink.log  the replay buffer: key = seq, body = payload. Appended by
//                   push_downlink; rewritten without the trimmed records
//                   (temp file + fsync + rename + directory fsync) once the
//                   dead records outnumber the live ones.
//     meta          one record, replaced atomically (temp + fsync + rename):
//                   highest version, device id, next downlink seq, acked
//                   downlink seq, duplicates dropped. A cache: when it is
//                   missing or damaged, what the logs prove wins.
//     owner         one record (key = format 1, body = the user, 0..512
//                   bytes), written once (temp + fsync + rename + directory
//                   fsync) when the session is created, before its first
//                   welcome: the user of the token whose hello created it ("" for
//                   a token without a user). Never a cache: a hello of another
//                   user is refused (HelloDecision::kForbidden). A session
//                   without the file (made before owners were recorded) is
//                   claimed by its next accepted hello; a damaged file refuses
//                   every hello until an operator removes it.
//     state.log     the device state (PROTOCOL.md 9), append-only: key = kind,
//                   1 desired change (version, patch, resulting document),
//                   4 desired applied (version), 5 report applied (version,
//                   id, whole document). Set_desired and report sync it before
//                   they return. Rewritten (temp + fsync + rename) as
//                   2 desired snapshot, 3 held increments, 4 and 5 once it
//                   holds 2 * kDesiredHistory + 64 records.
//
// A record log framing is: key u64, length u32, body, crc32 over
// key+length+body. On open, a tail that is short or fails its CRC (a crash in
// the middle of an append) is truncated away; nothing after it is trusted.
// next_expected is recomputed from uplink.log and gaps.log, never taken from
// meta. A session directory whose uuid is not canonical is ignored.
//
// Durability: appends go to the files at once but are durable only after
// sync(). The caller sends an uplink ACK only after sync() listed the session
// in its acks, and only up to the seq it reported for that session. hello()
// syncs the session itself before it returns, so its answer may be sent at
// once.
//
// Descriptors: a session's four logs are open only while it is in use. At
// most max_open_sessions sessions keep them open; beyond that the store closes
// the least recently used session that has nothing waiting for an fsync (idle
// ones before those with a live connection, see set_live()) and reopens a
// closed session's logs when it is next used. A session whose appends wait for
// an fsync is not closed for the bound, which may thus be exceeded until the
// next sync(). When an open fails for want of descriptors (EMFILE, ENFILE),
// every closable session is closed, or else the least recently used one is
// made durable early and closed, and the open is retried. After a restart
// every session starts closed.
//
// Failures are per session: after a failed open, write or fsync of one
// session's files (EMFILE, ENOSPC, EIO, ...) that session refuses changes
// (kIoError from every mutating call on it) instead of guessing what reached
// the disk, and its next hello() reads it afresh from its files, as a restart
// would. Every other session carries on.
//
// Not thread-safe: one thread (the server loop) owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tether/server/session_engine.h"
#include "tether/status.h"

namespace tether::server {

class SessionFiles;  // one session's open files and state (session_store.cpp)

struct StoreOptions {
    /// Downlink messages held for replay per session (PROTOCOL.md 4.1). When a
    /// push would exceed it, the oldest held message is dropped (a client that
    /// never acked it later receives an "expired" gap).
    std::size_t replay_capacity = 1024;
    /// Largest uplink or downlink payload accepted (bytes). Larger records in
    /// a log are treated as damage on open.
    std::size_t max_payload_size = 1u << 20;
    /// Sessions the store accepts; a hello for a new session beyond it fails
    /// with kNoSpace.
    std::size_t max_sessions = 100000;
    /// Gaps kept in memory per session for stats (the first ones recorded);
    /// gap_count and missing_seqs always count every gap.
    std::size_t max_listed_gaps = 4096;
    /// Sessions whose logs (four descriptors each) stay open at once; >= 1.
    std::size_t max_open_sessions = 256;
};

/// What sync() made acknowledgeable: send ACK `last_uplink` on the session's
/// live connection. Listed: every session that received uplink DATA or gap
/// messages since the previous sync (duplicates too: their sender missed an
/// ACK), and whose files synced.
struct AckUpdate {
    std::string session;
    std::uint64_t last_uplink = 0;
};

/// Totals over every session.
struct StoreStats {
    std::uint64_t sessions = 0;
    std::uint64_t received = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t gap_count = 0;
    std::uint64_t missing_seqs = 0;
    std::uint64_t downlink_pushed = 0;   ///< sum of downlink_last_seq
    bool failed = false;                 ///< failed_sessions != 0
    std::uint64_t failed_sessions = 0;   ///< sessions refusing changes until their next hello
    std::uint64_t session_failures = 0;  ///< sessions failed since open (each time)
    std::uint64_t open_sessions = 0;     ///< sessions whose logs are open now
    std::uint64_t reopens = 0;           ///< closed sessions' logs opened again
};

class SessionStore {
  public:
    explicit SessionStore(StoreOptions options = StoreOptions{});
    ~SessionStore();
    SessionStore(const SessionStore&) = delete;
    SessionStore& operator=(const SessionStore&) = delete;

    /// Opens (creating it and sessions/ when missing) `directory` and loads
    /// every session: truncates torn log tails, recomputes next_expected from
    /// the logs, reloads the replay buffer (at most replay_capacity newest
    /// messages above the acked seq). Returns kOk; kInvalidArgument when the
    /// store is already open or options are zero; kIoError when the directory
    /// cannot be created or read, or what was loaded cannot be synced.
    /// A session that cannot be loaded (a read error, a damaged tail that
    /// cannot be truncated, no descriptor left) is not an error either: it
    /// is listed as failed, and its next hello tries again. A damaged meta
    /// file is not an error (its values are rebuilt from logs, version 0 until
    /// the next hello). Every session starts with its logs closed.
    Status open(const std::string& directory);

    /// Answers a hello (PROTOCOL.md 3.5, 4.2, 5). Creates the session when
    /// unknown; reads a failed session afresh from its files first.
    /// Everything it recorded is synced before it returns.
    /// A session is owned by the user of the hello that created it; a hello
    /// of any other user gets kForbidden and changes nothing.
    /// kOk (see result->decision), kInvalidArgument (session not a canonical
    /// UUID, version 0, device empty or longer than 128 bytes, user longer
    /// than 512 bytes),
    /// kNoSpace (new session beyond max_sessions), kIoError.
    Status hello(const HelloRequest& request, HelloResult* result);

    /// One uplink DATA (PROTOCOL.md 3.3). Durable after the next sync().
    UplinkResult uplink_data(std::string_view session, std::uint64_t seq,
                             const std::uint8_t* payload, std::size_t size);

    /// One uplink gap message (PROTOCOL.md 3.4). Durable after the next sync();
    /// the caller syncs and ACKs at once after a gap.
    GapResult uplink_gap(std::string_view session, std::uint64_t first, std::uint64_t last,
                         std::string_view reason);

    /// Makes every append since the last sync durable (fsync of each changed
    /// log, meta rewritten if changed). `acks` (when not null) is replaced by
    /// the sessions whose acknowledgeable seq moved, `failed` (when not null)
    /// by the sessions whose write (uplink records are written in batches, at
    /// the latest here) or fsync failed now, or failed while they were made
    /// durable early to give their descriptors to another session (their
    /// failure was reported by no other call): nothing of those may be
    /// acknowledged, they refuse changes until their next hello, and their
    /// live connections should be closed. kOk when no session failed now,
    /// kIoError when one did (the acks listed are valid either way),
    /// kInvalidArgument when the store is not open.
    Status sync(std::vector<AckUpdate>* acks, std::vector<std::string>* failed = nullptr);

    /// Whether `session` has a live connection: such sessions keep their
    /// files open in preference to idle ones. Unknown sessions are ignored.
    void set_live(std::string_view session, bool live);

    /// Appends a downlink message to the session's replay buffer and assigns
    /// its seq (1, 2, ...), durable after the next sync(). Drops the oldest
    /// held message when the buffer is full. kOk, kNotFound (unknown session),
    /// kTooLarge (above max_payload_size), kIoError.
    Status push_downlink(std::string_view session, const std::uint8_t* payload, std::size_t size,
                         std::uint64_t* seq);

    /// The first held downlink message with seq > `after`, or null when none
    /// is held (unknown session, or nothing newer). The pointer stays valid
    /// until the next non-const call. Replay: start at HelloResult::replay_after
    /// and pass each returned seq back in.
    const DownlinkMessage* downlink_next(std::string_view session, std::uint64_t after) const;

    /// The client acknowledged downlink seqs up to `seq` (PROTOCOL.md 4.4):
    /// those messages leave the replay buffer (the file is compacted once the
    /// dead records outnumber the live ones). kOk (also for an old ack),
    /// kNotFound (unknown session), kInvalidArgument (seq beyond the last
    /// assigned seq), kIoError.
    Status downlink_acked(std::string_view session, std::uint64_t seq);

    // --- Device state (docs/PROTOCOL.md 9), in state.log -------------------

    /// The desired messages for a device of `session` that applied `applied`
    /// (desired_sync() over what is held). kOk, kNotFound, kIoError (failed).
    Status desired_since(std::string_view session, std::uint64_t applied,
                         std::vector<DesiredChange>* out);

    /// Merges `patch` into the desired document as the next version (*version),
    /// synced before it returns. kOk; kNotFound; kInvalidArgument (not one
    /// JSON object, a duplicate key, too deep); kTooLarge (the patch or the
    /// result above kMaxStateDocument); kConflict (has_expected and the
    /// document is at another version, set in *version); kIoError.
    Status set_desired(std::string_view session, std::string_view patch, bool has_expected,
                       std::uint64_t expected, std::uint64_t* version);

    /// Records that the device applied desired up to `version` (kept when
    /// higher; durable after the next sync()). kOk, kNotFound,
    /// kInvalidArgument (above the desired version), kIoError.
    Status desired_applied(std::string_view session, std::uint64_t version);

    /// A device's report (section 9.3), synced before it returns when
    /// applied. kOk with result->outcome kApplied, kRepeated, kStale or
    /// kTooLarge; kNotFound; kInvalidArgument (an id that is not a report id,
    /// a document that is not a valid object); kIoError (outcome kUnavailable).
    Status report(const ReportRequest& request, ReportResult* result);

    /// Both documents as stored. kOk, kNotFound, kIoError (a failed session).
    Status read_state(std::string_view session, StateDocuments* out) const;

    /// Ground truth. False when the session is unknown.
    bool session_stats(std::string_view session, SessionStats* out) const;
    StoreStats stats() const;
    /// Every known session id, sorted.
    std::vector<std::string> sessions() const;
    /// next_expected of a session (1 when unknown).
    std::uint64_t next_expected(std::string_view session) const;

  private:
    SessionFiles* find(std::string_view session) const;
    Status load_session(const std::string& id, std::unique_ptr<SessionFiles>* out);
    Status reload_session(SessionFiles** files);
    Status create_session(const std::string& id, std::string_view user, SessionFiles** out);
    bool ensure_open(SessionFiles* files);
    void close_files(SessionFiles* files);
    bool evict_one(const SessionFiles* keep);
    bool release_descriptors(const SessionFiles* keep);
    void fail(SessionFiles* files);
    void forget(SessionFiles* files);
    bool sync_session(SessionFiles* files);
    bool write_meta(SessionFiles* files);
    bool write_owner(SessionFiles* files, std::string_view user);
    bool append_gap(SessionFiles* files, std::uint64_t first, std::uint64_t last,
                    std::string_view reason);
    bool compact_downlink_if_needed(SessionFiles* files);
    bool append_state(SessionFiles* files, std::uint64_t kind,
                      const std::vector<std::uint8_t>& body, bool sync_now);
    void compact_state(SessionFiles* files);
    bool rewrite_state(SessionFiles* files);
    void mark_dirty(SessionFiles* files);

    StoreOptions options_;
    std::string directory_;
    bool open_ = false;
    std::map<std::string, std::unique_ptr<SessionFiles>, std::less<>> sessions_;
    mutable SessionFiles* last_found_ = nullptr;  // find()'s one-entry cache
    mutable char last_asked_[36] = {};
    std::vector<SessionFiles*> dirty_;   ///< sessions with changes since the last sync
    std::list<SessionFiles*> open_lru_;  ///< sessions with open logs, least recently used first
    std::vector<std::string> failed_elsewhere_;  ///< failed making room for another: for sync()
    std::uint64_t failed_sessions_ = 0;
    std::uint64_t session_failures_ = 0;
    std::uint64_t reopens_ = 0;
};

}  // namespace tether::server

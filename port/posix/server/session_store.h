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
//
// A record log framing is: key u64, length u32, body, crc32 over
// key+length+body. On open, a tail that is short or fails its CRC (a crash in
// the middle of an append) is truncated away; nothing after it is trusted.
// next_expected is recomputed from uplink.log and gaps.log, never taken from
// meta. A session directory whose uuid is not canonical is ignored.
//
// Durability: appends go to the files at once but are durable only after
// sync(). The caller sends an uplink ACK only after sync() returned kOk, and
// only up to the seq sync() reported for that session. hello() syncs the
// session itself before it returns, so its answer may be sent at once.
//
// After a failed write or fsync the store refuses further changes (kIoError
// from every mutating call) instead of guessing what reached the disk; the
// server reopens it (a restart) to recover from what the disk holds.
//
// Not thread-safe: one thread (the server loop) owns it.
#pragma once

#include <cstddef>
#include <cstdint>
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
};

/// What sync() made acknowledgeable: send ACK `last_uplink` on the session's
/// live connection. Listed: every session that received uplink DATA or gap
/// messages since the previous sync (duplicates too: their sender missed an ACK).
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
    std::uint64_t downlink_pushed = 0;  ///< sum of downlink_last_seq
    bool failed = false;                ///< a write failed: the store refuses changes
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
    /// cannot be created or read, or a damaged tail cannot be truncated.
    /// A damaged meta file is not an error (its values are rebuilt from logs,
    /// version 0 until the next hello).
    Status open(const std::string& directory);

    /// Answers a hello (PROTOCOL.md 3.5, 4.2, 5). Creates the session when
    /// unknown. Everything it recorded is synced before it returns.
    /// kOk (see result->decision), kInvalidArgument (session not a canonical
    /// UUID, version 0, device empty or longer than 128 bytes),
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
    /// log, meta rewritten if changed). On kOk, `acks` (when not null) is
    /// replaced by the sessions whose acknowledgeable seq moved. kIoError when
    /// a write (uplink records are written in batches, at the latest here) or
    /// an fsync failed: nothing may be acknowledged, the store refuses changes.
    Status sync(std::vector<AckUpdate>* acks);

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

    /// Ground truth. False when the session is unknown.
    bool session_stats(std::string_view session, SessionStats* out) const;
    StoreStats stats() const;
    /// Every known session id, sorted.
    std::vector<std::string> sessions() const;
    /// next_expected of a session (1 when unknown).
    std::uint64_t next_expected(std::string_view session) const;

  private:
    SessionFiles* find(std::string_view session) const;
    Status load_session(const std::string& id);
    Status create_session(const std::string& id, SessionFiles** out);
    bool sync_session(SessionFiles* files);
    bool write_meta(SessionFiles* files);
    bool append_gap(SessionFiles* files, std::uint64_t first, std::uint64_t last,
                    std::string_view reason);
    bool compact_downlink_if_needed(SessionFiles* files);
    void mark_dirty(SessionFiles* files);

    StoreOptions options_;
    std::string directory_;
    bool open_ = false;
    bool failed_ = false;
    std::map<std::string, std::unique_ptr<SessionFiles>, std::less<>> sessions_;
    mutable SessionFiles* last_found_ = nullptr;  // find()'s one-entry cache
    mutable char last_asked_[36] = {};
    std::vector<SessionFiles*> dirty_;  ///< sessions with changes since the last sync
};

}  // namespace tether::server

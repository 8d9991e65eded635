// SPDX-License-Identifier: MIT
#include "session_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>

#include "record_log.h"
#include "tether/net/json_document.h"
#include "tether/net/state_messages.h"

namespace tether::server {
namespace {

constexpr std::size_t kUuidLength = kSessionIdLength;
constexpr std::size_t kMaxDevice = kMaxDeviceLength;
constexpr std::size_t kMaxReason = kMaxGapReasonLength;
// Meta record: key = format, body = version u32, next downlink u64, acked u64,
// duplicates u64, device length u32, device.
constexpr std::uint64_t kMetaFormat = 1;
constexpr std::size_t kMetaFixedBytes = 4 + 8 + 8 + 8 + 4;
constexpr std::size_t kMaxMetaBody = kMetaFixedBytes + kMaxDevice;
// Owner record: key = format, body = the user.
constexpr std::uint64_t kOwnerFormat = 1;
constexpr std::size_t kMaxUser = 512;
// Gap record: key = first, body = last u64 + reason.
constexpr std::size_t kMaxGapBody = 8 + kMaxReason;
// downlink.log is rewritten once its dead records (acked or evicted) outnumber
// the held ones and are at least this many, so a small buffer is not
// rewritten on every ACK. The file thus holds at most 2 * held + this.
constexpr std::uint64_t kMinDeadToCompact = 32;

constexpr const char* kUplinkFile = "/uplink.log";
// Uplink records are written in batches of this size (and at every sync,
// which the ACK waits for): one pwrite per batch, not per message.
constexpr std::size_t kUplinkWriteBuffer = 16 * 1024;
constexpr const char* kGapsFile = "/gaps.log";
constexpr const char* kDownlinkFile = "/downlink.log";
constexpr const char* kMetaFile = "/meta";
constexpr const char* kOwnerFile = "/owner";
constexpr const char* kStateFile = "/state.log";

// state.log records: key = kind, body as listed (every document compact JSON).
constexpr std::uint64_t kStateDesired = 1;   // version u64, patch length u32, patch, document
constexpr std::uint64_t kStateSnapshot = 2;  // version u64, document (compaction)
constexpr std::uint64_t kStateHistory = 3;   // version u64, patch (compaction: a held increment)
constexpr std::uint64_t kStateApplied = 4;   // version u64
constexpr std::uint64_t kStateReported = 5;  // version u64, report id (16 bytes), document
constexpr std::size_t kMaxStateBody = 8 + 4 + 2 * net::v1::kMaxStateDocument;
// state.log is rewritten (snapshot, held increments, applied, reported) once
// it holds this many records: at most this many plus one, each below
// kMaxStateBody, are ever read back.
constexpr std::uint64_t kStateCompactRecords = 2 * kDesiredHistory + 64;

bool sync_filesystem(const std::string& directory) {
    const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    const bool ok = ::syncfs(fd) == 0;
    ::close(fd);
    return ok;
}

bool make_directory(const std::string& path) {
    return ::mkdir(path.c_str(), 0755) == 0 || errno == EEXIST;
}

// Right after a failed call: the process (or the system) has no descriptor
// left, which closing idle sessions can cure.
constexpr int kDescriptorRounds = 4;  // sessions closed and the open retried, at most
bool out_of_descriptors() {
    return errno == EMFILE || errno == ENFILE;
}

// A log the store closed is synced already (only clean sessions are
// closed): nothing to do for it.
bool sync_log(RecordLog& log) {
    return (!log.is_open() && !log.dirty()) || log.sync() == Status::kOk;
}

}  // namespace

// One session: its open logs and the state derived from them.
// Invariants: every uplink seq below next_expected is in uplink.log or inside
// exactly one gap of gaps.log; held is a run of consecutive downlink seqs
// ending at next_downlink - 1 (or empty), all above acked.
class SessionFiles {
  public:
    std::string id;
    std::string directory;
    RecordLog uplink;
    RecordLog gaps;
    RecordLog downlink;
    RecordLog state;

    // Device state (docs/PROTOCOL.md 9): the documents and the last
    // kDesiredHistory desired increments, oldest first, ending at
    // documents.desired_version (or empty).
    StateDocuments documents;
    std::deque<DesiredChange> history;

    std::uint32_t version = 0;
    std::string device;
    // The owner file: absent (has_owner false: the next hello claims it),
    // read (owner), or damaged (refuses every hello).
    bool has_owner = false;
    bool owner_damaged = false;
    std::string owner;

    std::uint64_t next_expected = 1;
    std::uint64_t synced_next_expected = 1;
    std::uint64_t received = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t highest_seq = 0;
    std::uint64_t gap_count = 0;
    std::uint64_t missing_seqs = 0;
    std::uint64_t unreported_gaps = 0;
    std::vector<GapRecord> gap_list;

    std::deque<DownlinkMessage> held;
    std::uint64_t next_downlink = 1;
    std::uint64_t acked = 0;

    bool meta_dirty = false;
    bool in_dirty_list = false;
    bool uplink_activity = false;

    // Descriptors: the four logs are open while files_open (and the session
    // is then in the store's open_lru_ at `lru`). A failed session refuses
    // changes and is read afresh by its next hello (one that open() could
    // not read at all is an empty placeholder until then).
    bool files_open = false;
    bool failed = false;
    bool live = false;
    std::list<SessionFiles*>::iterator lru;

    // Nothing waits for an fsync: the logs may be closed. (A session still
    // in the dirty list may be clean: sync() reports its ACK all the same.)
    bool clean() const {
        return !meta_dirty && !uplink.dirty() && !gaps.dirty() && !downlink.dirty() &&
               !state.dirty();
    }

    void close_logs() {
        uplink.close();
        gaps.close();
        downlink.close();
        state.close();
    }

    void mark_logs_durable() {
        uplink.mark_durable();
        gaps.mark_durable();
        downlink.mark_durable();
        state.mark_durable();
    }

    // Opens the closed logs again; on failure every log is closed again and
    // *error_number holds the errno of the failed open.
    Status reopen_logs(int* error_number) {
        RecordLog* logs[] = {&uplink, &gaps, &downlink, &state};
        for (RecordLog* log : logs) {
            const Status status = log->reopen();
            if (status != Status::kOk) {
                *error_number = errno;
                close_logs();
                return status;
            }
        }
        return Status::kOk;
    }

    void count_gap(std::uint64_t first, std::uint64_t last, std::string_view reason,
                   std::size_t max_listed) {
        ++gap_count;
        missing_seqs += last - first + 1;
        if (reason == kReasonUnreported) {
            ++unreported_gaps;
        }
        if (gap_list.size() < max_listed) {
            gap_list.push_back(GapRecord{first, last, std::string(reason)});
        }
    }
};

namespace {

std::string_view text_of(const std::uint8_t* body, std::size_t size) {
    return std::string_view(reinterpret_cast<const char*>(body), size);
}

// A document read back from state.log: a compact object, bounded.
bool plausible_document(std::string_view document) {
    return document.size() >= 2 && document.size() <= net::v1::kMaxStateDocument &&
           document.front() == '{' && document.back() == '}';
}

void remember_increment(SessionFiles* s, std::uint64_t version, std::string_view patch) {
    s->history.push_back(DesiredChange{version, false, std::string(patch)});
    while (s->history.size() > kDesiredHistory) {
        s->history.pop_front();
    }
}

// One state.log record applied to `s` while the log is read. False for a
// record no writer produces (the log ends before it).
bool replay_state(SessionFiles* s, std::uint64_t kind, const std::uint8_t* body, std::size_t size) {
    if (size < 8) {
        return false;
    }
    const std::uint64_t version = get_u64(body);
    StateDocuments& d = s->documents;
    switch (kind) {
        case kStateDesired: {
            if (size < 12 || version != d.desired_version + 1 || version > kMaxSeq) {
                return false;
            }
            const std::size_t patch_size = get_u32(body + 8);
            if (patch_size > size - 12) {
                return false;
            }
            const std::string_view patch = text_of(body + 12, patch_size);
            const std::string_view document =
                text_of(body + 12 + patch_size, size - 12 - patch_size);
            if (!plausible_document(patch) || !plausible_document(document)) {
                return false;
            }
            d.desired_version = version;
            d.desired.assign(document.data(), document.size());
            remember_increment(s, version, patch);
            return true;
        }
        case kStateSnapshot: {
            const std::string_view document = text_of(body + 8, size - 8);
            if (version == 0 || version > kMaxSeq || version < d.desired_version ||
                !plausible_document(document)) {
                return false;
            }
            d.desired_version = version;
            d.desired.assign(document.data(), document.size());
            return true;
        }
        case kStateHistory: {
            const std::string_view patch = text_of(body + 8, size - 8);
            if (version == 0 || version > d.desired_version || !plausible_document(patch) ||
                (!s->history.empty() && version != s->history.back().version + 1)) {
                return false;
            }
            remember_increment(s, version, patch);
            return true;
        }
        case kStateApplied:
            if (size != 8 || version > kMaxSeq) {
                return false;
            }
            d.desired_applied = std::max(d.desired_applied, version);
            return true;
        case kStateReported: {
            constexpr std::size_t kIdAt = 8;
            constexpr std::size_t kDocumentAt = kIdAt + net::v1::kReportIdLength;
            if (size < kDocumentAt || version == 0 || version > kMaxSeq) {
                return false;
            }
            const std::string_view document = text_of(body + kDocumentAt, size - kDocumentAt);
            if (!plausible_document(document)) {
                return false;
            }
            d.reported_version = version;
            d.reported.assign(document.data(), document.size());
            d.report_id.assign(reinterpret_cast<const char*>(body + kIdAt),
                               net::v1::kReportIdLength);
            return true;
        }
        default:
            return false;
    }
}

void put_text(std::vector<std::uint8_t>* out, std::string_view text) {
    out->insert(out->end(), text.begin(), text.end());
}

}  // namespace

SessionStore::SessionStore(StoreOptions options) : options_(options) {}

SessionStore::~SessionStore() = default;

SessionFiles* SessionStore::find(std::string_view session) const {
    // Every uplink message names its session: the last one found is
    // remembered by the exact text asked for (forget() drops it when a
    // session's object is replaced).
    if (last_found_ != nullptr && session == std::string_view(last_asked_, kUuidLength)) {
        return last_found_;
    }
    char key[kUuidLength + 1];
    if (!session_key(session, key)) {
        return nullptr;
    }
    const auto found = sessions_.find(std::string_view(key, kUuidLength));
    if (found == sessions_.end()) {
        return nullptr;
    }
    std::memcpy(last_asked_, session.data(), kUuidLength);
    last_found_ = found->second.get();
    return last_found_;
}

void SessionStore::mark_dirty(SessionFiles* files) {
    if (!files->in_dirty_list) {
        files->in_dirty_list = true;
        dirty_.push_back(files);
    }
}

void SessionStore::forget(SessionFiles* files) {
    if (files->in_dirty_list) {
        dirty_.erase(std::find(dirty_.begin(), dirty_.end(), files));
        files->in_dirty_list = false;
    }
    if (last_found_ == files) {
        last_found_ = nullptr;
    }
}

void SessionStore::close_files(SessionFiles* files) {
    if (files->files_open) {
        files->close_logs();
        open_lru_.erase(files->lru);
        files->files_open = false;
    }
}

bool SessionStore::evict_one(const SessionFiles* keep) {
    // Least recently used first; sessions without a live connection before
    // those with one. Sessions waiting for a sync stay open.
    for (const bool live_too : {false, true}) {
        for (SessionFiles* files : open_lru_) {
            if (files != keep && (live_too || !files->live) && files->clean()) {
                close_files(files);
                return true;
            }
        }
    }
    return false;
}

void SessionStore::fail(SessionFiles* files) {
    // What reached the disk is unknown: refuse changes until the next hello
    // reads the files afresh. The descriptors go back at once.
    if (!files->failed) {
        files->failed = true;
        ++failed_sessions_;
        ++session_failures_;
    }
    close_files(files);
}

bool SessionStore::release_descriptors(const SessionFiles* keep) {
    bool released = false;
    while (evict_one(keep)) {
        released = true;
    }
    if (released) {
        return true;
    }
    // Every open session waits for an fsync: make the least recently used one
    // durable now (earlier than it had to be, never later) and close it.
    // The logs are synced before they are closed and the meta written after,
    // when its temporary file can have a descriptor.
    for (const bool live_too : {false, true}) {
        for (SessionFiles* candidate : open_lru_) {
            if (candidate == keep || (!live_too && candidate->live)) {
                continue;
            }
            const bool synced = sync_log(candidate->gaps) && sync_log(candidate->uplink) &&
                                sync_log(candidate->downlink) && sync_log(candidate->state);
            close_files(candidate);
            if (!synced || (candidate->meta_dirty && !write_meta(candidate))) {
                fail(candidate);
                failed_elsewhere_.push_back(candidate->id);
            }
            return true;
        }
    }
    return false;
}

bool SessionStore::ensure_open(SessionFiles* files) {
    if (files->failed) {
        return false;
    }
    if (files->files_open) {
        open_lru_.splice(open_lru_.end(), open_lru_, files->lru);
        return true;
    }
    while (open_lru_.size() >= options_.max_open_sessions && evict_one(files)) {
    }
    int error_number = 0;
    Status status = files->reopen_logs(&error_number);
    for (int round = 0;
         round < kDescriptorRounds && status == Status::kIoError &&
         (error_number == EMFILE || error_number == ENFILE) && release_descriptors(files);
         ++round) {
        // Out of descriptors (sockets use them too): other sessions gave theirs back.
        status = files->reopen_logs(&error_number);
    }
    if (status != Status::kOk) {
        fail(files);
        return false;
    }
    files->files_open = true;
    files->lru = open_lru_.insert(open_lru_.end(), files);
    ++reopens_;
    return true;
}

Status SessionStore::open(const std::string& directory) {
    if (open_ || options_.replay_capacity == 0 || options_.max_payload_size == 0 ||
        options_.max_sessions == 0 || options_.max_payload_size > 0xFFFFFFF0u) {
        return Status::kInvalidArgument;
    }
    const std::string sessions_directory = directory + "/sessions";
    if (!make_directory(directory) || !make_directory(sessions_directory)) {
        return Status::kIoError;
    }
    DIR* listing = ::opendir(sessions_directory.c_str());
    if (listing == nullptr) {
        return Status::kIoError;
    }
    std::vector<std::string> ids;
    while (const dirent* entry = ::readdir(listing)) {
        char key[kUuidLength + 1];
        // Only lowercase names are ours; anything else was not made by the store.
        if (session_key(entry->d_name, key) && std::string_view(key) == entry->d_name) {
            ids.emplace_back(entry->d_name);
        }
    }
    ::closedir(listing);
    std::sort(ids.begin(), ids.end());
    directory_ = directory;
    for (const std::string& id : ids) {
        // One session at a time holds descriptors: each is closed once read.
        std::unique_ptr<SessionFiles> files;
        if (load_session(id, &files) == Status::kOk) {
            files->close_logs();
        } else {
            // Unreadable now (EIO, EMFILE, a tail that cannot be cut): a
            // placeholder that refuses changes; its next hello tries again.
            files = std::make_unique<SessionFiles>();
            files->id = id;
            files->directory = directory_ + "/sessions/" + id;
            files->failed = true;
            ++failed_sessions_;
            ++session_failures_;
        }
        SessionFiles* loaded = files.get();
        sessions_.emplace(id, std::move(files));
        if (loaded->meta_dirty) {
            mark_dirty(loaded);
        }
    }
    // What was loaded is what welcomes and ACKs will promise. A killed
    // process leaves its last appends in the page cache only: make them (and
    // any repair) durable before promising anything.
    if (!sync_filesystem(sessions_directory)) {
        sessions_.clear();
        last_found_ = nullptr;
        dirty_.clear();
        failed_sessions_ = 0;
        session_failures_ = 0;
        return Status::kIoError;
    }
    for (auto& entry : sessions_) {
        entry.second->mark_logs_durable();
    }
    open_ = true;
    return Status::kOk;
}

Status SessionStore::reload_session(SessionFiles** files) {
    SessionFiles* old = *files;
    const std::string id = old->id;
    close_files(old);
    forget(old);
    while (open_lru_.size() >= options_.max_open_sessions && evict_one(nullptr)) {
    }
    std::unique_ptr<SessionFiles> fresh;
    Status loaded = load_session(id, &fresh);
    for (int round = 0; round < kDescriptorRounds && loaded != Status::kOk &&
                        out_of_descriptors() && release_descriptors(nullptr);
         ++round) {
        loaded = load_session(id, &fresh);
    }
    if (loaded != Status::kOk) {
        return Status::kIoError;  // still failed; the next hello tries again
    }
    --failed_sessions_;
    SessionFiles* s = fresh.get();
    s->live = old->live;
    sessions_.find(id)->second = std::move(fresh);  // `old` is gone from here on
    s->files_open = true;
    s->lru = open_lru_.insert(open_lru_.end(), s);
    if (s->meta_dirty) {
        mark_dirty(s);
    }
    *files = s;
    return Status::kOk;
}

Status SessionStore::load_session(const std::string& id, std::unique_ptr<SessionFiles>* out) {
    auto files = std::make_unique<SessionFiles>();
    SessionFiles& s = *files;
    s.id = id;
    s.directory = directory_ + "/sessions/" + id;

    // meta: a cache of what the logs cannot tell. The last valid record wins.
    bool have_meta = false;
    std::uint64_t meta_next_downlink = 1;
    const Status meta_read =
        RecordLog::read(s.directory + kMetaFile, kMaxMetaBody,
                        [&](std::uint64_t key, const std::uint8_t* body, std::size_t size) {
                            if (key != kMetaFormat || size < kMetaFixedBytes ||
                                get_u32(body + 28) != size - kMetaFixedBytes) {
                                return false;
                            }
                            s.version = get_u32(body);
                            meta_next_downlink = get_u64(body + 4);
                            s.acked = get_u64(body + 12);
                            s.duplicates = get_u64(body + 20);
                            s.device.assign(reinterpret_cast<const char*>(body + kMetaFixedBytes),
                                            size - kMetaFixedBytes);
                            have_meta = true;
                            return true;
                        });
    if (meta_read == Status::kIoError) {
        return Status::kIoError;
    }

    // owner: written once; one valid record, or the file counts as damaged.
    bool owner_record = false;
    const Status owner_read =
        RecordLog::read(s.directory + kOwnerFile, kMaxUser,
                        [&](std::uint64_t key, const std::uint8_t* body, std::size_t size) {
                            if (key != kOwnerFormat || owner_record) {
                                return false;
                            }
                            s.owner.assign(reinterpret_cast<const char*>(body), size);
                            owner_record = true;
                            return true;
                        });
    if (owner_read == Status::kIoError) {
        return Status::kIoError;
    }
    s.has_owner = owner_read == Status::kOk;
    s.owner_damaged = s.has_owner && !owner_record;

    // gaps.log: gap ranges, valid ones only; reordered by first below.
    std::vector<GapRecord> gaps;
    Status opened = s.gaps.open(
        s.directory + kGapsFile, kMaxGapBody,
        [&](std::uint64_t first, const std::uint8_t* body, std::size_t size) {
            if (size < 8) {
                return false;
            }
            const std::uint64_t last = get_u64(body);
            if (first == 0 || last < first || last > kMaxSeq) {
                return false;
            }
            gaps.push_back(GapRecord{
                first, last, std::string(reinterpret_cast<const char*>(body + 8), size - 8)});
            return true;
        });
    if (opened != Status::kOk) {
        return opened;
    }
    std::sort(gaps.begin(), gaps.end(),
              [](const GapRecord& a, const GapRecord& b) { return a.first < b.first; });

    // uplink.log, walked together with the gaps: any range below the final
    // next_expected that is neither stored nor a gap (the gap record and the
    // data behind it reached the disk in a different order before a crash)
    // becomes an "unreported" gap, so the invariant holds again.
    std::vector<GapRecord> holes;
    std::uint64_t expect = 1;
    std::size_t gap_index = 0;
    const auto skip_gaps = [&]() {
        while (gap_index < gaps.size() && gaps[gap_index].first <= expect) {
            expect = std::max(expect, gaps[gap_index].last + 1);
            ++gap_index;
        }
    };
    opened =
        s.uplink.open(s.directory + kUplinkFile, options_.max_payload_size,
                      [&](std::uint64_t seq, const std::uint8_t*, std::size_t) {
                          if (seq == 0 || seq > kMaxSeq || seq <= s.highest_seq) {
                              return false;
                          }
                          skip_gaps();
                          while (seq > expect) {
                              std::uint64_t hole_last = seq - 1;
                              if (gap_index < gaps.size() && gaps[gap_index].first <= hole_last) {
                                  hole_last = gaps[gap_index].first - 1;
                              }
                              holes.push_back(GapRecord{expect, hole_last, kReasonUnreported});
                              expect = hole_last + 1;
                              skip_gaps();
                          }
                          expect = std::max(expect, seq + 1);
                          s.highest_seq = seq;
                          ++s.received;
                          return true;
                      });
    if (opened != Status::kOk) {
        return opened;
    }
    s.uplink.set_write_buffer(kUplinkWriteBuffer);
    while (gap_index < gaps.size()) {
        if (gaps[gap_index].first > expect) {
            holes.push_back(GapRecord{expect, gaps[gap_index].first - 1, kReasonUnreported});
        }
        expect = std::max(expect, gaps[gap_index].last + 1);
        ++gap_index;
    }
    s.next_expected = expect;
    for (const GapRecord& hole : holes) {
        std::vector<std::uint8_t> body;
        put_u64(&body, hole.last);
        body.insert(body.end(), hole.reason.begin(), hole.reason.end());
        if (s.gaps.append(hole.first, body.data(), body.size()) != Status::kOk) {
            return Status::kIoError;
        }
    }
    gaps.insert(gaps.end(), holes.begin(), holes.end());
    std::sort(gaps.begin(), gaps.end(),
              [](const GapRecord& a, const GapRecord& b) { return a.first < b.first; });
    for (const GapRecord& gap : gaps) {
        s.count_gap(gap.first, gap.last, gap.reason, options_.max_listed_gaps);
    }

    // downlink.log: consecutive seqs; keep the newest unacked ones.
    std::uint64_t last_downlink = 0;
    opened = s.downlink.open(s.directory + kDownlinkFile, options_.max_payload_size,
                             [&](std::uint64_t seq, const std::uint8_t* body, std::size_t size) {
                                 if (seq == 0 || seq > kMaxSeq || seq <= last_downlink ||
                                     (last_downlink != 0 && seq != last_downlink + 1)) {
                                     return false;
                                 }
                                 last_downlink = seq;
                                 if (seq > s.acked) {
                                     s.held.push_back(DownlinkMessage{
                                         seq, std::vector<std::uint8_t>(body, body + size)});
                                     if (s.held.size() > options_.replay_capacity) {
                                         s.held.pop_front();
                                     }
                                 }
                                 return true;
                             });
    if (opened != Status::kOk) {
        return opened;
    }
    // state.log: replayed record by record; nothing in it needs JSON work.
    opened = s.state.open(s.directory + kStateFile, kMaxStateBody,
                          [&s](std::uint64_t kind, const std::uint8_t* body, std::size_t size) {
                              return replay_state(&s, kind, body, size);
                          });
    if (opened != Status::kOk) {
        return opened;
    }

    s.next_downlink = std::max(meta_next_downlink, last_downlink + 1);
    s.acked = std::min(s.acked, s.next_downlink - 1);

    s.meta_dirty = !have_meta || meta_next_downlink != s.next_downlink;
    s.synced_next_expected = s.next_expected;
    *out = std::move(files);
    return Status::kOk;
}

Status SessionStore::create_session(const std::string& id, std::string_view user,
                                    SessionFiles** out) {
    while (open_lru_.size() >= options_.max_open_sessions && evict_one(nullptr)) {
    }
    const auto accept_none = [](std::uint64_t, const std::uint8_t*, std::size_t) { return false; };
    for (int attempt = 0;; ++attempt) {
        auto files = std::make_unique<SessionFiles>();
        files->id = id;
        files->directory = directory_ + "/sessions/" + id;
        // Logs left by an earlier failed creation hold nothing we promised: the
        // session did not exist for any client, so they are emptied.
        if (!make_directory(files->directory) ||
            files->uplink.open(files->directory + kUplinkFile, options_.max_payload_size,
                               accept_none) != Status::kOk ||
            files->gaps.open(files->directory + kGapsFile, kMaxGapBody, accept_none) !=
                Status::kOk ||
            files->downlink.open(files->directory + kDownlinkFile, options_.max_payload_size,
                                 accept_none) != Status::kOk ||
            files->state.open(files->directory + kStateFile, kMaxStateBody, accept_none) !=
                Status::kOk ||
            !write_meta(files.get()) || !write_owner(files.get(), user) ||
            !sync_directory(directory_ + "/sessions")) {
            if (attempt < kDescriptorRounds && out_of_descriptors() &&
                release_descriptors(nullptr)) {
                continue;  // other sessions gave their descriptors back
            }
            return Status::kIoError;
        }
        files->uplink.set_write_buffer(kUplinkWriteBuffer);
        SessionFiles* created = files.get();
        sessions_.emplace(id, std::move(files));
        created->files_open = true;
        created->lru = open_lru_.insert(open_lru_.end(), created);
        *out = created;
        return Status::kOk;
    }
}

bool SessionStore::write_meta(SessionFiles* files) {
    std::vector<std::uint8_t> body;
    put_u32(&body, files->version);
    put_u64(&body, files->next_downlink);
    put_u64(&body, files->acked);
    put_u64(&body, files->duplicates);
    put_u32(&body, static_cast<std::uint32_t>(files->device.size()));
    body.insert(body.end(), files->device.begin(), files->device.end());
    if (RecordLog::replace(files->directory + kMetaFile,
                           {RecordView{kMetaFormat, body.data(), body.size()}}) != Status::kOk) {
        return false;
    }
    files->meta_dirty = false;
    return true;
}

bool SessionStore::write_owner(SessionFiles* files, std::string_view user) {
    // replace() fsyncs the file and the session directory before it returns:
    // the owner is durable before any welcome names the session.
    if (RecordLog::replace(
            files->directory + kOwnerFile,
            {RecordView{kOwnerFormat, reinterpret_cast<const std::uint8_t*>(user.data()),
                        user.size()}}) != Status::kOk) {
        return false;
    }
    files->owner.assign(user.data(), user.size());
    files->has_owner = true;
    files->owner_damaged = false;
    return true;
}

bool SessionStore::sync_session(SessionFiles* files) {
    return sync_log(files->gaps) && sync_log(files->uplink) && sync_log(files->downlink) &&
           sync_log(files->state) && (!files->meta_dirty || write_meta(files));
}

bool SessionStore::append_gap(SessionFiles* files, std::uint64_t first, std::uint64_t last,
                              std::string_view reason) {
    std::vector<std::uint8_t> body;
    put_u64(&body, last);
    body.insert(body.end(), reason.begin(), reason.end());
    if (files->gaps.append(first, body.data(), body.size()) != Status::kOk) {
        return false;
    }
    files->count_gap(first, last, reason, options_.max_listed_gaps);
    files->next_expected = last + 1;
    mark_dirty(files);
    return true;
}

Status SessionStore::hello(const HelloRequest& request, HelloResult* result) {
    char key[kUuidLength + 1];
    if (!open_ || result == nullptr || !session_key(request.session, key) || request.version == 0 ||
        request.device.empty() || request.device.size() > kMaxDevice ||
        request.user.size() > kMaxUser || request.last_downlink > kMaxSeq ||
        request.oldest_uplink > kMaxSeq) {
        return Status::kInvalidArgument;
    }
    *result = HelloResult{};
    SessionFiles* s = find(key);
    if (s != nullptr && s->failed && reload_session(&s) != Status::kOk) {
        return Status::kIoError;
    }
    result->resumed = s != nullptr;
    if (s == nullptr) {
        if (sessions_.size() >= options_.max_sessions) {
            return Status::kNoSpace;
        }
        if (create_session(key, request.user, &s) != Status::kOk) {
            return Status::kIoError;
        }
    } else if (s->owner_damaged || (s->has_owner && s->owner != request.user)) {
        *result = HelloResult{};
        result->decision = HelloDecision::kForbidden;
        return Status::kOk;
    }
    if (request.version < s->version) {
        result->decision = HelloDecision::kSuperseded;
        result->last_uplink = s->synced_next_expected - 1;
        result->replay_after = request.last_downlink;
        return Status::kOk;
    }
    if (!ensure_open(s)) {
        return Status::kIoError;
    }
    if (!s->has_owner && !write_owner(s, request.user)) {
        // A session from before owners were recorded: this hello claims it.
        fail(s);
        return Status::kIoError;
    }
    if (request.version != s->version || request.device != s->device) {
        s->version = request.version;
        s->device.assign(request.device.data(), request.device.size());
        s->meta_dirty = true;
    }
    if (request.oldest_uplink > s->next_expected) {
        if (!append_gap(s, s->next_expected, request.oldest_uplink - 1, kReasonNotInOutbox)) {
            fail(s);
            return Status::kIoError;
        }
        result->recorded_hole = true;
    }
    if (request.last_downlink >= s->next_downlink) {
        // The client has seen seqs this store does not remember (its meta was
        // lost): number new messages above them so none is taken for a duplicate.
        s->next_downlink = request.last_downlink + 1;
        s->meta_dirty = true;
    }
    const std::uint64_t oldest_held = s->held.empty() ? s->next_downlink : s->held.front().seq;
    result->replay_after = request.last_downlink;
    if (request.last_downlink + 1 < oldest_held) {
        result->has_downlink_gap = true;
        result->downlink_gap =
            GapRecord{request.last_downlink + 1, oldest_held - 1, kReasonExpired};
        result->replay_after = oldest_held - 1;
    }
    if (!sync_session(s)) {
        fail(s);
        return Status::kIoError;
    }
    s->synced_next_expected = s->next_expected;
    result->last_uplink = s->next_expected - 1;
    return Status::kOk;
}

UplinkResult SessionStore::uplink_data(std::string_view session, std::uint64_t seq,
                                       const std::uint8_t* payload, std::size_t size) {
    if (seq == 0 || seq > kMaxSeq || (payload == nullptr && size != 0)) {
        return UplinkResult::kInvalidArgument;
    }
    SessionFiles* s = find(session);
    if (s == nullptr) {
        return UplinkResult::kUnknownSession;
    }
    if (size > options_.max_payload_size) {
        return UplinkResult::kTooLarge;
    }
    if (s->failed) {
        return UplinkResult::kIoError;
    }
    s->uplink_activity = true;
    mark_dirty(s);
    if (seq < s->next_expected) {
        ++s->duplicates;
        s->meta_dirty = true;
        return UplinkResult::kDuplicate;
    }
    if (!ensure_open(s)) {
        return UplinkResult::kIoError;
    }
    const bool after_gap = seq > s->next_expected;
    if (after_gap && !append_gap(s, s->next_expected, seq - 1, kReasonUnreported)) {
        fail(s);
        return UplinkResult::kIoError;
    }
    if (s->uplink.append(seq, payload, size) != Status::kOk) {
        fail(s);
        return UplinkResult::kIoError;
    }
    s->next_expected = seq + 1;
    s->highest_seq = seq;
    ++s->received;
    return after_gap ? UplinkResult::kStoredAfterUnreportedGap : UplinkResult::kStored;
}

GapResult SessionStore::uplink_gap(std::string_view session, std::uint64_t first,
                                   std::uint64_t last, std::string_view reason) {
    if (first == 0 || last < first || last > kMaxSeq || reason.size() > kMaxReason) {
        return GapResult::kInvalidArgument;
    }
    SessionFiles* s = find(session);
    if (s == nullptr) {
        return GapResult::kUnknownSession;
    }
    if (s->failed) {
        return GapResult::kIoError;
    }
    s->uplink_activity = true;
    mark_dirty(s);
    if (last < s->next_expected) {
        return GapResult::kIgnored;
    }
    if (!ensure_open(s)) {
        return GapResult::kIoError;
    }
    const bool after_gap = first > s->next_expected;
    if (after_gap && !append_gap(s, s->next_expected, first - 1, kReasonUnreported)) {
        fail(s);
        return GapResult::kIoError;
    }
    if (!append_gap(s, s->next_expected, last, reason)) {
        fail(s);
        return GapResult::kIoError;
    }
    return after_gap ? GapResult::kRecordedAfterUnreportedGap : GapResult::kRecorded;
}

Status SessionStore::sync(std::vector<AckUpdate>* acks, std::vector<std::string>* failed) {
    if (acks != nullptr) {
        acks->clear();
    }
    if (failed != nullptr) {
        failed->clear();
    }
    if (!open_) {
        return Status::kInvalidArgument;
    }
    bool any_failed = !failed_elsewhere_.empty();
    if (failed != nullptr) {
        failed->swap(failed_elsewhere_);
    }
    failed_elsewhere_.clear();
    for (SessionFiles* s : dirty_) {
        s->in_dirty_list = false;
        if (s->failed) {
            continue;  // its failure was reported by the call that met it
        }
        if (!sync_session(s)) {
            fail(s);
            any_failed = true;
            if (failed != nullptr) {
                failed->push_back(s->id);
            }
            continue;
        }
        s->synced_next_expected = s->next_expected;
        if (s->uplink_activity && acks != nullptr) {
            acks->push_back(AckUpdate{s->id, s->next_expected - 1});
        }
        s->uplink_activity = false;
    }
    dirty_.clear();
    // Sessions that waited for this sync may give their descriptors back now.
    while (open_lru_.size() > options_.max_open_sessions && evict_one(nullptr)) {
    }
    return any_failed ? Status::kIoError : Status::kOk;
}

void SessionStore::set_live(std::string_view session, bool live) {
    SessionFiles* s = find(session);
    if (s != nullptr) {
        s->live = live;
    }
}

Status SessionStore::push_downlink(std::string_view session, const std::uint8_t* payload,
                                   std::size_t size, std::uint64_t* seq) {
    if (seq == nullptr || (payload == nullptr && size != 0)) {
        return Status::kInvalidArgument;
    }
    SessionFiles* s = find(session);
    if (s == nullptr) {
        return Status::kNotFound;
    }
    if (size > options_.max_payload_size) {
        return Status::kTooLarge;
    }
    if (s->failed || s->next_downlink > kMaxSeq || !ensure_open(s)) {
        return Status::kIoError;
    }
    if (s->downlink.append(s->next_downlink, payload, size) != Status::kOk) {
        fail(s);
        return Status::kIoError;
    }
    *seq = s->next_downlink;
    s->held.push_back(
        DownlinkMessage{s->next_downlink, std::vector<std::uint8_t>(payload, payload + size)});
    ++s->next_downlink;
    if (s->held.size() > options_.replay_capacity) {
        s->held.pop_front();
    }
    mark_dirty(s);
    if (!compact_downlink_if_needed(s)) {
        fail(s);
        return Status::kIoError;
    }
    return Status::kOk;
}

bool SessionStore::compact_downlink_if_needed(SessionFiles* files) {
    const std::uint64_t held = files->held.size();
    const std::uint64_t dead = files->downlink.records() - held;
    if (dead <= held || dead < kMinDeadToCompact) {
        return true;
    }
    // meta first: once the old records are gone, only meta knows the next
    // downlink seq (and the acked one).
    std::vector<RecordView> records;
    records.reserve(files->held.size());
    for (const DownlinkMessage& message : files->held) {
        records.push_back(RecordView{message.seq, message.payload.data(), message.payload.size()});
    }
    const std::string path = files->downlink.path();
    if (!write_meta(files) || RecordLog::replace(path, records) != Status::kOk) {
        return false;
    }
    files->downlink.close();
    std::uint64_t ignored = 0;
    return files->downlink.open(
               path, options_.max_payload_size,
               [](std::uint64_t, const std::uint8_t*, std::size_t) { return true; },
               &ignored) == Status::kOk;
}

const DownlinkMessage* SessionStore::downlink_next(std::string_view session,
                                                   std::uint64_t after) const {
    const SessionFiles* s = find(session);
    if (s == nullptr || s->held.empty() || after >= s->held.back().seq) {
        return nullptr;
    }
    const std::uint64_t oldest = s->held.front().seq;
    const std::uint64_t index = after < oldest ? 0 : after + 1 - oldest;
    return &s->held[static_cast<std::size_t>(index)];
}

Status SessionStore::downlink_acked(std::string_view session, std::uint64_t seq) {
    SessionFiles* s = find(session);
    if (s == nullptr) {
        return Status::kNotFound;
    }
    if (seq >= s->next_downlink) {
        return Status::kInvalidArgument;
    }
    if (s->failed) {
        return Status::kIoError;
    }
    if (seq <= s->acked) {
        return Status::kOk;
    }
    if (!ensure_open(s)) {
        return Status::kIoError;
    }
    s->acked = seq;
    while (!s->held.empty() && s->held.front().seq <= seq) {
        s->held.pop_front();
    }
    s->meta_dirty = true;
    mark_dirty(s);
    if (!compact_downlink_if_needed(s)) {
        fail(s);
        return Status::kIoError;
    }
    return Status::kOk;
}

bool SessionStore::session_stats(std::string_view session, SessionStats* out) const {
    const SessionFiles* s = find(session);
    if (s == nullptr || out == nullptr) {
        return false;
    }
    *out = SessionStats{};
    out->session = s->id;
    out->device = s->device;
    out->owner = s->owner;
    out->has_owner = s->has_owner && !s->owner_damaged;
    out->failed = s->failed;
    out->files_open = s->files_open;
    out->version = s->version;
    out->received = s->received;
    out->duplicates = s->duplicates;
    out->highest_seq = s->highest_seq;
    out->next_expected = s->next_expected;
    out->acknowledgeable = s->synced_next_expected - 1;
    out->gap_count = s->gap_count;
    out->missing_seqs = s->missing_seqs;
    out->unreported_gaps = s->unreported_gaps;
    out->gaps = s->gap_list;
    out->downlink_last_seq = s->next_downlink - 1;
    out->downlink_acked = s->acked;
    out->downlink_held = s->held.size();
    out->downlink_oldest_held = s->held.empty() ? 0 : s->held.front().seq;
    out->downlink_file_records = s->downlink.records();
    out->desired_version = s->documents.desired_version;
    out->desired_applied = s->documents.desired_applied;
    out->reported_version = s->documents.reported_version;
    return true;
}

StoreStats SessionStore::stats() const {
    StoreStats totals;
    totals.sessions = sessions_.size();
    for (const auto& entry : sessions_) {
        const SessionFiles& s = *entry.second;
        totals.received += s.received;
        totals.duplicates += s.duplicates;
        totals.gap_count += s.gap_count;
        totals.missing_seqs += s.missing_seqs;
        totals.downlink_pushed += s.next_downlink - 1;
    }
    totals.failed_sessions = failed_sessions_;
    totals.failed = failed_sessions_ != 0;
    totals.session_failures = session_failures_;
    totals.open_sessions = open_lru_.size();
    totals.reopens = reopens_;
    return totals;
}

std::vector<std::string> SessionStore::sessions() const {
    std::vector<std::string> ids;
    ids.reserve(sessions_.size());
    for (const auto& entry : sessions_) {
        ids.push_back(entry.first);
    }
    return ids;
}

std::uint64_t SessionStore::next_expected(std::string_view session) const {
    const SessionFiles* s = find(session);
    return s == nullptr ? 1 : s->next_expected;
}

// --- Device state -----------------------------------------------------------

bool SessionStore::append_state(SessionFiles* files, std::uint64_t kind,
                                const std::vector<std::uint8_t>& body, bool sync_now) {
    if (files->state.append(kind, body.data(), body.size()) != Status::kOk ||
        (sync_now && files->state.sync() != Status::kOk)) {
        fail(files);
        return false;
    }
    if (!sync_now) {
        mark_dirty(files);  // durable at the next sync()
    }
    return true;
}

void SessionStore::compact_state(SessionFiles* files) {
    if (files->state.records() < kStateCompactRecords) {
        return;
    }
    if (!rewrite_state(files)) {
        // The change that made the log this long is durable already (in the
        // old file, or in the new one): its answer stands. What the log holds
        // now is unknown, so the session fails and sync() reports it.
        fail(files);
        failed_elsewhere_.push_back(files->id);
    }
}

bool SessionStore::rewrite_state(SessionFiles* files) {
    // Everything the log says, in as few records as replay needs: the
    // desired snapshot, then the increments still held, then the rest.
    const StateDocuments& d = files->documents;
    std::vector<std::vector<std::uint8_t>> bodies;
    std::vector<RecordView> records;
    std::vector<std::uint64_t> kinds;
    if (d.desired_version != 0) {
        std::vector<std::uint8_t> body;
        put_u64(&body, d.desired_version);
        put_text(&body, d.desired);
        bodies.push_back(std::move(body));
        kinds.push_back(kStateSnapshot);
    }
    for (const DesiredChange& change : files->history) {
        std::vector<std::uint8_t> body;
        put_u64(&body, change.version);
        put_text(&body, change.document);
        bodies.push_back(std::move(body));
        kinds.push_back(kStateHistory);
    }
    if (d.desired_applied != 0) {
        std::vector<std::uint8_t> body;
        put_u64(&body, d.desired_applied);
        bodies.push_back(std::move(body));
        kinds.push_back(kStateApplied);
    }
    if (d.reported_version != 0) {
        std::vector<std::uint8_t> body;
        put_u64(&body, d.reported_version);
        put_text(&body, d.report_id);
        put_text(&body, d.reported);
        bodies.push_back(std::move(body));
        kinds.push_back(kStateReported);
    }
    for (std::size_t i = 0; i < bodies.size(); ++i) {
        records.push_back(RecordView{kinds[i], bodies[i].data(), bodies[i].size()});
    }
    // Whatever waited for a sync is in the new file, which replace() syncs.
    const std::string path = files->state.path();
    if (RecordLog::replace(path, records) != Status::kOk) {
        return false;
    }
    files->state.close();
    return files->state.open(
               path, kMaxStateBody,
               [](std::uint64_t, const std::uint8_t*, std::size_t) { return true; }) == Status::kOk;
}

Status SessionStore::desired_since(std::string_view session, std::uint64_t applied,
                                   std::vector<DesiredChange>* out) {
    if (out == nullptr) {
        return Status::kInvalidArgument;
    }
    out->clear();
    const SessionFiles* s = find(session);
    if (s == nullptr) {
        return Status::kNotFound;
    }
    if (s->failed) {
        return Status::kIoError;
    }
    const std::vector<DesiredChange> held(s->history.begin(), s->history.end());
    *out = desired_sync(applied, s->documents.desired_version, s->documents.desired, held);
    return Status::kOk;
}

Status SessionStore::set_desired(std::string_view session, std::string_view patch,
                                 bool has_expected, std::uint64_t expected,
                                 std::uint64_t* version) {
    namespace v1 = net::v1;
    if (version == nullptr) {
        return Status::kInvalidArgument;
    }
    *version = 0;
    SessionFiles* s = find(session);
    if (s == nullptr) {
        return Status::kNotFound;
    }
    if (s->failed) {
        return Status::kIoError;
    }
    char compact[v1::kMaxStateDocument];
    std::size_t compact_size = 0;
    v1::V1Status parsed =
        v1::compact_object(patch.data(), patch.size(), compact, sizeof compact, &compact_size);
    if (parsed == v1::V1Status::kBufferTooSmall) {
        return Status::kTooLarge;
    }
    if (parsed != v1::V1Status::kOk) {
        return Status::kInvalidArgument;
    }
    StateDocuments& d = s->documents;
    if (has_expected && expected != d.desired_version) {
        *version = d.desired_version;
        return Status::kConflict;
    }
    if (d.desired_version >= kMaxSeq) {
        return Status::kInvalidArgument;
    }
    char merged[v1::kMaxStateDocument];
    std::size_t merged_size = 0;
    parsed = v1::apply_merge_patch(d.desired.data(), d.desired.size(), compact, compact_size,
                                   merged, sizeof merged, &merged_size);
    if (parsed == v1::V1Status::kBufferTooSmall) {
        return Status::kTooLarge;
    }
    if (parsed != v1::V1Status::kOk) {
        return Status::kInvalidArgument;
    }
    if (!ensure_open(s)) {
        return Status::kIoError;
    }
    const std::uint64_t next = d.desired_version + 1;
    std::vector<std::uint8_t> body;
    put_u64(&body, next);
    put_u32(&body, static_cast<std::uint32_t>(compact_size));
    put_text(&body, std::string_view(compact, compact_size));
    put_text(&body, std::string_view(merged, merged_size));
    // Durable before anyone is told: the answer and the device's copy follow.
    if (!append_state(s, kStateDesired, body, true)) {
        return Status::kIoError;
    }
    d.desired_version = next;
    d.desired.assign(merged, merged_size);
    remember_increment(s, next, std::string_view(compact, compact_size));
    compact_state(s);
    *version = next;
    return Status::kOk;
}

Status SessionStore::desired_applied(std::string_view session, std::uint64_t version) {
    SessionFiles* s = find(session);
    if (s == nullptr) {
        return Status::kNotFound;
    }
    if (version > s->documents.desired_version) {
        return Status::kInvalidArgument;
    }
    if (s->failed) {
        return Status::kIoError;
    }
    if (version <= s->documents.desired_applied) {
        return Status::kOk;
    }
    if (!ensure_open(s)) {
        return Status::kIoError;
    }
    std::vector<std::uint8_t> body;
    put_u64(&body, version);
    // No answer waits for it: durable with the next sync(), like uplink.
    if (!append_state(s, kStateApplied, body, false)) {
        return Status::kIoError;
    }
    s->documents.desired_applied = version;
    compact_state(s);
    return Status::kOk;
}

Status SessionStore::report(const ReportRequest& request, ReportResult* result) {
    namespace v1 = net::v1;
    if (result == nullptr) {
        return Status::kInvalidArgument;
    }
    *result = ReportResult{};
    result->outcome = ReportOutcome::kUnavailable;
    SessionFiles* s = find(request.session);
    if (s == nullptr) {
        return Status::kNotFound;
    }
    if (!v1::is_report_id(request.id.data(), request.id.size()) || request.base > kMaxSeq) {
        return Status::kInvalidArgument;
    }
    if (s->failed) {
        return Status::kIoError;
    }
    StateDocuments& d = s->documents;
    result->version = d.reported_version;
    if (d.reported_version != 0 && request.id == d.report_id) {
        result->outcome = ReportOutcome::kRepeated;  // its answer was lost: the same again
        return Status::kOk;
    }
    if (request.base != d.reported_version) {
        result->outcome = ReportOutcome::kStale;
        result->document = d.reported;
        return Status::kOk;
    }
    char document[v1::kMaxStateDocument];
    std::size_t document_size = 0;
    const v1::V1Status made =
        request.whole ? v1::compact_object(request.document.data(), request.document.size(),
                                           document, sizeof document, &document_size)
                      : v1::apply_merge_patch(d.reported.data(), d.reported.size(),
                                              request.document.data(), request.document.size(),
                                              document, sizeof document, &document_size);
    if (made == v1::V1Status::kBufferTooSmall) {
        result->outcome = ReportOutcome::kTooLarge;
        return Status::kOk;
    }
    if (made != v1::V1Status::kOk) {
        return Status::kInvalidArgument;
    }
    if (!ensure_open(s)) {
        return Status::kIoError;
    }
    const std::uint64_t next = request.base + 1;
    std::vector<std::uint8_t> body;
    put_u64(&body, next);
    put_text(&body, request.id);
    put_text(&body, std::string_view(document, document_size));
    if (!append_state(s, kStateReported, body, true)) {
        return Status::kIoError;
    }
    d.reported_version = next;
    d.reported.assign(document, document_size);
    d.report_id.assign(request.id.data(), request.id.size());
    compact_state(s);
    result->outcome = ReportOutcome::kApplied;
    result->version = next;
    return Status::kOk;
}

Status SessionStore::read_state(std::string_view session, StateDocuments* out) const {
    const SessionFiles* s = find(session);
    if (s == nullptr || out == nullptr) {
        return Status::kNotFound;
    }
    if (s->failed) {
        return Status::kIoError;  // its next hello reads its files afresh
    }
    *out = s->documents;
    return Status::kOk;
}

}  // namespace tether::server

// SPDX-License-Identifier: MIT
#include "crash_points/crash_points.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <random>
#include <utility>

#include "fakes/fake_storage.h"
#include "record_log.h"
#include "support/syscall_faults.h"
#include "tether/spool.h"
#include "tether/state_record.h"

namespace tether::test::crash {
namespace {

using Bytes = std::vector<std::uint8_t>;
using Pattern = FakeStorage::CrashPattern;

// --- Shared machinery ---------------------------------------------------------

// A Storage that tells its owner about every write and sync that succeeded.
class Observed final : public Storage {
  public:
    using Hook = std::function<void(bool synced)>;
    Observed(FakeStorage& inner, Hook hook) : inner_(inner), hook_(std::move(hook)) {}

    Status read(std::uint32_t offset, std::uint8_t* out, std::size_t size,
                std::size_t* read_size) override {
        return inner_.read(offset, out, size, read_size);
    }
    Status write(std::uint32_t offset, const std::uint8_t* data, std::size_t size) override {
        const Status status = inner_.write(offset, data, size);
        if (status == Status::kOk) {
            hook_(false);
        }
        return status;
    }
    Status sync() override {
        const Status status = inner_.sync();
        if (status == Status::kOk) {
            hook_(true);
        }
        return status;
    }

  private:
    FakeStorage& inner_;
    Hook hook_;
};

// One way the power goes out at a crash point.
struct Cut {
    Pattern pattern;
    std::string name;
    bool nest;  // its recovery gets crash points of its own
};

enum class Breadth : std::uint8_t { kThorough, kBrief };

// Tear lengths around the header fields of all three formats: the spool's
// 20-byte record header and 64-byte slots, the state record's 64-byte slots,
// the record log's 12-byte header and 4-byte CRC.
constexpr std::size_t kTearOffsets[] = {1, 2, 4, 8, 12, 13, 16, 19, 20, 21, 24, 32, 36, 40, 60, 63};

std::vector<Cut> cuts_for(const std::vector<FakeStorage::Write>& writes, Breadth breadth,
                          std::uint32_t seed) {
    std::vector<Cut> cuts;
    const std::size_t count = writes.size();
    if (count == 0) {
        cuts.push_back(Cut{Pattern(), "nothing unsynced", true});
        return cuts;
    }
    const std::string of = " (" + std::to_string(count) + " unsynced writes)";
    Pattern all;
    all.kept.assign(count, true);
    cuts.push_back(Cut{Pattern(), "lose all" + of, true});
    cuts.push_back(Cut{all, "keep all" + of, true});

    const std::size_t length = writes.back().data.size();
    std::vector<std::size_t> offsets;
    if (breadth == Breadth::kThorough) {
        offsets.assign(std::begin(kTearOffsets), std::end(kTearOffsets));
        for (const std::size_t back : {21u, 20u, 19u, 4u, 1u}) {
            if (length > back) {
                offsets.push_back(length - back);
            }
        }
        offsets.push_back(length / 2);
    } else {
        offsets = {1, 20, length - 1};
    }
    std::sort(offsets.begin(), offsets.end());
    offsets.erase(std::unique(offsets.begin(), offsets.end()), offsets.end());
    bool nested_tear = false;
    for (const std::size_t landed : offsets) {
        if (landed == 0 || landed >= length) {
            continue;
        }
        Pattern torn = all;
        torn.torn = count - 1;
        torn.torn_bytes = landed;
        const bool nest = !nested_tear && landed >= 20;
        nested_tear = nested_tear || nest;
        cuts.push_back(Cut{torn,
                           "keep all, the last torn at " + std::to_string(landed) + " of " +
                               std::to_string(length) + " bytes" + of,
                           nest});
    }
    if (breadth == Breadth::kBrief) {
        return cuts;
    }
    if (count >= 2) {
        Pattern but_last = all;
        but_last.kept[count - 1] = false;
        cuts.push_back(Cut{but_last, "all but the last" + of, false});
        Pattern only_last;
        only_last.kept.assign(count, false);
        only_last.kept[count - 1] = true;
        cuts.push_back(Cut{only_last, "only the last" + of, false});
        Pattern but_first = all;
        but_first.kept[0] = false;
        cuts.push_back(Cut{but_first, "all but the first" + of, false});
    }
    std::mt19937 random(seed);
    for (int round = 0; round < 4; ++round) {
        Pattern subset;
        subset.kept.resize(count);
        std::string mask;
        std::vector<std::size_t> kept;
        for (std::size_t i = 0; i < count; ++i) {
            subset.kept[i] = (random() & 1u) != 0;
            mask += subset.kept[i] ? '1' : '0';
            if (subset.kept[i]) {
                kept.push_back(i);
            }
        }
        std::string name = "random subset " + mask;
        if (!kept.empty() && (random() & 1u) != 0) {
            subset.torn = kept[random() % kept.size()];
            subset.torn_bytes = random() % writes[subset.torn].data.size();
            name += ", #" + std::to_string(subset.torn) + " torn at " +
                    std::to_string(subset.torn_bytes);
        }
        cuts.push_back(Cut{subset, name + of, round == 0});
    }
    return cuts;
}

std::uint32_t seed_of(std::size_t point) {
    return static_cast<std::uint32_t>(0x9E3779B9u * (point + 1));
}

// --- Spool --------------------------------------------------------------------

constexpr std::size_t kSpoolBuffer = 160;
constexpr std::uint32_t kSpoolMaxBytes = 1408;  // two 640-byte regions
constexpr int kSpoolSteps = 260;
// Recovery into these after the workload's max_bytes: larger, smaller, and
// too small for the live messages (one record per region).
constexpr std::uint32_t kSpoolResizes[] = {2688, 1024, 320};

SpoolConfig spool_config(std::uint32_t max_bytes) {
    SpoolConfig config;
    config.max_bytes = max_bytes;
    config.fsync_interval_ms = 50;
    config.min_compact_bytes = 128;
    return config;
}

// The payload appended with `seq` by run `run` (every recovery starts a new
// run, which may reuse seqs the previous one lost).
std::size_t spool_payload_size(std::uint64_t seq, unsigned run) {
    return run == 1 ? 6 + static_cast<std::size_t>(seq * 7u % 35u)
                    : 40 + static_cast<std::size_t>(seq % 11u);
}

std::uint8_t spool_payload_byte(std::uint64_t seq, unsigned run, std::size_t i) {
    return static_cast<std::uint8_t>(seq * 31u + i * 7u + run * 101u + 1u);
}

Bytes spool_payload(std::uint64_t seq, unsigned run) {
    Bytes bytes(spool_payload_size(seq, run));
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        bytes[i] = spool_payload_byte(seq, run, i);
    }
    return bytes;
}

// What a recovery may and must return at one crash point.
struct SpoolExpect {
    std::vector<std::pair<std::uint64_t, unsigned>> runs{{1, 1}};  // (first seq, run)
    std::vector<std::uint64_t> durable;        // sorted: must come back unless acknowledged
    std::uint64_t highest_floor = 0;           // highest_seq must reach it
    std::uint64_t ack_floor = 0;               // a watermark that was synced
    std::uint64_t ack_ceiling = 0;             // no watermark above it was ever set
    std::uint64_t seq_ceiling = 0;             // no seq above it was ever appended
    std::uint32_t max_bytes = kSpoolMaxBytes;  // what recovery is configured with
    std::uint32_t old_layout = 0;              // the max_bytes written with, if another
    bool must_resize = false;                  // the store is still in old_layout

    unsigned run() const { return runs.back().second; }
    unsigned run_of(std::uint64_t seq) const {
        unsigned run = 1;
        for (const auto& entry : runs) {
            if (entry.first <= seq) {
                run = entry.second;
            }
        }
        return run;
    }
    Bytes payload(std::uint64_t seq) const { return spool_payload(seq, run_of(seq)); }
    bool is_payload(std::uint64_t seq, const std::uint8_t* data, std::size_t size) const {
        const unsigned run = run_of(seq);
        if (size != spool_payload_size(seq, run)) {
            return false;
        }
        for (std::size_t i = 0; i < size; ++i) {
            if (data[i] != spool_payload_byte(seq, run, i)) {
                return false;
            }
        }
        return true;
    }
    void make_durable(const std::vector<std::uint64_t>& seqs) {
        std::vector<std::uint64_t> merged;
        std::set_union(durable.begin(), durable.end(), seqs.begin(), seqs.end(),
                       std::back_inserter(merged));
        durable.swap(merged);
    }
};

// What a recovery replayed; each payload is compared with the one appended
// with its seq as it goes by.
struct Replay {
    explicit Replay(const SpoolExpect& wanted) : expect(&wanted) {}
    const SpoolExpect* expect;
    std::vector<std::uint64_t> seqs;
    std::size_t bytes = 0;         // journal bytes the replayed records take
    std::uint64_t mismatched = 0;  // the first seq with another payload, 0 if none
};

void collect(void* ctx, std::uint64_t seq, const std::uint8_t* data, std::size_t size) {
    auto* replay = static_cast<Replay*>(ctx);
    replay->seqs.push_back(seq);
    replay->bytes += Spool::kRecordOverhead + size;
    if (replay->mismatched == 0 && !replay->expect->is_payload(seq, data, size)) {
        replay->mismatched = seq;
    }
}

std::string seq_text(std::uint64_t seq) {
    return std::to_string(seq);
}

std::uint32_t region_of(std::uint32_t max_bytes) {
    return (max_bytes - static_cast<std::uint32_t>(Spool::kHeaderBlockSize)) / 2;
}

// What a resize may and must report: the layouts, and when messages were left
// out, only the oldest and only as many as the new region could not hold.
std::string resize_problem(const SpoolExpect& expect, const SpoolRecovery& report,
                           const Replay& replay) {
    if (report.resized != (report.recorded_max_bytes != expect.max_bytes) ||
        (report.resized && report.recorded_max_bytes != expect.old_layout) ||
        (expect.must_resize && !report.resized && !report.fresh)) {
        return "resized " + std::string(report.resized ? "yes" : "no") + " with recorded " +
               std::to_string(report.recorded_max_bytes) + ", configured " +
               std::to_string(expect.max_bytes);
    }
    if (report.dropped_last == 0) {
        return report.dropped_first == 0 ? "" : "dropped_first without dropped_last";
    }
    if (!report.resized || report.dropped_first == 0 ||
        report.dropped_first > report.dropped_last || report.acked_through != report.dropped_last ||
        (!replay.seqs.empty() && replay.seqs.front() <= report.dropped_last)) {
        return "dropped " + seq_text(report.dropped_first) + ".." + seq_text(report.dropped_last) +
               " is not the oldest range below what was kept";
    }
    const std::size_t next = Spool::kRecordOverhead + expect.payload(report.dropped_last).size();
    if (replay.bytes + next <= region_of(expect.max_bytes)) {
        return "seq " + seq_text(report.dropped_last) + " was left out but would have fitted";
    }
    return "";
}

// Every invariant a recovery must keep; the first one broken, or "".
std::string spool_problem(const SpoolExpect& expect, Status status, const SpoolRecovery& report,
                          const Replay& replay) {
    if (status != Status::kOk) {
        return std::string("recover() returned ") + to_string(status);
    }
    if (report.fresh && (!expect.durable.empty() || expect.highest_floor > 0)) {
        return "a store with durable messages came back fresh";
    }
    const std::string resize = resize_problem(expect, report, replay);
    if (!resize.empty()) {
        return resize;
    }
    if (report.messages != replay.seqs.size()) {
        return "report.messages " + std::to_string(report.messages) + " but " +
               std::to_string(replay.seqs.size()) + " replayed";
    }
    if (!replay.seqs.empty() &&
        (report.first_seq != replay.seqs.front() || report.last_seq != replay.seqs.back())) {
        return "first_seq/last_seq do not match the replay";
    }
    for (std::size_t i = 0; i < replay.seqs.size(); ++i) {
        const std::uint64_t seq = replay.seqs[i];
        if (i > 0 && seq <= replay.seqs[i - 1]) {
            return "seq " + seq_text(seq) + " replayed after " + seq_text(replay.seqs[i - 1]);
        }
        if (seq <= report.acked_through) {
            return "seq " + seq_text(seq) + " replayed at or below acked_through " +
                   seq_text(report.acked_through);
        }
        if (seq > expect.seq_ceiling) {
            return "seq " + seq_text(seq) + " was never appended (highest " +
                   seq_text(expect.seq_ceiling) + ")";
        }
        if (replay.mismatched == seq) {
            return "seq " + seq_text(seq) + " came back with another payload";
        }
    }
    if (report.acked_through < expect.ack_floor) {
        return "acked_through " + seq_text(report.acked_through) + " below the synced " +
               seq_text(expect.ack_floor);
    }
    if (report.acked_through > expect.ack_ceiling) {
        return "acked_through " + seq_text(report.acked_through) + " above any watermark set (" +
               seq_text(expect.ack_ceiling) + ")";
    }
    if (report.highest_seq < expect.highest_floor) {
        return "highest_seq " + seq_text(report.highest_seq) + " below " +
               seq_text(expect.highest_floor) + ", which was durable or reported";
    }
    if (report.highest_seq > expect.seq_ceiling ||
        (!replay.seqs.empty() && report.highest_seq < replay.seqs.back())) {
        return "highest_seq " + seq_text(report.highest_seq) + " out of range";
    }
    for (const std::uint64_t seq : expect.durable) {
        if (seq > report.acked_through &&
            !std::binary_search(replay.seqs.begin(), replay.seqs.end(), seq)) {
            return "durable seq " + seq_text(seq) + " lost (acked_through " +
                   seq_text(report.acked_through) + ")";
        }
    }
    return "";
}

class SpoolEnumeration {
  public:
    explicit SpoolEnumeration(Tally* tally) : findings_(tally) {}

    void run();

  private:
    void enumerate(const FakeStorage& store, const SpoolExpect& expect, int depth, Breadth breadth,
                   const std::string& where, const std::string& phase);
    void verify(FakeStorage work, const SpoolExpect& expect, int depth, const std::string& where);

    Findings findings_;
    SpoolConfig config_ = spool_config(kSpoolMaxBytes);  // the workload's
    std::size_t points_ = 0;
    std::size_t migrations_dropping_ = 0;
    std::size_t migrations_compacting_first_ = 0;
};

// One crash point: `store` as the power goes out, `expect` what was durable.
void SpoolEnumeration::enumerate(const FakeStorage& store, const SpoolExpect& expect, int depth,
                                 Breadth breadth, const std::string& where,
                                 const std::string& phase) {
    const std::size_t point = points_++;
    if (!phase.empty()) {
        findings_.point(phase);
    }
    for (const Cut& cut : cuts_for(store.unsynced_writes(), breadth, seed_of(point))) {
        FakeStorage image = store;
        image.crash(cut.pattern);
        verify(std::move(image), expect, cut.nest ? depth - 1 : 0, where + ", " + cut.name);
    }
    if (!store.unsynced_writes().empty()) {
        // Killed: the kernel keeps every write, the medium has only the synced ones.
        verify(store, expect, depth - 1, where + ", process killed");
    }
    if (depth < 2) {
        return;
    }
    // Restarted with another max_bytes, after losing or keeping the unsynced
    // writes; the migration's own writes are crash points too. Each point
    // takes one of the six combinations in turn (bounding the run time).
    {
        const bool keep = point / 3 % 2 != 0;
        const std::uint32_t max_bytes = kSpoolResizes[point % 3];
        FakeStorage image = store;
        Pattern pattern;
        pattern.kept.assign(keep ? store.unsynced_writes().size() : 0, true);
        image.crash(pattern);
        {
            SpoolExpect resized = expect;
            resized.max_bytes = max_bytes;
            resized.old_layout = kSpoolMaxBytes;
            resized.must_resize = true;
            // A migration into too little room may set the watermark past
            // every one set: what an uninterrupted one reports bounds it.
            FakeStorage reference = image;
            Bytes buffer(kSpoolBuffer);
            Spool spool(reference, buffer.data(), buffer.size(), spool_config(max_bytes));
            SpoolRecovery report;
            if (spool.recover(nullptr, nullptr, &report) == Status::kOk) {
                resized.ack_ceiling = std::max(resized.ack_ceiling, report.acked_through);
                migrations_dropping_ += report.dropped_last != 0 ? 1u : 0u;
                migrations_compacting_first_ += spool.counters().compactions >= 2 ? 1u : 0u;
            }
            verify(std::move(image), resized, depth - 1,
                   where + (keep ? ", keep all" : ", lose all") + ", restarted with max_bytes " +
                       std::to_string(max_bytes));
        }
    }
}

// Recovers `image` and checks it; then new appends, a sync, and a restart
// without a crash, which must find exactly what was there. At depth > 0 every
// write and sync from recovery on is a crash point too.
void SpoolEnumeration::verify(FakeStorage work, const SpoolExpect& expect, int depth,
                              const std::string& where) {
    findings_.scenario();
    SpoolExpect live = expect;
    live.must_resize = false;  // a crash during recovery may come after the migration
    std::vector<std::uint64_t> unsynced;
    std::uint64_t appended = 0;
    std::string phase = expect.must_resize ? "during migration" : "during recovery";
    bool watching = depth > 0;
    std::size_t inner = 0;
    const Spool* running = nullptr;  // once recovered: compaction may leave messages out
    Observed observed(work, [&](bool synced) {
        if (synced) {
            live.make_durable(unsynced);
            unsynced.clear();
            live.highest_floor = std::max(live.highest_floor, appended);
        }
        if (running != nullptr) {
            live.ack_ceiling = std::max(live.ack_ceiling, running->acked_through());
        }
        if (watching) {
            enumerate(work, live, depth, Breadth::kBrief,
                      where + " / " + phase + " point " + std::to_string(inner++), phase);
        }
    });
    const SpoolConfig config = spool_config(expect.max_bytes);
    Bytes buffer(kSpoolBuffer);
    Spool spool(observed, buffer.data(), buffer.size(), config);
    Replay replay(expect);
    SpoolRecovery report;
    const Status status = spool.recover(collect, &replay, &report);
    const std::string problem = spool_problem(expect, status, report, replay);
    if (!problem.empty()) {
        findings_.violation(where, problem);
        return;
    }
    // What recovery reported is what the caller acts on: it must survive.
    live.make_durable(replay.seqs);
    live.highest_floor = std::max(live.highest_floor, report.highest_seq);
    live.ack_ceiling = std::max(live.ack_ceiling, report.acked_through);
    running = &spool;
    if (watching) {
        phase = "after recovery";
        enumerate(work, live, depth, Breadth::kBrief, where + " / after recovery", phase);
        phase = "appends after recovery";
    }

    // New appends above everything reported; the third fills the buffer.
    const std::uint64_t first = report.highest_seq + 1;
    live.runs.emplace_back(first, live.run() + 1);
    std::vector<std::uint64_t> added;
    for (std::uint64_t seq = first; seq < first + 3; ++seq) {
        live.seq_ceiling = std::max(live.seq_ceiling, seq);
        const Bytes data = live.payload(seq);
        if (spool.append(seq, data.data(), data.size()) != Status::kOk) {
            findings_.violation(where, "append of seq " + seq_text(seq) + " after recovery failed");
            return;
        }
        appended = seq;
        unsynced.push_back(seq);
        added.push_back(seq);
    }
    if (spool.sync() != Status::kOk) {
        findings_.violation(where, "sync after recovery failed");
        return;
    }
    watching = false;

    // A restart without a crash finds exactly what the spool holds.
    Bytes buffer2(kSpoolBuffer);
    Spool again(work, buffer2.data(), buffer2.size(), config);
    Replay replay2(live);
    SpoolRecovery report2;
    if (again.recover(collect, &replay2, &report2) != Status::kOk || report2.damaged ||
        report2.resized) {
        findings_.violation(where, "restart after recovery found damage, a resize, or failed");
        return;
    }
    // Compaction into a small region may have left the oldest out.
    std::vector<std::uint64_t> wanted;
    for (const std::uint64_t seq : replay.seqs) {
        if (seq > report2.acked_through) {
            wanted.push_back(seq);
        }
    }
    for (const std::uint64_t seq : added) {
        if (seq > report2.acked_through) {
            wanted.push_back(seq);
        }
    }
    if (replay2.seqs != wanted || report2.highest_seq != added.back() ||
        report2.acked_through != spool.acked_through()) {
        findings_.violation(where, "restart after recovery did not find exactly what was there (" +
                                       std::to_string(replay2.seqs.size()) + " replayed, " +
                                       std::to_string(wanted.size()) + " wanted, acked_through " +
                                       seq_text(report2.acked_through) + " after " +
                                       seq_text(spool.acked_through()) + ", highest " +
                                       seq_text(report2.highest_seq) + ")");
        return;
    }
    if (replay2.mismatched != 0) {
        findings_.violation(where, "restart after recovery: seq " + seq_text(replay2.mismatched) +
                                       " has another payload");
    }
}

void SpoolEnumeration::run() {
    FakeStorage store;
    SpoolExpect live;
    std::vector<std::uint64_t> unsynced;
    std::uint64_t appended = 0;
    std::uint64_t issued = 0;  // the highest watermark set (and accepted)
    std::unique_ptr<Spool> spool;
    std::string op = "create";
    std::size_t op_points = 0;
    std::size_t op_writes = 0;
    std::size_t step_points = 0;
    Observed observed(store, [&](bool synced) {
        if (synced) {
            live.make_durable(unsynced);
            unsynced.clear();
            live.highest_floor = appended;
            live.ack_floor = issued;
        } else {
            ++op_writes;
        }
        if (spool) {
            live.ack_ceiling = std::max(live.ack_ceiling, spool->acked_through());
        }
        ++op_points;
        enumerate(store, live, 2, Breadth::kThorough,
                  "spool: " + op + ", point " + std::to_string(step_points++), "");
    });
    Bytes buffer(kSpoolBuffer);
    const auto open = [&]() {
        spool = std::make_unique<Spool>(observed, buffer.data(), buffer.size(), config_);
        Replay replay(live);
        SpoolRecovery report;
        const Status status = spool->recover(collect, &replay, &report);
        const std::string problem = spool_problem(live, status, report, replay);
        if (!problem.empty()) {
            findings_.violation("spool: " + op, problem);
        }
        std::vector<std::uint64_t> wanted;
        for (std::uint64_t seq = report.acked_through + 1; seq <= appended; ++seq) {
            wanted.push_back(seq);
        }
        if (replay.seqs != wanted) {
            findings_.violation("spool: " + op,
                                "a clean restart did not replay exactly the unacked");
        }
    };

    std::size_t buffer_full_writes = 0;
    std::size_t flush_compactions = 0;
    std::size_t append_compactions = 0;
    std::size_t explicit_compactions = 0;
    std::size_t restarts = 0;
    std::uint64_t compactions = 0;
    const auto attribute = [&](const std::string& kind, std::uint64_t compactions_before) {
        const bool compacted =
            kind != "restart" && spool->counters().compactions != compactions_before;
        compactions += compacted ? spool->counters().compactions - compactions_before : 0;
        std::string phase = kind;
        if (kind == "compact()") {
            explicit_compactions += compacted ? 1u : 0u;
        } else if (compacted) {
            phase = "automatic compaction";
            flush_compactions += kind == "flush" ? 1u : 0u;
            append_compactions += kind != "flush" ? 1u : 0u;
        } else if (kind != "flush" && kind != "sync" && kind != "restart" && op_writes > 0) {
            ++buffer_full_writes;
        }
        for (std::size_t i = 0; i < op_points; ++i) {
            findings_.point(phase);
        }
    };

    open();
    for (std::size_t i = 0; i < op_points; ++i) {
        findings_.point("create");
    }
    std::mt19937 random(20240612u);
    TimeMs now = 0;
    for (int step = 0; step < kSpoolSteps; ++step) {
        const std::uint32_t action = static_cast<std::uint32_t>(random() % 100u);
        now += static_cast<TimeMs>(random() % 30u);
        op_points = 0;
        op_writes = 0;
        step_points = 0;
        const std::uint64_t compactions_before = spool->counters().compactions;
        std::string kind;
        Status status = Status::kOk;
        if (action < 52) {
            const std::uint64_t seq = appended + 1;
            kind = "append";
            op = "append seq " + seq_text(seq);
            live.seq_ceiling = seq;
            const Bytes data = live.payload(seq);
            status = spool->append(seq, data.data(), data.size());
            if (status == Status::kOk) {
                appended = seq;
                unsynced.push_back(seq);
            }
        } else if (action < 64 && appended > issued) {
            const std::uint64_t through = issued + 1 + random() % (appended - issued);
            kind = action < 59 ? "ack" : "drop_through";
            op = kind + " " + seq_text(through);
            live.ack_ceiling = std::max(live.ack_ceiling, through);
            status = action < 59 ? spool->ack(through) : spool->drop_through(through);
            if (status == Status::kOk) {
                issued = std::max(issued, through);
            }
        } else if (action < 84) {
            kind = "flush";
            op = "flush at " + std::to_string(now) + " ms";
            status = spool->flush(now);
        } else if (action < 91) {
            kind = "sync";
            op = "sync";
            status = spool->sync();
        } else if (action < 96) {
            kind = "compact()";
            op = "compact()";
            status = spool->compact();
        } else {
            kind = "restart";
            op = "sync and restart";
            status = spool->sync();
            if (status == Status::kOk) {
                open();
                ++restarts;
            }
        }
        if (status != Status::kOk) {
            findings_.violation("spool: " + op, std::string("returned ") + to_string(status));
        }
        issued = std::max(issued, spool->acked_through());
        live.ack_ceiling = std::max(live.ack_ceiling, spool->acked_through());
        attribute(kind, compactions_before);
    }
    findings_.goal(buffer_full_writes >= 2, "spool: two appends that write a full buffer");
    findings_.goal(append_compactions >= 2, "spool: two compactions for a full region");
    findings_.goal(flush_compactions >= 1, "spool: a compaction by flush()");
    findings_.goal(explicit_compactions >= 2, "spool: two compact() calls");
    findings_.goal(restarts >= 1, "spool: a clean restart");
    findings_.goal(compactions >= 4, "spool: four compactions");
    findings_.goal(migrations_dropping_ >= 10, "spool: migrations that leave messages out");
    findings_.goal(migrations_compacting_first_ >= 10,
                   "spool: migrations that compact in the old layout first");
}

// --- StateRecord --------------------------------------------------------------

constexpr int kStateSaves = 36;

PersistentState state_for(std::uint32_t index) {
    PersistentState state;
    state.reconnect_attempts = index % 5;
    state.session_version = index / 3;
    state.last_delivered_downlink_seq = std::uint64_t{index} * 7u;
    state.next_uplink_seq = 1 + std::uint64_t{index} * 100u;
    return state;
}

struct Generation {
    std::uint32_t generation;
    PersistentState state;
};

// What a load may return at one crash point.
struct StateExpect {
    std::vector<Generation> allowed;  // the last synced record and a save in flight
    bool defaults_allowed = true;     // nothing was synced or reported yet
    std::uint32_t floor = 0;          // a generation synced or reported: never go below it
};

std::string state_problem(const StateExpect& expect, Status status, const PersistentState& state,
                          LoadSource source, std::uint32_t generation) {
    if (status != Status::kOk) {
        return std::string("load() returned ") + to_string(status);
    }
    if (generation < expect.floor) {
        return "generation " + std::to_string(generation) + " went back below " +
               std::to_string(expect.floor);
    }
    if (source == LoadSource::kDefaults) {
        return expect.defaults_allowed && generation == 0 && state == PersistentState()
                   ? ""
                   : "defaults although a record was synced";
    }
    for (const Generation& allowed : expect.allowed) {
        if (allowed.generation == generation && allowed.state == state) {
            return "";
        }
    }
    return "generation " + std::to_string(generation) + " is neither the synced record nor " +
           "the save in flight";
}

class StateEnumeration {
  public:
    explicit StateEnumeration(Tally* tally) : findings_(tally) {}
    void run();

  private:
    void enumerate(const FakeStorage& store, const StateExpect& expect, int depth,
                   const std::string& where, const std::string& phase);
    void verify(const FakeStorage& image, const StateExpect& expect, int depth,
                const std::string& where);

    Findings findings_;
    std::size_t points_ = 0;
};

void StateEnumeration::enumerate(const FakeStorage& store, const StateExpect& expect, int depth,
                                 const std::string& where, const std::string& phase) {
    const std::size_t point = points_++;
    findings_.point(phase);
    const std::vector<FakeStorage::Write>& writes = store.unsynced_writes();
    std::vector<Cut> cuts = cuts_for(writes, Breadth::kBrief, seed_of(point));
    if (depth >= 2 && !writes.empty()) {
        // A slot is one 64-byte write: tear it at every length.
        for (std::size_t landed = 1; landed < writes.back().data.size(); ++landed) {
            Pattern torn;
            torn.kept.assign(writes.size(), true);
            torn.torn = writes.size() - 1;
            torn.torn_bytes = landed;
            cuts.push_back(Cut{torn, "the last write torn at " + std::to_string(landed), true});
        }
    }
    for (const Cut& cut : cuts) {
        FakeStorage image = store;
        image.crash(cut.pattern);
        verify(image, expect, depth - 1, where + ", " + cut.name);
    }
    if (!writes.empty()) {
        verify(store, expect, depth - 1, where + ", process killed");
    }
}

void StateEnumeration::verify(const FakeStorage& image, const StateExpect& expect, int depth,
                              const std::string& where) {
    findings_.scenario();
    FakeStorage work = image;
    StateExpect live = expect;
    bool watching = depth > 0;
    std::string phase = "during load";
    Generation in_flight{0, PersistentState()};
    Observed observed(work, [&](bool synced) {
        if (synced && in_flight.generation != 0) {
            live.allowed = {in_flight};
            live.defaults_allowed = false;
            live.floor = in_flight.generation;
        }
        if (watching) {
            enumerate(work, live, depth, where + " / " + phase, phase);
        }
    });
    StateRecord record(observed);
    PersistentState state;
    LoadSource source = LoadSource::kDefaults;
    const Status status = record.load(&state, &source);
    const std::string problem = state_problem(expect, status, state, source, record.generation());
    if (!problem.empty()) {
        findings_.violation(where, problem);
        return;
    }
    // What load returned is what the caller acts on.
    live.allowed = {Generation{record.generation(), state}};
    live.defaults_allowed = record.generation() == 0;
    live.floor = std::max(live.floor, record.generation());
    if (watching) {
        phase = "after load";
        enumerate(work, live, depth, where + " / after load", phase);
        phase = "save after load";
    }
    std::uint32_t next = record.generation() + 1;
    next = next == 0 ? 1 : next;
    in_flight = Generation{next, state_for(1000 + next)};
    live.allowed.push_back(in_flight);
    if (record.save(in_flight.state) != Status::kOk) {
        findings_.violation(where, "save after load failed");
        return;
    }
    watching = false;
    StateRecord again(work);
    PersistentState reloaded;
    if (again.load(&reloaded, &source) != Status::kOk || reloaded != in_flight.state ||
        again.generation() != in_flight.generation || source != LoadSource::kNewestSlot) {
        findings_.violation(where, "a restart after the save did not load exactly that save");
    }
}

void StateEnumeration::run() {
    FakeStorage store;
    StateExpect live;
    Generation in_flight{0, PersistentState()};
    std::string op = "first load";
    std::string kind = "load";
    Observed observed(store, [&](bool synced) {
        if (synced && in_flight.generation != 0) {
            live.allowed = {in_flight};
            live.defaults_allowed = false;
            live.floor = in_flight.generation;
        }
        enumerate(store, live, 2, "state record: " + op, kind);
    });
    auto record = std::make_unique<StateRecord>(observed);
    PersistentState state;
    LoadSource source = LoadSource::kDefaults;
    if (record->load(&state, &source) != Status::kOk || source != LoadSource::kDefaults) {
        findings_.violation("state record: first load", "a fresh store did not load defaults");
    }
    for (std::uint32_t index = 1; index <= kStateSaves; ++index) {
        if (index % 12 == 0) {
            op = "load after restart";
            kind = "load";
            record = std::make_unique<StateRecord>(observed);
            if (record->load(&state, &source) != Status::kOk ||
                record->generation() != in_flight.generation || state != in_flight.state) {
                findings_.violation("state record: restart", "did not load the last save");
            }
        }
        std::uint32_t next = record->generation() + 1;
        in_flight = Generation{next == 0 ? 1 : next, state_for(index)};
        live.allowed.push_back(in_flight);
        op = "save " + std::to_string(index);
        kind = "save";
        if (record->save(in_flight.state) != Status::kOk) {
            findings_.violation("state record: " + op, "failed");
        }
    }
}

// --- RecordLog ----------------------------------------------------------------

using server::RecordLog;

constexpr std::size_t kLogMaxBody = 64;
constexpr std::size_t kLogWriteBuffer = 96;
constexpr int kLogSteps = 100;

struct LogRecord {
    std::uint64_t key;
    Bytes body;
};

Bytes log_body(std::uint64_t key, unsigned run) {
    Bytes body(static_cast<std::size_t>((key * 5u + run * 3u) % 41u));
    for (std::size_t i = 0; i < body.size(); ++i) {
        body[i] = static_cast<std::uint8_t>(key * 13u + i + run * 71u);
    }
    return body;
}

std::size_t encoded_size(const std::vector<LogRecord>& records, std::size_t count) {
    std::size_t size = 0;
    for (std::size_t i = 0; i < count; ++i) {
        size += server::kRecordOverhead + records[i].body.size();
    }
    return size;
}

// What an open may and must find: a prefix of `records`, at least `floor` long.
struct LogExpect {
    std::vector<LogRecord> records;
    std::size_t floor = 0;
};

Bytes read_whole(const std::string& path) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    Bytes bytes(static_cast<std::size_t>(std::max<std::streamoff>(in.tellg(), 0)));
    in.seekg(0);
    in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return bytes;
}

void write_whole(const std::string& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
}

// A log file and a FakeStorage mirroring it: RecordLog writes only by
// appending at its end (seen as the file growing) and cuts only its own torn
// tail, so each call's effect on the file is one write, a truncation or
// nothing, followed by an fsync when the call made one.
class LogFile {
  public:
    LogFile(const std::string& path, const FakeStorage& image, const SyscallFaults& faults,
            Observed::Hook hook)
        : path_(path), mirror_(image), faults_(faults), hook_(std::move(hook)) {
        write_whole(path_, mirror_.contents());
    }
    void before() { fsyncs_ = faults_.calls(Syscall::kFsync); }
    // Mirrors what the call since before() did; "" or what made no sense.
    std::string after() {
        const Bytes file = read_whole(path_);
        const Bytes& mirrored = mirror_.contents();
        const bool synced = faults_.calls(Syscall::kFsync) != fsyncs_;
        const bool prefix = std::equal(
            mirrored.begin(),
            mirrored.begin() + static_cast<std::ptrdiff_t>(std::min(file.size(), mirrored.size())),
            file.begin());
        if (!prefix) {
            return "the log rewrote bytes it had written";
        }
        if (file.size() > mirrored.size()) {
            const std::size_t at = mirrored.size();
            (void)mirror_.write(static_cast<std::uint32_t>(at), file.data() + at, file.size() - at);
            hook_(false);
        } else if (file.size() < mirrored.size()) {
            if (!synced) {
                return "the log cut its file without syncing the cut";
            }
            mirror_.set_contents(file);
        }
        if (synced) {
            (void)mirror_.sync();
            hook_(true);
        }
        return "";
    }
    const FakeStorage& mirror() const { return mirror_; }
    const std::string& path() const { return path_; }

  private:
    std::string path_;
    FakeStorage mirror_;
    const SyscallFaults& faults_;
    Observed::Hook hook_;
    unsigned fsyncs_ = 0;
};

class LogEnumeration {
  public:
    LogEnumeration(Tally* tally, std::string directory)
        : findings_(tally), directory_(std::move(directory)) {
        faults_.pretend_fsync();  // durability is the mirror's business
    }
    ~LogEnumeration() {
        for (int depth = 0; depth <= 2; ++depth) {
            ::unlink(path_for(depth).c_str());
        }
    }
    LogEnumeration(const LogEnumeration&) = delete;
    LogEnumeration& operator=(const LogEnumeration&) = delete;
    void run();

  private:
    void enumerate(const FakeStorage& store, const LogExpect& expect, int depth, Breadth breadth,
                   const std::string& where, const std::string& phase);
    void verify(const FakeStorage& image, const LogExpect& expect, int depth,
                const std::string& where);
    std::string path_for(int depth) const {
        return directory_ + "/crash-" + std::to_string(depth) + ".log";
    }

    Findings findings_;
    std::string directory_;
    SyscallFaults faults_;
    std::size_t points_ = 0;
};

void LogEnumeration::enumerate(const FakeStorage& store, const LogExpect& expect, int depth,
                               Breadth breadth, const std::string& where,
                               const std::string& phase) {
    const std::size_t point = points_++;
    if (!phase.empty()) {
        findings_.point(phase);
    }
    for (const Cut& cut : cuts_for(store.unsynced_writes(), breadth, seed_of(point))) {
        FakeStorage image = store;
        image.crash(cut.pattern);
        verify(image, expect, cut.nest ? depth - 1 : 0, where + ", " + cut.name);
    }
    if (!store.unsynced_writes().empty()) {
        verify(store, expect, depth - 1, where + ", process killed");
    }
}

// Opens `image` (durable, or with the writes a killed process left), checks
// what it finds, syncs (after which the caller may promise it), appends, syncs
// and reopens without a crash.
void LogEnumeration::verify(const FakeStorage& image, const LogExpect& expect, int depth,
                            const std::string& where) {
    findings_.scenario();
    LogExpect live = expect;
    std::size_t appended = 0;
    bool watching = depth > 0;
    std::string phase = "open";
    std::size_t inner = 0;
    LogFile file(path_for(depth), image, faults_, [&](bool synced) {
        if (synced) {
            live.floor = std::max(live.floor, appended);
        }
        if (watching) {
            enumerate(file.mirror(), live, depth, Breadth::kBrief,
                      where + " / " + phase + " point " + std::to_string(inner++), phase);
        }
    });
    std::vector<LogRecord> found;
    const auto visitor = [&found](std::uint64_t key, const std::uint8_t* body, std::size_t size) {
        found.push_back(LogRecord{key, Bytes(body, body + size)});
        return true;
    };
    RecordLog log;
    std::uint64_t truncated = 0;
    file.before();
    const Status status = log.open(file.path(), kLogMaxBody, visitor, &truncated);
    std::string problem = status == Status::kOk ? file.after() : "open() failed";
    if (problem.empty() && (found.size() < expect.floor || found.size() > expect.records.size())) {
        problem = "found " + std::to_string(found.size()) + " records, durable " +
                  std::to_string(expect.floor) + ", appended " +
                  std::to_string(expect.records.size());
    }
    for (std::size_t i = 0; problem.empty() && i < found.size(); ++i) {
        if (found[i].key != expect.records[i].key || found[i].body != expect.records[i].body) {
            problem = "record " + std::to_string(i) + " is not the one appended there";
        }
    }
    if (problem.empty() &&
        truncated != image.contents().size() - encoded_size(found, found.size())) {
        problem = "truncated_bytes " + std::to_string(truncated) + " does not match what was cut";
    }
    if (problem.empty()) {
        file.before();
        problem = log.sync() == Status::kOk ? file.after() : "sync() after open failed";
    }
    if (!problem.empty()) {
        findings_.violation(where, problem);
        return;
    }
    // Found and synced: the caller may now promise these records.
    live.records.resize(found.size());
    live.floor = found.size();
    appended = found.size();
    if (watching) {
        phase = "after open";
        enumerate(file.mirror(), live, depth, Breadth::kBrief, where + " / after open", phase);
        phase = "appends after open";
    }
    const std::uint64_t first = found.empty() ? 1 : found.back().key + 1;
    for (std::uint64_t key = first; key < first + 3; ++key) {
        live.records.push_back(LogRecord{key, log_body(key, 2)});
        file.before();
        const Status appended_status =
            log.append(key, live.records.back().body.data(), live.records.back().body.size());
        problem = appended_status == Status::kOk ? file.after() : "append after open failed";
        if (!problem.empty()) {
            findings_.violation(where, problem);
            return;
        }
        appended = live.records.size();
    }
    file.before();
    problem = log.sync() == Status::kOk ? file.after() : "sync after the appends failed";
    watching = false;
    log.close();
    if (!problem.empty()) {
        findings_.violation(where, problem);
        return;
    }
    found.clear();
    RecordLog again;
    if (again.open(file.path(), kLogMaxBody, visitor, &truncated) != Status::kOk ||
        truncated != 0 || found.size() != live.records.size()) {
        findings_.violation(where, "a reopen without a crash did not find exactly what was there");
        return;
    }
    for (std::size_t i = 0; i < found.size(); ++i) {
        if (found[i].key != live.records[i].key || found[i].body != live.records[i].body) {
            findings_.violation(where, "reopen: record " + std::to_string(i) + " differs");
            return;
        }
    }
}

void LogEnumeration::run() {
    LogExpect live;
    std::size_t appended = 0;
    std::string op = "open";
    std::string kind = "open";
    std::size_t step_points = 0;
    LogFile file(path_for(2), FakeStorage(), faults_, [&](bool synced) {
        if (synced) {
            live.floor = appended;
        }
        enumerate(file.mirror(), live, 2, Breadth::kThorough,
                  "record log: " + op + ", point " + std::to_string(step_points++), kind);
    });
    std::vector<LogRecord> found;
    const auto visitor = [&found](std::uint64_t key, const std::uint8_t* body, std::size_t size) {
        found.push_back(LogRecord{key, Bytes(body, body + size)});
        return true;
    };
    auto log = std::make_unique<RecordLog>();
    const auto check = [&](Status status) {
        const std::string problem = status == Status::kOk ? file.after() : "failed";
        if (!problem.empty()) {
            findings_.violation("record log: " + op, problem);
        }
    };
    file.before();
    check(log->open(file.path(), kLogMaxBody, visitor));
    log->set_write_buffer(kLogWriteBuffer);
    std::mt19937 random(20240613u);
    std::size_t reopens = 0;
    std::size_t batched_writes = 0;
    for (int step = 0; step < kLogSteps; ++step) {
        const std::uint32_t action = static_cast<std::uint32_t>(random() % 100u);
        step_points = 0;
        const std::size_t size_before = file.mirror().contents().size();
        file.before();
        if (action < 62) {
            const std::uint64_t key = live.records.size() + 1;
            live.records.push_back(LogRecord{key, log_body(key, 1)});
            op = "append key " + std::to_string(key);
            kind = "append";
            check(
                log->append(key, live.records.back().body.data(), live.records.back().body.size()));
            appended = live.records.size();
            batched_writes += file.mirror().contents().size() != size_before ? 1u : 0u;
        } else if (action < 78) {
            op = kind = "flush";
            check(log->flush());
        } else if (action < 96) {
            op = kind = "sync";
            check(log->sync());
        } else {
            op = kind = "close and reopen";
            log->close();
            check(Status::kOk);
            log = std::make_unique<RecordLog>();
            found.clear();
            file.before();
            check(log->open(file.path(), kLogMaxBody, visitor));
            log->set_write_buffer(kLogWriteBuffer);
            if (found.size() != live.records.size()) {
                findings_.violation("record log: reopen", "did not find every record");
            }
            ++reopens;
        }
    }
    findings_.goal(batched_writes >= 5, "record log: appends that write a full batch");
    findings_.goal(reopens >= 1, "record log: a close and reopen");
    log->close();
}

}  // namespace

Tally spool_points(std::size_t examples) {
    Tally tally;
    tally.max_examples = examples;
    tally.name = "spool";
    SpoolEnumeration(&tally).run();
    return tally;
}

Tally state_record_points(std::size_t examples) {
    Tally tally;
    tally.max_examples = examples;
    tally.name = "state record";
    StateEnumeration(&tally).run();
    return tally;
}

Tally record_log_points(const std::string& directory, std::size_t examples) {
    Tally tally;
    tally.max_examples = examples;
    tally.name = "record log";
    LogEnumeration(&tally, directory).run();
    return tally;
}

}  // namespace tether::test::crash

// SPDX-License-Identifier: MIT
// The durable link end to end as a crash-point enumeration: a device run
// (send, go online, get ACKs, flush and sync the spool, save the seq
// reservation) stopped at every write and sync of either disk, the disks then
// left as a kill -9 leaves them, or as a power cut does (losing or tearing
// unsynced writes), and a second run opened on what remains. After each:
//  - no new message gets a seq the first run used (never a reused seq);
//  - every message put back carries the payload its seq had (never another
//    message's bytes), in increasing seq order;
//  - after a kill, every message accepted before the last completed loop
//    iteration and not acknowledged is put back (a kill loses none of them);
//  - going online, the second run sends nothing acknowledged under a new seq
//    and nothing under an old seq that is not its original message.
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "crash_points/crash_points.h"
#include "fakes/counting_random.h"
#include "fakes/fake_connection.h"
#include "fakes/fake_resolver.h"
#include "fakes/fake_storage.h"
#include "support/client_frames.h"
#include "support/v1_frames.h"
#include "tether/durable_link.h"
#include "tether/net/tether_v1.h"
#include "tether/net/ws_handshake.h"

namespace tether::test::crash {
namespace {

using Pattern = FakeStorage::CrashPattern;
constexpr const char* kSession = "7ada0a06-5620-4a46-80ff-248e31991504";
constexpr int kMessages = 48;

// Every write and sync of both disks counts down one budget; at zero the
// device "dies": that and every later call changes nothing (the run goes on
// only so the workload code stays simple; nothing it does later counts).
struct Budget {
    std::size_t left = 0;
    bool unlimited = true;
    bool announced = false;
    std::size_t used = 0;
    bool take() {
        ++used;
        if (unlimited) {
            return true;
        }
        if (left == 0) {
            return false;
        }
        --left;
        return true;
    }
};

class Disk final : public Storage {
  public:
    Disk(FakeStorage& inner, Budget& budget, std::function<void()> on_freeze)
        : inner_(inner), budget_(budget), on_freeze_(std::move(on_freeze)) {}
    Status read(std::uint32_t offset, std::uint8_t* out, std::size_t size,
                std::size_t* read_size) override {
        return inner_.read(offset, out, size, read_size);
    }
    Status write(std::uint32_t offset, const std::uint8_t* data, std::size_t size) override {
        return step() ? inner_.write(offset, data, size) : Status::kOk;
    }
    Status sync() override { return step() ? inner_.sync() : Status::kOk; }

  private:
    bool step() {
        const bool live = budget_.take();
        if (!live && !budget_.announced) {
            budget_.announced = true;
            on_freeze_();
        }
        return live;
    }
    FakeStorage& inner_;
    Budget& budget_;
    std::function<void()> on_freeze_;
};

DurableLinkConfig link_config() {
    DurableLinkConfig c;
    c.client.urls[0] = "ws://127.0.0.1:9000/v1";
    c.client.url_count = 1;
    c.client.reconnect.resume_protocol = true;
    c.client.reconnect.backoff.jitter = JitterMode::kNone;
    c.client.session_id = kSession;
    c.client.device_id = "pi-17";
    c.client.ws.max_message_size = 1024;
    c.client.seq_reservation = 16;  // the reservation is saved several times
    c.outbox_bytes = 16 * 1024;
    c.spool = true;
    c.spool_config.max_bytes = 4096;  // small regions: compactions happen
    c.spool_config.fsync_interval_ms = 100;
    c.spool_config.min_compact_bytes = 512;
    return c;
}

struct Device {
    Device(Storage& state, Storage& spool)
        : config(link_config()),
          sizes(DurableLinkSizes::for_config(config)),
          memory(sizes.total()),
          link(config,
               DurableLinkBuffers{memory.data(), memory.data() + sizes.outbox,
                                  memory.data() + sizes.outbox + sizes.rx,
                                  memory.data() + sizes.outbox + sizes.rx + sizes.tx},
               connection, resolver, random, &state, &spool, nullptr, nullptr) {}

    bool online(std::uint64_t last_uplink) {
        link.start(now);
        if (link.state() == LinkState::kWaitingToRetry) {
            now += link.client().machine().retry_delay_ms();
        }
        link.service(now);
        connection.stream().push_input(v1_upgrade_response(connection.stream().output_string()));
        link.service(now);
        connection.stream().push_input(welcome_frame(kSession, last_uplink));
        link.service(now);
        link.service(now);
        return link.state() == LinkState::kOnline;
    }

    // DATA the device sent: seq -> payload, in order.
    std::vector<std::pair<std::uint64_t, std::string>> data_sent() {
        std::vector<std::pair<std::uint64_t, std::string>> out;
        for (const ClientFrame& frame : client_frames(connection.stream().output_string())) {
            if (frame.opcode == 2 && frame.payload.size() >= 10 && frame.payload[0] == 'D') {
                out.emplace_back(seq_of(frame.payload), frame.payload.substr(10));
            }
        }
        return out;
    }

    DurableLinkConfig config;
    DurableLinkSizes sizes;
    std::vector<std::uint8_t> memory;
    FakeConnection connection;
    FakeResolver resolver;
    CountingRandom random;
    DurableLink link;
    TimeMs now = 1000;
};

// What the first run had done when its device died.
struct AtDeath {
    std::map<std::uint64_t, std::string> assigned;  // every seq given out, and its payload
    std::uint64_t acked = 0;                        // the server's highest ACK processed
    std::uint64_t serviced_through = 0;  // highest seq accepted before the last full iteration
};

struct FirstRun {
    std::map<std::uint64_t, std::string> assigned;
    std::uint64_t acked = 0;
    std::uint64_t serviced_through = 0;
    AtDeath at_death;
    bool died = false;
    std::size_t ops = 0;
};

// The workload: messages in batches, a loop iteration after each, ACKs from
// the server now and then, time passing so that syncs come due.
FirstRun run_first(FakeStorage& state_disk, FakeStorage& spool_disk, Budget& budget) {
    FirstRun run;
    const DurableLink* link = nullptr;
    // The server's ACK counts from the moment the link processed it, even
    // when the device dies later in the same loop iteration.
    auto freeze = [&run, &link]() {
        if (!run.died) {
            run.died = true;
            const std::uint64_t acked =
                link != nullptr ? link->client().counters().uplink_acked : 0;
            run.at_death = AtDeath{run.assigned, acked, run.serviced_through};
        }
    };
    Disk state(state_disk, budget, freeze);
    Disk spool(spool_disk, budget, freeze);
    Device device(state, spool);
    link = &device.link;
    if (device.link.open(nullptr) != Status::kOk) {
        return run;
    }
    (void)device.online(0);
    std::uint64_t highest = 0;
    for (int i = 1; i <= kMessages; ++i) {
        const std::string payload = "m" + std::to_string(i) + std::string(40, 'x');
        std::uint64_t seq = 0;
        if (device.link.send(device.now, reinterpret_cast<const std::uint8_t*>(payload.data()),
                             payload.size(), &seq) == Status::kOk) {
            run.assigned[seq] = payload;
            highest = seq;
        }
        if (i % 4 == 0) {
            device.link.service(device.now);
            if (!run.died) {
                run.serviced_through = highest;
            }
            device.now += 60;
        }
        if (i % 12 == 0) {
            const std::uint64_t ack = highest - 3;
            device.connection.stream().push_input(ack_frame(ack));
            device.link.service(device.now);
            if (!run.died) {
                run.acked = ack;
            }
        }
    }
    device.link.service(device.now);
    device.now += 200;
    device.link.service(device.now);
    if (!run.died) {
        run.at_death = AtDeath{run.assigned, device.link.client().counters().uplink_acked,
                               run.serviced_through};
    }
    run.ops = budget.used;
    return run;
}

std::string describe(std::size_t point, const char* cut) {
    char text[96];
    std::snprintf(text, sizeof text, "durable link, point %zu, %s", point, cut);
    return text;
}

void check_second_run(Findings& findings, const AtDeath& death, FakeStorage& state_disk,
                      FakeStorage& spool_disk, bool killed, const std::string& where) {
    findings.scenario();
    Budget unlimited;
    Disk state(state_disk, unlimited, [] {});
    Disk spool(spool_disk, unlimited, [] {});
    Device device(state, spool);
    RecoveryReport report;
    if (device.link.open(&report) != Status::kOk) {
        findings.violation(where, "the second run did not open");
        return;
    }
    const std::uint64_t used = death.assigned.empty() ? 0 : death.assigned.rbegin()->first;
    if (report.continue_at <= used) {
        findings.violation(where, "new messages would reuse seq " +
                                      std::to_string(report.continue_at) + " (used up to " +
                                      std::to_string(used) + ")");
    }
    std::map<std::uint64_t, std::string> restored;
    OutboxEntry entry;
    std::uint64_t previous = 0;
    for (Outbox::Iterator it = device.link.client().outbox().unacked(); it.next(&entry);) {
        const std::string payload(reinterpret_cast<const char*>(entry.data), entry.size);
        if (entry.seq <= previous) {
            findings.violation(where, "restored seqs do not increase");
        }
        previous = entry.seq;
        const auto original = death.assigned.find(entry.seq);
        if (original == death.assigned.end() || original->second != payload) {
            findings.violation(where, "seq " + std::to_string(entry.seq) +
                                          " came back with another message's bytes");
        }
        restored[entry.seq] = payload;
    }
    if (killed) {
        for (const auto& message : death.assigned) {
            if (message.first > death.acked && message.first <= death.serviced_through &&
                restored.count(message.first) == 0) {
                findings.violation(where, "a kill lost seq " + std::to_string(message.first));
            }
        }
    }
    const std::string fresh = "after the restart";
    std::uint64_t fresh_seq = 0;
    (void)device.link.send(device.now, reinterpret_cast<const std::uint8_t*>(fresh.data()),
                           fresh.size(), &fresh_seq);
    if (!device.online(death.acked)) {
        findings.violation(where, "the second run did not get online");
        return;
    }
    for (const auto& sent : device.data_sent()) {
        if (sent.second == fresh) {
            if (sent.first <= used) {
                findings.violation(
                    where, "a new message went out under used seq " + std::to_string(sent.first));
            }
            continue;
        }
        const auto original = death.assigned.find(sent.first);
        if (sent.first <= death.acked) {
            findings.violation(where,
                               "acknowledged seq " + std::to_string(sent.first) + " sent again");
        } else if (original == death.assigned.end() || original->second != sent.second) {
            findings.violation(
                where, "seq " + std::to_string(sent.first) + " went out with another message");
        }
    }
}

}  // namespace

Tally durable_link_points(std::size_t examples) {
    Tally tally;
    tally.name = "durable link";
    tally.max_examples = examples;
    Findings findings(&tally);

    Budget unlimited;
    FakeStorage probe_state, probe_spool;
    const FirstRun full = run_first(probe_state, probe_spool, unlimited);
    if (full.assigned.size() != static_cast<std::size_t>(kMessages)) {
        tally.unreached.push_back("the workload did not send every message");
    }
    if (probe_spool.sync_count() < 3) {
        tally.unreached.push_back("fewer than three spool syncs");
    }
    for (std::size_t point = 0; point < full.ops; ++point) {
        findings.point(point < full.ops / 2 ? "first half" : "second half");
        const Pattern lose_all;
        for (int cut = 0; cut < 4; ++cut) {
            FakeStorage state_disk, spool_disk;
            Budget budget;
            budget.unlimited = false;
            budget.left = point;
            const FirstRun run = run_first(state_disk, spool_disk, budget);
            const bool killed = cut == 0;
            if (cut == 1) {
                state_disk.crash(lose_all);
                spool_disk.crash(lose_all);
            } else if (cut >= 2) {
                // The power goes with the last unsynced write of each disk
                // torn: at a record header's edge, or half way.
                for (FakeStorage* disk : {&state_disk, &spool_disk}) {
                    Pattern pattern;
                    const std::size_t writes = disk->unsynced_writes().size();
                    pattern.kept.assign(writes, true);
                    if (writes > 0) {
                        const std::size_t size = disk->unsynced_writes().back().data.size();
                        pattern.torn = writes - 1;
                        pattern.torn_bytes =
                            cut == 2 ? (size > 20 ? std::size_t{20} : size / 2) : size / 2;
                    }
                    disk->crash(pattern);
                }
            }
            static const char* const kCuts[] = {"kill -9", "power cut", "power cut, header torn",
                                                "power cut, half torn"};
            check_second_run(findings, run.at_death, state_disk, spool_disk, killed,
                             describe(point, kCuts[cut]));
        }
    }
    return tally;
}

}  // namespace tether::test::crash

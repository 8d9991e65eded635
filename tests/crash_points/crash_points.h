// SPDX-License-Identifier: MIT
// Crash-point enumeration for everything tether persists: the spool, the
// state record and tether-server's record log.
//
// Each component runs a fixed workload over a store that reports every write
// and every sync. Each of those boundaries is a crash point: there the
// enumeration copies the store and cuts the power in several ways (losing
// every write not yet synced, keeping them all, keeping them all but tearing
// the last at offsets around its header fields, keeping seeded random subsets
// with one torn), recovers, and checks what came back against what the
// workload had made durable. A recovery that succeeds then takes new writes,
// and its own write and sync boundaries (recovery, the first writes after it)
// are crash points again, one level deeper. A process killed at a crash point
// (the kernel keeps its writes, the medium may not) is recovered too, and then
// the power is cut: what that recovery reported must survive.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace tether::test::crash {

/// What one component's enumeration checked.
struct Tally {
    std::string name;
    std::size_t points = 0;  ///< crash points: write and sync boundaries, at every level
    std::size_t scenarios =
        0;  ///< power cuts (a point and what the cut kept) recovered and checked
    std::size_t violations = 0;
    std::map<std::string, std::size_t> points_by_phase;  ///< what was running at each point
    std::vector<std::string> examples;                   ///< the first violations, described
    std::size_t max_examples = 0;
    std::vector<std::string> unreached;  ///< workload goals it failed to reach
};

/// Counts into a Tally as an enumeration goes.
class Findings {
  public:
    explicit Findings(Tally* tally) : tally_(tally) {}

    void point(const std::string& phase) {
        ++tally_->points;
        ++tally_->points_by_phase[phase];
    }
    void scenario() { ++tally_->scenarios; }
    void violation(const std::string& where, const std::string& what) {
        ++tally_->violations;
        if (tally_->examples.size() < tally_->max_examples) {
            tally_->examples.push_back(where + ": " + what);
        }
    }
    void goal(bool reached, const std::string& what) {
        if (!reached) {
            tally_->unreached.push_back(what);
        }
    }

  private:
    Tally* tally_;
};

/// Each lists at most `examples` violations in Tally::examples.
///
/// Spool append, ack, drop_through, flush and sync, automatic compaction and
/// compact(), recovery itself, and recovery into a different max_bytes.
Tally spool_points(std::size_t examples);

/// StateRecord save and load.
Tally state_record_points(std::size_t examples);

/// tether-server's RecordLog append, flush, sync and open, on files in
/// `directory`.
Tally record_log_points(const std::string& directory, std::size_t examples);

/// tether::DurableLink end to end: a device run stopped at every write and
/// sync of its state record and spool, then a kill or a power cut, and the
/// recovery rule checked on the next run (durable_link_points.cpp).
Tally durable_link_points(std::size_t examples);

}  // namespace tether::test::crash

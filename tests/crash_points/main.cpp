// SPDX-License-Identifier: MIT
// tether-crash-points: runs the crash-point enumeration (crash_points.h) and
// prints what it checked, one line per component and a total. Exits 1 on any
// violation, or when a workload missed what it is meant to exercise.
// `--examples N` lists up to N violations per component (default 12).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "crash_points/crash_points.h"
#include "support/temp_dir.h"

int main(int argc, char** argv) {
    using tether::test::crash::Tally;
    std::size_t examples = 12;
    if (argc == 3 && std::strcmp(argv[1], "--examples") == 0) {
        examples = std::strtoul(argv[2], nullptr, 10);
    } else if (argc != 1) {
        std::fprintf(stderr, "usage: %s [--examples N]\n", argv[0]);
        return 2;
    }
    tether::test::TempDir directory;
    const std::vector<Tally> tallies = {
        tether::test::crash::spool_points(examples),
        tether::test::crash::state_record_points(examples),
        tether::test::crash::record_log_points(directory.path(), examples),
        tether::test::crash::durable_link_points(examples),
    };
    std::size_t points = 0;
    std::size_t scenarios = 0;
    std::size_t violations = 0;
    bool unreached = false;
    for (const Tally& tally : tallies) {
        std::printf("crash points: %s %zu (%zu scenarios, %zu violations):", tally.name.c_str(),
                    tally.points, tally.scenarios, tally.violations);
        const char* separator = " ";
        for (const auto& phase : tally.points_by_phase) {
            std::printf("%s%s %zu", separator, phase.first.c_str(), phase.second);
            separator = ", ";
        }
        std::printf("\n");
        for (const std::string& example : tally.examples) {
            std::printf("  violation: %s\n", example.c_str());
        }
        for (const std::string& goal : tally.unreached) {
            std::printf("  workload did not reach: %s\n", goal.c_str());
            unreached = true;
        }
        points += tally.points;
        scenarios += tally.scenarios;
        violations += tally.violations;
    }
    std::printf("crash points: %zu checked (%zu scenarios), %zu violations\n", points, scenarios,
                violations);
    return violations == 0 && !unreached ? 0 : 1;
}

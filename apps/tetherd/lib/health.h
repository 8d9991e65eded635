// SPDX-License-Identifier: MIT
// The device's own health, tetherd's built-in telemetry: CPU temperatures,
// load averages, memory, uptime and the link state of network interfaces,
// read from /sys and /proc below a configurable root (tests point it at a
// fake tree).
//
// Every field is optional. A missing file leaves its field absent; a file
// whose contents do not parse leaves only that field absent. Sampling uses
// fixed buffers and allocates nothing (the directory streams are opened once
// and rewound), so it can run every few seconds for years.
//
//   const char* const links[] = {"eth0", "wlan0"};
//   HealthCollector health("", links, 2);
//   HealthSample sample;
//   if (health.sample(&sample)) {
//       char json[1024];
//       std::size_t n = format_json(sample, number++, json, sizeof json);
//       ...  // n == 0: did not fit
//   }
#pragma once

#include <dirent.h>

#include <cstddef>
#include <cstdint>

#include "tether/time.h"

namespace tether::daemon {

/// One reading. The `has_*` flags and the counts say what is present.
struct HealthSample {
    static constexpr std::size_t kMaxZones = 8;
    static constexpr std::size_t kMaxLinks = 8;
    /// Longest zone or interface name kept (longer ones are skipped).
    static constexpr std::size_t kMaxName = 31;
    /// Longest link state kept ("lowerlayerdown" is the longest the kernel uses).
    static constexpr std::size_t kMaxState = 15;

    struct Zone {
        char name[kMaxName + 1];  ///< the zone's "type", or "thermal_zoneN" without one
        std::int32_t millicelsius;
    };
    struct Link {
        char name[kMaxName + 1];
        /// operstate ("up", "down", "dormant", ...). An interface whose
        /// operstate is "unknown" (common for drivers that do not report it)
        /// takes "up" or "down" from its carrier file when that is readable.
        char state[kMaxState + 1];
        /// carrier: 1 or 0, or -1 when unreadable (it is not readable while
        /// the interface is administratively down).
        int carrier;
    };

    bool has_uptime = false;
    std::uint64_t uptime_centiseconds = 0;  ///< first field of /proc/uptime
    bool has_load = false;
    std::uint32_t load_centi[3] = {};  ///< 1, 5 and 15 minute load averages x 100
    bool has_mem_total = false;
    std::uint64_t mem_total_kb = 0;
    bool has_mem_available = false;
    std::uint64_t mem_available_kb = 0;
    std::size_t zone_count = 0;
    Zone zones[kMaxZones] = {};
    std::size_t link_count = 0;
    Link links[kMaxLinks] = {};
};

class HealthCollector {
  public:
    /// Reads below `root` ("" for the real system; no trailing slash) and
    /// reports the interfaces named in `interfaces` (in that order), or, when
    /// `interface_count` is 0, every interface in /sys/class/net except "lo"
    /// (in directory order, at most HealthSample::kMaxLinks). Both strings
    /// and the array must outlive the collector.
    HealthCollector(const char* root, const char* const* interfaces = nullptr,
                    std::size_t interface_count = 0);
    ~HealthCollector();
    HealthCollector(const HealthCollector&) = delete;
    HealthCollector& operator=(const HealthCollector&) = delete;

    /// Fills `*out` (every field reset first). Returns true when at least one
    /// field was read, false when nothing was (a wrong root).
    bool sample(HealthSample* out);

  private:
    void read_uptime(HealthSample* out) const;
    void read_load(HealthSample* out) const;
    void read_memory(HealthSample* out) const;
    void read_zones(HealthSample* out);
    void read_links(HealthSample* out);
    void read_link(const char* name, HealthSample* out) const;
    /// Builds root + suffix in `path`; false when it does not fit.
    bool path(char* out, std::size_t capacity, const char* format, const char* name) const;
    DIR* open_dir(DIR** stream, const char* suffix);

    const char* root_;
    const char* const* interfaces_;
    std::size_t interface_count_;
    DIR* thermal_dir_ = nullptr;
    DIR* net_dir_ = nullptr;
};

/// Writes `sample` as one compact JSON object, NUL-terminated:
///   {"type":"health","n":12,"uptime_s":1234.5,"load":[0.10,0.20,0.30],
///    "mem_total_kb":3884376,"mem_available_kb":2911020,
///    "temp_c":{"cpu-thermal":47.2},"links":{"eth0":"up","wlan0":"down"}}
/// Absent fields are left out (temp_c and links too when empty); uptime is
/// truncated to tenths, temperatures are rounded to tenths. Returns the
/// length written (without the NUL), or 0 when it does not fit in `capacity`
/// bytes (then `out` holds "" if capacity > 0).
std::size_t format_json(const HealthSample& sample, std::uint64_t sample_number, char* out,
                        std::size_t capacity);

/// The time the sample after one due at `due` is due: `due + period_ms`, or
/// `now + period_ms` when that has already passed (samples missed while the
/// loop was busy are skipped, not bunched up).
constexpr TimeMs next_sample_at(TimeMs due, std::uint32_t period_ms, TimeMs now) {
    return time_reached(now, due + period_ms) ? now + period_ms : due + period_ms;
}

}  // namespace tether::daemon

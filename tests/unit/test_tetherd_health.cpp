// SPDX-License-Identifier: MIT
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "health.h"
#include "support/alloc_counter.h"
#include "support/temp_dir.h"

// CppUTest last: its operator-new macro breaks standard headers.
#include <CppUTest/TestHarness.h>

using tether::daemon::format_json;
using tether::daemon::HealthCollector;
using tether::daemon::HealthSample;

namespace {

// A fake /sys and /proc below a temporary directory; directories are made on
// demand and removed (deepest first) before the TempDir removes its root.
class FakeTree {
  public:
    ~FakeTree() {
        for (const std::string& file : files_) {
            ::unlink(file.c_str());
        }
        for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
            ::rmdir(it->c_str());
        }
    }

    const char* root() const { return temp_.path().c_str(); }

    void write(const std::string& relative, const std::string& contents) {
        std::string::size_type slash = 0;
        while ((slash = relative.find('/', slash + 1)) != std::string::npos) {
            const std::string dir = temp_.path() + relative.substr(0, slash);
            if (::mkdir(dir.c_str(), 0700) == 0) {
                dirs_.push_back(dir);
            }
        }
        files_.push_back(temp_.write_file(relative.substr(1), contents));
    }

    void remove(const std::string& relative) { ::unlink((temp_.path() + relative).c_str()); }

    void zone(int number, const char* type, const char* temp) {
        const std::string dir = "/sys/class/thermal/thermal_zone" + std::to_string(number);
        if (type != nullptr) {
            write(dir + "/type", type);
        }
        if (temp != nullptr) {
            write(dir + "/temp", temp);
        }
    }

    void link(const char* name, const char* operstate, const char* carrier) {
        const std::string dir = std::string("/sys/class/net/") + name;
        if (operstate != nullptr) {
            write(dir + "/operstate", operstate);
        }
        if (carrier != nullptr) {
            write(dir + "/carrier", carrier);
        }
    }

    // What a Raspberry Pi 4 on Ethernet shows, trimmed.
    void full_device() {
        write("/proc/uptime", "1234.56 4000.12\n");
        write("/proc/loadavg", "0.10 0.25 1.50 1/123 4567\n");
        write("/proc/meminfo",
              "MemTotal:        3884376 kB\n"
              "MemFree:         2511020 kB\n"
              "MemAvailable:    2911020 kB\n"
              "Buffers:           41216 kB\n");
        zone(0, "cpu-thermal\n", "47234\n");
        link("eth0", "up\n", "1\n");
        link("wlan0", "down\n", nullptr);
        link("lo", "unknown\n", "1\n");
    }

  private:
    tether::test::TempDir temp_;
    std::vector<std::string> dirs_;
    std::vector<std::string> files_;
};

std::string json_of(const HealthSample& sample, std::uint64_t number = 12) {
    char out[1024];
    const std::size_t length = format_json(sample, number, out, sizeof out);
    UNSIGNED_LONGS_EQUAL(std::strlen(out), length);
    return std::string(out, length);
}

std::string sampled_json(FakeTree& tree, const char* const* interfaces = nullptr,
                         std::size_t interface_count = 0) {
    HealthCollector collector(tree.root(), interfaces, interface_count);
    HealthSample sample;
    collector.sample(&sample);
    return json_of(sample);
}

}  // namespace

TEST_GROUP(TetherdHealth){};

TEST(TetherdHealth, ReadsEveryFieldOfAFullDevice) {
    FakeTree tree;
    tree.full_device();
    HealthCollector collector(tree.root());
    HealthSample sample;
    CHECK_TRUE(collector.sample(&sample));

    CHECK_TRUE(sample.has_uptime);
    UNSIGNED_LONGS_EQUAL(123456u, sample.uptime_centiseconds);
    CHECK_TRUE(sample.has_load);
    UNSIGNED_LONGS_EQUAL(10u, sample.load_centi[0]);
    UNSIGNED_LONGS_EQUAL(25u, sample.load_centi[1]);
    UNSIGNED_LONGS_EQUAL(150u, sample.load_centi[2]);
    CHECK_TRUE(sample.has_mem_total);
    UNSIGNED_LONGS_EQUAL(3884376u, sample.mem_total_kb);
    CHECK_TRUE(sample.has_mem_available);
    UNSIGNED_LONGS_EQUAL(2911020u, sample.mem_available_kb);
    UNSIGNED_LONGS_EQUAL(1u, sample.zone_count);
    STRCMP_EQUAL("cpu-thermal", sample.zones[0].name);
    LONGS_EQUAL(47234, sample.zones[0].millicelsius);
    UNSIGNED_LONGS_EQUAL(2u, sample.link_count);
    STRCMP_EQUAL("eth0", sample.links[0].name);
    STRCMP_EQUAL("up", sample.links[0].state);
    LONGS_EQUAL(1, sample.links[0].carrier);
    STRCMP_EQUAL("wlan0", sample.links[1].name);
    STRCMP_EQUAL("down", sample.links[1].state);
    LONGS_EQUAL(-1, sample.links[1].carrier);
}

TEST(TetherdHealth, FormatsTheFullDeviceAsOneCompactMessage) {
    FakeTree tree;
    tree.full_device();
    STRCMP_EQUAL(
        "{\"type\":\"health\",\"n\":12,\"uptime_s\":1234.5,\"load\":[0.10,0.25,1.50],"
        "\"mem_total_kb\":3884376,\"mem_available_kb\":2911020,"
        "\"temp_c\":{\"cpu-thermal\":47.2},\"links\":{\"eth0\":\"up\",\"wlan0\":\"down\"}}",
        sampled_json(tree).c_str());
}

TEST(TetherdHealth, MissingFilesLeaveTheirFieldsOut) {
    FakeTree tree;
    HealthCollector collector(tree.root());
    HealthSample sample;
    CHECK_FALSE(collector.sample(&sample));
    STRCMP_EQUAL("{\"type\":\"health\",\"n\":12}", json_of(sample).c_str());

    tree.write("/proc/meminfo", "MemTotal:        3884376 kB\n");
    tree.zone(0, nullptr, "51000\n");  // no type file: named after its directory
    CHECK_TRUE(collector.sample(&sample));
    STRCMP_EQUAL(
        "{\"type\":\"health\",\"n\":12,\"mem_total_kb\":3884376,"
        "\"temp_c\":{\"thermal_zone0\":51.0}}",
        json_of(sample).c_str());
}

TEST(TetherdHealth, AnUnreadableRootYieldsNothing) {
    HealthCollector collector("/nonexistent-tether-root");
    HealthSample sample;
    sample.has_uptime = true;
    CHECK_FALSE(collector.sample(&sample));
    CHECK_FALSE(sample.has_uptime);
}

TEST(TetherdHealth, GarbageIsRejectedFieldByField) {
    FakeTree tree;
    tree.write("/proc/uptime", "12x4.5 1\n");
    tree.write("/proc/loadavg", "0.10 0.25\n");
    tree.write("/proc/meminfo",
               "MemTotal:        38x4376 kB\n"
               "MemAvailable:    2911020 kB\n");
    tree.zone(0, "cpu-thermal\n", "47.2\n");
    tree.zone(1, "gpu\n", "99999999999\n");
    tree.zone(2, "ok\n", "40000\n");
    tree.zone(3, "empty\n", "");
    tree.zone(4, "minus\n", "-\n");
    tree.link("eth0", "UP!\n", "1\n");
    tree.link("eth1", "", nullptr);
    tree.link("eth2", "dormant\n", "maybe\n");
    STRCMP_EQUAL(
        "{\"type\":\"health\",\"n\":12,\"mem_available_kb\":2911020,"
        "\"temp_c\":{\"ok\":40.0},\"links\":{\"eth2\":\"dormant\"}}",
        sampled_json(tree).c_str());
}

TEST(TetherdHealth, RejectsMalformedNumbersAndOverflow) {
    const char* const uptimes[] = {"",    "\n", ".5\n", "5.\n", "5.x\n", "99999999999999999999\n",
                                   "5 \n" /* accepted: the second field may follow */};
    for (std::size_t i = 0; i < 6; ++i) {
        FakeTree tree;
        tree.write("/proc/uptime", uptimes[i]);
        HealthCollector collector(tree.root());
        HealthSample sample;
        CHECK_FALSE_TEXT(collector.sample(&sample), uptimes[i]);
    }
    FakeTree tree;
    tree.write("/proc/uptime", uptimes[6]);
    tree.write("/proc/loadavg", "42949672.96 0 0\n");  // one more than 32 bits of hundredths
    tree.write("/proc/meminfo", "MemTotal: 5 MB\nMemAvailable: 7 kB");  // unterminated line
    STRCMP_EQUAL("{\"type\":\"health\",\"n\":12,\"uptime_s\":5.0}", sampled_json(tree).c_str());
}

TEST(TetherdHealth, KeepsLoadPrecisionAndUptimeTenths) {
    FakeTree tree;
    tree.write("/proc/uptime", "0.09\n");
    tree.write("/proc/loadavg", "3 12.5 0.019 9/9 1\n");
    STRCMP_EQUAL("{\"type\":\"health\",\"n\":12,\"uptime_s\":0.0,\"load\":[3.00,12.50,0.01]}",
                 sampled_json(tree).c_str());
}

TEST(TetherdHealth, RoundsTemperaturesToTenthsAwayFromZero) {
    HealthSample sample;
    const std::int32_t readings[] = {47250, 47249, -1550, -49, 49, INT32_MIN};
    const char* names[] = {"a", "b", "c", "d", "e", "f"};
    for (std::size_t i = 0; i < 6; ++i) {
        std::strcpy(sample.zones[i].name, names[i]);
        sample.zones[i].millicelsius = readings[i];
    }
    sample.zone_count = 6;
    STRCMP_EQUAL(
        "{\"type\":\"health\",\"n\":1,\"temp_c\":{\"a\":47.3,\"b\":47.2,\"c\":-1.6,\"d\":0.0,"
        "\"e\":0.0,\"f\":-2147483.6}}",
        json_of(sample, 1).c_str());
}

TEST(TetherdHealth, NamesZonesByTypeInNumberOrderWithoutRepeatingKeys) {
    FakeTree tree;
    tree.zone(10, "cpu-thermal\n", "30000\n");
    tree.zone(2, "cpu-thermal\n", "20000\n");
    tree.zone(0, "bad\"name\n", "10000\n");
    tree.zone(1, nullptr, nullptr);  // no temperature: left out
    tree.write("/sys/class/thermal/cooling_device0/type", "fan\n");
    STRCMP_EQUAL(
        "{\"type\":\"health\",\"n\":12,\"temp_c\":{\"thermal_zone0\":10.0,"
        "\"cpu-thermal\":20.0,\"thermal_zone10\":30.0}}",
        sampled_json(tree).c_str());
}

TEST(TetherdHealth, KeepsAtMostTheMaximumNumberOfZonesAndLinks) {
    FakeTree tree;
    for (int i = 0; i < 10; ++i) {
        tree.zone(i, nullptr, "1000\n");
        tree.link(("eth" + std::to_string(i)).c_str(), "up\n", "1\n");
    }
    HealthCollector collector(tree.root());
    HealthSample sample;
    CHECK_TRUE(collector.sample(&sample));
    UNSIGNED_LONGS_EQUAL(HealthSample::kMaxZones, sample.zone_count);
    STRCMP_EQUAL("thermal_zone7", sample.zones[7].name);
    UNSIGNED_LONGS_EQUAL(HealthSample::kMaxLinks, sample.link_count);
    STRCMP_EQUAL("eth7", sample.links[7].name);
}

TEST(TetherdHealth, ListsEveryInterfaceButLoopbackSortedByName) {
    FakeTree tree;
    tree.link("wlan0", "dormant\n", "0\n");
    tree.link("eth0", "up\n", "1\n");
    tree.link("lo", "unknown\n", "1\n");
    tree.link("usb0", "lowerlayerdown\n", nullptr);
    tree.write("/sys/class/net/bonding_masters", "\n");  // not an interface
    tree.link("we\"ird", "up\n", nullptr);
    STRCMP_EQUAL(
        "{\"type\":\"health\",\"n\":12,\"links\":{\"eth0\":\"up\",\"usb0\":\"lowerlayerdown\","
        "\"wlan0\":\"dormant\"}}",
        sampled_json(tree).c_str());
}

TEST(TetherdHealth, ReportsOnlyTheListedInterfacesInTheirOrder) {
    FakeTree tree;
    tree.full_device();
    const char* const interfaces[] = {"wlan0", "eth1", "lo", "eth0", "../../proc"};
    STRCMP_EQUAL(
        "{\"type\":\"health\",\"n\":12,\"uptime_s\":1234.5,\"load\":[0.10,0.25,1.50],"
        "\"mem_total_kb\":3884376,\"mem_available_kb\":2911020,"
        "\"temp_c\":{\"cpu-thermal\":47.2},"
        "\"links\":{\"wlan0\":\"down\",\"lo\":\"up\",\"eth0\":\"up\"}}",
        sampled_json(tree, interfaces, 5).c_str());
}

TEST(TetherdHealth, AnUnknownOperstateTakesTheCarrier) {
    FakeTree tree;
    tree.link("tun0", "unknown\n", "1\n");
    tree.link("tun1", "unknown\n", "0\n");
    tree.link("tun2", "unknown\n", nullptr);
    STRCMP_EQUAL(
        "{\"type\":\"health\",\"n\":12,\"links\":{\"tun0\":\"up\",\"tun1\":\"down\","
        "\"tun2\":\"unknown\"}}",
        sampled_json(tree).c_str());
}

TEST(TetherdHealth, FollowsChangesBetweenSamplesWithoutAllocating) {
    FakeTree tree;
    tree.full_device();
    HealthCollector collector(tree.root());
    HealthSample sample;
    CHECK_TRUE(collector.sample(&sample));  // opens the directory streams

    tree.write("/sys/class/net/eth0/operstate", "down\n");
    tree.link("usb0", "up\n", "1\n");
    tree.write("/sys/class/thermal/thermal_zone0/temp", "50000\n");
    {
        tether::test::AllocationCounter counter;
        CHECK_TRUE(collector.sample(&sample));
        UNSIGNED_LONGS_EQUAL(0u, counter.count());
    }
    STRCMP_EQUAL(
        "{\"type\":\"health\",\"n\":12,\"uptime_s\":1234.5,\"load\":[0.10,0.25,1.50],"
        "\"mem_total_kb\":3884376,\"mem_available_kb\":2911020,"
        "\"temp_c\":{\"cpu-thermal\":50.0},"
        "\"links\":{\"eth0\":\"down\",\"usb0\":\"up\",\"wlan0\":\"down\"}}",
        json_of(sample).c_str());
}

TEST(TetherdHealth, ARootTooLongForAPathYieldsNothing) {
    const std::string root(300, 'x');
    HealthCollector collector(root.c_str());
    HealthSample sample;
    CHECK_FALSE(collector.sample(&sample));
    const char* const interfaces[] = {"eth0"};
    HealthCollector listed(root.c_str(), interfaces, 1);
    CHECK_FALSE(listed.sample(&sample));
}

TEST(TetherdHealth, FormatRefusesEveryCapacityTooSmall) {
    FakeTree tree;
    tree.full_device();
    HealthCollector collector(tree.root());
    HealthSample sample;
    CHECK_TRUE(collector.sample(&sample));
    const std::string expected = json_of(sample, 7);
    char out[1024];
    for (std::size_t capacity = 0; capacity <= expected.size(); ++capacity) {
        std::memset(out, 'z', sizeof out);
        UNSIGNED_LONGS_EQUAL(0u, format_json(sample, 7, out, capacity));
        if (capacity > 0) {
            BYTES_EQUAL('\0', out[0]);
        }
        BYTES_EQUAL('z', out[capacity]);
    }
    UNSIGNED_LONGS_EQUAL(expected.size(), format_json(sample, 7, out, expected.size() + 1));
    STRCMP_EQUAL(expected.c_str(), out);
}

TEST(TetherdHealth, FormatSkipsEntriesThatWouldBreakTheJson) {
    HealthSample sample;
    sample.zone_count = 1;
    std::strcpy(sample.zones[0].name, "a\"b");
    sample.link_count = 2;
    std::strcpy(sample.links[0].name, "eth0");
    std::strcpy(sample.links[0].state, "up\"");
    std::strcpy(sample.links[1].name, "");
    std::strcpy(sample.links[1].state, "up");
    STRCMP_EQUAL("{\"type\":\"health\",\"n\":18446744073709551615}",
                 json_of(sample, UINT64_MAX).c_str());
}

TEST(TetherdHealth, NextSampleKeepsTheRateAndSkipsMissedSamples) {
    using tether::daemon::next_sample_at;
    UNSIGNED_LONGS_EQUAL(6000u, next_sample_at(1000, 5000, 1200));
    UNSIGNED_LONGS_EQUAL(6000u, next_sample_at(1000, 5000, 5999));
    UNSIGNED_LONGS_EQUAL(23000u, next_sample_at(1000, 5000, 18000));
    UNSIGNED_LONGS_EQUAL(0x100u, next_sample_at(0xFFFFFF00u, 0x200u, 0xFFFFFFF0u));
}

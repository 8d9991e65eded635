// desired_sync(): the desired messages a reconnecting device gets
// (docs/PROTOCOL.md 9.2), a pure function of what the store holds.
#include <cstdint>
#include <string>
#include <vector>

#include "tether/server/session_engine.h"

// CppUTest last: its operator-new macro breaks standard headers.
#include <CppUTest/TestHarness.h>

using tether::server::desired_sync;
using tether::server::DesiredChange;

namespace {

// Increments first..last, each a patch of `patch` bytes.
std::vector<DesiredChange> increments(std::uint64_t first, std::uint64_t last,
                                      std::size_t patch = 7) {
    std::vector<DesiredChange> out;
    for (std::uint64_t v = first; v <= last; ++v) {
        out.push_back(DesiredChange{v, false, "{\"" + std::string(patch - 6, 'k') + "\":1}"});
    }
    return out;
}

const std::string kBigDocument = "{\"k\":\"" + std::string(500, 'x') + "\"}";

}  // namespace

TEST_GROUP(DesiredSync){};

TEST(DesiredSync, NothingWithoutADocument) {
    CHECK(desired_sync(0, 0, "{}", {}).empty());
    CHECK(desired_sync(5, 0, "{}", {}).empty());  // the device keeps what it has
}

TEST(DesiredSync, NothingWhenTheDeviceIsUpToDate) {
    CHECK(desired_sync(9, 9, kBigDocument, increments(1, 9)).empty());
}

TEST(DesiredSync, IncrementsForAShortGap) {
    const std::vector<DesiredChange> out = desired_sync(6, 9, kBigDocument, increments(1, 9));
    LONGS_EQUAL(3, out.size());
    for (std::size_t i = 0; i < out.size(); ++i) {
        UNSIGNED_LONGS_EQUAL(7 + i, out[i].version);
        CHECK_FALSE(out[i].snapshot);
    }
    STRCMP_EQUAL(increments(7, 7)[0].document.c_str(), out[0].document.c_str());
}

TEST(DesiredSync, SnapshotWhenAnIncrementIsNoLongerHeld) {
    const std::vector<DesiredChange> out = desired_sync(3, 80, kBigDocument, increments(17, 80));
    LONGS_EQUAL(1, out.size());
    UNSIGNED_LONGS_EQUAL(80, out[0].version);
    CHECK(out[0].snapshot);
    STRCMP_EQUAL(kBigDocument.c_str(), out[0].document.c_str());
}

TEST(DesiredSync, SnapshotWhenTheIncrementsAreNotSmaller) {
    // Ten patches of 100 bytes against a 507-byte document.
    const std::vector<DesiredChange> out =
        desired_sync(1, 11, kBigDocument, increments(1, 11, 100));
    LONGS_EQUAL(1, out.size());
    CHECK(out[0].snapshot);
    // Exactly as large is not smaller either.
    const std::string same = "{\"a\":1234}";  // 10 bytes
    const std::vector<DesiredChange> equal = desired_sync(
        8, 10, same, {DesiredChange{9, false, "{\"b\":1}"}, DesiredChange{10, false, "{}"}});
    LONGS_EQUAL(2, equal.size());  // 7 + 2 < 10
    const std::vector<DesiredChange> tie = desired_sync(
        8, 10, same, {DesiredChange{9, false, "{\"b\":12}"}, DesiredChange{10, false, "{}"}});
    LONGS_EQUAL(1, tie.size());  // 8 + 2 == 10
    CHECK(tie[0].snapshot);
}

TEST(DesiredSync, SnapshotForADeviceThatAppliedNothing) {
    const std::vector<DesiredChange> out = desired_sync(0, 2, kBigDocument, increments(1, 2));
    LONGS_EQUAL(1, out.size());
    CHECK(out[0].snapshot);
    UNSIGNED_LONGS_EQUAL(2, out[0].version);
}

TEST(DesiredSync, SnapshotForADeviceNewerThanTheStore) {
    const std::vector<DesiredChange> out = desired_sync(12, 5, kBigDocument, increments(1, 5));
    LONGS_EQUAL(1, out.size());
    CHECK(out[0].snapshot);
    UNSIGNED_LONGS_EQUAL(5, out[0].version);
}

TEST(DesiredSync, SnapshotWhenTheHeldIncrementsHaveAHole) {
    std::vector<DesiredChange> held = increments(1, 9);
    held.erase(held.begin() + 6);  // version 7 is missing
    const std::vector<DesiredChange> out = desired_sync(5, 9, kBigDocument, held);
    LONGS_EQUAL(1, out.size());
    CHECK(out[0].snapshot);
}

TEST(DesiredSync, SnapshotWhenTheNewestIncrementIsMissing) {
    const std::vector<DesiredChange> out = desired_sync(5, 9, kBigDocument, increments(1, 8));
    LONGS_EQUAL(1, out.size());
    CHECK(out[0].snapshot);
}

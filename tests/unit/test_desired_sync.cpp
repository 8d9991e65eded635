// SPDX-License-Identifier: MIT
// desired_sync(): the desired messages a reconnecting device gets
// (docs/PROTOCOL.md 9.2), a pure function of what the store holds.
#include <cstdint>
#include <string>
#include <vector>

#include "tether/net/state_messages.h"
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

// What write_desired() puts in one server-to-client frame.
std::size_t wire_bytes(std::uint64_t version, bool snapshot, const std::string& document) {
    char text[tether::net::v1::kMaxStateMessage];
    std::size_t length = 0;
    CHECK(tether::net::v1::write_desired(version, snapshot, document.data(), document.size(), text,
                                         sizeof text, &length) == tether::net::v1::V1Status::kOk);
    return length + (length < 126 ? 2 : 4);
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
    // Compared as bytes on the wire: each message with its frame header.
    // One increment one byte shorter than the snapshot's document is one
    // byte longer as a message ("false,\"patch\"" against "true,\"state\""):
    const std::string document = "{\"a\":\"" + std::string(30, 'x') + "\"}";
    const std::string patch_of_equal_wire = "{\"a\":\"" + std::string(29, 'x') + "\"}";
    CHECK_EQUAL(wire_bytes(10, true, document), wire_bytes(10, false, patch_of_equal_wire));
    const std::vector<DesiredChange> tie =
        desired_sync(9, 10, document, {DesiredChange{10, false, patch_of_equal_wire}});
    LONGS_EQUAL(1, tie.size());  // as large is not smaller
    CHECK(tie[0].snapshot);
    const std::string shorter = "{\"a\":\"" + std::string(28, 'x') + "\"}";
    const std::vector<DesiredChange> smaller =
        desired_sync(9, 10, document, {DesiredChange{10, false, shorter}});
    LONGS_EQUAL(1, smaller.size());
    CHECK_FALSE(smaller[0].snapshot);
}

TEST(DesiredSync, TenSmallPatchesLoseToASnapshotTheyUndercutByDocumentSize) {
    // 10 patches of 90 bytes (900) against a 1,000-byte document: smaller as
    // documents, larger as messages (10 x ~150 bytes on the wire).
    const std::string document = "{\"k\":\"" + std::string(992, 'x') + "\"}";
    const std::vector<DesiredChange> out = desired_sync(1, 11, document, increments(1, 11, 90));
    LONGS_EQUAL(1, out.size());
    CHECK(out[0].snapshot);
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
